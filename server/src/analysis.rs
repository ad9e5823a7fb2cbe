//! The analysis jobs: every `[analysis] interval`, on the one instance that holds the analysis
//! leadership (a PostgreSQL session advisory lock, [`store::LeaderRole::Analysis`]), evaluate
//! every watched signal with the detectors and open, extend or close rows in `anomalies`, then
//! compare feature histograms with their reference and write `drift_results`.
//!
//! Signals are chosen from what is stored ([`signals`]), their history comes from the PromQL
//! engine over the store ([`crate::promql::range`]), and each evaluation is pure
//! ([`evaluate`]). Feedback people gave (`anomaly_feedback`) and the windows of past anomalies
//! are read on every round and handed to the detectors as [`analysis::detect::Feedback`], so
//! an expected window joins the baseline, a false alarm widens that signal's band, and a bad
//! hour does not teach the baseline that bad is normal.
//!
//! Everything runs off the request path, in one task; each round logs how many signals it
//! evaluated and how long it took, and counts itself in `pipewatch_analysis_*`. A restart (or
//! a new leader) resumes from the table: open anomalies are extended, not reported again.

pub mod backtest;
pub mod drift;
pub mod evaluate;
pub mod gaps;
pub mod signals;

use crate::config::AnalysisConfig;
use crate::promql::QueryLimits;
use crate::telemetry::SelfMetrics;
use analysis::detect::{Feedback, Point, Window};
use analysis::{Severity, Verdict};
use model::anomaly::{Anomaly, FeedbackKind};
use model::{MetricType, Selector, SeriesKey};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::anomalies::{AnomalyObservation, Observed};
use store::{LeaderRole, Leadership, Store};
use tokio_util::sync::CancellationToken;

/// The jobs' self-metrics, registered in [`SelfMetrics`]' registry.
#[derive(Debug)]
pub struct AnalysisMetrics {
    pub runs: Counter,
    pub signals_evaluated: Gauge,
    pub anomalies_open: Gauge,
    pub run_duration: Histogram,
}

impl Default for AnalysisMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl AnalysisMetrics {
    pub fn new() -> Self {
        Self {
            runs: Counter::default(),
            signals_evaluated: Gauge::default(),
            anomalies_open: Gauge::default(),
            run_duration: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
        }
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "analysis_runs",
            "Detection rounds this instance ran (only the analysis leader runs them)",
            self.runs.clone(),
        );
        registry.register(
            "analysis_signals_evaluated",
            "Signals the last detection round evaluated",
            self.signals_evaluated.clone(),
        );
        registry.register(
            "analysis_anomalies_open",
            "Anomalies open after the last detection round",
            self.anomalies_open.clone(),
        );
        registry.register_with_unit(
            "analysis_run_duration",
            "Duration of one detection and drift round",
            Unit::Seconds,
            self.run_duration.clone(),
        );
    }

    /// A round finished: counts it and logs what it did (one event, so logs and metrics agree).
    pub fn round_finished(&self, r: &RoundReport) {
        self.runs.inc();
        self.signals_evaluated.set(r.signals as i64);
        self.anomalies_open.set(r.open_after as i64);
        self.run_duration.observe(r.elapsed.as_secs_f64());
        tracing::info!(
            signals = r.signals,
            families = r.families,
            opened = r.opened,
            closed = r.closed,
            open = r.open_after,
            drift_checks = r.drift_checks,
            failed_queries = r.failed_queries,
            gaps = r.gaps,
            elapsed_ms = r.elapsed.as_millis() as u64,
            "analysis round done"
        );
    }
}

/// What one round did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RoundReport {
    pub families: usize,
    pub signals: usize,
    pub opened: usize,
    pub extended: usize,
    pub closed: usize,
    pub open_after: usize,
    pub drift_checks: usize,
    pub failed_queries: usize,
    /// Throughput signals not judged because one of their last rate windows had too little
    /// data (see [`gaps`]).
    pub gaps: usize,
    pub elapsed: Duration,
}

/// The detection and drift jobs of one server.
#[derive(Clone)]
pub struct AnalysisJobs {
    pub store: Store,
    pub limits: QueryLimits,
    pub cfg: AnalysisConfig,
    exclude: Vec<Selector>,
    min_severity: Severity,
}

/// The history step for a span: 1440 to 2880 points, whole minutes, at least one minute
/// (rounded down, so a day and a few minutes of history keeps its one-minute step).
pub fn step_for(span_ms: i64) -> i64 {
    let minutes = span_ms / 1440 / 60_000;
    minutes.max(1) * 60_000
}

fn parse_severity(s: &str) -> Severity {
    match s {
        "critical" => Severity::Critical,
        "warning" => Severity::Warning,
        _ => Severity::Info,
    }
}

impl AnalysisJobs {
    pub fn new(store: Store, mut limits: QueryLimits, cfg: AnalysisConfig) -> Self {
        // A family's query reads every series of a metric over the whole history: give it the
        // round's interval at least, not only the interactive `query.timeout`.
        limits.timeout = limits.timeout.max(cfg.interval);
        Self {
            store,
            limits,
            exclude: cfg.exclude_selectors(),
            min_severity: parse_severity(&cfg.min_severity),
            cfg,
        }
    }

    /// Runs the leader loop until `stop`: take the leadership when free, run a round every
    /// interval while it holds, give it up at the end.
    pub fn spawn(
        self,
        metrics: Arc<SelfMetrics>,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move { self.run(metrics, stop).await })
    }

    async fn run(self, metrics: Arc<SelfMetrics>, stop: CancellationToken) {
        // The first round waits one interval: a server that has just started (or a demo whose
        // history is still being written) has not stored its recent data yet.
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + self.cfg.interval,
            self.cfg.interval,
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut lead: Option<Leadership> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => break,
            }
            if let Some(l) = lead.as_mut() {
                if !l.still_leading().await {
                    tracing::warn!("analysis leadership lost (its database session ended); trying again next round");
                    lead = None;
                }
            }
            if lead.is_none() {
                match self.store.try_lead(LeaderRole::Analysis).await {
                    Ok(Some(l)) => {
                        tracing::info!("this instance now runs the analysis jobs (leader)");
                        lead = Some(l);
                    }
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot ask for the analysis leadership; retrying next round");
                        continue;
                    }
                }
            }
            let round = tokio::select! {
                r = self.round(model::clock::now_ms()) => r,
                _ = stop.cancelled() => break,
            };
            match round {
                Ok(r) => metrics.analysis.round_finished(&r),
                Err(e) => tracing::warn!(error = %e, "analysis round failed; retrying next round"),
            }
        }
        if let Some(l) = lead {
            l.release().await;
        }
    }

    /// One round at `now_ms`: every signal, then every drift check.
    pub async fn round(&self, now_ms: i64) -> Result<RoundReport, store::StoreError> {
        let started = Instant::now();
        let mut report = RoundReport::default();
        let from = now_ms - self.cfg.history.as_millis() as i64;
        let all = Selector {
            metric: None,
            matchers: Vec::new(),
        };
        let series = self
            .store
            .find_series_in(&all, Some((from, now_ms)))
            .await?;
        let mut first_seen: HashMap<String, i64> = HashMap::new();
        let pairs: Vec<(SeriesKey, MetricType)> = series
            .into_iter()
            .map(|s| {
                let e = first_seen
                    .entry(s.key.metric.clone())
                    .or_insert(s.first_seen);
                *e = (*e).min(s.first_seen);
                (s.key, s.metric_type)
            })
            .collect();
        let families = signals::choose(&pairs, &self.exclude);
        report.families = families.len();
        let feedback = self.feedback(from).await?;
        let open: HashMap<String, Anomaly> = self
            .store
            .open_anomalies()
            .await?
            .into_iter()
            .map(|a| (a.signal.clone(), a))
            .collect();
        let empty = Feedback::default();
        // Signals with data in this round's last step, and families whose query failed: an
        // open anomaly in neither has lost its signal (see `close_absent`).
        let mut current: HashSet<String> = HashSet::new();
        let mut failed: Vec<&signals::SignalFamily> = Vec::new();
        let mut sample_times: HashMap<String, gaps::SampleTimes> = HashMap::new();
        for fam in &families {
            let earliest = first_seen
                .get(fam.base_metric())
                .copied()
                .unwrap_or(from)
                .max(from);
            let step = step_for(now_ms - earliest);
            let start = now_ms - (now_ms - earliest) / step * step;
            let result = match crate::promql::range(
                &self.store,
                &self.limits,
                &fam.query(""),
                start,
                now_ms,
                step,
            )
            .await
            {
                Ok(r) => r,
                Err(e) => {
                    report.failed_queries += 1;
                    failed.push(fam);
                    tracing::warn!(query = %fam.query(""), error = %e, "analysis: a signal query failed; its signals are skipped this round");
                    continue;
                }
            };
            // Sample times of the last steps' rate windows, to judge throughput on the part of
            // the window the samples cover (`gaps`).
            let times = if matches!(fam.template, signals::Template::Rate { .. }) {
                let metric = fam.base_metric().to_string();
                if !sample_times.contains_key(&metric) {
                    let from = now_ms - step - 2 * signals::RATE_WINDOW_MS;
                    let raw = self
                        .store
                        .raw_samples(&gaps::metric_selector(&metric), from, now_ms, usize::MAX)
                        .await?;
                    sample_times.insert(metric.clone(), gaps::SampleTimes::from_raw(&raw));
                }
                sample_times.get(&metric)
            } else {
                None
            };
            for s in result {
                let labels: BTreeMap<String, String> = s
                    .labels
                    .iter()
                    .filter(|(k, _)| *k != query::value::METRIC_NAME)
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                let key = SeriesKey::new(
                    fam.base_metric(),
                    model::Labels::from_pairs(labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
                );
                if self.exclude.iter().any(|sel| sel.matches(&key)) {
                    continue;
                }
                let signal = fam.query(&signals::matchers(&labels));
                let mut points: Vec<Point> = s
                    .points
                    .iter()
                    .map(|&(t, v)| Point { t: t / 1000, v })
                    .collect();
                let mut dropped = false;
                if let Some(times) = times {
                    // The last two steps (what a finding must cover) as if their windows had
                    // no holes; a step with too little data is left out.
                    let n = points.len();
                    for (p, &(t_ms, _)) in
                        points.iter_mut().zip(&s.points).skip(n.saturating_sub(2))
                    {
                        if t_ms < now_ms - step {
                            continue;
                        }
                        match times.corrected_rate(&labels, signals::RATE_WINDOW_MS, t_ms, p.v) {
                            Some(v) => p.v = v,
                            None => {
                                p.v = f64::NAN;
                                dropped = true;
                            }
                        }
                    }
                }
                report.signals += 1;
                let fb = feedback.get(&signal).unwrap_or(&empty);
                let current_from = (now_ms - step) / 1000;
                if dropped {
                    // A last step with too little data to judge (and a finding must cover
                    // both): neither a finding, nor a recovery, nor an absence this round.
                    current.insert(signal.clone());
                    report.gaps += 1;
                    continue;
                }
                let found = evaluate::evaluate(&points, fam.kind, fb, current_from)
                    .filter(|v| v.severity >= self.min_severity);
                let latest = points
                    .last()
                    .filter(|p| p.t >= current_from)
                    .map_or(f64::NAN, |p| p.v);
                if latest.is_nan() {
                    // No data in the last step: not a recovery, an absence (closed below once
                    // it has lasted `ABSENT_INTERVALS`).
                    continue;
                }
                current.insert(signal.clone());
                let outcome = match (found, open.get(&signal)) {
                    (Some(v), _) => {
                        let v = evaluate::non_negative_band(v, fam.kind);
                        let o = observation(&signal, &fam.kind_name(), &labels, &v, now_ms);
                        Some(self.store.observe_anomaly(&o).await?)
                    }
                    (None, Some(a))
                        if evaluate::still_outside(
                            latest,
                            a.observed,
                            a.expected_low,
                            a.expected_high,
                        ) =>
                    {
                        Some(self.store.observe_anomaly(&extension(a, now_ms)).await?)
                    }
                    (None, Some(_)) => {
                        if self.store.close_anomaly(&signal, now_ms).await?.is_some() {
                            report.closed += 1;
                        }
                        None
                    }
                    (None, None) => None,
                };
                match outcome {
                    Some(Observed::Opened(id)) => {
                        report.opened += 1;
                        tracing::info!(id, %signal, "anomaly opened");
                    }
                    Some(Observed::Extended(_)) => report.extended += 1,
                    None => {}
                }
            }
        }
        report.closed += self
            .close_absent(open.values(), &families, &current, &failed, now_ms)
            .await?;
        let d = drift::DriftJob { jobs: self, now_ms };
        let drift = d.run(&pairs).await?;
        report.drift_checks = drift.checks;
        report.opened += drift.opened;
        report.closed += drift.closed;
        report.failed_queries += drift.failed_queries;
        report.open_after = self.store.open_anomalies().await?.len();
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// Closes the open anomalies whose signal has had no data for [`ABSENT_INTERVALS`] rounds
    /// (the series stopped being reported: a target removed, a job renamed, an exporter gone),
    /// saying so in the explanation; otherwise they would stay open forever, since nothing
    /// can show them back inside their band. Only anomalies of a signal this job names (one
    /// of this round's families, with the anomaly's labels) are judged: drift anomalies are the
    /// drift job's, and a row written by other means (a test's seed, an older naming) is not
    /// this job's to close. Signals of a family whose query failed this round are not judged
    /// either. Returns how many it closed.
    async fn close_absent(
        &self,
        open: impl Iterator<Item = &Anomaly>,
        families: &[signals::SignalFamily],
        current: &HashSet<String>,
        failed: &[&signals::SignalFamily],
        now_ms: i64,
    ) -> Result<usize, store::StoreError> {
        let interval = self.cfg.interval.as_millis().max(1) as i64;
        let mut closed = 0;
        for a in open {
            let names = |f: &signals::SignalFamily| {
                f.kind_name() == a.kind && f.query(&signals::matchers(&a.labels)) == a.signal
            };
            if current.contains(&a.signal) || !families.iter().any(names) {
                continue;
            }
            let unjudged = failed.iter().any(|f| names(f));
            let absent_ms = now_ms - a.last_seen_ms;
            if unjudged || absent_ms < ABSENT_INTERVALS * interval {
                continue;
            }
            let reason = absent_reason(absent_ms, interval, a.last_seen_ms);
            if self
                .store
                .close_absent_anomaly(&a.signal, &reason)
                .await?
                .is_some()
            {
                closed += 1;
                tracing::info!(id = a.id, signal = %a.signal, %reason, "anomaly closed: its signal is absent");
            }
        }
        Ok(closed)
    }

    /// Feedback per signal: windows of past anomalies left out of training, then what people
    /// said (expected windows win over exclusions; false alarms widen the band).
    async fn feedback(&self, from_ms: i64) -> Result<HashMap<String, Feedback>, store::StoreError> {
        let mut out: HashMap<String, Feedback> = HashMap::new();
        for (signal, start, end) in self.store.past_anomaly_windows(from_ms).await? {
            out.entry(signal).or_default().exclude(Window {
                start: start / 1000,
                end: end / 1000,
            });
        }
        for w in self.store.feedback_windows().await? {
            let window = Window {
                start: w.from_ms / 1000,
                end: w.to_ms / 1000,
            };
            let fb = out.entry(w.signal).or_default();
            match w.kind {
                FeedbackKind::Expected => fb.mark_expected(window),
                FeedbackKind::FalseAlarm => fb.mark_false_alarm(&Verdict {
                    start: window.start,
                    end: window.end,
                    observed: 0.0,
                    expected_low: 0.0,
                    expected_high: 0.0,
                    score: 0.0,
                    severity: Severity::Info,
                    detector: "feedback",
                    sentence: String::new(),
                }),
            }
        }
        Ok(out)
    }
}

/// Rounds without data after which an open anomaly's signal counts as gone: more than one, so
/// a scrape that failed once or a slow write does not close (and then reopen) an anomaly.
pub const ABSENT_INTERVALS: i64 = 3;

/// "signal absent for 3 intervals (3 min), last seen 14:07 UTC".
pub fn absent_reason(absent_ms: i64, interval_ms: i64, last_seen_ms: i64) -> String {
    let n = absent_ms / interval_ms.max(1);
    let last = chrono::DateTime::from_timestamp_millis(last_seen_ms)
        .map(|t| t.format("%H:%M UTC").to_string())
        .unwrap_or_default();
    format!(
        "signal absent for {n} intervals ({}), last seen {last}",
        humantime::format_duration(Duration::from_secs((absent_ms / 1000).max(0) as u64))
    )
}

fn observation(
    signal: &str,
    kind: &str,
    labels: &BTreeMap<String, String>,
    v: &Verdict,
    now_ms: i64,
) -> AnomalyObservation {
    AnomalyObservation {
        signal: signal.to_string(),
        kind: kind.to_string(),
        labels: labels.clone(),
        node: signals::node_of(labels),
        detector: v.detector.to_string(),
        severity: v.severity.to_string(),
        score: v.score,
        started_at_ms: v.start * 1000,
        seen_at_ms: now_ms,
        observed: v.observed,
        expected_low: v.expected_low,
        expected_high: v.expected_high,
        explanation: v.sentence.clone(),
    }
}

/// An open anomaly seen again without a new verdict: only `last_seen` moves.
fn extension(a: &Anomaly, now_ms: i64) -> AnomalyObservation {
    AnomalyObservation {
        signal: a.signal.clone(),
        kind: a.kind.clone(),
        labels: a.labels.clone(),
        node: a.node.clone(),
        detector: a.detector.clone(),
        severity: a.severity.clone(),
        score: a.score,
        started_at_ms: a.started_at_ms,
        seen_at_ms: now_ms,
        observed: a.observed,
        expected_low: a.expected_low,
        expected_high: a.expected_high,
        explanation: a.explanation.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_step_keeps_about_a_day_of_minutes() {
        assert_eq!(step_for(3_600_000), 60_000);
        assert_eq!(step_for(86_400_000), 60_000);
        assert_eq!(step_for(86_400_000 + 300_000), 60_000);
        assert_eq!(step_for(2 * 86_400_000 - 1), 60_000);
        assert_eq!(step_for(7 * 86_400_000), 7 * 60_000);
    }
}
