//! The Alertmanager-compatible intake against a real PostgreSQL:
//!
//! - Debian's real `prometheus` evaluates a rule file whose alert fires at once and sends it to
//!   an in-process pipewatch as its Alertmanager; the stored alert must carry the labels,
//!   annotations, startsAt, endsAt and generatorURL Prometheus' own API reports;
//! - re-posts update endsAt; an alert whose endsAt passed is resolved;
//! - malformed and wrong-type requests are refused as Alertmanager refuses them.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// RFC 3339 as Prometheus writes it (nanoseconds, Z) to Unix ms, truncating like Go's
/// millisecond conversion.
fn rfc3339_ms(s: &str) -> i64 {
    let n = |a: usize, b: usize| s[a..b].parse::<i64>().unwrap();
    let days = model::civil::days_from_civil(n(0, 4), n(5, 7) as u32, n(8, 10) as u32);
    let frac = s[19..].trim_end_matches('Z').trim_start_matches('.');
    let ms = format!("{frac:0<3}")[..3].parse::<i64>().unwrap();
    ((days * 24 + n(11, 13)) * 60 + n(14, 16)) * 60_000 + n(17, 19) * 1000 + ms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_alerts_arrive_and_are_stored_with_labels_annotations_and_times() {
    let (st, _w, _) = pipewatch_tests::state(10_000).await;
    let addr = pipewatch_tests::serve(server::app(st.clone(), std::env::temp_dir())).await;
    let mut prometheus = pipewatch_tests::Prometheus::start(
        "pipewatch-am-live",
        // The first notification goes out before the Alertmanager is discovered and is
        // dropped; resend every second instead of every minute.
        &["--rules.alert.resend-delay=1s"],
        |dir| {
            vec![
                (
                    "rules.yml",
                    "groups:\n  - name: pipewatch-test\n    rules:\n      - alert: PipelineStalled\n        expr: vector(1)\n        for: 0s\n        labels: {severity: critical, team: data}\n        annotations:\n          summary: Pipeline stalled\n          description: 'No rows written for {{ $value }} hours'\n".to_string(),
                ),
                (
                    "prometheus.yml",
                    format!(
                        "global: {{evaluation_interval: 1s}}\nrule_files: ['{}']\nalerting:\n  alertmanagers:\n    - static_configs: [{{targets: ['{addr}']}}]\n      api_version: v2\n",
                        dir.join("rules.yml").display()
                    ),
                ),
            ]
        },
    );
    let prom_addr = prometheus.addr.clone();
    let client = reqwest::Client::new();

    // Wait until pipewatch holds the alert, and has seen at least one re-post.
    let deadline = Instant::now() + Duration::from_secs(60);
    let stored = loop {
        assert!(
            !prometheus.has_exited(),
            "prometheus exited:\n{}",
            prometheus.log()
        );
        assert!(
            Instant::now() < deadline,
            "no alert arrived in 60 s:\n{}",
            prometheus.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let v: Value = client
            .get(format!("http://{addr}/api/v1/alerts"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let alerts = v["data"]["alerts"].as_array().unwrap().clone();
        if alerts
            .first()
            .is_some_and(|a| a["posts"].as_i64() >= Some(2))
        {
            break alerts;
        }
    };
    // What Prometheus itself says about the alert.
    let prom: Value = client
        .get(format!("http://{prom_addr}/api/v1/alerts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    drop(prometheus);
    let p = &prom["data"]["alerts"][0];
    assert_eq!(stored.len(), 1, "{stored:?}");
    let a = &stored[0];
    assert_eq!(a["labels"], p["labels"]);
    assert_eq!(a["annotations"], p["annotations"]);
    assert_eq!(
        a["annotations"]["description"],
        "No rows written for 1 hours"
    );
    assert_eq!(a["state"], "firing");
    // startsAt is the rule's activeAt.
    assert_eq!(
        a["starts_at_ms"].as_i64().unwrap(),
        rfc3339_ms(p["activeAt"].as_str().unwrap())
    );
    // endsAt is in the future of the last post: Prometheus' validity window (4 evaluations).
    let ends = a["ends_at_ms"].as_i64().unwrap();
    assert!(ends > a["starts_at_ms"].as_i64().unwrap());
    assert!(ends <= pipewatch_tests::now_ms() + 10_000, "{a}");
    let url = a["generator_url"].as_str().unwrap();
    assert!(
        url.ends_with("/graph?g0.expr=vector%281%29&g0.tab=1"),
        "{url}"
    );
    let text = st.metrics.encode();
    assert!(
        text.contains(r#"pipewatch_receiver_requests_total{receiver="alertmanager",code="200"}"#),
        "{text}"
    );
}

async fn post(app: &axum::Router, ct: &str, body: &str) -> (StatusCode, String) {
    let req = Request::post("/api/v2/alerts")
        .header("content-type", ct)
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn reposts_update_ends_at_and_passed_alerts_are_resolved() {
    let (st, _w, _) = pipewatch_tests::state(10_000).await;
    let app = server::app(st.clone(), std::env::temp_dir());
    let fixture = |name: &str| {
        std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../collectors/tests/fixtures/alertmanager")
                .join(name),
        )
        .unwrap()
    };
    // The captured Prometheus posts (their endsAt lies in the past now): resolved.
    for f in [
        "prometheus-2.42-firing-1.json",
        "prometheus-2.42-firing-3.json",
    ] {
        let (s, b) = post(&app, "application/json", &fixture(f)).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert!(b.is_empty());
    }
    let all = st
        .store
        .alerts(pipewatch_tests::now_ms(), true)
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].posts, 2);
    assert_eq!(all[0].state, "resolved");
    // endsAt of the later post (fixture README).
    assert_eq!(all[0].ends_at_ms, rfc3339_ms("2026-11-26T20:42:25.141Z"));
    assert!(st
        .store
        .alerts(pipewatch_tests::now_ms(), false)
        .await
        .unwrap()
        .is_empty());

    // Without endsAt, an alert fires for Alertmanager's 5 minute resolve timeout.
    let (s, b) = post(
        &app,
        "application/json",
        r#"[{"labels":{"alertname":"Manual"}}]"#,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let firing = st
        .store
        .alerts(pipewatch_tests::now_ms(), false)
        .await
        .unwrap();
    assert_eq!(firing.len(), 1);
    assert_eq!(firing[0].labels["alertname"], "Manual");
    let left = firing[0].ends_at_ms - pipewatch_tests::now_ms();
    assert!((280_000..=300_000).contains(&left), "{left}");
}

#[tokio::test]
async fn alert_intake_refuses_bad_bodies_like_alertmanager() {
    let (st, _w, _) = pipewatch_tests::state(10_000).await;
    let app = server::app(st.clone(), std::env::temp_dir());
    for (body, needle) in [
        ("", "body is empty"),
        (r#"{"labels":{}}"#, "body is not a list of alerts"),
        (r#"[{"labels":{}}]"#, "at least one label pair required"),
        (
            r#"[{"labels":{"a":"b"},"startsAt":"2026-01-01T10:00:00Z","endsAt":"2026-01-01T09:00:00Z"}]"#,
            "start time must be before end time",
        ),
    ] {
        let (s, b) = post(&app, "application/json", body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {b}");
        // Alertmanager answers a JSON string.
        let msg: String = serde_json::from_str(&b).unwrap_or_else(|_| panic!("{b}"));
        assert!(msg.contains(needle), "{body}: {msg}");
    }
    let (s, b) = post(&app, "text/plain", r#"[{"labels":{"a":"b"}}]"#).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{b}");
    assert!(st
        .store
        .alerts(pipewatch_tests::now_ms(), true)
        .await
        .unwrap()
        .is_empty());
}
