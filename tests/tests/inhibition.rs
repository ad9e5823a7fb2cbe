//! Routing beyond the first match, end to end on real parts: inhibition by the lineage graph
//! (a real PostgreSQL holding an OpenLineage graph, recorded through the store as the
//! OpenLineage receiver does) and route `continue`. Samples are sent with real remote_write
//! requests, the engine evaluates a rule file, and notifications are delivered to a real local
//! HTTP receiver (the JSON webhook channel). Assertions are on what the receiver got and on
//! the API's view of the alerts.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use pipewatch_tests::serve;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::lineage::{DatasetRecord, EventKind, EventRecord, Qualified};

#[derive(Clone, Default)]
struct Hook {
    got: Arc<Mutex<Vec<Value>>>,
}

async fn receive(State(h): State<Hook>, Json(body): Json<Value>) -> StatusCode {
    h.got.lock().unwrap().push(body);
    StatusCode::OK
}

impl Hook {
    /// `(status, stage)` of every notice received, in order.
    fn notices(&self) -> Vec<(String, String)> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["status"].as_str().unwrap_or("").to_string(),
                    b["labels"]["stage"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }
}

macro_rules! wait_until {
    ($what:expr, $timeout:expr, $cond:expr) => {{
        let start = Instant::now();
        while !$cond {
            assert!(
                start.elapsed() < $timeout,
                "timed out after {:?} waiting for {}",
                $timeout,
                $what
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }};
}

/// `pw_stalled{stage=...}` samples by remote_write.
async fn write(base: &str, stages: &[(&str, f64)]) {
    let t = model::clock::now_ms();
    let batch = model::Batch {
        series: stages
            .iter()
            .map(|(stage, v)| model::TimeSeries {
                key: model::SeriesKey::new(
                    "pw_stalled",
                    model::Labels::from_pairs([("stage", *stage)]),
                ),
                metric_type: model::MetricType::Gauge,
                samples: vec![model::Sample { ts: t, value: *v }],
            })
            .collect(),
        metadata: Vec::new(),
    };
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1/write"))
        .header("content-encoding", "snappy")
        .header("content-type", "application/x-protobuf")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .body(collectors::remote_write::encode(&batch))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
}

/// The `Stalled` alert of a stage, as the API shows it.
async fn alert(base: &str, stage: &str) -> Value {
    let v: Value = reqwest::get(format!(
        "{base}/api/v1/lifecycle/alerts?rule=Stalled&matcher=stage%3D%22{stage}%22"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    v["data"][0].clone()
}

fn run(job: &str, at: i64, inputs: &[&str], outputs: &[&str]) -> EventRecord {
    let ds = |n: &&str| DatasetRecord {
        id: Some(Qualified::new("etl", *n)),
        schema: None,
    };
    EventRecord {
        kind: EventKind::Run,
        event_type: Some("COMPLETE".into()),
        time_ms: at,
        producer: "test".into(),
        run_id: Some(format!("{job}-run")),
        job: Some(Qualified::new("etl", job)),
        parent_run_id: None,
        parent_job: None,
        error_message: None,
        inputs: inputs.iter().map(ds).collect(),
        outputs: outputs.iter().map(ds).collect(),
        dataset: None,
    }
}

const RULES: &str = "groups:\n- name: etl\n  rules:\n  - alert: Stalled\n    expr: pw_stalled > 0\n    labels:\n      severity: page\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_alert_inhibits_the_alerts_downstream_of_it_in_the_lineage_graph() {
    let url = store::testing::fresh_database_url().await;
    let st = store::Store::connect(&url, store::StoreConfig::default())
        .await
        .unwrap();
    // ingest -> raw -> transform -> clean; `audit` reads raw too but is not under test.
    let t0 = model::clock::now_ms();
    st.record_lineage_event(&run("ingest", t0, &[], &["raw"]))
        .await
        .unwrap();
    st.record_lineage_event(&run("transform", t0, &["raw"], &["clean"]))
        .await
        .unwrap();

    let hook = Hook::default();
    let addr = serve(
        Router::new()
            .route("/hook", post(receive))
            .with_state(hook.clone()),
    )
    .await;
    let dir: PathBuf = std::env::temp_dir().join(format!("pw-inhibition-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("rules.yml"), RULES).unwrap();
    let mut cfg = server::config::Config::from_toml_str(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{d}\"\n[database]\nurl = \"{url}\"\n\
         [auth]\nanonymous_role = \"admin\"\n[ingest]\nflush_interval = \"50ms\"\n\
         [notifications]\npoll_interval = \"100ms\"\n\
         [notifications.channels.hook]\ntype = \"webhook\"\nurl = \"http://{addr}/hook\"\n\
         [alerting]\nevaluation_interval = \"1s\"\ngroup_wait = \"1s\"\ngroup_interval = \"1s\"\n\
         group_by = [\"...\"]\nchannels = [\"hook\"]\n\
         [[alerting.inhibit_rules]]\nname = \"upstream\"\nlineage = true\n",
        d = dir.display()
    ))
    .unwrap();
    cfg.alerting.rule_files = vec![dir.join("rules.yml").display().to_string()];
    let server = server::run::RunningServer::start(cfg, Default::default())
        .await
        .unwrap();
    let base = format!("http://{}", server.addr);

    // Both stages stall: only the upstream one pages.
    write(&base, &[("ingest", 1.0), ("transform", 1.0)]).await;
    wait_until!(
        "the ingest page",
        Duration::from_secs(30),
        hook.notices().contains(&("firing".into(), "ingest".into()))
    );
    wait_until!(
        "transform firing",
        Duration::from_secs(10),
        alert(&base, "transform").await["state"] == "firing"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        hook.notices(),
        [("firing".to_string(), "ingest".to_string())],
        "the downstream alert must not page"
    );
    let ingest = alert(&base, "ingest").await;
    let transform = alert(&base, "transform").await;
    assert_eq!(transform["inhibitedBy"]["alert"], ingest["id"]);
    assert_eq!(transform["inhibitedBy"]["rule"], "upstream");
    assert!(ingest["inhibitedBy"].is_null());
    let detail: Value = reqwest::get(format!(
        "{base}/api/v1/lifecycle/alerts/{}",
        transform["id"]
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let timeline = detail["data"]["timeline"].to_string();
    assert!(
        timeline.contains("inhibited by alert") && timeline.contains("Stalled{severity"),
        "{timeline}"
    );
    // The alert's page says so too.
    let page = reqwest::get(format!("{base}/alerts/{}", transform["id"]))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let said = format!(
        "inhibited by alert {} (inhibit rule upstream)",
        ingest["id"]
    );
    assert!(page.contains(&said), "{said:?} not on the page");
    assert!(
        page.contains("mark-inhibited"),
        "no inhibited mark on the page"
    );

    // The upstream stage recovers: its resolve goes out, and the downstream alert, no longer
    // explained by it, pages.
    write(&base, &[("ingest", 0.0), ("transform", 1.0)]).await;
    wait_until!(
        "ingest's resolve and transform's page",
        Duration::from_secs(30),
        hook.notices().len() >= 3
    );
    let n = hook.notices();
    assert!(n.contains(&("resolved".into(), "ingest".into())), "{n:?}");
    assert!(n.contains(&("firing".into(), "transform".into())), "{n:?}");
    assert!(alert(&base, "transform").await["inhibitedBy"].is_null());

    // Upstream stalls again after transform paged: transform is inhibited, yet its resolve is
    // owed for the firing notice sent, and goes out.
    write(&base, &[("ingest", 1.0), ("transform", 1.0)]).await;
    wait_until!(
        "transform inhibited again",
        Duration::from_secs(30),
        !alert(&base, "transform").await["inhibitedBy"].is_null()
    );
    write(&base, &[("ingest", 1.0), ("transform", 0.0)]).await;
    wait_until!(
        "transform's resolve",
        Duration::from_secs(30),
        hook.notices()
            .contains(&("resolved".into(), "transform".into()))
    );
    let n = hook.notices();
    assert_eq!(
        n.iter()
            .filter(|(s, g)| s == "firing" && g == "transform")
            .count(),
        1,
        "{n:?}"
    );
    server.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bodies received per channel (`/hook/{name}`), with when they came.
#[derive(Clone, Default)]
struct Hooks {
    got: Arc<Mutex<Vec<(String, Instant, Value)>>>,
}

async fn receive_named(
    State(h): State<Hooks>,
    axum::extract::Path(name): axum::extract::Path<String>,
    Json(body): Json<Value>,
) -> StatusCode {
    h.got.lock().unwrap().push((name, Instant::now(), body));
    StatusCode::OK
}

impl Hooks {
    /// `(channel, status)` in arrival order.
    fn seen(&self) -> Vec<(String, String)> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(n, _, b)| (n.clone(), b["status"].as_str().unwrap_or("").to_string()))
            .collect()
    }

    fn first(&self, channel: &str, status: &str) -> Option<Instant> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .find(|(n, _, b)| n == channel && b["status"] == status)
            .map(|(_, t, _)| *t)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_routes_an_alert_to_every_matching_route_each_with_its_own_timers() {
    let url = store::testing::fresh_database_url().await;
    let hooks = Hooks::default();
    let addr = serve(
        Router::new()
            .route("/hook/{name}", post(receive_named))
            .with_state(hooks.clone()),
    )
    .await;
    let dir: PathBuf = std::env::temp_dir().join(format!("pw-continue-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("rules.yml"), RULES).unwrap();
    let channels: String = ["pages", "audit", "fallback"]
        .iter()
        .map(|n| {
            format!(
                "[notifications.channels.{n}]\ntype = \"webhook\"\nurl = \"http://{addr}/hook/{n}\"\n"
            )
        })
        .collect();
    let mut cfg = server::config::Config::from_toml_str(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{d}\"\n[database]\nurl = \"{url}\"\n\
         [auth]\nanonymous_role = \"admin\"\n[ingest]\nflush_interval = \"50ms\"\n\
         [notifications]\npoll_interval = \"100ms\"\n{channels}\
         [alerting]\nevaluation_interval = \"1s\"\ngroup_wait = \"1s\"\ngroup_interval = \"1s\"\n\
         channels = [\"fallback\"]\n\
         [[alerting.routes]]\nname = \"pages\"\nmatchers = ['severity=\"page\"']\n\
         channels = [\"pages\"]\ncontinue = true\n\
         [[alerting.routes]]\nname = \"other\"\nmatchers = ['team=\"ml\"']\nchannels = [\"fallback\"]\n\
         [[alerting.routes]]\nname = \"audit\"\nmatchers = ['alertname=\"Stalled\"']\n\
         channels = [\"audit\"]\ngroup_wait = \"4s\"\n",
        d = dir.display()
    ))
    .unwrap();
    cfg.alerting.rule_files = vec![dir.join("rules.yml").display().to_string()];
    let server = server::run::RunningServer::start(cfg, Default::default())
        .await
        .unwrap();
    let base = format!("http://{}", server.addr);

    write(&base, &[("ingest", 1.0)]).await;
    wait_until!(
        "the firing notice on both routes",
        Duration::from_secs(30),
        hooks.first("audit", "firing").is_some()
    );
    let (pages, audit) = (
        hooks.first("pages", "firing").expect("pages told first"),
        hooks.first("audit", "firing").unwrap(),
    );
    // Each route's own group_wait: 1 s on pages, 4 s on audit.
    assert!(
        audit.duration_since(pages) >= Duration::from_millis(2500),
        "{:?}",
        audit.duration_since(pages)
    );
    let group = alert(&base, "ingest").await["notificationGroup"].clone();
    assert_eq!(group, "pages/{alertname=\"Stalled\"}");

    // The resolve is owed, and sent, on both routes; the default route took nothing.
    write(&base, &[("ingest", 0.0)]).await;
    wait_until!(
        "the resolves",
        Duration::from_secs(30),
        hooks.first("pages", "resolved").is_some() && hooks.first("audit", "resolved").is_some()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut seen = hooks.seen();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("audit".to_string(), "firing".to_string()),
            ("audit".to_string(), "resolved".to_string()),
            ("pages".to_string(), "firing".to_string()),
            ("pages".to_string(), "resolved".to_string()),
        ]
    );
    server.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
