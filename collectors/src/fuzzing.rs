//! What the cargo-fuzz targets (`fuzz/`) check, shared with the regression tests that replay
//! the inputs fuzzing found (`collectors/tests/fuzz_regressions.rs`). Each function takes
//! untrusted bytes: a decoder may refuse them, but must not panic, and what it accepts must be
//! well-formed (the asserts below).

use crate::otlp::{self, BodyEncoding};
use model::Batch;

/// Labels sorted, unique and non-empty, metric names set: what the store relies on.
fn assert_well_formed(batch: &Batch) {
    for s in &batch.series {
        assert!(!s.key.metric.is_empty(), "series without a metric name");
        let names: Vec<&str> = s.key.labels.iter().map(|(k, _)| k).collect();
        assert!(
            names.windows(2).all(|w| w[0] < w[1]),
            "labels not sorted and unique: {names:?}"
        );
        assert!(s.key.labels.iter().all(|(_, v)| !v.is_empty()));
    }
}

/// Prometheus text 0.0.4 and OpenMetrics.
pub fn prometheus_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    use crate::prometheus_text::{parse, Format};
    for format in [Format::Text004, Format::OpenMetrics] {
        if let Ok(batch) = parse(text, format, 1_700_000_000_000) {
            assert_well_formed(&batch);
        }
    }
}

/// remote_write, as a snappy body and as the bare protobuf; an accepted request re-encodes and
/// decodes to the same series, bit for bit.
pub fn remote_write(data: &[u8]) {
    use crate::remote_write::{decode, decode_protobuf, encode};
    let _ = decode(data, 1 << 20);
    if let Ok(d) = decode_protobuf(data) {
        assert_well_formed(&d.batch);
        let again = decode(&encode(&d.batch), 64 << 20).expect("our own encoding decodes");
        assert_eq!(again.batch.series.len(), d.batch.series.len());
        for (a, b) in again.batch.series.iter().zip(&d.batch.series) {
            assert_eq!(a.key, b.key);
            let bits = |s: &model::TimeSeries| -> Vec<(i64, u64)> {
                s.samples
                    .iter()
                    .map(|x| (x.ts, x.value.to_bits()))
                    .collect()
            };
            assert_eq!(bits(a), bits(b));
        }
    }
}

/// OTLP bodies of all three signals in one encoding, decoded and mapped the way the receivers
/// map them (metrics to series, traces to span metrics and evidence, logs to counts).
fn otlp(data: &[u8], encoding: BodyEncoding) {
    if let Ok(req) = otlp::decode_metrics(data, encoding) {
        let mapped = otlp::metrics::DeltaAccumulator::default().map(&req);
        assert_well_formed(&mapped.batch);
    }
    if let Ok(req) = otlp::decode_traces(data, encoding) {
        let _ = otlp::traces::derive_traces(&req, &Default::default());
    }
    if let Ok(req) = otlp::decode_logs(data, encoding) {
        let _ = otlp::logs::derive_logs(&req, &Default::default());
    }
}

/// OTLP protobuf (`application/x-protobuf`), and the borrowing metrics decoder against
/// prost ([`otlp_wire_vs_prost`]).
pub fn otlp_protobuf(data: &[u8]) {
    otlp(data, BodyEncoding::Protobuf);
    otlp_wire_vs_prost(data);
}

/// How [`otlp_wire_vs_prost`] found a body decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MetricsDecode {
    /// The borrowing decoder took it.
    Wire,
    /// It went to prost, which decoded it.
    Prost,
    /// Refused (by prost, with the same message either way).
    Refused,
}

/// The borrowing OTLP metrics decoder ([`otlp::wire`]) against prost on one protobuf body:
/// when the borrowing decoder takes it, prost decodes it too and to the same view; the
/// receiver's decoding ([`otlp::wire::MetricsBody`]) and prost's refuse it with the same
/// message or map it alike: every series with its samples to the bit, the metadata, the
/// counts, the rejection messages and the pending delta totals, on a first mapping and on a
/// second one after the first one's totals are committed (which refuses the repeated delta
/// points).
pub fn otlp_wire_vs_prost(data: &[u8]) -> MetricsDecode {
    use crate::otlp::metrics::{DeltaAccumulator, MappedMetrics};
    use crate::otlp::view::MetricsView;
    use crate::otlp::wire::{decode_metrics, MetricsBody};
    let prost = otlp::decode_metrics(data, BodyEncoding::Protobuf);
    if let Some(view) = decode_metrics(data) {
        let req = prost
            .as_ref()
            .expect("the borrowing decoder took a body prost refuses");
        assert_eq!(format!("{view:?}"), format!("{:?}", MetricsView::of(req)));
    }
    fn digest(m: &MappedMetrics) -> String {
        let series: Vec<String> = m
            .batch
            .series
            .iter()
            .map(|s| {
                let samples: Vec<(i64, u64)> = s
                    .samples
                    .iter()
                    .map(|x| (x.ts, x.value.to_bits()))
                    .collect();
                format!("{} {:?} {samples:?}", s.key, s.metric_type)
            })
            .collect();
        format!(
            "{series:#?}\n{:#?}\naccepted {} rejected {} exemplars {}\n{:?}\n{:?}",
            m.batch.metadata,
            m.accepted_points,
            m.rejected_points,
            m.exemplars_dropped,
            m.rejection_message(),
            m.pending.describe(),
        )
    }
    fn twice(map: impl Fn(&DeltaAccumulator) -> MappedMetrics) -> (String, String) {
        let mut acc = DeltaAccumulator::default();
        let mut first = map(&acc);
        let a = digest(&first);
        acc.commit(std::mem::take(&mut first.pending));
        (a, digest(&map(&acc)))
    }
    match (MetricsBody::decode(data), &prost) {
        (Err(a), Err(b)) => {
            assert_eq!(&a, b);
            MetricsDecode::Refused
        }
        (Ok(body), Ok(req)) => {
            let all = |v: &MetricsView<'_>| (0..v.resources.len()).collect::<Vec<_>>();
            let ours = body.with_view(|v| twice(|acc| acc.map_view(v, &all(v))));
            assert_eq!(ours, twice(|acc| acc.map(req)));
            body.with_view(otlp_known_series_vs_built);
            if body.is_wire() {
                MetricsDecode::Wire
            } else {
                MetricsDecode::Prost
            }
        }
        (ours, theirs) => panic!(
            "the receiver's decoding and prost disagree: {:?} vs {:?}",
            ours.err(),
            theirs.as_ref().err()
        ),
    }
}

/// The OTLP metrics mapping with a resolver that holds about half the series by id
/// ([`crate::known`]) equals the mapping without one: every sample, of a built series or
/// taken by id, under the same key with the same timestamp and value bits; the same counts,
/// metadata, rejection message and delta totals. Every series handed to the resolver has
/// sorted, unique, non-empty labels and the encoding of its `SeriesKey` (what the store
/// registers). The request is mapped twice with one resolver, which remembers the raw bytes
/// of the series it answered: the second time, series are recognised by their raw bytes
/// before their keys are built, and one raw form must never name two series. Returns what
/// was taken by id the second time.
pub fn otlp_known_series_vs_built(view: &crate::otlp::view::MetricsView<'_>) -> KnownSeriesTaken {
    use crate::known::{Known, SeriesView};
    use crate::otlp::metrics::{DeltaAccumulator, MappedMetrics};
    use model::{Labels, Sample, SeriesKey};
    use std::collections::HashMap;

    #[derive(Default)]
    struct HalfKnown {
        ids: HashMap<Vec<u8>, i64>,
        keys: Vec<SeriesKey>,
        raw: HashMap<Vec<u8>, i64>,
        raw_hits: usize,
    }
    impl Known for HalfKnown {
        fn id(&mut self, s: &SeriesView<'_>) -> Option<i64> {
            assert!(
                s.labels.windows(2).all(|w| w[0].0 < w[1].0),
                "labels not sorted and unique: {:?}",
                s.labels
            );
            assert!(
                s.labels.iter().all(|(_, v)| !v.is_empty()),
                "{:?}",
                s.labels
            );
            let owned = s.labels.iter().map(|(k, v)| (k.to_string(), v.to_string()));
            let key = SeriesKey::new(s.metric, Labels::from_sorted(owned.collect()));
            assert!(
                key.with_encoding(|e| e == s.encoding),
                "the encoding handed to the resolver is not {key}'s"
            );
            // A resolver answers only series the store holds, and PostgreSQL text holds no
            // NUL.
            if xxhash_rust::xxh3::xxh3_64(s.encoding) % 2 == 1 || s.encoding.contains(&0) {
                return None;
            }
            let next = self.keys.len() as i64;
            let id = *self.ids.entry(s.encoding.to_vec()).or_insert(next);
            if id == next {
                self.keys.push(key);
            }
            if let Some(raw) = s.raw {
                let before = *self.raw.entry(raw.to_vec()).or_insert(id);
                assert_eq!(
                    before, id,
                    "one raw form names two series: {} and {}",
                    self.keys[before as usize], self.keys[id as usize]
                );
            }
            Some(id)
        }

        fn id_raw(&mut self, raw: &[u8], samples: &[Sample]) -> Option<i64> {
            assert_eq!(samples.len(), 1);
            let id = self.raw.get(raw).copied();
            self.raw_hits += usize::from(id.is_some());
            id
        }
    }

    let all: Vec<usize> = (0..view.resources.len()).collect();
    let acc = DeltaAccumulator::default();
    let built = acc.map_view(view, &all);
    let mut known = HalfKnown::default();
    let first = acc.map_view_resolving(view, &all, Some(&mut known));
    let raw_hits_first = known.raw_hits;
    let again = acc.map_view_resolving(view, &all, Some(&mut known));
    let samples = |m: &MappedMetrics, keys: &[SeriesKey]| {
        let mut out: Vec<(String, i64, u64)> = m
            .batch
            .series
            .iter()
            .flat_map(|s| {
                s.samples
                    .iter()
                    .map(|x| (s.key.to_string(), x.ts, x.value.to_bits()))
            })
            .chain(m.resolved.iter().map(|r| {
                let key = keys[r.series_id as usize].to_string();
                (key, r.ts, r.value.to_bits())
            }))
            .collect();
        out.sort();
        out
    };
    let rest = |m: &MappedMetrics| {
        format!(
            "{:?} {} {} {} {:?} {:?}",
            m.batch.metadata,
            m.accepted_points,
            m.rejected_points,
            m.exemplars_dropped,
            m.rejection_message(),
            m.pending.describe()
        )
    };
    assert!(built.resolved.is_empty());
    for m in [&first, &again] {
        assert_eq!(samples(m, &known.keys), samples(&built, &[]));
        assert_eq!(rest(m), rest(&built));
    }
    KnownSeriesTaken {
        by_id: again.resolved.len(),
        by_raw: known.raw_hits - raw_hits_first,
    }
}

/// What [`otlp_known_series_vs_built`]'s second mapping took by id.
#[derive(Debug, Clone, Copy)]
pub struct KnownSeriesTaken {
    /// Samples taken by id.
    pub by_id: usize,
    /// Of those, samples whose series was recognised by its raw bytes.
    pub by_raw: usize,
}

/// OTLP/JSON (`application/json`).
pub fn otlp_json(data: &[u8]) {
    otlp(data, BodyEncoding::Json);
}

/// Great Expectations, dbt and Soda results, detected or forced to each tool.
pub fn dq(data: &[u8]) {
    let _ = crate::dq::detect_and_parse(data, None);
    let _ = crate::dq::parse_gx(data);
    let _ = crate::dq::parse_dbt(data);
    let _ = crate::dq::parse_soda(data);
}

/// OpenLineage events (one or an array) and the series built from their facets.
pub fn openlineage(data: &[u8]) {
    if let Ok(events) = crate::openlineage::decode(data) {
        for e in &events {
            for s in crate::openlineage::facet_series(e) {
                assert!(!s.key.metric.is_empty());
            }
        }
    }
}

/// Alertmanager v2 `postableAlerts`.
pub fn alerts(data: &[u8]) {
    let _ = crate::alerts::decode(data);
}

/// A fuzz target's check.
pub type Check = fn(&[u8]);

/// Every check by fuzz-target name, for the regression tests.
pub const TARGETS: &[(&str, Check)] = &[
    ("prometheus_text", prometheus_text),
    ("remote_write", remote_write),
    ("otlp_protobuf", otlp_protobuf),
    ("otlp_json", otlp_json),
    ("dq", dq),
    ("openlineage", openlineage),
    ("alerts", alerts),
];
