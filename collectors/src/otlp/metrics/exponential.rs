//! Exponential histograms stored as classic `le` buckets: merging buckets down to
//! [`EXPONENTIAL_TARGET_SCALE`], adding deltas, and the `le` grid (see [`super`]'s module
//! docs for why one grid).

use super::delta::DeltaState;
use super::{point_labels, Mapper, FLAG_NO_RECORDED_VALUE};
use crate::otlp::view::{ExpBuckets, ExpPoint};
use model::SeriesKey;
use std::collections::BTreeMap;

/// Scale exponential histograms are merged down to before they are stored (see module docs).
pub const EXPONENTIAL_TARGET_SCALE: i32 = 3;

impl Mapper<'_, '_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn exponential(
        &mut self,
        metric: &str,
        name: &str,
        delta: bool,
        p: &ExpPoint<'_>,
        over: &[(&str, &str)],
    ) -> Option<i64> {
        let ts = self.point_time(metric, p.time_unix_nano)?;
        self.out.exemplars_dropped += p.exemplars;
        if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
            return None;
        }
        if !(-10..=20).contains(&p.scale) {
            self.out.reject(
                1,
                format!(
                    "metric {metric:?}: exponential histogram scale {} is outside -10..=20",
                    p.scale
                ),
            );
            return None;
        }
        // Indexes past what any float64 can fall in would make the `le` grid (one bucket per
        // index between the lowest and highest populated) arbitrarily long.
        let limit = max_bucket_index(p.scale);
        for b in [&p.positive, &p.negative].into_iter().flatten() {
            let lo = i64::from(b.offset);
            let hi = lo + b.counts.len() as i64;
            if lo < -limit || hi > limit {
                self.out.reject(
                    1,
                    format!(
                        "metric {metric:?}: exponential histogram buckets {lo}..{hi} at scale {} lie beyond any float64 value (|index| <= {limit})",
                        p.scale
                    ),
                );
                return None;
            }
        }
        let attrs = self.view.attrs(&p.attrs);
        let labels = self.storable(metric, point_labels(attrs, over))?;
        let mut hist = ExpHistogram::from_point(p);
        hist.downscale_to(EXPONENTIAL_TARGET_SCALE);
        if delta {
            let key = SeriesKey::new(name, labels.clone());
            if !self.delta_ok(metric, &key, p.time_unix_nano) {
                return None;
            }
            if let Some(DeltaState::Exponential { hist: prev, .. }) = self.delta_state(&key) {
                hist.merge(prev.clone());
            }
            self.out.pending.0.insert(
                key,
                DeltaState::Exponential {
                    hist: hist.clone(),
                    last_ns: p.time_unix_nano,
                },
            );
        }
        let buckets = hist.cumulative_buckets();
        self.emit_histogram(name, labels, ts, &buckets, hist.count, hist.sum);
        self.out.accepted_points += 1;
        Some(ts)
    }
}

/// The largest bucket index a float64 can land in at `scale` (2^1024 is past the largest
/// double, 2^-1075 below the smallest subnormal).
fn max_bucket_index(scale: i32) -> i64 {
    const EXPONENT_SPAN: i64 = 1076;
    if scale >= 0 {
        EXPONENT_SPAN << scale
    } else {
        (EXPONENT_SPAN >> -scale) + 1
    }
}

/// An exponential histogram with sparse buckets, for merging and re-bucketing.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpHistogram {
    pub scale: i32,
    pub zero_count: u64,
    pub zero_threshold: f64,
    pub positive: BTreeMap<i32, u64>,
    pub negative: BTreeMap<i32, u64>,
    pub count: u64,
    pub sum: Option<f64>,
}

impl ExpHistogram {
    pub fn from_point(p: &ExpPoint<'_>) -> Self {
        fn sparse(b: &Option<ExpBuckets<'_>>) -> BTreeMap<i32, u64> {
            let mut out = BTreeMap::new();
            if let Some(b) = b {
                for (i, c) in b.counts.iter().enumerate() {
                    if *c > 0 {
                        out.insert(b.offset.saturating_add(i as i32), *c);
                    }
                }
            }
            out
        }
        Self {
            scale: p.scale,
            zero_count: p.zero_count,
            zero_threshold: p.zero_threshold,
            positive: sparse(&p.positive),
            negative: sparse(&p.negative),
            count: p.count,
            sum: p.sum,
        }
    }

    /// Merges buckets down to `scale` when finer (exact: bucket `i` at scale `s` lies inside
    /// bucket `i >> (s - t)` at scale `t`).
    pub fn downscale_to(&mut self, scale: i32) {
        if scale >= self.scale {
            return;
        }
        let shift = (self.scale - scale) as u32;
        for side in [&mut self.positive, &mut self.negative] {
            let mut merged = BTreeMap::new();
            for (i, c) in std::mem::take(side) {
                let m = merged.entry(i >> shift).or_insert(0u64);
                *m = m.saturating_add(c);
            }
            *side = merged;
        }
        self.scale = scale;
    }

    /// Adds `other` (brought to the common, coarser scale).
    pub fn merge(&mut self, mut other: ExpHistogram) {
        let scale = self.scale.min(other.scale);
        self.downscale_to(scale);
        other.downscale_to(scale);
        for (mine, theirs) in [
            (&mut self.positive, other.positive),
            (&mut self.negative, other.negative),
        ] {
            for (i, c) in theirs {
                let m = mine.entry(i).or_insert(0);
                *m = m.saturating_add(c);
            }
        }
        self.zero_count = self.zero_count.saturating_add(other.zero_count);
        self.zero_threshold = self.zero_threshold.max(other.zero_threshold);
        self.count = self.count.saturating_add(other.count);
        self.sum = match (self.sum, other.sum) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
        };
    }

    /// Lower bound of bucket `index` (its upper bound is `bound(index + 1)`).
    pub fn bound(&self, index: i32) -> f64 {
        (index as f64 * (-self.scale as f64).exp2()).exp2()
    }

    /// `(le, cumulative count)` pairs, ascending, without `+Inf`: negative buckets (when any
    /// are populated), the zero bucket, then every positive bucket from the lowest to the
    /// highest populated index.
    pub fn cumulative_buckets(&self) -> Vec<(f64, u64)> {
        let mut out = Vec::new();
        let mut cum = 0;
        if let (Some((&lo, _)), Some((&hi, _))) = (
            self.negative.first_key_value(),
            self.negative.last_key_value(),
        ) {
            // Bucket i holds values in [-bound(i+1), -bound(i)); walking from the most
            // negative, `le = -bound(i)` has counted every bucket with index >= i.
            for i in (lo..=hi).rev() {
                cum = u64::saturating_add(cum, self.negative.get(&i).copied().unwrap_or(0));
                out.push((-self.bound(i), cum));
            }
        }
        cum = u64::saturating_add(cum, self.zero_count);
        out.push((self.zero_threshold, cum));
        if let (Some((&lo, _)), Some((&hi, _))) = (
            self.positive.first_key_value(),
            self.positive.last_key_value(),
        ) {
            for i in lo..=hi {
                cum = u64::saturating_add(cum, self.positive.get(&i).copied().unwrap_or(0));
                out.push((self.bound(i + 1), cum));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downscaling_merges_neighbour_buckets_exactly() {
        let mut h = ExpHistogram {
            scale: 2,
            zero_count: 0,
            zero_threshold: 0.0,
            positive: BTreeMap::from([(-3, 1), (-1, 2), (0, 3), (3, 4), (4, 5)]),
            negative: BTreeMap::new(),
            count: 15,
            sum: None,
        };
        h.downscale_to(0);
        // -3>>2 = -1, -1>>2 = -1, 0>>2 = 0, 3>>2 = 0, 4>>2 = 1
        assert_eq!(h.positive, BTreeMap::from([(-1, 3), (0, 7), (1, 5)]));
        assert_eq!(h.bound(1), 2.0);
    }
}
