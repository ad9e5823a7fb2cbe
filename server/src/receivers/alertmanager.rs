//! `POST /api/v2/alerts`: the Alertmanager API v2 alert intake, so Prometheus (and anything
//! else that speaks to Alertmanager) can send the alerts of existing rule files to pipewatch.
//! Point `alerting.alertmanagers` at pipewatch with `api_version: v2`.
//!
//! Answers as Alertmanager does: 200 with an empty body once the alerts are stored; 400 with
//! the error as a JSON string (Alertmanager's shape for a failed validation) naming the alert
//! and field; 413 above `receivers.max_body_bytes`; 415 for a non-JSON content type; 503 with
//! `Retry-After` when the database does not take them (Prometheus retries other Alertmanagers
//! and the next evaluation resends). Alerts without `startsAt` start when received; without
//! `endsAt` they end after 5 minutes (Alertmanager's
//! `resolve_timeout` default) unless re-posted.

use super::{ReceiverError, ReceiverState};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use collectors::alerts as decoder;
use store::alerts::AlertRecord;

pub const RECEIVER: &str = "alertmanager";
/// Alertmanager's default `resolve_timeout`.
pub const RESOLVE_TIMEOUT_MS: i64 = 5 * 60 * 1000;

/// The handler of `POST /api/v2/alerts`.
pub async fn post(State(st): State<ReceiverState>, headers: HeaderMap, body: Body) -> Response {
    match accept(&st, &headers, body).await {
        Ok(()) => {
            st.app.metrics.receiver_answered(RECEIVER, 200, None);
            StatusCode::OK.into_response()
        }
        Err(e) => {
            st.app
                .metrics
                .receiver_answered(RECEIVER, e.status.as_u16(), Some(&e.message));
            let mut resp = (
                e.status,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                serde_json::Value::String(e.message).to_string(),
            )
                .into_response();
            if let Some(secs) = e.retry_after {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            resp
        }
    }
}

async fn accept(st: &ReceiverState, headers: &HeaderMap, body: Body) -> Result<(), ReceiverError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        let media = ct.split(';').next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case("application/json") {
            return Err(ReceiverError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Type {ct:?} is not supported; send alerts as Content-Type: application/json"),
            ));
        }
    }
    let buf = super::read_body(
        headers,
        body,
        st.config.max_body_bytes,
        "send fewer alerts per request",
    )
    .await?;
    let alerts = decoder::decode(&buf).map_err(|e| ReceiverError::bad_request(e.to_string()))?;
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
        return Err(ReceiverError::bad_request(
            "startsAt or endsAt is outside what PostgreSQL can store; send real RFC 3339 times",
        ));
    }
    st.app.store.record_alerts(&records).await.map_err(|e| {
        tracing::error!(error = %e, "recording alerts failed");
        ReceiverError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!("the database did not take the alerts, retry later: {e}"),
            retry_after: Some(5),
        }
    })
}
