//! Anomaly detectors: one module per method, all pure (series in, verdicts out) and
//! deterministic. Two ways in:
//!
//! * batch ([`Detector::detect`]): a stored series and its [`Context`] (signal kind, feedback,
//!   configuration) give [`Verdict`]s; this is what the detection jobs call;
//! * streaming ([`StreamingDetector::observe`]): one point at a time, one score per point; this
//!   is what the NAB harness drives, and it is built from the same models.
//!
//! Scores are tail probabilities mapped to [0, 1] by [`score_from_z`], so one threshold and the
//! severity cut-offs mean the same for every detector and every series.

pub mod cadence;
pub mod level_shift;
pub mod seasonal;
pub mod spike;
pub mod stream;
pub mod trend;

use crate::verdict::{SignalKind, Verdict};
use statrs::distribution::{ContinuousCDF, Normal};

pub use cadence::Cadence;
pub use level_shift::LevelShift;
pub use seasonal::SeasonalBaseline;
pub use spike::SpikeDip;
pub use stream::StreamingEnsemble;
pub use trend::SlowTrend;

/// One sample: Unix seconds and value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub t: i64,
    pub v: f64,
}

/// A closed time span in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

impl Window {
    pub fn contains(&self, t: i64) -> bool {
        self.start <= t && t <= self.end
    }
}

/// Settings shared by the batch detectors. The defaults are the ones the NAB harness and the
/// golden tests use; nothing is tuned per series.
#[derive(Debug, Clone)]
pub struct DetectConfig {
    /// Deviations smaller than this (in the series' own unit) are never flagged, however unusual:
    /// a 2 ms wobble on a 5 ms latency is not worth a page.
    pub min_abs_change: f64,
    /// Verdicts below this score are dropped.
    pub min_score: f64,
    /// Robust z beyond which a point leaves the expected band.
    pub band_z: f64,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            min_abs_change: 0.0,
            min_score: 0.5,
            // 5 robust sigmas: a Gaussian series crosses it once in ~1.7 million points, so a
            // clean series stays quiet; real data with heavier tails needs the feedback factor.
            band_z: 5.0,
        }
    }
}

/// What on-call engineers told us about a series; detectors read it on every run.
///
/// * windows marked **expected** join the baseline even if a detector would have left them out
///   as anomalous (a planned migration, a known holiday);
/// * windows in **excluded** (past anomalies, incidents, user-marked maintenance) are left out of
///   training, so a bad week does not teach the baseline that bad is normal;
/// * each **false alarm** widens this series' band, so the same deviation stops paging.
#[derive(Debug, Clone, Default)]
pub struct Feedback {
    pub expected: Vec<Window>,
    pub excluded: Vec<Window>,
    false_alarms: u32,
}

impl Feedback {
    /// An anomaly was expected: its window becomes normal training data.
    pub fn mark_expected(&mut self, w: Window) {
        self.excluded
            .retain(|x| !(x.start >= w.start && x.end <= w.end));
        self.expected.push(w);
    }

    /// Leave a window out of training (an incident, or a past anomaly the jobs recorded).
    pub fn exclude(&mut self, w: Window) {
        self.excluded.push(w);
    }

    /// The verdict was a false alarm: it joins the baseline and the band widens for this series.
    pub fn mark_false_alarm(&mut self, v: &Verdict) {
        self.mark_expected(Window {
            start: v.start,
            end: v.end,
        });
        self.false_alarms = self.false_alarms.saturating_add(1);
    }

    pub fn false_alarms(&self) -> u32 {
        self.false_alarms
    }

    /// Multiplies the band's width: each false alarm widens it by a quarter, up to 3 times the
    /// default, so a noisy series quietens but a real outage still gets through.
    pub fn band_factor(&self) -> f64 {
        (1.0 + 0.25 * f64::from(self.false_alarms)).min(3.0)
    }

    /// May this point train the baseline? Expected windows win over excluded ones.
    pub fn trains(&self, t: i64) -> bool {
        self.expected.iter().any(|w| w.contains(t)) || !self.excluded.iter().any(|w| w.contains(t))
    }

    /// Whether most of `points` may train a baseline: a level measured mostly inside an
    /// excluded window (an anomaly already found, an incident) is no baseline, and the way
    /// back from it is a recovery, not a shift or a spike.
    pub fn trains_most(&self, points: &[Point]) -> bool {
        2 * points.iter().filter(|p| self.trains(p.t)).count() >= points.len()
    }

    pub fn is_expected(&self, t: i64) -> bool {
        self.expected.iter().any(|w| w.contains(t))
    }
}

/// Everything a batch detector needs besides the series.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub kind: SignalKind,
    pub feedback: &'a Feedback,
    pub config: &'a DetectConfig,
    /// Only report verdicts that end at or after this time (the jobs' evaluation window);
    /// everything before is history to learn from.
    pub evaluate_from: Option<i64>,
}

/// A batch detector: a series (sorted by time) in, verdicts out.
pub trait Detector {
    fn name(&self) -> &'static str;
    fn detect(&self, series: &[Point], ctx: &Context<'_>) -> Vec<Verdict>;
}

/// A streaming detector: one point at a time, one anomaly score in [0, 1] per point, using only
/// the points seen so far.
pub trait StreamingDetector {
    fn observe(&mut self, t: i64, v: f64) -> f64;
}

/// Maps a robust z (deviation / robust sigma) to a score in [0, 1] through the two-sided normal
/// tail probability p: score = -log10(p) / 10, so z 3 -> 0.26, z 5 -> 0.62, z 6 -> 0.87.
pub fn score_from_z(z: f64) -> f64 {
    let z = z.abs();
    if !z.is_finite() {
        return if z.is_nan() { 0.0 } else { 1.0 };
    }
    let n = Normal::standard();
    // sf is accurate far into the tail, where 1 - cdf would round to 0.
    let p = (2.0 * n.sf(z)).max(1e-300);
    (-p.log10() / 10.0).clamp(0.0, 1.0)
}

/// Median of a slice (sorted copy); NaN for an empty slice.
pub fn median(xs: &[f64]) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    median_in_place(&mut v)
}

pub(crate) fn median_in_place(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    let m = *m;
    if v.len() % 2 == 1 {
        m
    } else {
        let lo = v[..mid].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo + m) / 2.0
    }
}

/// Robust standard deviation: 1.4826 x the median absolute deviation from the median.
pub fn robust_sigma(xs: &[f64]) -> f64 {
    let m = median(xs);
    let mut dev: Vec<f64> = xs
        .iter()
        .filter(|x| x.is_finite())
        .map(|x| (x - m).abs())
        .collect();
    1.4826 * median_in_place(&mut dev)
}

/// Median spacing of the timestamps, at least one second.
pub fn median_step(series: &[Point]) -> i64 {
    let diffs: Vec<f64> = series
        .windows(2)
        .map(|w| (w[1].t - w[0].t) as f64)
        .filter(|d| *d > 0.0)
        .collect();
    let m = median(&diffs);
    if m.is_finite() {
        (m as i64).max(1)
    } else {
        1
    }
}

/// The noise floor for robust z: a sigma of exactly zero (a constant series) would make any
/// change infinitely surprising; a tiny fraction of the typical magnitude keeps z finite.
pub(crate) fn sigma_floor(sigma: f64, typical: f64) -> f64 {
    let floor = 1e-3 * typical.abs() + 1e-9;
    if sigma.is_finite() {
        sigma.max(floor)
    } else {
        floor
    }
}

/// Groups flagged indices into runs of consecutive indices (gaps of up to `gap` allowed).
pub(crate) fn runs(flags: &[usize], gap: usize) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for &i in flags {
        match out.last_mut() {
            Some((_, end)) if i <= *end + gap + 1 => *end = i,
            _ => out.push((i, i)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_grows_with_z_and_stays_in_unit_interval() {
        let s: Vec<f64> = [0.0, 1.0, 3.0, 5.0, 6.0, 10.0, 40.0]
            .iter()
            .map(|z| score_from_z(*z))
            .collect();
        assert!(s.windows(2).all(|w| w[0] <= w[1]), "{s:?}");
        assert_eq!(s[0], 0.0);
        assert!((s[4] - 0.87).abs() < 0.01, "{s:?}");
        assert_eq!(s[6], 1.0);
        assert_eq!(score_from_z(f64::NAN), 0.0);
    }

    #[test]
    fn robust_sigma_ignores_a_few_outliers() {
        let mut xs: Vec<f64> = (0..100).map(|i| (i % 10) as f64).collect();
        let clean = robust_sigma(&xs);
        xs[3] = 1e9;
        xs[50] = -1e9;
        assert!((robust_sigma(&xs) - clean).abs() < 0.5 * clean);
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), 2.5);
    }

    #[test]
    fn feedback_expected_window_overrides_exclusion_and_false_alarms_widen() {
        let mut f = Feedback::default();
        f.exclude(Window { start: 10, end: 20 });
        assert!(!f.trains(15));
        f.mark_expected(Window { start: 0, end: 30 });
        assert!(f.trains(15));
        assert_eq!(f.band_factor(), 1.0);
        let v = crate::verdict::VerdictDraft {
            start: 100,
            end: 110,
            peak_at: 100,
            observed: 1.0,
            expected_low: 0.0,
            expected_high: 0.5,
            score: 0.8,
            detector: "spike",
            note: None,
        }
        .finish(SignalKind::DqValue);
        f.mark_false_alarm(&v);
        assert!(f.band_factor() > 1.0);
        assert!(f.trains(105));
    }
}
