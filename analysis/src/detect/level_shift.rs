//! Level shifts (change points): the median of the `w` points after a candidate point differs
//! from the median of the `w` before it by more than the band, on the deseasonalised series.
//! Comparing medians of windows, not single points, is what separates a shift that stays from a
//! spike that comes back.

use super::seasonal::{deseasonalize, noise_sigma};
use super::{median, score_from_z, sigma_floor, Context, Detector, Point};
use crate::verdict::{Verdict, VerdictDraft};

/// Batch detector for sustained changes in level.
#[derive(Debug, Clone)]
pub struct LevelShift {
    /// Points on each side of a candidate change point.
    pub window: usize,
    /// A shift must exceed this many noise sigmas (times the feedback band factor).
    pub min_sigmas: f64,
}

impl Default for LevelShift {
    fn default() -> Self {
        LevelShift {
            window: 12,
            min_sigmas: 3.0,
        }
    }
}

impl Detector for LevelShift {
    fn name(&self) -> &'static str {
        "level_shift"
    }

    fn detect(&self, series: &[Point], ctx: &Context<'_>) -> Vec<Verdict> {
        let w = self.window.max(3);
        if series.len() < 2 * w + 1 {
            return Vec::new();
        }
        let (r, model) = deseasonalize(series, ctx);
        let level = model.as_ref().map_or(median(&r), |m| m.level);
        let sigma = sigma_floor(noise_sigma(&r), level);
        let factor = ctx.feedback.band_factor();
        let need = (self.min_sigmas * factor * sigma).max(ctx.config.min_abs_change);
        // Shift size at every candidate split i: after = [i, i+w), before = [i-w, i).
        let d: Vec<f64> = (0..series.len())
            .map(|i| {
                if i < w || i + w > series.len() {
                    0.0
                } else {
                    median(&r[i..i + w]) - median(&r[i - w..i])
                }
            })
            .collect();
        let mut out = Vec::new();
        let mut i = w;
        while i + w <= series.len() {
            if d[i].abs() <= need || ctx.feedback.is_expected(series[i].t) {
                i += 1;
                continue;
            }
            // The change point is where the difference peaks within the next window.
            let hi = (i + w).min(series.len() - w + 1);
            let best = (i..hi)
                .max_by(|a, b| d[*a].abs().total_cmp(&d[*b].abs()))
                .unwrap_or(i);
            let end = (best + w - 1).min(series.len() - 1);
            // A shift that starts inside an expected window is the new normal.
            if ctx.feedback.is_expected(series[best].t) {
                i = best + w;
                continue;
            }
            // A level measured mostly inside an excluded window (an anomaly already found, an
            // incident) is no baseline: the step back from it is a recovery, not a shift.
            if !ctx.feedback.trains_most(&series[best - w..best]) {
                i = best + w;
                continue;
            }
            if ctx.evaluate_from.is_none_or(|from| series[end].t >= from) {
                let before = median(&r[best - w..best]);
                let after = median(&r[best..best + w]);
                // The evidence grows with the window: a shift of s sigmas seen over w points.
                let z = (after - before).abs() / (sigma * factor) * (w as f64).sqrt() / 2.0;
                let score = score_from_z(z);
                let seasonal_here = model
                    .as_ref()
                    .map_or(0.0, |m| m.expected(series[best].t) - m.level);
                if score >= ctx.config.min_score {
                    let dir = if after > before { "up" } else { "down" };
                    out.push(
                        VerdictDraft {
                            start: series[best].t,
                            end: series[end].t,
                            peak_at: series[best].t,
                            observed: after + seasonal_here,
                            expected_low: before + seasonal_here - need,
                            expected_high: before + seasonal_here + need,
                            score,
                            detector: self.name(),
                            note: Some(format!("level shifted {dir}")),
                        }
                        .finish(ctx.kind),
                    );
                }
            }
            // One verdict per shift: skip past the window it was found in.
            i = best + w;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{DetectConfig, Feedback, Window};
    use crate::verdict::SignalKind;

    /// ~100 with a little noise, 0 for points 300..360, then ~100 again up to 420.
    fn stall_and_recovery() -> Vec<Point> {
        (0..420)
            .map(|i| Point {
                t: 1_800_000_000 + i * 60,
                v: if (300..360).contains(&i) {
                    0.0
                } else {
                    100.0 + ((i * 7919) % 11) as f64 * 0.3
                },
            })
            .collect()
    }

    fn ups(series: &[Point], feedback: &Feedback) -> usize {
        let config = DetectConfig {
            min_abs_change: 25.0,
            ..DetectConfig::default()
        };
        let ctx = Context {
            kind: SignalKind::Throughput,
            feedback,
            config: &config,
            evaluate_from: Some(series[355].t),
        };
        LevelShift::default()
            .detect(series, &ctx)
            .iter()
            .filter(|v| v.observed > v.expected_high)
            .count()
    }

    #[test]
    fn the_recovery_from_an_excluded_anomaly_is_not_a_shift_up() {
        let s = stall_and_recovery();
        // Without knowing about the stall, its end looks like a shift up.
        assert_eq!(ups(&s, &Feedback::default()), 1);
        let mut fb = Feedback::default();
        fb.exclude(Window {
            start: s[300].t,
            end: s[359].t,
        });
        assert_eq!(ups(&s, &fb), 0);
    }
}
