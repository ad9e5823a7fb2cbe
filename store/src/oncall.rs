//! On-call state kept in PostgreSQL (`migrations/0090_oncall_schedules.sql`): schedule
//! overrides added at run time, users' addresses for person-addressed mail, and the record of
//! each alert group's escalation (which levels went out, to whom, and whether the resolve they
//! are owed was sent).
//!
//! The escalation functions take the lifecycle engine's `&mut PgConnection`, so a level's
//! record, its outbox rows and its timeline events commit in the engine's round transaction.
//! Deciding *when* a level is due is the engine's (`server::lifecycle::escalation`).

use crate::error::DbContext;
use crate::{sql_ms, sql_ts, Store, StoreError};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, Row};
use std::collections::HashMap;

/// A schedule override added at run time. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredOverride {
    pub id: i64,
    pub schedule: String,
    pub user: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub created_by: String,
    pub created_at_ms: i64,
}

/// Whom one escalation level reached, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// The policy's target as written (`schedule primary`, `user lead`, `channel slack`).
    pub target: String,
    /// The user a schedule or user target resolved to, if any.
    #[serde(default)]
    pub user: Option<String>,
    /// The outbox channel the notice was written for (`mailto:<address>` for a person);
    /// `None` when it could not be sent.
    #[serde(default)]
    pub channel: Option<String>,
    /// Why it was not sent (empty when it was).
    #[serde(default)]
    pub note: String,
}

/// One level that went out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationStep {
    /// 0-based index into the policy's levels.
    pub level: i32,
    pub at_ms: i64,
    pub recipients: Vec<Recipient>,
}

/// One alert group's escalation (a group's life: `group_key` and when its row was made).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    pub id: i64,
    pub group_key: String,
    pub group_born_ms: i64,
    /// 1 for the first escalation of the group row's life, then 2, ...
    pub seq: i32,
    pub policy: String,
    /// The group's first firing notice: levels count from here.
    pub started_ms: i64,
    pub resolved_ms: Option<i64>,
    pub steps: Vec<EscalationStep>,
}

impl Escalation {
    pub fn has_level(&self, level: i32) -> bool {
        self.steps.iter().any(|s| s.level == level)
    }
}

const ESCALATION_COLUMNS: &str = "id, group_key, seq, policy, \
     (extract(epoch from group_born_at) * 1000)::bigint AS born_ms, \
     (extract(epoch from started_at) * 1000)::bigint AS started_ms, \
     (extract(epoch from resolved_at) * 1000)::bigint AS resolved_ms";

async fn with_steps(
    conn: &mut PgConnection,
    rows: Vec<sqlx::postgres::PgRow>,
) -> Result<Vec<Escalation>, StoreError> {
    let mut out: Vec<Escalation> = rows
        .iter()
        .map(|r| Escalation {
            id: r.get("id"),
            group_key: r.get("group_key"),
            group_born_ms: r.get("born_ms"),
            seq: r.get("seq"),
            policy: r.get("policy"),
            started_ms: r.get("started_ms"),
            resolved_ms: r.get("resolved_ms"),
            steps: Vec::new(),
        })
        .collect();
    if out.is_empty() {
        return Ok(out);
    }
    let ids: Vec<i64> = out.iter().map(|e| e.id).collect();
    let steps = sqlx::query(&format!(
        "SELECT escalation_id, level, {} AS at_ms, recipients FROM escalation_steps
         WHERE escalation_id = ANY($1) ORDER BY escalation_id, level",
        sql_ms("at")
    ))
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await
    .context("reading escalation steps")?;
    let mut by_id: HashMap<i64, Vec<EscalationStep>> = HashMap::new();
    for s in steps {
        let recipients: Vec<Recipient> = serde_json::from_value(s.get("recipients"))
            .map_err(|e| StoreError::Corrupt(format!("escalation_steps.recipients: {e}")))?;
        by_id
            .entry(s.get("escalation_id"))
            .or_default()
            .push(EscalationStep {
                level: s.get("level"),
                at_ms: s.get("at_ms"),
                recipients,
            });
    }
    for e in &mut out {
        e.steps = by_id.remove(&e.id).unwrap_or_default();
    }
    Ok(out)
}

/// The escalations still open (their group fires, or their resolve is not sent yet), rows
/// locked for the caller's transaction so two leaders (during a hand-over) cannot both act.
pub async fn open_escalations(conn: &mut PgConnection) -> Result<Vec<Escalation>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {ESCALATION_COLUMNS} FROM escalations WHERE resolved_at IS NULL
         ORDER BY id FOR UPDATE"
    ))
    .fetch_all(&mut *conn)
    .await
    .context("reading open escalations")?;
    with_steps(conn, rows).await
}

/// Starts a new escalation of a group (the caller found none open for it): the next `seq`
/// of the group row's life. Two leaders racing (they cannot, by the leadership lock) would
/// collide on the unique key and one round would fail and be retried.
pub async fn start_escalation(
    conn: &mut PgConnection,
    group_key: &str,
    group_born_ms: i64,
    policy: &str,
    started_ms: i64,
) -> Result<Escalation, StoreError> {
    let born = sql_ts(2);
    let rows = sqlx::query(&format!(
        "INSERT INTO escalations (group_key, group_born_at, seq, policy, started_at)
         SELECT $1, {born}, coalesce(max(seq), 0) + 1, $3, {}
         FROM escalations WHERE group_key = $1 AND group_born_at = {born}
         RETURNING {ESCALATION_COLUMNS}",
        sql_ts(4)
    ))
    .bind(group_key)
    .bind(group_born_ms)
    .bind(policy)
    .bind(started_ms)
    .fetch_all(&mut *conn)
    .await
    .context("starting an escalation")?;
    with_steps(conn, rows)
        .await?
        .pop()
        .ok_or_else(|| StoreError::Corrupt("starting an escalation inserted no row".into()))
}

/// Records that `level` went out to `recipients`.
pub async fn add_step(
    conn: &mut PgConnection,
    escalation_id: i64,
    step: &EscalationStep,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO escalation_steps (escalation_id, level, at, recipients)
         VALUES ($1, $2, {}, $4) ON CONFLICT DO NOTHING",
        sql_ts(3)
    ))
    .bind(escalation_id)
    .bind(step.level)
    .bind(step.at_ms)
    .bind(serde_json::to_value(&step.recipients).expect("recipients are plain data"))
    .execute(conn)
    .await
    .context("recording an escalation step")?;
    Ok(())
}

/// Closes an escalation: its group stopped firing and the resolve owed went out.
pub async fn finish_escalation(
    conn: &mut PgConnection,
    escalation_id: i64,
    at_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "UPDATE escalations SET resolved_at = {} WHERE id = $1",
        sql_ts(2)
    ))
    .bind(escalation_id)
    .bind(at_ms)
    .execute(conn)
    .await
    .context("closing an escalation")?;
    Ok(())
}

/// The episode each of the alerts `ids` is acknowledged in (alerts never acknowledged, or
/// taken back, are left out).
pub async fn acknowledged(
    conn: &mut PgConnection,
    ids: &[i64],
) -> Result<HashMap<i64, i32>, StoreError> {
    let rows = sqlx::query(
        "SELECT alert_id, acknowledged_episode FROM alert_oncall
         WHERE alert_id = ANY($1) AND acknowledged_by IS NOT NULL
           AND acknowledged_episode IS NOT NULL",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
    .context("reading acknowledgements")?;
    Ok(rows
        .iter()
        .map(|r| (r.get("alert_id"), r.get("acknowledged_episode")))
        .collect())
}

/// The ids of the alerts of `group_key` that fired since `since_ms` (the alerts an
/// escalation of that group's life was about).
pub async fn alerts_of_group(
    conn: &mut PgConnection,
    group_key: &str,
    since_ms: i64,
) -> Result<Vec<i64>, StoreError> {
    sqlx::query_scalar(&format!(
        "SELECT id FROM alert_instances WHERE group_key = $1 AND fired_at >= {} ORDER BY id",
        sql_ts(2)
    ))
    .bind(group_key)
    .bind(since_ms)
    .fetch_all(conn)
    .await
    .context("reading the alerts of a group")
}

/// A user as escalation needs them: whether they can be paged, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub email: Option<String>,
    pub disabled: bool,
}

/// Every user's contact, by name.
pub async fn contacts(conn: &mut PgConnection) -> Result<HashMap<String, Contact>, StoreError> {
    let rows = sqlx::query("SELECT name, email, disabled FROM users")
        .fetch_all(conn)
        .await
        .context("reading users' addresses")?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get("name"),
                Contact {
                    email: r.get("email"),
                    disabled: r.get("disabled"),
                },
            )
        })
        .collect())
}

const OVERRIDE_COLUMNS: &str = "id, schedule, user_name, created_by, \
     (extract(epoch from starts_at) * 1000)::bigint AS from_ms, \
     (extract(epoch from ends_at) * 1000)::bigint AS to_ms, \
     (extract(epoch from created_at) * 1000)::bigint AS created_ms";

fn override_of(r: &sqlx::postgres::PgRow) -> StoredOverride {
    StoredOverride {
        id: r.get("id"),
        schedule: r.get("schedule"),
        user: r.get("user_name"),
        from_ms: r.get("from_ms"),
        to_ms: r.get("to_ms"),
        created_by: r.get("created_by"),
        created_at_ms: r.get("created_ms"),
    }
}

/// Overrides that have not ended at `now_ms`, oldest first (a later one wins).
pub async fn live_overrides(
    conn: &mut PgConnection,
    now_ms: i64,
) -> Result<Vec<StoredOverride>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {OVERRIDE_COLUMNS} FROM oncall_overrides WHERE ends_at > {} ORDER BY id",
        sql_ts(1)
    ))
    .bind(now_ms)
    .fetch_all(conn)
    .await
    .context("reading schedule overrides")?;
    Ok(rows.iter().map(override_of).collect())
}

impl Store {
    /// [`live_overrides`] on the read pool, for the pages.
    pub async fn schedule_overrides(&self, now_ms: i64) -> Result<Vec<StoredOverride>, StoreError> {
        let mut conn = self
            .pool()
            .acquire()
            .await
            .context("reading schedule overrides")?;
        live_overrides(&mut conn, now_ms).await
    }

    /// Adds an override; the caller has checked the schedule exists. Refuses an unknown or
    /// disabled user and an empty time range, saying which.
    pub async fn add_schedule_override(
        &self,
        schedule: &str,
        user: &str,
        from_ms: i64,
        to_ms: i64,
        by: &str,
    ) -> Result<i64, StoreError> {
        if to_ms <= from_ms {
            return Err(StoreError::InvalidQuery(
                "an override must end after it starts".into(),
            ));
        }
        let disabled: Option<bool> =
            sqlx::query_scalar("SELECT disabled FROM users WHERE name = $1")
                .bind(user)
                .fetch_optional(self.pool())
                .await
                .context("checking an override's user")?;
        match disabled {
            None => {
                return Err(StoreError::InvalidQuery(format!(
                    "there is no user named {user:?}; `pipewatch user list` shows the users"
                )))
            }
            Some(true) => {
                return Err(StoreError::InvalidQuery(format!(
                    "user {user:?} is disabled; enable them first or choose someone else"
                )))
            }
            Some(false) => {}
        }
        sqlx::query_scalar(&format!(
            "INSERT INTO oncall_overrides (schedule, user_name, starts_at, ends_at, created_by)
             VALUES ($1, $2, {}, {}, $5) RETURNING id",
            sql_ts(3),
            sql_ts(4)
        ))
        .bind(schedule)
        .bind(user)
        .bind(from_ms)
        .bind(to_ms)
        .bind(by)
        .fetch_one(self.pool())
        .await
        .context("adding a schedule override")
    }

    /// Removes an override; returns it, or `None` when there is no such id.
    pub async fn delete_schedule_override(
        &self,
        id: i64,
    ) -> Result<Option<StoredOverride>, StoreError> {
        let row = sqlx::query(&format!(
            "DELETE FROM oncall_overrides WHERE id = $1 RETURNING {OVERRIDE_COLUMNS}"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .context("removing a schedule override")?;
        Ok(row.as_ref().map(override_of))
    }

    /// The names of every user, for checking the names on-call files use at start.
    pub async fn user_names(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT name FROM users ORDER BY name")
            .fetch_all(self.pool())
            .await
            .context("listing user names")
    }

    /// The escalations of the group keys `keys`, newest first, for the pages.
    pub async fn escalations_of(&self, keys: &[String]) -> Result<Vec<Escalation>, StoreError> {
        let mut conn = self.pool().acquire().await.context("reading escalations")?;
        let rows = sqlx::query(&format!(
            "SELECT {ESCALATION_COLUMNS} FROM escalations WHERE group_key = ANY($1)
             ORDER BY id DESC"
        ))
        .bind(keys)
        .fetch_all(&mut *conn)
        .await
        .context("reading escalations")?;
        with_steps(&mut conn, rows).await
    }
}
