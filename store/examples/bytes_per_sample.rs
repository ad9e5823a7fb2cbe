//! Measures what a stored sample costs on disk once maintenance has rolled up and compacted
//! it: writes pipeline-shaped series (half counters, half gauges) with timestamps far enough
//! in the past that every hour is closed, runs maintenance until nothing is left to do,
//! vacuums, and prints the database's size net of the empty schema and each sample table's,
//! per sample. Sizes and times are printed, never asserted.
//!
//! `cargo run --release -p store --example bytes_per_sample -- [series] [samples_per_series] [interval_s]`
//! (defaults 10,000 x 100 at 15 s: the peers' workload of `ingest-load`). Uses DATABASE_URL's
//! server when set (a fresh database on it), else the private test cluster.

use model::{Batch, Labels, MetricType, Sample, SeriesKey, TimeSeries};
use rand::{Rng, SeedableRng};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use store::{Store, StoreConfig};

const HOUR_MS: i64 = 3_600_000;

/// Samples of series `i`: even series are counters (increments of 0-20 per interval, the
/// shape of rows/bytes processed), odd ones gauges (a random walk with two decimals, the shape
/// of lag, queue depth or latency).
fn values(i: usize, n: usize, rng: &mut rand::rngs::StdRng) -> Vec<f64> {
    let counter = i.is_multiple_of(2);
    let mut v = if counter {
        0.0
    } else {
        rng.gen_range(10.0..1000.0)
    };
    (0..n)
        .map(|_| {
            if counter {
                v += f64::from(rng.gen_range(0..=20));
            } else {
                v = ((v + rng.gen_range(-5.0..5.0)) * 100.0).round() / 100.0;
            }
            v
        })
        .collect()
}

async fn size(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[tokio::main]
async fn main() {
    let args: Vec<i64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let series = args.first().copied().unwrap_or(10_000) as usize;
    let per_series = args.get(1).copied().unwrap_or(100) as usize;
    let interval_ms = args.get(2).copied().unwrap_or(15) * 1000;
    let url = store::testing::fresh_database_url().await;
    let store = Store::connect(&url, StoreConfig::default())
        .await
        .expect("connect");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Starts on an hour boundary and ends at least two hours ago, so every hour is closed and
    // old enough to be compacted.
    let span = per_series as i64 * interval_ms;
    let t0 = (now - span - 2 * HOUR_MS).div_euclid(HOUR_MS) * HOUR_MS;
    store.maintain(now).await.expect("maintain");
    sqlx::query("VACUUM")
        .execute(store.pool())
        .await
        .expect("vacuum");
    let empty = size(&store, "SELECT pg_database_size(current_database())").await;

    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let keys: Vec<SeriesKey> = (0..series)
        .map(|i| {
            SeriesKey::new(
                if i.is_multiple_of(2) {
                    "pipeline_rows_total"
                } else {
                    "pipeline_lag_seconds"
                },
                Labels::from_pairs([
                    ("pipeline", format!("p{}", i % 50)),
                    ("stage", format!("s{}", i / 50)),
                ]),
            )
        })
        .collect();
    let vals: Vec<Vec<f64>> = (0..series)
        .map(|i| values(i, per_series, &mut rng))
        .collect();
    // One batch per scrape round of at most 10,000 series, as the ingest queue hands them over.
    let t = Instant::now();
    for r in 0..per_series {
        for (chunk, chunk_vals) in keys.chunks(10_000).zip(vals.chunks(10_000)) {
            let b = Batch {
                series: chunk
                    .iter()
                    .zip(chunk_vals)
                    .map(|(k, v)| TimeSeries {
                        key: k.clone(),
                        metric_type: MetricType::Gauge,
                        samples: vec![Sample {
                            ts: t0 + r as i64 * interval_ms,
                            value: v[r],
                        }],
                    })
                    .collect(),
                metadata: Vec::new(),
            };
            store.write(&[b]).await.expect("write");
        }
    }
    let total = (series * per_series) as f64;
    println!(
        "wrote {series} series x {per_series} samples every {} s = {total} samples in {:.1?}",
        interval_ms / 1000,
        t.elapsed()
    );

    let t = Instant::now();
    let mut rounds = 0;
    loop {
        let r = store.maintain(now).await.expect("maintain");
        rounds += 1;
        if r.compaction.rows == 0 && r.rollup_1m_rows + r.rollup_1h_rows == 0 {
            break;
        }
        println!(
            "maintenance round {rounds}: {} minute rollup rows, {} hour rollup rows, {} samples compacted into {} chunks in {:.1?}",
            r.rollup_1m_rows, r.rollup_1h_rows, r.compaction.rows, r.compaction.chunks, r.elapsed
        );
    }
    println!("maintenance: {:.1?} in {rounds} rounds", t.elapsed());
    sqlx::query("VACUUM")
        .execute(store.pool())
        .await
        .expect("vacuum");

    let db = size(&store, "SELECT pg_database_size(current_database())").await - empty;
    println!(
        "database, net of the empty schema: {:.1} MB, {:.2} bytes/sample",
        db as f64 / 1e6,
        db as f64 / total
    );
    let tables = [
        ("sample_chunks", "pg_total_relation_size('sample_chunks')"),
        (
            "samples (fresh, all partitions)",
            "(SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits \
             WHERE inhparent = 'samples'::regclass)",
        ),
        (
            "samples_1m",
            "coalesce(pg_total_relation_size(to_regclass('samples_1m')), 0)",
        ),
        ("samples_1h", "pg_total_relation_size('samples_1h')"),
        ("series", "pg_total_relation_size('series')"),
    ];
    for (name, expr) in tables {
        let b = size(&store, &format!("SELECT ({expr})::bigint")).await;
        println!(
            "  {name}: {:.2} MB, {:.2} bytes/sample",
            b as f64 / 1e6,
            b as f64 / total
        );
    }
    let (n, data): (i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(n), 0)::bigint, \
           coalesce(sum(octet_length(ts_data) + octet_length(val_data)), 0)::bigint FROM sample_chunks",
    )
    .fetch_one(store.pool())
    .await
    .expect("chunk data");
    println!(
        "  chunk data alone: {n} samples, {:.2} bytes/sample",
        data as f64 / n.max(1) as f64
    );
}
