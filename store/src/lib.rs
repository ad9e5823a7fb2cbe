//! PostgreSQL storage for pipewatch: migrations, the series registry, the binary-COPY batch
//! writer, range queries over raw samples and rollups, daily partitions and retention, and
//! TimescaleDB feature detection.
//!
//! Two storage modes share one API and give the same answers. `postgres` (what CI runs):
//! natively partitioned samples with rollup tables maintained by [`Store::maintain`].
//! `timescaledb` (chosen by the migration when `CREATE EXTENSION timescaledb` succeeds; the
//! suite runs in it with `PIPEWATCH_TEST_TIMESCALEDB=1`, see `testing`): a compressed
//! hypertable with continuous aggregates that maintenance refreshes (`timescale`).
//!
//! The plain layout appends fresh samples to daily partitions indexed only by a BRIN on time;
//! maintenance compacts each closed hour into per-series pco-compressed chunks
//! ([`compaction`], [`chunk`]) and reads merge both (docs/ARCHITECTURE.md, "Storage").
//! `copy_anchor` (feature `bench`) measures ingest against a raw COPY into the old btree layout.

pub mod alerts;
#[cfg(feature = "bench")]
mod anchor;
pub mod anomalies;
pub mod anomaly_read;
pub mod auth;
pub mod bucket;
mod catalog;
pub mod chunk;
pub mod compaction;
pub mod dq;
pub mod embedded;
pub mod error;
pub mod events;
pub mod evidence;
pub mod leader;
pub use leader::{LeaderRole, Leadership};
pub mod lifecycle;
pub mod lineage;
mod maintenance;
pub mod oncall;
pub mod outbox;
mod partitions;
pub mod pending;
pub mod pgcopy;
pub mod profiles;
mod raw;
mod read;
pub mod registry;
pub mod rule_inputs;
#[cfg(feature = "testing")]
pub mod testing;
mod timescale;
pub mod ui_rules;
mod writer;
mod writer_resolved;

pub use catalog::FamilyMetadata;
pub use embedded::{EmbeddedError, EmbeddedPostgres};
pub use error::StoreError;
pub use maintenance::MaintenanceReport;
pub use pending::{SharedKey, SharedSample, SharedSamples};
pub use read::{SeriesInfo, SeriesSelection, LIVE_IN_RANGE, MAX_POINTS_PER_SERIES};
pub use registry::{Fingerprints, RawNames, SeriesCache};
pub use writer::WriteStats;
pub use writer_resolved::{Resolution, ResolvedSample, ResolvedSamples, SETTLED_MARGIN_MS};

use error::DbContext;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::info;

/// Which physical layout the database uses; decided by the migration, read at connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageMode {
    TimescaleDb,
    Postgres,
}

impl StorageMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TimescaleDb => "timescaledb",
            Self::Postgres => "postgres",
        }
    }
}

impl fmt::Display for StorageMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// Samples older than this many days are dropped by maintenance. Default 30.
    pub retention_days: u32,
    /// Rollups cover buckets that ended at least this long ago, so samples arriving a
    /// little late still land before their bucket is rolled up. Default 2 minutes.
    pub rollup_lag: Duration,
    /// Series kept in the in-memory [`SeriesCache`] (about 100 bytes each); less recently
    /// written ones are evicted and looked up again when they return. Default 1,000,000.
    pub series_cache_capacity: usize,
    /// PostgreSQL's `statement_timeout` on the read pool ([`Store::read_pool`]): a read that
    /// runs longer is cancelled by the server and answered as
    /// [`StoreError::is_read_timeout`]. Zero = no limit. Default 30 s.
    pub read_statement_timeout: Duration,
    /// Maintenance compacts an hour of fresh samples into chunks once the hour ended at least
    /// this long ago (and it is rolled up), so a sample arriving a little late still
    /// lands before its hour is compacted; later ones are merged in by the next compaction.
    /// Default 10 minutes.
    pub compact_after: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            retention_days: 30,
            rollup_lag: Duration::from_secs(120),
            series_cache_capacity: registry::DEFAULT_SERIES_CACHE_CAPACITY,
            read_statement_timeout: Duration::from_secs(30),
            compact_after: Duration::from_secs(600),
        }
    }
}

/// Handle to the pipewatch database. Cheap to clone; clones share the pool and caches.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    /// Connections for reads that a request asks for, with `statement_timeout` set, so one
    /// expensive selector cannot hold a database backend (and the request) for minutes.
    read_pool: PgPool,
    mode: StorageMode,
    cfg: StoreConfig,
    /// Recently written or admitted series: id and last_seen state (see `registry`).
    series: Arc<SeriesCache>,
    /// The natural id of a series: `SeriesKey::stable_id` (replaceable in tests to force
    /// collisions).
    series_hash: fn(&model::SeriesKey) -> i64,
    /// Days known to have a partition of `samples` (postgres mode).
    partition_days: Mutex<HashSet<i64>>,
    /// Keys of series queued in full and not registered yet (see `pending`).
    pending: pending::PendingKeys,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("mode", &self.inner.mode)
            .field("cfg", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Applies the migrations, with what the server's TimescaleDB needs ([`timescale::migrations_for`]).
async fn run_migrations(pool: &PgPool) -> Result<(), StoreError> {
    match timescale::migrations_for(pool, &MIGRATOR).await? {
        Some(patched) => patched.run(pool).await?,
        None => MIGRATOR.run(pool).await?,
    }
    Ok(())
}

const POOL_SIZE: u32 = 8;
/// Read connections; reads queue for one rather than open more backends.
const READ_POOL_SIZE: u32 = 4;

/// How long a read waits for a connection of the read pool before it fails (database down,
/// or every read connection busy).
const READ_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

async fn pool_for(
    url: &str,
    max_connections: u32,
    statement_timeout: Option<Duration>,
) -> Result<PgPool, StoreError> {
    let connect_err = |source| StoreError::Connect {
        url: error::redact_url(url),
        source,
    };
    let mut options = PgConnectOptions::from_str(url).map_err(connect_err)?;
    if let Some(t) = statement_timeout.filter(|t| !t.is_zero()) {
        // Sent as a startup parameter: every statement on these connections has it.
        options = options.options([("statement_timeout", format!("{}ms", t.as_millis()))]);
    }
    // One direct attempt first: the pool would retry a refused connection until its acquire
    // timeout, leaving the user waiting 30 s for "is the server running?".
    {
        use sqlx::Connection;
        let conn = sqlx::PgConnection::connect_with(&options)
            .await
            .map_err(connect_err)?;
        conn.close().await.ok();
    }
    // Reads answer a person or an API client: when the database is gone they should hear so
    // in seconds, not after 30 (the write pool's writers retry with back-off either way).
    let acquire_timeout = if statement_timeout.is_some() {
        READ_ACQUIRE_TIMEOUT
    } else {
        Duration::from_secs(30)
    };
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .connect_with(options)
        .await
        .map_err(connect_err)
}

impl Store {
    /// Connects, applies pending migrations, reads the storage mode and logs it.
    pub async fn connect(url: &str, cfg: StoreConfig) -> Result<Store, StoreError> {
        Self::connect_hashing(url, cfg, model::SeriesKey::stable_id).await
    }

    /// Like [`Store::connect`], with another function for the natural series id, so tests can
    /// make different label sets collide.
    #[cfg(feature = "testing")]
    pub async fn connect_with_series_hash(
        url: &str,
        cfg: StoreConfig,
        series_hash: fn(&model::SeriesKey) -> i64,
    ) -> Result<Store, StoreError> {
        Self::connect_hashing(url, cfg, series_hash).await
    }

    async fn connect_hashing(
        url: &str,
        cfg: StoreConfig,
        series_hash: fn(&model::SeriesKey) -> i64,
    ) -> Result<Store, StoreError> {
        if cfg.retention_days == 0 {
            return Err(StoreError::InvalidConfig(
                "retention_days is 0; set it to the number of days to keep samples (at least 1)"
                    .to_string(),
            ));
        }
        let pool = pool_for(url, POOL_SIZE, None).await?;
        let read_pool = pool_for(url, READ_POOL_SIZE, Some(cfg.read_statement_timeout)).await?;
        run_migrations(&pool).await?;
        let mode: String = sqlx::query_scalar("SELECT mode FROM storage_mode")
            .fetch_one(&pool)
            .await
            .context("reading the storage mode")?;
        let mode = match mode.as_str() {
            "timescaledb" => StorageMode::TimescaleDb,
            "postgres" => StorageMode::Postgres,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "storage_mode is {other:?}, expected \"postgres\" or \"timescaledb\""
                )))
            }
        };
        if mode == StorageMode::TimescaleDb {
            timescale::apply_policies(&pool, &cfg).await?;
        }
        let partition_days = match mode {
            StorageMode::Postgres => partitions::existing_days(&pool, "samples")
                .await?
                .into_iter()
                .collect(),
            StorageMode::TimescaleDb => HashSet::new(),
        };
        info!(mode = %mode, database = %error::redact_url(url), "connected to storage");
        Ok(Store {
            inner: Arc::new(Inner {
                pool,
                read_pool,
                mode,
                series: Arc::new(SeriesCache::new(cfg.series_cache_capacity)),
                series_hash,
                cfg,
                partition_days: Mutex::new(partition_days),
                pending: Default::default(),
            }),
        })
    }

    /// Applies pending migrations and returns (for `pipewatch migrate`).
    pub async fn migrate(url: &str) -> Result<(), StoreError> {
        let pool = pool_for(url, 1, None).await?;
        run_migrations(&pool).await?;
        pool.close().await;
        Ok(())
    }

    pub fn mode(&self) -> StorageMode {
        self.inner.mode
    }

    pub fn config(&self) -> &StoreConfig {
        &self.inner.cfg
    }

    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The pool for reads a request asks for (series, labels, ranges, evidence, lists): its
    /// connections carry `statement_timeout` ([`StoreConfig::read_statement_timeout`]).
    pub fn read_pool(&self) -> &PgPool {
        &self.inner.read_pool
    }

    /// Number of registered series.
    pub async fn series_count(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT count(*) FROM series")
            .fetch_one(&self.inner.pool)
            .await
            .context("counting series")
    }

    /// Ids of every registered series (a few MB for a million series).
    pub async fn series_ids(&self) -> Result<Vec<i64>, StoreError> {
        sqlx::query_scalar("SELECT id FROM series")
            .fetch_all(&self.inner.pool)
            .await
            .context("listing series ids")
    }

    /// The cache of recently written series, to share with the server's limits as its set of
    /// known series (see [`registry`]).
    pub fn series_cache(&self) -> Arc<SeriesCache> {
        self.inner.series.clone()
    }

    /// Fills the series cache with the most recently seen series (up to its capacity), so a
    /// restarted server neither looks them up one write at a time nor counts them as new.
    /// Returns how many were loaded.
    pub async fn load_recent_series(&self) -> Result<usize, StoreError> {
        let cache = &self.inner.series;
        let limit = i64::try_from(cache.capacity()).unwrap_or(i64::MAX);
        let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(&format!(
            "SELECT id, metric, labels::text, {} FROM series ORDER BY last_seen DESC LIMIT $1",
            sql_ms("last_seen")
        ))
        .bind(limit)
        .fetch_all(&self.inner.pool)
        .await
        .context("loading recently seen series")?;
        let n = rows.len();
        // Oldest first, so the most recent end up most recently used.
        for (id, metric, labels, last_seen) in rows.into_iter().rev() {
            let key = model::SeriesKey::new(metric, read::parse_labels(id, &labels)?);
            cache.insert(cache.fingerprint(&key), id, last_seen, last_seen);
        }
        Ok(n)
    }
}

/// SQL for a `$n` bigint of Unix milliseconds as timestamptz. `to_timestamp(float8)` is
/// immutable, so partition pruning still happens, and it is exact to the microsecond for
/// timestamps within a few centuries of now.
pub(crate) fn sql_ts(param: usize) -> String {
    format!("to_timestamp(${param}::float8 / 1000)")
}

/// SQL turning a timestamptz expression back into Unix milliseconds, exactly.
pub(crate) fn sql_ms(expr: &str) -> String {
    format!("(extract(epoch from {expr}) * 1000)::bigint")
}
