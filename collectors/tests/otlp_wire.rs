//! The borrowing OTLP metrics decoder (`collectors::otlp::wire`) against prost: for every
//! body, both build the same view and the same mapping (series, samples to the bit, metadata,
//! rejections, partial-success message, delta totals, also on a second mapping after the
//! first one's totals are committed), or both refuse it with the same message. The check
//! itself is `collectors::fuzzing::otlp_wire_vs_prost`, which the `otlp_protobuf` fuzz target
//! runs too; here it runs over the SDK's captured bodies and over thousands of random,
//! truncated and byte-flipped requests.

use collectors::fuzzing::{otlp_wire_vs_prost, MetricsDecode};
use collectors::otlp::{self, Compression, ExportMetricsServiceRequest};
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    summary_data_point::ValueAtQuantile, Exemplar, ExponentialHistogram,
    ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use std::path::PathBuf;

/// Every metrics body the Python SDK sent (all protobuf variants, inflated).
fn sdk_metrics_bodies() -> Vec<(String, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/otlp");
    let mut out = Vec::new();
    for folder in [
        "http-protobuf",
        "grpc",
        "http-protobuf-gzip",
        "http-protobuf-deflate",
    ] {
        for e in std::fs::read_dir(root.join(folder)).unwrap() {
            let p = e.unwrap().path();
            let file = p.file_name().unwrap().to_string_lossy().into_owned();
            if !file.contains("metrics") || file.ends_with(".json") {
                continue;
            }
            let raw = std::fs::read(&p).unwrap();
            let compression = if file.ends_with(".gz") {
                Compression::Gzip
            } else if file.ends_with(".deflate") {
                Compression::Deflate
            } else {
                Compression::Identity
            };
            let body = otlp::decompress(&raw, compression, 64 << 20)
                .unwrap()
                .into_owned();
            out.push((format!("{folder}/{file}"), body));
        }
    }
    out.sort();
    out
}

#[test]
fn sdk_bodies_take_the_borrowing_decoder_and_map_as_prost_does() {
    let bodies = sdk_metrics_bodies();
    assert!(bodies.len() >= 14, "{} bodies", bodies.len());
    for (name, body) in &bodies {
        // Real SDK traffic (with exemplars, histograms, delta and cumulative sums) must not
        // fall back to prost: the fast path is for exactly this shape.
        assert_eq!(otlp_wire_vs_prost(body), MetricsDecode::Wire, "{name}");
    }
}

/// The SDK's bodies mapped with a resolver that holds about half their series by id equal
/// the bodies mapped without one (`collectors::fuzzing::otlp_known_series_vs_built`), and the
/// resolver takes samples of gauges, cumulative sums and histograms (delta sums are always
/// built: their running totals are kept by key). Mapped again, the gauge and cumulative sum
/// points of series it holds are recognised by their raw attribute bytes.
#[test]
fn sdk_bodies_map_alike_with_known_series_taken_by_id() {
    use collectors::fuzzing::otlp_known_series_vs_built;
    use collectors::otlp::wire::MetricsBody;
    let (mut by_id, mut by_raw) = (0, 0);
    for (name, body) in sdk_metrics_bodies() {
        let body = MetricsBody::decode(&body).unwrap();
        let n = body.with_view(otlp_known_series_vs_built);
        if name.contains("cumulative") {
            assert!(n.by_id > 0, "{name}: no sample taken by id");
            assert!(
                n.by_raw > 0,
                "{name}: no series recognised by its raw bytes"
            );
        }
        assert!(n.by_raw <= n.by_id, "{name}: {n:?}");
        by_id += n.by_id;
        by_raw += n.by_raw;
    }
    assert!(by_id >= 50, "{by_id} samples taken by id");
    // Histogram series are resolved from their built labels (a point makes many series).
    assert!(
        by_raw >= 10 && by_raw < by_id,
        "{by_raw} of {by_id} by raw bytes"
    );
}

#[test]
fn traces_and_logs_bodies_are_refused_or_mapped_alike() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/otlp");
    for file in ["http-protobuf/05-traces.pb", "http-protobuf/06-logs.pb"] {
        otlp_wire_vs_prost(&std::fs::read(root.join(file)).unwrap());
    }
}

/// xorshift64: deterministic, so a failure names a round that reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn attr(rng: &mut Rng) -> KeyValue {
    // Names that collide after sanitising, need a prefix, or are overridden by job/instance.
    let keys = [
        "stage",
        "status",
        "http.route",
        "http_route",
        "2xx",
        "_p",
        "job",
        "instance",
        "",
        "é",
        "le",
    ];
    // None: no AnyValue; Some(None): an AnyValue without a value.
    let value: Option<Option<any_value::Value>> = match rng.below(12) {
        0 => None,
        1 => Some(None),
        2 => Some(Some(any_value::Value::BoolValue(rng.chance(2)))),
        3 => Some(Some(any_value::Value::IntValue(
            rng.next() as i64 >> rng.below(64),
        ))),
        4 => Some(Some(any_value::Value::DoubleValue(*rng.pick(&[
            0.5,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            1e300,
        ])))),
        // Values the borrowing decoder leaves to prost.
        5 if rng.chance(4) => Some(Some(any_value::Value::ArrayValue(ArrayValue {
            values: vec![AnyValue {
                value: Some(any_value::Value::StringValue("x".into())),
            }],
        }))),
        6 if rng.chance(4) => Some(Some(any_value::Value::BytesValue(vec![0, 255]))),
        _ => Some(Some(any_value::Value::StringValue(
            rng.pick(&["extract", "load", "", "a;b", "nul\0here", "ünï"])
                .to_string(),
        ))),
    };
    KeyValue {
        key: rng.pick(&keys).to_string(),
        value: value.map(|value| AnyValue { value }),
        ..Default::default()
    }
}

fn attrs(rng: &mut Rng) -> Vec<KeyValue> {
    (0..rng.below(6)).map(|_| attr(rng)).collect()
}

fn time(rng: &mut Rng) -> u64 {
    if rng.chance(20) {
        0
    } else {
        1_700_000_000_000_000_000 + (rng.below(5) as u64) * 15_000_000_000
    }
}

fn exemplars(rng: &mut Rng) -> Vec<Exemplar> {
    (0..usize::from(rng.chance(5)))
        .map(|_| Exemplar {
            filtered_attributes: attrs(rng),
            time_unix_nano: time(rng),
            span_id: vec![1; 8],
            trace_id: vec![2; 16],
            value: Some(exemplar::Value::AsDouble(1.5)),
        })
        .collect()
}

fn number_point(rng: &mut Rng) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs(rng),
        start_time_unix_nano: time(rng),
        time_unix_nano: time(rng),
        exemplars: exemplars(rng),
        flags: u32::from(rng.chance(10)),
        value: match rng.below(8) {
            0 => None,
            1 => Some(number_data_point::Value::AsInt(rng.next() as i64)),
            2 => Some(number_data_point::Value::AsDouble(f64::NAN)),
            _ => Some(number_data_point::Value::AsDouble(rng.below(1000) as f64)),
        },
    }
}

fn metric(rng: &mut Rng) -> Metric {
    let points = rng.below(5);
    let temporality = *rng.pick(&[1, 1, 2, 2, 2, 0, 7]);
    let data = match rng.below(7) {
        0 => None,
        1 => Some(Data::Gauge(Gauge {
            data_points: (0..points).map(|_| number_point(rng)).collect(),
        })),
        2 | 3 => Some(Data::Sum(Sum {
            data_points: (0..points).map(|_| number_point(rng)).collect(),
            aggregation_temporality: temporality,
            is_monotonic: rng.chance(2),
        })),
        4 => Some(Data::Histogram(Histogram {
            data_points: (0..points)
                .map(|_| {
                    let bounds: Vec<f64> = match rng.below(4) {
                        0 => vec![],
                        1 => vec![2.0, 1.0],
                        _ => vec![0.1, 1.0, 10.0],
                    };
                    let n = bounds.len() + usize::from(!rng.chance(8));
                    HistogramDataPoint {
                        attributes: attrs(rng),
                        time_unix_nano: time(rng),
                        count: rng.below(100) as u64,
                        sum: rng.chance(2).then_some(12.5),
                        bucket_counts: (0..n).map(|_| rng.below(10) as u64).collect(),
                        explicit_bounds: bounds,
                        exemplars: exemplars(rng),
                        flags: u32::from(rng.chance(10)),
                        min: rng.chance(2).then_some(0.01),
                        max: rng.chance(2).then_some(99.0),
                        ..Default::default()
                    }
                })
                .collect(),
            aggregation_temporality: temporality,
        })),
        5 => Some(Data::ExponentialHistogram(ExponentialHistogram {
            data_points: (0..points)
                .map(|_| {
                    let buckets = |rng: &mut Rng| {
                        rng.chance(3).then(|| Buckets {
                            offset: rng.below(40) as i32 - 20,
                            bucket_counts: (0..rng.below(6)).map(|_| rng.below(5) as u64).collect(),
                        })
                    };
                    ExponentialHistogramDataPoint {
                        attributes: attrs(rng),
                        time_unix_nano: time(rng),
                        count: rng.below(100) as u64,
                        sum: rng.chance(2).then_some(3.0),
                        scale: rng.below(36) as i32 - 12,
                        zero_count: rng.below(3) as u64,
                        zero_threshold: *rng.pick(&[0.0, 1e-9]),
                        positive: buckets(rng),
                        negative: buckets(rng),
                        flags: u32::from(rng.chance(10)),
                        exemplars: exemplars(rng),
                        ..Default::default()
                    }
                })
                .collect(),
            aggregation_temporality: temporality,
        })),
        _ => Some(Data::Summary(Summary {
            data_points: (0..points)
                .map(|_| SummaryDataPoint {
                    attributes: attrs(rng),
                    time_unix_nano: time(rng),
                    count: rng.below(100) as u64,
                    sum: 7.0,
                    quantile_values: (0..rng.below(3))
                        .map(|i| ValueAtQuantile {
                            quantile: [0.5, 0.9, 0.99][i],
                            value: i as f64,
                        })
                        .collect(),
                    flags: u32::from(rng.chance(10)),
                    ..Default::default()
                })
                .collect(),
        })),
    };
    Metric {
        name: rng
            .pick(&[
                "etl.rows",
                "etl.rows",
                "step.duration",
                "...",
                "2xx",
                "cpu.util",
            ])
            .to_string(),
        description: rng.pick(&["", "rows read", "nul\0"]).to_string(),
        unit: rng.pick(&["", "s", "1", "{row}", "By/s"]).to_string(),
        // Metric metadata is left to prost by the borrowing decoder.
        metadata: if rng.chance(30) { attrs(rng) } else { vec![] },
        data,
    }
}

fn request(rng: &mut Rng) -> ExportMetricsServiceRequest {
    let services = ["checkout", "etl", ""];
    ExportMetricsServiceRequest {
        resource_metrics: (0..1 + rng.below(3))
            .map(|_| {
                let mut resource_attrs = attrs(rng);
                resource_attrs.push(KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(
                            rng.pick(&services).to_string(),
                        )),
                    }),
                    ..Default::default()
                });
                ResourceMetrics {
                    resource: (!rng.chance(8)).then(|| Resource {
                        attributes: resource_attrs,
                        ..Default::default()
                    }),
                    scope_metrics: (0..rng.below(3))
                        .map(|_| ScopeMetrics {
                            scope: (!rng.chance(4)).then(|| InstrumentationScope {
                                name: "lib".into(),
                                version: rng.pick(&["", "1.2"]).to_string(),
                                attributes: if rng.chance(5) { attrs(rng) } else { vec![] },
                                ..Default::default()
                            }),
                            metrics: (0..rng.below(4)).map(|_| metric(rng)).collect(),
                            schema_url: rng
                                .pick(&["", "https://opentelemetry.io/schemas/1.21.0"])
                                .to_string(),
                        })
                        .collect(),
                    ..Default::default()
                }
            })
            .collect(),
    }
}

#[test]
fn random_truncated_and_flipped_bodies_decode_and_map_alike() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    let mut bodies = 0;
    for round in 0..1500 {
        let body = request(&mut rng).encode_to_vec();
        let mut variants = vec![body.clone()];
        for _ in 0..2 {
            variants.push(body[..rng.below(body.len() + 1)].to_vec());
        }
        for _ in 0..3 {
            let mut flipped = body.clone();
            for _ in 0..1 + rng.below(3) {
                if !flipped.is_empty() {
                    let i = rng.below(flipped.len());
                    flipped[i] ^= 1 << rng.below(8);
                }
            }
            variants.push(flipped);
        }
        for (v, b) in variants.iter().enumerate() {
            let how = std::panic::catch_unwind(|| otlp_wire_vs_prost(b))
                .unwrap_or_else(|_| panic!("round {round}, variant {v}: {b:?}"));
            let kind = if v == 0 { "whole" } else { "mutated" };
            *seen.entry(format!("{kind} {how:?}")).or_default() += 1;
            bodies += 1;
        }
    }
    eprintln!("{bodies} bodies: {seen:?}");
    // The run must have exercised every outcome. The generator gives about half of the whole
    // bodies something the borrowing decoder leaves to prost (an array or bytes attribute
    // anywhere, metric metadata), so both paths get whole bodies.
    for key in [
        "whole Wire",
        "whole Prost",
        "mutated Wire",
        "mutated Prost",
        "mutated Refused",
    ] {
        assert!(seen.get(key).copied().unwrap_or(0) > 20, "{key}: {seen:?}");
    }
    assert!(seen["whole Wire"] >= 500, "{seen:?}");
}

/// Wire forms prost accepts that encoders rarely write: repeated scalar fields (the last
/// wins), unpacked repeated numbers, non-minimal varint keys.
#[test]
fn unusual_but_valid_encodings_map_alike() {
    // Metric { name: "a", name: "b.c", gauge { point { time, as_int } } }
    let point = [
        &[0x19][..],
        &1_700_000_000_000_000_000u64.to_le_bytes(),
        &[0x31],
        &7u64.to_le_bytes(),
    ]
    .concat();
    let gauge = [&[0x0a, point.len() as u8][..], &point].concat();
    let metric = [
        &[
            0x0a,
            1,
            b'a',
            0x0a,
            3,
            b'b',
            b'.',
            b'c',
            0x2a,
            gauge.len() as u8,
        ][..],
        &gauge,
    ]
    .concat();
    let scope = [&[0x12, metric.len() as u8][..], &metric].concat();
    let rm = [&[0x12, scope.len() as u8][..], &scope].concat();
    let body = [&[0x0a, rm.len() as u8][..], &rm].concat();
    assert_eq!(otlp_wire_vs_prost(&body), MetricsDecode::Wire);
    // The same with the top-level key as a two-byte varint (0x8a 0x00 = 0x0a).
    let long_key = [&[0x8a, 0x00, rm.len() as u8][..], &rm].concat();
    assert_eq!(otlp_wire_vs_prost(&long_key), MetricsDecode::Wire);
    // An unknown field is left to prost, which skips it.
    let unknown = [&body[..], &[0x78, 0x01]].concat();
    assert_eq!(otlp_wire_vs_prost(&unknown), MetricsDecode::Prost);
    // Histogram bucket counts unpacked (field 6 as fixed64 entries) and bounds packed.
    let hp = HistogramDataPoint {
        time_unix_nano: 1_700_000_000_000_000_000,
        count: 3,
        bucket_counts: vec![1, 2],
        explicit_bounds: vec![1.0],
        ..Default::default()
    };
    let mut packed = hp.encode_to_vec();
    let counts_at = packed
        .windows(2)
        .position(|w| w == [0x32, 16])
        .expect("packed counts");
    let unpacked: Vec<u8> = [
        &packed[..counts_at],
        &[0x31][..],
        &1u64.to_le_bytes(),
        &[0x31],
        &2u64.to_le_bytes(),
        &packed[counts_at + 18..],
    ]
    .concat();
    packed = unpacked;
    let hist = [&[0x0a, packed.len() as u8][..], &packed, &[0x10, 2]].concat();
    let metric = [&[0x0a, 1, b'h', 0x4a, hist.len() as u8][..], &hist].concat();
    let scope = [&[0x12, metric.len() as u8][..], &metric].concat();
    let rm = [&[0x12, scope.len() as u8][..], &scope].concat();
    let body = [&[0x0a, rm.len() as u8][..], &rm].concat();
    assert_eq!(otlp_wire_vs_prost(&body), MetricsDecode::Wire);
}
