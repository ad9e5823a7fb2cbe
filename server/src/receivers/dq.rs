//! Data-quality results: `POST /api/v1/dq/{gx,dbt,soda,generic}` (the receiver) and the read API
//! `GET /api/v1/dq/datasets`, `GET /api/v1/dq/checks?dataset=&last=` (what the Data quality
//! page shows).
//!
//! A body is the tool's JSON result file as is (`application/json`):
//!
//! - `gx`: a validation result (`validator.validate()`, the validations store file) or a
//!   checkpoint result (`checkpoint.run()`), Great Expectations 1.x or 0.18;
//! - `dbt`: `target/run_results.json` or `target/sources.json` alone, or one JSON object
//!   `{"run_results": ..., "manifest": ..., "sources": ...}` (any of them; the manifest maps
//!   tests to the model and column they check);
//! - `soda`: the scan result written by `soda scan -srf <file>`;
//! - `generic`: results from any other tool, one JSON object, an array or NDJSON (see
//!   [`collectors::dq::generic`]).
//!
//! Each check run is recorded in `dq_check_runs` (idempotent: a re-posted file changes
//! nothing), and the new runs become series, written at each check's run time:
//!
//! - `dq_check_status{tool,suite,dataset,column,check}`: 1 pass, 0.5 warn, 0 fail or error
//!   (skipped runs write nothing), so an average reads as a health score;
//! - `dq_check_observed_value{...}`: the observed value, when it is a number;
//! - `dq_dataset_pass_ratio{tool,suite,dataset}`: passed / run checks of the dataset in that run.
//!
//! Answers: 201 with a JSON summary when something new was stored, 200 with the same summary
//! when everything was already there; 400 naming what is wrong; 413 over
//! `receivers.max_body_bytes`; 415 for another content type; 503 with `Retry-After` when the
//! ingest queue has no room (checked before anything is recorded) or the database fails.

use super::{ReceiverError, ReceiverState};
use crate::api::ApiError;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use collectors::dq::{self, CheckRun, DqError, DqReport, Tool};
use model::{Batch, Labels, MetricType, Sample, SeriesKey, TimeSeries};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use store::dq::CheckRunRecord;

pub const RECEIVER: &str = "dq";
/// History strip length when the caller does not say.
pub const DEFAULT_LAST_RUNS: u32 = 20;

/// The handler of `POST /api/v1/dq/{tool}`.
pub async fn post(
    State(st): State<ReceiverState>,
    Path(tool): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match accept(&st, &tool, &headers, body).await {
        Ok(summary) => {
            let status = if summary["inserted"].as_u64().unwrap_or(0) > 0 {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            st.app
                .metrics
                .receiver_answered(RECEIVER, status.as_u16(), None);
            (status, Json(summary)).into_response()
        }
        Err(e) => {
            st.app
                .metrics
                .receiver_answered(RECEIVER, e.status.as_u16(), Some(&e.message));
            e.into_response()
        }
    }
}

async fn accept(
    st: &ReceiverState,
    tool: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Value, ReceiverError> {
    let tool = match tool {
        "gx" => Tool::Gx,
        "dbt" => Tool::Dbt,
        "soda" => Tool::Soda,
        "generic" => Tool::Generic,
        other => {
            return Err(ReceiverError::new(
                StatusCode::NOT_FOUND,
                format!("unknown data-quality tool {other:?}; POST to /api/v1/dq/gx, /api/v1/dq/dbt, /api/v1/dq/soda, or /api/v1/dq/generic for any other tool"),
            ))
        }
    };
    if tool == Tool::Generic {
        super::events::check_json_content_type(headers)?;
    } else {
        check_content_type(headers)?;
    }
    let body = super::read_body(
        headers,
        body,
        st.config.max_body_bytes,
        "send the results in several files",
    )
    .await?;
    // A dbt manifest is half a megabyte for a toy project: parse off the async workers.
    let report = tokio::task::spawn_blocking(move || parse(tool, &body))
        .await
        .map_err(|e| {
            ReceiverError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("parsing failed unexpectedly: {e}"),
            )
        })?
        .map_err(|e| ReceiverError::bad_request(e.to_string()))?;
    store_report(&st.app, &report, Some(st)).await
}

fn parse(tool: Tool, body: &[u8]) -> Result<DqReport, DqError> {
    match tool {
        Tool::Gx => dq::parse_gx(body),
        Tool::Dbt => dq::parse_dbt(body),
        Tool::Soda => dq::parse_soda(body),
        Tool::Generic => dq::parse_generic(body),
    }
}

/// Records a parsed report and queues the series of its new runs; returns the summary the
/// receiver answers with. Without a receiver state (the demo) the batch goes straight to the
/// queue.
pub async fn store_report(
    app: &AppState,
    report: &DqReport,
    receiver: Option<&ReceiverState>,
) -> Result<Value, ReceiverError> {
    let now = crate::scrape_manager::now_ms();
    let records: Vec<CheckRunRecord> = report.checks.iter().map(|c| record(c, now)).collect();
    if let Some(bad) = records
        .iter()
        .find(|r| !store::pgcopy::timestamp_in_range(r.run_time_ms))
    {
        return Err(ReceiverError::bad_request(format!(
            "check {:?}: run time {} ms is outside what PostgreSQL can store; send the result file as the tool wrote it",
            bad.check_name, bad.run_time_ms
        )));
    }
    // Refuse before recording when the queue cannot take the series: once recorded, a retry
    // is a duplicate and would not bring its series again.
    let needed = records.len() * 3;
    let (depth, capacity) = (app.queue.depth(), app.queue.capacity());
    if depth + needed > capacity {
        return Err(ReceiverError {
            status: StatusCode::from_u16(app.receivers.queue_full_status)
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            message: format!(
                "ingest queue is full ({depth} of {capacity} samples); retry after the Retry-After delay"
            ),
            retry_after: Some(1),
        });
    }
    let outcome = app.store.record_check_runs(&records).await.map_err(|err| {
        tracing::error!(error = %err, "recording dq check runs failed");
        ReceiverError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!("the database did not take the check runs, retry later: {err}"),
            retry_after: Some(5),
        }
    })?;
    let batch = series(&records, &outcome.inserted);
    let samples = batch.sample_count();
    if !batch.is_empty() {
        match receiver {
            Some(st) => st.push(RECEIVER, batch)?,
            None => app
                .queue
                .try_push(batch)
                .map_err(|e| ReceiverError::from_push(e, app.receivers.queue_full_status))?,
        }
    }
    let mut statuses: BTreeMap<&str, usize> = BTreeMap::new();
    let mut datasets: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &records {
        *statuses.entry(r.status.as_str()).or_default() += 1;
        *datasets.entry(r.dataset.as_str()).or_default() += 1;
    }
    Ok(json!({
        "tool": report.tool.as_str(),
        "tool_version": report.tool_version,
        "format": report.format,
        "checks": records.len(),
        "inserted": outcome.inserted.len(),
        "duplicates": records.len() - outcome.inserted.len(),
        "statuses": statuses,
        "datasets": datasets,
        "samples": samples,
    }))
}

/// The store's row for a check run; a run without a time gets `now`.
pub fn record(c: &CheckRun, now_ms: i64) -> CheckRunRecord {
    CheckRunRecord {
        tool: c.tool.as_str().to_owned(),
        run_id: c.run_id.clone(),
        check_id: c.check_id.clone(),
        tool_version: c.tool_version.clone(),
        suite: c.suite.clone(),
        dataset: c.dataset.clone(),
        column: c.column.clone(),
        check_name: c.check_name.clone(),
        check_type: c.check_type.clone(),
        status: c.status.as_str().to_owned(),
        raw_status: c.raw_status.clone(),
        observed_value: c.observed_value.filter(|v| v.is_finite()),
        observed_raw: c.observed_raw.clone(),
        expected: c.expected.clone(),
        message: c.message.clone(),
        run_time_ms: c.run_time_ms.unwrap_or(now_ms),
        id_may_change: c.id_may_change,
    }
}

/// Labels of a check's series. `column` is left out when the check has none, as Prometheus
/// treats an empty label as absent.
pub fn check_labels(r: &CheckRunRecord) -> Labels {
    let mut l = Labels::from_pairs([
        ("tool", r.tool.as_str()),
        ("suite", r.suite.as_str()),
        ("dataset", r.dataset.as_str()),
        ("check", r.check_name.as_str()),
    ]);
    if let Some(c) = r.column.as_deref().filter(|c| !c.is_empty()) {
        l.insert("column", c);
    }
    l
}

fn gauge(metric: &str, labels: Labels, ts: i64, value: f64) -> TimeSeries {
    TimeSeries {
        key: SeriesKey::new(metric, labels),
        metric_type: MetricType::Gauge,
        samples: vec![Sample { ts, value }],
    }
}

/// Series of the newly inserted runs (`inserted` indexes into `records`), plus the pass ratio
/// of every (tool, suite, dataset, run) they belong to, over all of that run's checks.
pub fn series(records: &[CheckRunRecord], inserted: &[usize]) -> Batch {
    let mut batch = Batch::default();
    let mut runs = BTreeMap::new();
    for &i in inserted {
        let r = &records[i];
        if let Some(v) = dq::CheckStatus::parse(&r.status).and_then(|s| s.series_value()) {
            batch
                .series
                .push(gauge("dq_check_status", check_labels(r), r.run_time_ms, v));
        }
        if let Some(v) = r.observed_value {
            batch.series.push(gauge(
                "dq_check_observed_value",
                check_labels(r),
                r.run_time_ms,
                v,
            ));
        }
        runs.insert((&r.tool, &r.suite, &r.dataset, &r.run_id), ());
    }
    for (tool, suite, dataset, run_id) in runs.into_keys() {
        let of_run = records.iter().filter(|r| {
            &r.tool == tool && &r.suite == suite && &r.dataset == dataset && &r.run_id == run_id
        });
        let (mut pass, mut ran, mut ts) = (0usize, 0usize, i64::MIN);
        for r in of_run {
            ts = ts.max(r.run_time_ms);
            if r.status != "skipped" {
                ran += 1;
                pass += usize::from(r.status == "pass");
            }
        }
        if ran > 0 {
            batch.series.push(gauge(
                "dq_dataset_pass_ratio",
                Labels::from_pairs([
                    ("tool", tool.as_str()),
                    ("suite", suite.as_str()),
                    ("dataset", dataset.as_str()),
                ]),
                ts,
                pass as f64 / ran as f64,
            ));
        }
    }
    batch
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ReceiverError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let ct = ct
        .to_str()
        .map_err(|_| ReceiverError::bad_request("header content-type is not visible ASCII"))?;
    let media = ct.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/json") {
        return Ok(());
    }
    Err(ReceiverError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("Content-Type {ct:?} is not supported; send the result file as Content-Type: application/json (for dbt, one JSON object {{\"run_results\": ..., \"manifest\": ..., \"sources\": ...}} instead of multipart)"),
    ))
}

/// `GET /api/v1/dq/datasets` and `GET /api/v1/dq/checks`: no token needed, like the other
/// read APIs.
pub fn read_router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/dq/datasets", get(datasets))
        .route("/api/v1/dq/checks", get(checks))
        .with_state(state)
}

async fn datasets(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let d = st.store.dq_datasets().await?;
    Ok(Json(json!({"status": "success", "data": d})))
}

#[derive(Deserialize)]
struct ChecksParams {
    dataset: Option<String>,
    last: Option<u32>,
}

async fn checks(
    State(st): State<AppState>,
    Query(p): Query<ChecksParams>,
) -> Result<Json<Value>, ApiError> {
    let Some(dataset) = p.dataset.filter(|d| !d.is_empty()) else {
        return Err(ApiError::bad_data(
            "missing `dataset`; call /api/v1/dq/checks?dataset=<name> with a name from /api/v1/dq/datasets",
        ));
    };
    let last = p.last.unwrap_or(DEFAULT_LAST_RUNS).clamp(1, 500);
    let c = st.store.dq_checks(&dataset, last).await?;
    Ok(Json(json!({"status": "success", "data": c})))
}
