//! Housekeeping run every ~30 s by the server: last_seen of series, partitions ahead of time,
//! rollups of complete buckets (re-rolling buckets that late samples landed in), and retention
//! of samples, rollups and of series rows nobody wrote to within retention.

use crate::bucket;
use crate::compaction::{hours_with_samples, merged_samples};
use crate::error::{DbContext, StoreError};
use crate::partitions::{self, day_of, DAY_MS, HOUR_MS};
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
    /// Rollup rows (re)written. Always 0 for minutes: plain mode stores no minute rollup
    /// (minute buckets are computed on read, migration 0094).
    pub rollup_1m_rows: u64,
    pub rollup_1h_rows: u64,
    /// Every sample before this instant is reflected in the rollup (None: nothing rolled up
    /// yet, or TimescaleDB mode, where continuous aggregates do this). Both are the hour
    /// rollup's in plain mode, whole hours: minute buckets need no rollup to be complete.
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
    /// rolls complete hours up to `now_ms - rollup_lag` into `samples_1h` (re-rolling hours
    /// that late samples landed in; minute buckets are computed on read), compacts closed
    /// hours, and drops data older than `retention_days`. In TimescaleDB mode, chunks replace
    /// partitions and compaction, and this refreshes the continuous aggregates and drops
    /// expired chunks instead (see [`crate::timescale`]).
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

    /// Rolls whole hours up to `until` (rounded down to an hour) into `samples_1h`, and again
    /// the hours late samples landed in. Minute buckets are not stored in this mode: range
    /// queries compute them on read from the samples (migration 0094), which costs no more
    /// than reading a row-per-minute table did and saves the table that was most of the
    /// database's bytes per sample.
    ///
    /// Hour rollups are computed in Rust from de-duplicated samples (compacted chunks and
    /// fresh rows, see [`crate::chunk`]), one step per hour holding samples, each its own short
    /// transaction, so a large backfill is never one long transaction. Progress is tracked on
    /// the `rollup_state` row '1m' (the row writers mark late samples on; its watermark is
    /// whole hours now) and mirrored on '1h', which readers of hour steps consult.
    async fn roll_up(
        &self,
        until: TimestampMs,
        report: &mut MaintenanceReport,
    ) -> Result<(), StoreError> {
        // Claim the work under the lock: move the watermark to the target at once and mark
        // everything still to do as dirty, so queries read raw samples there until the steps
        // are done and a writer writing below the new watermark meanwhile marks its samples
        // (bumping `updated_at`, which tells the end of the round not to clear the dirty range).
        let (ranges, planned_watermark, claimed_at) = {
            let mut tx = self.pool().begin().await.context("starting the rollup")?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(ROLLUP_LOCK_KEY)
                .execute(&mut *tx)
                .await
                .context("waiting for the rollup lock")?;
            let state = read_state(&mut tx, "1m").await?;
            let target = until.div_euclid(HOUR_MS) * HOUR_MS;
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
            let (ranges, watermark) = plan(&state, target, first_raw, HOUR_MS);
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
            // Readers of hour steps take the '1h' watermark, lowered to the dirty range of
            // '1m', which covers everything claimed until the steps are done.
            write_state(&mut tx, "1h", watermark).await?;
            tx.commit().await.context("committing the rollup claim")?;
            (ranges, watermark, claimed_at)
        };

        for r in &ranges {
            // Only the hours holding samples need work (an empty bucket has no rollup row).
            let hours = {
                let mut conn = self.pool().acquire().await.context("planning the rollup")?;
                hours_with_samples(&mut conn, r.clone()).await?
            };
            for hour in hours.into_iter().filter(|h| r.contains(h)) {
                let step = Instant::now();
                let mut tx = self
                    .pool()
                    .begin()
                    .await
                    .context("starting a rollup step")?;
                let rows = reroll_hour(&mut tx, hour).await?;
                tx.commit().await.context("committing a rollup step")?;
                report.rollup_1h_rows += rows;
                debug!(
                    hour,
                    rows,
                    elapsed_ms = step.elapsed().as_millis() as u64,
                    "rollup step"
                );
            }
        }

        let mut tx = self.pool().begin().await.context("ending the rollup")?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(ROLLUP_LOCK_KEY)
            .execute(&mut *tx)
            .await
            .context("waiting for the rollup lock")?;
        clear_dirty_if_unchanged(&mut tx, "1m", &claimed_at).await?;
        tx.commit().await.context("ending the rollup")?;
        report.watermark_1m = planned_watermark;
        report.watermark_1h = planned_watermark;
        Ok(())
    }
}

/// Replaces the hour rollups of the hour starting at `hour` with ones computed from its
/// de-duplicated samples; returns the rows written. Rows are upserted by (series, bucket): a
/// series' samples of an hour only ever grow until retention deletes the hour whole, so no
/// series loses its row here.
async fn reroll_hour(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    hour: TimestampMs,
) -> Result<u64, StoreError> {
    let samples = merged_samples(tx, None, hour, hour + HOUR_MS - 1).await?;
    let rows: Vec<(i64, bucket::Rollup)> = samples
        .iter()
        .flat_map(|(id, s)| bucket::rollups(s, HOUR_MS).into_iter().map(|r| (*id, r)))
        .collect();
    if rows.is_empty() {
        return Ok(0);
    }
    let col = |f: fn(&bucket::Rollup) -> f64| rows.iter().map(|(_, r)| f(r)).collect::<Vec<f64>>();
    let written = sqlx::query(
        "INSERT INTO samples_1h (series_id, bucket, count, sum, min, max, last, last_ts) \
         SELECT id, to_timestamp(b::float8 / 1000), c, s, mi, ma, l, to_timestamp(lt::float8 / 1000) \
         FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::float8[], $5::float8[], \
           $6::float8[], $7::float8[], $8::bigint[]) AS t(id, b, c, s, mi, ma, l, lt) \
         ON CONFLICT (series_id, bucket) DO UPDATE SET count = EXCLUDED.count, sum = EXCLUDED.sum, \
           min = EXCLUDED.min, max = EXCLUDED.max, last = EXCLUDED.last, last_ts = EXCLUDED.last_ts",
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
    .context("writing hour rollups")?
    .rows_affected();
    Ok(written)
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
                // Floored: a watermark set at a finer width by an earlier version (the minute
                // rollup's) starts its bucket again.
                ranges.push(floor(w)..target);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partitions::MINUTE_MS;

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
    fn a_watermark_inside_a_bucket_starts_that_bucket_again() {
        // The minute rollup's watermark, left by an earlier version, under hour buckets.
        let s = RollupState {
            watermark: Some(HOUR_MS + 17 * MINUTE_MS),
            dirty: None,
        };
        let (ranges, w) = plan(&s, 3 * HOUR_MS, None, HOUR_MS);
        assert_eq!(ranges, vec![HOUR_MS..3 * HOUR_MS]);
        assert_eq!(w, Some(3 * HOUR_MS));
    }

    #[test]
    fn overlapping_ranges_merge() {
        assert_eq!(merge(vec![5..9, 0..3, 2..6, 10..11]), vec![0..9, 10..11]);
    }
}
