//! The registry of drift tests: names, default thresholds, verdict rules and Evidently's choice
//! of a default test for a column.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Numeric or categorical: decides which tests apply and which binning is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// Numbers (Evidently's "numerical").
    Numeric,
    /// Labels compared as equal or different (Evidently's "categorical").
    Categorical,
}

impl fmt::Display for ColumnKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ColumnKind::Numeric => "numeric",
            ColumnKind::Categorical => "categorical",
        })
    }
}

/// A drift test, named as in Evidently's stattest registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StatTest {
    /// Two-sample Kolmogorov–Smirnov, scored by its p-value.
    #[serde(rename = "ks")]
    Ks,
    /// Chi-square goodness of fit of current counts against reference proportions.
    #[serde(rename = "chisquare")]
    Chisquare,
    /// Two-proportion z-test (columns with at most two values).
    #[serde(rename = "z")]
    Z,
    /// Wasserstein-1 divided by the reference's population standard deviation.
    #[serde(rename = "wasserstein")]
    Wasserstein,
    /// Population stability index over Evidently's bins.
    #[serde(rename = "psi")]
    Psi,
    /// Jensen–Shannon distance (natural log) over Evidently's bins.
    #[serde(rename = "jensenshannon")]
    JensenShannon,
    /// Kullback–Leibler divergence of reference from current over Evidently's bins.
    #[serde(rename = "kl_div")]
    KlDiv,
    /// k-sample Anderson–Darling (midrank), scored by its interpolated p-value.
    #[serde(rename = "anderson")]
    Anderson,
    /// Two-sample Cramér–von Mises, asymptotic p-value.
    #[serde(rename = "cramer_von_mises")]
    CramerVonMises,
    /// Mann–Whitney U with Evidently's one-sided alternative ("less").
    #[serde(rename = "mannw")]
    MannWhitney,
}

impl fmt::Display for StatTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl StatTest {
    /// Every test, in a stable order.
    pub const ALL: [StatTest; 10] = [
        StatTest::Ks,
        StatTest::Chisquare,
        StatTest::Z,
        StatTest::Wasserstein,
        StatTest::Psi,
        StatTest::JensenShannon,
        StatTest::KlDiv,
        StatTest::Anderson,
        StatTest::CramerVonMises,
        StatTest::MannWhitney,
    ];

    /// Evidently's registry name.
    pub fn name(self) -> &'static str {
        match self {
            StatTest::Ks => "ks",
            StatTest::Chisquare => "chisquare",
            StatTest::Z => "z",
            StatTest::Wasserstein => "wasserstein",
            StatTest::Psi => "psi",
            StatTest::JensenShannon => "jensenshannon",
            StatTest::KlDiv => "kl_div",
            StatTest::Anderson => "anderson",
            StatTest::CramerVonMises => "cramer_von_mises",
            StatTest::MannWhitney => "mannw",
        }
    }

    /// The name Evidently shows in reports.
    pub fn display_name(self) -> &'static str {
        match self {
            StatTest::Ks => "K-S p_value",
            StatTest::Chisquare => "chi-square p_value",
            StatTest::Z => "Z-test p_value",
            StatTest::Wasserstein => "Wasserstein distance (normed)",
            StatTest::Psi => "PSI",
            StatTest::JensenShannon => "Jensen-Shannon distance",
            StatTest::KlDiv => "Kullback-Leibler divergence",
            StatTest::Anderson => "Anderson-Darling",
            StatTest::CramerVonMises => "Cramer-von Mises",
            StatTest::MannWhitney => "Mann-Whitney U-rank test",
        }
    }

    /// Parses Evidently's registry name.
    pub fn from_name(name: &str) -> Option<StatTest> {
        StatTest::ALL.into_iter().find(|t| t.name() == name)
    }

    /// True when the score is a p-value (drift when it is small), false for distances.
    pub fn is_p_value(self) -> bool {
        !matches!(
            self,
            StatTest::Wasserstein | StatTest::Psi | StatTest::JensenShannon | StatTest::KlDiv
        )
    }

    /// Evidently's default threshold.
    pub fn default_threshold(self) -> f64 {
        match self {
            StatTest::Anderson | StatTest::CramerVonMises => 0.1,
            StatTest::Ks | StatTest::Chisquare | StatTest::Z | StatTest::MannWhitney => 0.05,
            StatTest::Wasserstein | StatTest::Psi | StatTest::JensenShannon | StatTest::KlDiv => {
                0.1
            }
        }
    }

    /// The verdict, with Evidently's comparison for this test: `ks` and `cramer_von_mises` flag
    /// p <= threshold, the other p-value tests p < threshold, distances score >= threshold.
    pub fn drifted(self, score: f64, threshold: f64) -> bool {
        match self {
            StatTest::Ks | StatTest::CramerVonMises => score <= threshold,
            StatTest::Chisquare | StatTest::Z | StatTest::Anderson | StatTest::MannWhitney => {
                score < threshold
            }
            StatTest::Wasserstein | StatTest::Psi | StatTest::JensenShannon | StatTest::KlDiv => {
                score >= threshold
            }
        }
    }

    /// Whether the test can run on this kind of column. Chi-square and z run on numeric columns
    /// too (over one bin per value), because Evidently picks them for numeric columns with few
    /// distinct values.
    pub fn applies_to(self, kind: ColumnKind) -> bool {
        match kind {
            ColumnKind::Numeric => true,
            ColumnKind::Categorical => matches!(
                self,
                StatTest::Chisquare
                    | StatTest::Z
                    | StatTest::Psi
                    | StatTest::JensenShannon
                    | StatTest::KlDiv
            ),
        }
    }
}

/// Evidently's default test for a column.
///
/// `n_reference` is the reference row count (after dropping NaN and infinities) and
/// `n_values` the number of distinct values in reference and current together.
///
/// | kind | n_reference <= 1000 | n_reference > 1000 |
/// | --- | --- | --- |
/// | numeric | <= 2 values: z; 3-5: chisquare; more: ks | <= 5 values: jensenshannon; more: wasserstein |
/// | categorical | <= 2 values: z; more: chisquare | jensenshannon |
pub fn default_test(kind: ColumnKind, n_reference: u64, n_values: usize) -> StatTest {
    match (kind, n_reference <= 1000) {
        (ColumnKind::Numeric, true) => match n_values {
            0..=2 => StatTest::Z,
            3..=5 => StatTest::Chisquare,
            _ => StatTest::Ks,
        },
        (ColumnKind::Numeric, false) => {
            if n_values <= 5 {
                StatTest::JensenShannon
            } else {
                StatTest::Wasserstein
            }
        }
        (ColumnKind::Categorical, true) => {
            if n_values <= 2 {
                StatTest::Z
            } else {
                StatTest::Chisquare
            }
        }
        (ColumnKind::Categorical, false) => StatTest::JensenShannon,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_from_name() {
        for t in StatTest::ALL {
            assert_eq!(StatTest::from_name(t.name()), Some(t));
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.name()));
        }
    }

    #[test]
    fn ks_flags_a_p_value_equal_to_the_threshold_but_chisquare_does_not() {
        assert!(StatTest::Ks.drifted(0.05, 0.05));
        assert!(!StatTest::Chisquare.drifted(0.05, 0.05));
        assert!(StatTest::Psi.drifted(0.1, 0.1));
    }

    #[test]
    fn default_test_switches_at_1000_reference_rows() {
        assert_eq!(default_test(ColumnKind::Numeric, 1000, 100), StatTest::Ks);
        assert_eq!(
            default_test(ColumnKind::Numeric, 1001, 100),
            StatTest::Wasserstein
        );
        assert_eq!(
            default_test(ColumnKind::Numeric, 1001, 5),
            StatTest::JensenShannon
        );
        assert_eq!(
            default_test(ColumnKind::Numeric, 10, 5),
            StatTest::Chisquare
        );
        assert_eq!(default_test(ColumnKind::Categorical, 10, 2), StatTest::Z);
        assert_eq!(
            default_test(ColumnKind::Categorical, 5000, 2),
            StatTest::JensenShannon
        );
    }
}
