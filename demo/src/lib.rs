//! The built-in demo: a simulated data pipeline that exposes realistic metrics on a local
//! `/metrics` endpoint, which pipewatch then scrapes like any other target.
//!
//! Pipeline: `stream_ingest` (reads a Kafka-like topic) -> `transform` (batch job) ->
//! `feature_store` -> `model_serving`. Each stage has a rows counter, an error counter, a
//! latency histogram and a queue depth gauge; datasets have freshness and row counts. Values
//! are a pure function of time (daily seasonality plus deterministic noise), so the history
//! that `pipewatch demo` backfills and the live scrapes join seamlessly.
//!
//! `pipewatch demo --inject <fault> --at <stage>` injects a [`Fault`] from a chosen time on, so
//! that analysis has something real to find: the faulty stage's own metrics change, and the
//! effect travels downstream the way it would in a real pipeline (a stalled stage starves the
//! stages after it; their datasets go stale). `--for` ends the fault after a while (the stage
//! recovers; what was lost during the fault stays lost). Counters and histogram buckets stay
//! monotonic across both the fault's start and its end.
//!
//! This crate does not depend on the server: it reaches pipewatch only the way any pipeline
//! would, through the scraped `/metrics` endpoint and the public push protocols ([`push`]:
//! remote_write, OTLP/HTTP, OpenLineage, Great Expectations results). The `pipewatch demo`
//! command (cli/) starts a server and points both at it; [`backfill`] hands it the day of
//! history as plain `model::Batch`es.

pub mod dq;
pub mod lineage;
pub mod otlp;
pub mod push;

use std::f64::consts::PI;
use std::fmt::Write;
use std::net::SocketAddr;

/// The rule set `pipewatch demo` evaluates, so injected faults fire alerts.
pub const RULES: &str = include_str!("../rules/pipewatch-demo.rules.yml");
/// Where [`RULES`] lives in the repository, for messages.
pub const RULES_PATH: &str = "demo/rules/pipewatch-demo.rules.yml";

const DAY_S: f64 = 86_400.0;

/// What goes wrong (`--inject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FaultKind {
    /// Batches at the stage take 6x longer (latency histogram shifts right).
    Latency,
    /// The stage stops processing: its rows counter and every downstream one go flat, its queue
    /// grows, and the datasets it and later stages produce stop being refreshed.
    Stall,
    /// The stage (and everything downstream) processes a fifth of the usual rows.
    VolumeDrop,
    /// 40x the usual error ratio at the stage.
    ErrorBurst,
    /// The dataset the stage writes gains a column (`demo_dataset_columns`).
    SchemaChange,
    /// Null ratio of the stage's dataset jumps from ~0.1 % to ~12 % (`demo_dataset_null_ratio`).
    DqFailure,
    /// The feature the stage produces shifts by two standard deviations
    /// (`demo_feature_value` histogram).
    Drift,
}

/// A fault at one stage from `start_ms` on, until `end_ms` if it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    /// Index into the pipeline's stages (see [`stage_names`]).
    pub stage: usize,
    pub start_ms: i64,
    /// When the stage recovers (`--for`); `None` keeps the fault for good.
    pub end_ms: Option<i64>,
}

impl Fault {
    /// Parses `--at`: a stage name. Errors list the stages.
    pub fn new(kind: FaultKind, stage: &str, start_ms: i64) -> Result<Fault, String> {
        let stage = STAGES.iter().position(|s| s.name == stage).ok_or_else(|| {
            format!(
                "unknown stage {stage:?} for --at; the demo pipeline's stages are {}",
                stage_names().join(", ")
            )
        })?;
        Ok(Fault {
            kind,
            stage,
            start_ms,
            end_ms: None,
        })
    }

    /// The same fault, ending `duration_ms` after it starts (`--for`).
    pub fn lasting(self, duration_ms: i64) -> Fault {
        Fault {
            end_ms: Some(self.start_ms + duration_ms.max(0)),
            ..self
        }
    }

    /// Whether the fault is going on at `t_ms` (started and not yet over).
    pub fn in_effect(&self, t_ms: i64) -> bool {
        t_ms >= self.start_ms && self.end_ms.is_none_or(|end| t_ms < end)
    }

    /// The fault's start and end in demo seconds (end infinite when it never ends), for the
    /// counters' [`Change`].
    fn window(&self) -> (f64, f64) {
        (
            since_epoch(self.start_ms),
            self.end_ms.map_or(f64::INFINITY, since_epoch),
        )
    }

    /// A change of a counter's rate by `factor` for as long as the fault lasts.
    fn change(&self, factor: f64) -> Change {
        let (start, end) = self.window();
        Change { start, end, factor }
    }

    fn hits(&self, kind: FaultKind, stage: usize) -> bool {
        self.kind == kind && self.stage == stage
    }

    /// Stall and volume drop reach the stages after the faulty one.
    fn throttles(&self, stage: usize) -> Option<f64> {
        match self.kind {
            FaultKind::Stall if stage >= self.stage => Some(0.0),
            FaultKind::VolumeDrop if stage >= self.stage => Some(0.2),
            _ => None,
        }
    }
}

/// The demo pipeline's stages, upstream first.
pub fn stage_names() -> Vec<&'static str> {
    STAGES.iter().map(|s| s.name).collect()
}

/// Seconds since the demo epoch of a Unix time in ms (counters start at the epoch).
fn since_epoch(t_ms: i64) -> f64 {
    t_ms as f64 / 1000.0 - 1_700_000_000.0
}

/// A counter's rate multiplied by `factor` between `start` and `end` (demo seconds).
#[derive(Debug, Clone, Copy)]
struct Change {
    start: f64,
    end: f64,
    factor: f64,
}

/// A counter of `rate` rows/s (seasonal) at `since`, multiplied by the change's factor while
/// it lasts. What the change added or lost stays in the counter after its end (the normal rate
/// resumes from there instead of jumping back to the undisturbed value), so the counter is
/// monotonic across both the start and the end, whatever the factor.
fn counted_with(rate: f64, since: f64, change: Option<Change>) -> f64 {
    match change {
        Some(c) if since > c.start => {
            let until = since.min(c.end);
            counted(rate, since)
                - (1.0 - c.factor) * (counted(rate, until) - counted(rate, c.start))
        }
        _ => counted(rate, since),
    }
}

/// Of the `total` events counted by `at(since)`, how many happened while the fault was in
/// effect (for histograms whose shape differs during the fault).
fn during_fault(at: impl Fn(f64) -> f64, since: f64, window: Option<(f64, f64)>) -> f64 {
    match window {
        Some((start, end)) if since > start => at(since.min(end)) - at(start),
        _ => 0.0,
    }
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

const FEATURE_BUCKETS: [f64; 8] = [60.0, 80.0, 100.0, 120.0, 140.0, 160.0, 180.0, f64::INFINITY];

/// P(X <= le) for a log-normal with this median and shape.
fn lognormal_cdf(le: f64, median: f64, sigma: f64) -> f64 {
    if le.is_infinite() {
        1.0
    } else {
        normal_cdf((le / median).ln() / sigma)
    }
}

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
pub fn render(t_ms: i64, fault: Option<Fault>) -> String {
    let t = t_ms as f64 / 1000.0;
    // Counters start at the demo epoch so their values stay readable.
    let since = since_epoch(t_ms);
    // The fault once it has started (its effect on counters lasts beyond its end), and the
    // fault while it is going on (for gauges, which recover at its end).
    let active = fault.filter(|f| t_ms >= f.start_ms);
    let current = fault.filter(|f| f.in_effect(t_ms));
    let throttle = |stage: usize| active.and_then(|f| Some(f.change(f.throttles(stage)?)));
    let mut out = String::with_capacity(8192);
    let w = &mut out;
    let _ = writeln!(w, "# HELP demo_pipeline_info Version of the simulated pipeline.\n# TYPE demo_pipeline_info gauge");
    let _ = writeln!(
        w,
        "demo_pipeline_info{{version=\"1.4.2\",owner=\"data-platform\"}} 1"
    );

    let _ = writeln!(w, "# HELP demo_stage_rows_processed_total Rows processed by each pipeline stage.\n# TYPE demo_stage_rows_processed_total counter");
    for (i, s) in STAGES.iter().enumerate() {
        let _ = writeln!(
            w,
            "demo_stage_rows_processed_total{{stage=\"{}\"}} {}",
            s.name,
            counted_with(s.rate, since, throttle(i)).floor()
        );
    }
    let _ = writeln!(w, "# HELP demo_stage_errors_total Rows that failed in each stage.\n# TYPE demo_stage_errors_total counter");
    for (i, s) in STAGES.iter().enumerate() {
        let burst = active
            .filter(|f| f.hits(FaultKind::ErrorBurst, i))
            .map(|f| f.change(40.0));
        let _ = writeln!(
            w,
            "demo_stage_errors_total{{stage=\"{}\"}} {}",
            s.name,
            counted_with(s.rate * s.error_ratio, since, burst.or(throttle(i))).floor()
        );
    }
    let _ = writeln!(w, "# HELP demo_stage_latency_seconds Time to process one batch.\n# TYPE demo_stage_latency_seconds histogram");
    for (i, s) in STAGES.iter().enumerate() {
        // Batches per second ~ rate/100. Batches during the fault have the slow log-normal
        // shape and all others the normal one, so bucket counters stay monotonic.
        let batches = |at: f64| counted_with(s.rate / 100.0, at, throttle(i)).floor();
        let total = batches(since);
        let slow = during_fault(
            batches,
            since,
            active
                .filter(|f| f.hits(FaultKind::Latency, i))
                .map(|f| f.window()),
        );
        let shapes = [
            (total - slow, s.median_latency),
            (slow, s.median_latency * 6.0),
        ];
        let sigma = 0.6;
        for le in BUCKETS {
            let in_bucket: f64 = shapes
                .iter()
                .map(|(n, median)| (n * lognormal_cdf(le, *median, sigma)).floor())
                .sum();
            let le_s = if le.is_infinite() {
                "+Inf".to_string()
            } else {
                format!("{le}")
            };
            let _ = writeln!(
                w,
                "demo_stage_latency_seconds_bucket{{stage=\"{}\",le=\"{le_s}\"}} {in_bucket}",
                s.name,
            );
        }
        let mean = |median: f64| median * (sigma * sigma / 2.0_f64).exp();
        let sum: f64 = shapes.iter().map(|(n, median)| n * mean(*median)).sum();
        let _ = writeln!(
            w,
            "demo_stage_latency_seconds_sum{{stage=\"{}\"}} {sum:.3}",
            s.name
        );
        let _ = writeln!(
            w,
            "demo_stage_latency_seconds_count{{stage=\"{}\"}} {total}",
            s.name
        );
    }
    let _ = writeln!(w, "# HELP demo_stage_queue_depth Items waiting in front of each stage.\n# TYPE demo_stage_queue_depth gauge");
    for (i, s) in STAGES.iter().enumerate() {
        let mut depth =
            (s.rate / 20.0) * season(t) * (1.0 + 0.15 * noise(100 + i as u64, t_ms / 5_000));
        if let Some(f) = active.filter(|f| f.hits(FaultKind::Stall, i)) {
            // Arrivals pile up in front of the stalled stage; once it recovers it works the
            // backlog off within a minute.
            let (start, end) = f.window();
            let backlog = counted(s.rate, since.min(end)) - counted(s.rate, start);
            depth += backlog * (1.0 - (since - end).max(0.0) / 60.0).max(0.0);
        }
        let _ = writeln!(
            w,
            "demo_stage_queue_depth{{stage=\"{}\"}} {:.0}",
            s.name,
            depth.max(0.0)
        );
    }
    let _ = writeln!(w, "# HELP demo_dataset_freshness_seconds Age of the newest row in each dataset.\n# TYPE demo_dataset_freshness_seconds gauge");
    for (i, (name, period)) in DATASETS.iter().enumerate() {
        // Sawtooth: grows until the next load lands, then drops to a few seconds. Dataset i is
        // written by stage i; a stall there or upstream stops the loads.
        // Once the stall is over, the first load lands at its end.
        let stall = active
            .filter(|f| f.kind == FaultKind::Stall && f.stage <= i)
            .map(|f| f.window());
        let last_load = match stall {
            Some((start, end)) if since < end => start - start.rem_euclid(*period),
            Some((_, end)) => (since - since.rem_euclid(*period)).max(end),
            None => since - since.rem_euclid(*period),
        };
        let age = (since - last_load) + 3.0 + 2.0 * noise(200 + i as u64, t_ms / 15_000).abs();
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
        let stage = &STAGES[i.min(STAGES.len() - 1)];
        // Rows land once per load: the stage's processed rows up to the last load.
        let last_load = since - since.rem_euclid(*period);
        let rows = counted_with(stage.rate * 0.9, last_load, throttle(i));
        let _ = writeln!(w, "demo_dataset_rows{{dataset=\"{name}\"}} {rows:.0}");
    }
    let _ = writeln!(w, "# HELP demo_dataset_columns Columns in each dataset's schema.\n# TYPE demo_dataset_columns gauge");
    for (i, (name, _)) in DATASETS.iter().enumerate() {
        let changed = current.is_some_and(|f| f.hits(FaultKind::SchemaChange, i));
        let _ = writeln!(
            w,
            "demo_dataset_columns{{dataset=\"{name}\"}} {}",
            [14, 9, 41][i] + usize::from(changed)
        );
    }
    let _ = writeln!(w, "# HELP demo_dataset_null_ratio Share of null values in each dataset's key column.\n# TYPE demo_dataset_null_ratio gauge");
    for (i, (name, _)) in DATASETS.iter().enumerate() {
        let broken = current.is_some_and(|f| f.hits(FaultKind::DqFailure, i));
        let base = if broken { 0.12 } else { 0.001 };
        let ratio = base * (1.0 + 0.2 * noise(400 + i as u64, t_ms / 15_000));
        let _ = writeln!(
            w,
            "demo_dataset_null_ratio{{dataset=\"{name}\",column=\"customer_id\"}} {ratio:.5}"
        );
    }
    let _ = writeln!(w, "# HELP demo_feature_value Distribution of the feature each stage produces.\n# TYPE demo_feature_value histogram");
    for (i, s) in STAGES.iter().enumerate() {
        // One observation per processed row; ~ N(100, 15), during the fault N(130, 15).
        let rows = |at: f64| counted_with(s.rate, at, throttle(i)).floor();
        let total = rows(since);
        let drifted = during_fault(
            rows,
            since,
            active
                .filter(|f| f.hits(FaultKind::Drift, i))
                .map(|f| f.window()),
        );
        let shapes = [(total - drifted, 100.0), (drifted, 130.0)];
        for le in FEATURE_BUCKETS {
            let n: f64 = shapes
                .iter()
                .map(|(n, mean)| (n * normal_cdf((le - mean) / 15.0)).floor())
                .sum();
            let le_s = if le.is_infinite() {
                "+Inf".to_string()
            } else {
                format!("{le}")
            };
            let _ = writeln!(
                w,
                "demo_feature_value_bucket{{stage=\"{}\",feature=\"basket_value\",le=\"{le_s}\"}} {n}",
                s.name
            );
        }
        let sum: f64 = shapes.iter().map(|(n, mean)| n * mean).sum();
        let _ = writeln!(
            w,
            "demo_feature_value_sum{{stage=\"{}\",feature=\"basket_value\"}} {sum:.0}",
            s.name
        );
        let _ = writeln!(
            w,
            "demo_feature_value_count{{stage=\"{}\",feature=\"basket_value\"}} {total}",
            s.name
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
pub async fn serve_pipeline(port: u16, fault: Option<Fault>) -> anyhow::Result<SocketAddr> {
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
                render(model::clock::now_ms(), fault),
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
        let text = render(t, None);
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
        let mut prev = render(1_800_000_000_000, None);
        for k in 1..200 {
            let t = 1_800_000_000_000 + k * 37_000;
            let cur = render(t, None);
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
        let text = render(1_800_000_000_000, None);
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

    /// The value of the line that starts with `series` (name and labels as rendered).
    fn value(text: &str, series: &str) -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .unwrap_or_else(|| panic!("{series} not rendered"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }

    const T0: i64 = 1_800_000_000_000;
    const HOUR: i64 = 3_600_000;

    fn fault(kind: FaultKind, stage: &str) -> Option<Fault> {
        Some(Fault::new(kind, stage, T0).unwrap())
    }

    /// Counters and histogram buckets never decrease across the fault start, for every fault.
    #[test]
    fn counters_stay_monotonic_across_every_fault() {
        for kind in [
            FaultKind::Latency,
            FaultKind::Stall,
            FaultKind::VolumeDrop,
            FaultKind::ErrorBurst,
            FaultKind::Drift,
        ] {
            let f = fault(kind, "transform");
            let mut prev = render(T0 - 60_000, f);
            for k in 0..40 {
                let cur = render(T0 - 30_000 + k * 15_000, f);
                for (a, b) in prev.lines().zip(cur.lines()) {
                    if a.contains("_total{") || a.contains("_bucket{") || a.contains("_count{") {
                        let va: f64 = a.rsplit(' ').next().unwrap().parse().unwrap();
                        let vb: f64 = b.rsplit(' ').next().unwrap().parse().unwrap();
                        assert!(vb >= va, "{kind:?}: {a} -> {b}");
                    }
                }
                prev = cur;
            }
        }
    }

    const ALL_KINDS: [FaultKind; 7] = [
        FaultKind::Latency,
        FaultKind::Stall,
        FaultKind::VolumeDrop,
        FaultKind::ErrorBurst,
        FaultKind::SchemaChange,
        FaultKind::DqFailure,
        FaultKind::Drift,
    ];

    /// Every line of a counter, histogram bucket/count/sum, in render order.
    fn cumulative_lines(text: &str) -> Vec<(&str, f64)> {
        text.lines()
            .filter(|l| {
                l.contains("_total{")
                    || l.contains("_bucket{")
                    || l.contains("_count{")
                    || l.contains("_sum{")
            })
            .map(|l| {
                let (series, v) = l.rsplit_once(' ').unwrap();
                (series, v.parse().unwrap())
            })
            .collect()
    }

    /// `--for`: counters and histograms never decrease across the fault's end either, for
    /// every fault kind at every stage, sampled as often as the demo is scraped.
    #[test]
    fn counters_stay_monotonic_across_the_end_of_every_fault() {
        for kind in ALL_KINDS {
            for stage in stage_names() {
                let f = fault(kind, stage).map(|f| f.lasting(10 * 60_000));
                let mut prev = render(T0 - 10_000, f);
                for k in 0..400 {
                    // 5 s steps through the start, the whole fault and past its end.
                    let cur = render(T0 - 5_000 + k * 5_000, f);
                    for ((a, va), (b, vb)) in cumulative_lines(&prev)
                        .into_iter()
                        .zip(cumulative_lines(&cur))
                    {
                        assert_eq!(a, b);
                        assert!(vb >= va, "{kind:?} at {stage}, step {k}: {a} {va} -> {vb}");
                    }
                    prev = cur;
                }
            }
        }
    }

    /// After the end the stage runs at its normal rate again, from where the fault left its
    /// counters: what the stall lost stays lost (no jump back to the undisturbed value).
    #[test]
    fn after_a_stall_ends_the_stage_resumes_at_its_normal_rate_without_catching_up() {
        let f = fault(FaultKind::Stall, "transform").map(|f| f.lasting(HOUR));
        let rows = "demo_stage_rows_processed_total{stage=\"transform\"}";
        let at = |t, f| value(&render(t, f), rows);
        // During the stall: flat.
        assert_eq!(at(T0 + HOUR - 1_000, f), at(T0, f));
        // After it: the normal rate again...
        let after = at(T0 + 3 * HOUR, f) - at(T0 + 2 * HOUR, f);
        let normal = at(T0 + 3 * HOUR, None) - at(T0 + 2 * HOUR, None);
        assert!((after - normal).abs() <= 1.0, "{after} vs {normal}");
        // ...an hour's worth of rows behind the undisturbed counter.
        let lost = at(T0 + 2 * HOUR, None) - at(T0 + 2 * HOUR, f);
        let hour_of_rows = at(T0 + HOUR, None) - at(T0, None);
        assert!(
            (lost - hour_of_rows).abs() <= 1.0,
            "{lost} vs {hour_of_rows}"
        );
        // Gauges recover: the dataset is loaded again and the queue is worked off.
        let fresh = value(
            &render(T0 + HOUR + 30_000, f),
            "demo_dataset_freshness_seconds{dataset=\"clean_orders\"}",
        );
        assert!(
            fresh < 60.0,
            "clean_orders age right after the stall: {fresh}"
        );
        let depth = |t| value(&render(t, f), "demo_stage_queue_depth{stage=\"transform\"}");
        assert!(depth(T0 + HOUR) > 1_000_000.0);
        assert!(depth(T0 + HOUR + 2 * 60_000) < 1_000.0);
        // The rows of the datasets it writes never go backwards either.
        let ds = "demo_dataset_rows{dataset=\"clean_orders\"}";
        let mut prev = value(&render(T0 - 600_000, f), ds);
        for k in 0..200 {
            let cur = value(&render(T0 - 600_000 + k * 30_000, f), ds);
            assert!(cur >= prev, "step {k}: {prev} -> {cur}");
            prev = cur;
        }
    }

    #[test]
    fn gauge_faults_end_with_the_fault() {
        let f = fault(FaultKind::DqFailure, "transform").map(|f| f.lasting(HOUR));
        let nulls = "demo_dataset_null_ratio{dataset=\"clean_orders\",column=\"customer_id\"}";
        assert!(value(&render(T0 + HOUR - 1, f), nulls) > 0.09);
        assert!(value(&render(T0 + HOUR, f), nulls) < 0.002);
        let f = fault(FaultKind::SchemaChange, "transform").map(|f| f.lasting(HOUR));
        let cols = "demo_dataset_columns{dataset=\"clean_orders\"}";
        assert_eq!(
            value(&render(T0 + HOUR - 1, f), cols),
            value(&render(T0 + HOUR, f), cols) + 1.0
        );
    }

    fn rate_over_hour(f: Option<Fault>, series: &str) -> f64 {
        value(&render(T0 + 2 * HOUR, f), series) - value(&render(T0 + HOUR, f), series)
    }

    #[test]
    fn a_stall_stops_the_stage_and_everything_downstream_and_datasets_go_stale() {
        let f = fault(FaultKind::Stall, "transform");
        let rows = |stage: &str| format!("demo_stage_rows_processed_total{{stage=\"{stage}\"}}");
        assert!(rate_over_hour(f, &rows("stream_ingest")) > 1_000_000.0);
        for stage in ["transform", "feature_store", "model_serving"] {
            assert_eq!(rate_over_hour(f, &rows(stage)), 0.0, "{stage}");
        }
        let age = |t, ds: &str| {
            value(
                &render(t, f),
                &format!("demo_dataset_freshness_seconds{{dataset=\"{ds}\"}}"),
            )
        };
        // raw_events (written by stream_ingest) stays fresh; clean_orders ages without bound.
        assert!(age(T0 + 2 * HOUR, "raw_events") < 70.0);
        assert!(age(T0 + 2 * HOUR, "clean_orders") > 2.0 * 3600.0);
        let depth = value(
            &render(T0 + HOUR, f),
            "demo_stage_queue_depth{stage=\"transform\"}",
        );
        assert!(
            depth > 1_000_000.0,
            "queue in front of the stalled stage: {depth}"
        );
    }

    #[test]
    fn a_volume_drop_cuts_rows_to_a_fifth_from_the_stage_on() {
        let f = fault(FaultKind::VolumeDrop, "feature_store");
        let s = "demo_stage_rows_processed_total{stage=\"feature_store\"}";
        let ratio = rate_over_hour(f, s) / rate_over_hour(None, s);
        assert!((ratio - 0.2).abs() < 0.01, "{ratio}");
        let up = "demo_stage_rows_processed_total{stage=\"transform\"}";
        assert_eq!(rate_over_hour(f, up), rate_over_hour(None, up));
    }

    #[test]
    fn an_error_burst_multiplies_errors_at_that_stage_only() {
        let f = fault(FaultKind::ErrorBurst, "model_serving");
        let s = "demo_stage_errors_total{stage=\"model_serving\"}";
        let ratio = rate_over_hour(f, s) / rate_over_hour(None, s);
        assert!((ratio - 40.0).abs() < 1.0, "{ratio}");
        let other = "demo_stage_errors_total{stage=\"transform\"}";
        assert_eq!(rate_over_hour(f, other), rate_over_hour(None, other));
    }

    /// Mean latency of batches in the hour after `T0 + 1h`, from the histogram's sum and count.
    fn mean_latency(f: Option<Fault>, stage: &str) -> f64 {
        let sum = format!("demo_stage_latency_seconds_sum{{stage=\"{stage}\"}}");
        let count = format!("demo_stage_latency_seconds_count{{stage=\"{stage}\"}}");
        rate_over_hour(f, &sum) / rate_over_hour(f, &count)
    }

    #[test]
    fn injected_latency_shifts_the_stage_histogram_sixfold() {
        let f = fault(FaultKind::Latency, "transform");
        let ratio = mean_latency(f, "transform") / mean_latency(None, "transform");
        assert!((ratio - 6.0).abs() < 0.05, "{ratio}");
        assert_eq!(
            mean_latency(f, "feature_store"),
            mean_latency(None, "feature_store")
        );
    }

    #[test]
    fn drift_moves_the_feature_mean_by_two_sigma() {
        let f = fault(FaultKind::Drift, "transform");
        let sum = "demo_feature_value_sum{stage=\"transform\",feature=\"basket_value\"}";
        let count = "demo_feature_value_count{stage=\"transform\",feature=\"basket_value\"}";
        let mean = |f| rate_over_hour(f, sum) / rate_over_hour(f, count);
        assert!((mean(None) - 100.0).abs() < 0.5, "{}", mean(None));
        assert!((mean(f) - 130.0).abs() < 0.5, "{}", mean(f));
    }

    #[test]
    fn schema_change_and_dq_failure_show_on_the_stage_dataset_after_the_start() {
        let f = fault(FaultKind::SchemaChange, "transform");
        let cols = "demo_dataset_columns{dataset=\"clean_orders\"}";
        assert_eq!(
            value(&render(T0 - 1, f), cols) + 1.0,
            value(&render(T0, f), cols)
        );
        let f = fault(FaultKind::DqFailure, "transform");
        let nulls = "demo_dataset_null_ratio{dataset=\"clean_orders\",column=\"customer_id\"}";
        assert!(value(&render(T0 - 1, f), nulls) < 0.002);
        assert!(value(&render(T0, f), nulls) > 0.09);
    }

    #[test]
    fn unknown_stages_are_refused_with_the_list() {
        let e = Fault::new(FaultKind::Stall, "loader", 0).unwrap_err();
        assert!(
            e.contains("stream_ingest, transform, feature_store, model_serving"),
            "{e}"
        );
    }

    #[test]
    fn normal_cdf_matches_known_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.959_963_985) - 0.975).abs() < 1e-6);
        assert!((normal_cdf(-1.0) - 0.158_655_254).abs() < 1e-6);
    }
}
