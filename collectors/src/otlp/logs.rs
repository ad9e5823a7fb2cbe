//! OTLP logs -> record counts by severity per service, plus bounded evidence of warnings and
//! errors.
//!
//! pipewatch does not store logs. From each `ExportLogsServiceRequest` it keeps:
//!
//! - **`otel_log_records_total{job, service_name, severity}`**, a counter per service and
//!   severity, so "errors per minute of the loader" plots and alerts like any metric.
//!   `severity` is the short name of the record's `severity_number` range (`TRACE`, `DEBUG`,
//!   `INFO`, `WARN`, `ERROR`, `FATAL`), not the free-form `severity_text`: Python sends
//!   `WARNING` where Java sends `WARN`, and the number is what the OpenTelemetry data model
//!   makes comparable. When a sender leaves the number unset (0), the text is read instead
//!   (`warning`, `err`, `critical`... map to their range); a record with neither is
//!   `UNSPECIFIED`.
//! - **Evidence**: records with a severity of at least `min_evidence_severity` (WARN by
//!   default, not only ERROR: a schema-drift warning is often the first sign of the failure
//!   that follows), with the body rendered as text (map and array bodies as JSON), the
//!   attributes, and the trace/span ids that link them to span evidence. At most
//!   `max_evidence_per_request` per request, the most severe first.
//!
//! Like spans, log records arrive as deltas; [`LogCountAccumulator`] keeps the cumulative
//! counts with the same prepare/commit protocol as
//! [`SpanMetricsAccumulator`](super::traces::SpanMetricsAccumulator).

use super::traces::{any_value_to_text, attributes_to_json, hex, ResourceIdentity};
use model::{Batch, Labels, MetricMetadata, MetricType, Sample, SeriesKey, TimeSeries};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Name of the record counter.
pub const RECORDS_METRIC: &str = "otel_log_records_total";

/// `SeverityNumber` where WARN starts (WARN..WARN4 = 13..16).
pub const SEVERITY_WARN: i32 = 13;
/// `SeverityNumber` where ERROR starts (ERROR..ERROR4 = 17..20).
pub const SEVERITY_ERROR: i32 = 17;

/// How records become evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct LogDeriveConfig {
    /// Records at this `SeverityNumber` or above are kept as evidence.
    pub min_evidence_severity: i32,
    /// At most this many evidence records per request, the most severe first; the rest is
    /// counted in [`DerivedLogs::evidence_dropped`].
    pub max_evidence_per_request: usize,
}

impl Default for LogDeriveConfig {
    fn default() -> Self {
        Self {
            min_evidence_severity: SEVERITY_WARN,
            max_evidence_per_request: 100,
        }
    }
}

/// The labels of one count series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LogSeries {
    pub job: String,
    pub service_name: String,
    /// `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`, `FATAL` or `UNSPECIFIED`.
    pub severity: &'static str,
}

/// A warning or error record, kept so the engineer can read it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEvidence {
    pub service_name: String,
    pub job: String,
    /// `time_unix_nano`, or `observed_time_unix_nano` when the sender left the time unset.
    pub time_unix_nano: u64,
    pub observed_time_unix_nano: u64,
    /// The number the severity was judged by: as sent, or derived from the text when unset.
    pub severity_number: i32,
    /// As sent.
    pub severity_text: String,
    /// Short name of the range, as in the count series.
    pub severity: &'static str,
    /// Strings as they are; maps and arrays as JSON; other scalars as their JSON text.
    pub body: String,
    pub attributes: Value,
    pub resource_attributes: Value,
    pub scope_name: String,
    pub event_name: String,
    /// Lowercase hex; `None` for records outside a span.
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
}

impl LogEvidence {
    /// The whole record as one JSON document.
    pub fn to_json(&self) -> Value {
        json!({
            "service_name": self.service_name,
            "job": self.job,
            "time_unix_nano": self.time_unix_nano,
            "observed_time_unix_nano": self.observed_time_unix_nano,
            "severity_number": self.severity_number,
            "severity_text": self.severity_text,
            "severity": self.severity,
            "body": self.body,
            "attributes": self.attributes,
            "resource_attributes": self.resource_attributes,
            "scope_name": self.scope_name,
            "event_name": self.event_name,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
        })
    }
}

/// What one request yields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DerivedLogs {
    /// Records per series in this request, sorted by series.
    pub counts: Vec<(LogSeries, u64)>,
    /// Most severe first, then in request order.
    pub evidence: Vec<LogEvidence>,
    pub evidence_dropped: usize,
}

/// The short name of a `SeverityNumber` range.
pub fn severity_name(number: i32) -> &'static str {
    match number {
        1..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21..=24 => "FATAL",
        _ => "UNSPECIFIED",
    }
}

/// The first `SeverityNumber` of the range a free-form severity text names (as the
/// logging libraries spell it), or 0 when it names none.
pub fn severity_number_from_text(text: &str) -> i32 {
    match text.trim().to_ascii_lowercase().as_str() {
        "trace" | "finest" | "finer" => 1,
        "debug" | "fine" | "config" => 5,
        "info" | "information" | "informational" | "notice" => 9,
        "warn" | "warning" => 13,
        "error" | "err" | "severe" => 17,
        "fatal" | "critical" | "crit" | "alert" | "emergency" | "emerg" | "panic" => 21,
        _ => 0,
    }
}

fn effective_severity(r: &LogRecord) -> i32 {
    if (1..=24).contains(&r.severity_number) {
        r.severity_number
    } else {
        severity_number_from_text(&r.severity_text)
    }
}

/// Reduces a request to counts and evidence records.
pub fn derive_logs(req: &ExportLogsServiceRequest, cfg: &LogDeriveConfig) -> DerivedLogs {
    let mut counts: HashMap<LogSeries, u64> = HashMap::new();
    let mut kept: Vec<LogEvidence> = Vec::new();
    for rl in &req.resource_logs {
        let resource = ResourceIdentity::of(rl.resource.as_ref());
        let resource_attributes = rl.resource.as_ref().map_or_else(
            || Value::Object(Map::new()),
            |r| attributes_to_json(&r.attributes),
        );
        for sl in &rl.scope_logs {
            let scope_name = sl
                .scope
                .as_ref()
                .map(|s| s.name.clone())
                .unwrap_or_default();
            for r in &sl.log_records {
                let number = effective_severity(r);
                let severity = severity_name(number);
                *counts
                    .entry(LogSeries {
                        job: resource.job.clone(),
                        service_name: resource.service_name.clone(),
                        severity,
                    })
                    .or_default() += 1;
                if number >= cfg.min_evidence_severity && number > 0 {
                    kept.push(LogEvidence {
                        service_name: resource.service_name.clone(),
                        job: resource.job.clone(),
                        time_unix_nano: if r.time_unix_nano != 0 {
                            r.time_unix_nano
                        } else {
                            r.observed_time_unix_nano
                        },
                        observed_time_unix_nano: r.observed_time_unix_nano,
                        severity_number: number,
                        severity_text: r.severity_text.clone(),
                        severity,
                        body: r.body.as_ref().map(any_value_to_text).unwrap_or_default(),
                        attributes: attributes_to_json(&r.attributes),
                        resource_attributes: resource_attributes.clone(),
                        scope_name: scope_name.clone(),
                        event_name: r.event_name.clone(),
                        trace_id: (!r.trace_id.is_empty()).then(|| hex(&r.trace_id)),
                        span_id: (!r.span_id.is_empty()).then(|| hex(&r.span_id)),
                    });
                }
            }
        }
    }
    // Stable: equal severities keep request order.
    kept.sort_by_key(|e| std::cmp::Reverse(e.severity_number));
    let evidence_dropped = kept.len().saturating_sub(cfg.max_evidence_per_request);
    kept.truncate(cfg.max_evidence_per_request);
    let mut counts: Vec<(LogSeries, u64)> = counts.into_iter().collect();
    counts.sort();
    DerivedLogs {
        counts,
        evidence: kept,
        evidence_dropped,
    }
}

/// Counts computed by [`LogCountAccumulator::prepare`], applied by
/// [`LogCountAccumulator::commit`].
#[derive(Debug, Clone, Default)]
pub struct PendingLogCounts {
    totals: Vec<(LogSeries, u64)>,
    /// Records whose series was new while the accumulator was full.
    pub refused_records: u64,
}

/// Cumulative record counts per series, kept in memory between requests; bounded like
/// [`SpanMetricsAccumulator`](super::traces::SpanMetricsAccumulator).
#[derive(Debug, Clone)]
pub struct LogCountAccumulator {
    max_series: usize,
    series: HashMap<LogSeries, u64>,
}

impl Default for LogCountAccumulator {
    fn default() -> Self {
        Self::new(10_000)
    }
}

impl LogCountAccumulator {
    pub fn new(max_series: usize) -> Self {
        Self {
            max_series,
            series: HashMap::new(),
        }
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// The cumulative counters touched by `counts`, at `ts_ms`, and the totals to commit
    /// once the batch is accepted.
    pub fn prepare(&self, counts: &[(LogSeries, u64)], ts_ms: i64) -> (Batch, PendingLogCounts) {
        let mut pending = PendingLogCounts::default();
        let mut new_series = 0usize;
        for (series, n) in counts {
            let total = match self.series.get(series) {
                Some(t) => t + n,
                None if self.series.len() + new_series >= self.max_series => {
                    pending.refused_records += n;
                    continue;
                }
                None => {
                    new_series += 1;
                    *n
                }
            };
            pending.totals.push((series.clone(), total));
        }
        let mut batch = Batch::default();
        for (s, total) in &pending.totals {
            batch.series.push(TimeSeries {
                key: SeriesKey::new(
                    RECORDS_METRIC,
                    Labels::from_pairs([
                        ("job", s.job.as_str()),
                        ("service_name", s.service_name.as_str()),
                        ("severity", s.severity),
                    ]),
                ),
                metric_type: MetricType::Counter,
                samples: vec![Sample {
                    ts: ts_ms,
                    value: *total as f64,
                }],
            });
        }
        if !batch.series.is_empty() {
            batch.metadata.push(MetricMetadata {
                family: RECORDS_METRIC.to_string(),
                metric_type: MetricType::Counter,
                unit: String::new(),
                help: "Log records received per service and severity (derived from OTLP logs)"
                    .to_string(),
            });
        }
        (batch, pending)
    }

    pub fn commit(&mut self, pending: PendingLogCounts) {
        for (k, v) in pending.totals {
            self.series.insert(k, v);
        }
    }

    /// [`prepare`](Self::prepare) and [`commit`](Self::commit) in one.
    pub fn record(&mut self, counts: &[(LogSeries, u64)], ts_ms: i64) -> Batch {
        let (batch, pending) = self.prepare(counts, ts_ms);
        self.commit(pending);
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_ranges_follow_the_data_model() {
        assert_eq!(
            [1, 4, 5, 9, 12, 13, 17, 20, 21, 24, 0, 25].map(severity_name),
            [
                "TRACE",
                "TRACE",
                "DEBUG",
                "INFO",
                "INFO",
                "WARN",
                "ERROR",
                "ERROR",
                "FATAL",
                "FATAL",
                "UNSPECIFIED",
                "UNSPECIFIED"
            ]
        );
        assert_eq!(severity_number_from_text("WARNING"), 13);
        assert_eq!(severity_number_from_text(" Critical "), 21);
        assert_eq!(severity_number_from_text("chatty"), 0);
    }

    #[test]
    fn counts_accumulate_per_series() {
        let s = |sev| LogSeries {
            job: "j".into(),
            service_name: "s".into(),
            severity: sev,
        };
        let mut acc = LogCountAccumulator::new(2);
        acc.record(&[(s("INFO"), 2)], 1);
        let (b, pending) = acc.prepare(&[(s("INFO"), 3), (s("WARN"), 1), (s("ERROR"), 4)], 2);
        assert_eq!(pending.refused_records, 4);
        let values: Vec<f64> = b.series.iter().map(|t| t.samples[0].value).collect();
        assert_eq!(values, vec![5.0, 1.0]);
    }
}
