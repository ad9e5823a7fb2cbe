//! OTLP metrics to Prometheus-style series, following the OpenTelemetry specification
//! "Prometheus and OpenMetrics Compatibility" and Prometheus' own `otlptranslator` (with
//! metric suffixes, underscore escaping):
//!
//! - **Names**: split on every character that is not an ASCII letter or digit, joined with
//!   `_` (`etl.rows.processed` → `etl_rows_processed`); the unit is appended as a word unless
//!   the name already holds it (`s` → `_seconds`, `ms` → `_milliseconds`, `By` → `_bytes`,
//!   `MiBy` → `_mebibytes`, `a/s` → `_a_per_second`, `{row}`-style annotations dropped,
//!   `1` → `_ratio` for gauges only); counters end in `_total`.
//! - **Labels**: point attributes, sanitised the same way (`http.route` → `http_route`; a
//!   leading digit gets `key_`); two attributes that sanitise to one name have their values
//!   joined with `;`. Scope name and version become `otel_scope_name`/`otel_scope_version`.
//!   `job` is `service.namespace/service.name` (or `service.name`; `unknown_service`, the
//!   OpenTelemetry default, when the resource has none), `instance` is
//!   `service.instance.id`; they win over point attributes of the same name. The same
//!   [`ResourceIdentity`](super::attributes::ResourceIdentity) labels span and log counters,
//!   so the three signals of one service join on `job`. The other
//!   resource attributes go to one `target_info` series per resource (value 1), not to every
//!   series.
//! - **Types**: gauge → gauge; monotonic sum → counter (`_total`); non-monotonic sum → gauge;
//!   histogram → `_bucket{le}`, `_sum`, `_count`; summary → `{quantile}` series plus `_sum`
//!   and `_count`. Histogram `min`/`max` are not stored: for cumulative streams they cover the
//!   stream's whole life, for delta streams one interval, and neither can be merged into the
//!   bucket series that quantiles are computed from.
//! - **Exponential histograms** are stored as classic `le` buckets, so the same quantile code
//!   serves both kinds. A point's buckets are first merged down to scale
//!   [`EXPONENTIAL_TARGET_SCALE`] (3: bucket bounds grow by 2^(1/8) ≈ 9 %), exactly, by
//!   adding neighbouring buckets; points already coarser keep their scale, whose bounds are a
//!   subset of the scale-3 bounds, so `le` values stay on one grid when the SDK lowers the
//!   scale between collections. Bucket `i` becomes `le = 2^((i+1)·2^-scale)`; the zero bucket
//!   becomes `le = zero_threshold` (counting all negative values too); negative buckets, when
//!   any are populated, become negative `le` bounds.
//! - **Delta temporality** (sums and histograms) is turned into cumulative series by a
//!   [`DeltaAccumulator`] kept in memory, keyed by the output series: each delta adds to the
//!   running total. A point not newer than the last one added for its series is refused (a
//!   retried request must not count twice). A restart of pipewatch forgets the totals, so
//!   the series start again from the next delta: to a reader that is a counter reset, which
//!   `rate()`-style functions already handle.
//! - Points flagged `NO_RECORDED_VALUE` become Prometheus staleness markers (number points);
//!   other point kinds with that flag are skipped.
//! - Exemplars are counted and dropped (the model has no place for them yet).
//!
//! Points that cannot be mapped (no value, no timestamp, unspecified temporality, bucket
//! counts that do not match the bounds, a NUL byte in a label value, which PostgreSQL text
//! cannot store, ...) are refused one by one and reported, so the receiver can answer with
//! OTLP `partial_success` instead of failing the whole request. (Label names and metric names
//! cannot hold a NUL: sanitising turns it into `_`.)
//!
//! The mapping is split by concern: `naming` (names and units), `exponential`
//! (exponential histograms), `delta` (delta accumulation), and
//! [`attributes`](super::attributes) (attributes to labels, shared with traces and logs).

mod delta;
mod exponential;
mod naming;

pub use super::attributes::{any_value_string, format_float, label_name};
pub use delta::{DeltaAccumulator, DeltaUpdates, DEFAULT_MAX_DELTA_SERIES};
pub use exponential::{ExpHistogram, EXPONENTIAL_TARGET_SCALE};
pub use naming::prometheus_unit;

use super::attributes::{
    storable_text, unstorable_label, value_string, view_attribute_labels, ResourceIdentity,
};
use super::view::{
    put_raw_attrs, Attr, DataView, HistogramPoint, MetricView, MetricsView, Number, NumberPoint,
};
use crate::known::{put_raw, resolve_series, Resolve};
use crate::remote_write::stale_marker;
use delta::DeltaState;
use model::{
    Batch, Labels, MetricMetadata, MetricType, ResolvedSample, Sample, SeriesKey, TimeSeries,
};
use naming::{metric_name, NameKind};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

/// Rejection messages kept per request (the count is always exact).
const MAX_MESSAGES: usize = 5;

const AGGREGATION_DELTA: i32 = 1;
const AGGREGATION_CUMULATIVE: i32 = 2;
/// `DataPointFlags.FLAG_NO_RECORDED_VALUE`.
const FLAG_NO_RECORDED_VALUE: u32 = 1;

/// What one request mapped to.
#[derive(Debug, Default)]
pub struct MappedMetrics {
    pub batch: Batch,
    /// Samples of series the caller's resolver recognised
    /// ([`DeltaAccumulator::map_view_resolving`]); those series are not in `batch`.
    pub resolved: Vec<ResolvedSample>,
    /// Data points turned into samples.
    pub accepted_points: usize,
    /// Data points refused; [`MappedMetrics::rejection_message`] says why.
    pub rejected_points: usize,
    /// The first few distinct reasons.
    pub rejections: Vec<String>,
    pub exemplars_dropped: usize,
    /// Running totals to store in the accumulator once the batch is accepted.
    pub pending: DeltaUpdates,
}

impl MappedMetrics {
    /// The OTLP `partial_success.error_message`, when points were refused.
    pub fn rejection_message(&self) -> Option<String> {
        (self.rejected_points > 0).then(|| {
            format!(
                "{} data point(s) rejected: {}",
                self.rejected_points,
                self.rejections.join("; ")
            )
        })
    }

    fn reject(&mut self, points: usize, why: String) {
        self.rejected_points += points;
        if self.rejections.len() < MAX_MESSAGES && !self.rejections.contains(&why) {
            self.rejections.push(why);
        }
    }
}

impl DeltaAccumulator {
    /// Maps a request without changing the accumulator; the new totals are in
    /// [`MappedMetrics::pending`]. Commit them only once the batch has been accepted, so a
    /// request refused with 429/503 and retried is not counted twice.
    pub fn map(&self, req: &ExportMetricsServiceRequest) -> MappedMetrics {
        let view = MetricsView::of(req);
        let all: Vec<usize> = (0..view.resources.len()).collect();
        self.map_view(&view, &all)
    }

    /// [`Self::map`] of the resources `resources` (indexes, in the order given) of a view:
    /// the mapping itself, whichever decoder built the view.
    pub fn map_view(&self, view: &MetricsView<'_>, resources: &[usize]) -> MappedMetrics {
        self.map_view_resolving(view, resources, None)
    }

    /// [`Self::map_view`] that hands each series of a gauge, cumulative sum, histogram or
    /// summary point to `resolve` before it builds the series' label set
    /// ([`crate::known`]): the samples of series it answers go to
    /// [`MappedMetrics::resolved`] as (id, timestamp, value). Delta sums and `target_info`
    /// are always built (the running totals are kept by series key).
    pub fn map_view_resolving(
        &self,
        view: &MetricsView<'_>,
        resources: &[usize],
        resolve: Option<Resolve<'_>>,
    ) -> MappedMetrics {
        Mapper {
            acc: self,
            view,
            out: MappedMetrics::default(),
            metadata: BTreeMap::new(),
            series: SeriesIndex::default(),
            resolve,
            raw: Vec::new(),
            raw_metric: None,
        }
        .run(resources)
    }
}

/// Maps and commits at once: for callers with nothing that can refuse the batch afterwards.
pub fn map_metrics(req: &ExportMetricsServiceRequest, acc: &mut DeltaAccumulator) -> MappedMetrics {
    let mut mapped = acc.map(req);
    acc.commit(std::mem::take(&mut mapped.pending));
    mapped
}

struct Mapper<'a, 'r> {
    acc: &'a DeltaAccumulator,
    /// The request; its attributes are borrowed until the one copy into a series key.
    view: &'a MetricsView<'a>,
    out: MappedMetrics,
    metadata: BTreeMap<String, MetricMetadata>,
    /// Repeated keys share one entry of `out.batch.series`: see [`SeriesIndex`].
    series: SeriesIndex,
    /// Recognises series the caller holds by id ([`crate::known`]).
    resolve: Option<Resolve<'r>>,
    /// The raw bytes of the series being resolved ([`crate::known`]): the metric's part (its
    /// Prometheus name and the labels that go over its points' attributes), then a point's
    /// attributes as they were sent.
    raw: Vec<u8>,
    /// The length of the metric's part of `raw`, while the points of a gauge or a cumulative
    /// sum are mapped with a resolver.
    raw_metric: Option<usize>,
}

/// Finds the entry of `out.batch.series` with a given key without keeping a second copy of
/// every key (cloning each key into a `HashMap<SeriesKey, usize>` was a deep copy of its
/// strings per series): a hash of the key leads to the first entry with that hash, and
/// `next` chains the entries whose keys share a hash, each compared with the key itself.
#[derive(Default)]
struct SeriesIndex {
    first: HashMap<u64, usize>,
    /// Per entry of `out.batch.series`: the next entry with the same hash.
    next: Vec<Option<usize>>,
}

impl SeriesIndex {
    fn hash(key: &SeriesKey) -> u64 {
        // One-shot xxh3 over the key's encoding: a streaming hasher's state and per-part
        // updates cost more than the hashing itself for keys this short.
        key.with_encoding(xxhash_rust::xxh3::xxh3_64)
    }

    /// The entry of `series` with `key`, or `None` after recording that `key` will be the
    /// entry `series.len()`.
    fn find_or_note(&mut self, series: &[TimeSeries], key: &SeriesKey) -> Option<usize> {
        let h = Self::hash(key);
        let mut at = self.first.get(&h).copied();
        while let Some(i) = at {
            if series[i].key == *key {
                return Some(i);
            }
            at = self.next[i];
        }
        // New: it goes to the front of its hash's chain.
        self.next.push(self.first.insert(h, series.len()));
        None
    }
}

impl Mapper<'_, '_> {
    fn run(mut self, resources: &[usize]) -> MappedMetrics {
        let view = self.view;
        // Room for one series per data point, the usual case (a histogram point makes more):
        // growing the vector from empty copied every series several times over.
        let points: usize = resources
            .iter()
            .flat_map(|&i| &view.resources[i].scopes)
            .flat_map(|sm| &sm.metrics)
            .map(|m| match &m.data {
                Some(DataView::Gauge(p)) | Some(DataView::Sum { points: p, .. }) => p.len(),
                _ => 0,
            })
            .sum();
        if self.resolve.is_some() {
            // Most series of a steady sender are known: their samples go by id.
            self.out.resolved.reserve(points);
        } else {
            self.out.batch.series.reserve(points);
            self.series.next.reserve(points);
        }
        for &i in resources {
            let rm = &view.resources[i];
            let resource_attrs = view.attrs(&rm.attrs);
            let ResourceIdentity { job, instance, .. } = ResourceIdentity::of_view(resource_attrs);
            let mut latest_ms: Option<i64> = None;
            for sm in &rm.scopes {
                let mut base = Labels::new();
                if let Some((name, version)) = sm.scope {
                    base.insert("otel_scope_name", name);
                    base.insert("otel_scope_version", version);
                }
                let over = over_attributes(&base, &job, &instance);
                for m in &sm.metrics {
                    let ts = self.metric(m, &over);
                    latest_ms = latest_ms.max(ts);
                }
            }
            if let Some(ts) = latest_ms {
                self.target_info(resource_attrs, &job, &instance, ts);
            }
        }
        let mut out = self.out;
        out.batch.metadata = self.metadata.into_values().collect();
        out
    }

    /// Emits one `target_info` sample for the resource's attributes other than the ones
    /// that became `job` and `instance`.
    fn target_info(&mut self, attrs: &[Attr<'_>], job: &str, instance: &str, ts: i64) {
        let rest: Vec<&Attr<'_>> = attrs
            .iter()
            .filter(|a| {
                !matches!(
                    a.key,
                    "service.name" | "service.namespace" | "service.instance.id"
                )
            })
            .collect();
        if rest.is_empty() {
            return;
        }
        let mut labels = view_attribute_labels(rest.into_iter());
        labels.insert("job", job);
        labels.insert("instance", instance);
        if let Some(bad) = unstorable_label(&labels) {
            // Not a data point of the sender's, so nothing to count as rejected.
            self.out
                .reject(0, format!("target_info of job {job:?} not stored: {bad}"));
            return;
        }
        self.meta("target_info", MetricType::Gauge, "", "Target metadata");
        self.push(
            SeriesKey::new("target_info", labels),
            MetricType::Gauge,
            ts,
            1.0,
        );
    }

    fn meta(&mut self, family: &str, t: MetricType, unit: &str, help: &str) {
        // Most metrics of a request repeat a family already noted: no copy of its name then.
        if self.metadata.contains_key(family) {
            return;
        }
        self.metadata
            .entry(family.to_string())
            .or_insert_with(|| MetricMetadata {
                family: family.to_string(),
                metric_type: t,
                unit: unit.to_string(),
                help: help.to_string(),
            });
    }

    fn push(&mut self, key: SeriesKey, t: MetricType, ts: i64, value: f64) {
        let sample = Sample { ts, value };
        if let Some(i) = self.series.find_or_note(&self.out.batch.series, &key) {
            self.out.batch.series[i].samples.push(sample);
            return;
        }
        self.out.batch.series.push(TimeSeries {
            key,
            metric_type: t,
            samples: vec![sample],
        });
    }

    /// Maps one metric; returns the latest sample time it produced.
    fn metric(&mut self, m: &MetricView<'_>, over: &[(&str, &str)]) -> Option<i64> {
        let Some(data) = &m.data else {
            self.out.reject(
                1,
                format!("metric {:?} has no readable data: send one of gauge, sum, histogram, exponential_histogram or summary (in OTLP/JSON, check the types of its data point fields)", m.name),
            );
            return None;
        };
        let points = data.points();
        let (kind, metric_type, temporality) = match data {
            DataView::Gauge(_) => (NameKind::Gauge, MetricType::Gauge, None),
            DataView::Sum {
                temporality,
                monotonic: true,
                ..
            } => (NameKind::Counter, MetricType::Counter, Some(*temporality)),
            DataView::Sum { temporality, .. } => {
                (NameKind::Gauge, MetricType::Gauge, Some(*temporality))
            }
            DataView::Histogram { temporality, .. } | DataView::Exponential { temporality, .. } => {
                (NameKind::Other, MetricType::Histogram, Some(*temporality))
            }
            DataView::Summary(_) => (NameKind::Other, MetricType::Summary, None),
        };
        let Some(name) = metric_name(m.name, m.unit, kind) else {
            self.out.reject(
                points,
                format!(
                    "metric name {:?} has no letters or digits; name the metric",
                    m.name
                ),
            );
            return None;
        };
        if let Some(t) = temporality {
            if t != AGGREGATION_DELTA && t != AGGREGATION_CUMULATIVE {
                self.out.reject(
                    points,
                    format!("metric {:?}: aggregation_temporality {t} is neither DELTA (1) nor CUMULATIVE (2)", m.name),
                );
                return None;
            }
        }
        let delta = temporality == Some(AGGREGATION_DELTA);
        if !self.metadata.contains_key(&name) {
            self.meta(
                &name,
                metric_type,
                &prometheus_unit(m.unit),
                &storable_text(m.description),
            );
        }
        let view = self.view;
        let mut latest = None;
        match data {
            DataView::Gauge(points) | DataView::Sum { points, .. } => {
                self.raw_metric = (self.resolve.is_some() && !delta).then(|| {
                    self.raw.clear();
                    put_raw(&mut self.raw, name.as_bytes());
                    self.raw
                        .extend_from_slice(&(over.len() as u32).to_le_bytes());
                    for (k, v) in over {
                        put_raw(&mut self.raw, k.as_bytes());
                        put_raw(&mut self.raw, v.as_bytes());
                    }
                    self.raw.len()
                });
                for p in points {
                    latest = latest.max(self.number(m.name, &name, metric_type, delta, p, over));
                }
                self.raw_metric = None;
            }
            DataView::Histogram { points, .. } => {
                for p in points {
                    latest = latest.max(self.histogram(m.name, &name, delta, p, over));
                }
            }
            DataView::Exponential { points, .. } => {
                for p in points {
                    latest = latest.max(self.exponential(m.name, &name, delta, p, over));
                }
            }
            DataView::Summary(points) => {
                for p in points {
                    let Some(ts) = self.point_time(m.name, p.time_unix_nano) else {
                        continue;
                    };
                    if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
                        continue;
                    }
                    let Some(labels) =
                        self.storable(m.name, point_labels(view.attrs(&p.attrs), over))
                    else {
                        continue;
                    };
                    for &(quantile, value) in &p.quantiles {
                        let q = format_float(quantile);
                        self.emit(
                            &name,
                            &labels,
                            Some(("quantile", &q)),
                            metric_type,
                            ts,
                            value,
                        );
                    }
                    self.emit(
                        &format!("{name}_sum"),
                        &labels,
                        None,
                        metric_type,
                        ts,
                        p.sum,
                    );
                    let count = p.count as f64;
                    self.emit(
                        &format!("{name}_count"),
                        &labels,
                        None,
                        metric_type,
                        ts,
                        count,
                    );
                    self.out.accepted_points += 1;
                    latest = latest.max(Some(ts));
                }
            }
        }
        latest
    }

    /// `labels`, or `None` with the point refused when PostgreSQL could not store one of them
    /// (a NUL byte): refused here, the rest of the request is stored; let through, the writer
    /// could never store the batch.
    fn storable(&mut self, metric: &str, labels: Labels) -> Option<Labels> {
        match unstorable_label(&labels) {
            None => Some(labels),
            Some(bad) => {
                self.out.reject(
                    1,
                    format!("metric {metric:?}: {bad}, which PostgreSQL cannot store; remove it from the attribute"),
                );
                None
            }
        }
    }

    /// Whether the caller's resolver took the sample of `metric{labels}` by id (into
    /// [`MappedMetrics::resolved`]); `raw` as in [`crate::known::SeriesView::raw`].
    fn resolved(
        &mut self,
        metric: &str,
        labels: &[(&str, &str)],
        ts: i64,
        value: f64,
        raw: Option<&[u8]>,
    ) -> bool {
        let Some(resolve) = self.resolve.as_mut() else {
            return false;
        };
        let sample = Sample { ts, value };
        let id = resolve_series(&mut **resolve, metric, labels, &[sample], raw);
        self.take_resolved(id, ts, value)
    }

    /// Queues the sample by id when `id` is some.
    fn take_resolved(&mut self, id: Option<i64>, ts: i64, value: f64) -> bool {
        match id {
            Some(series_id) => {
                self.out.resolved.push(ResolvedSample {
                    series_id,
                    ts,
                    value,
                });
                true
            }
            None => false,
        }
    }

    /// Whether the caller's resolver recognised the raw bytes of a point of the metric being
    /// mapped (see [`Self::raw_metric`]) and took its sample by id; `None` when the point has
    /// no raw bytes (no resolver, a delta, an array or map attribute). The raw bytes are left
    /// in `self.raw` for [`Self::resolved`].
    fn resolved_raw(&mut self, attrs: &[Attr<'_>], ts: i64, value: f64) -> Option<bool> {
        let len = self.raw_metric?;
        let resolve = self.resolve.as_mut()?;
        self.raw.truncate(len);
        if !put_raw_attrs(&mut self.raw, attrs) {
            return None;
        }
        let id = resolve.id_raw(&self.raw, &[Sample { ts, value }]);
        Some(self.take_resolved(id, ts, value))
    }

    /// Queues the sample of `metric{labels}`, with one more label `extra` over them: by id
    /// when the resolver knows the series, else with its key.
    fn emit(
        &mut self,
        metric: &str,
        labels: &Labels,
        extra: Option<(&str, &str)>,
        t: MetricType,
        ts: i64,
        value: f64,
    ) {
        if self.resolve.is_some() {
            let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(labels.len() + 1);
            pairs.extend(labels.iter());
            if let Some((name, v)) = extra {
                match pairs.binary_search_by(|(k, _)| (*k).cmp(name)) {
                    Ok(i) if v.is_empty() => {
                        pairs.remove(i);
                    }
                    Ok(i) => pairs[i].1 = v,
                    Err(_) if v.is_empty() => {}
                    Err(i) => pairs.insert(i, (name, v)),
                }
            }
            if self.resolved(metric, &pairs, ts, value, None) {
                return;
            }
        }
        let mut l = labels.clone();
        if let Some((name, v)) = extra {
            l.insert(name, v);
        }
        self.push(SeriesKey::new(metric, l), t, ts, value);
    }

    fn point_time(&mut self, metric: &str, time_unix_nano: u64) -> Option<i64> {
        if time_unix_nano == 0 {
            self.out.reject(
                1,
                format!("metric {metric:?}: a data point has no time_unix_nano; set the observation time"),
            );
            return None;
        }
        Some((time_unix_nano / 1_000_000) as i64)
    }

    #[allow(clippy::too_many_arguments)]
    fn number(
        &mut self,
        metric: &str,
        name: &str,
        t: MetricType,
        delta: bool,
        p: &NumberPoint,
        over: &[(&str, &str)],
    ) -> Option<i64> {
        let ts = self.point_time(metric, p.time_unix_nano)?;
        self.out.exemplars_dropped += p.exemplars;
        let view = self.view;
        // The point's value: a staleness marker when it has none recorded.
        let point_value = match p.value {
            _ if p.flags & FLAG_NO_RECORDED_VALUE != 0 => Some(stale_marker()),
            Some(Number::Double(v)) => Some(v),
            Some(Number::Int(v)) => Some(v as f64),
            None => None,
        };
        let raw_value = point_value.filter(|_| !delta && self.resolve.is_some());
        // A series the caller recognises by the point's raw attributes takes the sample
        // before anything of its key is built.
        let mut raw_formed = false;
        if let Some(value) = raw_value {
            match self.resolved_raw(view.attrs(&p.attrs), ts, value) {
                Some(true) => {
                    self.out.accepted_points += 1;
                    return Some(ts);
                }
                Some(false) => raw_formed = true,
                None => {}
            }
        }
        let attrs = attribute_pairs(view.attrs(&p.attrs));
        let pairs = merge_over(&attrs, over);
        // A series the caller holds by id takes the sample without its key being built
        // (not for deltas: their running totals are kept by key).
        if let Some(value) = raw_value {
            let raw = std::mem::take(&mut self.raw);
            let taken = self.resolved(name, &pairs, ts, value, raw_formed.then_some(&raw[..]));
            self.raw = raw;
            if taken {
                self.out.accepted_points += 1;
                return Some(ts);
            }
        }
        let labels = self.storable(metric, owned_labels(&pairs))?;
        let key = SeriesKey::new(name, labels);
        let Some(value) = point_value else {
            self.out.reject(
                1,
                format!("metric {metric:?}: a data point has neither as_int nor as_double"),
            );
            return None;
        };
        if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
            // A staleness marker is stored as it is, never added to a running total.
            self.push(key, t, ts, value);
            self.out.accepted_points += 1;
            return Some(ts);
        }
        let value = if delta {
            if !self.delta_ok(metric, &key, p.time_unix_nano) {
                return None;
            }
            let total = match self.delta_state(&key) {
                Some(DeltaState::Sum { value: v, .. }) => v + value,
                _ => value,
            };
            self.out.pending.0.insert(
                key.clone(),
                DeltaState::Sum {
                    value: total,
                    last_ns: p.time_unix_nano,
                },
            );
            total
        } else {
            value
        };
        self.push(key, t, ts, value);
        self.out.accepted_points += 1;
        Some(ts)
    }

    #[allow(clippy::too_many_arguments)]
    fn histogram(
        &mut self,
        metric: &str,
        name: &str,
        delta: bool,
        p: &HistogramPoint<'_>,
        over: &[(&str, &str)],
    ) -> Option<i64> {
        let ts = self.point_time(metric, p.time_unix_nano)?;
        self.out.exemplars_dropped += p.exemplars;
        if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
            return None;
        }
        if !p.bucket_counts.is_empty() && p.bucket_counts.len() != p.explicit_bounds.len() + 1 {
            self.out.reject(
                1,
                format!(
                    "metric {metric:?}: {} bucket_counts for {} explicit_bounds; there must be one more count than bounds",
                    p.bucket_counts.len(),
                    p.explicit_bounds.len()
                ),
            );
            return None;
        }
        if p.explicit_bounds.windows(2).any(|w| w[0] >= w[1]) {
            self.out.reject(
                1,
                format!("metric {metric:?}: explicit_bounds are not strictly increasing"),
            );
            return None;
        }
        let attrs = self.view.attrs(&p.attrs);
        let labels = self.storable(metric, point_labels(attrs, over))?;
        let (mut counts, mut count, mut sum) = (p.bucket_counts.to_vec(), p.count, p.sum);
        if delta {
            let key = SeriesKey::new(name, labels.clone());
            if !self.delta_ok(metric, &key, p.time_unix_nano) {
                return None;
            }
            if let Some(DeltaState::Histogram {
                bounds,
                counts: c0,
                count: n0,
                sum: s0,
                ..
            }) = self.delta_state(&key)
            {
                // Changed bounds start the series again (a counter reset to readers).
                if bounds[..] == p.explicit_bounds[..] && c0.len() == counts.len() {
                    for (c, prev) in counts.iter_mut().zip(c0) {
                        *c = c.saturating_add(*prev);
                    }
                    count = count.saturating_add(*n0);
                    sum = Some(sum.unwrap_or(0.0) + s0);
                }
            }
            self.out.pending.0.insert(
                key,
                DeltaState::Histogram {
                    bounds: p.explicit_bounds.to_vec(),
                    counts: counts.clone(),
                    count,
                    sum: sum.unwrap_or(0.0),
                    last_ns: p.time_unix_nano,
                },
            );
        }
        let buckets: Vec<(f64, u64)> = if counts.is_empty() {
            Vec::new()
        } else {
            let mut cum = 0;
            p.explicit_bounds
                .iter()
                .zip(&counts)
                .map(|(b, c)| {
                    cum = u64::saturating_add(cum, *c);
                    (*b, cum)
                })
                .collect()
        };
        self.emit_histogram(name, labels, ts, &buckets, count, sum);
        self.out.accepted_points += 1;
        Some(ts)
    }

    /// `_bucket` series for `buckets` (upper bound, cumulative count) plus `+Inf`, `_sum`,
    /// `_count`.
    fn emit_histogram(
        &mut self,
        name: &str,
        labels: Labels,
        ts: i64,
        buckets: &[(f64, u64)],
        count: u64,
        sum: Option<f64>,
    ) {
        let t = MetricType::Histogram;
        let bucket = format!("{name}_bucket");
        for (le, cum) in buckets {
            let le = format_float(*le);
            self.emit(&bucket, &labels, Some(("le", &le)), t, ts, *cum as f64);
        }
        self.emit(&bucket, &labels, Some(("le", "+Inf")), t, ts, count as f64);
        if let Some(sum) = sum {
            self.emit(&format!("{name}_sum"), &labels, None, t, ts, sum);
        }
        self.emit(&format!("{name}_count"), &labels, None, t, ts, count as f64);
    }
}

/// What wins over a data point's attributes in its labels: the scope's labels, `job` and
/// `instance`, sorted by name. Built once per scope, used for each of its points.
pub(super) fn over_attributes<'a>(
    scope: &'a Labels,
    job: &'a str,
    instance: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let mut over: Vec<(&str, &str)> = scope.iter().collect();
    over.push(("job", job));
    over.push(("instance", instance));
    over.sort_by(|a, b| a.0.cmp(b.0));
    over
}

/// A data point's labels: its attributes as [`attribute_labels`](super::attributes::attribute_labels)
/// maps them, then `over` ([`over_attributes`]: the scope's labels, `job` and `instance`) over
/// them (an empty `instance` removes a point attribute of that name, as [`Labels::insert`]
/// does).
///
/// The same result as building the attribute labels and inserting the others one by one, but
/// without the allocations that cost most of OTLP's mapping time per point in a profile (a
/// `BTreeMap`, a sanitised copy of every key, a `Vec` and a joined `String` per attribute, and
/// four sorted inserts): names and values are borrowed from the request until the one owned
/// copy that goes into the series key (none when the series is taken by id).
pub(super) fn point_labels(attrs: &[Attr<'_>], over: &[(&str, &str)]) -> Labels {
    owned_labels(&merge_over(&attribute_pairs(attrs), over))
}

/// A point's attributes as labels, before `job`, `instance` and the scope's labels go over
/// them: (label name, original key, value), sorted by name, names distinct (the values of
/// attributes whose names collide after sanitising joined with `;`, in key order).
pub(super) type AttributePairs<'a> = Vec<(Cow<'a, str>, &'a str, Cow<'a, str>)>;

pub(super) fn attribute_pairs<'a>(attrs: &'a [Attr<'a>]) -> AttributePairs<'a> {
    // Sorted by name and then by original key (stable, so equal keys keep their order):
    // attributes whose names collide after sanitising are then adjacent, in the order
    // `attribute_labels` joins them.
    let mut pairs: AttributePairs<'a> = attrs
        .iter()
        .filter_map(|a| {
            let name = label_name_cow(a.key);
            (!name.is_empty()).then(|| (name, a.key, value_string(&a.value)))
        })
        .collect();
    let order = |a: &(Cow<'_, str>, &str, Cow<'_, str>), b: &(Cow<'_, str>, &str, Cow<'_, str>)| {
        a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1))
    };
    // The Go, Java and .NET SDKs send attribute sets sorted by key already.
    if !pairs.is_sorted_by(|a, b| order(a, b).is_le()) {
        pairs.sort_by(order);
    }
    pairs.dedup_by(|later, first| {
        if later.0 != first.0 {
            return false;
        }
        let joined = first.2.to_mut();
        joined.push(';');
        joined.push_str(&later.2);
        true
    });
    pairs
}

/// `attrs` ([`attribute_pairs`]) with `over` over them: sorted by name, names distinct,
/// values not empty, borrowed from both.
pub(super) fn merge_over<'p>(
    attrs: &'p AttributePairs<'_>,
    over: &[(&'p str, &'p str)],
) -> Vec<(&'p str, &'p str)> {
    let mut out: Vec<(&str, &str)> = Vec::with_capacity(attrs.len() + over.len());
    let mut over = over.iter().copied().peekable();
    for (name, _, value) in attrs {
        while let Some(o) = over.next_if(|(o, _)| *o < name.as_ref()) {
            out.push(o);
        }
        match over.next_if(|(o, _)| *o == name.as_ref()) {
            Some(o) => out.push(o),
            None => out.push((name, value)),
        }
    }
    out.extend(over);
    out.retain(|(_, v)| !v.is_empty());
    out
}

/// Owned labels of pairs sorted by name with distinct names.
fn owned_labels<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Labels {
    Labels::from_sorted(
        pairs
            .iter()
            .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string()))
            .collect(),
    )
}

/// [`label_name`] without a copy when the key is already a valid label name (nearly always).
fn label_name_cow(key: &str) -> Cow<'_, str> {
    let valid = key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && (!key.starts_with('_') || key.starts_with("__"));
    if valid {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(label_name(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::attributes::attribute_labels;
    use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};

    /// The mapping `point_labels` replaced, kept as the reference it must equal.
    fn reference(attrs: &[KeyValue], scope: &Labels, job: &str, instance: &str) -> Labels {
        let mut labels = attribute_labels(attrs.iter());
        for (k, v) in scope.iter() {
            labels.insert(k, v);
        }
        labels.insert("job", job);
        labels.insert("instance", instance);
        labels
    }

    #[test]
    fn point_labels_equal_attribute_labels_with_inserts() {
        // Keys that sanitise to one name ("a.b", "a_b", "a-b"), that need a prefix ("2x",
        // "_p"), that the resource and scope override ("job", "instance", "otel_scope_name"),
        // empty values, non-string values, in random order and with repeats.
        let keys = [
            "a.b",
            "a_b",
            "a-b",
            "2x",
            "_p",
            "__q",
            "job",
            "instance",
            "otel_scope_name",
            "zz",
            "é",
            "",
            "k",
        ];
        let values = [
            Value::StringValue("v".into()),
            Value::StringValue("".into()),
            Value::StringValue("w;x".into()),
            Value::IntValue(7),
            Value::BoolValue(true),
            Value::DoubleValue(0.5),
        ];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        for round in 0..2000 {
            let attrs: Vec<KeyValue> = (0..next(9))
                .map(|_| KeyValue {
                    key: keys[next(keys.len())].to_string(),
                    value: Some(AnyValue {
                        value: Some(values[next(values.len())].clone()),
                    }),
                    ..Default::default()
                })
                .collect();
            let mut scope = Labels::new();
            if next(2) == 0 {
                scope.insert("otel_scope_name", "lib");
            }
            if next(2) == 0 {
                scope.insert("otel_scope_version", "1.2");
            }
            if next(4) == 0 {
                // More than the two scope labels the mapper sets, over an attribute's name.
                scope.insert("a_b", "s");
            }
            let job = ["svc", "ns/svc"][next(2)];
            let instance = ["", "i-1"][next(2)];
            let view: Vec<Attr<'_>> = attrs.iter().map(Attr::of).collect();
            assert_eq!(
                point_labels(&view, &over_attributes(&scope, job, instance)),
                reference(&attrs, &scope, job, instance),
                "round {round}: {attrs:?} {scope} {job} {instance}"
            );
        }
    }

    #[test]
    fn repeated_keys_in_one_request_share_one_series() {
        let key = |v: &str| SeriesKey::new("m", Labels::from_pairs([("a", v)]));
        let mut index = SeriesIndex::default();
        let mut series: Vec<TimeSeries> = Vec::new();
        for v in ["1", "2", "1", "3", "2"] {
            let k = key(v);
            if index.find_or_note(&series, &k).is_none() {
                series.push(TimeSeries {
                    key: k,
                    metric_type: MetricType::Gauge,
                    samples: vec![],
                });
            }
        }
        let found: Vec<_> = series.iter().map(|s| s.key.clone()).collect();
        assert_eq!(found, vec![key("1"), key("2"), key("3")]);
        // Keys whose hashes collide are still told apart by comparing the keys: force every
        // key into one chain.
        let mut index = SeriesIndex {
            next: vec![Some(1), None],
            ..SeriesIndex::default()
        };
        index.first.insert(SeriesIndex::hash(&key("2")), 0);
        assert_eq!(index.find_or_note(&series[..2], &key("2")), Some(1));
        assert_eq!(index.find_or_note(&series[..2], &key("1")), None);
    }
}
