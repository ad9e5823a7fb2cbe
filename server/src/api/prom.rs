//! Health, self-metrics, status, targets and the Prometheus-compatible read routes
//! (`/api/v1/series`, `/api/v1/labels`, `/api/v1/label/{name}/values`); PromQL queries are in [`super::promql`].

use super::{success, ApiError, Success};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use model::{Selector, StatusInfo, TargetHealth};
use serde_json::{json, Value};
use std::time::Duration;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(self_metrics))
        .route("/api/v1/status", get(status))
        .route("/api/v1/series", get(series))
        .route("/api/v1/labels", get(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/targets", get(targets))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(st): State<AppState>) -> Response {
    let ping = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query("SELECT 1").execute(st.store.pool()),
    )
    .await;
    match ping {
        Ok(Ok(_)) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(e)) => ApiError::unavailable(format!("database not reachable: {e}")).into_response(),
        Err(_) => ApiError::unavailable("database did not answer within 2s").into_response(),
    }
}

async fn self_metrics(State(st): State<AppState>) -> Response {
    (
        // prometheus-client writes OpenMetrics 1.0 (with `# EOF`).
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.encode(),
    )
        .into_response()
}

async fn status(State(st): State<AppState>) -> Result<Json<Success<StatusInfo>>, ApiError> {
    Ok(success(st.status_info().await?))
}

async fn targets(State(st): State<AppState>) -> Json<Success<Vec<TargetHealth>>> {
    success(st.board.snapshot())
}

/// Query string with repeated `match[]` keys, which serde_urlencoded cannot collect.
fn matchers_param(raw: Option<&str>) -> Result<Vec<Selector>, ApiError> {
    let mut out = Vec::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if k == "match[]" {
            out.push(Selector::parse(&v).map_err(|e| ApiError::bad_data(e.message))?);
        }
    }
    Ok(out)
}

async fn series(
    State(st): State<AppState>,
    uri: axum::http::Uri,
) -> Result<Json<Success<Value>>, ApiError> {
    let sels = matchers_param(uri.query())?;
    if sels.is_empty() {
        return Err(ApiError::bad_data(
            "no match[] parameter: add at least one series selector, e.g. /api/v1/series?match[]=up",
        ));
    }
    let mut data = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for sel in &sels {
        for s in st.store.find_series(sel).await? {
            if seen.insert(s.id) {
                data.push(labels_json(&s.key.metric, &s.key.labels));
            }
        }
    }
    Ok(success(Value::Array(data)))
}

fn labels_json(metric: &str, labels: &model::Labels) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("__name__".into(), Value::String(metric.to_string()));
    for (k, v) in labels.iter() {
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
    Value::Object(m)
}

async fn labels(
    State(st): State<AppState>,
    uri: axum::http::Uri,
) -> Result<Json<Success<Value>>, ApiError> {
    let sels = matchers_param(uri.query())?;
    let metric = sels.first().and_then(|s| s.metric.clone());
    let mut names = st.store.label_names(metric.as_deref()).await?;
    names.push("__name__".into());
    names.sort();
    names.dedup();
    Ok(success(json!(names)))
}

async fn label_values(
    State(st): State<AppState>,
    Path(name): Path<String>,
    uri: axum::http::Uri,
) -> Result<Json<Success<Value>>, ApiError> {
    let sels = matchers_param(uri.query())?;
    let metric = sels.first().and_then(|s| s.metric.clone());
    let values = if name == "__name__" {
        st.store.metric_names().await?
    } else {
        st.store.label_values(&name, metric.as_deref()).await?
    };
    Ok(success(json!(values)))
}

/// Prometheus renders sample values as strings so NaN and ±Inf survive JSON.
pub use query::format_value;

/// RFC 3339 or Unix seconds (with fraction), as Prometheus accepts.
pub fn parse_time(name: &str, v: Option<&str>) -> Result<i64, ApiError> {
    let v = v.ok_or_else(|| {
        ApiError::bad_data(format!("missing parameter `{name}`: give Unix seconds (1700000000) or RFC 3339 (2024-01-02T15:04:05Z)"))
    })?;
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() {
            return Ok((secs * 1000.0).round() as i64);
        }
    }
    humantime::parse_rfc3339_weak(v)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .ok_or_else(|| {
            ApiError::bad_data(format!(
                "cannot parse `{name}`={v:?}: give Unix seconds (1700000000) or RFC 3339 (2024-01-02T15:04:05Z)"
            ))
        })
}

pub fn parse_step(v: Option<&str>) -> Result<i64, ApiError> {
    let v = v.ok_or_else(|| {
        ApiError::bad_data("missing parameter `step`: give seconds (15) or a duration (15s, 1m)")
    })?;
    let ms = match v.parse::<f64>() {
        Ok(secs) if secs.is_finite() => (secs * 1000.0).round() as i64,
        _ => humantime::parse_duration(v)
            .map(|d| d.as_millis() as i64)
            .map_err(|_| {
                ApiError::bad_data(format!(
                    "cannot parse `step`={v:?}: give seconds (15) or a duration (15s, 1m)"
                ))
            })?,
    };
    if ms <= 0 {
        return Err(ApiError::bad_data("zero or negative query resolution step widths are not accepted: give a positive `step`"));
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_prometheus_does() {
        assert_eq!(
            parse_time("start", Some("1700000000.5")).unwrap(),
            1_700_000_000_500
        );
        assert_eq!(
            parse_time("start", Some("2023-11-14T22:13:20Z")).unwrap(),
            1_700_000_000_000
        );
        assert!(parse_time("start", Some("yesterday"))
            .unwrap_err()
            .message
            .contains("RFC 3339"));
        assert_eq!(parse_step(Some("1m")).unwrap(), 60_000);
        assert_eq!(parse_step(Some("15")).unwrap(), 15_000);
        assert!(parse_step(Some("0")).is_err());
    }

    #[test]
    fn special_values_render_like_prometheus() {
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(1.5), "1.5");
    }
}
