//! The batch writer: registers new series, upserts metric metadata and binary-COPYs all
//! samples of many batches in one transaction.

use crate::error::{DbContext, StoreError};
use crate::partitions::{self, day_of, DAY_MS};
use crate::pgcopy::{timestamp_in_range, SampleCopyEncoder};
use crate::registry::{self, Fingerprints, Unresolved};
use crate::{sql_ts, StorageMode, Store};
use model::clock::now_ms;
use model::{Batch, MetricMetadata, TimestampMs};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tracing::debug;

/// What one [`Store::write`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteStats {
    /// Samples written.
    pub rows: u64,
    /// Series registered for the first time.
    pub new_series: u64,
    pub elapsed: Duration,
}

/// `series.last_seen` as the writer knows it. The write path only raises `pending` in memory;
/// `Store::flush_last_seen` (run by maintenance) writes all raised values in one UPDATE. Bumping
/// rows inside every write cost 15–20 % of ingest throughput (one row update per series per
/// minute of data); deferring it makes last_seen up to one maintenance interval stale, and a
/// crash loses only those bumps, never samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LastSeen {
    /// What the database row holds (i64::MIN: unknown, e.g. registered by another process).
    pub flushed: TimestampMs,
    /// Highest sample timestamp written.
    pub pending: TimestampMs,
}
/// Bytes of COPY data encoded before they are sent, bounding the writer's memory.
pub(crate) const COPY_CHUNK_BYTES: usize = 1 << 20;
/// Days ahead of now for which the writer creates partitions on demand; later samples go to
/// the DEFAULT partition rather than creating partitions for clock-skewed garbage.
const FUTURE_PARTITION_DAYS: i64 = 7;
/// The COPY of sample rows, shared with `writer_resolved` so the target is named once.
pub(crate) const COPY_SAMPLES: &str =
    "COPY samples (series_id, ts, value) FROM STDIN (FORMAT binary)";
/// Shared with maintenance, which takes it exclusively while it rolls up.
pub(crate) const ROLLUP_LOCK_KEY: i64 = 0x7077_726f_6c6c; // "pwroll"

/// A series of this write that was not in the cache, with the span of its samples here.
struct Missed<'a> {
    series: &'a model::TimeSeries,
    first: TimestampMs,
    last: TimestampMs,
}

/// Where a series occurrence's id comes from: the cache, or the registration of a miss.
#[derive(Clone, Copy)]
enum Slot {
    Id(i64),
    Missed(u128),
}

impl Store {
    /// Writes the batches in one transaction: series not in the cache are registered or
    /// looked up (see [`crate::registry`]: label sets whose hashes collide get distinct ids),
    /// `last_seen` is raised in memory and written by maintenance, metadata is upserted (last
    /// one wins per family), and every sample is binary-COPYed. Nothing is written if
    /// anything fails.
    pub async fn write(&self, batches: &[Batch]) -> Result<WriteStats, StoreError> {
        self.write_fingerprinted(batches, &[]).await
    }

    /// [`Self::write`] with the series fingerprints the server's limiter computed already:
    /// `fingerprints[i]` belongs to `batches[i]` (missing, `None`, or from another cache: the
    /// writer computes them).
    pub async fn write_fingerprinted(
        &self,
        batches: &[Batch],
        fingerprints: &[Option<Fingerprints>],
    ) -> Result<WriteStats, StoreError> {
        let started = Instant::now();
        let inner = &self.inner;
        let cache = &inner.series;

        // Validate and resolve ids from the cache first, so a bad sample rejects the batch
        // before any I/O. Only cache misses are collected by series; a hit costs one shard
        // lock and no allocation.
        let occurrences: usize = batches.iter().map(|b| b.series.len()).sum();
        let mut slots: Vec<Slot> = Vec::with_capacity(occurrences);
        let mut missed: HashMap<u128, Missed> = HashMap::new();
        let mut days: Vec<i64> = Vec::new();
        let mut min_ts = i64::MAX;
        let mut max_ts = i64::MIN;
        let mut rows = 0u64;
        for (b, batch) in batches.iter().enumerate() {
            let given = cache.own(
                fingerprints.get(b).and_then(Option::as_ref),
                batch.series.len(),
            );
            for (i, ts) in batch.series.iter().enumerate() {
                if ts.samples.is_empty() {
                    continue;
                }
                if ts.key.metric.is_empty() {
                    return Err(StoreError::InvalidSample(format!(
                        "series {} has an empty metric name; give every series a metric name",
                        ts.key
                    )));
                }
                let (mut first, mut last) = (i64::MAX, i64::MIN);
                for s in &ts.samples {
                    if !timestamp_in_range(s.ts) {
                        return Err(StoreError::InvalidSample(format!(
                            "timestamp {} ms of series {} is outside what PostgreSQL can store (4713 BC to 294276 AD); send Unix milliseconds",
                            s.ts, ts.key
                        )));
                    }
                    first = first.min(s.ts);
                    last = last.max(s.ts);
                    let day = day_of(s.ts);
                    if days.last() != Some(&day) {
                        days.push(day);
                    }
                }
                rows += ts.samples.len() as u64;
                min_ts = min_ts.min(first);
                max_ts = max_ts.max(last);
                let fp = match given {
                    Some(values) => values[i],
                    None => cache.fingerprint(&ts.key),
                };
                // Cached series only raise their pending last_seen in memory; the rest are
                // registered (or found) in this transaction.
                match cache.hit(fp, last) {
                    Some(id) => slots.push(Slot::Id(id)),
                    None => {
                        slots.push(Slot::Missed(fp));
                        missed
                            .entry(fp)
                            .and_modify(|r| {
                                r.first = r.first.min(first);
                                r.last = r.last.max(last);
                            })
                            .or_insert(Missed {
                                series: ts,
                                first,
                                last,
                            });
                    }
                }
            }
        }
        let metadata = dedup_metadata(batches);
        if rows == 0 && metadata.is_empty() {
            return Ok(WriteStats {
                elapsed: started.elapsed(),
                ..WriteStats::default()
            });
        }

        if inner.mode == StorageMode::Postgres && rows > 0 {
            self.ensure_partitions_for(days).await?;
        }

        let mut to_register: Vec<Unresolved> = missed
            .iter()
            .map(|(&fp, row)| Unresolved {
                fp,
                hash: (inner.series_hash)(&row.series.key),
                key: &row.series.key,
                // JSON only for series not in the cache: most writes register nothing.
                labels_json: labels_json(&row.series.key.labels),
                metric_type: row.series.metric_type.as_str(),
                first: row.first,
                last: row.last,
            })
            .collect();
        // Ascending ids, so concurrent writers lock rows in one order and cannot deadlock.
        to_register.sort_by_key(|r| r.hash);

        let mut tx = inner.pool.begin().await.context("starting a write")?;
        let mut registered = Vec::new();
        let mut ids: HashMap<u128, i64> = HashMap::new();
        if !to_register.is_empty() {
            registered = registry::register(&mut tx, &to_register).await?;
            ids.reserve(registered.len());
            for r in &registered {
                ids.insert(r.fp, r.id);
            }
        }
        if !metadata.is_empty() {
            sqlx::query(
                "INSERT INTO metric_metadata (family, metric_type, unit, help, updated_at) \
                 SELECT family, metric_type, unit, help, now() \
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) AS t(family, metric_type, unit, help) \
                 ON CONFLICT (family) DO UPDATE SET metric_type = EXCLUDED.metric_type, unit = EXCLUDED.unit, \
                   help = EXCLUDED.help, updated_at = EXCLUDED.updated_at \
                 WHERE (metric_metadata.metric_type, metric_metadata.unit, metric_metadata.help) \
                   IS DISTINCT FROM (EXCLUDED.metric_type, EXCLUDED.unit, EXCLUDED.help)",
            )
            .bind(metadata.iter().map(|m| m.family.as_str()).collect::<Vec<_>>())
            .bind(metadata.iter().map(|m| m.metric_type.as_str()).collect::<Vec<_>>())
            .bind(metadata.iter().map(|m| m.unit.as_str()).collect::<Vec<_>>())
            .bind(metadata.iter().map(|m| m.help.as_str()).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .context("upserting metric metadata")?;
        }
        if rows > 0 {
            let mut copy = tx
                .copy_in_raw(COPY_SAMPLES)
                .await
                .context("starting COPY of samples")?;
            let mut enc = SampleCopyEncoder::new();
            let non_empty = batches
                .iter()
                .flat_map(|b| &b.series)
                .filter(|ts| !ts.samples.is_empty());
            for (ts, slot) in non_empty.zip(&slots) {
                let id = match *slot {
                    Slot::Id(id) => id,
                    Slot::Missed(fp) => ids[&fp],
                };
                for s in &ts.samples {
                    enc.push(id, s.ts, s.value);
                }
                if enc.pending_bytes() >= COPY_CHUNK_BYTES {
                    copy.send(enc.take()).await.context("sending samples")?;
                }
            }
            copy.send(enc.finish()).await.context("sending samples")?;
            copy.finish().await.context("finishing COPY of samples")?;

            // Both modes: TimescaleDB's continuous aggregates use the same watermark.
            mark_late_samples(&mut tx, min_ts, max_ts).await?;
        }
        tx.commit().await.context("committing a write")?;

        let mut new_series = 0u64;
        for r in &registered {
            // A series that already existed (another writer, or a restart) gets its
            // last_seen raised by the next flush.
            let flushed = if r.new { r.last } else { i64::MIN };
            new_series += u64::from(r.new);
            cache.insert(r.fp, r.id, flushed, r.last);
        }
        let stats = WriteStats {
            rows,
            new_series,
            elapsed: started.elapsed(),
        };
        debug!(
            rows,
            new_series = stats.new_series,
            elapsed_ms = stats.elapsed.as_millis() as u64,
            "batch written"
        );
        Ok(stats)
    }

    /// Writes every last_seen raised since the previous flush in one UPDATE. Returns the number
    /// of series updated. Called by `maintain`; safe to call at any time.
    pub async fn flush_last_seen(&self) -> Result<u64, StoreError> {
        let (evicted, cached) = self.inner.series.dirty();
        // An id can be both evicted and cached again; UPDATE .. FROM would pick either row,
        // so keep the highest per id.
        let mut highest: HashMap<i64, TimestampMs> = HashMap::new();
        for &(id, ts) in evicted.iter().chain(&cached) {
            let e = highest.entry(id).or_insert(ts);
            *e = (*e).max(ts);
        }
        let dirty: Vec<(i64, TimestampMs)> = highest.into_iter().collect();
        if dirty.is_empty() {
            return Ok(0);
        }
        let result = sqlx::query(
            "UPDATE series SET last_seen = greatest(series.last_seen, to_timestamp(t.last_ms::float8 / 1000)) \
             FROM UNNEST($1::bigint[], $2::bigint[]) AS t(id, last_ms) WHERE series.id = t.id",
        )
        .bind(dirty.iter().map(|d| d.0).collect::<Vec<_>>())
        .bind(dirty.iter().map(|d| d.1).collect::<Vec<_>>())
        .execute(self.pool())
        .await
        .context("updating last_seen of series");
        if let Err(e) = result {
            // Keep the evicted series' bumps for the next attempt.
            self.inner.series.requeue_evicted(evicted);
            return Err(e);
        }
        self.inner.series.flushed(&dirty);
        Ok(dirty.len() as u64)
    }

    /// Creates missing partitions for the days a batch touches, within retention and up to
    /// a week ahead; other days land in the DEFAULT partition.
    pub(crate) async fn ensure_partitions_for(&self, mut days: Vec<i64>) -> Result<(), StoreError> {
        let today = day_of(now_ms());
        let oldest = day_of(now_ms() - i64::from(self.inner.cfg.retention_days) * DAY_MS);
        days.sort_unstable();
        days.dedup();
        let missing: Vec<i64> = {
            let known = self
                .inner
                .partition_days
                .lock()
                .expect("partition cache poisoned");
            days.into_iter()
                .filter(|d| {
                    (oldest..=today + FUTURE_PARTITION_DAYS).contains(d) && !known.contains(d)
                })
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let created = partitions::ensure_partitions(&self.inner.pool, "samples", &missing).await?;
        if !created.is_empty() {
            debug!(?created, "created sample partitions on demand");
        }
        let mut known = self
            .inner
            .partition_days
            .lock()
            .expect("partition cache poisoned");
        known.extend(
            missing
                .into_iter()
                .filter(|&d| partitions::partitionable(d)),
        );
        Ok(())
    }
}

/// Records that samples landed below the rollup watermark or the compaction watermark, so
/// the next maintenance re-rolls their buckets and merges them into their hours' chunks. The shared advisory lock orders this against a running rollup (which
/// holds it exclusively): either the rollup started after our rows are committed and sees
/// them, or we see the watermark it moved and mark our rows as late.
pub(crate) async fn mark_late_samples(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    min_ts: TimestampMs,
    max_ts: TimestampMs,
) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
        .bind(ROLLUP_LOCK_KEY)
        .execute(&mut **tx)
        .await
        .context("waiting for a running rollup")?;
    sqlx::query(&format!(
        "UPDATE rollup_state SET dirty_from = least(dirty_from, {min}), \
           dirty_to = greatest(dirty_to, least({max}, watermark)), updated_at = clock_timestamp() \
         WHERE name IN ('1m', 'compact') AND watermark > {min}",
        min = sql_ts(1),
        max = sql_ts(2)
    ))
    .bind(min_ts)
    .bind(max_ts)
    .execute(&mut **tx)
    .await
    .context("recording late samples for the rollup")?;
    Ok(())
}

fn labels_json(labels: &model::Labels) -> String {
    let map: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// One entry per family (the last one given wins), sorted by family so concurrent upserts
/// lock rows in one order.
fn dedup_metadata(batches: &[Batch]) -> Vec<&MetricMetadata> {
    let mut by_family: HashMap<&str, &MetricMetadata> = HashMap::new();
    for m in batches.iter().flat_map(|b| &b.metadata) {
        by_family.insert(m.family.as_str(), m);
    }
    let mut out: Vec<&MetricMetadata> = by_family.into_values().collect();
    out.sort_by(|a, b| a.family.cmp(&b.family));
    out
}
