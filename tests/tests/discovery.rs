//! Scrape service discovery and relabelling end to end, in process: pipewatch finds its targets
//! in a real file_sd file that the test rewrites and at a real http_sd endpoint on 127.0.0.1
//! that changes its answer and then fails, relabels them, scrapes real HTTP targets (the
//! exporter zoo) and writes to a real PostgreSQL. Also: config errors that name the key.

use pipewatch_tests::{exporter_zoo, fixture, now_ms, serve};
use serde_json::Value;
use server::config::Config;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// Not an auth test: anonymous requests act as admin.
const BASE: &str = "[server]\nlisten = \"127.0.0.1:0\"\n[ingest]\nflush_interval = \"100ms\"\n[auth]\nanonymous_role = \"admin\"\n";

async fn start(url: &str, jobs: &str) -> server::run::RunningServer {
    let toml = format!("{BASE}[database]\nurl = \"{url}\"\nmaintenance_interval = \"1s\"\n{jobs}");
    let cfg = Config::from_toml_str(&toml).unwrap_or_else(|e| panic!("{e:#}\n{toml}"));
    server::run::RunningServer::start(cfg, Default::default())
        .await
        .expect("server ready")
}

async fn targets(addr: SocketAddr) -> Vec<Value> {
    let v: Value = reqwest::get(format!("http://{addr}/api/v1/targets"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["data"].as_array().cloned().unwrap_or_default()
}

/// Polls the targets API until `ok` holds for the targets of `job` (at most `secs`).
async fn wait_targets(
    addr: SocketAddr,
    job: &str,
    secs: u64,
    what: &str,
    ok: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let mut last = Vec::new();
    for _ in 0..secs * 5 {
        last = targets(addr)
            .await
            .into_iter()
            .filter(|t| t["job"] == job)
            .collect();
        if ok(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("after {secs}s: {what}; targets of {job}: {last:#?}");
}

/// A label of a target as the API shows it (`labels` / `discovered_labels`: `[[name, value], ...]`).
fn label<'a>(t: &'a Value, field: &str, name: &str) -> Option<&'a str> {
    t[field].as_array()?.iter().find_map(|pair| {
        (pair[0].as_str() == Some(name))
            .then(|| pair[1].as_str())
            .flatten()
    })
}

fn instances(ts: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = ts
        .iter()
        .map(|t| label(t, "labels", "instance").unwrap_or("").to_string())
        .collect();
    v.sort();
    v
}

fn all_up(ts: &[Value]) -> bool {
    ts.iter().all(|t| t["state"] == "up")
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "pipewatch-{name}-{}-{}",
        std::process::id(),
        now_ms()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Replaces `path` atomically, as configuration management tools do.
fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn series(url: &str, sel: &str) -> Vec<store::SeriesInfo> {
    let db = store::Store::connect(url, store::StoreConfig::default())
        .await
        .unwrap();
    db.find_series(&model::Selector::parse(sel).unwrap())
        .await
        .unwrap()
}

/// Time of the newest stored `up` sample of one target, if any.
async fn last_up(url: &str, job: &str, instance: &str) -> Option<i64> {
    let db = store::Store::connect(url, store::StoreConfig::default())
        .await
        .unwrap();
    let sel =
        model::Selector::parse(&format!("up{{job=\"{job}\",instance=\"{instance}\"}}")).unwrap();
    let q = model::RangeQuery {
        start: now_ms() - 300_000,
        end: now_ms() + 1_000,
        step_ms: 1_000,
        aggregation: model::Aggregation::Last,
    };
    db.query_range(&sel, &q)
        .await
        .unwrap()
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .max()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sd_targets_follow_the_file_and_carry_relabelled_labels() {
    let zoo1 = exporter_zoo().await;
    let zoo2 = exporter_zoo().await;
    let (z1, z2) = (zoo1.to_string(), zoo2.to_string());
    let dir = temp_dir("file-sd");
    let file = dir.join("targets.json");
    write_atomically(
        &file,
        &format!(
            r#"[{{"targets": ["{z1}"], "labels": {{"env": "prod", "__meta_owner": "team-a"}}}}]"#
        ),
    );
    let url = store::testing::fresh_database_url().await;
    // A 5-minute refresh interval: changes must be picked up by watching the file, not by the
    // periodic re-read.
    let jobs = format!(
        r#"[[scrape_configs]]
job_name = "filesd"
scrape_interval = "1s"
scrape_timeout = "500ms"
metrics_path = "/good"
file_sd_configs = [{{ files = ["{}/*.json"], refresh_interval = "5m" }}]
relabel_configs = [
  {{ source_labels = ["__meta_owner"], target_label = "owner" }},
  {{ source_labels = ["env"], regex = "dev", action = "drop" }},
]
"#,
        dir.display()
    );
    let server = start(&url, &jobs).await;
    let addr = server.addr;

    let ts = wait_targets(addr, "filesd", 20, "zoo1 up", |t| {
        instances(t) == [z1.clone()] && all_up(t)
    })
    .await;
    let t = &ts[0];
    assert_eq!(label(t, "labels", "owner"), Some("team-a"), "{t}");
    assert_eq!(label(t, "labels", "env"), Some("prod"), "{t}");
    assert!(
        label(t, "labels", "__meta_owner").is_none(),
        "meta labels are gone after relabelling: {t}"
    );
    assert_eq!(
        label(t, "discovered_labels", "__address__"),
        Some(z1.as_str()),
        "{t}"
    );
    assert_eq!(
        label(t, "discovered_labels", "__meta_filepath"),
        Some(file.display().to_string().as_str()),
        "{t}"
    );
    assert_eq!(
        label(t, "discovered_labels", "__meta_owner"),
        Some("team-a"),
        "{t}"
    );
    assert_eq!(t["url"], format!("http://{z1}/good"));

    // Scraped samples carry the relabelled target labels.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let cpu = series(&url, r#"node_cpu_seconds_total{job="filesd"}"#).await;
    assert_eq!(
        cpu.len(),
        16,
        "every node_cpu_seconds_total series of the capture"
    );
    assert!(cpu
        .iter()
        .all(|s| s.key.labels.get("owner") == Some("team-a")
            && s.key.labels.get("env") == Some("prod")
            && s.key.labels.get("instance") == Some(z1.as_str())));

    // A second target appears.
    write_atomically(
        &file,
        &format!(
            r#"[{{"targets": ["{z1}", "{z2}"], "labels": {{"env": "prod", "__meta_owner": "team-a"}}}}]"#
        ),
    );
    wait_targets(addr, "filesd", 10, "zoo1 and zoo2 up", |t| {
        instances(t) == {
            let mut v = vec![z1.clone(), z2.clone()];
            v.sort();
            v
        } && all_up(t)
    })
    .await;

    // zoo1 moves to env=dev, which relabelling drops; zoo2 stays.
    write_atomically(
        &file,
        &format!(
            r#"[{{"targets": ["{z2}"], "labels": {{"env": "prod"}}}}, {{"targets": ["{z1}"], "labels": {{"env": "dev"}}}}]"#
        ),
    );
    wait_targets(addr, "filesd", 10, "only zoo2", |t| {
        instances(t) == [z2.clone()]
    })
    .await;
    let removed_at = now_ms();

    // A file that cannot be read any more keeps its last good targets, with the error shown.
    std::fs::write(&file, "[{\"targets\": [").unwrap();
    let ts = wait_targets(addr, "filesd", 10, "a discovery error on zoo2", |t| {
        t.len() == 1 && t[0]["discovery_error"].is_string()
    })
    .await;
    assert_eq!(instances(&ts), std::slice::from_ref(&z2));
    let err = ts[0]["discovery_error"].as_str().unwrap();
    assert!(
        err.contains("targets.json") && err.contains("not a JSON list"),
        "{err}"
    );

    // Deleting the file removes its targets.
    std::fs::remove_file(&file).unwrap();
    wait_targets(addr, "filesd", 10, "no targets", |t| t.is_empty()).await;

    // The stopped loop of zoo1 wrote nothing after it was removed (one scrape may have been
    // in flight), so no loop leaked.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let z1_last = last_up(&url, "filesd", &z1)
        .await
        .expect("zoo1 was scraped");
    assert!(
        z1_last <= removed_at + 1_000,
        "zoo1 was still scraped {} ms after it was removed",
        z1_last - removed_at
    );
    let report = server.stop().await.unwrap();
    assert_eq!(report.samples_lost, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// An http_sd endpoint whose answer the test sets, recording the refresh-interval header.
#[derive(Clone, Default)]
struct SdEndpoint {
    answer: Arc<Mutex<(u16, String)>>,
    refresh_header: Arc<Mutex<Option<String>>>,
}

async fn sd_endpoint(sd: SdEndpoint) -> SocketAddr {
    use axum::http::{header, HeaderMap, StatusCode};
    let router = axum::Router::new().route(
        "/targets",
        axum::routing::get(move |headers: HeaderMap| {
            let sd = sd.clone();
            async move {
                *sd.refresh_header.lock().unwrap() = headers
                    .get("x-prometheus-refresh-interval-seconds")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let (status, body) = sd.answer.lock().unwrap().clone();
                (
                    StatusCode::from_u16(status).unwrap(),
                    [(header::CONTENT_TYPE, "application/json")],
                    body,
                )
            }
        }),
    );
    serve(router).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_sd_follows_the_endpoint_and_keeps_the_last_good_set_when_it_fails() {
    let zoo1 = exporter_zoo().await;
    let zoo2 = exporter_zoo().await;
    let (z1, z2) = (zoo1.to_string(), zoo2.to_string());
    let sd = SdEndpoint::default();
    *sd.answer.lock().unwrap() = (
        200,
        format!(r#"[{{"targets": ["{z1}"], "labels": {{"__meta_datacenter": "bru1"}}}}]"#),
    );
    let sd_addr = sd_endpoint(sd.clone()).await;
    let sd_url = format!("http://{sd_addr}/targets");
    let url = store::testing::fresh_database_url().await;
    let jobs = format!(
        r#"[[scrape_configs]]
job_name = "httpsd"
scrape_interval = "1s"
scrape_timeout = "500ms"
metrics_path = "/openmetrics"
http_sd_configs = [{{ url = "{sd_url}", refresh_interval = "1s" }}]
relabel_configs = [{{ regex = "__meta_(datacenter)", action = "labelmap" }}]
"#
    );
    let server = start(&url, &jobs).await;
    let addr = server.addr;

    let ts = wait_targets(addr, "httpsd", 20, "zoo1 up", |t| {
        instances(t) == [z1.clone()] && all_up(t)
    })
    .await;
    assert_eq!(
        label(&ts[0], "labels", "datacenter"),
        Some("bru1"),
        "{}",
        ts[0]
    );
    assert_eq!(
        label(&ts[0], "discovered_labels", "__meta_url"),
        Some(sd_url.as_str())
    );
    assert!(ts[0]["discovery_error"].is_null(), "{}", ts[0]);
    assert_eq!(
        sd.refresh_header.lock().unwrap().as_deref(),
        Some("1"),
        "Prometheus sends the refresh interval in seconds"
    );

    // The endpoint changes its answer: zoo1 goes, zoo2 comes.
    *sd.answer.lock().unwrap() = (200, format!(r#"[{{"targets": ["{z2}"]}}]"#));
    wait_targets(addr, "httpsd", 10, "only zoo2 up", |t| {
        instances(t) == [z2.clone()] && all_up(t)
    })
    .await;

    // The endpoint fails: the last good set stays, and the error is on the targets API.
    *sd.answer.lock().unwrap() = (500, "boom".into());
    let ts = wait_targets(addr, "httpsd", 10, "the HTTP 500 shown", |t| {
        t.len() == 1
            && t[0]["discovery_error"]
                .as_str()
                .is_some_and(|e| e.contains("500"))
    })
    .await;
    assert_eq!(instances(&ts), std::slice::from_ref(&z2));
    let before = ts[0]["last_scrape"].as_i64().unwrap();
    // ...and it is still scraped.
    wait_targets(addr, "httpsd", 10, "zoo2 scraped again", |t| {
        t.len() == 1 && t[0]["last_scrape"].as_i64().is_some_and(|l| l > before)
    })
    .await;

    // A 200 with a body that is not a target-group list is an error too.
    *sd.answer.lock().unwrap() = (200, r#"{"targets": []}"#.into());
    wait_targets(addr, "httpsd", 10, "the bad JSON shown", |t| {
        t.len() == 1
            && t[0]["discovery_error"]
                .as_str()
                .is_some_and(|e| e.contains("not a JSON list of target groups"))
    })
    .await;

    // Recovery clears the error.
    *sd.answer.lock().unwrap() = (200, format!(r#"[{{"targets": ["{z2}"]}}]"#));
    wait_targets(addr, "httpsd", 10, "the error cleared", |t| {
        t.len() == 1 && t[0]["discovery_error"].is_null()
    })
    .await;

    // Scraped OpenMetrics series carry the labelmapped discovery label.
    let buckets = series(&url, r#"etl_step_latency_seconds_bucket{job="httpsd"}"#).await;
    assert!(!buckets.is_empty());
    assert!(buckets
        .iter()
        .any(|s| s.key.labels.get("datacenter") == Some("bru1")));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relabel_actions_apply_to_targets_and_scraped_series() {
    let zoo = exporter_zoo().await;
    let z = zoo.to_string();
    let url = store::testing::fresh_database_url().await;
    // Two groups of the same target: the dev one is dropped by a target `drop`; `keep` lets
    // only loopback addresses through; labelmap turns `__tmp_team` into `team`; replace derives
    // `host` from `__address__`. Metric rules: keep three families, drop idle CPU time, copy
    // `cpu` to `core` and labeldrop `cpu`.
    let jobs = format!(
        r#"[[scrape_configs]]
job_name = "relabel"
scrape_interval = "1s"
scrape_timeout = "500ms"
metrics_path = "/good"
static_configs = [
  {{ targets = ["{z}"], labels = {{ env = "prod", __tmp_team = "data" }} }},
  {{ targets = ["{z}"], labels = {{ env = "dev" }} }},
]
relabel_configs = [
  {{ source_labels = ["__address__"], regex = "127\\.0\\.0\\.1:\\d+", action = "keep" }},
  {{ source_labels = ["env"], regex = "dev", action = "drop" }},
  {{ regex = "__tmp_(.*)", action = "labelmap" }},
  {{ source_labels = ["__address__"], regex = "(.*):(\\d+)", target_label = "host", replacement = "${{1}}" }},
]
metric_relabel_configs = [
  {{ source_labels = ["__name__"], regex = "node_cpu_seconds_total|go_goroutines|go_info", action = "keep" }},
  {{ source_labels = ["__name__", "mode"], regex = "node_cpu_seconds_total;idle", action = "drop" }},
  {{ source_labels = ["cpu"], target_label = "core" }},
  {{ regex = "cpu", action = "labeldrop" }},
]
"#
    );
    let server = start(&url, &jobs).await;
    let addr = server.addr;
    let ts = wait_targets(addr, "relabel", 20, "one target up", |t| {
        t.len() == 1 && all_up(t) && t[0]["samples_scraped"].as_u64() > Some(0)
    })
    .await;
    let t = &ts[0];
    assert_eq!(label(t, "labels", "team"), Some("data"), "{t}");
    assert_eq!(label(t, "labels", "host"), Some("127.0.0.1"), "{t}");
    assert_eq!(label(t, "labels", "env"), Some("prod"), "{t}");
    assert!(label(t, "labels", "__tmp_team").is_none(), "{t}");
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Expected from the node_exporter capture itself.
    let capture = fixture("node_exporter.txt");
    let cpu_lines: Vec<&str> = capture
        .lines()
        .filter(|l| l.starts_with("node_cpu_seconds_total{"))
        .collect();
    let not_idle = cpu_lines
        .iter()
        .filter(|l| !l.contains("mode=\"idle\""))
        .count();
    let cpu = series(&url, r#"node_cpu_seconds_total{job="relabel"}"#).await;
    assert_eq!(cpu.len(), not_idle, "idle CPU series are dropped");
    for s in &cpu {
        let l = &s.key.labels;
        assert_eq!(l.get("mode").map(|m| m != "idle"), Some(true), "{l}");
        assert!(l.get("cpu").is_none(), "cpu was labeldropped: {l}");
        assert!(l.get("core").is_some(), "cpu was copied to core: {l}");
        assert_eq!(l.get("team"), Some("data"));
        assert_eq!(l.get("host"), Some("127.0.0.1"));
    }
    let stored_names: std::collections::BTreeSet<String> = series(&url, r#"{job="relabel"}"#)
        .await
        .into_iter()
        .map(|s| s.key.metric)
        .collect();
    let expected: std::collections::BTreeSet<String> = [
        "go_goroutines",
        "go_info",
        "node_cpu_seconds_total",
        "scrape_duration_seconds",
        "scrape_samples_post_metric_relabeling",
        "scrape_samples_scraped",
        "up",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(stored_names, expected);
    // Prometheus' post-relabelling count: what the capture has of the kept families.
    let kept = not_idle
        + capture
            .lines()
            .filter(|l| l.starts_with("go_goroutines") || l.starts_with("go_info"))
            .count();
    let db = store::Store::connect(&url, store::StoreConfig::default())
        .await
        .unwrap();
    let q = model::RangeQuery {
        start: now_ms() - 120_000,
        end: now_ms() + 1_000,
        step_ms: 1_000,
        aggregation: model::Aggregation::Last,
    };
    let post = db
        .query_range(
            &model::Selector::parse(r#"scrape_samples_post_metric_relabeling{job="relabel"}"#)
                .unwrap(),
            &q,
        )
        .await
        .unwrap();
    let last = post[0].points.last().expect("a sample").1;
    assert_eq!(last, kept as f64);
    server.stop().await.unwrap();
}

fn config_error(jobs: &str) -> String {
    format!(
        "{:#}",
        Config::from_toml_str(&format!("{BASE}{jobs}")).expect_err("config must be refused")
    )
}

#[test]
fn config_errors_name_the_key_and_the_fix() {
    let job = "[[scrape_configs]]\njob_name = \"a\"\n";
    let e = config_error(&format!(
        "{job}relabel_configs = [{{ target_label = \"x\" }}, {{ regex = \"(unclosed\", target_label = \"y\" }}]\n"
    ));
    assert!(
        e.contains("scrape_configs[0].relabel_configs[1].regex"),
        "{e}"
    );
    assert!(e.contains("does not compile"), "{e}");

    let e = config_error(&format!(
        "{job}metric_relabel_configs = [{{ action = \"delete\" }}]\n"
    ));
    assert!(
        e.contains("scrape_configs[0].metric_relabel_configs[0].action"),
        "{e}"
    );
    assert!(e.contains("unknown relabel action \"delete\""), "{e}");

    let e = config_error(&format!(
        "{job}relabel_configs = [{{ source_labels = [\"a\"], action = \"keep\" }}, {{ source_labels = [\"b\"], action = \"replace\" }}]\n"
    ));
    assert!(e.contains("scrape_configs[0].relabel_configs[1]"), "{e}");
    assert!(e.contains("requires 'target_label' value"), "{e}");

    let e = config_error(&format!(
        "{job}file_sd_configs = [{{ files = [\"targets/*.txt\"] }}]\n"
    ));
    assert!(
        e.contains("scrape_configs[0].file_sd_configs[0].files[0]"),
        "{e}"
    );
    assert!(e.contains(".json, .yml or .yaml"), "{e}");

    let e = config_error(&format!(
        "{job}http_sd_configs = [{{ url = \"127.0.0.1:8000/targets\" }}]\n"
    ));
    assert!(
        e.contains("scrape_configs[0].http_sd_configs[0].url"),
        "{e}"
    );

    let e = config_error(&format!(
        "{job}http_sd_configs = [{{ url = \"http://127.0.0.1:8000/targets\", refresh = \"1s\" }}]\n"
    ));
    assert!(e.contains("unknown field `refresh`"), "{e}");

    // Prometheus' defaults: http_sd refreshes every minute, file_sd every five.
    let c = Config::from_toml_str(&format!(
        "{BASE}{job}file_sd_configs = [{{ files = [\"t.yml\"] }}]\nhttp_sd_configs = [{{ url = \"http://127.0.0.1:1/\" }}]\n"
    ))
    .unwrap();
    assert_eq!(
        c.scrape_configs[0].file_sd_configs[0].refresh_interval,
        Duration::from_secs(300)
    );
    assert_eq!(
        c.scrape_configs[0].http_sd_configs[0].refresh_interval,
        Duration::from_secs(60)
    );
}
