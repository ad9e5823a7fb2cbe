//! Times the same range queries over raw samples (before maintenance) and over rollups
//! (after it), on identical data. Prints timings, asserts only that both give the same
//! number of points.
//!
//! `cargo run --release -p store --example query_paths -- [series] [hours]`
//! Uses DATABASE_URL's server when set, else the private test cluster.

use model::{
    Aggregation, Batch, Labels, MetricType, RangeQuery, Sample, Selector, SeriesKey, TimeSeries,
};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use store::{Store, StoreConfig};

const STEP_MS: i64 = 15_000;
const HOUR: i64 = 3_600_000;

#[tokio::main]
async fn main() {
    let args: Vec<i64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let series = args.first().copied().unwrap_or(1000) as usize;
    let hours = args.get(1).copied().unwrap_or(6);
    let url = store::testing::fresh_database_url().await;
    let store = Store::connect(&url, StoreConfig::default())
        .await
        .expect("connect");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let t0 = (now / HOUR - hours - 1) * HOUR;
    let keys: Vec<SeriesKey> = (0..series)
        .map(|i| {
            SeriesKey::new(
                "q_metric",
                Labels::from_pairs([("instance", format!("host-{i}"))]),
            )
        })
        .collect();
    let rounds = (hours * HOUR / STEP_MS) as usize;
    let t = Instant::now();
    for r0 in (0..rounds).step_by(10) {
        let batch = Batch {
            series: keys
                .iter()
                .enumerate()
                .map(|(i, k)| TimeSeries {
                    key: k.clone(),
                    metric_type: MetricType::Gauge,
                    samples: (r0..(r0 + 10).min(rounds))
                        .map(|r| Sample {
                            ts: t0 + r as i64 * STEP_MS,
                            value: ((r * 7 + i) % 1000) as f64,
                        })
                        .collect(),
                })
                .collect(),
            metadata: Vec::new(),
        };
        store.write(&[batch]).await.expect("write");
    }
    println!("loaded {} samples in {:.2?}", series * rounds, t.elapsed());
    sqlx::query("ANALYZE")
        .execute(store.pool())
        .await
        .expect("analyze");

    let cases = [
        (
            "one series, 1 min step",
            "q_metric{instance=\"host-1\"}",
            60_000,
        ),
        ("all series, 1 min step", "q_metric", 60_000),
        ("all series, 1 h step", "q_metric", HOUR),
    ];
    let run = |label: &'static str| {
        let store = store.clone();
        async move {
            let mut out = Vec::new();
            for (name, sel, step) in cases {
                let q = RangeQuery {
                    start: t0,
                    end: t0 + hours * HOUR - 1,
                    step_ms: step,
                    aggregation: Aggregation::Avg,
                };
                let sel = Selector::parse(sel).unwrap();
                let t = Instant::now();
                let res = store.query_range(&sel, &q).await.expect("query");
                let points: usize = res.iter().map(|s| s.points.len()).sum();
                println!(
                    "{label:7} {name:24} {points:8} points in {:.2?}",
                    t.elapsed()
                );
                out.push(points);
            }
            out
        }
    };
    let raw = run("raw").await;
    let t = Instant::now();
    store.maintain(now).await.expect("maintain");
    println!("maintain (rollups) {:.2?}", t.elapsed());
    let rolled = run("rollup").await;
    assert_eq!(raw, rolled, "both paths return the same points");
}
