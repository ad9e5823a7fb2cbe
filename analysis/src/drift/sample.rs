//! An exact numeric sample, stored as its sorted distinct values with their counts.
//!
//! Every exact statistic only needs the sorted sample and its tie groups, so this form serves a
//! thousand raw values and ten million values of a low-cardinality column alike.

use serde::{Deserialize, Serialize};

/// Sorted distinct finite values with their multiplicities.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ValueCounts {
    values: Vec<f64>,
    counts: Vec<u64>,
    n: u64,
}

impl ValueCounts {
    /// Builds the counts of a sample. NaN and ±infinity are dropped first, as Evidently does
    /// before any test; `-0.0` counts as `0.0`.
    pub fn from_values(values: &[f64]) -> ValueCounts {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_unstable_by(f64::total_cmp);
        Self::from_sorted(&sorted)
    }

    /// Builds the counts of a sample that is already sorted ascending and finite.
    pub fn from_sorted(sorted: &[f64]) -> ValueCounts {
        let mut out = ValueCounts::default();
        for &v in sorted {
            debug_assert!(v.is_finite());
            let v = if v == 0.0 { 0.0 } else { v };
            match out.values.last() {
                Some(&last) if last == v => *out.counts.last_mut().expect("parallel") += 1,
                _ => {
                    out.values.push(v);
                    out.counts.push(1);
                }
            }
        }
        out.n = sorted.len() as u64;
        out
    }

    /// Builds from `(value, count)` pairs in any order; pairs with a non-finite value or a zero
    /// count are dropped and equal values are added up.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (f64, u64)>) -> ValueCounts {
        let mut pairs: Vec<(f64, u64)> = pairs
            .into_iter()
            .filter(|(v, c)| v.is_finite() && *c > 0)
            .map(|(v, c)| (if v == 0.0 { 0.0 } else { v }, c))
            .collect();
        pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let mut out = ValueCounts::default();
        for (v, c) in pairs {
            match out.values.last() {
                Some(&last) if last == v => *out.counts.last_mut().expect("parallel") += c,
                _ => {
                    out.values.push(v);
                    out.counts.push(c);
                }
            }
            out.n += c;
        }
        out
    }

    /// Number of values (with multiplicity).
    pub fn n(&self) -> u64 {
        self.n
    }

    /// True when there is no value.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Number of distinct values.
    pub fn distinct(&self) -> usize {
        self.values.len()
    }

    /// The distinct values, ascending.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The count of each distinct value, parallel to [`values`](Self::values).
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Smallest value.
    pub fn min(&self) -> Option<f64> {
        self.values.first().copied()
    }

    /// Largest value.
    pub fn max(&self) -> Option<f64> {
        self.values.last().copied()
    }

    /// Arithmetic mean.
    pub fn mean(&self) -> f64 {
        let sum: f64 = self
            .values
            .iter()
            .zip(&self.counts)
            .map(|(v, c)| v * *c as f64)
            .sum();
        sum / self.n as f64
    }

    /// Population standard deviation (ddof = 0), the form Evidently normalises Wasserstein by.
    pub fn std_population(&self) -> f64 {
        let mean = self.mean();
        let ss: f64 = self
            .values
            .iter()
            .zip(&self.counts)
            .map(|(v, c)| (v - mean) * (v - mean) * *c as f64)
            .sum();
        (ss / self.n as f64).sqrt()
    }

    /// Number of values `<= x`.
    pub fn count_at_or_below(&self, x: f64) -> u64 {
        let idx = self.values.partition_point(|&v| v <= x);
        self.counts[..idx].iter().sum()
    }

    /// Merges another sample into this one.
    pub fn merge(&mut self, other: &ValueCounts) {
        let mut values = Vec::with_capacity(self.values.len() + other.values.len());
        let mut counts = Vec::with_capacity(values.capacity());
        let (mut i, mut j) = (0, 0);
        while i < self.values.len() || j < other.values.len() {
            let take_left = j == other.values.len()
                || (i < self.values.len() && self.values[i] <= other.values[j]);
            let (v, c) = if take_left {
                i += 1;
                (self.values[i - 1], self.counts[i - 1])
            } else {
                j += 1;
                (other.values[j - 1], other.counts[j - 1])
            };
            match values.last() {
                Some(&last) if last == v => *counts.last_mut().expect("parallel") += c,
                _ => {
                    values.push(v);
                    counts.push(c);
                }
            }
        }
        self.values = values;
        self.counts = counts;
        self.n += other.n;
    }
}

/// Walks the pooled distinct values of two samples in order, yielding
/// `(value, count in a, count in b, a count <= value, b count <= value)`.
pub(crate) fn pooled(a: &ValueCounts, b: &ValueCounts) -> Vec<PooledValue> {
    let mut out = Vec::with_capacity(a.distinct() + b.distinct());
    let (mut i, mut j) = (0, 0);
    let (mut cum_a, mut cum_b) = (0u64, 0u64);
    while i < a.values.len() || j < b.values.len() {
        let va = a.values.get(i).copied().unwrap_or(f64::INFINITY);
        let vb = b.values.get(j).copied().unwrap_or(f64::INFINITY);
        let v = va.min(vb);
        let ca = if va == v {
            i += 1;
            a.counts[i - 1]
        } else {
            0
        };
        let cb = if vb == v {
            j += 1;
            b.counts[j - 1]
        } else {
            0
        };
        cum_a += ca;
        cum_b += cb;
        out.push(PooledValue {
            value: v,
            count_a: ca,
            count_b: cb,
            cum_a,
            cum_b,
        });
    }
    out
}

/// One distinct value of two pooled samples.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PooledValue {
    pub value: f64,
    pub count_a: u64,
    pub count_b: u64,
    /// Values of `a` that are `<= value`.
    pub cum_a: u64,
    /// Values of `b` that are `<= value`.
    pub cum_b: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_non_finite_values_and_groups_ties() {
        let s = ValueCounts::from_values(&[2.0, f64::NAN, 1.0, 2.0, f64::INFINITY, -0.0, 0.0]);
        assert_eq!(s.values(), &[0.0, 1.0, 2.0]);
        assert_eq!(s.counts(), &[2, 1, 2]);
        assert_eq!(s.n(), 5);
    }

    #[test]
    fn merge_equals_counting_the_concatenation() {
        let a = [3.0, 1.0, 1.0, 5.5];
        let b = [1.0, 2.0, 5.5, 9.0];
        let mut m = ValueCounts::from_values(&a);
        m.merge(&ValueCounts::from_values(&b));
        let all: Vec<f64> = a.iter().chain(&b).copied().collect();
        assert_eq!(m, ValueCounts::from_values(&all));
    }
}
