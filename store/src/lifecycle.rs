//! The alert lifecycle's tables (`migrations/0060_alerting.sql`, `0061_oncall.sql`): alert
//! instances and their state, the event timeline, notification groups, silences, and the
//! on-call state people give alerts (acknowledged, assigned, snoozed, resolve asked for).
//!
//! The engine (`server::lifecycle`) writes instances, events, groups and outbox rows through
//! the `&mut PgConnection` functions here, inside one transaction per round, so a transition
//! and the notification it causes commit together. The read API uses the [`Store`] methods.
//! Deciding *what* to write (states, grouping, silences) is the engine's; this module only
//! stores and reads.

use crate::error::DbContext;
use crate::{sql_ms, sql_ts, Store, StoreError};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Where an alert instance comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertSource {
    /// An alerting rule of a rule file, evaluated by pipewatch.
    Rule,
    /// Received on `POST /api/v2/alerts`.
    Alertmanager,
    /// An open anomaly of the analysis jobs.
    Anomaly,
}

/// Where an alert instance stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LifecycleState {
    /// Was pending and the condition cleared before `for` passed.
    Inactive,
    Pending,
    Firing,
    /// Was firing and the condition cleared (after `keep_firing_for`).
    Resolved,
    /// The rule's expression reads series that no longer exist.
    #[serde(rename = "nodata")]
    NoData,
    /// The rule's evaluation failed.
    Error,
}

/// What the last notice about an instance's current episode said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Notified {
    None,
    Firing,
    Resolved,
}

macro_rules! text_enum {
    ($t:ty, $column:literal, { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $t {
            type Err = StoreError;
            fn from_str(s: &str) -> Result<Self, StoreError> {
                match s {
                    $($s => Ok(Self::$v),)*
                    other => Err(StoreError::Corrupt(format!(
                        "{} is {other:?}, expected one of {}", $column, [$($s),*].join(", ")
                    ))),
                }
            }
        }
    };
}

text_enum!(AlertSource, "alert_instances.source", {
    Rule => "rule", Alertmanager => "alertmanager", Anomaly => "anomaly",
});
text_enum!(LifecycleState, "alert_instances.state", {
    Inactive => "inactive", Pending => "pending", Firing => "firing", Resolved => "resolved",
    NoData => "nodata", Error => "error",
});
text_enum!(Notified, "alert_instances.notified", {
    None => "none", Firing => "firing", Resolved => "resolved",
});

impl LifecycleState {
    /// Pending, firing, nodata and error: states the engine keeps evaluating.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Self::Pending | Self::Firing | Self::NoData | Self::Error
        )
    }

    /// Every state, for messages listing what is accepted.
    pub const ALL: [LifecycleState; 6] = [
        Self::Inactive,
        Self::Pending,
        Self::Firing,
        Self::Resolved,
        Self::NoData,
        Self::Error,
    ];
}

/// One alert instance. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertInstance {
    /// 0 until stored.
    pub id: i64,
    pub fingerprint: String,
    pub source: AlertSource,
    pub rule: String,
    pub rule_group: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub state: LifecycleState,
    pub active_at_ms: Option<i64>,
    pub fired_at_ms: Option<i64>,
    pub resolved_at_ms: Option<i64>,
    pub last_value: Option<f64>,
    pub last_eval_at_ms: Option<i64>,
    pub episode: i32,
    pub group_key: String,
    pub notified: Notified,
    pub firing_notified_at_ms: Option<i64>,
    pub detail: String,
    pub updated_at_ms: i64,
}

/// What an event on an alert's timeline records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A state change.
    Transition,
    /// A notification about the alert was enqueued (`detail` names the channels).
    Notified,
    /// A firing notice was held back by a silence (`detail` names it).
    Silenced,
    Unsilenced,
    Acknowledged,
    Note,
    /// The acknowledgement was taken back.
    Unacknowledged,
    /// `detail` names the assignee (empty: nobody any more).
    Assigned,
    /// `detail` says until when.
    Snoozed,
    /// A user asked to resolve the alert by hand; the engine's transition follows.
    #[serde(rename = "resolve_requested")]
    ResolveRequested,
    /// An escalation level went out (`detail`: the level, whom it reached, what was not
    /// delivered and why).
    Escalated,
}

text_enum!(EventKind, "alert_events.kind", {
    Transition => "transition", Notified => "notified", Silenced => "silenced",
    Unsilenced => "unsilenced", Acknowledged => "acknowledged", Note => "note",
    Unacknowledged => "unacknowledged", Assigned => "assigned", Snoozed => "snoozed",
    ResolveRequested => "resolve_requested", Escalated => "escalated",
});

/// One entry of an alert's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertEvent {
    pub id: i64,
    pub alert_id: i64,
    pub at_ms: i64,
    pub kind: EventKind,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    /// `system` or a user name.
    pub by: String,
    pub detail: String,
}

/// An event to add.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent<'a> {
    pub kind: EventKind,
    pub from: Option<LifecycleState>,
    pub to: Option<LifecycleState>,
    pub by: &'a str,
    pub detail: &'a str,
    pub at_ms: i64,
}

/// One entry of a notification group's `last_contents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEntry {
    pub fingerprint: String,
    pub episode: i32,
    /// `firing` or `resolved`.
    pub state: String,
}

/// A notification group (Alertmanager's aggregation group).
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationGroup {
    pub group_key: String,
    pub route: String,
    pub labels: BTreeMap<String, String>,
    pub created_at_ms: i64,
    pub last_notified_at_ms: Option<i64>,
    pub seq: i64,
    pub last_contents: Vec<GroupEntry>,
}

/// A silence matcher, Alertmanager v2's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SilenceMatcher {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub is_regex: bool,
    /// False for `!=` / `!~`. Alertmanager defaults it to true.
    #[serde(default = "default_true")]
    pub is_equal: bool,
}

fn default_true() -> bool {
    true
}

/// A silence. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<SilenceMatcher>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub created_by: String,
    pub comment: String,
    pub updated_at_ms: i64,
}

impl Silence {
    /// `pending`, `active` or `expired` at `now_ms`, as Alertmanager says.
    pub fn status(&self, now_ms: i64) -> &'static str {
        if now_ms < self.starts_at_ms {
            "pending"
        } else if now_ms < self.ends_at_ms {
            "active"
        } else {
            "expired"
        }
    }
}

/// A silence to create or replace.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSilence {
    pub matchers: Vec<SilenceMatcher>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub created_by: String,
    pub comment: String,
}

/// Filters of [`Store::lifecycle_alerts`]; label matchers are the caller's (applied after).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertFilter {
    /// Any of these states; empty is all.
    pub states: Vec<LifecycleState>,
    pub rule: Option<String>,
    pub source: Option<AlertSource>,
}

fn to_json(m: &BTreeMap<String, String>) -> serde_json::Value {
    serde_json::to_value(m).expect("a string map serialises")
}

fn from_json(v: serde_json::Value, what: &str) -> Result<BTreeMap<String, String>, StoreError> {
    serde_json::from_value(v).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

const INSTANCE_COLUMNS: &str = "id, fingerprint, source, rule, rule_group, labels, annotations, \
     state, (extract(epoch from active_at) * 1000)::bigint AS active_ms, \
     (extract(epoch from fired_at) * 1000)::bigint AS fired_ms, \
     (extract(epoch from resolved_at) * 1000)::bigint AS resolved_ms, last_value, \
     (extract(epoch from last_eval_at) * 1000)::bigint AS eval_ms, episode, group_key, notified, \
     (extract(epoch from firing_notified_at) * 1000)::bigint AS notified_ms, detail, \
     (extract(epoch from updated_at) * 1000)::bigint AS updated_ms";

fn instance_of(r: &PgRow) -> Result<AlertInstance, StoreError> {
    Ok(AlertInstance {
        id: r.get("id"),
        fingerprint: r.get("fingerprint"),
        source: r.get::<String, _>("source").parse()?,
        rule: r.get("rule"),
        rule_group: r.get("rule_group"),
        labels: from_json(r.get("labels"), "alert_instances.labels")?,
        annotations: from_json(r.get("annotations"), "alert_instances.annotations")?,
        state: r.get::<String, _>("state").parse()?,
        active_at_ms: r.get("active_ms"),
        fired_at_ms: r.get("fired_ms"),
        resolved_at_ms: r.get("resolved_ms"),
        last_value: r.get("last_value"),
        last_eval_at_ms: r.get("eval_ms"),
        episode: r.get("episode"),
        group_key: r.get("group_key"),
        notified: r.get::<String, _>("notified").parse()?,
        firing_notified_at_ms: r.get("notified_ms"),
        detail: r.get("detail"),
        updated_at_ms: r.get("updated_ms"),
    })
}

/// Inserts or updates the instance with `a.fingerprint` to what `a` says (its `id` is
/// ignored) and returns the row's id and episode. An instance that goes active again after
/// it ended starts the stored row's next episode, also when the caller no longer had the
/// old row at hand.
pub async fn save_instance(
    conn: &mut PgConnection,
    a: &AlertInstance,
) -> Result<(i64, i32), StoreError> {
    let sql = format!(
        "INSERT INTO alert_instances (fingerprint, source, rule, rule_group, labels, annotations,
             state, active_at, fired_at, resolved_at, last_value, last_eval_at, episode,
             group_key, notified, firing_notified_at, detail, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, {}, {}, {}, $11, {}, $13, $14, $15, {}, $17, now())
         ON CONFLICT (fingerprint) DO UPDATE SET
             source = EXCLUDED.source, rule = EXCLUDED.rule, rule_group = EXCLUDED.rule_group,
             labels = EXCLUDED.labels, annotations = EXCLUDED.annotations,
             state = EXCLUDED.state, active_at = EXCLUDED.active_at,
             fired_at = EXCLUDED.fired_at, resolved_at = EXCLUDED.resolved_at,
             last_value = EXCLUDED.last_value, last_eval_at = EXCLUDED.last_eval_at,
             episode = CASE WHEN alert_instances.state IN ('inactive', 'resolved')
                                 AND EXCLUDED.state NOT IN ('inactive', 'resolved')
                                 AND EXCLUDED.episode <= alert_instances.episode
                            THEN alert_instances.episode + 1 ELSE EXCLUDED.episode END,
             group_key = EXCLUDED.group_key,
             notified = EXCLUDED.notified, firing_notified_at = EXCLUDED.firing_notified_at,
             detail = EXCLUDED.detail, updated_at = now()
         RETURNING id, episode",
        sql_ts(8),
        sql_ts(9),
        sql_ts(10),
        sql_ts(12),
        sql_ts(16),
    );
    sqlx::query_as(&sql)
        .bind(&a.fingerprint)
        .bind(a.source.as_str())
        .bind(&a.rule)
        .bind(&a.rule_group)
        .bind(to_json(&a.labels))
        .bind(to_json(&a.annotations))
        .bind(a.state.as_str())
        .bind(a.active_at_ms)
        .bind(a.fired_at_ms)
        .bind(a.resolved_at_ms)
        .bind(a.last_value.filter(|v| v.is_finite()))
        .bind(a.last_eval_at_ms)
        .bind(a.episode)
        .bind(&a.group_key)
        .bind(a.notified.as_str())
        .bind(a.firing_notified_at_ms)
        .bind(&a.detail)
        .fetch_one(conn)
        .await
        .context("saving an alert instance")
}

/// Adds an event to the timeline of alert `alert_id`.
pub async fn add_event(
    conn: &mut PgConnection,
    alert_id: i64,
    e: &NewEvent<'_>,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO alert_events (alert_id, at, kind, from_state, to_state, by_whom, detail)
         VALUES ($1, {}, $3, $4, $5, $6, $7)",
        sql_ts(2)
    ))
    .bind(alert_id)
    .bind(e.at_ms)
    .bind(e.kind.as_str())
    .bind(e.from.map(|s| s.as_str()))
    .bind(e.to.map(|s| s.as_str()))
    .bind(e.by)
    .bind(e.detail)
    .execute(conn)
    .await
    .context("adding an alert event")?;
    Ok(())
}

/// Instances that are active or still owe a resolve notice: the engine's working set.
pub async fn live_instances(conn: &mut PgConnection) -> Result<Vec<AlertInstance>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {INSTANCE_COLUMNS} FROM alert_instances
         WHERE state IN ('pending', 'firing', 'nodata', 'error') OR notified = 'firing'
         ORDER BY id"
    ))
    .fetch_all(conn)
    .await
    .context("reading live alert instances")?;
    rows.iter().map(instance_of).collect()
}

/// The instance with this fingerprint, if any.
pub async fn instance_by_fingerprint(
    conn: &mut PgConnection,
    fingerprint: &str,
) -> Result<Option<AlertInstance>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {INSTANCE_COLUMNS} FROM alert_instances WHERE fingerprint = $1"
    ))
    .bind(fingerprint)
    .fetch_optional(conn)
    .await
    .context("reading an alert instance")?;
    row.as_ref().map(instance_of).transpose()
}

fn group_of(r: &PgRow) -> Result<NotificationGroup, StoreError> {
    Ok(NotificationGroup {
        group_key: r.get("group_key"),
        route: r.get("route"),
        labels: from_json(r.get("labels"), "notification_groups.labels")?,
        created_at_ms: r.get("created_ms"),
        last_notified_at_ms: r.get("notified_ms"),
        seq: r.get("seq"),
        last_contents: serde_json::from_value(r.get("last_contents"))
            .map_err(|e| StoreError::Corrupt(format!("notification_groups.last_contents: {e}")))?,
    })
}

/// Every notification group, each row locked for this transaction (`FOR UPDATE`), so a
/// second engine that somehow runs at the same time waits instead of notifying twice.
pub async fn lock_groups(conn: &mut PgConnection) -> Result<Vec<NotificationGroup>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT group_key, route, labels, {} AS created_ms, {} AS notified_ms, seq, last_contents
         FROM notification_groups ORDER BY group_key FOR UPDATE",
        sql_ms("created_at"),
        sql_ms("last_notified_at"),
    ))
    .fetch_all(conn)
    .await
    .context("reading notification groups")?;
    rows.iter().map(group_of).collect()
}

/// Inserts or updates a notification group.
pub async fn save_group(conn: &mut PgConnection, g: &NotificationGroup) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO notification_groups
             (group_key, route, labels, created_at, last_notified_at, seq, last_contents)
         VALUES ($1, $2, $3, {}, {}, $6, $7)
         ON CONFLICT (group_key) DO UPDATE SET route = EXCLUDED.route, labels = EXCLUDED.labels,
             last_notified_at = EXCLUDED.last_notified_at, seq = EXCLUDED.seq,
             last_contents = EXCLUDED.last_contents",
        sql_ts(4),
        sql_ts(5)
    ))
    .bind(&g.group_key)
    .bind(&g.route)
    .bind(to_json(&g.labels))
    .bind(g.created_at_ms)
    .bind(g.last_notified_at_ms)
    .bind(g.seq)
    .bind(serde_json::to_value(&g.last_contents).expect("group entries serialise"))
    .execute(conn)
    .await
    .context("saving a notification group")?;
    Ok(())
}

/// Removes a group that has nothing left to tell.
pub async fn delete_group(conn: &mut PgConnection, group_key: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM notification_groups WHERE group_key = $1")
        .bind(group_key)
        .execute(conn)
        .await
        .context("removing a notification group")?;
    Ok(())
}

const SILENCE_COLUMNS: &str = "id, matchers, (extract(epoch from starts_at) * 1000)::bigint AS s, \
     (extract(epoch from ends_at) * 1000)::bigint AS e, created_by, comment, \
     (extract(epoch from updated_at) * 1000)::bigint AS u";

fn silence_of(r: &PgRow) -> Result<Silence, StoreError> {
    Ok(Silence {
        id: r.get("id"),
        matchers: serde_json::from_value(r.get("matchers"))
            .map_err(|e| StoreError::Corrupt(format!("silences.matchers: {e}")))?,
        starts_at_ms: r.get("s"),
        ends_at_ms: r.get("e"),
        created_by: r.get("created_by"),
        comment: r.get("comment"),
        updated_at_ms: r.get("u"),
    })
}

/// Silences not yet expired at `now_ms` (active or pending).
pub async fn current_silences(
    conn: &mut PgConnection,
    now_ms: i64,
) -> Result<Vec<Silence>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {SILENCE_COLUMNS} FROM silences WHERE ends_at > {} ORDER BY id",
        sql_ts(1)
    ))
    .bind(now_ms)
    .fetch_all(conn)
    .await
    .context("reading current silences")?;
    rows.iter().map(silence_of).collect()
}

/// An open anomaly of the analysis jobs (`anomalies`, migration 0050), as alerting rules of
/// the `anomaly` kind see it.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAnomaly {
    pub id: i64,
    pub signal: String,
    pub kind: String,
    pub labels: BTreeMap<String, String>,
    pub node: Option<String>,
    pub severity: String,
    pub score: f64,
    pub started_at_ms: i64,
    pub observed: f64,
    pub explanation: String,
}

/// Every open anomaly, oldest first.
pub async fn open_anomalies(conn: &mut PgConnection) -> Result<Vec<OpenAnomaly>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT id, signal, kind, labels, node, severity, score, {} AS started_ms, observed,
                explanation
         FROM anomalies WHERE state = 'open' ORDER BY id",
        sql_ms("started_at")
    ))
    .fetch_all(conn)
    .await
    .context("reading open anomalies")?;
    rows.iter()
        .map(|r| {
            Ok(OpenAnomaly {
                id: r.get("id"),
                signal: r.get("signal"),
                kind: r.get("kind"),
                labels: from_json(r.get("labels"), "anomalies.labels")?,
                node: r.get("node"),
                severity: r.get("severity"),
                score: r.get("score"),
                started_at_ms: r.get("started_ms"),
                observed: r.get("observed"),
                explanation: r.get("explanation"),
            })
        })
        .collect()
}

/// What the leader last saw of one rule (`rule_status`).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleStatus {
    pub group_file: String,
    pub group_name: String,
    pub rule_index: i32,
    pub group_interval_ms: i64,
    /// The rule as Prometheus' `/api/v1/rules` shows it, without health and alerts.
    pub rule: serde_json::Value,
    /// `ok`, `err` or `unknown` (not evaluated yet).
    pub health: String,
    pub last_error: String,
    pub last_evaluation_ms: Option<i64>,
    pub evaluation_s: f64,
}

/// Replaces every rule status with `rows` (a new leader's rule set).
pub async fn reset_rule_status(
    conn: &mut PgConnection,
    rows: &[RuleStatus],
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM rule_status")
        .execute(&mut *conn)
        .await
        .context("clearing rule status")?;
    save_rule_status(conn, rows).await
}

/// Inserts or updates rule statuses.
pub async fn save_rule_status(
    conn: &mut PgConnection,
    rows: &[RuleStatus],
) -> Result<(), StoreError> {
    for r in rows {
        sqlx::query(&format!(
            "INSERT INTO rule_status (group_file, group_name, rule_index, group_interval_ms, rule,
                 health, last_error, last_evaluation, evaluation_s)
             VALUES ($1, $2, $3, $4, $5, $6, $7, {}, $9)
             ON CONFLICT (group_file, group_name, rule_index) DO UPDATE SET
                 group_interval_ms = EXCLUDED.group_interval_ms, rule = EXCLUDED.rule,
                 health = EXCLUDED.health, last_error = EXCLUDED.last_error,
                 last_evaluation = EXCLUDED.last_evaluation, evaluation_s = EXCLUDED.evaluation_s",
            sql_ts(8)
        ))
        .bind(&r.group_file)
        .bind(&r.group_name)
        .bind(r.rule_index)
        .bind(r.group_interval_ms)
        .bind(&r.rule)
        .bind(&r.health)
        .bind(&r.last_error)
        .bind(r.last_evaluation_ms)
        .bind(r.evaluation_s)
        .execute(&mut *conn)
        .await
        .context("saving rule status")?;
    }
    Ok(())
}

impl Store {
    /// Every rule's status, in file, group and rule order.
    pub async fn rule_statuses(&self) -> Result<Vec<RuleStatus>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT group_file, group_name, rule_index, group_interval_ms, rule, health,
                    last_error, {} AS eval_ms, evaluation_s
             FROM rule_status ORDER BY group_file, group_name, rule_index",
            sql_ms("last_evaluation")
        ))
        .fetch_all(self.read_pool())
        .await
        .context("reading rule status")?;
        Ok(rows
            .iter()
            .map(|r| RuleStatus {
                group_file: r.get("group_file"),
                group_name: r.get("group_name"),
                rule_index: r.get("rule_index"),
                group_interval_ms: r.get("group_interval_ms"),
                rule: r.get("rule"),
                health: r.get("health"),
                last_error: r.get("last_error"),
                last_evaluation_ms: r.get("eval_ms"),
                evaluation_s: r.get("evaluation_s"),
            })
            .collect())
    }

    /// Alert instances matching `f`, most recently changed first.
    pub async fn lifecycle_alerts(
        &self,
        f: &AlertFilter,
    ) -> Result<Vec<AlertInstance>, StoreError> {
        let states: Vec<&str> = f.states.iter().map(|s| s.as_str()).collect();
        let rows = sqlx::query(&format!(
            "SELECT {INSTANCE_COLUMNS} FROM alert_instances
             WHERE (cardinality($1::text[]) = 0 OR state = ANY($1))
               AND ($2::text IS NULL OR rule = $2)
               AND ($3::text IS NULL OR source = $3)
             ORDER BY updated_at DESC, id DESC"
        ))
        .bind(&states)
        .bind(&f.rule)
        .bind(f.source.map(|s| s.as_str()))
        .fetch_all(self.read_pool())
        .await
        .context("listing alert instances")?;
        rows.iter().map(instance_of).collect()
    }

    pub async fn lifecycle_alert(&self, id: i64) -> Result<Option<AlertInstance>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {INSTANCE_COLUMNS} FROM alert_instances WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.read_pool())
        .await
        .context("reading an alert instance")?;
        row.as_ref().map(instance_of).transpose()
    }

    /// The timeline of alert `id`, oldest first.
    pub async fn alert_events(&self, id: i64) -> Result<Vec<AlertEvent>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT id, alert_id, {} AS at_ms, kind, from_state, to_state, by_whom, detail
             FROM alert_events WHERE alert_id = $1 ORDER BY id",
            sql_ms("at")
        ))
        .bind(id)
        .fetch_all(self.read_pool())
        .await
        .context("reading alert events")?;
        rows.iter()
            .map(|r| {
                Ok(AlertEvent {
                    id: r.get("id"),
                    alert_id: r.get("alert_id"),
                    at_ms: r.get("at_ms"),
                    kind: r.get::<String, _>("kind").parse()?,
                    from_state: r.get("from_state"),
                    to_state: r.get("to_state"),
                    by: r.get("by_whom"),
                    detail: r.get("detail"),
                })
            })
            .collect()
    }

    /// Adds an event by a user (acknowledge, note) to alert `id`; false when there is no such
    /// alert.
    pub async fn add_alert_event(&self, id: i64, e: &NewEvent<'_>) -> Result<bool, StoreError> {
        let mut conn = self
            .pool()
            .acquire()
            .await
            .context("adding an alert event")?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM alert_instances WHERE id = $1)")
                .bind(id)
                .fetch_one(&mut *conn)
                .await
                .context("checking an alert exists")?;
        if exists {
            add_event(&mut conn, id, e).await?;
        }
        Ok(exists)
    }

    /// Every silence, newest end first (expired ones too, as Alertmanager lists them).
    pub async fn silences(&self) -> Result<Vec<Silence>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {SILENCE_COLUMNS} FROM silences ORDER BY ends_at DESC, id"
        ))
        .fetch_all(self.read_pool())
        .await
        .context("listing silences")?;
        rows.iter().map(silence_of).collect()
    }

    pub async fn silence(&self, id: &str) -> Result<Option<Silence>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SILENCE_COLUMNS} FROM silences WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.read_pool())
        .await
        .context("reading a silence")?;
        row.as_ref().map(silence_of).transpose()
    }

    /// Creates a silence and returns its id.
    pub async fn create_silence(&self, s: &NewSilence) -> Result<String, StoreError> {
        sqlx::query_scalar(&format!(
            "INSERT INTO silences (matchers, starts_at, ends_at, created_by, comment)
             VALUES ($1, {}, {}, $4, $5) RETURNING id",
            sql_ts(2),
            sql_ts(3)
        ))
        .bind(serde_json::to_value(&s.matchers).expect("matchers serialise"))
        .bind(s.starts_at_ms)
        .bind(s.ends_at_ms)
        .bind(&s.created_by)
        .bind(&s.comment)
        .fetch_one(self.pool())
        .await
        .context("creating a silence")
    }

    /// Replaces silence `id` with `s`; false when there is no such silence.
    pub async fn update_silence(&self, id: &str, s: &NewSilence) -> Result<bool, StoreError> {
        let done = sqlx::query(&format!(
            "UPDATE silences SET matchers = $2, starts_at = {}, ends_at = {}, created_by = $5,
                 comment = $6, updated_at = now()
             WHERE id = $1",
            sql_ts(3),
            sql_ts(4)
        ))
        .bind(id)
        .bind(serde_json::to_value(&s.matchers).expect("matchers serialise"))
        .bind(s.starts_at_ms)
        .bind(s.ends_at_ms)
        .bind(&s.created_by)
        .bind(&s.comment)
        .execute(self.pool())
        .await
        .context("updating a silence")?;
        Ok(done.rows_affected() == 1)
    }

    /// Expires silence `id` at `now_ms` (Alertmanager's DELETE: the silence stays listed as
    /// expired). `None` when there is no such silence; `Some(false)` when it had already
    /// expired.
    pub async fn expire_silence(&self, id: &str, now_ms: i64) -> Result<Option<bool>, StoreError> {
        let ends: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT {} FROM silences WHERE id = $1",
            sql_ms("ends_at")
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .context("reading a silence")?;
        let Some(ends) = ends else { return Ok(None) };
        if ends <= now_ms {
            return Ok(Some(false));
        }
        // A silence that has not started yet ends when it starts (the check keeps ends >= starts).
        sqlx::query(&format!(
            "UPDATE silences SET ends_at = greatest(starts_at, {}), updated_at = now() WHERE id = $1",
            sql_ts(2)
        ))
        .bind(id)
        .bind(now_ms)
        .execute(self.pool())
        .await
        .context("expiring a silence")?;
        Ok(Some(true))
    }
}

/// What people did to an alert (`alert_oncall`). Times are Unix milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OnCall {
    pub acknowledged_by: Option<String>,
    pub acknowledged_at_ms: Option<i64>,
    /// The episode the acknowledgement was given in; it does not hold for later ones.
    pub acknowledged_episode: Option<i32>,
    pub assignee: Option<String>,
    pub assigned_at_ms: Option<i64>,
    pub snoozed_until_ms: Option<i64>,
    pub snoozed_by: Option<String>,
    pub resolve_requested_by: Option<String>,
    pub resolve_requested_at_ms: Option<i64>,
    pub resolved_manually_at_ms: Option<i64>,
}

impl OnCall {
    /// Who acknowledged `episode`, if anyone.
    pub fn acknowledged_in(&self, episode: i32) -> Option<&str> {
        self.acknowledged_by
            .as_deref()
            .filter(|_| self.acknowledged_episode == Some(episode))
    }

    /// Whether the alert is snoozed at `now_ms`.
    pub fn snoozed_at(&self, now_ms: i64) -> bool {
        self.snoozed_until_ms.is_some_and(|u| u > now_ms)
    }
}

/// An on-call action by a user.
#[derive(Debug, Clone, PartialEq)]
pub enum OnCallAction {
    Acknowledge,
    Unacknowledge,
    /// To this user; `None` takes the assignment away.
    Assign(Option<String>),
    /// No repeat notices until then (Unix ms).
    Snooze {
        until_ms: i64,
    },
    /// Ask the engine to resolve the alert by hand.
    Resolve,
}

/// What came of an [`OnCallAction`].
#[derive(Debug, Clone, PartialEq)]
pub enum ActionOutcome {
    Done,
    /// No alert with that id.
    NotFound,
    /// The action does not fit the alert as it is now: why, for the user.
    Conflict(String),
    /// The action names something that does not exist (an unknown assignee): why.
    Invalid(String),
}

const ONCALL_COLUMNS: &str = "o.acknowledged_by, \
     (extract(epoch from o.acknowledged_at) * 1000)::bigint AS ack_ms, o.acknowledged_episode, \
     o.assignee, (extract(epoch from o.assigned_at) * 1000)::bigint AS assigned_ms, \
     (extract(epoch from o.snoozed_until) * 1000)::bigint AS snoozed_ms, o.snoozed_by, \
     o.resolve_requested_by, \
     (extract(epoch from o.resolve_requested_at) * 1000)::bigint AS resolve_ms, \
     (extract(epoch from o.resolved_manually_at) * 1000)::bigint AS manual_ms";

fn oncall_of(r: &PgRow) -> OnCall {
    OnCall {
        acknowledged_by: r.get("acknowledged_by"),
        acknowledged_at_ms: r.get("ack_ms"),
        acknowledged_episode: r.get("acknowledged_episode"),
        assignee: r.get("assignee"),
        assigned_at_ms: r.get("assigned_ms"),
        snoozed_until_ms: r.get("snoozed_ms"),
        snoozed_by: r.get("snoozed_by"),
        resolve_requested_by: r.get("resolve_requested_by"),
        resolve_requested_at_ms: r.get("resolve_ms"),
        resolved_manually_at_ms: r.get("manual_ms"),
    }
}

/// A manual resolve asked for and not yet carried out.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolveRequest {
    pub alert_id: i64,
    pub by: String,
    pub comment: String,
}

/// The manual resolves waiting for the engine, each row locked for this transaction.
pub async fn resolve_requests(conn: &mut PgConnection) -> Result<Vec<ResolveRequest>, StoreError> {
    let rows = sqlx::query(
        "SELECT alert_id, resolve_requested_by, resolve_comment FROM alert_oncall
         WHERE resolve_requested_at IS NOT NULL ORDER BY resolve_requested_at FOR UPDATE",
    )
    .fetch_all(conn)
    .await
    .context("reading manual resolve requests")?;
    Ok(rows
        .iter()
        .map(|r| ResolveRequest {
            alert_id: r.get("alert_id"),
            by: r
                .get::<Option<String>, _>("resolve_requested_by")
                .unwrap_or_default(),
            comment: r.get("resolve_comment"),
        })
        .collect())
}

/// Marks the resolve request of `alert_id` done; `resolved` says whether the engine resolved
/// the alert (it may have resolved on its own meanwhile).
pub async fn finish_resolve_request(
    conn: &mut PgConnection,
    alert_id: i64,
    resolved: bool,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "UPDATE alert_oncall SET resolve_requested_by = NULL, resolve_requested_at = NULL,
             resolve_comment = '',
             resolved_manually_at = CASE WHEN $2 THEN {} ELSE resolved_manually_at END
         WHERE alert_id = $1",
        sql_ts(3)
    ))
    .bind(alert_id)
    .bind(resolved)
    .bind(now_ms)
    .execute(conn)
    .await
    .context("finishing a manual resolve request")?;
    Ok(())
}

/// Ids of the alerts snoozed at `now_ms`.
pub async fn snoozed_alerts(
    conn: &mut PgConnection,
    now_ms: i64,
) -> Result<std::collections::HashSet<i64>, StoreError> {
    let ids: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT alert_id FROM alert_oncall WHERE snoozed_until > {}",
        sql_ts(1)
    ))
    .bind(now_ms)
    .fetch_all(conn)
    .await
    .context("reading snoozed alerts")?;
    Ok(ids.into_iter().collect())
}

impl Store {
    /// The on-call state of the alerts `ids` (alerts nobody acted on are left out).
    pub async fn oncall_states(
        &self,
        ids: &[i64],
    ) -> Result<std::collections::HashMap<i64, OnCall>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT o.alert_id, {ONCALL_COLUMNS} FROM alert_oncall o WHERE o.alert_id = ANY($1)"
        ))
        .bind(ids)
        .fetch_all(self.read_pool())
        .await
        .context("reading on-call states")?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<i64, _>("alert_id"), oncall_of(r)))
            .collect())
    }

    /// When each Alertmanager-sourced alert was last resolved by hand, by fingerprint.
    pub async fn manually_resolved(
        &self,
        source: AlertSource,
    ) -> Result<std::collections::HashMap<String, i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.fingerprint, (extract(epoch from o.resolved_manually_at) * 1000)::bigint AS t
             FROM alert_oncall o JOIN alert_instances i ON i.id = o.alert_id
             WHERE i.source = $1 AND o.resolved_manually_at IS NOT NULL",
        )
        .bind(source.as_str())
        .fetch_all(self.pool())
        .await
        .context("reading manually resolved alerts")?;
        Ok(rows
            .iter()
            .map(|r| (r.get("fingerprint"), r.get("t")))
            .collect())
    }

    /// Does `action` to alert `id` as user `by`, with `comment` on the timeline, in one
    /// transaction: the on-call state and the event commit together.
    pub async fn oncall_action(
        &self,
        id: i64,
        action: &OnCallAction,
        by: &str,
        comment: &str,
        now_ms: i64,
    ) -> Result<ActionOutcome, StoreError> {
        let mut tx = self.pool().begin().await.context("starting an action")?;
        // The instance row is only read: the engine alone writes it.
        let Some(row) = sqlx::query("SELECT state, episode FROM alert_instances WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .context("reading the alert acted on")?
        else {
            return Ok(ActionOutcome::NotFound);
        };
        let state: LifecycleState = row.get::<String, _>("state").parse()?;
        let episode: i32 = row.get("episode");
        sqlx::query("INSERT INTO alert_oncall (alert_id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(id)
            .execute(&mut *tx)
            .await
            .context("creating the on-call state")?;
        let current = sqlx::query(&format!(
            "SELECT {ONCALL_COLUMNS} FROM alert_oncall o WHERE o.alert_id = $1 FOR UPDATE"
        ))
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .context("reading the on-call state")?;
        let current = oncall_of(&current);
        let conflict = |m: String| Ok(ActionOutcome::Conflict(m));
        // An assignment's event names the assignee; the other events carry the comment (a
        // snooze's says until when: the caller writes it).
        let detail = match (action, comment.trim()) {
            (OnCallAction::Assign(to), c) => {
                let to = to.as_deref().unwrap_or("nobody");
                if c.is_empty() {
                    to.to_string()
                } else {
                    format!("{to}: {c}")
                }
            }
            (_, c) => c.to_string(),
        };
        // Each action: its check, then its update.
        let kind = match action {
            OnCallAction::Acknowledge => {
                if let Some(who) = current.acknowledged_in(episode) {
                    return conflict(format!(
                        "alert {id} is already acknowledged by {who}; un-acknowledge it first to take it over"
                    ));
                }
                sqlx::query(&format!(
                    "UPDATE alert_oncall SET acknowledged_by = $2, acknowledged_at = {},
                         acknowledged_episode = $4 WHERE alert_id = $1",
                    sql_ts(3)
                ))
                .bind(id)
                .bind(by)
                .bind(now_ms)
                .bind(episode)
                .execute(&mut *tx)
                .await
                .context("acknowledging an alert")?;
                EventKind::Acknowledged
            }
            OnCallAction::Unacknowledge => {
                if current.acknowledged_in(episode).is_none() {
                    return conflict(format!(
                        "alert {id} is not acknowledged in its current episode; nothing to take back"
                    ));
                }
                sqlx::query(
                    "UPDATE alert_oncall SET acknowledged_by = NULL, acknowledged_at = NULL,
                         acknowledged_episode = NULL WHERE alert_id = $1",
                )
                .bind(id)
                .execute(&mut *tx)
                .await
                .context("taking an acknowledgement back")?;
                EventKind::Unacknowledged
            }
            OnCallAction::Assign(to) => {
                if let Some(user) = to {
                    let known: bool = sqlx::query_scalar(
                        "SELECT EXISTS (SELECT 1 FROM users WHERE name = $1 AND NOT disabled)",
                    )
                    .bind(user)
                    .fetch_one(&mut *tx)
                    .await
                    .context("checking the assignee")?;
                    if !known {
                        return Ok(ActionOutcome::Invalid(format!(
                            "there is no enabled user {user:?} to assign alert {id} to; pick one of the users on the Users page"
                        )));
                    }
                }
                sqlx::query(&format!(
                    "UPDATE alert_oncall SET assignee = $2, assigned_at = {} WHERE alert_id = $1",
                    sql_ts(3)
                ))
                .bind(id)
                .bind(to)
                .bind(now_ms)
                .execute(&mut *tx)
                .await
                .context("assigning an alert")?;
                EventKind::Assigned
            }
            OnCallAction::Snooze { until_ms } => {
                if !state.is_active() {
                    return conflict(format!(
                        "alert {id} is {state}; only an active alert has repeat notices to snooze"
                    ));
                }
                if *until_ms <= now_ms {
                    return Ok(ActionOutcome::Invalid(
                        "the snooze would end in the past; snooze until a later time".into(),
                    ));
                }
                sqlx::query(&format!(
                    "UPDATE alert_oncall SET snoozed_until = {}, snoozed_by = $3
                     WHERE alert_id = $1",
                    sql_ts(2)
                ))
                .bind(id)
                .bind(until_ms)
                .bind(by)
                .execute(&mut *tx)
                .await
                .context("snoozing an alert")?;
                EventKind::Snoozed
            }
            OnCallAction::Resolve => {
                if !state.is_active() {
                    return conflict(format!("alert {id} is already {state}; nothing to resolve"));
                }
                if let Some(who) = &current.resolve_requested_by {
                    return conflict(format!(
                        "{who} already asked to resolve alert {id}; the engine does so within a second"
                    ));
                }
                sqlx::query(&format!(
                    "UPDATE alert_oncall SET resolve_requested_by = $2,
                         resolve_requested_at = {}, resolve_comment = $4
                     WHERE alert_id = $1",
                    sql_ts(3)
                ))
                .bind(id)
                .bind(by)
                .bind(now_ms)
                .bind(comment)
                .execute(&mut *tx)
                .await
                .context("asking for a manual resolve")?;
                EventKind::ResolveRequested
            }
        };
        add_event(
            &mut tx,
            id,
            &NewEvent {
                kind,
                from: None,
                to: None,
                by,
                detail: &detail,
                at_ms: now_ms,
            },
        )
        .await?;
        tx.commit().await.context("committing an on-call action")?;
        Ok(ActionOutcome::Done)
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::testing::fresh_database_url;
    use crate::StoreConfig;

    fn instance(fp: &str, state: LifecycleState) -> AlertInstance {
        AlertInstance {
            id: 0,
            fingerprint: fp.into(),
            source: AlertSource::Rule,
            rule: "Lag".into(),
            rule_group: "etl".into(),
            labels: BTreeMap::from([
                ("alertname".into(), "Lag".into()),
                ("job".into(), fp.into()),
            ]),
            annotations: BTreeMap::from([("summary".into(), "lag is high".into())]),
            state,
            active_at_ms: Some(1_765_000_000_000),
            fired_at_ms: None,
            resolved_at_ms: None,
            last_value: Some(12.5),
            last_eval_at_ms: Some(1_765_000_060_000),
            episode: 1,
            group_key: "default/{alertname=\"Lag\"}".into(),
            notified: Notified::None,
            firing_notified_at_ms: None,
            detail: String::new(),
            updated_at_ms: 0,
        }
    }

    #[tokio::test]
    async fn instances_round_trip_and_the_live_set_keeps_owed_resolves() {
        let url = fresh_database_url().await;
        let s = Store::connect(&url, StoreConfig::default()).await.unwrap();
        let mut tx = s.pool().begin().await.unwrap();
        let a = instance("a", LifecycleState::Pending);
        let (id, episode) = save_instance(&mut tx, &a).await.unwrap();
        assert_eq!(episode, 1);
        // The same fingerprint again updates the row in place.
        let mut fired = a.clone();
        fired.state = LifecycleState::Firing;
        fired.fired_at_ms = Some(1_765_000_120_000);
        assert_eq!(save_instance(&mut tx, &fired).await.unwrap(), (id, 1));
        add_event(
            &mut tx,
            id,
            &NewEvent {
                kind: EventKind::Transition,
                from: Some(LifecycleState::Pending),
                to: Some(LifecycleState::Firing),
                by: "system",
                detail: "value 12.5",
                at_ms: 1_765_000_120_000,
            },
        )
        .await
        .unwrap();
        // Resolved, but its firing notice went out: still live (a resolve is owed).
        let mut owed = instance("b", LifecycleState::Resolved);
        owed.notified = Notified::Firing;
        save_instance(&mut tx, &owed).await.unwrap();
        // Resolved and told: not live.
        let mut done = instance("c", LifecycleState::Resolved);
        done.notified = Notified::Resolved;
        save_instance(&mut tx, &done).await.unwrap();
        // Going active again starts the next episode, even from a caller that says 1.
        let mut again = instance("d", LifecycleState::Resolved);
        save_instance(&mut tx, &again).await.unwrap();
        again.state = LifecycleState::Pending;
        assert_eq!(save_instance(&mut tx, &again).await.unwrap().1, 2);
        again.state = LifecycleState::Inactive;
        save_instance(&mut tx, &again).await.unwrap();
        tx.commit().await.unwrap();

        let mut conn = s.pool().acquire().await.unwrap();
        let live = live_instances(&mut conn).await.unwrap();
        let fps: Vec<&str> = live.iter().map(|a| a.fingerprint.as_str()).collect();
        assert_eq!(fps, ["a", "b"]);
        let back = &live[0];
        assert_eq!(back.state, LifecycleState::Firing);
        assert_eq!(back.fired_at_ms, Some(1_765_000_120_000));
        assert_eq!(back.active_at_ms, Some(1_765_000_000_000));
        assert_eq!(back.labels, a.labels);
        assert_eq!(back.last_value, Some(12.5));

        let events = s.alert_events(id).await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].to_state.as_deref(), Some("firing"));
        assert_eq!(events[0].at_ms, 1_765_000_120_000);

        let firing = s
            .lifecycle_alerts(&AlertFilter {
                states: vec![LifecycleState::Firing],
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(firing.len(), 1);
        assert_eq!(firing[0].id, id);
        assert!(s
            .lifecycle_alerts(&AlertFilter {
                rule: Some("Other".into()),
                ..Default::default()
            })
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn groups_are_saved_locked_and_removed() {
        let url = fresh_database_url().await;
        let s = Store::connect(&url, StoreConfig::default()).await.unwrap();
        let mut tx = s.pool().begin().await.unwrap();
        let g = NotificationGroup {
            group_key: "default/{alertname=\"Lag\"}".into(),
            route: "default".into(),
            labels: BTreeMap::from([("alertname".into(), "Lag".into())]),
            created_at_ms: 1_765_000_000_000,
            last_notified_at_ms: Some(1_765_000_030_000),
            seq: 3,
            last_contents: vec![GroupEntry {
                fingerprint: "a".into(),
                episode: 2,
                state: "firing".into(),
            }],
        };
        save_group(&mut tx, &g).await.unwrap();
        assert_eq!(lock_groups(&mut tx).await.unwrap(), vec![g.clone()]);
        delete_group(&mut tx, &g.group_key).await.unwrap();
        assert!(lock_groups(&mut tx).await.unwrap().is_empty());
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn silences_are_created_listed_updated_and_expired() {
        let url = fresh_database_url().await;
        let s = Store::connect(&url, StoreConfig::default()).await.unwrap();
        let now = 1_765_000_000_000;
        let new = NewSilence {
            matchers: vec![SilenceMatcher {
                name: "job".into(),
                value: "etl.*".into(),
                is_regex: true,
                is_equal: true,
            }],
            starts_at_ms: now,
            ends_at_ms: now + 3_600_000,
            created_by: "oncall".into(),
            comment: "deploying".into(),
        };
        let id = s.create_silence(&new).await.unwrap();
        assert_eq!(id.len(), 36, "a UUID: {id}");
        let got = s.silence(&id).await.unwrap().unwrap();
        assert_eq!(got.matchers, new.matchers);
        assert_eq!(got.status(now + 1), "active");
        assert_eq!(got.status(now - 1), "pending");

        let mut conn = s.pool().acquire().await.unwrap();
        assert_eq!(current_silences(&mut conn, now).await.unwrap().len(), 1);
        let longer = NewSilence {
            ends_at_ms: now + 7_200_000,
            ..new.clone()
        };
        assert!(s.update_silence(&id, &longer).await.unwrap());
        assert!(!s.update_silence("no-such-id", &longer).await.unwrap());

        assert_eq!(
            s.expire_silence(&id, now + 60_000).await.unwrap(),
            Some(true)
        );
        assert_eq!(
            s.expire_silence(&id, now + 120_000).await.unwrap(),
            Some(false)
        );
        assert_eq!(s.expire_silence("nope", now).await.unwrap(), None);
        let expired = s.silence(&id).await.unwrap().unwrap();
        assert_eq!(expired.ends_at_ms, now + 60_000);
        assert_eq!(expired.status(now + 60_000), "expired");
        assert!(current_silences(&mut conn, now + 60_000)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(s.silences().await.unwrap().len(), 1);
    }
}
