//! `POST /api/v2/alerts`: the Alertmanager API v2 alert intake, so Prometheus (and anything
//! else that speaks to Alertmanager) can send the alerts of existing rule files to pipewatch.
//! Point `alerting.alertmanagers` at pipewatch with `api_version: v2`.
//!
//! Answers as Alertmanager does: 200 with an empty body once the alerts are stored; 400 with
//! the error as a JSON string (Alertmanager's shape for a failed validation, written by the
//! kernel) naming the alert and field; 413 above `receivers.max_body_bytes`; 415 without
//! `Content-Type: application/json` (what Prometheus sends); 503 with
//! `Retry-After` when the database does not take them (Prometheus retries other Alertmanagers
//! and the next evaluation resends). Alerts without `startsAt` start when received; without
//! `endsAt` they end after 5 minutes (Alertmanager's
//! `resolve_timeout` default) unless re-posted.

use super::{Accepted, Payload, ReceiverError, ReceiverState};
use axum::extract::State;
use axum::http::StatusCode;
use collectors::alerts as decoder;
use store::alerts::AlertRecord;

/// Alertmanager's default `resolve_timeout`.
pub const RESOLVE_TIMEOUT_MS: i64 = 5 * 60 * 1000;

/// The handler of `POST /api/v2/alerts`.
pub async fn post(
    State(st): State<ReceiverState>,
    payload: Payload,
) -> Result<Accepted, ReceiverError> {
    let alerts = payload
        .decode(|raw| decoder::decode(raw).map_err(|e| ReceiverError::Malformed(e.to_string())))
        .await?;
    let now = model::clock::now_ms();
    let records: Vec<AlertRecord> = alerts
        .into_iter()
        .map(|a| {
            let starts = a.starts_at_ms.unwrap_or(now);
            AlertRecord {
                ends_at_ms: a
                    .ends_at_ms
                    .unwrap_or_else(|| starts.max(now) + RESOLVE_TIMEOUT_MS),
                starts_at_ms: starts,
                fingerprint: a.fingerprint,
                labels: a.labels,
                annotations: a.annotations,
                generator_url: a.generator_url,
                received_at_ms: now,
            }
        })
        .collect();
    if records.iter().any(|r| {
        !store::pgcopy::timestamp_in_range(r.starts_at_ms)
            || !store::pgcopy::timestamp_in_range(r.ends_at_ms)
    }) {
        return Err(ReceiverError::malformed(
            "startsAt or endsAt is outside what PostgreSQL can store; send real RFC 3339 times",
        ));
    }
    st.app
        .store
        .record_alerts(&records)
        .await
        .map_err(|e| ReceiverError::storage("alerts", &e))?;
    Ok(Accepted::empty(StatusCode::OK))
}
