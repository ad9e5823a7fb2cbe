//! `GET /api/v1/alerts[?state=all]`: alerts received on `POST /api/v2/alerts` that are still
//! firing (with `state=all`, resolved ones too), in the API's envelope.

use super::{success, ApiError, Success};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/alerts", get(alerts))
        .with_state(state)
}

/// The `data` of the answer.
#[derive(Debug, Serialize)]
pub struct AlertList {
    pub alerts: Vec<store::alerts::StoredAlert>,
}

#[derive(Deserialize)]
struct AlertsQuery {
    state: Option<String>,
}

async fn alerts(
    State(st): State<AppState>,
    Query(q): Query<AlertsQuery>,
) -> Result<Json<Success<AlertList>>, ApiError> {
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
    Ok(success(AlertList { alerts }))
}
