//! Reading samples across the two parts of the layout, and compacting fresh rows into chunks.
//!
//! See [`crate::chunk`] for the layout and the one-sample-per-timestamp rule. Compaction runs
//! in maintenance, in bounded steps: each step takes one closed hour (or a slice of its series
//! when the hour holds more than [`STEP_ROWS`] rows) in its own `REPEATABLE READ` transaction
//! that reads the hour's fresh rows and existing chunks, writes the merged chunks and deletes
//! exactly the fresh rows it read (rows committed meanwhile are not in its snapshot, so they
//! stay fresh). A reader sees the hour before or after the step, never half of it, and a
//! step that fails leaves its rows fresh and readable; nothing depends on compaction having
//! run except speed and size.
//!
//! Which hours to compact is tracked like the rollups (`rollup_state` row `compact`): a
//! watermark below which every hour has been compacted, and a dirty range that writers widen
//! when they write below it (late or re-sent samples).

use crate::chunk::{self, CHUNK_MS};
use crate::error::{DbContext, StoreError};
use crate::maintenance::{read_state, RollupState};
use crate::writer::ROLLUP_LOCK_KEY;
use crate::{sql_ms, sql_ts, Store};
use model::TimestampMs;
use sqlx::PgConnection;
use std::collections::HashMap;
use std::ops::Range;
use std::time::{Duration, Instant};
use tracing::{debug, info};

/// Fresh rows one compaction step reads at most (about 40 MB of memory while it runs).
pub const STEP_ROWS: i64 = 1_000_000;

/// What one [`Store::compact`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompactionReport {
    /// Steps (hour or slice of an hour) that found fresh rows and committed.
    pub steps: u64,
    /// Fresh rows moved into chunks (re-sent duplicates included).
    pub rows: u64,
    /// Chunk rows written (new or rewritten).
    pub chunks: u64,
    /// Every hour before this instant has been compacted.
    pub watermark: Option<TimestampMs>,
    pub elapsed: Duration,
}

/// Samples of `ids` (every series when None) with `mint <= t <= maxt`, from chunks and fresh
/// rows, one per timestamp (the larger value wins, see [`crate::chunk`]), sorted by time.
pub(crate) async fn merged_samples(
    conn: &mut PgConnection,
    ids: Option<&[i64]>,
    mint: TimestampMs,
    maxt: TimestampMs,
) -> Result<HashMap<i64, Vec<(TimestampMs, f64)>>, StoreError> {
    let mut out: HashMap<i64, Vec<(TimestampMs, f64)>> = HashMap::new();
    // Years 1 to 9999, which `to_timestamp` converts without error.
    let (mint, maxt) = match crate::read::clamp_range(Some((mint, maxt))) {
        (Some(a), Some(b)) => (a, b),
        _ => unreachable!("clamp_range keeps a given range"),
    };
    if maxt < mint {
        return Ok(out);
    }
    // The id filter is the last parameter, bound only when given.
    let filter = |param: usize| match ids {
        Some(_) => format!("series_id = ANY(${param}) AND "),
        None => String::new(),
    };
    // Order matters, because a compaction step may commit between these statements: the
    // compaction state first (below its watermark, fresh rows exist only in the dirty range,
    // which a claim widens before its steps run), then the fresh rows, then the chunks. A step
    // committing in between moves rows from fresh to chunks, so they are read twice (and
    // de-duplicated) rather than not at all.
    let RollupState { watermark, dirty } = read_state(&mut *conn, "compact").await?;
    let sql = format!(
        "SELECT series_id, {} AS t, value FROM samples WHERE {}ts >= {} AND ts <= {}",
        sql_ms("ts"),
        filter(3),
        sql_ts(1),
        sql_ts(2)
    );
    for (from, to) in fresh_ranges(mint, maxt, watermark, dirty) {
        let query = sqlx::query_as(&sql).bind(from).bind(to);
        let query = match ids {
            Some(ids) => query.bind(ids),
            None => query,
        };
        let fresh: Vec<(i64, i64, f64)> = query
            .fetch_all(&mut *conn)
            .await
            .context("reading fresh samples")?;
        for (id, t, v) in fresh {
            out.entry(id).or_default().push((t, v));
        }
    }
    let sql = format!(
        "SELECT series_id, n, ts_data, val_data FROM sample_chunks \
         WHERE {}start_ts >= {} AND start_ts <= {} AND last_ts >= {} AND first_ts <= {}",
        filter(4),
        sql_ts(1),
        sql_ts(2),
        sql_ts(3),
        sql_ts(2)
    );
    let query = sqlx::query_as(&sql)
        .bind(chunk::chunk_start(mint))
        .bind(maxt)
        .bind(mint);
    let query = match ids {
        Some(ids) => query.bind(ids),
        None => query,
    };
    let chunks: Vec<(i64, i32, Vec<u8>, Vec<u8>)> = query
        .fetch_all(&mut *conn)
        .await
        .context("reading compacted samples")?;
    for (id, n, ts, vals) in chunks {
        let samples = chunk::decode(n, &ts, &vals)
            .map_err(|e| StoreError::Corrupt(format!("series {id}: {e}")))?;
        out.entry(id).or_default().extend(
            samples
                .into_iter()
                .filter(|(t, _)| (mint..=maxt).contains(t)),
        );
    }
    for samples in out.values_mut() {
        chunk::dedup(samples);
    }
    Ok(out)
}

/// The parts of `[mint, maxt]` (inclusive) where fresh rows can be: at or after the compaction
/// watermark, and inside the dirty range below it (every hour before the watermark outside
/// the dirty range has been compacted, so its fresh rows are gone). Skipping the rest keeps a
/// read of compacted hours from scanning the pages their deleted rows left behind.
fn fresh_ranges(
    mint: TimestampMs,
    maxt: TimestampMs,
    watermark: Option<TimestampMs>,
    dirty: Option<(TimestampMs, TimestampMs)>,
) -> Vec<(TimestampMs, TimestampMs)> {
    let Some(w) = watermark else {
        return vec![(mint, maxt)];
    };
    let mut out: Vec<(TimestampMs, TimestampMs)> = Vec::new();
    if let Some((df, dt)) = dirty {
        let (a, b) = (mint.max(df), maxt.min(dt).min(w - 1));
        if a <= b {
            out.push((a, b));
        }
    }
    let a = mint.max(w);
    if a <= maxt {
        match out.last_mut() {
            Some(last) if last.1 + 1 >= a => last.1 = maxt,
            _ => out.push((a, maxt)),
        }
    }
    out
}

/// The hours in `range` holding fresh rows, with their row counts, ascending (one scan of
/// the range through the BRIN on time).
pub(crate) async fn fresh_hours(
    conn: &mut PgConnection,
    range: Range<TimestampMs>,
) -> Result<Vec<(TimestampMs, i64)>, StoreError> {
    sqlx::query_as(&format!(
        "SELECT {} AS h, count(*) FROM samples WHERE ts >= {} AND ts < {} GROUP BY 1 ORDER BY 1",
        sql_ms("date_bin(interval '1 hour', ts, timestamptz 'epoch')"),
        sql_ts(1),
        sql_ts(2)
    ))
    .bind(range.start)
    .bind(range.end)
    .fetch_all(conn)
    .await
    .context("listing hours with fresh samples")
}

/// The hours in `range` that hold samples, fresh or compacted, ascending.
pub(crate) async fn hours_with_samples(
    conn: &mut PgConnection,
    range: Range<TimestampMs>,
) -> Result<Vec<TimestampMs>, StoreError> {
    let mut hours: Vec<TimestampMs> = fresh_hours(&mut *conn, range.clone())
        .await?
        .into_iter()
        .map(|(h, _)| h)
        .collect();
    let compacted: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT DISTINCT {} FROM sample_chunks WHERE start_ts >= {} AND start_ts < {}",
        sql_ms("start_ts"),
        sql_ts(1),
        sql_ts(2)
    ))
    .bind(chunk::chunk_start(range.start))
    .bind(range.end)
    .fetch_all(&mut *conn)
    .await
    .context("listing hours with compacted samples")?;
    hours.extend(compacted);
    hours.sort_unstable();
    hours.dedup();
    Ok(hours)
}

impl Store {
    /// Compacts every closed hour that ended at least `min_age` before `now_ms` and lies
    /// before `limit` (the rollup watermark, so rollups of fresh data never wait for chunks),
    /// plus hours that late samples were written into since. See the module documentation.
    pub async fn compact(
        &self,
        now_ms: TimestampMs,
        min_age: Duration,
        limit: Option<TimestampMs>,
        retention_cutoff: TimestampMs,
    ) -> Result<CompactionReport, StoreError> {
        let started = Instant::now();
        let mut report = CompactionReport::default();
        let age = i64::try_from(min_age.as_millis()).unwrap_or(i64::MAX);
        let mut target = chunk::chunk_start(now_ms.saturating_sub(age));
        if let Some(limit) = limit {
            target = target.min(chunk::chunk_start(limit));
        }

        // Claim the work: move the watermark to `target` first, so writers that write below
        // it from now on mark their hours dirty (the shared/exclusive rollup lock orders this
        // against their writes, as for the rollups).
        let (hours_to_claim, claimed_at) = {
            let mut tx = self.pool().begin().await.context("starting compaction")?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(ROLLUP_LOCK_KEY)
                .execute(&mut *tx)
                .await
                .context("waiting for the rollup lock")?;
            let RollupState { watermark, dirty } = read_state(&mut tx, "compact").await?;
            let first = match watermark {
                None => sqlx::query_scalar::<_, Option<i64>>(&format!(
                    "SELECT {} FROM samples",
                    sql_ms("min(ts)")
                ))
                .fetch_one(&mut *tx)
                .await
                .context("finding the earliest fresh sample")?,
                Some(_) => None,
            };
            let mut ranges: Vec<Range<i64>> = Vec::new();
            let from = watermark.or(first.map(chunk::chunk_start));
            if let Some(from) = from {
                if from < target {
                    ranges.push(from..target);
                }
            }
            if let (Some((df, dt)), Some(w)) = (dirty, watermark) {
                let end = (chunk::chunk_start(dt) + CHUNK_MS).min(w.max(target));
                if chunk::chunk_start(df) < end {
                    ranges.push(chunk::chunk_start(df)..end);
                }
            }
            let new_watermark = watermark.map_or(target, |w| w.max(target));
            // What is claimed becomes dirty until the steps are done, so readers keep reading
            // its fresh rows (see `fresh_ranges`).
            let claimed = ranges
                .iter()
                .map(|r| (r.start, r.end - 1))
                .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)));
            let claimed_at: String = sqlx::query_scalar(&format!(
                "UPDATE rollup_state SET watermark = {}, dirty_from = {}, dirty_to = {}, \
                   updated_at = clock_timestamp() WHERE name = 'compact' RETURNING updated_at::text",
                sql_ts(1),
                sql_ts(2),
                sql_ts(3)
            ))
            .bind(new_watermark)
            .bind(claimed.map(|c| c.0))
            .bind(claimed.map(|c| c.1))
            .fetch_one(&mut *tx)
            .await
            .context("saving the compaction watermark")?;
            tx.commit()
                .await
                .context("committing the compaction claim")?;
            report.watermark = Some(new_watermark);
            (ranges, claimed_at)
        };

        let mut conn = self.pool().acquire().await.context("planning compaction")?;
        let mut hours: Vec<(TimestampMs, i64)> = Vec::new();
        for r in hours_to_claim {
            let r = r.start.max(chunk::chunk_start(retention_cutoff))..r.end;
            if r.start < r.end {
                hours.extend(fresh_hours(&mut conn, r).await?);
            }
        }
        drop(conn);
        hours.sort_unstable();
        hours.dedup_by_key(|h| h.0);
        for (hour, rows) in hours {
            self.compact_hour(hour, rows, &mut report).await?;
        }

        // Clear the dirty range just worked through, unless a writer marked samples since
        // the claim (they may have missed the steps: the next round does those hours again).
        let mut tx = self.pool().begin().await.context("ending compaction")?;
        crate::maintenance::clear_dirty_if_unchanged(&mut tx, "compact", &claimed_at).await?;
        tx.commit().await.context("ending compaction")?;

        report.elapsed = started.elapsed();
        if report.steps > 0 {
            info!(
                steps = report.steps,
                rows = report.rows,
                chunks = report.chunks,
                elapsed_ms = report.elapsed.as_millis() as u64,
                "compacted fresh samples into chunks"
            );
        }
        Ok(report)
    }

    /// Compacts one hour that held `rows` fresh rows when planned, in slices of the series-id
    /// space when that is many.
    async fn compact_hour(
        &self,
        hour: TimestampMs,
        rows: i64,
        report: &mut CompactionReport,
    ) -> Result<(), StoreError> {
        let slices = (rows + STEP_ROWS - 1) / STEP_ROWS;
        for (lo, hi) in id_slices(slices) {
            let step = Instant::now();
            let (n, chunks) = self.compact_slice(hour, lo, hi).await?;
            if n > 0 {
                report.steps += 1;
                report.rows += n;
                report.chunks += chunks;
                debug!(
                    hour,
                    rows = n,
                    chunks,
                    elapsed_ms = step.elapsed().as_millis() as u64,
                    "compaction step"
                );
            }
        }
        Ok(())
    }

    /// One step: the fresh rows of `hour` whose series id is in `[lo, hi]`.
    async fn compact_slice(
        &self,
        hour: TimestampMs,
        lo: i64,
        hi: i64,
    ) -> Result<(u64, u64), StoreError> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .context("starting a compaction step")?;
        // One snapshot for the read and the delete: rows committed after it are neither
        // compacted nor deleted.
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .execute(&mut *tx)
            .await
            .context("starting a compaction step")?;
        let where_ = format!(
            "ts >= {} AND ts < {} AND series_id >= $3 AND series_id <= $4",
            sql_ts(1),
            sql_ts(2)
        );
        let fresh: Vec<(i64, i64, f64)> = sqlx::query_as(&format!(
            "SELECT series_id, {} AS t, value FROM samples WHERE {where_}",
            sql_ms("ts")
        ))
        .bind(hour)
        .bind(hour + CHUNK_MS)
        .bind(lo)
        .bind(hi)
        .fetch_all(&mut *tx)
        .await
        .context("reading fresh samples to compact")?;
        if fresh.is_empty() {
            tx.commit().await.context("ending a compaction step")?;
            return Ok((0, 0));
        }
        let n = fresh.len() as u64;
        let mut by_series: HashMap<i64, Vec<(TimestampMs, f64)>> = HashMap::new();
        for (id, t, v) in fresh {
            by_series.entry(id).or_default().push((t, v));
        }
        let ids: Vec<i64> = by_series.keys().copied().collect();
        let existing: Vec<(i64, i32, Vec<u8>, Vec<u8>)> = sqlx::query_as(&format!(
            "SELECT series_id, n, ts_data, val_data FROM sample_chunks \
             WHERE start_ts = {} AND series_id = ANY($2)",
            sql_ts(1)
        ))
        .bind(hour)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await
        .context("reading chunks to merge")?;
        for (id, count, ts, vals) in existing {
            let old = chunk::decode(count, &ts, &vals)
                .map_err(|e| StoreError::Corrupt(format!("series {id}: {e}")))?;
            by_series.entry(id).or_default().extend(old);
        }
        let mut cols = ChunkColumns::default();
        for (id, mut samples) in by_series {
            chunk::dedup(&mut samples);
            let c = chunk::encode(&samples);
            cols.push(id, c);
        }
        let chunks = cols.ids.len() as u64;
        sqlx::query(&format!(
            "INSERT INTO sample_chunks (series_id, start_ts, first_ts, last_ts, n, ts_data, val_data) \
             SELECT id, {}, to_timestamp(f::float8 / 1000), to_timestamp(l::float8 / 1000), n, t, v \
             FROM UNNEST($2::bigint[], $3::bigint[], $4::bigint[], $5::int[], $6::bytea[], $7::bytea[]) \
               AS c(id, f, l, n, t, v) \
             ON CONFLICT (series_id, start_ts) DO UPDATE SET first_ts = EXCLUDED.first_ts, \
               last_ts = EXCLUDED.last_ts, n = EXCLUDED.n, ts_data = EXCLUDED.ts_data, \
               val_data = EXCLUDED.val_data",
            sql_ts(1)
        ))
        .bind(hour)
        .bind(&cols.ids)
        .bind(&cols.first)
        .bind(&cols.last)
        .bind(&cols.count)
        .bind(&cols.ts)
        .bind(&cols.vals)
        .execute(&mut *tx)
        .await
        .context("writing compacted chunks")?;
        let deleted = sqlx::query(&format!("DELETE FROM samples WHERE {where_}"))
            .bind(hour)
            .bind(hour + CHUNK_MS)
            .bind(lo)
            .bind(hi)
            .execute(&mut *tx)
            .await
            .context("deleting compacted fresh samples")?
            .rows_affected();
        if deleted != n {
            // Cannot happen under one snapshot; refuse rather than lose or keep rows twice.
            return Err(StoreError::Corrupt(format!(
                "compaction read {n} fresh rows of hour {hour} but would delete {deleted}; rolled back"
            )));
        }
        tx.commit().await.context("committing a compaction step")?;
        Ok((n, chunks))
    }
}

/// Chunk rows as column arrays for one `UNNEST` insert.
#[derive(Default)]
struct ChunkColumns {
    ids: Vec<i64>,
    first: Vec<i64>,
    last: Vec<i64>,
    count: Vec<i32>,
    ts: Vec<Vec<u8>>,
    vals: Vec<Vec<u8>>,
}

impl ChunkColumns {
    fn push(&mut self, id: i64, c: chunk::EncodedChunk) {
        self.ids.push(id);
        self.first.push(c.first);
        self.last.push(c.last);
        self.count.push(c.count);
        self.ts.push(c.timestamps);
        self.vals.push(c.values);
    }
}

/// `n` inclusive ranges splitting the whole i64 id space into equal parts (series ids are
/// hashes, so spread evenly).
fn id_slices(n: i64) -> Vec<(i64, i64)> {
    let n = n.max(1) as i128;
    let span = (i64::MAX as i128 - i64::MIN as i128 + 1) / n;
    (0..n)
        .map(|i| {
            let lo = i64::MIN as i128 + i * span;
            let hi = if i == n - 1 {
                i64::MAX as i128
            } else {
                lo + span - 1
            };
            (lo as i64, hi as i64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_rows_are_read_above_the_watermark_and_in_the_dirty_range_only() {
        // Before the first compaction: everything.
        assert_eq!(fresh_ranges(0, 100, None, None), vec![(0, 100)]);
        // Compacted below 50, nothing dirty.
        assert_eq!(fresh_ranges(0, 100, Some(50), None), vec![(50, 100)]);
        assert!(fresh_ranges(0, 40, Some(50), None).is_empty());
        // A dirty range below the watermark, apart from it and touching it.
        assert_eq!(
            fresh_ranges(0, 100, Some(50), Some((10, 20))),
            vec![(10, 20), (50, 100)]
        );
        assert_eq!(
            fresh_ranges(0, 100, Some(50), Some((10, 49))),
            vec![(10, 100)]
        );
        // The query range cuts both.
        assert_eq!(
            fresh_ranges(15, 45, Some(50), Some((10, 20))),
            vec![(15, 20)]
        );
        // A dirty range reaching past the watermark adds nothing above it twice.
        assert_eq!(
            fresh_ranges(0, 100, Some(50), Some((40, 70))),
            vec![(40, 100)]
        );
    }

    #[test]
    fn slices_cover_every_id_once() {
        for n in [1, 2, 3, 7] {
            let s = id_slices(n);
            assert_eq!(s.len() as i64, n);
            assert_eq!(s[0].0, i64::MIN);
            assert_eq!(s[s.len() - 1].1, i64::MAX);
            for w in s.windows(2) {
                assert_eq!(w[0].1.checked_add(1), Some(w[1].0));
            }
        }
    }
}
