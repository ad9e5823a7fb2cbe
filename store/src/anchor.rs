//! The ingest benchmark's anchor (cargo feature `bench`): a raw binary COPY of the same rows
//! into `bench_anchor_samples`, a table laid out like `samples` (daily partitions, DEFAULT
//! partition, btree on (series_id, ts)), and nothing else: no registry, no metadata, no rollup
//! bookkeeping. What any write path into this layout must at least do.
//!
//! Creating the table and its partitions ([`Store::prepare_anchor`]) is separate from the COPY
//! ([`Store::copy_anchor`]), so a benchmark times only the COPY: the real path's tables exist
//! before it is timed too. Several `copy_anchor` calls may run at once, one connection each,
//! to match the parallelism of the path it is compared with.

use crate::error::{DbContext, StoreError};
use crate::partitions::{self, day_of};
use crate::pgcopy::{timestamp_in_range, SampleCopyEncoder};
use crate::Store;

/// Bytes of COPY data encoded before they are sent (as the writer does), bounding memory.
const COPY_CHUNK_BYTES: usize = 1 << 20;

fn check_timestamps(rows: &[(i64, i64, f64)]) -> Result<(), StoreError> {
    match rows.iter().find(|r| !timestamp_in_range(r.1)) {
        Some(&(_, ts, _)) => Err(StoreError::InvalidSample(format!(
            "anchor row timestamp {ts} ms is outside what PostgreSQL can store"
        ))),
        None => Ok(()),
    }
}

impl Store {
    /// Creates `bench_anchor_samples` if missing and the daily partitions the rows' days need.
    pub async fn prepare_anchor(&self, rows: &[(i64, i64, f64)]) -> Result<(), StoreError> {
        check_timestamps(rows)?;
        let pool = self.pool();
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS bench_anchor_samples ( \
                 series_id bigint NOT NULL, ts timestamptz NOT NULL, value double precision NOT NULL \
             ) PARTITION BY RANGE (ts); \
             CREATE INDEX IF NOT EXISTS bench_anchor_samples_series_ts ON bench_anchor_samples (series_id, ts); \
             CREATE TABLE IF NOT EXISTS bench_anchor_samples_default PARTITION OF bench_anchor_samples DEFAULT;",
        )
        .execute(pool)
        .await
        .context("creating the benchmark anchor table")?;
        let mut days: Vec<i64> = rows.iter().map(|r| day_of(r.1)).collect();
        days.sort_unstable();
        days.dedup();
        partitions::ensure_partitions(pool, "bench_anchor_samples", &days).await?;
        Ok(())
    }

    /// Raw binary COPY of the rows into `bench_anchor_samples` on one connection; the table
    /// must exist ([`Store::prepare_anchor`]). Returns the rows copied.
    pub async fn copy_anchor(&self, rows: &[(i64, i64, f64)]) -> Result<u64, StoreError> {
        check_timestamps(rows)?;
        let mut conn = self
            .pool()
            .acquire()
            .await
            .context("starting the anchor COPY")?;
        let mut copy = conn
            .copy_in_raw(
                "COPY bench_anchor_samples (series_id, ts, value) FROM STDIN (FORMAT binary)",
            )
            .await
            .context("starting the anchor COPY (was Store::prepare_anchor called first?)")?;
        let mut enc = SampleCopyEncoder::new();
        for &(id, ts, v) in rows {
            enc.push(id, ts, v);
            if enc.pending_bytes() >= COPY_CHUNK_BYTES {
                copy.send(enc.take()).await.context("sending anchor rows")?;
            }
        }
        copy.send(enc.finish())
            .await
            .context("sending anchor rows")?;
        copy.finish().await.context("finishing the anchor COPY")
    }

    /// Drops `bench_anchor_samples` and its partitions.
    pub async fn drop_anchor(&self) -> Result<(), StoreError> {
        sqlx::query("DROP TABLE IF EXISTS bench_anchor_samples")
            .execute(self.pool())
            .await
            .context("dropping the benchmark anchor table")?;
        Ok(())
    }
}
