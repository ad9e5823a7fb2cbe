//! The streaming ensemble: the batch detectors' models run one point at a time, for the NAB
//! harness (and any caller that sees points as they arrive).
//!
//! For each new point, two predictors say what it should have been:
//! * the recent level (trailing median, as in [`super::SpikeDip`]);
//! * the seasonal baseline ([`super::seasonal::SeasonalModel`], refitted periodically on the
//!   history kept, period found from the data) shifted to the recent level.
//!
//! A point is surprising only if *no* predictor explains it (the smaller robust z wins), so a
//! daily peak is not a spike and a jump is caught by both. A level-shift test (medians of the
//! recent window against a longer reference, as in [`super::LevelShift`]) catches slow moves the
//! point test misses. The z is then damped on series whose own history shows heavy tails, mapped
//! to [0, 1] by [`score_from_z`], and a score that does not exceed the scores of the recent past
//! is halved: the first sign of an incident matters, its echoes should not page again.

use super::seasonal::SeasonalModel;
use super::{median, robust_sigma, sigma_floor, Point, StreamingDetector};
use std::collections::VecDeque;

/// Settings of the streaming ensemble; the defaults are the one configuration used for every
/// NAB file.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Points scored 0 while the models learn.
    pub warmup: usize,
    /// Trailing points that make the recent level.
    pub local_window: usize,
    /// Points kept for the seasonal fit and the reference windows.
    pub history: usize,
    /// Refit the seasonal model every this many points.
    pub refit_every: usize,
    /// Residuals kept to estimate each predictor's sigma.
    pub residual_memory: usize,
    /// Recent window of the level-shift test.
    pub shift_window: usize,
    /// Reference window before it.
    pub shift_reference: usize,
    /// Points after a high score during which lower scores are halved.
    pub quiet: usize,
    /// The fraction of past z that defines the tail: above their threshold u the z history is
    /// fitted with an exponential tail (peaks over threshold), so a heavy-tailed series needs a
    /// larger z than a calm one for the same surprise.
    pub tail_fraction: f64,
    /// Past z values kept for that fit.
    pub z_memory: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            warmup: 250,
            local_window: 12,
            history: 4096,
            refit_every: 96,
            residual_memory: 1000,
            shift_window: 24,
            shift_reference: 240,
            quiet: 200,
            tail_fraction: 0.02,
            z_memory: 3000,
        }
    }
}

/// The streaming detector; see the module documentation.
#[derive(Debug, Clone)]
pub struct StreamingEnsemble {
    cfg: StreamConfig,
    seen: usize,
    history: VecDeque<Point>,
    model: Option<SeasonalModel>,
    /// Residuals against the recent level, and against the seasonal expectation (raw, before
    /// the level offset) and the offset-corrected ones.
    res_local: VecDeque<f64>,
    res_seasonal: VecDeque<f64>,
    raw_seasonal: VecDeque<f64>,
    sigma_local: f64,
    sigma_seasonal: f64,
    /// One tail fit per channel: point (spike / dip), level shift, burst (mean recent point z).
    tails: [TailFit; 3],
    recent_point_z: VecDeque<f64>,
    last: Channels,
    found_season: bool,
    recent_scores: VecDeque<f64>,
}

impl StreamingEnsemble {
    pub fn new(cfg: StreamConfig) -> Self {
        StreamingEnsemble {
            cfg,
            seen: 0,
            history: VecDeque::new(),
            model: None,
            res_local: VecDeque::new(),
            res_seasonal: VecDeque::new(),
            raw_seasonal: VecDeque::new(),
            sigma_local: f64::NAN,
            sigma_seasonal: f64::NAN,
            tails: Default::default(),
            recent_point_z: VecDeque::new(),
            last: Channels::default(),
            found_season: false,
            recent_scores: VecDeque::new(),
        }
    }

    fn typical(&self) -> f64 {
        self.model.as_ref().map_or_else(
            || self.history.back().map_or(1.0, |p| p.v),
            |m| m.level,
        )
    }

    /// The robust z of the new point (the smaller of the predictors' z) and of the level-shift
    /// test. None while there is not enough history.
    fn z(&self, t: i64, v: f64) -> Option<(f64, f64)> {
        let w = self.cfg.local_window;
        if self.history.len() < w || !self.sigma_local.is_finite() {
            return None;
        }
        let recent: Vec<f64> = self.history.iter().rev().take(w).map(|p| p.v).collect();
        let typical = self.typical();
        let z_local = (v - median(&recent)).abs() / sigma_floor(self.sigma_local, typical);
        let mut z_point = z_local;
        let mut shape: Option<&SeasonalModel> = None;
        if let Some(m) = &self.model {
            if self.sigma_seasonal.is_finite() && self.raw_seasonal.len() >= w {
                let offset = median(&self.raw_seasonal.iter().rev().take(w).copied().collect::<Vec<_>>());
                let z_s = (v - m.expected(t) - offset).abs()
                    / sigma_floor(self.sigma_seasonal, typical);
                // An expert much noisier than the other explains everything and so nothing: a
                // trailing median on a steep daily curve has a huge sigma, and would excuse a
                // spike the seasonal model sees plainly. Only comparable experts get a say.
                let (sl, ss) = (self.sigma_local, self.sigma_seasonal);
                z_point = if ss * EXPERT_RATIO < sl {
                    z_s
                } else if sl * EXPERT_RATIO < ss {
                    z_local
                } else {
                    z_local.min(z_s)
                };
                shape = Some(m);
            }
        }
        let (sw, sr) = (self.cfg.shift_window, self.cfg.shift_reference);
        let mut z_shift = 0.0;
        if self.history.len() >= sw + sr {
            let deseason = |p: &Point| p.v - shape.map_or(0.0, |m| m.expected(p.t) - m.level);
            let n = self.history.len();
            let mut rec: Vec<f64> = self.history.range(n + 1 - sw..).map(deseason).collect();
            rec.push(v - shape.map_or(0.0, |m| m.expected(t) - m.level));
            let reference: Vec<f64> = self.history.range(n + 1 - sw - sr..n + 1 - sw).map(deseason).collect();
            let sigma = sigma_floor(robust_sigma(&reference), typical);
            z_shift = (median(&rec) - median(&reference)).abs() / sigma;
        }
        Some((z_point, z_shift))
    }

    fn learn(&mut self, t: i64, v: f64) {
        let w = self.cfg.local_window;
        if self.history.len() >= w {
            let recent: Vec<f64> = self.history.iter().rev().take(w).map(|p| p.v).collect();
            push_bounded(&mut self.res_local, v - median(&recent), self.cfg.residual_memory);
        }
        if let Some(m) = &self.model {
            let raw = v - m.expected(t);
            if self.raw_seasonal.len() >= w {
                let offset = median(&self.raw_seasonal.iter().rev().take(w).copied().collect::<Vec<_>>());
                push_bounded(&mut self.res_seasonal, raw - offset, self.cfg.residual_memory);
            }
            push_bounded(&mut self.raw_seasonal, raw, w);
        }
        push_bounded(&mut self.history, Point { t, v }, self.cfg.history);
        self.seen += 1;
        if self.seen % 25 == 0 {
            self.sigma_local = robust_sigma(self.res_local.make_contiguous());
            self.sigma_seasonal = if self.res_seasonal.len() >= 100 {
                robust_sigma(self.res_seasonal.make_contiguous())
            } else {
                f64::NAN
            };
            for tail in &mut self.tails {
                tail.refit(self.cfg.tail_fraction);
            }
        }
        if self.seen % self.cfg.refit_every == 0 {
            let pts: Vec<Point> = self.history.iter().copied().collect();
            let m = SeasonalModel::fit(&pts);
            let changed = m.period != self.model.as_ref().and_then(|o| o.period);
            self.model = m.period.map(|_| m);
            if changed {
                // Residuals against another model (or none) say nothing about this one's noise.
                self.res_seasonal.clear();
                self.raw_seasonal.clear();
                self.sigma_seasonal = f64::NAN;
                // Nor do the z seen before the first seasonal model: a daily curve scored without
                // it looks like a run of huge deviations and would make real ones look ordinary.
                // The current fits stay in use until enough new z arrive, so the detector is never
                // deaf. Later switches keep the tails: on series whose pattern comes and goes,
                // relearning each time would keep them on fits from too few points.
                if RESET_TAILS && !self.found_season && self.model.is_some() {
                    self.found_season = true;
                    for tail in &mut self.tails {
                        tail.history.clear();
                    }
                }
            }
        }
    }
}

impl StreamingEnsemble {
    /// What the last observed point looked like to each channel: the evidence behind its score.
    pub fn last_channels(&self) -> &Channels {
        &self.last
    }
}

/// Per-channel evidence for one point: robust z and surprise (-log10 tail probability) of the
/// point (spike / dip), level-shift and burst channels, in that order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Channels {
    pub z: [f64; 3],
    pub surprise: [f64; 3],
}

impl Default for StreamingEnsemble {
    fn default() -> Self {
        StreamingEnsemble::new(StreamConfig::default())
    }
}

impl StreamingDetector for StreamingEnsemble {
    fn observe(&mut self, t: i64, v: f64) -> f64 {
        if !v.is_finite() {
            return 0.0;
        }
        let z = self.z(t, v);
        let mut surprise = 0.0f64;
        self.last = Channels::default();
        if let Some((z_point, z_shift)) = z {
            push_bounded(&mut self.recent_point_z, z_point.min(BURST_CAP), self.cfg.local_window);
            let burst = self.recent_point_z.iter().sum::<f64>() / self.recent_point_z.len() as f64;
            let zs = [z_point, z_shift, burst];
            for (i, (tail, z)) in self.tails.iter_mut().zip(zs).enumerate() {
                let s = tail.surprise(z, self.cfg.tail_fraction);
                self.last.z[i] = z;
                self.last.surprise[i] = s;
                surprise = surprise.max(s);
                push_bounded(&mut tail.history, z, self.cfg.z_memory);
            }
        }
        self.learn(t, v);
        let raw = if self.seen > self.cfg.warmup {
            stream_score(surprise)
        } else {
            0.0
        };
        let loudest_recent = self.recent_scores.iter().copied().fold(0.0, f64::max);
        push_bounded(&mut self.recent_scores, raw, self.cfg.quiet);
        if raw > loudest_recent + QUIET_MARGIN {
            raw
        } else {
            raw * 0.5
        }
    }
}

/// The streaming score from a surprise L = -log10(tail probability): L / (L + 4), 0.5 at a
/// one-in-10,000 point. Unlike [`super::score_from_z`] it never saturates, so very large
/// deviations still rank above large ones when one threshold serves many series.
pub fn stream_score(surprise: f64) -> f64 {
    let z = surprise.abs();
    if z.is_finite() {
        z / (z + 4.0)
    } else if z.is_nan() {
        0.0
    } else {
        1.0
    }
}

/// Within the quiet period a score must beat the loudest recent one by this much to stand:
/// a slowly growing run of scores is one event, not one alarm per point.
const QUIET_MARGIN: f64 = 0.05;

const RESET_TAILS: bool = false;

/// An expert whose sigma is this many times the other's is not consulted.
const EXPERT_RATIO: f64 = 1.5;

/// Point z above this count as this in the burst channel, so one huge spike is not a burst.
const BURST_CAP: f64 = 6.0;

/// Peaks-over-threshold fit of one channel's z history: above the (1 - fraction) quantile u the
/// excesses are taken as exponential with mean beta (its maximum-likelihood fit), which gives a
/// tail probability for any new z. A calm series has a small beta, so a moderate z is already
/// very surprising; a heavy-tailed one needs a much larger z.
#[derive(Debug, Clone, Default)]
struct TailFit {
    history: VecDeque<f64>,
    fit: Option<(f64, f64)>,
}

impl TailFit {
    fn refit(&mut self, fraction: f64) {
        if self.history.len() < 200 {
            return;
        }
        let mut zs: Vec<f64> = self.history.iter().copied().collect();
        let k = ((zs.len() as f64 * (1.0 - fraction)) as usize).min(zs.len() - 1);
        let (_, u, above) = zs.select_nth_unstable_by(k, f64::total_cmp);
        let u = *u;
        // The mean excess (the exponential's maximum-likelihood fit). Big past excesses do
        // raise it: a series whose history is full of large deviations makes the next one
        // less surprising, which is what keeps bursty real series (tweet volumes) quiet.
        let beta = if above.is_empty() {
            1.0
        } else {
            above.iter().map(|z| z - u).sum::<f64>() / above.len() as f64
        };
        self.fit = Some((u, beta.max(0.05)));
    }

    /// -log10 of the tail probability of z: -log10(fraction) at u, +0.43 per beta beyond.
    fn surprise(&self, z: f64, fraction: f64) -> f64 {
        match self.fit {
            Some((u, beta)) if z.is_finite() => {
                (-fraction.log10() + (z - u) / (beta * std::f64::consts::LN_10)).max(0.0)
            }
            _ => 0.0,
        }
    }
}

fn push_bounded<T>(q: &mut VecDeque<T>, x: T, cap: usize) {
    if q.len() >= cap {
        q.pop_front();
    }
    q.push_back(x);
}
