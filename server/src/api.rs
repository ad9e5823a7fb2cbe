//! The read side of the HTTP API: everything a browser, Grafana or a script GETs.
//!
//! One submodule per subject: [`prom`] (health, self-metrics, status, targets),
//! [`catalog`] (Prometheus' series, labels, label values and metadata), [`promql`] (PromQL queries), [`dq`] (data-quality datasets and checks),
//! [`lineage`] (pipeline graph, runs, schema changes), [`alerts`] (alerts received from
//! Alertmanager senders) and [`evidence`] (failed/slow spans and warning log records).
//!
//! The API depends on [`crate::state`] only, never on the receivers: `receivers -> state <- api`.
//!
//! Responses use the Prometheus HTTP API envelope (`{"status":"success","data":...}`); errors are
//! `{"status":"error","errorType":"bad_data","error":"..."}` where `errorType` is the stable code
//! and `error` says what to change.

pub mod alerts;
pub mod catalog;
pub mod dq;
pub mod events;
pub mod evidence;
pub mod lineage;
pub mod prom;
pub mod promql;

use crate::state::AppState;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Serialize;

/// Every read route.
pub fn router(state: AppState) -> Router {
    let query_state = promql::QueryState {
        store: state.store.clone(),
        limits: state.query_limits.clone(),
    };
    prom::router(state.clone())
        .merge(catalog::router(state.clone()))
        .merge(promql::router(query_state))
        .merge(dq::router(state.clone()))
        .merge(lineage::router(state.clone()))
        .merge(alerts::router(state.clone()))
        .merge(events::router(state.clone()))
        .merge(evidence::router(state))
}

/// The success envelope, `{"status":"success","data":...}`, around any serialisable value.
#[derive(Debug, Serialize)]
pub struct Success<T: Serialize> {
    status: &'static str,
    data: T,
}

/// Wraps `data` in the success envelope.
pub fn success<T: Serialize>(data: T) -> Json<Success<T>> {
    Json(Success {
        status: "success",
        data,
    })
}

/// A refused read: the HTTP status, the Prometheus `errorType` and a message saying what to
/// change.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

/// The error envelope, as Prometheus writes it.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    status: &'static str,
    #[serde(rename = "errorType")]
    error_type: &'static str,
    error: &'a str,
}

impl ApiError {
    pub fn bad_data(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "bad_data",
            message: message.into(),
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            message: message.into(),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<store::StoreError> for ApiError {
    fn from(e: store::StoreError) -> Self {
        match e {
            store::StoreError::InvalidQuery(m) | store::StoreError::InvalidSample(m) => {
                Self::bad_data(m)
            }
            e => {
                // The rest is about the database, not the request: log the detail, tell the
                // client it is on our side and temporary.
                tracing::warn!(error = %e, "query failed in the store");
                Self::unavailable(format!("the database could not answer: {e}"))
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            Json(ErrorBody {
                status: "error",
                error_type: self.code,
                error: &self.message,
            }),
        )
            .into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        }
        resp
    }
}
