//! `POST /api/v1/events`: change events (deploys, config changes, schema changes, backfills).
//!
//! A body is one JSON object, a JSON array, or NDJSON (`application/json`,
//! `application/x-ndjson` or none); the decoder is [`collectors::events`]. Events are written
//! in the request's own transaction (DESIGN.md, "Two write paths"), not through the ingest
//! queue. Answers:
//!
//! - 201 `{"received": n, "inserted": i, "duplicates": d}` when something was new, 200 with the
//!   same body when every event was already stored (a re-send changes nothing);
//! - 400 naming the line (NDJSON) or index (array) and the field; 413 over
//!   `receivers.max_body_bytes`; 415 for another content type; 503 with `Retry-After` when the
//!   database fails.

use super::{ReceiverError, ReceiverState};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

pub const RECEIVER: &str = "events";

/// The handler of `POST /api/v1/events`.
pub async fn post(State(st): State<ReceiverState>, headers: HeaderMap, body: Body) -> Response {
    match accept(&st, &headers, body).await {
        Ok((received, inserted)) => {
            let status = if inserted > 0 {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            st.app
                .metrics
                .receiver_answered(RECEIVER, status.as_u16(), None);
            let summary = serde_json::json!({
                "received": received,
                "inserted": inserted,
                "duplicates": received - inserted,
            });
            (status, Json(summary)).into_response()
        }
        Err(e) => {
            st.app
                .metrics
                .receiver_answered(RECEIVER, e.status.as_u16(), Some(&e.message));
            e.into_response()
        }
    }
}

async fn accept(
    st: &ReceiverState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(usize, usize), ReceiverError> {
    check_json_content_type(headers)?;
    let body = super::read_body(
        headers,
        body,
        st.config.max_body_bytes,
        "send fewer events per request",
    )
    .await?;
    let events = collectors::events::decode(&body)
        .map_err(|e| ReceiverError::bad_request(format!("change events: {e}")))?;
    if let Some(e) = events
        .iter()
        .find(|e| !store::pgcopy::timestamp_in_range(e.time_ms))
    {
        return Err(ReceiverError::bad_request(format!(
            "change events: event on {:?} has a time PostgreSQL cannot store; send a real date-time",
            e.node
        )));
    }
    let inserted = st
        .app
        .store
        .record_change_events(&events)
        .await
        .map_err(|err| {
            tracing::error!(error = %err, "recording change events failed");
            ReceiverError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: format!("the database did not take the events, retry later: {err}"),
                retry_after: Some(5),
            }
        })?;
    Ok((events.len(), inserted))
}

/// Accepts the JSON and NDJSON media types, and a request without Content-Type; anything else
/// (curl's default form encoding with `-d`, say) is refused with the header to send.
pub fn check_json_content_type(headers: &HeaderMap) -> Result<(), ReceiverError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let ct = ct
        .to_str()
        .map_err(|_| ReceiverError::bad_request("header content-type is not visible ASCII"))?;
    let media = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if matches!(
        media.as_str(),
        "application/json" | "application/x-ndjson" | "application/ndjson" | "application/jsonl"
    ) {
        return Ok(());
    }
    Err(ReceiverError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("Content-Type {ct:?} is not supported; send Content-Type: application/json (one object or an array) or application/x-ndjson (one object per line)"),
    ))
}
