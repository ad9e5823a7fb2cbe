//! Robust seasonal baseline: the expected value for a time slot (quarter-hour of the day or
//! hour of the week, whichever the data shows), learned as per-slot medians, and a band of
//! `band_z` robust sigmas of the residuals around it.
//!
//! The period is found from the data: each candidate (day, week) that the history covers at
//! least twice is fitted, and the one whose residuals are clearly tighter than a flat level's
//! wins; a series without a repeating pattern gets a flat baseline. Medians and MAD make the fit
//! robust to outliers, and training runs twice: points the first fit flags (past anomalies) are
//! left out of the second, unless feedback marked their window expected.

use super::{
    median, median_in_place, median_step, robust_sigma, runs, score_from_z, sigma_floor, Context,
    Detector, Point,
};
use crate::verdict::{Verdict, VerdictDraft};

const DAY: i64 = 86_400;
const WEEK: i64 = 7 * DAY;

/// A fitted baseline: expected value per slot and the residuals' robust sigma.
#[derive(Debug, Clone)]
pub struct SeasonalModel {
    /// The period found (seconds), None for a flat baseline.
    pub period: Option<i64>,
    slot_width: i64,
    /// Median per slot; NaN where the slot had no training data (the level is used there).
    slots: Vec<f64>,
    /// Median of all training values: the flat baseline, and the fallback for empty slots.
    pub level: f64,
    /// Robust sigma of the residuals around the baseline.
    pub sigma: f64,
}

impl SeasonalModel {
    /// Fits the best of flat / daily / weekly to the points (times ascending).
    pub fn fit(train: &[Point]) -> SeasonalModel {
        let flat = Self::fit_period(train, None);
        let span = match (train.first(), train.last()) {
            (Some(a), Some(b)) => b.t - a.t,
            _ => 0,
        };
        let step = median_step(train);
        let mut best = flat.clone();
        for period in [DAY, WEEK] {
            // Two full periods at least, and a period of several samples, or the slots are noise.
            if span < 2 * period || period < 8 * step {
                continue;
            }
            let m = Self::fit_period(train, Some(period));
            // A seasonal fit must beat the flat one by a clear margin, and a weekly fit (7x the
            // slots, so 7x fewer samples each) must beat the daily one too.
            let margin = if best.period.is_some() { 0.85 } else { 0.7 };
            if m.sigma < margin * best.sigma {
                best = m;
            }
        }
        best
    }

    fn fit_period(train: &[Point], period: Option<i64>) -> SeasonalModel {
        let values: Vec<f64> = train.iter().map(|p| p.v).collect();
        let level = median(&values);
        let step = median_step(train);
        let (slot_width, n_slots) = match period {
            Some(DAY) => {
                let w = step.clamp(900, 3600);
                (w, (DAY / w) as usize)
            }
            Some(p) => {
                let w = step.clamp(3600, DAY);
                (w, (p / w) as usize)
            }
            None => (1, 1),
        };
        let mut model = SeasonalModel {
            period,
            slot_width,
            slots: vec![f64::NAN; n_slots.max(1)],
            level,
            sigma: f64::NAN,
        };
        let residuals: Vec<f64> = if period.is_some() {
            let mut by_slot: Vec<Vec<f64>> = vec![Vec::new(); model.slots.len()];
            for p in train {
                by_slot[model.slot(p.t)].push(p.v);
            }
            let mut residuals = Vec::with_capacity(train.len());
            for (s, vals) in model.slots.iter_mut().zip(by_slot.iter_mut()) {
                *s = median_in_place(vals);
                vals.sort_unstable_by(f64::total_cmp);
                residuals.extend(leave_one_out_residuals(vals));
            }
            residuals
        } else {
            values.iter().map(|v| v - level).collect()
        };
        model.sigma = sigma_floor(robust_sigma(&residuals), level);
        model
    }

    fn slot(&self, t: i64) -> usize {
        match self.period {
            // Unix time 0 was a Thursday at 00:00 UTC; slots count from there, which is fine for
            // matching like with like.
            Some(p) => (t.rem_euclid(p) / self.slot_width) as usize % self.slots.len(),
            None => 0,
        }
    }

    /// The expected value at time t.
    pub fn expected(&self, t: i64) -> f64 {
        match self.period {
            Some(_) => {
                let s = self.slots[self.slot(t)];
                if s.is_finite() {
                    s
                } else {
                    self.level
                }
            }
            None => self.level,
        }
    }
}

/// Each value's residual against the median of the *other* values of its slot (`sorted`
/// ascending). A slot median fitted on a dozen days sits closer to its own samples than to
/// tomorrow's, so in-sample residuals understate the noise and the band comes out too narrow;
/// leaving the point out is the honest estimate, and after one sort it costs O(1) per point.
fn leave_one_out_residuals(sorted: &[f64]) -> impl Iterator<Item = f64> + '_ {
    let m = sorted.len();
    (0..m).filter(move |_| m >= 3).map(move |k| {
        // The sorted list without index k, read at position i.
        let at = |i: usize| if i < k { sorted[i] } else { sorted[i + 1] };
        let rest = m - 1;
        let med = if rest % 2 == 1 {
            at(rest / 2)
        } else {
            (at(rest / 2 - 1) + at(rest / 2)) / 2.0
        };
        sorted[k] - med
    })
}

/// Batch detector: points outside the seasonal band (and further than `min_abs_change` from
/// the expected value), grouped into verdicts.
#[derive(Debug, Clone, Default)]
pub struct SeasonalBaseline;

/// Fewer training points than this and the detector stays silent rather than guess.
const MIN_TRAIN: usize = 48;

impl SeasonalBaseline {
    /// Fits on the points feedback lets train, then again without the points the first fit
    /// flags (unless they lie in an expected window).
    pub fn fit(&self, series: &[Point], ctx: &Context<'_>) -> Option<SeasonalModel> {
        let train: Vec<Point> = series
            .iter()
            .copied()
            .filter(|p| p.v.is_finite() && ctx.feedback.trains(p.t))
            .collect();
        if train.len() < MIN_TRAIN {
            return None;
        }
        let first = SeasonalModel::fit(&train);
        let limit = ctx.config.band_z * ctx.feedback.band_factor();
        let cleaned: Vec<Point> = train
            .into_iter()
            .filter(|p| {
                ctx.feedback.is_expected(p.t)
                    || (p.v - first.expected(p.t)).abs() <= limit * first.sigma
            })
            .collect();
        if cleaned.len() < MIN_TRAIN {
            return Some(first);
        }
        Some(SeasonalModel::fit(&cleaned))
    }
}

impl Detector for SeasonalBaseline {
    fn name(&self) -> &'static str {
        "seasonal"
    }

    fn detect(&self, series: &[Point], ctx: &Context<'_>) -> Vec<Verdict> {
        let Some(model) = self.fit(series, ctx) else {
            return Vec::new();
        };
        let factor = ctx.feedback.band_factor();
        let half_band = (ctx.config.band_z * factor * model.sigma).max(ctx.config.min_abs_change);
        let flagged: Vec<usize> = series
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.v.is_finite()
                    && !ctx.feedback.is_expected(p.t)
                    && (p.v - model.expected(p.t)).abs() > half_band
            })
            .map(|(i, _)| i)
            .collect();
        let mut out = Vec::new();
        for (a, b) in runs(&flagged, 2) {
            let span = &series[a..=b];
            if ctx.evaluate_from.is_some_and(|from| span[span.len() - 1].t < from) {
                continue;
            }
            let peak = span
                .iter()
                .max_by(|x, y| {
                    (x.v - model.expected(x.t))
                        .abs()
                        .total_cmp(&(y.v - model.expected(y.t)).abs())
                })
                .copied()
                .unwrap_or(span[0]);
            let exp = model.expected(peak.t);
            let z = (peak.v - exp).abs() / (model.sigma * factor);
            // One odd point is weaker evidence than a sustained excursion.
            let score = score_from_z(z) * if span.len() == 1 { 0.9 } else { 1.0 };
            if score < ctx.config.min_score {
                continue;
            }
            let note = match model.period {
                Some(DAY) => "daily pattern",
                Some(_) => "weekly pattern",
                None => "no seasonality found",
            };
            out.push(
                VerdictDraft {
                    start: span[0].t,
                    end: span[span.len() - 1].t,
                    peak_at: peak.t,
                    observed: peak.v,
                    expected_low: exp - half_band,
                    expected_high: exp + half_band,
                    score,
                    detector: self.name(),
                    note: Some(note.into()),
                }
                .finish(ctx.kind),
            );
        }
        out
    }
}

/// The series minus its seasonal shape (the per-slot expected value less the level), so level
/// shift, spike and trend detection compare like with like. Also returns the model's sigma.
pub(crate) fn deseasonalize(series: &[Point], ctx: &Context<'_>) -> (Vec<f64>, Option<SeasonalModel>) {
    match SeasonalBaseline.fit(series, ctx) {
        Some(m) if m.period.is_some() => (
            series.iter().map(|p| p.v - (m.expected(p.t) - m.level)).collect(),
            Some(m),
        ),
        m => (series.iter().map(|p| p.v).collect(), m),
    }
}

/// Robust sigma of point-to-point noise: the MAD of first differences over sqrt(2). Unlike the
/// MAD of the values it is not inflated by level shifts or trends.
pub(crate) fn noise_sigma(values: &[f64]) -> f64 {
    let diffs: Vec<f64> = values.windows(2).map(|w| w[1] - w[0]).collect();
    robust_sigma(&diffs) / std::f64::consts::SQRT_2
}
