//! The alert lifecycle over HTTP: alert instances and their timelines, acknowledgements and
//! notes, silences (Alertmanager API v2 shapes), and the rules as Prometheus serves them.
//!
//! - `GET /api/v1/lifecycle/alerts[?state=firing,pending][&rule=][&source=][&matcher=...]
//!   [&limit=][&offset=]`: instances, most recently changed first, in the Prometheus envelope;
//!   `matcher` (repeatable) takes Alertmanager matchers (`job=~"etl.*"`). Each item says
//!   which silence holds it back (`silenced_by`), if any, and which alert inhibits it
//!   (`inhibitedBy`: `{"alert": id, "rule": name}`, see `crate::lifecycle::inhibit`).
//! - `GET /api/v1/lifecycle/alerts/{id}`: one instance with its event timeline.
//! - `POST /api/v1/lifecycle/alerts/{id}/acknowledge`, `/unacknowledge`, `/notes`,
//!   `/assign` (`{"assignee": "alice"}`, empty to unassign), `/snooze` (`{"duration": "30m"}`
//!   or `{"until": "<RFC 3339>"}`: no repeat notices until then) and `/resolve` (resolved by
//!   hand; the engine carries it out within a tick, and a rule that still fires opens a new
//!   episode): on-call actions, each an entry on the timeline with who did it (`by` when the
//!   caller is anonymous) and an optional `comment`. 404 for an unknown alert, 409 when the
//!   action does not fit the alert's state (already acknowledged, already resolved).
//! - `GET /api/v2/silences`, `POST /api/v2/silences`, `GET|DELETE /api/v2/silence/{id}`: as
//!   Alertmanager v2 (bare JSON, errors as a JSON string), so `amtool` and Grafana's
//!   Alertmanager data source can manage them. DELETE expires the silence; it stays listed.
//! - `GET /api/v1/rules[?type=alert|record]`: Prometheus' shape (groups, rules, health,
//!   lastError, lastEvaluation, evaluationTime, the alerts of each alerting rule), from what
//!   the leading instance last wrote.

use super::{ApiError, ListPage, LIST_BYTE_BUDGET};
use crate::lifecycle::matcher::Matcher;
use crate::lifecycle::oncall::{ActionError, OnCallRequest};
use crate::state::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Extension;
use axum::{Json, Router};
use model::auth::{Principal, Via};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use store::lifecycle::{
    AlertFilter, AlertInstance, AlertSource, EventKind, LifecycleState, NewEvent, NewSilence,
    OnCall, Silence, SilenceMatcher,
};

const DEFAULT_LIMIT: usize = 500;
const MAX_LIMIT: usize = 1000;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/lifecycle/alerts", get(list))
        .route("/api/v1/lifecycle/alerts/{id}", get(one))
        .route("/api/v1/lifecycle/alerts/{id}/notes", post(note))
        .route(
            "/api/v1/lifecycle/alerts/{id}/acknowledge",
            action_post(ActionKind::Acknowledge),
        )
        .route(
            "/api/v1/lifecycle/alerts/{id}/unacknowledge",
            action_post(ActionKind::Unacknowledge),
        )
        .route(
            "/api/v1/lifecycle/alerts/{id}/assign",
            action_post(ActionKind::Assign),
        )
        .route(
            "/api/v1/lifecycle/alerts/{id}/snooze",
            action_post(ActionKind::Snooze),
        )
        .route(
            "/api/v1/lifecycle/alerts/{id}/resolve",
            action_post(ActionKind::Resolve),
        )
        .route("/api/v2/silences", get(silences).post(post_silence))
        .route("/api/v2/silence/{id}", get(silence).delete(expire))
        .route("/api/v1/rules", get(rules))
        .with_state(state)
}

fn not_found(message: String) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: "not_found",
        message,
    }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn opt_time(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |m| Value::String(rfc3339(m)))
}

/// What people did to an alert, as the API shows it (the acknowledgement only when it is
/// for the current episode).
fn oncall_json(a: &AlertInstance, o: Option<&OnCall>, now: i64) -> Value {
    let Some(o) = o else {
        return json!({"acknowledgedBy": null, "acknowledgedAt": null, "assignee": null,
                      "snoozedUntil": null, "resolveRequestedBy": null});
    };
    let acked = o.acknowledged_in(a.episode);
    json!({
        "acknowledgedBy": acked,
        "acknowledgedAt": opt_time(o.acknowledged_at_ms.filter(|_| acked.is_some())),
        "assignee": o.assignee,
        "snoozedUntil": opt_time(o.snoozed_until_ms.filter(|_| o.snoozed_at(now))),
        "resolveRequestedBy": o.resolve_requested_by,
    })
}

/// An instance as the API shows it.
fn alert_json(a: &AlertInstance, silenced_by: Option<&str>, oncall: Value) -> Value {
    json!({
        "oncall": oncall,
        "id": a.id,
        "fingerprint": a.fingerprint,
        "source": a.source,
        "rule": a.rule,
        "group": a.rule_group,
        "labels": a.labels,
        "annotations": a.annotations,
        "state": a.state,
        "activeAt": opt_time(a.active_at_ms),
        "firedAt": opt_time(a.fired_at_ms),
        "resolvedAt": opt_time(a.resolved_at_ms),
        "value": a.last_value.map(query::format_value),
        "lastEvaluation": opt_time(a.last_eval_at_ms),
        "episode": a.episode,
        "notificationGroup": a.group_key,
        "notified": a.notified,
        "detail": a.detail,
        "silencedBy": silenced_by,
        "updatedAt": rfc3339(a.updated_at_ms),
    })
}

/// Silences active now, compiled.
async fn active_silences(st: &AppState, now: i64) -> Result<Vec<(String, Vec<Matcher>)>, ApiError> {
    crate::lifecycle::oncall::active_silences(&st.store, now)
        .await
        .map_err(ApiError::from)
}

fn silenced_by<'a>(silences: &'a [(String, Vec<Matcher>)], a: &AlertInstance) -> Option<&'a str> {
    silences
        .iter()
        .find(|(_, m)| crate::lifecycle::matcher::all_match(m, &a.labels))
        .map(|(id, _)| id.as_str())
}

fn states_hint() -> String {
    LifecycleState::ALL
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

async fn list(State(st): State<AppState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let mut filter = AlertFilter::default();
    let mut matchers = Vec::new();
    let mut limit = DEFAULT_LIMIT;
    let mut offset = 0usize;
    for (k, v) in url::form_urlencoded::parse(q.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "state" => {
                for s in v.split(',').filter(|s| !s.is_empty()) {
                    filter.states.push(s.parse().map_err(|_| {
                        ApiError::bad_data(format!(
                            "state {s:?} is not known; send one or more of {} (comma-separated)",
                            states_hint()
                        ))
                    })?);
                }
            }
            "rule" => filter.rule = Some(v.into_owned()),
            "source" => {
                filter.source = Some(match v.as_ref() {
                    "rule" => AlertSource::Rule,
                    "alertmanager" => AlertSource::Alertmanager,
                    "anomaly" => AlertSource::Anomaly,
                    other => {
                        return Err(ApiError::bad_data(format!(
                            "source {other:?} is not known; send rule, alertmanager or anomaly"
                        )))
                    }
                })
            }
            "matcher" => matchers
                .push(Matcher::parse(&v).map_err(|e| ApiError::bad_data(format!("matcher: {e}")))?),
            "limit" => {
                limit = match v.parse::<usize>() {
                    Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                    _ => {
                        return Err(ApiError::bad_data(format!(
                    "limit {v:?} is out of range; send 1 to {MAX_LIMIT} and page on with offset"
                )))
                    }
                }
            }
            "offset" => {
                offset = v.parse().map_err(|_| {
                    ApiError::bad_data(format!("offset {v:?} is not a whole number"))
                })?
            }
            other => {
                return Err(ApiError::bad_data(format!(
                    "unknown parameter {other:?}; use state, rule, source, matcher, limit, offset"
                )))
            }
        }
    }
    let now = model::clock::now_ms();
    let silences = active_silences(&st, now).await?;
    let alerts: Vec<AlertInstance> = st
        .store
        .lifecycle_alerts(&filter)
        .await?
        .into_iter()
        .filter(|a| crate::lifecycle::matcher::all_match(&matchers, &a.labels))
        .collect();
    let total = alerts.len();
    let shown: Vec<&AlertInstance> = alerts.iter().skip(offset).take(limit).collect();
    let ids: Vec<i64> = shown.iter().map(|a| a.id).collect();
    let oncall = st.store.oncall_states(&ids).await?;
    let inhibited = crate::lifecycle::inhibit::inhibited_by(st.store.pool(), &ids).await?;
    let page = ListPage::within(
        shown.into_iter().map(|a| {
            let mut v = alert_json(
                a,
                silenced_by(&silences, a),
                oncall_json(a, oncall.get(&a.id), now),
            );
            v["inhibitedBy"] = inhibited.get(&a.id).cloned().unwrap_or(Value::Null);
            v
        }),
        LIST_BYTE_BUDGET,
    );
    let end = offset.saturating_add(page.items.len());
    let next = (end < total).then(|| json!({ "offset": end }));
    Ok(page.answer(next).into_response())
}

fn parse_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad_data(format!("alert id {id:?} is not a number")))
}

async fn one(State(st): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let Some(a) = st.store.lifecycle_alert(id).await? else {
        return Err(not_found(format!(
            "there is no alert {id}; list them at /api/v1/lifecycle/alerts"
        )));
    };
    let now = model::clock::now_ms();
    let silences = active_silences(&st, now).await?;
    let oncall = st.store.oncall_states(&[id]).await?;
    let events: Vec<Value> = st
        .store
        .alert_events(id)
        .await?
        .into_iter()
        .map(|e| {
            json!({
                "at": rfc3339(e.at_ms),
                "kind": e.kind,
                "from": e.from_state,
                "to": e.to_state,
                "by": e.by,
                "detail": e.detail,
            })
        })
        .collect();
    let mut body = alert_json(
        &a,
        silenced_by(&silences, &a),
        oncall_json(&a, oncall.get(&id), now),
    );
    body["inhibitedBy"] = crate::lifecycle::inhibit::inhibited_by(st.store.pool(), &[id])
        .await?
        .remove(&id)
        .unwrap_or(Value::Null);
    body["timeline"] = Value::Array(events);
    Ok(Json(json!({"status": "success", "data": body})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    /// Who acts; ignored when the request is authenticated (the user or token is recorded).
    #[serde(default)]
    by: String,
    #[serde(default, alias = "text")]
    comment: String,
    /// `assign`: the user; empty or missing takes the assignment away.
    #[serde(default)]
    assignee: Option<String>,
    /// `snooze`: for how long (`30m`, `2h`) ...
    #[serde(default)]
    duration: Option<String>,
    /// ... or until when (RFC 3339).
    #[serde(default)]
    until: Option<String>,
}

/// The on-call actions besides notes (which need no state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ActionKind {
    Acknowledge,
    Unacknowledge,
    Assign,
    Snooze,
    Resolve,
}

/// Who an action or silence is recorded as: the logged-in user or API token when there is
/// one (a client cannot act in someone else's name), else what the body claims.
fn actor(who: Option<&Principal>, claimed: &str) -> String {
    match who {
        Some(p) if p.via != Via::Anonymous => p.name.clone(),
        _ => claimed.trim().to_string(),
    }
}

fn parse_body(
    body: Result<Json<ActionBody>, axum::extract::rejection::JsonRejection>,
) -> Result<ActionBody, ApiError> {
    body.map(|Json(b)| b).map_err(|e| {
        ApiError::bad_data(format!(
            "the body must be JSON like {{\"by\": \"alice\", \"comment\": \"looking\"}}: {}",
            e.body_text()
        ))
    })
}

fn who_acts(who: Option<&Principal>, b: &ActionBody) -> Result<String, ApiError> {
    let by = actor(who, &b.by);
    if by.is_empty() {
        return Err(ApiError::bad_data(
            "`by` is empty; say who acts (or log in / send an API token)",
        ));
    }
    Ok(by)
}

/// Until when a snooze holds, from `duration` or `until`.
fn snooze_until(b: &ActionBody, now: i64) -> Result<i64, ApiError> {
    use crate::lifecycle::oncall::{check_snooze, snooze_for};
    let until = match (b.duration.as_deref(), b.until.as_deref()) {
        (Some(d), None) => snooze_for(d, now).map_err(ApiError::bad_data)?,
        (None, Some(u)) => chrono::DateTime::parse_from_rfc3339(u.trim())
            .map(|t| t.timestamp_millis())
            .map_err(|e| {
                ApiError::bad_data(format!(
                    "until {u:?} is not an RFC 3339 time like \"2026-12-07T10:00:00Z\": {e}"
                ))
            })?,
        _ => {
            return Err(ApiError::bad_data(
                "send either `duration` (like \"30m\") or `until` (an RFC 3339 time), not both",
            ))
        }
    };
    check_snooze(until, now).map_err(ApiError::bad_data)?;
    Ok(until)
}

/// Carries out an on-call action: the store's outcome as an error with the status that fits.
async fn oncall_action(
    store: &store::Store,
    id: i64,
    request: OnCallRequest,
    by: &str,
    comment: &str,
) -> Result<(), ApiError> {
    crate::lifecycle::oncall::perform(store, id, request, by, comment)
        .await
        .map_err(|e| match e {
            ActionError::NotFound(m) => not_found(m),
            ActionError::Conflict(m) => ApiError {
                status: StatusCode::CONFLICT,
                code: "conflict",
                message: m,
            },
            ActionError::Invalid(m) => ApiError::bad_data(m),
            ActionError::Store(e) => e.into(),
        })
}

async fn action(
    st: &AppState,
    who: Option<&Principal>,
    id: &str,
    body: Result<Json<ActionBody>, axum::extract::rejection::JsonRejection>,
    kind: ActionKind,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(id)?;
    let b = parse_body(body)?;
    let by = who_acts(who, &b)?;
    let public = match kind {
        ActionKind::Acknowledge => OnCallRequest::Acknowledge,
        ActionKind::Unacknowledge => OnCallRequest::Unacknowledge,
        ActionKind::Resolve => OnCallRequest::Resolve,
        ActionKind::Assign => OnCallRequest::Assign(b.assignee.clone().unwrap_or_default()),
        ActionKind::Snooze => OnCallRequest::Snooze(snooze_until(&b, model::clock::now_ms())?),
    };
    oncall_action(&st.store, id, public, &by, &b.comment).await?;
    let name = match kind {
        ActionKind::Acknowledge => "acknowledged",
        ActionKind::Unacknowledge => "unacknowledged",
        ActionKind::Assign => "assigned",
        ActionKind::Snooze => "snoozed",
        ActionKind::Resolve => "resolve_requested",
    };
    Ok(Json(
        json!({"status": "success", "data": {"id": id, "kind": name}}),
    ))
}

/// `POST .../{id}/<action>`: one handler per on-call action (its name holds `post(` so the
/// route scan of tests/tests/authz.rs sees the method).
fn action_post(kind: ActionKind) -> axum::routing::MethodRouter<AppState> {
    post(
        move |State(st): State<AppState>,
              who: Option<Extension<Principal>>,
              Path(id): Path<String>,
              body: Result<Json<ActionBody>, axum::extract::rejection::JsonRejection>| async move {
            action(&st, who.as_ref().map(|w| &w.0), &id, body, kind).await
        },
    )
}

async fn note(
    State(st): State<AppState>,
    who: Option<Extension<Principal>>,
    Path(id): Path<String>,
    body: Result<Json<ActionBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let b = parse_body(body)?;
    let by = who_acts(who.as_ref().map(|w| &w.0), &b)?;
    if b.comment.trim().is_empty() {
        return Err(ApiError::bad_data("`text` is empty; write the note"));
    }
    let added = st
        .store
        .add_alert_event(
            id,
            &NewEvent {
                kind: EventKind::Note,
                from: None,
                to: None,
                by: &by,
                detail: &b.comment,
                at_ms: model::clock::now_ms(),
            },
        )
        .await?;
    if !added {
        return Err(not_found(format!("there is no alert {id}")));
    }
    Ok(Json(
        json!({"status": "success", "data": {"id": id, "kind": EventKind::Note}}),
    ))
}

/// An Alertmanager v2 error: the status and the message as a JSON string.
struct AmError(StatusCode, String);

impl IntoResponse for AmError {
    fn into_response(self) -> Response {
        (self.0, Json(Value::String(self.1))).into_response()
    }
}

impl From<store::StoreError> for AmError {
    fn from(e: store::StoreError) -> Self {
        tracing::warn!(error = %e, "silence request failed in the store");
        AmError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the database could not answer: {e}"),
        )
    }
}

fn silence_json(s: &Silence, now: i64) -> Value {
    json!({
        "id": s.id,
        "status": {"state": s.status(now)},
        "updatedAt": rfc3339(s.updated_at_ms),
        "matchers": s.matchers,
        "startsAt": rfc3339(s.starts_at_ms),
        "endsAt": rfc3339(s.ends_at_ms),
        "createdBy": s.created_by,
        "comment": s.comment,
    })
}

async fn silences(State(st): State<AppState>) -> Result<Json<Value>, AmError> {
    let now = model::clock::now_ms();
    Ok(Json(Value::Array(
        st.store
            .silences()
            .await?
            .iter()
            .map(|s| silence_json(s, now))
            .collect(),
    )))
}

async fn silence(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AmError> {
    match st.store.silence(&id).await? {
        Some(s) => Ok(Json(silence_json(&s, model::clock::now_ms()))),
        None => Err(AmError(
            StatusCode::NOT_FOUND,
            format!("silence {id} not found"),
        )),
    }
}

async fn expire(State(st): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, AmError> {
    match st.store.expire_silence(&id, model::clock::now_ms()).await? {
        Some(_) => Ok(StatusCode::OK),
        None => Err(AmError(
            StatusCode::NOT_FOUND,
            format!("silence {id} not found"),
        )),
    }
}

/// Alertmanager's `postableSilence`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostableSilence {
    #[serde(default)]
    id: Option<String>,
    matchers: Vec<SilenceMatcher>,
    starts_at: String,
    ends_at: String,
    #[serde(default)]
    created_by: String,
    comment: String,
}

fn parse_rfc3339(field: &str, v: &str) -> Result<i64, AmError> {
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            AmError(
                StatusCode::BAD_REQUEST,
                format!("{field} {v:?} is not an RFC 3339 time like \"2026-12-07T10:00:00Z\": {e}"),
            )
        })
}

/// Checks a posted silence as Alertmanager does and returns it ready to store.
fn validate_silence(p: PostableSilence, now: i64) -> Result<(Option<String>, NewSilence), AmError> {
    let bad = |m: String| AmError(StatusCode::BAD_REQUEST, m);
    if p.matchers.is_empty() {
        return Err(bad(
            "at least one matcher is required, like {\"name\": \"alertname\", \"value\": \"Lag\", \"isRegex\": false}".into(),
        ));
    }
    for (i, m) in p.matchers.iter().enumerate() {
        Matcher::from_silence(m).map_err(|e| bad(format!("matchers[{i}]: {e}")))?;
    }
    // A silence that matches everything would mute every page.
    let empty = BTreeMap::new();
    if p.matchers
        .iter()
        .filter_map(|m| Matcher::from_silence(m).ok())
        .all(|m| m.matches(&empty))
    {
        return Err(bad(
            "the matchers match an alert without labels, so they would silence everything; match at least one label's value".into(),
        ));
    }
    let starts = parse_rfc3339("startsAt", &p.starts_at)?;
    let ends = parse_rfc3339("endsAt", &p.ends_at)?;
    if ends < starts {
        return Err(bad("endsAt is before startsAt; swap them".into()));
    }
    if ends <= now {
        return Err(bad(
            "endsAt is in the past; a silence must end in the future".into(),
        ));
    }
    if p.created_by.trim().is_empty() {
        return Err(bad("createdBy is empty; say who creates the silence".into()));
    }
    if p.comment.trim().is_empty() {
        return Err(bad(
            "comment is empty; say why the alerts are silenced".into()
        ));
    }
    Ok((
        p.id.filter(|i| !i.is_empty()),
        NewSilence {
            matchers: p.matchers,
            // As Alertmanager: a start in the past means now.
            starts_at_ms: starts.max(now),
            ends_at_ms: ends,
            created_by: p.created_by,
            comment: p.comment,
        },
    ))
}

async fn post_silence(
    State(st): State<AppState>,
    who: Option<Extension<Principal>>,
    body: Result<Json<PostableSilence>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, AmError> {
    let Json(p) = body.map_err(|e| {
        AmError(
            StatusCode::BAD_REQUEST,
            format!(
                "the body must be an Alertmanager silence (matchers, startsAt, endsAt, createdBy, comment): {}",
                e.body_text()
            ),
        )
    })?;
    let now = model::clock::now_ms();
    let mut p = p;
    p.created_by = actor(who.as_ref().map(|w| &w.0), &p.created_by);
    let (id, s) = validate_silence(p, now)?;
    let id = match id {
        Some(id) => {
            if !st.store.update_silence(&id, &s).await? {
                return Err(AmError(
                    StatusCode::NOT_FOUND,
                    format!("silence {id} not found"),
                ));
            }
            id
        }
        None => st.store.create_silence(&s).await?,
    };
    Ok(Json(json!({ "silenceID": id })))
}

#[derive(Deserialize)]
struct RulesQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
}

async fn rules(
    State(st): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<RulesQuery>,
) -> Result<Json<Value>, ApiError> {
    let want = match q.kind.as_deref() {
        None | Some("") => None,
        Some("alert") => Some("alerting"),
        Some("record") => Some("recording"),
        Some(other) => {
            return Err(ApiError::bad_data(format!(
                "type {other:?} is not known; send type=alert or type=record"
            )))
        }
    };
    let statuses = st.store.rule_statuses().await?;
    let active = st
        .store
        .lifecycle_alerts(&AlertFilter {
            states: vec![LifecycleState::Pending, LifecycleState::Firing],
            source: Some(AlertSource::Rule),
            ..Default::default()
        })
        .await?;
    let mut groups: Vec<Value> = Vec::new();
    let mut current: Option<(String, String)> = None;
    for s in statuses {
        let key = (s.group_file.clone(), s.group_name.clone());
        if current.as_ref() != Some(&key) {
            groups.push(json!({
                "name": s.group_name,
                "file": s.group_file,
                "interval": s.group_interval_ms as f64 / 1000.0,
                "limit": 0,
                "rules": [],
                "evaluationTime": 0.0,
                "lastEvaluation": opt_time(None),
            }));
            current = Some(key);
        }
        let g = groups.last_mut().expect("pushed above");
        let mut rule = s.rule.clone();
        let rtype = rule["type"].as_str().unwrap_or("").to_string();
        if want.is_some_and(|w| w != rtype) {
            continue;
        }
        rule["health"] = s.health.clone().into();
        rule["lastError"] = s.last_error.clone().into();
        rule["evaluationTime"] = s.evaluation_s.into();
        rule["lastEvaluation"] = opt_time(s.last_evaluation_ms);
        if rtype == "alerting" {
            let name = rule["name"].as_str().unwrap_or("").to_string();
            let alerts: Vec<&AlertInstance> = active
                .iter()
                .filter(|a| a.rule_group == s.group_name && a.rule == name)
                .collect();
            let state = if alerts.iter().any(|a| a.state == LifecycleState::Firing) {
                "firing"
            } else if alerts.is_empty() {
                "inactive"
            } else {
                "pending"
            };
            rule["state"] = state.into();
            rule["alerts"] = alerts
                .iter()
                .map(|a| {
                    json!({
                        "labels": a.labels,
                        "annotations": a.annotations,
                        "state": a.state,
                        "activeAt": opt_time(a.active_at_ms),
                        "value": a.last_value.map(query::format_value).unwrap_or_default(),
                    })
                })
                .collect::<Vec<_>>()
                .into();
        }
        if let Some(t) = s.last_evaluation_ms {
            g["lastEvaluation"] = opt_time(Some(t));
        }
        let total = g["evaluationTime"].as_f64().unwrap_or(0.0) + s.evaluation_s;
        g["evaluationTime"] = total.into();
        if let Some(rules) = g["rules"].as_array_mut() {
            rules.push(rule);
        }
    }
    Ok(Json(
        json!({"status": "success", "data": {"groups": groups}}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn postable(matchers: Value, ends: &str) -> PostableSilence {
        serde_json::from_value(json!({
            "matchers": matchers,
            "startsAt": "2026-12-07T00:00:00Z",
            "endsAt": ends,
            "createdBy": "oncall",
            "comment": "maintenance",
        }))
        .unwrap()
    }

    #[test]
    fn silences_are_checked_as_alertmanager_checks_them() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-07T01:00:00Z")
            .unwrap()
            .timestamp_millis();
        let ok = postable(
            json!([{"name": "job", "value": "etl"}]),
            "2026-12-07T02:00:00Z",
        );
        let (id, s) = validate_silence(ok, now).map_err(|e| e.1).unwrap();
        assert!(id.is_none());
        // isEqual defaults to true; a start in the past is now.
        assert!(s.matchers[0].is_equal);
        assert_eq!(s.starts_at_ms, now);
        for (m, ends, want) in [
            (json!([]), "2026-12-07T02:00:00Z", "at least one matcher"),
            (
                json!([{"name": "job", "value": "(", "isRegex": true}]),
                "2026-12-07T02:00:00Z",
                "matchers[0]",
            ),
            (
                json!([{"name": "job", "value": ".*", "isRegex": true}]),
                "2026-12-07T02:00:00Z",
                "silence everything",
            ),
            (
                json!([{"name": "job", "value": "etl"}]),
                "2026-12-07T00:30:00Z",
                "in the past",
            ),
            (
                json!([{"name": "job", "value": "etl"}]),
                "tomorrow",
                "RFC 3339",
            ),
        ] {
            let e = validate_silence(postable(m.clone(), ends), now)
                .err()
                .map(|e| e.1)
                .unwrap_or_default();
            assert!(e.contains(want), "{m} {ends}: {e}");
        }
    }
}
