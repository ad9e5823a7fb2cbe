//! The demo's push-based jobs speak the real protocols to a real pipewatch: what they send
//! over loopback ends up stored like any other sender's data.

use server::config::Config;
use server::run::{RunningServer, ServeExtras};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// pipewatch in-process on a free port over a fresh database (gRPC off); and that database's URL.
async fn server_on_fresh_database() -> (RunningServer, String) {
    let url = store::testing::fresh_database_url().await;
    let mut cfg = Config::default();
    cfg.database.url = url.clone();
    cfg.server.listen = "127.0.0.1:0".parse().unwrap();
    cfg.receivers.otlp_grpc_listen = String::new();
    // Not an auth test: anonymous requests act as admin.
    cfg.auth.anonymous_role = "admin".into();
    let server = RunningServer::start(cfg, ServeExtras::default())
        .await
        .unwrap();
    (server, url)
}

#[tokio::test]
async fn the_demo_export_job_remote_writes_its_metrics() {
    let (server, url) = server_on_fresh_database().await;
    let stop = CancellationToken::new();
    let pushes = tokio::spawn(demo::push::run(
        format!("http://{}", server.addr),
        None,
        stop.clone(),
    ));

    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let rows: Vec<(String, String, f64)> = loop {
        let rows = sqlx::query_as(
            "SELECT s.metric, s.labels->>'job', x.value FROM samples x \
             JOIN series s ON s.id = x.series_id WHERE s.metric LIKE 'demo_export_%' ORDER BY 1",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        if rows.len() == 3 || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.cancel();
    pushes.await.unwrap();
    let report = server.stop().await.unwrap();
    assert_eq!(report.samples_lost, 0);
    let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "demo_export_duration_seconds",
            "demo_export_last_success_timestamp_seconds",
            "demo_export_rows_total"
        ]
    );
    assert!(rows.iter().all(|r| r.1 == "nightly_export"));
    let now_s = pipewatch_tests::now_ms() as f64 / 1000.0;
    assert!(
        (now_s - rows[1].2) <= 300.0 + 5.0,
        "last success {}",
        rows[1].2
    );
    let help: String =
        sqlx::query_scalar("SELECT help FROM metric_metadata WHERE family = 'demo_export_rows'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(help, "Rows the nightly_export batch job wrote.");
}

/// The demo's `model_serving` service sends OTLP/HTTP metrics (and traces) under an error
/// burst; the series the OTLP receiver maps them to are stored with the values in the request.
#[tokio::test]
async fn the_demo_model_serving_service_sends_otlp_metrics_that_are_stored() {
    use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point::Value};
    let (server, url) = server_on_fresh_database().await;
    let now = pipewatch_tests::now_ms();
    let fault = demo::Fault::new(demo::FaultKind::ErrorBurst, "model_serving", now - 600_000).ok();
    demo::otlp::push(
        &reqwest::Client::new(),
        &format!("http://{}", server.addr),
        now,
        fault,
    )
    .await;

    // What the sender put in the request: requests by status code and the histogram count.
    let sent = demo::otlp::metrics_request(now, fault);
    let metrics = &sent.resource_metrics[0].scope_metrics[0].metrics;
    let mut sent_requests = Vec::new();
    let mut sent_count = 0;
    for m in metrics {
        match &m.data {
            Some(Data::Sum(s)) if m.name == "inference.requests" => {
                for p in &s.data_points {
                    let code = match &p.attributes[0].value.as_ref().unwrap().value {
                        Some(
                            opentelemetry_proto::tonic::common::v1::any_value::Value::IntValue(c),
                        ) => c.to_string(),
                        other => panic!("status code attribute {other:?}"),
                    };
                    let Some(Value::AsInt(v)) = p.value else {
                        panic!("{p:?}")
                    };
                    sent_requests.push((code, v as f64));
                }
            }
            Some(Data::Histogram(h)) => sent_count = h.data_points[0].count,
            _ => {}
        }
    }
    sent_requests.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(sent_requests.len(), 2);

    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let stored = |metric: &'static str, label: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_as::<_, (Option<String>, f64)>(
                "SELECT s.labels->>$2, x.value FROM samples x JOIN series s ON s.id = x.series_id \
                 WHERE s.metric = $1 AND s.labels->>'job' = 'demo/model_serving' \
                 AND s.labels->>'instance' = 'model-serving-0' ORDER BY 1",
            )
            .bind(metric)
            .bind(label)
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    let requests = loop {
        let rows = stored("inference_requests_total", "http_response_status_code").await;
        if rows.len() == 2 || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let report = server.stop().await.unwrap();
    assert_eq!(report.samples_lost, 0);
    let requests: Vec<(String, f64)> = requests
        .into_iter()
        .map(|(code, v)| (code.unwrap(), v))
        .collect();
    assert_eq!(requests, sent_requests);

    let count = stored("inference_latency_milliseconds_count", "job").await;
    assert_eq!(count.len(), 1);
    assert_eq!(count[0].1, sent_count as f64);
    let buckets = stored("inference_latency_milliseconds_bucket", "le").await;
    assert_eq!(buckets.len(), demo::otlp::LATENCY_BOUNDS_MS.len() + 1);
    assert!(buckets
        .iter()
        .any(|(le, v)| le.as_deref() == Some("+Inf") && *v == sent_count as f64));
    let null_ratio = stored("model_feature_null_ratio", "feature_set").await;
    assert_eq!(null_ratio.len(), 1);
    assert_eq!(null_ratio[0].0.as_deref(), Some("features_daily"));
    let version = stored("target_info", "service_version").await;
    assert_eq!(version[0].0.as_deref(), Some("1.4.2"));
}

#[tokio::test]
async fn the_demo_jobs_report_their_runs_with_openlineage() {
    let (server, url) = server_on_fresh_database().await;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let now = pipewatch_tests::now_ms();
    demo::lineage::push(&http, &base, now, None).await;
    // A re-send of the same runs changes nothing.
    demo::lineage::push(&http, &base, now, None).await;
    let graph: serde_json::Value = http
        .get(format!("{base}/api/v1/lineage/graph"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = graph.to_string();
    for name in [
        "stream_ingest",
        "transform",
        "feature_store",
        "raw_events",
        "clean_orders",
        "features_daily",
    ] {
        assert!(
            text.contains(&format!("\"{name}\"")),
            "{name} not in the graph: {text}"
        );
    }
    // Stopping drains the ingest queue, so every sample either push queued is in the table.
    let report = server.stop().await.unwrap();
    assert_eq!(report.samples_lost, 0);
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    // Plain row counts, not DISTINCT: a re-send that was stored again would show up here.
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let sent = demo::lineage::events(now, None);
    let sent_runs: std::collections::HashSet<&str> = sent
        .iter()
        .map(|e| e["run"]["runId"].as_str().unwrap())
        .collect();
    assert_eq!(
        count("SELECT count(*) FROM lineage_runs").await,
        sent_runs.len() as i64
    );
    assert_eq!(
        count("SELECT count(*) FROM lineage_events").await,
        sent.len() as i64,
        "one stored event per event sent once"
    );
    // The events' facets and run outcomes became samples (namespace "demo"); the re-send
    // must not have written any of them a second time.
    let samples = count(
        "SELECT count(*) FROM samples x JOIN series s ON s.id = x.series_id \
         WHERE s.labels->>'namespace' = 'demo'",
    )
    .await;
    assert!(samples > 0, "no lineage samples were stored");
    let repeated = count(
        "SELECT count(*) FROM (SELECT series_id, ts FROM samples \
         GROUP BY series_id, ts HAVING count(*) > 1) d",
    )
    .await;
    assert_eq!(
        repeated, 0,
        "{repeated} (series, timestamp) pairs stored more than once among {samples} samples"
    );
}

#[tokio::test]
async fn the_demo_posts_great_expectations_results_for_clean_orders() {
    let (server, url) = server_on_fresh_database().await;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let fault = demo::Fault::new(demo::FaultKind::DqFailure, "transform", 0).ok();
    demo::dq::push(&http, &base, pipewatch_tests::now_ms(), fault).await;
    let datasets: serde_json::Value = http
        .get(format!("{base}/api/v1/dq/datasets"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = datasets.to_string();
    assert!(text.contains("clean_orders"), "{text}");
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT check_type, status FROM dq_check_runs WHERE dataset = 'clean_orders' ORDER BY 1, 2",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        rows.len(),
        8,
        "two validation runs of four expectations: {rows:?}"
    );
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| r.1 == "fail")
        .map(|r| r.0.as_str())
        .collect();
    assert_eq!(failed, ["expect_column_values_to_not_be_null"; 2]);
    server.stop().await.unwrap();
}
