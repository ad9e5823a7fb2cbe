//! Data-quality intake against a real PostgreSQL: every result file in
//! `collectors/tests/fixtures/dq/` is POSTed to `/api/v1/dq/{gx,dbt,soda}` of an in-process
//! pipewatch, then read back through `/api/v1/dq/*`, the store and the stored series, and
//! compared with the fixture's `expected.json`; a re-post stores nothing twice; malformed,
//! oversize, wrong-type requests are refused with a message; `pipewatch import` (the real
//! binary) sends files to a running server.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use server::config::ReceiversConfig;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tower::ServiceExt;

fn dq_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../collectors/tests/fixtures/dq")
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(dq_dir().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn expected() -> Value {
    serde_json::from_slice(&read("expected.json")).unwrap()
}

fn ms(s: &str) -> i64 {
    collectors::dq::parse_time_ms(s).unwrap()
}

async fn wait_until_drained(st: &server::AppState) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while st.queue.depth() > 0 {
        assert!(Instant::now() < deadline, "queue did not drain in 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// (labels, ts ms, value) of every stored sample of `metric`.
async fn samples(url: &str, metric: &str) -> Vec<(BTreeMap<String, String>, i64, f64)> {
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

async fn post(addr: std::net::SocketAddr, tool: &str, body: Vec<u8>) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/dq/{tool}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
}

async fn get_json(url: &str) -> Value {
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r.json().await.unwrap()
}

fn dbt_bundle() -> Vec<u8> {
    let s = |f: &str| String::from_utf8(read(f)).unwrap();
    format!(
        "{{\"run_results\":{},\"manifest\":{},\"sources\":{}}}",
        s("dbt/run_results.json"),
        s("dbt/manifest.json"),
        s("dbt/sources.json")
    )
    .into_bytes()
}

/// The checks of `dataset` from the read API.
async fn checks(addr: std::net::SocketAddr, dataset: &str) -> Vec<Value> {
    let r = reqwest::Client::new()
        .get(format!("http://{addr}/api/v1/dq/checks"))
        .query(&[("dataset", dataset)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{dataset}");
    let v: Value = r.json().await.unwrap();
    v["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn gx1_soda_and_dbt_results_are_stored_read_back_and_plotted_as_expected() {
    let (st, writers, url) = pipewatch_tests::state(100_000).await;
    let addr = pipewatch_tests::serve(server::app(st.clone(), std::env::temp_dir())).await;
    let exp = expected();
    let files = &exp["files"];

    // GX 1.x validation results of both days, Soda scans of both days, dbt build + freshness.
    for (tool, file, checks) in [
        ("gx", "gx1/validation_result_01.json", 8),
        ("gx", "gx1/validation_result_02.json", 8),
        ("soda", "soda/scan_results_01.json", 9),
        ("soda", "soda/scan_results_02.json", 9),
    ] {
        let (status, v) = post(addr, tool, read(file)).await;
        assert_eq!(status, 201, "{file}: {v}");
        assert_eq!(v["checks"], checks, "{file}");
        assert_eq!(v["inserted"], checks, "{file}");
    }
    let (status, v) = post(addr, "dbt", dbt_bundle()).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["checks"], 18 + 3);
    assert_eq!(v["format"], "dbt run_results + dbt sources + manifest");

    // The checkpoint results and the store copies hold the same runs: nothing new.
    for file in [
        "gx1/checkpoint_result_01.json",
        "gx1/checkpoint_result_02.json",
        "gx1/store/validation_result_01.json",
        "gx1/store/validation_result_02.json",
    ] {
        let (status, v) = post(addr, "gx", read(file)).await;
        assert_eq!(status, 200, "{file}: {v}");
        assert_eq!(
            (v["inserted"].as_u64(), v["duplicates"].as_u64()),
            (Some(0), Some(8))
        );
    }
    let stored = st.store.dq_check_run_count().await.unwrap();
    assert_eq!(stored, 16 + 18 + 21);

    // GX: dataset `orders` (the fixture README's data asset), 8 checks with both runs.
    let gx = checks(addr, "orders").await;
    assert_eq!(gx.len(), 8);
    let runs = [
        &files["gx1/validation_result_01.json"],
        &files["gx1/validation_result_02.json"],
    ];
    for e in runs[1]["checks"].as_array().unwrap() {
        let t = e["expectation_type"].as_str().unwrap();
        let c = gx
            .iter()
            .find(|c| c["check_name"] == t && c["column"] == e["column"])
            .unwrap_or_else(|| panic!("no {t}"));
        assert_eq!(c["tool"], "gx");
        assert_eq!(c["suite"], "orders_suite");
        let cells = c["runs"].as_array().unwrap();
        assert_eq!(cells.len(), 2, "{t}");
        for (cell, run) in cells.iter().zip(runs) {
            let want = run["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["expectation_type"] == t && x["column"] == e["column"])
                .unwrap();
            assert_eq!(cell["run_time_ms"], ms(run["run_time"].as_str().unwrap()));
            assert_eq!(cell["status"], want["status"], "{t}");
            let observed = if want["observed_value"].is_null() {
                want["unexpected_count"].as_f64()
            } else {
                want["observed_value"].as_f64()
            };
            assert_eq!(cell["observed_value"].as_f64(), observed, "{t}");
        }
    }

    // Soda: one dataset per daily table, the not-evaluated check as an error.
    for n in ["01", "02"] {
        let f = &files[format!("soda/scan_results_{n}.json").as_str()];
        let table = f["checks"][0]["table"].as_str().unwrap();
        let got = checks(addr, table).await;
        assert_eq!(got.len(), 9, "{table}");
        for e in f["checks"].as_array().unwrap() {
            let c = got.iter().find(|c| c["check_name"] == e["name"]).unwrap();
            let cell = &c["runs"][0];
            assert_eq!(cell["status"], e["status"], "{}", e["name"]);
            // Freshness ages are stored in seconds (Soda reports milliseconds).
            let want = match e["freshness"].as_str() {
                Some(_) => e["value"].as_f64().map(|ms| ms / 1000.0),
                None => e["value"].as_f64(),
            };
            assert_eq!(cell["observed_value"].as_f64(), want, "{}", e["name"]);
            assert_eq!(
                cell["run_time_ms"],
                ms(f["dataTimestamp"].as_str().unwrap())
            );
            assert_eq!(c["column"], e["column"]);
        }
        let ne = &f["not_evaluated"][0];
        let c = got.iter().find(|c| c["check_name"] == ne["name"]).unwrap();
        assert_eq!(c["runs"][0]["status"], "error");
    }

    // dbt: tests filed under their model (via the manifest), freshness under the source.
    let rr = &files["dbt/run_results.json"];
    for e in rr["results"].as_array().unwrap() {
        let Some(node) = e["attached_node"].as_str() else {
            continue;
        };
        let dataset = node.split('.').nth(2).unwrap();
        let got = checks(addr, dataset).await;
        let c = got
            .iter()
            .find(|c| c["check_name"] == e["name"])
            .unwrap_or_else(|| panic!("{} not under {dataset}", e["name"]));
        assert_eq!(c["column"], e["column_name"]);
        assert_eq!(c["runs"][0]["status"], e["status"]);
        assert_eq!(
            c["runs"][0]["observed_value"].as_f64(),
            e["failures"].as_f64()
        );
    }
    for e in files["dbt/sources.json"]["results"].as_array().unwrap() {
        let uid = e["unique_id"].as_str().unwrap();
        let dataset = format!("shop.{}", uid.rsplit('.').next().unwrap());
        let got = checks(addr, &dataset).await;
        let c = got.iter().find(|c| c["check_type"] == "freshness").unwrap();
        assert_eq!(c["runs"][0]["status"], e["status"], "{dataset}");
    }

    // The dataset list: latest status per check, worst first.
    let ds = get_json(&format!("http://{addr}/api/v1/dq/datasets")).await["data"].clone();
    let by_name: BTreeMap<String, &Value> = ds
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["dataset"].as_str().unwrap().to_owned(), d))
        .collect();
    let orders = by_name["orders"];
    let latest = &runs[1]["status_counts"];
    assert_eq!(orders["checks"], 8);
    assert_eq!(orders["pass"], latest["pass"]);
    assert_eq!(orders["warn"], latest["warn"]);
    assert_eq!(orders["fail"], latest["fail"]);
    assert_eq!(orders["status"], "fail");
    assert_eq!(by_name["shop.order_events"]["status"], "error");
    assert_eq!(by_name["shop.payments"]["status"], "pass");
    assert_eq!(by_name["fct_customer_revenue"]["status"], "skipped");
    assert_eq!(ds[0]["status"], "error", "worst first");

    // Series, at each check's run time (2024: older than retention, still stored).
    wait_until_drained(&st).await;
    assert_eq!(writers.shutdown(Duration::from_secs(10)).await, 0);
    let status = samples(&url, "dq_check_status").await;
    let mean: Vec<(i64, f64)> = status
        .iter()
        .filter(|(l, _, _)| {
            l.get("dataset").map(String::as_str) == Some("orders")
                && l.get("check").map(String::as_str) == Some("expect_column_mean_to_be_between")
        })
        .map(|(l, t, v)| {
            assert_eq!(l.get("column").map(String::as_str), Some("amount"));
            assert_eq!(l.get("tool").map(String::as_str), Some("gx"));
            (*t, *v)
        })
        .collect();
    assert_eq!(
        mean,
        vec![
            (ms("2024-05-02T01:00:00+00:00"), 1.0),
            (ms("2024-05-03T01:00:00+00:00"), 0.5)
        ],
        "pass then warn (GX 1.x severity warning)"
    );
    let observed = samples(&url, "dq_check_observed_value").await;
    let row_count: Vec<f64> = observed
        .iter()
        .filter(|(l, _, _)| {
            l.get("check").map(String::as_str) == Some("expect_table_row_count_to_be_between")
        })
        .map(|(_, _, v)| *v)
        .collect();
    assert_eq!(row_count, vec![30.0, 34.0]);
    let ratio: Vec<(i64, f64)> = samples(&url, "dq_dataset_pass_ratio")
        .await
        .into_iter()
        .filter(|(l, _, _)| l.get("dataset").map(String::as_str) == Some("orders"))
        .map(|(_, t, v)| (t, v))
        .collect();
    let stat = |r: &Value| {
        r["statistics"]["successful_expectations"].as_f64().unwrap()
            / r["statistics"]["evaluated_expectations"].as_f64().unwrap()
    };
    assert_eq!(
        ratio,
        vec![
            (ms("2024-05-02T01:00:00+00:00"), stat(runs[0])),
            (ms("2024-05-03T01:00:00+00:00"), stat(runs[1]))
        ]
    );
    // Each check run became exactly one status sample (skipped dbt nodes write none), so the
    // duplicate posts above wrote nothing.
    let skipped = 3;
    assert_eq!(status.len() as i64, stored - skipped);
}

#[tokio::test]
async fn gx_0_18_results_are_stored_like_1_x_without_severity() {
    let (st, writers, _url) = pipewatch_tests::state(100_000).await;
    let app = server::app(st.clone(), std::env::temp_dir());
    let addr = pipewatch_tests::serve(app).await;
    let exp = expected();
    for n in ["01", "02"] {
        let (status, v) = post(
            addr,
            "gx",
            read(&format!("gx018/checkpoint_result_{n}.json")),
        )
        .await;
        assert_eq!(status, 201, "{v}");
        assert_eq!(v["tool_version"], "0.18.22");
        let (status, _) = post(
            addr,
            "gx",
            read(&format!("gx018/validation_result_{n}.json")),
        )
        .await;
        assert_eq!(status, 200, "same run as the checkpoint result");
    }
    let got = checks(addr, "orders").await;
    let last = &exp["files"]["gx018/validation_result_02.json"];
    for e in last["checks"].as_array().unwrap() {
        let c = got
            .iter()
            .find(|c| c["check_name"] == e["expectation_type"] && c["column"] == e["column"])
            .unwrap();
        assert_eq!(
            c["runs"][1]["status"], e["status"],
            "{}",
            e["expectation_type"]
        );
    }
    wait_until_drained(&st).await;
    assert_eq!(writers.shutdown(Duration::from_secs(10)).await, 0);
}

async fn oneshot(
    router: axum::Router,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, String) {
    let mut req = Request::post(path);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = router
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn malformed_oversize_and_wrong_type_requests_are_refused_with_the_fix() {
    let (st, _writers, _url) = pipewatch_tests::state(100_000).await;
    let small = ReceiversConfig {
        max_body_bytes: 64 << 10,
        ..Default::default()
    };
    let r = || server::receivers::router_with_config(st.clone(), small.clone());
    let json = Some("application/json");

    let (s, m) = oneshot(r(), "/api/v1/dq/gx", json, b"{\"results\": [".to_vec()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(m.contains("not JSON"), "{m}");

    let (s, m) = oneshot(
        r(),
        "/api/v1/dq/gx",
        json,
        read("soda/scan_results_01.json"),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        m.contains("not a Great Expectations result: missing `results`"),
        "{m}"
    );
    assert!(m.contains("checkpoint.run()"), "{m}");

    let (s, m) = oneshot(
        r(),
        "/api/v1/dq/soda",
        json,
        read("gx1/validation_result_01.json"),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(m.contains("not a Soda scan result"), "{m}");

    let (s, m) = oneshot(
        r(),
        "/api/v1/dq/dbt",
        json,
        read("dbt/sources.json")[..0].to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(m.contains("body is empty"), "{m}");

    // The manifest alone is over 64 KiB: 413 before parsing.
    let (s, m) = oneshot(r(), "/api/v1/dq/dbt", json, read("dbt/manifest.json")).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(m.contains("receivers.max_body_bytes"), "{m}");

    let (s, m) = oneshot(
        r(),
        "/api/v1/dq/soda",
        Some("multipart/form-data; boundary=x"),
        b"--x--".to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(m.contains("application/json"), "{m}");

    let (s, m) = oneshot(r(), "/api/v1/dq/great", json, b"{}".to_vec()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(m.contains("/api/v1/dq/gx"), "{m}");

    assert_eq!(
        st.store.dq_check_run_count().await.unwrap(),
        0,
        "nothing stored"
    );

    let app = server::app(st.clone(), std::env::temp_dir());
    let resp = app
        .oneshot(
            Request::get("/api/v1/dq/checks")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("missing `dataset`"));
}

#[tokio::test]
async fn pipewatch_import_sends_files_to_a_running_server() {
    let (st, writers, _url) = pipewatch_tests::state(100_000).await;
    let addr = pipewatch_tests::serve(server::app(st.clone(), std::env::temp_dir())).await;
    let dir = dq_dir();
    // tokio's Command: the server answering the binary runs on this test's runtime.
    let out = tokio::process::Command::new(pipewatch_tests::pipewatch_bin())
        .arg("import")
        .arg("--url")
        .arg(format!("http://{addr}"))
        .arg(dir.join("gx1/validation_result_01.json"))
        .arg(dir.join("soda/scan_results_02.json"))
        .arg(dir.join("dbt/run_results.json"))
        .arg("--manifest")
        .arg(dir.join("dbt/manifest.json"))
        .arg("--sources")
        .arg(dir.join("dbt/sources.json"))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "import failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].contains("gx 1.24.1") && lines[0].contains("8 checks, 8 new"),
        "{stdout}"
    );
    assert!(lines[0].contains("pass 7, fail 1"), "{stdout}");
    assert!(
        lines[1].contains("soda 3.5.6") && lines[1].contains("9 checks"),
        "{stdout}"
    );
    assert!(
        lines[2]
            .contains("dbt 1.11.16 (dbt run_results + dbt sources + manifest), 21 checks, 21 new"),
        "{stdout}"
    );
    assert_eq!(st.store.dq_check_run_count().await.unwrap(), 8 + 9 + 21);
    let ds = st.store.dq_datasets().await.unwrap();
    assert!(
        ds.iter().any(|d| d.dataset == "stg_orders"),
        "manifest mapping applied"
    );

    // A file that is not a result: non-zero exit with the server's reason.
    let out = tokio::process::Command::new(pipewatch_tests::pipewatch_bin())
        .args(["import", "--tool", "gx", "--url"])
        .arg(format!("http://{addr}"))
        .arg(dir.join("soda/scan_results_01.json"))
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("400") && err.contains("missing `results`"),
        "{err}"
    );
    wait_until_drained(&st).await;
    assert_eq!(writers.shutdown(Duration::from_secs(10)).await, 0);
}

#[tokio::test]
async fn quality_page_renders_datasets_statuses_history_and_explore_links() {
    let (st, writers, _url) = pipewatch_tests::state(100_000).await;
    let addr = pipewatch_tests::serve(server::app(st.clone(), std::env::temp_dir())).await;
    for (tool, file) in [
        ("gx", "gx1/validation_result_01.json"),
        ("gx", "gx1/validation_result_02.json"),
        ("soda", "soda/scan_results_02.json"),
    ] {
        let (status, v) = post(addr, tool, read(file)).await;
        assert_eq!(status, 201, "{file}: {v}");
    }
    let html = pipewatch_tests::get_text(&format!("http://{addr}/quality?dataset=orders")).await;
    assert!(html.contains("Data quality"), "{html}");
    // Both datasets are listed, each linking to its own checks.
    assert!(html.contains("href=\"/quality?dataset=orders\""), "{html}");
    assert!(
        html.contains("href=\"/quality?dataset=orders_20240502\""),
        "{html}"
    );
    assert!(html.contains("Checks of orders"));
    // The 8 GX checks, each with two history cells whose tooltips carry time, status and value.
    assert_eq!(html.matches("class=\"dq-check\"").count(), 8, "{html}");
    assert!(
        html.contains("title=\"2024-05-02 01:00:00 UTC · pass · observed 30\""),
        "{html}"
    );
    assert!(
        html.contains("title=\"2024-05-03 01:00:00 UTC · warn · observed 821.5147058823529\""),
        "{html}"
    );
    assert_eq!(html.matches("class=\"dq-cell dq-").count(), 16);
    // Each check links to Explore with its status series selected.
    assert!(
        html.contains("href=\"/explore?q=dq_check_status%7Btool%3D%22gx%22%2Csuite%3D%22orders_suite%22%2Cdataset%3D%22orders%22%2Ccheck%3D%22expect_column_mean_to_be_between%22%2Ccolumn%3D%22amount%22%7D&amp;from="),
        "{html}"
    );
    wait_until_drained(&st).await;
    assert_eq!(writers.shutdown(Duration::from_secs(10)).await, 0);
}

/// Captured outputs under tests/fixtures/dq/ (see its README): GX 1.x ephemeral-context runs,
/// GX describe(), Soda scans that failed as a whole.
fn captured(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/dq")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[tokio::test]
async fn gx_suite_built_in_code_keeps_its_checks_across_runs_with_new_expectation_ids() {
    let (st, writers, _url) = pipewatch_tests::state(100_000).await;
    let addr = pipewatch_tests::serve(server::app(st.clone(), std::env::temp_dir())).await;
    // The two runs really have different expectation ids (else this test proves nothing).
    let ids = |f: &str| -> Vec<String> {
        let v: Value = serde_json::from_slice(&captured(f)).unwrap();
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["expectation_config"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (a, b) = (
        ids("gx_ephemeral/validation_result_run1.json"),
        ids("gx_ephemeral/validation_result_run2.json"),
    );
    assert_eq!(a.len(), 5);
    assert!(a.iter().all(|id| !b.contains(id)), "{a:?} {b:?}");
    for f in ["run1", "run2"] {
        let file = format!("gx_ephemeral/validation_result_{f}.json");
        let (status, v) = post(addr, "gx", captured(&file)).await;
        assert_eq!(status, 201, "{file}: {v}");
        assert_eq!(v["inserted"], 5, "{file}");
    }
    // Re-sending the second run changes nothing.
    let (status, v) = post(
        addr,
        "gx",
        captured("gx_ephemeral/validation_result_run2.json"),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["duplicates"], 5);
    let got = checks(addr, "orders").await;
    assert_eq!(got.len(), 5, "5 expectations, not 10: {got:#?}");
    for c in &got {
        assert_eq!(c["runs"].as_array().unwrap().len(), 2, "{c}");
        assert_eq!(c["suite"], "orders_in_code");
    }
    // The warning-severity mean expectation failed: warn, not fail.
    let mean = got
        .iter()
        .find(|c| c["check_name"] == "expect_column_mean_to_be_between")
        .unwrap();
    assert_eq!(mean["runs"][1]["status"], "warn");
    let times: Vec<i64> = mean["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_time_ms"].as_i64().unwrap())
        .collect();
    // 2024-05-02T01:00:00Z and a day later: the runs' own times, not the import time.
    assert_eq!(times, vec![1_714_611_600_000, 1_714_698_000_000]);
    wait_until_drained(&st).await;
    assert_eq!(writers.shutdown(Duration::from_secs(10)).await, 0);
}

#[tokio::test]
async fn gx_describe_output_is_refused_with_what_to_send_instead() {
    let (st, _writers, _url) = pipewatch_tests::state(100_000).await;
    let r = server::receivers::router_with_config(st.clone(), ReceiversConfig::default());
    for body in [
        captured("gx_ephemeral/checkpoint_describe_run2.json"),
        read("gx1/checkpoint_result_01.describe.json"),
        read("gx1/validation_result_01.describe.json"),
    ] {
        let (s, m) = oneshot(r.clone(), "/api/v1/dq/gx", Some("application/json"), body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{m}");
        assert!(m.contains("describe()"), "{m}");
        assert!(m.contains("run_results.values()"), "{m}");
        assert!(!m.contains("checkpoint.run().to_json_dict"), "{m}");
    }
    assert_eq!(st.store.dq_check_run_count().await.unwrap(), 0);
}

#[tokio::test]
async fn soda_scans_that_failed_as_a_whole_show_as_error_runs() {
    let (st, writers, _url) = pipewatch_tests::state(100_000).await;
    let addr = pipewatch_tests::serve(server::app(st.clone(), std::env::temp_dir())).await;
    // Connection refused: no check, no table named; the scan itself is the error.
    let (status, v) = post(addr, "soda", captured("soda_failed/connection_error.json")).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["checks"], 1);
    assert_eq!(v["statuses"]["error"], 1);
    let got = checks(addr, "orders_nightly").await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["check_name"], "scan");
    let run = &got[0]["runs"][0];
    assert_eq!(run["status"], "error");
    assert_eq!(
        run["run_time_ms"], 1_714_698_000_000_i64,
        "the scan's data timestamp"
    );
    assert!(
        run["message"]
            .as_str()
            .unwrap()
            .contains("Could not connect to data source"),
        "{run}"
    );
    // A check on a missing column: the one not-evaluated check, under its table.
    let (status, v) = post(addr, "soda", captured("soda_failed/missing_column.json")).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["checks"], 1);
    let got = checks(addr, "orders").await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["check_name"], "missing_count(discount_code) = 0");
    assert_eq!(got[0]["runs"][0]["status"], "error");
    assert!(
        got[0]["runs"][0]["message"]
            .as_str()
            .unwrap()
            .contains("column \"discount_code\" does not exist"),
        "{got:#?}"
    );
    // Both show on the dataset list as errors.
    let ds = get_json(&format!("http://{addr}/api/v1/dq/datasets")).await["data"].clone();
    for name in ["orders_nightly", "orders"] {
        let d = ds
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["dataset"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {ds}"));
        assert_eq!(d["status"], "error", "{name}");
    }
    wait_until_drained(&st).await;
    assert_eq!(writers.shutdown(Duration::from_secs(10)).await, 0);
}

#[tokio::test]
async fn generic_results_are_stored_like_the_tools_and_refused_naming_line_and_field() {
    let (st, writers, url) = pipewatch_tests::state(100_000).await;
    let addr = pipewatch_tests::serve(server::app(st.clone(), std::env::temp_dir())).await;
    let body = concat!(
        r#"{"dataset":"payments","check":"row_count","status":"pass","observed_value":1200,"time":"2024-05-02T13:00:00Z","suite":"nightly_sql","run_id":"r1"}"#,
        "\n",
        r#"{"dataset":"payments","check":"max_age","column":"paid_at","status":"warn","observed_value":"3h 10m","time":"2024-05-02T13:00:00Z","suite":"nightly_sql","run_id":"r1"}"#,
        "\n",
        r#"{"dataset":"payments","check":"row_count","status":"fail","observed_value":3,"time":"2024-05-03T13:00:00Z","suite":"nightly_sql","run_id":"r2"}"#,
        "\n"
    );
    let (status, v) = post(addr, "generic", body.as_bytes().to_vec()).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["tool"], "generic");
    assert_eq!(v["inserted"], 3);
    let (status, v) = post(addr, "generic", body.as_bytes().to_vec()).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["duplicates"], 3);

    let got = checks(addr, "payments").await;
    assert_eq!(got.len(), 2, "{got:#?}");
    let rows = got.iter().find(|c| c["check_name"] == "row_count").unwrap();
    assert_eq!(rows["tool"], "generic");
    assert_eq!(rows["suite"], "nightly_sql");
    let statuses: Vec<&str> = rows["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["pass", "fail"]);
    let age = got.iter().find(|c| c["check_name"] == "max_age").unwrap();
    assert_eq!(age["column"], "paid_at");
    assert_eq!(age["runs"][0]["observed_raw"], "3h 10m");

    // Refusals: NDJSON line, array index, the field.
    let bad = body.replace("\"warn\"", "\"warning\"");
    let (status, v) = post(addr, "generic", bad.into_bytes()).await;
    assert_eq!(status, 400, "{v}");
    let m = v.as_str().unwrap();
    assert!(
        m.contains("line 2: field `status`: \"warning\" is not one of"),
        "{m}"
    );
    let arr = r#"[{"dataset":"a","check":"c","status":"pass","observed_value":1,"time":"2024-05-02T13:00:00Z"},{"dataset":"a","check":"c","status":"pass","observed_value":1,"time":"13:00"}]"#;
    let (status, v) = post(addr, "generic", arr.as_bytes().to_vec()).await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v.as_str().unwrap().contains("element [1]: field `time`"),
        "{v}"
    );

    // Plotted like the others: the status series of the check at its own time.
    wait_until_drained(&st).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = samples(&url, "dq_check_status").await;
    let mine: Vec<(i64, f64)> = got
        .iter()
        .filter(|(l, _, _)| {
            l.get("tool").map(String::as_str) == Some("generic") && l["check"] == "row_count"
        })
        .map(|(_, t, v)| (*t, *v))
        .collect();
    assert_eq!(
        mine,
        vec![(1_714_654_800_000, 1.0), (1_714_741_200_000, 0.0)]
    );
    assert_eq!(writers.shutdown(Duration::from_secs(10)).await, 0);
}
