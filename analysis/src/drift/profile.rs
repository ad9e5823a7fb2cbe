//! Column profiles: mergeable summaries of one column over one window, the input of drift
//! checks.
//!
//! A numeric profile counts each distinct value exactly while the column has at most
//! `exact_distinct_limit` of them (so a low-cardinality column of any length, and any column of
//! up to that many rows, is compared exactly), and always feeds a t-digest (Apache DataSketches,
//! deterministic, a few kilobytes) that takes over once the exact counts are given up. Count,
//! extrema and the first two moments are kept exactly either way: Evidently's bin edges need
//! the pooled minimum and maximum, and its normed Wasserstein the reference's standard deviation.
//! Profiles of sub-windows merge into the profile of their union, so a scheduler can keep one
//! per minute and compare any window.

use super::binning::PER_VALUE_MAX_DISTINCT;
use super::sample::ValueCounts;
use super::stattest::ColumnKind;
use base64::Engine as _;
use datasketches::tdigest::TDigestMut;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// How detailed a numeric profile is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileOptions {
    /// Keep exact per-value counts while the column has at most this many distinct values
    /// (at least 21, so Evidently's per-value binning rule can always be decided). Default
    /// 20000: about 16 bytes per distinct value.
    #[serde(default = "default_exact_limit")]
    pub exact_distinct_limit: usize,
    /// t-digest compression k (10..=65535). Default 500: at most ~1010 centroids, about 16 KB
    /// serialised. k = 200 measured 8x the KS D error on ten million values (BENCHMARKS.md).
    #[serde(default = "default_sketch_k")]
    pub sketch_k: u16,
}

fn default_exact_limit() -> usize {
    20_000
}

fn default_sketch_k() -> u16 {
    500
}

impl Default for ProfileOptions {
    fn default() -> Self {
        ProfileOptions {
            exact_distinct_limit: default_exact_limit(),
            sketch_k: default_sketch_k(),
        }
    }
}

/// The profile of one column: numeric or categorical.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ColumnProfile {
    /// Numbers.
    Numeric(NumericProfile),
    /// Labels.
    Categorical(CategoricalProfile),
}

impl ColumnProfile {
    /// The profile's column kind.
    pub fn kind(&self) -> ColumnKind {
        match self {
            ColumnProfile::Numeric(_) => ColumnKind::Numeric,
            ColumnProfile::Categorical(_) => ColumnKind::Categorical,
        }
    }

    /// Number of values profiled (after dropping NaN and infinities).
    pub fn count(&self) -> u64 {
        match self {
            ColumnProfile::Numeric(p) => p.count,
            ColumnProfile::Categorical(p) => p.count(),
        }
    }

    /// Adds another window's profile of the same column; a profile of the other kind is
    /// refused (a column that changed from numbers to labels cannot be merged into one
    /// summary) and leaves `self` unchanged.
    pub fn merge(&mut self, other: &ColumnProfile) -> Result<(), super::DriftError> {
        match (self, other) {
            (ColumnProfile::Numeric(a), ColumnProfile::Numeric(b)) => a.merge(b),
            (ColumnProfile::Categorical(a), ColumnProfile::Categorical(b)) => a.merge(b),
            (a, b) => {
                return Err(super::DriftError::KindMismatch {
                    reference: a.kind(),
                    current: b.kind(),
                })
            }
        }
        Ok(())
    }

    /// A numeric profile of `values` with default options.
    pub fn numeric(values: &[f64]) -> ColumnProfile {
        ColumnProfile::Numeric(NumericProfile::from_values(
            values,
            ProfileOptions::default(),
        ))
    }

    /// A categorical profile of `values`.
    pub fn categorical<'a>(values: impl IntoIterator<Item = &'a str>) -> ColumnProfile {
        let mut p = CategoricalProfile::default();
        for v in values {
            p.push(v);
        }
        ColumnProfile::Categorical(p)
    }
}

/// Counts per category.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoricalProfile {
    /// Count of each category.
    pub counts: BTreeMap<String, u64>,
}

impl CategoricalProfile {
    /// Counts one value.
    pub fn push(&mut self, value: &str) {
        *self.counts.entry(value.to_owned()).or_insert(0) += 1;
    }

    /// Adds another profile's counts.
    pub fn merge(&mut self, other: &CategoricalProfile) {
        for (k, v) in &other.counts {
            *self.counts.entry(k.clone()).or_insert(0) += v;
        }
    }

    /// Number of values.
    pub fn count(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// Summary of a numeric column; see the module documentation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(into = "NumericWire", try_from = "NumericWire")]
pub struct NumericProfile {
    count: u64,
    dropped: u64,
    min: f64,
    max: f64,
    mean: f64,
    m2: f64,
    exact_distinct_limit: usize,
    /// Exact counts keyed by the value's bits (-0.0 stored as 0.0); `None` once the column has
    /// had more than `exact_distinct_limit` distinct values.
    exact: Option<HashMap<u64, u64>>,
    sketch: TDigestMut,
}

impl PartialEq for NumericProfile {
    fn eq(&self, other: &Self) -> bool {
        NumericWire::from(self.clone()) == NumericWire::from(other.clone())
    }
}

impl NumericProfile {
    /// An empty profile.
    pub fn new(options: ProfileOptions) -> NumericProfile {
        NumericProfile {
            count: 0,
            dropped: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            mean: 0.0,
            m2: 0.0,
            exact_distinct_limit: options.exact_distinct_limit.max(PER_VALUE_MAX_DISTINCT + 1),
            exact: Some(HashMap::new()),
            sketch: TDigestMut::new(options.sketch_k.max(10)).expect("k >= 10"),
        }
    }

    /// The profile of `values`.
    pub fn from_values(values: &[f64], options: ProfileOptions) -> NumericProfile {
        let mut p = NumericProfile::new(options);
        for &v in values {
            p.push(v);
        }
        p
    }

    /// A column known only by a few published quantiles (OpenLineage's `columnMetrics`
    /// facet: `{"0.25": 3.1, "0.5": 4.0, ...}` with `min`, `max` and `count`): `k` values at
    /// evenly spaced probabilities, interpolated linearly between the given points (min and
    /// max at 0 and 1 when given), with `k` = the column's count but at most 100. Capping `k`
    /// keeps the tests honest about how little a handful of quantiles says: a profile with the
    /// full count would make a p-value as confident as ten million real values. `None` with
    /// fewer than two usable points.
    pub fn from_quantiles(
        quantiles: &[(f64, f64)],
        min: Option<f64>,
        max: Option<f64>,
        count: Option<f64>,
    ) -> Option<NumericProfile> {
        let mut pts: Vec<(f64, f64)> = quantiles
            .iter()
            .copied()
            .filter(|(p, v)| (0.0..=1.0).contains(p) && v.is_finite())
            .collect();
        if let Some(m) = min.filter(|m| m.is_finite()) {
            pts.push((0.0, m));
        }
        if let Some(m) = max.filter(|m| m.is_finite()) {
            pts.push((1.0, m));
        }
        pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        pts.dedup_by(|a, b| a.0 == b.0);
        if pts.len() < 2 || pts.windows(2).any(|w| w[1].1 < w[0].1) {
            return None;
        }
        let k = count
            .filter(|c| c.is_finite() && *c >= 1.0)
            .map_or(100, |c| (c as usize).min(100));
        let (lo, hi) = (pts[0].0, pts[pts.len() - 1].0);
        let mut profile = NumericProfile::new(ProfileOptions::default());
        for j in 0..k {
            let p = lo + (hi - lo) * (j as f64 + 0.5) / k as f64;
            let i = pts.partition_point(|x| x.0 <= p).clamp(1, pts.len() - 1);
            let ((p0, v0), (p1, v1)) = (pts[i - 1], pts[i]);
            let v = if p1 > p0 {
                v0 + (v1 - v0) * (p - p0) / (p1 - p0)
            } else {
                v0
            };
            profile.push(v);
        }
        Some(profile)
    }

    /// Adds one value; NaN and ±infinity are counted as dropped, as Evidently drops them.
    pub fn push(&mut self, value: f64) {
        if !value.is_finite() {
            self.dropped += 1;
            return;
        }
        let value = if value == 0.0 { 0.0 } else { value };
        self.count += 1;
        // Welford's update: a running sum of squares would cancel for large means.
        let delta = value - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (value - self.mean);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        if let Some(map) = &mut self.exact {
            *map.entry(value.to_bits()).or_insert(0) += 1;
            if map.len() > self.exact_distinct_limit {
                self.exact = None;
            }
        }
        self.sketch.update(value);
    }

    /// Merges the profile of another window of the same column.
    pub fn merge(&mut self, other: &NumericProfile) {
        if other.count == 0 {
            self.dropped += other.dropped;
            return;
        }
        let n = self.count + other.count;
        let delta = other.mean - self.mean;
        // Chan et al.'s pairwise combination of means and sums of squares.
        self.m2 += other.m2 + delta * delta * self.count as f64 * other.count as f64 / n as f64;
        self.mean += delta * other.count as f64 / n as f64;
        self.count = n;
        self.dropped += other.dropped;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.exact_distinct_limit = self.exact_distinct_limit.min(other.exact_distinct_limit);
        self.exact = match (self.exact.take(), &other.exact) {
            (Some(mut mine), Some(theirs)) => {
                for (k, v) in theirs {
                    *mine.entry(*k).or_insert(0) += v;
                }
                (mine.len() <= self.exact_distinct_limit).then_some(mine)
            }
            _ => None,
        };
        self.sketch.merge(&other.sketch);
    }

    /// Number of finite values.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Number of NaN / infinite values that were dropped.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Smallest value (`None` when empty).
    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    /// Largest value (`None` when empty).
    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    /// Mean.
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Population standard deviation (ddof = 0).
    pub fn std_population(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        (self.m2 / self.count as f64).sqrt()
    }

    /// The exact-count limit in force.
    pub fn exact_distinct_limit(&self) -> usize {
        self.exact_distinct_limit
    }

    /// Whether exact value counts are still kept.
    pub fn is_exact(&self) -> bool {
        self.exact.is_some()
    }

    /// The exact sample, while it is kept.
    pub fn exact(&self) -> Option<ValueCounts> {
        self.exact
            .as_ref()
            .map(|m| ValueCounts::from_pairs(m.iter().map(|(bits, c)| (f64::from_bits(*bits), *c))))
    }

    /// Number of distinct values while exact counts are kept.
    pub fn distinct(&self) -> Option<usize> {
        self.exact.as_ref().map(HashMap::len)
    }

    /// The t-digest (always fed, also while exact counts are kept).
    pub fn sketch(&self) -> &TDigestMut {
        &self.sketch
    }

    /// Drops the exact counts, as if the column had too many distinct values (for measuring the
    /// sketch against the exact statistics).
    pub fn forget_exact(&mut self) {
        self.exact = None;
    }

    /// Approximate heap size in bytes (exact counts and sketch), for capacity planning.
    pub fn approx_heap_bytes(&self) -> usize {
        let exact = self.exact.as_ref().map_or(0, |m| m.capacity() * 24);
        let mut sketch = self.sketch.clone();
        exact + sketch.serialize().len()
    }
}

/// Distinct values of both sides together, as Evidently's default-test rule counts them. When a
/// side is only sketched the count is unknown but above its exact limit (> 20), which is all the
/// rule needs; `usize::MAX` stands for it.
pub(crate) fn distinct_pooled(reference: &ColumnProfile, current: &ColumnProfile) -> usize {
    match (reference, current) {
        (ColumnProfile::Categorical(r), ColumnProfile::Categorical(c)) => {
            r.counts.len()
                + c.counts
                    .keys()
                    .filter(|k| !r.counts.contains_key(*k))
                    .count()
        }
        (ColumnProfile::Numeric(r), ColumnProfile::Numeric(c)) => match (&r.exact, &c.exact) {
            (Some(a), Some(b)) => a.len() + b.keys().filter(|k| !a.contains_key(*k)).count(),
            _ => usize::MAX,
        },
        _ => 0,
    }
}

/// The JSON form of a numeric profile: exact counts as sorted `[value, count]` pairs and the
/// t-digest in DataSketches' binary format, base64-encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NumericWire {
    count: u64,
    #[serde(default)]
    dropped: u64,
    min: Option<f64>,
    max: Option<f64>,
    mean: f64,
    m2: f64,
    exact_distinct_limit: usize,
    values: Option<Vec<(f64, u64)>>,
    tdigest: String,
}

impl From<NumericProfile> for NumericWire {
    fn from(mut p: NumericProfile) -> NumericWire {
        let values = p.exact().map(|vc| {
            vc.values()
                .iter()
                .copied()
                .zip(vc.counts().iter().copied())
                .collect()
        });
        NumericWire {
            count: p.count,
            dropped: p.dropped,
            min: p.min(),
            max: p.max(),
            mean: p.mean,
            m2: p.m2,
            exact_distinct_limit: p.exact_distinct_limit,
            values,
            tdigest: base64::engine::general_purpose::STANDARD.encode(p.sketch.serialize()),
        }
    }
}

impl TryFrom<NumericWire> for NumericProfile {
    type Error = String;

    fn try_from(w: NumericWire) -> Result<NumericProfile, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&w.tdigest)
            .map_err(|e| format!("tdigest: not base64 ({e})"))?;
        let sketch = TDigestMut::deserialize(&bytes)
            .map_err(|e| format!("tdigest: not a DataSketches t-digest ({e})"))?;
        if sketch.total_weight() != w.count {
            return Err(format!(
                "tdigest holds {} values but count is {}: send the sketch of the same values",
                sketch.total_weight(),
                w.count
            ));
        }
        if w.exact_distinct_limit <= PER_VALUE_MAX_DISTINCT {
            return Err(format!(
                "exact_distinct_limit must be > {PER_VALUE_MAX_DISTINCT}, got {}",
                w.exact_distinct_limit
            ));
        }
        let finite = |name: &str, v: f64| {
            if v.is_finite() {
                Ok(v)
            } else {
                Err(format!("{name} must be a finite number"))
            }
        };
        finite("mean", w.mean)?;
        if finite("m2", w.m2)? < 0.0 {
            return Err("m2 (sum of squared deviations) must be >= 0".into());
        }
        let (min, max) = match (w.min, w.max, w.count) {
            (_, _, 0) => (f64::INFINITY, f64::NEG_INFINITY),
            (Some(lo), Some(hi), _) if finite("min", lo)? <= finite("max", hi)? => (lo, hi),
            _ => return Err("min and max must be given, with min <= max, when count > 0".into()),
        };
        let exact = match w.values {
            None => None,
            Some(pairs) => {
                if pairs.len() > w.exact_distinct_limit {
                    return Err(format!(
                        "values has {} distinct values, more than exact_distinct_limit {}",
                        pairs.len(),
                        w.exact_distinct_limit
                    ));
                }
                let mut map = HashMap::with_capacity(pairs.len());
                let mut total = 0u64;
                for (v, c) in pairs {
                    let v = finite("values[]", v)?;
                    let v = if v == 0.0 { 0.0 } else { v };
                    *map.entry(v.to_bits()).or_insert(0) += c;
                    total += c;
                }
                if total != w.count {
                    return Err(format!("values add up to {total} but count is {}", w.count));
                }
                Some(map)
            }
        };
        Ok(NumericProfile {
            count: w.count,
            dropped: w.dropped,
            min,
            max,
            mean: w.mean,
            m2: w.m2,
            exact_distinct_limit: w.exact_distinct_limit,
            exact,
            sketch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, offset: f64) -> Vec<f64> {
        (0..n)
            .map(|i| ((i * 7919) % n) as f64 * 0.001 + offset)
            .collect()
    }

    #[test]
    fn column_profiles_merge_by_kind_and_refuse_the_other_kind() {
        let mut cats = ColumnProfile::categorical(["a", "b", "a"]);
        cats.merge(&ColumnProfile::categorical(["b", "c"])).unwrap();
        let ColumnProfile::Categorical(c) = &cats else {
            panic!("kind changed")
        };
        let counts: Vec<(&str, u64)> = c.counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(counts, [("a", 2), ("b", 2), ("c", 1)]);
        let mut nums = ColumnProfile::numeric(&[1.0, 2.0]);
        nums.merge(&ColumnProfile::numeric(&[3.0])).unwrap();
        assert_eq!(nums.count(), 3);
        let e = nums.merge(&cats).unwrap_err();
        assert!(e.to_string().contains("numeric"), "{e}");
        assert_eq!(nums.count(), 3);
    }

    #[test]
    fn a_column_from_its_quantiles_follows_them_and_refuses_nonsense() {
        let q = [(0.25, 10.0), (0.5, 20.0), (0.75, 30.0)];
        let p = NumericProfile::from_quantiles(&q, Some(0.0), Some(40.0), Some(5_000.0)).unwrap();
        assert_eq!(p.count(), 100);
        assert_eq!((p.min(), p.max()), (Some(0.2), Some(39.8)));
        assert!((p.mean() - 20.0).abs() < 1e-9, "{}", p.mean());
        // Few rows: one value per row.
        let small = NumericProfile::from_quantiles(&q, None, None, Some(7.0)).unwrap();
        assert_eq!(small.count(), 7);
        assert!(small.min().unwrap() >= 10.0 && small.max().unwrap() <= 30.0);
        // Quantiles that fall as p rises, or a single point, are not a distribution.
        assert!(
            NumericProfile::from_quantiles(&[(0.25, 5.0), (0.5, 1.0)], None, None, None).is_none()
        );
        assert!(NumericProfile::from_quantiles(&[(0.5, 1.0)], None, None, None).is_none());
    }

    #[test]
    fn merged_profiles_equal_the_profile_of_the_union() {
        let opts = ProfileOptions::default();
        let (a, b) = (values(500, 0.0), values(700, 0.3));
        let mut merged = NumericProfile::from_values(&a, opts);
        merged.merge(&NumericProfile::from_values(&b, opts));
        let all: Vec<f64> = a.iter().chain(&b).copied().collect();
        let whole = NumericProfile::from_values(&all, opts);
        assert_eq!(merged.count(), whole.count());
        assert_eq!(merged.exact(), whole.exact());
        assert!((merged.mean() - whole.mean()).abs() < 1e-12);
        assert!((merged.std_population() - whole.std_population()).abs() < 1e-12);
        assert_eq!((merged.min(), merged.max()), (whole.min(), whole.max()));
    }

    #[test]
    fn exact_counts_are_given_up_past_the_limit_but_the_sketch_keeps_every_value() {
        let opts = ProfileOptions {
            exact_distinct_limit: 100,
            ..ProfileOptions::default()
        };
        let p = NumericProfile::from_values(&values(101, 0.0), opts);
        assert!(!p.is_exact());
        assert_eq!(p.sketch().total_weight(), 101);
        let p = NumericProfile::from_values(&values(100, 0.0), opts);
        assert!(p.is_exact());
    }

    #[test]
    fn json_round_trip_keeps_counts_moments_and_sketch() {
        let mut p = NumericProfile::from_values(&values(1000, 1.0), ProfileOptions::default());
        p.push(f64::NAN);
        let json = serde_json::to_string(&ColumnProfile::Numeric(p.clone())).unwrap();
        let ColumnProfile::Numeric(back) = serde_json::from_str(&json).unwrap() else {
            panic!("kind changed");
        };
        assert_eq!((back.count(), back.dropped()), (1000, 1));
        assert_eq!(back.exact(), p.exact());
        assert_eq!(
            (back.mean(), back.std_population()),
            (p.mean(), p.std_population())
        );
        assert_eq!((back.min(), back.max()), (p.min(), p.max()));
        let q = |p: &NumericProfile| p.sketch().clone().freeze().quantile(0.37).unwrap();
        assert_eq!(q(&back), q(&p));
        // Once compressed, the sketch serialises to the same bytes again.
        let again = serde_json::to_string(&ColumnProfile::Numeric(back)).unwrap();
        assert_eq!(again, json);
    }

    #[test]
    fn categorical_json_is_the_kind_and_the_counts() {
        let p = ColumnProfile::categorical(["b", "a", "b"]);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, r#"{"kind":"categorical","counts":{"a":1,"b":2}}"#);
        assert_eq!(serde_json::from_str::<ColumnProfile>(&json).unwrap(), p);
        let err = serde_json::from_str::<ColumnProfile>(r#"{"kind":"categorical","count":{}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("count"), "{err}");
    }

    #[test]
    fn json_with_a_count_that_disagrees_with_the_sketch_is_refused_naming_both() {
        let p = NumericProfile::from_values(&values(10, 1.0), ProfileOptions::default());
        let mut v = serde_json::to_value(ColumnProfile::Numeric(p)).unwrap();
        v["count"] = 11.into();
        v["values"] = serde_json::Value::Null;
        let err = serde_json::from_value::<ColumnProfile>(v)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tdigest holds 10 values but count is 11"),
            "{err}"
        );
    }
}
