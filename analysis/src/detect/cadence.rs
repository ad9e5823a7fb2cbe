//! Freshness against the learned cadence: is a job (or a table's update) overdue, given how
//! often it usually runs?
//!
//! The input is a freshness signal, the age of the last success at each step (`time() -
//! last_success_timestamp`): a sawtooth that falls to ~0 at every run. The run times are read
//! back from it (`t - age`), the usual interval between runs is learned robustly (median and
//! MAD of the intervals, so one late or doubled run does not move it), and the last point is
//! judged: an age past the usual interval plus a tolerance is overdue. This is the check
//! Elementary's and Monte Carlo's freshness monitors make ("no update for 3 h; it usually
//! updates hourly"); the seasonal band of the other detectors cannot make it on a sawtooth,
//! whose every tooth looks like a level shift.
//!
//! Intervals that end inside an excluded window (a past incident) are left out of training;
//! each false alarm widens the tolerance like the other detectors' bands.

use super::{median, robust_sigma, score_from_z, Context, Detector, Point};
use crate::verdict::{SignalKind, Verdict, VerdictDraft};

/// Batch detector for overdue runs.
#[derive(Debug, Clone)]
pub struct Cadence {
    /// Intervals needed before the cadence counts as learned.
    pub min_intervals: usize,
    /// Robust sigmas of the intervals allowed past the usual interval.
    pub sigmas: f64,
    /// The tolerance is at least this share of the usual interval (a job that runs exactly
    /// every hour has a MAD of zero; ten minutes late is not yet an incident).
    pub min_share: f64,
}

impl Default for Cadence {
    fn default() -> Self {
        Cadence {
            min_intervals: 4,
            sigmas: 5.0,
            min_share: 0.5,
        }
    }
}

/// The run times a freshness series implies: `t - age` at each point, one per run (points of
/// the same run agree to within a step; a run is new when it is later than the previous one by
/// more than that).
pub fn runs(series: &[Point]) -> Vec<i64> {
    let step = super::median_step(series);
    let mut out: Vec<i64> = Vec::new();
    for p in series {
        if !p.v.is_finite() || p.v < 0.0 {
            continue;
        }
        let run = p.t - p.v.round() as i64;
        match out.last() {
            Some(&last) if run <= last + step => {}
            _ => out.push(run),
        }
    }
    out
}

impl Detector for Cadence {
    fn name(&self) -> &'static str {
        "cadence"
    }

    fn detect(&self, series: &[Point], ctx: &Context<'_>) -> Vec<Verdict> {
        if ctx.kind != SignalKind::Freshness || series.is_empty() {
            return Vec::new();
        }
        let last = series[series.len() - 1];
        if ctx.evaluate_from.is_some_and(|from| last.t < from) || !last.v.is_finite() {
            return Vec::new();
        }
        let runs = runs(series);
        let intervals: Vec<f64> = runs
            .windows(2)
            .filter(|w| ctx.feedback.trains(w[1]))
            .map(|w| (w[1] - w[0]) as f64)
            .collect();
        if intervals.len() < self.min_intervals {
            return Vec::new();
        }
        let usual = median(&intervals);
        let sigma = robust_sigma(&intervals);
        let factor = ctx.feedback.band_factor();
        let tolerance = (self.sigmas * sigma)
            .max(self.min_share * usual)
            .max(ctx.config.min_abs_change)
            * factor;
        let limit = usual + tolerance;
        let age = last.v;
        if age <= limit {
            return Vec::new();
        }
        let last_run = last.t - age.round() as i64;
        let overdue_since = last_run + limit.round() as i64;
        if ctx.feedback.is_expected(overdue_since) {
            return Vec::new();
        }
        // How far past the usual interval, in units of the tolerance's sigma: the limit itself
        // sits at `sigmas`.
        let z = (age - usual) / (tolerance / self.sigmas).max(1.0);
        let score = score_from_z(z);
        if score < ctx.config.min_score {
            return Vec::new();
        }
        vec![VerdictDraft {
            start: overdue_since.min(last.t),
            end: last.t,
            peak_at: last.t,
            observed: age,
            expected_low: 0.0,
            expected_high: limit,
            score,
            detector: "cadence",
            note: Some(format!(
                "usually every {}; last success {} ago",
                SignalKind::Freshness.format_value(usual),
                SignalKind::Freshness.format_value(age),
            )),
        }
        .finish(SignalKind::Freshness)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{DetectConfig, Feedback};

    const T0: i64 = 1_800_000_000 - 1_800_000_000 % 86_400;

    /// The age of the last success, at a one-minute step, for runs at `runs` (Unix seconds),
    /// from the first run to `end`.
    fn ages(runs: &[i64], end: i64) -> Vec<Point> {
        (runs[0]..=end)
            .step_by(60)
            .map(|t| {
                let last = runs.iter().rev().find(|r| **r <= t).unwrap();
                Point {
                    t,
                    v: (t - last) as f64,
                }
            })
            .collect()
    }

    fn judge(series: &[Point], feedback: &Feedback) -> Option<Verdict> {
        let config = DetectConfig {
            min_abs_change: 60.0,
            ..DetectConfig::default()
        };
        let ctx = Context {
            kind: SignalKind::Freshness,
            feedback,
            config: &config,
            evaluate_from: Some(series[series.len() - 1].t - 120),
        };
        Cadence::default().detect(series, &ctx).into_iter().next()
    }

    /// Hourly runs with a few minutes of jitter, as a scheduler gives them.
    fn hourly(n: i64) -> Vec<i64> {
        (0..n)
            .map(|i| T0 + i * 3600 + ((i * 7919) % 7) * 60)
            .collect()
    }

    #[test]
    fn runs_are_read_back_from_the_sawtooth() {
        let r = hourly(6);
        assert_eq!(runs(&ages(&r, r[5] + 600)), r);
    }

    #[test]
    fn a_job_on_time_is_quiet_at_every_step_of_its_cycle() {
        let r = hourly(30);
        let all = ages(&r, r[29] + 3540);
        for end in (r[10]..=r[29] + 3540).step_by(60) {
            let upto: Vec<Point> = all.iter().copied().filter(|p| p.t <= end).collect();
            assert_eq!(judge(&upto, &Feedback::default()), None, "at {end}");
        }
    }

    #[test]
    fn a_missed_run_is_overdue_with_words_and_a_band() {
        let r = hourly(30);
        // No run after the last: 2 h 10 min later the job is clearly overdue.
        let s = ages(&r, r[29] + 7800);
        let v = judge(&s, &Feedback::default()).expect("overdue");
        assert_eq!(v.detector, "cadence");
        assert!(v.observed > v.expected_high, "{v:?}");
        assert!(
            v.expected_high >= 3600.0 && v.expected_high <= 2.0 * 3600.0,
            "{v:?}"
        );
        assert!(v.severity >= crate::Severity::Warning, "{v:?}");
        assert!(
            v.sentence
                .starts_with("time since last update 2.2 h, expected 0–")
                && v.sentence.contains("(usually every 6")
                && v.sentence.ends_with(" min; last success 2.2 h ago)"),
            "{}",
            v.sentence
        );
        // Overdue since the last run plus the limit.
        assert_eq!(v.start, r[29] + v.expected_high.round() as i64);
    }

    #[test]
    fn a_daily_job_is_judged_on_its_own_cadence_and_few_runs_teach_nothing() {
        let daily: Vec<i64> = (0..8).map(|i| T0 + i * 86_400 + 2 * 3600).collect();
        // Twenty hours after the last daily run: not late for a daily job.
        let on_time = ages(&daily, daily[7] + 20 * 3600);
        assert_eq!(judge(&on_time, &Feedback::default()), None);
        let late = ages(&daily, daily[7] + 40 * 3600);
        assert!(judge(&late, &Feedback::default()).is_some());
        // Three intervals are not a cadence yet.
        let young = ages(&daily[..4], daily[3] + 60 * 3600);
        assert_eq!(judge(&young, &Feedback::default()), None);
    }

    #[test]
    fn false_alarms_widen_the_tolerance() {
        let r = hourly(30);
        let s = ages(&r, r[29] + 5700);
        let v = judge(&s, &Feedback::default()).expect("overdue at 95 min");
        let mut fb = Feedback::default();
        for _ in 0..4 {
            fb.mark_false_alarm(&Verdict {
                start: 0,
                end: 1,
                ..v.clone()
            });
        }
        assert_eq!(judge(&s, &fb), None);
    }
}
