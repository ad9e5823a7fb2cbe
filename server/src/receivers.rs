//! Push receivers: HTTP endpoints that senders POST data to (today Prometheus remote_write).
//!
//! Each receiver is thin: check the request's framing and size, decode with a `collectors`
//! decoder, validate what the store would refuse, hand the batch to the [`IngestQueue`] with
//! `try_push`, and map the outcome to the status codes the sender's retry logic expects. A 2xx
//! means the batch is in the queue, which is drained on shutdown.
//!
//! [`IngestQueue`]: crate::ingest::IngestQueue

pub mod alertmanager;
pub mod dq;
pub mod events;
pub mod lineage;
pub mod otlp;
pub mod otlp_grpc;
pub mod remote_write;

use crate::config::ReceiversConfig;
use crate::guard::AuthFailure;
use crate::ingest::PushError;
use crate::state::AppState;
use crate::telemetry::GuardLabels;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use std::sync::Arc;
use std::time::Duration;

/// What every receiver handler gets: the server state and the receiver limits.
#[derive(Clone)]
pub struct ReceiverState {
    pub app: AppState,
    pub config: Arc<ReceiversConfig>,
}

impl ReceiverState {
    /// Hands a decoded batch to the ingest queue. Every receiver pushes through here so that the
    /// limits all sources share (labels per series, label length, new series per metric) and the
    /// queue-full answer are the same for all of them. `receiver` names the source in
    /// self-metrics and messages.
    pub fn push(&self, receiver: &'static str, batch: model::Batch) -> Result<(), ReceiverError> {
        let admission = self.app.guard.admit(batch, crate::scrape_manager::now_ms());
        for r in &admission.refused {
            self.app
                .metrics
                .receiver_series_refused
                .get_or_create(&GuardLabels {
                    receiver: receiver.to_string(),
                    reason: r.limit.to_string(),
                })
                .inc();
        }
        let refused = admission.message(receiver);
        if !admission.batch.is_empty() {
            self.app
                .queue
                .try_push(admission.batch)
                .map_err(|e| ReceiverError::from_push(e, self.config.queue_full_status))?;
        }
        match refused {
            Some(message) => Err(ReceiverError::bad_request(message)),
            None => Ok(()),
        }
    }
}

/// Which receiver a request path belongs to, for tokens and self-metrics.
pub fn receiver_for_path(path: &str) -> &'static str {
    if path == "/api/v1/write" {
        "remote_write"
    } else if path.starts_with("/v1/") {
        "otlp"
    } else if path.starts_with("/api/v1/dq") {
        "dq"
    } else if path == "/api/v1/events" {
        "events"
    } else if path.starts_with("/api/v1/lineage") {
        "openlineage"
    } else if path.starts_with("/api/v2/alerts") {
        "alertmanager"
    } else {
        "push"
    }
}

/// Route layer of every receiver: with `[[auth.tokens]]` configured, a request needs
/// `Authorization: Bearer <token>` accepted for its receiver (401 without or with an unknown
/// token, 403 when the token is not allowed there). The token is never logged.
async fn require_token(
    State(st): State<ReceiverState>,
    req: axum::extract::Request,
    next: Next,
) -> Response {
    if !st.app.guard.auth_required() {
        return next.run(req).await;
    }
    let receiver = receiver_for_path(req.uri().path());
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match st.app.guard.authorize(receiver, presented) {
        Ok(_) => next.run(req).await,
        Err(failure) => {
            st.app
                .metrics
                .receiver_auth_failures
                .get_or_create(&GuardLabels {
                    receiver: receiver.to_string(),
                    reason: failure.reason().to_string(),
                })
                .inc();
            let e = auth_error(receiver, failure);
            st.app
                .metrics
                .receiver_answered(receiver, e.status.as_u16(), Some(&e.message));
            let mut resp = e.into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"pipewatch\""),
            );
            resp
        }
    }
}

/// The refusal for a failed token check, saying what to send.
pub fn auth_error(receiver: &str, failure: AuthFailure) -> ReceiverError {
    match failure {
        AuthFailure::Missing => ReceiverError::new(
            StatusCode::UNAUTHORIZED,
            format!("{receiver}: missing bearer token; send `Authorization: Bearer <token>` with a token from [[auth.tokens]]"),
        ),
        AuthFailure::Invalid => ReceiverError::new(
            StatusCode::UNAUTHORIZED,
            format!("{receiver}: bearer token not accepted; check the token against [[auth.tokens]] in the pipewatch config"),
        ),
        AuthFailure::NotAllowed => ReceiverError::new(
            StatusCode::FORBIDDEN,
            format!("{receiver}: this token may not write to {receiver}; add \"{receiver}\" to its `receivers` list in [[auth.tokens]]"),
        ),
    }
}

/// The receiver routes with the default limits (`[receivers]` defaults).
pub fn router(state: AppState) -> Router {
    router_with_config(state, ReceiversConfig::default())
}

/// The receiver routes with explicit limits.
pub fn router_with_config(state: AppState, config: ReceiversConfig) -> Router {
    let st = ReceiverState {
        app: state,
        config: Arc::new(config),
    };
    Router::new()
        .route("/api/v1/write", post(remote_write::write))
        .route("/api/v1/dq/{tool}", post(dq::post))
        .route("/api/v1/lineage", post(lineage::post))
        .route("/api/v1/events", post(events::post))
        .route("/api/v2/alerts", post(alertmanager::post))
        .route("/v1/metrics", post(otlp::metrics))
        .route("/v1/traces", post(otlp::traces))
        .route("/v1/logs", post(otlp::logs))
        // Tokens are checked before a body is read; only matched routes (404 stays 404).
        .route_layer(middleware::from_fn_with_state(st.clone(), require_token))
        // Receivers read the body themselves with their own limit and message.
        .layer(DefaultBodyLimit::disable())
        .with_state(st)
}

/// Reads a whole request body, refusing it with 413 as soon as it passes `limit` bytes
/// (`receivers.max_body_bytes`), before reading when `Content-Length` already says so. `hint`
/// says how to send less, in the sender's own terms.
pub async fn read_body(
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
    limit: usize,
    hint: &str,
) -> Result<Vec<u8>, ReceiverError> {
    use futures::StreamExt;
    let too_large = || {
        ReceiverError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than {limit} bytes (receivers.max_body_bytes); {hint} or raise the limit"),
        )
    };
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(announced.unwrap_or(0).min(limit as u64) as usize);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ReceiverError::bad_request(format!("could not read the request body: {e}"))
        })?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// A refused push request: the status the sender's retry logic expects and a message saying
/// what to change. The body is plain text because senders log it verbatim (Prometheus writes
/// "server returned HTTP status 400 Bad Request: <body>").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds for `Retry-After`, on the statuses a sender retries.
    pub retry_after: Option<u64>,
}

impl ReceiverError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Maps a refused `try_push`. A full queue answers `queue_full_status` (see
    /// [`ReceiversConfig::queue_full_status`] and the module docs of [`remote_write`] for why
    /// 503 is the default); shutdown answers 503 so senders retry against the restarted server.
    pub fn from_push(e: PushError, queue_full_status: u16) -> Self {
        match e {
            PushError::Full { retry_after, .. } => Self {
                status: StatusCode::from_u16(queue_full_status)
                    .unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                message: e.to_string(),
                retry_after: Some(seconds_ceil(retry_after)),
            },
            PushError::Closed => Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: e.to_string(),
                retry_after: Some(5),
            },
        }
    }
}

fn seconds_ceil(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).max(1) as u64
}

impl IntoResponse for ReceiverError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            format!("{}\n", self.message),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(seconds_ceil(Duration::from_millis(1)), 1);
        assert_eq!(seconds_ceil(Duration::from_millis(1001)), 2);
        assert_eq!(seconds_ceil(Duration::ZERO), 1);
    }
}
