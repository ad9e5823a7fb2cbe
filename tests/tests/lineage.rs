//! OpenLineage intake against a real PostgreSQL:
//!
//! - the real openlineage-python client (HttpTransport, gzip) sends a small pipeline's events
//!   (`tests/python/lineage_emit.py`) to an in-process pipewatch; the graph, the runs with
//!   their states and durations, the schema change and the stored series must match what the
//!   script says it sent;
//! - a re-sent event is a duplicate that changes nothing;
//! - malformed, oversize and wrong-type requests are refused with the status and a message
//!   naming the problem.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use server::config::ReceiversConfig;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tower::ServiceExt;

async fn wait_until_drained(st: &server::AppState) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while st.queue.depth() > 0 {
        assert!(Instant::now() < deadline, "queue did not drain in 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// (labels as JSON text, ts ms, value) of every stored sample of `metric`.
async fn samples(url: &str, metric: &str) -> Vec<(Value, i64, f64)> {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let rows: Vec<(String, i64, f64)> = sqlx::query_as(
        "SELECT s.labels::text, (extract(epoch FROM x.ts) * 1000)::bigint, x.value \
         FROM samples x JOIN series s ON s.id = x.series_id WHERE s.metric = $1 ORDER BY x.ts",
    )
    .bind(metric)
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows.into_iter()
        .map(|(l, t, v)| (serde_json::from_str(&l).unwrap(), t, v))
        .collect()
}

fn ms(seconds: &Value) -> i64 {
    (seconds.as_f64().unwrap() * 1000.0).round() as i64
}

async fn get_json(url: &str) -> Value {
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openlineage_python_client_builds_the_graph_runs_series_and_schema_change() {
    let (st, writers, url) = pipewatch_tests::state(100_000).await;
    let addr = pipewatch_tests::serve(server::app(st.clone(), std::env::temp_dir())).await;
    let dir = std::env::temp_dir().join(format!("pipewatch-lineage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let summary_path = dir.join("summary.json");
    // Recent event times, so the samples land in the current partitions.
    let base = (pipewatch_tests::now_ms() / 1000 - 3600) as f64;
    let mut cmd = std::process::Command::new(pipewatch_tests::python());
    cmd.arg(pipewatch_tests::python_script("lineage_emit.py"))
        .arg("--url")
        .arg(format!("http://{addr}"))
        .arg("--base-time")
        .arg(base.to_string())
        .arg("--gzip")
        .arg("--summary")
        .arg(&summary_path);
    // The client blocks; the server answering it runs on the other worker threads.
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "lineage_emit.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent: Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_path).unwrap()).unwrap();
    let ns = sent["namespace"].as_str().unwrap();

    // The graph: every edge the client sent, and each job's latest run state.
    let g = get_json(&format!("http://{addr}/api/v1/lineage/graph")).await;
    let edges: BTreeSet<(String, String)> = g["data"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["from"].as_str().unwrap().to_string(),
                e["to"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String)> = sent["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                format!("{}:{}", e[0].as_str().unwrap(), e[1].as_str().unwrap()),
                format!("{}:{}", e[2].as_str().unwrap(), e[3].as_str().unwrap()),
            )
        })
        .collect();
    assert_eq!(edges, want);
    let node = |id: &str| {
        g["data"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .unwrap_or_else(|| panic!("no node {id} in {g}"))
            .clone()
    };
    for (run_id, r) in sent["runs"].as_object().unwrap() {
        let job = r["job"].as_str().unwrap();
        let runs = get_json(&format!(
            "http://{addr}/api/v1/lineage/runs?namespace={ns}&job={job}"
        ))
        .await;
        let run = runs["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["run_id"] == run_id.as_str())
            .unwrap_or_else(|| panic!("run {run_id} missing: {runs}"))
            .clone();
        assert_eq!(run["state"], r["state"], "{run}");
        assert_eq!(run["duration_seconds"], r["duration_seconds"], "{run}");
        if let Some(err) = r.get("error") {
            assert_eq!(&run["error_message"], err);
            assert_eq!(run["parent_run_id"], r["parent"]["runId"]);
        }
    }
    let latest = node(&format!("job:{ns}/ingest_orders"));
    assert_eq!(latest["latest_run"]["state"], "COMPLETE");
    assert_eq!(latest["latest_run"]["duration_seconds"], 60.0);
    assert_eq!(
        node(&format!("job:{ns}/train_model"))["latest_run"]["state"],
        "FAIL"
    );
    assert_eq!(
        node(&format!("job:{ns}/export_orders"))["latest_run"]["state"],
        "ABORT"
    );
    assert!(node(&format!("job:{ns}/daily_report"))["latest_run"].is_null());
    let orders = node(&format!("dataset:{ns}/warehouse.orders"));
    assert_eq!(orders["schema_version"], 2);

    // The schema change, as the client made it.
    let changes = get_json(&format!("http://{addr}/api/v1/lineage/schema_changes")).await;
    let changes = changes["data"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    let want = &sent["schema_changes"][0];
    assert_eq!(changes[0]["dataset"]["name"], want["dataset"]);
    assert_eq!(changes[0]["run_id"], want["runId"]);
    assert_eq!(changes[0]["changed_at_ms"], ms(&want["time"]));
    assert_eq!(changes[0]["added"], want["added"]);
    assert_eq!(changes[0]["removed"], want["removed"]);
    let tc = &want["type_changed"][0];
    assert_eq!(
        changes[0]["type_changed"][0],
        serde_json::json!([tc["name"], tc["from"], tc["to"]])
    );

    // Series, read back from PostgreSQL.
    wait_until_drained(&st).await;
    assert_eq!(writers.shutdown(Duration::from_secs(10)).await, 0);
    let durations = samples(&url, "openlineage_run_duration_seconds").await;
    for r in sent["runs"].as_object().unwrap().values() {
        assert!(
            durations.iter().any(|(l, _, v)| l["job"] == r["job"]
                && l["state"] == r["state"]
                && *v == r["duration_seconds"].as_f64().unwrap()),
            "{r} in {durations:?}"
        );
    }
    assert_eq!(durations.len(), sent["runs"].as_object().unwrap().len());
    let completes: Vec<f64> = samples(&url, "openlineage_runs_total")
        .await
        .into_iter()
        .filter(|(l, _, _)| l["job"] == "ingest_orders" && l["state"] == "COMPLETE")
        .map(|x| x.2)
        .collect();
    assert_eq!(completes, vec![1.0, 2.0]);
    // Column statistics with quantiles became a drift profile of the column (a handful of
    // quantiles stand for at most 100 values); a column without quantiles did not.
    let profiles = store::Store::connect(&url, store::StoreConfig::default())
        .await
        .unwrap()
        .profiled_columns(0)
        .await
        .unwrap();
    let columns: Vec<(&str, &str)> = profiles
        .iter()
        .map(|p| (p.dataset.as_str(), p.column.as_str()))
        .collect();
    assert_eq!(columns, [("warehouse.orders", "amount")], "{profiles:?}");
    let dq = &sent["dq"];
    let nulls = samples(&url, "openlineage_dataset_column_nulls").await;
    for (col, m) in dq["columns"].as_object().unwrap() {
        assert!(
            nulls
                .iter()
                .any(|(l, _, v)| l["column"] == col.as_str()
                    && *v == m["nullCount"].as_f64().unwrap()),
            "{col}: {nulls:?}"
        );
    }
    let changes = samples(&url, "openlineage_dataset_schema_changes_total").await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].2, 1.0);
    assert_eq!(changes[0].1, ms(&want["time"]));
    let rows = samples(&url, "openlineage_dataset_output_rows").await;
    let rows: Vec<f64> = rows
        .iter()
        .filter(|(l, _, _)| l["dataset"] == "warehouse.orders")
        .map(|x| x.2)
        .collect();
    assert_eq!(rows, vec![1000.0, 1100.0]);
    let _ = std::fs::remove_dir_all(&dir);
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../collectors/tests/fixtures/openlineage")
            .join(name),
    )
    .unwrap()
}

async fn post(app: &axum::Router, ct: &str, body: Vec<u8>) -> (StatusCode, String) {
    let req = Request::post("/api/v1/lineage")
        .header("content-type", ct)
        .body(Body::from(body))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn a_resent_event_is_a_duplicate_and_counts_once() {
    let (st, writers, url) = pipewatch_tests::state(10_000).await;
    let app = server::app(st.clone(), std::env::temp_dir());
    let start = fixture("01-ingest_orders-start.json");
    let done = fixture("03-ingest_orders-complete.json");
    let (s, b) = post(&app, "application/json", start).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = post(&app, "application/json", done.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(serde_json::from_str::<Value>(&b).unwrap()["accepted"], 1);
    // The client retried after a timeout: same event again.
    let (s, b) = post(&app, "application/json", done).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(
        (v["accepted"].as_i64(), v["duplicates"].as_i64()),
        (Some(0), Some(1))
    );
    wait_until_drained(&st).await;
    assert_eq!(writers.shutdown(Duration::from_secs(10)).await, 0);
    // 42.5 s from the fixture README, stored once.
    let d = samples(&url, "openlineage_run_duration_seconds").await;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].2, 42.5);
    // The COMPLETE event's time, once: the job's freshness reads its age.
    let done: Value = serde_json::from_slice(&fixture("03-ingest_orders-complete.json")).unwrap();
    let done_ms = chrono::DateTime::parse_from_rfc3339(done["eventTime"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();
    let last = samples(&url, "openlineage_job_last_success_timestamp_seconds").await;
    assert_eq!(last.len(), 1, "{last:?}");
    assert_eq!(
        (last[0].0["job"].as_str(), last[0].1),
        (Some("ingest_orders"), done_ms)
    );
    assert_eq!(last[0].2, done_ms as f64 / 1000.0);
}

#[tokio::test]
async fn lineage_refuses_malformed_oversize_and_wrong_type_requests() {
    let (mut st, _w, _) = pipewatch_tests::state(10_000).await;
    st.receivers = ReceiversConfig {
        max_body_bytes: 1024,
        ..ReceiversConfig::default()
    };
    let app = server::app(st.clone(), std::env::temp_dir());

    let (s, b) = post(&app, "application/json", b"{\"eventTime\": 1".to_vec()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(b.contains("not an OpenLineage event"), "{b}");
    let bad = br#"{"eventTime":"2026-01-01T00:00:00Z","eventType":"START","run":{"runId":"r"},"job":{"namespace":"n","name":"j"},"outputs":[{"namespace":"n","name":"d","outputFacets":{"outputStatistics":{"rowCount":"lots"}}}]}"#;
    let (s, b) = post(&app, "application/json", bad.to_vec()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(
        b.contains("outputs[0].outputFacets.outputStatistics.rowCount"),
        "{b}"
    );
    let (s, b) = post(
        &app,
        "application/json",
        b"{\"eventTime\":\"2026-01-01T00:00:00Z\"}".to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(b.contains("DatasetEvent"), "{b}");

    // The failing event of the fixture set is over 1 KiB.
    let big = fixture("07-train_model-fail.json");
    assert!(big.len() > 1024);
    let (s, b) = post(&app, "application/json", big).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{b}");
    assert!(b.contains("receivers.max_body_bytes"), "{b}");

    let (s, b) = post(
        &app,
        "application/x-protobuf",
        fixture("02-ingest_orders-running.json"),
    )
    .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{b}");
    assert!(b.contains("application/json"), "{b}");
    let req = Request::post("/api/v1/lineage")
        .header("content-type", "application/json")
        .header("content-encoding", "br")
        .body(Body::from(fixture("02-ingest_orders-running.json")))
        .unwrap();
    assert_eq!(
        app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert_eq!(st.queue.depth(), 0);
    assert_eq!(
        st.metrics.samples_enqueued.get(),
        0,
        "nothing refused may be queued"
    );
    let g = st.store.lineage_graph().await.unwrap();
    assert!(g.nodes.is_empty(), "nothing refused may be recorded");
}
