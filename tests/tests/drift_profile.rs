//! `POST /api/v1/drift/profile` end to end on a real PostgreSQL: the receiver refuses bad bodies
//! naming the problem (400, 413, 415), stores good ones, and the drift job compares each
//! profiled column's current window with its reference — the trailing one by default, or a
//! pinned window from `[[analysis.drift_references]]` — writing `drift_results` and opening a
//! drift anomaly at the dataset when the column drifted.

use serde_json::{json, Value};
use server::config::{Config, DriftReference};
use server::run::{RunningServer, ServeExtras};

const HOUR: i64 = 3_600_000;

fn config(url: &str) -> Config {
    let mut cfg = Config::default();
    cfg.database.url = url.to_string();
    cfg.server.listen = "127.0.0.1:0".parse().unwrap();
    cfg.receivers.otlp_grpc_listen = String::new();
    // The test runs the rounds itself, at times it chooses.
    cfg.analysis.enabled = false;
    cfg.receivers.max_body_bytes = 64 << 10;
    cfg
}

/// `n` values spread evenly over `[lo, lo + 100)`, in a scrambled order.
fn uniform(n: usize, lo: f64) -> Vec<f64> {
    (0..n).map(|i| lo + ((i * 37) % 100) as f64).collect()
}

async fn post(addr: std::net::SocketAddr, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/drift/profile"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn post_values(
    addr: std::net::SocketAddr,
    dataset: &str,
    column: &str,
    at_ms: i64,
    values: Value,
) -> Value {
    let body = json!({"dataset": dataset, "column": column, "time": at_ms as f64 / 1000.0, "values": values});
    let (status, answer) = post(addr, "application/json", serde_json::to_vec(&body).unwrap()).await;
    assert_eq!(status, 201, "{answer}");
    answer
}

async fn round(url: &str, cfg: &Config, now: i64) -> store::Store {
    let st = store::Store::connect(url, store::StoreConfig::default())
        .await
        .unwrap();
    let jobs = server::analysis::AnalysisJobs::new(
        st.clone(),
        server::promql::QueryLimits::default(),
        cfg.analysis.clone(),
    );
    let r = jobs.round(now).await.unwrap();
    assert_eq!(r.failed_queries, 0, "{r:?}");
    st
}

fn result_for<'a>(
    results: &'a [model::anomaly::DriftResult],
    column: &str,
) -> &'a model::anomaly::DriftResult {
    results
        .iter()
        .find(|r| r.column == column)
        .unwrap_or_else(|| panic!("no drift result for {column}: {results:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_profiles_are_refused_naming_the_problem() {
    let url = store::testing::fresh_database_url().await;
    let server = RunningServer::start(config(&url), ServeExtras::default())
        .await
        .unwrap();
    let addr = server.addr;
    let now = pipewatch_tests::now_ms();
    for (body, status, wanted) in [
        (
            json!({"dataset": "d", "column": "c", "values": [1, "a"]}),
            400,
            "values[1] is a string",
        ),
        (
            json!({"dataset": "d", "column": "c"}),
            400,
            "send the column's `values`",
        ),
        (
            json!({"dataset": "d", "column": "c", "values": [1], "time": (now - 40 * 24 * HOUR) / 1000}),
            400,
            "database.retention_days",
        ),
        (
            json!({"dataset": "d", "column": "c", "values": [1], "time": (now + 24 * HOUR) / 1000}),
            400,
            "limits.future_tolerance",
        ),
    ] {
        let (got, answer) =
            post(addr, "application/json", serde_json::to_vec(&body).unwrap()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(answer.to_string().contains(wanted), "{body}: {answer}");
    }
    let big = json!({"dataset": "d", "column": "c", "values": uniform(20_000, 0.0)});
    let (got, answer) = post(addr, "application/json", serde_json::to_vec(&big).unwrap()).await;
    assert_eq!(got, 413, "{answer}");
    assert!(answer.to_string().contains("`profile` summary"), "{answer}");
    let (got, answer) = post(addr, "text/plain", b"{}".to_vec()).await;
    assert_eq!(got, 415, "{answer}");
    // Nothing of the refused requests was stored.
    let st = store::Store::connect(&url, store::StoreConfig::default())
        .await
        .unwrap();
    assert!(st.profiled_columns(0).await.unwrap().is_empty());
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shifted_column_drifts_against_its_trailing_reference_and_a_steady_one_does_not() {
    let url = store::testing::fresh_database_url().await;
    let cfg = config(&url);
    let server = RunningServer::start(cfg.clone(), ServeExtras::default())
        .await
        .unwrap();
    let addr = server.addr;
    let now = pipewatch_tests::now_ms();
    // Reference (the day before the current hour): twenty loads of the usual values.
    for h in 2..=21 {
        let at = now - h * HOUR;
        post_values(addr, "orders", "amount", at, json!(uniform(300, 0.0))).await;
        post_values(
            addr,
            "orders",
            "country",
            at,
            json!(["de", "fr", "de", "nl"].repeat(50)),
        )
        .await;
    }
    // Current: amount moved up by 40, country keeps its mix.
    let a = post_values(
        addr,
        "orders",
        "amount",
        now - 10 * 60_000,
        json!(uniform(300, 40.0)),
    )
    .await;
    assert_eq!(
        (
            a["kind"].as_str(),
            a["count"].as_u64(),
            a["missing"].as_u64()
        ),
        (Some("numeric"), Some(300), Some(0)),
        "{a}"
    );
    let c = post_values(
        addr,
        "orders",
        "country",
        now - 10 * 60_000,
        Value::Array(
            json!(["fr", "de", "nl", "de", null])
                .as_array()
                .unwrap()
                .iter()
                .cycle()
                .take(200)
                .cloned()
                .collect(),
        ),
    )
    .await;
    assert_eq!(
        (c["kind"].as_str(), c["missing"].as_u64()),
        (Some("categorical"), Some(40)),
        "{c}"
    );

    let st = round(&url, &cfg, now).await;
    let results = st
        .list_drift_results(Some("orders"), None, None, 100)
        .await
        .unwrap();
    let amount = result_for(&results, "amount");
    assert!(amount.drifted, "{amount:#?}");
    // Over 1,000 reference values: Evidently picks the normed Wasserstein distance.
    assert_eq!(amount.method, "wasserstein", "{amount:#?}");
    assert!(
        amount.explanation.contains("against the 1day before"),
        "{}",
        amount.explanation
    );
    assert_eq!(amount.reference_to_ms, now - HOUR);
    let country = result_for(&results, "country");
    assert!(!country.drifted, "{country:#?}");
    let open = st.open_anomalies().await.unwrap();
    assert_eq!(open.len(), 1, "{open:#?}");
    assert_eq!(
        (open[0].kind.as_str(), open[0].node.as_deref()),
        ("drift", Some("orders"))
    );
    assert!(
        open[0].explanation.starts_with("amount at orders drifted"),
        "{}",
        open[0].explanation
    );

    // The next hour's load looks like the reference again: the anomaly closes (the round an
    // hour later judges only it; its trailing day now holds the shifted load among twenty good: normed Wasserstein ~0.07).
    post_values(
        addr,
        "orders",
        "amount",
        now + 8 * 60_000,
        json!(uniform(300, 0.0)),
    )
    .await;
    round(&url, &cfg, now + HOUR + 5 * 60_000).await;
    assert!(st.open_anomalies().await.unwrap().is_empty());
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_reference_is_used_for_the_features_it_names() {
    let url = store::testing::fresh_database_url().await;
    let now = pipewatch_tests::now_ms();
    let mut cfg = config(&url);
    let t = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    cfg.analysis.drift_references = vec![DriftReference {
        dataset: "orders".into(),
        column: "amount".into(),
        from: Some(t(now - 30 * HOUR)),
        to: Some(t(now - 26 * HOUR)),
        trailing: None,
    }];
    let server = RunningServer::start(cfg.clone(), ServeExtras::default())
        .await
        .unwrap();
    let addr = server.addr;
    // The pinned window saw the values the current hour has; the trailing day did not.
    post_values(
        addr,
        "orders",
        "amount",
        now - 28 * HOUR,
        json!(uniform(300, 40.0)),
    )
    .await;
    post_values(
        addr,
        "orders",
        "amount",
        now - 5 * HOUR,
        json!(uniform(300, 0.0)),
    )
    .await;
    post_values(
        addr,
        "orders",
        "amount",
        now - 5 * 60_000,
        json!(uniform(300, 40.0)),
    )
    .await;
    // Another column of the dataset keeps the trailing reference.
    post_values(
        addr,
        "orders",
        "discount",
        now - 5 * HOUR,
        json!(uniform(300, 0.0)),
    )
    .await;
    post_values(
        addr,
        "orders",
        "discount",
        now - 5 * 60_000,
        json!(uniform(300, 40.0)),
    )
    .await;
    let st = round(&url, &cfg, now).await;
    let results = st
        .list_drift_results(Some("orders"), None, None, 100)
        .await
        .unwrap();
    let amount = result_for(&results, "amount");
    assert!(!amount.drifted, "{amount:#?}");
    assert!(
        amount.explanation.contains("against the pinned "),
        "{}",
        amount.explanation
    );
    assert_eq!(amount.reference_from_ms, now - 30 * HOUR);
    assert!(result_for(&results, "discount").drifted);
    server.stop().await.unwrap();
}
