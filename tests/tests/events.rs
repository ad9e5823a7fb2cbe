//! Change events against a real PostgreSQL: `POST /api/v1/events` takes one object, an array
//! or NDJSON and stores each distinct event once (a re-send is a duplicate); `GET
//! /api/v1/events` filters by node, kind and time, newest first; bad bodies are refused naming
//! the line or index and the field; oversize bodies get 413; the ingest token guards the POST;
//! and the Explore page draws the events inside its range as markers.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use server::config::{LimitsConfig, ReceiversConfig, ResolvedToken};
use server::guard::Guard;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const DEPLOY: &str = r#"{"time":"2024-05-02T13:30:00Z","node":"orders_etl","kind":"deploy","detail":"v2 rollout","labels":{"commit":"abc123"},"version":"2.0.1"}"#;
const CONFIG: &str = r#"{"time":"2024-05-02T12:10:00+02:00","node":"orders_etl","kind":"config_change","detail":"batch size 500 -> 5000"}"#;
const SCHEMA: &str = r#"{"time":"2024-05-03T08:00:00Z","node":"raw.orders","kind":"schema_change","detail":"added column discount_code"}"#;
/// 2024-05-02T13:30:00Z, 10:10:00Z and 2024-05-03T08:00:00Z in Unix milliseconds.
const T_DEPLOY: i64 = 1_714_656_600_000;
const T_CONFIG: i64 = 1_714_644_600_000;
const T_SCHEMA: i64 = 1_714_723_200_000;

async fn send(
    app: &axum::Router,
    method: &str,
    uri: &str,
    content_type: Option<&str>,
    auth: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, String) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn post(app: &axum::Router, ct: Option<&str>, body: String) -> (StatusCode, String) {
    send(app, "POST", "/api/v1/events", ct, None, body.into_bytes()).await
}

async fn list(app: &axum::Router, query: &str) -> Vec<Value> {
    let (s, body) = send(
        app,
        "GET",
        &format!("/api/v1/events{query}"),
        None,
        None,
        vec![],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{query}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["data"].as_array().unwrap().clone()
}

fn times(events: &[Value]) -> Vec<i64> {
    events
        .iter()
        .map(|e| e["time_ms"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn events_in_every_body_shape_are_stored_once_and_listed_newest_first() {
    let (st, _writers, url) = pipewatch_tests::state(10_000).await;
    let app = server::app(st.clone(), std::env::temp_dir());

    let (s, body) = post(&app, Some("application/json"), DEPLOY.into()).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"received": 1, "inserted": 1, "duplicates": 0})
    );

    // The same deploy again inside an array, plus a new one: only the new one is stored.
    let (s, body) = post(
        &app,
        Some("application/json"),
        format!("[{DEPLOY},{CONFIG}]"),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert!(
        body.contains("\"inserted\":1") && body.contains("\"duplicates\":1"),
        "{body}"
    );

    // NDJSON with all three: one new; then the whole body again: 200, nothing new.
    let ndjson = format!("{DEPLOY}\n{CONFIG}\n\n{SCHEMA}\n");
    let (s, body) = post(&app, Some("application/x-ndjson"), ndjson.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert!(body.contains("\"inserted\":1"), "{body}");
    let (s, body) = post(&app, Some("application/x-ndjson"), ndjson).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(
        body.contains("\"inserted\":0") && body.contains("\"duplicates\":3"),
        "{body}"
    );

    // Counted in the database itself, not through the API under test.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM change_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 3);
    pool.close().await;

    let all = list(&app, "").await;
    assert_eq!(
        times(&all),
        vec![T_SCHEMA, T_DEPLOY, T_CONFIG],
        "newest first"
    );
    let deploy = &all[1];
    assert_eq!(deploy["time"], "2024-05-02T13:30:00.000Z");
    assert_eq!(deploy["node"], "orders_etl");
    assert_eq!(deploy["kind"], "deploy");
    assert_eq!(deploy["detail"], "v2 rollout");
    assert_eq!(deploy["labels"]["commit"], "abc123");
    assert_eq!(deploy["version"], "2.0.1");
    assert_eq!(all[2]["version"], Value::Null);

    assert_eq!(
        times(&list(&app, "?node=orders_etl").await),
        vec![T_DEPLOY, T_CONFIG]
    );
    assert_eq!(
        times(&list(&app, "?kind=schema_change").await),
        vec![T_SCHEMA]
    );
    assert_eq!(
        times(&list(&app, "?start=2024-05-02T11:00:00Z&end=2024-05-02T23:00:00Z").await),
        vec![T_DEPLOY]
    );
    assert_eq!(times(&list(&app, "?limit=1").await), vec![T_SCHEMA]);
    let (s, body) = send(&app, "GET", "/api/v1/events?limit=0", None, None, vec![]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("send 1 to 1000"), "{body}");
}

#[tokio::test]
async fn bad_bodies_are_refused_naming_the_line_or_index_and_the_field() {
    let (st, _writers, url) = pipewatch_tests::state(10_000).await;
    let small = ReceiversConfig {
        max_body_bytes: 4 << 10,
        ..Default::default()
    };
    let app = server::receivers::router_with_config(st.clone(), small);

    let bad_time = DEPLOY.replace("2024-05-02T13:30:00Z", "2024-05-02 13:30");
    let (s, m) = post(
        &app,
        Some("application/json"),
        format!("{CONFIG}\n{bad_time}\n"),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        m.contains("line 2: field `time`: \"2024-05-02 13:30\" is not an RFC 3339 timestamp"),
        "{m}"
    );
    let no_kind = CONFIG.replace("\"kind\":\"config_change\",", "");
    let (s, m) = post(
        &app,
        Some("application/json"),
        format!("[{DEPLOY},{no_kind}]"),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(m.contains("element [1]: missing field `kind`"), "{m}");
    let (s, m) = post(
        &app,
        Some("application/json"),
        DEPLOY.replace("\"abc123\"", "[1]"),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(m.contains("field `labels.commit`"), "{m}");
    let (s, m) = post(&app, Some("text/plain"), DEPLOY.into()).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(m.contains("application/x-ndjson"), "{m}");

    let big = format!("[{}]", vec![DEPLOY; 40].join(","));
    let (s, m) = post(&app, Some("application/json"), big).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(m.contains("send fewer events per request"), "{m}");

    // A refused body stores nothing, not even its good records.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM change_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
    pool.close().await;
}

#[tokio::test]
async fn the_ingest_token_guards_the_events_endpoint() {
    let (mut st, _writers, _url) = pipewatch_tests::state(10_000).await;
    st.guard = Arc::new(Guard::new(
        vec![
            ResolvedToken {
                name: "deployer".into(),
                secret: "deploy-token-0123456789abcdef".into(),
                receivers: vec!["events".into()],
            },
            ResolvedToken {
                name: "prometheus".into(),
                secret: "prom-token-0123456789abcdef".into(),
                receivers: vec!["remote_write".into()],
            },
        ],
        LimitsConfig::default(),
    ));
    let app = server::app(st.clone(), std::env::temp_dir());
    let body = || DEPLOY.as_bytes().to_vec();
    let (s, m) = send(
        &app,
        "POST",
        "/api/v1/events",
        Some("application/json"),
        None,
        body(),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{m}");
    let prom = Some("Bearer prom-token-0123456789abcdef");
    let (s, m) = send(
        &app,
        "POST",
        "/api/v1/events",
        Some("application/json"),
        prom,
        body(),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{m}");
    assert!(m.contains("add \"events\" to its `receivers`"), "{m}");
    let ok = Some("Bearer deploy-token-0123456789abcdef");
    let (s, m) = send(
        &app,
        "POST",
        "/api/v1/events",
        Some("application/json"),
        ok,
        body(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    // Reading needs no token, like the other read APIs.
    assert_eq!(list(&app, "").await.len(), 1);
}

#[tokio::test]
async fn explore_charts_mark_the_events_inside_their_range() {
    let (st, writers, _url) = pipewatch_tests::state(10_000).await;
    let app = server::app(st.clone(), std::env::temp_dir());
    // A series to chart: one generic DQ result at 13:00.
    let dq = r#"{"dataset":"orders","check":"row_count","status":"pass","observed_value":30,"time":"2024-05-02T13:00:00Z"}"#;
    let (s, m) = send(
        &app,
        "POST",
        "/api/v1/dq/generic",
        Some("application/json"),
        None,
        dq.into(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    let (s, m) = post(
        &app,
        Some("application/json"),
        format!("[{DEPLOY},{SCHEMA}]"),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while st.queue.depth() > 0 {
        assert!(std::time::Instant::now() < deadline, "queue did not drain");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, html) = send(
        &app,
        "GET",
        "/explore?q=dq_check_status&from=2024-05-02%2012:00&to=2024-05-02%2014:00",
        None,
        None,
        vec![],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("Changes in this range"), "{html}");
    // The deploy at 13:30 is inside the range, the schema change on 05-03 is not.
    assert_eq!(html.matches("class=\"event-marker\"").count(), 1, "{html}");
    assert!(
        html.contains(&format!("data-time=\"{T_DEPLOY}\"")),
        "{html}"
    );
    assert!(
        !html.contains(&format!("data-time=\"{T_SCHEMA}\"")),
        "{html}"
    );
    assert!(
        html.contains("deploy orders_etl 2.0.1: v2 rollout"),
        "{html}"
    );
    assert_eq!(writers.shutdown(Duration::from_secs(10)).await, 0);
}
