//! Health, self-metrics, status and targets; the Prometheus catalogue routes (series, labels,
//! metadata) are in [`super::catalog`], PromQL queries in [`super::promql`].

use super::{success, ApiError, Success};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use model::{StatusInfo, TargetHealth};
use std::time::Duration;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(self_metrics))
        .route("/api/v1/status", get(status))
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
