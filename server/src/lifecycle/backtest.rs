//! Backtests: the rule groups of a rule file replayed over stored history
//! ([`alerting::backtest::replay`]), with the samples their expressions read loaded from the
//! store the way the engine loads them at an evaluation, and the data-quality and drift
//! history of their `dq_check` / `drift` rules. Used by `pipewatch rules backtest` and by the
//! Rules page's preview.

use crate::promql::QueryLimits;
use alerting::backtest::{self, Replay};
use alerting::{EvalOptions, RuleGroup};
use anyhow::{Context, Result};
use std::collections::{BTreeMap, HashMap};
use store::Store;

/// What to replay and how.
#[derive(Clone, Debug)]
pub struct Backtest {
    pub from_ms: i64,
    pub to_ms: i64,
    /// `None`: each group's own interval, else `default_step_ms`.
    pub step_ms: Option<i64>,
    pub default_step_ms: i64,
    pub external_url: String,
}

/// The replay of one group.
#[derive(Clone, Debug)]
pub struct GroupReplay {
    pub group: String,
    pub step_ms: i64,
    pub replay: Replay,
}

/// Parses and lints `text` (errors listed with line:column) and replays every group of it.
pub async fn run_text(
    store: &Store,
    limits: &QueryLimits,
    text: &str,
    b: &Backtest,
) -> Result<Vec<GroupReplay>> {
    let parsed = alerting::parse(text);
    if !parsed.is_valid() {
        let errors: Vec<String> = parsed.errors().map(ToString::to_string).collect();
        anyhow::bail!("the rules do not lint:\n{}", errors.join("\n"));
    }
    let file = parsed.file.context("the rules have no groups")?;
    run(store, limits, &file.groups, b).await
}

/// Replays `groups` over `[b.from_ms, b.to_ms]`.
pub async fn run(
    store: &Store,
    limits: &QueryLimits,
    groups: &[RuleGroup],
    b: &Backtest,
) -> Result<Vec<GroupReplay>> {
    let engine = query::EngineOptions {
        lookback_ms: limits.lookback.as_millis() as i64,
        default_subquery_step_ms: b.default_step_ms,
        max_samples: limits.max_samples,
        interrupt: None,
    };
    let opts = EvalOptions {
        external_labels: BTreeMap::new(),
        external_url: b.external_url.clone(),
        engine: engine.clone(),
    };
    let mut out = Vec::new();
    for g in groups {
        let step_ms = b.step_ms.or(g.interval_ms).unwrap_or(b.default_step_ms);
        backtest::check_range(b.from_ms, b.to_ms, step_ms).map_err(anyhow::Error::msg)?;
        let mut data: HashMap<query::Labels, BTreeMap<i64, f64>> = HashMap::new();
        for rule in &g.rules {
            if rule.pipewatch.as_ref().is_some_and(|k| !k.is_evaluated()) {
                continue;
            }
            let Ok(expr) = query::parse(&rule.expr) else {
                continue;
            };
            // Every selector over the whole range at once (their look-back before `from`).
            for sel in query::plan::selectors(&expr, b.from_ms, b.to_ms, &engine) {
                let s = crate::promql::to_selector(&sel.matchers)
                    .map_err(|e| anyhow::anyhow!("rule {:?}: {e}", rule.name))?;
                let raw = store
                    .raw_samples(&s, sel.mint, sel.maxt, limits.max_series_per_selector)
                    .await
                    .with_context(|| format!("reading the series of rule {:?}", rule.name))?;
                for (key, points) in raw {
                    let labels = query::Labels::new(
                        std::iter::once((query::value::METRIC_NAME.to_string(), key.metric)).chain(
                            key.labels
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.to_string())),
                        ),
                    );
                    data.entry(labels).or_default().extend(points);
                }
            }
        }
        let mut storage = query::MemoryStorage::new();
        for (labels, points) in data {
            storage.push_series(query::Series {
                labels,
                points: points.into_iter().collect(),
            });
        }
        let history = super::kinds::history(store, &g.rules, b.from_ms, b.to_ms).await?;
        let replay = backtest::replay(
            g,
            &opts,
            &mut storage,
            &history,
            b.from_ms,
            b.to_ms,
            step_ms,
        )
        .map_err(anyhow::Error::msg)?;
        out.push(GroupReplay {
            group: g.name.clone(),
            step_ms,
            replay,
        });
    }
    Ok(out)
}

/// The replays as JSON: per group its step, episodes (times in Unix ms), skipped rules and
/// errors.
pub fn to_json(replays: &[GroupReplay]) -> serde_json::Value {
    serde_json::Value::Array(
        replays
            .iter()
            .map(|g| {
                serde_json::json!({
                    "group": g.group,
                    "step_ms": g.step_ms,
                    "steps": g.replay.steps,
                    "episodes": g.replay.episodes.iter().map(|e| serde_json::json!({
                        "rule": e.rule,
                        "labels": e.labels,
                        "active_at_ms": e.active_at_ms,
                        "fired_at_ms": e.fired_at_ms,
                        "resolved_at_ms": e.resolved_at_ms,
                    })).collect::<Vec<_>>(),
                    "skipped": g.replay.skipped.iter().map(|(r, why)| serde_json::json!({
                        "rule": r, "why": why,
                    })).collect::<Vec<_>>(),
                    "errors": g.replay.errors.iter().map(|(r, n, msg)| serde_json::json!({
                        "rule": r, "steps": n, "message": msg,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}
