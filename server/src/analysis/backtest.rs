//! `pipewatch backtest`: the detection job's signals and detectors replayed over stored
//! history, to see what they would have flagged (tuning a threshold, checking an incident was
//! visible, judging false alarms before turning paging on).
//!
//! The same signal families (`signals::choose`) and the same per-signal evaluation
//! (`evaluate::evaluate`, with the job's minimum change, direction and persistence rules) run
//! every `every` from `from` to `to`, each time on the history the job would have had then
//! (`analysis.history` back), with the windows of the replay's earlier and open episodes left
//! out of training as the job leaves out past anomalies; findings are merged into episodes with
//! the job's hysteresis (an episode stays open while the signal stays outside the band it left).
//! Stored feedback and stored anomalies are not applied (the replay asks what the detectors
//! find on their own), and the gap correction of throughput at the newest steps is not
//! replayed: history has no newest steps.

use super::evaluate::{self, still_outside};
use super::signals;
use super::{step_for, AnalysisJobs};
use analysis::detect::{Feedback, Point, Window};
use analysis::{Severity, SignalKind};
use model::{MetricType, Selector, SeriesKey};

/// One stretch of time a signal would have had an open anomaly.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    /// Unix seconds: the first finding's start.
    pub start: i64,
    /// Unix seconds: the evaluation that found it back inside its band; `None` while it still
    /// was at `to`.
    pub end: Option<i64>,
    pub severity: Severity,
    pub score: f64,
    pub detector: &'static str,
    /// The first finding's sentence.
    pub sentence: String,
}

/// One signal's episodes.
#[derive(Debug, Clone)]
pub struct SignalEpisodes {
    pub signal: String,
    pub kind: String,
    pub node: Option<String>,
    pub episodes: Vec<Episode>,
}

/// Replays one signal's points (Unix seconds, ascending): evaluations at `from`, `from +
/// every`, ... up to `to`, each on the points of the `history` seconds before it.
pub fn episodes(
    points: &[Point],
    kind: SignalKind,
    (from, to, every): (i64, i64, i64),
    step: i64,
    history: i64,
    min_severity: Severity,
) -> Vec<Episode> {
    let mut out: Vec<Episode> = Vec::new();
    // The open episode and the band of the finding that opened it.
    let mut open: Option<(Episode, f64, f64, f64)> = None;
    let mut t = from;
    while t <= to {
        let lo = points.partition_point(|p| p.t < t - history);
        let hi = points.partition_point(|p| p.t <= t);
        let window = &points[lo..hi];
        let current_from = t - step;
        let latest = window
            .last()
            .filter(|p| p.t >= current_from)
            .map_or(f64::NAN, |p| p.v);
        // As in the job, windows of earlier and open anomalies are left out of training.
        let mut feedback = Feedback::default();
        for e in &out {
            feedback.exclude(Window {
                start: e.start,
                end: e.end.unwrap_or(t),
            });
        }
        if let Some((e, ..)) = &open {
            feedback.exclude(Window {
                start: e.start,
                end: t,
            });
        }
        let found = evaluate::evaluate(window, kind, &feedback, current_from)
            .map(|v| evaluate::non_negative_band(v, kind))
            .filter(|v| v.severity >= min_severity);
        open = match (found, open.take()) {
            // A finding that starts before the last episode ended is the same incident seen
            // again (the dip found by the spike detector, then the level shift around it):
            // that episode goes on instead of a second one overlapping it.
            (Some(v), None)
                if out
                    .last()
                    .and_then(|e| e.end)
                    .is_some_and(|end| v.start <= end) =>
            {
                let mut e = out.pop().expect("the last episode");
                e.end = None;
                e.severity = e.severity.max(v.severity);
                e.score = e.score.max(v.score);
                Some((e, v.observed, v.expected_low, v.expected_high))
            }
            (Some(v), None) => Some((
                Episode {
                    start: v.start,
                    end: None,
                    severity: v.severity,
                    score: v.score,
                    detector: v.detector,
                    sentence: v.sentence.clone(),
                },
                v.observed,
                v.expected_low,
                v.expected_high,
            )),
            (Some(v), Some((mut e, o, l, h))) => {
                e.severity = e.severity.max(v.severity);
                e.score = e.score.max(v.score);
                Some((e, o, l, h))
            }
            (None, Some((e, o, l, h))) if latest.is_nan() || still_outside(latest, o, l, h) => {
                Some((e, o, l, h))
            }
            (None, Some((mut e, ..))) => {
                e.end = Some(t);
                out.push(e);
                None
            }
            (None, None) => None,
        };
        t += every;
    }
    if let Some((e, ..)) = open {
        out.push(e);
    }
    out
}

impl AnalysisJobs {
    /// Replays the detectors over the signals of the series `selector` matches, from `from_ms`
    /// to `to_ms`, evaluating every `every_ms`. Signals without an episode are left out.
    pub async fn backtest(
        &self,
        selector: &Selector,
        from_ms: i64,
        to_ms: i64,
        every_ms: i64,
    ) -> Result<Vec<SignalEpisodes>, store::StoreError> {
        let history_ms = self.cfg.history.as_millis() as i64;
        let start_ms = from_ms - history_ms;
        let series = self
            .store
            .find_series_in(selector, Some((start_ms, to_ms)))
            .await?;
        let pairs: Vec<(SeriesKey, MetricType)> =
            series.into_iter().map(|s| (s.key, s.metric_type)).collect();
        // A family's query reads every series of its metric; a signal counts when one of the
        // selected series is among the ones it is made of.
        let chosen: Vec<&SeriesKey> = pairs.iter().map(|(k, _)| k).collect();
        let mut out = Vec::new();
        for fam in signals::choose(&pairs, &self.exclude) {
            let step = step_for(history_ms);
            let start = start_ms - start_ms.rem_euclid(step);
            let result = crate::promql::range(
                &self.store,
                &self.limits,
                &fam.query(""),
                start,
                to_ms,
                step,
            )
            .await
            .map_err(|e| store::StoreError::InvalidQuery(format!("{}: {e}", fam.query(""))))?;
            for s in result {
                let labels = signals::signal_labels(&s.labels);
                let selected = chosen.iter().any(|k| {
                    k.labels
                        .iter()
                        .filter(|(n, _)| *n != "le")
                        .all(|(n, v)| labels.get(n).is_some_and(|x| x == v))
                });
                if !selected {
                    continue;
                }
                let points: Vec<Point> = s
                    .points
                    .iter()
                    .map(|&(t, v)| Point { t: t / 1000, v })
                    .collect();
                let found = episodes(
                    &points,
                    fam.kind,
                    (from_ms / 1000, to_ms / 1000, (every_ms / 1000).max(1)),
                    step / 1000,
                    history_ms / 1000,
                    self.min_severity,
                );
                if !found.is_empty() {
                    out.push(SignalEpisodes {
                        signal: fam.query(&signals::matchers(&labels)),
                        kind: fam.kind_name(),
                        node: signals::node_of(&labels),
                        episodes: found,
                    });
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000 - 1_800_000_000 % 86_400;

    /// A steady rate of ~100/s with a little noise and a stall from minute 600 to 660.
    fn stalled() -> Vec<Point> {
        (0..900)
            .map(|i| Point {
                t: T0 + i * 60,
                v: if (600..660).contains(&i) {
                    0.0
                } else {
                    100.0 + ((i * 7919) % 11) as f64 * 0.3
                },
            })
            .collect()
    }

    #[test]
    fn a_stall_replays_as_one_episode_that_ends_when_the_rate_returns() {
        let s = stalled();
        let found = episodes(
            &s,
            SignalKind::Throughput,
            (T0 + 300 * 60, T0 + 899 * 60, 300),
            60,
            86_400,
            Severity::Info,
        );
        assert_eq!(found.len(), 1, "{found:#?}");
        let e = &found[0];
        assert!((T0 + 600 * 60..=T0 + 610 * 60).contains(&e.start), "{e:?}");
        // Closed within half an hour of the rate's return (the level-shift detector still
        // sees the step back up for part of its window, as the live job would).
        let end = e.end.expect("closed");
        assert!((T0 + 660 * 60..=T0 + 690 * 60).contains(&end), "{e:?}");
        assert!(e.severity >= Severity::Warning, "{e:?}");
        assert!(e.sentence.starts_with("throughput 0"), "{}", e.sentence);
    }

    #[test]
    fn a_clean_series_replays_to_nothing() {
        let clean: Vec<Point> = stalled()
            .into_iter()
            .map(|p| Point {
                t: p.t,
                v: if p.v == 0.0 { 100.0 } else { p.v },
            })
            .collect();
        let found = episodes(
            &clean,
            SignalKind::Throughput,
            (T0 + 300 * 60, T0 + 899 * 60, 300),
            60,
            86_400,
            Severity::Info,
        );
        assert!(found.is_empty(), "{found:#?}");
    }
}
