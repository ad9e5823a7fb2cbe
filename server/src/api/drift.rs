//! `GET /api/v1/drift?dataset=<d>&column=<c>&limit=<n>&before=<id>`: drift comparisons the
//! drift job wrote (`server::analysis::drift`), newest first, in the API's envelope. Each is
//! [`model::anomaly::DriftResult`] as JSON: dataset (the feature's pipeline node), column (the
//! feature), method (the test, Evidently's name), value (p-value for tests, else the
//! distance), threshold, drifted, the reference and current windows and when it was
//! evaluated (Unix ms), and a sentence. `limit` 1 to 1000 (default [`DEFAULT_LIMIT`]); a full
//! or cut page carries `"next": {"before": <id>}`.
//!
//! Profiles are sent to `POST /api/v1/drift/profile`, a push receiver
//! (`server::receivers::drift_profile`).

use crate::api::{ApiError, ListPage, LIST_BYTE_BUDGET};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use store::anomalies::MAX_ANOMALIES_PAGE;

/// Results per page when the caller does not say.
pub const DEFAULT_LIMIT: u32 = 100;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/drift", get(list))
        .with_state(state)
}

#[derive(Deserialize)]
struct ListParams {
    dataset: Option<String>,
    column: Option<String>,
    limit: Option<String>,
    before: Option<String>,
}

struct DriftQuery {
    dataset: Option<String>,
    column: Option<String>,
    limit: u32,
    before: Option<i64>,
}

fn drift_query(p: ListParams) -> Result<DriftQuery, ApiError> {
    let text = |v: Option<String>| v.filter(|s| !s.is_empty());
    let limit = match text(p.limit) {
        None => DEFAULT_LIMIT,
        Some(l) => match l.parse::<u32>() {
            Ok(n) if (1..=MAX_ANOMALIES_PAGE).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_data(format!(
                    "limit {l:?} is out of range; send 1 to {MAX_ANOMALIES_PAGE} and page on with `before`"
                )))
            }
        },
    };
    let before = match text(p.before) {
        None => None,
        Some(b) => Some(b.parse::<i64>().map_err(|_| {
            ApiError::bad_data(format!(
                "before {b:?} is not a drift result id; send the `next.before` of the previous page"
            ))
        })?),
    };
    Ok(DriftQuery {
        dataset: text(p.dataset),
        column: text(p.column),
        limit,
        before,
    })
}

async fn list(
    State(st): State<AppState>,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let q = drift_query(p)?;
    let items = st
        .store
        .list_drift_results(q.dataset.as_deref(), q.column.as_deref(), q.before, q.limit)
        .await?;
    let full = items.len() >= q.limit as usize;
    let page = ListPage::within(items.iter(), LIST_BYTE_BUDGET);
    let next = (full || page.truncated)
        .then(|| items.get(page.items.len().saturating_sub(1)))
        .flatten()
        .map(|last| json!({ "before": last.id }));
    Ok(page.answer(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked_naming_what_to_send() {
        let q = drift_query(ListParams {
            dataset: Some("transform".into()),
            column: Some(String::new()),
            limit: None,
            before: Some("7".into()),
        })
        .unwrap();
        assert_eq!(
            (q.dataset.as_deref(), q.column, q.limit, q.before),
            (Some("transform"), None, DEFAULT_LIMIT, Some(7))
        );
        let e = drift_query(ListParams {
            dataset: None,
            column: None,
            limit: Some("5000".into()),
            before: None,
        })
        .err()
        .unwrap();
        assert!(e.message().contains("send 1 to 1000"), "{}", e.message());
    }
}
