//! `GET /api/v1/alerts[?state=all][&limit=][&offset=]`: the pending and firing alerts of
//! pipewatch's own alerting rules in Prometheus' shape (`labels`, `annotations`, `state`,
//! `activeAt`, `value`), then the alerts received on `POST /api/v2/alerts` that are still
//! firing (with `state=all`, resolved ones too), newest first, in the API's envelope: at most
//! `limit` (1 to 1000, default 500) from `offset`, within [`super::LIST_BYTE_BUDGET`];
//! `"next": {"offset": n}` when there are more. Every item says its `source` (`rule` or
//! `alertmanager`).

use super::{ApiError, ListPage, LIST_BYTE_BUDGET};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

/// Alerts per page when the caller does not say, and at most.
const DEFAULT_LIMIT: usize = 500;
const MAX_LIMIT: usize = 1000;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/alerts", get(alerts))
        .with_state(state)
}

#[derive(Deserialize)]
struct AlertsQuery {
    state: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

async fn alerts(
    State(st): State<AppState>,
    Query(q): Query<AlertsQuery>,
) -> Result<Json<Value>, ApiError> {
    let all = match q.state.as_deref() {
        None | Some("firing") => false,
        Some("all") => true,
        Some(other) => {
            return Err(ApiError::bad_data(format!(
                "state {other:?} is not known; send state=firing (default) or state=all"
            )))
        }
    };
    let limit = match q.limit {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::bad_data(format!(
                "limit {n} is out of range; send 1 to {MAX_LIMIT} and page on with offset"
            )))
        }
    };
    let offset = q.offset.unwrap_or(0);
    let rule_alerts = st
        .store
        .lifecycle_alerts(&store::lifecycle::AlertFilter {
            states: vec![
                store::lifecycle::LifecycleState::Pending,
                store::lifecycle::LifecycleState::Firing,
            ],
            source: Some(store::lifecycle::AlertSource::Rule),
            ..Default::default()
        })
        .await?;
    let received = st.store.alerts(model::clock::now_ms(), all).await?;
    let alerts: Vec<Value> = rule_alerts
        .iter()
        .map(|a| {
            json!({
                "source": "rule",
                "labels": a.labels,
                "annotations": a.annotations,
                "state": a.state,
                "activeAt": a.active_at_ms
                    .and_then(chrono::DateTime::from_timestamp_millis)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                "value": a.last_value.map(query::format_value).unwrap_or_default(),
            })
        })
        .chain(received.iter().map(|a| {
            let mut v = serde_json::to_value(a).unwrap_or(Value::Null);
            v["source"] = "alertmanager".into();
            v
        }))
        .collect();
    let total = alerts.len();
    let page = ListPage::within(
        alerts.into_iter().skip(offset).take(limit),
        LIST_BYTE_BUDGET,
    );
    let end = offset.saturating_add(page.items.len());
    let next = (end < total).then(|| json!({ "offset": end }));
    // `data` keeps its shape (`{"alerts": [...]}`); the page fields sit beside it.
    let truncated = page.truncated;
    let mut body = json!({"status": "success", "data": {"alerts": page.items}});
    if truncated {
        body["truncated"] = true.into();
    }
    if let Some(next) = next {
        body["next"] = next;
    }
    Ok(Json(body))
}
