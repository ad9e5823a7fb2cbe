//! Quantiles the way Prometheus computes them: `quantile` / `quantile_over_time` over raw
//! values, and `histogram_quantile` over classic `le` buckets (with Prometheus' coalescing of
//! duplicate bounds and its fix-up of non-monotonic counts).

use std::cmp::Ordering;

/// Prometheus' ordering for value heaps: NaN sorts before everything.
pub(crate) fn nan_first_cmp(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// The q-quantile of `values` with linear interpolation between the closest ranks
/// (`rank = q * (n - 1)`), as Prometheus' `quantile` aggregation and `quantile_over_time`.
pub fn quantile(q: f64, mut values: Vec<f64>) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| nan_first_cmp(*a, *b));
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// One classic histogram bucket: upper bound (`le`) and cumulative count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    pub upper_bound: f64,
    pub count: f64,
}

/// `histogram_quantile` over classic buckets. NaN when there is no `+Inf` bucket, fewer than
/// two buckets, or no observations; values at or below the lowest bound are interpolated from
/// zero unless that bound is not positive.
pub fn bucket_quantile(q: f64, mut buckets: Vec<Bucket>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| {
        a.upper_bound
            .partial_cmp(&b.upper_bound)
            .unwrap_or(Ordering::Equal)
    });
    if buckets.last().map(|b| b.upper_bound) != Some(f64::INFINITY) {
        return f64::NAN;
    }
    let mut buckets = coalesce(buckets);
    ensure_monotonic(&mut buckets);
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let observations = buckets[buckets.len() - 1].count;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    // sort.Search over all but the +Inf bucket: the first bucket whose count reaches rank.
    let n = buckets.len() - 1;
    let b = buckets[..n].partition_point(|x| x.count < rank);
    if b == n {
        return buckets[n - 1].upper_bound;
    }
    if b == 0 && buckets[0].upper_bound <= 0.0 {
        return buckets[0].upper_bound;
    }
    let mut start = 0.0;
    let end = buckets[b].upper_bound;
    let mut count = buckets[b].count;
    if b > 0 {
        start = buckets[b - 1].upper_bound;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    start + (end - start) * (rank / count)
}

/// Merges buckets with the same upper bound (series that differ only in how `le` was
/// written, e.g. "1" and "1.0"), adding their counts.
fn coalesce(buckets: Vec<Bucket>) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets {
        match out.last_mut() {
            Some(last) if last.upper_bound == b.upper_bound => last.count += b.count,
            _ => out.push(b),
        }
    }
    out
}

/// Cumulative counts can dip when buckets were scraped at slightly different moments; like
/// Prometheus, carry the running maximum forward.
fn ensure_monotonic(buckets: &mut [Bucket]) {
    let mut max = f64::NEG_INFINITY;
    for b in buckets.iter_mut() {
        if b.count > max {
            max = b.count;
        } else if b.count < max {
            b.count = max;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(le: f64, c: f64) -> Bucket {
        Bucket {
            upper_bound: le,
            count: c,
        }
    }

    #[test]
    fn interpolates_inside_the_bucket_that_holds_the_rank() {
        // 10 observations <= 1, 10 more <= 2: the median is the top of the first bucket and
        // the 75th percentile half-way through the second.
        let bs = vec![b(1.0, 10.0), b(2.0, 20.0), b(f64::INFINITY, 20.0)];
        assert_eq!(bucket_quantile(0.5, bs.clone()), 1.0);
        assert_eq!(bucket_quantile(0.75, bs), 1.5);
    }

    #[test]
    fn no_inf_bucket_gives_nan_and_top_rank_gives_highest_finite_bound() {
        assert!(bucket_quantile(0.5, vec![b(1.0, 1.0), b(2.0, 2.0)]).is_nan());
        let bs = vec![b(1.0, 1.0), b(2.0, 2.0), b(f64::INFINITY, 10.0)];
        assert_eq!(bucket_quantile(0.99, bs), 2.0);
    }

    #[test]
    fn quantile_interpolates_between_ranks() {
        assert_eq!(quantile(0.5, vec![1.0, 2.0, 3.0, 4.0]), 2.5);
        assert_eq!(quantile(0.0, vec![3.0, 1.0]), 1.0);
        assert!(quantile(0.5, vec![]).is_nan());
        assert_eq!(quantile(2.0, vec![1.0]), f64::INFINITY);
    }
}
