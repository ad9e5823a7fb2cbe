//! The built-in demo: a simulated data pipeline that exposes realistic metrics on a local
//! `/metrics` endpoint, which pipewatch then scrapes like any other target.
//!
//! Pipeline: `stream_ingest` (reads a Kafka-like topic) -> `transform` (batch job) ->
//! `feature_store` -> `model_serving`. Each stage has a rows counter, an error counter, a
//! latency histogram and a queue depth gauge; datasets have freshness and row counts. Values
//! are a pure function of time (daily seasonality plus deterministic noise), so the history
//! that `pipewatch demo` backfills and the live scrapes join seamlessly.
//!
//! Fault injection (latency, stall, volume drop, ...) is left for the ingestion issue: [`Fault`]
//! is the hook, and only `None` exists today.

use std::f64::consts::PI;
use std::fmt::Write;
use std::net::SocketAddr;

const DAY_S: f64 = 86_400.0;

/// A fault injected at one stage. Only `None` is implemented yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    #[default]
    None,
}

struct Stage {
    name: &'static str,
    /// Mean rows per second.
    rate: f64,
    /// Median latency in seconds.
    median_latency: f64,
    error_ratio: f64,
}

const STAGES: [Stage; 4] = [
    Stage {
        name: "stream_ingest",
        rate: 1200.0,
        median_latency: 0.012,
        error_ratio: 0.0005,
    },
    Stage {
        name: "transform",
        rate: 1150.0,
        median_latency: 0.180,
        error_ratio: 0.001,
    },
    Stage {
        name: "feature_store",
        rate: 1100.0,
        median_latency: 0.025,
        error_ratio: 0.0002,
    },
    Stage {
        name: "model_serving",
        rate: 300.0,
        median_latency: 0.045,
        error_ratio: 0.002,
    },
];

const DATASETS: [(&str, f64); 3] = [
    ("raw_events", 60.0),
    ("clean_orders", 300.0),
    ("features_daily", 900.0),
];

const BUCKETS: [f64; 12] = [
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    f64::INFINITY,
];

/// Deterministic noise in [-1, 1] for (key, t).
fn noise(key: u64, t: i64) -> f64 {
    let mut x =
        (t as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ key.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    (x as f64 / u64::MAX as f64) * 2.0 - 1.0
}

/// Seasonal factor: busy in the (UTC) afternoon, quiet at night, between 0.5 and 1.5.
fn season(t: f64) -> f64 {
    1.0 + 0.5 * (2.0 * PI * (t / DAY_S - 0.375)).sin()
}

/// Integral of rate * season over [0, t]: a smooth, strictly increasing counter.
fn counted(rate: f64, t: f64) -> f64 {
    let w = 2.0 * PI / DAY_S;
    let phase = -0.375 * 2.0 * PI;
    rate * (t - 0.5 / w * ((w * t + phase).cos() - phase.cos()))
}

/// Standard normal CDF (Abramowitz & Stegun 7.1.26 for erf; |error| < 1.5e-7).
fn normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-x * x).exp();
    let erf = if z >= 0.0 { y } else { -y };
    0.5 * (1.0 + erf)
}

/// Renders the simulated pipeline's metrics at Unix time `t_ms`, in text format 0.0.4.
pub fn render(t_ms: i64, fault: Fault) -> String {
    let _ = fault;
    let t = t_ms as f64 / 1000.0;
    // Counters start at the demo epoch so their values stay readable.
    let since = t - 1_700_000_000.0;
    let mut out = String::with_capacity(8192);
    let w = &mut out;
    let _ = writeln!(w, "# HELP demo_pipeline_info Version of the simulated pipeline.\n# TYPE demo_pipeline_info gauge");
    let _ = writeln!(
        w,
        "demo_pipeline_info{{version=\"1.4.2\",owner=\"data-platform\"}} 1"
    );

    let _ = writeln!(w, "# HELP demo_stage_rows_processed_total Rows processed by each pipeline stage.\n# TYPE demo_stage_rows_processed_total counter");
    for s in &STAGES {
        let _ = writeln!(
            w,
            "demo_stage_rows_processed_total{{stage=\"{}\"}} {}",
            s.name,
            counted(s.rate, since).floor()
        );
    }
    let _ = writeln!(w, "# HELP demo_stage_errors_total Rows that failed in each stage.\n# TYPE demo_stage_errors_total counter");
    for s in &STAGES {
        let _ = writeln!(
            w,
            "demo_stage_errors_total{{stage=\"{}\"}} {}",
            s.name,
            counted(s.rate * s.error_ratio, since).floor()
        );
    }
    let _ = writeln!(w, "# HELP demo_stage_latency_seconds Time to process one batch.\n# TYPE demo_stage_latency_seconds histogram");
    for s in &STAGES {
        // Batches per second ~ rate/100; a fixed log-normal shape keeps bucket counters monotonic.
        let count = counted(s.rate / 100.0, since).floor();
        let sigma = 0.6;
        for le in BUCKETS {
            let frac = if le.is_infinite() {
                1.0
            } else {
                normal_cdf(((le / s.median_latency).ln()) / sigma)
            };
            let le_s = if le.is_infinite() {
                "+Inf".to_string()
            } else {
                format!("{le}")
            };
            let _ = writeln!(
                w,
                "demo_stage_latency_seconds_bucket{{stage=\"{}\",le=\"{le_s}\"}} {}",
                s.name,
                (count * frac).floor()
            );
        }
        let mean = s.median_latency * (sigma * sigma / 2.0_f64).exp();
        let _ = writeln!(
            w,
            "demo_stage_latency_seconds_sum{{stage=\"{}\"}} {:.3}",
            s.name,
            count * mean
        );
        let _ = writeln!(
            w,
            "demo_stage_latency_seconds_count{{stage=\"{}\"}} {count}",
            s.name
        );
    }
    let _ = writeln!(w, "# HELP demo_stage_queue_depth Items waiting in front of each stage.\n# TYPE demo_stage_queue_depth gauge");
    for (i, s) in STAGES.iter().enumerate() {
        let depth =
            (s.rate / 20.0) * season(t) * (1.0 + 0.15 * noise(100 + i as u64, t_ms / 5_000));
        let _ = writeln!(
            w,
            "demo_stage_queue_depth{{stage=\"{}\"}} {:.0}",
            s.name,
            depth.max(0.0)
        );
    }
    let _ = writeln!(w, "# HELP demo_dataset_freshness_seconds Age of the newest row in each dataset.\n# TYPE demo_dataset_freshness_seconds gauge");
    for (i, (name, period)) in DATASETS.iter().enumerate() {
        // Sawtooth: grows until the next load lands, then drops to a few seconds.
        let age =
            (since.rem_euclid(*period)) + 3.0 + 2.0 * noise(200 + i as u64, t_ms / 15_000).abs();
        let _ = writeln!(
            w,
            "demo_dataset_freshness_seconds{{dataset=\"{name}\"}} {age:.1}"
        );
    }
    let _ = writeln!(
        w,
        "# HELP demo_dataset_rows Rows in each dataset.\n# TYPE demo_dataset_rows gauge"
    );
    for (i, (name, period)) in DATASETS.iter().enumerate() {
        let loads = (since / period).floor();
        let per_load = STAGES[i.min(STAGES.len() - 1)].rate * period * 0.9;
        let _ = writeln!(
            w,
            "demo_dataset_rows{{dataset=\"{name}\"}} {:.0}",
            loads * per_load
        );
    }
    let _ = writeln!(w, "# HELP demo_model_inference_seconds Model inference latency.\n# TYPE demo_model_inference_seconds summary");
    let n = counted(300.0, since).floor();
    for (q, mult) in [(0.5, 1.0), (0.9, 1.9), (0.99, 3.4)] {
        let v = 0.045 * mult * (1.0 + 0.1 * season(t) + 0.05 * noise(300, t_ms / 10_000));
        let _ = writeln!(
            w,
            "demo_model_inference_seconds{{model=\"churn_v7\",quantile=\"{q}\"}} {v:.4}"
        );
    }
    let _ = writeln!(
        w,
        "demo_model_inference_seconds_sum{{model=\"churn_v7\"}} {:.3}",
        n * 0.05
    );
    let _ = writeln!(
        w,
        "demo_model_inference_seconds_count{{model=\"churn_v7\"}} {n}"
    );
    out
}

/// Serves the simulated pipeline on 127.0.0.1 (port 0 = any free port); returns the address.
pub async fn serve_pipeline(port: u16, fault: Fault) -> anyhow::Result<SocketAddr> {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let router = axum::Router::new().route(
        "/metrics",
        get(move || async move {
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                render(crate::scrape_manager::now_ms(), fault),
            )
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "demo pipeline endpoint stopped");
        }
    });
    Ok(addr)
}

/// History for the demo: the same metrics rendered every `step_ms` over the last `span_ms`,
/// parsed by the real parser and labelled as `target` labels its scrapes, so the charts have a
/// day of context from the first minute and history and live data are one series.
pub fn backfill(
    target: &collectors::scrape::ScrapeTarget,
    now_ms: i64,
    span_ms: i64,
    step_ms: i64,
) -> Vec<model::Batch> {
    let labels = target.target_labels();
    let mut out = Vec::new();
    let mut t = now_ms - span_ms;
    t -= t.rem_euclid(step_ms);
    while t < now_ms - step_ms {
        let text = render(t, Fault::None);
        match collectors::prometheus_text::parse(
            &text,
            collectors::prometheus_text::Format::Text004,
            t,
        ) {
            Ok(mut batch) => {
                for s in &mut batch.series {
                    for (k, v) in labels.iter() {
                        s.key.labels.insert(k, v);
                    }
                }
                out.push(batch);
            }
            Err(e) => tracing::error!(error = %e, "demo backfill rendered unparseable text (bug)"),
        }
        t += step_ms;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_never_decrease() {
        let mut prev = render(1_800_000_000_000, Fault::None);
        for k in 1..200 {
            let t = 1_800_000_000_000 + k * 37_000;
            let cur = render(t, Fault::None);
            for (a, b) in prev.lines().zip(cur.lines()) {
                if a.starts_with("demo_stage_rows_processed_total")
                    || a.contains("_bucket")
                    || a.contains("_count")
                {
                    let va: f64 = a.rsplit(' ').next().unwrap().parse().unwrap();
                    let vb: f64 = b.rsplit(' ').next().unwrap().parse().unwrap();
                    assert!(vb >= va, "{a} -> {b}");
                }
            }
            prev = cur;
        }
    }

    #[test]
    fn rendered_text_parses_with_histogram_types() {
        let text = render(1_800_000_000_000, Fault::None);
        let batch = collectors::prometheus_text::parse(
            &text,
            collectors::prometheus_text::Format::Text004,
            1,
        )
        .unwrap();
        let h = batch
            .series
            .iter()
            .find(|s| s.key.metric == "demo_stage_latency_seconds_bucket")
            .unwrap();
        assert_eq!(h.metric_type, model::MetricType::Histogram);
        assert!(batch.series.len() > 60);
    }

    #[test]
    fn normal_cdf_matches_known_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.959_963_985) - 0.975).abs() < 1e-6);
        assert!((normal_cdf(-1.0) - 0.158_655_254).abs() < 1e-6);
    }
}
