//! `pipewatch bench detect`: the cost of one detection round per series, database read
//! included, and the process's peak memory, against the bare database read of the same samples
//! measured in the same run.
//!
//! N counter series (`bench_detect_rows_total`, daily-seasonal rates with noise, one sample a
//! minute over `hours`) go through the real ingest path; one series in a hundred stalls for
//! the last ten minutes, so the round also writes anomalies. Then, `iterations` times:
//! * the anchor: `Store::raw_samples` of every series over the history window, what the
//!   PromQL engine must read before it can compute anything;
//! * a full round of the analysis job (`server::analysis::AnalysisJobs::round`): series
//!   discovery, the `rate(...[2m])` range query over the store, three detectors per series, and
//!   the anomaly writes.
//!
//! Printed: the median of each, the round's cost per series, the ratio round / read, the
//! anomalies open after the run, and the peak resident set (VmHWM) before and after.

use anyhow::{Context, Result};
use model::{Batch, Labels, MetricType, Sample, SeriesKey, TimeSeries};
use rand::{Rng, SeedableRng};
use std::time::Instant;

/// What to run.
#[derive(Debug, Clone)]
pub struct DetectBench {
    pub series: usize,
    pub hours: i64,
    pub iterations: usize,
}

const METRIC: &str = "bench_detect_rows_total";
const STEP_MS: i64 = 60_000;

fn key(i: usize) -> SeriesKey {
    SeriesKey::new(
        METRIC,
        Labels::from_pairs([
            ("instance", format!("host-{i:05}")),
            ("stage", format!("stage-{}", i % 20)),
            ("job", "bench".to_string()),
        ]),
    )
}

/// Peak resident set of this process in KiB (Linux `VmHWM`), if readable.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `samples` batches of one sample per series each, from `start_ms`; counters grow at a
/// seasonal rate with noise, and every hundredth series stops growing for the last ten minutes.
fn batches(
    series: usize,
    from_step: usize,
    samples: usize,
    total_steps: usize,
    start_ms: i64,
    counters: &mut [f64],
    rng: &mut rand::rngs::StdRng,
) -> Vec<Batch> {
    let keys: Vec<SeriesKey> = (0..series).map(key).collect();
    (from_step..from_step + samples)
        .map(|j| {
            let ts = start_ms + j as i64 * STEP_MS;
            let day = (ts as f64 / 86_400_000.0).fract();
            let season = 1.0 + 0.5 * (2.0 * std::f64::consts::PI * day).sin();
            Batch {
                series: keys
                    .iter()
                    .enumerate()
                    .map(|(i, k)| {
                        let stalled = i % 100 == 0 && j + 10 >= total_steps;
                        if !stalled {
                            let rate = 5.0 + (i % 50) as f64;
                            counters[i] +=
                                rate * 60.0 * season * (1.0 + rng.gen_range(-0.05..0.05));
                        }
                        TimeSeries {
                            key: k.clone(),
                            metric_type: MetricType::Counter,
                            samples: vec![Sample {
                                ts,
                                value: counters[i].floor(),
                            }],
                        }
                    })
                    .collect(),
                metadata: vec![],
            }
        })
        .collect()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

pub async fn run(base_url: &str, b: &DetectBench, cfg: &server::config::Config) -> Result<()> {
    anyhow::ensure!(
        b.series > 0 && b.hours > 0 && b.iterations > 0,
        "--series, --hours and --iterations must be at least 1"
    );
    let rss_start = peak_rss_kib();
    let url = super::database_url(base_url, "pipewatch_bench_detect", true).await?;
    // The round's family query reads every sample of 10,000 series at once: measure it, do not
    // cut it at the read pool's interactive statement timeout (30 s; a loaded 2-core machine
    // crosses it).
    let store_cfg = store::StoreConfig {
        read_statement_timeout: std::time::Duration::ZERO,
        ..store::StoreConfig::default()
    };
    let store = store::Store::connect(&url, store_cfg).await?;
    let now = model::clock::now_ms();
    let end = now - now.rem_euclid(STEP_MS);
    let steps = (b.hours * 3_600_000 / STEP_MS) as usize;
    let start = end - steps as i64 * STEP_MS;
    println!(
        "bench detect: loading {} series x {steps} samples (one a minute over {} h) through the ingest path ...",
        b.series, b.hours
    );
    let t = Instant::now();
    let mut counters = vec![0.0; b.series];
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let chunk = 60;
    let mut done = 0;
    while done < steps {
        let n = chunk.min(steps - done);
        let bs = batches(b.series, done, n, steps, start, &mut counters, &mut rng);
        super::run_real_path(&store, bs, &cfg.ingest).await?;
        done += n;
    }
    store.maintain(now).await?;
    sqlx::query("ANALYZE").execute(store.pool()).await?;
    println!("  loaded in {:.1}s", t.elapsed().as_secs_f64());

    let mut limits: server::promql::QueryLimits = (&cfg.query).into();
    limits.max_series_per_selector = limits.max_series_per_selector.max(b.series);
    limits.max_series = limits.max_series.max(b.series);
    // One query reads every series of the family: measure it, do not cut it at the interactive
    // query timeout.
    limits.timeout = std::time::Duration::from_secs(1800);
    let mut analysis = cfg.analysis.clone();
    analysis.history = std::time::Duration::from_millis((b.hours * 3_600_000) as u64);
    let jobs = server::analysis::AnalysisJobs::new(store.clone(), limits, analysis);
    let sel = model::Selector::parse(METRIC).context("selector")?;
    let (mut reads, mut rounds) = (Vec::new(), Vec::new());
    let mut last = None;
    for i in 0..b.iterations {
        let t = Instant::now();
        let raw = store.raw_samples(&sel, start, now, usize::MAX).await?;
        let read = t.elapsed().as_secs_f64();
        let points: usize = raw.iter().map(|(_, p)| p.len()).sum();
        drop(raw);
        let t = Instant::now();
        let report = jobs.round(now).await?;
        let round = t.elapsed().as_secs_f64();
        anyhow::ensure!(
            report.signals == b.series && report.failed_queries == 0,
            "the round evaluated {} of {} series ({} failed queries)",
            report.signals,
            b.series,
            report.failed_queries
        );
        println!(
            "  iteration {}: read {points} samples {:.2}s; round {:.2}s ({} signals, {} opened, {} open)",
            i + 1,
            read,
            round,
            report.signals,
            report.opened,
            report.open_after
        );
        reads.push(read);
        rounds.push(round);
        last = Some(report);
    }
    let (read, round) = (median(&mut reads), median(&mut rounds));
    let report = last.expect("at least one iteration");
    println!(
        "bench detect: {} series, {} h history at 1 min",
        b.series, b.hours
    );
    println!(
        "  anchor (bare database read of the same samples): {:.3}s median",
        read
    );
    println!(
        "  detection round (read, rate, 3 detectors, writes): {:.3}s median = {:.3} ms per series per evaluation",
        round,
        round * 1000.0 / b.series as f64
    );
    println!("  ratio round / read: {:.2}", round / read);
    println!(
        "  anomalies open after the run: {} (one series in 100 stalls)",
        report.open_after
    );
    println!(
        "  peak RSS: {} MiB at start, {} MiB at the end",
        rss_start.map_or("?".into(), |k| (k / 1024).to_string()),
        peak_rss_kib().map_or("?".into(), |k| (k / 1024).to_string())
    );
    store.pool().close().await;
    Ok(())
}
