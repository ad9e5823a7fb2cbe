//! Golden tests for the OTLP decoder and the metrics mapping, over every request the
//! OpenTelemetry Python SDK sent in `fixtures/otlp/` (six transport variants).
//!
//! Each body is decoded with [`collectors::otlp`], normalised into the shape of the fixture's
//! `*.expected.json` (written by the capture tools from the official Python protobuf classes
//! and `json.loads`, see fixtures/otlp/README.md) and compared field by field, so every number
//! in every expected file is checked. The mapping tests assert the values of the README's
//! tables after delta accumulation.

use collectors::otlp::metrics::{DeltaAccumulator, MappedMetrics};
use collectors::otlp::{
    self, BodyEncoding, Compression, ExportLogsServiceRequest, ExportMetricsServiceRequest,
    ExportTraceServiceRequest,
};
use model::{MetricType, SeriesKey};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, metric::Data, number_data_point, Exemplar,
};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/otlp")
}

struct Fixture {
    folder: String,
    name: String,
    body: Vec<u8>,
    encoding: BodyEncoding,
    compression: Compression,
    expected: Value,
}

/// Every body in every variant folder, with its expected file.
fn all_fixtures() -> Vec<Fixture> {
    let mut out = Vec::new();
    for folder in [
        "http-protobuf",
        "http-json",
        "grpc",
        "http-protobuf-gzip",
        "http-protobuf-deflate",
        "http-json-gzip",
    ] {
        for e in std::fs::read_dir(fixtures().join(folder)).unwrap() {
            let p = e.unwrap().path();
            let file = p.file_name().unwrap().to_string_lossy().into_owned();
            if file.ends_with(".expected.json") || file.ends_with(".headers.json") {
                continue;
            }
            let (stem, encoding, compression) = if let Some(s) = file.strip_suffix(".pb.gz") {
                (s, BodyEncoding::Protobuf, Compression::Gzip)
            } else if let Some(s) = file.strip_suffix(".pb.deflate") {
                (s, BodyEncoding::Protobuf, Compression::Deflate)
            } else if let Some(s) = file.strip_suffix(".json.gz") {
                (s, BodyEncoding::Json, Compression::Gzip)
            } else if let Some(s) = file.strip_suffix(".pb") {
                (s, BodyEncoding::Protobuf, Compression::Identity)
            } else if let Some(s) = file.strip_suffix(".json") {
                (s, BodyEncoding::Json, Compression::Identity)
            } else {
                panic!("unexpected fixture file {file}");
            };
            let expected = read_json(&p.with_file_name(format!("{stem}.expected.json")));
            out.push(Fixture {
                folder: folder.into(),
                name: stem.into(),
                body: std::fs::read(&p).unwrap(),
                encoding,
                compression,
                expected,
            });
        }
    }
    out.sort_by(|a, b| (&a.folder, &a.name).cmp(&(&b.folder, &b.name)));
    out
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The normaliser's `float`: non-finite doubles as strings, the rest as numbers.
fn float(v: f64) -> Value {
    if v.is_nan() {
        json!("NaN")
    } else if v == f64::INFINITY {
        json!("+Inf")
    } else if v == f64::NEG_INFINITY {
        json!("-Inf")
    } else {
        json!(v)
    }
}

fn any(v: Option<&AnyValue>) -> Value {
    match v.and_then(|v| v.value.as_ref()) {
        None => Value::Null,
        Some(any_value::Value::StringValue(s)) => json!(s),
        Some(any_value::Value::BoolValue(b)) => json!(b),
        Some(any_value::Value::IntValue(i)) => json!(i),
        Some(any_value::Value::DoubleValue(d)) => float(*d),
        Some(any_value::Value::BytesValue(b)) => json!({ "bytes_hex": hex(b) }),
        Some(any_value::Value::ArrayValue(a)) => {
            Value::Array(a.values.iter().map(|x| any(Some(x))).collect())
        }
        Some(any_value::Value::KvlistValue(kv)) => attrs(&kv.values),
        Some(other) => panic!("unexpected AnyValue {other:?}"),
    }
}

fn attrs(kvs: &[KeyValue]) -> Value {
    Value::Object(
        kvs.iter()
            .map(|kv| (kv.key.clone(), any(kv.value.as_ref())))
            .collect::<Map<_, _>>(),
    )
}

fn scope(s: Option<&InstrumentationScope>) -> Value {
    let d = InstrumentationScope::default();
    let s = s.unwrap_or(&d);
    json!({"name": s.name, "version": s.version, "attributes": attrs(&s.attributes),
           "dropped_attributes_count": s.dropped_attributes_count})
}

fn exemplars(ex: &[Exemplar]) -> Value {
    Value::Array(
        ex.iter()
            .map(|e| {
                let (value, t) = match e.value {
                    Some(exemplar::Value::AsInt(i)) => (json!(i), "int"),
                    Some(exemplar::Value::AsDouble(d)) => (float(d), "double"),
                    None => (Value::Null, "none"),
                };
                json!({"time_unix_nano": e.time_unix_nano, "trace_id": hex(&e.trace_id),
                       "span_id": hex(&e.span_id), "filtered_attributes": attrs(&e.filtered_attributes),
                       "value": value, "value_type": t})
            })
            .collect(),
    )
}

/// Inserts `exemplars` only when there are some (the expected files leave it out otherwise).
fn with_exemplars(mut point: Value, ex: &[Exemplar]) -> Value {
    if !ex.is_empty() {
        point["exemplars"] = exemplars(ex);
    }
    point
}

fn opt_float(v: Option<f64>) -> Value {
    v.map(float).unwrap_or(Value::Null)
}

fn temporality(code: i32) -> Value {
    match code {
        1 => json!("DELTA"),
        2 => json!("CUMULATIVE"),
        _ => json!("UNSPECIFIED"),
    }
}

fn normalise_metrics(req: &ExportMetricsServiceRequest) -> (Value, Value) {
    let mut scopes_n = 0;
    let mut metrics_total = Vec::new();
    let mut points_total = 0;
    let resources: Vec<Value> = req
        .resource_metrics
        .iter()
        .map(|rm| {
            let r = rm.resource.clone().unwrap_or_default();
            let scopes: Vec<Value> = rm
                .scope_metrics
                .iter()
                .map(|sm| {
                    scopes_n += 1;
                    let metrics: Vec<Value> = sm
                        .metrics
                        .iter()
                        .map(|m| {
                            let (ty, temp, mono, points): (&str, Value, Value, Vec<Value>) =
                                match m.data.as_ref().expect("metric data") {
                                    Data::Gauge(g) => (
                                        "gauge",
                                        Value::Null,
                                        Value::Null,
                                        g.data_points.iter().map(number_point).collect(),
                                    ),
                                    Data::Sum(s) => (
                                        "sum",
                                        json!(s.aggregation_temporality),
                                        json!(s.is_monotonic),
                                        s.data_points.iter().map(number_point).collect(),
                                    ),
                                    Data::Histogram(h) => (
                                        "histogram",
                                        json!(h.aggregation_temporality),
                                        Value::Null,
                                        h.data_points
                                            .iter()
                                            .map(|p| {
                                                with_exemplars(
                                                    json!({"attributes": attrs(&p.attributes),
                                                "start_time_unix_nano": p.start_time_unix_nano,
                                                "time_unix_nano": p.time_unix_nano, "flags": p.flags,
                                                "count": p.count, "sum": opt_float(p.sum),
                                                "min": opt_float(p.min), "max": opt_float(p.max),
                                                "bucket_counts": p.bucket_counts,
                                                "explicit_bounds": p.explicit_bounds.iter().map(|b| float(*b)).collect::<Vec<_>>()}),
                                                    &p.exemplars,
                                                )
                                            })
                                            .collect(),
                                    ),
                                    Data::ExponentialHistogram(h) => (
                                        "exponential_histogram",
                                        json!(h.aggregation_temporality),
                                        Value::Null,
                                        h.data_points
                                            .iter()
                                            .map(|p| {
                                                let b = |x: &Option<_>| {
                                                    let x: opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets =
                                                        x.clone().unwrap_or_default();
                                                    json!({"offset": x.offset, "bucket_counts": x.bucket_counts})
                                                };
                                                with_exemplars(
                                                    json!({"attributes": attrs(&p.attributes),
                                                "start_time_unix_nano": p.start_time_unix_nano,
                                                "time_unix_nano": p.time_unix_nano, "flags": p.flags,
                                                "count": p.count, "sum": opt_float(p.sum),
                                                "min": opt_float(p.min), "max": opt_float(p.max),
                                                "scale": p.scale, "zero_count": p.zero_count,
                                                "zero_threshold": float(p.zero_threshold),
                                                "positive": b(&p.positive), "negative": b(&p.negative)}),
                                                    &p.exemplars,
                                                )
                                            })
                                            .collect(),
                                    ),
                                    Data::Summary(_) => panic!("no summaries in the fixtures"),
                                };
                            let (temp_name, temp_code) = match temp {
                                Value::Null => (Value::Null, Value::Null),
                                Value::Number(n) => {
                                    (temporality(n.as_i64().unwrap() as i32), Value::Number(n))
                                }
                                _ => unreachable!(),
                            };
                            points_total += points.len();
                            metrics_total.push(json!({"name": m.name, "type": ty,
                                "temporality": temp_name, "is_monotonic": mono,
                                "data_point_count": points.len()}));
                            json!({"name": m.name, "description": m.description, "unit": m.unit,
                                   "type": ty, "temporality": temp_name, "temporality_code": temp_code,
                                   "is_monotonic": mono, "data_point_count": points.len(),
                                   "data_points": points})
                        })
                        .collect();
                    json!({"scope": scope(sm.scope.as_ref()), "schema_url": sm.schema_url,
                           "metrics": metrics})
                })
                .collect();
            json!({"attributes": attrs(&r.attributes),
                   "dropped_attributes_count": r.dropped_attributes_count,
                   "schema_url": rm.schema_url, "scopes": scopes})
        })
        .collect();
    let totals = json!({"resource_count": resources.len(), "scope_count": scopes_n,
        "metric_count": metrics_total.len(), "data_point_count": points_total,
        "metrics": metrics_total});
    (totals, Value::Array(resources))
}

fn number_point(p: &opentelemetry_proto::tonic::metrics::v1::NumberDataPoint) -> Value {
    let (value, t) = match p.value {
        Some(number_data_point::Value::AsInt(i)) => (json!(i), "int"),
        Some(number_data_point::Value::AsDouble(d)) => (float(d), "double"),
        None => (Value::Null, "none"),
    };
    with_exemplars(
        json!({"attributes": attrs(&p.attributes), "start_time_unix_nano": p.start_time_unix_nano,
               "time_unix_nano": p.time_unix_nano, "flags": p.flags, "value": value, "value_type": t}),
        &p.exemplars,
    )
}

const KIND_NAMES: [&str; 6] = [
    "UNSPECIFIED",
    "INTERNAL",
    "SERVER",
    "CLIENT",
    "PRODUCER",
    "CONSUMER",
];
const STATUS_NAMES: [&str; 3] = ["UNSET", "OK", "ERROR"];

fn normalise_traces(req: &ExportTraceServiceRequest) -> (Value, Value) {
    let (mut scopes_n, mut spans_n, mut errors, mut names) = (0, 0, 0, Vec::new());
    let resources: Vec<Value> = req
        .resource_spans
        .iter()
        .map(|rs| {
            let r = rs.resource.clone().unwrap_or_default();
            let scopes: Vec<Value> = rs
                .scope_spans
                .iter()
                .map(|ss| {
                    scopes_n += 1;
                    let spans: Vec<Value> = ss
                        .spans
                        .iter()
                        .map(|s| {
                            spans_n += 1;
                            names.push(s.name.clone());
                            let st = s.status.clone().unwrap_or_default();
                            if st.code == 2 {
                                errors += 1;
                            }
                            json!({"trace_id": hex(&s.trace_id), "span_id": hex(&s.span_id),
                                "parent_span_id": hex(&s.parent_span_id), "trace_state": s.trace_state,
                                "flags": s.flags, "name": s.name, "kind": s.kind,
                                "kind_name": KIND_NAMES[s.kind as usize],
                                "start_time_unix_nano": s.start_time_unix_nano,
                                "end_time_unix_nano": s.end_time_unix_nano,
                                "attributes": attrs(&s.attributes),
                                "dropped_attributes_count": s.dropped_attributes_count,
                                "events": s.events.iter().map(|e| json!({"time_unix_nano": e.time_unix_nano,
                                    "name": e.name, "attributes": attrs(&e.attributes)})).collect::<Vec<_>>(),
                                "links": s.links.iter().map(|l| json!({"trace_id": hex(&l.trace_id),
                                    "span_id": hex(&l.span_id), "trace_state": l.trace_state, "flags": l.flags,
                                    "attributes": attrs(&l.attributes)})).collect::<Vec<_>>(),
                                "status": {"code": st.code, "code_name": STATUS_NAMES[st.code as usize],
                                           "message": st.message}})
                        })
                        .collect();
                    json!({"scope": scope(ss.scope.as_ref()), "schema_url": ss.schema_url, "spans": spans})
                })
                .collect();
            json!({"attributes": attrs(&r.attributes),
                   "dropped_attributes_count": r.dropped_attributes_count,
                   "schema_url": rs.schema_url, "scopes": scopes})
        })
        .collect();
    let totals = json!({"resource_count": resources.len(), "scope_count": scopes_n,
        "span_count": spans_n, "error_span_count": errors, "span_names": names});
    (totals, Value::Array(resources))
}

fn normalise_logs(req: &ExportLogsServiceRequest) -> (Value, Value) {
    let (mut scopes_n, mut records_n) = (0, 0);
    let resources: Vec<Value> = req
        .resource_logs
        .iter()
        .map(|rl| {
            let r = rl.resource.clone().unwrap_or_default();
            let scopes: Vec<Value> = rl
                .scope_logs
                .iter()
                .map(|sl| {
                    scopes_n += 1;
                    let records: Vec<Value> = sl
                        .log_records
                        .iter()
                        .map(|l| {
                            records_n += 1;
                            json!({"time_unix_nano": l.time_unix_nano,
                                "observed_time_unix_nano": l.observed_time_unix_nano,
                                "severity_number": l.severity_number, "severity_text": l.severity_text,
                                "body": any(l.body.as_ref()), "attributes": attrs(&l.attributes),
                                "flags": l.flags, "trace_id": hex(&l.trace_id), "span_id": hex(&l.span_id),
                                "event_name": l.event_name})
                        })
                        .collect();
                    json!({"scope": scope(sl.scope.as_ref()), "schema_url": sl.schema_url,
                           "log_records": records})
                })
                .collect();
            json!({"attributes": attrs(&r.attributes),
                   "dropped_attributes_count": r.dropped_attributes_count,
                   "schema_url": rl.schema_url, "scopes": scopes})
        })
        .collect();
    let totals = json!({"resource_count": resources.len(), "scope_count": scopes_n, "log_record_count": records_n});
    (totals, Value::Array(resources))
}

/// Compares `got` with `want` field by field. Integers compare exactly (timestamps exceed
/// f64 precision), other numbers as f64 (the expected files write `539.0`, OTLP/JSON `539`).
/// Keys of `want` missing from `got` are differences; keys only in `got` are too.
fn diff(path: &str, got: &Value, want: &Value, out: &mut Vec<String>) {
    match (got, want) {
        (Value::Number(a), Value::Number(b)) => {
            let same = match (a.as_i64().or(a.as_u64().map(|x| x as i64)), b.as_i64()) {
                _ if a.is_f64() || b.is_f64() => a.as_f64() == b.as_f64(),
                (Some(x), Some(y)) => x == y,
                _ => a.as_u64() == b.as_u64(),
            };
            if !same {
                out.push(format!("{path}: got {a}, want {b}"));
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get(k) {
                    Some(g) => diff(&format!("{path}.{k}"), g, v, out),
                    None => out.push(format!("{path}.{k}: missing (want {v})")),
                }
            }
            for k in a.keys().filter(|k| !b.contains_key(*k)) {
                out.push(format!("{path}.{k}: not in the expected file"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                out.push(format!("{path}: {} items, want {}", a.len(), b.len()));
            }
            for (i, (g, w)) in a.iter().zip(b).enumerate() {
                diff(&format!("{path}[{i}]"), g, w, out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(format!("{path}: got {a}, want {b}")),
    }
}

#[test]
fn every_fixture_decodes_to_exactly_its_expected_content() {
    let all = all_fixtures();
    assert_eq!(
        all.len(),
        27,
        "8 + 8 + 8 full requests and 3 compressed ones"
    );
    let mut failures = Vec::new();
    for f in &all {
        let e = &f.expected;
        assert_eq!(
            e["body_bytes"].as_u64().unwrap() as usize,
            f.body.len(),
            "{}/{}",
            f.folder,
            f.name
        );
        let raw = otlp::decompress(&f.body, f.compression, 1 << 20).unwrap();
        assert_eq!(
            e["decoded_bytes"].as_u64().unwrap() as usize,
            raw.len(),
            "{}/{}",
            f.folder,
            f.name
        );
        let (totals, resources) = match e["signal"].as_str().unwrap() {
            "metrics" => normalise_metrics(
                &otlp::decode_body(&f.body, f.encoding, f.compression, 1 << 20).unwrap(),
            ),
            "traces" => normalise_traces(
                &otlp::decode_body(&f.body, f.encoding, f.compression, 1 << 20).unwrap(),
            ),
            "logs" => normalise_logs(
                &otlp::decode_body(&f.body, f.encoding, f.compression, 1 << 20).unwrap(),
            ),
            other => panic!("signal {other}"),
        };
        let mut out = Vec::new();
        diff("totals", &totals, &e["totals"], &mut out);
        diff("resources", &resources, &e["resources"], &mut out);
        for d in out {
            failures.push(format!("{}/{}: {d}", f.folder, f.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn protobuf_and_json_variants_of_a_request_decode_to_the_same_message_apart_from_run_values() {
    // The JSON capture came from a second run (other ids, times, instance id): compare the
    // metric structure and values, which the README says are the same in every variant.
    let pb: ExportMetricsServiceRequest = otlp::decode_metrics(
        &std::fs::read(fixtures().join("http-protobuf/03-metrics-cumulative-c2.pb")).unwrap(),
        BodyEncoding::Protobuf,
    )
    .unwrap();
    let js: ExportMetricsServiceRequest = otlp::decode_metrics(
        &std::fs::read(fixtures().join("http-json/03-metrics-cumulative-c2.json")).unwrap(),
        BodyEncoding::Json,
    )
    .unwrap();
    let values = |r: &ExportMetricsServiceRequest| -> Vec<(String, SeriesKey, u64)> {
        let mut acc = DeltaAccumulator::default();
        let m = collectors::otlp::metrics::map_metrics(r, &mut acc);
        let mut v: Vec<_> = m
            .batch
            .series
            .iter()
            .filter(|s| s.key.metric != "target_info")
            .map(|s| {
                let mut k = s.key.clone();
                k.labels.remove("instance");
                (k.metric.clone(), k, s.samples[0].value.to_bits())
            })
            .collect();
        v.sort_by(|a, b| a.1.cmp(&b.1));
        v
    };
    assert_eq!(values(&pb), values(&js));
}

/// Decodes and maps a sequence of protobuf fixtures through one accumulator.
fn map_sequence(names: &[&str]) -> Vec<MappedMetrics> {
    let mut acc = DeltaAccumulator::default();
    names
        .iter()
        .map(|n| {
            let body =
                std::fs::read(fixtures().join("http-protobuf").join(format!("{n}.pb"))).unwrap();
            let req = otlp::decode_metrics(&body, BodyEncoding::Protobuf).unwrap();
            collectors::otlp::metrics::map_metrics(&req, &mut acc)
        })
        .collect()
}

/// `metric{labels}` → value, with the labels every series shares removed for readability.
fn values(m: &MappedMetrics) -> BTreeMap<String, f64> {
    m.batch
        .series
        .iter()
        .map(|s| {
            let mut l = s.key.labels.clone();
            for k in ["job", "instance", "otel_scope_name", "otel_scope_version"] {
                l.remove(k);
            }
            assert_eq!(s.samples.len(), 1, "{}", s.key);
            (format!("{}{}", s.key.metric, l), s.samples[0].value)
        })
        .collect()
}

#[test]
fn delta_sums_accumulate_into_the_readme_totals() {
    let m = map_sequence(&[
        "02-metrics-delta-c1",
        "04-metrics-delta-c2",
        "08-metrics-delta-c3",
    ]);
    for x in &m {
        assert_eq!(x.rejected_points, 0, "{:?}", x.rejection_message());
    }
    let (c1, c2, c3) = (values(&m[0]), values(&m[1]), values(&m[2]));
    // README "Delta pipeline": rows.rejected schema 3 then +4, duplicate 1; files.seen
    // observes 10 then 25 (deltas 10, 15, 0).
    assert_eq!(c1[r#"etl_rows_rejected_total{reason="schema"}"#], 3.0);
    assert_eq!(c2[r#"etl_rows_rejected_total{reason="schema"}"#], 7.0);
    assert_eq!(c2[r#"etl_rows_rejected_total{reason="duplicate"}"#], 1.0);
    assert_eq!(c1[r#"etl_files_seen_total{bucket="landing"}"#], 10.0);
    assert_eq!(c2[r#"etl_files_seen_total{bucket="landing"}"#], 25.0);
    assert_eq!(c3[r#"etl_files_seen_total{bucket="landing"}"#], 25.0);
    assert!(
        !c3.keys().any(|k| k.starts_with("etl_rows_rejected")),
        "absent in c3"
    );
    // etl.io.wait (ms), bounds [1,10,100]: c1 count 3 sum 44.5 [1,1,1,0]; c2 +1 sum 150 [0,0,0,1].
    let h = |v: &BTreeMap<String, f64>, le: &str| {
        v[&format!(r#"etl_io_wait_milliseconds_bucket{{disk="nvme0",le="{le}"}}"#)]
    };
    assert_eq!(
        [h(&c1, "1"), h(&c1, "10"), h(&c1, "100"), h(&c1, "+Inf")],
        [1.0, 2.0, 3.0, 3.0]
    );
    assert_eq!(
        [h(&c2, "1"), h(&c2, "10"), h(&c2, "100"), h(&c2, "+Inf")],
        [1.0, 2.0, 3.0, 4.0]
    );
    assert_eq!(c2[r#"etl_io_wait_milliseconds_sum{disk="nvme0"}"#], 194.5);
    assert_eq!(c2[r#"etl_io_wait_milliseconds_count{disk="nvme0"}"#], 4.0);
}

#[test]
fn a_retried_delta_request_is_not_counted_twice() {
    let m = map_sequence(&["02-metrics-delta-c1", "02-metrics-delta-c1"]);
    assert_eq!(m[1].accepted_points, 0);
    assert_eq!(m[1].rejected_points, 3);
    let msg = m[1].rejection_message().unwrap();
    assert!(
        msg.contains("is not newer than the last one added"),
        "{msg}"
    );
    assert!(m[1]
        .batch
        .series
        .iter()
        .all(|s| s.key.metric == "target_info"));
}

#[test]
fn a_refused_batch_leaves_the_accumulator_unchanged_until_commit() {
    let body = std::fs::read(fixtures().join("http-protobuf/02-metrics-delta-c1.pb")).unwrap();
    let req = otlp::decode_metrics(&body, BodyEncoding::Protobuf).unwrap();
    let mut acc = DeltaAccumulator::default();
    let first = acc.map(&req);
    let again = acc.map(&req);
    assert_eq!(
        values(&first),
        values(&again),
        "nothing committed: same answer"
    );
    acc.commit(first.pending);
    assert_eq!(acc.len(), 3);
    assert_eq!(acc.map(&req).accepted_points, 0);
}

#[test]
fn cumulative_metrics_map_to_the_readme_values_with_prometheus_names() {
    let m = map_sequence(&["01-metrics-cumulative-c1", "03-metrics-cumulative-c2"]);
    let (c1, c2) = (values(&m[0]), values(&m[1]));
    assert_eq!(m[0].rejected_points, 0, "{:?}", m[0].rejection_message());
    assert_eq!(m[0].accepted_points, 15);
    let e = [
        (
            r#"etl_rows_processed_total{pipeline="orders",retry="false",shard="3",step="extract"}"#,
            350.0,
            400.0,
        ),
        (
            r#"etl_rows_processed_total{pipeline="orders",retry="true",shard="3",step="load"}"#,
            7.0,
            7.0,
        ),
        (r#"etl_bytes_read_total{source="s3"}"#, 1536.5, 1536.5),
        (r#"etl_queue_depth{queue="ingest"}"#, 7.0, 5.0),
        (r#"etl_batch_lag_seconds{source="kafka"}"#, 4.25, 1.75),
        (r#"etl_batch_lag_seconds{source="s3"}"#, 2.5, 2.5),
        (r#"etl_worker_memory_mebibytes{worker="w1"}"#, 512.0, 1024.0),
        (r#"etl_cpu_time_seconds_total{cpu="0"}"#, 12.5, 25.0),
        (r#"etl_connections_open{db="orders"}"#, 3.0, 2.0),
        (
            r#"etl_step_duration_milliseconds_count{step="extract"}"#,
            7.0,
            8.0,
        ),
        (
            r#"etl_step_duration_milliseconds_sum{step="extract"}"#,
            539.0,
            599.0,
        ),
        (
            r#"etl_step_duration_milliseconds_bucket{le="100",step="extract"}"#,
            6.0,
            7.0,
        ),
        (
            r#"etl_step_duration_milliseconds_bucket{le="+Inf",step="extract"}"#,
            7.0,
            8.0,
        ),
        (
            r#"etl_batch_rows_bucket{le="10",pipeline="orders"}"#,
            1.0,
            1.0,
        ),
        (
            r#"etl_batch_rows_bucket{le="1000",pipeline="orders"}"#,
            3.0,
            3.0,
        ),
        (r#"etl_batch_rows_sum{pipeline="orders"}"#, 5555.0, 5555.0),
        (
            r#"etl_request_latency_seconds_count{route="/query"}"#,
            3.0,
            4.0,
        ),
        (
            r#"etl_request_latency_seconds_sum{route="/ingest"}"#,
            1007.521,
            1007.521,
        ),
    ];
    for (k, v1, v2) in e {
        assert_eq!(c1.get(k), Some(&v1), "c1 {k}");
        assert_eq!(c2.get(k), Some(&v2), "c2 {k}");
    }
    // The observable gauge still reports w2 in c2 (expected file; the README table lists only
    // the value that changed).
    assert_eq!(
        c2.get(r#"etl_worker_memory_mebibytes{worker="w2"}"#),
        Some(&640.5)
    );
    // job / instance / target_info from the resource.
    let any = &m[0].batch.series[0].key.labels;
    assert_eq!(any.get("job"), Some("pipewatch-fixtures/orders-etl"));
    assert_eq!(any.get("otel_scope_name"), Some("pipewatch.fixtures"));
    assert_eq!(any.get("otel_scope_version"), Some("0.1.0"));
    let ti: Vec<_> = m[0]
        .batch
        .series
        .iter()
        .filter(|s| s.key.metric == "target_info")
        .collect();
    assert_eq!(ti.len(), 1);
    assert_eq!(ti[0].key.labels.get("service_version"), Some("1.4.2"));
    assert_eq!(ti[0].key.labels.get("deployment_environment"), Some("test"));
    assert_eq!(
        ti[0].key.labels.get("telemetry_sdk_language"),
        Some("python")
    );
    assert!(ti[0]
        .key
        .labels
        .get("instance")
        .is_some_and(|i| i.len() == 36));
    // Metadata keeps type, unit and help.
    let md = |f: &str| {
        m[0].batch
            .metadata
            .iter()
            .find(|x| x.family == f)
            .unwrap()
            .clone()
    };
    assert_eq!(
        md("etl_rows_processed_total").metric_type,
        MetricType::Counter
    );
    assert_eq!(
        md("etl_rows_processed_total").help,
        "Rows processed per step."
    );
    assert_eq!(
        md("etl_step_duration_milliseconds").metric_type,
        MetricType::Histogram
    );
    assert_eq!(md("etl_step_duration_milliseconds").unit, "milliseconds");
    assert_eq!(md("etl_queue_depth").metric_type, MetricType::Gauge);
}

#[test]
fn exponential_histogram_buckets_keep_the_counts_on_a_stable_le_grid() {
    let m = map_sequence(&["01-metrics-cumulative-c1", "03-metrics-cumulative-c2"]);
    let bucket = |v: &BTreeMap<String, f64>, route: &str| -> Vec<(f64, f64)> {
        let mut b: Vec<(f64, f64)> = v
            .iter()
            .filter_map(|(k, val)| {
                let rest = k.strip_prefix("etl_request_latency_seconds_bucket{le=\"")?;
                let (le, tail) = rest.split_once('"')?;
                tail.contains(&format!("route=\"{route}\""))
                    .then(|| (le.parse::<f64>().unwrap(), *val))
            })
            .collect();
        b.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
        b
    };
    let c1 = values(&m[0]);
    // /ingest at scale 0, zero_count 1, offset -10: [1,0,0,0,1,0,0,0,0,0,1,2,0,...,0,1].
    let ingest = bucket(&c1, "/ingest");
    assert_eq!(ingest.first(), Some(&(0.0, 1.0)), "zero bucket");
    assert_eq!(
        ingest[1],
        (2f64.powi(-9), 2.0),
        "bucket -10 is (2^-10, 2^-9]"
    );
    assert_eq!(ingest.last(), Some(&(f64::INFINITY, 7.0)));
    let at = |b: &[(f64, f64)], le: f64| b.iter().find(|x| x.0 == le).unwrap().1;
    assert_eq!(at(&ingest, 2f64.powi(-5)), 3.0); // index -6
    assert_eq!(at(&ingest, 2.0), 4.0); // index 0
    assert_eq!(at(&ingest, 4.0), 6.0); // index 1
    assert_eq!(at(&ingest, 1024.0), 7.0); // index 9
                                          // /query scale 6 -> 3 in c1; scale 3 in c2: both on the scale-3 grid, counts 3 then 4.
    let q1 = bucket(&c1, "/query");
    let q2 = bucket(&values(&m[1]), "/query");
    for (le, _) in q1
        .iter()
        .chain(&q2)
        .filter(|x| x.0 > 0.0 && x.0.is_finite())
    {
        let k = le.log2() * 8.0;
        assert!(
            (k - k.round()).abs() < 1e-9,
            "le {le} is on the 2^(1/8) grid"
        );
    }
    assert_eq!(q1.last().unwrap().1, 3.0);
    assert_eq!(q2.last().unwrap().1, 4.0);
}

/// Index of `v` in an exponential histogram of `scale` (the spec's reference mapping:
/// bucket i holds (base^i, base^(i+1)]).
fn exp_index(v: f64, scale: i32) -> i32 {
    (v.log2() * (scale as f64).exp2()).ceil() as i32 - 1
}

/// Prometheus' `histogram_quantile` over `(le, cumulative count)` buckets.
fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    let total = buckets.last().unwrap().1;
    let rank = q * total;
    let i = buckets.iter().position(|b| b.1 >= rank).unwrap();
    if buckets[i].0.is_infinite() {
        return buckets[i - 1].0;
    }
    let (lo, c0) = if i == 0 { (0.0, 0.0) } else { buckets[i - 1] };
    let (hi, c1) = buckets[i];
    lo + (hi - lo) * (rank - c0) / (c1 - c0)
}

#[test]
fn quantiles_from_stored_exponential_buckets_are_close_to_the_true_ones() {
    use opentelemetry_proto::tonic::metrics::v1::{
        exponential_histogram_data_point::Buckets, ExponentialHistogram,
        ExponentialHistogramDataPoint, Metric, ResourceMetrics, ScopeMetrics,
    };
    // 2000 latencies spread log-uniformly over 1 ms .. 10 s, recorded at scale 8 the way an
    // SDK would; the true quantiles come from the sorted values.
    let mut values: Vec<f64> = (0..2000)
        .map(|i| 10f64.powf(-3.0 + 4.0 * ((i * 7919) % 2000) as f64 / 2000.0))
        .collect();
    let scale = 8;
    let idx: Vec<i32> = values.iter().map(|v| exp_index(*v, scale)).collect();
    let offset = *idx.iter().min().unwrap();
    let mut counts = vec![0u64; (idx.iter().max().unwrap() - offset + 1) as usize];
    for i in &idx {
        counts[(i - offset) as usize] += 1;
    }
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "lat".into(),
                    unit: "s".into(),
                    data: Some(Data::ExponentialHistogram(ExponentialHistogram {
                        aggregation_temporality: 2,
                        data_points: vec![ExponentialHistogramDataPoint {
                            time_unix_nano: 1_700_000_000_000_000_000,
                            count: values.len() as u64,
                            sum: Some(values.iter().sum()),
                            scale,
                            positive: Some(Buckets {
                                offset,
                                bucket_counts: counts,
                            }),
                            ..Default::default()
                        }],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let m = collectors::otlp::metrics::map_metrics(&req, &mut DeltaAccumulator::default());
    let mut buckets: Vec<(f64, f64)> = m
        .batch
        .series
        .iter()
        .filter(|s| s.key.metric == "lat_seconds_bucket")
        .map(|s| {
            (
                s.key.labels.get("le").unwrap().parse().unwrap(),
                s.samples[0].value,
            )
        })
        .collect();
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    for q in [0.5, 0.9, 0.99] {
        let truth = values[(q * values.len() as f64) as usize - 1];
        let est = histogram_quantile(q, &buckets);
        // One scale-3 bucket is 9 % wide.
        assert!(
            (est / truth - 1.0).abs() < 0.09,
            "q{q}: estimated {est}, true {truth}"
        );
    }
}
