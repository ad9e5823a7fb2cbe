//! The demo's data-quality job: after every 5-minute `transform` run, Great Expectations 1.x
//! validates `clean_orders` and the result (the JSON `checkpoint.run()` / `validator.validate()`
//! writes) is posted to `/api/v1/dq/gx`, so the Data quality page has a history to show.
//!
//! Faults at `transform` make expectations fail the way they would: `dq-failure` (nulls in
//! `customer_id`), `volume-drop` (row count), `schema-change` (column count), `drift` (mean
//! amount); a `stall` stops new validations, so the checks' history goes quiet.

use super::lineage::{rfc3339, run_id};
use super::{Fault, FaultKind};
use serde_json::{json, Value};

const RUN_EVERY_MS: i64 = 5 * 60_000;
/// Validations run 2 minutes after the transform run starts.
const OFFSET_MS: i64 = 2 * 60_000;
/// The `transform` stage (see `super::STAGES`).
const STAGE: usize = 1;

fn expectation(id: &str, kind: &str, kwargs: Value, success: bool, result: Value) -> Value {
    json!({
        "success": success,
        "expectation_config": {"type": kind, "kwargs": kwargs, "meta": {}, "id": id, "severity": "critical"},
        "result": result,
        "meta": {},
        "exception_info": {"raised_exception": false, "exception_traceback": null, "exception_message": null},
    })
}

/// The validation result of run number `run` (run time `run * 5 min + 2 min`).
pub fn validation(run: i64, fault: Option<Fault>) -> Value {
    let time = run * RUN_EVERY_MS + OFFSET_MS;
    let active = fault.filter(|f| f.in_effect(time) && f.stage == STAGE);
    let hit = |kind| active.is_some_and(|f: Fault| f.kind == kind);
    let rows: i64 = if hit(FaultKind::VolumeDrop) {
        69_000
    } else {
        345_000
    } + run.rem_euclid(97) * 31;
    let null_pct = if hit(FaultKind::DqFailure) { 12.0 } else { 0.1 };
    let nulls = (rows as f64 * null_pct / 100.0).round() as i64;
    let columns = if hit(FaultKind::SchemaChange) { 5 } else { 4 };
    let mean = if hit(FaultKind::Drift) { 290.0 } else { 95.0 } + (run.rem_euclid(13) as f64) * 0.5;
    let results = vec![
        expectation(
            "5a1c0f0e-0d3b-4c55-9c51-1b3f0a2e7d01",
            "expect_table_row_count_to_be_between",
            json!({"batch_id": "demo-clean_orders", "min_value": 100_000, "max_value": 1_000_000}),
            rows >= 100_000,
            json!({"observed_value": rows}),
        ),
        expectation(
            "5a1c0f0e-0d3b-4c55-9c51-1b3f0a2e7d02",
            "expect_column_values_to_not_be_null",
            json!({"batch_id": "demo-clean_orders", "column": "customer_id", "mostly": 0.99}),
            null_pct <= 1.0,
            json!({"element_count": rows, "unexpected_count": nulls, "unexpected_percent": null_pct,
                   "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": []}),
        ),
        expectation(
            "5a1c0f0e-0d3b-4c55-9c51-1b3f0a2e7d03",
            "expect_table_column_count_to_equal",
            json!({"batch_id": "demo-clean_orders", "value": 4}),
            columns == 4,
            json!({"observed_value": columns}),
        ),
        expectation(
            "5a1c0f0e-0d3b-4c55-9c51-1b3f0a2e7d04",
            "expect_column_mean_to_be_between",
            json!({"batch_id": "demo-clean_orders", "column": "amount", "min_value": 20.0, "max_value": 250.0}),
            mean <= 250.0,
            json!({"observed_value": mean}),
        ),
    ];
    let passed = results.iter().filter(|r| r["success"] == true).count();
    json!({
        "success": passed == results.len(),
        "results": results,
        "suite_name": "clean_orders_suite",
        "suite_parameters": {},
        "statistics": {
            "evaluated_expectations": results.len(),
            "successful_expectations": passed,
            "unsuccessful_expectations": results.len() - passed,
            "success_percent": 100.0 * passed as f64 / results.len() as f64,
        },
        "meta": {
            "great_expectations_version": "1.24.1",
            "active_batch_definition": {
                "datasource_name": "demo_warehouse",
                "data_connector_name": "fluent",
                "data_asset_name": "clean_orders",
                "batch_identifiers": {},
            },
            "validation_id": run_id("gx/clean_orders", run),
            "run_id": {"run_name": format!("clean_orders_{run}"), "run_time": rfc3339(time)},
            "validation_time": rfc3339(time),
        },
        "id": run_id("gx-result/clean_orders", run),
    })
}

/// The runs to (re)send at `t_ms`: the last two that have happened; none while a stall at or
/// before `transform` lasts (the job stopped), and the runs that fell into the stall never
/// happen.
pub fn runs_due(t_ms: i64, fault: Option<Fault>) -> Vec<i64> {
    let stall = fault.filter(|f| f.kind == FaultKind::Stall && f.stage <= STAGE);
    let mut until = t_ms;
    if let Some(f) = stall.filter(|f| f.in_effect(t_ms)) {
        until = until.min(f.start_ms);
    }
    let last = (until - OFFSET_MS).div_euclid(RUN_EVERY_MS);
    [last - 1, last]
        .into_iter()
        .filter(|run| !stall.is_some_and(|f| f.in_effect(run * RUN_EVERY_MS + OFFSET_MS)))
        .collect()
}

/// POSTs the due validation results to `{base_url}/api/v1/dq/gx`.
pub async fn push(http: &reqwest::Client, base_url: &str, t_ms: i64, fault: Option<Fault>) {
    for run in runs_due(t_ms, fault) {
        let sent = http
            .post(format!("{base_url}/api/v1/dq/gx"))
            .json(&validation(run, fault))
            .send()
            .await;
        super::push::log_outcome(sent, "data-quality").await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use collectors::dq::{parse_gx, CheckStatus as Status};

    #[test]
    fn the_validation_parses_and_faults_fail_the_matching_expectation() {
        let statuses = |fault: Option<Fault>| -> Vec<(String, Status)> {
            let bytes = serde_json::to_vec(&validation(6_000_000, fault)).unwrap();
            let report = parse_gx(&bytes).expect("the demo's GX result parses");
            report
                .checks
                .iter()
                .map(|c| (c.check_type.clone(), c.status))
                .collect()
        };
        let clean = statuses(None);
        assert_eq!(clean.len(), 4);
        assert!(clean.iter().all(|(_, s)| *s == Status::Pass), "{clean:?}");
        for (kind, failing) in [
            (FaultKind::DqFailure, "expect_column_values_to_not_be_null"),
            (
                FaultKind::VolumeDrop,
                "expect_table_row_count_to_be_between",
            ),
            (
                FaultKind::SchemaChange,
                "expect_table_column_count_to_equal",
            ),
            (FaultKind::Drift, "expect_column_mean_to_be_between"),
        ] {
            let f = Fault::new(kind, "transform", 0).ok();
            let failed: Vec<_> = statuses(f)
                .into_iter()
                .filter(|(_, s)| *s == Status::Fail)
                .map(|(t, _)| t)
                .collect();
            assert_eq!(failed, [failing], "{kind:?}");
        }
    }

    #[test]
    fn a_stall_stops_new_validations() {
        let t = 1_800_000_000_000;
        let stall = Fault::new(FaultKind::Stall, "transform", t).ok();
        assert_eq!(runs_due(t + 3_600_000, stall), runs_due(t, stall));
        assert_ne!(runs_due(t + 3_600_000, None), runs_due(t, None));
    }
}
