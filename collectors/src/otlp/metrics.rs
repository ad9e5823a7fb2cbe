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
//!   `job` is `service.namespace/service.name` (or `service.name`), `instance` is
//!   `service.instance.id`; they win over point attributes of the same name. The other
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
//! counts that do not match the bounds, ...) are refused one by one and reported, so the
//! receiver can answer with OTLP `partial_success` instead of failing the whole request.

use crate::remote_write::stale_marker;
use model::{Batch, Labels, MetricMetadata, MetricType, Sample, SeriesKey, TimeSeries};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    ExponentialHistogramDataPoint, HistogramDataPoint, NumberDataPoint,
};
use std::collections::{BTreeMap, HashMap};

/// Scale exponential histograms are merged down to before they are stored (see module docs).
pub const EXPONENTIAL_TARGET_SCALE: i32 = 3;
/// Series the delta accumulator tracks before it refuses new ones.
pub const DEFAULT_MAX_DELTA_SERIES: usize = 100_000;
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

/// Running totals of delta streams, keyed by output series (see module docs).
#[derive(Debug)]
pub struct DeltaAccumulator {
    entries: HashMap<SeriesKey, DeltaState>,
    max_series: usize,
}

/// Totals computed for one request, applied with [`DeltaAccumulator::commit`].
#[derive(Debug, Default)]
pub struct DeltaUpdates(HashMap<SeriesKey, DeltaState>);

#[derive(Debug, Clone, PartialEq)]
enum DeltaState {
    Sum {
        value: f64,
        last_ns: u64,
    },
    Histogram {
        bounds: Vec<f64>,
        counts: Vec<u64>,
        count: u64,
        sum: f64,
        last_ns: u64,
    },
    Exponential {
        hist: ExpHistogram,
        last_ns: u64,
    },
}

impl DeltaState {
    fn last_ns(&self) -> u64 {
        match self {
            DeltaState::Sum { last_ns, .. }
            | DeltaState::Histogram { last_ns, .. }
            | DeltaState::Exponential { last_ns, .. } => *last_ns,
        }
    }
}

impl Default for DeltaAccumulator {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_DELTA_SERIES)
    }
}

impl DeltaAccumulator {
    pub fn new(max_series: usize) -> Self {
        Self {
            entries: HashMap::new(),
            max_series,
        }
    }

    /// Delta series tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Maps a request without changing the accumulator; the new totals are in
    /// [`MappedMetrics::pending`]. Commit them only once the batch has been accepted, so a
    /// request refused with 429/503 and retried is not counted twice.
    pub fn map(&self, req: &ExportMetricsServiceRequest) -> MappedMetrics {
        Mapper {
            acc: self,
            out: MappedMetrics::default(),
            metadata: BTreeMap::new(),
            series: HashMap::new(),
        }
        .run(req)
    }

    /// Stores the totals of an accepted request.
    pub fn commit(&mut self, updates: DeltaUpdates) {
        self.entries.extend(updates.0);
    }
}

/// Maps and commits at once: for callers with nothing that can refuse the batch afterwards.
pub fn map_metrics(req: &ExportMetricsServiceRequest, acc: &mut DeltaAccumulator) -> MappedMetrics {
    let mut mapped = acc.map(req);
    acc.commit(std::mem::take(&mut mapped.pending));
    mapped
}

struct Mapper<'a> {
    acc: &'a DeltaAccumulator,
    out: MappedMetrics,
    metadata: BTreeMap<String, MetricMetadata>,
    /// Index into `out.batch.series` by key, so repeated keys share one entry.
    series: HashMap<SeriesKey, usize>,
}

/// How a metric's name is finished.
#[derive(Clone, Copy, PartialEq, Eq)]
enum NameKind {
    Counter,
    Gauge,
    Other,
}

impl Mapper<'_> {
    fn run(mut self, req: &ExportMetricsServiceRequest) -> MappedMetrics {
        for rm in &req.resource_metrics {
            let resource_attrs: &[KeyValue] = rm
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or(&[]);
            let (job, instance) = job_and_instance(resource_attrs);
            let mut latest_ms: Option<i64> = None;
            for sm in &rm.scope_metrics {
                let mut base = Labels::new();
                if let Some(scope) = &sm.scope {
                    base.insert("otel_scope_name", scope.name.clone());
                    base.insert("otel_scope_version", scope.version.clone());
                }
                for m in &sm.metrics {
                    let ts = self.metric(m, &base, &job, &instance);
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
    fn target_info(&mut self, attrs: &[KeyValue], job: &str, instance: &str, ts: i64) {
        let rest: Vec<&KeyValue> = attrs
            .iter()
            .filter(|kv| {
                !matches!(
                    kv.key.as_str(),
                    "service.name" | "service.namespace" | "service.instance.id"
                )
            })
            .collect();
        if rest.is_empty() {
            return;
        }
        let mut labels = attribute_labels(rest.into_iter());
        labels.insert("job", job);
        labels.insert("instance", instance);
        self.meta("target_info", MetricType::Gauge, "", "Target metadata");
        self.push(
            SeriesKey::new("target_info", labels),
            MetricType::Gauge,
            ts,
            1.0,
        );
    }

    fn meta(&mut self, family: &str, t: MetricType, unit: &str, help: &str) {
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
        if let Some(&i) = self.series.get(&key) {
            self.out.batch.series[i].samples.push(sample);
            return;
        }
        self.series.insert(key.clone(), self.out.batch.series.len());
        self.out.batch.series.push(TimeSeries {
            key,
            metric_type: t,
            samples: vec![sample],
        });
    }

    /// Maps one metric; returns the latest sample time it produced.
    fn metric(
        &mut self,
        m: &opentelemetry_proto::tonic::metrics::v1::Metric,
        scope: &Labels,
        job: &str,
        instance: &str,
    ) -> Option<i64> {
        let Some(data) = &m.data else {
            self.out.reject(
                1,
                format!("metric {:?} has no readable data: send one of gauge, sum, histogram, exponential_histogram or summary (in OTLP/JSON, check the types of its data point fields)", m.name),
            );
            return None;
        };
        let points = match data {
            Data::Gauge(g) => g.data_points.len(),
            Data::Sum(s) => s.data_points.len(),
            Data::Histogram(h) => h.data_points.len(),
            Data::ExponentialHistogram(h) => h.data_points.len(),
            Data::Summary(s) => s.data_points.len(),
        };
        let (kind, metric_type, temporality) = match data {
            Data::Gauge(_) => (NameKind::Gauge, MetricType::Gauge, None),
            Data::Sum(s) if s.is_monotonic => (
                NameKind::Counter,
                MetricType::Counter,
                Some(s.aggregation_temporality),
            ),
            Data::Sum(s) => (
                NameKind::Gauge,
                MetricType::Gauge,
                Some(s.aggregation_temporality),
            ),
            Data::Histogram(h) => (
                NameKind::Other,
                MetricType::Histogram,
                Some(h.aggregation_temporality),
            ),
            Data::ExponentialHistogram(h) => (
                NameKind::Other,
                MetricType::Histogram,
                Some(h.aggregation_temporality),
            ),
            Data::Summary(_) => (NameKind::Other, MetricType::Summary, None),
        };
        let Some(name) = metric_name(&m.name, &m.unit, kind) else {
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
        self.meta(
            &name,
            metric_type,
            &prometheus_unit(&m.unit),
            &m.description,
        );
        let mut latest = None;
        match data {
            Data::Gauge(g) => {
                for p in &g.data_points {
                    latest = latest.max(self.number(
                        &m.name,
                        &name,
                        metric_type,
                        false,
                        p,
                        scope,
                        job,
                        instance,
                    ));
                }
            }
            Data::Sum(s) => {
                for p in &s.data_points {
                    latest = latest.max(self.number(
                        &m.name,
                        &name,
                        metric_type,
                        delta,
                        p,
                        scope,
                        job,
                        instance,
                    ));
                }
            }
            Data::Histogram(h) => {
                for p in &h.data_points {
                    latest =
                        latest.max(self.histogram(&m.name, &name, delta, p, scope, job, instance));
                }
            }
            Data::ExponentialHistogram(h) => {
                for p in &h.data_points {
                    latest = latest
                        .max(self.exponential(&m.name, &name, delta, p, scope, job, instance));
                }
            }
            Data::Summary(s) => {
                for p in &s.data_points {
                    let Some(ts) = self.point_time(&m.name, p.time_unix_nano) else {
                        continue;
                    };
                    if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
                        continue;
                    }
                    let labels = point_labels(&p.attributes, scope, job, instance);
                    for q in &p.quantile_values {
                        let mut l = labels.clone();
                        l.insert("quantile", format_float(q.quantile));
                        self.push(SeriesKey::new(name.clone(), l), metric_type, ts, q.value);
                    }
                    self.push(
                        SeriesKey::new(format!("{name}_sum"), labels.clone()),
                        metric_type,
                        ts,
                        p.sum,
                    );
                    self.push(
                        SeriesKey::new(format!("{name}_count"), labels),
                        metric_type,
                        ts,
                        p.count as f64,
                    );
                    self.out.accepted_points += 1;
                    latest = latest.max(Some(ts));
                }
            }
        }
        latest
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

    /// The accumulator's state for `key`: this request's pending total first.
    fn delta_state(&self, key: &SeriesKey) -> Option<&DeltaState> {
        self.out
            .pending
            .0
            .get(key)
            .or_else(|| self.acc.entries.get(key))
    }

    /// Checks a delta point against its series' state; `None` when it must be refused.
    fn delta_ok(&mut self, metric: &str, key: &SeriesKey, time_unix_nano: u64) -> bool {
        let known = self.delta_state(key).map(DeltaState::last_ns);
        match known {
            Some(last) if time_unix_nano <= last => {
                self.out.reject(
                    1,
                    format!("metric {metric:?}: delta point at {time_unix_nano} ns is not newer than the last one added ({last} ns); it was already counted or arrived out of order"),
                );
                false
            }
            None if self.acc.entries.len() + self.out.pending.0.len() >= self.acc.max_series => {
                self.out.reject(
                    1,
                    format!("metric {metric:?}: the delta accumulator already tracks {} series; send cumulative temporality instead", self.acc.max_series),
                );
                false
            }
            _ => true,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn number(
        &mut self,
        metric: &str,
        name: &str,
        t: MetricType,
        delta: bool,
        p: &NumberDataPoint,
        scope: &Labels,
        job: &str,
        instance: &str,
    ) -> Option<i64> {
        let ts = self.point_time(metric, p.time_unix_nano)?;
        self.out.exemplars_dropped += p.exemplars.len();
        let key = SeriesKey::new(name, point_labels(&p.attributes, scope, job, instance));
        if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
            self.push(key, t, ts, stale_marker());
            self.out.accepted_points += 1;
            return Some(ts);
        }
        let value = match p.value {
            Some(number_data_point::Value::AsDouble(v)) => v,
            Some(number_data_point::Value::AsInt(v)) => v as f64,
            None => {
                self.out.reject(
                    1,
                    format!("metric {metric:?}: a data point has neither as_int nor as_double"),
                );
                return None;
            }
        };
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
        p: &HistogramDataPoint,
        scope: &Labels,
        job: &str,
        instance: &str,
    ) -> Option<i64> {
        let ts = self.point_time(metric, p.time_unix_nano)?;
        self.out.exemplars_dropped += p.exemplars.len();
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
        let labels = point_labels(&p.attributes, scope, job, instance);
        let (mut counts, mut count, mut sum) = (p.bucket_counts.clone(), p.count, p.sum);
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
                if *bounds == p.explicit_bounds && c0.len() == counts.len() {
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
                    bounds: p.explicit_bounds.clone(),
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
        for (le, cum) in buckets {
            let mut l = labels.clone();
            l.insert("le", format_float(*le));
            self.push(
                SeriesKey::new(format!("{name}_bucket"), l),
                t,
                ts,
                *cum as f64,
            );
        }
        let mut l = labels.clone();
        l.insert("le", "+Inf");
        self.push(
            SeriesKey::new(format!("{name}_bucket"), l),
            t,
            ts,
            count as f64,
        );
        if let Some(sum) = sum {
            self.push(
                SeriesKey::new(format!("{name}_sum"), labels.clone()),
                t,
                ts,
                sum,
            );
        }
        self.push(
            SeriesKey::new(format!("{name}_count"), labels),
            t,
            ts,
            count as f64,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn exponential(
        &mut self,
        metric: &str,
        name: &str,
        delta: bool,
        p: &ExponentialHistogramDataPoint,
        scope: &Labels,
        job: &str,
        instance: &str,
    ) -> Option<i64> {
        let ts = self.point_time(metric, p.time_unix_nano)?;
        self.out.exemplars_dropped += p.exemplars.len();
        if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
            return None;
        }
        if !(-10..=20).contains(&p.scale) {
            self.out.reject(
                1,
                format!(
                    "metric {metric:?}: exponential histogram scale {} is outside -10..=20",
                    p.scale
                ),
            );
            return None;
        }
        // Indexes past what any float64 can fall in would make the `le` grid (one bucket per
        // index between the lowest and highest populated) arbitrarily long.
        let limit = max_bucket_index(p.scale);
        for b in [&p.positive, &p.negative].into_iter().flatten() {
            let lo = i64::from(b.offset);
            let hi = lo + b.bucket_counts.len() as i64;
            if lo < -limit || hi > limit {
                self.out.reject(
                    1,
                    format!(
                        "metric {metric:?}: exponential histogram buckets {lo}..{hi} at scale {} lie beyond any float64 value (|index| <= {limit})",
                        p.scale
                    ),
                );
                return None;
            }
        }
        let labels = point_labels(&p.attributes, scope, job, instance);
        let mut hist = ExpHistogram::from_point(p);
        hist.downscale_to(EXPONENTIAL_TARGET_SCALE);
        if delta {
            let key = SeriesKey::new(name, labels.clone());
            if !self.delta_ok(metric, &key, p.time_unix_nano) {
                return None;
            }
            if let Some(DeltaState::Exponential { hist: prev, .. }) = self.delta_state(&key) {
                hist.merge(prev.clone());
            }
            self.out.pending.0.insert(
                key,
                DeltaState::Exponential {
                    hist: hist.clone(),
                    last_ns: p.time_unix_nano,
                },
            );
        }
        let buckets = hist.cumulative_buckets();
        self.emit_histogram(name, labels, ts, &buckets, hist.count, hist.sum);
        self.out.accepted_points += 1;
        Some(ts)
    }
}

/// The largest bucket index a float64 can land in at `scale` (2^1024 is past the largest
/// double, 2^-1075 below the smallest subnormal).
fn max_bucket_index(scale: i32) -> i64 {
    const EXPONENT_SPAN: i64 = 1076;
    if scale >= 0 {
        EXPONENT_SPAN << scale
    } else {
        (EXPONENT_SPAN >> -scale) + 1
    }
}

/// An exponential histogram with sparse buckets, for merging and re-bucketing.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpHistogram {
    pub scale: i32,
    pub zero_count: u64,
    pub zero_threshold: f64,
    pub positive: BTreeMap<i32, u64>,
    pub negative: BTreeMap<i32, u64>,
    pub count: u64,
    pub sum: Option<f64>,
}

impl ExpHistogram {
    pub fn from_point(p: &ExponentialHistogramDataPoint) -> Self {
        fn sparse(b: &Option<Buckets>) -> BTreeMap<i32, u64> {
            let mut out = BTreeMap::new();
            if let Some(b) = b {
                for (i, c) in b.bucket_counts.iter().enumerate() {
                    if *c > 0 {
                        out.insert(b.offset.saturating_add(i as i32), *c);
                    }
                }
            }
            out
        }
        Self {
            scale: p.scale,
            zero_count: p.zero_count,
            zero_threshold: p.zero_threshold,
            positive: sparse(&p.positive),
            negative: sparse(&p.negative),
            count: p.count,
            sum: p.sum,
        }
    }

    /// Merges buckets down to `scale` when finer (exact: bucket `i` at scale `s` lies inside
    /// bucket `i >> (s - t)` at scale `t`).
    pub fn downscale_to(&mut self, scale: i32) {
        if scale >= self.scale {
            return;
        }
        let shift = (self.scale - scale) as u32;
        for side in [&mut self.positive, &mut self.negative] {
            let mut merged = BTreeMap::new();
            for (i, c) in std::mem::take(side) {
                let m = merged.entry(i >> shift).or_insert(0u64);
                *m = m.saturating_add(c);
            }
            *side = merged;
        }
        self.scale = scale;
    }

    /// Adds `other` (brought to the common, coarser scale).
    pub fn merge(&mut self, mut other: ExpHistogram) {
        let scale = self.scale.min(other.scale);
        self.downscale_to(scale);
        other.downscale_to(scale);
        for (mine, theirs) in [
            (&mut self.positive, other.positive),
            (&mut self.negative, other.negative),
        ] {
            for (i, c) in theirs {
                let m = mine.entry(i).or_insert(0);
                *m = m.saturating_add(c);
            }
        }
        self.zero_count = self.zero_count.saturating_add(other.zero_count);
        self.zero_threshold = self.zero_threshold.max(other.zero_threshold);
        self.count = self.count.saturating_add(other.count);
        self.sum = match (self.sum, other.sum) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
        };
    }

    /// Lower bound of bucket `index` (its upper bound is `bound(index + 1)`).
    pub fn bound(&self, index: i32) -> f64 {
        (index as f64 * (-self.scale as f64).exp2()).exp2()
    }

    /// `(le, cumulative count)` pairs, ascending, without `+Inf`: negative buckets (when any
    /// are populated), the zero bucket, then every positive bucket from the lowest to the
    /// highest populated index.
    pub fn cumulative_buckets(&self) -> Vec<(f64, u64)> {
        let mut out = Vec::new();
        let mut cum = 0;
        if let (Some((&lo, _)), Some((&hi, _))) = (
            self.negative.first_key_value(),
            self.negative.last_key_value(),
        ) {
            // Bucket i holds values in [-bound(i+1), -bound(i)); walking from the most
            // negative, `le = -bound(i)` has counted every bucket with index >= i.
            for i in (lo..=hi).rev() {
                cum = u64::saturating_add(cum, self.negative.get(&i).copied().unwrap_or(0));
                out.push((-self.bound(i), cum));
            }
        }
        cum = u64::saturating_add(cum, self.zero_count);
        out.push((self.zero_threshold, cum));
        if let (Some((&lo, _)), Some((&hi, _))) = (
            self.positive.first_key_value(),
            self.positive.last_key_value(),
        ) {
            for i in lo..=hi {
                cum = u64::saturating_add(cum, self.positive.get(&i).copied().unwrap_or(0));
                out.push((self.bound(i + 1), cum));
            }
        }
        out
    }
}

/// Prometheus' float formatting for label values: shortest round-trip form, `+Inf`/`-Inf`/`NaN`.
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// `job` and `instance` from the resource attributes (empty when absent).
fn job_and_instance(attrs: &[KeyValue]) -> (String, String) {
    let get = |k: &str| {
        attrs
            .iter()
            .find(|kv| kv.key == k)
            .map(|kv| any_value_string(kv.value.as_ref()))
            .unwrap_or_default()
    };
    let (ns, name) = (get("service.namespace"), get("service.name"));
    let job = match (ns.is_empty(), name.is_empty()) {
        (false, false) => format!("{ns}/{name}"),
        (true, _) => name,
        (false, true) => String::new(),
    };
    (job, get("service.instance.id"))
}

fn point_labels(attrs: &[KeyValue], scope: &Labels, job: &str, instance: &str) -> Labels {
    let mut labels = attribute_labels(attrs.iter());
    for (k, v) in scope.iter() {
        labels.insert(k, v);
    }
    labels.insert("job", job);
    labels.insert("instance", instance);
    labels
}

/// Attributes as sanitised labels; values of attributes whose names collide after
/// sanitising are joined with `;` in the order of the original keys.
fn attribute_labels<'a>(attrs: impl Iterator<Item = &'a KeyValue>) -> Labels {
    let mut by_name: BTreeMap<String, Vec<(&str, String)>> = BTreeMap::new();
    for kv in attrs {
        let name = label_name(&kv.key);
        if name.is_empty() {
            continue;
        }
        by_name
            .entry(name)
            .or_default()
            .push((kv.key.as_str(), any_value_string(kv.value.as_ref())));
    }
    Labels::from_pairs(by_name.into_iter().map(|(name, mut values)| {
        values.sort_by(|a, b| a.0.cmp(b.0));
        let joined: Vec<String> = values.into_iter().map(|(_, v)| v).collect();
        (name, joined.join(";"))
    }))
}

/// A Prometheus label name for an attribute key (otlptranslator's `NormalizeLabel`).
pub fn label_name(key: &str) -> String {
    if key.is_empty() {
        return String::new();
    }
    let mut s: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s = format!("key_{s}");
    } else if s.starts_with('_') && !s.starts_with("__") {
        s = format!("key{s}");
    }
    s
}

/// An attribute value as a label value: strings as they are, numbers and booleans in their
/// usual text form, arrays and maps as JSON.
pub fn any_value_string(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(other) => {
            let json = any_value_json(other);
            match json {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            }
        }
    }
}

fn any_value_json(v: &any_value::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        any_value::Value::StringValue(s) => J::String(s.clone()),
        any_value::Value::BoolValue(b) => J::Bool(*b),
        any_value::Value::IntValue(i) => J::from(*i),
        any_value::Value::DoubleValue(d) => J::String(format_float(*d)),
        any_value::Value::BytesValue(b) => {
            J::String(b.iter().map(|x| format!("{x:02x}")).collect())
        }
        // An index into a profiles string table; metrics carry no table to resolve it.
        any_value::Value::StringValueStrindex(_) => J::Null,
        any_value::Value::ArrayValue(a) => J::Array(
            a.values
                .iter()
                .map(|x| x.value.as_ref().map(any_value_json).unwrap_or(J::Null))
                .collect(),
        ),
        any_value::Value::KvlistValue(kv) => J::Object(
            kv.values
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        kv.value
                            .as_ref()
                            .and_then(|x| x.value.as_ref())
                            .map(any_value_json)
                            .unwrap_or(J::Null),
                    )
                })
                .collect(),
        ),
    }
}

/// The Prometheus word for an OTel (UCUM) unit, `{annotations}` dropped; `""` when none.
pub fn prometheus_unit(unit: &str) -> String {
    let stripped = strip_annotations(unit);
    let (main, per) = match stripped.split_once('/') {
        Some((m, p)) => (m.trim(), Some(p.trim())),
        None => (stripped.trim(), None),
    };
    let main = match main {
        "1" | "" => String::new(),
        m => unit_word(m)
            .map(str::to_string)
            .unwrap_or_else(|| sanitize_word(m)),
    };
    let per = per.filter(|p| !p.is_empty()).map(|p| {
        per_unit_word(p)
            .map(str::to_string)
            .unwrap_or_else(|| sanitize_word(p))
    });
    match (main.is_empty(), per) {
        (_, None) => main,
        (true, Some(p)) => format!("per_{p}"),
        (false, Some(p)) => format!("{main}_per_{p}"),
    }
}

fn strip_annotations(unit: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in unit.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

fn sanitize_word(s: &str) -> String {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

fn unit_word(u: &str) -> Option<&'static str> {
    Some(match u {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        _ => return None,
    })
}

fn per_unit_word(u: &str) -> Option<&'static str> {
    Some(match u {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => return None,
    })
}

/// The Prometheus metric name for an OTel metric (see module docs); `None` when the name has
/// no letters or digits.
fn metric_name(name: &str, unit: &str, kind: NameKind) -> Option<String> {
    let mut tokens: Vec<String> = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    if tokens.is_empty() {
        return None;
    }
    let unit_suffix = prometheus_unit(unit);
    if !unit_suffix.is_empty() {
        let (main, per) = match unit_suffix.find("per_") {
            Some(0) => ("", Some(&unit_suffix[4..])),
            Some(i) => (&unit_suffix[..i - 1], Some(&unit_suffix[i + 4..])),
            None => (unit_suffix.as_str(), None),
        };
        if !main.is_empty() && !tokens.iter().any(|t| t == main) {
            tokens.extend(main.split('_').map(str::to_string));
        }
        if let Some(per) = per {
            if !tokens.iter().any(|t| t == per) {
                tokens.push("per".into());
                tokens.extend(per.split('_').map(str::to_string));
            }
        }
    }
    if kind == NameKind::Gauge
        && strip_annotations(unit).trim() == "1"
        && !tokens.iter().any(|t| t == "ratio")
    {
        tokens.push("ratio".into());
    }
    if kind == NameKind::Counter {
        tokens.retain(|t| t != "total");
        tokens.push("total".into());
    }
    let mut out = tokens.join("_");
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_otel_prometheus_conventions() {
        let c = NameKind::Counter;
        let g = NameKind::Gauge;
        let o = NameKind::Other;
        assert_eq!(
            metric_name("etl.rows.processed", "{row}", c).unwrap(),
            "etl_rows_processed_total"
        );
        assert_eq!(
            metric_name("etl.bytes.read", "By", c).unwrap(),
            "etl_bytes_read_total"
        );
        assert_eq!(
            metric_name("etl.batch.lag", "s", g).unwrap(),
            "etl_batch_lag_seconds"
        );
        assert_eq!(
            metric_name("etl.step.duration", "ms", o).unwrap(),
            "etl_step_duration_milliseconds"
        );
        assert_eq!(
            metric_name("etl.worker.memory", "MiBy", g).unwrap(),
            "etl_worker_memory_mebibytes"
        );
        assert_eq!(
            metric_name("cpu.utilization", "1", g).unwrap(),
            "cpu_utilization_ratio"
        );
        assert_eq!(
            metric_name("cpu.utilization", "1", c).unwrap(),
            "cpu_utilization_total"
        );
        assert_eq!(
            metric_name("net.io", "By/s", g).unwrap(),
            "net_io_bytes_per_second"
        );
        assert_eq!(
            metric_name("requests.total", "", c).unwrap(),
            "requests_total"
        );
        assert_eq!(metric_name("2xx.count", "", g).unwrap(), "_2xx_count");
        assert_eq!(metric_name("...", "", g), None);
    }

    #[test]
    fn label_names_are_sanitised_like_prometheus() {
        assert_eq!(label_name("http.route"), "http_route");
        assert_eq!(label_name("2xx"), "key_2xx");
        assert_eq!(label_name("_private"), "key_private");
        assert_eq!(label_name("__reserved"), "__reserved");
    }

    #[test]
    fn downscaling_merges_neighbour_buckets_exactly() {
        let mut h = ExpHistogram {
            scale: 2,
            zero_count: 0,
            zero_threshold: 0.0,
            positive: BTreeMap::from([(-3, 1), (-1, 2), (0, 3), (3, 4), (4, 5)]),
            negative: BTreeMap::new(),
            count: 15,
            sum: None,
        };
        h.downscale_to(0);
        // -3>>2 = -1, -1>>2 = -1, 0>>2 = 0, 3>>2 = 0, 4>>2 = 1
        assert_eq!(h.positive, BTreeMap::from([(-1, 3), (0, 7), (1, 5)]));
        assert_eq!(h.bound(1), 2.0);
    }
}
