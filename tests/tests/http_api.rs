//! The HTTP API through `tower::ServiceExt::oneshot` against a real PostgreSQL: query results are
//! checked against values computed here from the generated samples, and bad requests get 400 with
//! a reason.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use model::{Batch, Labels, MetricType, Sample, SeriesKey, TimeSeries};
use serde_json::Value;
use server::ingest::{self, WriterConfig};
use server::scrape_manager::TargetHealthBoard;
use server::telemetry::SelfMetrics;
use server::AppState;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const T0: i64 = 1_790_000_040_000; // a minute boundary

fn series(code: &str) -> SeriesKey {
    SeriesKey::new(
        "http_requests_total",
        Labels::from_pairs([("job", "api"), ("code", code)]),
    )
}

/// 10 minutes of samples every 10 s; value = index (and x10 for code 500).
fn generated() -> Vec<(SeriesKey, Vec<Sample>)> {
    ["200", "500"]
        .iter()
        .enumerate()
        .map(|(n, code)| {
            let samples = (0..60)
                .map(|i| Sample {
                    ts: T0 + i * 10_000,
                    value: i as f64 * if n == 1 { 10.0 } else { 1.0 },
                })
                .collect();
            (series(code), samples)
        })
        .collect()
}

async fn state() -> AppState {
    let url = store::testing::fresh_database_url().await;
    let store = store::Store::connect(&url, store::StoreConfig::default())
        .await
        .expect("connect");
    let batch = Batch {
        series: generated()
            .into_iter()
            .map(|(key, samples)| TimeSeries {
                key,
                metric_type: MetricType::Counter,
                samples,
            })
            .collect(),
        metadata: vec![],
    };
    store.write(&[batch]).await.expect("write");
    let metrics = Arc::new(SelfMetrics::new());
    let (queue, _writers) = ingest::start(
        Arc::new(store.clone()),
        1000,
        WriterConfig {
            batch_max_samples: 100,
            flush_interval: Duration::from_millis(50),
            flush_idle: server::ingest::FLUSH_WHEN_IDLE_FOR,
            writers: 1,
        },
        metrics.clone(),
    );
    AppState {
        store,
        queue,
        metrics,
        board: TargetHealthBoard::default(),
        started_at: T0,
        retention_days: 30,
        database: "test".into(),
        receivers: Default::default(),
        guard: Default::default(),
        query_limits: Default::default(),
        // Not an auth test: anonymous requests act as admin.
        auth: Arc::new(server::auth::AuthSettings::anonymous(Some(
            model::auth::Role::Admin,
        ))),
        oncall: Default::default(),
        channels: Default::default(),
    }
}

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, String) {
    let resp = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn app(st: AppState) -> axum::Router {
    server::app(st, std::env::temp_dir())
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[tokio::test]
async fn query_range_evaluates_promql_like_an_independent_computation() {
    let app = app(state().await);
    let (start, end, step) = (T0 + 120_000, T0 + 600_000, 60_000);
    let uri = format!(
        "/api/v1/query_range?query={}&start={}&end={}&step=60s",
        enc(r#"avg_over_time(http_requests_total{job="api"}[1m])"#),
        start as f64 / 1000.0,
        end as f64 / 1000.0
    );
    let (status, body) = get(&app, &uri).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "matrix");
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 2);
    for (key, samples) in generated() {
        // Expected: at each step t, the mean of the samples in [t - 1m, t] (Prometheus 2.x
        // range windows are closed), computed here from the generated data.
        let expected: Vec<(i64, f64)> = (0..)
            .map(|k| start + k * step)
            .take_while(|t| *t <= end)
            .filter_map(|t| {
                let w: Vec<f64> = samples
                    .iter()
                    .filter(|s| s.ts >= t - 60_000 && s.ts <= t)
                    .map(|s| s.value)
                    .collect();
                (!w.is_empty()).then(|| (t, w.iter().sum::<f64>() / w.len() as f64))
            })
            .collect();
        let code = key.labels.get("code").unwrap();
        let got = result
            .iter()
            .find(|r| r["metric"]["code"] == code)
            .unwrap_or_else(|| panic!("series code={code} missing in {body}"));
        // Functions drop the metric name, as in Prometheus.
        assert!(got["metric"].get("__name__").is_none(), "{got}");
        let values = got["values"].as_array().unwrap();
        assert_eq!(values.len(), expected.len());
        for (pair, (t, mean)) in values.iter().zip(&expected) {
            let ts = pair[0].as_f64().unwrap();
            let val: f64 = pair[1].as_str().unwrap().parse().unwrap();
            assert_eq!((ts * 1000.0) as i64, *t);
            assert!((val - mean).abs() < 1e-9, "step {t}: {val} vs {mean}");
        }
    }
}

#[tokio::test]
async fn query_range_supports_all_matcher_operators() {
    let app = app(state().await);
    for (sel, codes) in [
        (r#"http_requests_total{code="500"}"#, vec!["500"]),
        (r#"http_requests_total{code!="500"}"#, vec!["200"]),
        (r#"http_requests_total{code=~"2.."}"#, vec!["200"]),
        (r#"http_requests_total{code!~"2.."}"#, vec!["500"]),
        (r#"{__name__="http_requests_total",job="nope"}"#, vec![]),
    ] {
        let uri = format!(
            "/api/v1/query_range?query={}&start={}&end={}&step=15",
            enc(sel),
            T0 / 1000,
            (T0 + 600_000) / 1000
        );
        let (status, body) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::OK, "{sel}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let mut got: Vec<String> = v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["metric"]["code"].as_str().unwrap().to_string())
            .collect();
        got.sort();
        assert_eq!(got, codes, "{sel}");
    }
}

#[tokio::test]
async fn bad_queries_get_400_with_the_reason() {
    let app = app(state().await);
    for (query, needle) in [
        (
            format!("query={}&start=1&end=2&step=1", enc(r#"m{a="x""#)),
            "unexpected",
        ),
        (
            format!("query={}&start=1&end=2&step=1", enc(r#"m{a=~"("}"#)),
            "regex",
        ),
        (
            format!("query={}&start=1&end=2&step=1", enc("rate(m)")),
            "expected type matrix in call to function 'rate'",
        ),
        (
            format!("query={}&start=1&end=2&step=1", enc("m[5m]")),
            "must be Scalar or instant Vector",
        ),
        (
            "start=1&end=2&step=1".to_string(),
            "missing parameter `query`",
        ),
        (
            "query=m&start=1&end=2".to_string(),
            "missing parameter `step`",
        ),
        (
            "query=m&start=yesterday&end=2&step=1".to_string(),
            "cannot parse \"yesterday\" to a valid timestamp",
        ),
        (
            "query=m&start=10&end=2&step=1".to_string(),
            "end timestamp must not be before start time",
        ),
        (
            "query=m&start=0&end=1000000&step=1".to_string(),
            "maximum resolution",
        ),
        (
            "query=m&start=1&end=2&step=0".to_string(),
            "zero or negative query resolution step",
        ),
    ] {
        let (status, body) = get(&app, &format!("/api/v1/query_range?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "error");
        assert_eq!(v["errorType"], "bad_data");
        assert!(
            v["error"].as_str().unwrap().contains(needle),
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn series_labels_and_values_list_what_is_stored() {
    let app = app(state().await);
    let (status, body) = get(
        &app,
        &format!("/api/v1/series?match[]={}", enc("http_requests_total")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);

    let (_, body) = get(&app, "/api/v1/series").await;
    assert!(body.contains("no match[] parameter"), "{body}");

    let (_, body) = get(&app, "/api/v1/labels").await;
    let v: Value = serde_json::from_str(&body).unwrap();
    let labels: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    for l in ["__name__", "code", "job"] {
        assert!(labels.contains(&l), "{labels:?}");
    }
    let (_, body) = get(&app, "/api/v1/label/code/values").await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"], serde_json::json!(["200", "500"]));
    let (_, body) = get(&app, "/api/v1/label/__name__/values").await;
    assert!(body.contains("http_requests_total"), "{body}");
}

#[tokio::test]
async fn health_readiness_status_and_self_metrics() {
    let app = app(state().await);
    assert_eq!(get(&app, "/healthz").await.0, StatusCode::OK);
    assert_eq!(get(&app, "/readyz").await.0, StatusCode::OK);
    let (status, body) = get(&app, "/api/v1/status").await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["data"]["storage_mode"],
        store::testing::expected_mode().await.to_string()
    );
    assert_eq!(v["data"]["series_count"], 2);
    let (status, body) = get(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for name in [
        "pipewatch_ingest_queue_depth_samples",
        "pipewatch_ingest_samples_written_total",
        "pipewatch_ingest_write_duration_seconds_bucket",
    ] {
        assert!(body.contains(name), "{name} missing from /metrics");
    }
    // Our own exposition must parse with our own parser.
    collectors::prometheus_text::parse(&body, collectors::prometheus_text::Format::OpenMetrics, 0)
        .or_else(|_| {
            collectors::prometheus_text::parse(
                &body,
                collectors::prometheus_text::Format::Text004,
                0,
            )
        })
        .expect("self-metrics parse");
}
