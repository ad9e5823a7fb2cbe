//! Escalation end to end, on real parts: a real PostgreSQL, samples sent with real
//! remote_write requests, the lifecycle engine evaluating a rule file, an on-call file with
//! schedules and an escalation policy, and mail delivered to a real SMTP server (aiosmtpd,
//! tests/python/smtp_sink.py) whose envelope recipients say who was paged.

use pipewatch_tests::{python, python_script};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pw-escalation-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// aiosmtpd on a port, writing messages as JSON files; killed when dropped.
struct SmtpSink {
    dir: PathBuf,
    child: Child,
}

/// One received mail: when the test saw it, to whom, its subject and plain-text body.
#[derive(Debug, Clone)]
struct Mail {
    seen: Instant,
    to: Vec<String>,
    subject: String,
    text: String,
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

    /// Every message received so far, in arrival order.
    fn mails(&self) -> Vec<(String, Value)> {
        let mut names: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| {
                (
                    p.display().to_string(),
                    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap(),
                )
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

/// Keeps what the sink received, noting when each message was first seen.
struct Inbox {
    sink: SmtpSink,
    seen: Vec<(String, Mail)>,
}

impl Inbox {
    fn poll(&mut self) -> Vec<Mail> {
        for (path, m) in self.sink.mails() {
            if self.seen.iter().any(|(p, _)| *p == path) {
                continue;
            }
            let mail = Mail {
                seen: Instant::now(),
                to: m["rcpt_tos"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect(),
                subject: m["subject"].as_str().unwrap_or_default().to_string(),
                text: m["parts"]["text/plain"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            };
            self.seen.push((path, mail));
        }
        self.seen.iter().map(|(_, m)| m.clone()).collect()
    }

    /// The mails addressed to `to`.
    fn to(&mut self, to: &str) -> Vec<Mail> {
        self.poll()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t == to))
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

/// Sends one sample of `pw_lag_seconds{job="orders"}` by remote_write.
async fn write_lag(base: &str, v: f64) {
    write_job_lag(base, "orders", v).await
}

/// Sends one sample of `pw_lag_seconds{job=<job>}` by remote_write.
async fn write_job_lag(base: &str, job: &str, v: f64) {
    let batch = model::Batch {
        series: vec![model::TimeSeries {
            key: model::SeriesKey::new("pw_lag_seconds", model::Labels::from_pairs([("job", job)])),
            metric_type: model::MetricType::Gauge,
            samples: vec![model::Sample {
                ts: model::clock::now_ms(),
                value: v,
            }],
        }],
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
    reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap()
}

/// The `HighLag` alerts of job orders.
async fn orders(base: &str, state: &str) -> Vec<Value> {
    let v = get_json(&format!(
        "{base}/api/v1/lifecycle/alerts?rule=HighLag&matcher=job%3D%22orders%22&state={state}"
    ))
    .await;
    v["data"].as_array().unwrap().clone()
}

/// The timeline of alert `id` as (kind, detail), oldest first.
async fn timeline(base: &str, id: &Value) -> Vec<(String, String)> {
    let one = get_json(&format!("{base}/api/v1/lifecycle/alerts/{id}")).await;
    one["data"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

const RULES: &str = "groups:\n- name: etl\n  rules:\n  - alert: HighLag\n    expr: pw_lag_seconds > 10\n    for: 1s\n    labels:\n      severity: page\n";

/// Schedules and a three-level policy. The primary schedule's rotation has ben on call, but an
/// override (around the test's run) puts ann there instead; the secondary has cy. Level 2
/// also names lead, who has no address.
fn oncall_file(now_ms: i64) -> String {
    let t = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    format!(
        "schedules:\n\
         - name: primary\n\
         \x20 layers:\n\
         \x20   - {{name: weekly, start: 2026-01-05T00:00:00Z, shift: 1w, users: [ben]}}\n\
         \x20 overrides:\n\
         \x20   - {{user: ann, from: {}, to: {}}}\n\
         - name: secondary\n\
         \x20 layers:\n\
         \x20   - {{start: 2026-01-05T00:00:00Z, shift: 1d, users: [cy]}}\n\
         escalation_policies:\n\
         - name: pages\n\
         \x20 levels:\n\
         \x20   - targets: [{{schedule: primary}}]\n\
         \x20   - after: 5s\n\
         \x20     targets: [{{schedule: secondary}}, {{user: lead}}]\n\
         \x20   - after: 14s\n\
         \x20     targets: [{{user: ben}}]\n",
        t(now_ms - 3_600_000),
        t(now_ms + 3_600_000)
    )
}

/// A server over a fresh database holding the users the on-call file names.
async fn start(name: &str, smtp_port: u16) -> (server::run::RunningServer, String, String) {
    start_grouped(name, smtp_port, GROUP_PER_JOB).await
}

/// One group per job, told about changes within a second.
const GROUP_PER_JOB: &str = "group_by = [\"alertname\", \"job\"]\ngroup_interval = \"1s\"\n";

/// [`start`] with `grouping` (the `[alerting]` lines `group_by` and `group_interval`).
async fn start_grouped(
    name: &str,
    smtp_port: u16,
    grouping: &str,
) -> (server::run::RunningServer, String, String) {
    let url = store::testing::fresh_database_url().await;
    let st = store::Store::connect(&url, store::StoreConfig::default())
        .await
        .unwrap();
    for (user, email) in [
        ("ann", Some("ann@example.com")),
        ("ben", Some("ben@example.com")),
        ("cy", Some("cy@example.com")),
        ("lead", None),
    ] {
        st.create_user(user, "a long enough password", model::auth::Role::Editor)
            .await
            .unwrap();
        st.set_email(user, email).await.unwrap();
    }
    let dir = temp_dir(name);
    std::fs::write(dir.join("rules.yml"), RULES).unwrap();
    std::fs::write(dir.join("oncall.yml"), oncall_file(model::clock::now_ms())).unwrap();
    let (s, base) = start_on(&dir, &url, smtp_port, grouping).await;
    (s, base, url)
}

/// A server on the database `url` with the files in `dir` (a second start after a restart).
async fn start_on(
    dir: &Path,
    url: &str,
    smtp_port: u16,
    grouping: &str,
) -> (server::run::RunningServer, String) {
    let cfg = server::config::Config::from_toml_str(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{d}\"\n[database]\nurl = \"{url}\"\n\
         [auth]\nanonymous_role = \"admin\"\n\
         [ingest]\nflush_interval = \"50ms\"\n\
         [notifications]\npoll_interval = \"100ms\"\n\
         [notifications.channels.mail]\ntype = \"email\"\nsmtp_host = \"127.0.0.1\"\n\
         smtp_port = {smtp_port}\ntls = \"none\"\nfrom = \"pipewatch@example.com\"\n\
         to = [\"team@example.com\"]\n\
         [oncall]\nfiles = [\"{d}/oncall.yml\"]\nmail_channel = \"mail\"\n\
         [alerting]\nrule_files = [\"{d}/rules.yml\"]\nevaluation_interval = \"1s\"\n\
         group_wait = \"0s\"\nrepeat_interval = \"1h\"\n{grouping}\
         channels = [\"mail\"]\nescalation = \"pages\"\n",
        d = dir.display()
    ))
    .unwrap();
    let s = server::run::RunningServer::start(cfg, Default::default())
        .await
        .unwrap();
    let base = format!("http://{}", s.addr);
    (s, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacknowledged_alert_escalates_level_by_level_until_acknowledged_and_the_resolve_reaches_everyone(
) {
    let port = free_port();
    let mut inbox = Inbox {
        sink: SmtpSink::start(port, &temp_dir("smtp").join("mail")),
        seen: Vec::new(),
    };
    let (server, base, _db) = start("walk", port).await;

    write_lag(&base, 50.0).await;
    wait_until!(
        "the alert to fire",
        Duration::from_secs(20),
        orders(&base, "firing").await.len() == 1
    );
    let id = orders(&base, "firing").await[0]["id"].clone();

    // Level 1 (after 0s): whoever the primary schedule has on call — ann, by the override
    // over ben's rotation — is mailed at once, beside the route's own notice to the team.
    wait_until!(
        "the team's firing notice and level 1",
        Duration::from_secs(20),
        !inbox.to("team@example.com").is_empty() && !inbox.to("ann@example.com").is_empty()
    );
    let team = inbox.to("team@example.com")[0].clone();
    let level1 = inbox.to("ann@example.com")[0].clone();
    assert_eq!(team.subject, "[FIRING] HighLag (job=orders, severity=page)");
    assert_eq!(level1.subject, team.subject);
    assert_eq!(
        level1.to,
        ["ann@example.com"],
        "a person's mail goes to them alone"
    );
    assert!(
        level1.text.contains("Escalated: level 1 of policy pages"),
        "{}",
        level1.text
    );
    assert!(
        level1.seen.duration_since(team.seen) < Duration::from_secs(3),
        "level 1 came {:?} after the firing notice",
        level1.seen.duration_since(team.seen)
    );
    assert!(
        inbox.to("ben@example.com").is_empty(),
        "the override wins over ben's rotation"
    );

    // Level 2 (after 5s): the secondary's cy is mailed; lead has no address, which the
    // timeline says instead of dropping it.
    wait_until!(
        "level 2",
        Duration::from_secs(20),
        !inbox.to("cy@example.com").is_empty()
    );
    let level2 = inbox.to("cy@example.com")[0].clone();
    let gap = level2.seen.duration_since(level1.seen);
    assert!(
        gap >= Duration::from_secs(3),
        "level 2 came only {gap:?} after level 1 (after: 5s)"
    );
    assert!(
        level2.text.contains("Escalated: level 2 of policy pages"),
        "{}",
        level2.text
    );
    let escalated: Vec<String> = timeline(&base, &id)
        .await
        .into_iter()
        .filter(|(k, _)| k == "escalated")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(
        escalated,
        [
            "level 1 of policy pages (after 0s): mailed ann at ann@example.com (schedule primary)",
            "level 2 of policy pages (after 5s): mailed cy at cy@example.com (schedule \
             secondary); not delivered: lead has no e-mail address (user lead)",
        ]
    );

    // The alert's page shows the steps on its timeline.
    let page = reqwest::get(format!("{base}/alerts/{id}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("event-escalated"), "{page}");
    assert!(
        page.contains("not delivered: lead has no e-mail address (user lead)"),
        "{page}"
    );

    // ann acknowledges before level 3 (after 14s) is due: ben is never paged.
    let ack = reqwest::Client::new()
        .post(format!("{base}/api/v1/lifecycle/alerts/{id}/acknowledge"))
        .json(&json!({"by": "ann", "comment": "on it"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ack.status(), 200);
    let level3_due = level1.seen + Duration::from_secs(14);
    while Instant::now() < level3_due + Duration::from_secs(4) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        inbox.to("ben@example.com").is_empty(),
        "level 3 went out after the acknowledgement"
    );
    assert_eq!(
        timeline(&base, &id)
            .await
            .iter()
            .filter(|(k, _)| k == "escalated")
            .count(),
        2
    );

    // The lag falls: the resolve reaches the team and everyone the escalation paged.
    write_lag(&base, 1.0).await;
    wait_until!(
        "the resolves",
        Duration::from_secs(20),
        inbox
            .poll()
            .iter()
            .filter(|m| m.subject.starts_with("[RESOLVED]"))
            .count()
            >= 3
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    for who in ["team@example.com", "ann@example.com", "cy@example.com"] {
        let subjects: Vec<String> = inbox.to(who).into_iter().map(|m| m.subject).collect();
        assert_eq!(
            subjects,
            [
                "[FIRING] HighLag (job=orders, severity=page)",
                "[RESOLVED] HighLag (job=orders, severity=page)"
            ],
            "mail to {who}"
        );
    }
    assert!(inbox.to("ben@example.com").is_empty());
    let told: Vec<String> = timeline(&base, &id)
        .await
        .into_iter()
        .filter(|(k, d)| k == "notified" && d.contains("escalation"))
        .map(|(_, d)| d)
        .collect();
    assert_eq!(
        told,
        ["resolved notice to everyone escalation policy pages reached: ann@example.com, cy@example.com"]
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_user_in_an_oncall_file_stops_the_start_naming_the_line() {
    let url = store::testing::fresh_database_url().await;
    let dir = temp_dir("unknown-user");
    std::fs::write(
        dir.join("oncall.yml"),
        "schedules:\n  - name: primary\n    layers:\n      - start: 2026-01-05T00:00:00Z\n        shift: 1d\n        users: [nobody-here]\n",
    )
    .unwrap();
    let cfg = server::config::Config::from_toml_str(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{d}\"\n[database]\nurl = \"{url}\"\n\
         [oncall]\nfiles = [\"{d}/oncall.yml\"]\n",
        d = dir.display()
    ))
    .unwrap();
    let e = match server::run::RunningServer::start(cfg, Default::default()).await {
        Ok(_) => panic!("started with an unknown user in the on-call file"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        e.contains("oncall.yml:6:") && e.contains("\"nobody-here\" does not exist"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_goes_on_with_the_next_level_and_repeats_none() {
    let port = free_port();
    let mut inbox = Inbox {
        sink: SmtpSink::start(port, &temp_dir("smtp-restart").join("mail")),
        seen: Vec::new(),
    };
    let (server, base, db) = start("restart", port).await;
    let dir = temp_dir("restart-files");
    std::fs::write(dir.join("rules.yml"), RULES).unwrap();
    std::fs::write(dir.join("oncall.yml"), oncall_file(model::clock::now_ms())).unwrap();
    write_lag(&base, 50.0).await;
    wait_until!(
        "level 1",
        Duration::from_secs(20),
        !inbox.to("ann@example.com").is_empty()
    );
    // Stopped between level 1 and level 2 (due 5 s after the first firing notice).
    server.stop().await.unwrap();
    let (server, base) = start_on(&dir, &db, port, GROUP_PER_JOB).await;
    wait_until!(
        "level 2 from the restarted server",
        Duration::from_secs(20),
        !inbox.to("cy@example.com").is_empty()
    );
    wait_until!(
        "level 3 (nobody acknowledges here)",
        Duration::from_secs(25),
        !inbox.to("ben@example.com").is_empty()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    for who in [
        "team@example.com",
        "ann@example.com",
        "cy@example.com",
        "ben@example.com",
    ] {
        assert_eq!(inbox.to(who).len(), 1, "mail to {who}: {:?}", inbox.to(who));
    }
    let id = orders(&base, "firing").await[0]["id"].clone();
    let levels: Vec<String> = timeline(&base, &id)
        .await
        .into_iter()
        .filter(|(k, _)| k == "escalated")
        .map(|(_, d)| d[..8].to_string())
        .collect();
    assert_eq!(levels, ["level 1 ", "level 2 ", "level 3 "]);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oncall_page_shows_who_is_on_call_and_an_override_added_there_wins_and_is_audited() {
    let (server, base, db) = start("page", free_port()).await;
    let page = reqwest::get(format!("{base}/oncall"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // ann by the file's override over ben's rotation; cy on the secondary; the policy's levels.
    assert!(page.contains("<strong>ann</strong>"), "{page}");
    assert!(page.contains("<strong>cy</strong>"), "{page}");
    assert!(
        page.contains("after 5s: schedule secondary, user lead"),
        "{page}"
    );
    assert!(page.contains("Used by the routes: default"), "{page}");

    let http = reqwest::Client::new();
    let add = |user: &str, duration: &str| {
        http.post(format!("{base}/app-fn/add_override"))
            .form(&[
                ("schedule", "primary"),
                ("user", user),
                ("from", ""),
                ("duration", duration),
            ])
            .send()
    };
    let r = add("ben", "2h").await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    // Bad requests say what is wrong.
    let r = add("nobody-here", "2h").await.unwrap();
    let text = r.text().await.unwrap();
    assert!(text.contains("no user named \"nobody-here\""), "{text}");
    let r = add("ben", "1y").await.unwrap();
    let text = r.text().await.unwrap();
    assert!(text.contains("at most 90d"), "{text}");

    let page = reqwest::get(format!("{base}/oncall"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<strong>ben</strong>"),
        "the page's override wins: {page}"
    );
    let st = store::Store::connect(&db, store::StoreConfig::default())
        .await
        .unwrap();
    let audit = st.audit_log(10, None).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.action == "oncall.override.add" && a.target == "primary"),
        "{audit:?}"
    );
    let stored = st.schedule_overrides(model::clock::now_ms()).await.unwrap();
    assert_eq!(stored.len(), 1);
    let r = http
        .post(format!("{base}/app-fn/delete_override"))
        .form(&[("id", stored[0].id.to_string())])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    assert!(st
        .schedule_overrides(model::clock::now_ms())
        .await
        .unwrap()
        .is_empty());
    let page = reqwest::get(format!("{base}/oncall"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<strong>ann</strong>"), "{page}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_stops_firing_closes_its_escalation_and_firing_again_starts_a_new_one() {
    let port = free_port();
    let mut inbox = Inbox {
        sink: SmtpSink::start(port, &temp_dir("smtp-again").join("mail")),
        seen: Vec::new(),
    };
    // One group for every job, told about changes at most every 8 s: the group's row (and
    // so its life) outlasts the first alert's resolve and sees the second alert fire.
    let (server, base, _db) = start_grouped(
        "again",
        port,
        "group_by = [\"alertname\"]\ngroup_interval = \"8s\"\n",
    )
    .await;
    write_lag(&base, 50.0).await;
    wait_until!(
        "level 1 for orders",
        Duration::from_secs(20),
        !inbox.to("ann@example.com").is_empty()
    );
    // orders recovers (the escalation closes: ann is told) and billing starts lagging.
    write_lag(&base, 1.0).await;
    write_job_lag(&base, "billing", 50.0).await;
    wait_until!(
        "level 1 again, for billing",
        Duration::from_secs(30),
        inbox.to("ann@example.com").len() >= 3
    );
    let subjects: Vec<String> = inbox
        .to("ann@example.com")
        .into_iter()
        .map(|m| m.subject)
        .collect();
    assert_eq!(
        subjects,
        [
            "[FIRING] HighLag (job=orders, severity=page)",
            "[RESOLVED] HighLag (job=orders, severity=page)",
            "[FIRING] HighLag (job=billing, severity=page)",
        ]
    );
    let billing = get_json(&format!(
        "{base}/api/v1/lifecycle/alerts?rule=HighLag&matcher=job%3D%22billing%22&state=firing"
    ))
    .await;
    let id = billing["data"][0]["id"].clone();
    let escalated: Vec<String> = timeline(&base, &id)
        .await
        .into_iter()
        .filter(|(k, _)| k == "escalated")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(
        escalated,
        ["level 1 of policy pages (after 0s): mailed ann at ann@example.com (schedule primary)"]
    );
    server.stop().await.unwrap();
}
