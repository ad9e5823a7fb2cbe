//! TimescaleDB mode: what replaces the plain mode's partitions, compaction and rollup tables.
//!
//! Tested against PostgreSQL 15.18 + TimescaleDB 2.28.3 (the README says how to run the
//! suite in this mode). Samples are a hypertable with daily chunks, compressed by
//! TimescaleDB's compression policy; `samples_1m` and `samples_1h` are continuous aggregates
//! (migration 0095). What differs from a stock TimescaleDB set-up, and why:
//!
//! * **Rollups are refreshed by [`Store::maintain`], not by refresh policies.** A policy
//!   refreshes only a window behind `now()`, so samples written below it (backfill, late OTLP,
//!   a replay) never reached the aggregate. Here the rollups keep the plain mode's
//!   `rollup_state` rows: writers mark samples written below the watermark (the dirty range),
//!   maintenance refreshes the new minutes plus the dirty range with
//!   `refresh_continuous_aggregate`, and reads take raw samples from the dirty range up, so a
//!   query never misses an accepted sample. No refresh policy exists, so changing
//!   `rollup_lag` cannot make start-up fail on overlapping policy windows.
//! * **Duplicates are resolved at read.** A re-sent sample is a second row (the hypertable
//!   keeps COPY's speed and has no unique index), and an aggregate cannot keep one sample per
//!   timestamp. It records `distinct_ts` beside `count`; a bucket where they differ is
//!   computed from de-duplicated raw samples ([`crate::chunk`]'s rule: the larger value wins),
//!   so both modes give the same answer.
//! * **Retention is `drop_chunks` from maintenance** on the hypertable and both aggregates
//!   (daily chunks all three) with the plain mode's day-aligned cutoff, so raw samples and
//!   their rollups expire together, on maintenance's clock, and never at different times.

use crate::bucket;
use crate::compaction::merged_samples;
use crate::error::{DbContext, StoreError};
use crate::maintenance::{clear_dirty_if_unchanged, read_state, MaintenanceReport};
use crate::partitions::{DAY_MS, HOUR_MS, MINUTE_MS};
use crate::writer::ROLLUP_LOCK_KEY;
use crate::{sql_ms, sql_ts, Store, StoreConfig};
use model::{Aggregation, TimestampMs};
use sqlx::PgPool;
use std::collections::{BTreeSet, HashMap, HashSet};

/// The first TimescaleDB with `timescaledb.chunk_interval` for continuous aggregates, which
/// migration 0095 sets.
const CAGG_CHUNK_INTERVAL_SINCE: (u32, u32) = (2, 18);

/// The TimescaleDB version a database has, or would get from `CREATE EXTENSION` (migration
/// 0001 creates it when it can), as (major, minor); `None` without TimescaleDB.
async fn timescaledb_version(pool: &PgPool) -> Result<Option<(u32, u32)>, StoreError> {
    let v: Option<String> = sqlx::query_scalar(
        "SELECT coalesce(\
           (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'),\
           (SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'))",
    )
    .fetch_one(pool)
    .await
    .context("reading the TimescaleDB version")?;
    Ok(v.and_then(|v| {
        let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
        Some((parts.next()??, parts.next()??))
    }))
}

/// The migrations to run when the server's TimescaleDB needs something else than `embedded`
/// (`None`: run those). Before 2.18 a continuous aggregate takes no `timescaledb.chunk_interval`:
/// migration 0095 then runs without it and sets the aggregates' materialisation chunks to one
/// day afterwards (what the option does). The migration keeps its checksum, so the database
/// records 0095 as applied either way and a later TimescaleDB upgrade finds nothing changed.
/// (`Migrator`'s fields are public but semver-exempt in sqlx; sqlx is pinned by Cargo.lock.)
pub(crate) async fn migrations_for(
    pool: &PgPool,
    embedded: &sqlx::migrate::Migrator,
) -> Result<Option<sqlx::migrate::Migrator>, StoreError> {
    let Some(version) = timescaledb_version(pool).await? else {
        return Ok(None);
    };
    if version >= CAGG_CHUNK_INTERVAL_SINCE {
        return Ok(None);
    }
    const OPTION: &str = ", timescaledb.chunk_interval = '1 day'";
    let mut migrations = embedded.migrations.to_vec();
    let Some(m) = migrations.iter_mut().find(|m| m.version == 95) else {
        return Ok(None);
    };
    if m.sql.matches(OPTION).count() != 2 {
        return Err(StoreError::Corrupt(format!(
            "migration 0095 is not the one TimescaleDB {}.{} support was written for",
            version.0, version.1
        )));
    }
    m.sql = format!(
        "{}\n{}",
        m.sql.replace(OPTION, ""),
        r#"DO $compat$
BEGIN
    IF (SELECT mode FROM storage_mode) = 'timescaledb' THEN
        PERFORM set_chunk_time_interval(
            format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name)::regclass,
            INTERVAL '1 day')
        FROM timescaledb_information.continuous_aggregates
        WHERE view_name IN ('samples_1m', 'samples_1h');
    END IF;
END
$compat$;"#
    )
    .into();
    Ok(Some(sqlx::migrate::Migrator {
        migrations: migrations.into(),
        ignore_missing: embedded.ignore_missing,
        locking: embedded.locking,
        no_tx: embedded.no_tx,
    }))
}
use std::ops::Range;
use tracing::info;

/// Applies the TimescaleDB policies at connect. Idempotent and safe under config changes:
/// the compression policy takes no setting from the config, and policies of earlier versions
/// (aggregate refresh and raw retention, now done by maintenance) are removed when present.
pub(crate) async fn apply_policies(pool: &PgPool, cfg: &StoreConfig) -> Result<(), StoreError> {
    let statements = [
        // Chunks older than a day are compressed (segment by series, order by time: 0002).
        "SELECT add_compression_policy('samples', INTERVAL '1 day', if_not_exists => true)",
        "SELECT remove_retention_policy('samples', if_exists => true)",
        "SELECT remove_continuous_aggregate_policy('samples_1m', if_exists => true)",
        "SELECT remove_continuous_aggregate_policy('samples_1h', if_exists => true)",
    ];
    for sql in statements {
        sqlx::query(sql)
            .execute(pool)
            .await
            .context("applying TimescaleDB policies")?;
    }
    info!(
        retention_days = cfg.retention_days,
        "TimescaleDB policies applied (compression; rollups and retention run in maintenance)"
    );
    Ok(())
}

impl Store {
    /// [`Store::maintain`]'s TimescaleDB part, after last_seen and series expiry: retention
    /// before `cutoff` (day-aligned), then the rollup refresh up to `now_ms - rollup_lag`.
    pub(crate) async fn maintain_timescaledb(
        &self,
        now_ms: TimestampMs,
        cutoff: TimestampMs,
        report: &mut MaintenanceReport,
    ) -> Result<(), StoreError> {
        for table in ["samples", "samples_1m", "samples_1h"] {
            let dropped: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT c::text FROM drop_chunks('{table}', older_than => {}) AS c",
                sql_ts(1)
            ))
            .bind(cutoff)
            .fetch_all(self.pool())
            .await
            .context("dropping expired chunks")?;
            if table == "samples" {
                report.partitions_dropped.extend(dropped);
            }
        }
        report.expired_rows += sqlx::query(&format!(
            "DELETE FROM column_profiles WHERE at < {}",
            sql_ts(1)
        ))
        .bind(cutoff)
        .execute(self.pool())
        .await
        .context("deleting expired rows")?
        .rows_affected();
        if !report.partitions_dropped.is_empty() {
            info!(dropped = ?report.partitions_dropped, "expired sample chunks dropped");
        }

        let lag_ms = i64::try_from(self.config().rollup_lag.as_millis()).unwrap_or(i64::MAX);
        self.refresh_rollups(now_ms.saturating_sub(lag_ms), report)
            .await
    }

    /// Refreshes the aggregates up to `until` (whole minutes; whole hours for `samples_1h`)
    /// and in the dirty range. The claim, the steps and the final clear follow the plain
    /// mode's rollup (see `maintenance.rs`): the watermark moves at once under the rollup
    /// lock with everything still to do marked dirty, so reads take raw samples there until
    /// the refresh is done, and the dirty range is cleared only if no writer widened it
    /// meanwhile. `refresh_continuous_aggregate` cannot run in a transaction, so each range is
    /// its own statement, a day of data at most (a backfill is many bounded refreshes, as
    /// the plain mode's rollup works in steps). A refresh does not say how many rows it wrote, so the report counts
    /// the rows in the refreshed ranges.
    async fn refresh_rollups(
        &self,
        until: TimestampMs,
        report: &mut MaintenanceReport,
    ) -> Result<(), StoreError> {
        let (ranges, watermark_1m, claimed_at, old_1h) = {
            let mut tx = self.pool().begin().await.context("starting the rollup")?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(ROLLUP_LOCK_KEY)
                .execute(&mut *tx)
                .await
                .context("waiting for the rollup lock")?;
            let state = read_state(&mut tx, "1m").await?;
            let old_1h = read_state(&mut tx, "1h").await?.watermark;
            let target = until.div_euclid(MINUTE_MS) * MINUTE_MS;
            let first = match state.watermark {
                None => sqlx::query_scalar::<_, Option<i64>>(&format!(
                    "SELECT {} FROM samples",
                    sql_ms("min(ts)")
                ))
                .fetch_one(&mut *tx)
                .await
                .context("finding the earliest sample")?,
                Some(_) => None,
            };
            let (ranges, watermark) = plan_minutes(state.watermark, state.dirty, target, first);
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
            (ranges, watermark, claimed_at, old_1h)
        };

        let watermark_1h = watermark_1m
            .map(|w| w.div_euclid(HOUR_MS) * HOUR_MS)
            .max(old_1h);
        for r in ranges.iter().flat_map(|r| days(r.clone())) {
            report.rollup_1m_rows += self.refresh("samples_1m", &r).await?;
        }
        // The hours the refreshed minutes lie in, up to the hour watermark: an hour above it
        // is refreshed once its last minute is (its range then starts inside it).
        let hours: Vec<Range<TimestampMs>> = ranges
            .iter()
            .filter_map(|r| {
                let end = watermark_1h?.min(ceil(r.end, HOUR_MS));
                let start = r.start.div_euclid(HOUR_MS) * HOUR_MS;
                (start < end).then_some(start..end)
            })
            .collect();
        for r in merge(hours).into_iter().flat_map(days) {
            report.rollup_1h_rows += self.refresh("samples_1h", &r).await?;
        }

        let mut tx = self.pool().begin().await.context("ending the rollup")?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(ROLLUP_LOCK_KEY)
            .execute(&mut *tx)
            .await
            .context("waiting for the rollup lock")?;
        clear_dirty_if_unchanged(&mut tx, "1m", &claimed_at).await?;
        sqlx::query(&format!(
            "UPDATE rollup_state SET watermark = {}, dirty_from = NULL, dirty_to = NULL, \
               updated_at = clock_timestamp() WHERE name = '1h'",
            sql_ts(1)
        ))
        .bind(watermark_1h)
        .execute(&mut *tx)
        .await
        .context("saving the hour rollup's watermark")?;
        tx.commit().await.context("committing the rollup")?;
        report.watermark_1m = watermark_1m;
        report.watermark_1h = watermark_1h;
        Ok(())
    }

    /// Refreshes `aggregate` over `range`; returns its rows there afterwards.
    async fn refresh(
        &self,
        aggregate: &str,
        range: &Range<TimestampMs>,
    ) -> Result<u64, StoreError> {
        sqlx::query(&format!(
            "CALL refresh_continuous_aggregate('{aggregate}', {}, {})",
            sql_ts(1),
            sql_ts(2)
        ))
        .bind(range.start)
        .bind(range.end)
        .execute(self.pool())
        .await
        .context("refreshing a continuous aggregate")?;
        let rows: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {aggregate} WHERE bucket >= {} AND bucket < {}",
            sql_ts(1),
            sql_ts(2)
        ))
        .bind(range.start)
        .bind(range.end)
        .fetch_one(self.pool())
        .await
        .context("counting refreshed rollup rows")?;
        Ok(rows as u64)
    }

    /// Points of the buckets `[from, to)` (aligned to `step_ms`) read from a continuous
    /// aggregate, appended per series in time order. A bucket whose rows hold duplicate
    /// timestamps (`count <> distinct_ts`) is computed from de-duplicated raw samples instead,
    /// so it has the value the raw path and the plain mode give.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn timescale_buckets(
        &self,
        points: &mut HashMap<i64, Vec<(TimestampMs, f64)>>,
        table: &str,
        aggregate: &str,
        aggregation: Aggregation,
        ids: &[i64],
        step_ms: i64,
        from: TimestampMs,
        to: TimestampMs,
    ) -> Result<(), StoreError> {
        let bucket = "date_bin($2::bigint * interval '1 millisecond', bucket, timestamptz 'epoch')";
        let sql = format!(
            "SELECT series_id, {} AS b, {aggregate} AS v, bool_or(count <> distinct_ts) AS dup \
             FROM {table} WHERE series_id = ANY($1) AND bucket >= {} AND bucket < {} \
             GROUP BY series_id, {bucket} ORDER BY series_id, {bucket}",
            sql_ms(bucket),
            sql_ts(3),
            sql_ts(4),
        );
        let rows: Vec<(i64, i64, f64, bool)> = sqlx::query_as(&sql)
            .bind(ids)
            .bind(step_ms)
            .bind(from)
            .bind(to)
            .fetch_all(self.read_pool())
            .await
            .context("querying a range")?;
        // Where each duplicate bucket's point goes, filled from raw samples below.
        let mut dups: HashMap<(i64, TimestampMs), usize> = HashMap::new();
        for (id, b, v, dup) in rows {
            let series = points.entry(id).or_default();
            if dup {
                dups.insert((id, b), series.len());
            }
            series.push((b, v));
        }
        if dups.is_empty() {
            return Ok(());
        }
        // One raw read per run of adjacent duplicate buckets, for the series that have one.
        let buckets: BTreeSet<TimestampMs> = dups.keys().map(|k| k.1).collect();
        let mut runs: Vec<Range<TimestampMs>> = Vec::new();
        for b in buckets {
            match runs.last_mut() {
                Some(r) if r.end == b => r.end = b + step_ms,
                _ => runs.push(b..b + step_ms),
            }
        }
        let mut conn = self
            .read_pool()
            .acquire()
            .await
            .context("starting a read")?;
        for run in runs {
            let run_ids: Vec<i64> = dups
                .keys()
                .filter(|(_, b)| run.contains(b))
                .map(|(id, _)| *id)
                .collect::<HashSet<i64>>()
                .into_iter()
                .collect();
            let raw = merged_samples(&mut conn, Some(&run_ids), run.start, run.end - 1).await?;
            for (id, samples) in raw {
                for (b, v) in bucket::points(&samples, step_ms, aggregation) {
                    if let Some(&index) = dups.get(&(id, b)) {
                        if let Some(point) = points.get_mut(&id).and_then(|p| p.get_mut(index)) {
                            *point = (b, v);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// `range` cut at UTC day boundaries.
fn days(range: Range<TimestampMs>) -> Vec<Range<TimestampMs>> {
    let mut out = Vec::new();
    let mut start = range.start;
    while start < range.end {
        let end = (start.div_euclid(DAY_MS) * DAY_MS + DAY_MS).min(range.end);
        out.push(start..end);
        start = end;
    }
    out
}

fn ceil(t: TimestampMs, unit: i64) -> TimestampMs {
    (t + unit - 1).div_euclid(unit) * unit
}

/// The minute ranges to refresh and the new minute watermark: from the old watermark (or
/// the earliest sample, the first time) to `target`, plus the dirty range below the old
/// watermark. The watermark never moves backwards.
fn plan_minutes(
    watermark: Option<TimestampMs>,
    dirty: Option<(TimestampMs, TimestampMs)>,
    target: TimestampMs,
    first: Option<TimestampMs>,
) -> (Vec<Range<TimestampMs>>, Option<TimestampMs>) {
    let floor = |t: i64| t.div_euclid(MINUTE_MS) * MINUTE_MS;
    let mut ranges = Vec::new();
    let from = watermark.or(first.map(floor));
    if let Some(from) = from {
        if from < target {
            ranges.push(from..target);
        }
    }
    if let (Some(w), Some((a, b))) = (watermark, dirty) {
        let r = floor(a)..(floor(b) + MINUTE_MS).min(w);
        if r.start < r.end {
            ranges.push(r);
        }
    }
    let new = match watermark {
        Some(w) => w.max(target),
        None => target,
    };
    (merge(ranges), Some(new))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_refresh_starts_at_the_earliest_sample() {
        let (ranges, w) = plan_minutes(None, None, 600_000, Some(123_456));
        assert_eq!(ranges, vec![120_000..600_000]);
        assert_eq!(w, Some(600_000));
    }

    #[test]
    fn dirty_minutes_below_the_watermark_are_refreshed_with_the_new_ones() {
        let (ranges, w) = plan_minutes(Some(600_000), Some((61_000, 61_000)), 720_000, None);
        assert_eq!(ranges, vec![60_000..120_000, 600_000..720_000]);
        assert_eq!(w, Some(720_000));
    }

    #[test]
    fn refreshes_are_cut_at_day_boundaries() {
        let d = DAY_MS;
        assert_eq!(
            days(d - 60_000..2 * d + 60_000),
            vec![d - 60_000..d, d..2 * d, 2 * d..2 * d + 60_000]
        );
        assert_eq!(days(5..5), Vec::<Range<i64>>::new());
    }

    #[test]
    fn the_watermark_never_moves_backwards() {
        let (ranges, w) = plan_minutes(Some(600_000), None, 300_000, None);
        assert!(ranges.is_empty());
        assert_eq!(w, Some(600_000));
    }
}
