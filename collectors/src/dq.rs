//! Data-quality results from Great Expectations, dbt, Soda and any other tool ([`generic`]), normalised to one [`CheckRun`]
//! per check execution so that check history can be stored and plotted like any metric.
//!
//! Each tool has its own module ([`gx`], [`dbt`], [`soda`]) with a pure entry point that takes
//! untrusted bytes; [`detect_and_parse`] picks the tool from the JSON's shape (and the file
//! name, when the shape is ambiguous) for `pipewatch import`.
//!
//! Status normalisation (the tool's own word is kept in [`CheckRun::raw_status`]):
//!
//! - GX: `exception_info.raised_exception` -> error; `success: true` -> pass; a failed
//!   expectation with 1.x `severity` `warning` or `info` -> warn; otherwise fail.
//! - dbt: `success` (models, seeds) and `pass` -> pass; `warn`, `fail`, `error`, `skipped` as
//!   is; `runtime error` -> error. Source freshness: `pass`, `warn`, `error` (stale) as is.
//! - Soda: `outcome` pass/warn/fail as is; a check whose query failed is missing from
//!   `checks[]` and only named in the scan log as `NOT EVALUATED`: it becomes an error.
//!
//! The [`CheckRun::check_id`] is stable across re-imports of the same file, so the store can
//! make imports idempotent on (tool, run id, check id).

pub mod dbt;
pub mod generic;
pub mod gx;
pub mod soda;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

pub use dbt::{parse_dbt, parse_dbt_artifacts, DbtArtifacts};
pub use generic::parse_generic;
pub use gx::parse_gx;
pub use soda::parse_soda;

/// The tool that produced a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tool {
    Gx,
    Dbt,
    Soda,
    /// Any other tool, through `POST /api/v1/dq/generic` ([`generic`]).
    Generic,
}

impl Tool {
    /// The short name used in URLs (`/api/v1/dq/{gx,dbt,soda}`), labels and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gx => "gx",
            Self::Dbt => "dbt",
            Self::Soda => "soda",
            Self::Generic => "generic",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "gx" | "great_expectations" | "great-expectations" | "ge" => Some(Self::Gx),
            "dbt" => Some(Self::Dbt),
            "soda" | "soda-core" | "soda_core" => Some(Self::Soda),
            "generic" => Some(Self::Generic),
            _ => None,
        }
    }
}

/// Normalised outcome of one check run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Warn,
    Fail,
    Error,
    Skipped,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Warn => "warn",
            Self::Fail => "fail",
            Self::Error => "error",
            Self::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pass" => Self::Pass,
            "warn" => Self::Warn,
            "fail" => Self::Fail,
            "error" => Self::Error,
            "skipped" => Self::Skipped,
            _ => return None,
        })
    }

    /// Value of the `dq_check_status` series: 1 pass, 0.5 warn, 0 fail or error, so that an
    /// average over time reads as a health score and `< 1` selects everything not passing.
    /// Skipped runs have no value (nothing was checked), which leaves a gap in the plot.
    pub fn series_value(self) -> Option<f64> {
        match self {
            Self::Pass => Some(1.0),
            Self::Warn => Some(0.5),
            Self::Fail | Self::Error => Some(0.0),
            Self::Skipped => None,
        }
    }
}

/// One execution of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRun {
    pub tool: Tool,
    pub tool_version: Option<String>,
    /// GX suite, dbt project, Soda scan definition.
    pub suite: String,
    /// Table, model, source or data asset the check looked at.
    pub dataset: String,
    pub column: Option<String>,
    /// Stable identity of the check within its tool, the same in every run: GX 1.x type +
    /// expectation id (0.18: type + kwargs, with parameter-resolved values named by their
    /// parameter), dbt unique_id, Soda identity.
    pub check_id: String,
    /// Human name: GX expectation type, dbt node name, Soda check name.
    pub check_name: String,
    /// Kind of check: GX expectation type, dbt test name (`not_null`, `freshness`, `model`...),
    /// Soda metric.
    pub check_type: String,
    pub status: CheckStatus,
    /// The tool's own status word.
    pub raw_status: String,
    /// The observed value as a number, when there is one (row count, mean, failing rows...).
    pub observed_value: Option<f64>,
    /// The observed value as the tool reported it (JSON text), e.g. a timestamp string.
    pub observed_raw: Option<String>,
    /// What the check expects (kwargs, thresholds), as text.
    pub expected: Option<String>,
    /// When the check ran, in Unix milliseconds; `None` when the file does not say, in which
    /// case the receiver uses the time of import.
    pub run_time_ms: Option<i64>,
    /// Identifies the run the check belongs to; with `tool` and `check_id` it keys the run.
    pub run_id: String,
    pub message: Option<String>,
    /// The tool's id in `check_id` may be new in every run of the same check (GX 1.x
    /// expectation ids of suites built in code, in an ephemeral context): the store then also
    /// recognises the check by `check_type`, `column` and `expected` (the kwargs).
    #[serde(default)]
    pub id_may_change: bool,
}

/// How to send Great Expectations 1.x results: what the GX refusals end with.
pub const GX_WHAT_TO_SEND: &str = "send a validation result as JSON: `validation_definition.run().to_json_dict()`, or for a checkpoint one POST per `r.to_json_dict()` for r in `checkpoint.run().run_results.values()` (CheckpointResult itself has no to_json_dict()), or the files GX writes under gx/uncommitted/validations/";

/// Age of a freshness check as people read it: `2h 17m`, `12h 5m`, `45s`.
pub fn format_age(seconds: f64) -> String {
    if !seconds.is_finite() {
        return format!("{seconds} s");
    }
    let secs = seconds.abs().round() as u64;
    let text = humantime::format_duration(std::time::Duration::from_secs(secs)).to_string();
    if seconds < 0.0 {
        format!("-{text} (in the future)")
    } else {
        text
    }
}

/// What one file (or one dbt artifact set) holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DqReport {
    pub tool: Tool,
    pub tool_version: Option<String>,
    /// What the file was: "gx validation result", "dbt run_results", ...
    pub format: String,
    pub checks: Vec<CheckRun>,
}

/// Why a file could not be read as a data-quality result. Messages name what is missing and
/// what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DqError {
    #[error("body is empty; send the tool's JSON result file")]
    Empty,
    #[error("not JSON: {0}; send the tool's JSON result file as is")]
    NotJson(String),
    #[error("not a Great Expectations result: {0}; {what}", what = GX_WHAT_TO_SEND)]
    NotGx(String),
    #[error("not a dbt artifact: {0}; send target/run_results.json (with manifest.json to map tests to models and columns) or target/sources.json from `dbt source freshness`")]
    NotDbt(String),
    #[error("not a Soda scan result: {0}; send the file written by `soda scan ... -srf <file>` (scan.get_scan_results())")]
    NotSoda(String),
    #[error("{0}; each record is {{\"dataset\", \"check\", \"status\": \"pass\"|\"warn\"|\"fail\"|\"error\", \"observed_value\": number, string or null, \"time\": RFC 3339}} with optional \"column\", \"suite\", \"run_id\"")]
    Generic(String),
    #[error("cannot tell which tool wrote this file: {0}; name the tool (pipewatch import --tool gx|dbt|soda, or POST to /api/v1/dq/gx|dbt|soda)")]
    Unknown(String),
}

/// Parses `bytes` as JSON, with the error the user can act on.
pub(crate) fn parse_json(bytes: &[u8]) -> Result<Value, DqError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(DqError::Empty);
    }
    serde_json::from_slice(bytes).map_err(|e| DqError::NotJson(e.to_string()))
}

/// Guesses the tool from the JSON's shape (falling back to the file name) and parses it.
/// A dbt `manifest.json` alone is refused: it holds no results.
pub fn detect_and_parse(bytes: &[u8], file_name_hint: Option<&str>) -> Result<DqReport, DqError> {
    let v = parse_json(bytes)?;
    match detect(&v, file_name_hint) {
        Some(Tool::Gx) => gx::parse_value(&v),
        Some(Tool::Dbt) => dbt::parse_value(&v, None),
        Some(Tool::Soda) => soda::parse_value(&v),
        Some(Tool::Generic) => generic::parse_generic(bytes),
        None => Err(DqError::Unknown(
            "it has none of GX's `results`/`run_results`, dbt's `metadata.dbt_schema_version` or Soda's `checks` with `outcome`".into(),
        )),
    }
}

/// Which tool a parsed JSON document comes from, if it can be told.
pub fn detect(v: &Value, file_name_hint: Option<&str>) -> Option<Tool> {
    if v.pointer("/metadata/dbt_schema_version").is_some() {
        return Some(Tool::Dbt);
    }
    if v.get("run_results").is_some()
        || v.get("validation_results").is_some()
        || v.get("expectations").is_some()
        || v.pointer("/meta/great_expectations_version").is_some()
        || v.get("results").is_some_and(|r| {
            r.get(0)
                .is_some_and(|x| x.get("expectation_config").is_some())
        })
    {
        return Some(Tool::Gx);
    }
    if v.get("checks").is_some()
        && (v.get("definitionName").is_some() || v.get("hasFailures").is_some())
    {
        return Some(Tool::Soda);
    }
    let name = file_name_hint?
        .rsplit(['/', '\\'])
        .next()?
        .to_ascii_lowercase();
    if name.starts_with("run_results") || name.starts_with("sources") {
        Some(Tool::Dbt)
    } else if name.contains("scan") {
        Some(Tool::Soda)
    } else if name.contains("validation") || name.contains("checkpoint") {
        Some(Tool::Gx)
    } else {
        None
    }
}

/// Parses an RFC 3339 / ISO-8601 timestamp (offset or `Z`; dbt's and Soda's space-separated
/// form too) into Unix milliseconds.
pub fn parse_time_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    if let Ok(t) = chrono::DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z") {
        return Some(t.timestamp_millis());
    }
    // GX's compact form, always UTC: 20240502T010000.000000Z
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%S%.fZ") {
        return Some(t.and_utc().timestamp_millis());
    }
    // A timestamp without offset is taken as UTC, as dbt writes them.
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(t.and_utc().timestamp_millis());
    }
    None
}

/// A JSON value as a number when it is one (booleans count as 0/1).
pub(crate) fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

pub(crate) fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

pub(crate) fn non_null_text(v: Option<&Value>) -> Option<String> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_every_format_the_tools_write() {
        let want = 1_714_698_000_000; // 2024-05-03T01:00:00Z
        assert_eq!(parse_time_ms("2024-05-03T01:00:00+00:00"), Some(want));
        assert_eq!(parse_time_ms("2024-05-03T01:00:00Z"), Some(want));
        assert_eq!(parse_time_ms("20240503T010000.000000Z"), Some(want));
        assert_eq!(parse_time_ms("2024-05-03 01:00:00+00:00"), Some(want));
        assert_eq!(parse_time_ms("2024-05-03T03:00:00+02:00"), Some(want));
        assert_eq!(parse_time_ms("yesterday"), None);
    }

    #[test]
    fn ages_read_as_durations() {
        assert_eq!(format_age(8220.0), "2h 17m");
        assert_eq!(format_age(43_500.4), "12h 5m");
        assert_eq!(format_age(45.0), "45s");
        assert_eq!(format_age(90_061.0), "1day 1h 1m 1s");
    }

    #[test]
    fn garbage_and_empty_bodies_say_what_to_send() {
        assert_eq!(detect_and_parse(b"  ", None), Err(DqError::Empty));
        let e = detect_and_parse(b"{\"a\":1}", None).unwrap_err();
        assert!(e.to_string().contains("--tool gx|dbt|soda"), "{e}");
        let e = detect_and_parse(b"<html>", None).unwrap_err();
        assert!(matches!(e, DqError::NotJson(_)), "{e}");
    }
}
