//! Golden tests of the traces and logs derivations (`collectors::otlp::{traces, logs}`) over
//! the requests the OpenTelemetry Python SDK sent (`fixtures/otlp/`, see its README): the
//! `05-traces` and `06-logs` bodies of the protobuf, JSON and gRPC variants.
//!
//! Expected values come from each body's `*.expected.json` (decoded by the official Python
//! classes when the fixtures were captured) and from the README: 5 spans in 2 traces, one
//! ERROR (`load`, `constraint violation`, with an `exception` event), a link from
//! `retry-load` to `load`; 4 log records (DEBUG, INFO, ERROR, WARN), the WARN one with a map
//! body and no `time_unix_nano`.

use collectors::otlp::logs::{self, LogCountAccumulator, LogDeriveConfig};
use collectors::otlp::traces::{
    self, EvidenceReason, SpanDeriveConfig, SpanMetricsAccumulator, DEFAULT_DURATION_BUCKETS,
};
use collectors::otlp::{decode_logs, decode_traces, BodyEncoding};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The variants that carry traces and logs: (folder, body extension, encoding).
const VARIANTS: [(&str, &str, BodyEncoding); 3] = [
    ("http-protobuf", "pb", BodyEncoding::Protobuf),
    ("http-json", "json", BodyEncoding::Json),
    ("grpc", "pb", BodyEncoding::Protobuf),
];

fn dir(variant: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/otlp")
        .join(variant)
}

fn load(variant: &str, name: &str, ext: &str) -> (Vec<u8>, Value) {
    let d = dir(variant);
    let body = std::fs::read(d.join(format!("{name}.{ext}"))).unwrap();
    let expected = serde_json::from_str(
        &std::fs::read_to_string(d.join(format!("{name}.expected.json"))).unwrap(),
    )
    .unwrap();
    (body, expected)
}

/// Every expected span with the resource attributes it came with.
fn expected_spans(expected: &Value) -> Vec<(&Value, &Value)> {
    let mut out = Vec::new();
    for r in expected["resources"].as_array().unwrap() {
        for s in r["scopes"].as_array().unwrap() {
            for sp in s["spans"].as_array().unwrap() {
                out.push((sp, &r["attributes"]));
            }
        }
    }
    out
}

fn expected_records(expected: &Value) -> Vec<(&Value, &Value)> {
    let mut out = Vec::new();
    for r in expected["resources"].as_array().unwrap() {
        for s in r["scopes"].as_array().unwrap() {
            for lr in s["log_records"].as_array().unwrap() {
                out.push((lr, &r["attributes"]));
            }
        }
    }
    out
}

fn u64_of(v: &Value) -> u64 {
    v.as_u64().unwrap()
}

fn duration_nanos(sp: &Value) -> u64 {
    u64_of(&sp["end_time_unix_nano"]) - u64_of(&sp["start_time_unix_nano"])
}

#[test]
fn every_span_becomes_one_observation_with_the_connector_labels_and_its_duration() {
    for (variant, ext, enc) in VARIANTS {
        let (body, expected) = load(variant, "05-traces", ext);
        let req = decode_traces(&body, enc).unwrap();
        let derived = traces::derive_traces(&req, &SpanDeriveConfig::default());
        let spans = expected_spans(&expected);
        assert_eq!(spans.len(), 5, "{variant}: README says 5 spans");
        assert_eq!(
            derived.observations.len() as u64,
            u64_of(&expected["totals"]["span_count"]),
            "{variant}"
        );
        for ((sp, resource), obs) in spans.iter().zip(&derived.observations) {
            let s = &obs.series;
            assert_eq!(s.span_name, sp["name"].as_str().unwrap(), "{variant}");
            assert_eq!(
                s.span_kind,
                format!("SPAN_KIND_{}", sp["kind_name"].as_str().unwrap()),
                "{variant}"
            );
            assert_eq!(
                s.status_code,
                format!(
                    "STATUS_CODE_{}",
                    sp["status"]["code_name"].as_str().unwrap()
                ),
                "{variant}"
            );
            assert_eq!(s.service_name, resource["service.name"].as_str().unwrap());
            assert_eq!(
                s.job,
                format!(
                    "{}/{}",
                    resource["service.namespace"].as_str().unwrap(),
                    resource["service.name"].as_str().unwrap()
                )
            );
            assert_eq!(
                obs.duration_seconds,
                duration_nanos(sp) as f64 / 1e9,
                "{variant} {}",
                s.span_name
            );
        }
    }
}

#[test]
fn the_failed_load_span_is_kept_with_its_message_exception_and_ids() {
    for (variant, ext, enc) in VARIANTS {
        let (body, expected) = load(variant, "05-traces", ext);
        let req = decode_traces(&body, enc).unwrap();
        // The fixture's spans all last under 10ms: with the default 1s threshold only the
        // failure is evidence.
        let derived = traces::derive_traces(&req, &SpanDeriveConfig::default());
        assert_eq!(
            derived.evidence.len() as u64,
            u64_of(&expected["totals"]["error_span_count"]),
            "{variant}"
        );
        assert_eq!(derived.evidence_dropped, 0);
        let (sp, resource) = expected_spans(&expected)
            .into_iter()
            .find(|(sp, _)| sp["status"]["code_name"] == "ERROR")
            .unwrap();
        let ev = &derived.evidence[0];
        assert_eq!(ev.reason, EvidenceReason::Error);
        assert_eq!(ev.name, "load");
        assert_eq!(ev.status_message, "constraint violation");
        assert_eq!(ev.status_code, "STATUS_CODE_ERROR");
        assert_eq!(ev.kind, "SPAN_KIND_PRODUCER");
        assert_eq!(ev.service_name, "orders-etl");
        assert_eq!(ev.trace_id, sp["trace_id"].as_str().unwrap());
        assert_eq!(ev.span_id, sp["span_id"].as_str().unwrap());
        assert_eq!(ev.parent_span_id.as_deref(), sp["parent_span_id"].as_str());
        assert_eq!(ev.start_time_unix_nano, u64_of(&sp["start_time_unix_nano"]));
        assert_eq!(ev.duration_nanos, duration_nanos(sp));
        assert_eq!(&ev.resource_attributes, resource);

        let event = &sp["events"][0];
        assert_eq!(event["name"], "exception");
        let exc = ev.exception.as_ref().expect("exception event");
        assert_eq!(
            exc.exception_type,
            event["attributes"]["exception.type"].as_str().unwrap()
        );
        assert_eq!(
            exc.message,
            event["attributes"]["exception.message"].as_str().unwrap()
        );
        assert!(
            exc.message.contains('"'),
            "README: the message contains a quote"
        );
        assert_eq!(
            exc.stacktrace,
            event["attributes"]["exception.stacktrace"]
                .as_str()
                .unwrap()
        );
        assert!(exc.stacktrace.contains("otlp_emit.py") && exc.stacktrace.lines().count() > 1);
        assert_eq!(ev.events[0]["attributes"], event["attributes"], "{variant}");
        assert_eq!(ev.events[0]["time_unix_nano"], event["time_unix_nano"]);

        // The whole record serialises with the same content.
        let doc = ev.to_json();
        assert_eq!(doc["exception"]["type"], "ValueError");
        assert_eq!(doc["status_message"], "constraint violation");
    }
}

#[test]
fn a_low_slow_threshold_keeps_every_span_with_attributes_and_links() {
    for (variant, ext, enc) in VARIANTS {
        let (body, expected) = load(variant, "05-traces", ext);
        let req = decode_traces(&body, enc).unwrap();
        let cfg = SpanDeriveConfig {
            slow_threshold: Duration::ZERO,
            max_evidence_per_request: 100,
        };
        let derived = traces::derive_traces(&req, &cfg);
        assert_eq!(derived.evidence.len(), 5, "{variant}");
        // The failure comes first, then the slow ones in request order.
        let names: Vec<&str> = derived.evidence.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            ["load", "extract", "transform", "ingest-batch", "retry-load"]
        );
        for (sp, _) in expected_spans(&expected) {
            let ev = derived
                .evidence
                .iter()
                .find(|e| e.span_id == sp["span_id"].as_str().unwrap())
                .unwrap();
            // Every attribute type (string, int, bool, double, arrays) as the SDK sent it.
            assert_eq!(ev.attributes, sp["attributes"], "{variant} {}", ev.name);
            let links: Vec<Value> = sp["links"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    serde_json::json!({
                        "trace_id": l["trace_id"], "span_id": l["span_id"], "attributes": l["attributes"],
                    })
                })
                .collect();
            assert_eq!(ev.links, Value::Array(links), "{variant} {}", ev.name);
        }
        let retry = derived
            .evidence
            .iter()
            .find(|e| e.name == "retry-load")
            .unwrap();
        let load = derived.evidence.iter().find(|e| e.name == "load").unwrap();
        assert_eq!(retry.links[0]["span_id"], load.span_id.as_str());
        assert_eq!(retry.links[0]["attributes"]["link.reason"], "retry");
        assert_ne!(retry.trace_id, load.trace_id, "README: a second trace");
        assert_eq!(retry.parent_span_id, None);

        // A threshold between the spans keeps the failure plus exactly the longer spans.
        let threshold = Duration::from_millis(5);
        let cfg = SpanDeriveConfig {
            slow_threshold: threshold,
            max_evidence_per_request: 100,
        };
        let derived = traces::derive_traces(&req, &cfg);
        let want_slow: Vec<&str> = expected_spans(&expected)
            .into_iter()
            .filter(|(sp, _)| {
                sp["status"]["code_name"] != "ERROR"
                    && duration_nanos(sp) >= threshold.as_nanos() as u64
            })
            .map(|(sp, _)| sp["name"].as_str().unwrap())
            .collect();
        assert!(!want_slow.is_empty(), "the fixture has spans over 5ms");
        let got_slow: Vec<&str> = derived
            .evidence
            .iter()
            .filter(|e| e.reason == EvidenceReason::Slow)
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(got_slow, want_slow, "{variant}");

        // The per-request cap keeps failures first and counts the rest.
        let cfg = SpanDeriveConfig {
            slow_threshold: Duration::ZERO,
            max_evidence_per_request: 2,
        };
        let derived = traces::derive_traces(&req, &cfg);
        assert_eq!(derived.evidence.len(), 2);
        assert_eq!(derived.evidence[0].name, "load");
        assert_eq!(derived.evidence_dropped, 3);
    }
}

#[test]
fn accumulated_series_count_calls_and_bucket_durations_per_span() {
    for (variant, ext, enc) in VARIANTS {
        let (body, expected) = load(variant, "05-traces", ext);
        let req = decode_traces(&body, enc).unwrap();
        let derived = traces::derive_traces(&req, &SpanDeriveConfig::default());
        let mut acc = SpanMetricsAccumulator::default();
        // Arrival long after the capture, so every span keeps its own end time.
        let now = 4_000_000_000_000;
        let batch = acc.record(&derived.observations, now);
        // The same export sent again counts nothing and writes nothing.
        let again = acc.record(&derived.observations, now + 15_000);
        assert!(again.is_empty(), "{variant}: re-send gave {again:?}");
        assert_eq!(
            acc.series_count(),
            5,
            "{variant}: five distinct (name, kind, status)"
        );

        for (sp, _) in expected_spans(&expected) {
            let name = sp["name"].as_str().unwrap();
            let secs = duration_nanos(sp) as f64 / 1e9;
            let find = |b: &model::Batch, metric: &str, le: Option<String>| -> f64 {
                let hits: Vec<&model::TimeSeries> = b
                    .series
                    .iter()
                    .filter(|s| {
                        s.key.metric == metric
                            && s.key.labels.get("span_name") == Some(name)
                            && s.key.labels.get("le") == le.as_deref()
                    })
                    .collect();
                assert_eq!(hits.len(), 1, "{variant} {metric} {name} {le:?}");
                assert_eq!(hits[0].samples.len(), 1);
                hits[0].samples[0].value
            };
            assert_eq!(find(&batch, "traces_span_metrics_calls_total", None), 1.0);
            assert_eq!(
                find(&batch, "traces_span_metrics_duration_seconds_count", None),
                1.0
            );
            assert_eq!(
                find(&batch, "traces_span_metrics_duration_seconds_sum", None),
                secs
            );

            for b in DEFAULT_DURATION_BUCKETS {
                let want = if secs <= b { 1.0 } else { 0.0 };
                assert_eq!(
                    find(
                        &batch,
                        "traces_span_metrics_duration_seconds_bucket",
                        Some(b.to_string())
                    ),
                    want,
                    "{variant} {name} le={b}"
                );
            }
            assert_eq!(
                find(
                    &batch,
                    "traces_span_metrics_duration_seconds_bucket",
                    Some("+Inf".into())
                ),
                1.0
            );
            // Each of the five series counts one span and is stamped with its end time.
            let end_ms = (u64_of(&sp["end_time_unix_nano"]) / 1_000_000) as i64;
            assert!(
                batch
                    .series
                    .iter()
                    .filter(|s| s.key.labels.get("span_name") == Some(name))
                    .all(|s| s.samples[0].ts == end_ms),
                "{variant} {name}: samples at the span's end {end_ms}"
            );
        }
        let error_calls: f64 = batch
            .series
            .iter()
            .filter(|s| {
                s.key.metric == "traces_span_metrics_calls_total"
                    && s.key.labels.get("status_code") == Some("STATUS_CODE_ERROR")
            })
            .map(|s| s.samples[0].value)
            .sum();
        assert_eq!(
            error_calls as u64,
            u64_of(&expected["totals"]["error_span_count"])
        );
        assert!(batch
            .series
            .iter()
            .all(|s| s.key.labels.get("instance").is_none()));
        let families: Vec<&str> = batch.metadata.iter().map(|m| m.family.as_str()).collect();
        assert_eq!(
            families,
            [
                "traces_span_metrics_calls_total",
                "traces_span_metrics_duration_seconds"
            ]
        );
    }
}

#[test]
fn the_three_encodings_derive_the_same_series_and_evidence() {
    let mut outputs = Vec::new();
    for (variant, ext, enc) in VARIANTS {
        let (body, _) = load(variant, "05-traces", ext);
        let req = decode_traces(&body, enc).unwrap();
        let d = traces::derive_traces(&req, &SpanDeriveConfig::default());
        let series: Vec<_> = d.observations.iter().map(|o| o.series.clone()).collect();
        // Ids, times and the random instance id differ between the captures (README).
        let evidence: Vec<_> = d
            .evidence
            .iter()
            .map(|e| {
                (
                    e.name.clone(),
                    e.status_message.clone(),
                    e.exception.clone(),
                    e.attributes.clone(),
                )
            })
            .collect();
        let (body, _) = load(variant, "06-logs", ext);
        let logs = logs::derive_logs(
            &decode_logs(&body, enc).unwrap(),
            &LogDeriveConfig::default(),
        );
        let log_evidence: Vec<_> = logs
            .evidence
            .iter()
            .map(|e| (e.severity_number, e.body.clone(), e.event_name.clone()))
            .collect();
        outputs.push((variant, series, evidence, logs.counts, log_evidence));
    }
    for o in &outputs[1..] {
        assert_eq!(o.1, outputs[0].1, "{} vs {}: series", o.0, outputs[0].0);
        assert_eq!(
            o.2, outputs[0].2,
            "{} vs {}: span evidence",
            o.0, outputs[0].0
        );
        assert_eq!(o.3, outputs[0].3, "{} vs {}: log counts", o.0, outputs[0].0);
        assert_eq!(
            o.4, outputs[0].4,
            "{} vs {}: log evidence",
            o.0, outputs[0].0
        );
    }
}

#[test]
fn log_records_are_counted_by_severity_per_service() {
    for (variant, ext, enc) in VARIANTS {
        let (body, expected) = load(variant, "06-logs", ext);
        let req = decode_logs(&body, enc).unwrap();
        let derived = logs::derive_logs(&req, &LogDeriveConfig::default());
        let records = expected_records(&expected);
        assert_eq!(
            records.len() as u64,
            u64_of(&expected["totals"]["log_record_count"])
        );
        let mut numbers: Vec<u64> = records
            .iter()
            .map(|(r, _)| u64_of(&r["severity_number"]))
            .collect();
        numbers.sort();
        assert_eq!(numbers, [5, 9, 13, 17], "README: DEBUG, INFO, WARN, ERROR");
        // The Python SDK's texts are the range names here, one record each.
        let mut want: Vec<(String, u64)> = records
            .iter()
            .map(|(r, _)| (r["severity_text"].as_str().unwrap().to_string(), 1))
            .collect();
        want.sort();
        let got: Vec<(String, u64)> = derived
            .counts
            .iter()
            .map(|(s, n)| {
                assert_eq!(s.service_name, "orders-etl");
                assert_eq!(s.job, "pipewatch-fixtures/orders-etl");
                (s.severity.to_string(), *n)
            })
            .collect();
        assert_eq!(got, want, "{variant}");

        let mut acc = LogCountAccumulator::default();
        let now = 4_000_000_000_000;
        let batch = acc.record(&derived.records, now);
        assert_eq!(batch.series.len(), 4);
        for s in &batch.series {
            assert_eq!(s.key.metric, "otel_log_records_total");
            // One record per severity, counted at its own time (the observed time for the
            // WARN record without time_unix_nano).
            let (r, _) = records
                .iter()
                .find(|(r, _)| r["severity_text"].as_str() == s.key.labels.get("severity"))
                .unwrap();
            let time = match u64_of(&r["time_unix_nano"]) {
                0 => u64_of(&r["observed_time_unix_nano"]),
                t => t,
            };
            assert_eq!(
                s.samples,
                [model::Sample {
                    ts: (time / 1_000_000) as i64,
                    value: 1.0
                }],
                "{variant}"
            );
        }
        // The same export sent again counts nothing.
        let again = acc.record(&derived.records, now + 15_000);
        assert!(again.is_empty(), "{variant}: re-send gave {again:?}");
        assert_eq!(acc.seen().len(), 4);
    }
}

#[test]
fn warn_and_error_records_are_kept_with_bodies_as_text() {
    for (variant, ext, enc) in VARIANTS {
        let (body, expected) = load(variant, "06-logs", ext);
        let req = decode_logs(&body, enc).unwrap();
        let derived = logs::derive_logs(&req, &LogDeriveConfig::default());
        let records = expected_records(&expected);
        let find = |n: u64| {
            records
                .iter()
                .find(|(r, _)| u64_of(&r["severity_number"]) == n)
                .unwrap()
                .0
        };
        assert_eq!(derived.evidence.len(), 2, "{variant}: WARN and ERROR");
        assert_eq!(derived.evidence_dropped, 0);

        let (error, warn) = (&derived.evidence[0], &derived.evidence[1]);
        let want = find(17);
        assert_eq!(error.severity, "ERROR");
        assert_eq!(error.severity_number, 17);
        assert_eq!(error.body, want["body"].as_str().unwrap());
        assert_eq!(error.time_unix_nano, u64_of(&want["time_unix_nano"]));
        assert_eq!(error.trace_id.as_deref(), want["trace_id"].as_str());
        assert_eq!(error.span_id.as_deref(), want["span_id"].as_str());
        assert_eq!(error.attributes, want["attributes"], "{variant}");
        assert_eq!(error.scope_name, "pipewatch.fixtures.etl");

        let want = find(13);
        assert_eq!(warn.severity, "WARN");
        assert_eq!(warn.severity_text, "WARN");
        // The map body is rendered as JSON text holding what was sent.
        let body: Value = serde_json::from_str(&warn.body).expect("map body rendered as JSON");
        assert_eq!(body, want["body"], "{variant}");
        assert_eq!(body["columns"], serde_json::json!(["amount", "currency"]));
        // No time_unix_nano: the observed time stands in.
        assert_eq!(u64_of(&want["time_unix_nano"]), 0);
        assert_eq!(
            warn.time_unix_nano,
            u64_of(&want["observed_time_unix_nano"])
        );
        assert_eq!(warn.event_name, "pipewatch.schema.drift");
        assert_eq!(warn.to_json()["body"], Value::String(warn.body.clone()));

        // Lowering the bar to DEBUG keeps all four, most severe first; the DEBUG record is
        // outside any span.
        let all = logs::derive_logs(
            &req,
            &LogDeriveConfig {
                min_evidence_severity: 1,
                max_evidence_per_request: 100,
            },
        );
        let sev: Vec<i32> = all.evidence.iter().map(|e| e.severity_number).collect();
        assert_eq!(sev, [17, 13, 9, 5]);
        assert_eq!(all.evidence[3].trace_id, None);
        assert_eq!(all.evidence[3].body, find(5)["body"].as_str().unwrap());
    }
}
