//! `POST /api/v1/drift/profile`: one column's values or summary at one time, for drift checks
//! of data that never becomes a histogram series (a batch's feature columns, a table's column
//! after each load). The body format is [`super::drift_profile_body`]; the drift job
//! (`server::analysis::drift`) merges each column's profiles per window and compares the current
//! window with its reference.
//!
//! Stored in the request's own transaction in `column_profiles` (not through the sample queue:
//! a profile is one row). Answers:
//!
//! - 201 `{"id", "dataset", "column", "time", "kind", "count", "missing"}`;
//! - 400 naming the field (bad JSON, mixed value kinds, empty names, no values) or the limit
//!   (`time` older than `database.retention_days`, or ahead of `limits.future_tolerance`: such a
//!   profile would be deleted at once or sits in the future); 413 over
//!   `receivers.max_body_bytes` and 415 from the kernel; 503 with `Retry-After` when the database
//!   fails.

use super::drift_profile_body;
use super::Payload;
use super::{Accepted, ReceiverError, ReceiverState};
use crate::ingest::window::Outside;
use analysis::drift::ColumnKind;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

/// What a sender gets back.
#[derive(Debug, Serialize)]
pub struct Stored {
    pub id: i64,
    pub dataset: String,
    pub column: String,
    /// Unix milliseconds.
    pub time: i64,
    pub kind: &'static str,
    pub count: u64,
    pub missing: u64,
}

/// The handler of `POST /api/v1/drift/profile`.
pub async fn post(
    State(st): State<ReceiverState>,
    payload: Payload,
) -> Result<Accepted, ReceiverError> {
    let p = payload
        .decode(|raw| {
            drift_profile_body::parse(raw)
                .map_err(|e| ReceiverError::Malformed(format!("drift profile: {e}")))
        })
        .await?;
    let now = model::clock::now_ms();
    let at_ms = p.time_ms.unwrap_or(now);
    if let Some(outside) = st.window.check(at_ms, now) {
        st.app.metrics.rejected(outside.reason(), 1);
        let (oldest, newest) = st.window.bounds(now);
        return Err(ReceiverError::Malformed(match outside {
            Outside::TooOld => format!(
                "drift profile: `time` ({}) is older than the retention window (`database.retention_days` = {}; oldest accepted {}): it would be deleted at once; send recent profiles or raise the key",
                crate::ingest::window::rfc3339(at_ms),
                st.app.retention_days,
                crate::ingest::window::rfc3339(oldest),
            ),
            Outside::TooNew => format!(
                "drift profile: `time` ({}) is further ahead of this server's clock than `limits.future_tolerance` allows (newest accepted {}): check the sender's clock, and that `time` is in seconds",
                crate::ingest::window::rfc3339(at_ms),
                crate::ingest::window::rfc3339(newest),
            ),
        }));
    }
    let kind = match p.profile.kind() {
        ColumnKind::Numeric => "numeric",
        ColumnKind::Categorical => "categorical",
    };
    let count = p.profile.count();
    let row = store::profiles::NewColumnProfile {
        dataset: p.dataset,
        column: p.column,
        at_ms,
        kind,
        value_count: count,
        profile: serde_json::to_value(&p.profile)
            .map_err(|e| ReceiverError::Internal(format!("drift profile: {e}")))?,
    };
    let id = st
        .app
        .store
        .insert_column_profile(&row)
        .await
        .map_err(|e| ReceiverError::storage("drift profile", &e))?;
    Ok(Accepted::json(
        StatusCode::CREATED,
        &Stored {
            id,
            dataset: row.dataset,
            column: row.column,
            time: at_ms,
            kind,
            count,
            missing: p.missing,
        },
    ))
}
