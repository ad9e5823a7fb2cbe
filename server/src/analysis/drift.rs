//! The drift job: for every histogram with a `feature` label (the demo's `demo_feature_value`),
//! the bucket counts of the last `[analysis] drift_window` are compared with those of the
//! `drift_reference` just before it ([`analysis::drift::compare_histograms`], Evidently's
//! default test for binned data: Jensen–Shannon past 1,000 reference observations). Each
//! comparison is written to `drift_results`; a drifted feature also opens (or extends) an
//! anomaly of kind `drift` at its pipeline node, closed when a later check finds no drift.

use super::signals::{matchers, node_of};
use super::AnalysisJobs;
use analysis::drift::{compare_histograms, DriftOptions, FixedHistogram};
use model::anomaly::DriftResult;
use model::{MetricType, SeriesKey};
use std::collections::BTreeMap;
use store::anomalies::{AnomalyObservation, Observed};

/// What the drift part of a round did.
#[derive(Debug, Default)]
pub struct DriftReport {
    pub checks: usize,
    pub opened: usize,
    pub closed: usize,
    pub failed_queries: usize,
}

pub struct DriftJob<'a> {
    pub jobs: &'a AnalysisJobs,
    pub now_ms: i64,
}

/// Bucket increases per histogram (labels without `le`): `(le, count)` ascending.
type Buckets = BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>>;

fn group(v: query::Value) -> Buckets {
    let mut out: Buckets = BTreeMap::new();
    if let query::Value::Vector(samples) = v {
        for s in samples {
            let le = s.labels.get("le");
            let Ok(le) = le.parse::<f64>().or_else(|_| {
                if le == "+Inf" {
                    Ok(f64::INFINITY)
                } else {
                    Err(())
                }
            }) else {
                continue;
            };
            let labels: BTreeMap<String, String> = s
                .labels
                .iter()
                .filter(|(k, _)| *k != "le" && *k != query::value::METRIC_NAME)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            out.entry(labels).or_default().push((le, s.v));
        }
    }
    for b in out.values_mut() {
        b.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// A histogram from extrapolated bucket increases: rounded, and made cumulative again where
/// extrapolation left a bucket a little below the one before.
fn histogram(buckets: &[(f64, f64)]) -> Option<FixedHistogram> {
    let mut prev = 0u64;
    let cum: Vec<(f64, u64)> = buckets
        .iter()
        .map(|&(le, v)| {
            let c = if v.is_finite() && v > 0.0 {
                v.round() as u64
            } else {
                0
            };
            prev = prev.max(c);
            (le, prev)
        })
        .collect();
    FixedHistogram::from_cumulative(&cum).ok()
}

fn secs(d: std::time::Duration) -> String {
    format!("{}s", d.as_secs())
}

impl DriftJob<'_> {
    pub async fn run(
        &self,
        series: &[(SeriesKey, MetricType)],
    ) -> Result<DriftReport, store::StoreError> {
        let mut report = DriftReport::default();
        let cfg = &self.jobs.cfg;
        let (w, r) = (cfg.drift_window, cfg.drift_reference);
        let now = self.now_ms;
        let (cur_from, ref_from) = (now - w.as_millis() as i64, now - (w + r).as_millis() as i64);
        for metric in super::signals::drift_histograms(series, &self.jobs.exclude) {
            let cur_q = format!("increase({metric}[{}])", secs(w));
            let ref_q = format!("increase({metric}[{}] offset {})", secs(r), secs(w));
            let store = &self.jobs.store;
            let limits = &self.jobs.limits;
            let (cur, reference) = match (
                crate::promql::instant(store, limits, &cur_q, now).await,
                crate::promql::instant(store, limits, &ref_q, now).await,
            ) {
                (Ok(c), Ok(r)) => (group(c), group(r)),
                (Err(e), _) | (_, Err(e)) => {
                    report.failed_queries += 1;
                    tracing::warn!(%metric, error = %e, "analysis: a drift query failed; skipped this round");
                    continue;
                }
            };
            let mut results = Vec::new();
            for (labels, cur_buckets) in &cur {
                let Some(ref_buckets) = reference.get(labels) else {
                    continue;
                };
                let (Some(c), Some(rf)) = (histogram(cur_buckets), histogram(ref_buckets)) else {
                    continue;
                };
                let Ok(d) = compare_histograms(&rf, &c, &DriftOptions::default()) else {
                    // Empty windows (nothing observed) or changed buckets: nothing to compare.
                    continue;
                };
                report.checks += 1;
                let feature = labels.get("feature").cloned().unwrap_or_default();
                let dataset = node_of(labels).unwrap_or_else(|| metric.clone());
                let verdict = if d.drifted {
                    "drifted"
                } else {
                    "did not drift"
                };
                let explanation = format!(
                    "{feature} at {dataset} {verdict}: {} {} {} threshold {} (last {} against the {} before; {} and {} observations)",
                    d.test.display_name(),
                    round3(d.score),
                    if d.drifted { "beyond" } else { "within" },
                    round3(d.threshold),
                    humantime::format_duration(w),
                    humantime::format_duration(r),
                    rf.count(),
                    c.count(),
                );
                let signal = format!("increase({metric}{}[{}])", matchers(labels), secs(w));
                if d.drifted {
                    // Distances: twice the threshold is critical; p-values: a hundredth of it.
                    let far = if d.test.is_p_value() {
                        d.score <= d.threshold / 100.0
                    } else {
                        d.score >= 2.0 * d.threshold
                    };
                    let o = AnomalyObservation {
                        signal: signal.clone(),
                        kind: "drift".into(),
                        labels: labels.clone(),
                        node: node_of(labels),
                        detector: format!("drift_{}", d.test.name()),
                        severity: if far { "critical" } else { "warning" }.into(),
                        score: if far { 0.95 } else { 0.8 },
                        started_at_ms: cur_from,
                        seen_at_ms: now,
                        observed: d.score,
                        expected_low: 0.0,
                        expected_high: d.threshold,
                        explanation: explanation.clone(),
                    };
                    if let Observed::Opened(id) = store.observe_anomaly(&o).await? {
                        report.opened += 1;
                        tracing::info!(id, %signal, "drift anomaly opened");
                    }
                } else if store.close_anomaly(&signal, now).await?.is_some() {
                    report.closed += 1;
                }
                results.push(DriftResult {
                    id: 0,
                    dataset,
                    column: feature,
                    method: d.test.name().to_string(),
                    value: d.score,
                    threshold: d.threshold,
                    drifted: d.drifted,
                    reference_from_ms: ref_from,
                    reference_to_ms: cur_from,
                    current_from_ms: cur_from,
                    current_to_ms: now,
                    evaluated_at_ms: now,
                    explanation,
                });
            }
            store.record_drift_results(&results).await?;
        }
        Ok(report)
    }
}

fn round3(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extrapolated_increases_become_a_cumulative_histogram() {
        let h = histogram(&[
            (60.0, 10.4),
            (80.0, 9.6),
            (100.0, 30.0),
            (f64::INFINITY, 31.0),
        ])
        .unwrap();
        assert_eq!(h.counts(), &[10, 0, 20, 1]);
        assert_eq!(h.upper_bounds(), &[60.0, 80.0, 100.0]);
    }
}
