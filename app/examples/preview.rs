//! DEV PREVIEW ONLY — not used by any test, and not part of pipewatch.
//!
//! Serves the web app's router (the very `server/src/web.rs` the server uses) over an
//! in-memory backend of synthetic sine waves, so the pages can be developed and looked at
//! while the real server is elsewhere:
//!
//! ```sh
//! scripts/build-site.sh
//! cargo run -p app --features ssr --example preview -- 127.0.0.1:9091
//! ```
//!
//! Site root: `PIPEWATCH_SITE_ROOT`, default `target/site`.

#[path = "../../server/src/web.rs"]
mod web;

use app::Backend;
use model::{Labels, RangeQuery, RangeSeries, SeriesKey, StatusInfo, TargetHealth, TargetState};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

struct SineWaves {
    started_at: i64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

const STAGES: [&str; 3] = ["extract", "transform", "load"];

fn all_series() -> Vec<SeriesKey> {
    let mut out = Vec::new();
    for metric in [
        "demo_stage_rows_processed_total",
        "demo_stage_latency_seconds",
    ] {
        for stage in STAGES {
            out.push(SeriesKey::new(
                metric,
                Labels::from_pairs([("job", "demo"), ("stage", stage)]),
            ));
        }
    }
    out.push(SeriesKey::new("up", Labels::from_pairs([("job", "demo")])));
    out
}

fn value_at(key: &SeriesKey, t: i64) -> f64 {
    let stage = STAGES
        .iter()
        .position(|s| Some(*s) == key.labels.get("stage"))
        .unwrap_or(0) as f64;
    let x = t as f64 / 60_000.0;
    match key.metric.as_str() {
        "demo_stage_rows_processed_total" => {
            (t as f64 / 1000.0) * (10.0 + stage * 3.0) % 1e9 / 1000.0 + (x / 7.0).sin() * 40.0
        }
        "demo_stage_latency_seconds" => {
            0.2 + 0.1 * stage + 0.08 * (x / (3.0 + stage)).sin() + 0.02 * (x * 1.7).cos()
        }
        _ => 1.0,
    }
}

#[async_trait::async_trait]
impl Backend for SineWaves {
    async fn metric_names(&self) -> Result<Vec<String>, String> {
        let mut names: Vec<String> = all_series().into_iter().map(|k| k.metric).collect();
        names.sort();
        names.dedup();
        Ok(names)
    }
    async fn label_names(&self, metric: &str) -> Result<Vec<String>, String> {
        let mut names: Vec<String> = all_series()
            .into_iter()
            .filter(|k| k.metric == metric)
            .flat_map(|k| {
                k.labels
                    .iter()
                    .map(|(n, _)| n.to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }
    async fn label_values(&self, metric: &str, label: &str) -> Result<Vec<String>, String> {
        let mut values: Vec<String> = all_series()
            .into_iter()
            .filter(|k| k.metric == metric)
            .filter_map(|k| k.labels.get(label).map(str::to_string))
            .collect();
        values.sort();
        values.dedup();
        Ok(values)
    }
    async fn query_range(&self, selector: &str, q: RangeQuery) -> Result<Vec<RangeSeries>, String> {
        let sel = model::Selector::parse(selector).map_err(|e| e.message)?;
        let first = q.start + (q.step_ms - q.start.rem_euclid(q.step_ms)) % q.step_ms;
        Ok(all_series()
            .into_iter()
            .filter(|k| sel.matches(k))
            .map(|k| {
                let points = (0..)
                    .map(|i| first + i * q.step_ms)
                    .take_while(|t| *t <= q.end)
                    .map(|t| (t, value_at(&k, t)))
                    .collect();
                RangeSeries {
                    metric: k.metric,
                    labels: k.labels,
                    points,
                }
            })
            .collect())
    }
    async fn targets(&self) -> Vec<TargetHealth> {
        let now = now_ms();
        vec![
            TargetHealth {
                job: "demo".into(),
                url: "http://127.0.0.1:9101/metrics".into(),
                labels: Labels::new(),
                state: TargetState::Up,
                last_scrape: Some(now - 3_000),
                last_duration_seconds: Some(0.012),
                last_error: None,
                samples_scraped: 42,
                interval_seconds: 5.0,
                discovered_labels: Labels::new(),
                discovery_error: None,
            },
            TargetHealth {
                job: "warehouse".into(),
                url: "http://127.0.0.1:9102/metrics".into(),
                labels: Labels::new(),
                state: TargetState::Down,
                last_scrape: Some(now - 7_000),
                last_duration_seconds: Some(0.001),
                last_error: Some("connection refused (os error 111)".into()),
                samples_scraped: 0,
                interval_seconds: 5.0,
                discovered_labels: Labels::new(),
                discovery_error: None,
            },
        ]
    }
    async fn status(&self) -> Result<StatusInfo, String> {
        Ok(StatusInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            storage_mode: "postgres".into(),
            database: "in-memory preview (no database)".into(),
            series_count: all_series().len() as i64,
            samples_written_total: 123_456,
            ingest_rate: 87.5,
            queue_depth: 3,
            queue_capacity: 1024,
            started_at: self.started_at,
            retention_days: 15,
            samples_refused_too_old: 0,
            samples_refused_too_new: 0,
        })
    }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9091".into());
    let site_root = std::env::var("PIPEWATCH_SITE_ROOT").unwrap_or_else(|_| "target/site".into());
    let backend: Arc<dyn Backend> = Arc::new(SineWaves {
        started_at: now_ms() - 5_400_000,
    });
    let router = web::router(backend, site_root.into());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .expect("bind the preview address");
    tracing::info!("dev preview on http://{addr}");
    axum::serve(listener, router).await.expect("serve");
}
