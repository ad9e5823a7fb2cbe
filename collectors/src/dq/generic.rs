//! Data-quality results from any tool (`POST /api/v1/dq/generic`) to [`CheckRun`]s, for
//! checks written in SQL, Python or a tool pipewatch has no importer for.
//!
//! The body is one JSON object, a JSON array of objects, or NDJSON (see
//! [`crate::events::records`]); each record is
//! `{"dataset", "check", "status": "pass"|"warn"|"fail"|"error", "observed_value": number,
//! string or null, "time": RFC 3339}` with optional `"column"`, `"suite"` and `"run_id"`.
//!
//! Identity, so that re-sending a body changes nothing: a check is (dataset, column, check);
//! a run is the sender's `run_id`, or the record's time when there is none.

use super::{CheckRun, CheckStatus, DqError, DqReport, Tool};
use crate::events::{records, rfc3339_ms, typed, Position, RecordError, MAX_NAME_BYTES};
use serde::Deserialize;
use serde_json::Value;

/// Suite of records that name none.
pub const DEFAULT_SUITE: &str = "generic";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireResult {
    dataset: String,
    check: String,
    status: String,
    // Required but may be null: a value-less check says so explicitly.
    observed_value: Option<Value>,
    time: String,
    #[serde(default)]
    column: Option<String>,
    #[serde(default)]
    suite: Option<String>,
    #[serde(default)]
    run_id: Option<String>,
}

/// Parses a generic DQ body; all records or none.
pub fn parse_generic(bytes: &[u8]) -> Result<DqReport, DqError> {
    let recs = records(bytes).map_err(|e| DqError::Generic(e.to_string()))?;
    let checks = recs
        .into_iter()
        .map(|(p, v)| {
            has_observed_value(p, &v)?;
            check_run(p, typed(p, v)?)
        })
        .collect::<Result<Vec<_>, RecordError>>()
        .map_err(|e| DqError::Generic(e.to_string()))?;
    Ok(DqReport {
        tool: Tool::Generic,
        tool_version: None,
        format: "generic dq results".into(),
        checks,
    })
}

/// serde treats a missing `Option` field as `None`; the field is required here (null allowed).
fn has_observed_value(p: Position, v: &Value) -> Result<(), RecordError> {
    if v.get("observed_value").is_none() {
        return Err(RecordError::at(
            p,
            "missing field `observed_value`; send a number, a string, or null when the check has no value",
        ));
    }
    Ok(())
}

fn name(p: Position, field: &str, v: &str) -> Result<String, RecordError> {
    let v = v.trim();
    if v.is_empty() {
        return Err(RecordError::at(p, format!("field `{field}` is empty")));
    }
    if v.len() > MAX_NAME_BYTES {
        return Err(RecordError::at(
            p,
            format!(
                "field `{field}` is {} bytes, more than the {MAX_NAME_BYTES} accepted",
                v.len()
            ),
        ));
    }
    Ok(v.to_owned())
}

fn check_run(p: Position, w: WireResult) -> Result<CheckRun, RecordError> {
    let dataset = name(p, "dataset", &w.dataset)?;
    let check = name(p, "check", &w.check)?;
    let status = match w.status.as_str() {
        "pass" => CheckStatus::Pass,
        "warn" => CheckStatus::Warn,
        "fail" => CheckStatus::Fail,
        "error" => CheckStatus::Error,
        other => {
            return Err(RecordError::at(
                p,
                format!(
                "field `status`: {other:?} is not one of \"pass\", \"warn\", \"fail\", \"error\""
            ),
            ))
        }
    };
    let run_time_ms = rfc3339_ms(p, "time", &w.time)?;
    let column = w
        .column
        .as_deref()
        .filter(|c| !c.trim().is_empty())
        .map(|c| name(p, "column", c))
        .transpose()?;
    let suite = match w.suite.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(s) => name(p, "suite", s)?,
        None => DEFAULT_SUITE.to_owned(),
    };
    let (observed_value, observed_raw) = match w.observed_value {
        None | Some(Value::Null) => (None, None),
        Some(Value::Number(n)) => (n.as_f64(), Some(n.to_string())),
        Some(Value::String(s)) => (None, Some(s)),
        Some(other) => {
            return Err(RecordError::at(
                p,
                format!("field `observed_value`: {other} is neither a number nor a string"),
            ))
        }
    };
    let run_id = match w.run_id.as_deref().filter(|r| !r.trim().is_empty()) {
        Some(r) => name(p, "run_id", r)?,
        // Same record, same time: a re-send lands on the same run and is a duplicate.
        None => format!("time:{run_time_ms}"),
    };
    // An array, so that names containing any separator stay apart.
    let check_id = serde_json::json!([dataset, column, check]).to_string();
    Ok(CheckRun {
        tool: Tool::Generic,
        tool_version: None,
        suite,
        dataset,
        column,
        check_id,
        check_name: check.clone(),
        check_type: check,
        status,
        raw_status: w.status,
        observed_value,
        observed_raw,
        expected: None,
        run_time_ms: Some(run_time_ms),
        run_id,
        message: None,
        id_may_change: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROW: &str = r#"{"dataset":"orders","check":"no_negative_amounts","status":"fail","observed_value":2,"time":"2024-05-02T13:00:00Z","column":"amount"}"#;

    #[test]
    fn a_result_becomes_one_check_run() {
        let r = parse_generic(ROW.as_bytes()).unwrap();
        let c = &r.checks[0];
        assert_eq!(c.dataset, "orders");
        assert_eq!(c.column.as_deref(), Some("amount"));
        assert_eq!(c.suite, "generic");
        assert_eq!(c.status, CheckStatus::Fail);
        assert_eq!(c.observed_value, Some(2.0));
        assert_eq!(c.run_time_ms, Some(1_714_654_800_000));
        assert_eq!(c.run_id, "time:1714654800000");
        let s = ROW.replace("2,", "\"2024-05-02T12:55:00Z\",");
        let c = &parse_generic(s.as_bytes()).unwrap().checks[0];
        assert_eq!(c.observed_value, None);
        assert_eq!(c.observed_raw.as_deref(), Some("2024-05-02T12:55:00Z"));
    }

    #[test]
    fn refusals_name_line_and_field() {
        let bad = ROW.replace("\"fail\"", "\"failed\"");
        let e = parse_generic(format!("{ROW}\n{bad}").as_bytes()).unwrap_err();
        assert!(
            e.to_string()
                .contains("line 2: field `status`: \"failed\" is not one of"),
            "{e}"
        );
        let no_value = ROW.replace("\"observed_value\":2,", "");
        let e = parse_generic(format!("[{ROW},{no_value}]").as_bytes()).unwrap_err();
        assert!(
            e.to_string()
                .contains("element [1]: missing field `observed_value`"),
            "{e}"
        );
        let e = parse_generic(ROW.replace("\"orders\"", "3").as_bytes()).unwrap_err();
        assert!(
            e.to_string().contains("field `dataset`: invalid type"),
            "{e}"
        );
    }
}
