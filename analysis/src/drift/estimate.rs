//! Drift statistics estimated from profiles whose exact values were given up, using each side's
//! t-digest as its CDF (a side that is still exact is used exactly).
//!
//! What is exact even then: the counts n, the pooled minimum and maximum and so Evidently's
//! Sturges bin edges, and the reference's standard deviation. What is estimated: the CDF between
//! those, hence KS D (and its p-value), Wasserstein-1 and the bin proportions behind PSI, JS and
//! KL. Tests that need ranks of individual values (Anderson–Darling, Cramér–von Mises,
//! Mann–Whitney) or per-value bins (chi-square, z) are refused with an error that says so.
//! `tests/drift_sketch.rs` and BENCHMARKS.md measure the estimation error.

use super::binning::{self, BinningRule, Bins};
use super::kolmogorov;
use super::profile::NumericProfile;
use super::sample::ValueCounts;
use super::{DriftError, StatTest};
use datasketches::tdigest::TDigest;

/// Quantile points taken from each sketch to evaluate the CDFs on (plus the extremes).
const GRID_POINTS: usize = 2048;

/// One side's distribution: exact counts, or a frozen t-digest.
enum Side {
    Exact { sample: ValueCounts, cum: Vec<u64> },
    Sketch { digest: TDigest, min: f64, max: f64 },
}

impl Side {
    fn of(p: &NumericProfile) -> Side {
        match p.exact() {
            Some(sample) => {
                let cum = sample
                    .counts()
                    .iter()
                    .scan(0u64, |acc, c| {
                        *acc += c;
                        Some(*acc)
                    })
                    .collect();
                Side::Exact { sample, cum }
            }
            None => Side::Sketch {
                digest: p.sketch().clone().freeze(),
                min: p.min().unwrap_or(0.0),
                max: p.max().unwrap_or(0.0),
            },
        }
    }

    /// Fraction of values <= x.
    fn at_or_below(&self, x: f64) -> f64 {
        match self {
            Side::Exact { sample, cum } => {
                let idx = sample.values().partition_point(|&v| v <= x);
                if idx == 0 {
                    0.0
                } else {
                    cum[idx - 1] as f64 / sample.n() as f64
                }
            }
            Side::Sketch { digest, min, max } => {
                if x < *min {
                    0.0
                } else if x >= *max {
                    1.0
                } else {
                    digest.rank(x).ok().flatten().unwrap_or(0.0)
                }
            }
        }
    }

    /// Fraction of values < x.
    fn below(&self, x: f64) -> f64 {
        match self {
            Side::Exact { sample, cum } => {
                let idx = sample.values().partition_point(|&v| v < x);
                if idx == 0 {
                    0.0
                } else {
                    cum[idx - 1] as f64 / sample.n() as f64
                }
            }
            Side::Sketch { digest, min, max } => {
                if x <= *min {
                    0.0
                } else if x > *max {
                    1.0
                } else {
                    digest.rank(x).ok().flatten().unwrap_or(0.0)
                }
            }
        }
    }

    /// Points where the CDF changes or is worth evaluating.
    fn grid(&self) -> Vec<f64> {
        match self {
            Side::Exact { sample, .. } => sample.values().to_vec(),
            Side::Sketch { digest, min, max } => {
                // Evenly spaced ranks, plus geometrically spaced ones in both tails, where one
                // grid step can span a long stretch of x (and so of Wasserstein area).
                let tails = (12..=30).flat_map(|j| {
                    let u = 0.5f64.powi(j);
                    [u, 1.0 - u]
                });
                let mut g: Vec<f64> = (0..=GRID_POINTS)
                    .map(|i| i as f64 / GRID_POINTS as f64)
                    .chain(tails)
                    .filter_map(|u| digest.quantile(u).ok().flatten())
                    .collect();
                g.push(*min);
                g.push(*max);
                g
            }
        }
    }
}

fn union_grid(a: &Side, b: &Side) -> Vec<f64> {
    let mut g = a.grid();
    g.extend(b.grid());
    g.retain(|v| v.is_finite());
    g.sort_unstable_by(f64::total_cmp);
    g.dedup();
    g
}

/// KS D estimated on the union of both sides' evaluation points.
fn ks_statistic(a: &Side, b: &Side) -> f64 {
    union_grid(a, b)
        .into_iter()
        .map(|x| (a.at_or_below(x) - b.at_or_below(x)).abs())
        .fold(0.0, f64::max)
}

/// W1 = integral |F_a - F_b| dx, by the composite midpoint rule over each interval between
/// consecutive evaluation points (exact where both CDFs are step functions with steps at those
/// points).
fn wasserstein(a: &Side, b: &Side) -> f64 {
    const PARTS: usize = 4;
    union_grid(a, b)
        .windows(2)
        .map(|w| {
            let h = (w[1] - w[0]) / PARTS as f64;
            (0..PARTS)
                .map(|k| {
                    let mid = w[0] + (k as f64 + 0.5) * h;
                    (a.at_or_below(mid) - b.at_or_below(mid)).abs() * h
                })
                .sum::<f64>()
        })
        .sum()
}

/// Evidently's Sturges bins with each side's mass estimated from its CDF at the exact edges.
fn sturges_bins(r: &NumericProfile, c: &NumericProfile, rs: &Side, cs: &Side) -> Bins {
    let lo = r.min().unwrap_or(0.0).min(c.min().unwrap_or(0.0));
    let hi = r.max().unwrap_or(0.0).max(c.max().unwrap_or(0.0));
    let edges = binning::sturges_edges(lo, hi, r.count() + c.count());
    let mass = |side: &Side, n: u64| {
        let bins = edges.len() - 1;
        let n = n as f64;
        (0..bins)
            .map(|i| {
                let lower = side.below(edges[i]);
                let upper = if i + 1 == bins {
                    1.0
                } else {
                    side.below(edges[i + 1])
                };
                (upper - lower).max(0.0) * n
            })
            .collect()
    };
    Bins {
        rule: BinningRule::SturgesEqualWidth,
        reference: mass(rs, r.count()),
        current: mass(cs, c.count()),
        edges: Some(edges),
    }
}

/// The statistic and p-value of `test` for two numeric profiles of which at least one is only
/// sketched.
pub(crate) fn numeric_statistic(
    test: StatTest,
    r: &NumericProfile,
    c: &NumericProfile,
) -> Result<(f64, Option<f64>), DriftError> {
    let sketched_side = if !r.is_exact() {
        ("reference", r.exact_distinct_limit())
    } else {
        ("current", c.exact_distinct_limit())
    };
    let refuse = || DriftError::NeedsExactValues {
        test,
        side: sketched_side.0,
        limit: sketched_side.1,
    };
    let (rs, cs) = (Side::of(r), Side::of(c));
    match test {
        StatTest::Ks => {
            let d = ks_statistic(&rs, &cs);
            Ok((
                d,
                Some(kolmogorov::two_sample_p_value(r.count(), c.count(), d)),
            ))
        }
        StatTest::Wasserstein => {
            let w = wasserstein(&rs, &cs);
            Ok((w / r.std_population().max(0.001), None))
        }
        StatTest::Psi | StatTest::JensenShannon | StatTest::KlDiv => {
            // A sketched reference has more distinct values than any limit (> 20): Sturges. An
            // exact reference with <= 20 values needs per-value bins, which a sketched current
            // cannot give.
            let ref_distinct = r.distinct().unwrap_or(usize::MAX);
            match binning::rule(true, ref_distinct) {
                BinningRule::SturgesEqualWidth => {
                    Ok((sturges_bins(r, c, &rs, &cs).distance(test), None))
                }
                BinningRule::OneBinPerDistinctValue => Err(refuse()),
            }
        }
        StatTest::Chisquare
        | StatTest::Z
        | StatTest::Anderson
        | StatTest::CramerVonMises
        | StatTest::MannWhitney => Err(refuse()),
    }
}

/// The raw Wasserstein-1 distance between two profiles (exact when both are exact).
pub fn wasserstein_distance(r: &NumericProfile, c: &NumericProfile) -> f64 {
    match (r.exact(), c.exact()) {
        (Some(a), Some(b)) => super::stats::wasserstein(&a, &b),
        _ => wasserstein(&Side::of(r), &Side::of(c)),
    }
}
