//! Evaluating a rule group at one instant, with Prometheus 2.42's semantics: rules run in order
//! and each sees what the earlier ones wrote at the same instant; recording rules produce
//! samples; alerting rules keep per-alert state (pending while `for` has not passed, firing,
//! kept firing for `keep_firing_for` after the condition clears, then resolved) and write the
//! `ALERTS` and `ALERTS_FOR_STATE` series; a series a rule stopped producing gets a staleness
//! marker. The caller owns storage and clock: it passes the instant and a [`Storage`], and
//! writes the returned samples wherever it keeps series.

use crate::rulefile::{RuleGroup, RuleType};
use crate::template::{self, Template};
use query::value::{Labels, METRIC_NAME, STALE_NAN_BITS};
use query::{EngineOptions, Expr, Series, Storage, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// Prometheus keeps a resolved alert this long so receivers hear that it resolved.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// Where an alert instance stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert instance of an alerting rule (one label set of its expression's result).
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// The result's labels without the metric name, the rule's expanded labels and `alertname`.
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    /// The expression's value at the last evaluation where the alert was in its result.
    pub value: f64,
    /// When the condition started holding (Unix ms).
    pub active_at: i64,
    pub fired_at: Option<i64>,
    /// When it resolved; `None` while pending or firing.
    pub resolved_at: Option<i64>,
    /// Since when it has been kept firing by `keep_firing_for` with the condition gone.
    pub keep_firing_since: Option<i64>,
}

/// Settings shared by every group: what templates see as `$externalLabels` and
/// `$externalURL`, and the PromQL engine's options.
#[derive(Clone, Debug, Default)]
pub struct EvalOptions {
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
    pub engine: EngineOptions,
}

/// A rule that failed at an evaluation, with Prometheus' message.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleError {
    pub rule: String,
    pub message: String,
}

/// What one evaluation of a group produced.
#[derive(Clone, Debug, Default)]
pub struct Evaluation {
    /// Samples to store at the evaluation time: recorded series, `ALERTS`,
    /// `ALERTS_FOR_STATE`, and staleness markers for series no longer produced.
    pub samples: Vec<(Labels, f64)>,
    pub errors: Vec<RuleError>,
    /// Rules whose pipewatch kind the caller evaluates from stored results (anomaly,
    /// dq_check, drift: [`crate::kinds`]), with why.
    pub skipped: Vec<(String, String)>,
}

struct RuleState {
    expr: Option<Expr>,
    /// Alert instances by their labels (alerting rules only).
    active: HashMap<Labels, Alert>,
    /// The series this rule wrote at its last successful evaluation, for staleness markers.
    previous: HashSet<Labels>,
}

/// A rule group with its alert state, evaluated one instant at a time.
pub struct GroupEvaluator {
    group: RuleGroup,
    opts: EvalOptions,
    rules: Vec<RuleState>,
}

/// Storage seen by a rule: the caller's series plus what earlier rules of the group wrote at
/// this instant.
struct Overlay<'a> {
    base: &'a dyn Storage,
    written: &'a query::MemoryStorage,
}

impl Storage for Overlay<'_> {
    fn select(
        &self,
        matchers: &[promql_parser::label::Matcher],
        mint: i64,
        maxt: i64,
    ) -> query::Result<Vec<Arc<Series>>> {
        let mut out = self.base.select(matchers, mint, maxt)?;
        for s in self.written.select(matchers, mint, maxt)? {
            match out.iter_mut().find(|o| o.labels == s.labels) {
                Some(o) => {
                    let merged = Arc::make_mut(o);
                    for p in &s.points {
                        match merged.points.binary_search_by_key(&p.0, |x| x.0) {
                            Ok(i) => merged.points[i] = *p,
                            Err(i) => merged.points.insert(i, *p),
                        }
                    }
                }
                None => out.push(s),
            }
        }
        Ok(out)
    }
}

fn to_map(l: &Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Runs a query the way Prometheus' rule manager does: a scalar becomes a one-element vector
/// without labels; anything else that is not a vector is an error.
fn query_vector(
    storage: &dyn Storage,
    expr: &Expr,
    t: i64,
    opts: &EngineOptions,
) -> Result<Vec<(Labels, f64)>, String> {
    match query::instant_eval(storage, expr, t, opts).map_err(|e| e.to_string())? {
        Value::Vector(v) => Ok(v.into_iter().map(|s| (s.labels, s.v)).collect()),
        Value::Scalar(v) => Ok(vec![(Labels::empty(), v)]),
        _ => Err("rule result is not a vector or scalar".into()),
    }
}

impl GroupEvaluator {
    /// Prepares a group (its expressions parsed once). Rules whose expression does not parse
    /// report that error at every evaluation; lint them first with [`crate::parse`].
    pub fn new(group: RuleGroup, opts: EvalOptions) -> Self {
        let rules = group
            .rules
            .iter()
            .map(|r| RuleState {
                expr: (!r.expr.is_empty())
                    .then(|| query::parse(&r.expr).ok())
                    .flatten(),
                active: HashMap::new(),
                previous: HashSet::new(),
            })
            .collect();
        Self { group, opts, rules }
    }

    pub fn group(&self) -> &RuleGroup {
        &self.group
    }

    /// The alert instances of the alerting rule at `index` that are pending or firing.
    pub fn active_alerts(&self, index: usize) -> Vec<&Alert> {
        let mut v: Vec<&Alert> = self.rules[index]
            .active
            .values()
            .filter(|a| a.resolved_at.is_none())
            .collect();
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        v
    }

    /// Every alert instance of the rule at `index`, including resolved ones still retained.
    pub fn all_alerts(&self, index: usize) -> Vec<&Alert> {
        let mut v: Vec<&Alert> = self.rules[index].active.values().collect();
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        v
    }

    /// Puts back alert instances of the alerting rule at `index` that were kept outside the
    /// evaluator (a restarted server's stored state), so an alert that was firing carries on
    /// firing instead of starting over as pending, as Prometheus restores the `for` state from
    /// `ALERTS_FOR_STATE`.
    pub fn restore(&mut self, index: usize, alerts: impl IntoIterator<Item = Alert>) {
        if let Some(state) = self.rules.get_mut(index) {
            for a in alerts {
                state.active.insert(a.labels.clone(), a);
            }
        }
    }

    /// Evaluates every rule of the group at `t` (Unix ms) over `storage`.
    pub fn eval(&mut self, storage: &dyn Storage, t: i64) -> Evaluation {
        let mut out = Evaluation::default();
        let mut written = query::MemoryStorage::new();
        for i in 0..self.rules.len() {
            let rule = self.group.rules[i].clone();
            if let Some(kind) = &rule.pipewatch {
                if !kind.is_evaluated() {
                    out.skipped.push((
                        rule.name.clone(),
                        format!(
                            "kind {}: read from stored results by the caller, not by the group evaluator",
                            kind.name()
                        ),
                    ));
                    continue;
                }
            }
            let view = Overlay {
                base: storage,
                written: &written,
            };
            let result = match rule.rule_type {
                RuleType::Recording => self.eval_recording(i, &view, t),
                RuleType::Alerting => self.eval_alerting(i, &view, t),
            };
            let samples = match result {
                Ok(s) => s,
                Err(message) => {
                    out.errors.push(RuleError {
                        rule: rule.name,
                        message,
                    });
                    continue;
                }
            };
            let state = &mut self.rules[i];
            let returned: HashSet<Labels> = samples.iter().map(|(l, _)| l.clone()).collect();
            let mut stale: Vec<Labels> = state.previous.difference(&returned).cloned().collect();
            stale.sort();
            state.previous = returned;
            for (l, v) in samples {
                written.add(l.clone(), [(t, v)]);
                out.samples.push((l, v));
            }
            for l in stale {
                let marker = f64::from_bits(STALE_NAN_BITS);
                written.add(l.clone(), [(t, marker)]);
                out.samples.push((l, marker));
            }
        }
        out
    }

    fn expr_of(&self, i: usize) -> Result<&Expr, String> {
        self.rules[i].expr.as_ref().ok_or_else(|| {
            format!(
                "expression {:?} does not parse (run `pipewatch rules lint`)",
                self.group.rules[i].expr
            )
        })
    }

    fn eval_recording(
        &self,
        i: usize,
        storage: &dyn Storage,
        t: i64,
    ) -> Result<Vec<(Labels, f64)>, String> {
        let rule = &self.group.rules[i];
        let mut v = query_vector(storage, self.expr_of(i)?, t, &self.opts.engine)?;
        let mut seen = HashSet::new();
        for (labels, _) in &mut v {
            labels.set(METRIC_NAME, &rule.name);
            for (k, val) in &rule.labels {
                labels.set(k, val);
            }
            if !seen.insert(labels.clone()) {
                return Err(
                    "vector contains metrics with the same labelset after applying rule labels"
                        .into(),
                );
            }
        }
        if self.group.limit > 0 && v.len() > self.group.limit {
            return Err(format!(
                "exceeded limit of {} with {} series",
                self.group.limit,
                v.len()
            ));
        }
        Ok(v)
    }

    fn eval_alerting(
        &mut self,
        i: usize,
        storage: &dyn Storage,
        t: i64,
    ) -> Result<Vec<(Labels, f64)>, String> {
        let rule = self.group.rules[i].clone();
        let res = query_vector(storage, self.expr_of(i)?, t, &self.opts.engine)?;
        let ext: template::Value = (&self.opts.external_labels).into();
        let engine = self.opts.engine.clone();
        let query_fn = |q: &str| -> Result<template::QueryResult, String> {
            let e = query::parse(q).map_err(|e| e.to_string())?;
            Ok(query_vector(storage, &e, t, &engine)?
                .into_iter()
                .map(|(l, v)| (to_map(&l), v))
                .collect())
        };
        let env = template::Env {
            query: Some(&query_fn),
            external_url: &self.opts.external_url,
        };
        let mut fresh: HashMap<Labels, Alert> = HashMap::new();
        for (metric, value) in res {
            let data = template::Value::Map(BTreeMap::from([
                ("Labels".to_string(), (&to_map(&metric)).into()),
                ("ExternalLabels".to_string(), ext.clone()),
                (
                    "ExternalURL".to_string(),
                    template::Value::Str(self.opts.external_url.clone()),
                ),
                ("Value".to_string(), template::Value::Float(value)),
            ]));
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
            let mut labels = metric.without_name();
            for (k, v) in &rule.labels {
                labels.set(k, &expand(v));
            }
            labels.set("alertname", &rule.name);
            let annotations: BTreeMap<String, String> = rule
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), expand(v)))
                .collect();
            // pipewatch's threshold kind: an element that is already an alert holds it until
            // the value is back past the clear threshold; a new one needs the trigger.
            if let Some(crate::rulefile::PipewatchKind::Threshold {
                trigger,
                clear,
                below,
                ..
            }) = &rule.pipewatch
            {
                let active = self.rules[i]
                    .active
                    .get(&labels)
                    .is_some_and(|a| a.state != AlertState::Inactive);
                let limit = if active { *clear } else { *trigger };
                let holds = if *below { value < limit } else { value > limit };
                if !holds {
                    continue;
                }
            }
            if fresh.contains_key(&labels) {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .into(),
                );
            }
            fresh.insert(
                labels.clone(),
                Alert {
                    labels,
                    annotations,
                    state: AlertState::Pending,
                    value,
                    active_at: t,
                    fired_at: None,
                    resolved_at: None,
                    keep_firing_since: None,
                },
            );
        }
        let state = &mut self.rules[i];
        for (h, a) in &fresh {
            match state.active.get_mut(h) {
                Some(old) if old.state != AlertState::Inactive => {
                    old.value = a.value;
                    old.annotations = a.annotations.clone();
                }
                _ => {
                    state.active.insert(h.clone(), a.clone());
                }
            }
        }
        let mut out = Vec::new();
        let mut active_count = 0;
        let mut keys: Vec<Labels> = state.active.keys().cloned().collect();
        keys.sort();
        for key in keys {
            let Some(a) = state.active.get_mut(&key) else {
                continue;
            };
            if !fresh.contains_key(&key) {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && rule.keep_firing_for_ms > 0 {
                    let since = *a.keep_firing_since.get_or_insert(t);
                    keep_firing = t - since < rule.keep_firing_for_ms;
                }
                let remove = a.state == AlertState::Pending
                    || a.resolved_at.is_some_and(|r| t - r > RESOLVED_RETENTION_MS);
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at = Some(t);
                }
                if remove {
                    state.active.remove(&key);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                a.keep_firing_since = None;
            }
            active_count += 1;
            let Some(a) = state.active.get_mut(&key) else {
                continue;
            };
            if a.state == AlertState::Pending && t - a.active_at >= rule.for_ms {
                a.state = AlertState::Firing;
                a.fired_at = Some(t);
            }
            // As Prometheus: the rule's labels as written, overlaid by the alert's (expanded)
            // labels, so a label whose template expanded to nothing keeps its raw text here.
            let mut base = Labels::new(rule.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            for (k, v) in a.labels.iter() {
                base.set(k, v);
            }
            base.set("alertname", &rule.name);
            let mut alerts = base.clone();
            alerts.set(METRIC_NAME, "ALERTS");
            alerts.set("alertstate", a.state.as_str());
            out.push((alerts, 1.0));
            let mut for_state = base;
            for_state.set(METRIC_NAME, "ALERTS_FOR_STATE");
            out.push((for_state, a.active_at.div_euclid(1000) as f64));
        }
        if self.group.limit > 0 && active_count > self.group.limit {
            state.active.clear();
            return Err(format!(
                "exceeded limit of {} with {} alerts",
                self.group.limit, active_count
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use query::MemoryStorage;

    fn group(yaml: &str) -> RuleGroup {
        let parsed = crate::parse(yaml);
        assert!(parsed.is_valid(), "{:?}", parsed.diagnostics);
        parsed.file.unwrap().groups.remove(0)
    }

    fn storage(values: &[(i64, f64)]) -> MemoryStorage {
        let mut s = MemoryStorage::new();
        s.add(
            Labels::new([("__name__", "lag"), ("job", "etl")]),
            values.iter().copied(),
        );
        s
    }

    #[test]
    fn alert_walks_pending_firing_resolved_and_is_dropped_after_retention() {
        let g = group(
            "groups:\n- name: g\n  rules:\n  - alert: Lag\n    expr: lag > 10\n    for: 2m\n",
        );
        let mut ev = GroupEvaluator::new(g, EvalOptions::default());
        let m = 60_000;
        // High from 0 to 4m, low afterwards.
        let db = storage(
            &(0..=30)
                .map(|i| (i * m, if i <= 4 { 20.0 } else { 1.0 }))
                .collect::<Vec<_>>(),
        );
        let mut states = Vec::new();
        for i in 0..=22 {
            let out = ev.eval(&db, i * m);
            assert!(out.errors.is_empty(), "{:?}", out.errors);
            states.push(ev.all_alerts(0).first().map(|a| (a.state, a.resolved_at)));
        }
        assert_eq!(states[0], Some((AlertState::Pending, None)));
        assert_eq!(states[1], Some((AlertState::Pending, None)));
        assert_eq!(states[2], Some((AlertState::Firing, None)));
        assert_eq!(states[4], Some((AlertState::Firing, None)));
        assert_eq!(states[5], Some((AlertState::Inactive, Some(5 * m))));
        assert!(ev.active_alerts(0).is_empty());
        // Kept 15 minutes after resolving so receivers learn it resolved, then dropped.
        assert_eq!(states[20], Some((AlertState::Inactive, Some(5 * m))));
        assert_eq!(states[21], None);
        assert!(ev.all_alerts(0).is_empty());
    }

    #[test]
    fn writes_alerts_series_and_marks_them_stale_when_the_alert_ends() {
        let g = group("groups:\n- name: g\n  rules:\n  - alert: Lag\n    expr: lag > 10\n");
        let mut ev = GroupEvaluator::new(g, EvalOptions::default());
        let db = storage(&[(0, 20.0), (60_000, 1.0)]);
        let first = ev.eval(&db, 0);
        let names: Vec<String> = first
            .samples
            .iter()
            .map(|(l, v)| format!("{l} {v}"))
            .collect();
        assert_eq!(
            names,
            [
                r#"{__name__="ALERTS", alertname="Lag", alertstate="firing", job="etl"} 1"#,
                r#"{__name__="ALERTS_FOR_STATE", alertname="Lag", job="etl"} 0"#,
            ]
        );
        let second = ev.eval(&db, 60_000);
        assert_eq!(second.samples.len(), 2);
        assert!(second
            .samples
            .iter()
            .all(|(_, v)| query::value::is_stale_nan(*v)));
    }

    #[test]
    fn a_restored_firing_alert_keeps_firing_instead_of_pending_again() {
        let g = group(
            "groups:\n- name: g\n  rules:\n  - alert: Lag\n    expr: lag > 10\n    for: 10m\n",
        );
        let db = storage(&[(0, 20.0), (60_000, 20.0)]);
        let mut fresh = GroupEvaluator::new(g.clone(), EvalOptions::default());
        fresh.eval(&db, 60_000);
        assert_eq!(fresh.all_alerts(0)[0].state, AlertState::Pending);

        let mut restored = GroupEvaluator::new(g, EvalOptions::default());
        let labels = Labels::new([("alertname", "Lag"), ("job", "etl")]);
        restored.restore(
            0,
            [Alert {
                labels: labels.clone(),
                annotations: BTreeMap::new(),
                state: AlertState::Firing,
                value: 20.0,
                active_at: -3_600_000,
                fired_at: Some(-3_000_000),
                resolved_at: None,
                keep_firing_since: None,
            }],
        );
        restored.eval(&db, 60_000);
        let a = restored.all_alerts(0)[0];
        assert_eq!(
            (a.state, a.active_at, a.fired_at),
            (AlertState::Firing, -3_600_000, Some(-3_000_000))
        );
    }

    #[test]
    fn a_threshold_with_a_clear_level_does_not_flap_around_the_trigger() {
        let g = group(
            "groups:\n- name: g\n  rules:\n  - alert: Lag\n    pipewatch: {kind: threshold, query: lag, above: 10, clear: 5}\n",
        );
        let mut ev = GroupEvaluator::new(g, EvalOptions::default());
        let m = 60_000;
        // Crosses 10, hovers between 5 and 10 (a plain `lag > 10` would resolve and fire
        // again), then falls below 5.
        let values = [3.0, 12.0, 9.0, 11.0, 8.0, 6.0, 4.0, 9.0, 12.0];
        let db = storage(
            &values
                .iter()
                .enumerate()
                .map(|(i, v)| (i as i64 * m, *v))
                .collect::<Vec<_>>(),
        );
        let states: Vec<AlertState> = (0..values.len() as i64)
            .map(|i| {
                let out = ev.eval(&db, i * m);
                assert!(out.errors.is_empty(), "{:?}", out.errors);
                ev.all_alerts(0)
                    .first()
                    .map_or(AlertState::Inactive, |a| a.state)
            })
            .collect();
        use AlertState::{Firing as F, Inactive as I};
        // 9 (between clear and trigger) does not start one after it cleared at 4.
        assert_eq!(states, [I, F, F, F, F, F, I, I, F]);
        let fired: Vec<i64> = ev.all_alerts(0).iter().filter_map(|a| a.fired_at).collect();
        assert_eq!(fired, [8 * m], "a new alert, not the first one kept");
    }

    #[test]
    fn kinds_evaluated_elsewhere_are_reported_not_evaluated() {
        let g = group(
            "groups:\n- name: g\n  rules:\n  - alert: Drifting\n    pipewatch: {kind: drift, feature: amount, statistic: psi, threshold: 0.2}\n",
        );
        let mut ev = GroupEvaluator::new(g, EvalOptions::default());
        let out = ev.eval(&MemoryStorage::new(), 0);
        assert_eq!(
            out.skipped,
            [(
                "Drifting".to_string(),
                "kind drift: read from stored results by the caller, not by the group evaluator"
                    .to_string()
            )]
        );
        assert!(out.samples.is_empty() && out.errors.is_empty());
    }
}
