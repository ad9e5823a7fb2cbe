//! Prometheus' query API over pipewatch's PromQL engine: `/api/v1/query`,
//! `/api/v1/query_range` (GET, or POST with a form body, as Grafana sends), `/api/v1/format_query`
//! and `/api/v1/status/buildinfo`, with Prometheus' response shapes and error types, so Grafana's
//! Prometheus data source, `promtool query` and scripts written for Prometheus work unchanged.

use crate::promql::{self, QueryLimits};
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use query::{format_value, Labels, QueryError, Series, Value};
use serde::{Deserialize, Serialize, Serializer};
use std::time::Duration;

/// What the query routes need: the store to read from and the limits queries run under.
#[derive(Clone)]
pub struct QueryState {
    pub store: store::Store,
    pub limits: QueryLimits,
}

/// The query routes.
pub fn router(state: QueryState) -> Router {
    Router::new()
        .route("/api/v1/query", get(instant).post(instant))
        .route("/api/v1/query_range", get(range).post(range))
        .route("/api/v1/format_query", get(format_query).post(format_query))
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .with_state(state)
}

/// A refused or failed query, answered as Prometheus does: `bad_data` 400, `execution` 422,
/// `timeout` 503, `internal` 500.
#[derive(Debug)]
pub struct PromqlError(QueryError);

impl PromqlError {
    /// The message the client is sent.
    pub fn message(&self) -> String {
        self.0.to_string()
    }
}

impl From<QueryError> for PromqlError {
    fn from(e: QueryError) -> Self {
        Self(e)
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    status: &'static str,
    #[serde(rename = "errorType")]
    error_type: &'static str,
    error: &'a str,
}

impl IntoResponse for PromqlError {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            QueryError::BadData(_) => StatusCode::BAD_REQUEST,
            QueryError::Execution(_) | QueryError::TooManySamples(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            QueryError::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            QueryError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::warn!(error = %self.0, "query failed");
        }
        let msg = self.0.to_string();
        (
            status,
            Json(ErrorBody {
                status: "error",
                error_type: self.0.error_type(),
                error: &msg,
            }),
        )
            .into_response()
    }
}

fn bad(msg: impl Into<String>) -> PromqlError {
    PromqlError(QueryError::BadData(msg.into()))
}

#[derive(Serialize)]
struct Success<T: Serialize> {
    status: &'static str,
    data: T,
}

fn ok<T: Serialize>(data: T) -> Json<Success<T>> {
    Json(Success {
        status: "success",
        data,
    })
}

/// A sample time in seconds, written as Prometheus writes it: an integer when whole,
/// otherwise with its milliseconds.
#[derive(Clone, Copy)]
struct Time(i64);

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 % 1000 == 0 {
            s.serialize_i64(self.0 / 1000)
        } else {
            s.serialize_f64(self.0 as f64 / 1000.0)
        }
    }
}

#[derive(Serialize)]
struct VectorElem<'a> {
    metric: &'a Labels,
    value: (Time, String),
}

#[derive(Serialize)]
struct MatrixElem<'a> {
    metric: &'a Labels,
    values: Vec<(Time, String)>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ResultData<'a> {
    Vector(Vec<VectorElem<'a>>),
    Matrix(Vec<MatrixElem<'a>>),
    Scalar((Time, String)),
}

#[derive(Serialize)]
struct QueryData<'a> {
    #[serde(rename = "resultType")]
    result_type: &'static str,
    result: ResultData<'a>,
}

fn matrix(series: &[Series]) -> ResultData<'_> {
    ResultData::Matrix(
        series
            .iter()
            .map(|s| MatrixElem {
                metric: &s.labels,
                values: s
                    .points
                    .iter()
                    .map(|(t, v)| (Time(*t), format_value(*v)))
                    .collect(),
            })
            .collect(),
    )
}

#[derive(Debug, Deserialize)]
pub struct QueryParams {
    query: Option<String>,
    time: Option<String>,
    start: Option<String>,
    end: Option<String>,
    step: Option<String>,
    timeout: Option<String>,
}

fn required<'a>(v: &'a Option<String>, name: &str, hint: &str) -> Result<&'a str, PromqlError> {
    v.as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad(format!("missing parameter `{name}`: {hint}")))
}

/// Prometheus' `parseTime`: Unix seconds with an optional fraction, or RFC 3339.
pub fn parse_time(name: &str, v: &str) -> Result<i64, PromqlError> {
    if let Ok(secs) = v.parse::<f64>() {
        let ms = secs * 1000.0;
        // Bounded like Prometheus' minTime/maxTime so later arithmetic cannot overflow.
        if ms.is_finite() && ms.abs() < 9.2e15 {
            return Ok(ms.round() as i64);
        }
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            bad(format!(
                "invalid parameter \"{name}\": cannot parse {v:?} to a valid timestamp; give Unix seconds (1700000000) or RFC 3339 (2024-01-02T15:04:05Z)"
            ))
        })
}

/// Prometheus' `parseDuration`: seconds (with fraction) or a PromQL duration (`5m`, `1h30m`).
pub fn parse_duration(name: &str, v: &str) -> Result<i64, PromqlError> {
    if let Ok(secs) = v.parse::<f64>() {
        let ms = secs * 1000.0;
        if ms.is_finite() && ms.abs() < 9.2e15 {
            return Ok(ms.round() as i64);
        }
    }
    promql_parser::util::parse_duration(v)
        .map(|d| d.as_millis().min(i64::MAX as u128) as i64)
        .map_err(|_| {
            bad(format!(
                "invalid parameter \"{name}\": cannot parse {v:?} to a valid duration; give seconds (15) or a duration (15s, 1m)"
            ))
        })
}

fn limits_for(st: &QueryState, timeout: &Option<String>) -> Result<QueryLimits, PromqlError> {
    let mut limits = st.limits.clone();
    if let Some(t) = timeout.as_deref().filter(|s| !s.is_empty()) {
        let ms = parse_duration("timeout", t)?;
        if ms > 0 {
            limits.timeout = limits.timeout.min(Duration::from_millis(ms as u64));
        }
    }
    Ok(limits)
}

async fn instant(
    State(st): State<QueryState>,
    Form(p): Form<QueryParams>,
) -> Result<Response, PromqlError> {
    let q = required(&p.query, "query", "give a PromQL expression, e.g. query=up")?;
    let t = match p.time.as_deref().filter(|s| !s.is_empty()) {
        Some(t) => parse_time("time", t)?,
        None => model::clock::now_ms(),
    };
    let limits = limits_for(&st, &p.timeout)?;
    let v = promql::instant(&st.store, &limits, q, t).await?;
    let body = match &v {
        Value::Scalar(x) => ok(QueryData {
            result_type: "scalar",
            result: ResultData::Scalar((Time(t), format_value(*x))),
        })
        .into_response(),
        Value::String(s) => ok(QueryData {
            result_type: "string",
            result: ResultData::Scalar((Time(t), s.clone())),
        })
        .into_response(),
        Value::Vector(vec) => ok(QueryData {
            result_type: "vector",
            result: ResultData::Vector(
                vec.iter()
                    .map(|s| VectorElem {
                        metric: &s.labels,
                        value: (Time(t), format_value(s.v)),
                    })
                    .collect(),
            ),
        })
        .into_response(),
        Value::Matrix(m) => ok(QueryData {
            result_type: "matrix",
            result: matrix(m),
        })
        .into_response(),
    };
    Ok(body)
}

async fn range(
    State(st): State<QueryState>,
    Form(p): Form<QueryParams>,
) -> Result<Response, PromqlError> {
    let q = required(
        &p.query,
        "query",
        "give a PromQL expression, e.g. query=rate(x[5m])",
    )?;
    let hint_time = "give Unix seconds (1700000000) or RFC 3339 (2024-01-02T15:04:05Z)";
    let start = parse_time("start", required(&p.start, "start", hint_time)?)?;
    let end = parse_time("end", required(&p.end, "end", hint_time)?)?;
    if end < start {
        return Err(bad(
            "invalid parameter \"end\": end timestamp must not be before start time",
        ));
    }
    let step = parse_duration(
        "step",
        required(&p.step, "step", "give seconds (15) or a duration (15s, 1m)")?,
    )?;
    if step <= 0 {
        return Err(bad("invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer"));
    }
    if (end - start) / step > st.limits.max_points {
        return Err(bad(format!(
            "exceeded maximum resolution of {} points per timeseries. Try decreasing the query resolution (?step=XX)",
            thousands(st.limits.max_points)
        )));
    }
    let limits = limits_for(&st, &p.timeout)?;
    let series = promql::range(&st.store, &limits, q, start, end, step).await?;
    Ok(ok(QueryData {
        result_type: "matrix",
        result: matrix(&series),
    })
    .into_response())
}

/// 11000 as "11,000", as Prometheus words its resolution limit.
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

async fn format_query(Form(p): Form<QueryParams>) -> Result<Response, PromqlError> {
    let q = required(&p.query, "query", "give a PromQL expression")?;
    let expr = query::parse(q)?;
    Ok(ok(expr.prettify()).into_response())
}

#[derive(Serialize)]
struct BuildInfo {
    version: &'static str,
    revision: &'static str,
    branch: &'static str,
    #[serde(rename = "buildUser")]
    build_user: &'static str,
    #[serde(rename = "buildDate")]
    build_date: &'static str,
    #[serde(rename = "goVersion")]
    go_version: &'static str,
}

async fn buildinfo() -> Json<Success<BuildInfo>> {
    ok(BuildInfo {
        version: env!("CARGO_PKG_VERSION"),
        revision: "",
        branch: "",
        build_user: "pipewatch",
        build_date: "",
        go_version: "none (pipewatch is written in Rust)",
    })
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn the_resolution_limit_is_worded_as_prometheus_words_it() {
        assert_eq!(thousands(11_000), "11,000");
        assert_eq!(thousands(250), "250");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
