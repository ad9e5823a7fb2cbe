//! The `dq_check` and `drift` rule kinds in the engine: at each evaluation of their group the
//! latest data-quality runs of the rule's dataset (or drift results of its feature) are read
//! from the store and `alerting::kinds` decides which alerts hold; each becomes an instance
//! (one per check, or per dataset for drift), pending until the rule's `for` has passed since
//! the failing result, firing afterwards, and resolved once a later result no longer holds the
//! condition. The backtest reads the same tables over a range ([`history`]).

use super::{ended, fingerprint, grouping, Change, Engine};
use alerting::kinds::{self, DqResult, DriftReading, Hit};
use alerting::{AlertState, PipewatchKind, Rule};
use std::collections::{HashMap, HashSet};
use store::lifecycle::{AlertInstance, AlertSource, LifecycleState, Notified};
use store::rule_inputs::{DqRunRow, DriftRow};
use store::Store;

/// True for the kinds this module evaluates.
pub fn is_stored_result_kind(rule: &Rule) -> bool {
    matches!(
        rule.pipewatch,
        Some(PipewatchKind::DqCheck { .. } | PipewatchKind::Drift { .. })
    )
}

fn dq_result(r: DqRunRow) -> DqResult {
    DqResult {
        tool: r.tool,
        suite: r.suite,
        dataset: r.dataset,
        check_id: r.check_id,
        check_name: r.check_name,
        column: r.column,
        status: r.status,
        observed: r.observed,
        message: r.message,
        run_time_ms: r.run_time_ms,
    }
}

fn drift_reading(r: DriftRow) -> DriftReading {
    DriftReading {
        dataset: r.dataset,
        column: r.column,
        method: r.method,
        value: r.value,
        evaluated_at_ms: r.evaluated_at_ms,
        explanation: r.explanation,
    }
}

/// The data-quality runs and drift results `rules` read over `[from_ms, to_ms]` (with the
/// latest of each before `from_ms`), for [`alerting::backtest::replay`].
pub async fn history<'a>(
    store: &Store,
    rules: impl IntoIterator<Item = &'a Rule>,
    from_ms: i64,
    to_ms: i64,
) -> Result<alerting::backtest::KindHistory, store::StoreError> {
    let mut dq_read = HashSet::new();
    let mut drift_read = HashSet::new();
    let mut dq = Vec::new();
    let mut drift = Vec::new();
    for r in rules {
        match &r.pipewatch {
            Some(PipewatchKind::DqCheck { dataset, .. }) if dq_read.insert(dataset.clone()) => {
                dq.extend(
                    store
                        .dq_runs_for_rules(dataset, from_ms, to_ms)
                        .await?
                        .into_iter()
                        .map(dq_result),
                );
            }
            Some(PipewatchKind::Drift {
                feature, statistic, ..
            }) if drift_read.insert((feature.clone(), statistic.clone())) => {
                drift.extend(
                    store
                        .drift_for_rules(feature, statistic, from_ms, to_ms)
                        .await?
                        .into_iter()
                        .map(drift_reading),
                );
            }
            _ => {}
        }
    }
    Ok(alerting::backtest::KindHistory {
        dq: Some(dq),
        drift: Some(drift),
    })
}

impl Engine {
    /// The alerts a dq_check or drift rule holds at `now_ms`, from the latest stored results.
    pub(super) async fn stored_result_hits(
        &self,
        rule: &Rule,
        now_ms: i64,
    ) -> Result<Vec<Hit>, String> {
        let url = &self.eval_opts.external_url;
        match &rule.pipewatch {
            Some(PipewatchKind::DqCheck { dataset, .. }) => {
                let rows = self
                    .store
                    .dq_runs_for_rules(dataset, now_ms, now_ms)
                    .await
                    .map_err(|e| e.to_string())?;
                let runs: Vec<DqResult> = rows.into_iter().map(dq_result).collect();
                Ok(kinds::dq_hits(rule, &kinds::latest_dq(&runs, now_ms), url))
            }
            Some(PipewatchKind::Drift {
                feature, statistic, ..
            }) => {
                let rows = self
                    .store
                    .drift_for_rules(feature, statistic, now_ms, now_ms)
                    .await
                    .map_err(|e| e.to_string())?;
                let readings: Vec<DriftReading> = rows.into_iter().map(drift_reading).collect();
                Ok(kinds::drift_hits(
                    rule,
                    &kinds::latest_drift(&readings, now_ms),
                    url,
                ))
            }
            _ => Ok(Vec::new()),
        }
    }

    /// The instance changes `hits` make for `rule`: a new hit starts an instance (pending, or
    /// firing at once when the failing result is older than `for`), a pending one fires once
    /// `for` has passed, and an instance whose hit is gone resolves.
    pub(super) fn hit_changes(
        &self,
        instances: &HashMap<String, AlertInstance>,
        group: &str,
        rule: &Rule,
        hits: &[Hit],
        now_ms: i64,
    ) -> Vec<Change> {
        let kind = rule.pipewatch.as_ref().map_or("", |k| k.name());
        let mut changes = Vec::new();
        let mut seen = HashSet::new();
        for h in hits {
            let fp = fingerprint(&[kind, group, &rule.name, &h.key]);
            seen.insert(fp.clone());
            let old = instances.get(&fp);
            let live =
                old.filter(|o| matches!(o.state, LifecycleState::Pending | LifecycleState::Firing));
            let active_at = live
                .and_then(|o| o.active_at_ms)
                .unwrap_or(h.since_ms.min(now_ms));
            let target = match kinds::state_at(active_at, rule.for_ms, now_ms) {
                AlertState::Firing => LifecycleState::Firing,
                _ => LifecycleState::Pending,
            };
            match live {
                Some(o) if o.state == target => {
                    // Keep writes down: only a changed value or annotation is stored.
                    if o.last_value.map(f64::to_bits) != h.value.map(f64::to_bits)
                        || o.annotations != h.annotations
                    {
                        let mut inst = o.clone();
                        inst.last_value = h.value;
                        inst.annotations = h.annotations.clone();
                        inst.last_eval_at_ms = Some(now_ms);
                        changes.push(Change {
                            instance: inst,
                            event: None,
                        });
                    }
                }
                Some(o) => {
                    let mut inst = o.clone();
                    inst.state = target;
                    inst.fired_at_ms = Some(now_ms);
                    inst.last_value = h.value;
                    inst.last_eval_at_ms = Some(now_ms);
                    changes.push(Change {
                        instance: inst,
                        event: Some((o.state, target, h.explanation.clone())),
                    });
                }
                None => {
                    let route = grouping::route_for(&self.routes, &h.labels);
                    changes.push(Change {
                        instance: AlertInstance {
                            id: old.map_or(0, |o| o.id),
                            fingerprint: fp,
                            source: AlertSource::Rule,
                            rule: rule.name.clone(),
                            rule_group: group.to_string(),
                            group_key: grouping::group_key(route, &h.labels),
                            labels: h.labels.clone(),
                            annotations: h.annotations.clone(),
                            state: target,
                            active_at_ms: Some(active_at),
                            fired_at_ms: (target == LifecycleState::Firing).then_some(now_ms),
                            resolved_at_ms: None,
                            last_value: h.value,
                            last_eval_at_ms: Some(now_ms),
                            episode: old.map_or(1, |o| o.episode + 1),
                            // A resolve still owed from the last episode stays owed.
                            notified: match old.map(|o| o.notified) {
                                Some(Notified::Firing) => Notified::Firing,
                                _ => Notified::None,
                            },
                            firing_notified_at_ms: None,
                            detail: format!("{kind}: {}", h.explanation),
                            updated_at_ms: now_ms,
                        },
                        event: Some((
                            old.map_or(LifecycleState::Inactive, |o| o.state),
                            target,
                            h.explanation.clone(),
                        )),
                    });
                }
            }
        }
        let why = match kind {
            "dq_check" => "a later run no longer fails",
            _ => "a later drift result is back within the threshold",
        };
        for o in instances.values() {
            if o.source == AlertSource::Rule
                && o.rule_group == group
                && o.rule == rule.name
                && o.detail.starts_with(&format!("{kind}: "))
                && matches!(o.state, LifecycleState::Pending | LifecycleState::Firing)
                && !seen.contains(&o.fingerprint)
            {
                let mut c = ended(o, now_ms, why);
                c.instance.last_eval_at_ms = Some(now_ms);
                changes.push(c);
            }
        }
        changes
    }
}
