//! OTLP traces -> request/error/duration series per service and span, plus bounded evidence.
//!
//! pipewatch does not store traces. From each `ExportTraceServiceRequest` it keeps what an
//! on-call engineer needs to see that a pipeline step got slow or started failing, and why:
//!
//! - **R.E.D. series** following the OpenTelemetry Collector `spanmetrics` connector as the
//!   Prometheus exporters write it (namespace `traces.span.metrics`, unit seconds):
//!   `traces_span_metrics_calls_total` (a counter) and the classic histogram
//!   `traces_span_metrics_duration_seconds_{bucket,sum,count}`, with the connector's default
//!   buckets and labels `service_name`, `span_name`, `span_kind` (`SPAN_KIND_SERVER`, ...) and
//!   `status_code` (`STATUS_CODE_ERROR`, ...), plus `job` from the resource as for OTLP
//!   metrics. Error rate is `calls_total{status_code="STATUS_CODE_ERROR"}` over all calls,
//!   exactly as with the connector, so dashboards written for it work unchanged.
//!   `instance` (`service.instance.id`) is deliberately not a label: the counts are kept by
//!   pipewatch, not by the sender, so a restarted process does not need a new series, and a
//!   random id per process would multiply the series without adding anything to "how is this
//!   step doing".
//! - **Evidence**: spans with status ERROR, and spans at least as long as a threshold, as
//!   [`SpanEvidence`] with their attributes, events (the `exception` event's type, message and
//!   stack trace pulled out) and links. At most `max_evidence_per_request` per request, so a
//!   flood of failing spans cannot turn into a flood of database rows; the store keeps only
//!   the most recent ones per service.
//!
//! Each request carries only the spans that ended since the last export, i.e. deltas. Turning
//! them into cumulative series needs state, which [`SpanMetricsAccumulator`] keeps in memory
//! (pure, no clock: the caller passes the time of the samples). It works in two steps,
//! [`SpanMetricsAccumulator::prepare`] and [`SpanMetricsAccumulator::commit`], so that a
//! request whose batch the ingest queue refuses (and which the sender will retry) is not
//! counted twice.

use model::{Batch, Labels, MetricMetadata, MetricType, Sample, SeriesKey, TimeSeries};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, status, Span};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::time::Duration;

/// Name of the calls counter (the connector's `traces.span.metrics.calls`, Prometheus-style).
pub const CALLS_METRIC: &str = "traces_span_metrics_calls_total";
/// Family of the duration histogram; its series add `_bucket`, `_sum` and `_count`.
pub const DURATION_METRIC: &str = "traces_span_metrics_duration_seconds";

/// The `spanmetrics` connector's default explicit buckets (2ms ... 15s), in seconds.
pub const DEFAULT_DURATION_BUCKETS: [f64; 16] = [
    0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.4, 2.0, 5.0, 10.0, 15.0,
];

/// What the OpenTelemetry SDKs report when the application set no `service.name`.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// How spans become evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanDeriveConfig {
    /// Spans lasting at least this long are kept as evidence even when they did not fail.
    pub slow_threshold: Duration,
    /// At most this many evidence records per request; failed spans are kept before slow
    /// ones, and the rest is counted in [`DerivedTraces::evidence_dropped`].
    pub max_evidence_per_request: usize,
}

impl Default for SpanDeriveConfig {
    fn default() -> Self {
        Self {
            // Pipeline steps are batch work: a second is slow for a request, not for a load.
            slow_threshold: Duration::from_secs(1),
            max_evidence_per_request: 100,
        }
    }
}

/// The labels of one derived series (before `le`): who did what, how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanSeries {
    /// `service.namespace/service.name`, or `service.name` alone (the OTLP-to-Prometheus rule).
    pub job: String,
    pub service_name: String,
    pub span_name: String,
    /// `SPAN_KIND_INTERNAL`, `SPAN_KIND_SERVER`, ... as the connector writes it.
    pub span_kind: String,
    /// `STATUS_CODE_UNSET`, `STATUS_CODE_OK` or `STATUS_CODE_ERROR`.
    pub status_code: String,
}

impl SpanSeries {
    fn labels(&self) -> Labels {
        Labels::from_pairs([
            ("job", self.job.as_str()),
            ("service_name", self.service_name.as_str()),
            ("span_name", self.span_name.as_str()),
            ("span_kind", self.span_kind.as_str()),
            ("status_code", self.status_code.as_str()),
        ])
    }
}

/// One span, reduced to what the series need.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanObservation {
    pub series: SpanSeries,
    /// `end - start`, 0 when a sender put the end before the start.
    pub duration_seconds: f64,
}

/// Why a span was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvidenceReason {
    /// Status ERROR (kept even when also slow).
    Error,
    /// Lasted at least [`SpanDeriveConfig::slow_threshold`].
    Slow,
}

impl EvidenceReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Slow => "slow",
        }
    }
}

/// The `exception` event of a span, as the semantic conventions name its attributes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpanException {
    pub exception_type: String,
    pub message: String,
    pub stacktrace: String,
}

/// A failed or slow span, kept so the engineer can see what happened.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanEvidence {
    pub reason: EvidenceReason,
    pub service_name: String,
    pub job: String,
    /// Lowercase hex, as in W3C trace context.
    pub trace_id: String,
    pub span_id: String,
    /// `None` for a root span.
    pub parent_span_id: Option<String>,
    pub name: String,
    /// `SPAN_KIND_*`, like the series label.
    pub kind: String,
    pub start_time_unix_nano: u64,
    pub duration_nanos: u64,
    /// `STATUS_CODE_*`.
    pub status_code: String,
    pub status_message: String,
    /// Span attributes as a JSON object (arrays and maps kept as JSON).
    pub attributes: Value,
    /// Resource attributes (service version, environment, host...) as a JSON object.
    pub resource_attributes: Value,
    /// `[{time_unix_nano, name, attributes}]`.
    pub events: Value,
    /// `[{trace_id, span_id, attributes}]`.
    pub links: Value,
    /// The first `exception` event, if any.
    pub exception: Option<SpanException>,
}

impl SpanEvidence {
    pub fn duration_seconds(&self) -> f64 {
        self.duration_nanos as f64 / 1e9
    }

    /// The whole record as one JSON document (what the evidence API returns and the store
    /// keeps beside its indexed columns).
    pub fn to_json(&self) -> Value {
        json!({
            "reason": self.reason.as_str(),
            "service_name": self.service_name,
            "job": self.job,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "name": self.name,
            "kind": self.kind,
            "start_time_unix_nano": self.start_time_unix_nano,
            "duration_nanos": self.duration_nanos,
            "duration_seconds": self.duration_seconds(),
            "status_code": self.status_code,
            "status_message": self.status_message,
            "attributes": self.attributes,
            "resource_attributes": self.resource_attributes,
            "events": self.events,
            "links": self.links,
            "exception": self.exception.as_ref().map(|e| json!({
                "type": e.exception_type,
                "message": e.message,
                "stacktrace": e.stacktrace,
            })),
        })
    }
}

/// What one request yields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DerivedTraces {
    /// One per span, in request order.
    pub observations: Vec<SpanObservation>,
    /// Failed spans first, then slow ones, each in request order; at most
    /// `max_evidence_per_request`.
    pub evidence: Vec<SpanEvidence>,
    /// Failed or slow spans beyond the per-request cap.
    pub evidence_dropped: usize,
}

/// Reduces a request to observations for the series and evidence records.
pub fn derive_traces(req: &ExportTraceServiceRequest, cfg: &SpanDeriveConfig) -> DerivedTraces {
    let slow_nanos = u64::try_from(cfg.slow_threshold.as_nanos()).unwrap_or(u64::MAX);
    let mut out = DerivedTraces::default();
    let mut failed = Vec::new();
    let mut slow = Vec::new();
    for rs in &req.resource_spans {
        let resource = ResourceIdentity::of(rs.resource.as_ref());
        for ss in &rs.scope_spans {
            for sp in &ss.spans {
                let duration_nanos = sp
                    .end_time_unix_nano
                    .saturating_sub(sp.start_time_unix_nano);
                let series = SpanSeries {
                    job: resource.job.clone(),
                    service_name: resource.service_name.clone(),
                    span_name: sp.name.clone(),
                    span_kind: span_kind_name(sp.kind).to_string(),
                    status_code: status_code_name(sp.status.as_ref().map_or(0, |s| s.code))
                        .to_string(),
                };
                let is_error =
                    sp.status.as_ref().map_or(0, |s| s.code) == status::StatusCode::Error as i32;
                if is_error {
                    failed.push((sp, series.clone(), rs.resource.as_ref()));
                } else if duration_nanos >= slow_nanos {
                    slow.push((sp, series.clone(), rs.resource.as_ref()));
                }
                out.observations.push(SpanObservation {
                    series,
                    duration_seconds: duration_nanos as f64 / 1e9,
                });
            }
        }
    }
    let kept = failed
        .into_iter()
        .map(|x| (EvidenceReason::Error, x))
        .chain(slow.into_iter().map(|x| (EvidenceReason::Slow, x)));
    for (i, (reason, (sp, series, resource))) in kept.enumerate() {
        if i >= cfg.max_evidence_per_request {
            out.evidence_dropped += 1;
            continue;
        }
        out.evidence.push(evidence(reason, sp, series, resource));
    }
    out
}

fn evidence(
    reason: EvidenceReason,
    sp: &Span,
    series: SpanSeries,
    resource: Option<&Resource>,
) -> SpanEvidence {
    let exception = sp.events.iter().find(|e| e.name == "exception").map(|e| {
        let get = |k: &str| {
            e.attributes
                .iter()
                .find(|kv| kv.key == k)
                .and_then(|kv| kv.value.as_ref())
                .map(any_value_to_text)
                .unwrap_or_default()
        };
        SpanException {
            exception_type: get("exception.type"),
            message: get("exception.message"),
            stacktrace: get("exception.stacktrace"),
        }
    });
    let events = sp
        .events
        .iter()
        .map(|e| {
            json!({
                "time_unix_nano": e.time_unix_nano,
                "name": e.name,
                "attributes": attributes_to_json(&e.attributes),
            })
        })
        .collect();
    let links = sp
        .links
        .iter()
        .map(|l| {
            json!({
                "trace_id": hex(&l.trace_id),
                "span_id": hex(&l.span_id),
                "attributes": attributes_to_json(&l.attributes),
            })
        })
        .collect();
    SpanEvidence {
        reason,
        service_name: series.service_name,
        job: series.job,
        trace_id: hex(&sp.trace_id),
        span_id: hex(&sp.span_id),
        parent_span_id: (!sp.parent_span_id.is_empty()).then(|| hex(&sp.parent_span_id)),
        name: series.span_name,
        kind: series.span_kind,
        start_time_unix_nano: sp.start_time_unix_nano,
        duration_nanos: sp
            .end_time_unix_nano
            .saturating_sub(sp.start_time_unix_nano),
        status_code: series.status_code,
        status_message: sp
            .status
            .as_ref()
            .map(|s| s.message.clone())
            .unwrap_or_default(),
        attributes: attributes_to_json(&sp.attributes),
        resource_attributes: resource.map_or_else(
            || Value::Object(Map::new()),
            |r| attributes_to_json(&r.attributes),
        ),
        events: Value::Array(events),
        links: Value::Array(links),
        exception,
    }
}

/// `SPAN_KIND_*` as the connector names the kinds; unknown numbers (newer senders) keep
/// their number so they stay distinguishable.
pub fn span_kind_name(kind: i32) -> std::borrow::Cow<'static, str> {
    match span::SpanKind::try_from(kind) {
        Ok(k) => k.as_str_name().into(),
        Err(_) => format!("SPAN_KIND_{kind}").into(),
    }
}

/// `STATUS_CODE_*` as the connector names the codes.
pub fn status_code_name(code: i32) -> std::borrow::Cow<'static, str> {
    match status::StatusCode::try_from(code) {
        Ok(c) => c.as_str_name().into(),
        Err(_) => format!("STATUS_CODE_{code}").into(),
    }
}

/// Service identity of a resource: `service.name` (or `unknown_service`) and the `job` label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceIdentity {
    pub service_name: String,
    pub job: String,
}

impl ResourceIdentity {
    pub fn of(resource: Option<&Resource>) -> Self {
        let attr = |key: &str| {
            resource
                .and_then(|r| r.attributes.iter().find(|kv| kv.key == key))
                .and_then(|kv| kv.value.as_ref())
                .map(any_value_to_text)
                .filter(|s| !s.is_empty())
        };
        let service_name = attr("service.name").unwrap_or_else(|| UNKNOWN_SERVICE.to_string());
        let job = match attr("service.namespace") {
            Some(ns) => format!("{ns}/{service_name}"),
            None => service_name.clone(),
        };
        Self { service_name, job }
    }
}

/// Lowercase hex of an id (empty for an absent id).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// An attribute list as a JSON object; a repeated key keeps its last value.
pub fn attributes_to_json(attrs: &[KeyValue]) -> Value {
    let mut m = Map::new();
    for kv in attrs {
        m.insert(
            kv.key.clone(),
            kv.value.as_ref().map_or(Value::Null, any_value_to_json),
        );
    }
    Value::Object(m)
}

/// An OTLP value as JSON: arrays and maps nest, bytes become `{"bytes_hex": ...}`, and
/// non-finite doubles (which JSON cannot hold) become the strings `NaN`, `+Inf`, `-Inf`.
pub fn any_value_to_json(v: &AnyValue) -> Value {
    match &v.value {
        None => Value::Null,
        Some(any_value::Value::StringValue(s)) => Value::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Value::from(*i),
        Some(any_value::Value::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(non_finite(*d).to_string())),
        Some(any_value::Value::ArrayValue(a)) => {
            Value::Array(a.values.iter().map(any_value_to_json).collect())
        }
        Some(any_value::Value::KvlistValue(kv)) => attributes_to_json(&kv.values),
        Some(any_value::Value::BytesValue(b)) => json!({ "bytes_hex": hex(b) }),
        // Dictionary-encoded strings only occur in profiles, which pipewatch does not take.
        Some(any_value::Value::StringValueStrindex(i)) => json!({ "string_index": i }),
    }
}

fn non_finite(d: f64) -> &'static str {
    if d.is_nan() {
        "NaN"
    } else if d > 0.0 {
        "+Inf"
    } else {
        "-Inf"
    }
}

/// An OTLP value as text: strings as they are, everything else as its JSON.
pub fn any_value_to_text(v: &AnyValue) -> String {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        _ => match any_value_to_json(v) {
            Value::String(s) => s,
            Value::Null => String::new(),
            other => other.to_string(),
        },
    }
}

/// Cumulative totals of one series.
#[derive(Debug, Clone, PartialEq)]
struct SeriesTotals {
    calls: u64,
    /// Per bucket (not cumulative), the last one is `+Inf`.
    bucket_counts: Vec<u64>,
    sum_seconds: f64,
}

/// Totals computed by [`SpanMetricsAccumulator::prepare`], applied by
/// [`SpanMetricsAccumulator::commit`] once the batch is accepted.
#[derive(Debug, Clone, Default)]
pub struct PendingSpanTotals {
    totals: Vec<(SpanSeries, SeriesTotals)>,
    /// Observations whose series was new while the accumulator was full.
    pub refused_observations: usize,
}

/// Cumulative span metrics per series, kept in memory between requests.
///
/// Bounded: at most `max_series` series are tracked; observations of further new series
/// are refused (counted in [`PendingSpanTotals::refused_observations`]) rather than
/// evicting old ones, because evicting would restart a live counter from zero.
#[derive(Debug, Clone)]
pub struct SpanMetricsAccumulator {
    buckets: Vec<f64>,
    max_series: usize,
    series: HashMap<SpanSeries, SeriesTotals>,
}

impl Default for SpanMetricsAccumulator {
    fn default() -> Self {
        Self::new(DEFAULT_DURATION_BUCKETS.to_vec(), 10_000)
    }
}

impl SpanMetricsAccumulator {
    /// `buckets` are upper bounds in seconds; they are sorted and de-duplicated, and
    /// non-finite bounds dropped (`+Inf` is always added).
    pub fn new(mut buckets: Vec<f64>, max_series: usize) -> Self {
        buckets.retain(|b| b.is_finite());
        buckets.sort_by(f64::total_cmp);
        buckets.dedup();
        Self {
            buckets,
            max_series,
            series: HashMap::new(),
        }
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// The cumulative series touched by `observations`, with samples at `ts_ms`, and the new
    /// totals to [`commit`](Self::commit) once the batch is in the ingest queue. Nothing
    /// changes until then, so a refused batch can be prepared again from the retried request.
    pub fn prepare(
        &self,
        observations: &[SpanObservation],
        ts_ms: i64,
    ) -> (Batch, PendingSpanTotals) {
        let mut touched: HashMap<&SpanSeries, SeriesTotals> = HashMap::new();
        let mut pending = PendingSpanTotals::default();
        let mut new_series = 0usize;
        for obs in observations {
            let totals = match touched.get_mut(&obs.series) {
                Some(t) => t,
                None => {
                    let start = match self.series.get(&obs.series) {
                        Some(t) => t.clone(),
                        None if self.series.len() + new_series >= self.max_series => {
                            pending.refused_observations += 1;
                            continue;
                        }
                        None => {
                            new_series += 1;
                            SeriesTotals {
                                calls: 0,
                                bucket_counts: vec![0; self.buckets.len() + 1],
                                sum_seconds: 0.0,
                            }
                        }
                    };
                    touched.entry(&obs.series).or_insert(start)
                }
            };
            totals.calls += 1;
            totals.sum_seconds += obs.duration_seconds;
            // `le` is inclusive: a span of exactly 10ms lands in the 0.01 bucket.
            let i = self.buckets.partition_point(|&b| b < obs.duration_seconds);
            totals.bucket_counts[i] += 1;
        }
        let mut touched: Vec<(SpanSeries, SeriesTotals)> =
            touched.into_iter().map(|(k, v)| (k.clone(), v)).collect();
        touched.sort_by(|a, b| a.0.cmp(&b.0));
        let batch = self.batch(&touched, ts_ms);
        pending.totals = touched;
        (batch, pending)
    }

    /// Makes prepared totals the new state.
    pub fn commit(&mut self, pending: PendingSpanTotals) {
        for (k, v) in pending.totals {
            self.series.insert(k, v);
        }
    }

    /// [`prepare`](Self::prepare) and [`commit`](Self::commit) in one, for callers that
    /// cannot fail in between.
    pub fn record(&mut self, observations: &[SpanObservation], ts_ms: i64) -> Batch {
        let (batch, pending) = self.prepare(observations, ts_ms);
        self.commit(pending);
        batch
    }

    fn batch(&self, touched: &[(SpanSeries, SeriesTotals)], ts_ms: i64) -> Batch {
        let mut batch = Batch::default();
        if touched.is_empty() {
            return batch;
        }
        let one = |metric: &str, labels: Labels, metric_type, value: f64| TimeSeries {
            key: SeriesKey::new(metric, labels),
            metric_type,
            samples: vec![Sample { ts: ts_ms, value }],
        };
        let bucket_metric = format!("{DURATION_METRIC}_bucket");
        let sum_metric = format!("{DURATION_METRIC}_sum");
        let count_metric = format!("{DURATION_METRIC}_count");
        for (series, totals) in touched {
            let labels = series.labels();
            batch.series.push(one(
                CALLS_METRIC,
                labels.clone(),
                MetricType::Counter,
                totals.calls as f64,
            ));
            let mut cumulative = 0u64;
            for (i, count) in totals.bucket_counts.iter().enumerate() {
                cumulative += count;
                let le = self
                    .buckets
                    .get(i)
                    .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
                let mut with_le = labels.clone();
                with_le.insert("le", le);
                batch.series.push(one(
                    &bucket_metric,
                    with_le,
                    MetricType::Histogram,
                    cumulative as f64,
                ));
            }
            batch.series.push(one(
                &sum_metric,
                labels.clone(),
                MetricType::Histogram,
                totals.sum_seconds,
            ));
            batch.series.push(one(
                &count_metric,
                labels,
                MetricType::Histogram,
                totals.calls as f64,
            ));
        }
        batch.metadata = vec![
            MetricMetadata {
                family: CALLS_METRIC.to_string(),
                metric_type: MetricType::Counter,
                unit: String::new(),
                help: "Spans received per service, span name, kind and status (derived from OTLP traces)".to_string(),
            },
            MetricMetadata {
                family: DURATION_METRIC.to_string(),
                metric_type: MetricType::Histogram,
                unit: "seconds".to_string(),
                help: "Span duration (end - start) per service, span name, kind and status (derived from OTLP traces)".to_string(),
            },
        ];
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(name: &str, status: &str, secs: f64) -> SpanObservation {
        SpanObservation {
            series: SpanSeries {
                job: "ns/svc".into(),
                service_name: "svc".into(),
                span_name: name.into(),
                span_kind: "SPAN_KIND_SERVER".into(),
                status_code: status.into(),
            },
            duration_seconds: secs,
        }
    }

    fn value(batch: &Batch, metric: &str, le: Option<&str>) -> f64 {
        let hits: Vec<f64> = batch
            .series
            .iter()
            .filter(|s| s.key.metric == metric && s.key.labels.get("le") == le)
            .map(|s| s.samples[0].value)
            .collect();
        assert_eq!(hits.len(), 1, "{metric} le={le:?}");
        hits[0]
    }

    #[test]
    fn bucket_bounds_are_inclusive_and_cumulative() {
        let mut acc = SpanMetricsAccumulator::new(vec![0.01, 0.1], 10);
        let b = acc.record(
            &[
                obs("a", "STATUS_CODE_OK", 0.01),
                obs("a", "STATUS_CODE_OK", 0.05),
                obs("a", "STATUS_CODE_OK", 3.0),
            ],
            1000,
        );
        assert_eq!(
            value(
                &b,
                "traces_span_metrics_duration_seconds_bucket",
                Some("0.01")
            ),
            1.0
        );
        assert_eq!(
            value(
                &b,
                "traces_span_metrics_duration_seconds_bucket",
                Some("0.1")
            ),
            2.0
        );
        assert_eq!(
            value(
                &b,
                "traces_span_metrics_duration_seconds_bucket",
                Some("+Inf")
            ),
            3.0
        );
        assert_eq!(
            value(&b, "traces_span_metrics_duration_seconds_count", None),
            3.0
        );
        assert!((value(&b, "traces_span_metrics_duration_seconds_sum", None) - 3.06).abs() < 1e-12);
        assert!(b.series.iter().all(|s| s.samples[0].ts == 1000));
    }

    #[test]
    fn requests_accumulate_only_once_committed() {
        let mut acc = SpanMetricsAccumulator::new(vec![1.0], 10);
        acc.record(&[obs("a", "STATUS_CODE_OK", 0.5)], 1);
        let (refused_batch, _dropped) = acc.prepare(&[obs("a", "STATUS_CODE_OK", 0.5)], 2);
        assert_eq!(value(&refused_batch, CALLS_METRIC, None), 2.0);
        // The queue refused that batch; the sender retries the same request.
        let (retried, pending) = acc.prepare(&[obs("a", "STATUS_CODE_OK", 0.5)], 3);
        assert_eq!(value(&retried, CALLS_METRIC, None), 2.0);
        acc.commit(pending);
        let third = acc.record(&[obs("a", "STATUS_CODE_OK", 0.5)], 4);
        assert_eq!(value(&third, CALLS_METRIC, None), 3.0);
    }

    #[test]
    fn new_series_beyond_the_limit_are_refused_and_counted() {
        let acc = SpanMetricsAccumulator::new(vec![1.0], 1);
        let (b, pending) = acc.prepare(
            &[
                obs("a", "STATUS_CODE_OK", 0.1),
                obs("b", "STATUS_CODE_OK", 0.1),
                obs("a", "STATUS_CODE_OK", 0.1),
            ],
            1,
        );
        assert_eq!(pending.refused_observations, 1);
        assert_eq!(value(&b, CALLS_METRIC, None), 2.0);
    }

    #[test]
    fn non_finite_doubles_become_strings() {
        let v = AnyValue {
            value: Some(any_value::Value::DoubleValue(f64::NEG_INFINITY)),
        };
        assert_eq!(any_value_to_json(&v), json!("-Inf"));
        assert_eq!(hex(&[0x0a, 0xff]), "0aff");
    }
}
