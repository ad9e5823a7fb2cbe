//! One evaluation of one signal: its history (from the PromQL engine) through the batch
//! detectors of `analysis::detect`, reduced to at most one current finding.
//!
//! What the job adds around the detectors, and why:
//! * a **minimum change per signal kind**, relative to the series' typical value: the demo's
//!   (and many real) series are so smooth that a 1 % wobble is many robust sigmas, yet nobody
//!   wants a page for it; a stall, a fivefold drop, 6x latency or 40x errors clear it easily;
//! * a **direction** per kind: latency, error ratio and freshness only matter going up;
//! * **freshness against its cadence**: a freshness signal whose runs can be read back from it
//!   (a sawtooth) is judged by the cadence detector alone (overdue past the usual interval
//!   plus a tolerance), the others otherwise;
//! * only verdicts that reach the **last steps** of the history count: older ones were current
//!   at earlier evaluations (and recorded then);
//! * **persistence** for rate-derived signals: two steps, not one (see [`evaluate`]);
//! * **hysteresis**: an open anomaly is not closed just because no detector fires on this
//!   evaluation (a spike detector stops calling a stall a spike after a few points, and the
//!   level-shift detector needs a window of points after the change); it closes when the
//!   signal is back inside the band it left ([`still_outside`]).
//!
//! The slow-trend detector is not run by the job: a trend spans the whole history, so it would
//! keep one anomaly open for as long as the trend lasts; it is for backtests.

use analysis::detect::{
    median, Cadence, Context, DetectConfig, Detector, Feedback, LevelShift, Point,
    SeasonalBaseline, SpikeDip,
};
use analysis::{SignalKind, Verdict};

/// Fewer points than this and the signal is not evaluated yet (an hour at the 1-minute step).
pub const MIN_POINTS: usize = 60;

/// The smallest deviation worth flagging for a series of this kind and typical size.
pub fn min_abs_change(kind: SignalKind, typical: f64) -> f64 {
    let t = typical.abs();
    match kind {
        SignalKind::Throughput | SignalKind::Volume => 0.25 * t,
        // A p99 over a few hundred observations per window is coarse: it moves a whole
        // bucket when one observation crosses a bound, so only a doubling counts.
        SignalKind::LatencyQuantile(q) if q >= 99 => t.max(0.005),
        SignalKind::LatencyQuantile(_) | SignalKind::RunDuration => (0.5 * t).max(0.005),
        // Half a percentage point at least: 0.01 % -> 0.03 % errors is not an incident.
        SignalKind::ErrorRatio => t.max(0.005),
        SignalKind::Freshness => t.max(60.0),
        SignalKind::DqValue => (0.25 * t).max(1e-9),
        // A queue that doubles (and by at least a few items): the demo's queues wander 15 %
        // around a seasonal level; a stalled consumer's queue grows by its whole input rate.
        SignalKind::Backlog => t.max(5.0),
    }
}

/// Whether only increases matter for this kind.
pub fn up_only(kind: SignalKind) -> bool {
    matches!(
        kind,
        SignalKind::LatencyQuantile(_)
            | SignalKind::ErrorRatio
            | SignalKind::Freshness
            | SignalKind::RunDuration
            | SignalKind::Backlog
    )
}

fn is_up(v: &Verdict) -> bool {
    v.observed > v.expected_high
}

/// The most surprising current verdict for `series` (times in Unix seconds, ascending), if
/// any: one that ends at or after `current_from`.
pub fn evaluate(
    series: &[Point],
    kind: SignalKind,
    feedback: &Feedback,
    current_from: i64,
) -> Option<Verdict> {
    let series: Vec<Point> = series.iter().copied().filter(|p| p.v.is_finite()).collect();
    if series.len() < MIN_POINTS {
        return None;
    }
    let values: Vec<f64> = series.iter().map(|p| p.v).collect();
    let typical = median(&values);
    let config = DetectConfig {
        min_abs_change: min_abs_change(kind, typical),
        ..DetectConfig::default()
    };
    let ctx = Context {
        kind,
        feedback,
        config: &config,
        evaluate_from: Some(current_from),
    };
    // A freshness signal with a learned cadence (a sawtooth of runs) is judged on that
    // cadence alone: its every tooth would look like a level shift to the others.
    let cadence = Cadence::default();
    let learned = kind == SignalKind::Freshness
        && analysis::detect::cadence::runs(&series).len() > cadence.min_intervals;
    let general: [&dyn Detector; 3] = [
        &SeasonalBaseline,
        &LevelShift::default(),
        &SpikeDip::default(),
    ];
    let detectors: &[&dyn Detector] = if learned { &[&cadence] } else { &general };
    // A finding on a rate-derived signal must also cover the point before the last (as a
    // Prometheus alert's `for: 2m` would): `rate` over a window that reaches back into a gap in
    // the data (a restart, a scrape outage, the seam of the demo's backfill) reads low for one
    // step, and a p99 from a few hundred observations jumps a bucket now and then; neither is
    // the pipeline's doing. Gauges (freshness, data-quality values) count at once.
    let persist_from = match kind {
        SignalKind::Throughput
        | SignalKind::Volume
        | SignalKind::LatencyQuantile(_)
        | SignalKind::ErrorRatio => series[series.len() - 2].t,
        _ => i64::MAX,
    };
    detectors
        .iter()
        .flat_map(|d| d.detect(&series, &ctx))
        .filter(|v| {
            v.end >= current_from && v.start <= persist_from && (!up_only(kind) || is_up(v))
        })
        .max_by(|a, b| a.score.total_cmp(&b.score))
}

/// The verdict with its band cut at zero: every signal the job watches (rates, ratios,
/// durations, ages) is non-negative, and "expected -0.3–0.7 %" reads as a bug to a person.
/// The sentence is written again with the same words (its "for <slot>" now names the span's
/// last point, where the detector had the peak).
pub fn non_negative_band(v: Verdict, kind: SignalKind) -> Verdict {
    if v.expected_low >= 0.0 || kind == SignalKind::DqValue {
        return v;
    }
    let note = v
        .sentence
        .rsplit_once(" (")
        .and_then(|(_, n)| n.strip_suffix(')'))
        .map(str::to_string);
    analysis::verdict::VerdictDraft {
        start: v.start,
        end: v.end,
        peak_at: v.end,
        observed: v.observed,
        expected_low: 0.0,
        expected_high: v.expected_high,
        score: v.score,
        detector: v.detector,
        note,
    }
    .finish(kind)
}

/// Whether `latest` is still outside an open anomaly's band on the side it left it.
pub fn still_outside(latest: f64, observed: f64, low: f64, high: f64) -> bool {
    if !latest.is_finite() {
        return false;
    }
    if observed > high {
        latest > high
    } else if observed < low {
        latest < low
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    const STEP: i64 = 60;
    const T0: i64 = 1_800_000_000 - 1_800_000_000 % 86_400;

    /// A day of a smooth daily-seasonal rate like the demo's (0.5x to 1.5x), then `tail`.
    fn day(rate: f64, minutes: i64, tail: impl Fn(i64, f64) -> f64) -> Vec<Point> {
        (0..minutes)
            .map(|i| {
                let t = T0 + i * STEP;
                let season =
                    1.0 + 0.5 * (2.0 * PI * ((t % 86_400) as f64 / 86_400.0 - 0.375)).sin();
                Point {
                    t,
                    v: tail(i, rate * season),
                }
            })
            .collect()
    }

    fn last_from(s: &[Point]) -> i64 {
        s[s.len() - 1].t - 2 * STEP
    }

    #[test]
    fn a_clean_smooth_seasonal_day_raises_nothing() {
        let fb = Feedback::default();
        for end in [600, 900, 1200, 1440] {
            let s = day(1150.0, end, |_, v| v);
            assert_eq!(
                evaluate(&s, SignalKind::Throughput, &fb, last_from(&s)),
                None,
                "ending at minute {end}"
            );
        }
    }

    #[test]
    fn a_stall_and_a_fifth_of_the_volume_are_found_within_two_steps() {
        let fb = Feedback::default();
        // The rate over 2 minutes falls over 2 steps after the fault: one step in it is half
        // way, two steps in it is at the new level; at the quietest hour (03:00 UTC).
        let start = 180;
        for (factor, name) in [(0.0, "stall"), (0.2, "volume drop")] {
            let s = day(1150.0, start + 2, |i, v| {
                if i >= start {
                    let k = ((i - start + 1) as f64 / 2.0).min(1.0);
                    v * (1.0 - k * (1.0 - factor))
                } else {
                    v
                }
            });
            let v = evaluate(&s, SignalKind::Throughput, &fb, last_from(&s))
                .unwrap_or_else(|| panic!("{name} not found"));
            assert!(v.observed < v.expected_low, "{name}: {v:?}");
            assert!(v.severity >= analysis::Severity::Warning, "{name}: {v:?}");
        }
    }

    #[test]
    fn one_low_throughput_point_after_a_gap_is_not_an_anomaly() {
        let fb = Feedback::default();
        let s = day(1150.0, 182, |i, v| if i == 181 { v * 0.5 } else { v });
        assert_eq!(
            evaluate(&s, SignalKind::Throughput, &fb, last_from(&s)),
            None
        );
    }

    #[test]
    fn latency_only_counts_going_up() {
        let fb = Feedback::default();
        let flat = |i: i64, mult: f64| 0.2 * (1.0 + 0.002 * ((i * 7919) % 13) as f64) * mult;
        let up: Vec<Point> = (0..300)
            .map(|i| Point {
                t: T0 + i * STEP,
                v: flat(i, if i >= 298 { 3.0 } else { 1.0 }),
            })
            .collect();
        let v = evaluate(&up, SignalKind::LatencyQuantile(95), &fb, last_from(&up)).unwrap();
        assert!(v.sentence.starts_with("p95 latency"), "{}", v.sentence);
        let down: Vec<Point> = (0..300)
            .map(|i| Point {
                t: T0 + i * STEP,
                v: flat(i, if i >= 298 { 0.2 } else { 1.0 }),
            })
            .collect();
        assert_eq!(
            evaluate(
                &down,
                SignalKind::LatencyQuantile(95),
                &fb,
                last_from(&down)
            ),
            None
        );
    }

    #[test]
    fn too_little_history_is_not_evaluated() {
        let s = day(
            10.0,
            MIN_POINTS as i64 - 1,
            |i, v| if i > 50 { 0.0 } else { v },
        );
        assert_eq!(
            evaluate(&s, SignalKind::Throughput, &Feedback::default(), 0),
            None
        );
    }

    #[test]
    fn a_band_below_zero_is_cut_at_zero_in_numbers_and_words() {
        let v = analysis::verdict::VerdictDraft {
            start: T0,
            end: T0 + 60,
            peak_at: T0 + 60,
            observed: 0.08,
            expected_low: -0.003,
            expected_high: 0.007,
            score: 1.0,
            detector: "spike",
            note: Some("spike".into()),
        }
        .finish(SignalKind::ErrorRatio);
        assert!(v.sentence.contains("-0.3"), "{}", v.sentence);
        let cut = non_negative_band(v, SignalKind::ErrorRatio);
        assert_eq!(cut.expected_low, 0.0);
        assert!(
            cut.sentence
                .starts_with("error ratio 8 %, expected 0–0.7 % for ")
                && cut.sentence.ends_with(" (spike)"),
            "{}",
            cut.sentence
        );
    }

    #[test]
    fn an_open_anomaly_stays_open_only_while_outside_the_side_it_left() {
        assert!(still_outside(0.0, 0.0, 500.0, 700.0));
        assert!(!still_outside(600.0, 0.0, 500.0, 700.0));
        assert!(!still_outside(900.0, 0.0, 500.0, 700.0));
        assert!(still_outside(2.0, 3.0, 0.1, 0.5));
        assert!(!still_outside(f64::NAN, 3.0, 0.1, 0.5));
    }
}
