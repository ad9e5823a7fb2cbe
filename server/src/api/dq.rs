//! `GET /api/v1/dq/datasets` and `GET /api/v1/dq/checks?dataset=&last=`: the data-quality
//! results the DQ receiver recorded, as the Data quality page shows them. No token needed,
//! like the other read routes. Both lists are cut at [`super::LIST_BYTE_BUDGET`] and then say
//! `"truncated": true` (ask for fewer `last` runs).

use super::{ApiError, ListPage, LIST_BYTE_BUDGET};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

/// History strip length when the caller does not say.
pub const DEFAULT_LAST_RUNS: u32 = 20;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/dq/datasets", get(datasets))
        .route("/api/v1/dq/checks", get(checks))
        .with_state(state)
}

async fn datasets(State(st): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let datasets = st.store.dq_datasets().await?;
    Ok(ListPage::within(datasets, LIST_BYTE_BUDGET).answer(None))
}

#[derive(Deserialize)]
struct ChecksParams {
    dataset: Option<String>,
    last: Option<u32>,
}

async fn checks(
    State(st): State<AppState>,
    Query(p): Query<ChecksParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Some(dataset) = p.dataset.filter(|d| !d.is_empty()) else {
        return Err(ApiError::bad_data(
            "missing `dataset`; call /api/v1/dq/checks?dataset=<name> with a name from /api/v1/dq/datasets",
        ));
    };
    let last = p.last.unwrap_or(DEFAULT_LAST_RUNS).clamp(1, 500);
    let checks = st.store.dq_checks(&dataset, last).await?;
    Ok(ListPage::within(checks, LIST_BYTE_BUDGET).answer(None))
}
