//! Integration tests of the store against a real PostgreSQL: each test gets its own fresh
//! database from `store::testing::fresh_database_url` (the shared private test cluster, or
//! the server in DATABASE_URL).

mod alerts;
mod auth;
mod compaction;
mod dq;
mod embedded;
mod evidence;
mod lineage;
mod modes;
mod outbox;
mod partitions;
mod registry;
mod rollups;
mod roundtrip;
mod selectors;
mod test_databases;

use model::{Batch, Labels, MetricType, Sample, SeriesKey, TimeSeries};
use store::{Store, StoreConfig};

pub const MINUTE: i64 = 60_000;
pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 86_400_000;

pub async fn store() -> Store {
    store_with(StoreConfig::default()).await
}

pub async fn store_with(cfg: StoreConfig) -> Store {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let url = store::testing::fresh_database_url().await;
    Store::connect(&url, cfg)
        .await
        .expect("connect to the test database")
}

pub use model::clock::now_ms;

pub fn key(metric: &str, labels: &[(&str, &str)]) -> SeriesKey {
    SeriesKey::new(metric, Labels::from_pairs(labels.iter().copied()))
}

pub fn series(key: SeriesKey, samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        key,
        metric_type: MetricType::Gauge,
        samples: samples
            .iter()
            .map(|&(ts, value)| Sample { ts, value })
            .collect(),
    }
}

pub fn batch(series: Vec<TimeSeries>) -> Batch {
    Batch {
        series,
        metadata: Vec::new(),
    }
}

/// (ts ms, value) of every stored raw sample of a series, ordered by time.
/// Every stored sample of a series, compacted or fresh, through the store's read API (one per
/// timestamp).
pub async fn raw_samples(store: &Store, id: i64) -> Vec<(i64, f64)> {
    store
        .raw_points(&[id], i64::MIN, i64::MAX, None)
        .await
        .unwrap()
        .remove(&id)
        .unwrap_or_default()
}
