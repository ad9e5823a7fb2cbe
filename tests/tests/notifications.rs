//! Notifications delivered through the outbox to real receivers: a real SMTP server (aiosmtpd,
//! from the test virtualenv, see tests/python/smtp_sink.py) and a real local HTTP server for
//! the JSON and Slack webhooks. Assertions are on what the receivers got.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use pipewatch_tests::{python, python_script, serve};
use server::config::{ChannelConfig, EmailConfig, NotificationsConfig, SmtpTls, WebhookConfig};
use server::notify::{self, AlertNotice, Sender};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::outbox::NotificationKind;
use store::{Store, StoreConfig};
use tokio_util::sync::CancellationToken;

async fn store() -> Store {
    store_and_url().await.0
}

async fn store_and_url() -> (Store, String) {
    let url = store::testing::fresh_database_url().await;
    let s = Store::connect(&url, StoreConfig::default()).await.unwrap();
    (s, url)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// aiosmtpd on a port, writing messages as JSON files; killed when dropped.
struct SmtpSink {
    dir: PathBuf,
    child: std::process::Child,
}

impl SmtpSink {
    fn start(port: u16, dir: &Path) -> SmtpSink {
        use std::io::BufRead;
        std::fs::create_dir_all(dir).unwrap();
        let mut child = std::process::Command::new(python())
            .arg(python_script("smtp_sink.py"))
            .arg(port.to_string())
            .arg(dir)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start aiosmtpd (run scripts/setup.sh --test)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "smtp_sink.py did not start");
        SmtpSink {
            dir: dir.to_path_buf(),
            child,
        }
    }

    /// Received messages in arrival order.
    fn messages(&self) -> Vec<serde_json::Value> {
        let mut names: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pw-notify-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn email_channel(port: u16) -> ChannelConfig {
    ChannelConfig::Email(EmailConfig {
        smtp_host: "127.0.0.1".into(),
        smtp_port: Some(port),
        tls: SmtpTls::None,
        username: String::new(),
        password_env: None,
        from: "pipewatch <pipewatch@example.com>".into(),
        to: vec!["oncall@example.com".into()],
    })
}

fn config(channels: Vec<(&str, ChannelConfig)>) -> NotificationsConfig {
    NotificationsConfig {
        poll_interval: Duration::from_millis(100),
        retry_base: Duration::from_millis(200),
        retry_cap: Duration::from_millis(800),
        send_timeout: Duration::from_secs(5),
        public_url: "https://pw.example.com".into(),
        channels: channels
            .into_iter()
            .map(|(n, c)| (n.to_string(), c))
            .collect(),
        ..NotificationsConfig::default()
    }
}

fn notice(alert: &str, kind: NotificationKind) -> AlertNotice {
    AlertNotice {
        alert: alert.into(),
        labels: BTreeMap::from([
            ("alertname".into(), alert.into()),
            ("pipeline".into(), "orders<etl>".into()),
        ]),
        severity: "critical".into(),
        explanation: format!("{alert}: rows_loaded fell to 0 for 10m (threshold > 100)"),
        link: Some(format!("/alerts/{alert}")),
        starts_at_ms: 1_765_000_000_000,
        ends_at_ms: (kind == NotificationKind::Resolved).then_some(1_765_000_600_000),
        values: vec![(1_765_000_000_000, 0.0), (1_765_000_060_000, 0.0)],
        alerts: Vec::new(),
    }
}

async fn enqueue(s: &Store, channels: &[&str], alert: &str, kind: NotificationKind) -> usize {
    let mut tx = s.pool().begin().await.unwrap();
    let n = notify::enqueue(
        &mut tx,
        channels,
        &format!("{alert}:{kind}"),
        alert,
        kind,
        &notice(alert, kind),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    n
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn email_arrives_at_a_real_smtp_server_with_plain_and_html_parts() {
    let s = store().await;
    let port = free_port();
    let sink = SmtpSink::start(port, &temp_dir("content"));
    let sender = Sender::new(s.clone(), &config(vec![("mail", email_channel(port))])).unwrap();
    enqueue(&s, &["mail"], "OrdersStalled", NotificationKind::Firing).await;
    assert_eq!(sender.round().await.unwrap(), 1);

    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(m["rcpt_tos"], serde_json::json!(["oncall@example.com"]));
    assert_eq!(m["mail_from"], "pipewatch@example.com");
    assert_eq!(
        m["subject"],
        "[FIRING] OrdersStalled (pipeline=orders<etl>)"
    );
    assert_eq!(m["content_type"], "multipart/alternative");
    let plain = m["parts"]["text/plain"].as_str().unwrap();
    assert!(
        plain.contains("OrdersStalled: rows_loaded fell to 0 for 10m"),
        "{plain}"
    );
    assert!(plain.contains("pipeline = orders<etl>"), "{plain}");
    assert!(plain.contains("Severity: critical"), "{plain}");
    assert!(
        plain.contains("Open in pipewatch: https://pw.example.com/alerts/OrdersStalled"),
        "{plain}"
    );
    assert!(plain.contains("2025-12-06 05:47:40 UTC  0"), "{plain}");
    let html = m["parts"]["text/html"].as_str().unwrap();
    assert!(
        html.contains("<a href=\"https://pw.example.com/alerts/OrdersStalled\">"),
        "{html}"
    );
    assert!(
        html.contains("<td>orders&lt;etl&gt;</td>"),
        "label escaped: {html}"
    );
    assert!(!html.contains("orders<etl>"), "{html}");

    let rows = s.notification_statuses().await.unwrap();
    assert!(rows[0].delivered);
    let attempts = s.notification_attempts(rows[0].id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert!(attempts[0].delivered);
}

#[derive(Clone, Default)]
struct Hooks {
    got: Arc<Mutex<Vec<(String, String, serde_json::Value)>>>,
    /// Requests to fail with 503 before answering 200.
    fail_first: Arc<Mutex<usize>>,
}

async fn hook(
    State(h): State<Hooks>,
    axum::extract::Path(name): axum::extract::Path<String>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> StatusCode {
    {
        let mut fail = h.fail_first.lock().unwrap();
        if *fail > 0 {
            *fail -= 1;
            return StatusCode::SERVICE_UNAVAILABLE;
        }
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    h.got.lock().unwrap().push((name, key, body));
    StatusCode::OK
}

fn hook_channels(addr: std::net::SocketAddr) -> Vec<(&'static str, ChannelConfig)> {
    vec![
        (
            "hook",
            ChannelConfig::Webhook(WebhookConfig {
                url: Some(format!("http://{addr}/in/hook")),
                url_env: None,
            }),
        ),
        (
            "slack",
            ChannelConfig::SlackWebhook(WebhookConfig {
                url: Some(format!("http://{addr}/in/slack")),
                url_env: None,
            }),
        ),
    ]
}

#[tokio::test]
async fn json_and_slack_webhooks_reach_a_real_http_receiver() {
    let s = store().await;
    let hooks = Hooks::default();
    let addr = serve(
        Router::new()
            .route("/in/{name}", post(hook))
            .with_state(hooks.clone()),
    )
    .await;
    let sender = Sender::new(s.clone(), &config(hook_channels(addr))).unwrap();
    enqueue(
        &s,
        &["hook", "slack"],
        "OrdersStalled",
        NotificationKind::Firing,
    )
    .await;
    assert_eq!(sender.round().await.unwrap(), 2);

    let got = hooks.got.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    let by_name: HashMap<_, _> = got.iter().map(|(n, k, b)| (n.as_str(), (k, b))).collect();

    let (key, json) = by_name["hook"];
    assert_eq!(key, "OrdersStalled:firing");
    assert_eq!(json["version"], "1");
    assert_eq!(json["status"], "firing");
    assert_eq!(json["alert"], "OrdersStalled");
    assert_eq!(json["labels"]["pipeline"], "orders<etl>");
    assert_eq!(json["link"], "https://pw.example.com/alerts/OrdersStalled");
    assert_eq!(
        json["values"][1],
        serde_json::json!([1_765_000_060_000i64, 0.0])
    );

    let (_, slack) = by_name["slack"];
    assert_eq!(
        slack["text"],
        "[FIRING] OrdersStalled (pipeline=orders<etl>)"
    );
    let blocks = slack["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert!(blocks[1]["text"]["text"]
        .as_str()
        .unwrap()
        .contains("*OrdersStalled* · severity *critical*"));
    let fields = blocks[2]["fields"].as_array().unwrap();
    assert!(fields
        .iter()
        .any(|f| f["text"] == "*pipeline*\norders&lt;etl&gt;"));
    let button = &blocks.last().unwrap()["elements"][0];
    assert_eq!(button["url"], "https://pw.example.com/alerts/OrdersStalled");
}

#[tokio::test]
async fn a_failing_webhook_is_retried_after_back_off_and_every_attempt_is_recorded() {
    let s = store().await;
    let hooks = Hooks::default();
    *hooks.fail_first.lock().unwrap() = 2;
    let addr = serve(
        Router::new()
            .route("/in/{name}", post(hook))
            .with_state(hooks.clone()),
    )
    .await;
    let sender = Sender::new(s.clone(), &config(hook_channels(addr))).unwrap();
    enqueue(&s, &["hook"], "Late", NotificationKind::Firing).await;
    let stop = CancellationToken::new();
    let task = sender.spawn(stop.clone());
    let got = hooks.got.clone();
    wait_until("the third attempt", Duration::from_secs(10), || {
        got.lock().unwrap().len() == 1
    })
    .await;
    stop.cancel();
    task.await.unwrap();
    let row = &s.notification_statuses().await.unwrap()[0];
    assert!(row.delivered);
    assert_eq!(row.attempts, 3);
    let attempts = s.notification_attempts(row.id).await.unwrap();
    assert_eq!(attempts.len(), 3);
    assert!(attempts[0].error.as_deref().unwrap().contains("503"));
    assert!(attempts[2].delivered);
    // The second failure waited the doubled back-off (400 ms) before the third attempt.
    let gap = attempts[2].attempted_at_ms - attempts[1].attempted_at_ms;
    assert!(gap >= 400, "retried after {gap} ms");
}

/// The SMTP server is down while alerts fire and resolve, then comes up: every notification
/// arrives exactly once per dedup key, each alert's resolve after its firing notice. Two
/// senders (as two pipewatch instances would) share the outbox the whole time.
#[tokio::test]
async fn after_an_smtp_outage_every_notice_arrives_once_and_in_order_per_alert() {
    let (s, url) = store_and_url().await;
    // A second connection pool, as a second pipewatch instance would have.
    let s2 = Store::connect(&url, StoreConfig::default()).await.unwrap();
    let port = free_port();
    let cfg = config(vec![("mail", email_channel(port))]);
    let stop = CancellationToken::new();
    let a = Sender::new(s.clone(), &cfg).unwrap().spawn(stop.clone());
    let b = Sender::new(s2, &cfg).unwrap().spawn(stop.clone());

    let alerts = ["A1", "A2", "A3", "A4"];
    for alert in alerts {
        enqueue(&s, &["mail"], alert, NotificationKind::Firing).await;
    }
    // A replayed transition is stored once.
    assert_eq!(
        enqueue(&s, &["mail"], "A1", NotificationKind::Firing).await,
        0
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    for alert in ["A1", "A3"] {
        enqueue(&s, &["mail"], alert, NotificationKind::Resolved).await;
    }
    // Down long enough for several capped retries of each firing notice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rows = s.notification_statuses().await.unwrap();
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|r| !r.delivered));
    assert!(rows
        .iter()
        .filter(|r| r.kind == NotificationKind::Firing)
        .all(|r| r.attempts >= 2 && r.last_error.as_deref().is_some_and(|e| e.contains("SMTP"))));
    // A resolve is never tried before its firing notice is through.
    assert!(rows
        .iter()
        .filter(|r| r.kind == NotificationKind::Resolved)
        .all(|r| r.attempts == 0));

    let sink = SmtpSink::start(port, &temp_dir("outage"));
    for alert in ["A2", "A4"] {
        enqueue(&s, &["mail"], alert, NotificationKind::Resolved).await;
    }
    wait_until("all 8 notices", Duration::from_secs(20), || {
        sink.messages().len() >= 8
    })
    .await;
    // Let any duplicate that would come arrive.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.cancel();
    a.await.unwrap();
    b.await.unwrap();

    let subjects: Vec<String> = sink
        .messages()
        .iter()
        .map(|m| m["subject"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(subjects.len(), 8, "{subjects:#?}");
    for alert in alerts {
        let firing = format!("[FIRING] {alert} (pipeline=orders<etl>)");
        let resolved = format!("[RESOLVED] {alert} (pipeline=orders<etl>)");
        let f: Vec<_> = subjects.iter().positions(&firing);
        let r: Vec<_> = subjects.iter().positions(&resolved);
        assert_eq!((f.len(), r.len()), (1, 1), "{alert}: {subjects:#?}");
        assert!(f[0] < r[0], "{alert} resolved before firing: {subjects:#?}");
    }
    assert!(s
        .notification_statuses()
        .await
        .unwrap()
        .iter()
        .all(|r| r.delivered));
}

trait Positions {
    fn positions(self, want: &str) -> Vec<usize>;
}

impl<'a, I: Iterator<Item = &'a String>> Positions for I {
    fn positions(self, want: &str) -> Vec<usize> {
        self.enumerate()
            .filter(|(_, s)| s.as_str() == want)
            .map(|(i, _)| i)
            .collect()
    }
}

/// The instance that claimed a notification dies mid-delivery (its sender task is aborted, as
/// a killed process would leave things: no failure recorded, the claim still held). The other
/// instance's sender takes the notification over once the claim lease runs out.
#[tokio::test]
async fn when_the_sending_instance_dies_the_other_instance_delivers() {
    let (s, url) = store_and_url().await;
    let s2 = Store::connect(&url, StoreConfig::default()).await.unwrap();
    // The first request hangs (the dying instance's); later ones are answered.
    let seen = Arc::new(Mutex::new(0usize));
    let delivered = Arc::new(Mutex::new(Vec::<serde_json::Value>::new()));
    let router = {
        let (seen, delivered) = (seen.clone(), delivered.clone());
        Router::new().route(
            "/in/hook",
            post(move |Json(body): Json<serde_json::Value>| {
                let (seen, delivered) = (seen.clone(), delivered.clone());
                async move {
                    let first = {
                        let mut n = seen.lock().unwrap();
                        *n += 1;
                        *n == 1
                    };
                    if first {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    delivered.lock().unwrap().push(body);
                    StatusCode::OK
                }
            }),
        )
    };
    let addr = serve(router).await;
    let cfg = NotificationsConfig {
        claim_lease: Duration::from_millis(2500),
        send_timeout: Duration::from_secs(2),
        ..config(hook_channels(addr))
    };
    enqueue(&s, &["hook"], "Handoff", NotificationKind::Firing).await;
    let stop = CancellationToken::new();
    let doomed = Sender::new(s.clone(), &cfg).unwrap().spawn(stop.clone());
    let seen_now = seen.clone();
    wait_until(
        "the first instance to start sending",
        Duration::from_secs(10),
        || *seen_now.lock().unwrap() == 1,
    )
    .await;
    doomed.abort();
    let _ = doomed.await;
    let survivor = Sender::new(s2, &cfg).unwrap().spawn(stop.clone());
    let got = delivered.clone();
    wait_until(
        "the other instance to deliver",
        Duration::from_secs(10),
        || got.lock().unwrap().len() == 1,
    )
    .await;
    stop.cancel();
    survivor.await.unwrap();
    assert_eq!(delivered.lock().unwrap()[0]["alert"], "Handoff");
    assert_eq!(*seen.lock().unwrap(), 2, "one hung attempt, one delivery");
    let row = &s.notification_statuses().await.unwrap()[0];
    assert!(row.delivered);
    // The dead instance recorded nothing; the survivor's delivery is the only attempt.
    assert_eq!(row.attempts, 1);
}
