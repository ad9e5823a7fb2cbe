//! `POST /api/v1/events`: change events (deploys, config changes, schema changes, backfills).
//!
//! A body is one JSON object, a JSON array, or NDJSON (`application/json` or
//! `application/x-ndjson`); the decoder is [`collectors::events`]. Events are written in the
//! request's own transaction (DESIGN.md, "Two write paths"), not through the ingest queue.
//! Answers:
//!
//! - 201 `{"received": n, "inserted": i, "duplicates": d}` when something was new, 200 with the
//!   same body when every event was already stored (a re-send changes nothing);
//! - 400 naming the line (NDJSON) or index (array) and the field; 413 and 415 from the
//!   kernel; 503 with `Retry-After` when the database fails.

use super::Payload;
use super::{Accepted, ReceiverError, ReceiverState};
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

/// What a sender gets back.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub received: usize,
    pub inserted: usize,
    pub duplicates: usize,
}

/// The handler of `POST /api/v1/events`.
pub async fn post(
    State(st): State<ReceiverState>,
    payload: Payload,
) -> Result<Accepted, ReceiverError> {
    let events = payload
        .decode(|raw| {
            collectors::events::decode(raw)
                .map_err(|e| ReceiverError::Malformed(format!("change events: {e}")))
        })
        .await?;
    if let Some(e) = events
        .iter()
        .find(|e| !store::pgcopy::timestamp_in_range(e.time_ms))
    {
        return Err(ReceiverError::Malformed(format!(
            "change events: event on {:?} has a time PostgreSQL cannot store; send a real date-time",
            e.node
        )));
    }
    let inserted = st
        .app
        .store
        .record_change_events(&events)
        .await
        .map_err(|e| ReceiverError::storage("change events", &e))?;
    let status = if inserted > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(Accepted::json(
        status,
        &Summary {
            received: events.len(),
            inserted,
            duplicates: events.len() - inserted,
        },
    ))
}
