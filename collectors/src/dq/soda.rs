//! Soda Core scan results (`soda scan ... -srf <file>`, i.e. `scan.get_scan_results()`) to
//! [`CheckRun`]s.
//!
//! The dataset is the check's `table`, the suite its checks file (`location.filePath`), the run
//! time the scan's `dataTimestamp` (what `-t` sets; the scan start/end are wall-clock). A
//! check whose query failed is missing from `checks[]`: Soda only names it in the scan summary
//! log (`<name> [NOT EVALUATED]` under the table it belongs to), so it is recovered from there
//! as an `error` run, with the scan's error log lines as message.
//!
//! A scan that failed as a whole (`hasErrors: true` and no check at all: connection error,
//! missing driver, bad configuration) becomes one `error` run of the check `scan` for the
//! dataset it names — the scan definition (`-s`, `definitionName`), else the data source — so
//! the failure shows on the Data quality page instead of vanishing.
//!
//! Freshness values are ages: Soda reports milliseconds; they are stored in seconds (like dbt's
//! `max_loaded_at_time_ago_in_s`) and shown as a duration (`2h 17m`).

use super::{
    as_f64, format_age, parse_json, parse_time_ms, str_at, CheckRun, CheckStatus, DqError,
    DqReport, Tool,
};
use serde_json::Value;

/// Parses a Soda scan result.
pub fn parse_soda(bytes: &[u8]) -> Result<DqReport, DqError> {
    parse_value(&parse_json(bytes)?)
}

pub(crate) fn parse_value(v: &Value) -> Result<DqReport, DqError> {
    let checks = v
        .get("checks")
        .and_then(Value::as_array)
        .ok_or_else(|| DqError::NotSoda("missing `checks`".into()))?;
    let ts = str_at(v, "/dataTimestamp")
        .or_else(|| str_at(v, "/scanStartTimestamp"))
        .ok_or_else(|| DqError::NotSoda("missing `dataTimestamp`".into()))?;
    let run_time_ms = parse_time_ms(ts)
        .ok_or_else(|| DqError::NotSoda(format!("`dataTimestamp` {ts:?} is not a timestamp")))?;
    let definition = str_at(v, "/definitionName").unwrap_or("soda scan");
    let run_id = format!(
        "{definition}/{}/{ts}/{}",
        str_at(v, "/defaultDataSource").unwrap_or(""),
        str_at(v, "/scanStartTimestamp").unwrap_or("")
    );
    let logs = v
        .get("logs")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let log_text = |l: &Value| {
        l.get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let tool_version = logs
        .iter()
        .map(log_text)
        .find_map(|m| m.strip_prefix("Soda Core ").map(|s| s.trim().to_owned()));
    let metric_names: Vec<(&str, &str)> = v
        .get("metrics")
        .and_then(Value::as_array)
        .map(|ms| {
            ms.iter()
                .filter_map(|m| Some((str_at(m, "/identity")?, str_at(m, "/metricName")?)))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut suite_of_scan = None;
    for (i, c) in checks.iter().enumerate() {
        let name = str_at(c, "/name")
            .ok_or_else(|| DqError::NotSoda(format!("checks[{i}] has no `name`")))?;
        let outcome = str_at(c, "/outcome")
            .ok_or_else(|| DqError::NotSoda(format!("checks[{i}] ({name}) has no `outcome`")))?;
        let status = match outcome {
            "pass" => CheckStatus::Pass,
            "warn" => CheckStatus::Warn,
            "fail" => CheckStatus::Fail,
            _ => CheckStatus::Error,
        };
        let suite = str_at(c, "/location/filePath")
            .unwrap_or(definition)
            .to_owned();
        suite_of_scan.get_or_insert_with(|| suite.clone());
        let value = c.pointer("/diagnostics/value").filter(|x| !x.is_null());
        let metric = c
            .pointer("/metrics/0")
            .and_then(Value::as_str)
            .and_then(|id| {
                metric_names
                    .iter()
                    .find(|(i, _)| *i == id)
                    .map(|(_, n)| (*n).to_owned())
            });
        let check_type = match str_at(c, "/diagnostics/measure") {
            Some("time") => "freshness".to_owned(),
            _ => metric.unwrap_or_else(|| str_at(c, "/type").unwrap_or("generic").to_owned()),
        };
        let freshness = str_at(c, "/diagnostics/freshness");
        let message = if let Some(f) = freshness {
            Some(format!(
                "freshness {f} (max {} at now {})",
                str_at(c, "/diagnostics/maxColumnTimestamp").unwrap_or("?"),
                str_at(c, "/diagnostics/nowTimestamp").unwrap_or("?")
            ))
        } else {
            c.pointer("/diagnostics/blocks")
                .and_then(Value::as_array)
                .and_then(|bs| {
                    bs.iter()
                        .find(|b| str_at(b, "/title") == Some("Diagnostics"))
                })
                .and_then(|b| str_at(b, "/text"))
                .map(str::to_owned)
        };
        out.push(CheckRun {
            tool: Tool::Soda,
            tool_version: tool_version.clone(),
            suite,
            dataset: str_at(c, "/table").unwrap_or(definition).to_owned(),
            column: str_at(c, "/column").map(str::to_owned),
            check_id: str_at(c, "/identity").unwrap_or(name).to_owned(),
            check_name: name.to_owned(),
            check_type,
            status,
            raw_status: outcome.to_owned(),
            observed_value: match freshness {
                Some(_) => value.and_then(as_f64).map(|ms| ms / 1000.0),
                None => value.and_then(as_f64),
            },
            observed_raw: match freshness {
                Some(_) => value.and_then(as_f64).map(|ms| format_age(ms / 1000.0)),
                None => value.map(Value::to_string),
            },
            expected: str_at(c, "/definition").map(|d| d.trim().to_owned()),
            run_time_ms: Some(run_time_ms),
            run_id: run_id.clone(),
            message,
            id_may_change: false,
        });
    }
    let errors: Vec<String> = logs
        .iter()
        // The CLI's -srf file writes `error`, the Python API's get_scan_results() `ERROR`.
        .filter(|l| str_at(l, "/level").is_some_and(|x| x.eq_ignore_ascii_case("error")))
        .map(|l| log_text(l).lines().next().unwrap_or("").to_owned())
        .collect();
    let suite = suite_of_scan.unwrap_or_else(|| definition.to_owned());
    for (table, name) in not_evaluated(logs) {
        if out
            .iter()
            .any(|c| c.check_name == name && c.dataset == table)
        {
            continue;
        }
        out.push(CheckRun {
            tool: Tool::Soda,
            tool_version: tool_version.clone(),
            suite: suite.clone(),
            dataset: table,
            column: None,
            check_id: format!("not_evaluated:{name}"),
            check_name: name,
            check_type: "not_evaluated".to_owned(),
            status: CheckStatus::Error,
            raw_status: "not evaluated".to_owned(),
            observed_value: None,
            observed_raw: None,
            expected: None,
            run_time_ms: Some(run_time_ms),
            run_id: run_id.clone(),
            message: Some(if errors.is_empty() {
                "not evaluated: its query failed".to_owned()
            } else {
                errors.join("\n")
            }),
            id_may_change: false,
        });
    }
    if out.is_empty() && v.get("hasErrors").and_then(Value::as_bool) == Some(true) {
        let dataset = str_at(v, "/definitionName")
            .or_else(|| str_at(v, "/defaultDataSource"))
            .unwrap_or("soda scan")
            .to_owned();
        out.push(CheckRun {
            tool: Tool::Soda,
            tool_version: tool_version.clone(),
            suite,
            dataset,
            column: None,
            check_id: "scan".to_owned(),
            check_name: "scan".to_owned(),
            check_type: "scan".to_owned(),
            status: CheckStatus::Error,
            raw_status: "scan failed".to_owned(),
            observed_value: None,
            observed_raw: None,
            expected: None,
            run_time_ms: Some(run_time_ms),
            run_id: run_id.clone(),
            message: Some(if errors.is_empty() {
                "the scan failed before evaluating any check (hasErrors, no checks)".to_owned()
            } else {
                format!(
                    "the scan failed before evaluating any check: {}",
                    errors.join("\n")
                )
            }),
            id_may_change: false,
        });
    }
    Ok(DqReport {
        tool: Tool::Soda,
        tool_version,
        format: "soda scan result".into(),
        checks: out,
    })
}

/// (table, check name) of every check the scan summary lists as NOT EVALUATED.
fn not_evaluated(logs: &[Value]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut in_section = false;
    let mut table = String::new();
    for l in logs {
        let msg = str_at(l, "/message").unwrap_or("");
        let trimmed = msg.trim();
        // "2/9 checks NOT EVALUATED:", and "1/1 check NOT EVALUATED:" for a single one.
        if trimmed.ends_with("NOT EVALUATED:") {
            in_section = true;
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some(name) = trimmed.strip_suffix(" [NOT EVALUATED]") {
            out.push((table.clone(), name.to_owned()));
        } else if let Some((t, _source)) = trimmed
            .split_once(" in ")
            .filter(|_| msg.starts_with("    ") && !msg.starts_with("      "))
        {
            table = t.to_owned();
        } else if !msg.starts_with("    ") {
            // The summary moved on to the next section.
            in_section = trimmed.ends_with("NOT EVALUATED:");
        }
    }
    out
}
