//! Data-quality results: `POST /api/v1/dq/{gx,dbt,soda,generic}`. What was recorded is read back by
//! `crate::api::dq` (`GET /api/v1/dq/datasets`, `GET /api/v1/dq/checks`).
//!
//! A body is the tool's JSON result file as is (`application/json`):
//!
//! - `gx`: a validation result (`validator.validate()`, the validations store file) or a
//!   checkpoint result (`checkpoint.run()`), Great Expectations 1.x or 0.18;
//! - `dbt`: `target/run_results.json` or `target/sources.json` alone, or one JSON object
//!   `{"run_results": ..., "manifest": ..., "sources": ...}` (any of them; the manifest maps
//!   tests to the model and column they check);
//! - `soda`: the scan result written by `soda scan -srf <file>`.
//!
//! Each check run is recorded in `dq_check_runs` (idempotent: a re-posted file changes
//! nothing), and the new runs become series, written at each check's run time:
//!
//! - `dq_check_status{tool,suite,dataset,column,check}`: 1 pass, 0.5 warn, 0 fail or error
//!   (skipped runs write nothing), so an average reads as a health score;
//! - `dq_check_observed_value{...}`: the observed value, when it is a number;
//! - `dq_dataset_pass_ratio{tool,suite,dataset}`: passed / run checks of the dataset in that run.
//!
//! Answers: 201 with a JSON [`Summary`] when something new was stored, 200 with the same
//! summary when everything was already there; 400 naming what is wrong; 404 for an unknown
//! tool; 413 over `receivers.max_body_bytes`; 415 without `Content-Type: application/json`;
//! 503 with `Retry-After` when the ingest queue has no room (checked before anything is
//! recorded) or the database fails.

use super::{Accepted, Payload, Receiver, ReceiverError, ReceiverState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use collectors::dq::{self, CheckRun, DqError, DqReport, Tool};
use model::{Batch, Labels, MetricType, Sample, SeriesKey, TimeSeries};
use serde::Serialize;
use std::collections::BTreeMap;
use store::dq::CheckRunRecord;

/// What a DQ post answers: what was in the file and what was new.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub tool: &'static str,
    pub tool_version: Option<String>,
    pub format: String,
    pub checks: usize,
    pub inserted: usize,
    pub duplicates: usize,
    /// Check runs by status (pass, warn, fail, error, skipped).
    pub statuses: BTreeMap<String, usize>,
    /// Check runs by dataset.
    pub datasets: BTreeMap<String, usize>,
    /// Samples queued for the new runs' series.
    pub samples: usize,
}

/// The handler of `POST /api/v1/dq/{tool}`.
pub async fn post(
    State(st): State<ReceiverState>,
    Path(tool): Path<String>,
    payload: Payload,
) -> Result<Accepted, ReceiverError> {
    let tool = match tool.as_str() {
        "gx" => Tool::Gx,
        "dbt" => Tool::Dbt,
        "soda" => Tool::Soda,
        "generic" => Tool::Generic,
        other => {
            return Err(ReceiverError::NotFound(format!(
                "unknown data-quality tool {other:?}; POST to /api/v1/dq/gx, /api/v1/dq/dbt, /api/v1/dq/soda, or /api/v1/dq/generic for any other tool"
            )))
        }
    };
    // A dbt manifest is half a megabyte for a toy project: the body module parses it off the
    // async workers.
    let report = payload
        .decode(move |raw| parse(tool, raw).map_err(|e| ReceiverError::Malformed(e.to_string())))
        .await?;
    let summary = store_report(&st, &report).await?;
    let status = if summary.inserted > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(Accepted::json(status, &summary))
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
/// receiver answers with.
pub async fn store_report(st: &ReceiverState, report: &DqReport) -> Result<Summary, ReceiverError> {
    let now = model::clock::now_ms();
    let records: Vec<CheckRunRecord> = report.checks.iter().map(|c| record(c, now)).collect();
    if let Some(bad) = records
        .iter()
        .find(|r| !store::pgcopy::timestamp_in_range(r.run_time_ms))
    {
        return Err(ReceiverError::Malformed(format!(
            "check {:?}: run time {} ms is outside what PostgreSQL can store; send the result file as the tool wrote it",
            bad.check_name, bad.run_time_ms
        )));
    }
    // Refuse before recording when the queue cannot take the series: once recorded, a retry
    // is a duplicate and would not bring its series again.
    st.reserve(records.len() * 3)?;
    let outcome = st
        .app
        .store
        .record_check_runs(&records)
        .await
        .map_err(|e| ReceiverError::storage("check runs", &e))?;
    let batch = series(&records, &outcome.inserted);
    let samples = batch.sample_count();
    if !batch.is_empty() {
        st.push(Receiver::Dq, batch)?;
    }
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    let mut datasets: BTreeMap<String, usize> = BTreeMap::new();
    for r in &records {
        *statuses.entry(r.status.clone()).or_default() += 1;
        *datasets.entry(r.dataset.clone()).or_default() += 1;
    }
    Ok(Summary {
        tool: report.tool.as_str(),
        tool_version: report.tool_version.clone(),
        format: report.format.to_string(),
        checks: records.len(),
        inserted: outcome.inserted.len(),
        duplicates: records.len() - outcome.inserted.len(),
        statuses,
        datasets,
        samples,
    })
}

/// The store's row for a check run; a run without a time (GX `describe_dict()`) gets `now`.
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
