//! dbt artifacts to [`CheckRun`]s: `run_results.json` (tests, models, seeds of `dbt build` /
//! `dbt test`), optionally with `manifest.json` to map tests to the model (or source) and
//! column they check, and `sources.json` of `dbt source freshness`.
//!
//! What the receiver accepts as one body (see [`parse_dbt`]): one artifact alone, or a JSON
//! object `{"run_results": {...}, "manifest": {...}, "sources": {...}}` with any of the three
//! (at least one of `run_results` and `sources`).
//!
//! Without a manifest, tests are filed under the dataset [`UNMAPPED_DATASET`] with no column:
//! `run_results.json` alone does not name the model or column a test checks.

use super::{
    as_f64, format_age, parse_json, parse_time_ms, str_at, CheckRun, CheckStatus, DqError,
    DqReport, Tool,
};
use serde_json::Value;

/// Dataset of tests whose model is unknown because no manifest came with the results.
pub const UNMAPPED_DATASET: &str = "(send manifest.json)";

/// The dbt artifacts of one invocation, as parsed JSON.
#[derive(Debug, Default, Clone)]
pub struct DbtArtifacts {
    pub run_results: Option<Value>,
    pub manifest: Option<Value>,
    pub sources: Option<Value>,
}

/// Parses one dbt artifact (`run_results.json` or `sources.json`) or a bundle object
/// `{"run_results", "manifest", "sources"}`.
pub fn parse_dbt(bytes: &[u8]) -> Result<DqReport, DqError> {
    parse_value(&parse_json(bytes)?, None)
}

/// Parses separate artifact files (as `pipewatch import run_results.json --manifest ...`).
pub fn parse_dbt_artifacts(
    run_results: Option<&[u8]>,
    manifest: Option<&[u8]>,
    sources: Option<&[u8]>,
) -> Result<DqReport, DqError> {
    let parse = |b: Option<&[u8]>| b.map(parse_json).transpose();
    artifacts_report(DbtArtifacts {
        run_results: parse(run_results)?,
        manifest: parse(manifest)?,
        sources: parse(sources)?,
    })
}

pub(crate) fn parse_value(v: &Value, manifest: Option<Value>) -> Result<DqReport, DqError> {
    let schema = str_at(v, "/metadata/dbt_schema_version");
    let mut a = DbtArtifacts {
        manifest,
        ..Default::default()
    };
    match schema {
        Some(s) if s.contains("/run-results/") => a.run_results = Some(v.clone()),
        Some(s) if s.contains("/sources/") => a.sources = Some(v.clone()),
        Some(s) if s.contains("/manifest/") => return Err(DqError::NotDbt(
            "this is manifest.json, which holds no results; send it together with run_results.json"
                .into(),
        )),
        Some(s) => {
            return Err(DqError::NotDbt(format!(
                "unsupported artifact schema {s:?}"
            )))
        }
        None => {
            let Some(obj) = v.as_object() else {
                return Err(DqError::NotDbt("the document is not a JSON object".into()));
            };
            if !obj.contains_key("run_results") && !obj.contains_key("sources") {
                return Err(DqError::NotDbt(
                    "missing `metadata.dbt_schema_version`, and not a bundle object with `run_results` and/or `sources` (plus optional `manifest`)".into(),
                ));
            }
            a.run_results = obj.get("run_results").cloned();
            a.sources = obj.get("sources").cloned();
            a.manifest = a.manifest.or_else(|| obj.get("manifest").cloned());
        }
    }
    artifacts_report(a)
}

fn artifacts_report(a: DbtArtifacts) -> Result<DqReport, DqError> {
    if a.run_results.is_none() && a.sources.is_none() {
        return Err(DqError::NotDbt(
            "neither run_results.json nor sources.json was sent".into(),
        ));
    }
    if let Some(m) = &a.manifest {
        match str_at(m, "/metadata/dbt_schema_version") {
            Some(s) if s.contains("/manifest/") => {}
            _ => return Err(DqError::NotDbt(
                "`manifest` is not a dbt manifest.json (no manifest `metadata.dbt_schema_version`)"
                    .into(),
            )),
        }
    }
    let mut checks = Vec::new();
    let mut version = None;
    let mut format = Vec::new();
    if let Some(rr) = &a.run_results {
        version = str_at(rr, "/metadata/dbt_version").map(str::to_owned);
        run_results(rr, a.manifest.as_ref(), &mut checks)
            .map_err(|e| DqError::NotDbt(format!("run_results: {e}")))?;
        format.push("dbt run_results");
    }
    if let Some(src) = &a.sources {
        version = version.or_else(|| str_at(src, "/metadata/dbt_version").map(str::to_owned));
        sources(src, &mut checks).map_err(|e| DqError::NotDbt(format!("sources: {e}")))?;
        format.push("dbt sources");
    }
    if a.manifest.is_some() {
        format.push("manifest");
    }
    Ok(DqReport {
        tool: Tool::Dbt,
        tool_version: version,
        format: format.join(" + "),
        checks,
    })
}

fn invocation(v: &Value, what: &str) -> Result<(String, i64), String> {
    let id = str_at(v, "/metadata/invocation_id")
        .ok_or_else(|| format!("missing `metadata.invocation_id` in {what}"))?;
    let at = str_at(v, "/metadata/generated_at")
        .ok_or_else(|| format!("missing `metadata.generated_at` in {what}"))?;
    let ms = parse_time_ms(at)
        .ok_or_else(|| format!("`metadata.generated_at` {at:?} is not a timestamp"))?;
    Ok((id.to_owned(), ms))
}

/// `model.shop.stg_orders` -> `stg_orders`; `source.shop.shop.orders` -> `shop.orders`.
fn node_dataset(unique_id: &str, manifest: Option<&Value>) -> String {
    let parts: Vec<&str> = unique_id.split('.').collect();
    if parts.first() == Some(&"source") {
        if let Some(s) = manifest
            .and_then(|m| m.get("sources"))
            .and_then(|s| s.get(unique_id))
        {
            if let (Some(src), Some(name)) = (str_at(s, "/source_name"), str_at(s, "/name")) {
                return format!("{src}.{name}");
            }
        }
        return parts[parts.len().saturating_sub(2)..].join(".");
    }
    if let Some(n) = manifest
        .and_then(|m| m.get("nodes"))
        .and_then(|n| n.get(unique_id))
    {
        if let Some(name) = str_at(n, "/name") {
            return name.to_owned();
        }
    }
    parts.get(2).map_or(unique_id, |s| *s).to_owned()
}

fn project(unique_id: &str, manifest: Option<&Value>) -> String {
    manifest
        .and_then(|m| str_at(m, "/metadata/project_name"))
        .or_else(|| unique_id.split('.').nth(1))
        .unwrap_or("dbt")
        .to_owned()
}

fn normalise(raw: &str) -> CheckStatus {
    match raw {
        "success" | "pass" => CheckStatus::Pass,
        "warn" => CheckStatus::Warn,
        "fail" => CheckStatus::Fail,
        "skipped" | "no-op" => CheckStatus::Skipped,
        // "error", "runtime error" and anything newer dbt may add.
        _ => CheckStatus::Error,
    }
}

fn run_results(
    rr: &Value,
    manifest: Option<&Value>,
    out: &mut Vec<CheckRun>,
) -> Result<(), String> {
    let (run_id, run_time_ms) = invocation(rr, "run_results.json")?;
    let version = str_at(rr, "/metadata/dbt_version").map(str::to_owned);
    let results = rr
        .get("results")
        .and_then(Value::as_array)
        .ok_or("missing `results`")?;
    for (i, r) in results.iter().enumerate() {
        let uid = r
            .get("unique_id")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("results[{i}] has no `unique_id`"))?;
        let raw = r
            .get("status")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("results[{i}] ({uid}) has no `status`"))?;
        let resource_type = uid.split('.').next().unwrap_or("");
        let node = manifest
            .and_then(|m| m.get("nodes"))
            .and_then(|n| n.get(uid));
        let name = node
            .and_then(|n| str_at(n, "/name"))
            .or_else(|| uid.split('.').nth(2))
            .unwrap_or(uid)
            .to_owned();
        let (dataset, column, check_type, expected) = if resource_type == "test" {
            match node {
                Some(n) => {
                    let target = str_at(n, "/attached_node").map(str::to_owned).or_else(|| {
                        n.pointer("/depends_on/nodes/0")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    });
                    let dataset = target.map_or_else(
                        || UNMAPPED_DATASET.to_owned(),
                        |t| node_dataset(&t, manifest),
                    );
                    let column = str_at(n, "/column_name").map(str::to_owned);
                    let check_type = str_at(n, "/test_metadata/name")
                        .unwrap_or("singular")
                        .to_owned();
                    let severity = str_at(n, "/config/severity").unwrap_or("ERROR");
                    let warn_if = str_at(n, "/config/warn_if").unwrap_or("!= 0");
                    let error_if = str_at(n, "/config/error_if").unwrap_or("!= 0");
                    let expected =
                        format!("severity {severity}, warn_if {warn_if}, error_if {error_if}");
                    (dataset, column, check_type, Some(expected))
                }
                None => (UNMAPPED_DATASET.to_owned(), None, "test".to_owned(), None),
            }
        } else {
            (
                node_dataset(uid, manifest),
                None,
                resource_type.to_owned(),
                None,
            )
        };
        let failures = r.get("failures").filter(|f| !f.is_null());
        out.push(CheckRun {
            tool: Tool::Dbt,
            tool_version: version.clone(),
            suite: project(uid, manifest),
            dataset,
            column,
            check_id: uid.to_owned(),
            check_name: name,
            check_type,
            status: normalise(raw),
            raw_status: raw.to_owned(),
            observed_value: failures.and_then(as_f64),
            observed_raw: failures.map(Value::to_string),
            expected,
            run_time_ms: Some(run_time_ms),
            run_id: run_id.clone(),
            message: r.get("message").and_then(Value::as_str).map(str::to_owned),
            id_may_change: false,
        });
    }
    Ok(())
}

fn sources(src: &Value, out: &mut Vec<CheckRun>) -> Result<(), String> {
    let (run_id, run_time_ms) = invocation(src, "sources.json")?;
    let version = str_at(src, "/metadata/dbt_version").map(str::to_owned);
    let results = src
        .get("results")
        .and_then(Value::as_array)
        .ok_or("missing `results`")?;
    for (i, r) in results.iter().enumerate() {
        let uid = r
            .get("unique_id")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("results[{i}] has no `unique_id`"))?;
        let raw = r
            .get("status")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("results[{i}] ({uid}) has no `status`"))?;
        let criteria = r.get("criteria");
        let period = |k: &str| {
            let c = criteria?.get(k)?;
            let n = c.get("count").and_then(as_f64)?;
            let p = c.get("period").and_then(Value::as_str)?;
            Some(format!("{k} {n} {p}"))
        };
        let expected = [period("warn_after"), period("error_after")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ");
        let age = r.get("max_loaded_at_time_ago_in_s").and_then(as_f64);
        let message = match (raw, r.get("error").and_then(Value::as_str)) {
            (_, Some(e)) => Some(e.to_owned()),
            _ => str_at(r, "/max_loaded_at").map(|t| format!("max_loaded_at {t}")),
        };
        out.push(CheckRun {
            tool: Tool::Dbt,
            tool_version: version.clone(),
            suite: project(uid, None),
            dataset: node_dataset(uid, None),
            column: None,
            check_id: format!("freshness:{uid}"),
            check_name: "source_freshness".to_owned(),
            check_type: "freshness".to_owned(),
            status: normalise(raw),
            raw_status: raw.to_owned(),
            // The age is the value; the timestamp it was measured from is in the message.
            observed_value: age,
            observed_raw: age.map(format_age),
            expected: (!expected.is_empty()).then_some(expected),
            run_time_ms: Some(run_time_ms),
            run_id: run_id.clone(),
            message,
            id_may_change: false,
        });
    }
    Ok(())
}
