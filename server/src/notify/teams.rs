//! Microsoft Teams notifications: the body of an incoming-webhook POST carrying an Adaptive
//! Card (the format both Teams' Office 365 connector webhooks and its Workflows webhooks take).
//! Delivery itself is [`super::webhook::WebhookChannel`]'s: any 2xx answer is delivered.

use super::{rfc3339, title, Delivery};
use serde_json::{json, Value};
use store::outbox::NotificationKind;

/// The `message` with one Adaptive Card: a coloured title, the explanation, the labels as a
/// fact set, the recent values, when it started (and resolved), and a button to the alert.
pub fn teams_body(d: &Delivery) -> Value {
    let n = &d.notice;
    // Adaptive Card text colours: `attention` is red, `good` green.
    let colour = match d.kind {
        NotificationKind::Firing => "attention",
        NotificationKind::Resolved => "good",
    };
    let mut body = vec![json!({
        "type": "TextBlock",
        "text": title(d),
        "weight": "bolder",
        "size": "medium",
        "color": colour,
        "wrap": true,
    })];
    if !n.severity.is_empty() {
        body.push(json!({
            "type": "TextBlock",
            "text": format!("Severity: {}", n.severity),
            "isSubtle": true,
            "spacing": "none",
        }));
    }
    if !n.explanation.is_empty() {
        body.push(json!({"type": "TextBlock", "text": n.explanation, "wrap": true}));
    }
    if !n.labels.is_empty() {
        let facts: Vec<Value> = n
            .labels
            .iter()
            .map(|(k, v)| json!({"title": k, "value": v}))
            .collect();
        body.push(json!({"type": "FactSet", "facts": facts}));
    }
    if !n.values.is_empty() {
        let facts: Vec<Value> = n
            .values
            .iter()
            .map(|(ts, v)| json!({"title": rfc3339(*ts), "value": v.to_string()}))
            .collect();
        body.push(json!({"type": "FactSet", "facts": facts, "separator": true}));
    }
    let mut when = format!("Started {}", rfc3339(n.starts_at_ms));
    if let Some(end) = n.ends_at_ms {
        when.push_str(&format!(" · resolved {}", rfc3339(end)));
    }
    body.push(json!({"type": "TextBlock", "text": when, "isSubtle": true, "wrap": true}));
    let actions: Vec<Value> = d
        .link
        .iter()
        .map(|l| json!({"type": "Action.OpenUrl", "title": "Open in pipewatch", "url": l}))
        .collect();
    json!({
        "type": "message",
        // Teams' notification preview.
        "summary": title(d),
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "msteams": {"width": "Full"},
                "body": body,
                "actions": actions,
            },
        }],
    })
}
