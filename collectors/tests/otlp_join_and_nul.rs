//! Two properties every OTLP signal shares, checked over the captured Python SDK requests
//! (`fixtures/otlp/http-protobuf`):
//!
//! - one `job` for a resource whatever the signal: with `service.name` removed, metrics, span
//!   counters and log counters all carry `job="unknown_service"` (the OpenTelemetry default),
//!   so they still join on `job`;
//! - a NUL byte, which PostgreSQL text cannot store, is refused at decode for exactly the data
//!   it is in (reported for `partial_success`), and the rest of the request is kept.

use collectors::otlp::logs::{self, LogCountAccumulator, LogDeriveConfig};
use collectors::otlp::metrics::DeltaAccumulator;
use collectors::otlp::traces::{self, SpanDeriveConfig, SpanMetricsAccumulator};
use collectors::otlp::{
    decode_logs, decode_metrics, decode_traces, BodyEncoding, ExportLogsServiceRequest,
    ExportMetricsServiceRequest, ExportTraceServiceRequest,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::path::Path;

fn body(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/otlp/http-protobuf")
            .join(name),
    )
    .unwrap()
}

fn metrics() -> ExportMetricsServiceRequest {
    decode_metrics(&body("01-metrics-cumulative-c1.pb"), BodyEncoding::Protobuf).unwrap()
}

fn spans() -> ExportTraceServiceRequest {
    decode_traces(&body("05-traces.pb"), BodyEncoding::Protobuf).unwrap()
}

fn log_records() -> ExportLogsServiceRequest {
    decode_logs(&body("06-logs.pb"), BodyEncoding::Protobuf).unwrap()
}

fn text(s: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(s.into())),
    })
}

/// Drops `service.name` and `service.namespace` from a resource.
fn anonymous(r: &mut Option<Resource>) {
    let r = r.as_mut().expect("the captures carry a resource");
    let before = r.attributes.len();
    r.attributes
        .retain(|kv| kv.key != "service.name" && kv.key != "service.namespace");
    assert_eq!(before - r.attributes.len(), 2, "both were there");
}

fn set_service(r: &mut Option<Resource>, name: &str) {
    let r = r.as_mut().unwrap();
    let kv = r
        .attributes
        .iter_mut()
        .find(|kv| kv.key == "service.name")
        .unwrap();
    kv.value = text(name);
}

#[test]
fn a_resource_without_service_name_is_job_unknown_service_for_every_signal() {
    let mut m = metrics();
    anonymous(&mut m.resource_metrics[0].resource);
    let mapped = DeltaAccumulator::default().map(&m);
    assert!(mapped.accepted_points > 0);
    for s in &mapped.batch.series {
        assert_eq!(
            s.key.labels.get("job"),
            Some("unknown_service"),
            "{}",
            s.key
        );
    }

    let mut t = spans();
    for rs in &mut t.resource_spans {
        anonymous(&mut rs.resource);
    }
    let derived = traces::derive_traces(&t, &SpanDeriveConfig::default());
    let batch = SpanMetricsAccumulator::default().record(&derived.observations, i64::MAX);
    assert!(!batch.is_empty());
    for s in &batch.series {
        assert_eq!(
            s.key.labels.get("job"),
            Some("unknown_service"),
            "{}",
            s.key
        );
        assert_eq!(s.key.labels.get("service_name"), Some("unknown_service"));
    }

    let mut l = log_records();
    anonymous(&mut l.resource_logs[0].resource);
    let derived = logs::derive_logs(&l, &LogDeriveConfig::default());
    let batch = LogCountAccumulator::default().record(&derived.records, i64::MAX);
    assert_eq!(batch.series.len(), 4);
    for s in &batch.series {
        assert_eq!(
            s.key.labels.get("job"),
            Some("unknown_service"),
            "{}",
            s.key
        );
    }
    assert!(derived.evidence.iter().all(|e| e.job == "unknown_service"));
}

#[test]
fn with_service_name_metrics_spans_and_logs_share_the_job() {
    let jobs = |series: &[model::TimeSeries]| -> std::collections::BTreeSet<String> {
        series
            .iter()
            .filter_map(|s| s.key.labels.get("job").map(str::to_string))
            .collect()
    };
    let m = DeltaAccumulator::default().map(&metrics()).batch.series;
    let t = SpanMetricsAccumulator::default().record(
        &traces::derive_traces(&spans(), &SpanDeriveConfig::default()).observations,
        i64::MAX,
    );
    let l = LogCountAccumulator::default().record(
        &logs::derive_logs(&log_records(), &LogDeriveConfig::default()).records,
        i64::MAX,
    );
    let want = std::collections::BTreeSet::from(["pipewatch-fixtures/orders-etl".to_string()]);
    assert_eq!(jobs(&m), want);
    assert_eq!(jobs(&t.series), want);
    assert_eq!(jobs(&l.series), want);
}

#[test]
fn a_nul_byte_in_a_metric_attribute_refuses_that_point_and_keeps_the_others() {
    let clean = DeltaAccumulator::default().map(&metrics());
    assert_eq!(clean.rejected_points, 0);
    let mut m = metrics();
    let metric = &mut m.resource_metrics[0].scope_metrics[0].metrics[0];
    let name = metric.name.clone();
    let Some(Data::Sum(sum)) = &mut metric.data else {
        panic!(
            "the first metric of the capture is a sum: {:?}",
            metric.data
        )
    };
    sum.data_points[0].attributes.push(KeyValue {
        key: "table".into(),
        value: text("orders\0"),
        ..Default::default()
    });
    let mapped = DeltaAccumulator::default().map(&m);
    assert_eq!(mapped.rejected_points, 1);
    assert_eq!(mapped.accepted_points, clean.accepted_points - 1);
    let msg = mapped.rejection_message().unwrap();
    assert!(
        msg.contains(&format!(
            "metric {name:?}: the value of label \"table\" holds a NUL byte (0x00), which PostgreSQL cannot store"
        )),
        "{msg}"
    );
    assert!(mapped.batch.series.iter().all(|s| s
        .key
        .labels
        .iter()
        .all(|(k, v)| !k.contains('\0') && !v.contains('\0'))));
    // A NUL in an attribute *name* is sanitised away like any other non-alphanumeric.
    let mut m = metrics();
    let Some(Data::Sum(sum)) = &mut m.resource_metrics[0].scope_metrics[0].metrics[0].data else {
        unreachable!()
    };
    sum.data_points[0].attributes.push(KeyValue {
        key: "ta\0ble".into(),
        value: text("orders"),
        ..Default::default()
    });
    let mapped = DeltaAccumulator::default().map(&m);
    assert_eq!(mapped.rejected_points, 0);
    assert!(mapped
        .batch
        .series
        .iter()
        .any(|s| s.key.labels.get("ta_ble") == Some("orders")));
}

#[test]
fn a_nul_byte_in_a_span_name_refuses_that_span_and_nul_in_evidence_text_is_replaced() {
    let mut t = spans();
    let all = traces::derive_traces(&t, &SpanDeriveConfig::default());
    let failed = all.evidence[0].name.clone();
    let spans = &mut t.resource_spans[0].scope_spans[0].spans;
    let victim = spans.iter().position(|s| s.name != failed).unwrap();
    spans[victim].name.push('\0');
    // The failed span's status message and an attribute get NUL bytes too: evidence keeps
    // them, readable.
    let failed_span = spans.iter_mut().find(|s| s.name == failed).unwrap();
    failed_span.status.as_mut().unwrap().message.push('\0');
    failed_span.attributes.push(KeyValue {
        key: "note".into(),
        value: text("a\0b"),
        ..Default::default()
    });
    let derived = traces::derive_traces(&t, &SpanDeriveConfig::default());
    assert_eq!(derived.refused, 1);
    assert_eq!(derived.observations.len(), all.observations.len() - 1);
    let msg = derived.refusal_message().unwrap();
    assert!(msg.starts_with("1 span(s) refused: span "), "{msg}");
    assert!(
        msg.contains("label \"span_name\" holds a NUL byte"),
        "{msg}"
    );
    let ev = derived.evidence.iter().find(|e| e.name == failed).unwrap();
    assert!(
        ev.status_message.ends_with('\u{FFFD}'),
        "{:?}",
        ev.status_message
    );
    assert_eq!(ev.attributes["note"], "a\u{FFFD}b");
    assert!(!ev.to_json().to_string().contains("\\u0000"));
}

#[test]
fn a_nul_byte_in_the_service_name_refuses_its_log_records_and_bodies_are_cleaned() {
    let mut l = log_records();
    set_service(&mut l.resource_logs[0].resource, "orders\0etl");
    let derived = logs::derive_logs(&l, &LogDeriveConfig::default());
    assert_eq!(derived.refused, 4);
    assert!(derived.records.is_empty() && derived.evidence.is_empty());
    assert!(derived
        .refusal_message()
        .unwrap()
        .contains("the value of label \"job\" holds a NUL byte"));

    let mut l = log_records();
    for r in &mut l.resource_logs[0].scope_logs[0].log_records {
        if r.severity_number == 17 {
            r.body = text("constraint\0violation");
        }
    }
    let derived = logs::derive_logs(&l, &LogDeriveConfig::default());
    assert_eq!(derived.refused, 0);
    assert_eq!(derived.evidence[0].body, "constraint\u{FFFD}violation");
}
