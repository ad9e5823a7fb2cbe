//! The borrowing decoder of OTLP/HTTP protobuf metrics bodies: `ExportMetricsServiceRequest`
//! bytes straight into a [`MetricsView`] whose strings point into the body, for requests in
//! the shape the OpenTelemetry SDKs and the Collector send.
//!
//! Why by hand and not prost: prost decodes every attribute key and string value into an
//! owned `String` (plus a `Vec` per point and a `KeyValue`/`AnyValue` per attribute), which was
//! the largest part of OTLP's CPU per sample that remote_write did not pay (BENCHMARKS.md,
//! "Issue 10: OTLP decode"); prost has no borrowed string fields. Here each string is checked
//! (UTF-8) where it lies, and the mapping copies only what ends up in a series key.
//!
//! The shape taken: every field that opentelemetry-proto 0.33 defines for the messages the
//! metrics mapping reads, in its usual wire type (packed or not for repeated numbers); string,
//! bool, int and double attribute values. Anything else answers `None` and the body is
//! decoded by prost instead (so errors, messages and rare shapes behave exactly as prost
//! decodes them): unknown fields, array/kvlist/bytes attribute values, `Metric.metadata`,
//! `Resource.entity_refs`, a message field or `data` set twice (prost would merge them), any
//! malformed byte, and a body without resource entries (empty or junk: the prost path owns
//! those messages). The differential tests (`collectors/tests/otlp_wire.rs`) decode the
//! fixtures and thousands of random, truncated and byte-flipped bodies both ways and require
//! the same view and the same mapping.

use super::view::{
    Attr, Attrs, DataView, ExpBuckets, ExpPoint, HistogramPoint, MetricView, MetricsView, Number,
    NumberPoint, ResourceView, ScopeView, SummaryPoint, Value,
};
use super::{BodyEncoding, ExportMetricsServiceRequest, OtlpError};
use std::borrow::Cow;

self_cell::self_cell!(
    /// A body and the view the borrowing decoder built over it.
    pub struct WireBody {
        owner: Vec<u8>,
        #[covariant]
        dependent: MetricsView,
    }
);

/// A decoded `/v1/metrics` protobuf body: the view over the body when the borrowing decoder
/// took it, the prost message otherwise. Owns what the view borrows, so it can move from the
/// decoding thread to the mapping.
pub enum MetricsBody {
    Wire(WireBody),
    Prost(ExportMetricsServiceRequest),
}

impl MetricsBody {
    /// Decodes an uncompressed protobuf body: the borrowing decoder first, prost (with its
    /// errors, see [`super::decode`]) for what it does not take.
    pub fn decode(bytes: &[u8]) -> Result<Self, OtlpError> {
        if let Ok(body) = WireBody::try_new(bytes.to_vec(), |b| decode_metrics(b).ok_or(())) {
            return Ok(MetricsBody::Wire(body));
        }
        super::decode(bytes, BodyEncoding::Protobuf).map(MetricsBody::Prost)
    }

    /// Runs `f` on the request's view.
    pub fn with_view<R>(&self, f: impl FnOnce(&MetricsView<'_>) -> R) -> R {
        match self {
            MetricsBody::Wire(w) => f(w.borrow_dependent()),
            MetricsBody::Prost(req) => f(&MetricsView::of(req)),
        }
    }

    /// The request's size in protobuf bytes.
    pub fn wire_len(&self) -> usize {
        match self {
            MetricsBody::Wire(w) => w.borrow_owner().len(),
            MetricsBody::Prost(req) => prost::Message::encoded_len(req),
        }
    }

    /// Whether the borrowing decoder took the body.
    pub fn is_wire(&self) -> bool {
        matches!(self, MetricsBody::Wire(_))
    }
}

/// A cursor over protobuf wire bytes.
struct Wire<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Wire<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Option<u64> {
        // One-byte varints (every key and most small values) first.
        let b = *self.buf.get(self.pos)?;
        if b < 0x80 {
            self.pos += 1;
            return Some(u64::from(b));
        }
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                // A tenth byte may only hold the top bit, as prost requires.
                return (shift < 63 || b <= 1).then_some(v);
            }
        }
        None
    }

    /// A length-delimited field's bytes.
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        let end = self.pos.checked_add(len).filter(|&e| e <= self.buf.len())?;
        let b = &self.buf[self.pos..end];
        self.pos = end;
        Some(b)
    }

    fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }

    fn fixed64(&mut self) -> Option<u64> {
        let end = self.pos.checked_add(8).filter(|&e| e <= self.buf.len())?;
        let v = u64::from_le_bytes(self.buf[self.pos..end].try_into().ok()?);
        self.pos = end;
        Some(v)
    }

    fn double(&mut self) -> Option<f64> {
        self.fixed64().map(f64::from_bits)
    }

    /// `sint32` (zigzag), as prost reads it.
    fn sint32(&mut self) -> Option<i32> {
        let v = self.varint()? as u32;
        Some(((v >> 1) as i32) ^ (-((v & 1) as i32)))
    }
}

/// Packed `fixed64`/`double` values.
fn packed_fixed64(b: &[u8], out: &mut Vec<u64>) -> Option<()> {
    if !b.len().is_multiple_of(8) {
        return None;
    }
    out.extend(
        b.chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))),
    );
    Some(())
}

fn packed_varint(b: &[u8], out: &mut Vec<u64>) -> Option<()> {
    let mut w = Wire::new(b);
    while !w.done() {
        out.push(w.varint()?);
    }
    Some(())
}

/// Decodes `bytes` when it has the shape of the module docs; `None` otherwise.
pub fn decode_metrics(bytes: &[u8]) -> Option<MetricsView<'_>> {
    let mut view = MetricsView::default();
    // Room for the attributes at once: growing the vector from empty copied it over and over
    // (a point's attribute takes 15-40 bytes on the wire; one of 32 rarely grows once more).
    view.attrs.reserve(bytes.len() / 32);
    let mut w = Wire::new(bytes);
    while !w.done() {
        if w.varint()? != 0x0a {
            return None;
        }
        let rm = resource_metrics(&mut view, w.bytes()?)?;
        view.resources.push(rm);
    }
    (!view.resources.is_empty()).then_some(view)
}

fn resource_metrics<'a>(view: &mut MetricsView<'a>, b: &'a [u8]) -> Option<ResourceView<'a>> {
    // Without a `Resource`, an empty range where its attributes would start (as prost's view).
    let at = view.attrs.len() as u32;
    let mut out = ResourceView {
        attrs: at..at,
        scopes: Vec::new(),
    };
    let mut w = Wire::new(b);
    let mut resource_seen = false;
    while !w.done() {
        match w.varint()? {
            0x0a if !resource_seen => {
                resource_seen = true;
                out.attrs = resource(view, w.bytes()?)?;
            }
            0x12 => out.scopes.push(scope_metrics(view, w.bytes()?)?),
            0x1a => {
                w.str()?;
            }
            _ => return None,
        }
    }
    Some(out)
}

fn resource<'a>(view: &mut MetricsView<'a>, b: &'a [u8]) -> Option<Attrs> {
    let start = view.attrs.len() as u32;
    let mut w = Wire::new(b);
    while !w.done() {
        match w.varint()? {
            0x0a => view.attrs.push(key_value(w.bytes()?)?),
            0x10 => {
                w.varint()?;
            }
            _ => return None,
        }
    }
    Some(start..view.attrs.len() as u32)
}

/// A `KeyValue` with a string, bool, int or double value (or none).
fn key_value(b: &[u8]) -> Option<Attr<'_>> {
    let mut w = Wire::new(b);
    let (mut key, mut value, mut value_seen) = ("", Value::Absent, false);
    while !w.done() {
        match w.varint()? {
            0x0a => key = w.str()?,
            0x12 if !value_seen => {
                value_seen = true;
                value = any_value(w.bytes()?)?;
            }
            // key_strindex (profiles only): read past, as the mapping ignores it.
            0x18 => {
                w.varint()?;
            }
            _ => return None,
        }
    }
    Some(Attr { key, value })
}

fn any_value(b: &[u8]) -> Option<Value<'_>> {
    let mut w = Wire::new(b);
    let mut value = Value::Absent;
    // A oneof of scalars: the last one set wins, as in prost.
    while !w.done() {
        value = match w.varint()? {
            0x0a => Value::Str(w.str()?),
            0x10 => Value::Bool(w.varint()? != 0),
            0x18 => Value::Int(w.varint()? as i64),
            0x21 => Value::Double(w.double()?),
            _ => return None,
        };
    }
    Some(value)
}

/// Attributes the mapping does not read (scope, exemplar): checked, not kept.
fn skip_key_value(b: &[u8]) -> Option<()> {
    key_value(b).map(|_| ())
}

fn scope_metrics<'a>(view: &mut MetricsView<'a>, b: &'a [u8]) -> Option<ScopeView<'a>> {
    let mut out = ScopeView::default();
    let mut w = Wire::new(b);
    while !w.done() {
        match w.varint()? {
            0x0a if out.scope.is_none() => out.scope = Some(scope(w.bytes()?)?),
            0x12 => out.metrics.push(metric(view, w.bytes()?)?),
            0x1a => {
                w.str()?;
            }
            _ => return None,
        }
    }
    Some(out)
}

fn scope(b: &[u8]) -> Option<(&str, &str)> {
    let mut w = Wire::new(b);
    let (mut name, mut version) = ("", "");
    while !w.done() {
        match w.varint()? {
            0x0a => name = w.str()?,
            0x12 => version = w.str()?,
            0x1a => skip_key_value(w.bytes()?)?,
            0x20 => {
                w.varint()?;
            }
            _ => return None,
        }
    }
    Some((name, version))
}

fn metric<'a>(view: &mut MetricsView<'a>, b: &'a [u8]) -> Option<MetricView<'a>> {
    let mut out = MetricView::default();
    let mut w = Wire::new(b);
    while !w.done() {
        let key = w.varint()?;
        match key {
            0x0a => out.name = w.str()?,
            0x12 => out.description = w.str()?,
            0x1a => out.unit = w.str()?,
            0x2a | 0x3a | 0x4a | 0x52 | 0x5a if out.data.is_none() => {
                out.data = Some(data(view, key, w.bytes()?)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The `data` oneof's message for field key `key`.
fn data<'a>(view: &mut MetricsView<'a>, key: u64, b: &'a [u8]) -> Option<DataView<'a>> {
    let mut w = Wire::new(b);
    let (mut temporality, mut monotonic) = (0i32, false);
    let mut out = match key {
        0x2a => DataView::Gauge(Vec::new()),
        0x3a => DataView::Sum {
            points: Vec::new(),
            temporality: 0,
            monotonic: false,
        },
        0x4a => DataView::Histogram {
            points: Vec::new(),
            temporality: 0,
        },
        0x52 => DataView::Exponential {
            points: Vec::new(),
            temporality: 0,
        },
        _ => DataView::Summary(Vec::new()),
    };
    while !w.done() {
        match (w.varint()?, &mut out) {
            (0x0a, DataView::Gauge(points) | DataView::Sum { points, .. }) => {
                points.push(number_point(view, w.bytes()?)?)
            }
            (0x0a, DataView::Histogram { points, .. }) => {
                points.push(histogram_point(view, w.bytes()?)?)
            }
            (0x0a, DataView::Exponential { points, .. }) => {
                points.push(exp_point(view, w.bytes()?)?)
            }
            (0x0a, DataView::Summary(points)) => points.push(summary_point(view, w.bytes()?)?),
            (
                0x10,
                DataView::Sum { .. } | DataView::Histogram { .. } | DataView::Exponential { .. },
            ) => temporality = w.varint()? as i32,
            (0x18, DataView::Sum { .. }) => monotonic = w.varint()? != 0,
            _ => return None,
        }
    }
    match &mut out {
        DataView::Sum {
            temporality: t,
            monotonic: m,
            ..
        } => (*t, *m) = (temporality, monotonic),
        DataView::Histogram { temporality: t, .. }
        | DataView::Exponential { temporality: t, .. } => *t = temporality,
        _ => {}
    }
    Some(out)
}

/// Checks an exemplar (only their number is kept).
fn exemplar(b: &[u8]) -> Option<()> {
    let mut w = Wire::new(b);
    while !w.done() {
        match w.varint()? {
            0x3a => skip_key_value(w.bytes()?)?,
            0x11 | 0x19 | 0x31 => {
                w.fixed64()?;
            }
            0x22 | 0x2a => {
                w.bytes()?;
            }
            _ => return None,
        }
    }
    Some(())
}

/// The range of `view.attrs` a point's attributes were pushed to, from `start` on.
fn attrs_from(view: &MetricsView<'_>, start: u32) -> Attrs {
    start..view.attrs.len() as u32
}

fn number_point<'a>(view: &mut MetricsView<'a>, b: &'a [u8]) -> Option<NumberPoint> {
    let start = view.attrs.len() as u32;
    let mut p = NumberPoint {
        attrs: start..start,
        time_unix_nano: 0,
        value: None,
        flags: 0,
        exemplars: 0,
    };
    let mut w = Wire::new(b);
    while !w.done() {
        match w.varint()? {
            0x3a => view.attrs.push(key_value(w.bytes()?)?),
            0x11 => {
                w.fixed64()?;
            }
            0x19 => p.time_unix_nano = w.fixed64()?,
            // The value oneof holds scalars: the last one set wins, as in prost.
            0x21 => p.value = Some(Number::Double(w.double()?)),
            0x31 => p.value = Some(Number::Int(w.fixed64()? as i64)),
            0x2a => {
                exemplar(w.bytes()?)?;
                p.exemplars += 1;
            }
            0x40 => p.flags = w.varint()? as u32,
            _ => return None,
        }
    }
    p.attrs = attrs_from(view, start);
    Some(p)
}

fn histogram_point<'a>(view: &mut MetricsView<'a>, b: &'a [u8]) -> Option<HistogramPoint<'a>> {
    let start = view.attrs.len() as u32;
    let (mut counts, mut bounds) = (Vec::new(), Vec::new());
    let mut p = HistogramPoint {
        attrs: start..start,
        time_unix_nano: 0,
        count: 0,
        sum: None,
        bucket_counts: Cow::Borrowed(&[]),
        explicit_bounds: Cow::Borrowed(&[]),
        flags: 0,
        exemplars: 0,
    };
    let mut w = Wire::new(b);
    while !w.done() {
        match w.varint()? {
            0x4a => view.attrs.push(key_value(w.bytes()?)?),
            0x11 | 0x59 | 0x61 => {
                w.fixed64()?;
            }
            0x19 => p.time_unix_nano = w.fixed64()?,
            0x21 => p.count = w.fixed64()?,
            0x29 => p.sum = Some(w.double()?),
            0x32 => packed_fixed64(w.bytes()?, &mut counts)?,
            0x31 => counts.push(w.fixed64()?),
            0x3a => packed_fixed64(w.bytes()?, &mut bounds)?,
            0x39 => bounds.push(w.fixed64()?),
            0x42 => {
                exemplar(w.bytes()?)?;
                p.exemplars += 1;
            }
            0x50 => p.flags = w.varint()? as u32,
            _ => return None,
        }
    }
    p.attrs = attrs_from(view, start);
    p.bucket_counts = Cow::Owned(counts);
    p.explicit_bounds = Cow::Owned(bounds.into_iter().map(f64::from_bits).collect());
    Some(p)
}

fn exp_buckets(b: &[u8]) -> Option<ExpBuckets<'static>> {
    let mut w = Wire::new(b);
    let (mut offset, mut counts) = (0, Vec::new());
    while !w.done() {
        match w.varint()? {
            0x08 => offset = w.sint32()?,
            0x12 => packed_varint(w.bytes()?, &mut counts)?,
            0x10 => counts.push(w.varint()?),
            _ => return None,
        }
    }
    Some(ExpBuckets {
        offset,
        counts: Cow::Owned(counts),
    })
}

fn exp_point<'a>(view: &mut MetricsView<'a>, b: &'a [u8]) -> Option<ExpPoint<'a>> {
    let start = view.attrs.len() as u32;
    let mut p = ExpPoint {
        attrs: start..start,
        time_unix_nano: 0,
        count: 0,
        sum: None,
        scale: 0,
        zero_count: 0,
        zero_threshold: 0.0,
        positive: None,
        negative: None,
        flags: 0,
        exemplars: 0,
    };
    let mut w = Wire::new(b);
    while !w.done() {
        match w.varint()? {
            0x0a => view.attrs.push(key_value(w.bytes()?)?),
            0x11 | 0x61 | 0x69 => {
                w.fixed64()?;
            }
            0x19 => p.time_unix_nano = w.fixed64()?,
            0x21 => p.count = w.fixed64()?,
            0x29 => p.sum = Some(w.double()?),
            0x30 => p.scale = w.sint32()?,
            0x39 => p.zero_count = w.fixed64()?,
            0x42 if p.positive.is_none() => p.positive = Some(exp_buckets(w.bytes()?)?),
            0x4a if p.negative.is_none() => p.negative = Some(exp_buckets(w.bytes()?)?),
            0x50 => p.flags = w.varint()? as u32,
            0x5a => {
                exemplar(w.bytes()?)?;
                p.exemplars += 1;
            }
            0x71 => p.zero_threshold = w.double()?,
            _ => return None,
        }
    }
    p.attrs = attrs_from(view, start);
    Some(p)
}

fn summary_point<'a>(view: &mut MetricsView<'a>, b: &'a [u8]) -> Option<SummaryPoint> {
    let start = view.attrs.len() as u32;
    let mut p = SummaryPoint {
        attrs: start..start,
        time_unix_nano: 0,
        count: 0,
        sum: 0.0,
        quantiles: Vec::new(),
        flags: 0,
    };
    let mut w = Wire::new(b);
    while !w.done() {
        match w.varint()? {
            0x3a => view.attrs.push(key_value(w.bytes()?)?),
            0x11 => {
                w.fixed64()?;
            }
            0x19 => p.time_unix_nano = w.fixed64()?,
            0x21 => p.count = w.fixed64()?,
            0x29 => p.sum = w.double()?,
            0x32 => {
                let mut q = Wire::new(w.bytes()?);
                let (mut quantile, mut value) = (0.0, 0.0);
                while !q.done() {
                    match q.varint()? {
                        0x09 => quantile = q.double()?,
                        0x11 => value = q.double()?,
                        _ => return None,
                    }
                }
                p.quantiles.push((quantile, value));
            }
            0x40 => p.flags = w.varint()? as u32,
            _ => return None,
        }
    }
    p.attrs = attrs_from(view, start);
    Some(p)
}
