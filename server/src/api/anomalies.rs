//! Anomalies the detection jobs opened (`server::analysis`), in the API's envelope:
//!
//! * `GET /api/v1/anomalies?state=open|closed&since=<time>&node=<node>&limit=<n>&before=<id>`:
//!   newest first (by id), `limit` 1 to 1000 (default [`DEFAULT_LIMIT`]), within
//!   [`crate::api::LIST_BYTE_BUDGET`]; a full or cut page carries `"next": {"before": <id>}`.
//!   `since` (Unix seconds or RFC 3339) keeps anomalies still open or ended at or after it.
//! * `GET /api/v1/anomalies/{id}`: one anomaly; 404 `not_found` when there is none.
//! * `POST /api/v1/anomalies/{id}/feedback` with `{"feedback": "expected"|"false_alarm",
//!   "note": "..."}` ([`model::anomaly::FeedbackRequest`]): records it, closes the anomaly and
//!   answers the updated anomaly; the detectors read it from the next round on (an expected
//!   window joins the baseline, a false alarm widens that signal's band).
//! * `GET /api/v1/pipeline/health`: one [`model::anomaly::NodeHealth`] per pipeline node (the
//!   lineage graph's nodes and every node with an open anomaly), `ok` without open anomalies.
//!
//! Each anomaly is [`model::anomaly::Anomaly`] as JSON (times in Unix ms, `*_ms`).

use crate::api::prom::parse_time;
use crate::api::{success, ApiError, ListPage, LIST_BYTE_BUDGET};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use model::anomaly::{AnomalyState, FeedbackRequest, NodeHealth};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use store::anomalies::{AnomalyQuery, MAX_ANOMALIES_PAGE};

/// Anomalies per page when the caller does not say.
pub const DEFAULT_LIMIT: u32 = 100;

/// Longest feedback note kept (bytes); longer ones are refused with 400.
pub const MAX_NOTE_BYTES: usize = 4096;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/anomalies", get(list))
        .route("/api/v1/anomalies/{id}", get(one))
        .route("/api/v1/anomalies/{id}/feedback", post(feedback))
        .route("/api/v1/pipeline/health", get(health))
        .with_state(state)
}

#[derive(Deserialize)]
struct ListParams {
    state: Option<String>,
    since: Option<String>,
    node: Option<String>,
    limit: Option<String>,
    before: Option<String>,
}

/// The query a request asks for, or a 400 naming the parameter to fix.
fn list_query(p: ListParams) -> Result<AnomalyQuery, ApiError> {
    let text = |v: Option<String>| v.filter(|s| !s.is_empty());
    let state = match text(p.state).as_deref() {
        None => None,
        Some(s) => Some(AnomalyState::parse(s).ok_or_else(|| {
            ApiError::bad_data(format!(
                "state {s:?} is not known; send state=open or state=closed, or leave it out for both"
            ))
        })?),
    };
    let since_ms = text(p.since)
        .map(|s| parse_time("since", Some(&s)))
        .transpose()?;
    let limit = match text(p.limit) {
        None => DEFAULT_LIMIT,
        Some(l) => match l.parse::<u32>() {
            Ok(n) if (1..=MAX_ANOMALIES_PAGE).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_data(format!(
                    "limit {l:?} is out of range; send 1 to {MAX_ANOMALIES_PAGE} and page on with `before`"
                )))
            }
        },
    };
    let before_id = match text(p.before) {
        None => None,
        Some(b) => Some(b.parse::<i64>().map_err(|_| {
            ApiError::bad_data(format!(
                "before {b:?} is not an anomaly id; send the `next.before` of the previous page"
            ))
        })?),
    };
    Ok(AnomalyQuery {
        state,
        since_ms,
        node: text(p.node),
        before_id,
        limit,
    })
}

async fn list(
    State(st): State<AppState>,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let q = list_query(p)?;
    let items = st.store.list_anomalies(&q).await?;
    let full = items.len() >= q.limit as usize;
    let page = ListPage::within(items.iter(), LIST_BYTE_BUDGET);
    let next = (full || page.truncated)
        .then(|| items.get(page.items.len().saturating_sub(1)))
        .flatten()
        .map(|last| json!({ "before": last.id }));
    Ok(page.answer(next))
}

/// 404 in the API's error envelope.
fn not_found(id: i64) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({
            "status": "error",
            "errorType": "not_found",
            "error": format!("there is no anomaly {id}; list them with GET /api/v1/anomalies"),
        })),
    )
        .into_response()
}

fn parse_id(id: &str) -> Result<i64, ApiError> {
    id.parse::<i64>().map_err(|_| {
        ApiError::bad_data(format!(
            "{id:?} is not an anomaly id; use the `id` of an anomaly from GET /api/v1/anomalies"
        ))
    })
}

async fn one(State(st): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    Ok(match st.store.anomaly(id).await? {
        Some(a) => success(a).into_response(),
        None => not_found(id),
    })
}

/// The feedback body, or a 400 saying what to send.
fn feedback_body(body: &[u8]) -> Result<FeedbackRequest, ApiError> {
    let req: FeedbackRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_data(format!(
            "the body is not a feedback request ({e}); send JSON like {{\"feedback\": \"expected\"}} or {{\"feedback\": \"false_alarm\", \"note\": \"...\"}}"
        ))
    })?;
    if req.note.as_ref().is_some_and(|n| n.len() > MAX_NOTE_BYTES) {
        return Err(ApiError::bad_data(format!(
            "`note` is longer than {MAX_NOTE_BYTES} bytes; shorten it"
        )));
    }
    Ok(req)
}

async fn feedback(
    State(st): State<AppState>,
    who: Option<axum::Extension<model::auth::Principal>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let req = feedback_body(&body)?;
    let updated = st
        .store
        .give_anomaly_feedback(
            id,
            req.feedback,
            req.note.as_deref(),
            // The logged-in user or API token; "api" only when anonymous callers may write.
            who.as_ref()
                .filter(|w| w.0.via != model::auth::Via::Anonymous)
                .map_or("api", |w| w.0.name.as_str()),
            model::clock::now_ms(),
        )
        .await?;
    Ok(match updated {
        Some(a) => success(a).into_response(),
        None => not_found(id),
    })
}

async fn health(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut nodes: BTreeMap<String, NodeHealth> = BTreeMap::new();
    for n in st.store.lineage_graph().await?.nodes {
        nodes.insert(
            n.name.clone(),
            NodeHealth {
                node: n.name,
                status: "ok".into(),
                open_anomalies: 0,
            },
        );
    }
    for h in st.store.node_health().await? {
        nodes.insert(h.node.clone(), h);
    }
    Ok(Json(
        json!({"status": "success", "data": nodes.into_values().collect::<Vec<_>>()}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(state: &str, since: &str, limit: &str, before: &str) -> ListParams {
        ListParams {
            state: Some(state.into()),
            since: Some(since.into()),
            node: Some(String::new()),
            limit: Some(limit.into()),
            before: Some(before.into()),
        }
    }

    #[test]
    fn list_parameters_are_checked_naming_what_to_send() {
        let q = list_query(params("open", "1714658400", "", "42")).unwrap();
        assert_eq!(q.state, Some(AnomalyState::Open));
        assert_eq!(q.since_ms, Some(1_714_658_400_000));
        assert_eq!(
            (q.limit, q.before_id, q.node),
            (DEFAULT_LIMIT, Some(42), None)
        );
        let e = list_query(params("firing", "", "", "")).unwrap_err();
        assert!(
            e.message().contains("state=open or state=closed"),
            "{}",
            e.message()
        );
        let e = list_query(params("", "", "0", "")).unwrap_err();
        assert!(e.message().contains("send 1 to 1000"), "{}", e.message());
        let e = list_query(params("", "yesterday", "", "")).unwrap_err();
        assert!(e.message().contains("`since`"), "{}", e.message());
        let e = list_query(params("", "", "", "x")).unwrap_err();
        assert!(e.message().contains("next.before"), "{}", e.message());
    }

    #[test]
    fn feedback_bodies_are_checked_naming_what_to_send() {
        let r = feedback_body(br#"{"feedback": "false_alarm", "note": "backfill"}"#).unwrap();
        assert_eq!(r.note.as_deref(), Some("backfill"));
        let e = feedback_body(br#"{"feedback": "maybe"}"#).unwrap_err();
        assert!(e.message().contains("\"expected\""), "{}", e.message());
        let long = format!(
            r#"{{"feedback": "expected", "note": "{}"}}"#,
            "x".repeat(5000)
        );
        let e = feedback_body(long.as_bytes()).unwrap_err();
        assert!(e.message().contains("`note`"), "{}", e.message());
    }
}
