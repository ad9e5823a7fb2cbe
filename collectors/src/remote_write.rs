//! Decoder for Prometheus remote_write 1.0 request bodies: snappy *block* compression around a
//! protobuf `prometheus.WriteRequest`, turned into a [`model::Batch`] with metric metadata.
//!
//! The protobuf messages are derived by hand with `prost` (see [`proto`]): `prost-build` needs
//! `protoc`, and the six messages of remote_write 1.0 are small and frozen.
//!
//! What is kept, what is dropped, and why:
//!
//! - **Samples** are kept as sent, one [`model::TimeSeries`] per wire `TimeSeries` that has
//!   samples (Prometheus 2.42 sends one sample per entry and interleaves targets, so the same
//!   series can appear several times in one request; the store merges them).
//! - **Staleness markers** (the NaN with bits [`STALE_NAN_BITS`]) are kept with exactly those
//!   bits, so the store holds what Prometheus' TSDB would hold and a reader can tell "series
//!   ended" from an ordinary NaN with [`is_stale_marker`]. Never compare with `is_nan()` alone.
//! - **Metadata** (`MetricMetadata`, sent by Prometheus in separate requests) becomes
//!   [`model::MetricMetadata`]; unknown type codes (newer senders) become `Untyped` rather than
//!   failing the request. Series themselves carry no type on the wire, so they are `Untyped`;
//!   the family's type is in the stored metadata.
//! - **Exemplars** are counted ([`WriteStats::exemplars_dropped`]) and dropped: the model has
//!   no place for them yet. Entries that carry only exemplars (Prometheus sends exemplars in
//!   separate entries with `samples: []`) therefore produce nothing.
//! - **Native histograms** (field 4 of `TimeSeries`) are refused with an error that says how to
//!   turn them off, rather than being dropped in silence: Prometheus does not retry a 4xx, so
//!   the operator sees the error in Prometheus' log instead of finding a hole later.
//! - **remote_write 2.0** bodies (`io.prometheus.write.v2.Request`, fields 4 and 5 at the top
//!   level) are refused too: read as 1.0 they would look like an empty request and be lost.
//! - A series without a `__name__`, with an empty label name or a repeated label name is an
//!   error naming the entry. Empty label values are dropped, as Prometheus treats them as
//!   absent.

use model::{
    Batch, Labels, MetricMetadata, MetricType, ResolvedSample, Sample, SeriesKey, TimeSeries,
};
use prost::Message;
use thiserror::Error;

/// Bits of Prometheus' staleness marker, a signalling NaN (`value.StaleNaN`).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Decompressed size above which a body is refused before it is inflated. Prometheus 2.42
/// sends at most 500 samples per request (about 100 KiB decoded); 256 MiB leaves room for
/// senders configured far above that while bounding what a small compressed body can claim.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 256 << 20;

/// Prometheus' staleness marker as a value.
pub fn stale_marker() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether `v` is a staleness marker (an ordinary NaN is not).
pub fn is_stale_marker(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// Why a body could not be decoded. Every message says what is wrong and what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RemoteWriteError {
    #[error("body is empty; send a snappy-compressed prometheus.WriteRequest")]
    EmptyBody,
    #[error(
        "body is not snappy-compressed: {0}; send Content-Encoding: snappy with the block format (not the framed/stream format)"
    )]
    NotSnappy(String),
    #[error(
        "body decompresses to {size} bytes, more than the limit of {limit} bytes; send smaller requests (lower queue_config.max_samples_per_send)"
    )]
    DecompressedTooLarge { size: usize, limit: usize },
    #[error("body is snappy-compressed but not a prometheus.WriteRequest protobuf: {0}")]
    NotProtobuf(String),
    #[error(
        "body is a remote_write 2.0 request (io.prometheus.write.v2.Request), which pipewatch does not accept; configure the sender for remote_write 1.0 (protobuf_message: prometheus.WriteRequest)"
    )]
    Version2,
    #[error(
        "timeseries[{index}] ({series}) carries {count} native histogram(s), which pipewatch does not store; send classic histograms (Prometheus: send_native_histograms: false, or scrape without the native-histograms feature)"
    )]
    NativeHistograms {
        index: usize,
        series: String,
        count: usize,
    },
    #[error("timeseries[{index}] has no __name__ label; every series needs a metric name")]
    MissingMetricName { index: usize },
    #[error("timeseries[{index}] has a label with an empty name; label names must not be empty")]
    EmptyLabelName { index: usize },
    #[error(
        "timeseries[{index}] ({series}) has the label {name:?} twice; label names must be unique within a series"
    )]
    DuplicateLabel {
        index: usize,
        series: String,
        name: String,
    },
    #[error("metadata[{index}] has an empty metric_family_name; name the metric family")]
    EmptyMetadataFamily { index: usize },
    /// A NUL byte: valid in a protobuf string, but PostgreSQL text cannot store it, and a
    /// series the writer cannot store must be refused here, not retried there.
    #[error(
        "timeseries[{index}] ({series}) has a NUL byte (0x00) in {place}, which PostgreSQL cannot store; remove it from the series' labels (or drop the series with write_relabel_configs)"
    )]
    NulInSeries {
        index: usize,
        series: String,
        place: String,
    },
    #[error(
        "metadata[{index}] ({family}) has a NUL byte (0x00) in its {field}, which PostgreSQL cannot store; remove it"
    )]
    NulInMetadata {
        index: usize,
        family: String,
        field: &'static str,
    },
}

/// What one request held, beyond the batch itself. Used for self-metrics and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Body size as received ([`decode_protobuf`]: the uncompressed size).
    pub compressed_bytes: usize,
    pub decompressed_bytes: usize,
    /// Wire `TimeSeries` entries, including exemplar-only ones.
    pub timeseries: usize,
    pub samples: usize,
    pub stale_markers: usize,
    pub metadata: usize,
    pub exemplars_dropped: usize,
    /// Entries with no samples (in Prometheus 2.42: the exemplar-only entries).
    pub series_without_samples: usize,
}

/// A decoded request: the batch for the ingest queue plus what it held.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecodedWrite {
    pub batch: Batch,
    /// Samples of series the caller's resolver recognised ([`decode_protobuf_resolving`]);
    /// those series are not in `batch`. Counted in `stats` like the others.
    pub resolved: Vec<ResolvedSample>,
    pub stats: WriteStats,
}

pub use crate::known::SeriesView;

/// Decodes a request body as sent with `Content-Encoding: snappy`.
///
/// The decompressed size announced in the snappy header is checked against
/// `max_decompressed_bytes` before anything is inflated.
pub fn decode(
    body: &[u8],
    max_decompressed_bytes: usize,
) -> Result<DecodedWrite, RemoteWriteError> {
    let raw = decompress(body, max_decompressed_bytes)?;
    let mut decoded = decode_protobuf(&raw)?;
    decoded.stats.compressed_bytes = body.len();
    Ok(decoded)
}

/// Snappy block decompression with the checks and messages of [`decode`].
pub fn decompress(body: &[u8], max_decompressed_bytes: usize) -> Result<Vec<u8>, RemoteWriteError> {
    let mut out = Vec::new();
    decompress_into(body, max_decompressed_bytes, &mut out)?;
    Ok(out)
}

/// [`decompress`] into `out` (replacing what it held), so a caller that inflates body after
/// body can reuse one buffer: a fresh buffer per request was written into pages the kernel
/// had to fault in first, about 5 % of the receiver's CPU in a profile.
pub fn decompress_into(
    body: &[u8],
    max_decompressed_bytes: usize,
    out: &mut Vec<u8>,
) -> Result<(), RemoteWriteError> {
    if body.is_empty() {
        return Err(RemoteWriteError::EmptyBody);
    }
    if body.starts_with(b"\xff\x06\x00\x00sNaPpY") {
        return Err(RemoteWriteError::NotSnappy(
            "it starts with the snappy stream identifier (framed format)".into(),
        ));
    }
    if body.starts_with(&[0x1f, 0x8b]) {
        return Err(RemoteWriteError::NotSnappy(
            "it looks gzip-compressed".into(),
        ));
    }
    let size =
        snap::raw::decompress_len(body).map_err(|e| RemoteWriteError::NotSnappy(e.to_string()))?;
    if size > max_decompressed_bytes {
        return Err(RemoteWriteError::DecompressedTooLarge {
            size,
            limit: max_decompressed_bytes,
        });
    }
    out.clear();
    out.resize(size, 0);
    let n = snap::raw::Decoder::new()
        .decompress(body, out)
        .map_err(|e| RemoteWriteError::NotSnappy(e.to_string()))?;
    out.truncate(n);
    Ok(())
}

/// Decodes an uncompressed `prometheus.WriteRequest`.
///
/// Requests as Prometheus sends them take [`fast::decode`], which reads labels and samples
/// straight from the body into the batch; anything else (metadata, exemplars, unsorted or
/// empty labels, unknown fields, malformed bytes, every error) is decoded again by the prost
/// path, which defines the behaviour and the messages.
pub fn decode_protobuf(bytes: &[u8]) -> Result<DecodedWrite, RemoteWriteError> {
    decode_protobuf_resolving(bytes, &mut crate::known::NoneKnown)
}

/// [`decode_protobuf`] that asks `resolve` about every series the fast path reads: a series it
/// answers with an id goes to [`DecodedWrite::resolved`] by that id and no label set is built
/// for it (a steady sender's series are nearly all known, and building their keys only to
/// look them up was most of the receiver's work). The prost path resolves nothing, so a
/// request it decodes is the same as from [`decode_protobuf`]; `resolve` may then have been
/// asked about series that are not in the answer.
pub fn decode_protobuf_resolving(
    bytes: &[u8],
    resolve: crate::known::Resolve<'_>,
) -> Result<DecodedWrite, RemoteWriteError> {
    match fast::decode(bytes, resolve) {
        Some(decoded) => Ok(decoded),
        None => decode_protobuf_prost(bytes),
    }
}

/// [`decode_protobuf`] through the prost messages of [`proto`]: every request decodes here
/// the same as through the fast path, which only takes the common shape.
pub fn decode_protobuf_prost(bytes: &[u8]) -> Result<DecodedWrite, RemoteWriteError> {
    let req = proto::WriteRequest::decode(bytes)
        .map_err(|e| RemoteWriteError::NotProtobuf(e.to_string()))?;
    if !req.rw2_symbols.is_empty() || !req.rw2_timeseries.is_empty() {
        return Err(RemoteWriteError::Version2);
    }
    if !bytes.is_empty() && req.timeseries.is_empty() && req.metadata.is_empty() {
        // Only unknown fields: prost skips them, and without this check any junk that happens
        // to parse as protobuf would be acknowledged as an empty request.
        return Err(RemoteWriteError::NotProtobuf(format!(
            "its {} bytes hold neither timeseries (field 1) nor metadata (field 3)",
            bytes.len()
        )));
    }
    let mut stats = WriteStats {
        compressed_bytes: bytes.len(),
        decompressed_bytes: bytes.len(),
        timeseries: req.timeseries.len(),
        metadata: req.metadata.len(),
        ..WriteStats::default()
    };
    let mut batch = Batch {
        series: Vec::with_capacity(req.timeseries.len()),
        metadata: Vec::with_capacity(req.metadata.len()),
    };
    for (index, ts) in req.timeseries.into_iter().enumerate() {
        if !ts.histograms.is_empty() {
            return Err(RemoteWriteError::NativeHistograms {
                index,
                series: describe(&ts.labels),
                count: ts.histograms.len(),
            });
        }
        let key = series_key(index, ts.labels)?;
        stats.exemplars_dropped += ts.exemplars.len();
        if ts.samples.is_empty() {
            stats.series_without_samples += 1;
            continue;
        }
        stats.samples += ts.samples.len();
        let samples: Vec<Sample> = ts
            .samples
            .into_iter()
            .map(|s| {
                if is_stale_marker(s.value) {
                    stats.stale_markers += 1;
                }
                Sample {
                    ts: s.timestamp,
                    value: s.value,
                }
            })
            .collect();
        batch.series.push(TimeSeries {
            key,
            metric_type: MetricType::Untyped,
            samples,
        });
    }
    for (index, m) in req.metadata.into_iter().enumerate() {
        if m.metric_family_name.is_empty() {
            return Err(RemoteWriteError::EmptyMetadataFamily { index });
        }
        for (field, text) in [
            ("metric_family_name", &m.metric_family_name),
            ("unit", &m.unit),
            ("help", &m.help),
        ] {
            if text.contains('\0') {
                return Err(RemoteWriteError::NulInMetadata {
                    index,
                    family: shown(&m.metric_family_name),
                    field,
                });
            }
        }
        batch.metadata.push(MetricMetadata {
            family: m.metric_family_name,
            metric_type: metric_type(m.r#type),
            unit: m.unit,
            help: m.help,
        });
    }
    Ok(DecodedWrite {
        batch,
        resolved: Vec::new(),
        stats,
    })
}

/// Builds the series key, checking the label rules named in the module docs.
fn series_key(index: usize, labels: Vec<proto::Label>) -> Result<SeriesKey, RemoteWriteError> {
    // Senders sort labels by name; then a strictly increasing order also proves uniqueness and
    // the general check can be skipped.
    let sorted = labels.windows(2).all(|w| w[0].name < w[1].name);
    if !sorted {
        let mut names: Vec<&str> = labels.iter().map(|l| l.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(RemoteWriteError::DuplicateLabel {
                index,
                series: describe(&labels),
                name: w[0].to_string(),
            });
        }
    }
    if let Some(bad) = labels
        .iter()
        .find(|l| l.name.contains('\0') || l.value.contains('\0'))
    {
        let place = if bad.name.contains('\0') {
            format!("the label name \"{}\"", shown(&bad.name))
        } else if bad.name == "__name__" {
            "the metric name".to_string()
        } else {
            format!("the value of label \"{}\"", shown(&bad.name))
        };
        return Err(RemoteWriteError::NulInSeries {
            index,
            series: describe(&labels),
            place,
        });
    }
    let mut metric = None;
    let mut rest = Vec::with_capacity(labels.len());
    for l in labels {
        if l.name.is_empty() {
            return Err(RemoteWriteError::EmptyLabelName { index });
        }
        if l.name == "__name__" {
            metric = Some(l.value);
        } else {
            rest.push((l.name, l.value));
        }
    }
    match metric {
        // Senders send labels sorted: then `rest` is too and is taken as it is.
        Some(m) if !m.is_empty() => Ok(SeriesKey::new(m, Labels::from_sorted(rest))),
        _ => Err(RemoteWriteError::MissingMetricName { index }),
    }
}

/// `s` for an error message: NUL bytes written as `\0`, and cut after 200 bytes with the
/// whole size (`… (N bytes)`), so a hostile label set cannot make the message (and the log
/// line) arbitrarily long.
fn shown(s: &str) -> String {
    model::clip::clip(s, model::clip::MESSAGE_VALUE_BYTES).replace('\0', "\\0")
}

/// `name{a="b",...}` of a wire label set, for error messages, cut by [`shown`] (a refused
/// series with 300,000 labels once made an 18 MB log line).
fn describe(labels: &[proto::Label]) -> String {
    let name = labels
        .iter()
        .find(|l| l.name == "__name__")
        .map(|l| l.value.as_str())
        .unwrap_or("");
    let rest = Labels::from_pairs(
        labels
            .iter()
            .filter(|l| l.name != "__name__")
            .map(|l| (l.name.as_str(), l.value.as_str())),
    );
    shown(&format!("{name}{rest}"))
}

fn metric_type(code: i32) -> MetricType {
    use proto::MetricTypeCode as C;
    match C::try_from(code) {
        Ok(C::Counter) => MetricType::Counter,
        Ok(C::Gauge) => MetricType::Gauge,
        Ok(C::Histogram) => MetricType::Histogram,
        Ok(C::Gaugehistogram) => MetricType::GaugeHistogram,
        Ok(C::Summary) => MetricType::Summary,
        Ok(C::Info) => MetricType::Info,
        Ok(C::Stateset) => MetricType::StateSet,
        Ok(C::Unknown) | Err(_) => MetricType::Untyped,
    }
}

fn type_code(t: MetricType) -> proto::MetricTypeCode {
    use proto::MetricTypeCode as C;
    match t {
        MetricType::Counter => C::Counter,
        MetricType::Gauge => C::Gauge,
        MetricType::Histogram => C::Histogram,
        MetricType::GaugeHistogram => C::Gaugehistogram,
        MetricType::Summary => C::Summary,
        MetricType::Info => C::Info,
        MetricType::StateSet => C::Stateset,
        MetricType::Untyped => C::Unknown,
    }
}

/// Encodes a batch as a remote_write 1.0 body (snappy block format), the way Prometheus does:
/// labels sorted by name with `__name__` among them. For load generators, the demo and tests.
pub fn encode(batch: &Batch) -> Vec<u8> {
    let req = proto::WriteRequest {
        timeseries: batch
            .series
            .iter()
            .map(|s| {
                let mut labels: Vec<proto::Label> =
                    std::iter::once(("__name__", s.key.metric.as_str()))
                        .chain(s.key.labels.iter())
                        .map(|(name, value)| proto::Label {
                            name: name.to_string(),
                            value: value.to_string(),
                        })
                        .collect();
                labels.sort_by(|a, b| a.name.cmp(&b.name));
                proto::TimeSeries {
                    labels,
                    samples: s
                        .samples
                        .iter()
                        .map(|x| proto::Sample {
                            value: x.value,
                            timestamp: x.ts,
                        })
                        .collect(),
                    ..Default::default()
                }
            })
            .collect(),
        metadata: batch
            .metadata
            .iter()
            .map(|m| proto::MetricMetadata {
                r#type: type_code(m.metric_type) as i32,
                metric_family_name: m.family.clone(),
                help: m.help.clone(),
                unit: m.unit.clone(),
            })
            .collect(),
        ..Default::default()
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .expect("snappy compresses any input below 4 GiB")
}

/// The decoder for requests in the shape Prometheus sends: only timeseries, each with labels
/// sorted by name (non-empty, no NUL, `__name__` among them) and samples, every field at most
/// once per message.
///
/// Why by hand and not prost: prost decodes each label into two owned `String`s inside a
/// `Vec<proto::Label>` that grows one push at a time, and those were then moved into the
/// batch's label set through another `Vec`; prost has no borrowed (`&str`) string fields, and
/// its `bytes::Bytes` fields would still need a copy into the `String`s the batch holds. Here
/// each label is checked on the body's bytes and copied once, into a label set allocated at
/// its final size. Anything outside the shape answers `None`, and the prost path decodes the
/// request (so errors, messages and rare shapes behave exactly as before).
mod fast {
    use super::{is_stale_marker, DecodedWrite, WriteStats};
    use model::{Batch, Labels, MetricType, ResolvedSample, Sample, SeriesKey, TimeSeries};

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

        fn fixed64(&mut self) -> Option<u64> {
            let end = self.pos.checked_add(8).filter(|&e| e <= self.buf.len())?;
            let v = u64::from_le_bytes(self.buf[self.pos..end].try_into().ok()?);
            self.pos = end;
            Some(v)
        }
    }

    /// A label of the body, checked: valid UTF-8, non-empty name and value, no NUL.
    fn label(buf: &[u8]) -> Option<(&str, &str)> {
        let mut w = Wire::new(buf);
        let (mut name, mut value) = (None, None);
        while !w.done() {
            match w.varint()? {
                0x0a if name.is_none() => name = Some(w.bytes()?),
                0x12 if value.is_none() => value = Some(w.bytes()?),
                _ => return None,
            }
        }
        let (name, value) = (name?, value?);
        if name.is_empty() || value.is_empty() || name.contains(&0) || value.contains(&0) {
            return None;
        }
        Some((
            std::str::from_utf8(name).ok()?,
            std::str::from_utf8(value).ok()?,
        ))
    }

    fn sample(buf: &[u8]) -> Option<Sample> {
        let mut w = Wire::new(buf);
        let (mut value, mut ts) = (None, None);
        while !w.done() {
            match w.varint()? {
                0x09 if value.is_none() => value = Some(f64::from_bits(w.fixed64()?)),
                0x10 if ts.is_none() => ts = Some(w.varint()? as i64),
                _ => return None,
            }
        }
        Some(Sample {
            ts: ts.unwrap_or(0),
            value: value.unwrap_or(0.0),
        })
    }

    /// Decodes `bytes` when it has the common shape; `None` otherwise.
    pub(super) fn decode(bytes: &[u8], resolve: crate::known::Resolve<'_>) -> Option<DecodedWrite> {
        let mut stats = WriteStats {
            compressed_bytes: bytes.len(),
            decompressed_bytes: bytes.len(),
            ..WriteStats::default()
        };
        let mut series = Vec::new();
        let mut resolved = Vec::new();
        // Reused for every series: the labels as borrowed slices, and the samples.
        let mut labels: Vec<(&str, &str)> = Vec::new();
        let mut samples: Vec<Sample> = Vec::new();
        let mut w = Wire::new(bytes);
        while !w.done() {
            if w.varint()? != 0x0a {
                return None;
            }
            let mut ts = Wire::new(w.bytes()?);
            stats.timeseries += 1;
            labels.clear();
            samples.clear();
            while !ts.done() {
                match ts.varint()? {
                    0x0a => labels.push(label(ts.bytes()?)?),
                    0x12 => samples.push(sample(ts.bytes()?)?),
                    _ => return None,
                }
            }
            // Strictly ascending names: sorted and unique, as the prost path checks.
            if !labels.windows(2).all(|p| p[0].0 < p[1].0) {
                return None;
            }
            let at = labels.iter().position(|(n, _)| *n == "__name__")?;
            let metric = labels.remove(at).1;
            if samples.is_empty() {
                stats.series_without_samples += 1;
                continue;
            }
            stats.samples += samples.len();
            stats.stale_markers += samples.iter().filter(|s| is_stale_marker(s.value)).count();
            let id = crate::known::resolve_series(resolve, metric, &labels, &samples, None);
            if let Some(series_id) = id {
                resolved.extend(samples.iter().map(|s| ResolvedSample {
                    series_id,
                    ts: s.ts,
                    value: s.value,
                }));
                continue;
            }
            let rest: Vec<(String, String)> = labels
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            series.push(TimeSeries {
                key: SeriesKey::new(metric, Labels::from_sorted(rest)),
                metric_type: MetricType::Untyped,
                samples: samples.clone(),
            });
        }
        if series.is_empty() && resolved.is_empty() && stats.series_without_samples == 0 {
            return None;
        }
        Some(DecodedWrite {
            batch: Batch {
                series,
                metadata: Vec::new(),
            },
            resolved,
            stats,
        })
    }
}

/// The protobuf messages of remote_write 1.0 (`prompb/remote.proto` and `prompb/types.proto`
/// of Prometheus 2.x), with the field numbers Prometheus uses. Fields that 1.0 does not define
/// but that must not be skipped in silence (native histograms, the 2.0 layout) are declared as
/// opaque bytes so the decoder can refuse them.
pub mod proto {
    /// `prometheus.WriteRequest`. Field 2 is reserved in 1.0.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
        #[prost(message, repeated, tag = "3")]
        pub metadata: Vec<MetricMetadata>,
        /// `symbols` of `io.prometheus.write.v2.Request`; never set by a 1.0 sender.
        #[prost(bytes = "vec", repeated, tag = "4")]
        pub rw2_symbols: Vec<Vec<u8>>,
        /// `timeseries` of `io.prometheus.write.v2.Request`; never set by a 1.0 sender.
        #[prost(bytes = "vec", repeated, tag = "5")]
        pub rw2_timeseries: Vec<Vec<u8>>,
    }

    /// `prometheus.TimeSeries`: labels sorted by name, samples in time order.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
        #[prost(message, repeated, tag = "3")]
        pub exemplars: Vec<Exemplar>,
        /// Native histograms (`prometheus.Histogram`), kept opaque: they are refused.
        #[prost(bytes = "vec", repeated, tag = "4")]
        pub histograms: Vec<Vec<u8>>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(double, tag = "1")]
        pub value: f64,
        /// Milliseconds since the Unix epoch.
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Exemplar {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(double, tag = "2")]
        pub value: f64,
        /// Milliseconds since the Unix epoch; the exemplar's own time, not the scrape's.
        #[prost(int64, tag = "3")]
        pub timestamp: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricMetadata {
        #[prost(enumeration = "MetricTypeCode", tag = "1")]
        pub r#type: i32,
        #[prost(string, tag = "2")]
        pub metric_family_name: String,
        #[prost(string, tag = "4")]
        pub help: String,
        #[prost(string, tag = "5")]
        pub unit: String,
    }

    /// `prometheus.MetricMetadata.MetricType`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum MetricTypeCode {
        Unknown = 0,
        Counter = 1,
        Gauge = 2,
        Histogram = 3,
        Gaugehistogram = 4,
        Summary = 5,
        Info = 6,
        Stateset = 7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snappy(bytes: &[u8]) -> Vec<u8> {
        snap::raw::Encoder::new().compress_vec(bytes).unwrap()
    }

    fn label(name: &str, value: &str) -> proto::Label {
        proto::Label {
            name: name.into(),
            value: value.into(),
        }
    }

    fn request(labels: Vec<proto::Label>) -> proto::WriteRequest {
        proto::WriteRequest {
            timeseries: vec![proto::TimeSeries {
                labels,
                samples: vec![proto::Sample {
                    value: 1.0,
                    timestamp: 1000,
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn decode_req(req: &proto::WriteRequest) -> Result<DecodedWrite, RemoteWriteError> {
        decode(
            &snappy(&req.encode_to_vec()),
            DEFAULT_MAX_DECOMPRESSED_BYTES,
        )
    }

    #[test]
    fn encode_then_decode_gives_the_batch_back_with_stale_bits_intact() {
        let batch = Batch {
            series: vec![TimeSeries {
                key: SeriesKey::new("up", Labels::from_pairs([("job", "a"), ("instance", "x")])),
                metric_type: MetricType::Untyped,
                samples: vec![
                    Sample { ts: 1, value: 1.5 },
                    Sample {
                        ts: 2,
                        value: stale_marker(),
                    },
                    Sample {
                        ts: 3,
                        value: f64::NEG_INFINITY,
                    },
                ],
            }],
            metadata: vec![MetricMetadata {
                family: "up".into(),
                metric_type: MetricType::Gauge,
                unit: "".into(),
                help: "target up".into(),
            }],
        };
        let d = decode(&encode(&batch), DEFAULT_MAX_DECOMPRESSED_BYTES).unwrap();
        assert_eq!(d.stats.stale_markers, 1);
        assert_eq!(d.batch.series[0].key, batch.series[0].key);
        assert_eq!(d.batch.metadata, batch.metadata);
        let bits: Vec<u64> = d.batch.series[0]
            .samples
            .iter()
            .map(|s| s.value.to_bits())
            .collect();
        let want: Vec<u64> = batch.series[0]
            .samples
            .iter()
            .map(|s| s.value.to_bits())
            .collect();
        assert_eq!(bits, want);
    }

    #[test]
    fn plain_protobuf_without_snappy_is_refused_with_the_header_hint() {
        let err = decode(
            &request(vec![label("__name__", "up")]).encode_to_vec(),
            1 << 20,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("body is not snappy-compressed: "), "{msg}");
        assert!(msg.contains("Content-Encoding: snappy"), "{msg}");
    }

    #[test]
    fn framed_snappy_is_named_as_the_wrong_snappy_format() {
        let mut framed = Vec::new();
        {
            use std::io::Write;
            let mut w = snap::write::FrameEncoder::new(&mut framed);
            w.write_all(b"hello").unwrap();
        }
        let msg = decode(&framed, 1 << 20).unwrap_err().to_string();
        assert!(msg.contains("framed"), "{msg}");
    }

    #[test]
    fn snappy_text_is_not_protobuf() {
        let msg = decode(&snappy(b"up{job=\"a\"} 1\n"), 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("body is snappy-compressed but not a prometheus.WriteRequest protobuf"),
            "{msg}"
        );
    }

    #[test]
    fn bytes_with_only_unknown_fields_are_not_an_empty_request() {
        // field 9, varint 1: valid protobuf, but nothing a WriteRequest has.
        let err = decode(&snappy(&[0x48, 0x01]), 1 << 20).unwrap_err();
        assert!(matches!(err, RemoteWriteError::NotProtobuf(_)), "{err}");
    }

    #[test]
    fn an_empty_write_request_is_valid_and_empty() {
        let d = decode(&snappy(&[]), 1 << 20).unwrap();
        assert!(d.batch.is_empty());
        assert_eq!(d.stats.timeseries, 0);
    }

    #[test]
    fn announced_size_above_the_limit_is_refused_before_inflating() {
        let body = snappy(&vec![0u8; 10_000]);
        let err = decode(&body, 1000).unwrap_err();
        assert_eq!(
            err,
            RemoteWriteError::DecompressedTooLarge {
                size: 10_000,
                limit: 1000
            }
        );
    }

    #[test]
    fn native_histograms_are_refused_with_the_series_named() {
        let mut req = request(vec![label("__name__", "lat"), label("job", "a")]);
        req.timeseries[0].histograms.push(vec![]);
        let msg = decode_req(&req).unwrap_err().to_string();
        assert!(msg.contains("timeseries[0] (lat{job=\"a\"})"), "{msg}");
        assert!(msg.contains("native histogram"), "{msg}");
    }

    #[test]
    fn remote_write_2_bodies_are_refused() {
        let req = proto::WriteRequest {
            rw2_symbols: vec![b"".to_vec(), b"__name__".to_vec()],
            ..Default::default()
        };
        assert_eq!(decode_req(&req).unwrap_err(), RemoteWriteError::Version2);
    }

    #[test]
    fn label_rules_are_enforced_with_the_entry_named() {
        assert_eq!(
            decode_req(&request(vec![label("job", "a")])).unwrap_err(),
            RemoteWriteError::MissingMetricName { index: 0 }
        );
        assert_eq!(
            decode_req(&request(vec![label("__name__", "")])).unwrap_err(),
            RemoteWriteError::MissingMetricName { index: 0 }
        );
        assert_eq!(
            decode_req(&request(vec![label("", "x"), label("__name__", "up")])).unwrap_err(),
            RemoteWriteError::EmptyLabelName { index: 0 }
        );
        let err = decode_req(&request(vec![
            label("job", "a"),
            label("__name__", "up"),
            label("job", "b"),
        ]))
        .unwrap_err();
        assert!(
            matches!(&err, RemoteWriteError::DuplicateLabel { name, .. } if name == "job"),
            "{err}"
        );
    }

    #[test]
    fn nul_bytes_in_names_and_values_are_refused_naming_series_and_label() {
        let err = decode_req(&request(vec![
            label("__name__", "up"),
            label("job", "a\0b"),
        ]))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "timeseries[0] (up{job=\"a\\0b\"}) has a NUL byte (0x00) in the value of label \"job\", which PostgreSQL cannot store; remove it from the series' labels (or drop the series with write_relabel_configs)"
        );
        let err =
            decode_req(&request(vec![label("__name__", "up\0"), label("job", "a")])).unwrap_err();
        assert!(err.to_string().contains("in the metric name"), "{err}");
        let err =
            decode_req(&request(vec![label("__name__", "up"), label("j\0b", "a")])).unwrap_err();
        assert!(
            err.to_string().contains("in the label name \"j\\0b\""),
            "{err}"
        );
        // Every other character is valid UTF-8 that PostgreSQL stores.
        decode_req(&request(vec![
            label("__name__", "up"),
            label("job", "\u{1}\u{FFFF}é"),
        ]))
        .unwrap();
        let mut req = request(vec![label("__name__", "up")]);
        req.metadata.push(proto::MetricMetadata {
            r#type: 0,
            metric_family_name: "up".into(),
            help: "Up\0.".into(),
            unit: String::new(),
        });
        assert_eq!(
            decode_req(&req).unwrap_err(),
            RemoteWriteError::NulInMetadata {
                index: 0,
                family: "up".into(),
                field: "help"
            }
        );
    }

    /// A decode result in a form `==` can compare (sample values by their bits: the staleness
    /// marker is a NaN).
    fn comparable(r: Result<DecodedWrite, RemoteWriteError>) -> String {
        match r {
            Ok(d) => {
                let series: Vec<_> = d
                    .batch
                    .series
                    .iter()
                    .map(|s| {
                        let samples: Vec<_> = s
                            .samples
                            .iter()
                            .map(|x| (x.ts, x.value.to_bits()))
                            .collect();
                        format!("{:?} {:?} {samples:?}", s.key, s.metric_type)
                    })
                    .collect();
                format!("ok {series:?} {:?} {:?}", d.batch.metadata, d.stats)
            }
            Err(e) => format!("err {e:?}"),
        }
    }

    #[test]
    fn the_fast_path_decodes_every_body_as_the_prost_path_does() {
        // Requests of every shape the fast path takes or hands on (unsorted, repeated and
        // empty labels, NUL bytes, no __name__, exemplar-only entries, metadata, histograms,
        // staleness markers), then each body cut short and with bytes changed at random.
        let mut x: u64 = 0x853c_49e6_748f_ea9b;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let names = ["__name__", "a", "b", "job", "le", ""];
        let values = ["up", "x", "", "a\0b", "y"];
        let (mut fast_taken, mut cases, mut resolved_rows) = (0, 0, 0);
        for _ in 0..1500 {
            let mut req = proto::WriteRequest::default();
            for _ in 0..next(4) {
                let mut labels: Vec<proto::Label> = (0..next(5))
                    .map(|_| {
                        label(
                            names[next(names.len() as u64) as usize],
                            &values[next(values.len() as u64) as usize].replace("\\0", "\0"),
                        )
                    })
                    .collect();
                if next(2) == 0 {
                    // The shape Prometheus sends.
                    labels = vec![label("__name__", "m"), label("job", "j")];
                    labels.truncate(1 + next(2) as usize);
                } else if next(3) > 0 {
                    labels.push(label("__name__", "m"));
                    labels.sort_by(|a, b| a.name.cmp(&b.name));
                    labels.dedup_by(|a, b| a.name == b.name);
                }
                let samples = (0..next(3))
                    .map(|i| proto::Sample {
                        value: if next(4) == 0 {
                            stale_marker()
                        } else {
                            i as f64 * 1.5
                        },
                        timestamp: 1_000 * i as i64 - next(2) as i64 * 5_000,
                    })
                    .collect();
                let exemplars = if next(8) == 0 {
                    vec![proto::Exemplar::default()]
                } else {
                    vec![]
                };
                let histograms = if next(20) == 0 { vec![vec![1]] } else { vec![] };
                req.timeseries.push(proto::TimeSeries {
                    labels,
                    samples,
                    exemplars,
                    histograms,
                });
            }
            if next(10) == 0 {
                req.metadata.push(proto::MetricMetadata {
                    r#type: 2,
                    metric_family_name: "m".into(),
                    ..Default::default()
                });
            }
            let body = req.encode_to_vec();
            let mut bodies = vec![body.clone()];
            if !body.is_empty() {
                bodies.push(body[..next(body.len() as u64) as usize].to_vec());
                let mut changed = body.clone();
                for _ in 0..1 + next(3) {
                    let i = next(changed.len() as u64) as usize;
                    changed[i] = next(256) as u8;
                }
                bodies.push(changed);
            }
            for b in bodies {
                cases += 1;
                fast_taken += usize::from(fast::decode(&b, &mut crate::known::NoneKnown).is_some());
                assert_eq!(
                    comparable(decode_protobuf(&b)),
                    comparable(decode_protobuf_prost(&b)),
                    "{b:?}"
                );
                // Resolving every other series the fast path reads (by its key's stable id)
                // hands over the same samples, with the same keys behind the ids.
                let mut keys = std::collections::HashMap::new();
                let resolving = decode_protobuf_resolving(&b, &mut |v: &SeriesView<'_>| {
                    let key = SeriesKey::new(
                        v.metric,
                        Labels::from_sorted(
                            v.labels
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.to_string()))
                                .collect(),
                        ),
                    );
                    assert!(key.with_encoding(|e| e == v.encoding), "{key}");
                    let id = key.stable_id();
                    (id % 2 == 0).then(|| {
                        keys.insert(id, key.to_string());
                        id
                    })
                });
                resolved_rows += resolving.as_ref().map_or(0, |d| d.resolved.len());
                assert_eq!(
                    expanded(resolving, &keys),
                    expanded(decode_protobuf_prost(&b), &keys),
                    "{b:?}"
                );
            }
        }
        // Both paths were exercised, and the resolver took series.
        assert!(
            fast_taken > cases / 20 && fast_taken < cases,
            "{fast_taken} of {cases}"
        );
        assert!(resolved_rows > cases / 20, "{resolved_rows} of {cases}");
    }

    /// A decode result as sorted (key, timestamp, value bits) lines, resolved samples under
    /// the keys their ids were given for, with metadata and stats.
    fn expanded(
        r: Result<DecodedWrite, RemoteWriteError>,
        keys: &std::collections::HashMap<i64, String>,
    ) -> String {
        match r {
            Ok(d) => {
                let mut lines: Vec<String> =
                    d.batch
                        .series
                        .iter()
                        .flat_map(|s| {
                            s.samples
                                .iter()
                                .map(move |x| format!("{} {} {}", s.key, x.ts, x.value.to_bits()))
                        })
                        .chain(d.resolved.iter().map(|r| {
                            format!("{} {} {}", keys[&r.series_id], r.ts, r.value.to_bits())
                        }))
                        .collect();
                lines.sort();
                format!("ok {lines:?} {:?} {:?}", d.batch.metadata, d.stats)
            }
            Err(e) => format!("err {e:?}"),
        }
    }

    #[test]
    fn unsorted_labels_are_accepted_and_sorted() {
        let d = decode_req(&request(vec![
            label("zone", "z"),
            label("__name__", "up"),
            label("app", "a"),
            label("empty", ""),
        ]))
        .unwrap();
        let key = &d.batch.series[0].key;
        assert_eq!(key.metric, "up");
        assert_eq!(
            key.labels.iter().collect::<Vec<_>>(),
            vec![("app", "a"), ("zone", "z")]
        );
    }

    #[test]
    fn unknown_metadata_type_codes_become_untyped() {
        let req = proto::WriteRequest {
            metadata: vec![proto::MetricMetadata {
                r#type: 42,
                metric_family_name: "m".into(),
                help: "h".into(),
                unit: "seconds".into(),
            }],
            ..Default::default()
        };
        let d = decode_req(&req).unwrap();
        assert_eq!(d.batch.metadata[0].metric_type, MetricType::Untyped);
        assert_eq!(d.batch.metadata[0].unit, "seconds");
    }
}
