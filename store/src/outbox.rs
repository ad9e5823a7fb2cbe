//! The notification outbox (`migrations/0040_notifications.sql`): enqueueing notices in the
//! caller's transaction, claiming due rows so that concurrent senders (several pipewatch
//! instances on one database) never take the same row, and recording each delivery attempt
//! with exponential back-off for the failed ones.
//!
//! Delivery is at-least-once: a sender that delivers and then dies before
//! [`Store::mark_notification_delivered`] leaves the row to be sent again once its claim lease
//! runs out. Receivers can drop repeats by the dedup key, which every channel includes.

use crate::error::DbContext;
use crate::{sql_ms, Store, StoreError};
use sqlx::{PgConnection, Row};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// What a notice says about its alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationKind {
    Firing,
    Resolved,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

impl fmt::Display for NotificationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NotificationKind {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "firing" => Ok(Self::Firing),
            "resolved" => Ok(Self::Resolved),
            other => Err(StoreError::Corrupt(format!(
                "notification_outbox.kind is {other:?}, expected \"firing\" or \"resolved\""
            ))),
        }
    }
}

/// A notice to enqueue for one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    /// The configured channel's name (`[notifications.channels.<name>]`).
    pub channel: String,
    /// Unique per channel: enqueueing the same key again is a no-op.
    pub dedup_key: String,
    /// The alert or alert group; notices of one group are delivered in enqueue order.
    pub group_key: String,
    pub kind: NotificationKind,
    /// Everything the channel renders (alert name, labels, explanation, link, ...).
    pub payload: serde_json::Value,
}

/// A row handed to a sender by [`Store::claim_notifications`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedNotification {
    pub id: i64,
    pub channel: String,
    pub dedup_key: String,
    pub group_key: String,
    pub kind: NotificationKind,
    pub payload: serde_json::Value,
    pub created_at_ms: i64,
    /// Attempts made before this one.
    pub attempts: i32,
}

/// One recorded delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationAttempt {
    pub attempted_at_ms: i64,
    pub delivered: bool,
    pub error: Option<String>,
}

/// The state of an outbox row, for tests and the channel pages.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationStatus {
    pub id: i64,
    pub channel: String,
    pub dedup_key: String,
    pub kind: NotificationKind,
    pub attempts: i32,
    pub delivered: bool,
    pub last_error: Option<String>,
}

/// One channel's notifications ([`Store::channel_summaries`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelSummary {
    pub channel: String,
    pub delivered: i64,
    pub waiting: i64,
    pub last_delivered_ms: Option<i64>,
    pub last_error: Option<String>,
}

/// How long a failed row waits: `base * 2^(attempts-1)`, at most `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// The wait after the `attempts`-th failed attempt (1-based).
    pub fn delay(&self, attempts: i32) -> Duration {
        let exp = attempts.saturating_sub(1).clamp(0, 30) as u32;
        self.base.saturating_mul(1u32 << exp).min(self.cap)
    }
}

/// Adds a notice to the outbox inside the caller's transaction, so the alert transition that
/// caused it and the notice commit (or roll back) together. Returns false when a notice with
/// the same channel and dedup key already exists (nothing is written).
pub async fn enqueue(conn: &mut PgConnection, n: &NewNotification) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO notification_outbox (channel, dedup_key, group_key, kind, payload)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (channel, dedup_key) DO NOTHING",
    )
    .bind(&n.channel)
    .bind(&n.dedup_key)
    .bind(&n.group_key)
    .bind(n.kind.as_str())
    .bind(&n.payload)
    .execute(conn)
    .await
    .context("enqueueing a notification")?;
    Ok(done.rows_affected() == 1)
}

impl Store {
    /// One notification on its own (a channel's test notice); returns its id, or `None` when
    /// the same channel and dedup key is already queued.
    pub async fn enqueue_notification(
        &self,
        n: &NewNotification,
    ) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar(
            "INSERT INTO notification_outbox (channel, dedup_key, group_key, kind, payload)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (channel, dedup_key) DO NOTHING RETURNING id",
        )
        .bind(&n.channel)
        .bind(&n.dedup_key)
        .bind(&n.group_key)
        .bind(n.kind.as_str())
        .bind(&n.payload)
        .fetch_optional(self.pool())
        .await
        .context("enqueueing a notification")
    }

    /// [`enqueue`] in a transaction of its own, for callers with no transition to commit with.
    pub async fn enqueue_notifications(&self, ns: &[NewNotification]) -> Result<usize, StoreError> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .context("starting a notification transaction")?;
        let mut added = 0;
        for n in ns {
            added += usize::from(enqueue(&mut tx, n).await?);
        }
        tx.commit().await.context("committing notifications")?;
        Ok(added)
    }

    /// Claims up to `limit` due, undelivered rows, oldest first, skipping rows another sender
    /// holds (`FOR UPDATE SKIP LOCKED`) and rows with an earlier undelivered row of the same
    /// group and channel (so notices of one alert go out in order). A claimed row is not due
    /// again until `lease` has passed: long enough to deliver it, short enough that a dead
    /// sender's rows come back soon.
    pub async fn claim_notifications(
        &self,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedNotification>, StoreError> {
        let sql = format!(
            "UPDATE notification_outbox o
             SET next_attempt_at = now() + make_interval(secs => $2::float8)
             WHERE o.id IN (
                 SELECT c.id FROM notification_outbox c
                 WHERE c.delivered_at IS NULL AND c.next_attempt_at <= now()
                   AND NOT EXISTS (
                       SELECT 1 FROM notification_outbox e
                       WHERE e.channel = c.channel AND e.group_key = c.group_key
                         AND e.id < c.id AND e.delivered_at IS NULL)
                 ORDER BY c.next_attempt_at, c.id
                 LIMIT $1
                 FOR UPDATE SKIP LOCKED)
             RETURNING o.id, o.channel, o.dedup_key, o.group_key, o.kind, o.payload,
                       {} AS created_ms, o.attempts",
            sql_ms("o.created_at")
        );
        let rows = sqlx::query(&sql)
            .bind(i64::from(limit))
            .bind(lease.as_secs_f64())
            .fetch_all(self.pool())
            .await
            .context("claiming notifications")?;
        let mut out = rows
            .into_iter()
            .map(|r| {
                Ok(ClaimedNotification {
                    id: r.get("id"),
                    channel: r.get("channel"),
                    dedup_key: r.get("dedup_key"),
                    group_key: r.get("group_key"),
                    kind: r.get::<String, _>("kind").parse()?,
                    payload: r.get("payload"),
                    created_at_ms: r.get("created_ms"),
                    attempts: r.get("attempts"),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // RETURNING has no order; senders deliver in this order.
        out.sort_by_key(|n| n.id);
        Ok(out)
    }

    /// Records a successful delivery. Delivering a row twice (a lease that ran out while the
    /// first sender was still at it) records both attempts and keeps the first delivery time.
    pub async fn mark_notification_delivered(&self, id: i64) -> Result<(), StoreError> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .context("starting a delivery record")?;
        sqlx::query(
            "UPDATE notification_outbox
             SET attempts = attempts + 1, delivered_at = coalesce(delivered_at, now()),
                 last_error = NULL
             WHERE id = $1",
        )
        .bind(id)
        .execute(&mut *tx)
        .await
        .context("marking a notification delivered")?;
        record_attempt(&mut tx, id, None).await?;
        tx.commit().await.context("committing a delivery record")?;
        Ok(())
    }

    /// Records a failed attempt and makes the row due again after `backoff.delay(attempts)`.
    /// Returns that delay.
    pub async fn mark_notification_failed(
        &self,
        id: i64,
        error: &str,
        backoff: Backoff,
    ) -> Result<Duration, StoreError> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .context("starting a failure record")?;
        let attempts: Option<i32> = sqlx::query_scalar(
            "UPDATE notification_outbox SET attempts = attempts + 1, last_error = $2
             WHERE id = $1 AND delivered_at IS NULL RETURNING attempts",
        )
        .bind(id)
        .bind(error)
        .fetch_optional(&mut *tx)
        .await
        .context("marking a notification failed")?;
        let delay = backoff.delay(attempts.unwrap_or(1));
        if attempts.is_some() {
            sqlx::query(
                "UPDATE notification_outbox
                 SET next_attempt_at = now() + make_interval(secs => $2::float8)
                 WHERE id = $1",
            )
            .bind(id)
            .bind(delay.as_secs_f64())
            .execute(&mut *tx)
            .await
            .context("scheduling a notification retry")?;
        }
        record_attempt(&mut tx, id, Some(error)).await?;
        tx.commit().await.context("committing a failure record")?;
        Ok(delay)
    }

    /// Every attempt at one row, oldest first.
    pub async fn notification_attempts(
        &self,
        id: i64,
    ) -> Result<Vec<NotificationAttempt>, StoreError> {
        let sql = format!(
            "SELECT {} AS at_ms, outcome, error FROM notification_attempts
             WHERE outbox_id = $1 ORDER BY id",
            sql_ms("attempted_at")
        );
        let rows = sqlx::query(&sql)
            .bind(id)
            .fetch_all(self.pool())
            .await
            .context("listing notification attempts")?;
        Ok(rows
            .into_iter()
            .map(|r| NotificationAttempt {
                attempted_at_ms: r.get("at_ms"),
                delivered: r.get::<String, _>("outcome") == "delivered",
                error: r.get("error"),
            })
            .collect())
    }

    /// Per channel: notifications delivered, waiting (not delivered yet), when the last one
    /// was delivered and the newest error of a row still waiting, for the channels page.
    pub async fn channel_summaries(&self) -> Result<Vec<ChannelSummary>, StoreError> {
        let sql = format!(
            "SELECT channel,
                    count(*) FILTER (WHERE delivered_at IS NOT NULL) AS delivered,
                    count(*) FILTER (WHERE delivered_at IS NULL) AS waiting,
                    {} AS last_delivered,
                    (array_agg(last_error ORDER BY id DESC)
                       FILTER (WHERE delivered_at IS NULL AND last_error IS NOT NULL))[1]
                       AS last_error
             FROM notification_outbox GROUP BY channel ORDER BY channel",
            crate::sql_ms("max(delivered_at)")
        );
        let rows = sqlx::query(&sql)
            .fetch_all(self.pool())
            .await
            .context("summarising the notification outbox")?;
        Ok(rows
            .into_iter()
            .map(|r| ChannelSummary {
                channel: r.get("channel"),
                delivered: r.get("delivered"),
                waiting: r.get("waiting"),
                last_delivered_ms: r.get("last_delivered"),
                last_error: r.get("last_error"),
            })
            .collect())
    }

    /// Every outbox row, oldest first (for tests; unbounded, so not for an API).
    pub async fn notification_statuses(&self) -> Result<Vec<NotificationStatus>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, channel, dedup_key, kind, attempts, delivered_at IS NOT NULL AS delivered,
                    last_error
             FROM notification_outbox ORDER BY id",
        )
        .fetch_all(self.pool())
        .await
        .context("listing the notification outbox")?;
        rows.into_iter()
            .map(|r| {
                Ok(NotificationStatus {
                    id: r.get("id"),
                    channel: r.get("channel"),
                    dedup_key: r.get("dedup_key"),
                    kind: r.get::<String, _>("kind").parse()?,
                    attempts: r.get("attempts"),
                    delivered: r.get("delivered"),
                    last_error: r.get("last_error"),
                })
            })
            .collect()
    }
}

async fn record_attempt(
    conn: &mut PgConnection,
    id: i64,
    error: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO notification_attempts (outbox_id, outcome, error) VALUES ($1, $2, $3)",
    )
    .bind(id)
    .bind(if error.is_none() {
        "delivered"
    } else {
        "failed"
    })
    .bind(error)
    .execute(conn)
    .await
    .context("recording a notification attempt")?;
    Ok(())
}
