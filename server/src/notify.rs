//! The notification sender: claims due rows of the outbox (`store::outbox`) and delivers each
//! to its channel (email over SMTP, a generic JSON webhook, a Slack incoming webhook, a Slack
//! bot that edits one message per alert group, a Microsoft Teams incoming webhook), recording
//! every attempt and backing off exponentially after failures (or as long as the receiver's
//! `Retry-After` asks, when that is longer).
//!
//! The alerting engine writes an [`AlertNotice`] per channel into the outbox in the same
//! transaction as the alert transition ([`enqueue`]); this module never decides *whether* to
//! notify, only delivers what is there. Any number of pipewatch instances may run a sender on
//! one database: claims use `FOR UPDATE SKIP LOCKED`, so each row goes to one sender, and a
//! claim expires after `notifications.claim_lease`, so a dead sender's rows go to another.

pub mod email;
pub mod slack;
pub mod teams;
pub mod webhook;

use crate::config::{ChannelConfig, NotificationsConfig};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use store::outbox::{Backoff, ClaimedNotification, NewNotification, NotificationKind};
use store::Store;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// What a notification says: the payload stored in the outbox and rendered by every channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertNotice {
    /// The alert (rule) name, `alertname` in Prometheus terms.
    pub alert: String,
    pub labels: BTreeMap<String, String>,
    /// `critical`, `warning`, ... (empty when the rule sets none).
    #[serde(default)]
    pub severity: String,
    /// Why it fired (or resolved), in a sentence or two.
    #[serde(default)]
    pub explanation: String,
    /// The alert's page (absolute, or a path joined to `notifications.public_url`).
    #[serde(default)]
    pub link: Option<String>,
    /// When it started firing, Unix milliseconds.
    pub starts_at_ms: i64,
    /// When it resolved (resolved notices only).
    #[serde(default)]
    pub ends_at_ms: Option<i64>,
    /// Recent values of the alerting expression, `(ms, value)`, shown as a small table.
    #[serde(default)]
    pub values: Vec<(i64, f64)>,
    /// Each alert the notice is about, so a channel that keeps one message per group (Slack
    /// bot mode) can tell what changed since its last notice. Empty in payloads stored before
    /// this field existed.
    #[serde(default)]
    pub alerts: Vec<NoticeAlert>,
}

/// One alert of a notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeAlert {
    /// `<fingerprint>#<episode>`: stable for one firing episode of one alert.
    pub id: String,
    /// `firing` or `resolved`.
    pub status: NotificationKind,
    /// The alert in a line: the labels it does not share with the group, and its summary.
    pub title: String,
}

/// A notification being delivered: the outbox row with its payload read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: i64,
    pub channel: String,
    pub dedup_key: String,
    pub group_key: String,
    pub kind: NotificationKind,
    pub notice: AlertNotice,
    /// The link made absolute, if there is one.
    pub link: Option<String>,
}

/// Adds `notice` for every channel in `channels` to the outbox, in the caller's transaction.
/// `dedup_key` identifies the transition (the same transition enqueued twice is stored once
/// per channel); `group_key` the alert, so its notices go out in order. Returns how many rows
/// were new.
pub async fn enqueue(
    conn: &mut sqlx::PgConnection,
    channels: &[&str],
    dedup_key: &str,
    group_key: &str,
    kind: NotificationKind,
    notice: &AlertNotice,
) -> Result<usize, store::StoreError> {
    let payload = serde_json::to_value(notice).expect("an AlertNotice is plain data");
    let mut added = 0;
    for ch in channels {
        let n = NewNotification {
            channel: (*ch).to_string(),
            dedup_key: dedup_key.to_string(),
            group_key: group_key.to_string(),
            kind,
            payload: payload.clone(),
        };
        added += usize::from(store::outbox::enqueue(conn, &n).await?);
    }
    Ok(added)
}

/// A failed delivery: what went wrong (for `last_error`) and, when the receiver said so (HTTP
/// 429 or Slack's `ratelimited` with `Retry-After`), how long to wait at least before the next
/// attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub retry_after: Option<Duration>,
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure {
            message,
            retry_after: None,
        }
    }
}

/// A way of delivering notifications.
#[async_trait::async_trait]
pub trait Channel: Send + Sync {
    /// Delivers one notification; the error says what went wrong, for `last_error`.
    async fn send(&self, d: &Delivery) -> Result<(), String>;

    /// [`Channel::send`] with a wait the receiver asked for; channels that can be told to slow
    /// down (Slack) override this one.
    async fn deliver(&self, d: &Delivery) -> Result<(), Failure> {
        self.send(d).await.map_err(Failure::from)
    }
}

/// The group a notice belongs to, for channels that keep one message per group: the
/// engine's dedup keys are `<group key>@<group created ms>#<seq>`, and every notice of one
/// group's life shares what is before `#`. A notice enqueued any other way (a test message)
/// is a group of its own.
pub fn group_ref(d: &Delivery) -> String {
    match d.dedup_key.rsplit_once('#') {
        Some((head, seq))
            if head.starts_with(&d.group_key)
                && head[d.group_key.len()..].starts_with('@')
                && !seq.is_empty()
                && seq.bytes().all(|b| b.is_ascii_digit()) =>
        {
            head.to_string()
        }
        _ => d.dedup_key.clone(),
    }
}

/// The configured channels, built once at start (secrets read from the environment then, so a
/// missing one stops the start instead of failing every delivery). `store` keeps what a
/// channel remembers between notices (the Slack message of each group).
pub fn build_channels(
    cfg: &NotificationsConfig,
    store: &Store,
) -> Result<BTreeMap<String, Arc<dyn Channel>>> {
    let http = reqwest::Client::builder()
        .timeout(cfg.send_timeout)
        .build()
        .context("building the webhook HTTP client")?;
    let mut out: BTreeMap<String, Arc<dyn Channel>> = BTreeMap::new();
    for (name, ch) in &cfg.channels {
        let key = format!("notifications.channels.{name}");
        let built: Arc<dyn Channel> = match ch {
            ChannelConfig::Email(e) => {
                Arc::new(email::EmailChannel::new(e, cfg.send_timeout, &key)?)
            }
            ChannelConfig::Webhook(w) => Arc::new(webhook::WebhookChannel::new(
                http.clone(),
                w.resolve_url(&key)?,
                webhook::Format::Json,
            )),
            ChannelConfig::SlackWebhook(w) => Arc::new(webhook::WebhookChannel::new(
                http.clone(),
                w.resolve_url(&key)?,
                webhook::Format::Slack,
            )),
            ChannelConfig::Slack(s) => Arc::new(slack::SlackChannel::new(
                http.clone(),
                store.clone(),
                name,
                s,
                &key,
            )?),
            ChannelConfig::Teams(w) => Arc::new(webhook::WebhookChannel::new(
                http.clone(),
                w.resolve_url(&key)?,
                webhook::Format::Teams,
            )),
        };
        out.insert(name.clone(), built);
    }
    Ok(out)
}

/// Claims and delivers until `stop` is cancelled.
pub struct Sender {
    store: Store,
    channels: BTreeMap<String, Arc<dyn Channel>>,
    cfg: NotificationsConfig,
}

impl Sender {
    pub fn new(store: Store, cfg: &NotificationsConfig) -> Result<Sender> {
        let channels = build_channels(cfg, &store)?;
        Ok(Sender {
            store,
            channels,
            cfg: cfg.clone(),
        })
    }

    /// Adds a channel built outside `[notifications.channels]`: person-addressed mail
    /// (`crate::oncall::PersonMail`) takes every row whose channel starts with `mailto:`.
    pub fn with_channel(mut self, name: &str, channel: Arc<dyn Channel>) -> Sender {
        self.channels.insert(name.to_string(), channel);
        self
    }

    /// Runs the sender in a task of its own.
    pub fn spawn(self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run(stop))
    }

    pub async fn run(self, stop: CancellationToken) {
        loop {
            let sent = match self.round().await {
                Ok(n) => n,
                Err(e) => {
                    warn!(error = %e, "notification sender: cannot read the outbox");
                    0
                }
            };
            // A full batch suggests more are due: go again at once.
            if sent < self.cfg.batch_size as usize {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(self.cfg.poll_interval) => {}
                }
            } else if stop.is_cancelled() {
                return;
            }
        }
    }

    /// One claim-and-deliver round; returns how many rows were claimed.
    pub async fn round(&self) -> Result<usize, store::StoreError> {
        let claimed = self
            .store
            .claim_notifications(self.cfg.batch_size, self.cfg.claim_lease)
            .await?;
        let backoff = Backoff {
            base: self.cfg.retry_base,
            cap: self.cfg.retry_cap,
        };
        // A claim holds at most one row per alert and channel (see `claim_notifications`),
        // so delivering them one after another keeps every alert's notices in order.
        for row in &claimed {
            let outcome = self.deliver(row).await;
            match outcome {
                Ok(()) => {
                    debug!(id = row.id, channel = %row.channel, "notification delivered");
                    self.store.mark_notification_delivered(row.id).await?;
                }
                Err(Failure {
                    message: e,
                    retry_after,
                }) => {
                    let backoff = honour_retry_after(backoff, row.attempts, retry_after);
                    let delay = self
                        .store
                        .mark_notification_failed(row.id, &e, backoff)
                        .await?;
                    warn!(id = row.id, channel = %row.channel, error = %e,
                          retry_in = ?delay, "notification delivery failed");
                }
            }
        }
        Ok(claimed.len())
    }

    async fn deliver(&self, row: &ClaimedNotification) -> Result<(), Failure> {
        let person = row.channel.starts_with(crate::oncall::MAILTO);
        let Some(channel) = self.channels.get(&row.channel).or_else(|| {
            person
                .then(|| self.channels.get(crate::oncall::MAILTO))
                .flatten()
        }) else {
            return Err(Failure::from(format!(
                "channel {:?} is not configured; add [notifications.channels.{}] or remove the \
                 rules that send to it",
                row.channel, row.channel
            )));
        };
        let notice: AlertNotice = serde_json::from_value(row.payload.clone()).map_err(|e| {
            Failure::from(format!(
                "the stored notification payload is not an alert notice: {e}"
            ))
        })?;
        let link = notice
            .link
            .as_deref()
            .map(|l| absolute_link(&self.cfg.public_url, l));
        let d = Delivery {
            id: row.id,
            channel: row.channel.clone(),
            dedup_key: row.dedup_key.clone(),
            group_key: row.group_key.clone(),
            kind: row.kind,
            notice,
            link,
        };
        match tokio::time::timeout(self.cfg.send_timeout, channel.deliver(&d)).await {
            Ok(r) => r,
            Err(_) => Err(Failure::from(format!(
                "delivery took longer than notifications.send_timeout ({:?})",
                self.cfg.send_timeout
            ))),
        }
    }
}

/// The back-off for a row that failed its `attempts + 1`-th attempt: the usual one, or a flat
/// `retry_after` when the receiver asked for a longer wait (the store applies
/// `Backoff::delay`, which a base equal to its cap makes constant).
fn honour_retry_after(backoff: Backoff, attempts: i32, retry_after: Option<Duration>) -> Backoff {
    let usual = backoff.delay(attempts.saturating_add(1));
    match retry_after {
        Some(wait) if wait > usual => Backoff {
            base: wait,
            cap: wait,
        },
        _ => backoff,
    }
}

/// `link` as an absolute URL: kept when it already is one, else joined to `public_url`.
fn absolute_link(public_url: &str, link: &str) -> String {
    if link.starts_with("http://") || link.starts_with("https://") || public_url.is_empty() {
        return link.to_string();
    }
    format!(
        "{}/{}",
        public_url.trim_end_matches('/'),
        link.trim_start_matches('/')
    )
}

/// The subject line every channel uses: `[FIRING] name (label=value, ...)`.
pub fn title(d: &Delivery) -> String {
    let status = match d.kind {
        NotificationKind::Firing => "FIRING",
        NotificationKind::Resolved => "RESOLVED",
    };
    let labels: Vec<String> = d
        .notice
        .labels
        .iter()
        .filter(|(k, _)| k.as_str() != "alertname")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if labels.is_empty() {
        format!("[{status}] {}", d.notice.alert)
    } else {
        format!("[{status}] {} ({})", d.notice.alert, labels.join(", "))
    }
}

/// Unix milliseconds as RFC 3339 UTC, for message bodies.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_longer_retry_after_replaces_the_back_off_for_one_attempt() {
        let b = Backoff {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(60),
        };
        // Third attempt failed: the usual wait is 20 s.
        let slower = honour_retry_after(b, 2, Some(Duration::from_secs(30)));
        assert_eq!(slower.delay(3), Duration::from_secs(30));
        assert_eq!(honour_retry_after(b, 2, Some(Duration::from_secs(3))), b);
        assert_eq!(honour_retry_after(b, 2, None), b);
    }

    fn delivery(dedup_key: &str, group_key: &str) -> Delivery {
        Delivery {
            id: 1,
            channel: "slack".into(),
            dedup_key: dedup_key.into(),
            group_key: group_key.into(),
            kind: NotificationKind::Firing,
            notice: AlertNotice {
                alert: "Lag".into(),
                labels: BTreeMap::new(),
                severity: String::new(),
                explanation: String::new(),
                link: None,
                starts_at_ms: 0,
                ends_at_ms: None,
                values: Vec::new(),
                alerts: Vec::new(),
            },
            link: None,
        }
    }

    #[test]
    fn notices_of_one_group_life_share_a_group_ref() {
        let key = "default/{alertname=\"a#1@b\"}";
        let r = |seq: &str| group_ref(&delivery(&format!("{key}@1700#{seq}"), key));
        assert_eq!(r("1"), format!("{key}@1700"));
        assert_eq!(r("1"), r("12"));
        assert_ne!(
            group_ref(&delivery(&format!("{key}@1800#1"), key)),
            r("1"),
            "a group that starts again is a new message"
        );
        // Not the engine's shape: a group of its own.
        assert_eq!(group_ref(&delivery("test:1", "x")), "test:1");
        assert_eq!(group_ref(&delivery("x@1#a", "x")), "x@1#a");
    }

    #[test]
    fn links_are_made_absolute_against_the_public_url() {
        assert_eq!(
            absolute_link("https://pw.example.com/", "/alerts/7"),
            "https://pw.example.com/alerts/7"
        );
        assert_eq!(
            absolute_link("https://pw.example.com", "http://other/x"),
            "http://other/x"
        );
        assert_eq!(absolute_link("", "/alerts/7"), "/alerts/7");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let b = Backoff {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(60),
        };
        let waits: Vec<u64> = (1..=6).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 60, 60]);
    }
}
