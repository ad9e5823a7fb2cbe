//! The intake window: which sample timestamps pipewatch takes at all.
//!
//! Retention (`database.retention_days`) deletes samples by age, so a sample already older than
//! the retention window when it arrives would be acknowledged and then deleted by the next
//! maintenance run with no word to its sender. Such samples are refused at intake instead, and
//! so are samples stamped further ahead of this server's clock than `limits.future_tolerance`
//! (a wrong unit or a wrong clock; Prometheus' own receiver allows 10 minutes). A sample inside
//! the window is kept at least until it is `retention_days` old: maintenance only drops whole
//! days that ended before the same cutoff.
//!
//! How a refusal is answered is the protocol's: remote_write refuses the whole request with
//! 400 as Prometheus' receiver does (it rolls the request back on its first out-of-bounds
//! sample, and a 400 stops the sender from retrying), OTLP stores the rest and reports the
//! refused points in `partial_success`. Both count the refused samples in
//! `pipewatch_ingest_samples_rejected_total{reason="too_old"|"too_new"}`.

use model::{Batch, TimestampMs};
use std::time::Duration;

const DAY_MS: i64 = 86_400_000;

/// Why a sample is outside the window; `reason` is the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outside {
    TooOld,
    TooNew,
}

impl Outside {
    pub fn reason(self) -> &'static str {
        match self {
            Self::TooOld => "too_old",
            Self::TooNew => "too_new",
        }
    }
}

/// The accepted span of timestamps relative to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntakeWindow {
    retention_days: u32,
    /// None: no bound ahead (`limits.future_tolerance = "0s"`).
    future_tolerance: Option<Duration>,
}

/// What a request held outside the window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refused {
    /// Samples.
    pub too_old: usize,
    pub too_new: usize,
    /// Data points the refused samples came from (filled by [`IntakeWindow::remove`]; see
    /// [`crate::guard::RefusedPoints`]), for OTLP's `rejected_data_points`.
    pub points: usize,
    /// The first refused sample, described for the sender: series, timestamp, bound.
    pub first: Option<String>,
}

impl Refused {
    pub fn samples(&self) -> usize {
        self.too_old + self.too_new
    }

    pub fn is_empty(&self) -> bool {
        self.samples() == 0
    }

    /// Counts the refused samples by reason in pipewatch's self-metrics.
    pub fn count_in(&self, metrics: &crate::telemetry::SelfMetrics) {
        for (reason, n) in [
            (Outside::TooOld, self.too_old),
            (Outside::TooNew, self.too_new),
        ] {
            if n > 0 {
                metrics.rejected(reason.reason(), n as u64);
            }
        }
    }
}

impl Default for IntakeWindow {
    fn default() -> Self {
        Self::new(30, Duration::from_secs(600))
    }
}

impl IntakeWindow {
    /// A window of `retention_days` back and `future_tolerance` ahead (zero: unbounded ahead).
    pub fn new(retention_days: u32, future_tolerance: Duration) -> Self {
        Self {
            retention_days,
            future_tolerance: (!future_tolerance.is_zero()).then_some(future_tolerance),
        }
    }

    /// The oldest accepted timestamp and the newest (inclusive) at `now_ms`.
    pub fn bounds(&self, now_ms: TimestampMs) -> (TimestampMs, TimestampMs) {
        let oldest = now_ms.saturating_sub(i64::from(self.retention_days) * DAY_MS);
        let newest = match self.future_tolerance {
            Some(t) => now_ms.saturating_add(i64::try_from(t.as_millis()).unwrap_or(i64::MAX)),
            None => i64::MAX,
        };
        (oldest, newest)
    }

    /// Where `ts` falls at `now_ms`: inside (None) or outside and why.
    pub fn check(&self, ts: TimestampMs, now_ms: TimestampMs) -> Option<Outside> {
        let (oldest, newest) = self.bounds(now_ms);
        if ts < oldest {
            Some(Outside::TooOld)
        } else if ts > newest {
            Some(Outside::TooNew)
        } else {
            None
        }
    }

    /// Counts the samples of `batch` outside the window, changing nothing.
    pub fn count(&self, batch: &Batch, now_ms: TimestampMs) -> Refused {
        let mut out = Refused::default();
        for s in &batch.series {
            for x in &s.samples {
                if let Some(why) = self.check(x.ts, now_ms) {
                    self.note(&mut out, why, &s.key, x.ts, now_ms);
                }
            }
        }
        out
    }

    /// Removes the samples of `batch` outside the window (and series left without samples),
    /// returning what was removed.
    pub fn remove(&self, batch: &mut Batch, now_ms: TimestampMs) -> Refused {
        let mut out = Refused::default();
        let mut points = crate::guard::RefusedPoints::default();
        let (oldest, newest) = self.bounds(now_ms);
        // Most requests are wholly inside: look before touching anything.
        let all_inside = batch
            .series
            .iter()
            .all(|s| s.samples.iter().all(|x| (oldest..=newest).contains(&x.ts)));
        if all_inside {
            return out;
        }
        batch.series.retain_mut(|s| {
            s.samples.retain(|x| match self.check(x.ts, now_ms) {
                None => true,
                Some(why) => {
                    self.note(&mut out, why, &s.key, x.ts, now_ms);
                    points.add_one(s.metric_type, &s.key, x.ts);
                    false
                }
            });
            !s.samples.is_empty()
        });
        out.points = points.total();
        out
    }

    fn note(
        &self,
        out: &mut Refused,
        why: Outside,
        key: &model::SeriesKey,
        ts: TimestampMs,
        now_ms: TimestampMs,
    ) {
        match why {
            Outside::TooOld => out.too_old += 1,
            Outside::TooNew => out.too_new += 1,
        }
        if out.first.is_none() {
            let (oldest, newest) = self.bounds(now_ms);
            out.first = Some(match why {
                Outside::TooOld => format!(
                    "series {key} at {} is before {}, the start of the retention window",
                    rfc3339(ts),
                    rfc3339(oldest)
                ),
                Outside::TooNew => format!(
                    "series {key} at {} is after {}, this server's clock plus the future tolerance",
                    rfc3339(ts),
                    rfc3339(newest)
                ),
            });
        }
    }

    /// The sender's message: how many samples, why, the first example, and the keys to change.
    pub fn message(&self, refused: &Refused) -> String {
        let mut parts = Vec::new();
        if refused.too_old > 0 {
            parts.push(format!(
                "{} older than the retention window of {} days (`database.retention_days`)",
                refused.too_old, self.retention_days
            ));
        }
        if refused.too_new > 0 {
            let tolerance = self
                .future_tolerance
                .map(|t| humantime::format_duration(t).to_string())
                .unwrap_or_default();
            parts.push(format!(
                "{} more than {tolerance} ahead of this server's clock (`limits.future_tolerance`)",
                refused.too_new
            ));
        }
        format!(
            "{} samples refused: {}. First: {}. Send samples inside the window, or raise the limit in the config",
            refused.samples(),
            parts.join(" and "),
            refused.first.as_deref().unwrap_or("-")
        )
    }
}

/// Unix milliseconds as RFC 3339 UTC with milliseconds, for refusal messages.
pub(crate) fn rfc3339(ts: TimestampMs) -> String {
    chrono::DateTime::from_timestamp_millis(ts)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| format!("{ts} ms"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Labels, MetricType, Sample, SeriesKey, TimeSeries};

    const NOW: i64 = 1_780_000_000_000;

    fn series(name: &str, ts: &[i64]) -> TimeSeries {
        TimeSeries {
            key: SeriesKey::new(name, Labels::new()),
            metric_type: MetricType::Gauge,
            samples: ts.iter().map(|&ts| Sample { ts, value: 1.0 }).collect(),
        }
    }

    #[test]
    fn bounds_are_retention_back_and_tolerance_ahead_inclusive() {
        let w = IntakeWindow::new(2, Duration::from_secs(60));
        let (old, new) = w.bounds(NOW);
        assert_eq!((old, new), (NOW - 2 * DAY_MS, NOW + 60_000));
        assert_eq!(w.check(old, NOW), None);
        assert_eq!(w.check(old - 1, NOW), Some(Outside::TooOld));
        assert_eq!(w.check(new, NOW), None);
        assert_eq!(w.check(new + 1, NOW), Some(Outside::TooNew));
        // "0s" turns the bound ahead off.
        let open = IntakeWindow::new(2, Duration::ZERO);
        assert_eq!(open.check(i64::MAX, NOW), None);
        assert_eq!(open.check(old - 1, NOW), Some(Outside::TooOld));
    }

    #[test]
    fn remove_drops_outside_samples_and_empty_series_and_names_the_keys() {
        let w = IntakeWindow::new(1, Duration::from_secs(600));
        let mut b = Batch {
            series: vec![
                series("mixed", &[NOW - 2 * DAY_MS, NOW - 1000, NOW + 3_600_000]),
                series("old", &[NOW - 3 * DAY_MS]),
                series("fine", &[NOW]),
            ],
            metadata: vec![],
        };
        let counted = w.count(&b, NOW);
        let r = w.remove(&mut b, NOW);
        assert_eq!(
            (counted.too_old, counted.too_new, &counted.first),
            (r.too_old, r.too_new, &r.first),
            "count and remove agree"
        );
        assert_eq!((r.too_old, r.too_new, r.points), (2, 1, 3));
        let kept: Vec<(&str, usize)> = b
            .series
            .iter()
            .map(|s| (s.key.metric.as_str(), s.samples.len()))
            .collect();
        assert_eq!(kept, [("mixed", 1), ("fine", 1)]);
        let m = w.message(&r);
        assert!(m.starts_with("3 samples refused: 2 older than the retention window of 1 days (`database.retention_days`) and 1 more than 10m ahead"), "{m}");
        assert!(m.contains("`limits.future_tolerance`"), "{m}");
        assert!(m.contains("First: series mixed at 2026-05-"), "{m}");
        // A batch wholly inside is left as it is.
        let before = b.clone();
        assert!(w.remove(&mut b, NOW).is_empty());
        assert_eq!(b, before);
    }
}
