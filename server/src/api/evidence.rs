//! `GET /api/v1/evidence/spans` and `GET /api/v1/evidence/logs`: the recent failed/slow spans
//! and warning/error log records kept from OTLP traces and logs, newest first.
//!
//! Query parameters, all optional: `service` (exact `service.name`), `kind` (`error` or
//! `slow` for spans; `WARN`, `ERROR`, `FATAL`... for logs), `limit` (1 to 1000, default
//! 100) and `before` (an id: only older rows; the cursor of the next page). Responses use the
//! API's `{"status":"success","data":[...]}` shape within [`super::LIST_BYTE_BUDGET`]: a page
//! the budget cut says `"truncated": true`, and a page that may have more after it carries
//! `"next": {"before": <id>}`. A bad parameter gets 400 naming it and the values it takes.

use super::{ApiError, ListPage, LIST_BYTE_BUDGET};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use model::evidence::{LogEvidence, SpanEvidence};
use serde_json::{json, Value};
use std::collections::HashMap;
use store::evidence::{EvidenceQuery, MAX_EVIDENCE_LIMIT};

const DEFAULT_LIMIT: i64 = 100;
const SPAN_KINDS: [&str; 2] = ["error", "slow"];
const LOG_KINDS: [&str; 7] = [
    "TRACE",
    "DEBUG",
    "INFO",
    "WARN",
    "ERROR",
    "FATAL",
    "UNSPECIFIED",
];

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/evidence/spans", get(spans))
        .route("/api/v1/evidence/logs", get(logs))
        .with_state(state)
}

fn query(params: &HashMap<String, String>, kinds: &[&str]) -> Result<EvidenceQuery, ApiError> {
    if let Some(k) = params
        .keys()
        .find(|k| !["service", "kind", "limit", "before"].contains(&k.as_str()))
    {
        return Err(ApiError::bad_data(format!(
            "unknown parameter {k:?}; use service, kind, limit and before"
        )));
    }
    let before_id = match params.get("before").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(v.parse::<i64>().map_err(|_| {
            ApiError::bad_data(format!(
                "before {v:?} is not an evidence id; send the `next.before` of the previous page"
            ))
        })?),
    };
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=MAX_EVIDENCE_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_data(format!(
                    "limit {v:?} is not a whole number from 1 to {MAX_EVIDENCE_LIMIT}"
                )))
            }
        },
    };
    let kind = match params.get("kind") {
        None => None,
        Some(k) if kinds.contains(&k.as_str()) => Some(k.clone()),
        Some(k) => {
            return Err(ApiError::bad_data(format!(
                "kind {k:?} is not one of {}",
                kinds.join(", ")
            )))
        }
    };
    Ok(EvidenceQuery {
        service: params.get("service").filter(|s| !s.is_empty()).cloned(),
        kind,
        limit,
        before_id,
    })
}

/// The page's answer: items within the byte budget, and the cursor of the next page when this
/// one is full or was cut.
fn page<T: serde::Serialize>(rows: Vec<(i64, T)>, limit: i64) -> Json<Value> {
    let full = rows.len() as i64 >= limit;
    let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
    let page = ListPage::within(rows.into_iter().map(|(_, r)| r), LIST_BYTE_BUDGET);
    let next = (full || page.truncated)
        .then(|| ids.get(page.items.len().saturating_sub(1)))
        .flatten()
        .map(|last| json!({ "before": last }));
    page.answer(next)
}

async fn spans(
    State(st): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let q = query(&params, &SPAN_KINDS)?;
    let rows = st.store.recent_span_evidence(&q).await?;
    Ok(page(
        rows.into_iter()
            .map(|r| {
                let e = r.evidence;
                (
                    r.id,
                    SpanEvidence {
                        id: r.id,
                        received_at_ms: r.received_at_ms,
                        service: e.service,
                        kind: e.reason,
                        trace_id: e.trace_id,
                        span_id: e.span_id,
                        span_name: e.span_name,
                        span_kind: e.span_kind,
                        status_code: e.status_code,
                        status_message: e.status_message,
                        start_time_unix_nano: e.start_unix_nano,
                        duration_seconds: e.duration_seconds,
                        detail: e.detail,
                    },
                )
            })
            .collect(),
        q.limit,
    ))
}

async fn logs(
    State(st): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let q = query(&params, &LOG_KINDS)?;
    let rows = st.store.recent_log_evidence(&q).await?;
    Ok(page(
        rows.into_iter()
            .map(|r| {
                let e = r.evidence;
                (
                    r.id,
                    LogEvidence {
                        id: r.id,
                        received_at_ms: r.received_at_ms,
                        service: e.service,
                        kind: e.severity,
                        severity_number: e.severity_number,
                        time_unix_nano: e.time_unix_nano,
                        trace_id: e.trace_id,
                        span_id: e.span_id,
                        body: e.body,
                        detail: e.detail,
                    },
                )
            })
            .collect(),
        q.limit,
    ))
}
