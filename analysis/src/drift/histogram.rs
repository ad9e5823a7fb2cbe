//! Drift between two fixed-bucket histograms: the form in which histogram series already arrive
//! (Prometheus classic `le` buckets, OTLP explicit-bucket histograms), where the individual
//! values are gone.
//!
//! The buckets play the part of Evidently's per-value bins: the tests that work on bins (PSI,
//! Jensen–Shannon, KL, chi-square, and z for two buckets) are exact over them, and the default
//! test follows Evidently's rule for binned (categorical) columns. KS is offered too, with D
//! measured at the bucket bounds only: that is a lower bound of the D of the underlying values,
//! so its p-value errs towards "no drift".

use super::{binning, kolmogorov, stats, DriftError, DriftOptions, DriftResult, Method, StatTest};
use super::{default_test, ColumnKind};
use serde::{Deserialize, Serialize};

/// Counts per bucket over fixed upper bounds: bucket i holds values in
/// (upper_bounds[i-1], upper_bounds[i]], and one more bucket holds values above the last bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "HistogramWire")]
pub struct FixedHistogram {
    upper_bounds: Vec<f64>,
    counts: Vec<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistogramWire {
    upper_bounds: Vec<f64>,
    counts: Vec<u64>,
}

impl TryFrom<HistogramWire> for FixedHistogram {
    type Error = HistogramError;

    fn try_from(w: HistogramWire) -> Result<FixedHistogram, HistogramError> {
        FixedHistogram::new(w.upper_bounds, w.counts)
    }
}

/// Why a histogram is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HistogramError {
    /// Bounds must be finite and strictly increasing.
    #[error("upper_bounds must be finite and strictly increasing (bound {index} is {value} after {previous})")]
    BadBounds {
        /// Position of the offending bound.
        index: usize,
        /// Its value.
        value: f64,
        /// The bound before it.
        previous: f64,
    },
    /// One count per bound plus the overflow bucket.
    #[error("counts must have one entry per upper bound plus one for the overflow bucket: {bounds} bounds need {} counts, got {counts}", bounds + 1)]
    CountLength {
        /// Number of bounds.
        bounds: usize,
        /// Number of counts given.
        counts: usize,
    },
    /// Cumulative (`le`) counts must not decrease.
    #[error("cumulative counts must not decrease (bucket {index}: {value} after {previous})")]
    NotCumulative {
        /// Position of the offending count.
        index: usize,
        /// Its value.
        value: u64,
        /// The count before it.
        previous: u64,
    },
    /// Merging histograms with different buckets.
    #[error(
        "the histograms have different bucket bounds: re-bucket them to the same bounds first"
    )]
    DifferentBounds,
}

impl FixedHistogram {
    /// A histogram from per-bucket counts (`counts.len() == upper_bounds.len() + 1`; the last
    /// count is the overflow bucket above the last bound).
    pub fn new(upper_bounds: Vec<f64>, counts: Vec<u64>) -> Result<FixedHistogram, HistogramError> {
        for (i, w) in upper_bounds.windows(2).enumerate() {
            if w[1].partial_cmp(&w[0]) != Some(std::cmp::Ordering::Greater) || !w[1].is_finite() {
                return Err(HistogramError::BadBounds {
                    index: i + 1,
                    value: w[1],
                    previous: w[0],
                });
            }
        }
        if let Some(&first) = upper_bounds.first() {
            if !first.is_finite() {
                return Err(HistogramError::BadBounds {
                    index: 0,
                    value: first,
                    previous: f64::NEG_INFINITY,
                });
            }
        }
        if counts.len() != upper_bounds.len() + 1 {
            return Err(HistogramError::CountLength {
                bounds: upper_bounds.len(),
                counts: counts.len(),
            });
        }
        Ok(FixedHistogram {
            upper_bounds,
            counts,
        })
    }

    /// A histogram from Prometheus-style cumulative buckets: `(le, cumulative count)` pairs in
    /// ascending `le`, the last one `+Inf`.
    pub fn from_cumulative(buckets: &[(f64, u64)]) -> Result<FixedHistogram, HistogramError> {
        let mut bounds = Vec::with_capacity(buckets.len());
        let mut counts = Vec::with_capacity(buckets.len());
        let mut previous = 0u64;
        for (i, &(le, cum)) in buckets.iter().enumerate() {
            if cum < previous {
                return Err(HistogramError::NotCumulative {
                    index: i,
                    value: cum,
                    previous,
                });
            }
            counts.push(cum - previous);
            previous = cum;
            if le != f64::INFINITY {
                bounds.push(le);
            }
        }
        if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
            counts.push(0);
        }
        FixedHistogram::new(bounds, counts)
    }

    /// The upper bounds.
    pub fn upper_bounds(&self) -> &[f64] {
        &self.upper_bounds
    }

    /// Counts per bucket, the overflow bucket last.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Total count.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Adds another window's histogram over the same buckets.
    pub fn merge(&mut self, other: &FixedHistogram) -> Result<(), HistogramError> {
        if self.upper_bounds != other.upper_bounds {
            return Err(HistogramError::DifferentBounds);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        Ok(())
    }
}

/// Compares two histograms over the same buckets. Empty buckets on both sides are left out
/// (Evidently only makes bins for values that occur).
pub fn compare_histograms(
    reference: &FixedHistogram,
    current: &FixedHistogram,
    options: &DriftOptions,
) -> Result<DriftResult, DriftError> {
    if reference.count() == 0 {
        return Err(DriftError::Empty { side: "reference" });
    }
    if current.count() == 0 {
        return Err(DriftError::Empty { side: "current" });
    }
    if reference.upper_bounds != current.upper_bounds {
        return Err(DriftError::BucketsDiffer);
    }
    let (rc, cc): (Vec<u64>, Vec<u64>) = reference
        .counts
        .iter()
        .zip(&current.counts)
        .filter(|(r, c)| **r > 0 || **c > 0)
        .map(|(r, c)| (*r, *c))
        .unzip();
    let test = options
        .test
        .unwrap_or_else(|| default_test(ColumnKind::Categorical, reference.count(), rc.len()));
    let threshold = options.threshold.unwrap_or(test.default_threshold());
    if !threshold.is_finite() || threshold <= 0.0 || (test.is_p_value() && threshold >= 1.0) {
        return Err(DriftError::BadThreshold(threshold));
    }
    let (statistic, p_value) = match test {
        StatTest::Psi | StatTest::JensenShannon | StatTest::KlDiv => {
            (binning::Bins::from_counts(rc, cc).distance(test), None)
        }
        StatTest::Chisquare => {
            let (s, p) = stats::chisquare_goodness_of_fit(&rc, &cc);
            (s, Some(p))
        }
        StatTest::Z if rc.len() <= 2 => {
            let (z, p) = stats::two_proportion_z(&rc, &cc);
            (z, Some(p))
        }
        StatTest::Ks => {
            let (nr, nc) = (reference.count() as f64, current.count() as f64);
            let (mut fr, mut fc, mut d) = (0u64, 0u64, 0.0f64);
            for (r, c) in rc.iter().zip(&cc) {
                fr += r;
                fc += c;
                d = d.max((fr as f64 / nr - fc as f64 / nc).abs());
            }
            let p = kolmogorov::two_sample_p_value(reference.count(), current.count(), d);
            (d, Some(p))
        }
        other => {
            return Err(DriftError::NotApplicable {
                test: other,
                kind: ColumnKind::Categorical,
                allowed: "psi, jensenshannon, kl_div, chisquare, ks, and z for two buckets".into(),
            })
        }
    };
    let score = p_value.unwrap_or(statistic);
    Ok(DriftResult {
        test,
        statistic,
        p_value,
        score,
        threshold,
        drifted: test.drifted(score, threshold),
        method: Method::Histogram,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::{compare, ColumnProfile};

    #[test]
    fn bucket_counts_give_the_same_psi_as_the_categorical_column_they_came_from() {
        // Values 1..=4 bucketed one per bucket must give what the per-value test gives.
        let r = FixedHistogram::from_cumulative(&[
            (1.0, 10),
            (2.0, 30),
            (3.0, 60),
            (f64::INFINITY, 100),
        ])
        .unwrap();
        let c = FixedHistogram::from_cumulative(&[
            (1.0, 20),
            (2.0, 35),
            (3.0, 70),
            (f64::INFINITY, 100),
        ])
        .unwrap();
        assert_eq!(r.counts(), &[10, 20, 30, 40]);
        assert_eq!(r.upper_bounds(), &[1.0, 2.0, 3.0]);
        let expand = |h: &FixedHistogram| {
            h.counts()
                .iter()
                .enumerate()
                .flat_map(|(i, n)| std::iter::repeat_n(format!("b{i}"), *n as usize))
                .collect::<Vec<_>>()
        };
        let (er, ec) = (expand(&r), expand(&c));
        for test in [
            StatTest::Psi,
            StatTest::JensenShannon,
            StatTest::KlDiv,
            StatTest::Chisquare,
        ] {
            let options = DriftOptions {
                test: Some(test),
                threshold: None,
            };
            let h = compare_histograms(&r, &c, &options).unwrap();
            let cat = compare(
                &ColumnProfile::categorical(er.iter().map(String::as_str)),
                &ColumnProfile::categorical(ec.iter().map(String::as_str)),
                &options,
            )
            .unwrap();
            assert!(
                (h.statistic - cat.statistic).abs() < 1e-12,
                "{test}: {} vs {}",
                h.statistic,
                cat.statistic
            );
            assert_eq!(h.method, Method::Histogram);
        }
    }

    #[test]
    fn cumulative_counts_that_decrease_are_refused_naming_the_bucket() {
        let err = FixedHistogram::from_cumulative(&[(1.0, 10), (2.0, 5), (f64::INFINITY, 12)])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cumulative counts must not decrease (bucket 1: 5 after 10)"
        );
    }

    #[test]
    fn histograms_over_different_buckets_are_refused() {
        let a = FixedHistogram::new(vec![1.0, 2.0], vec![1, 1, 1]).unwrap();
        let b = FixedHistogram::new(vec![1.0, 3.0], vec![1, 1, 1]).unwrap();
        let err = compare_histograms(&a, &b, &DriftOptions::default()).unwrap_err();
        assert_eq!(err, DriftError::BucketsDiffer);
    }

    #[test]
    fn ks_on_buckets_never_exceeds_ks_on_the_values() {
        let rv: Vec<f64> = (0..200).map(|i| f64::from(i) / 20.0).collect();
        let cv: Vec<f64> = (0..200).map(|i| f64::from(i) / 20.0 + 0.7).collect();
        let bounds: Vec<f64> = (1..=12).map(f64::from).collect();
        let bucket = |v: &[f64]| {
            let mut counts = vec![0u64; bounds.len() + 1];
            for x in v {
                counts[bounds.partition_point(|b| b < x)] += 1;
            }
            FixedHistogram::new(bounds.clone(), counts).unwrap()
        };
        let ks = DriftOptions {
            test: Some(StatTest::Ks),
            threshold: None,
        };
        let h = compare_histograms(&bucket(&rv), &bucket(&cv), &ks).unwrap();
        let exact = compare(
            &ColumnProfile::numeric(&rv),
            &ColumnProfile::numeric(&cv),
            &ks,
        )
        .unwrap();
        assert!(
            h.statistic > 0.0 && h.statistic <= exact.statistic,
            "{} vs {}",
            h.statistic,
            exact.statistic
        );
    }
}
