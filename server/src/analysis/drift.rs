//! The drift job, over two inputs:
//! * every histogram with a `feature` label (the demo's `demo_feature_value`): the bucket counts
//!   of the last `[analysis] drift_window` against those of its reference
//!   ([`analysis::drift::compare_histograms`], Evidently's default test for binned data:
//!   Jensen–Shannon past 1,000 reference observations);
//! * every column with profiles sent to `POST /api/v1/drift/profile` in the current window: the
//!   window's profiles merged and compared with the merged profiles of its reference
//!   ([`analysis::drift::compare`], Evidently's default test for the column's kind and size).
//!
//! A feature's reference is the first matching `[[analysis.drift_references]]` entry (a pinned
//! window, or a trailing one of its own length) or the trailing `drift_reference` just before
//! the current window. Each comparison is written to `drift_results`; a drifted feature also
//! opens (or extends) an anomaly of kind `drift` at its pipeline node, closed when a later check
//! finds no drift.

use super::signals::{matchers, node_of};
use super::AnalysisJobs;
use crate::config::ReferenceWindow;
use analysis::drift::{compare_histograms, ColumnProfile, DriftOptions, FixedHistogram};
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

/// One comparison to record: what was compared, and its verdict.
struct Judged<'a> {
    /// The anomaly's identity (a PromQL expression for histograms, `column_profile{...}` for
    /// profiles).
    signal: String,
    labels: BTreeMap<String, String>,
    dataset: String,
    feature: String,
    verdict: &'a analysis::drift::DriftResult,
    reference: ReferenceWindow,
    reference_span: (i64, i64),
    counts: (u64, u64),
}

impl DriftJob<'_> {
    pub async fn run(
        &self,
        series: &[(SeriesKey, MetricType)],
    ) -> Result<DriftReport, store::StoreError> {
        let mut report = DriftReport::default();
        self.histograms(series, &mut report).await?;
        self.profiles(&mut report).await?;
        Ok(report)
    }

    fn current_from(&self) -> i64 {
        self.now_ms - self.jobs.cfg.drift_window.as_millis() as i64
    }

    /// Feature histograms: bucket increases over the current window against the reference's.
    async fn histograms(
        &self,
        series: &[(SeriesKey, MetricType)],
        report: &mut DriftReport,
    ) -> Result<(), store::StoreError> {
        let cfg = &self.jobs.cfg;
        let w = cfg.drift_window;
        let now = self.now_ms;
        let cur_from = self.current_from();
        let store = &self.jobs.store;
        let limits = &self.jobs.limits;
        for metric in super::signals::drift_histograms(series, &self.jobs.exclude) {
            let cur_q = format!("increase({metric}[{}])", secs(w));
            let cur = match crate::promql::instant(store, limits, &cur_q, now).await {
                Ok(c) => group(c),
                Err(e) => {
                    report.failed_queries += 1;
                    tracing::warn!(%metric, error = %e, "analysis: a drift query failed; skipped this round");
                    continue;
                }
            };
            // One reference query per distinct reference window among this metric's features.
            let mut references: BTreeMap<(i64, i64), Option<Buckets>> = BTreeMap::new();
            let mut results = Vec::new();
            for (labels, cur_buckets) in &cur {
                let feature = labels.get("feature").cloned().unwrap_or_default();
                let dataset = node_of(labels).unwrap_or_else(|| metric.clone());
                let reference = cfg.reference_for(&dataset, &feature);
                let span = reference.span(cur_from);
                if let std::collections::btree_map::Entry::Vacant(slot) = references.entry(span) {
                    let len = std::time::Duration::from_millis((span.1 - span.0).max(1000) as u64);
                    let q = format!("increase({metric}[{}])", secs(len));
                    let got = match crate::promql::instant(store, limits, &q, span.1).await {
                        Ok(r) => Some(group(r)),
                        Err(e) => {
                            report.failed_queries += 1;
                            tracing::warn!(%metric, error = %e, "analysis: a drift reference query failed; skipped this round");
                            None
                        }
                    };
                    slot.insert(got);
                }
                let Some(ref_buckets) = references[&span].as_ref().and_then(|r| r.get(labels))
                else {
                    continue;
                };
                let (Some(c), Some(rf)) = (histogram(cur_buckets), histogram(ref_buckets)) else {
                    continue;
                };
                let Ok(d) = compare_histograms(&rf, &c, &DriftOptions::default()) else {
                    // Empty windows (nothing observed) or changed buckets: nothing to compare.
                    continue;
                };
                let judged = Judged {
                    signal: format!("increase({metric}{}[{}])", matchers(labels), secs(w)),
                    labels: labels.clone(),
                    dataset,
                    feature,
                    verdict: &d,
                    reference,
                    reference_span: span,
                    counts: (rf.count(), c.count()),
                };
                results.push(self.record(judged, report).await?);
            }
            store.record_drift_results(&results).await?;
        }
        Ok(())
    }

    /// Columns sent to `POST /api/v1/drift/profile`: the profiles of the current window merged
    /// and compared with the merged profiles of the reference.
    async fn profiles(&self, report: &mut DriftReport) -> Result<(), store::StoreError> {
        let cfg = &self.jobs.cfg;
        let store = &self.jobs.store;
        let cur_from = self.current_from();
        let mut results = Vec::new();
        for col in store.profiled_columns(cur_from).await? {
            let reference = cfg.reference_for(&col.dataset, &col.column);
            let span = reference.span(cur_from);
            // Profiles stamped ahead of now (within `limits.future_tolerance`) count as current.
            let (cur, cur_bad) = self
                .merged(
                    &col.dataset,
                    &col.column,
                    cur_from,
                    self.now_ms + 86_400_000,
                )
                .await?;
            let (rf, ref_bad) = self
                .merged(&col.dataset, &col.column, span.0, span.1)
                .await?;
            if cur_bad + ref_bad > 0 {
                tracing::warn!(
                    dataset = %col.dataset, column = %col.column, unreadable = cur_bad + ref_bad,
                    "analysis: column profiles that cannot be read or merged (another kind) were left out"
                );
            }
            let (Some(cur), Some(rf)) = (cur, rf) else {
                continue;
            };
            let d = match analysis::drift::compare(&rf, &cur, &DriftOptions::default()) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(dataset = %col.dataset, column = %col.column, error = %e, "analysis: a profiled column cannot be compared");
                    continue;
                }
            };
            let labels: BTreeMap<String, String> = [
                ("dataset".to_string(), col.dataset.clone()),
                ("column".to_string(), col.column.clone()),
            ]
            .into();
            let judged = Judged {
                signal: format!("column_profile{}", matchers(&labels)),
                labels,
                dataset: col.dataset.clone(),
                feature: col.column.clone(),
                verdict: &d,
                reference,
                reference_span: span,
                counts: (rf.count(), cur.count()),
            };
            results.push(self.record(judged, report).await?);
        }
        store.record_drift_results(&results).await?;
        Ok(())
    }

    /// The merged profile of one column over `[from, to)`, and how many stored profiles could
    /// not be used (unreadable, or of the other kind than the first).
    async fn merged(
        &self,
        dataset: &str,
        column: &str,
        from: i64,
        to: i64,
    ) -> Result<(Option<ColumnProfile>, usize), store::StoreError> {
        let mut acc: Option<ColumnProfile> = None;
        let mut bad = 0usize;
        self.jobs
            .store
            .for_each_column_profile(
                dataset,
                column,
                from,
                to,
                |json| match serde_json::from_value::<ColumnProfile>(json) {
                    Ok(p) => match &mut acc {
                        None => acc = Some(p),
                        Some(a) => {
                            if a.merge(&p).is_err() {
                                bad += 1;
                            }
                        }
                    },
                    Err(_) => bad += 1,
                },
            )
            .await?;
        Ok((acc, bad))
    }

    /// Opens, extends or closes the feature's drift anomaly and returns the result row.
    async fn record(
        &self,
        j: Judged<'_>,
        report: &mut DriftReport,
    ) -> Result<DriftResult, store::StoreError> {
        let store = &self.jobs.store;
        let now = self.now_ms;
        let cur_from = self.current_from();
        let d = j.verdict;
        report.checks += 1;
        let verdict = if d.drifted {
            "drifted"
        } else {
            "did not drift"
        };
        let explanation = format!(
            "{} at {} {verdict}: {} {} {} threshold {} (last {} against {}; {} and {} observations)",
            j.feature,
            j.dataset,
            d.test.display_name(),
            round3(d.score),
            if d.drifted { "beyond" } else { "within" },
            round3(d.threshold),
            humantime::format_duration(self.jobs.cfg.drift_window),
            j.reference.describe(),
            j.counts.0,
            j.counts.1,
        );
        if d.drifted {
            // Distances: twice the threshold is critical; p-values: a hundredth of it.
            let far = if d.test.is_p_value() {
                d.score <= d.threshold / 100.0
            } else {
                d.score >= 2.0 * d.threshold
            };
            let o = AnomalyObservation {
                signal: j.signal.clone(),
                kind: "drift".into(),
                node: node_of(&j.labels),
                labels: j.labels,
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
                tracing::info!(id, signal = %j.signal, "drift anomaly opened");
            }
        } else if store.close_anomaly(&j.signal, now).await?.is_some() {
            report.closed += 1;
        }
        Ok(DriftResult {
            id: 0,
            dataset: j.dataset,
            column: j.feature,
            method: d.test.name().to_string(),
            value: d.score,
            threshold: d.threshold,
            drifted: d.drifted,
            reference_from_ms: j.reference_span.0,
            reference_to_ms: j.reference_span.1,
            current_from_ms: cur_from,
            current_to_ms: now,
            evaluated_at_ms: now,
            explanation,
        })
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
