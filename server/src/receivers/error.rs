//! [`ReceiverError`], every way a push request is refused, with its HTTP status, gRPC code and
//! `Retry-After` in one place; and [`Accepted`], what a handler answers when it took the data.
//!
//! Handlers return `Result<Accepted, ReceiverError>`. Both turn into a response that carries
//! the outcome in its extensions; the kernel middleware ([`super::kernel`]) reads it from
//! there, counts the answer per receiver, logs refusals (rate-limited) and writes the error body
//! in the protocol's own shape (plain text, OTLP `google.rpc.Status`, Alertmanager's JSON
//! string).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// Why a push request was refused. The message always says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiverError {
    /// The body is not what the protocol says (400); resending it cannot help.
    #[error("{0}")]
    Malformed(String),
    /// Some series were over a `[limits]` limit (400); the others were queued.
    #[error("{0}")]
    OverLimit(String),
    /// The path names something that does not exist, e.g. an unknown DQ tool (404).
    #[error("{0}")]
    NotFound(String),
    /// The body is over `receivers.max_body_bytes` or inflates past
    /// `receivers.max_decompressed_bytes` (413).
    #[error("{0}")]
    TooLarge(String),
    /// The Content-Type or Content-Encoding is not the protocol's (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// No bearer token, or one that is not accepted (401).
    #[error("{0}")]
    Unauthorised(String),
    /// A valid token not allowed for this receiver, or a cross-site browser request (403).
    #[error("{0}")]
    Forbidden(String),
    /// The ingest queue has no room now: `status` is `receivers.queue_full_status` (503 or
    /// 429), and the sender should retry after `retry_after`.
    #[error("{message}")]
    QueueFull {
        message: String,
        status: StatusCode,
        retry_after: Duration,
    },
    /// The server is stopping (503); the sender should resend to the restarted server.
    #[error("{0}")]
    ShuttingDown(String),
    /// The database did not take the data (503); a retry later is expected to work.
    #[error("{0}")]
    Storage(String),
    /// A bug or a panic on our side (500).
    #[error("{0}")]
    Internal(String),
}

impl ReceiverError {
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::Malformed(message.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Malformed(_) | Self::OverLimit(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unauthorised(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::QueueFull { status, .. } => *status,
            Self::ShuttingDown(_) | Self::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The gRPC code of the same refusal. Everything a sender should retry is `UNAVAILABLE`:
    /// every OTLP exporter retries it, while `RESOURCE_EXHAUSTED` is retried only with a
    /// RetryInfo the client understands.
    pub fn grpc_code(&self) -> tonic::Code {
        match self {
            Self::Malformed(_)
            | Self::OverLimit(_)
            | Self::TooLarge(_)
            | Self::UnsupportedMediaType(_) => tonic::Code::InvalidArgument,
            Self::NotFound(_) => tonic::Code::NotFound,
            Self::Unauthorised(_) => tonic::Code::Unauthenticated,
            Self::Forbidden(_) => tonic::Code::PermissionDenied,
            Self::QueueFull { .. } | Self::ShuttingDown(_) | Self::Storage(_) => {
                tonic::Code::Unavailable
            }
            Self::Internal(_) => tonic::Code::Internal,
        }
    }

    /// Seconds for `Retry-After` (and gRPC RetryInfo), on the refusals a sender retries.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::QueueFull { retry_after, .. } => Some(seconds_ceil(*retry_after)),
            Self::ShuttingDown(_) | Self::Storage(_) => Some(5),
            _ => None,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Self::Malformed(m)
            | Self::OverLimit(m)
            | Self::NotFound(m)
            | Self::TooLarge(m)
            | Self::UnsupportedMediaType(m)
            | Self::Unauthorised(m)
            | Self::Forbidden(m)
            | Self::ShuttingDown(m)
            | Self::Storage(m)
            | Self::Internal(m) => m,
            Self::QueueFull { message, .. } => message,
        }
    }

    /// A short stable name for logs and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::OverLimit(_) => "over_limit",
            Self::NotFound(_) => "not_found",
            Self::TooLarge(_) => "too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Unauthorised(_) => "unauthorised",
            Self::Forbidden(_) => "forbidden",
            Self::QueueFull { .. } => "queue_full",
            Self::ShuttingDown(_) => "shutting_down",
            Self::Storage(_) => "storage",
            Self::Internal(_) => "internal",
        }
    }

    /// Maps a refused `try_push`. A full queue answers `queue_full_status` (503 by default, see
    /// `receivers::remote_write` for why); shutdown answers 503 so senders retry against the
    /// restarted server.
    pub fn from_push(e: crate::ingest::PushError, queue_full_status: u16) -> Self {
        use crate::ingest::PushError;
        match e {
            PushError::Full { retry_after, .. } => Self::QueueFull {
                message: e.to_string(),
                status: StatusCode::from_u16(queue_full_status)
                    .unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                retry_after,
            },
            PushError::Closed => Self::ShuttingDown(e.to_string()),
        }
    }

    /// A database failure while recording what the request carried.
    pub fn storage(what: &str, e: &store::StoreError) -> Self {
        tracing::error!(error = %e, "recording {what} failed");
        Self::Storage(format!(
            "the database did not take the {what}, retry later: {e}"
        ))
    }
}

pub(crate) fn seconds_ceil(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).max(1) as u64
}

impl IntoResponse for ReceiverError {
    /// Plain text, which every sender can log verbatim (Prometheus writes "server returned
    /// HTTP status 400 Bad Request: <body>"). The kernel rewrites the body for protocols with
    /// their own error shape; the error itself travels in the extensions.
    fn into_response(self) -> Response {
        let mut resp = (
            self.status(),
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            format!("{}\n", self.message()),
        )
            .into_response();
        if let Some(secs) = self.retry_after() {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if matches!(self, Self::Unauthorised(_)) {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"pipewatch\""),
            );
        }
        resp.extensions_mut().insert(self);
        resp
    }
}

/// What a receiver answers once the data is taken: a status, a body in the protocol's shape
/// and, for partial successes, a note for the self-metrics and the log.
#[derive(Debug, Clone)]
pub struct Accepted {
    status: StatusCode,
    body: Option<(&'static str, Vec<u8>)>,
    note: Option<String>,
}

/// The note of an [`Accepted`] answer, left in the response's extensions for the kernel.
#[derive(Debug, Clone, Default)]
pub struct AcceptedNote(pub Option<String>);

impl Accepted {
    /// A status with an empty body (remote_write's 204, Alertmanager's 200).
    pub fn empty(status: StatusCode) -> Self {
        Self {
            status,
            body: None,
            note: None,
        }
    }

    /// A JSON body from a typed value.
    pub fn json<T: serde::Serialize>(status: StatusCode, body: &T) -> Self {
        let bytes = serde_json::to_vec(body).expect("answer types serialise");
        Self {
            status,
            body: Some(("application/json", bytes)),
            note: None,
        }
    }

    /// A protobuf body (OTLP `Export*ServiceResponse`).
    pub fn protobuf(status: StatusCode, body: &impl prost::Message) -> Self {
        Self {
            status,
            body: Some(("application/x-protobuf", body.encode_to_vec())),
            note: None,
        }
    }

    /// Says what was refused inside an accepted request (OTLP partial success).
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        let note = note.into();
        self.note = (!note.is_empty()).then_some(note);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for Accepted {
    fn into_response(self) -> Response {
        let mut resp = match self.body {
            Some((ct, body)) => (self.status, [(header::CONTENT_TYPE, ct)], body).into_response(),
            None => self.status.into_response(),
        };
        resp.extensions_mut().insert(AcceptedNote(self.note));
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

    #[test]
    fn every_refusal_has_one_status_and_one_grpc_code() {
        let full = ReceiverError::QueueFull {
            message: "full".into(),
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after: Duration::from_millis(1500),
        };
        assert_eq!(full.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(full.grpc_code(), tonic::Code::Unavailable);
        assert_eq!(full.retry_after(), Some(2));
        let e = ReceiverError::Unauthorised("no".into());
        assert_eq!(
            (e.status(), e.grpc_code(), e.retry_after()),
            (StatusCode::UNAUTHORIZED, tonic::Code::Unauthenticated, None)
        );
        let r = e.into_response();
        assert!(r.headers().contains_key(header::WWW_AUTHENTICATE));
        assert!(r.extensions().get::<ReceiverError>().is_some());
        let e = ReceiverError::TooLarge("big".into());
        assert_eq!(
            (e.status(), e.grpc_code()),
            (StatusCode::PAYLOAD_TOO_LARGE, tonic::Code::InvalidArgument)
        );
    }
}
