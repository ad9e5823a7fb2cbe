//! Per-bucket aggregates of de-duplicated samples, computed in Rust because a bucket can
//! hold samples from compacted chunks and from fresh rows at once. Pure: no I/O.
//!
//! NaN is treated as PostgreSQL treats it, so these agree with the SQL aggregates over the
//! rollup tables: NaN is larger than every number (`max` is NaN when any sample is), `min`
//! ignores NaN unless every sample is NaN, and `sum`/`avg` are NaN when any sample is.

use model::{Aggregation, TimestampMs};

/// What the rollup tables keep per series and bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rollup {
    pub bucket: TimestampMs,
    pub count: i64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// Value of the latest sample (by time; samples are de-duplicated, so unique).
    pub last: f64,
    pub last_ts: TimestampMs,
}

fn pg_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn pg_min(a: f64, b: f64) -> f64 {
    match (a.is_nan(), b.is_nan()) {
        (true, _) => b,
        (_, true) => a,
        _ => a.min(b),
    }
}

/// Rollups of `samples` (sorted by time, one per timestamp) into `bucket_ms` buckets aligned
/// to the Unix epoch, ascending.
pub fn rollups(samples: &[(TimestampMs, f64)], bucket_ms: i64) -> Vec<Rollup> {
    let mut out: Vec<Rollup> = Vec::new();
    for &(t, v) in samples {
        let bucket = t.div_euclid(bucket_ms) * bucket_ms;
        match out.last_mut() {
            Some(r) if r.bucket == bucket => {
                r.count += 1;
                r.sum += v;
                r.min = pg_min(r.min, v);
                r.max = pg_max(r.max, v);
                r.last = v;
                r.last_ts = t;
            }
            _ => out.push(Rollup {
                bucket,
                count: 1,
                sum: v,
                min: v,
                max: v,
                last: v,
                last_ts: t,
            }),
        }
    }
    out
}

/// One point per bucket: `aggregation` over the bucket's samples.
pub fn points(
    samples: &[(TimestampMs, f64)],
    bucket_ms: i64,
    aggregation: Aggregation,
) -> Vec<(TimestampMs, f64)> {
    rollups(samples, bucket_ms)
        .into_iter()
        .map(|r| {
            let v = match aggregation {
                Aggregation::Avg => r.sum / r.count as f64,
                Aggregation::Min => r.min,
                Aggregation::Max => r.max,
                Aggregation::Sum => r.sum,
                Aggregation::Count => r.count as f64,
                Aggregation::Last => r.last,
            };
            (r.bucket, v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_epoch_aligned_and_aggregate_like_sql() {
        let s = [
            (-1_000, 4.0),
            (0, 1.0),
            (30_000, 3.0),
            (59_999, 2.0),
            (60_000, 10.0),
        ];
        let r = rollups(&s, 60_000);
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].bucket, r[0].count), (-60_000, 1));
        assert_eq!(
            (r[1].bucket, r[1].count, r[1].sum, r[1].min, r[1].max),
            (0, 3, 6.0, 1.0, 3.0)
        );
        assert_eq!((r[1].last, r[1].last_ts), (2.0, 59_999));
        assert_eq!(points(&s, 60_000, Aggregation::Avg)[1], (0, 2.0));
        assert_eq!(points(&s, 60_000, Aggregation::Count)[2], (60_000, 1.0));
    }

    #[test]
    fn nan_follows_postgresql() {
        let s = [(0, 1.0), (1, f64::NAN), (2, 3.0)];
        let r = rollups(&s, 60_000)[0];
        assert!(r.max.is_nan());
        assert_eq!(r.min, 1.0);
        assert!(r.sum.is_nan());
        let only_nan = rollups(&[(0, f64::NAN)], 60_000)[0];
        assert!(only_nan.min.is_nan());
    }
}
