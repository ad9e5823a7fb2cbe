//! A borrowed view of an OTLP `ExportMetricsServiceRequest`: what the metrics mapping
//! ([`super::metrics`]) reads, with strings borrowed instead of owned.
//!
//! Two sources fill it: the borrowing protobuf decoder ([`super::wire`]), whose strings point
//! into the request body, and any `opentelemetry-proto` request ([`MetricsView::of`]: OTLP/JSON,
//! gRPC, and protobuf bodies the borrowing decoder leaves to prost), whose strings point into
//! the prost message. The mapping is written once, against this view, so both sources map
//! alike by construction; the differential tests check that both sources build the same view
//! from the same bytes.
//!
//! Every attribute of the request sits in one vector ([`MetricsView::attrs`]) and each owner
//! (resource, data point) holds a range of it: one allocation per request instead of one per
//! data point. Only what the mapping reads is kept (exemplars are counted, start times and
//! histogram min/max are dropped).

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
};
use std::borrow::Cow;
use std::ops::Range;

/// An attribute value as the mapping reads it.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    /// No `AnyValue`, or one with no value set.
    Absent,
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    /// Arrays, key-value lists, bytes and string-table indexes: only from prost messages (the
    /// borrowing decoder leaves bodies holding them to prost), rendered as JSON.
    Other(&'a any_value::Value),
}

/// One attribute.
#[derive(Debug, Clone, Copy)]
pub struct Attr<'a> {
    pub key: &'a str,
    pub value: Value<'a>,
}

impl<'a> Attr<'a> {
    /// The view of a prost attribute.
    pub fn of(kv: &'a KeyValue) -> Self {
        Attr {
            key: &kv.key,
            value: value_of(kv.value.as_ref().and_then(|v| v.value.as_ref())),
        }
    }
}

/// Appends the raw bytes of `attrs` as sent (in order, every key and value length-prefixed
/// and typed) for a raw series name ([`crate::known`]); `false` when an attribute is an array,
/// a map, bytes or a string-table index, which have no raw form here.
pub fn put_raw_attrs(raw: &mut Vec<u8>, attrs: &[Attr<'_>]) -> bool {
    use crate::known::put_raw;
    raw.extend_from_slice(&(attrs.len() as u32).to_le_bytes());
    for a in attrs {
        put_raw(raw, a.key.as_bytes());
        match a.value {
            Value::Absent => raw.push(0),
            Value::Str(s) => {
                raw.push(1);
                put_raw(raw, s.as_bytes());
            }
            Value::Bool(b) => raw.extend_from_slice(&[2, b as u8]),
            Value::Int(i) => {
                raw.push(3);
                raw.extend_from_slice(&i.to_le_bytes());
            }
            Value::Double(d) => {
                raw.push(4);
                raw.extend_from_slice(&d.to_bits().to_le_bytes());
            }
            Value::Other(_) => return false,
        }
    }
    true
}

/// A range of [`MetricsView::attrs`].
pub type Attrs = Range<u32>;

/// The whole request.
#[derive(Debug, Default)]
pub struct MetricsView<'a> {
    pub resources: Vec<ResourceView<'a>>,
    /// Every attribute of the request; resources and points hold ranges of it.
    pub attrs: Vec<Attr<'a>>,
}

/// `ResourceMetrics`; a missing `Resource` has no attributes, which is what the mapping
/// reads of it.
#[derive(Debug, Default)]
pub struct ResourceView<'a> {
    pub attrs: Attrs,
    pub scopes: Vec<ScopeView<'a>>,
}

/// `ScopeMetrics`.
#[derive(Debug, Default)]
pub struct ScopeView<'a> {
    /// `InstrumentationScope` name and version, when the scope is present.
    pub scope: Option<(&'a str, &'a str)>,
    pub metrics: Vec<MetricView<'a>>,
}

/// `Metric`.
#[derive(Debug, Default)]
pub struct MetricView<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub unit: &'a str,
    pub data: Option<DataView<'a>>,
}

/// The `data` of a `Metric`.
#[derive(Debug)]
pub enum DataView<'a> {
    Gauge(Vec<NumberPoint>),
    Sum {
        points: Vec<NumberPoint>,
        temporality: i32,
        monotonic: bool,
    },
    Histogram {
        points: Vec<HistogramPoint<'a>>,
        temporality: i32,
    },
    Exponential {
        points: Vec<ExpPoint<'a>>,
        temporality: i32,
    },
    Summary(Vec<SummaryPoint>),
}

impl DataView<'_> {
    /// Data points of the metric.
    pub fn points(&self) -> usize {
        match self {
            DataView::Gauge(p) | DataView::Sum { points: p, .. } => p.len(),
            DataView::Histogram { points, .. } => points.len(),
            DataView::Exponential { points, .. } => points.len(),
            DataView::Summary(p) => p.len(),
        }
    }
}

/// A number's value.
#[derive(Debug, Clone, Copy)]
pub enum Number {
    Double(f64),
    Int(i64),
}

/// `NumberDataPoint`.
#[derive(Debug, Clone)]
pub struct NumberPoint {
    pub attrs: Attrs,
    pub time_unix_nano: u64,
    pub value: Option<Number>,
    pub flags: u32,
    pub exemplars: usize,
}

/// `HistogramDataPoint`.
#[derive(Debug, Clone)]
pub struct HistogramPoint<'a> {
    pub attrs: Attrs,
    pub time_unix_nano: u64,
    pub count: u64,
    pub sum: Option<f64>,
    pub bucket_counts: Cow<'a, [u64]>,
    pub explicit_bounds: Cow<'a, [f64]>,
    pub flags: u32,
    pub exemplars: usize,
}

/// `ExponentialHistogramDataPoint.Buckets`.
#[derive(Debug, Clone)]
pub struct ExpBuckets<'a> {
    pub offset: i32,
    pub counts: Cow<'a, [u64]>,
}

/// `ExponentialHistogramDataPoint`.
#[derive(Debug, Clone)]
pub struct ExpPoint<'a> {
    pub attrs: Attrs,
    pub time_unix_nano: u64,
    pub count: u64,
    pub sum: Option<f64>,
    pub scale: i32,
    pub zero_count: u64,
    pub zero_threshold: f64,
    pub positive: Option<ExpBuckets<'a>>,
    pub negative: Option<ExpBuckets<'a>>,
    pub flags: u32,
    pub exemplars: usize,
}

/// `SummaryDataPoint`; quantiles as (quantile, value).
#[derive(Debug, Clone)]
pub struct SummaryPoint {
    pub attrs: Attrs,
    pub time_unix_nano: u64,
    pub count: u64,
    pub sum: f64,
    pub quantiles: Vec<(f64, f64)>,
    pub flags: u32,
}

impl<'a> MetricsView<'a> {
    /// The attributes of `range`.
    pub fn attrs(&self, range: &Attrs) -> &[Attr<'a>] {
        &self.attrs[range.start as usize..range.end as usize]
    }

    /// Appends `kvs` to [`Self::attrs`] and returns their range.
    fn push_attrs(&mut self, kvs: &'a [KeyValue]) -> Attrs {
        let start = self.attrs.len() as u32;
        self.attrs.extend(kvs.iter().map(Attr::of));
        start..self.attrs.len() as u32
    }

    /// The view of a prost request (strings borrowed from it).
    pub fn of(req: &'a ExportMetricsServiceRequest) -> Self {
        let mut view = MetricsView::default();
        for rm in &req.resource_metrics {
            let attrs =
                view.push_attrs(rm.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]));
            let mut scopes = Vec::with_capacity(rm.scope_metrics.len());
            for sm in &rm.scope_metrics {
                let metrics = sm
                    .metrics
                    .iter()
                    .map(|m| MetricView {
                        name: &m.name,
                        description: &m.description,
                        unit: &m.unit,
                        data: m.data.as_ref().map(|d| view.data_of(d)),
                    })
                    .collect();
                scopes.push(ScopeView {
                    scope: sm
                        .scope
                        .as_ref()
                        .map(|s| (s.name.as_str(), s.version.as_str())),
                    metrics,
                });
            }
            view.resources.push(ResourceView { attrs, scopes });
        }
        view
    }

    fn data_of(&mut self, d: &'a Data) -> DataView<'a> {
        let mut number =
            |p: &'a opentelemetry_proto::tonic::metrics::v1::NumberDataPoint| NumberPoint {
                attrs: self.push_attrs(&p.attributes),
                time_unix_nano: p.time_unix_nano,
                value: p.value.map(|v| match v {
                    number_data_point::Value::AsDouble(d) => Number::Double(d),
                    number_data_point::Value::AsInt(i) => Number::Int(i),
                }),
                flags: p.flags,
                exemplars: p.exemplars.len(),
            };
        match d {
            Data::Gauge(g) => DataView::Gauge(g.data_points.iter().map(&mut number).collect()),
            Data::Sum(s) => DataView::Sum {
                points: s.data_points.iter().map(&mut number).collect(),
                temporality: s.aggregation_temporality,
                monotonic: s.is_monotonic,
            },
            Data::Histogram(h) => DataView::Histogram {
                points: h
                    .data_points
                    .iter()
                    .map(|p| HistogramPoint {
                        attrs: self.push_attrs(&p.attributes),
                        time_unix_nano: p.time_unix_nano,
                        count: p.count,
                        sum: p.sum,
                        bucket_counts: Cow::Borrowed(&p.bucket_counts),
                        explicit_bounds: Cow::Borrowed(&p.explicit_bounds),
                        flags: p.flags,
                        exemplars: p.exemplars.len(),
                    })
                    .collect(),
                temporality: h.aggregation_temporality,
            },
            Data::ExponentialHistogram(h) => {
                let buckets = |b: &'a Option<Buckets>| {
                    b.as_ref().map(|b| ExpBuckets {
                        offset: b.offset,
                        counts: Cow::Borrowed(&b.bucket_counts),
                    })
                };
                DataView::Exponential {
                    points: h
                        .data_points
                        .iter()
                        .map(|p| ExpPoint {
                            attrs: self.push_attrs(&p.attributes),
                            time_unix_nano: p.time_unix_nano,
                            count: p.count,
                            sum: p.sum,
                            scale: p.scale,
                            zero_count: p.zero_count,
                            zero_threshold: p.zero_threshold,
                            positive: buckets(&p.positive),
                            negative: buckets(&p.negative),
                            flags: p.flags,
                            exemplars: p.exemplars.len(),
                        })
                        .collect(),
                    temporality: h.aggregation_temporality,
                }
            }
            Data::Summary(s) => DataView::Summary(
                s.data_points
                    .iter()
                    .map(|p| SummaryPoint {
                        attrs: self.push_attrs(&p.attributes),
                        time_unix_nano: p.time_unix_nano,
                        count: p.count,
                        sum: p.sum,
                        quantiles: p
                            .quantile_values
                            .iter()
                            .map(|q| (q.quantile, q.value))
                            .collect(),
                        flags: p.flags,
                    })
                    .collect(),
            ),
        }
    }
}

/// The view of a prost attribute value.
fn value_of(v: Option<&any_value::Value>) -> Value<'_> {
    match v {
        None => Value::Absent,
        Some(any_value::Value::StringValue(s)) => Value::Str(s),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Value::Int(*i),
        Some(any_value::Value::DoubleValue(d)) => Value::Double(*d),
        Some(other) => Value::Other(other),
    }
}
