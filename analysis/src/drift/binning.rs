//! Evidently's binning (`get_binned_data`) and the distances computed over the bins: PSI,
//! Jensen–Shannon and Kullback–Leibler.
//!
//! Numeric columns whose reference has more than 20 distinct values get Sturges equal-width bins
//! over the pooled range, with the edges built exactly as `np.histogram_bin_edges(pooled,
//! bins="sturges")` builds them (a one-ulp difference in an edge moves values lying on it);
//! every other column gets one bin per distinct value of either side.

use super::sample::{pooled, ValueCounts};
use super::StatTest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// More distinct reference values than this switches a numeric column to histogram bins.
pub const PER_VALUE_MAX_DISTINCT: usize = 20;

/// Which of Evidently's two binning rules applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinningRule {
    /// Equal-width bins, Sturges' count, over the pooled range.
    SturgesEqualWidth,
    /// One bin per distinct value of either side.
    OneBinPerDistinctValue,
}

/// The rule Evidently applies to a column, from the reference's distinct-value count.
pub fn rule(numeric: bool, reference_distinct: usize) -> BinningRule {
    if numeric && reference_distinct > PER_VALUE_MAX_DISTINCT {
        BinningRule::SturgesEqualWidth
    } else {
        BinningRule::OneBinPerDistinctValue
    }
}

/// Sturges bin edges over [lo, hi] for `n` pooled values, as numpy computes them:
/// width = (hi - lo) / (log2 n + 1), bins = ceil((hi - lo) / width), edge_i = i * step + lo,
/// last edge = hi.
pub fn sturges_edges(lo: f64, hi: f64, n: u64) -> Vec<f64> {
    if hi <= lo {
        // numpy widens a zero range to [lo - 0.5, hi + 0.5] with one bin.
        return vec![lo - 0.5, hi + 0.5];
    }
    let width = (hi - lo) / ((n as f64).log2() + 1.0);
    let bins = ((hi - lo) / width).ceil() as usize;
    let step = (hi - lo) / bins as f64;
    let mut edges: Vec<f64> = (0..bins).map(|i| i as f64 * step + lo).collect();
    edges.push(hi);
    edges
}

/// The bin of `x` for ascending `edges`: edge_i <= x < edge_{i+1}, the last bin closed.
pub fn bin_index(edges: &[f64], x: f64) -> usize {
    let bins = edges.len() - 1;
    edges
        .partition_point(|&e| e <= x)
        .saturating_sub(1)
        .min(bins - 1)
}

/// Counts of two samples over the same bins, with the proportions Evidently derives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bins {
    /// The rule that produced the bins.
    pub rule: BinningRule,
    /// Bin edges (Sturges only).
    pub edges: Option<Vec<f64>>,
    /// Reference mass per bin (whole counts when exact, fractional when estimated).
    pub reference: Vec<f64>,
    /// Current mass per bin.
    pub current: Vec<f64>,
}

impl Bins {
    /// Evidently's bins for two exact numeric samples.
    pub fn numeric(r: &ValueCounts, c: &ValueCounts) -> Bins {
        match rule(true, r.distinct()) {
            BinningRule::SturgesEqualWidth => {
                let lo = r.min().unwrap_or(0.0).min(c.min().unwrap_or(0.0));
                let hi = r.max().unwrap_or(0.0).max(c.max().unwrap_or(0.0));
                let edges = sturges_edges(lo, hi, r.n() + c.n());
                let count = |s: &ValueCounts| {
                    let mut out = vec![0.0; edges.len() - 1];
                    for (&v, &n) in s.values().iter().zip(s.counts()) {
                        out[bin_index(&edges, v)] += n as f64;
                    }
                    out
                };
                Bins {
                    rule: BinningRule::SturgesEqualWidth,
                    reference: count(r),
                    current: count(c),
                    edges: Some(edges),
                }
            }
            BinningRule::OneBinPerDistinctValue => {
                let (rc, cc) = per_value_counts_numeric(r, c);
                Bins::from_counts(rc, cc)
            }
        }
    }

    /// One bin per value, from parallel count tables.
    pub fn from_counts(reference: Vec<u64>, current: Vec<u64>) -> Bins {
        Bins {
            rule: BinningRule::OneBinPerDistinctValue,
            edges: None,
            reference: reference.into_iter().map(|c| c as f64).collect(),
            current: current.into_iter().map(|c| c as f64).collect(),
        }
    }

    /// Reference proportions: count / n, not renormalised.
    pub fn reference_proportions(&self) -> Vec<f64> {
        proportions(&self.reference)
    }

    /// Current proportions: count / n, not renormalised.
    pub fn current_proportions(&self) -> Vec<f64> {
        proportions(&self.current)
    }

    /// PSI, JS or KL over these bins (panics for other tests).
    pub fn distance(&self, test: StatTest) -> f64 {
        let (r, c) = (self.reference_proportions(), self.current_proportions());
        match test {
            StatTest::Psi => psi(&r, &c),
            StatTest::JensenShannon => jensen_shannon(&r, &c),
            StatTest::KlDiv => kl_divergence(&r, &c),
            other => panic!("{other} is not a bin distance"),
        }
    }
}

fn proportions(counts: &[f64]) -> Vec<f64> {
    let n: f64 = counts.iter().sum();
    counts.iter().map(|c| c / n).collect()
}

/// Per-value count tables over the union of the distinct values of two numeric samples.
pub fn per_value_counts_numeric(r: &ValueCounts, c: &ValueCounts) -> (Vec<u64>, Vec<u64>) {
    pooled(r, c).iter().map(|p| (p.count_a, p.count_b)).unzip()
}

/// Per-value count tables over the union of the categories of two count maps (sorted by
/// category; order does not change any statistic).
pub fn per_value_counts(
    r: &BTreeMap<String, u64>,
    c: &BTreeMap<String, u64>,
) -> (Vec<u64>, Vec<u64>) {
    let mut keys: Vec<&String> = r.keys().chain(c.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.iter()
        .map(|k| {
            (
                r.get(*k).copied().unwrap_or(0),
                c.get(*k).copied().unwrap_or(0),
            )
        })
        .unzip()
}

/// The value Evidently puts in place of a zero proportion on one side: the smallest non-zero
/// proportion / 1e6 when that is <= 0.0001, else 0.0001. `None` when the side has no zero.
pub fn zero_fill_value(p: &[f64]) -> Option<f64> {
    if !p.contains(&0.0) {
        return None;
    }
    let m = p
        .iter()
        .copied()
        .filter(|&v| v != 0.0)
        .fold(f64::INFINITY, f64::min);
    Some(if m <= 0.0001 { m / 1e6 } else { 0.0001 })
}

/// Proportions with Evidently's zero replacement applied (PSI and KL use these).
pub fn zero_filled(p: &[f64]) -> Vec<f64> {
    match zero_fill_value(p) {
        None => p.to_vec(),
        Some(fill) => p.iter().map(|&v| if v == 0.0 { fill } else { v }).collect(),
    }
}

/// PSI = sum (r - c) ln(r / c) over zero-filled proportions, not renormalised.
pub fn psi(r: &[f64], c: &[f64]) -> f64 {
    let (r, c) = (zero_filled(r), zero_filled(c));
    r.iter().zip(&c).map(|(a, b)| (a - b) * (a / b).ln()).sum()
}

/// Jensen–Shannon distance (the square root of the divergence, natural log) over raw
/// proportions, each normalised to sum 1; zero terms contribute nothing.
pub fn jensen_shannon(p: &[f64], q: &[f64]) -> f64 {
    let sp: f64 = p.iter().sum();
    let sq: f64 = q.iter().sum();
    let mut left = 0.0;
    let mut right = 0.0;
    for (&a, &b) in p.iter().zip(q) {
        let (a, b) = (a / sp, b / sq);
        let m = (a + b) / 2.0;
        if a > 0.0 {
            left += a * (a / m).ln();
        }
        if b > 0.0 {
            right += b * (b / m).ln();
        }
    }
    ((left + right) / 2.0).sqrt()
}

/// KL(r || c) = sum r ln(r / c) over zero-filled proportions renormalised to sum 1
/// (`scipy.stats.entropy`).
pub fn kl_divergence(r: &[f64], c: &[f64]) -> f64 {
    let (r, c) = (zero_filled(r), zero_filled(c));
    let sr: f64 = r.iter().sum();
    let sc: f64 = c.iter().sum();
    r.iter()
        .zip(&c)
        .filter(|(a, _)| **a > 0.0)
        .map(|(a, b)| (a / sr) * ((a / sr) / (b / sc)).ln())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sturges_adds_a_bin_when_rounding_lands_past_an_integer() {
        // README: N = 2000 gives 12 bins, 110 gives 8, 40000 gives 17.
        assert_eq!(sturges_edges(0.0, 1.0, 2000).len() - 1, 12);
        assert_eq!(sturges_edges(0.0, 1.0, 110).len() - 1, 8);
        assert_eq!(sturges_edges(0.0, 1.0, 40000).len() - 1, 17);
    }

    #[test]
    fn the_maximum_falls_in_the_last_bin_and_an_edge_value_in_the_bin_it_opens() {
        let edges = [0.0, 1.0, 2.0];
        assert_eq!(bin_index(&edges, 2.0), 1);
        assert_eq!(bin_index(&edges, 1.0), 1);
        assert_eq!(bin_index(&edges, 0.999), 0);
    }

    #[test]
    fn zero_fill_uses_a_millionth_of_a_tiny_proportion() {
        assert_eq!(zero_fill_value(&[0.5, 0.5]), None);
        assert_eq!(zero_fill_value(&[0.0, 1.0]), Some(0.0001));
        assert_eq!(
            zero_fill_value(&[0.0, 0.00005, 0.99995]),
            Some(0.00005 / 1e6)
        );
    }
}
