//! Webhook notifications over HTTP POST: a generic JSON document (pipewatch's own, versioned
//! form), a Slack incoming-webhook message in Block Kit, or a Microsoft Teams Adaptive Card
//! ([`super::teams`]). A non-2xx answer is a failure, with
//! the status and the start of the body in `last_error`.

use super::{rfc3339, title, Channel, Delivery};
use serde_json::{json, Value};
use store::outbox::NotificationKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Slack,
    Teams,
}

pub struct WebhookChannel {
    http: reqwest::Client,
    url: String,
    format: Format,
}

impl WebhookChannel {
    pub fn new(http: reqwest::Client, url: String, format: Format) -> WebhookChannel {
        WebhookChannel { http, url, format }
    }
}

#[async_trait::async_trait]
impl Channel for WebhookChannel {
    async fn send(&self, d: &Delivery) -> Result<(), String> {
        let body = match self.format {
            Format::Json => json_body(d),
            Format::Slack => slack_body(d),
            Format::Teams => super::teams::teams_body(d),
        };
        let resp = self
            .http
            .post(&self.url)
            // Lets a receiver drop repeats of at-least-once delivery without parsing the body.
            .header("Idempotency-Key", &d.dedup_key)
            .json(&body)
            .send()
            .await
            // Without the URL: a Slack webhook URL is a secret.
            .map_err(|e| format!("webhook POST failed: {}", e.without_url()))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let text = resp.text().await.unwrap_or_default();
        let snippet: String = text.chars().take(200).collect();
        Err(format!("webhook answered {status}: {snippet}"))
    }
}

/// The generic JSON document (`version` 1).
pub fn json_body(d: &Delivery) -> Value {
    let n = &d.notice;
    json!({
        "version": "1",
        "status": d.kind.as_str(),
        "dedup_key": d.dedup_key,
        "group_key": d.group_key,
        "channel": d.channel,
        "alert": n.alert,
        "labels": n.labels,
        "severity": n.severity,
        "explanation": n.explanation,
        "link": d.link,
        "starts_at": rfc3339(n.starts_at_ms),
        "starts_at_ms": n.starts_at_ms,
        "ends_at_ms": n.ends_at_ms,
        "values": n.values,
    })
}

/// A Slack message: a header, the explanation, the labels as fields, the values and a button
/// to the alert. `text` is the fallback shown in notifications.
pub fn slack_body(d: &Delivery) -> Value {
    let n = &d.notice;
    let emoji = match d.kind {
        NotificationKind::Firing => ":red_circle:",
        NotificationKind::Resolved => ":large_green_circle:",
    };
    let heading = title(d);
    // Slack allows header text of 150 characters at most.
    let header: String = heading.chars().take(150).collect();
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": header},
    })];
    let mut summary = format!("{emoji} *{}*", slack_escape(&n.alert));
    if !n.severity.is_empty() {
        summary.push_str(&format!(" · severity *{}*", slack_escape(&n.severity)));
    }
    if !n.explanation.is_empty() {
        summary.push('\n');
        summary.push_str(&slack_escape(&n.explanation));
    }
    blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": summary}}));
    // Slack allows at most 10 fields in a section.
    let fields: Vec<Value> = n
        .labels
        .iter()
        .take(10)
        .map(|(k, v)| {
            json!({"type": "mrkdwn", "text": format!("*{}*\n{}", slack_escape(k), slack_escape(v))})
        })
        .collect();
    if !fields.is_empty() {
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    if !n.values.is_empty() {
        let lines: Vec<String> = n
            .values
            .iter()
            .map(|(ts, v)| format!("{}  {v}", rfc3339(*ts)))
            .collect();
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": format!("```{}```", lines.join("\n"))},
        }));
    }
    let mut context = format!("Started {}", rfc3339(n.starts_at_ms));
    if let Some(end) = n.ends_at_ms {
        context.push_str(&format!(" · resolved {}", rfc3339(end)));
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
    json!({"text": heading, "blocks": blocks})
}

/// Slack's mrkdwn needs `&`, `<` and `>` escaped; everything else is literal.
pub(crate) fn slack_escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
