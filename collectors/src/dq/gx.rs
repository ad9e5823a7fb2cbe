//! Great Expectations results (1.x and 0.18) to [`CheckRun`]s.
//!
//! Accepted shapes: a validation result (`ExpectationSuiteValidationResult.to_json_dict()`, as
//! returned by `validator.validate()` and written to the validations store), a checkpoint
//! result (`run_results` keyed by validation identifier; 1.x maps to the validation result,
//! 0.18 to `{"validation_result": ...}`).
//!
//! `describe()` / `describe_dict()` output (of a checkpoint or a validation result) is refused
//! with what to send instead: it has no suite name, no run time and no severity, and its only
//! dataset name is the batch id `<datasource>-<asset>`, so it cannot be stored right — and two
//! runs with the same outcome are byte-identical, so the second could not even be told apart.
//!
//! Differences between the versions handled here: 1.x names the type
//! `expectation_config.type` and the suite `suite_name`; 0.18 uses `expectation_type` and
//! `meta.expectation_suite_name`. `results[]` is not in suite order. A 1.x check is identified
//! by its expectation id, and marked [`CheckRun::id_may_change`]: a suite built in code in an
//! ephemeral context gets new ids every run, and the store then recognises the check by type
//! + kwargs. 0.18 checks are identified by type + kwargs (without `batch_id`).

use super::{
    as_f64, non_null_text, parse_json, parse_time_ms, str_at, CheckRun, CheckStatus, DqError,
    DqReport, Tool,
};
use serde_json::{Map, Value};

/// Parses a GX validation or checkpoint result.
pub fn parse_gx(bytes: &[u8]) -> Result<DqReport, DqError> {
    parse_value(&parse_json(bytes)?)
}

pub(crate) fn parse_value(v: &Value) -> Result<DqReport, DqError> {
    let Some(obj) = v.as_object() else {
        return Err(DqError::NotGx("the document is not a JSON object".into()));
    };
    let mut checks = Vec::new();
    let format;
    if let Some(run_results) = obj.get("run_results") {
        let Some(run_results) = run_results.as_object() else {
            return Err(DqError::NotGx("`run_results` is not an object".into()));
        };
        format = "gx checkpoint result";
        let checkpoint_run = RunInfo::from_run_id(obj.get("run_id"));
        for (key, entry) in run_results {
            let vr = entry.get("validation_result").unwrap_or(entry);
            validation_result(vr, &checkpoint_run, &mut checks)
                .map_err(|e| DqError::NotGx(format!("run_results[{key:?}]: {e}")))?;
        }
    } else if obj.contains_key("results") {
        format = "gx validation result";
        validation_result(v, &RunInfo::default(), &mut checks).map_err(DqError::NotGx)?;
    } else if obj.contains_key("validation_results")
        || (obj.contains_key("expectations") && obj.contains_key("statistics"))
    {
        return Err(DqError::NotGx(
            "this is describe() / describe_dict() output, which has no suite name, run time or severity and names the dataset only as `<datasource>-<asset>`".into(),
        ));
    } else {
        return Err(DqError::NotGx(
            "missing `results` (validation result) and `run_results` (checkpoint result)".into(),
        ));
    }
    let tool_version = checks.iter().find_map(|c| c.tool_version.clone());
    Ok(DqReport {
        tool: Tool::Gx,
        tool_version,
        format: format.into(),
        checks,
    })
}

#[derive(Default, Clone)]
struct RunInfo {
    run_name: Option<String>,
    run_time: Option<String>,
}

impl RunInfo {
    fn from_run_id(v: Option<&Value>) -> Self {
        Self {
            run_name: v
                .and_then(|r| r.get("run_name"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            run_time: v
                .and_then(|r| r.get("run_time"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }
}

fn validation_result(vr: &Value, outer: &RunInfo, out: &mut Vec<CheckRun>) -> Result<(), String> {
    let results = vr
        .get("results")
        .ok_or("missing `results`")?
        .as_array()
        .ok_or("`results` is not a list")?;
    let suite = vr
        .get("suite_name")
        .and_then(Value::as_str)
        .or_else(|| str_at(vr, "/meta/expectation_suite_name"))
        .ok_or(
            "missing the suite name (`suite_name` in 1.x, `meta.expectation_suite_name` in 0.18)",
        )?
        .to_owned();
    let tool_version = str_at(vr, "/meta/great_expectations_version").map(str::to_owned);
    let mut run = RunInfo::from_run_id(vr.pointer("/meta/run_id"));
    if run.run_name.is_none() {
        run.run_name = outer.run_name.clone();
    }
    if run.run_time.is_none() {
        run.run_time = outer.run_time.clone();
    }
    let run_time_text = run
        .run_time
        .clone()
        .or_else(|| str_at(vr, "/meta/validation_time").map(str::to_owned))
        .ok_or("missing `meta.run_id.run_time`; send the result as GX wrote it")?;
    let run_time_ms = parse_time_ms(&run_time_text)
        .ok_or_else(|| format!("run_time {run_time_text:?} is not an ISO-8601 timestamp"))?;
    let batch_id = results
        .iter()
        .find_map(|r| str_at(r, "/expectation_config/kwargs/batch_id"))
        .map(str::to_owned);
    let dataset = str_at(vr, "/meta/active_batch_definition/data_asset_name")
        .map(str::to_owned)
        .or(batch_id.clone())
        .unwrap_or_else(|| suite.clone());
    let run_id = format!(
        "{suite}/{}/{run_time_text}/{}",
        run.run_name.as_deref().unwrap_or(""),
        batch_id.as_deref().unwrap_or(&dataset)
    );
    for (i, r) in results.iter().enumerate() {
        let cfg = r
            .get("expectation_config")
            .ok_or_else(|| format!("results[{i}] has no `expectation_config`"))?;
        let expectation_type = cfg
            .get("type")
            .or_else(|| cfg.get("expectation_type"))
            .and_then(Value::as_str)
            .ok_or_else(|| format!("results[{i}].expectation_config has no `type` (1.x) or `expectation_type` (0.18)"))?;
        let kwargs = cfg
            .get("kwargs")
            .cloned()
            .unwrap_or(Value::Object(Map::new()));
        let severity = cfg.get("severity").and_then(Value::as_str);
        let params = vr
            .get("evaluation_parameters")
            .or_else(|| vr.get("suite_parameters"))
            .and_then(Value::as_object);
        out.push(check_run(
            expectation_type,
            &kwargs,
            r.get("success").and_then(Value::as_bool).unwrap_or(false),
            severity,
            r.get("exception_info"),
            r.get("result"),
            Context {
                params,
                expectation_id: cfg.get("id").and_then(Value::as_str),
                suite: &suite,
                dataset: &dataset,
                run_id: &run_id,
                run_time_ms: Some(run_time_ms),
                tool_version: tool_version.as_deref(),
            },
        ));
    }
    Ok(())
}

struct Context<'a> {
    /// Suite/evaluation parameters of the run: kwargs resolved from them are identified by
    /// the parameter's name, so a check keeps its identity when the value changes per run.
    params: Option<&'a Map<String, Value>>,
    /// 1.x `expectation_config.id`, stable across runs.
    expectation_id: Option<&'a str>,
    suite: &'a str,
    dataset: &'a str,
    run_id: &'a str,
    run_time_ms: Option<i64>,
    tool_version: Option<&'a str>,
}

fn raised(exception_info: Option<&Value>) -> Option<String> {
    let info = exception_info?;
    let one = |x: &Value| -> Option<String> {
        if x.get("raised_exception").and_then(Value::as_bool) == Some(true) {
            Some(
                non_null_text(x.get("exception_message"))
                    .unwrap_or_else(|| "the expectation raised an exception".into()),
            )
        } else {
            None
        }
    };
    if info.get("raised_exception").is_some() {
        return one(info);
    }
    // 0.18 may key exception_info by metric when several metrics failed.
    info.as_object()?.values().find_map(one)
}

fn check_run(
    expectation_type: &str,
    kwargs: &Value,
    success: bool,
    severity: Option<&str>,
    exception_info: Option<&Value>,
    result: Option<&Value>,
    cx: Context<'_>,
) -> CheckRun {
    let mut kwargs = kwargs.clone();
    if let Some(m) = kwargs.as_object_mut() {
        m.remove("batch_id");
    }
    let column = kwargs
        .get("column")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let error = raised(exception_info);
    let (status, raw_status) = match (&error, success, severity) {
        (Some(_), _, _) => (CheckStatus::Error, "exception".to_owned()),
        (None, true, _) => (CheckStatus::Pass, "success".to_owned()),
        (None, false, Some("warning" | "info")) => (
            CheckStatus::Warn,
            format!("failure ({})", severity.unwrap_or("")),
        ),
        (None, false, _) => (CheckStatus::Fail, "failure".to_owned()),
    };
    let observed = result
        .and_then(|r| r.get("observed_value"))
        .filter(|v| !v.is_null());
    let unexpected = result
        .and_then(|r| r.get("unexpected_count"))
        .filter(|v| !v.is_null());
    let (observed_value, observed_raw) = match (observed, unexpected) {
        (Some(o), _) => (as_f64(o), Some(o.to_string())),
        (None, Some(u)) => (as_f64(u), Some(u.to_string())),
        (None, None) => (None, None),
    };
    let message = error.or_else(|| {
        let r = result?;
        let n = r.get("unexpected_count").and_then(as_f64)?;
        let of = r
            .get("element_count")
            .and_then(as_f64)
            .map(|e| format!(" of {e}"))
            .unwrap_or_default();
        let pct = r
            .get("unexpected_percent")
            .and_then(as_f64)
            .map(|p| format!(" ({p:.2}%)"))
            .unwrap_or_default();
        let sample = r
            .get("partial_unexpected_list")
            .filter(|l| l.as_array().is_some_and(|a| !a.is_empty()))
            .map(|l| format!(", e.g. {l}"))
            .unwrap_or_default();
        Some(format!("{n} unexpected{of}{pct}{sample}"))
    });
    let mut expected_args = kwargs.clone();
    if let Some(m) = expected_args.as_object_mut() {
        m.remove("column");
    }
    CheckRun {
        tool: Tool::Gx,
        tool_version: cx.tool_version.map(str::to_owned),
        suite: cx.suite.to_owned(),
        dataset: cx.dataset.to_owned(),
        column,
        check_id: match cx.expectation_id {
            Some(id) => format!("{expectation_type}#{id}"),
            None => format!(
                "{expectation_type}{}",
                canonical_json(&name_parameters(&kwargs, cx.params))
            ),
        },
        check_name: expectation_type.to_owned(),
        check_type: expectation_type.to_owned(),
        status,
        raw_status,
        observed_value,
        observed_raw,
        expected: Some(canonical_json(&expected_args)),
        run_time_ms: cx.run_time_ms,
        run_id: cx.run_id.to_owned(),
        message,
        id_may_change: cx.expectation_id.is_some(),
    }
}

/// `kwargs` with every value that equals a suite/evaluation parameter replaced by
/// `{"$PARAMETER": name}`, as the suite itself writes it.
fn name_parameters(kwargs: &Value, params: Option<&Map<String, Value>>) -> Value {
    let (Some(m), Some(params)) = (kwargs.as_object(), params) else {
        return kwargs.clone();
    };
    let named = m
        .iter()
        .map(|(k, v)| {
            let v = match params.iter().find(|(_, p)| *p == v) {
                Some((name, _)) => serde_json::json!({ "$PARAMETER": name }),
                None => v.clone(),
            };
            (k.clone(), v)
        })
        .collect();
    Value::Object(named)
}

/// JSON with sorted keys and numbers written as floats, so that 1.x (`5000.0`) and 0.18
/// (`5000`) kwargs, and any key order, give the same text.
pub(crate) fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        Value::Number(n) => match n.as_f64() {
            Some(f) => out.push_str(&format!("{f:?}")),
            None => out.push_str(&n.to_string()),
        },
        other => out.push_str(&other.to_string()),
    }
}
