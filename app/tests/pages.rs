//! The pages as the server renders them, through the real router of `server/src/web.rs`
//! (compiled in here) and real HTTP requests handled by axum: complete HTML before any script
//! runs, errors in an error box, empty results explained.
//!
//! The data comes from a small fixed backend: the trait is the seam to the store, and what is
//! tested here is what the pages make of its answers. The real store is exercised by the
//! server's own tests and by end2end/ against `pipewatch demo`.

#[path = "../../server/src/web.rs"]
#[allow(dead_code)]
mod web;

use app::Backend;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use model::{Labels, RangeQuery, RangeSeries, StatusInfo, TargetHealth, TargetState};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

#[derive(Default)]
struct FixedData {
    /// The last range query asked for, to check step and span.
    last_query: Mutex<Option<(String, RangeQuery)>>,
}

#[async_trait::async_trait]
impl Backend for FixedData {
    async fn metric_names(&self) -> Result<Vec<String>, String> {
        Ok(vec!["demo_rows_total".into(), "up".into()])
    }
    async fn label_names(&self, _metric: &str) -> Result<Vec<String>, String> {
        Ok(vec!["stage".into()])
    }
    async fn label_values(&self, _metric: &str, _label: &str) -> Result<Vec<String>, String> {
        Ok(vec!["extract".into(), "load".into()])
    }
    async fn query_range(&self, selector: &str, q: RangeQuery) -> Result<Vec<RangeSeries>, String> {
        self.signal_range(selector, q).await
    }
    /// What Explore evaluates: the query text is recorded and answered from the fixture.
    async fn signal_range(
        &self,
        selector: &str,
        q: RangeQuery,
    ) -> Result<Vec<RangeSeries>, String> {
        *self.last_query.lock().unwrap() = Some((selector.to_string(), q.clone()));
        if selector.starts_with("broken") {
            return Err("the database is unreachable: check DATABASE_URL".into());
        }
        if !selector.starts_with("demo_rows_total") && !selector.starts_with("rate(demo_rows_total")
        {
            return Ok(vec![]);
        }
        let mk = |stage: &str, base: f64| RangeSeries {
            metric: "demo_rows_total".into(),
            labels: Labels::from_pairs([("stage", stage)]),
            points: (0..20)
                .map(|i| (q.start + i * q.step_ms, base + i as f64))
                .collect(),
        };
        Ok(vec![mk("extract", 10.0), mk("load", 50.0)])
    }
    async fn targets(&self) -> Vec<TargetHealth> {
        vec![TargetHealth {
            job: "demo".into(),
            url: "http://127.0.0.1:9101/metrics".into(),
            labels: Labels::new(),
            state: TargetState::Down,
            last_scrape: Some(1_000),
            last_duration_seconds: Some(0.25),
            last_error: Some("connection refused".into()),
            samples_scraped: 7,
            interval_seconds: 5.0,
            discovered_labels: Labels::new(),
            discovery_error: None,
        }]
    }
    async fn status(&self) -> Result<StatusInfo, String> {
        Ok(StatusInfo {
            version: "9.9.9-test".into(),
            storage_mode: "postgres".into(),
            database: "postgres://127.0.0.1:5432/pw".into(),
            series_count: 12,
            samples_written_total: 3456,
            ingest_rate: 12.5,
            queue_depth: 5,
            queue_capacity: 100,
            started_at: 0,
            retention_days: 15,
            samples_refused_too_old: 12,
            samples_refused_too_new: 3,
        })
    }
}

async fn get(backend: Arc<FixedData>, uri: &str) -> (StatusCode, String) {
    let router = web::router(backend, std::env::temp_dir().join("pipewatch-no-site"));
    let resp = router
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn explore_renders_the_chart_and_legend_on_the_server() {
    let backend = Arc::new(FixedData::default());
    let (status, html) = get(
        backend.clone(),
        // `agg` from links made before Explore took PromQL: ignored.
        "/explore?q=demo_rows_total&range=1h&agg=max",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Series lines are the 2-pixel-wide polylines; the mesh uses 1-pixel ones.
    assert_eq!(
        html.matches(r#"stroke-width="2""#).count(),
        2,
        "one line per series"
    );
    assert!(html.contains("step 10s"), "the automatic step is shown");
    assert!(html.contains(r#"stage=&quot;extract&quot;"#) || html.contains(r#"stage="extract""#));
    assert!(
        html.contains("/pkg/pipewatch.js"),
        "hydration script is linked"
    );
    let (selector, q) = backend.last_query.lock().unwrap().clone().unwrap();
    assert_eq!(selector, "demo_rows_total");
    assert_eq!(q.end - q.start, 3_600_000);
    assert_eq!(q.step_ms, 10_000);
}

#[tokio::test]
async fn builder_form_parameters_become_a_query_drawing_counters_as_rates() {
    let backend = Arc::new(FixedData::default());
    let (_, html) = get(
        backend.clone(),
        "/explore?metric=demo_rows_total&prev_metric=demo_rows_total&l_stage=load&range=15m",
    )
    .await;
    let (selector, q) = backend.last_query.lock().unwrap().clone().unwrap();
    assert_eq!(selector, r#"rate(demo_rows_total{stage="load"}[5m])"#);
    assert_eq!(q.end - q.start, 900_000);
    assert!(html.contains("label-select"), "label selects are offered");
}

#[tokio::test]
async fn query_errors_show_in_an_error_box() {
    let (_, html) = get(Arc::new(FixedData::default()), "/explore?q=broken_metric").await;
    assert!(html.contains("error-box"), "{html}");
    assert!(html.contains("check DATABASE_URL"));

    let (_, html) = get(Arc::new(FixedData::default()), "/explore?q=m&range=forever").await;
    assert!(
        html.contains("error-box") && html.contains("use e.g. 5m, 1h"),
        "{html}"
    );
}

#[tokio::test]
async fn empty_results_say_what_was_asked_and_where_to_look() {
    let (_, html) = get(
        Arc::new(FixedData::default()),
        "/explore?q=nothing_here&range=6h",
    )
    .await;
    assert!(html.contains("No samples for"), "{html}");
    assert!(html.contains("the last 6h"));
    assert!(html.contains(r#"href="/targets""#));
}

#[tokio::test]
async fn targets_and_status_pages_show_the_backend_data() {
    let (status, html) = get(Arc::new(FixedData::default()), "/targets").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("badge down") && html.contains("connection refused"),
        "{html}"
    );
    assert!(html.contains("250 ms"));
    assert!(html.contains("1970-01-01 00:00:01 UTC"));

    let (_, html) = get(Arc::new(FixedData::default()), "/status").await;
    assert!(
        html.contains("9.9.9-test") && html.contains("5 / 100 (5 % full)"),
        "{html}"
    );
    assert!(
        html.contains("12 samples older than the retention window, 3 too far in the future"),
        "{html}"
    );
}

#[tokio::test]
async fn unknown_pages_are_404_and_the_favicon_exists() {
    let (status, html) = get(Arc::new(FixedData::default()), "/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("Page not found"));
    let (status, body) = get(Arc::new(FixedData::default()), "/favicon.ico").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("<svg"));
}

#[tokio::test]
async fn pipelines_without_lineage_say_what_to_send() {
    // FixedData keeps the Backend defaults: no lineage, no analysis results.
    let (status, html) = get(Arc::new(FixedData::default()), "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No pipeline graph yet"), "{html}");
    assert!(html.contains("POST /api/v1/lineage"));
    assert!(html.contains(r#"aria-current="page""#) && html.contains(">Pipelines<"));
}

#[tokio::test]
async fn anomaly_pages_name_bad_parameters_and_missing_backends() {
    let backend = Arc::new(FixedData::default());
    let (status, html) = get(backend.clone(), "/anomalies?state=firing").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("error-box"), "{html}");
    assert!(html.contains("use open or closed"), "{html}");
    let (_, html) = get(backend.clone(), "/anomalies").await;
    assert!(html.contains("keeps no anomaly or drift results"), "{html}");
    let (_, html) = get(backend.clone(), "/anomalies/abc").await;
    assert!(html.contains("is not a number"), "{html}");
    let (_, html) = get(backend, "/drift?dataset=features_daily").await;
    assert!(html.contains("both dataset and column"), "{html}");
}
