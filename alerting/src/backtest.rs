//! Replaying a rule group over stored history: evaluates it at every step of `[from, to]`
//! with the engine's own evaluator ([`GroupEvaluator`], so `for` and `keep_firing_for` hold
//! as in the engine) and the engine's decisions for the `dq_check` and `drift` kinds
//! ([`crate::kinds`]), and reports each alert episode: when it became pending, fired and
//! resolved. Pure: the caller loads the history (`pipewatch rules backtest`, the Rules page's
//! preview) and passes it in.

use crate::eval::{AlertState, EvalOptions, GroupEvaluator};
use crate::kinds::{self, Hit};
use crate::rulefile::{PipewatchKind, Rule, RuleGroup, RuleType};
use query::value::{Labels, METRIC_NAME};
use query::MemoryStorage;
use std::collections::{BTreeMap, HashMap};

/// Most steps one replay evaluates: a day at a 15 s step is 5,760, a week at 1 m 10,080.
pub const MAX_STEPS: i64 = 20_000;

/// One alert episode found by a replay. Times are Unix ms, each an evaluation step.
#[derive(Clone, Debug, PartialEq)]
pub struct Episode {
    pub group: String,
    pub rule: String,
    pub labels: BTreeMap<String, String>,
    /// The first step its condition held.
    pub active_at_ms: i64,
    /// The step it fired at; `None` when its condition cleared before `for` passed.
    pub fired_at_ms: Option<i64>,
    /// The step it resolved (or, never fired, went back to inactive) at; `None` when still
    /// pending or firing at the end of the range.
    pub resolved_at_ms: Option<i64>,
}

/// What a replay found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Replay {
    pub episodes: Vec<Episode>,
    /// Rules the replay could not evaluate, with why (once per rule).
    pub skipped: Vec<(String, String)>,
    /// Rules whose evaluation failed: the rule, how many steps failed, and the first message.
    pub errors: Vec<(String, usize, String)>,
    pub steps: usize,
}

/// The history of the non-series kinds over the replayed range (and before it, so the
/// latest result at `from` is known). A kind with `None` cannot be replayed.
#[derive(Clone, Debug, Default)]
pub struct KindHistory {
    pub dq: Option<Vec<kinds::DqResult>>,
    pub drift: Option<Vec<kinds::DriftReading>>,
}

/// Why the steps do not fit: `to` before `from`, a step of zero, or too many steps.
pub fn check_range(from_ms: i64, to_ms: i64, step_ms: i64) -> Result<(), String> {
    if step_ms <= 0 {
        return Err("the step must be positive, e.g. --step 1m".into());
    }
    if to_ms < from_ms {
        return Err("--to is before --from".into());
    }
    let steps = (to_ms - from_ms) / step_ms + 1;
    if steps > MAX_STEPS {
        return Err(format!(
            "{steps} steps is more than {MAX_STEPS}: make the step larger or the range shorter"
        ));
    }
    Ok(())
}

/// The open episode of each alert, by rule and labels.
#[derive(Default)]
struct Tracker {
    open: HashMap<(usize, Vec<(String, String)>), usize>,
}

impl Tracker {
    /// Notes that the alert `key` of `rule` is in `state` at `t` (active since `active_at`).
    fn active(
        &mut self,
        out: &mut Vec<Episode>,
        who: (&str, usize, &str),
        labels: &BTreeMap<String, String>,
        active_at: i64,
        state: AlertState,
        t: i64,
    ) {
        let (group, index, rule) = who;
        let key = (
            index,
            labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        );
        let i = match self.open.get(&key) {
            Some(&i) if out[i].active_at_ms == active_at => i,
            other => {
                // A new episode (the old one of these labels, if any, ended unseen: close it).
                if let Some(&old) = other {
                    out[old].resolved_at_ms.get_or_insert(t);
                }
                out.push(Episode {
                    group: group.to_string(),
                    rule: rule.to_string(),
                    labels: labels.clone(),
                    active_at_ms: active_at,
                    fired_at_ms: None,
                    resolved_at_ms: None,
                });
                self.open.insert(key, out.len() - 1);
                out.len() - 1
            }
        };
        if state == AlertState::Firing && out[i].fired_at_ms.is_none() {
            out[i].fired_at_ms = Some(t);
        }
    }

    /// Closes the open episodes of rule `index` not in `seen` at `t`.
    fn end_unseen(
        &mut self,
        out: &mut [Episode],
        index: usize,
        seen: &[Vec<(String, String)>],
        t: i64,
    ) {
        self.open.retain(|(i, labels), ep| {
            if *i != index || seen.contains(labels) {
                return true;
            }
            out[*ep].resolved_at_ms.get_or_insert(t);
            false
        });
    }
}

fn label_vec(labels: &BTreeMap<String, String>) -> Vec<(String, String)> {
    labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn to_map(l: &Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Why a rule of this kind cannot be replayed from `history`, if it cannot.
fn unreplayable(kind: &PipewatchKind, history: &KindHistory) -> Option<String> {
    match kind {
        PipewatchKind::Anomaly { .. } => Some(
            "kind anomaly: not replayed (anomalies are found by the analysis jobs as they run; \
             their past findings are on the Anomalies page)"
                .into(),
        ),
        PipewatchKind::DqCheck { .. } if history.dq.is_none() => {
            Some("kind dq_check: no data-quality history was loaded".into())
        }
        PipewatchKind::Drift { .. } if history.drift.is_none() => {
            Some("kind drift: no drift history was loaded".into())
        }
        _ => None,
    }
}

/// The alerts a dq_check or drift rule holds at `t` given the history.
fn kind_hits(rule: &Rule, history: &KindHistory, t: i64, external_url: &str) -> Vec<Hit> {
    match &rule.pipewatch {
        Some(PipewatchKind::DqCheck { .. }) => history.dq.as_ref().map_or(Vec::new(), |h| {
            kinds::dq_hits(rule, &kinds::latest_dq(h, t), external_url)
        }),
        Some(PipewatchKind::Drift { .. }) => history.drift.as_ref().map_or(Vec::new(), |h| {
            kinds::drift_hits(rule, &kinds::latest_drift(h, t), external_url)
        }),
        _ => Vec::new(),
    }
}

/// Replays `group` at `from_ms`, `from_ms + step_ms`, ... up to `to_ms` over `storage` (the
/// stored samples the group's expressions read, from `from_ms` minus their look-back on) and
/// `history`. What recording rules produce is added to `storage` as the replay goes, so later
/// steps and rules read it as they would have read the live engine's output.
pub fn replay(
    group: &RuleGroup,
    opts: &EvalOptions,
    storage: &mut MemoryStorage,
    history: &KindHistory,
    from_ms: i64,
    to_ms: i64,
    step_ms: i64,
) -> Result<Replay, String> {
    check_range(from_ms, to_ms, step_ms)?;
    let mut ev = GroupEvaluator::new(group.clone(), opts.clone());
    let mut out = Replay::default();
    let mut tracker = Tracker::default();
    let mut errors: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for r in &group.rules {
        if let Some(why) = r.pipewatch.as_ref().and_then(|k| unreplayable(k, history)) {
            if !out.skipped.iter().any(|(n, _)| *n == r.name) {
                out.skipped.push((r.name.clone(), why));
            }
        }
    }
    let mut t = from_ms;
    while t <= to_ms {
        out.steps += 1;
        let evaluation = ev.eval(storage, t);
        for e in &evaluation.errors {
            let entry = errors
                .entry(e.rule.clone())
                .or_insert_with(|| (0, e.message.clone()));
            entry.0 += 1;
        }
        for (labels, v) in &evaluation.samples {
            let name = labels.get(METRIC_NAME);
            if name != "ALERTS" && name != "ALERTS_FOR_STATE" {
                storage.add(labels.clone(), [(t, *v)]);
            }
        }
        for (i, rule) in group.rules.iter().enumerate() {
            if rule.rule_type != RuleType::Alerting {
                continue;
            }
            let who = (group.name.as_str(), i, rule.name.as_str());
            match &rule.pipewatch {
                Some(k @ (PipewatchKind::DqCheck { .. } | PipewatchKind::Drift { .. })) => {
                    if unreplayable(k, history).is_some() {
                        continue;
                    }
                    let hits = kind_hits(rule, history, t, &opts.external_url);
                    let mut seen = Vec::new();
                    for h in &hits {
                        let lv = label_vec(&h.labels);
                        // An episode goes on while the condition holds: `for` counts from the
                        // result that started it.
                        let active_at = tracker
                            .open
                            .get(&(i, lv.clone()))
                            .map_or(h.since_ms.min(t), |&e| out.episodes[e].active_at_ms);
                        let state = kinds::state_at(active_at, rule.for_ms, t);
                        tracker.active(&mut out.episodes, who, &h.labels, active_at, state, t);
                        seen.push(lv);
                    }
                    tracker.end_unseen(&mut out.episodes, i, &seen, t);
                }
                Some(k) if !k.is_evaluated() => {}
                _ => {
                    if evaluation.errors.iter().any(|e| e.rule == rule.name) {
                        // As the engine: a failed evaluation leaves alerts as they are.
                        continue;
                    }
                    let mut seen = Vec::new();
                    for a in ev.all_alerts(i) {
                        let labels = to_map(&a.labels);
                        if a.state == AlertState::Inactive {
                            continue;
                        }
                        tracker.active(&mut out.episodes, who, &labels, a.active_at, a.state, t);
                        seen.push(label_vec(&labels));
                    }
                    tracker.end_unseen(&mut out.episodes, i, &seen, t);
                }
            }
        }
        t += step_ms;
    }
    out.errors = errors
        .into_iter()
        .map(|(rule, (n, msg))| (rule, n, msg))
        .collect();
    Ok(out)
}

/// The episodes as rows of a table: rule, labels, pending since, fired, resolved (`-` for
/// none; "still firing" when it had not resolved by the end).
pub fn table(episodes: &[Episode], fmt_time: impl Fn(i64) -> String) -> String {
    let mut rows = vec![[
        "RULE".to_string(),
        "LABELS".to_string(),
        "PENDING".to_string(),
        "FIRED".to_string(),
        "RESOLVED".to_string(),
    ]];
    for e in episodes {
        let labels: Vec<String> = e
            .labels
            .iter()
            .filter(|(k, _)| *k != "alertname")
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        rows.push([
            e.rule.clone(),
            format!("{{{}}}", labels.join(", ")),
            fmt_time(e.active_at_ms),
            e.fired_at_ms
                .map_or_else(|| "never (cleared while pending)".into(), &fmt_time),
            match (e.fired_at_ms, e.resolved_at_ms) {
                (_, Some(r)) => fmt_time(r),
                (Some(_), None) => "still firing".into(),
                (None, None) => "still pending".into(),
            },
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut s = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, v)| format!("{v:<w$}", w = widths[c]))
            .collect();
        s.push_str(line.join("  ").trim_end());
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(yaml: &str) -> RuleGroup {
        let parsed = crate::parse(yaml);
        assert!(parsed.is_valid(), "{:?}", parsed.diagnostics);
        parsed.file.unwrap().groups.remove(0)
    }

    const M: i64 = 60_000;

    fn lag(values: impl Fn(i64) -> f64, minutes: i64) -> MemoryStorage {
        let mut s = MemoryStorage::new();
        s.add(
            Labels::new([("__name__", "lag"), ("job", "etl")]),
            (0..=minutes).map(|i| (i * M, values(i))),
        );
        s
    }

    #[test]
    fn an_excursion_fires_after_for_and_resolves_after_keep_firing_for() {
        let g = group(
            "groups:\n- name: g\n  rules:\n  - alert: Lag\n    expr: lag > 10\n    for: 3m\n    keep_firing_for: 2m\n",
        );
        // High from minute 10 to 19, and a blip at 30 too short for `for`.
        let mut s = lag(
            |i| {
                if (10..20).contains(&i) || i == 30 {
                    50.0
                } else {
                    1.0
                }
            },
            60,
        );
        let r = replay(
            &g,
            &EvalOptions::default(),
            &mut s,
            &KindHistory::default(),
            0,
            60 * M,
            M,
        )
        .unwrap();
        assert_eq!(r.steps, 61);
        assert!(r.errors.is_empty() && r.skipped.is_empty(), "{r:?}");
        let got: Vec<(i64, Option<i64>, Option<i64>)> = r
            .episodes
            .iter()
            .map(|e| {
                (
                    e.active_at_ms / M,
                    e.fired_at_ms.map(|t| t / M),
                    e.resolved_at_ms.map(|t| t / M),
                )
            })
            .collect();
        // Fires at 13 (3 m after 10); the condition clears at 20, kept firing 2 m: resolved 22.
        // The blip at 30 is pending and gone at 31.
        assert_eq!(got, [(10, Some(13), Some(22)), (30, None, Some(31))]);
        assert_eq!(r.episodes[0].labels["job"], "etl");
        let t = table(&r.episodes, |ms| format!("{}m", ms / M));
        assert!(t.contains("Lag   {job=\"etl\"}  10m"), "{t}");
        assert!(t.contains("never (cleared while pending)"), "{t}");
    }

    #[test]
    fn recording_rules_feed_later_rules_and_an_open_episode_stays_open() {
        let g = group(
            "groups:\n- name: g\n  rules:\n  - record: job:lag:x2\n    expr: lag * 2\n  - alert: Lag\n    expr: job:lag:x2 > 20\n",
        );
        let mut s = lag(|i| if i >= 5 { 50.0 } else { 1.0 }, 10);
        let r = replay(
            &g,
            &EvalOptions::default(),
            &mut s,
            &KindHistory::default(),
            0,
            10 * M,
            M,
        )
        .unwrap();
        assert_eq!(r.episodes.len(), 1, "{r:?}");
        assert_eq!(r.episodes[0].fired_at_ms, Some(5 * M));
        assert_eq!(r.episodes[0].resolved_at_ms, None);
    }

    #[test]
    fn dq_rules_replay_from_the_run_history_and_anomaly_rules_are_reported() {
        let g = group(
            "groups:\n- name: g\n  rules:\n  - alert: OrdersDq\n    pipewatch: {kind: dq_check, dataset: orders}\n    for: 1m\n  - alert: Odd\n    pipewatch: {kind: anomaly}\n",
        );
        let run = |status: &str, t: i64| kinds::DqResult {
            tool: "dbt".into(),
            suite: String::new(),
            dataset: "orders".into(),
            check_id: "not_null_orders_id".into(),
            check_name: "not_null_orders_id".into(),
            column: None,
            status: status.into(),
            observed: None,
            message: None,
            run_time_ms: t,
        };
        let history = KindHistory {
            dq: Some(vec![
                run("pass", 0),
                run("fail", 5 * M + 1),
                run("pass", 9 * M),
            ]),
            drift: None,
        };
        let mut s = MemoryStorage::new();
        let r = replay(&g, &EvalOptions::default(), &mut s, &history, 0, 12 * M, M).unwrap();
        let got: Vec<_> = r
            .episodes
            .iter()
            .map(|e| (e.rule.as_str(), e.fired_at_ms, e.resolved_at_ms))
            .collect();
        // Failing from 5m+1ms: seen at 6m, fires at 7m (`for` 1m from the failing run), and
        // the passing run at 9m resolves it.
        assert_eq!(got, [("OrdersDq", Some(7 * M), Some(9 * M))]);
        assert_eq!(r.skipped.len(), 1);
        assert!(r.skipped[0].1.contains("kind anomaly: not replayed"));
    }

    #[test]
    fn bad_ranges_say_what_to_change() {
        assert!(check_range(0, 10, 0).unwrap_err().contains("--step"));
        assert!(check_range(10, 0, 1).unwrap_err().contains("before --from"));
        assert!(check_range(0, MAX_STEPS * 2, 1)
            .unwrap_err()
            .contains("make the step larger"));
    }
}
