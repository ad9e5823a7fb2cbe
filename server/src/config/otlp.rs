//! `[otlp]`: how OTLP traces and logs are reduced to series and evidence (what counts as a
//! slow span, which log records are kept, how much evidence is kept, how many derived series
//! are tracked). Turned into [`SignalConfig`] at start.

use super::duration;
use anyhow::{bail, Result};
use collectors::otlp::logs::LogDeriveConfig;
use collectors::otlp::traces::SpanDeriveConfig;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpConfig {
    /// Spans lasting at least this long are kept as evidence even when they did not fail.
    #[serde(with = "duration")]
    pub slow_span_threshold: Duration,
    /// Evidence spans kept from one request at most (failed before slow); the rest is counted.
    pub max_span_evidence_per_request: usize,
    /// Log records at this severity or above are kept as evidence: `TRACE`, `DEBUG`, `INFO`,
    /// `WARN`, `ERROR` or `FATAL`.
    pub min_log_evidence_severity: String,
    /// Evidence log records kept from one request at most (most severe first).
    pub max_log_evidence_per_request: usize,
    /// Evidence rows kept per service and kind; older ones are deleted as new ones arrive.
    pub evidence_per_service_and_kind: usize,
    /// Derived series tracked per signal; spans/records of further new series are refused
    /// (reported as a partial success) instead of growing memory without bound.
    pub max_series: usize,
}

/// OpenTelemetry `SeverityNumber` where each named level starts (TRACE = 1..4, ...).
const SEVERITIES: &[(&str, i32)] = &[
    ("TRACE", 1),
    ("DEBUG", 5),
    ("INFO", 9),
    ("WARN", 13),
    ("ERROR", 17),
    ("FATAL", 21),
];

impl Default for OtlpConfig {
    fn default() -> Self {
        // One source of truth for the numbers: the reducers' own defaults.
        let s = SignalConfig::default();
        let severity = SEVERITIES
            .iter()
            .find(|(_, n)| *n == s.logs.min_evidence_severity)
            .map(|(name, _)| *name)
            .unwrap_or("WARN");
        Self {
            slow_span_threshold: s.spans.slow_threshold,
            max_span_evidence_per_request: s.spans.max_evidence_per_request,
            min_log_evidence_severity: severity.to_string(),
            max_log_evidence_per_request: s.logs.max_evidence_per_request,
            evidence_per_service_and_kind: s.evidence_per_service_and_kind,
            max_series: s.max_series,
        }
    }
}

impl OtlpConfig {
    pub(super) fn validate(&self) -> Result<()> {
        self.severity_number()?;
        if self.slow_span_threshold.is_zero() {
            bail!("key `otlp.slow_span_threshold` must be greater than 0, like \"1s\"");
        }
        for (key, v) in [
            (
                "max_span_evidence_per_request",
                self.max_span_evidence_per_request,
            ),
            (
                "max_log_evidence_per_request",
                self.max_log_evidence_per_request,
            ),
            (
                "evidence_per_service_and_kind",
                self.evidence_per_service_and_kind,
            ),
        ] {
            if v > 100_000 {
                bail!("key `otlp.{key}` must be at most 100000 (evidence is for reading, not bulk storage), got {v}");
            }
        }
        if !(1..=10_000_000).contains(&self.max_series) {
            bail!(
                "key `otlp.max_series` must be between 1 and 10000000, got {}",
                self.max_series
            );
        }
        Ok(())
    }

    fn severity_number(&self) -> Result<i32> {
        let wanted = self.min_log_evidence_severity.to_ascii_uppercase();
        match SEVERITIES.iter().find(|(name, _)| *name == wanted) {
            Some((_, n)) => Ok(*n),
            None => bail!(
                "key `otlp.min_log_evidence_severity` must be one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL, got {:?}",
                self.min_log_evidence_severity
            ),
        }
    }

    /// The settings the OTLP receivers run with.
    pub fn signal_config(&self) -> SignalConfig {
        SignalConfig {
            spans: SpanDeriveConfig {
                slow_threshold: self.slow_span_threshold,
                max_evidence_per_request: self.max_span_evidence_per_request,
            },
            logs: LogDeriveConfig {
                // Checked by validate() when loaded; a config built in code falls back to WARN.
                min_evidence_severity: self
                    .severity_number()
                    .unwrap_or(collectors::otlp::logs::SEVERITY_WARN),
                max_evidence_per_request: self.max_log_evidence_per_request,
            },
            evidence_per_service_and_kind: self.evidence_per_service_and_kind,
            max_series: self.max_series,
        }
    }
}

/// How traces and logs are reduced.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalConfig {
    pub spans: SpanDeriveConfig,
    pub logs: LogDeriveConfig,
    /// Evidence rows kept per service and kind (`error`/`slow` spans; `WARN`/`ERROR`/`FATAL`
    /// records); older ones are deleted as new ones arrive.
    pub evidence_per_service_and_kind: usize,
    /// Most derived series tracked per signal; spans/records of further new series are
    /// refused (reported as a partial success) rather than growing memory without bound.
    pub max_series: usize,
}

impl Default for SignalConfig {
    fn default() -> Self {
        Self {
            spans: SpanDeriveConfig::default(),
            logs: LogDeriveConfig::default(),
            evidence_per_service_and_kind: 100,
            max_series: 10_000,
        }
    }
}
