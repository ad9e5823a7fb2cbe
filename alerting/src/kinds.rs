//! The `dq_check` and `drift` rule kinds, whose input is not a series but the latest result of
//! each data-quality check or drift comparison: which alerts such a rule holds given those
//! results. Pure, like the rest of the crate: the server's engine passes the latest results
//! at the evaluation time, and the backtest passes the latest results as of each step, so both
//! decide the same way.

use crate::eval::AlertState;
use crate::rulefile::{drift_is_p_value, DqStatus, PipewatchKind, Rule};
use crate::template::{self, Template};
use std::collections::BTreeMap;

/// One stored run of one data-quality check (`dq_check_runs`).
#[derive(Clone, Debug, PartialEq)]
pub struct DqResult {
    pub tool: String,
    pub suite: String,
    pub dataset: String,
    pub check_id: String,
    pub check_name: String,
    pub column: Option<String>,
    /// pass, warn, fail, error or skipped.
    pub status: String,
    pub observed: Option<f64>,
    pub message: Option<String>,
    pub run_time_ms: i64,
}

/// One stored drift comparison (`drift_results`).
#[derive(Clone, Debug, PartialEq)]
pub struct DriftReading {
    pub dataset: String,
    pub column: String,
    /// The statistic's Evidently name (`psi`, `ks`, ...).
    pub method: String,
    /// The score compared with thresholds: the p-value for p-value tests, else the distance.
    pub value: f64,
    pub evaluated_at_ms: i64,
    pub explanation: String,
}

/// One alert a kind rule holds now: what it is about (`key`, unique within the rule), its
/// labels (with `alertname`) and annotations, and since when its condition holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub key: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The observed value, when the result has one.
    pub value: Option<f64>,
    /// When the result that holds the condition was produced (the failing run, the drift
    /// evaluation): `for` is counted from there.
    pub since_ms: i64,
    /// One line for the timeline.
    pub explanation: String,
}

/// The state an alert whose condition holds since `active_at_ms` is in at `now_ms`: pending
/// until the rule's `for` has passed, firing afterwards (as Prometheus' alerting rules).
pub fn state_at(active_at_ms: i64, for_ms: i64, now_ms: i64) -> AlertState {
    if now_ms - active_at_ms >= for_ms {
        AlertState::Firing
    } else {
        AlertState::Pending
    }
}

/// The latest run of every check among `runs` at or before `t_ms` (one per tool, suite and
/// check id), as the engine reads them at an evaluation.
pub fn latest_dq(runs: &[DqResult], t_ms: i64) -> Vec<DqResult> {
    let mut latest: BTreeMap<(&str, &str, &str, &str), &DqResult> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.run_time_ms <= t_ms) {
        let k = (
            r.dataset.as_str(),
            r.tool.as_str(),
            r.suite.as_str(),
            r.check_id.as_str(),
        );
        if latest
            .get(&k)
            .is_none_or(|o| o.run_time_ms <= r.run_time_ms)
        {
            latest.insert(k, r);
        }
    }
    latest.into_values().cloned().collect()
}

/// The latest drift reading of every (dataset, column, statistic) among `readings` at or
/// before `t_ms`.
pub fn latest_drift(readings: &[DriftReading], t_ms: i64) -> Vec<DriftReading> {
    let mut latest: BTreeMap<(&str, &str, &str), &DriftReading> = BTreeMap::new();
    for r in readings.iter().filter(|r| r.evaluated_at_ms <= t_ms) {
        let k = (r.dataset.as_str(), r.column.as_str(), r.method.as_str());
        if latest
            .get(&k)
            .is_none_or(|o| o.evaluated_at_ms <= r.evaluated_at_ms)
        {
            latest.insert(k, r);
        }
    }
    latest.into_values().cloned().collect()
}

/// The alerts a `dq_check` rule holds given the latest run of each check (`latest`, as
/// [`latest_dq`] returns): one per failing check of the rule's dataset (and check, when it
/// names one by name or id). `error` counts as failing (the check could not vouch for the
/// data); `warn` only when the rule says `on: warn`. Other rules give nothing.
pub fn dq_hits(rule: &Rule, latest: &[DqResult], external_url: &str) -> Vec<Hit> {
    let Some(PipewatchKind::DqCheck { dataset, check, on }) = &rule.pipewatch else {
        return Vec::new();
    };
    let mut hits = Vec::new();
    for r in latest {
        if r.dataset != *dataset {
            continue;
        }
        if check
            .as_ref()
            .is_some_and(|c| *c != r.check_name && *c != r.check_id)
        {
            continue;
        }
        let fires = match r.status.as_str() {
            "fail" | "error" => true,
            "warn" => *on == DqStatus::Warn,
            _ => false,
        };
        if !fires {
            continue;
        }
        let mut labels = BTreeMap::from([
            ("dataset".to_string(), r.dataset.clone()),
            ("check".to_string(), r.check_name.clone()),
            ("dq_tool".to_string(), r.tool.clone()),
            ("dq_status".to_string(), r.status.clone()),
        ]);
        if !r.suite.is_empty() {
            labels.insert("suite".into(), r.suite.clone());
        }
        if let Some(c) = &r.column {
            labels.insert("column".into(), c.clone());
        }
        let explanation = format!(
            "{} check {:?} on {} is {}{}",
            r.tool,
            r.check_name,
            r.dataset,
            r.status,
            r.message
                .as_deref()
                .filter(|m| !m.is_empty())
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        );
        hits.push(finish(
            rule,
            format!("{}\u{0}{}\u{0}{}", r.tool, r.suite, r.check_id),
            labels,
            r.observed,
            r.run_time_ms,
            explanation,
            external_url,
        ));
    }
    hits
}

/// The alerts a `drift` rule holds given the latest drift readings (`latest`, as
/// [`latest_drift`] returns): one per dataset whose column `feature` drifted past the rule's
/// threshold for its statistic — above it for distances (PSI, Wasserstein, ...), below it for
/// p-value tests (KS, chi-square, ...), where a small p-value is the drift.
pub fn drift_hits(rule: &Rule, latest: &[DriftReading], external_url: &str) -> Vec<Hit> {
    let Some(PipewatchKind::Drift {
        feature,
        statistic,
        threshold,
    }) = &rule.pipewatch
    else {
        return Vec::new();
    };
    let p_value = drift_is_p_value(statistic);
    let mut hits = Vec::new();
    for r in latest {
        if r.column != *feature || r.method != *statistic {
            continue;
        }
        let past = if p_value {
            r.value < *threshold
        } else {
            r.value > *threshold
        };
        if !past {
            continue;
        }
        let labels = BTreeMap::from([
            ("dataset".to_string(), r.dataset.clone()),
            ("feature".to_string(), r.column.clone()),
            ("statistic".to_string(), r.method.clone()),
        ]);
        let explanation = format!(
            "{} of {}.{} is {} ({} the rule's {}){}",
            r.method,
            r.dataset,
            r.column,
            query::format_value(r.value),
            if p_value { "below" } else { "above" },
            query::format_value(*threshold),
            if r.explanation.is_empty() {
                String::new()
            } else {
                format!(": {}", r.explanation)
            }
        );
        hits.push(finish(
            rule,
            r.dataset.clone(),
            labels,
            Some(r.value),
            r.evaluated_at_ms,
            explanation,
            external_url,
        ));
    }
    hits
}

/// Adds the rule's labels and annotations (templates expanded as for alerting rules, with
/// `$labels` the hit's labels and `$value` its value) and `alertname`.
fn finish(
    rule: &Rule,
    key: String,
    mut labels: BTreeMap<String, String>,
    value: Option<f64>,
    since_ms: i64,
    explanation: String,
    external_url: &str,
) -> Hit {
    let data = template::Value::Map(BTreeMap::from([
        ("Labels".to_string(), (&labels).into()),
        (
            "ExternalLabels".to_string(),
            template::Value::Map(BTreeMap::new()),
        ),
        (
            "ExternalURL".to_string(),
            template::Value::Str(external_url.to_string()),
        ),
        (
            "Value".to_string(),
            template::Value::Float(value.unwrap_or(f64::NAN)),
        ),
    ]));
    let env = template::Env {
        query: None,
        external_url,
    };
    let expand = |text: &str| -> String {
        let full = crate::rulefile::with_defs(text);
        match Template::parse(&full).and_then(|tm| tm.render(&data, &env)) {
            Ok(s) => s,
            Err(e) => format!(
                "<error expanding template: template: __alert_{}:{e}>",
                rule.name
            ),
        }
    };
    let extra: Vec<(String, String)> = rule
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), expand(v)))
        .collect();
    let mut annotations: BTreeMap<String, String> = rule
        .annotations
        .iter()
        .map(|(k, v)| (k.clone(), expand(v)))
        .collect();
    annotations
        .entry("summary".into())
        .or_insert_with(|| explanation.clone());
    labels.extend(extra);
    labels.insert("alertname".into(), rule.name.clone());
    Hit {
        key,
        labels,
        annotations,
        value,
        since_ms,
        explanation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(yaml_kind: &str) -> Rule {
        let text = format!(
            "groups:\n- name: g\n  rules:\n  - alert: A\n    pipewatch: {yaml_kind}\n    labels: {{team: data}}\n    annotations: {{summary: '{{{{ $labels.check }}}} on {{{{ $labels.dataset }}}}'}}\n"
        );
        let parsed = crate::parse(&text);
        assert!(parsed.is_valid(), "{:?}", parsed.diagnostics);
        parsed.file.unwrap().groups.remove(0).rules.remove(0)
    }

    fn run(check: &str, status: &str, t: i64) -> DqResult {
        DqResult {
            tool: "gx".into(),
            suite: "orders_suite".into(),
            dataset: "orders".into(),
            check_id: format!("id-{check}"),
            check_name: check.into(),
            column: Some("amount".into()),
            status: status.into(),
            observed: Some(3.0),
            message: Some("3 nulls".into()),
            run_time_ms: t,
        }
    }

    #[test]
    fn a_dq_rule_holds_one_alert_per_failing_check_and_only_the_latest_run_counts() {
        let r = rule("{kind: dq_check, dataset: orders}");
        let runs = [
            run("not_null", "pass", 1_000),
            run("not_null", "fail", 2_000),
            run("unique", "fail", 1_000),
            run("unique", "pass", 2_000),
            run("range", "warn", 2_000),
        ];
        let at_1500 = dq_hits(&r, &latest_dq(&runs, 1_500), "");
        assert_eq!(
            at_1500
                .iter()
                .map(|h| h.labels["check"].as_str())
                .collect::<Vec<_>>(),
            ["unique"]
        );
        let now = dq_hits(&r, &latest_dq(&runs, 3_000), "");
        assert_eq!(now.len(), 1, "{now:?}");
        let h = &now[0];
        assert_eq!(h.labels["check"], "not_null");
        assert_eq!(h.labels["dataset"], "orders");
        assert_eq!(h.labels["alertname"], "A");
        assert_eq!(h.labels["team"], "data");
        assert_eq!(h.annotations["summary"], "not_null on orders");
        assert_eq!(h.since_ms, 2_000);
        assert!(h.explanation.contains("3 nulls"), "{}", h.explanation);

        let warn = rule("{kind: dq_check, dataset: orders, on: warn}");
        let mut names: Vec<String> = dq_hits(&warn, &latest_dq(&runs, 3_000), "")
            .into_iter()
            .map(|h| h.labels["check"].clone())
            .collect();
        names.sort();
        assert_eq!(names, ["not_null", "range"]);

        let one = rule("{kind: dq_check, dataset: orders, check: unique}");
        assert!(dq_hits(&one, &latest_dq(&runs, 3_000), "").is_empty());
        let other = rule("{kind: dq_check, dataset: customers}");
        assert!(dq_hits(&other, &latest_dq(&runs, 3_000), "").is_empty());
    }

    fn reading(method: &str, value: f64, t: i64) -> DriftReading {
        DriftReading {
            dataset: "scoring".into(),
            column: "amount".into(),
            method: method.into(),
            value,
            evaluated_at_ms: t,
            explanation: String::new(),
        }
    }

    #[test]
    fn a_drift_rule_fires_above_a_distance_and_below_a_p_value() {
        let psi = rule("{kind: drift, feature: amount, statistic: psi, threshold: 0.2}");
        let readings = [reading("psi", 0.35, 1_000), reading("psi", 0.1, 2_000)];
        let hits = drift_hits(&psi, &latest_drift(&readings, 1_500), "");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].labels["feature"], "amount");
        assert_eq!(hits[0].value, Some(0.35));
        assert!(drift_hits(&psi, &latest_drift(&readings, 2_500), "").is_empty());

        let ks = rule("{kind: drift, feature: amount, statistic: ks, threshold: 0.05}");
        let p = [reading("ks", 0.01, 1_000), reading("psi", 0.9, 1_000)];
        let hits = drift_hits(&ks, &latest_drift(&p, 1_000), "");
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0].labels["statistic"], "ks");
        assert!(drift_hits(&ks, &latest_drift(&[reading("ks", 0.4, 0)], 0), "").is_empty());

        // The README's first spelling reads as the stored name.
        let js = rule("{kind: drift, feature: amount, statistic: jensen_shannon, threshold: 0.1}");
        assert_eq!(
            drift_hits(&js, &[reading("jensenshannon", 0.3, 0)], "").len(),
            1
        );
    }

    #[test]
    fn for_counts_from_the_result_that_holds_the_condition() {
        assert_eq!(state_at(1_000, 600, 1_500), AlertState::Pending);
        assert_eq!(state_at(1_000, 600, 1_600), AlertState::Firing);
        assert_eq!(state_at(1_000, 0, 1_000), AlertState::Firing);
    }
}
