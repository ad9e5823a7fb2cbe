//! Holes in the data under a throughput signal. `rate(m[2m])` over a window that the samples
//! only partly cover (the server was down, a scrape target was unreachable, or, in
//! `pipewatch demo`, the minutes between the backfilled history and the first live scrape) is
//! extrapolated from the covered part only and divided by the whole window, so it reads low
//! for as long as the window reaches into the hole: a throughput "dip" at every node at once,
//! which is pipewatch's own doing, not the pipeline's.
//!
//! The detection job reads the sample times of the last few minutes (a small read next to the
//! history) and judges the last steps on the rate over the part of the window the samples
//! account for: the engine's value times window / accounted span. A stalled stage still reads
//! zero (its covered part shows no increase); a restart no longer reads as a dip. Error ratios
//! and latency quantiles need no correction: numerator and denominator, or every bucket, are
//! scaled alike.

use model::{Selector, SeriesKey, TimestampMs};
use std::collections::{BTreeMap, HashMap};

/// How far from a window's edge its first or last sample may be, in average sample intervals,
/// for `rate` to extrapolate the increase to that edge (Prometheus' rule, which the engine
/// follows); from further away it extrapolates half an interval only, and the rate reads low
/// by the share of the window left out.
pub const EDGE_INTERVALS: f64 = 1.1;

/// Below this share of its window accounted for by samples, a rate is not judged at all: too
/// little of the window to say what the rate was.
pub const MIN_ACCOUNTED_SHARE: f64 = 0.25;

/// A signal's labels as the detection job names them: the series' labels without the metric
/// name and a histogram's `le` (what `rate`, `histogram_quantile` and `a / b` keep).
pub fn signal_labels(key: &SeriesKey) -> BTreeMap<String, String> {
    key.labels
        .iter()
        .filter(|(k, _)| *k != "le")
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Sample times (ms, ascending, distinct) per signal label set, merged over the series that
/// feed it (a histogram's buckets).
#[derive(Debug, Default)]
pub struct SampleTimes {
    by_signal: HashMap<BTreeMap<String, String>, Vec<TimestampMs>>,
}

impl SampleTimes {
    pub fn from_raw(raw: &[(SeriesKey, Vec<(TimestampMs, f64)>)]) -> SampleTimes {
        let mut by_signal: HashMap<BTreeMap<String, String>, Vec<TimestampMs>> = HashMap::new();
        for (key, points) in raw {
            by_signal
                .entry(signal_labels(key))
                .or_default()
                .extend(points.iter().map(|(t, _)| *t));
        }
        for ts in by_signal.values_mut() {
            ts.sort_unstable();
            ts.dedup();
        }
        SampleTimes { by_signal }
    }

    /// The share of the window `(end - window, end]` that `rate` over the samples of the
    /// signal with `labels` accounts for: the span of its samples, plus what it extrapolates at
    /// each edge ([`EDGE_INTERVALS`]); 1 when the samples cover the window. None with fewer
    /// than two samples in the window (or none for the signal), where `rate` has no value.
    pub fn accounted_share(
        &self,
        labels: &BTreeMap<String, String>,
        window_ms: i64,
        end: i64,
    ) -> Option<f64> {
        let ts = self.by_signal.get(labels)?;
        let start = end - window_ms;
        let from = ts.partition_point(|t| *t <= start);
        let to = ts.partition_point(|t| *t <= end);
        let inside = &ts[from..to];
        if inside.len() < 2 {
            return None;
        }
        let (first, last) = (inside[0], inside[inside.len() - 1]);
        let avg = (last - first) as f64 / (inside.len() - 1) as f64;
        let extrapolated = |gap: i64| {
            let gap = gap as f64;
            if gap <= EDGE_INTERVALS * avg {
                gap
            } else {
                avg / 2.0
            }
        };
        let accounted =
            (last - first) as f64 + extrapolated(first - start) + extrapolated(end - last);
        Some((accounted / window_ms as f64).min(1.0))
    }

    /// `rate` at `end` as if the samples had covered its window: the engine's value scaled by
    /// window / accounted span. None when less than [`MIN_ACCOUNTED_SHARE`] is accounted for.
    pub fn corrected_rate(
        &self,
        labels: &BTreeMap<String, String>,
        window_ms: i64,
        end: i64,
        rate: f64,
    ) -> Option<f64> {
        let share = self.accounted_share(labels, window_ms, end)?;
        (share >= MIN_ACCOUNTED_SHARE).then(|| rate / share)
    }
}

/// The selector of every series of `metric`.
pub fn metric_selector(metric: &str) -> Selector {
    Selector {
        metric: Some(metric.to_string()),
        matchers: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(labels: &[(&str, &str)], ts: &[i64]) -> (SeriesKey, Vec<(TimestampMs, f64)>) {
        (
            SeriesKey::new(
                "m_bucket",
                model::Labels::from_pairs(labels.iter().copied()),
            ),
            ts.iter().map(|t| (*t, 1.0)).collect(),
        )
    }

    fn l(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const W: i64 = 120_000;

    #[test]
    fn minute_history_and_live_scrapes_cover_a_window_the_seam_does_not() {
        // One a minute until 10:48, then (after a restart) every 5 s from 10:50:09.
        let m = 60_000;
        let mut ts: Vec<i64> = (40..=48).map(|i| i * m).collect();
        ts.extend((0..30).map(|i| 50 * m + 9_000 + i * 5_000));
        let times = SampleTimes::from_raw(&[
            raw(&[("stage", "a"), ("le", "0.1")], &ts),
            raw(&[("stage", "a"), ("le", "+Inf")], &ts),
        ]);
        let a = l(&[("stage", "a")]);
        let share = |end: i64| times.accounted_share(&a, W, end);
        // Windows inside the one-a-minute history are covered (their gaps are one interval).
        assert_eq!(share(47 * m + 25_000), Some(1.0));
        assert_eq!(share(48 * m + 25_000), Some(1.0));
        // A window with one live scrape: no rate at all.
        assert_eq!(share(50 * m + 10_000), None);
        // Half a window of live scrapes after the hole: 60 s + half a scrape interval of 120 s
        // (the engine's rate reads 48 % low; scaled back it is the live rate).
        assert_eq!(share(51 * m + 9_000), Some(62.5 / 120.0));
        let r = times.corrected_rate(&a, W, 51 * m + 9_000, 62.5).unwrap();
        assert!((r - 120.0).abs() < 1e-9, "{r}");
        // Too little of the window: not judged.
        assert_eq!(times.corrected_rate(&a, W, 50 * m + 20_000, 10.0), None);
        // Once the window holds only live scrapes it is covered again.
        assert_eq!(share(52 * m + 9_000), Some(1.0));
        // Another stage has no samples.
        assert_eq!(
            times.accounted_share(&l(&[("stage", "b")]), W, 52 * m),
            None
        );
    }

    #[test]
    fn a_stalled_counter_still_scraped_is_covered_and_one_gone_is_judged_on_what_it_sent() {
        // The stage stopped, its exporter did not: samples keep coming (with the same value).
        let ts: Vec<i64> = (0..40).map(|i| i * 15_000).collect();
        let times = SampleTimes::from_raw(&[raw(&[("stage", "a")], &ts)]);
        let a = l(&[("stage", "a")]);
        assert_eq!(times.accounted_share(&a, W, 585_000), Some(1.0));
        // A stalled counter's rate is zero however it is scaled.
        assert_eq!(times.corrected_rate(&a, W, 585_000, 0.0), Some(0.0));
        // The exporter went away at 585 s: 60 s later the window holds 15 s before its first
        // sample, 45 s of samples and half an interval after the last.
        assert_eq!(times.accounted_share(&a, W, 645_000), Some(67.5 / 120.0));
    }
}
