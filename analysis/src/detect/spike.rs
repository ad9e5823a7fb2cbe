//! Spikes and dips: a short excursion away from the recent level (the trailing median of the
//! deseasonalised series) that comes back. Excursions that stay are level shifts and are left
//! to that detector.

use super::seasonal::deseasonalize;
use super::{median, robust_sigma, runs, score_from_z, sigma_floor, Context, Detector, Point};
use crate::verdict::{Verdict, VerdictDraft};

/// Batch detector for short excursions.
#[derive(Debug, Clone)]
pub struct SpikeDip {
    /// Trailing points that define the recent level.
    pub window: usize,
    /// Excursions longer than this many points are not spikes.
    pub max_len: usize,
}

impl Default for SpikeDip {
    fn default() -> Self {
        SpikeDip {
            window: 12,
            max_len: 6,
        }
    }
}

impl Detector for SpikeDip {
    fn name(&self) -> &'static str {
        "spike"
    }

    fn detect(&self, series: &[Point], ctx: &Context<'_>) -> Vec<Verdict> {
        let w = self.window.max(3);
        if series.len() < 2 * w {
            return Vec::new();
        }
        let (r, model) = deseasonalize(series, ctx);
        // The recent level before each point, from trailing points only.
        let base: Vec<f64> = (0..r.len())
            .map(|i| {
                if i < w {
                    f64::NAN
                } else {
                    median(&r[i - w..i])
                }
            })
            .collect();
        let e: Vec<f64> = r.iter().zip(&base).map(|(x, b)| x - b).collect();
        let level = model.as_ref().map_or(median(&r), |m| m.level);
        let sigma = sigma_floor(robust_sigma(&e), level);
        let factor = ctx.feedback.band_factor();
        let half_band = (ctx.config.band_z * factor * sigma).max(ctx.config.min_abs_change);
        let flagged: Vec<usize> = (w..r.len())
            .filter(|&i| e[i].abs() > half_band && !ctx.feedback.is_expected(series[i].t))
            .collect();
        let mut out = Vec::new();
        for (a, b) in runs(&flagged, 0) {
            if b + 1 - a > self.max_len {
                continue;
            }
            // A recent level measured mostly inside an excluded window is no baseline (as for
            // level shifts). Whether the recovery's run fits `max_len` depends on where the
            // grid falls on the stall's edges, so without this a recovery was reported at some
            // phases and not at others.
            if !ctx.feedback.trains_most(&series[a - w..a]) {
                continue;
            }
            // It must come back: the points just after the run are within the band of the level
            // before it. At the end of the series there is nothing after yet; report it then.
            // "Before" reaches back a further window when it can, because the trailing median
            // just before a run may already be half-way to a new level.
            let after = &r[(b + 1).min(r.len())..(b + 1 + w).min(r.len())];
            let before = if a >= 2 * w {
                median(&r[a - 2 * w..a - w])
            } else {
                base[a]
            };
            if !after.is_empty()
                && ((median(after) - base[a]).abs() > half_band
                    || (median(after) - before).abs() > half_band)
            {
                continue;
            }
            if ctx.evaluate_from.is_some_and(|from| series[b].t < from) {
                continue;
            }
            let peak = (a..=b)
                .max_by(|x, y| e[*x].abs().total_cmp(&e[*y].abs()))
                .unwrap_or(a);
            let z = e[peak].abs() / (sigma * factor);
            let score = score_from_z(z);
            if score < ctx.config.min_score {
                continue;
            }
            let shape = model
                .as_ref()
                .filter(|m| m.period.is_some())
                .map_or(0.0, |m| m.expected(series[peak].t) - m.level);
            let expected = base[a] + shape;
            out.push(
                VerdictDraft {
                    start: series[a].t,
                    end: series[b].t,
                    peak_at: series[peak].t,
                    observed: series[peak].v,
                    expected_low: expected - half_band,
                    expected_high: expected + half_band,
                    score,
                    detector: self.name(),
                    note: Some(if e[peak] > 0.0 { "spike" } else { "dip" }.into()),
                }
                .finish(ctx.kind),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{DetectConfig, Feedback, Window};
    use crate::verdict::SignalKind;

    /// ~100 with a little noise, 0 for `len` points from 300, then ~100 again for `tail`
    /// points: the series as a job sees it shortly after the recovery (a run at the end of
    /// the series has nothing after it to show that it is not a spike).
    fn stall(len: usize, tail: usize) -> Vec<Point> {
        (0..300 + len + tail)
            .map(|i| Point {
                t: 1_800_000_000 + i as i64 * 60,
                v: if (300..300 + len).contains(&i) {
                    0.0
                } else if i == 300 + len {
                    // A rate over two samples across the recovery: half-way.
                    50.0
                } else {
                    100.0 + ((i * 7919) % 11) as f64 * 0.3
                },
            })
            .collect()
    }

    /// Spikes up reported after the stall.
    fn ups(series: &[Point], feedback: &Feedback) -> usize {
        let config = DetectConfig {
            min_abs_change: 25.0,
            ..DetectConfig::default()
        };
        let ctx = Context {
            kind: SignalKind::Throughput,
            feedback,
            config: &config,
            evaluate_from: None,
        };
        SpikeDip::default()
            .detect(series, &ctx)
            .iter()
            .filter(|v| v.observed > v.expected_high && v.start > series[300].t)
            .count()
    }

    #[test]
    fn the_recovery_from_an_excluded_anomaly_is_not_a_spike() {
        // Stalls longer than half the trailing window (12 points), seen a few points after
        // their end: without knowing about the stall, some recoveries look like spikes up.
        // (A shorter stall leaves the trailing level mostly trained; the rule does not apply.)
        let cases: Vec<(usize, usize)> = (7..24)
            .flat_map(|len| (1..8).map(move |tail| (len, tail)))
            .collect();
        let unaware: usize = cases
            .iter()
            .map(|&(len, tail)| ups(&stall(len, tail), &Feedback::default()))
            .sum();
        assert!(
            unaware > 0,
            "some recovery is taken for a spike without the exclusion"
        );
        for (len, tail) in cases {
            let s = stall(len, tail);
            let mut fb = Feedback::default();
            fb.exclude(Window {
                start: s[300].t,
                end: s[300 + len - 1].t,
            });
            assert_eq!(ups(&s, &fb), 0, "stall of {len} points, {tail} after");
        }
    }
}
