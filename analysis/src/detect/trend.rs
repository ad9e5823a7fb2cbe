//! Slow trends: a steady drift too gradual for the band or the level-shift windows (a table
//! growing a little faster each day, latency creeping up). The deseasonalised series is reduced
//! to bucket medians, a Mann–Kendall test says whether they rise or fall monotonically, a
//! Theil–Sen slope says by how much, and the drift must beat a single step at explaining the
//! buckets (otherwise it is a level shift) and exceed the band over the span.

use super::seasonal::{deseasonalize, noise_sigma};
use super::{median, score_from_z, sigma_floor, Context, Detector, Point};
use crate::verdict::{Verdict, VerdictDraft};

/// Batch detector for monotone drifts.
#[derive(Debug, Clone)]
pub struct SlowTrend {
    /// The series is reduced to this many bucket medians.
    pub buckets: usize,
}

impl Default for SlowTrend {
    fn default() -> Self {
        SlowTrend { buckets: 48 }
    }
}

impl Detector for SlowTrend {
    fn name(&self) -> &'static str {
        "trend"
    }

    fn detect(&self, series: &[Point], ctx: &Context<'_>) -> Vec<Verdict> {
        let nb = self.buckets.max(8);
        if series.len() < 3 * nb {
            return Vec::new();
        }
        let (r, model) = deseasonalize(series, ctx);
        let per = series.len() / nb;
        let (ts, ms): (Vec<f64>, Vec<f64>) = (0..nb)
            .map(|j| {
                let lo = j * per;
                let hi = if j + 1 == nb { series.len() } else { lo + per };
                let mid = series[(lo + hi) / 2].t as f64;
                (mid, median(&r[lo..hi]))
            })
            .unzip();
        // Mann–Kendall S and its normal approximation (no ties correction: medians rarely tie).
        let n = nb as f64;
        let mut s = 0.0;
        let mut slopes = Vec::with_capacity(nb * (nb - 1) / 2);
        for i in 0..nb {
            for j in i + 1..nb {
                s += (ms[j] - ms[i]).signum();
                slopes.push((ms[j] - ms[i]) / (ts[j] - ts[i]));
            }
        }
        let var = n * (n - 1.0) * (2.0 * n + 5.0) / 18.0;
        let z = (s - s.signum()) / var.sqrt();
        let slope = median(&slopes);
        let t_mid = median(&ts);
        let intercept = median(&ms.iter().zip(&ts).map(|(m, t)| m - slope * (t - t_mid)).collect::<Vec<_>>());
        let line_err: f64 = ms
            .iter()
            .zip(&ts)
            .map(|(m, t)| (m - intercept - slope * (t - t_mid)).abs())
            .sum();
        let step_err = (1..nb)
            .map(|k| {
                let (a, b) = (median(&ms[..k]), median(&ms[k..]));
                ms[..k].iter().map(|m| (m - a).abs()).sum::<f64>()
                    + ms[k..].iter().map(|m| (m - b).abs()).sum::<f64>()
            })
            .fold(f64::INFINITY, f64::min);
        let level = model.as_ref().map_or(median(&r), |m| m.level);
        let sigma = sigma_floor(noise_sigma(&r), level);
        let factor = ctx.feedback.band_factor();
        let half_band = (ctx.config.band_z * factor * sigma).max(ctx.config.min_abs_change);
        let (first, last) = (series[0], series[series.len() - 1]);
        let change = slope * (last.t - first.t) as f64;
        let score = score_from_z(z / factor);
        if line_err > step_err
            || change.abs() <= half_band
            || score < ctx.config.min_score
            || ctx.evaluate_from.is_some_and(|from| last.t < from)
        {
            return Vec::new();
        }
        let shape = model
            .as_ref()
            .filter(|m| m.period.is_some())
            .map_or(0.0, |m| m.expected(last.t) - m.level);
        let start_level = intercept + slope * (first.t as f64 - t_mid) + shape;
        let per_day = slope * 86_400.0;
        vec![VerdictDraft {
            start: first.t,
            end: last.t,
            peak_at: last.t,
            observed: last.v,
            expected_low: start_level - half_band,
            expected_high: start_level + half_band,
            score,
            detector: self.name(),
            note: Some(format!(
                "{} {} per day",
                if slope > 0.0 { "rising" } else { "falling" },
                ctx.kind.format_value(per_day.abs())
            )),
        }
        .finish(ctx.kind)]
    }
}
