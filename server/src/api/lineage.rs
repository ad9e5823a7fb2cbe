//! Read API over what the OpenLineage receiver recorded, in the Prometheus API's envelope
//! (`{"status":"success","data":...}`):
//!
//! - `GET /api/v1/lineage/graph`: nodes (jobs with their latest run, datasets with their latest
//!   schema) and edges (`input`: dataset -> job, `output`: job -> dataset);
//! - `GET /api/v1/lineage/runs?namespace=&job=[&limit=]`: runs of one job, latest first;
//! - `GET /api/v1/lineage/schema_changes[?limit=]`: schema-change events, newest first.
//!
//! The two lists are cut at [`super::LIST_BYTE_BUDGET`] and then say `"truncated": true` (ask
//! for a smaller `limit`).

use super::{success, ApiError, ListPage, Success, LIST_BYTE_BUDGET};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/lineage/graph", get(graph))
        .route("/api/v1/lineage/runs", get(runs))
        .route("/api/v1/lineage/schema_changes", get(schema_changes))
        .with_state(state)
}

async fn graph(
    State(st): State<AppState>,
) -> Result<Json<Success<impl serde::Serialize>>, ApiError> {
    let g = st.store.lineage_graph().await?;
    Ok(success(g))
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
) -> Result<Json<serde_json::Value>, ApiError> {
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
    Ok(ListPage::within(runs, LIST_BYTE_BUDGET).answer(None))
}

#[derive(Deserialize)]
struct LimitQuery {
    limit: Option<i64>,
}

async fn schema_changes(
    State(st): State<AppState>,
    Query(q): Query<LimitQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let changes = st.store.lineage_schema_changes(limit(q.limit)?).await?;
    Ok(ListPage::within(changes, LIST_BYTE_BUDGET).answer(None))
}
