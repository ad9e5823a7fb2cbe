//! Samples held by series id instead of by label set, and their write path.
//!
//! The ingest queue holds what receivers accepted until a writer commits it. A `TimeSeries`
//! there costs its whole label set (about 1 KB for one sample of a series with 6-8 labels), so
//! a queue full of a known sender's data was ~1.1 KB per sample. Once a series is registered,
//! its id says everything the writer needs: [`Store::resolve_known`] turns the series of a
//! batch that the series cache knows into [`ResolvedSamples`] (24 bytes per sample), and
//! [`Store::write_resolved`] COPYs them without registering anything.
//!
//! **Ids stay valid while they wait.** Series rows are deleted by maintenance only when their
//! `last_seen` is older than the retention cutoff (`expire_series`, which first flushes the
//! pending `last_seen` of every cached series). A resolved id could therefore only go stale if
//! its row were deleted between resolution and the write. Two rules close that:
//! 1. resolution raises the series' pending `last_seen` to the resolved samples' newest
//!    timestamp at once (as the full write path does at write time), so every later flush
//!    protects the row unless those samples are themselves older than retention (and then
//!    retention drops them anyway);
//! 2. a series is resolved only when the `last_seen` its row is known to hold is at least a
//!    day newer than the retention cutoff ([`SETTLED_MARGIN_MS`]), so a maintenance run that
//!    flushed just before the resolution cannot delete the row either. Other series (never
//!    flushed by this process, or silent for nearly the whole retention) stay full
//!    `TimeSeries` and are looked up again at write time.
//!
//! What remains is a resolved batch that waits in the queue for over a day *and* holds only
//! samples older than retention when maintenance next runs; its rows would then point at a
//! deleted id, as the existing path's documented race can (they come back if the series is
//! written again under the same id, and retention removes them otherwise).

use crate::error::{DbContext, StoreError};
use crate::partitions::{day_of, DAY_MS};
use crate::pending::{SharedSample, SharedSamples};
use crate::pgcopy::{timestamp_in_range, SampleCopyEncoder};
use crate::registry::Fingerprints;
use crate::writer::{mark_late_samples, WriteStats, COPY_CHUNK_BYTES, COPY_SAMPLES};
use crate::{StorageMode, Store};
use model::clock::now_ms;
use model::{Batch, Sample, TimestampMs};
use std::time::Instant;

/// How much newer than the retention cutoff a series' flushed `last_seen` must be for its id to
/// be held in the queue (see the module header).
pub const SETTLED_MARGIN_MS: i64 = DAY_MS;

pub use model::ResolvedSample;

/// Samples of series registered by this process, by id: what the ingest queue holds once the
/// series are known (see the module header).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResolvedSamples {
    rows: Vec<ResolvedSample>,
}

impl ResolvedSamples {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn rows(&self) -> &[ResolvedSample] {
        &self.rows
    }

    /// Bytes these samples hold on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.rows.capacity() * std::mem::size_of::<ResolvedSample>()
    }

    /// For tests and tools that already know ids, and receivers that resolved series while
    /// decoding ([`Store::resolve_encoded`]).
    pub fn from_rows(rows: Vec<ResolvedSample>) -> Self {
        Self { rows }
    }

    /// Adds `other`'s samples after these.
    pub fn append(&mut self, mut other: ResolvedSamples) {
        if self.rows.is_empty() {
            self.rows = other.rows;
        } else {
            self.rows.append(&mut other.rows);
        }
    }
}

/// What [`Store::resolve_known`] made of a batch.
#[derive(Debug, Default)]
pub struct Resolution {
    /// The series that stay as they were (what the writer would refuse, and series beyond
    /// the bound of the shared keys), with all metadata.
    pub batch: Batch,
    /// The cache's fingerprints of `batch.series`, for [`Store::write_fingerprinted`].
    pub fingerprints: Option<Fingerprints>,
    /// Samples of series registered by now, by id.
    pub resolved: ResolvedSamples,
    /// Samples of the other series (not registered yet, or not settled), by shared key
    /// ([`crate::pending`]).
    pub shared: SharedSamples,
}

/// How [`Store::resolve_known`] holds one series of a batch.
enum Holding {
    Id(i64),
    Shared(std::sync::Arc<crate::pending::SharedKey>),
    Full,
}

impl Store {
    /// The id of a series given as its key's canonical encoding
    /// ([`model::labels::with_key_encoding`]) when [`Self::resolve_known`] would hold it by
    /// id, raising its pending `last_seen` to `newest` as that does: for receivers that read
    /// label sets straight from a body and only need to build the ones not known yet. The
    /// caller has checked what `resolve_known` checks of the samples (timestamps PostgreSQL
    /// can store, a metric name). `now` is the receiver's clock reading for the request (one
    /// reading per request rather than one per series).
    pub fn resolve_encoded(
        &self,
        encoding: &[u8],
        newest: TimestampMs,
        now: TimestampMs,
    ) -> Option<i64> {
        self.resolve_fingerprint(self.fingerprint_encoded(encoding), newest, now)
    }

    /// The series cache's fingerprint of a key given as its canonical encoding.
    pub fn fingerprint_encoded(&self, encoding: &[u8]) -> u128 {
        self.inner.series.fingerprint_encoded(encoding)
    }

    /// [`Self::resolve_encoded`] of a series given by its fingerprint in the series cache
    /// ([`SeriesCache::fingerprint_encoded`](crate::SeriesCache::fingerprint_encoded)).
    pub fn resolve_fingerprint(
        &self,
        fp: u128,
        newest: TimestampMs,
        now: TimestampMs,
    ) -> Option<i64> {
        self.inner
            .series
            .hit_settled(fp, newest, self.settled_since(now))
    }

    /// The `last_seen` a series' row must be known to hold at `now` for its id to be held in
    /// the queue: a day newer than the retention cutoff (see the module header).
    pub(crate) fn settled_since(&self, now: TimestampMs) -> TimestampMs {
        let cutoff = now - i64::from(self.inner.cfg.retention_days) * DAY_MS;
        cutoff.saturating_add(SETTLED_MARGIN_MS)
    }

    /// Splits off the series of `batch` whose ids the series cache holds and whose rows cannot
    /// be expired while they wait (see the module header), raising their pending `last_seen`,
    /// and the samples of the other series, which are held with a shared key
    /// ([`crate::pending`]) noted by the first batch that brings the series. `fingerprints`
    /// are reused when this cache computed them for exactly these series. Series the writer
    /// would refuse (empty metric name, timestamps PostgreSQL cannot store) stay in the batch,
    /// so the full path refuses them as before.
    pub fn resolve_known(
        &self,
        mut batch: Batch,
        fingerprints: Option<Fingerprints>,
    ) -> Resolution {
        let cache = &self.inner.series;
        let given = cache.own(fingerprints.as_ref(), batch.series.len());
        let settled_since = self.settled_since(now_ms());

        // First decide per series, so the rows are allocated once at their exact size.
        let mut ids: Vec<Holding> = Vec::with_capacity(batch.series.len());
        let mut resolved_rows = 0usize;
        let mut shared_rows = 0usize;
        let mut moved_series = 0usize;
        // Series not known by id, with their fingerprints: shared or noted below.
        let mut unknown: Vec<(usize, u128)> = Vec::new();
        for (i, ts) in batch.series.iter().enumerate() {
            let valid = !ts.samples.is_empty()
                && !ts.key.metric.is_empty()
                && ts.samples.iter().all(|s| timestamp_in_range(s.ts));
            let id = if valid {
                let fp = match given {
                    Some(values) => values[i],
                    None => cache.fingerprint(&ts.key),
                };
                let last = ts.samples.iter().map(|s| s.ts).max().unwrap_or(i64::MIN);
                let id = cache.hit_settled(fp, last, settled_since);
                if id.is_none() {
                    unknown.push((i, fp));
                }
                id
            } else {
                None
            };
            if id.is_some() {
                resolved_rows += ts.samples.len();
                moved_series += 1;
            }
            ids.push(id.map_or(Holding::Full, Holding::Id));
        }
        let mut noted_bytes = 0;
        if !unknown.is_empty() {
            self.inner.pending.with(|notes| {
                for (i, fp) in unknown {
                    if let Some((key, bytes)) = notes.share(fp, &mut batch.series[i]) {
                        shared_rows += batch.series[i].samples.len();
                        moved_series += 1;
                        noted_bytes += bytes;
                        ids[i] = Holding::Shared(key);
                    }
                }
            });
        }
        if moved_series == 0 {
            return Resolution {
                batch,
                fingerprints,
                ..Resolution::default()
            };
        }

        // Exact sizes: what the queue holds is what it counts.
        let kept_series = batch.series.len() - moved_series;
        let mut rows = Vec::with_capacity(resolved_rows);
        let mut shared = Vec::with_capacity(shared_rows);
        let mut kept = Vec::with_capacity(kept_series);
        let mut kept_fps = given.map(|_| Vec::with_capacity(kept_series));
        for (i, (ts, holding)) in std::mem::take(&mut batch.series)
            .into_iter()
            .zip(ids)
            .enumerate()
        {
            match holding {
                Holding::Id(id) => {
                    rows.extend(
                        ts.samples
                            .iter()
                            .map(|&Sample { ts, value }| ResolvedSample {
                                series_id: id,
                                ts,
                                value,
                            }),
                    )
                }
                Holding::Shared(key) => {
                    shared.extend(ts.samples.iter().map(|&Sample { ts, value }| SharedSample {
                        key: key.clone(),
                        ts,
                        value,
                    }))
                }
                Holding::Full => {
                    if let (Some(fps), Some(values)) = (kept_fps.as_mut(), given) {
                        fps.push(values[i]);
                    }
                    kept.push(ts);
                }
            }
        }
        batch.series = kept;
        Resolution {
            batch,
            fingerprints: kept_fps.map(|v| cache.tag(v)),
            resolved: ResolvedSamples { rows },
            shared: SharedSamples {
                rows: shared,
                noted_bytes,
            },
        }
    }

    /// Writes samples of already registered series in one transaction: one binary COPY, and
    /// (plain PostgreSQL mode) partitions created on demand and late samples marked for the
    /// rollup, as [`Self::write`] does. Their `last_seen` was raised by
    /// [`Self::resolve_known`]. Nothing is written if anything fails.
    pub async fn write_resolved(
        &self,
        parts: &[&ResolvedSamples],
    ) -> Result<WriteStats, StoreError> {
        let started = Instant::now();
        let inner = &self.inner;
        let rows: u64 = parts.iter().map(|p| p.len() as u64).sum();
        if rows == 0 {
            return Ok(WriteStats {
                elapsed: started.elapsed(),
                ..WriteStats::default()
            });
        }
        let mut days: Vec<i64> = Vec::new();
        let (mut min_ts, mut max_ts) = (i64::MAX, i64::MIN);
        for r in parts.iter().flat_map(|p| &p.rows) {
            if !timestamp_in_range(r.ts) {
                // resolve_known never lets such a sample through; a hand-built part might.
                return Err(StoreError::InvalidSample(format!(
                    "timestamp {} ms of series id {} is outside what PostgreSQL can store (4713 BC to 294276 AD); send Unix milliseconds",
                    r.ts, r.series_id
                )));
            }
            min_ts = min_ts.min(r.ts);
            max_ts = max_ts.max(r.ts);
            let day = day_of(r.ts);
            if days.last() != Some(&day) {
                days.push(day);
            }
        }
        if inner.mode == StorageMode::Postgres {
            self.ensure_partitions_for(days).await?;
        }

        let mut tx = inner.pool.begin().await.context("starting a write")?;
        let mut copy = tx
            .copy_in_raw(COPY_SAMPLES)
            .await
            .context("starting COPY of samples")?;
        let mut enc = SampleCopyEncoder::new();
        for r in parts.iter().flat_map(|p| &p.rows) {
            enc.push(r.series_id, r.ts, r.value);
            if enc.pending_bytes() >= COPY_CHUNK_BYTES {
                copy.send(enc.take()).await.context("sending samples")?;
            }
        }
        copy.send(enc.finish()).await.context("sending samples")?;
        copy.finish().await.context("finishing COPY of samples")?;
        // Both modes: TimescaleDB's continuous aggregates use the same watermark.
        mark_late_samples(&mut tx, min_ts, max_ts).await?;
        tx.commit().await.context("committing a write")?;
        let stats = WriteStats {
            rows,
            new_series: 0,
            elapsed: started.elapsed(),
        };
        tracing::debug!(
            rows,
            elapsed_ms = stats.elapsed.as_millis() as u64,
            "resolved samples written"
        );
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Labels, MetricType, SeriesKey, TimeSeries};
    use std::sync::Arc;

    fn series(i: usize, ts: &[i64]) -> TimeSeries {
        TimeSeries {
            key: SeriesKey::new(
                "resolved_test",
                Labels::from_pairs([("i", i.to_string()), ("pod", "a-long-pod-name".into())]),
            ),
            metric_type: MetricType::Gauge,
            samples: ts
                .iter()
                .map(|&t| Sample {
                    ts: t,
                    value: t as f64 / 2.0,
                })
                .collect(),
        }
    }

    async fn stored(db: &Store) -> Vec<(String, i64, f64)> {
        sqlx::query_as(
            "SELECT s.labels->>'i', (extract(epoch FROM x.ts) * 1000)::bigint, x.value \
             FROM samples x JOIN series s ON s.id = x.series_id ORDER BY 1, 2",
        )
        .fetch_all(db.pool())
        .await
        .unwrap()
    }

    /// Samples of a series that is not registered yet are held by one shared key
    /// (`crate::pending`) however many batches bring them; the writer takes them by id once the
    /// series is registered, in full before that, and every sample is stored once.
    #[tokio::test]
    async fn samples_of_series_not_registered_yet_share_one_key() {
        let url = crate::testing::fresh_database_url().await;
        let db = Store::connect(&url, Default::default()).await.unwrap();
        let t = now_ms() - 60_000;
        let batch = |series: Vec<TimeSeries>| Batch {
            series,
            metadata: vec![],
        };
        let first = db.resolve_known(batch((0..3).map(|i| series(i, &[t])).collect()), None);
        assert_eq!(
            (
                first.batch.series.len(),
                first.shared.len(),
                db.pending_keys()
            ),
            (0, 3, 3),
            "new series are held by keys noted now"
        );
        let key3 = series(3, &[]).key;
        assert_eq!(
            first.shared.noted_bytes(),
            3 * crate::pending::key_bytes(&key3),
            "the batch that noted the keys carries them"
        );
        let second = db.resolve_known(
            batch((0..4).map(|i| series(i, &[t + 1, t + 2])).collect()),
            None,
        );
        assert_eq!((second.shared.len(), second.batch.series.len()), (8, 0));
        assert_eq!(db.pending_keys(), 4);
        assert_eq!(
            second.shared.noted_bytes(),
            crate::pending::key_bytes(&key3),
            "only series 3 was noted by this batch"
        );
        let rows = second.shared.rows();
        assert!(
            Arc::ptr_eq(&rows[0].key, &rows[1].key),
            "one key per series"
        );
        assert!(!Arc::ptr_eq(&rows[0].key, &rows[2].key));
        assert!(Arc::ptr_eq(&first.shared.rows()[0].key, &rows[0].key));
        assert!(second.shared.heap_bytes() <= 8 * 32);

        // Before anything is registered: written in full, one series per key.
        let early = db.unshare(vec![second.shared.clone()]);
        assert!(early.resolved.is_empty());
        assert_eq!(
            db.pending_keys(),
            0,
            "being written: their notes are dropped"
        );
        let mut full: Vec<(String, usize)> = early
            .batch
            .series
            .iter()
            .map(|s| (s.key.labels.get("i").unwrap().to_string(), s.samples.len()))
            .collect();
        full.sort();
        assert_eq!(
            full,
            [
                ("0".into(), 2),
                ("1".into(), 2),
                ("2".into(), 2),
                ("3".into(), 2)
            ]
        );
        assert_eq!(early.fingerprints.as_ref().map(|f| f.len()), Some(4));

        // Once the first batch is written, its series are registered: by id.
        let written = db.unshare(vec![first.shared]);
        assert_eq!(written.batch.series.len(), 3);
        db.write_fingerprinted(&[written.batch], &[written.fingerprints])
            .await
            .unwrap();
        let late = db.unshare(vec![second.shared]);
        assert_eq!((late.resolved.len(), late.batch.series.len()), (6, 1));
        db.write(&[late.batch]).await.unwrap();
        db.write_resolved(&[&late.resolved]).await.unwrap();
        let mut expected: Vec<(String, i64, f64)> = (0..3)
            .flat_map(|i| [t, t + 1, t + 2].map(|ts| (i.to_string(), ts, ts as f64 / 2.0)))
            .chain([t + 1, t + 2].map(|ts| ("3".to_string(), ts, ts as f64 / 2.0)))
            .collect();
        expected.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        assert_eq!(stored(&db).await, expected);

        // Registered and settled now: a later batch goes by id, not shared.
        let third = db.resolve_known(batch(vec![series(0, &[t + 3])]), None);
        assert_eq!((third.resolved.len(), third.shared.len()), (1, 0));
    }

    /// Known and settled series are held by id and stored under the ids the full path
    /// registered; new series by shared key; series the writer would refuse, and metadata, stay
    /// in the batch.
    #[tokio::test]
    async fn known_series_are_resolved_and_written_by_id_exactly_as_the_full_path_would() {
        let url = crate::testing::fresh_database_url().await;
        let db = Store::connect(&url, Default::default()).await.unwrap();
        let t = now_ms() - 60_000;
        db.write(&[Batch {
            series: (0..3).map(|i| series(i, &[t])).collect(),
            metadata: vec![],
        }])
        .await
        .unwrap();

        let meta = model::MetricMetadata {
            family: "resolved_test".into(),
            metric_type: MetricType::Gauge,
            unit: String::new(),
            help: "h".into(),
        };
        let mut bad = series(1, &[t + 2]);
        bad.key.metric.clear();
        let batch = Batch {
            series: vec![
                series(0, &[t + 1, t + 2]),
                series(7, &[t + 1]),
                series(2, &[t + 1]),
                bad,
            ],
            metadata: vec![meta.clone()],
        };
        let fps = db.series_cache().tag(
            batch
                .series
                .iter()
                .map(|s| db.series_cache().fingerprint(&s.key))
                .collect(),
        );
        let r = db.resolve_known(batch, Some(fps));
        assert_eq!(r.resolved.len(), 3, "series 0 (two samples) and 2");
        let kept: Vec<_> = r
            .batch
            .series
            .iter()
            .map(|s| s.key.metric.clone())
            .collect();
        assert_eq!(kept, vec![String::new()]);
        assert_eq!(r.batch.metadata, vec![meta]);
        assert_eq!(
            r.fingerprints.as_ref().map(|f| f.len()),
            Some(1),
            "the kept series keep their fingerprints"
        );
        assert_eq!(r.shared.len(), 1, "series 7 is new");
        assert_eq!(r.shared.rows()[0].key.key.labels.get("i"), Some("7"));
        assert!(r.resolved.heap_bytes() >= 3 * 24);

        let stats = db.write_resolved(&[&r.resolved]).await.unwrap();
        assert_eq!(stats.rows, 3);
        assert_eq!(
            stored(&db).await,
            vec![
                ("0".into(), t, t as f64 / 2.0),
                ("0".into(), t + 1, (t + 1) as f64 / 2.0),
                ("0".into(), t + 2, (t + 2) as f64 / 2.0),
                ("1".into(), t, t as f64 / 2.0),
                ("2".into(), t, t as f64 / 2.0),
                ("2".into(), t + 1, (t + 1) as f64 / 2.0),
            ]
        );
        assert_eq!(db.series_count().await.unwrap(), 3, "nothing registered");
    }

    /// A series whose row may be near expiry (its flushed last_seen is unknown: found in the
    /// database rather than registered by this process, or not yet flushed past the margin)
    /// is not held by id; after maintenance flushed a recent last_seen it is.
    #[tokio::test]
    async fn only_series_whose_row_cannot_expire_soon_are_resolved() {
        let url = crate::testing::fresh_database_url().await;
        let db = Store::connect(&url, Default::default()).await.unwrap();
        let t = now_ms() - 60_000;
        let old = now_ms() - 29 * DAY_MS - DAY_MS / 2;
        db.write(&[Batch {
            series: vec![series(0, &[t]), series(1, &[old])],
            metadata: vec![],
        }])
        .await
        .unwrap();
        // Another process (a fresh Store, with its own cache) finds them registered already.
        let other = Store::connect(&url, Default::default()).await.unwrap();
        let batch = || Batch {
            series: vec![series(0, &[t + 1]), series(1, &[old + 1])],
            metadata: vec![],
        };
        let r = other.resolve_known(batch(), None);
        assert!(r.resolved.is_empty(), "cache empty: nothing resolved");
        assert_eq!(r.shared.len(), 2, "both held by shared key");
        let u = other.unshare(vec![r.shared]);
        assert_eq!((u.batch.series.len(), u.resolved.len()), (2, 0));
        other.write(&[u.batch]).await.unwrap();
        let r = other.resolve_known(batch(), None);
        assert!(
            r.resolved.is_empty(),
            "found, not registered, by this process: its row's last_seen is unknown"
        );
        other.flush_last_seen().await.unwrap();
        let r = other.resolve_known(batch(), None);
        assert_eq!(
            r.resolved.rows().iter().map(|s| s.ts).collect::<Vec<_>>(),
            vec![t + 1],
            "series 0 is settled; series 1 was last seen a day short of retention"
        );
        // Series 1 is not held by id: in full, or by the key noted when it was queued in full
        // before (`crate::pending`), which the writer looks up again.
        let not_by_id: Vec<&str> = r
            .batch
            .series
            .iter()
            .map(|s| &s.key)
            .chain(r.shared.rows().iter().map(|x| &x.key.key))
            .map(|k| k.labels.get("i").unwrap())
            .collect();
        assert_eq!(not_by_id, ["1"]);
    }
}
