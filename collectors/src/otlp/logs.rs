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
//! [`SpanMetricsAccumulator`](super::traces::SpanMetricsAccumulator), and the same rules
//! for idempotency and time: a record is counted once, recognised by a hash of everything it
//! says ([`log_identity`]: time, observed time, severity, body, attributes, ids, event name,
//! scope and resource) kept in a bounded [`SeenWindow`], and a series' sample carries the
//! latest record time it counted (`time_unix_nano`, else `observed_time_unix_nano`, else the
//! arrival time; never later than the arrival, never before the series' last sample). A
//! record with neither time cannot be told from an identical later one and is always
//! counted; two identical records with the same nanosecond time count once.

use super::attributes::{storable_text, unstorable_label};
use super::seen::SeenWindow;
use super::traces::{
    any_value_to_text, attributes_to_json, data_time_ms, hex, next_sample_ms, ResourceIdentity,
};
use model::{Batch, Labels, MetricMetadata, MetricType, Sample, SeriesKey, TimeSeries};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};

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

/// One record, reduced to what the counters need.
#[derive(Debug, Clone, PartialEq)]
pub struct LogObservation {
    pub series: LogSeries,
    /// [`log_identity`]; `None` when the record has no time at all.
    pub identity: Option<u128>,
    /// `time_unix_nano`, else `observed_time_unix_nano`; 0 when neither is set.
    pub time_unix_nano: u64,
}

/// The identity of a log record for de-duplication: a hash of everything it says and where
/// it came from, or `None` when it has neither time nor observed time (then a repeat cannot
/// be told from a re-send). Protobuf encodings are hashed, so a JSON and a protobuf export of
/// the same record have the same identity.
pub fn log_identity(
    r: &LogRecord,
    scope: Option<&InstrumentationScope>,
    resource: Option<&Resource>,
) -> Option<u128> {
    if r.time_unix_nano == 0 && r.observed_time_unix_nano == 0 {
        return None;
    }
    let mut buf = Vec::with_capacity(256);
    let mut part = |bytes: &[u8]| {
        // Length-prefixed, so that no two splits of the same bytes hash alike.
        buf.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        buf.extend_from_slice(bytes);
    };
    part(&r.encode_to_vec());
    part(&scope.map(Message::encode_to_vec).unwrap_or_default());
    let resource_attrs: Vec<u8> = resource
        .map(|res| {
            res.attributes
                .iter()
                .flat_map(KeyValue::encode_length_delimited_to_vec)
                .collect()
        })
        .unwrap_or_default();
    part(&resource_attrs);
    Some(xxhash_rust::xxh3::xxh3_128(&buf))
}

/// What one request yields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DerivedLogs {
    /// Records per series in this request, sorted by series.
    pub counts: Vec<(LogSeries, u64)>,
    /// One per counted record, in request order: what [`LogCountAccumulator::prepare`] takes.
    pub records: Vec<LogObservation>,
    /// Records refused because PostgreSQL could not store their series labels (a NUL byte
    /// in the service name); neither counted nor kept as evidence.
    pub refused: usize,
    /// Why, the first few distinct reasons.
    pub refusals: Vec<String>,
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
    let mut records = Vec::new();
    let (mut refused, mut refusals) = (0usize, Vec::<String>::new());
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
                .map(|s| storable_text(&s.name).into_owned())
                .unwrap_or_default();
            for r in &sl.log_records {
                let number = effective_severity(r);
                let severity = severity_name(number);
                let series = LogSeries {
                    job: resource.job.clone(),
                    service_name: resource.service_name.clone(),
                    severity,
                };
                if let Some(bad) = unstorable_label(&series.labels()) {
                    refused += 1;
                    let why = format!("log records of service {:?}: {bad}, which PostgreSQL cannot store; remove it from the resource", storable_text(&resource.service_name));
                    if refusals.len() < 5 && !refusals.contains(&why) {
                        refusals.push(why);
                    }
                    continue;
                }
                records.push(LogObservation {
                    series: series.clone(),
                    identity: log_identity(r, sl.scope.as_ref(), rl.resource.as_ref()),
                    time_unix_nano: if r.time_unix_nano != 0 {
                        r.time_unix_nano
                    } else {
                        r.observed_time_unix_nano
                    },
                });
                *counts.entry(series).or_default() += 1;
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
                        severity_text: storable_text(&r.severity_text).into_owned(),
                        severity,
                        body: r.body.as_ref().map(any_value_to_text).unwrap_or_default(),
                        attributes: attributes_to_json(&r.attributes),
                        resource_attributes: resource_attributes.clone(),
                        scope_name: scope_name.clone(),
                        event_name: storable_text(&r.event_name).into_owned(),
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
        records,
        refused,
        refusals,
        evidence: kept,
        evidence_dropped,
    }
}

impl DerivedLogs {
    /// The OTLP `partial_success.error_message` part for the refused records, if any.
    pub fn refusal_message(&self) -> Option<String> {
        (self.refused > 0).then(|| {
            format!(
                "{} log record(s) refused: {}",
                self.refused,
                self.refusals.join("; ")
            )
        })
    }
}

impl LogSeries {
    fn labels(&self) -> Labels {
        Labels::from_pairs([
            ("job", self.job.as_str()),
            ("service_name", self.service_name.as_str()),
            ("severity", self.severity),
        ])
    }
}

/// Counts computed by [`LogCountAccumulator::prepare`], applied by
/// [`LogCountAccumulator::commit`].
#[derive(Debug, Clone, Default)]
pub struct PendingLogCounts {
    /// (series, total, time of its sample in ms).
    totals: Vec<(LogSeries, u64, i64)>,
    /// Identities of the records counted, remembered on commit.
    seen: Vec<u128>,
    /// Records whose series was new while the accumulator was full.
    pub refused_records: u64,
    /// Records not counted because they were counted before (a re-sent export) or repeated
    /// within the request.
    pub duplicates: u64,
}

/// Cumulative record counts per series, kept in memory between requests; bounded like
/// [`SpanMetricsAccumulator`](super::traces::SpanMetricsAccumulator).
#[derive(Debug, Clone)]
pub struct LogCountAccumulator {
    max_series: usize,
    /// Total and time of the last sample (ms) per series.
    series: HashMap<LogSeries, (u64, i64)>,
    seen: SeenWindow,
}

impl Default for LogCountAccumulator {
    fn default() -> Self {
        Self::new(10_000)
    }
}

impl LogCountAccumulator {
    /// Record identities are remembered in a window of
    /// [`DEFAULT_SEEN_CAPACITY`](super::seen::DEFAULT_SEEN_CAPACITY).
    pub fn new(max_series: usize) -> Self {
        Self {
            max_series,
            series: HashMap::new(),
            seen: SeenWindow::default(),
        }
    }

    /// The same accumulator with a window of `capacity` record identities.
    pub fn with_seen_capacity(mut self, capacity: usize) -> Self {
        self.seen = SeenWindow::new(capacity);
        self
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// The window of record identities counted so far.
    pub fn seen(&self) -> &SeenWindow {
        &self.seen
    }

    /// The cumulative counters touched by the records not counted before, each sampled at
    /// the latest record time it counted (`now_ms`: when the request arrived), and the totals
    /// to commit once the batch is accepted.
    pub fn prepare(&self, records: &[LogObservation], now_ms: i64) -> (Batch, PendingLogCounts) {
        let mut pending = PendingLogCounts::default();
        let mut touched: HashMap<&LogSeries, (u64, i64, i64)> = HashMap::new();
        let mut fresh: HashSet<u128> = HashSet::new();
        let mut new_series = 0usize;
        for r in records {
            if let Some(id) = r.identity {
                if self.seen.contains(id) || fresh.contains(&id) {
                    pending.duplicates += 1;
                    continue;
                }
            }
            let (total, _previous_ms, latest) = match touched.get_mut(&r.series) {
                Some(t) => t,
                None => {
                    let (total, previous_ms) = match self.series.get(&r.series) {
                        Some(&known) => known,
                        None if self.series.len() + new_series >= self.max_series => {
                            pending.refused_records += 1;
                            continue;
                        }
                        None => {
                            new_series += 1;
                            (0, i64::MIN)
                        }
                    };
                    touched
                        .entry(&r.series)
                        .or_insert((total, previous_ms, i64::MIN))
                }
            };
            if let Some(id) = r.identity {
                fresh.insert(id);
            }
            *total += 1;
            *latest = (*latest).max(data_time_ms(r.time_unix_nano, now_ms));
        }
        let mut totals: Vec<(LogSeries, u64, i64)> = touched
            .into_iter()
            .map(|(s, (total, previous_ms, latest))| {
                (s.clone(), total, next_sample_ms(previous_ms, latest))
            })
            .collect();
        totals.sort_by(|a, b| a.0.cmp(&b.0));
        let mut batch = Batch::default();
        for (s, total, ts) in &totals {
            batch.series.push(TimeSeries {
                key: SeriesKey::new(RECORDS_METRIC, s.labels()),
                metric_type: MetricType::Counter,
                samples: vec![Sample {
                    ts: *ts,
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
        pending.totals = totals;
        pending.seen = fresh.into_iter().collect();
        (batch, pending)
    }

    /// Makes prepared counts the new state and remembers the records counted.
    pub fn commit(&mut self, pending: PendingLogCounts) {
        for (k, total, ts) in pending.totals {
            self.series.insert(k, (total, ts));
        }
        for id in pending.seen {
            self.seen.insert(id);
        }
    }

    /// [`prepare`](Self::prepare) and [`commit`](Self::commit) in one.
    pub fn record(&mut self, records: &[LogObservation], now_ms: i64) -> Batch {
        let (batch, pending) = self.prepare(records, now_ms);
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

    fn rec(sev: &'static str, id: u128, time_ms: u64) -> LogObservation {
        LogObservation {
            series: LogSeries {
                job: "j".into(),
                service_name: "s".into(),
                severity: sev,
            },
            identity: Some(id),
            time_unix_nano: time_ms * 1_000_000,
        }
    }

    fn values(b: &Batch) -> Vec<(i64, f64)> {
        b.series
            .iter()
            .map(|t| (t.samples[0].ts, t.samples[0].value))
            .collect()
    }

    #[test]
    fn counts_accumulate_per_series_up_to_the_series_limit() {
        let mut acc = LogCountAccumulator::new(2);
        acc.record(&[rec("INFO", 1, 10), rec("INFO", 2, 10)], 100);
        let (b, pending) = acc.prepare(
            &[
                rec("INFO", 3, 20),
                rec("INFO", 4, 20),
                rec("INFO", 5, 30),
                rec("WARN", 6, 25),
                rec("ERROR", 7, 20),
                rec("ERROR", 8, 20),
            ],
            100,
        );
        assert_eq!(pending.refused_records, 2);
        // Sorted by series: INFO before WARN (derive order of the severity names).
        assert_eq!(values(&b), vec![(30, 5.0), (25, 1.0)]);
    }

    #[test]
    fn a_re_sent_record_is_not_counted_again_and_times_rise_per_series() {
        let mut acc = LogCountAccumulator::new(10);
        assert_eq!(
            values(&acc.record(&[rec("INFO", 1, 50), rec("INFO", 1, 50)], 100)),
            vec![(50, 1.0)]
        );
        let (b, pending) = acc.prepare(&[rec("INFO", 1, 50)], 200);
        assert!(b.is_empty());
        assert_eq!(pending.duplicates, 1);
        acc.commit(pending);
        // Older than the last sample: one ms after it. From the future: the arrival time.
        assert_eq!(
            values(&acc.record(&[rec("INFO", 2, 10)], 300)),
            vec![(51, 2.0)]
        );
        assert_eq!(
            values(&acc.record(&[rec("INFO", 3, 9_999)], 400)),
            vec![(400, 3.0)]
        );
        let no_time = LogObservation {
            identity: None,
            time_unix_nano: 0,
            ..rec("INFO", 0, 0)
        };
        assert_eq!(
            values(&acc.record(&[no_time.clone(), no_time], 500)),
            vec![(500, 5.0)]
        );
    }

    #[test]
    fn identity_covers_what_the_record_says_and_needs_a_time() {
        use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
        let body = |s: &str| AnyValue {
            value: Some(any_value::Value::StringValue(s.into())),
        };
        let r = LogRecord {
            time_unix_nano: 1,
            body: Some(body("loaded")),
            ..Default::default()
        };
        let id = log_identity(&r, None, None);
        assert!(id.is_some());
        assert_eq!(id, log_identity(&r.clone(), None, None));
        let other_body = LogRecord {
            body: Some(body("failed")),
            ..r.clone()
        };
        assert_ne!(id, log_identity(&other_body, None, None));
        let resource = Resource {
            attributes: vec![KeyValue {
                key: "service.name".into(),
                value: Some(body("loader")),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_ne!(id, log_identity(&r, None, Some(&resource)));
        let untimed = LogRecord {
            time_unix_nano: 0,
            ..r
        };
        assert_eq!(log_identity(&untimed, None, None), None);
    }
}
