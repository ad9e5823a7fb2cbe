//! Read API over what the OpenLineage and Alertmanager receivers recorded, in the Prometheus
//! API's envelope (`{"status":"success","data":...}`):
//!
//! - `GET /api/v1/lineage/graph`: nodes (jobs with their latest run, datasets with their latest
//!   schema) and edges (`input`: dataset -> job, `output`: job -> dataset);
//! - `GET /api/v1/lineage/runs?namespace=&job=[&limit=]`: runs of one job, latest first;
//! - `GET /api/v1/lineage/schema_changes[?limit=]`: schema-change events, newest first;
//! - `GET /api/v1/alerts[?state=all]`: alerts received on `POST /api/v2/alerts` that are
//!   still firing (with `state=all`, resolved ones too).

use crate::api::ApiError;
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/lineage/graph", get(graph))
        .route("/api/v1/lineage/runs", get(runs))
        .route("/api/v1/lineage/schema_changes", get(schema_changes))
        .route("/api/v1/alerts", get(alerts))
        .with_state(state)
}

fn success(data: Value) -> Json<Value> {
    Json(json!({"status": "success", "data": data}))
}

async fn graph(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let g = st.store.lineage_graph().await?;
    Ok(success(serde_json::to_value(g).unwrap_or_default()))
}

#[derive(Deserialize)]
struct RunsQuery {
    namespace: Option<String>,
    job: Option<String>,
    limit: Option<i64>,
}

const MAX_LIMIT: i64 = 1000;

fn limit(l: Option<i64>) -> Result<i64, ApiError> {
    match l {
        None => Ok(100),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::bad_data(format!(
            "limit {n} is out of range; send 1 to {MAX_LIMIT}"
        ))),
    }
}

async fn runs(
    State(st): State<AppState>,
    Query(q): Query<RunsQuery>,
) -> Result<Json<Value>, ApiError> {
    let (Some(namespace), Some(job)) = (q.namespace, q.job) else {
        return Err(ApiError::bad_data(
            "namespace and job are required, e.g. /api/v1/lineage/runs?namespace=airflow&job=etl.load",
        ));
    };
    let runs = st
        .store
        .lineage_runs(
            &store::lineage::Qualified::new(namespace, job),
            limit(q.limit)?,
        )
        .await?;
    Ok(success(serde_json::to_value(runs).unwrap_or_default()))
}

#[derive(Deserialize)]
struct LimitQuery {
    limit: Option<i64>,
}

async fn schema_changes(
    State(st): State<AppState>,
    Query(q): Query<LimitQuery>,
) -> Result<Json<Value>, ApiError> {
    let changes = st.store.lineage_schema_changes(limit(q.limit)?).await?;
    Ok(success(serde_json::to_value(changes).unwrap_or_default()))
}

#[derive(Deserialize)]
struct AlertsQuery {
    state: Option<String>,
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
    let alerts = st.store.alerts(model::clock::now_ms(), all).await?;
    Ok(success(json!({ "alerts": alerts })))
}
