//! Housekeeping run every ~30 s by the server: last_seen of series, partitions ahead of time,
//! rollups of complete buckets (re-rolling buckets that late samples landed in), and retention
//! of samples, rollups and of series rows nobody wrote to within retention.

use crate::bucket;
use crate::compaction::{hours_with_samples, merged_samples};
use crate::error::{DbContext, StoreError};
use crate::partitions::{self, day_of, DAY_MS, HOUR_MS, MINUTE_MS};
use crate::writer::ROLLUP_LOCK_KEY;
use crate::{sql_ms, sql_ts, StorageMode, Store};
use model::TimestampMs;
use std::ops::Range;
use std::time::{Duration, Instant};
use tracing::{debug, info};

/// Partitions are kept ready for today and this many following days.
const PARTITIONS_AHEAD_DAYS: i64 = 2;

/// What one [`Store::maintain`] did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MaintenanceReport {
    /// Series whose last_seen was written (see `Store::flush_last_seen`).
    pub last_seen_flushed: u64,
    /// Series rows deleted because their last sample is older than retention.
    pub series_expired: u64,
    pub partitions_created: Vec<String>,
    pub partitions_dropped: Vec<String>,
    /// Rows deleted by retention from the DEFAULT partition and the rollup tables (rows in
    /// dropped partitions are not counted).
    pub expired_rows: u64,
    /// Rollup rows (re)written.
    pub rollup_1m_rows: u64,
    pub rollup_1h_rows: u64,
    /// Every sample before this instant is reflected in the rollup (None: nothing rolled up
    /// yet, or TimescaleDB mode, where continuous aggregates do this).
    pub watermark_1m: Option<TimestampMs>,
    pub watermark_1h: Option<TimestampMs>,
    /// What compaction of fresh samples into chunks did (plain PostgreSQL mode).
    pub compaction: crate::compaction::CompactionReport,
    pub elapsed: Duration,
}

/// A `rollup_state` row: the minute or hour rollup's, or compaction's (`compact`).
pub(crate) struct RollupState {
    pub watermark: Option<TimestampMs>,
    /// Inclusive range that writers marked below the watermark.
    pub dirty: Option<(TimestampMs, TimestampMs)>,
}

impl Store {
    /// Idempotent housekeeping as of `now_ms`: creates partitions for today..today+2,
    /// rolls complete buckets up to `now_ms - rollup_lag` into `samples_1m` and `samples_1h`
    /// (re-rolling buckets that late samples landed in), and drops data older than
    /// `retention_days`. In TimescaleDB mode, chunks replace partitions and compaction, and
    /// this refreshes the continuous aggregates and drops expired chunks instead (see
    /// [`crate::timescale`]).
    pub async fn maintain(&self, now_ms: TimestampMs) -> Result<MaintenanceReport, StoreError> {
        let started = Instant::now();
        let mut report = MaintenanceReport::default();
        // Day-aligned, so a rollup bucket is kept exactly when its raw samples are.
        let first_kept_day = day_of(now_ms - i64::from(self.inner.cfg.retention_days) * DAY_MS);
        let cutoff = first_kept_day * DAY_MS;
        // Both modes: last_seen first, so the expiry below sees every series written lately.
        report.last_seen_flushed = self.flush_last_seen().await?;
        report.series_expired = self.expire_series(cutoff).await?;
        if self.mode() == StorageMode::TimescaleDb {
            self.maintain_timescaledb(now_ms, cutoff, &mut report)
                .await?;
            report.elapsed = started.elapsed();
            return Ok(report);
        }
        let pool = self.pool();

        let today = day_of(now_ms);
        let days: Vec<i64> = (today..=today + PARTITIONS_AHEAD_DAYS).collect();
        report.partitions_created = partitions::ensure_partitions(pool, "samples", &days).await?;
        self.inner
            .partition_days
            .lock()
            .expect("partition cache poisoned")
            .extend(
                days.iter()
                    .copied()
                    .filter(|&d| partitions::partitionable(d)),
            );

        report.partitions_dropped =
            partitions::drop_partitions_before(pool, "samples", first_kept_day).await?;
        {
            let mut known = self
                .inner
                .partition_days
                .lock()
                .expect("partition cache poisoned");
            known.retain(|&d| d >= first_kept_day);
        }
        for (table, column) in [
            ("samples_default", "ts"),
            ("sample_chunks", "start_ts"),
            ("samples_1m", "bucket"),
            ("samples_1h", "bucket"),
            ("column_profiles", "at"),
        ] {
            let deleted = sqlx::query(&format!(
                "DELETE FROM {table} WHERE {column} < {}",
                sql_ts(1)
            ))
            .bind(cutoff)
            .execute(pool)
            .await
            .context("deleting expired rows")?
            .rows_affected();
            report.expired_rows += deleted;
        }

        let lag_ms = i64::try_from(self.inner.cfg.rollup_lag.as_millis()).unwrap_or(i64::MAX);
        self.roll_up(now_ms.saturating_sub(lag_ms), &mut report)
            .await?;
        report.compaction = self
            .compact(
                now_ms,
                self.inner.cfg.compact_after,
                report.watermark_1m,
                cutoff,
            )
            .await?;

        report.elapsed = started.elapsed();
        if !report.partitions_created.is_empty() || !report.partitions_dropped.is_empty() {
            info!(
                created = ?report.partitions_created,
                dropped = ?report.partitions_dropped,
                "sample partitions changed"
            );
        }
        debug!(?report, "maintenance done");
        Ok(report)
    }

    /// Deletes series rows whose last sample is older than `cutoff` (their samples are gone or
    /// going with retention), so churning series (pod names, run ids) do not grow the registry
    /// without end, and forgets them in the cache so a series that comes back is registered
    /// again (under the same id, its hash). `last_seen` must be flushed first.
    ///
    /// A write that raced with this (a series silent for the whole retention that sends again
    /// during this statement) can leave its samples pointing at a deleted id until the series'
    /// next write registers it again; retention removes them if it never does.
    async fn expire_series(&self, cutoff: TimestampMs) -> Result<u64, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar(&format!(
            "DELETE FROM series WHERE last_seen < {} RETURNING id",
            sql_ts(1)
        ))
        .bind(cutoff)
        .fetch_all(self.pool())
        .await
        .context("deleting expired series")?;
        if !ids.is_empty() {
            info!(
                series = ids.len(),
                "deleted series not written within retention"
            );
            self.inner.series.forget(&ids.iter().copied().collect());
        }
        Ok(ids.len() as u64)
    }

    /// Rolls up to `until` (rounded down to whole minutes / hours). Minute buckets are
    /// computed in Rust from de-duplicated samples (compacted chunks and fresh rows, see
    /// [`crate::chunk`]) in steps of at most an hour of data, each in its own short
    /// transaction that holds the rollup lock exclusively, so writers' late-sample marks cannot
    /// interleave with a step and a large backfill is never one long transaction. The minute
    /// watermark advances with each step; the dirty range is cleared only when no writer
    /// widened it while the steps ran (else the next round does those minutes again).
    async fn roll_up(
        &self,
        until: TimestampMs,
        report: &mut MaintenanceReport,
    ) -> Result<(), StoreError> {
        // Claim the work under the lock: move the watermark to the target at once and mark
        // everything still to do as dirty, so queries read raw samples there until the steps
        // are done and a writer writing below the new watermark meanwhile marks its samples
        // (bumping `updated_at`, which tells the last step not to clear the dirty range).
        let (ranges_1m, planned_watermark, claimed_at) = {
            let mut tx = self.pool().begin().await.context("starting the rollup")?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(ROLLUP_LOCK_KEY)
                .execute(&mut *tx)
                .await
                .context("waiting for the rollup lock")?;
            let state = read_state(&mut tx, "1m").await?;
            let target = until.div_euclid(MINUTE_MS) * MINUTE_MS;
            let first_raw = if state.watermark.is_none() {
                let fresh = sqlx::query_scalar::<_, Option<i64>>(&format!(
                    "SELECT {} FROM samples",
                    sql_ms("min(ts)")
                ))
                .fetch_one(&mut *tx)
                .await
                .context("finding the earliest sample")?;
                let compacted = sqlx::query_scalar::<_, Option<i64>>(&format!(
                    "SELECT {} FROM sample_chunks",
                    sql_ms("min(first_ts)")
                ))
                .fetch_one(&mut *tx)
                .await
                .context("finding the earliest compacted sample")?;
                fresh.into_iter().chain(compacted).min()
            } else {
                None
            };
            let (ranges, watermark) = plan(&state, target, first_raw, MINUTE_MS);
            let dirty = ranges
                .iter()
                .map(|r| (r.start, r.end - 1))
                .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)));
            let claimed_at: String = sqlx::query_scalar(&format!(
                "UPDATE rollup_state SET watermark = {}, dirty_from = {}, dirty_to = {}, \
                   updated_at = clock_timestamp() WHERE name = '1m' RETURNING updated_at::text",
                sql_ts(1),
                sql_ts(2),
                sql_ts(3)
            ))
            .bind(watermark)
            .bind(dirty.map(|d| d.0))
            .bind(dirty.map(|d| d.1))
            .fetch_one(&mut *tx)
            .await
            .context("claiming the rollup")?;
            tx.commit().await.context("committing the rollup claim")?;
            (ranges, watermark, claimed_at)
        };

        for r in &ranges_1m {
            // Only the hours holding samples need work (an empty bucket has no rollup row);
            // one step per such hour.
            let hours = {
                let mut conn = self.pool().acquire().await.context("planning the rollup")?;
                hours_with_samples(&mut conn, r.clone()).await?
            };
            for hour in hours {
                let start = hour.max(r.start);
                let end = (hour + HOUR_MS).min(r.end);
                if start >= end {
                    continue;
                }
                let mut tx = self
                    .pool()
                    .begin()
                    .await
                    .context("starting a rollup step")?;
                report.rollup_1m_rows += reroll_minutes(&mut tx, start..end).await?;
                tx.commit().await.context("committing a rollup step")?;
            }
        }
        let watermark_1m = planned_watermark;

        let mut tx = self
            .pool()
            .begin()
            .await
            .context("starting the hour rollup")?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(ROLLUP_LOCK_KEY)
            .execute(&mut *tx)
            .await
            .context("waiting for the rollup lock")?;
        clear_dirty_if_unchanged(&mut tx, "1m", &claimed_at).await?;

        // Hour rollup from minute rollups: only hours whose minutes are all rolled up.
        let state = read_state(&mut tx, "1h").await?;
        let target = watermark_1m.map(|w| w.div_euclid(HOUR_MS) * HOUR_MS);
        let (ranges_1h, watermark_1h) = match target {
            None => (Vec::new(), state.watermark),
            Some(target) => {
                let first_minute = if state.watermark.is_none() {
                    sqlx::query_scalar::<_, Option<i64>>(&format!(
                        "SELECT {} FROM samples_1m",
                        sql_ms("min(bucket)")
                    ))
                    .fetch_one(&mut *tx)
                    .await
                    .context("finding the earliest minute rollup")?
                } else {
                    None
                };
                // Minutes re-rolled below the hour watermark make their hours dirty.
                let dirty = ranges_1m
                    .iter()
                    .filter_map(|r| {
                        let w = state.watermark?;
                        (r.start < w).then(|| (r.start, r.end.min(w) - 1))
                    })
                    .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)));
                let state = RollupState {
                    watermark: state.watermark,
                    dirty,
                };
                plan(&state, target, first_minute, HOUR_MS)
            }
        };
        for r in &ranges_1h {
            report.rollup_1h_rows += reroll(
                &mut tx,
                "samples_1h",
                &format!(
                    "SELECT series_id, date_bin(interval '1 hour', bucket, timestamptz 'epoch'), sum(count)::bigint, \
                       sum(sum), min(min), max(max), (array_agg(last ORDER BY last_ts DESC, last DESC))[1], max(last_ts) \
                     FROM samples_1m WHERE bucket >= {} AND bucket < {} GROUP BY 1, 2",
                    sql_ts(1),
                    sql_ts(2)
                ),
                r,
            )
            .await?;
        }
        write_state(&mut tx, "1h", watermark_1h).await?;
        tx.commit().await.context("committing the rollup")?;
        report.watermark_1m = watermark_1m;
        report.watermark_1h = watermark_1h;
        Ok(())
    }
}

/// Replaces the minute rollups of `range` with ones computed from the de-duplicated samples
/// in it; returns the rows written.
async fn reroll_minutes(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    range: Range<TimestampMs>,
) -> Result<u64, StoreError> {
    let samples = merged_samples(tx, None, range.start, range.end - 1).await?;
    clear_buckets(tx, "samples_1m", &range).await?;
    let rows: Vec<(i64, bucket::Rollup)> = samples
        .iter()
        .flat_map(|(id, s)| bucket::rollups(s, MINUTE_MS).into_iter().map(|r| (*id, r)))
        .collect();
    if rows.is_empty() {
        return Ok(0);
    }
    let col = |f: fn(&bucket::Rollup) -> f64| rows.iter().map(|(_, r)| f(r)).collect::<Vec<f64>>();
    let inserted = sqlx::query(
        "INSERT INTO samples_1m (series_id, bucket, count, sum, min, max, last, last_ts) \
         SELECT id, to_timestamp(b::float8 / 1000), c, s, mi, ma, l, to_timestamp(lt::float8 / 1000) \
         FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::float8[], $5::float8[], \
           $6::float8[], $7::float8[], $8::bigint[]) AS t(id, b, c, s, mi, ma, l, lt)",
    )
    .bind(rows.iter().map(|(id, _)| *id).collect::<Vec<i64>>())
    .bind(rows.iter().map(|(_, r)| r.bucket).collect::<Vec<i64>>())
    .bind(rows.iter().map(|(_, r)| r.count).collect::<Vec<i64>>())
    .bind(col(|r| r.sum))
    .bind(col(|r| r.min))
    .bind(col(|r| r.max))
    .bind(col(|r| r.last))
    .bind(rows.iter().map(|(_, r)| r.last_ts).collect::<Vec<i64>>())
    .execute(&mut **tx)
    .await
    .context("writing minute rollups")?
    .rows_affected();
    Ok(inserted)
}

/// Clears the dirty range of `name` unless a writer marked late samples since the claim
/// (`updated_at` as the claim returned it).
pub(crate) async fn clear_dirty_if_unchanged(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    name: &str,
    claimed_at: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE rollup_state SET dirty_from = NULL, dirty_to = NULL \
         WHERE name = $1 AND updated_at::text = $2",
    )
    .bind(name)
    .bind(claimed_at)
    .execute(&mut **tx)
    .await
    .context("clearing the dirty range")?;
    Ok(())
}

/// Which bucket ranges to (re)compute and the new watermark. `first` is the earliest source
/// time, needed only before the first rollup. The watermark never moves backwards.
fn plan(
    state: &RollupState,
    target: TimestampMs,
    first: Option<TimestampMs>,
    bucket_ms: i64,
) -> (Vec<Range<TimestampMs>>, Option<TimestampMs>) {
    let floor = |t: i64| t.div_euclid(bucket_ms) * bucket_ms;
    let mut ranges = Vec::new();
    let watermark = match state.watermark {
        None => {
            if let Some(first) = first {
                if floor(first) < target {
                    ranges.push(floor(first)..target);
                }
            }
            Some(target)
        }
        Some(w) => {
            if target > w {
                ranges.push(w..target);
            }
            if let Some((from, to)) = state.dirty {
                let dirty = floor(from)..(floor(to) + bucket_ms).min(w);
                if dirty.start < dirty.end {
                    ranges.push(dirty);
                }
            }
            Some(w.max(target))
        }
    };
    (merge(ranges), watermark)
}

fn merge(mut ranges: Vec<Range<TimestampMs>>) -> Vec<Range<TimestampMs>> {
    ranges.sort_by_key(|r| r.start);
    let mut out: Vec<Range<TimestampMs>> = Vec::new();
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

pub(crate) async fn read_state(
    conn: &mut sqlx::PgConnection,
    name: &str,
) -> Result<RollupState, StoreError> {
    let (watermark, dirty_from, dirty_to): (Option<i64>, Option<i64>, Option<i64>) =
        sqlx::query_as(&format!(
            "SELECT {}, {}, {} FROM rollup_state WHERE name = $1",
            sql_ms("watermark"),
            sql_ms("dirty_from"),
            sql_ms("dirty_to")
        ))
        .bind(name)
        .fetch_one(conn)
        .await
        .context("reading rollup state")?;
    Ok(RollupState {
        watermark,
        dirty: dirty_from.zip(dirty_to.or(dirty_from)),
    })
}

async fn write_state(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    name: &str,
    watermark: Option<TimestampMs>,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "UPDATE rollup_state SET watermark = {}, dirty_from = NULL, dirty_to = NULL, updated_at = now() \
         WHERE name = $2",
        sql_ts(1)
    ))
    .bind(watermark)
    .bind(name)
    .execute(&mut **tx)
    .await
    .context("saving rollup state")?;
    Ok(())
}

/// Deletes the rollup rows of `table` in `range`, before they are computed again.
async fn clear_buckets(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    table: &str,
    range: &Range<TimestampMs>,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "DELETE FROM {table} WHERE bucket >= {} AND bucket < {}",
        sql_ts(1),
        sql_ts(2)
    ))
    .bind(range.start)
    .bind(range.end)
    .execute(&mut **tx)
    .await
    .context("clearing rollup buckets")?;
    Ok(())
}

/// Replaces the rollup rows of `range` with `select` (which takes the range as $1, $2).
async fn reroll(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    table: &str,
    select: &str,
    range: &Range<TimestampMs>,
) -> Result<u64, StoreError> {
    clear_buckets(tx, table, range).await?;
    let inserted = sqlx::query(&format!(
        "INSERT INTO {table} (series_id, bucket, count, sum, min, max, last, last_ts) {select}"
    ))
    .bind(range.start)
    .bind(range.end)
    .execute(&mut **tx)
    .await
    .context("computing rollup buckets")?
    .rows_affected();
    Ok(inserted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_rollup_starts_at_the_earliest_sample() {
        let s = RollupState {
            watermark: None,
            dirty: None,
        };
        let (ranges, w) = plan(&s, 600_000, Some(123_456), MINUTE_MS);
        assert_eq!(ranges, vec![120_000..600_000]);
        assert_eq!(w, Some(600_000));
    }

    #[test]
    fn dirty_range_below_the_watermark_is_rerolled_with_the_new_range() {
        let s = RollupState {
            watermark: Some(600_000),
            dirty: Some((61_000, 61_000)),
        };
        let (ranges, w) = plan(&s, 720_000, None, MINUTE_MS);
        assert_eq!(ranges, vec![60_000..120_000, 600_000..720_000]);
        assert_eq!(w, Some(720_000));
    }

    #[test]
    fn watermark_never_moves_backwards() {
        let s = RollupState {
            watermark: Some(600_000),
            dirty: None,
        };
        let (ranges, w) = plan(&s, 300_000, None, MINUTE_MS);
        assert!(ranges.is_empty());
        assert_eq!(w, Some(600_000));
    }

    #[test]
    fn overlapping_ranges_merge() {
        assert_eq!(merge(vec![5..9, 0..3, 2..6, 10..11]), vec![0..9, 10..11]);
    }
}
