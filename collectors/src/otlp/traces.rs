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
//! (pure, no clock: the caller passes the time the request arrived). It works in two steps,
//! [`SpanMetricsAccumulator::prepare`] and [`SpanMetricsAccumulator::commit`], so that a
//! request whose batch the ingest queue refuses (and which the sender will retry) is not
//! counted twice.
//!
//! The counters are idempotent and carry the spans' own time:
//!
//! - A span is counted once: its identity (trace id + span id) is kept in a bounded
//!   [`SeenWindow`], and a span seen before — the same export sent again, or a span repeated
//!   within one request — is skipped. Spans without a valid id (all-zero or missing) cannot
//!   be told apart and are always counted.
//! - A series' sample is stamped with the latest end time of the spans it counted, not with
//!   the arrival time: a pipeline's failures show when they happened even when the exporter
//!   batched them for minutes. A span with no end time counts at the arrival time, one that
//!   ends in the future (a sender's clock ahead) at the arrival time, and one that ended before
//!   the series' last sample one millisecond after that sample, so every counter still rises in
//!   time order (a cumulative series that went back in time would read as a reset).
//! - A span whose series labels PostgreSQL cannot store (a NUL byte in the span name or the
//!   service) is refused and reported ([`DerivedTraces::refused`]), not counted; NUL bytes in
//!   evidence text become U+FFFD.

use super::attributes::{storable_text, unstorable_label};
pub use super::attributes::{ResourceIdentity, UNKNOWN_SERVICE};
use super::seen::SeenWindow;
use model::{Batch, Labels, MetricMetadata, MetricType, Sample, SeriesKey, TimeSeries};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, status, Span};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Name of the calls counter (the connector's `traces.span.metrics.calls`, Prometheus-style).
pub const CALLS_METRIC: &str = "traces_span_metrics_calls_total";
/// Family of the duration histogram; its series add `_bucket`, `_sum` and `_count`.
pub const DURATION_METRIC: &str = "traces_span_metrics_duration_seconds";

/// The `spanmetrics` connector's default explicit buckets (2ms ... 15s), in seconds.
pub const DEFAULT_DURATION_BUCKETS: [f64; 16] = [
    0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.4, 2.0, 5.0, 10.0, 15.0,
];

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
    /// Hash of trace id and span id; `None` when the span has no valid ids.
    pub identity: Option<u128>,
    /// When the span ended; 0 when the sender did not say.
    pub end_time_unix_nano: u64,
}

/// The identity of a span for de-duplication: its trace and span ids, or `None` when either
/// is missing or all zeros (invalid per the OTLP specification, and not unique).
pub fn span_identity(trace_id: &[u8], span_id: &[u8]) -> Option<u128> {
    let valid = |id: &[u8]| !id.is_empty() && id.iter().any(|b| *b != 0);
    if !valid(trace_id) || !valid(span_id) {
        return None;
    }
    let mut buf = Vec::with_capacity(trace_id.len() + span_id.len() + 1);
    buf.extend_from_slice(trace_id);
    // A separator, so that different splits of the same bytes hash differently.
    buf.push(trace_id.len() as u8);
    buf.extend_from_slice(span_id);
    Some(xxhash_rust::xxh3::xxh3_128(&buf))
}

/// The sample time in ms for data that happened at `unix_nano` (0: unknown) and arrived at
/// `now_ms`: its own time, but never later than its arrival.
pub(crate) fn data_time_ms(unix_nano: u64, now_ms: i64) -> i64 {
    if unix_nano == 0 {
        return now_ms;
    }
    i64::try_from(unix_nano / 1_000_000)
        .unwrap_or(i64::MAX)
        .min(now_ms)
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
    /// Spans refused because PostgreSQL could not store their series labels; neither counted
    /// nor kept as evidence.
    pub refused: usize,
    /// Why, the first few distinct reasons (for the OTLP `partial_success` message).
    pub refusals: Vec<String>,
}

/// Refusal messages kept per request (the count is always exact).
const MAX_MESSAGES: usize = 5;

impl DerivedTraces {
    /// The OTLP `partial_success.error_message` part for the refused spans, if any.
    pub fn refusal_message(&self) -> Option<String> {
        (self.refused > 0).then(|| {
            format!(
                "{} span(s) refused: {}",
                self.refused,
                self.refusals.join("; ")
            )
        })
    }
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
                if let Some(bad) = unstorable_label(&series.labels()) {
                    out.refused += 1;
                    let why = format!("span {:?} of service {:?}: {bad}, which PostgreSQL cannot store; remove it from the span name or resource", storable_text(&sp.name), storable_text(&resource.service_name));
                    if out.refusals.len() < MAX_MESSAGES && !out.refusals.contains(&why) {
                        out.refusals.push(why);
                    }
                    continue;
                }
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
                    identity: span_identity(&sp.trace_id, &sp.span_id),
                    end_time_unix_nano: sp.end_time_unix_nano,
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
                "name": storable_text(&e.name),
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
            .map(|s| storable_text(&s.message).into_owned())
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
            storable_text(&kv.key).into_owned(),
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
        Some(any_value::Value::StringValue(s)) => Value::String(storable_text(s).into_owned()),
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

/// An OTLP value as text: strings as they are (NUL bytes as U+FFFD, which PostgreSQL can
/// store), everything else as its JSON.
pub fn any_value_to_text(v: &AnyValue) -> String {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => storable_text(s).into_owned(),
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
    /// Time of the series' last sample, ms.
    last_ts_ms: i64,
}

/// Totals computed by [`SpanMetricsAccumulator::prepare`], applied by
/// [`SpanMetricsAccumulator::commit`] once the batch is accepted.
#[derive(Debug, Clone, Default)]
pub struct PendingSpanTotals {
    totals: Vec<(SpanSeries, SeriesTotals)>,
    /// Identities of the spans counted, remembered on commit.
    seen: Vec<u128>,
    /// Observations whose series was new while the accumulator was full.
    pub refused_observations: usize,
    /// Spans not counted because they were counted before (a re-sent export) or repeated
    /// within the request.
    pub duplicates: usize,
}

/// Cumulative span metrics per series, kept in memory between requests.
///
/// Bounded: at most `max_series` series are tracked; observations of further new series
/// are refused (counted in [`PendingSpanTotals::refused_observations`]) rather than
/// evicting old ones, because evicting would restart a live counter from zero. The
/// identities of counted spans are kept in a [`SeenWindow`] of bounded size.
#[derive(Debug, Clone)]
pub struct SpanMetricsAccumulator {
    buckets: Vec<f64>,
    max_series: usize,
    series: HashMap<SpanSeries, SeriesTotals>,
    seen: SeenWindow,
}

impl Default for SpanMetricsAccumulator {
    fn default() -> Self {
        Self::new(DEFAULT_DURATION_BUCKETS.to_vec(), 10_000)
    }
}

impl SpanMetricsAccumulator {
    /// `buckets` are upper bounds in seconds; they are sorted and de-duplicated, and
    /// non-finite bounds dropped (`+Inf` is always added). Span identities are remembered in
    /// a window of [`DEFAULT_SEEN_CAPACITY`](super::seen::DEFAULT_SEEN_CAPACITY).
    pub fn new(mut buckets: Vec<f64>, max_series: usize) -> Self {
        buckets.retain(|b| b.is_finite());
        buckets.sort_by(f64::total_cmp);
        buckets.dedup();
        Self {
            buckets,
            max_series,
            series: HashMap::new(),
            seen: SeenWindow::default(),
        }
    }

    /// The same accumulator with a window of `capacity` span identities.
    pub fn with_seen_capacity(mut self, capacity: usize) -> Self {
        self.seen = SeenWindow::new(capacity);
        self
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// The window of span identities counted so far.
    pub fn seen(&self) -> &SeenWindow {
        &self.seen
    }

    /// The cumulative series touched by the spans of `observations` not counted before, each
    /// sampled at the latest end time of its spans (see the module docs for spans without
    /// one, from the future, or older than the series' last sample; `now_ms` is when the
    /// request arrived), and the new totals to [`commit`](Self::commit) once the batch is in
    /// the ingest queue. Nothing changes until then, so a refused batch can be prepared again
    /// from the retried request.
    pub fn prepare(
        &self,
        observations: &[SpanObservation],
        now_ms: i64,
    ) -> (Batch, PendingSpanTotals) {
        // Per touched series: totals so far and the latest data time of its new spans.
        let mut touched: HashMap<&SpanSeries, (SeriesTotals, i64)> = HashMap::new();
        let mut pending = PendingSpanTotals::default();
        let mut fresh: HashSet<u128> = HashSet::new();
        let mut new_series = 0usize;
        for obs in observations {
            if let Some(id) = obs.identity {
                if self.seen.contains(id) || fresh.contains(&id) {
                    pending.duplicates += 1;
                    continue;
                }
            }
            let (totals, latest) = match touched.get_mut(&obs.series) {
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
                                last_ts_ms: i64::MIN,
                            }
                        }
                    };
                    touched.entry(&obs.series).or_insert((start, i64::MIN))
                }
            };
            if let Some(id) = obs.identity {
                fresh.insert(id);
            }
            totals.calls += 1;
            totals.sum_seconds += obs.duration_seconds;
            // `le` is inclusive: a span of exactly 10ms lands in the 0.01 bucket.
            let i = self.buckets.partition_point(|&b| b < obs.duration_seconds);
            totals.bucket_counts[i] += 1;
            *latest = (*latest).max(data_time_ms(obs.end_time_unix_nano, now_ms));
        }
        let mut touched: Vec<(SpanSeries, SeriesTotals)> = touched
            .into_iter()
            .map(|(k, (mut totals, latest))| {
                totals.last_ts_ms = next_sample_ms(totals.last_ts_ms, latest);
                (k.clone(), totals)
            })
            .collect();
        touched.sort_by(|a, b| a.0.cmp(&b.0));
        let batch = self.batch(&touched);
        pending.totals = touched;
        pending.seen = fresh.into_iter().collect();
        (batch, pending)
    }

    /// Makes prepared totals the new state and remembers the spans counted.
    pub fn commit(&mut self, pending: PendingSpanTotals) {
        for (k, v) in pending.totals {
            self.series.insert(k, v);
        }
        for id in pending.seen {
            self.seen.insert(id);
        }
    }

    /// [`prepare`](Self::prepare) and [`commit`](Self::commit) in one, for callers that
    /// cannot fail in between.
    pub fn record(&mut self, observations: &[SpanObservation], now_ms: i64) -> Batch {
        let (batch, pending) = self.prepare(observations, now_ms);
        self.commit(pending);
        batch
    }

    fn batch(&self, touched: &[(SpanSeries, SeriesTotals)]) -> Batch {
        let mut batch = Batch::default();
        if touched.is_empty() {
            return batch;
        }
        let one = |metric: &str, labels: Labels, metric_type, ts: i64, value: f64| TimeSeries {
            key: SeriesKey::new(metric, labels),
            metric_type,
            samples: vec![Sample { ts, value }],
        };
        let bucket_metric = format!("{DURATION_METRIC}_bucket");
        let sum_metric = format!("{DURATION_METRIC}_sum");
        let count_metric = format!("{DURATION_METRIC}_count");
        for (series, totals) in touched {
            let labels = series.labels();
            let ts = totals.last_ts_ms;
            batch.series.push(one(
                CALLS_METRIC,
                labels.clone(),
                MetricType::Counter,
                ts,
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
                    ts,
                    cumulative as f64,
                ));
            }
            batch.series.push(one(
                &sum_metric,
                labels.clone(),
                MetricType::Histogram,
                ts,
                totals.sum_seconds,
            ));
            batch.series.push(one(
                &count_metric,
                labels,
                MetricType::Histogram,
                ts,
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

/// The time of a cumulative series' next sample: the latest data time it counted, but after
/// its previous sample (`i64::MIN` for none), so the series never steps back in time.
pub(crate) fn next_sample_ms(previous_ms: i64, latest_data_ms: i64) -> i64 {
    latest_data_ms.max(previous_ms.saturating_add(1))
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
            identity: None,
            end_time_unix_nano: 0,
        }
    }

    /// A span with an identity that ended at `end_ms`.
    fn span(id: u128, end_ms: u64) -> SpanObservation {
        SpanObservation {
            identity: Some(id),
            end_time_unix_nano: end_ms * 1_000_000,
            ..obs("a", "STATUS_CODE_OK", 0.5)
        }
    }

    fn calls(batch: &Batch) -> Option<(i64, f64)> {
        batch
            .series
            .iter()
            .find(|s| s.key.metric == CALLS_METRIC)
            .map(|s| (s.samples[0].ts, s.samples[0].value))
    }

    #[test]
    fn a_re_sent_span_is_not_counted_again_and_a_repeat_within_a_request_counts_once() {
        let mut acc = SpanMetricsAccumulator::new(vec![1.0], 10);
        let first = acc.record(&[span(1, 100), span(2, 200), span(2, 200)], 1_000);
        assert_eq!(calls(&first), Some((200, 2.0)));
        let (again, pending) = acc.prepare(&[span(1, 100), span(2, 200)], 2_000);
        assert!(again.is_empty(), "a re-send yields no samples: {again:?}");
        assert_eq!(pending.duplicates, 2);
        acc.commit(pending);
        let next = acc.record(&[span(2, 200), span(3, 300)], 3_000);
        assert_eq!(calls(&next), Some((300, 3.0)));
        assert_eq!(acc.seen().len(), 3);
    }

    #[test]
    fn a_refused_batch_does_not_mark_its_spans_as_seen() {
        let mut acc = SpanMetricsAccumulator::new(vec![1.0], 10);
        let (_refused, _dropped) = acc.prepare(&[span(1, 100)], 1_000);
        let retried = acc.record(&[span(1, 100)], 1_000);
        assert_eq!(calls(&retried), Some((100, 1.0)));
    }

    #[test]
    fn samples_carry_the_span_end_time_clamped_to_arrival_and_to_rising_time() {
        let mut acc = SpanMetricsAccumulator::new(vec![1.0], 10);
        // Its own end time.
        assert_eq!(
            calls(&acc.record(&[span(1, 5_000)], 9_000)),
            Some((5_000, 1.0))
        );
        // Ended before the last sample: one ms after it, so the counter rises in time order.
        assert_eq!(
            calls(&acc.record(&[span(2, 1_000)], 9_000)),
            Some((5_001, 2.0))
        );
        // From the sender's future: the arrival time.
        assert_eq!(
            calls(&acc.record(&[span(3, 60_000)], 10_000)),
            Some((10_000, 3.0))
        );
        // No end time: the arrival time.
        let no_end = SpanObservation {
            end_time_unix_nano: 0,
            ..span(4, 0)
        };
        assert_eq!(calls(&acc.record(&[no_end], 12_000)), Some((12_000, 4.0)));
    }

    #[test]
    fn span_identity_needs_both_ids_and_tells_splits_apart() {
        assert_eq!(span_identity(&[0; 16], &[1; 8]), None);
        assert_eq!(span_identity(&[1; 16], &[]), None);
        assert_ne!(
            span_identity(&[1, 2, 3], &[4, 5]),
            span_identity(&[1, 2], &[3, 4, 5])
        );
        assert_eq!(
            span_identity(&[1; 16], &[2; 8]),
            span_identity(&[1; 16], &[2; 8])
        );
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
