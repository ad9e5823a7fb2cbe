//! `GET /api/v1/events`: change events, newest first, in the Prometheus API envelope
//! (`{"status":"success","data":[...]}`). No token needed, like the other read APIs.
//!
//! Filters, all optional: `node`, `kind`, `start` and `end` (Unix seconds or RFC 3339, as
//! `query_range` takes them) and `limit` (1 to [`store::events::MAX_EVENTS_PAGE`], default
//! [`DEFAULT_LIMIT`]). Each event is `{"time": RFC 3339, "time_ms", "node", "kind", "detail",
//! "labels", "version"}`, the shape `POST /api/v1/events` takes plus the time in milliseconds.
//! A page is cut at [`crate::api::LIST_BYTE_BUDGET`] (`"truncated": true`); a full or cut page
//! carries `"next": {"end": <ms of its oldest event>}`: the next page is `end=<that / 1000>`
//! (events at exactly that millisecond may show on both pages).

use crate::api::prom::parse_time;
use crate::api::{ApiError, ListPage, LIST_BYTE_BUDGET};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use model::{ChangeEvent, ChangeEventQuery};
use serde::Deserialize;
use serde_json::{json, Value};
use store::events::MAX_EVENTS_PAGE;

/// Events per page when the caller does not say.
pub const DEFAULT_LIMIT: u32 = 100;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/events", get(list))
        .with_state(state)
}

#[derive(Deserialize)]
struct ListParams {
    node: Option<String>,
    kind: Option<String>,
    start: Option<String>,
    end: Option<String>,
    limit: Option<String>,
}

/// The query a request asks for, or a 400 saying which parameter to fix.
fn query(p: ListParams) -> Result<ChangeEventQuery, ApiError> {
    let time = |name: &str, v: Option<String>| {
        v.filter(|s| !s.is_empty())
            .map(|s| parse_time(name, Some(&s)))
            .transpose()
    };
    let start_ms = time("start", p.start)?;
    let end_ms = time("end", p.end)?;
    if let (Some(s), Some(e)) = (start_ms, end_ms) {
        if e < s {
            return Err(ApiError::bad_data(
                "`end` is before `start`; swap them or leave one out",
            ));
        }
    }
    let limit = match p.limit.as_deref().filter(|s| !s.is_empty()) {
        None => DEFAULT_LIMIT,
        Some(l) => match l.parse::<u32>() {
            Ok(n) if (1..=MAX_EVENTS_PAGE).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_data(format!(
                    "limit {l:?} is out of range; send 1 to {MAX_EVENTS_PAGE}, and narrow start/end for older events"
                )))
            }
        },
    };
    let text = |v: Option<String>| v.filter(|s| !s.is_empty());
    Ok(ChangeEventQuery {
        node: text(p.node),
        kind: text(p.kind),
        start_ms,
        end_ms,
        limit,
    })
}

/// The wire form of an event: the POST shape plus `time_ms`.
pub fn event_json(e: &ChangeEvent) -> Value {
    let time = u64::try_from(e.time_ms).ok().map(|ms| {
        humantime::format_rfc3339_millis(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
        )
        .to_string()
    });
    json!({
        "time": time,
        "time_ms": e.time_ms,
        "node": e.node,
        "kind": e.kind,
        "detail": e.detail,
        "labels": e.labels,
        "version": e.version,
    })
}

async fn list(
    State(st): State<AppState>,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let q = query(p)?;
    let events = st.store.list_change_events(&q).await?;
    let full = events.len() >= q.limit as usize;
    let page = ListPage::within(events.iter().map(event_json), LIST_BYTE_BUDGET);
    let next = (full || page.truncated)
        .then(|| events.get(page.items.len().saturating_sub(1)))
        .flatten()
        .map(|last| json!({ "end": last.time_ms }));
    Ok(page.answer(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(start: &str, end: &str, limit: &str) -> ListParams {
        ListParams {
            node: Some(String::new()),
            kind: None,
            start: Some(start.into()),
            end: Some(end.into()),
            limit: Some(limit.into()),
        }
    }

    #[test]
    fn parameters_are_checked_with_what_to_send() {
        let q = query(params("2024-05-02T13:00:00Z", "1714658400", "")).unwrap();
        assert_eq!(q.start_ms, Some(1_714_654_800_000));
        assert_eq!(q.end_ms, Some(1_714_658_400_000));
        assert_eq!(q.limit, DEFAULT_LIMIT);
        assert_eq!(q.node, None);
        let e = query(params("", "", "5000")).unwrap_err();
        assert!(e.message.contains("send 1 to 1000"));
        let e = query(params("1714658400", "1714654800", "")).unwrap_err();
        assert!(e.message.contains("`end` is before `start`"));
        let e = query(params("yesterday", "", "")).unwrap_err();
        assert!(e.message.contains("cannot parse `start`"));
    }
}
