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
pub mod anomalies;
pub mod catalog;
pub mod dq;
pub mod drift;
pub mod events;
pub mod evidence;
pub mod lifecycle;
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
        .merge(lifecycle::router(state.clone()))
        .merge(anomalies::router(state.clone()))
        .merge(drift::router(state.clone()))
        .merge(evidence::router(state))
}

/// The success envelope, `{"status":"success","data":...}`, around any serialisable value.
#[derive(Debug, Serialize)]
pub struct Success<T: Serialize> {
    status: &'static str,
    data: T,
}

/// Most bytes of items one list answer (`/api/v1/evidence/*`, `/api/v1/alerts`,
/// `/api/v1/events`, `/api/v1/dq/*`, `/api/v1/lineage/*`) holds: 8 MiB, a page a browser
/// renders at once and a bound on what one request makes the server build, whatever is stored.
pub const LIST_BYTE_BUDGET: usize = 8 << 20;

/// A page of a list: the items that fit [`LIST_BYTE_BUDGET`] (always at least one), and
/// whether some were left out.
#[derive(Debug)]
pub struct ListPage {
    pub items: Vec<serde_json::Value>,
    pub truncated: bool,
}

impl ListPage {
    /// The first `items`, as JSON, whose serialised size stays within `budget` bytes.
    pub fn within<T: Serialize>(items: impl IntoIterator<Item = T>, budget: usize) -> Self {
        let mut out = Vec::new();
        let mut used = 0usize;
        let mut truncated = false;
        for item in items {
            let v = serde_json::to_value(&item).unwrap_or(serde_json::Value::Null);
            let size = serde_json::to_vec(&v).map_or(0, |b| b.len() + 1);
            if !out.is_empty() && used + size > budget {
                truncated = true;
                break;
            }
            used += size;
            out.push(v);
        }
        Self {
            items: out,
            truncated,
        }
    }

    /// `{"status":"success","data":[...]}`, plus `"truncated": true` when the byte budget cut
    /// the page and `"next"` (the cursor parameters of the following page) when there is one.
    pub fn answer(self, next: Option<serde_json::Value>) -> Json<serde_json::Value> {
        let mut body = serde_json::json!({"status": "success", "data": self.items});
        if self.truncated {
            body["truncated"] = true.into();
        }
        if let Some(next) = next {
            body["next"] = next;
        }
        Json(body)
    }
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

    /// A valid request that asks for more than a limit allows: 422 with Prometheus'
    /// `execution` errorType (as a query over `query.max_samples` gets).
    pub fn execution(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "execution",
            message: message.into(),
        }
    }

    /// A read the database cancelled at `database.read_statement_timeout`: 503 with
    /// Prometheus' `timeout` errorType and what to narrow.
    pub fn read_timeout() -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "timeout",
            message: "the database cancelled the read after `database.read_statement_timeout`; narrow the selector (more exact labels, fewer series) or the time range, or raise the limit".into(),
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
            e if e.is_read_timeout() => Self::read_timeout(),
            // The database refused a value of the request (SQLSTATE class 22, e.g. a NUL
            // byte): the client must change it, and retrying would fail the same way.
            e if e.is_refused_data() => Self::bad_data(format!(
                "the database cannot use a value of this request: {e}; remove NUL bytes and out-of-range numbers from the parameters"
            )),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_page_stops_at_the_byte_budget_and_says_so() {
        let item = "x".repeat(1000);
        // Each item is 1,003 bytes as JSON (quotes, separator): three fit 3,100 bytes.
        let page = ListPage::within(vec![item.clone(); 5], 3_100);
        assert_eq!((page.items.len(), page.truncated), (3, true));
        let Json(body) = page.answer(Some(serde_json::json!({"before": 7})));
        assert_eq!(body["truncated"], true);
        assert_eq!(body["next"]["before"], 7);
        // One item larger than the whole budget is still answered, alone.
        let page = ListPage::within(vec![item.clone(), item], 10);
        assert_eq!((page.items.len(), page.truncated), (1, true));
        // Within the budget nothing is marked.
        let Json(body) = ListPage::within(vec![1, 2], 100).answer(None);
        assert_eq!(
            body,
            serde_json::json!({"status": "success", "data": [1, 2]})
        );
    }
}
