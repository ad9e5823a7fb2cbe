//! Slack bot-token mode and Microsoft Teams, delivered to a real local HTTP server started by
//! each test. The server stands in for Slack's Web API (`chat.postMessage`, `chat.update`,
//! `conversations.history`), which cannot run here: it answers as Slack documents (HTTP 200
//! with `ok`, `channel`, `ts`; `ok:false` with an error name; HTTP 429 with `Retry-After`) and
//! records every request, and the assertions are on those requests. The database is a real
//! PostgreSQL; one test drives the whole engine (rule, grouping, outbox, sender).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Json, Router};
use pipewatch_tests::serve;
use serde_json::{json, Value};
use server::config::{ChannelConfig, NotificationsConfig, SlackConfig, WebhookConfig};
use server::notify::{self, AlertNotice, NoticeAlert, Sender};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::outbox::NotificationKind;
use store::{Store, StoreConfig};

const TOKEN_ENV: &str = "PW_TEST_SLACK_BOT_TOKEN";
const TOKEN: &str = "xoxb-test-token";
/// The channel ID the fake answers with.
const CHANNEL_ID: &str = "C0PIPEWATCH";

/// One request the fake Slack received.
#[derive(Debug, Clone)]
struct Call {
    method: String,
    auth: String,
    body: Value,
    query: HashMap<String, String>,
}

/// A scripted answer instead of success.
#[derive(Debug, Clone)]
enum Answer {
    OkFalse(&'static str),
    RateLimited(u64),
}

#[derive(Clone, Default)]
struct FakeSlack {
    calls: Arc<Mutex<Vec<Call>>>,
    /// Answers for the next calls of a method, before it succeeds again.
    script: Arc<Mutex<HashMap<String, VecDeque<Answer>>>>,
    /// What `conversations.history` lists.
    history: Arc<Mutex<Vec<Value>>>,
    next_ts: Arc<Mutex<u64>>,
}

impl FakeSlack {
    async fn start() -> (FakeSlack, String) {
        let f = FakeSlack::default();
        let addr = serve(
            Router::new()
                .route("/api/{method}", any(slack_api))
                .with_state(f.clone()),
        )
        .await;
        (f, format!("http://{addr}/api/"))
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn fail_next(&self, method: &str, a: Answer) {
        self.script
            .lock()
            .unwrap()
            .entry(method.into())
            .or_default()
            .push_back(a);
    }

    /// `chat.postMessage` calls that start a message (not thread replies).
    fn parents(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == "chat.postMessage" && c.body.get("thread_ts").is_none())
            .collect()
    }
}

async fn slack_api(
    State(f): State<FakeSlack>,
    Path(method): Path<String>,
    http_method: Method,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let body: Value = if http_method == Method::POST {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    f.calls.lock().unwrap().push(Call {
        method: method.clone(),
        auth,
        body: body.clone(),
        query,
    });
    let scripted = f
        .script
        .lock()
        .unwrap()
        .get_mut(&method)
        .and_then(|q| q.pop_front());
    match scripted {
        Some(Answer::OkFalse(e)) => return Json(json!({"ok": false, "error": e})).into_response(),
        Some(Answer::RateLimited(s)) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", s.to_string())],
                Json(json!({"ok": false, "error": "ratelimited"})),
            )
                .into_response()
        }
        None => {}
    }
    match method.as_str() {
        "chat.postMessage" => {
            let mut n = f.next_ts.lock().unwrap();
            *n += 1;
            let ts = format!("1765000000.{:06}", *n);
            Json(json!({"ok": true, "channel": CHANNEL_ID, "ts": ts, "message": body}))
                .into_response()
        }
        "chat.update" => Json(json!({
            "ok": true, "channel": body["channel"], "ts": body["ts"], "text": body["text"],
        }))
        .into_response(),
        "conversations.history" => {
            Json(json!({"ok": true, "messages": f.history.lock().unwrap().clone()})).into_response()
        }
        _ => Json(json!({"ok": false, "error": "unknown_method"})).into_response(),
    }
}

fn slack_channel(api_url: &str, channel: &str) -> ChannelConfig {
    std::env::set_var(TOKEN_ENV, TOKEN);
    ChannelConfig::Slack(SlackConfig {
        token_env: TOKEN_ENV.into(),
        channel: channel.into(),
        api_url: api_url.into(),
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

async fn store() -> Store {
    let url = store::testing::fresh_database_url().await;
    Store::connect(&url, StoreConfig::default()).await.unwrap()
}

const GROUP: &str = "default/{alertname=\"Lag\"}";

fn group_notice(alerts: &[(&str, NotificationKind)]) -> (NotificationKind, AlertNotice) {
    let kind = if alerts.iter().any(|(_, s)| *s == NotificationKind::Firing) {
        NotificationKind::Firing
    } else {
        NotificationKind::Resolved
    };
    let notice = AlertNotice {
        alert: "Lag".into(),
        labels: BTreeMap::from([("alertname".into(), "Lag".into())]),
        severity: "critical".into(),
        explanation: format!("{} alerts", alerts.len()),
        link: Some("/alerts".into()),
        starts_at_ms: 1_765_000_000_000,
        ends_at_ms: (kind == NotificationKind::Resolved).then_some(1_765_000_600_000),
        values: Vec::new(),
        alerts: alerts
            .iter()
            .map(|(job, s)| NoticeAlert {
                id: format!("{job}#1"),
                status: *s,
                title: format!("{{job=\"{job}\"}} {job} lags"),
            })
            .collect(),
    };
    (kind, notice)
}

/// Enqueues the `seq`-th notice of the group as the engine does (dedup key
/// `<group>@<created>#<seq>`).
async fn enqueue(s: &Store, seq: u32, alerts: &[(&str, NotificationKind)]) {
    let (kind, notice) = group_notice(alerts);
    let mut tx = s.pool().begin().await.unwrap();
    notify::enqueue(
        &mut tx,
        &["bot"],
        &format!("{GROUP}@1765000000000#{seq}"),
        GROUP,
        kind,
        &notice,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// Rounds of the sender until the outbox has no undelivered row (or `timeout`).
async fn drain(s: &Store, sender: &Sender, timeout: Duration) {
    let start = Instant::now();
    loop {
        sender.round().await.unwrap();
        let rows = s.notification_statuses().await.unwrap();
        if rows.iter().all(|r| r.delivered) {
            return;
        }
        assert!(start.elapsed() < timeout, "outbox not drained: {rows:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn attachment(body: &Value) -> &Value {
    &body["attachments"][0]
}

fn header(body: &Value) -> String {
    attachment(body)["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn one_message_per_group_is_edited_in_place_with_the_changes_in_its_thread() {
    use NotificationKind::{Firing, Resolved};
    let s = store().await;
    let (slack, api) = FakeSlack::start().await;
    let sender = Sender::new(
        s.clone(),
        &config(vec![("bot", slack_channel(&api, "#oncall"))]),
    )
    .unwrap();

    enqueue(&s, 1, &[("etl", Firing)]).await;
    drain(&s, &sender, Duration::from_secs(5)).await;
    let calls = slack.calls();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    let first = &calls[0];
    assert_eq!(first.method, "chat.postMessage");
    assert_eq!(first.auth, format!("Bearer {TOKEN}"));
    assert_eq!(first.body["channel"], "#oncall");
    assert!(first.body.get("thread_ts").is_none());
    assert_eq!(
        first.body["metadata"]["event_type"],
        "pipewatch_alert_group"
    );
    assert_eq!(attachment(&first.body)["color"], "#E01E5A");
    assert!(header(&first.body).starts_with(":red_circle: [FIRING] Lag"));
    let text = first.body.to_string();
    assert!(text.contains("1 firing · 0 resolved"), "{text}");
    assert!(text.contains("https://pw.example.com/alerts"), "{text}");
    let ts = "1765000000.000001";

    // A second alert joins the group: the same message is edited, the change goes in the thread.
    enqueue(&s, 2, &[("etl", Firing), ("dbt", Firing)]).await;
    drain(&s, &sender, Duration::from_secs(5)).await;
    let calls = slack.calls();
    assert_eq!(calls.len(), 3, "{calls:#?}");
    assert_eq!(calls[1].method, "chat.update");
    assert_eq!(calls[1].body["channel"], CHANNEL_ID);
    assert_eq!(calls[1].body["ts"], ts);
    assert!(calls[1].body.to_string().contains("2 firing · 0 resolved"));
    assert_eq!(calls[2].method, "chat.postMessage");
    assert_eq!(calls[2].body["thread_ts"], ts);
    assert_eq!(calls[2].body["channel"], CHANNEL_ID);
    assert_eq!(
        calls[2].body["text"],
        ":red_circle: Fired: {job=\"dbt\"} dbt lags\nNow 2 firing · 0 resolved."
    );

    // Both resolve: the message turns green and says so; the thread says what resolved.
    enqueue(&s, 3, &[("etl", Resolved), ("dbt", Resolved)]).await;
    drain(&s, &sender, Duration::from_secs(5)).await;
    let calls = slack.calls();
    assert_eq!(calls.len(), 5, "{calls:#?}");
    assert_eq!(calls[3].method, "chat.update");
    assert_eq!(calls[3].body["ts"], ts);
    assert_eq!(attachment(&calls[3].body)["color"], "#2EB67D");
    assert!(
        header(&calls[3].body).starts_with(":large_green_circle: [RESOLVED] Lag"),
        "{}",
        header(&calls[3].body)
    );
    assert!(calls[3].body.to_string().contains("0 firing · 2 resolved"));
    assert_eq!(calls[4].body["thread_ts"], ts);
    let reply = calls[4].body["text"].as_str().unwrap();
    assert!(
        reply.contains(":white_check_mark: Resolved: {job=\"etl\"} etl lags"),
        "{reply}"
    );
    assert!(
        reply.ends_with("All 2 alerts of the group resolved."),
        "{reply}"
    );

    assert_eq!(slack.parents().len(), 1, "one parent message for the group");
    assert!(slack
        .calls()
        .iter()
        .all(|c| c.auth == format!("Bearer {TOKEN}")));
}

#[tokio::test]
async fn ok_false_is_a_failed_attempt_retried_with_back_off_and_recorded() {
    use NotificationKind::Firing;
    let s = store().await;
    let (slack, api) = FakeSlack::start().await;
    let sender = Sender::new(
        s.clone(),
        &config(vec![("bot", slack_channel(&api, "#oncall"))]),
    )
    .unwrap();
    slack.fail_next("chat.postMessage", Answer::OkFalse("internal_error"));
    slack.fail_next("chat.postMessage", Answer::OkFalse("fatal_error"));
    enqueue(&s, 1, &[("etl", Firing)]).await;
    assert_eq!(sender.round().await.unwrap(), 1);
    let row = s.notification_statuses().await.unwrap()[0].clone();
    assert!(!row.delivered);
    assert_eq!(
        row.last_error.as_deref(),
        Some("Slack chat.postMessage: ok:false, error internal_error")
    );
    // Not due again before the back-off (200 ms).
    assert_eq!(sender.round().await.unwrap(), 0);
    drain(&s, &sender, Duration::from_secs(5)).await;
    let attempts = s.notification_attempts(row.id).await.unwrap();
    let outcomes: Vec<(bool, Option<String>)> = attempts
        .iter()
        .map(|a| (a.delivered, a.error.clone()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (
                false,
                Some("Slack chat.postMessage: ok:false, error internal_error".into())
            ),
            (
                false,
                Some("Slack chat.postMessage: ok:false, error fatal_error".into())
            ),
            (true, None),
        ]
    );
    // Failed posts made no message: one parent in the end.
    assert_eq!(slack.calls().len(), 3);
    let rows: Vec<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT slack_channel, ts FROM slack_messages")
            .fetch_all(s.pool())
            .await
            .unwrap();
    assert_eq!(
        rows,
        [(Some(CHANNEL_ID.into()), Some("1765000000.000001".into()))]
    );
}

#[tokio::test]
async fn http_429_waits_the_retry_after_slack_asks_for() {
    use NotificationKind::Firing;
    let s = store().await;
    let (slack, api) = FakeSlack::start().await;
    let sender = Sender::new(
        s.clone(),
        &config(vec![("bot", slack_channel(&api, "#oncall"))]),
    )
    .unwrap();
    slack.fail_next("chat.postMessage", Answer::RateLimited(2));
    enqueue(&s, 1, &[("etl", Firing)]).await;
    let start = Instant::now();
    assert_eq!(sender.round().await.unwrap(), 1);
    let row = s.notification_statuses().await.unwrap()[0].clone();
    assert!(
        row.last_error
            .as_deref()
            .unwrap()
            .contains("ratelimited (HTTP 429, Retry-After 2s)"),
        "{row:?}"
    );
    // The back-off alone would retry after 200 ms; Slack asked for 2 s.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        sender.round().await.unwrap(),
        0,
        "retried before Retry-After"
    );
    drain(&s, &sender, Duration::from_secs(5)).await;
    assert!(start.elapsed() >= Duration::from_secs(2));
    assert_eq!(
        slack.parents().len(),
        2,
        "the refused post and the one that went through"
    );
}

#[tokio::test]
async fn a_retry_after_an_unrecorded_post_adopts_that_message_instead_of_posting_again() {
    use NotificationKind::Firing;
    let s = store().await;
    let (slack, api) = FakeSlack::start().await;
    // Given by ID, so the history can be read.
    let sender = Sender::new(
        s.clone(),
        &config(vec![("bot", slack_channel(&api, CHANNEL_ID))]),
    )
    .unwrap();
    let group_ref = format!("{GROUP}@1765000000000");
    // An earlier attempt (another instance, which then died) wrote its intent and posted, but
    // never recorded the answer.
    sqlx::query("INSERT INTO slack_messages (channel_name, target, group_ref) VALUES ($1, $2, $3)")
        .bind("bot")
        .bind(CHANNEL_ID)
        .bind(&group_ref)
        .execute(s.pool())
        .await
        .unwrap();
    slack.history.lock().unwrap().extend([
        json!({"type": "message", "ts": "1765000000.000500", "text": "someone else"}),
        json!({"type": "message", "ts": "1765000000.000400", "text": "[FIRING] Lag",
               "metadata": {"event_type": "pipewatch_alert_group",
                            "event_payload": {"group": group_ref, "channel": "bot"}}}),
    ]);
    enqueue(&s, 1, &[("etl", Firing)]).await;
    drain(&s, &sender, Duration::from_secs(5)).await;
    let calls = slack.calls();
    let methods: Vec<&str> = calls.iter().map(|c| c.method.as_str()).collect();
    // Adopted: brought up to date, and no thread reply (the message is this notice).
    assert_eq!(methods, ["conversations.history", "chat.update"]);
    assert_eq!(calls[0].query["channel"], CHANNEL_ID);
    assert_eq!(calls[0].query["include_all_metadata"], "true");
    assert_eq!(calls[1].body["ts"], "1765000000.000400");
    let ts: Option<String> = sqlx::query_scalar("SELECT ts FROM slack_messages")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(ts.as_deref(), Some("1765000000.000400"));
    // The group's next notice edits the adopted message and replies in its thread.
    enqueue(&s, 2, &[("etl", Firing), ("dbt", Firing)]).await;
    drain(&s, &sender, Duration::from_secs(5)).await;
    let calls = slack.calls();
    assert_eq!(calls.len(), 4, "{calls:#?}");
    assert_eq!(calls[2].method, "chat.update");
    assert_eq!(calls[2].body["ts"], "1765000000.000400");
    assert_eq!(calls[3].body["thread_ts"], "1765000000.000400");
    assert!(slack.parents().is_empty(), "no second parent message");
}

#[tokio::test]
async fn a_post_whose_recording_failed_is_reused_by_the_retry_not_posted_twice() {
    use NotificationKind::Firing;
    let s = store().await;
    let (slack, api) = FakeSlack::start().await;
    let sender = Sender::new(
        s.clone(),
        &config(vec![("bot", slack_channel(&api, "#oncall"))]),
    )
    .unwrap();
    // The database refuses to record the message's ts (as if it went away right after the
    // post succeeded).
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_ts() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.ts IS NOT NULL THEN RAISE EXCEPTION 'injected failure'; END IF;
         RETURN NEW; END $$;
         CREATE TRIGGER refuse_ts BEFORE INSERT OR UPDATE ON slack_messages
         FOR EACH ROW EXECUTE FUNCTION refuse_ts();",
    )
    .execute(s.pool())
    .await
    .unwrap();
    enqueue(&s, 1, &[("etl", Firing)]).await;
    assert_eq!(sender.round().await.unwrap(), 1);
    let row = s.notification_statuses().await.unwrap()[0].clone();
    assert!(!row.delivered);
    assert!(
        row.last_error
            .as_deref()
            .unwrap()
            .contains("recording the group's Slack message"),
        "{row:?}"
    );
    assert_eq!(slack.parents().len(), 1);
    sqlx::raw_sql("DROP TRIGGER refuse_ts ON slack_messages")
        .execute(s.pool())
        .await
        .unwrap();
    drain(&s, &sender, Duration::from_secs(5)).await;
    let methods: Vec<String> = slack.calls().iter().map(|c| c.method.clone()).collect();
    assert_eq!(methods, ["chat.postMessage", "chat.update"]);
    assert_eq!(
        slack.parents().len(),
        1,
        "the retry reused the posted message"
    );
    let ts: Option<String> = sqlx::query_scalar("SELECT ts FROM slack_messages")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(ts.as_deref(), Some("1765000000.000001"));
}

#[tokio::test]
async fn a_deleted_group_message_is_replaced_by_a_new_one() {
    use NotificationKind::Firing;
    let s = store().await;
    let (slack, api) = FakeSlack::start().await;
    let sender = Sender::new(
        s.clone(),
        &config(vec![("bot", slack_channel(&api, "#oncall"))]),
    )
    .unwrap();
    enqueue(&s, 1, &[("etl", Firing)]).await;
    drain(&s, &sender, Duration::from_secs(5)).await;
    slack.fail_next("chat.update", Answer::OkFalse("message_not_found"));
    enqueue(&s, 2, &[("etl", Firing), ("dbt", Firing)]).await;
    drain(&s, &sender, Duration::from_secs(5)).await;
    let parents = slack.parents();
    assert_eq!(parents.len(), 2, "{:#?}", slack.calls());
    assert!(parents[1].body.to_string().contains("2 firing"));
    let ts: Option<String> = sqlx::query_scalar("SELECT ts FROM slack_messages")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(ts.as_deref(), Some("1765000000.000002"));
}

/// A local HTTP receiver for the Teams webhook.
#[derive(Clone, Default)]
struct Teams {
    got: Arc<Mutex<Vec<Value>>>,
}

async fn teams_hook(State(t): State<Teams>, Json(body): Json<Value>) -> StatusCode {
    t.got.lock().unwrap().push(body);
    StatusCode::ACCEPTED
}

#[tokio::test]
async fn teams_gets_an_adaptive_card() {
    let s = store().await;
    let t = Teams::default();
    let addr = serve(
        Router::new()
            .route("/teams", post(teams_hook))
            .with_state(t.clone()),
    )
    .await;
    let sender = Sender::new(
        s.clone(),
        &config(vec![(
            "teams",
            ChannelConfig::Teams(WebhookConfig {
                url: Some(format!("http://{addr}/teams")),
                url_env: None,
            }),
        )]),
    )
    .unwrap();
    let (kind, mut notice) = group_notice(&[("etl", NotificationKind::Firing)]);
    notice.labels.insert("job".into(), "etl".into());
    notice.explanation = "etl lags; value 42".into();
    notice.values = vec![(1_765_000_060_000, 42.0)];
    let mut tx = s.pool().begin().await.unwrap();
    notify::enqueue(&mut tx, &["teams"], "k#1", "k", kind, &notice)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    drain(&s, &sender, Duration::from_secs(5)).await;

    let got = t.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m["type"], "message");
    let a = &m["attachments"][0];
    assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
    let card = &a["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    let body = card["body"].as_array().unwrap();
    assert_eq!(body[0]["text"], "[FIRING] Lag (job=etl)");
    assert_eq!(body[0]["color"], "attention");
    assert_eq!(body[1]["text"], "Severity: critical");
    assert_eq!(body[2]["text"], "etl lags; value 42");
    assert!(body[3]["facts"]
        .as_array()
        .unwrap()
        .contains(&json!({"title": "job", "value": "etl"})));
    assert_eq!(
        body[4]["facts"][0],
        json!({"title": "2025-12-06 05:47:40 UTC", "value": "42"})
    );
    assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
    assert_eq!(card["actions"][0]["url"], "https://pw.example.com/alerts");
}

/// `pw_lag_seconds{job=...}` samples by remote_write.
async fn write_lag(base: &str, jobs: &[(&str, f64)]) {
    let t = model::clock::now_ms();
    let batch = model::Batch {
        series: jobs
            .iter()
            .map(|(job, v)| model::TimeSeries {
                key: model::SeriesKey::new(
                    "pw_lag_seconds",
                    model::Labels::from_pairs([("job", *job)]),
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

async fn wait_for(what: &str, timeout: Duration, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The whole path: a rule fires for one job, a second job joins the group, both resolve; the
/// engine groups and enqueues, the sender edits one Slack message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_keeps_one_slack_message_per_group_from_first_firing_to_resolve() {
    let url = store::testing::fresh_database_url().await;
    let (slack, api) = FakeSlack::start().await;
    std::env::set_var(TOKEN_ENV, TOKEN);
    let dir = std::env::temp_dir().join(format!("pw-notify-slack-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("rules.yml"),
        "groups:\n- name: etl\n  rules:\n  - alert: HighLag\n    expr: pw_lag_seconds > 10\n    \
         annotations:\n      summary: '{{ $labels.job }} lags'\n",
    )
    .unwrap();
    let mut cfg = server::config::Config::from_toml_str(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{d}\"\n[database]\nurl = \"{url}\"\n\
         [auth]\nanonymous_role = \"admin\"\n[ingest]\nflush_interval = \"50ms\"\n\
         [notifications]\npoll_interval = \"100ms\"\n\
         [notifications.channels.bot]\ntype = \"slack\"\ntoken_env = \"{TOKEN_ENV}\"\n\
         channel = \"#oncall\"\napi_url = \"{api}\"\n\
         [alerting]\nevaluation_interval = \"1s\"\ngroup_wait = \"1s\"\ngroup_interval = \"2s\"\n\
         channels = [\"bot\"]\n",
        d = dir.display()
    ))
    .unwrap();
    cfg.alerting.rule_files = vec![dir.join("rules.yml").display().to_string()];
    let server = server::run::RunningServer::start(cfg, Default::default())
        .await
        .unwrap();
    let base = format!("http://{}", server.addr);

    write_lag(&base, &[("orders", 50.0)]).await;
    wait_for("the parent message", Duration::from_secs(30), || {
        !slack.parents().is_empty()
    })
    .await;
    write_lag(&base, &[("orders", 50.0), ("billing", 60.0)]).await;
    wait_for("the update for billing", Duration::from_secs(30), || {
        slack.calls().iter().any(|c| c.method == "chat.update")
    })
    .await;
    write_lag(&base, &[("orders", 1.0), ("billing", 1.0)]).await;
    wait_for("the resolve", Duration::from_secs(30), || {
        slack
            .calls()
            .iter()
            .any(|c| c.method == "chat.update" && c.body.to_string().contains("[RESOLVED]"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let calls = slack.calls();
    let parents = slack.parents();
    assert_eq!(parents.len(), 1, "{calls:#?}");
    let ts = "1765000000.000001";
    let later: Vec<&Call> = calls.iter().skip(1).collect();
    assert!(!later.is_empty());
    for c in &later {
        match c.method.as_str() {
            "chat.update" => assert_eq!(c.body["ts"], ts),
            "chat.postMessage" => assert_eq!(c.body["thread_ts"], ts),
            other => panic!("unexpected {other}"),
        }
    }
    let replies: Vec<String> = later
        .iter()
        .filter(|c| c.method == "chat.postMessage")
        .map(|c| c.body["text"].as_str().unwrap().to_string())
        .collect();
    assert!(
        replies
            .iter()
            .any(|r| r.contains("Fired: {job=\"billing\"} billing lags")),
        "{replies:#?}"
    );
    assert!(
        replies
            .last()
            .unwrap()
            .ends_with("All 2 alerts of the group resolved."),
        "{replies:#?}"
    );
    server.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
