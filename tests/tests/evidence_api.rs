//! Traces and logs through `server::receivers::otlp_signals` into a real PostgreSQL, read back through
//! `GET /api/v1/evidence/{spans,logs}` (via `server::app` and `oneshot`) and the stored
//! series.
//!
//! Requests are the OpenTelemetry Python SDK's captured `05-traces`/`06-logs` bodies
//! (collectors/tests/fixtures/otlp, see its README: one ERROR span `load` with message
//! `constraint violation` and an exception event; an ERROR and a WARN record with a map body).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use collectors::otlp::{decode_logs, decode_traces, BodyEncoding};
use http_body_util::BodyExt;
use serde_json::Value;
use server::config::ReceiversConfig;
use server::receivers::ReceiverState;
use server::AppState;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tower::ServiceExt;

fn otlp_fixture(name: &str) -> (Vec<u8>, Value) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../collectors/tests/fixtures/otlp/http-protobuf");
    let body = std::fs::read(dir.join(format!("{name}.pb"))).unwrap();
    let expected = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("{name}.expected.json"))).unwrap(),
    )
    .unwrap();
    (body, expected)
}

fn receiver(app: &AppState) -> ReceiverState {
    ReceiverState::new(app.clone(), ReceiversConfig::default())
}

async fn get(app: &Router, uri: &str) -> (StatusCode, Value) {
    let resp = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

/// The latest stored value of each series of `metric`, keyed by `label`, once `want` series
/// are there and each reached `min_value` (the writer flushes every 50 ms).
async fn stored(
    st: &AppState,
    metric: &str,
    label: &str,
    want: usize,
    min_value: f64,
) -> Vec<(String, f64)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows: Vec<(String, f64)> = sqlx::query_as(
            "SELECT DISTINCT ON (s.id) s.labels->>$2, v.value FROM series s \
             JOIN samples v ON v.series_id = s.id WHERE s.metric = $1 ORDER BY s.id, v.ts DESC",
        )
        .bind(metric)
        .bind(label)
        .fetch_all(st.store.pool())
        .await
        .unwrap();
        if rows.len() == want && rows.iter().all(|r| r.1 >= min_value) {
            let mut rows = rows;
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "{metric}: waited 20s for {want} series >= {min_value}, have {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn failed_span_is_listed_with_its_exception_and_calls_are_stored() {
    let (st, _writers, _url) = pipewatch_tests::state(100_000).await;
    let app = server::app(st.clone(), PathBuf::from("target/site"));
    let (body, expected) = otlp_fixture("05-traces");
    let req = decode_traces(&body, BodyEncoding::Protobuf).unwrap();

    let r = server::receivers::otlp_signals::ingest_traces(&receiver(&st), &req)
        .await
        .unwrap();
    assert_eq!(r.received, 5);
    assert_eq!(r.evidence_stored, 1);
    assert_eq!(r.rejected, 0);

    let (status, v) = get(&app, "/api/v1/evidence/spans?service=orders-etl").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{v}");
    let load = expected["resources"][0]["scopes"][0]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "load")
        .unwrap();
    let got = &data[0];
    assert_eq!(got["kind"], "error");
    assert_eq!(got["span_name"], "load");
    assert_eq!(got["status_message"], "constraint violation");
    assert_eq!(got["trace_id"], load["trace_id"]);
    assert_eq!(got["span_id"], load["span_id"]);
    assert_eq!(got["start_time_unix_nano"], load["start_time_unix_nano"]);
    let exc = &load["events"][0]["attributes"];
    assert_eq!(got["detail"]["exception"]["type"], exc["exception.type"]);
    assert_eq!(
        got["detail"]["exception"]["message"],
        exc["exception.message"]
    );
    assert_eq!(
        got["detail"]["exception"]["stacktrace"],
        exc["exception.stacktrace"]
    );
    assert_eq!(got["detail"]["parent_span_id"], load["parent_span_id"]);

    // Another service has none; the slow filter has none (all fixture spans are < 10 ms).
    let (_, v) = get(&app, "/api/v1/evidence/spans?service=other").await;
    assert_eq!(v["data"], serde_json::json!([]));
    let (_, v) = get(&app, "/api/v1/evidence/spans?kind=slow").await;
    assert_eq!(v["data"], serde_json::json!([]));

    // One calls series per span name, each counted once.
    let calls = stored(&st, "traces_span_metrics_calls_total", "span_name", 5, 1.0).await;
    let mut names: Vec<String> = expected["totals"]["span_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(
        calls,
        names.into_iter().map(|n| (n, 1.0)).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_request_refused_by_the_queue_is_counted_once_when_retried() {
    let (st, _writers, _url) = pipewatch_tests::state(100_000).await;
    // A state whose queue is shut down answers every push with 503, as during shutdown.
    let (closed, closed_writers, _) = pipewatch_tests::state(100_000).await;
    closed_writers.shutdown(Duration::from_secs(5)).await;
    let refusing = AppState {
        queue: closed.queue.clone(),
        ..st.clone()
    };
    let (body, _) = otlp_fixture("05-traces");
    let req = decode_traces(&body, BodyEncoding::Protobuf).unwrap();
    // One set of running totals under both queues, as in one server.
    let working = receiver(&st);
    let refusing = working.with_app(refusing);

    let e = server::receivers::otlp_signals::ingest_traces(&refusing, &req)
        .await
        .unwrap_err();
    assert_eq!(
        e.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        e.message()
    );
    assert!(e.retry_after().is_some());

    // The sender retries the same request against the working queue: the evidence stored
    // by the refused attempt is not stored again, and each span counts once.
    let r = server::receivers::otlp_signals::ingest_traces(&working, &req)
        .await
        .unwrap();
    assert_eq!(r.evidence_stored, 0);
    let calls = stored(&st, "traces_span_metrics_calls_total", "span_name", 5, 1.0).await;
    assert!(calls.iter().all(|(_, v)| *v == 1.0), "{calls:?}");

    // A second export of the same spans (a sender's re-send) counts nothing: the counters
    // are idempotent (issue 8), so nothing is queued and the stored values stay at 1.
    server::receivers::otlp_signals::ingest_traces(&working, &req)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while st.queue.depth() > 0 {
        assert!(Instant::now() < deadline, "queue did not drain");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let calls = stored(&st, "traces_span_metrics_calls_total", "span_name", 5, 1.0).await;
    assert!(calls.iter().all(|(_, v)| *v == 1.0), "{calls:?}");
    let app = server::app(st.clone(), PathBuf::from("target/site"));
    let (_, v) = get(&app, "/api/v1/evidence/spans").await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1, "{v}");
}

#[tokio::test]
async fn warn_and_error_records_are_listed_and_counted_by_severity() {
    let (st, _writers, _url) = pipewatch_tests::state(100_000).await;
    let app = server::app(st.clone(), PathBuf::from("target/site"));
    let (body, expected) = otlp_fixture("06-logs");
    let req = decode_logs(&body, BodyEncoding::Protobuf).unwrap();
    let r = server::receivers::otlp_signals::ingest_logs(&receiver(&st), &req)
        .await
        .unwrap();
    assert_eq!((r.received, r.evidence_stored), (4, 2));

    let records: Vec<&Value> = expected["resources"][0]["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["log_records"].as_array().unwrap())
        .collect();
    let error = records.iter().find(|r| r["severity_number"] == 17).unwrap();
    let warn = records.iter().find(|r| r["severity_number"] == 13).unwrap();

    let (status, v) = get(&app, "/api/v1/evidence/logs?service=orders-etl").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let data = v["data"].as_array().unwrap();
    let kinds: Vec<&str> = data.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.len(), 2);
    assert!(kinds.contains(&"ERROR") && kinds.contains(&"WARN"), "{v}");

    let (_, v) = get(&app, "/api/v1/evidence/logs?kind=ERROR&limit=5").await;
    let e = &v["data"][0];
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(e["body"], error["body"]);
    assert_eq!(e["trace_id"], error["trace_id"]);
    assert_eq!(e["time_unix_nano"], error["time_unix_nano"]);

    let (_, v) = get(&app, "/api/v1/evidence/logs?kind=WARN").await;
    let w = &v["data"][0];
    let body: Value = serde_json::from_str(w["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, warn["body"]);
    assert_eq!(w["time_unix_nano"], warn["observed_time_unix_nano"]);
    assert_eq!(w["detail"]["event_name"], "pipewatch.schema.drift");

    let counts = stored(&st, "otel_log_records_total", "severity", 4, 1.0).await;
    let mut want: Vec<(String, f64)> = records
        .iter()
        .map(|r| (r["severity_text"].as_str().unwrap().to_string(), 1.0))
        .collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(counts, want);
}

#[tokio::test]
async fn bad_evidence_parameters_get_400_naming_the_fix() {
    let (st, _writers, _url) = pipewatch_tests::state(1000).await;
    let app = server::app(st, PathBuf::from("target/site"));
    for (uri, needle) in [
        (
            "/api/v1/evidence/spans?limit=0",
            "limit \"0\" is not a whole number from 1 to 1000",
        ),
        ("/api/v1/evidence/spans?limit=many", "limit \"many\""),
        ("/api/v1/evidence/logs?limit=1001", "from 1 to 1000"),
        (
            "/api/v1/evidence/spans?kind=ERROR",
            "kind \"ERROR\" is not one of error, slow",
        ),
        (
            "/api/v1/evidence/logs?kind=warning",
            "is not one of TRACE, DEBUG, INFO, WARN",
        ),
        (
            "/api/v1/evidence/logs?svc=x",
            "unknown parameter \"svc\"; use service, kind, limit and before",
        ),
        (
            "/api/v1/evidence/spans?before=yesterday",
            "is not an evidence id; send the `next.before` of the previous page",
        ),
    ] {
        let (status, v) = get(&app, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {v}");
        assert_eq!(v["errorType"], "bad_data");
        assert!(v["error"].as_str().unwrap().contains(needle), "{uri}: {v}");
    }
}
