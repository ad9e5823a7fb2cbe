//! The alert lifecycle end to end, on real parts: a real PostgreSQL, samples sent with real
//! remote_write requests, the engine evaluating rule files, notifications delivered to a real
//! SMTP server (aiosmtpd, tests/python/smtp_sink.py) and a real local HTTP receiver, and two
//! real `pipewatch` processes on one database for the leader hand-over. Assertions are on what
//! the receivers got and on the API's view of the alerts and their timelines.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use pipewatch_tests::{pipewatch_bin, python, python_script, serve};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pw-lifecycle-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// aiosmtpd on a port, writing messages as JSON files; killed when dropped.
struct SmtpSink {
    dir: PathBuf,
    child: Child,
}

impl SmtpSink {
    fn start(port: u16, dir: &Path) -> SmtpSink {
        std::fs::create_dir_all(dir).unwrap();
        let mut child = Command::new(python())
            .arg(python_script("smtp_sink.py"))
            .arg(port.to_string())
            .arg(dir)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start aiosmtpd (run scripts/setup.sh --test)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "smtp_sink.py did not start");
        SmtpSink {
            dir: dir.to_path_buf(),
            child,
        }
    }

    /// Subjects of the received messages, in arrival order.
    fn subjects(&self) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort_by_key(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0)
        });
        names
            .iter()
            .map(|p| {
                let m: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
                m["subject"].as_str().unwrap_or_default().to_string()
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A local HTTP receiver for the JSON webhook channel: every POST body, with the time it came.
#[derive(Clone, Default)]
struct Hook {
    got: Arc<Mutex<Vec<(Instant, Value)>>>,
}

async fn receive(State(h): State<Hook>, Json(body): Json<Value>) -> StatusCode {
    h.got.lock().unwrap().push((Instant::now(), body));
    StatusCode::OK
}

impl Hook {
    async fn start() -> (Hook, String) {
        let h = Hook::default();
        let addr = serve(
            Router::new()
                .route("/hook", post(receive))
                .with_state(h.clone()),
        )
        .await;
        (h, format!("http://{addr}/hook"))
    }

    fn bodies(&self) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }
}

/// Polls `$cond` (which may `.await`) every 100 ms until it holds; fails after `$timeout`.
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

/// Sends one sample per label set by remote_write, as Prometheus would.
async fn write(base: &str, metric: &str, series: &[(&str, f64)]) {
    let t = model::clock::now_ms();
    let batch = model::Batch {
        series: series
            .iter()
            .map(|(job, v)| model::TimeSeries {
                key: model::SeriesKey::new(metric, model::Labels::from_pairs([("job", *job)])),
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
    assert!(
        resp.status().is_success(),
        "remote_write: {}",
        resp.status()
    );
}

async fn get_json(url: &str) -> Value {
    let r = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    r.json().await.unwrap()
}

/// The alerts the API lists for `query` (`rule=X&state=firing`...).
async fn alerts(base: &str, query: &str) -> Vec<Value> {
    let v = get_json(&format!("{base}/api/v1/lifecycle/alerts?{query}")).await;
    assert_eq!(v["status"], "success", "{v}");
    v["data"].as_array().unwrap().clone()
}

/// A pipewatch server in this process over a fresh database, with `rules` as its rule file.
async fn start_server(
    name: &str,
    rules: &str,
    extra: &str,
) -> (server::run::RunningServer, String, PathBuf, String) {
    let url = store::testing::fresh_database_url().await;
    let dir = temp_dir(name);
    std::fs::write(dir.join("rules.yml"), rules).unwrap();
    let cfg = server::config::Config::from_toml_str(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{d}\"\n[database]\nurl = \"{url}\"\n\
         [auth]\nanonymous_role = \"admin\"\n\
         [ingest]\nflush_interval = \"50ms\"\n\
         [notifications]\npoll_interval = \"100ms\"\n{extra}",
        d = dir.display()
    ))
    .unwrap();
    let mut cfg = cfg;
    cfg.alerting.rule_files = vec![dir.join("rules.yml").display().to_string()];
    cfg.check_references().unwrap();
    let s = server::run::RunningServer::start(cfg, Default::default())
        .await
        .unwrap();
    let base = format!("http://{}", s.addr);
    (s, base, dir, url)
}

/// The `HighLag` alert of job `orders` (the rule's own nodata instance has no `job`).
const ORDERS: &str = "rule=HighLag&matcher=job%3D%22orders%22";

const LAG_RULE: &str = "groups:\n- name: etl\n  rules:\n  - alert: HighLag\n    expr: pw_lag_seconds > 10\n    for: 2s\n    labels:\n      severity: page\n    annotations:\n      summary: '{{ $labels.job }} lags {{ $value }}s'\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_threshold_rule_goes_pending_firing_resolved_and_mails_the_firing_then_the_resolve() {
    let port = free_port();
    let sink = SmtpSink::start(port, &temp_dir("smtp-walk").join("mail"));
    let (server, base, _dir, _db) = start_server(
        "walk",
        LAG_RULE,
        &format!(
            "[notifications.channels.mail]\ntype = \"email\"\nsmtp_host = \"127.0.0.1\"\n\
             smtp_port = {port}\ntls = \"none\"\nfrom = \"pipewatch@example.com\"\n\
             to = [\"oncall@example.com\"]\n\
             [alerting]\nevaluation_interval = \"1s\"\ngroup_wait = \"0s\"\ngroup_interval = \"1s\"\n\
             channels = [\"mail\"]\n"
        ),
    )
    .await;

    write(&base, "pw_lag_seconds", &[("orders", 50.0)]).await;
    let mut seen: Vec<String> = Vec::new();
    // Pending first (for: 2s), then firing.
    wait_until!("the alert to fire", Duration::from_secs(20), {
        let a = alerts(&base, ORDERS).await;
        if let Some(state) = a.first().and_then(|a| a["state"].as_str()) {
            if seen.last().map(String::as_str) != Some(state) {
                seen.push(state.to_string());
            }
        }
        seen.last().map(String::as_str) == Some("firing")
    });
    assert_eq!(seen, ["pending", "firing"]);
    wait_until!(
        "the firing mail",
        Duration::from_secs(20),
        !sink.subjects().is_empty()
    );
    assert_eq!(
        sink.subjects(),
        ["[FIRING] HighLag (job=orders, severity=page)"]
    );

    // The lag falls: the alert resolves and the resolve is mailed after the firing mail.
    write(&base, "pw_lag_seconds", &[("orders", 1.0)]).await;
    wait_until!(
        "the resolve mail",
        Duration::from_secs(20),
        sink.subjects().len() >= 2
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        sink.subjects(),
        [
            "[FIRING] HighLag (job=orders, severity=page)",
            "[RESOLVED] HighLag (job=orders, severity=page)"
        ]
    );
    let a = &alerts(&base, ORDERS).await[0];
    assert_eq!(a["state"], "resolved");
    assert_eq!(a["notified"], "resolved");
    assert_eq!(a["annotations"]["summary"], "orders lags 50s");

    // The timeline holds every transition and notice, in order.
    let one = get_json(&format!("{base}/api/v1/lifecycle/alerts/{}", a["id"])).await;
    let steps: Vec<String> = one["data"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| match e["kind"].as_str().unwrap() {
            "transition" => format!(
                "{}->{}",
                e["from"].as_str().unwrap(),
                e["to"].as_str().unwrap()
            ),
            k => k.to_string(),
        })
        .collect();
    assert_eq!(
        steps,
        [
            "inactive->pending",
            "pending->firing",
            "notified",
            "firing->resolved",
            "notified"
        ]
    );

    // People act on it: an acknowledgement and a note join the timeline with who did them.
    let http = reqwest::Client::new();
    let ack = http
        .post(format!(
            "{base}/api/v1/lifecycle/alerts/{}/acknowledge",
            a["id"]
        ))
        .json(&json!({"by": "oncall-primary", "comment": "looking at the orders job"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ack.status(), 200);
    let note = http
        .post(format!("{base}/api/v1/lifecycle/alerts/{}/notes", a["id"]))
        .json(&json!({"by": "oncall-primary", "text": "upstream backfill"}))
        .send()
        .await
        .unwrap();
    assert_eq!(note.status(), 200);
    let missing = http
        .post(format!("{base}/api/v1/lifecycle/alerts/999999/acknowledge"))
        .json(&json!({"by": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let nobody = http
        .post(format!("{base}/api/v1/lifecycle/alerts/{}/notes", a["id"]))
        .json(&json!({"by": "", "text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(nobody.status(), 400);
    let one = get_json(&format!("{base}/api/v1/lifecycle/alerts/{}", a["id"])).await;
    let last: Vec<(String, String, String)> = one["data"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .take(2)
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["by"].as_str().unwrap().to_string(),
                e["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        last,
        [
            (
                "note".into(),
                "oncall-primary".into(),
                "upstream backfill".into()
            ),
            (
                "acknowledged".into(),
                "oncall-primary".into(),
                "looking at the orders job".into()
            ),
        ]
    );

    // The rule as Prometheus serves it.
    let rules = get_json(&format!("{base}/api/v1/rules")).await;
    let rule = &rules["data"]["groups"][0]["rules"][0];
    assert_eq!(rule["name"], "HighLag");
    assert_eq!(rule["health"], "ok");
    assert_eq!(rule["duration"], 2.0);
    assert_eq!(rule["state"], "inactive");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_of_one_group_go_out_together_after_group_wait() {
    let (hook, url) = Hook::start().await;
    let (server, base, _dir, _db) = start_server(
        "group",
        LAG_RULE,
        &format!(
            "[notifications.channels.hook]\ntype = \"webhook\"\nurl = \"{url}\"\n\
             [alerting]\nevaluation_interval = \"1s\"\ngroup_wait = \"5s\"\ngroup_interval = \"1m\"\n\
             channels = [\"hook\"]\n"
        ),
    )
    .await;
    // Three jobs start lagging a second apart, all within the group's wait.
    write(&base, "pw_lag_seconds", &[("a", 50.0)]).await;
    let first_sent = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    write(&base, "pw_lag_seconds", &[("a", 50.0), ("b", 60.0)]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    write(
        &base,
        "pw_lag_seconds",
        &[("a", 50.0), ("b", 60.0), ("c", 70.0)],
    )
    .await;
    wait_until!(
        "the group notification",
        Duration::from_secs(30),
        !hook.bodies().is_empty()
    );
    // Nothing else comes for a while (group_interval is a minute).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = hook.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:#?}");
    let (at, body) = &got[0];
    // for: 2s, then group_wait 4s from the group's first alert.
    assert!(
        at.duration_since(first_sent) >= Duration::from_secs(6),
        "{:?}",
        at.duration_since(first_sent)
    );
    assert_eq!(body["status"], "firing");
    assert_eq!(body["alert"], "HighLag");
    let text = body["explanation"].as_str().unwrap();
    assert!(text.starts_with("3 firing, 0 resolved:"), "{text}");
    for job in ["a", "b", "c"] {
        assert!(
            text.contains(&format!("{{job=\"{job}\"}}")),
            "{job} missing: {text}"
        );
    }
    assert_eq!(alerts(&base, "rule=HighLag&state=firing").await.len(), 3);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_holds_firing_notices_back_but_the_resolve_of_a_sent_one_still_goes_out() {
    let (hook, url) = Hook::start().await;
    let (server, base, _dir, _db) = start_server(
        "silence",
        LAG_RULE,
        &format!(
            "[notifications.channels.hook]\ntype = \"webhook\"\nurl = \"{url}\"\n\
             [alerting]\nevaluation_interval = \"1s\"\ngroup_wait = \"0s\"\ngroup_interval = \"1s\"\n\
             group_by = [\"alertname\", \"job\"]\nchannels = [\"hook\"]\n"
        ),
    )
    .await;
    // `told` fires and is notified.
    write(&base, "pw_lag_seconds", &[("told", 50.0)]).await;
    wait_until!(
        "the firing notice of told",
        Duration::from_secs(20),
        hook.bodies().len() == 1
    );
    assert_eq!(hook.bodies()[0]["labels"]["job"], "told");

    // A silence covers every job; then `quiet` starts firing under it.
    let now = chrono::Utc::now();
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v2/silences"))
        .json(&json!({
            "matchers": [{"name": "alertname", "value": "HighLag", "isRegex": false}],
            "startsAt": now.to_rfc3339(),
            "endsAt": (now + chrono::Duration::hours(1)).to_rfc3339(),
            "createdBy": "oncall",
            "comment": "known incident",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id = resp.json::<Value>().await.unwrap()["silenceID"]
        .as_str()
        .unwrap()
        .to_string();
    write(&base, "pw_lag_seconds", &[("told", 50.0), ("quiet", 80.0)]).await;
    wait_until!(
        "quiet to fire",
        Duration::from_secs(20),
        alerts(&base, "rule=HighLag&state=firing").await.len() == 2
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        hook.bodies().len(),
        1,
        "a silenced alert was notified: {:#?}",
        hook.bodies()
    );
    let quiet = alerts(&base, "rule=HighLag&matcher=job%3D%22quiet%22").await;
    assert_eq!(quiet[0]["silencedBy"], id.as_str());
    // Prometheus' /api/v1/alerts shape lists the rule alerts too.
    let prom = get_json(&format!("{base}/api/v1/alerts")).await;
    let listed = prom["data"]["alerts"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{prom}");
    assert!(listed.iter().all(|a| a["source"] == "rule"
        && a["state"] == "firing"
        && a["activeAt"].as_str().is_some()
        && a["labels"]["alertname"] == "HighLag"));
    let timeline = get_json(&format!(
        "{base}/api/v1/lifecycle/alerts/{}",
        quiet[0]["id"]
    ))
    .await;
    assert!(timeline["data"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "silenced"));

    // Both clear: `told` was paged, so its resolve goes out although it is silenced now;
    // `quiet` never was, so nothing is said about it.
    write(&base, "pw_lag_seconds", &[("told", 1.0), ("quiet", 1.0)]).await;
    wait_until!(
        "the resolve of told",
        Duration::from_secs(20),
        hook.bodies().len() >= 2
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 2, "{bodies:#?}");
    assert_eq!(bodies[1]["status"], "resolved");
    assert_eq!(bodies[1]["labels"]["job"], "told");

    // Silences as Alertmanager lists and expires them.
    let listed = get_json(&format!("{base}/api/v2/silences")).await;
    assert_eq!(listed[0]["status"]["state"], "active");
    let del = reqwest::Client::new()
        .delete(format!("{base}/api/v2/silence/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    let one = get_json(&format!("{base}/api/v2/silence/{id}")).await;
    assert_eq!(one["status"]["state"], "expired");
    let bad = reqwest::Client::new()
        .post(format!("{base}/api/v2/silences"))
        .json(&json!({"matchers": [], "startsAt": now.to_rfc3339(), "endsAt": now.to_rfc3339(), "createdBy": "x", "comment": "y"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("at least one matcher"));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodata_and_evaluation_errors_are_states_of_their_own_routed_apart_from_pages() {
    let (hook, url) = Hook::start().await;
    let rules = "groups:\n- name: odd\n  rules:\n  - alert: NeverWritten\n    expr: pw_never_written_total > 1\n\
                 \n  - alert: Ambiguous\n    expr: pw_dup + on() pw_dup\n\
                 \n  - alert: Missing\n    expr: absent(pw_never_written_total)\n";
    let (server, base, _dir, _db) = start_server(
        "odd",
        rules,
        &format!(
            "[notifications.channels.hook]\ntype = \"webhook\"\nurl = \"{url}\"\n\
             [alerting]\nevaluation_interval = \"1s\"\ngroup_wait = \"0s\"\ngroup_interval = \"1s\"\n\
             channels = [\"hook\"]\nerror_channels = [\"hook\"]\n"
        ),
    )
    .await;
    // Two series on each side of a one-to-one match on no labels: an evaluation error.
    write(&base, "pw_dup", &[("a", 1.0), ("b", 2.0)]).await;
    wait_until!(
        "the error state",
        Duration::from_secs(20),
        alerts(&base, "rule=Ambiguous&state=error").await.len() == 1
    );
    let nodata = alerts(&base, "rule=NeverWritten").await;
    assert_eq!(nodata.len(), 1, "{nodata:#?}");
    assert_eq!(nodata[0]["state"], "nodata");
    assert_eq!(nodata[0]["labels"], json!({"alertname": "NeverWritten"}));
    assert!(
        nodata[0]["detail"]
            .as_str()
            .unwrap()
            .contains("none of the series pw_never_written_total > 1 reads exist"),
        "{}",
        nodata[0]["detail"]
    );
    // A rule about absence fires on missing data instead of being in nodata.
    let missing = alerts(&base, "rule=Missing").await;
    assert_eq!(missing.len(), 1, "{missing:#?}");
    assert_eq!(missing[0]["state"], "firing");
    let err = &alerts(&base, "rule=Ambiguous").await[0];
    assert!(
        err["detail"].as_str().unwrap().contains("duplicate")
            || err["detail"].as_str().unwrap().contains("many"),
        "{}",
        err["detail"]
    );
    let rules = get_json(&format!("{base}/api/v1/rules")).await;
    let health: Vec<(String, String)> = rules["data"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().into(),
                r["health"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        health.contains(&("Ambiguous".into(), "err".into())),
        "{health:?}"
    );
    assert!(
        health.contains(&("NeverWritten".into(), "ok".into())),
        "{health:?}"
    );

    // The error goes to error_channels; nodata goes nowhere (nodata_channels is empty); the
    // absence alert pages on the default route.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut alerts_told: Vec<String> = hook
        .bodies()
        .iter()
        .map(|b| b["alert"].as_str().unwrap().to_string())
        .collect();
    alerts_told.sort();
    assert_eq!(alerts_told, ["Ambiguous (evaluation error)", "Missing"]);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anomaly_rule_fires_on_open_anomalies_of_its_severity_and_resolves_when_they_close() {
    let (hook, url) = Hook::start().await;
    let rules = "groups:\n- name: analysis\n  rules:\n  - alert: TransformLatencyAnomaly\n\
                 \x20   pipewatch: {kind: anomaly, selector: 'demo_stage_latency_seconds_bucket{stage=\"transform\"}', min_severity: warning}\n\
                 \x20   labels: {team: data}\n";
    let (server, base, _dir, db) = start_server(
        "anomaly",
        rules,
        &format!(
            "[notifications.channels.hook]\ntype = \"webhook\"\nurl = \"{url}\"\n\
             [alerting]\nevaluation_interval = \"1s\"\ngroup_wait = \"0s\"\ngroup_interval = \"1s\"\n\
             channels = [\"hook\"]\n"
        ),
    )
    .await;
    // Rows as the analysis jobs write them (migrations/0050): one that matches, one of another
    // stage, one below the rule's severity.
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let signal = "histogram_quantile(0.95, sum by (le, stage) (rate(demo_stage_latency_seconds_bucket{stage=\"transform\"}[5m])))";
    for (stage, severity) in [
        ("transform", "critical"),
        ("feature_store", "critical"),
        ("transform", "info"),
    ] {
        sqlx::query(
            "INSERT INTO anomalies (signal, kind, labels, node, detector, state, severity, score,
                 started_at, last_seen_at, observed, expected_low, expected_high, explanation)
             VALUES ($1 || $5, 'latency_p95', jsonb_build_object('stage', $2::text), $2, 'seasonal', 'open',
                     $3, 0.97, now() - interval '1 minute', now(), 4.1, 0.8, 1.2, $4)",
        )
        .bind(signal)
        .bind(stage)
        .bind(severity)
        .bind(format!("p95 latency 4.1 s vs expected 0.8–1.2 s at {stage} ({severity})"))
        .bind(format!("#{stage}-{severity}"))
        .execute(&pool)
        .await
        .unwrap();
    }
    wait_until!(
        "the anomaly notice",
        Duration::from_secs(20),
        !hook.bodies().is_empty()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:#?}");
    assert_eq!(bodies[0]["status"], "firing");
    assert_eq!(bodies[0]["labels"]["stage"], "transform");
    assert_eq!(bodies[0]["labels"]["severity"], "critical");
    assert_eq!(bodies[0]["labels"]["team"], "data");
    assert!(bodies[0]["explanation"]
        .as_str()
        .unwrap()
        .contains("p95 latency 4.1 s vs expected 0.8–1.2 s at transform (critical)"));
    let listed = alerts(&base, "source=anomaly").await;
    assert_eq!(listed.len(), 1, "{listed:#?}");

    // The analysis job closes it: the alert resolves and the resolve is sent.
    sqlx::query("UPDATE anomalies SET state = 'closed', ended_at = now() WHERE state = 'open'")
        .execute(&pool)
        .await
        .unwrap();
    wait_until!(
        "the resolve",
        Duration::from_secs(20),
        hook.bodies().len() >= 2
    );
    assert_eq!(hook.bodies()[1]["status"], "resolved");
    assert_eq!(
        alerts(&base, "source=anomaly").await[0]["state"],
        "resolved"
    );
    server.stop().await.unwrap();
}

/// A `pipewatch serve` process; killed when dropped. Its stderr goes to a file.
struct Process {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Process {
    fn start(cfg: &Path, log: PathBuf) -> Process {
        let mut child = Command::new(pipewatch_bin())
            .args(["--config", cfg.to_str().unwrap(), "serve"])
            .env_remove("DATABASE_URL")
            .env("PIPEWATCH_LOG", "info,sqlx=error")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start pipewatch");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(
            line.contains("pipewatch is up"),
            "{line}: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let addr = line
            .split("http://")
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string();
        Process {
            child,
            base: format!("http://{addr}"),
            log,
        }
    }

    fn leads(&self) -> bool {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .contains("this instance now leads alert evaluation")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_database_notify_each_transition_once_and_hand_over_when_the_leader_dies(
) {
    let (hook, url) = Hook::start().await;
    let db = store::testing::fresh_database_url().await;
    let dir = temp_dir("two");
    std::fs::write(dir.join("rules.yml"), LAG_RULE).unwrap();
    let cfg = dir.join("pipewatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{d}\"\n[database]\nurl = \"{db}\"\n\
             [auth]\nanonymous_role = \"admin\"\n\
             [receivers]\notlp_grpc_listen = \"\"\n\
             [ingest]\nflush_interval = \"50ms\"\n[notifications]\npoll_interval = \"100ms\"\n\
             [notifications.channels.hook]\ntype = \"webhook\"\nurl = \"{url}\"\n\
             [alerting]\nrule_files = [\"{d}/rules.yml\"]\nevaluation_interval = \"1s\"\n\
             group_wait = \"0s\"\ngroup_interval = \"1s\"\nchannels = [\"hook\"]\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let first = Process::start(&cfg, dir.join("first.log"));
    let second = Process::start(&cfg, dir.join("second.log"));
    wait_until!(
        "one of them to lead",
        Duration::from_secs(20),
        first.leads() || second.leads()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(first.leads() != second.leads(), "both or neither lead");
    let (leader, follower) = if first.leads() {
        (first, second)
    } else {
        (second, first)
    };

    // Samples go to the follower: whoever receives them, the leader evaluates.
    write(&follower.base, "pw_lag_seconds", &[("orders", 50.0)]).await;
    wait_until!(
        "the firing notice",
        Duration::from_secs(20),
        !hook.bodies().is_empty()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;

    // The leader dies without a word (SIGKILL): its database session ends, the lock goes.
    drop(leader);
    wait_until!(
        "the other process to take over",
        Duration::from_secs(20),
        follower.leads()
    );
    // The new leader read the firing alert back: it does not page it again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hook.bodies().len(), 1, "{:#?}", hook.bodies());

    write(&follower.base, "pw_lag_seconds", &[("orders", 1.0)]).await;
    wait_until!(
        "the resolve notice",
        Duration::from_secs(20),
        hook.bodies().len() >= 2
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let statuses: Vec<String> = hook
        .bodies()
        .iter()
        .map(|b| b["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses, ["firing", "resolved"]);
    let keys: std::collections::HashSet<String> = hook
        .bodies()
        .iter()
        .map(|b| b["dedup_key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys.len(), 2);
    let a = &alerts(&follower.base, ORDERS).await[0];
    assert_eq!(a["state"], "resolved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_fires_stage_stalled_when_a_stall_is_injected_at_transform() {
    let db = store::testing::fresh_database_url().await;
    let dir = temp_dir("demo");
    let cfg = dir.join("pipewatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{d}\"\n[database]\nurl = \"{db}\"\n\
             [receivers]\notlp_grpc_listen = \"\"\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let log = dir.join("demo.log");
    let mut child = Command::new(pipewatch_bin())
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "demo",
            "--no-backfill",
            "--inject",
            "stall",
            "--at",
            "transform",
        ])
        .env_remove("DATABASE_URL")
        .env("PIPEWATCH_LOG", "info,sqlx=error")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start pipewatch demo");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut base = String::new();
    for _ in 0..10 {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(rest) = line.split("pipewatch is up: open http://").nth(1) {
            base = format!("http://{}", rest.split('/').next().unwrap());
            break;
        }
    }
    assert!(
        !base.is_empty(),
        "the demo did not come up: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let result = tokio::time::timeout(Duration::from_secs(180), async {
        loop {
            let firing = alerts(&base, "rule=StageStalled&state=firing").await;
            if firing.iter().any(|a| a["labels"]["stage"] == "transform") {
                return firing;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let firing = result.unwrap_or_else(|_| {
        panic!(
            "StageStalled did not fire for transform within 3 minutes; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    // The stall starves everything downstream too; upstream keeps going.
    let stages: Vec<&str> = firing
        .iter()
        .filter_map(|a| a["labels"]["stage"].as_str())
        .collect();
    assert!(!stages.contains(&"stream_ingest"), "{stages:?}");
    assert_eq!(firing[0]["labels"]["severity"], "page");
}

/// POSTs `body` as JSON and returns the status and the answer's text.
async fn post_json(url: &str, body: Value) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The timeline of alert `id` as (kind, by, detail), oldest first.
async fn timeline(base: &str, id: &Value) -> Vec<(String, String, String)> {
    let one = get_json(&format!("{base}/api/v1/lifecycle/alerts/{id}")).await;
    one["data"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let kind = match e["kind"].as_str().unwrap() {
                "transition" => format!(
                    "{}->{}",
                    e["from"].as_str().unwrap(),
                    e["to"].as_str().unwrap()
                ),
                k => k.to_string(),
            };
            (
                kind,
                e["by"].as_str().unwrap().to_string(),
                e["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_call_actions_acknowledge_assign_snooze_and_resolve_by_hand_each_on_the_timeline() {
    let (hook, url) = Hook::start().await;
    let (server, base, _dir, db) = start_server(
        "oncall",
        LAG_RULE,
        &format!(
            "[notifications.channels.hook]\ntype = \"webhook\"\nurl = \"{url}\"\n\
             [alerting]\nevaluation_interval = \"1s\"\ngroup_wait = \"0s\"\ngroup_interval = \"1s\"\n\
             repeat_interval = \"2s\"\ngroup_by = [\"alertname\", \"job\"]\nchannels = [\"hook\"]\n"
        ),
    )
    .await;
    let st = store::Store::connect(&db, store::StoreConfig::default())
        .await
        .unwrap();
    st.create_user(
        "responder",
        "a long enough password",
        model::auth::Role::Editor,
    )
    .await
    .unwrap();
    write(&base, "pw_lag_seconds", &[("orders", 50.0)]).await;
    wait_until!(
        "the alert to fire",
        Duration::from_secs(20),
        alerts(&base, &format!("{ORDERS}&state=firing")).await.len() == 1
    );
    let a = alerts(&base, ORDERS).await[0].clone();
    let id = a["id"].clone();
    let action = |what: &str| format!("{base}/api/v1/lifecycle/alerts/{id}/{what}");

    // Unsnoozed, the firing notice repeats every repeat_interval (2 s).
    wait_until!(
        "a repeated firing notice",
        Duration::from_secs(20),
        hook.bodies().len() >= 2
    );

    // Acknowledge: once per episode; taken back; unknown alerts are 404.
    let ack = json!({"by": "oncall-primary", "comment": "on it"});
    assert_eq!(post_json(&action("acknowledge"), ack.clone()).await.0, 200);
    let (status, text) = post_json(&action("acknowledge"), ack.clone()).await;
    assert_eq!(status, 409, "{text}");
    assert!(
        text.contains("already acknowledged by oncall-primary"),
        "{text}"
    );
    let one = alerts(&base, ORDERS).await[0].clone();
    assert_eq!(one["oncall"]["acknowledgedBy"], "oncall-primary");
    assert_eq!(
        post_json(&action("unacknowledge"), json!({"by": "oncall-primary"}))
            .await
            .0,
        200
    );
    assert_eq!(
        post_json(&action("unacknowledge"), json!({"by": "oncall-primary"}))
            .await
            .0,
        409
    );
    assert_eq!(
        alerts(&base, ORDERS).await[0]["oncall"]["acknowledgedBy"],
        Value::Null
    );
    assert_eq!(post_json(&action("acknowledge"), ack.clone()).await.0, 200);
    let (status, _) = post_json(
        &format!("{base}/api/v1/lifecycle/alerts/999999/acknowledge"),
        ack.clone(),
    )
    .await;
    assert_eq!(status, 404);

    // Assign: to a user that exists; an unknown one is refused naming it.
    let (status, text) = post_json(
        &action("assign"),
        json!({"by": "oncall-primary", "assignee": "ghost"}),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("\\\"ghost\\\"") || text.contains("ghost"),
        "{text}"
    );
    assert_eq!(
        post_json(&action("assign"), json!({"by": "oncall-primary", "assignee": "responder", "comment": "knows the orders job"})).await.0,
        200
    );
    assert_eq!(
        alerts(&base, ORDERS).await[0]["oncall"]["assignee"],
        "responder"
    );

    // Snooze: bad durations are refused; while snoozed, no repeat notices.
    let (status, text) = post_json(
        &action("snooze"),
        json!({"by": "oncall-primary", "duration": "soon"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(text.contains("not a duration"), "{text}");
    let (status, text) = post_json(
        &action("snooze"),
        json!({"by": "oncall-primary", "duration": "30d"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(text.contains("create a silence"), "{text}");
    assert_eq!(
        post_json(
            &action("snooze"),
            json!({"by": "oncall-primary", "duration": "1h"})
        )
        .await
        .0,
        200
    );
    // A repeat already decided may still be on its way; after that, nothing for 5 s.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = hook.bodies().len();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        hook.bodies().len(),
        before,
        "a snoozed alert repeated its notice"
    );
    assert!(alerts(&base, ORDERS).await[0]["oncall"]["snoozedUntil"].is_string());

    // Resolve by hand: the engine resolves it, with the user on the transition, and as the
    // rule still fires it opens a new episode at its next evaluation.
    assert_eq!(
        post_json(
            &action("resolve"),
            json!({"by": "oncall-primary", "comment": "restarted the consumer"})
        )
        .await
        .0,
        200
    );
    wait_until!(
        "the manual resolve and the new episode",
        Duration::from_secs(20),
        {
            let a = alerts(&base, ORDERS).await;
            a[0]["episode"] == 2 && a[0]["state"] == "firing"
        }
    );
    let again = alerts(&base, ORDERS).await[0].clone();
    assert_eq!(
        again["oncall"]["acknowledgedBy"],
        Value::Null,
        "an acknowledgement holds for its episode only"
    );
    assert_eq!(again["oncall"]["assignee"], "responder");
    let steps = timeline(&base, &id).await;
    let people: Vec<(String, String, String)> = steps
        .iter()
        .filter(|(_, by, _)| by != "system")
        .cloned()
        .collect();
    assert_eq!(
        people,
        [
            (
                "acknowledged".into(),
                "oncall-primary".into(),
                "on it".into()
            ),
            ("unacknowledged".into(), "oncall-primary".into(), "".into()),
            (
                "acknowledged".into(),
                "oncall-primary".into(),
                "on it".into()
            ),
            (
                "assigned".into(),
                "oncall-primary".into(),
                "responder: knows the orders job".into()
            ),
            (
                "snoozed".into(),
                "oncall-primary".into(),
                people[4].2.clone(),
            ),
            (
                "resolve_requested".into(),
                "oncall-primary".into(),
                "restarted the consumer".into()
            ),
            (
                "firing->resolved".into(),
                "oncall-primary".into(),
                "resolved by hand: restarted the consumer".into()
            ),
        ]
    );
    assert!(people[4].2.starts_with("until 20"), "{people:?}");
    let resolved_at = steps
        .iter()
        .position(|s| s.0 == "firing->resolved")
        .unwrap();
    assert!(
        steps[resolved_at..]
            .iter()
            .any(|s| s.0.ends_with("->firing")),
        "the rule re-opened the alert: {steps:?}"
    );
    // Nothing to resolve on an alert that is not active.
    write(&base, "pw_lag_seconds", &[("orders", 1.0)]).await;
    wait_until!(
        "the alert to resolve",
        Duration::from_secs(20),
        alerts(&base, ORDERS).await[0]["state"] == "resolved"
    );
    let (status, text) = post_json(&action("resolve"), json!({"by": "oncall-primary"})).await;
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("already resolved"), "{text}");

    // An Alertmanager alert resolved by hand stays resolved while its client repeats the
    // same occurrence, and fires again when the client reports a new one.
    let starts = chrono::Utc::now() - chrono::Duration::minutes(1);
    let am_until = |starts: chrono::DateTime<chrono::Utc>, ends: chrono::DateTime<chrono::Utc>| {
        json!([{
            "labels": {"alertname": "DiskFull", "instance": "db-1"},
            "annotations": {"summary": "disk 97% full"},
            "startsAt": starts.to_rfc3339(),
            "endsAt": ends.to_rfc3339(),
        }])
    };
    let am = |starts| am_until(starts, chrono::Utc::now() + chrono::Duration::minutes(10));
    assert_eq!(
        post_json(&format!("{base}/api/v2/alerts"), am(starts))
            .await
            .0,
        200
    );
    wait_until!(
        "the Alertmanager alert to fire",
        Duration::from_secs(20),
        alerts(&base, "source=alertmanager&state=firing")
            .await
            .len()
            == 1
    );
    let disk = alerts(&base, "source=alertmanager").await[0]["id"].clone();
    let (status, _) = post_json(
        &format!("{base}/api/v1/lifecycle/alerts/{disk}/resolve"),
        json!({"by": "oncall-primary", "comment": "freed space"}),
    )
    .await;
    assert_eq!(status, 200);
    wait_until!(
        "the manual resolve",
        Duration::from_secs(20),
        alerts(&base, "source=alertmanager").await[0]["state"] == "resolved"
    );
    assert_eq!(
        post_json(&format!("{base}/api/v2/alerts"), am(starts))
            .await
            .0,
        200
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        alerts(&base, "source=alertmanager").await[0]["state"],
        "resolved"
    );
    // The client resolves the occurrence, and later reports a new one.
    let ended = chrono::Utc::now() - chrono::Duration::seconds(1);
    assert_eq!(
        post_json(&format!("{base}/api/v2/alerts"), am_until(starts, ended))
            .await
            .0,
        200
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        alerts(&base, "source=alertmanager").await[0]["state"],
        "resolved"
    );
    let later = chrono::Utc::now();
    assert_eq!(
        post_json(&format!("{base}/api/v2/alerts"), am(later))
            .await
            .0,
        200
    );
    wait_until!(
        "the new occurrence to fire",
        Duration::from_secs(20),
        alerts(&base, "source=alertmanager").await[0]["state"] == "firing"
    );
    server.stop().await.unwrap();
}

/// The outbox through a one-minute SMTP outage (issue 13's acceptance): the real aiosmtpd is
/// down from before the first alert fires until a full minute later, while alerts fire,
/// resolve and fire again; once it is up every notice arrives exactly once per dedup key, in
/// order per alert, each resolve after its firing notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_one_minute_smtp_outage_every_notice_arrives_once_in_order_per_alert() {
    const OUTAGE: Duration = Duration::from_secs(60);
    let port = free_port();
    let (server, base, dir, db) = start_server(
        "outage",
        LAG_RULE,
        &format!(
            // Goes on in start_server's [notifications] table.
            "retry_base = \"500ms\"\nretry_cap = \"4s\"\n\
             [notifications.channels.mail]\ntype = \"email\"\nsmtp_host = \"127.0.0.1\"\n\
             smtp_port = {port}\ntls = \"none\"\nfrom = \"pipewatch@example.com\"\n\
             to = [\"oncall@example.com\"]\n\
             [alerting]\nevaluation_interval = \"1s\"\ngroup_wait = \"0s\"\ngroup_interval = \"1s\"\n\
             group_by = [\"alertname\", \"job\"]\nchannels = [\"mail\"]\n"
        ),
    )
    .await;
    // Nothing listens on `port` yet: the SMTP server is down.
    let outage_started = Instant::now();
    let jobs = ["a1", "a2", "a3", "a4"];
    write(&base, "pw_lag_seconds", &jobs.map(|j| (j, 50.0))).await;
    let firing = |n: usize| {
        let base = base.clone();
        async move { alerts(&base, "rule=HighLag&state=firing").await.len() == n }
    };
    wait_until!(
        "four alerts to fire",
        Duration::from_secs(20),
        firing(4).await
    );
    // a1 and a3 resolve during the outage; a1 fires again (a second episode) before it ends.
    tokio::time::sleep(Duration::from_secs(10)).await;
    write(&base, "pw_lag_seconds", &[("a1", 1.0), ("a3", 1.0)]).await;
    wait_until!(
        "a1 and a3 to resolve",
        Duration::from_secs(20),
        firing(2).await
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    write(&base, "pw_lag_seconds", &[("a1", 70.0)]).await;
    wait_until!("a1 to fire again", Duration::from_secs(20), firing(3).await);

    let st = store::Store::connect(&db, store::StoreConfig::default())
        .await
        .unwrap();
    let outage_left = OUTAGE.saturating_sub(outage_started.elapsed());
    assert!(
        outage_left > Duration::from_secs(5),
        "the alerts took too long; the outage must outlast them"
    );
    tokio::time::sleep(outage_left).await;
    // A minute down: every notice so far failed (several times) and none was delivered.
    let rows = st.notification_statuses().await.unwrap();
    assert!(rows.iter().all(|r| !r.delivered), "{rows:#?}");
    assert!(
        rows.iter()
            .any(|r| r.attempts >= 3 && r.last_error.as_deref().is_some_and(|e| !e.is_empty())),
        "the sender did not keep retrying: {rows:#?}"
    );
    let sink = SmtpSink::start(port, &dir.join("mail"));
    let outage = outage_started.elapsed();
    assert!(outage >= OUTAGE, "{outage:?}");
    // Back up: the rest resolve.
    write(
        &base,
        "pw_lag_seconds",
        &[("a1", 1.0), ("a2", 1.0), ("a4", 1.0)],
    )
    .await;
    // a1: firing, resolved, firing, resolved; the others firing, resolved.
    wait_until!(
        "ten notices",
        Duration::from_secs(60),
        sink.subjects().len() >= 10
    );
    // Let any duplicate that would come arrive (retries are at most 4 s apart).
    tokio::time::sleep(Duration::from_secs(6)).await;
    let subjects = sink.subjects();
    assert_eq!(subjects.len(), 10, "{subjects:#?}");
    for job in jobs {
        let firing = format!("[FIRING] HighLag (job={job}, severity=page)");
        let resolved = format!("[RESOLVED] HighLag (job={job}, severity=page)");
        let mine: Vec<&str> = subjects
            .iter()
            .filter(|s| **s == firing || **s == resolved)
            .map(|s| if *s == firing { "firing" } else { "resolved" })
            .collect();
        let want: &[&str] = if job == "a1" {
            &["firing", "resolved", "firing", "resolved"]
        } else {
            &["firing", "resolved"]
        };
        assert_eq!(mine, want, "{job}: {subjects:#?}");
    }
    // Exactly once per dedup key: every outbox row delivered, one message each.
    let rows = st.notification_statuses().await.unwrap();
    assert_eq!(rows.len(), 10, "{rows:#?}");
    assert!(rows.iter().all(|r| r.delivered), "{rows:#?}");
    let mut keys: Vec<&str> = rows.iter().map(|r| r.dedup_key.as_str()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 10, "{rows:#?}");
    server.stop().await.unwrap();
}
