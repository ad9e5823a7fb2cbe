//! Distribution drift: does a column's current window look like its reference window?
//!
//! The statistics and the verdicts follow Evidently 0.7 (and, underneath it, scipy 1.17), because
//! that is what data teams already trust and compare against: the same binning (Sturges
//! equal-width bins over the pooled range, or one bin per distinct value), the same zero handling,
//! the same thresholds with their mixed `<` / `<=` rules, and the same automatic choice of test by
//! column kind, reference size and number of distinct values. `tests/fixtures/drift/README.md`
//! states every formula; the fixture test checks each one against scipy's and Evidently's output.
//!
//! Columns arrive as [`ColumnProfile`]s: mergeable summaries, so a window of ten million values is
//! compared without holding it. A numeric profile keeps exact value counts while the column has
//! few distinct values (then every statistic is exact) and always a t-digest quantile sketch
//! (then the statistics that need the whole distribution are estimated from it; the result says
//! which, and BENCHMARKS.md records how far the estimates are from the exact values).
//!
//! Layout: [`sample`] holds exact samples, [`stats`] and [`kolmogorov`] the exact statistics,
//! [`binning`] Evidently's bins and the bin-based distances, [`StatTest`] the test registry and
//! the default-test rule, [`profile`] the summaries and [`estimate`] the statistics computed
//! from sketches. [`compare`] is the entry point for profiles; [`compare_histograms`] compares
//! fixed-bucket histograms (histogram series), whose individual values are gone.

pub mod binning;
pub mod estimate;
pub mod histogram;
pub mod kolmogorov;
pub mod profile;
pub mod sample;
pub mod stats;
mod stattest;

pub use histogram::{compare_histograms, FixedHistogram, HistogramError};
pub use profile::{CategoricalProfile, ColumnProfile, NumericProfile, ProfileOptions};
pub use sample::ValueCounts;
pub use stattest::{default_test, ColumnKind, StatTest};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a caller may override; everything left `None` follows Evidently's defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftOptions {
    /// The test to run; `None` picks Evidently's default for the column ([`default_test`]).
    #[serde(default)]
    pub test: Option<StatTest>,
    /// The drift threshold; `None` uses the test's default ([`StatTest::default_threshold`]).
    #[serde(default)]
    pub threshold: Option<f64>,
}

/// How a result was computed: from the exact values, or estimated from quantile sketches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// From the exact values (or exact value counts) of both sides.
    Exact,
    /// At least one side is summarised by a t-digest: the statistic is an estimate.
    Sketch,
    /// Over the buckets of two fixed-bucket histograms (exact for the bin tests; KS D is
    /// measured at the bucket bounds only).
    Histogram,
}

/// One drift verdict for one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftResult {
    /// The test that was run (serialised with Evidently's name, e.g. `"ks"`).
    pub test: StatTest,
    /// The test's statistic: KS D, the chi-square statistic, z, normed Wasserstein, PSI, ...
    pub statistic: f64,
    /// The p-value, for the tests that have one.
    pub p_value: Option<f64>,
    /// What the threshold is compared with: the p-value for p-value tests, else the statistic
    /// (Evidently's `drift_score`).
    pub score: f64,
    /// The threshold in force.
    pub threshold: f64,
    /// The verdict, with the test's own comparison rule ([`StatTest::drifted`]).
    pub drifted: bool,
    /// Exact, or estimated from sketches.
    pub method: Method,
}

/// Why two columns cannot be compared; each message says what to send instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DriftError {
    /// One side has no usable value (empty, or only NaN / infinities).
    #[error("the {side} column has no finite values: send at least one value per side")]
    Empty {
        /// `"reference"` or `"current"`.
        side: &'static str,
    },
    /// A numeric column compared with a categorical one.
    #[error("the reference column is {reference} but the current column is {current}: profile both sides the same way")]
    KindMismatch {
        /// Kind of the reference profile.
        reference: ColumnKind,
        /// Kind of the current profile.
        current: ColumnKind,
    },
    /// The test does not apply to this kind of column (e.g. `ks` on categories).
    #[error("test {test} does not apply to {kind} columns: choose one of {allowed}")]
    NotApplicable {
        /// The requested test.
        test: StatTest,
        /// The column kind.
        kind: ColumnKind,
        /// Tests that do apply, comma-separated.
        allowed: String,
    },
    /// The test needs exact values, but a side is only summarised by a sketch.
    #[error("test {test} needs the exact values of both sides, but the {side} side has more than {limit} distinct values and is summarised by a sketch: choose ks, wasserstein, psi, jensenshannon or kl_div, or raise exact_distinct_limit")]
    NeedsExactValues {
        /// The requested test.
        test: StatTest,
        /// The side that is only sketched.
        side: &'static str,
        /// That side's exact-value limit.
        limit: usize,
    },
    /// Two histograms with different bucket bounds.
    #[error("the reference and current histograms have different bucket bounds: compare histograms over the same buckets")]
    BucketsDiffer,
    /// The threshold is not a finite number in range.
    #[error("threshold {0} is not usable: give a finite number > 0 (p-value thresholds also < 1)")]
    BadThreshold(f64),
}

/// Compares a current column with its reference and returns the verdict of one test.
///
/// The test is `options.test` or Evidently's default for the column; the threshold is
/// `options.threshold` or the test's default.
pub fn compare(
    reference: &ColumnProfile,
    current: &ColumnProfile,
    options: &DriftOptions,
) -> Result<DriftResult, DriftError> {
    if reference.count() == 0 {
        return Err(DriftError::Empty { side: "reference" });
    }
    if current.count() == 0 {
        return Err(DriftError::Empty { side: "current" });
    }
    let kind = reference.kind();
    if current.kind() != kind {
        return Err(DriftError::KindMismatch {
            reference: kind,
            current: current.kind(),
        });
    }
    let test = match options.test {
        Some(t) => t,
        None => default_test(
            kind,
            reference.count(),
            profile::distinct_pooled(reference, current),
        ),
    };
    if !test.applies_to(kind) {
        return Err(DriftError::NotApplicable {
            test,
            kind,
            allowed: StatTest::ALL
                .iter()
                .filter(|t| t.applies_to(kind))
                .map(|t| t.name())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let threshold = options.threshold.unwrap_or(test.default_threshold());
    if !threshold.is_finite() || threshold <= 0.0 || (test.is_p_value() && threshold >= 1.0) {
        return Err(DriftError::BadThreshold(threshold));
    }
    let (statistic, p_value, method) = match (reference, current) {
        (ColumnProfile::Categorical(r), ColumnProfile::Categorical(c)) => {
            let (s, p) = categorical_statistic(test, &r.counts, &c.counts);
            (s, p, Method::Exact)
        }
        (ColumnProfile::Numeric(r), ColumnProfile::Numeric(c)) => match (r.exact(), c.exact()) {
            (Some(re), Some(ce)) => {
                let (s, p) = numeric_statistic(test, &re, &ce);
                (s, p, Method::Exact)
            }
            _ => {
                let (s, p) = estimate::numeric_statistic(test, r, c)?;
                (s, p, Method::Sketch)
            }
        },
        _ => unreachable!("kinds were checked to be equal above"),
    };
    let score = p_value.unwrap_or(statistic);
    Ok(DriftResult {
        test,
        statistic,
        p_value,
        score,
        threshold,
        drifted: test.drifted(score, threshold),
        method,
    })
}

/// The statistic and p-value of `test` on two exact numeric samples (the test must apply to
/// numeric columns; chi-square and z run on the per-value bins, as Evidently does).
pub fn numeric_statistic(test: StatTest, r: &ValueCounts, c: &ValueCounts) -> (f64, Option<f64>) {
    match test {
        StatTest::Ks => {
            let d = stats::ks_statistic(r, c);
            (d, Some(kolmogorov::two_sample_p_value(r.n(), c.n(), d)))
        }
        StatTest::Wasserstein => (stats::wasserstein_normed(r, c), None),
        StatTest::Anderson => {
            let ad = stats::anderson_darling(r, c);
            (ad.statistic, Some(ad.p_value))
        }
        StatTest::CramerVonMises => {
            let (t, p) = stats::cramer_von_mises(r, c);
            (t, Some(p))
        }
        StatTest::MannWhitney => {
            let mw = stats::mann_whitney(r, c);
            // Evidently asks scipy for alternative="less": only an upward shift counts.
            (mw.u1, Some(mw.p_less))
        }
        StatTest::Psi | StatTest::JensenShannon | StatTest::KlDiv => {
            let bins = binning::Bins::numeric(r, c);
            (bins.distance(test), None)
        }
        StatTest::Chisquare | StatTest::Z => {
            let (rc, cc) = binning::per_value_counts_numeric(r, c);
            categorical_from_table(test, &rc, &cc)
        }
    }
}

/// The statistic and p-value of `test` on two categorical count tables.
pub fn categorical_statistic(
    test: StatTest,
    r: &BTreeMap<String, u64>,
    c: &BTreeMap<String, u64>,
) -> (f64, Option<f64>) {
    let (rc, cc) = binning::per_value_counts(r, c);
    categorical_from_table(test, &rc, &cc)
}

fn categorical_from_table(test: StatTest, rc: &[u64], cc: &[u64]) -> (f64, Option<f64>) {
    match test {
        StatTest::Chisquare => {
            let (s, p) = stats::chisquare_goodness_of_fit(rc, cc);
            (s, Some(p))
        }
        StatTest::Z => {
            let (z, p) = stats::two_proportion_z(rc, cc);
            (z, Some(p))
        }
        StatTest::Psi | StatTest::JensenShannon | StatTest::KlDiv => {
            let bins = binning::Bins::from_counts(rc.to_vec(), cc.to_vec());
            (bins.distance(test), None)
        }
        _ => unreachable!("applies_to() rejected {test} for categorical columns"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(n: u32, shift: f64) -> ColumnProfile {
        ColumnProfile::numeric(
            &(0..n)
                .map(|i| f64::from(i) * 0.01 + shift)
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn comparing_numbers_with_categories_is_refused_naming_both_kinds() {
        let err = compare(
            &numbers(10, 0.0),
            &ColumnProfile::categorical(["a"]),
            &DriftOptions::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the reference column is numeric but the current column is categorical: profile both sides the same way"
        );
    }

    #[test]
    fn a_numeric_only_test_on_categories_lists_the_tests_that_apply() {
        let cats = ColumnProfile::categorical(["a", "b", "b"]);
        let options = DriftOptions {
            test: Some(StatTest::Ks),
            threshold: None,
        };
        let err = compare(&cats, &cats, &options).unwrap_err().to_string();
        assert_eq!(
            err,
            "test ks does not apply to categorical columns: choose one of chisquare, z, psi, jensenshannon, kl_div"
        );
    }

    #[test]
    fn empty_sides_and_unusable_thresholds_are_refused() {
        let empty = ColumnProfile::numeric(&[f64::NAN]);
        let some = numbers(10, 0.0);
        assert_eq!(
            compare(&some, &empty, &DriftOptions::default()),
            Err(DriftError::Empty { side: "current" })
        );
        let p_over_one = DriftOptions {
            test: Some(StatTest::Ks),
            threshold: Some(1.5),
        };
        assert_eq!(
            compare(&some, &some, &p_over_one),
            Err(DriftError::BadThreshold(1.5))
        );
    }

    #[test]
    fn a_user_threshold_replaces_the_default_and_decides_the_verdict() {
        let (r, c) = (numbers(2000, 0.0), numbers(2000, 1.0));
        let default = compare(&r, &c, &DriftOptions::default()).unwrap();
        assert_eq!(default.test, StatTest::Wasserstein);
        assert!(default.drifted);
        let lenient = DriftOptions {
            test: None,
            threshold: Some(default.statistic * 1.01),
        };
        let got = compare(&r, &c, &lenient).unwrap();
        assert_eq!(
            (got.threshold, got.drifted),
            (default.statistic * 1.01, false)
        );
    }

    #[test]
    fn an_exact_reference_against_a_sketched_current_is_estimated() {
        let values: Vec<f64> = (0..5000).map(|i| f64::from(i) * 0.001).collect();
        let r = ColumnProfile::numeric(&values);
        let mut sketched = NumericProfile::from_values(&values, ProfileOptions::default());
        sketched.forget_exact();
        let got = compare(
            &r,
            &ColumnProfile::Numeric(sketched),
            &DriftOptions::default(),
        )
        .unwrap();
        assert_eq!(
            (got.test, got.method, got.drifted),
            (StatTest::Wasserstein, Method::Sketch, false)
        );
        assert!(got.statistic < 1e-3, "same values, W = {}", got.statistic);
    }
}
