//! Measures `Store::write` against the benchmark anchor (a raw binary COPY of the same rows
//! into an identical table) in the same run, and prints the ratio. Timings are printed, never
//! asserted.
//!
//! `cargo run --release -p store --example write_vs_anchor -- [series] [samples_per_series]`
//! Uses DATABASE_URL's server when set, else the private test cluster.

use model::{Batch, Labels, MetricType, Sample, SeriesKey, TimeSeries};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use store::{Store, StoreConfig};

const BATCH_SAMPLES: usize = 10_000;
const STEP_MS: i64 = 15_000;

fn keys(n: usize) -> Vec<SeriesKey> {
    (0..n)
        .map(|i| {
            SeriesKey::new(
                "bench_metric",
                Labels::from_pairs([
                    ("instance", format!("host-{}", i % 100)),
                    ("job", "bench".to_string()),
                    ("shard", format!("{}", i / 100)),
                ]),
            )
        })
        .collect()
}

/// One batch per scrape round of `per_batch` series, like an ingest queue hands over.
fn batches(keys: &[SeriesKey], rounds: usize, t0: i64) -> Vec<Batch> {
    let per_batch = BATCH_SAMPLES.min(keys.len());
    let mut out = Vec::new();
    for r in 0..rounds {
        for chunk in keys.chunks(per_batch) {
            out.push(Batch {
                series: chunk
                    .iter()
                    .enumerate()
                    .map(|(i, k)| TimeSeries {
                        key: k.clone(),
                        metric_type: MetricType::Gauge,
                        samples: vec![Sample {
                            ts: t0 + r as i64 * STEP_MS,
                            value: (r * 31 + i) as f64 * 0.5,
                        }],
                    })
                    .collect(),
                metadata: Vec::new(),
            });
        }
    }
    out
}

fn anchor_rows(batches: &[Batch]) -> Vec<Vec<(i64, i64, f64)>> {
    batches
        .iter()
        .map(|b| {
            b.series
                .iter()
                .flat_map(|s| {
                    let id = s.key.stable_id();
                    s.samples.iter().map(move |x| (id, x.ts, x.value))
                })
                .collect()
        })
        .collect()
}

fn rate(rows: usize, d: Duration) -> f64 {
    rows as f64 / d.as_secs_f64()
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let series = args.first().copied().unwrap_or(10_000);
    let rounds = args.get(1).copied().unwrap_or(100);
    let url = store::testing::fresh_database_url().await;
    let store = Store::connect(&url, StoreConfig::default())
        .await
        .expect("connect");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let t0 = now - rounds as i64 * STEP_MS * 2;
    let keys = keys(series);
    store.maintain(now).await.expect("maintain");

    // Registration pass (first sight of every series), then the steady state.
    let first = batches(&keys, 1, t0 - STEP_MS);
    let t = Instant::now();
    for b in &first {
        store.write(std::slice::from_ref(b)).await.expect("write");
    }
    println!("registering {series} series: {:.2?}", t.elapsed());

    let ours = batches(&keys, rounds, t0);
    let rows = series * rounds;
    let anchor = anchor_rows(&ours);
    // The anchor table and its partitions are created outside the timing.
    store
        .prepare_anchor(&anchor.concat())
        .await
        .expect("anchor table");

    // Interleaved batch by batch, so checkpoints and autovacuum hit both sides alike.
    let (mut ours_time, mut anchor_time) = (Duration::ZERO, Duration::ZERO);
    for (b, rows) in ours.iter().zip(&anchor) {
        let t = Instant::now();
        store.write(std::slice::from_ref(b)).await.expect("write");
        ours_time += t.elapsed();
        let t = Instant::now();
        store.copy_anchor(rows).await.expect("anchor");
        anchor_time += t.elapsed();
    }
    println!(
        "Store::write  {rows} samples in {ours_time:.2?}: {:.0} samples/s",
        rate(rows, ours_time)
    );
    println!(
        "anchor COPY   {rows} samples in {anchor_time:.2?}: {:.0} samples/s",
        rate(rows, anchor_time)
    );
    println!(
        "ratio write/anchor throughput: {:.2}",
        anchor_time.as_secs_f64() / ours_time.as_secs_f64()
    );
    let t = Instant::now();
    let report = store.maintain(now).await.expect("maintain");
    println!(
        "maintain: {:.2?} ({} minute rows, {} hour rows)",
        t.elapsed(),
        report.rollup_1m_rows,
        report.rollup_1h_rows
    );
    store.drop_anchor().await.expect("drop anchor");
}
