//! Slack bot-token mode: one Block Kit message per notification group and channel, posted with
//! `chat.postMessage` on the group's first notice and **edited in place** with `chat.update` on
//! every later one (firing and resolved counts, colour and emoji by state), each change also
//! told as a short reply in the message's thread. This is what Alertmanager's and Grafana's
//! Slack integrations do not do (they post a new message per notification).
//!
//! What a group's message shows is kept in `slack_messages` (`migrations/0091_slack_messages.sql`):
//! Slack's channel ID and `ts` of the message, and the alerts it lists with their state, so the
//! next notice can say what changed.
//!
//! Slack answers errors with HTTP 200 and `{"ok": false, "error": "..."}`: those are failed
//! attempts with the error name in `last_error`, retried by the outbox's back-off; HTTP 429
//! (or `ratelimited`) waits at least the `Retry-After` Slack sends.
//!
//! **Idempotency of the first message.** Slack has no idempotency key for `chat.postMessage`.
//! If the post succeeds and recording its `ts` fails (the database went away, the process
//! died), the outbox retries the notice and a plain retry would post a second parent message.
//! So: (1) an *intent* row (no `ts`) is written before the post; (2) the post carries message
//! metadata naming the group (`event_type` `pipewatch_alert_group`); (3) the answer's `ts` is
//! kept in memory until it is recorded, so a retry by the same process reuses it; (4) a retry
//! that finds an intent row without a `ts` and nothing in memory (another instance, or after a
//! restart) reads the channel's history since the intent (`conversations.history` with
//! `include_all_metadata`, scope `channels:history` or `groups:history`) for a message with the
//! group's metadata and adopts it. Only when that lookup is impossible (the channel is given as
//! `#name` and its ID was never learnt, or the token lacks the history scope) does it post
//! again, and a second parent message is possible; that is logged.
//!
//! Notices of one group go out one at a time and in order whatever the number of senders
//! (`Store::claim_notifications` holds back a group's later rows until the earlier one is
//! delivered), so two senders never race to post one group's first message.
//!
//! Thread replies are at-least-once like every other notice: a reply that went out before its
//! snapshot was recorded is sent again on retry.

use super::{group_ref, Channel, Delivery, Failure, NoticeAlert};
use crate::config::SlackConfig;
use anyhow::Result;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;
use store::outbox::NotificationKind;
use store::Store;
use tracing::warn;

/// The metadata event type that marks pipewatch's group messages.
pub const EVENT_TYPE: &str = "pipewatch_alert_group";

/// How far before the intent row's time the history lookup starts (clock skew between the
/// database and Slack).
const HISTORY_SLACK_S: i64 = 120;

pub struct SlackChannel {
    http: reqwest::Client,
    store: Store,
    /// The pipewatch channel's name.
    name: String,
    token: String,
    /// The channel as configured (`#oncall` or an ID).
    target: String,
    /// Ends with `/`.
    api_url: String,
    /// Parent messages posted whose `ts` is not recorded yet: `group_ref -> (channel, ts)`.
    posted: Mutex<HashMap<String, (String, String)>>,
}

/// The state of one alert as the group's message shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shown {
    pub status: NotificationKind,
    pub title: String,
}

/// What `slack_messages` holds for a group.
struct Stored {
    slack_channel: Option<String>,
    ts: Option<String>,
    alerts: BTreeMap<String, Shown>,
    posting_since_s: i64,
}

impl SlackChannel {
    pub fn new(
        http: reqwest::Client,
        store: Store,
        name: &str,
        cfg: &SlackConfig,
        key: &str,
    ) -> Result<SlackChannel> {
        Ok(SlackChannel {
            http,
            store,
            name: name.to_string(),
            token: cfg.resolve_token(key)?,
            target: cfg.channel.clone(),
            api_url: cfg.api_url.clone(),
            posted: Mutex::new(HashMap::new()),
        })
    }

    /// Calls a Web API method with a JSON body; `ok: false` and non-2xx answers are failures.
    async fn call(&self, method: &str, body: &Value) -> Result<Value, Failure> {
        let req = self
            .http
            .post(format!("{}{method}", self.api_url))
            .bearer_auth(&self.token)
            .json(body);
        self.answer(method, req).await
    }

    async fn answer(&self, method: &str, req: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let resp = req
            .send()
            .await
            .map_err(|e| Failure::from(format!("Slack {method}: {}", e.without_url())))?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = resp.text().await.unwrap_or_default();
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(Failure {
                message: format!(
                    "Slack {method}: ratelimited (HTTP 429, Retry-After {})",
                    retry_after.map_or("not given".into(), |d| format!("{}s", d.as_secs()))
                ),
                retry_after,
            });
        }
        if !status.is_success() {
            let snippet: String = text.chars().take(200).collect();
            return Err(Failure::from(format!(
                "Slack {method} answered HTTP {status}: {snippet}"
            )));
        }
        let v: Value = serde_json::from_str(&text).map_err(|e| {
            Failure::from(format!("Slack {method} answered something not JSON: {e}"))
        })?;
        if v["ok"] != Value::Bool(true) {
            let error = v["error"].as_str().unwrap_or("no error given");
            return Err(Failure {
                message: format!("Slack {method}: ok:false, error {error}"),
                retry_after: (error == "ratelimited").then_some(retry_after).flatten(),
            });
        }
        Ok(v)
    }

    async fn load(&self, group: &str) -> Result<Option<Stored>, Failure> {
        let row: Option<(Option<String>, Option<String>, Value, i64)> = sqlx::query_as(
            "SELECT slack_channel, ts, alerts, extract(epoch FROM posting_since)::bigint
             FROM slack_messages WHERE channel_name = $1 AND target = $2 AND group_ref = $3",
        )
        .bind(&self.name)
        .bind(&self.target)
        .bind(group)
        .fetch_optional(self.store.pool())
        .await
        .map_err(|e| db_failure("reading the group's Slack message", e))?;
        Ok(row.map(|(slack_channel, ts, alerts, since)| Stored {
            slack_channel,
            ts,
            alerts: serde_json::from_value(alerts).unwrap_or_default(),
            posting_since_s: since,
        }))
    }

    /// Records what the message shows now (and its `ts`, the first time).
    async fn save(
        &self,
        group: &str,
        slack_channel: &str,
        ts: &str,
        alerts: &BTreeMap<String, Shown>,
    ) -> Result<(), Failure> {
        sqlx::query(
            "INSERT INTO slack_messages (channel_name, target, group_ref, slack_channel, ts, alerts)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (channel_name, target, group_ref) DO UPDATE
             SET slack_channel = $4, ts = $5, alerts = $6, updated_at = now()",
        )
        .bind(&self.name)
        .bind(&self.target)
        .bind(group)
        .bind(slack_channel)
        .bind(ts)
        .bind(serde_json::to_value(alerts).expect("plain data"))
        .execute(self.store.pool())
        .await
        .map_err(|e| db_failure("recording the group's Slack message", e))?;
        Ok(())
    }

    /// The channel ID to read history in: the configured one if it is an ID, else one Slack
    /// answered for this target before.
    async fn channel_id(&self) -> Option<String> {
        if !self.target.starts_with('#') {
            return Some(self.target.clone());
        }
        sqlx::query_scalar(
            "SELECT slack_channel FROM slack_messages
             WHERE target = $1 AND slack_channel IS NOT NULL LIMIT 1",
        )
        .bind(&self.target)
        .fetch_optional(self.store.pool())
        .await
        .ok()
        .flatten()
    }

    /// Looks for the group's parent message an earlier attempt may have posted.
    async fn find_posted(&self, group: &str, since_s: i64) -> Option<(String, String)> {
        let channel = self.channel_id().await?;
        let req = self
            .http
            .get(format!("{}conversations.history", self.api_url))
            .bearer_auth(&self.token)
            .query(&[
                ("channel", channel.as_str()),
                ("oldest", &(since_s - HISTORY_SLACK_S).to_string()),
                ("include_all_metadata", "true"),
                ("limit", "200"),
            ]);
        let v = match self.answer("conversations.history", req).await {
            Ok(v) => v,
            Err(f) => {
                warn!(channel = %self.name, error = %f.message,
                      "cannot look for an earlier Slack message of this group; posting again may duplicate it");
                return None;
            }
        };
        v["messages"].as_array()?.iter().find_map(|m| {
            let md = &m["metadata"];
            (md["event_type"] == EVENT_TYPE
                && md["event_payload"]["group"] == group
                && md["event_payload"]["channel"] == self.name.as_str())
            .then(|| m["ts"].as_str().map(|ts| (channel.clone(), ts.to_string())))
            .flatten()
        })
    }

    async fn write_intent(&self, group: &str) -> Result<(), Failure> {
        sqlx::query(
            "INSERT INTO slack_messages (channel_name, target, group_ref)
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(&self.name)
        .bind(&self.target)
        .bind(group)
        .execute(self.store.pool())
        .await
        .map_err(|e| db_failure("recording the intent to post a Slack message", e))?;
        Ok(())
    }

    async fn post_parent(
        &self,
        d: &Delivery,
        group: &str,
        alerts: &BTreeMap<String, Shown>,
    ) -> Result<(String, String), Failure> {
        let mut body = message(d, alerts);
        body["channel"] = json!(self.target);
        body["metadata"] = json!({
            "event_type": EVENT_TYPE,
            "event_payload": {"group": group, "channel": self.name},
        });
        let v = self.call("chat.postMessage", &body).await?;
        match (v["channel"].as_str(), v["ts"].as_str()) {
            (Some(c), Some(ts)) => Ok((c.to_string(), ts.to_string())),
            _ => Err(Failure::from(
                "Slack chat.postMessage answered ok without channel and ts".to_string(),
            )),
        }
    }
}

#[async_trait::async_trait]
impl Channel for SlackChannel {
    async fn send(&self, d: &Delivery) -> Result<(), String> {
        self.deliver(d).await.map_err(|f| f.message)
    }

    async fn deliver(&self, d: &Delivery) -> Result<(), Failure> {
        let group = group_ref(d);
        let stored = self.load(&group).await?;
        let before = stored
            .as_ref()
            .map(|s| s.alerts.clone())
            .unwrap_or_default();
        let after = merge(&before, &d.notice.alerts);
        let remembered = self
            .posted
            .lock()
            .expect("not poisoned")
            .get(&group)
            .cloned();
        // Only the group's first notice can find a message not yet recorded (notices of one
        // group are delivered one at a time, in order): adopting it finishes that notice, so
        // the message is brought up to date and no thread reply is due.
        let recorded = stored.as_ref().is_some_and(|s| s.ts.is_some());
        let existing = match (&stored, remembered) {
            (
                Some(Stored {
                    slack_channel: Some(c),
                    ts: Some(ts),
                    ..
                }),
                _,
            ) => Some((c.clone(), ts.clone())),
            (_, Some(posted)) => Some(posted),
            (Some(s), None) => self.find_posted(&group, s.posting_since_s).await,
            (None, None) => None,
        };
        let Some((channel, ts)) = existing else {
            // The group's first message.
            self.write_intent(&group).await?;
            let (channel, ts) = self.post_parent(d, &group, &after).await?;
            self.posted
                .lock()
                .expect("not poisoned")
                .insert(group.clone(), (channel.clone(), ts.clone()));
            self.save(&group, &channel, &ts, &after).await?;
            self.posted.lock().expect("not poisoned").remove(&group);
            return Ok(());
        };
        let mut body = message(d, &after);
        body["channel"] = json!(channel);
        body["ts"] = json!(ts);
        match self.call("chat.update", &body).await {
            Ok(_) => {}
            // Someone deleted the message: start a new one rather than fail the group's
            // notices for good.
            Err(f) if f.message.ends_with("error message_not_found") => {
                warn!(channel = %self.name, group = %group, "the group's Slack message is gone; posting a new one");
                let (channel, ts) = self.post_parent(d, &group, &after).await?;
                self.save(&group, &channel, &ts, &after).await?;
                return Ok(());
            }
            Err(f) => return Err(f),
        }
        if recorded {
            let reply = thread_reply(&before, &d.notice.alerts, &after, d.kind);
            self.call(
                "chat.postMessage",
                &json!({"channel": channel, "thread_ts": ts, "text": reply}),
            )
            .await?;
        }
        self.save(&group, &channel, &ts, &after).await?;
        self.posted.lock().expect("not poisoned").remove(&group);
        Ok(())
    }
}

fn db_failure(what: &str, e: sqlx::Error) -> Failure {
    Failure::from(format!("{what}: {e}"))
}

/// The group's alerts after a notice: earlier ones keep their last state, the notice's take
/// theirs.
pub fn merge(before: &BTreeMap<String, Shown>, notice: &[NoticeAlert]) -> BTreeMap<String, Shown> {
    let mut out = before.clone();
    for a in notice {
        out.insert(
            a.id.clone(),
            Shown {
                status: a.status,
                title: a.title.clone(),
            },
        );
    }
    out
}

/// Counts of firing and resolved alerts in a group's message.
fn counts(alerts: &BTreeMap<String, Shown>) -> (usize, usize) {
    let firing = alerts
        .values()
        .filter(|a| a.status == NotificationKind::Firing)
        .count();
    (firing, alerts.len() - firing)
}

/// The group's message: a coloured attachment holding the blocks (Slack shows an attachment's
/// colour as a bar beside it), with `text` as the notification fallback.
pub fn message(d: &Delivery, alerts: &BTreeMap<String, Shown>) -> Value {
    let n = &d.notice;
    let (firing, resolved) = counts(alerts);
    let all_resolved = d.kind == NotificationKind::Resolved && firing == 0;
    let (emoji, state, colour) = if all_resolved {
        (":large_green_circle:", "RESOLVED", "#2EB67D")
    } else if n.severity == "warning" {
        (":large_orange_circle:", "FIRING", "#ECB22E")
    } else {
        (":red_circle:", "FIRING", "#E01E5A")
    };
    let mut heading = format!("{emoji} [{state}] {}", n.alert);
    let labels: Vec<String> = n
        .labels
        .iter()
        .filter(|(k, _)| k.as_str() != "alertname")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !labels.is_empty() {
        heading.push_str(&format!(" ({})", labels.join(", ")));
    }
    let tally = format!("{firing} firing · {resolved} resolved");
    // Slack allows header text of 150 characters at most.
    let header: String = heading.chars().take(150).collect();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": header, "emoji": true}}),
    ];
    let mut summary = format!("*{}*", super::webhook::slack_escape(&tally));
    if !n.severity.is_empty() {
        summary.push_str(&format!(
            " · severity *{}*",
            super::webhook::slack_escape(&n.severity)
        ));
    }
    blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": summary}}));
    if alerts.is_empty() {
        if !n.explanation.is_empty() {
            blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
                "text": super::webhook::slack_escape(&n.explanation)}}));
        }
    } else {
        let mut lines: Vec<String> = alerts
            .values()
            .map(|a| {
                let mark = match a.status {
                    NotificationKind::Firing => ":red_circle:",
                    NotificationKind::Resolved => ":white_check_mark:",
                };
                format!("{mark} {}", super::webhook::slack_escape(&a.title))
            })
            .collect();
        // A section's text holds at most 3000 characters.
        let mut text = String::new();
        let total = lines.len();
        for (i, l) in lines.drain(..).enumerate() {
            if text.len() + l.len() + 40 > 3000 {
                text.push_str(&format!("… and {} more", total - i));
                break;
            }
            text.push_str(&l);
            text.push('\n');
        }
        blocks
            .push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text.trim_end()}}));
    }
    let fields: Vec<Value> = n
        .labels
        .iter()
        .take(10)
        .map(|(k, v)| {
            json!({"type": "mrkdwn", "text": format!("*{}*\n{}",
                super::webhook::slack_escape(k), super::webhook::slack_escape(v))})
        })
        .collect();
    if !fields.is_empty() {
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    let mut context = format!("Started {}", super::rfc3339(n.starts_at_ms));
    if let (true, Some(end)) = (all_resolved, n.ends_at_ms) {
        context.push_str(&format!(" · resolved {}", super::rfc3339(end)));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}));
    if let Some(link) = &d.link {
        blocks.push(json!({
            "type": "actions",
            "elements": [{
                "type": "button",
                "text": {"type": "plain_text", "text": "Open in pipewatch"},
                "url": link,
            }],
        }));
    }
    json!({
        "text": format!("[{state}] {} — {tally}", n.alert),
        "attachments": [{"color": colour, "blocks": blocks}],
    })
}

/// The thread reply saying what a notice changed: alerts that started firing, alerts that
/// resolved, or, when nothing changed, that the group still fires (a repeat notice).
pub fn thread_reply(
    before: &BTreeMap<String, Shown>,
    notice: &[NoticeAlert],
    after: &BTreeMap<String, Shown>,
    kind: NotificationKind,
) -> String {
    let mut lines = Vec::new();
    for a in notice {
        let was = before.get(&a.id).map(|s| s.status);
        let title = super::webhook::slack_escape(&a.title);
        match a.status {
            NotificationKind::Firing if was != Some(NotificationKind::Firing) => {
                lines.push(format!(":red_circle: Fired: {title}"));
            }
            NotificationKind::Resolved if was != Some(NotificationKind::Resolved) => {
                lines.push(format!(":white_check_mark: Resolved: {title}"));
            }
            _ => {}
        }
    }
    let (firing, resolved) = counts(after);
    if lines.is_empty() {
        lines.push(format!(
            ":repeat: Still firing: {firing} alert{} (repeat notice)",
            if firing == 1 { "" } else { "s" }
        ));
    } else if kind == NotificationKind::Resolved && firing == 0 {
        lines.push(format!(
            ":large_green_circle: All {resolved} alert{} of the group resolved.",
            if resolved == 1 { "" } else { "s" }
        ));
    } else {
        lines.push(format!("Now {firing} firing · {resolved} resolved."));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn na(id: &str, status: NotificationKind) -> NoticeAlert {
        NoticeAlert {
            id: id.into(),
            status,
            title: format!("{{job=\"{id}\"}} lags"),
        }
    }

    #[test]
    fn the_thread_reply_says_what_changed() {
        use NotificationKind::{Firing, Resolved};
        let first = [na("a", Firing)];
        let s1 = merge(&BTreeMap::new(), &first);
        let second = [na("a", Firing), na("b", Firing)];
        let s2 = merge(&s1, &second);
        assert_eq!(
            thread_reply(&s1, &second, &s2, Firing),
            ":red_circle: Fired: {job=\"b\"} lags\nNow 2 firing · 0 resolved."
        );
        // Repeat notice: nothing new.
        assert_eq!(
            thread_reply(&s2, &second, &s2, Firing),
            ":repeat: Still firing: 2 alerts (repeat notice)"
        );
        let third = [na("a", Resolved), na("b", Resolved)];
        let s3 = merge(&s2, &third);
        assert_eq!(
            thread_reply(&s2, &third, &s3, Resolved),
            ":white_check_mark: Resolved: {job=\"a\"} lags\n\
             :white_check_mark: Resolved: {job=\"b\"} lags\n\
             :large_green_circle: All 2 alerts of the group resolved."
        );
        assert_eq!(counts(&s3), (0, 2));
    }
}
