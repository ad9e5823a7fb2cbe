//! What a detector says about a series: the [`Verdict`] (span, observed value, expected band,
//! score, severity, detector, a sentence for the on-call engineer) and the [`SignalKind`] that
//! decides how values are written in that sentence.

use chrono::{DateTime, Datelike, Timelike, Utc};
use std::fmt;

/// What a series measures; chosen from what is stored, it decides units in explanations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignalKind {
    /// Events or records per second (a rate from a counter).
    Throughput,
    /// A latency quantile in seconds; the field is the quantile in percent (50, 95, 99).
    LatencyQuantile(u8),
    /// Failed / total, a fraction in [0, 1].
    ErrorRatio,
    /// Rows or records per run.
    Volume,
    /// Seconds since the last successful run or update.
    Freshness,
    /// Seconds a run took.
    RunDuration,
    /// A data-quality check's observed value (unitless).
    DqValue,
    /// Items waiting to be processed: a queue's depth, a consumer's lag. The first thing a
    /// stalled stage moves (its throughput only falls once the rate window has passed).
    Backlog,
}

impl SignalKind {
    /// The noun phrase that starts a sentence: "p95 latency", "error ratio".
    pub fn label(self) -> String {
        match self {
            SignalKind::Throughput => "throughput".into(),
            SignalKind::LatencyQuantile(q) => format!("p{q} latency"),
            SignalKind::ErrorRatio => "error ratio".into(),
            SignalKind::Volume => "volume".into(),
            SignalKind::Freshness => "time since last update".into(),
            SignalKind::RunDuration => "run duration".into(),
            SignalKind::DqValue => "observed value".into(),
            SignalKind::Backlog => "backlog".into(),
        }
    }

    /// A value with its unit, rounded for reading ("4.1 s", "2.3 %", "1.2k rows").
    pub fn format_value(self, v: f64) -> String {
        match self {
            SignalKind::LatencyQuantile(_) | SignalKind::Freshness | SignalKind::RunDuration => {
                format_seconds(v, None)
            }
            SignalKind::ErrorRatio => format!("{} %", round_sig(v * 100.0)),
            SignalKind::Throughput => format!("{}/s", compact(v)),
            SignalKind::Volume => format!("{} rows", compact(v)),
            SignalKind::DqValue => compact(v),
            SignalKind::Backlog => format!("{} waiting", compact(v)),
        }
    }

    /// A band "low–high" with the unit written once at the end.
    pub fn format_band(self, low: f64, high: f64) -> String {
        let (lo, hi) = match self {
            // Both ends in the high end's unit: "0.8–1.2 s", not "800 ms–1.2 s".
            SignalKind::LatencyQuantile(_) | SignalKind::Freshness | SignalKind::RunDuration => {
                let unit = seconds_unit(low.abs().max(high.abs()));
                (
                    format_seconds(low, Some(unit)),
                    format_seconds(high, Some(unit)),
                )
            }
            _ => (self.format_value(low), self.format_value(high)),
        };
        // "0.8 s–1.2 s" reads worse than "0.8–1.2 s": drop the low end's unit when both share it.
        match (lo.rsplit_once(' '), hi.rsplit_once(' ')) {
            (Some((lv, lu)), Some((_, hu))) if lu == hu => format!("{lv}–{hi}"),
            _ => format!("{lo}–{hi}"),
        }
    }
}

/// How loud a verdict should be; derived from the score so every detector agrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    /// Scores are tail-probability based, so the cut-offs mean the same for every detector.
    pub fn from_score(score: f64) -> Severity {
        if score >= 0.9 {
            Severity::Critical
        } else if score >= 0.7 {
            Severity::Warning
        } else {
            Severity::Info
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        })
    }
}

/// One finding: a span of a series that a detector considers anomalous, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// First anomalous sample, Unix seconds.
    pub start: i64,
    /// Last anomalous sample, Unix seconds (equal to `start` for a single point).
    pub end: i64,
    /// The most extreme observed value in the span.
    pub observed: f64,
    /// The expected band at that point.
    pub expected_low: f64,
    pub expected_high: f64,
    /// In [0, 1]; higher is more anomalous.
    pub score: f64,
    pub severity: Severity,
    /// The detector's stable name ("seasonal", "level_shift", "spike", "trend").
    pub detector: &'static str,
    /// The explanation, e.g. "p95 latency 4.1 s, expected 0.8–1.2 s for Tue 14:00; started 14:07".
    pub sentence: String,
}

/// The parts of a verdict a detector knows; [`VerdictDraft::finish`] adds severity and sentence.
#[derive(Debug, Clone)]
pub struct VerdictDraft {
    pub start: i64,
    pub end: i64,
    /// When the most extreme value was seen; the "for Tue 14:00" of the sentence.
    pub peak_at: i64,
    pub observed: f64,
    pub expected_low: f64,
    pub expected_high: f64,
    pub score: f64,
    pub detector: &'static str,
    /// Extra words after the band, e.g. "level shifted up" or "rising 3 %/day".
    pub note: Option<String>,
}

impl VerdictDraft {
    pub fn finish(self, kind: SignalKind) -> Verdict {
        let score = self.score.clamp(0.0, 1.0);
        let mut sentence = format!(
            "{} {}, expected {} for {}; started {}",
            kind.label(),
            kind.format_value(self.observed),
            kind.format_band(self.expected_low, self.expected_high),
            weekday_hour(self.peak_at),
            clock(self.start),
        );
        if let Some(note) = &self.note {
            sentence.push_str(" (");
            sentence.push_str(note);
            sentence.push(')');
        }
        Verdict {
            start: self.start,
            end: self.end,
            observed: self.observed,
            expected_low: self.expected_low,
            expected_high: self.expected_high,
            score,
            severity: Severity::from_score(score),
            detector: self.detector,
            sentence,
        }
    }
}

fn utc(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t, 0).unwrap_or(DateTime::UNIX_EPOCH)
}

/// "Tue 14:00": the seasonal slot the band was learned for (hour of week).
fn weekday_hour(t: i64) -> String {
    let d = utc(t);
    format!("{} {:02}:00", d.weekday(), d.hour())
}

/// "14:07" the start time, to the minute.
fn clock(t: i64) -> String {
    let d = utc(t);
    format!("{:02}:{:02}", d.hour(), d.minute())
}

/// The unit a duration of this size reads best in, and its length in seconds.
fn seconds_unit(a: f64) -> (&'static str, f64) {
    if a >= 3600.0 * 48.0 {
        ("d", 86400.0)
    } else if a >= 3600.0 * 2.0 {
        ("h", 3600.0)
    } else if a >= 120.0 {
        ("min", 60.0)
    } else if a >= 1.0 || a == 0.0 {
        ("s", 1.0)
    } else {
        ("ms", 0.001)
    }
}

fn format_seconds(v: f64, unit: Option<(&'static str, f64)>) -> String {
    let (name, len) = unit.unwrap_or_else(|| seconds_unit(v.abs()));
    format!("{} {name}", round_sig(v / len))
}

/// 1234567 -> "1.23M"; small values keep two significant digits.
fn compact(v: f64) -> String {
    let a = v.abs();
    for (div, suffix) in [(1e9, "G"), (1e6, "M"), (1e3, "k")] {
        if a >= div {
            return format!("{}{suffix}", round_sig(v / div));
        }
    }
    round_sig(v)
}

/// Two significant digits (three at or above 100), no trailing zeros: what a person reads.
fn round_sig(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    let decimals = if a >= 100.0 {
        0
    } else if a >= 10.0 {
        1
    } else {
        (1 - a.log10().floor() as i32).max(1) as usize
    };
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_sentence_reads_like_the_issue_example() {
        // Tue 2026-12-01 14:07 UTC.
        let start = 1_796_134_020;
        let v = VerdictDraft {
            start,
            end: start + 600,
            peak_at: start,
            observed: 4.1,
            expected_low: 0.8,
            expected_high: 1.2,
            score: 0.95,
            detector: "seasonal",
            note: None,
        }
        .finish(SignalKind::LatencyQuantile(95));
        assert_eq!(utc(start).weekday(), chrono::Weekday::Tue);
        assert_eq!(
            v.sentence,
            "p95 latency 4.1 s, expected 0.8–1.2 s for Tue 14:00; started 14:07"
        );
        assert_eq!(v.severity, Severity::Critical);
    }

    #[test]
    fn units_follow_the_signal_kind() {
        assert_eq!(SignalKind::ErrorRatio.format_value(0.023), "2.3 %");
        assert_eq!(SignalKind::Volume.format_value(1_234_567.0), "1.2M rows");
        assert_eq!(SignalKind::Throughput.format_value(850.0), "850/s");
        assert_eq!(SignalKind::Freshness.format_value(5400.0), "90 min");
        assert_eq!(SignalKind::RunDuration.format_value(0.25), "250 ms");
        assert_eq!(SignalKind::DqValue.format_value(0.5), "0.5");
        assert_eq!(SignalKind::Volume.format_band(1000.0, 2000.0), "1k–2k rows");
        assert_eq!(SignalKind::Backlog.format_value(17_260.0), "17.3k waiting");
        assert_eq!(SignalKind::Backlog.format_band(29.0, 64.0), "29–64 waiting");
    }

    #[test]
    fn severity_and_score_are_clamped_and_ordered() {
        assert_eq!(Severity::from_score(0.5), Severity::Info);
        assert_eq!(Severity::from_score(0.75), Severity::Warning);
        assert!(Severity::Critical > Severity::Warning);
    }
}
