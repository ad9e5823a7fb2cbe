//! The demo's `model_serving` stage as an OpenTelemetry-instrumented service: every push it
//! sends OTLP/HTTP protobuf metrics and traces to pipewatch's `/v1/metrics` and `/v1/traces`,
//! the same requests an OpenTelemetry SDK's OTLP exporter would send.
//!
//! - Metrics (resource `service.namespace=demo`, `service.name=model_serving`, so
//!   `job="demo/model_serving"`): `inference.requests` (cumulative counter by
//!   `http.response.status_code`), `inference.latency` (cumulative histogram in ms, explicit
//!   buckets) and `model.feature.null_ratio` (gauge). Like the scraped pipeline in
//!   [`super`], values are a pure function of time and the injected fault, and counters start
//!   at the demo epoch, so they stay monotonic across restarts and fault starts.
//! - Traces: [`TRACES_PER_PUSH`] `POST /predict` requests per push, each a SERVER root span
//!   with a `feature_lookup` CLIENT child (to `feature_store`) and a `model.infer` INTERNAL
//!   child. Ids are derived from the push time, so a repeated push repeats the same spans
//!   rather than inventing new ones.
//!
//! Faults at `model_serving` show here: `latency` makes `model.infer` (and so the requests) 6x
//! slower, `error-burst` turns 40x more requests into errors (and some traces into ERROR
//! spans with an exception event), `stall`/`volume-drop` at or upstream of it throttle the
//! request rate, and `dq-failure` at `feature_store` or `model_serving` raises the features'
//! null ratio.

use super::{counted_with, lognormal_cdf, noise, since_epoch, Fault, FaultKind, STAGES};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span::{Event, SpanKind},
    status::StatusCode,
    ResourceSpans, ScopeSpans, Span, Status,
};
use prost::Message;

/// Index of `model_serving` in the pipeline's stages.
const MODEL_SERVING: usize = 3;
/// Index of `feature_store`, which `feature_lookup` calls.
const FEATURE_STORE: usize = 2;
/// Request traces sent per push.
pub const TRACES_PER_PUSH: usize = 5;
/// The interval the traces of one push are spread over (the push period).
const TRACE_WINDOW_MS: i64 = 15_000;
/// Explicit bucket bounds of `inference.latency`, in ms.
pub const LATENCY_BOUNDS_MS: [f64; 11] = [
    5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];
/// Log-normal shape of the latencies (as in the scraped pipeline).
const SIGMA: f64 = 0.6;
/// Error ratio multiplier of an error burst (as in the scraped pipeline).
const BURST: f64 = 40.0;
/// Latency multiplier of a latency fault (as in the scraped pipeline).
const SLOW: f64 = 6.0;

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.to_string()))
}

fn int(key: &str, value: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(value))
}

fn resource() -> Resource {
    Resource {
        attributes: vec![
            s("service.namespace", "demo"),
            s("service.name", "model_serving"),
            s("service.instance.id", "model-serving-0"),
            s("service.version", "1.4.2"),
            s("deployment.environment.name", "demo"),
            s("telemetry.sdk.language", "rust"),
            s("telemetry.sdk.name", "pipewatch-demo"),
        ],
        ..Default::default()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "pipewatch.demo.model_serving".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    }
}

/// The fault once it has started (its effect on counters outlasts its end).
fn active(t_ms: i64, fault: Option<Fault>) -> Option<Fault> {
    fault.filter(|f| t_ms >= f.start_ms)
}

/// Cumulative (ok, error) request counts at `t_ms`.
fn request_counts(t_ms: i64, fault: Option<Fault>) -> (f64, f64) {
    let stage = &STAGES[MODEL_SERVING];
    let since = since_epoch(t_ms);
    let active = active(t_ms, fault);
    let throttle = active.and_then(|f| Some(f.change(f.throttles(MODEL_SERVING)?)));
    let burst = active.filter(|f| f.hits(FaultKind::ErrorBurst, MODEL_SERVING));
    let err = stage.error_ratio;
    // A burst moves requests from ok to error; the total rate stays the same.
    let ok_change = throttle.or(burst.map(|f| f.change((1.0 - BURST * err) / (1.0 - err))));
    let err_change = throttle.or(burst.map(|f| f.change(BURST)));
    (
        counted_with(stage.rate * (1.0 - err), since, ok_change).floor(),
        counted_with(stage.rate * err, since, err_change).floor(),
    )
}

/// Median inference latency in ms at `t_ms` (6x under a latency fault at model_serving).
fn median_latency_ms(t_ms: i64, fault: Option<Fault>) -> f64 {
    let slow =
        fault.is_some_and(|f| f.in_effect(t_ms) && f.hits(FaultKind::Latency, MODEL_SERVING));
    STAGES[MODEL_SERVING].median_latency * 1000.0 * if slow { SLOW } else { 1.0 }
}

/// The cumulative latency histogram: requests during the fault have the slow shape and all
/// others the normal one, so every bucket count stays monotonic.
fn latency_point(t_ms: i64, fault: Option<Fault>) -> HistogramDataPoint {
    let requests = |at_ms: i64| {
        let (ok, errors) = request_counts(at_ms, fault);
        ok + errors
    };
    let total = requests(t_ms);
    let normal = STAGES[MODEL_SERVING].median_latency * 1000.0;
    let slow = match active(t_ms, fault).filter(|f| f.hits(FaultKind::Latency, MODEL_SERVING)) {
        Some(f) => requests(f.end_ms.map_or(t_ms, |end| end.min(t_ms))) - requests(f.start_ms),
        None => 0.0,
    };
    let shapes = [(total - slow, normal), (slow, normal * SLOW)];
    let cumulative: Vec<u64> = LATENCY_BOUNDS_MS
        .iter()
        .map(|le| {
            shapes
                .iter()
                .map(|(n, median)| (n * lognormal_cdf(*le, *median, SIGMA)).floor())
                .sum::<f64>() as u64
        })
        .chain([total as u64])
        .collect();
    let bucket_counts = cumulative
        .iter()
        .scan(0u64, |prev, c| {
            let n = c.saturating_sub(*prev);
            *prev = (*c).max(*prev);
            Some(n)
        })
        .collect();
    let mean = |median: f64| median * (SIGMA * SIGMA / 2.0).exp();
    HistogramDataPoint {
        start_time_unix_nano: epoch_ns(),
        time_unix_nano: t_ms as u64 * 1_000_000,
        count: total as u64,
        sum: Some(shapes.iter().map(|(n, m)| n * mean(*m)).sum()),
        bucket_counts,
        explicit_bounds: LATENCY_BOUNDS_MS.to_vec(),
        ..Default::default()
    }
}

/// Null ratio of the served features: ~0.1 %, ~12 % under a data-quality failure at
/// `feature_store` or `model_serving`.
fn null_ratio(t_ms: i64, fault: Option<Fault>) -> f64 {
    let bad = fault.is_some_and(|f| {
        f.in_effect(t_ms)
            && f.kind == FaultKind::DqFailure
            && (f.stage == FEATURE_STORE || f.stage == MODEL_SERVING)
    });
    let base = if bad { 0.12 } else { 0.001 };
    base * (1.0 + 0.2 * noise(300, t_ms / 15_000))
}

/// When the counters started (the demo epoch), for `start_time_unix_nano`.
fn epoch_ns() -> u64 {
    1_700_000_000 * 1_000_000_000
}

/// The `model_serving` metrics at `t_ms`, as one OTLP export.
pub fn metrics_request(t_ms: i64, fault: Option<Fault>) -> ExportMetricsServiceRequest {
    let now_ns = t_ms as u64 * 1_000_000;
    let (ok, errors) = request_counts(t_ms, fault);
    let counter_point = |code: i64, value: f64| NumberDataPoint {
        attributes: vec![int("http.response.status_code", code)],
        start_time_unix_nano: epoch_ns(),
        time_unix_nano: now_ns,
        value: Some(number_data_point::Value::AsInt(value as i64)),
        ..Default::default()
    };
    let metrics = vec![
        Metric {
            name: "inference.requests".into(),
            description: "Prediction requests served, by HTTP status.".into(),
            unit: "{request}".into(),
            data: Some(metric::Data::Sum(Sum {
                data_points: vec![counter_point(200, ok), counter_point(500, errors)],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })),
            ..Default::default()
        },
        Metric {
            name: "inference.latency".into(),
            description: "Time to answer one prediction request.".into(),
            unit: "ms".into(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: vec![latency_point(t_ms, fault)],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            })),
            ..Default::default()
        },
        Metric {
            name: "model.feature.null_ratio".into(),
            description: "Share of null values in the features the model was served.".into(),
            unit: "1".into(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint {
                    attributes: vec![s("feature_set", "features_daily")],
                    time_unix_nano: now_ns,
                    value: Some(number_data_point::Value::AsDouble(null_ratio(t_ms, fault))),
                    ..Default::default()
                }],
            })),
            ..Default::default()
        },
    ];
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope()),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A 64-bit hash of (push time, request, part): the source of ids and of per-request noise.
fn mix(t_ms: i64, request: usize, part: u64) -> u64 {
    let mut x = (t_ms as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((request as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F))
        .wrapping_add(part.wrapping_mul(0x1656_67B1_9E37_79F9));
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    x = x.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    x ^ (x >> 33)
}

/// Uniform in (0, 1) from a hash.
fn unit(h: u64) -> f64 {
    ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// A log-normal draw with this median (Box-Muller from two hashes).
fn lognormal(median: f64, h1: u64, h2: u64) -> f64 {
    let z = (-2.0 * unit(h1).ln()).sqrt() * (2.0 * std::f64::consts::PI * unit(h2)).cos();
    median * (SIGMA * z).exp()
}

/// Whether request `k` of the push at `t_ms` fails: under an error burst the first request of
/// every push and about a third of the others, so the burst is visible in every export;
/// otherwise the stage's usual ratio.
fn fails(t_ms: i64, k: usize, fault: Option<Fault>) -> bool {
    let burst =
        fault.is_some_and(|f| f.in_effect(t_ms) && f.hits(FaultKind::ErrorBurst, MODEL_SERVING));
    if burst {
        k == 0 || unit(mix(t_ms, k, 9)) < 0.3
    } else {
        unit(mix(t_ms, k, 9)) < STAGES[MODEL_SERVING].error_ratio
    }
}

/// The request traces of the push at `t_ms`: [`TRACES_PER_PUSH`] `POST /predict` requests
/// spread over the preceding push interval.
pub fn traces_request(t_ms: i64, fault: Option<Fault>) -> ExportTraceServiceRequest {
    let mut spans = Vec::with_capacity(TRACES_PER_PUSH * 3);
    let infer_median = median_latency_ms(t_ms, fault);
    let lookup_median = STAGES[FEATURE_STORE].median_latency * 1000.0;
    for k in 0..TRACES_PER_PUSH {
        let trace_id = [mix(t_ms, k, 1).to_be_bytes(), mix(t_ms, k, 2).to_be_bytes()].concat();
        let span_id = |part: u64| mix(t_ms, k, part).to_be_bytes().to_vec();
        let (root_id, lookup_id, infer_id) = (span_id(3), span_id(4), span_id(5));
        let ms = |v: f64| (v * 1_000_000.0) as u64;
        let start = (t_ms - TRACE_WINDOW_MS + (k as i64 * TRACE_WINDOW_MS) / TRACES_PER_PUSH as i64)
            as u64
            * 1_000_000;
        let lookup = lognormal(lookup_median, mix(t_ms, k, 6), mix(t_ms, k, 7));
        let infer = lognormal(infer_median, mix(t_ms, k, 8), mix(t_ms, k, 10));
        let failed = fails(t_ms, k, fault);
        let lookup_start = start + ms(0.4);
        let infer_start = lookup_start + ms(lookup) + ms(0.1);
        let end = infer_start + ms(infer) + ms(0.3);
        let ok = || Status {
            code: StatusCode::Unset as i32,
            ..Default::default()
        };
        let error = |message: &str| Status {
            code: StatusCode::Error as i32,
            message: message.into(),
        };
        let trace_id = &trace_id;
        let span = |id: Vec<u8>, parent: Vec<u8>, name: &str, kind: SpanKind, from, to| Span {
            trace_id: trace_id.clone(),
            span_id: id,
            parent_span_id: parent,
            name: name.into(),
            kind: kind as i32,
            start_time_unix_nano: from,
            end_time_unix_nano: to,
            ..Default::default()
        };
        let mut root = span(
            root_id.clone(),
            vec![],
            "POST /predict",
            SpanKind::Server,
            start,
            end,
        );
        root.attributes = vec![
            s("http.request.method", "POST"),
            s("http.route", "/predict"),
            int("http.response.status_code", if failed { 500 } else { 200 }),
        ];
        root.status = Some(if failed { error("") } else { ok() });
        let mut lookup_span = span(
            lookup_id,
            root_id.clone(),
            "feature_lookup",
            SpanKind::Client,
            lookup_start,
            lookup_start + ms(lookup),
        );
        lookup_span.attributes = vec![
            s("peer.service", "feature_store"),
            s("db.system.name", "redis"),
            s("db.operation.name", "HMGET"),
        ];
        lookup_span.status = Some(ok());
        let mut infer_span = span(
            infer_id,
            root_id,
            "model.infer",
            SpanKind::Internal,
            infer_start,
            infer_start + ms(infer),
        );
        infer_span.attributes = vec![s("model.name", "churn"), s("model.version", "2024-11")];
        if failed {
            let message =
                "feature vector has 3 NaN values (basket_value, days_since_order, region_code)";
            infer_span.status = Some(error(message));
            infer_span.events = vec![Event {
                time_unix_nano: infer_start + ms(infer),
                name: "exception".into(),
                attributes: vec![
                    s("exception.type", "ValueError"),
                    s("exception.message", message),
                ],
                ..Default::default()
            }];
        } else {
            infer_span.status = Some(ok());
        }
        spans.extend([root, lookup_span, infer_span]);
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource()),
            scope_spans: vec![ScopeSpans {
                scope: Some(scope()),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Sends the metrics and traces of `t_ms` to `base_url` (pipewatch's own HTTP address) as
/// OTLP/HTTP protobuf. A refusal is logged and the next push tries again, as an SDK would
/// after its retries.
pub async fn push(http: &reqwest::Client, base_url: &str, t_ms: i64, fault: Option<Fault>) {
    let bodies = [
        ("/v1/metrics", metrics_request(t_ms, fault).encode_to_vec()),
        ("/v1/traces", traces_request(t_ms, fault).encode_to_vec()),
    ];
    for (path, body) in bodies {
        let sent = http
            .post(format!("{base_url}{path}"))
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .await;
        super::push::log_outcome(sent, &format!("OTLP {path}")).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use collectors::otlp::metrics::{map_metrics, DeltaAccumulator};
    use collectors::otlp::BodyEncoding;
    use std::collections::HashSet;

    const T0: i64 = 1_800_000_000_000;

    fn mapped(t_ms: i64, fault: Option<Fault>) -> model::Batch {
        let body = metrics_request(t_ms, fault).encode_to_vec();
        let req = collectors::otlp::decode_metrics(&body, BodyEncoding::Protobuf).unwrap();
        let m = map_metrics(&req, &mut DeltaAccumulator::default());
        assert_eq!(m.rejected_points, 0, "{:?}", m.rejections);
        m.batch
    }

    fn value(b: &model::Batch, metric: &str, label: Option<(&str, &str)>) -> f64 {
        b.series
            .iter()
            .find(|s| {
                s.key.metric == metric && label.is_none_or(|(k, v)| s.key.labels.get(k) == Some(v))
            })
            .unwrap_or_else(|| panic!("no {metric} {label:?}"))
            .samples[0]
            .value
    }

    fn fault(kind: FaultKind, stage: &str) -> Option<Fault> {
        Some(Fault::new(kind, stage, T0).unwrap())
    }

    #[test]
    fn metrics_decode_and_map_to_the_model_serving_job() {
        let b = mapped(T0, None);
        let names: HashSet<&str> = b.series.iter().map(|s| s.key.metric.as_str()).collect();
        for name in [
            "inference_requests_total",
            "inference_latency_milliseconds_bucket",
            "inference_latency_milliseconds_sum",
            "inference_latency_milliseconds_count",
            "model_feature_null_ratio",
            "target_info",
        ] {
            assert!(names.contains(name), "{name} missing from {names:?}");
        }
        assert!(b
            .series
            .iter()
            .all(|s| s.key.labels.get("job") == Some("demo/model_serving")
                && s.key.labels.get("instance") == Some("model-serving-0")));
        // The +Inf bucket holds every request.
        let requests = value(
            &b,
            "inference_requests_total",
            Some(("http_response_status_code", "200")),
        ) + value(
            &b,
            "inference_requests_total",
            Some(("http_response_status_code", "500")),
        );
        assert_eq!(
            value(
                &b,
                "inference_latency_milliseconds_bucket",
                Some(("le", "+Inf"))
            ),
            requests
        );
        assert_eq!(
            value(&b, "inference_latency_milliseconds_count", None),
            requests
        );
    }

    #[test]
    fn an_error_burst_raises_the_error_rate_and_keeps_counters_monotonic() {
        let burst = fault(FaultKind::ErrorBurst, "model_serving");
        let errors = |t, f| request_counts(t, f).1;
        let ok = |t, f| request_counts(t, f).0;
        let hour = 3_600_000;
        let normal = errors(T0 + hour, None) - errors(T0, None);
        let bursting = errors(T0 + hour, burst) - errors(T0, burst);
        assert!(
            (bursting / normal - BURST).abs() < 0.5,
            "{normal} -> {bursting}"
        );
        // Total requests stay the same: the burst turns ok requests into errors.
        let total = |f| ok(T0 + hour, f) + errors(T0 + hour, f);
        assert!((total(burst) - total(None)).abs() <= 2.0);
        for t in (T0 - 60_000..T0 + 60_000).step_by(1_000) {
            assert!(errors(t + 1_000, burst) >= errors(t, burst));
            assert!(ok(t + 1_000, burst) >= ok(t, burst));
        }
        // A burst at another stage leaves model_serving alone.
        assert_eq!(
            request_counts(T0 + hour, fault(FaultKind::ErrorBurst, "transform")),
            request_counts(T0 + hour, None)
        );
    }

    #[test]
    fn a_latency_fault_shifts_the_histogram_and_buckets_stay_monotonic() {
        let slow = fault(FaultKind::Latency, "model_serving");
        let le100 = |t, f| {
            let p = latency_point(t, f);
            let below: u64 = p.bucket_counts[..5].iter().sum();
            (below, p.count)
        };
        let hour = 3_600_000;
        let (b0, c0) = le100(T0, None);
        let (b1, c1) = le100(T0 + hour, None);
        let normal_share = (b1 - b0) as f64 / (c1 - c0) as f64;
        let (s0, n0) = le100(T0, slow);
        let (s1, n1) = le100(T0 + hour, slow);
        let slow_share = (s1 - s0) as f64 / (n1 - n0) as f64;
        assert!(normal_share > 0.85, "{normal_share}");
        assert!(slow_share < 0.2, "{slow_share}");
        let before = latency_point(T0 - 1, slow);
        let after = latency_point(T0 + 1_000, slow);
        let cum = |p: &HistogramDataPoint| {
            p.bucket_counts
                .iter()
                .scan(0, |a, c| {
                    *a += c;
                    Some(*a)
                })
                .collect::<Vec<u64>>()
        };
        assert!(cum(&after).iter().zip(cum(&before)).all(|(a, b)| *a >= b));
        assert_eq!(after.bucket_counts.len(), LATENCY_BOUNDS_MS.len() + 1);
    }

    #[test]
    fn a_dq_failure_at_the_feature_store_raises_the_null_ratio() {
        let v = |f| value(&mapped(T0 + 60_000, f), "model_feature_null_ratio", None);
        assert!(v(None) < 0.002);
        assert!(v(fault(FaultKind::DqFailure, "feature_store")) > 0.09);
        assert!(v(fault(FaultKind::DqFailure, "stream_ingest")) < 0.002);
    }

    fn spans(t_ms: i64, f: Option<Fault>) -> Vec<Span> {
        let body = traces_request(t_ms, f).encode_to_vec();
        let req = collectors::otlp::decode_traces(&body, BodyEncoding::Protobuf).unwrap();
        req.resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .collect()
    }

    #[test]
    fn traces_have_one_server_root_and_two_children_with_ids_unique_across_pushes() {
        let mut trace_ids = HashSet::new();
        let mut span_ids = HashSet::new();
        for push in 0..200 {
            let all = spans(T0 + push * 15_000, None);
            assert_eq!(all.len(), 3 * TRACES_PER_PUSH);
            for trace in all.chunks(3) {
                let [root, lookup, infer] = trace else {
                    unreachable!()
                };
                assert_eq!(root.name, "POST /predict");
                assert_eq!(root.kind, SpanKind::Server as i32);
                assert!(root.parent_span_id.is_empty());
                assert_eq!(
                    (lookup.name.as_str(), lookup.kind),
                    ("feature_lookup", SpanKind::Client as i32)
                );
                assert_eq!(
                    (infer.name.as_str(), infer.kind),
                    ("model.infer", SpanKind::Internal as i32)
                );
                for child in [lookup, infer] {
                    assert_eq!(child.parent_span_id, root.span_id);
                    assert_eq!(child.trace_id, root.trace_id);
                    assert!(child.start_time_unix_nano >= root.start_time_unix_nano);
                    assert!(child.end_time_unix_nano <= root.end_time_unix_nano);
                }
                assert_eq!(root.trace_id.len(), 16);
                assert!(trace_ids.insert(root.trace_id.clone()));
                for s in trace {
                    assert_eq!(s.span_id.len(), 8);
                    assert!(span_ids.insert(s.span_id.clone()));
                }
            }
        }
        // The same push time gives the same spans (a retried push is not new data).
        assert_eq!(spans(T0, None), spans(T0, None));
    }

    fn failed(s: &Span) -> bool {
        s.status
            .as_ref()
            .is_some_and(|st| st.code == StatusCode::Error as i32)
    }

    #[test]
    fn an_error_burst_fails_traces_in_every_push_and_latency_slows_inference() {
        let burst = fault(FaultKind::ErrorBurst, "model_serving");
        let slow = fault(FaultKind::Latency, "model_serving");
        let pushes = 100;
        let mut errors = (0, 0);
        let mut infer_ms = (Vec::new(), Vec::new());
        for p in 0..pushes {
            let t = T0 + 1_000 + p * 15_000;
            let roots_failed = |f| {
                spans(t, f)
                    .iter()
                    .filter(|s| s.name == "POST /predict" && failed(s))
                    .count()
            };
            let bursting = roots_failed(burst);
            assert!(bursting >= 1, "push {p} has no failed request");
            errors.0 += roots_failed(None);
            errors.1 += bursting;
            let infer = |f| -> Vec<f64> {
                spans(t, f)
                    .iter()
                    .filter(|s| s.name == "model.infer")
                    .map(|s| (s.end_time_unix_nano - s.start_time_unix_nano) as f64 / 1e6)
                    .collect()
            };
            infer_ms.0.extend(infer(None));
            infer_ms.1.extend(infer(slow));
        }
        assert!(errors.0 <= 2, "{} failures without a fault", errors.0);
        assert!(errors.1 >= pushes as usize, "{}", errors.1);
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (normal, slowed) = (median(&mut infer_ms.0), median(&mut infer_ms.1));
        assert!((30.0..70.0).contains(&normal), "{normal}");
        assert!(
            (slowed / normal - SLOW).abs() < 0.01,
            "{normal} -> {slowed}"
        );
        // Failed inferences carry the exception, as an SDK records it.
        let failed_infer = spans(T0 + 1_000, burst)
            .into_iter()
            .find(|s| s.name == "model.infer" && failed(s))
            .unwrap();
        assert_eq!(failed_infer.events[0].name, "exception");
    }
}
