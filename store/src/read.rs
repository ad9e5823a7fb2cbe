//! Reading: metric and label names, series lookup by selector, and range queries that
//! combine rollups (below the rollup watermark) with raw samples (above it).

use crate::bucket;
use crate::compaction::merged_samples;
use crate::error::{DbContext, StoreError};
use crate::partitions::{HOUR_MS, MINUTE_MS};
use crate::pgcopy::{END_TIMESTAMP_MS, MIN_TIMESTAMP_MS};
use crate::{sql_ms, sql_ts, StorageMode, Store};
use futures::TryStreamExt;
use model::{
    Aggregation, Labels, MetricType, RangeQuery, RangeSeries, Selector, SeriesKey, TimestampMs,
};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// A registered series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesInfo {
    pub id: i64,
    pub key: SeriesKey,
    pub metric_type: MetricType,
    /// Unix ms of the earliest sample seen when the series was registered.
    pub first_seen: TimestampMs,
    /// Unix ms of the latest sample seen, updated at most once a minute.
    pub last_seen: TimestampMs,
}

/// When a series counts as present in a time range `[start, end]`, for the catalogue
/// reads (`/api/v1/series`, labels, label values): its recorded span overlaps the range
/// (`first_seen <= end` and `last_seen >= start`), or it has a sample in the range. The span
/// test is what Prometheus does at chunk granularity (a series whose chunk spans the range is
/// listed even if no sample falls inside it); the sample test catches what the recorded span
/// misses, because `last_seen` is written by maintenance (up to one interval late) and
/// `first_seen` is not lowered by samples that arrive late. Only series outside their span
/// pay for the sample lookup (one index probe per daily partition in the range).
pub const LIVE_IN_RANGE: &str = "span overlaps the range, or a sample in the range";

/// SQL for [`LIVE_IN_RANGE`] over the `series` row `alias`, with the range's Unix ms in
/// parameters `$start` and `$end`.
pub(crate) fn live_in_range_sql(alias: &str, start: usize, end: usize) -> String {
    format!(
        "(({alias}.first_seen <= {end_ts} AND {alias}.last_seen >= {start_ts}) \
         OR EXISTS (SELECT 1 FROM sample_chunks c WHERE c.series_id = {alias}.id \
         AND c.start_ts >= {start_ts} - interval '1 hour' AND c.start_ts <= {end_ts} \
         AND c.last_ts >= {start_ts} AND c.first_ts <= {end_ts}) \
         OR {alias}.id IN (SELECT x.series_id FROM samples x \
         WHERE x.ts >= {start_ts} AND x.ts <= {end_ts}))",
        start_ts = sql_ts(start),
        end_ts = sql_ts(end),
    )
}

/// A range as SQL parameters: both None for "all time", else clamped to years 1 to 9999, which
/// `to_timestamp` converts without error (its float seconds lose the exact ends of
/// timestamptz's own range), so absurd times are an empty answer rather than a database error.
pub(crate) fn clamp_range(
    range: Option<(TimestampMs, TimestampMs)>,
) -> (Option<TimestampMs>, Option<TimestampMs>) {
    const YEAR_1: TimestampMs = -62_135_596_800_000;
    const YEAR_10000: TimestampMs = 253_402_300_800_000;
    match range {
        None => (None, None),
        Some((s, e)) => (
            Some(s.clamp(YEAR_1, YEAR_10000 - 1)),
            Some(e.clamp(YEAR_1, YEAR_10000 - 1)),
        ),
    }
}

/// What [`Store::select_series`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum SeriesSelection {
    /// Every selected series, each once, sorted by metric and labels.
    Series(Vec<SeriesInfo>),
    /// More series than the limit matched; reading stopped at the first one past it, so a
    /// refused request costs no more than the limit.
    OverLimit,
}

/// Samples (16 bytes each) that one read of raw samples in [`Store::query_range`] should hold
/// at most, estimated with [`ASSUMED_SCRAPE_MS`]: 100 series of a week at 15 s in one read.
const RAW_SAMPLES_PER_READ: i64 = 4_000_000;
const ASSUMED_SCRAPE_MS: i64 = 15_000;

/// Prometheus' limit, for the same reason: a range/step pair asking for more points than a
/// chart can show is almost certainly a mistake.
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;

impl Store {
    /// All metric names, sorted.
    pub async fn metric_names(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT DISTINCT metric FROM series ORDER BY 1")
            .fetch_all(self.read_pool())
            .await
            .context("listing metric names")
    }

    /// Label names used by series (of `metric`, if given), sorted. `__name__` is not a
    /// stored label and is not listed.
    pub async fn label_names(&self, metric: Option<&str>) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT DISTINCT k FROM series, jsonb_object_keys(labels) AS k \
             WHERE $1::text IS NULL OR metric = $1 ORDER BY 1",
        )
        .bind(metric)
        .fetch_all(self.read_pool())
        .await
        .context("listing label names")
    }

    /// Values of `label` across series (of `metric`, if given), sorted. `__name__` lists
    /// metric names.
    pub async fn label_values(
        &self,
        label: &str,
        metric: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        if label == "__name__" {
            return sqlx::query_scalar(
                "SELECT DISTINCT metric FROM series WHERE $1::text IS NULL OR metric = $1 ORDER BY 1",
            )
            .bind(metric)
            .fetch_all(self.read_pool())
            .await
            .context("listing metric names");
        }
        sqlx::query_scalar(
            "SELECT DISTINCT labels ->> $1 FROM series \
             WHERE labels ? $1 AND ($2::text IS NULL OR metric = $2) ORDER BY 1",
        )
        .bind(label)
        .bind(metric)
        .fetch_all(self.read_pool())
        .await
        .context("listing label values")
    }

    /// Series whose key matches the selector. The metric name and equality matchers narrow
    /// the candidates in SQL; every matcher is then applied in Rust with
    /// [`Selector::matches`], so Prometheus' regex semantics hold exactly.
    pub async fn find_series(&self, sel: &Selector) -> Result<Vec<SeriesInfo>, StoreError> {
        self.find_series_in(sel, None).await
    }

    /// [`Store::find_series`], limited to the series that are live in `range` (Unix ms,
    /// inclusive) by [`LIVE_IN_RANGE`]'s rule when a range is given.
    pub async fn find_series_in(
        &self,
        sel: &Selector,
        range: Option<(TimestampMs, TimestampMs)>,
    ) -> Result<Vec<SeriesInfo>, StoreError> {
        let (start, end) = clamp_range(range);
        let rows: Vec<(i64, String, String, String, i64, i64)> = sqlx::query_as(&format!(
            "SELECT id, metric, labels::text, metric_type, {}, {} FROM series \
             WHERE ($1::text IS NULL OR metric = $1) AND labels @> $2::jsonb \
             AND ($3::bigint IS NULL OR {}) ORDER BY metric, id",
            sql_ms("first_seen"),
            sql_ms("last_seen"),
            live_in_range_sql("series", 3, 4),
        ))
        .bind(sel.metric.as_deref())
        .bind(must_contain(sel))
        .bind(start)
        .bind(end)
        .fetch_all(self.read_pool())
        .await
        .context("looking up series")?;
        let mut out = Vec::new();
        for (id, metric, labels, metric_type, first_seen, last_seen) in rows {
            let labels = parse_labels(id, &labels)?;
            let key = SeriesKey::new(metric, labels);
            if !sel.matches(&key) {
                continue;
            }
            let metric_type = metric_type
                .parse()
                .map_err(|e: String| StoreError::Corrupt(format!("series {id}: {e}")))?;
            out.push(SeriesInfo {
                id,
                key,
                metric_type,
                first_seen,
                last_seen,
            });
        }
        Ok(out)
    }

    /// Series matching any of `sels`, each once however many selectors match it (repeated
    /// and overlapping selectors read the series table once), live in `range` by
    /// [`LIVE_IN_RANGE`]'s rule when one is given, sorted by metric and labels. Answers
    /// [`SeriesSelection::OverLimit`] as soon as more than `max_series` match, without reading
    /// the rest. `statement_timeout` shortens the read pool's own (a query's remaining budget).
    pub async fn select_series(
        &self,
        sels: &[Selector],
        range: Option<(TimestampMs, TimestampMs)>,
        max_series: usize,
        statement_timeout: Option<Duration>,
    ) -> Result<SeriesSelection, StoreError> {
        // The SQL part of each selector: its metric and the labels it requires equal. Several
        // selectors often share it (`up` and `up{job=~"a.*"}`); each is asked once.
        let mut candidates: Vec<(Option<&str>, String)> = Vec::new();
        for sel in sels {
            let c = (sel.metric.as_deref(), must_contain(sel));
            if !candidates.contains(&c) {
                candidates.push(c);
            }
        }
        if candidates.is_empty() {
            return Ok(SeriesSelection::Series(Vec::new()));
        }
        let mut distinct: Vec<&Selector> = Vec::new();
        for sel in sels {
            if !distinct.contains(&sel) {
                distinct.push(sel);
            }
        }
        let any_candidate = (0..candidates.len())
            .map(|i| {
                let (m, l) = (3 + 2 * i, 4 + 2 * i);
                format!("((${m}::text IS NULL OR metric = ${m}) AND labels @> ${l}::jsonb)")
            })
            .collect::<Vec<_>>()
            .join(" OR ");
        // No ORDER BY: rows stream as PostgreSQL finds them, so a refusal stops early.
        let sql = format!(
            "SELECT id, metric, labels::text, metric_type, {}, {} FROM series \
             WHERE ({any_candidate}) AND ($1::bigint IS NULL OR {})",
            sql_ms("first_seen"),
            sql_ms("last_seen"),
            live_in_range_sql("series", 1, 2),
        );
        let (start, end) = clamp_range(range);
        let mut q = sqlx::query_as::<_, (i64, String, String, String, i64, i64)>(&sql)
            .bind(start)
            .bind(end);
        for (metric, labels) in &candidates {
            q = q.bind(*metric).bind(labels.as_str());
        }
        let mut tx = self.read_transaction(statement_timeout).await?;
        let mut rows = q.fetch(&mut *tx);
        let mut out = Vec::new();
        while let Some((id, metric, labels, metric_type, first_seen, last_seen)) =
            rows.try_next().await.context("looking up series")?
        {
            let labels = parse_labels(id, &labels)?;
            let key = SeriesKey::new(metric, labels);
            if !distinct.iter().any(|s| s.matches(&key)) {
                continue;
            }
            if out.len() == max_series {
                return Ok(SeriesSelection::OverLimit);
            }
            let metric_type = metric_type
                .parse()
                .map_err(|e: String| StoreError::Corrupt(format!("series {id}: {e}")))?;
            out.push(SeriesInfo {
                id,
                key,
                metric_type,
                first_seen,
                last_seen,
            });
        }
        drop(rows);
        tx.commit().await.context("ending a read")?;
        out.sort_by(|a, b| (&a.key.metric, &a.key.labels).cmp(&(&b.key.metric, &b.key.labels)));
        Ok(SeriesSelection::Series(out))
    }

    /// Samples of the series `ids` with `mint <= t <= maxt`, at most one per timestamp (a
    /// re-sent sample is read once), in time order, by series id; series without samples in
    /// the range are absent. `statement_timeout` as in [`Store::select_series`].
    pub async fn raw_points(
        &self,
        ids: &[i64],
        mint: TimestampMs,
        maxt: TimestampMs,
        statement_timeout: Option<Duration>,
    ) -> Result<HashMap<i64, Vec<(TimestampMs, f64)>>, StoreError> {
        // Bound the range to what PostgreSQL can represent, so absurd query times are an
        // empty answer rather than a database error.
        let mint = mint.clamp(MIN_TIMESTAMP_MS, END_TIMESTAMP_MS - 1);
        let maxt = maxt.clamp(MIN_TIMESTAMP_MS, END_TIMESTAMP_MS - 1);
        let mut points: HashMap<i64, Vec<(TimestampMs, f64)>> = HashMap::new();
        let unique: HashSet<i64> = ids.iter().copied().collect();
        if unique.is_empty() || maxt < mint {
            return Ok(points);
        }
        let ids: Vec<i64> = unique.into_iter().collect();
        let mut tx = self.read_transaction(statement_timeout).await?;
        points = merged_samples(&mut tx, Some(&ids), mint, maxt).await?;
        tx.commit().await.context("ending a read")?;
        Ok(points)
    }

    /// A transaction on the read pool whose statements stop at `statement_timeout` when that
    /// is shorter than the pool's own ([`crate::StoreConfig::read_statement_timeout`]):
    /// PostgreSQL cancels them itself, so a query past its deadline stops using a backend
    /// instead of running on after the client was answered.
    async fn read_transaction(
        &self,
        statement_timeout: Option<Duration>,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        let mut tx = self.read_pool().begin().await.context("starting a read")?;
        let pool_limit = Some(self.config().read_statement_timeout).filter(|t| !t.is_zero());
        let limit = match (statement_timeout, pool_limit) {
            (Some(t), Some(p)) if t < p => Some(t),
            (Some(t), None) => Some(t),
            _ => None,
        };
        if let Some(t) = limit {
            // 0 would mean "no limit" to PostgreSQL: an exhausted budget is 1 ms.
            let ms = t.as_millis().max(1);
            sqlx::query("SELECT set_config('statement_timeout', $1, true)")
                .bind(format!("{ms}ms"))
                .execute(&mut *tx)
                .await
                .context("setting the read's statement_timeout")?;
        }
        Ok(tx)
    }

    /// Points of every selected series: one per `step_ms` bucket (aligned to the Unix epoch)
    /// that intersects `[start, end]` and holds samples, reduced with `q.aggregation` over
    /// the whole bucket. Buckets below the rollup watermark are read from `samples_1h`
    /// (step a multiple of 1 h) or, in TimescaleDB mode, `samples_1m` (a multiple of 1 min);
    /// the rest from raw samples (compacted chunks and fresh rows), aggregated here. Series without points are left out; series are sorted by metric and labels.
    pub async fn query_range(
        &self,
        sel: &Selector,
        q: &RangeQuery,
    ) -> Result<Vec<RangeSeries>, StoreError> {
        if q.step_ms <= 0 {
            return Err(StoreError::InvalidQuery(format!(
                "step must be positive, got {} ms",
                q.step_ms
            )));
        }
        if q.end < q.start {
            return Err(StoreError::InvalidQuery(format!(
                "end ({}) is before start ({}); swap them",
                q.end, q.start
            )));
        }
        let from = q.start.div_euclid(q.step_ms) * q.step_ms;
        let to = q
            .end
            .div_euclid(q.step_ms)
            .checked_mul(q.step_ms)
            .and_then(|b| b.checked_add(q.step_ms))
            .ok_or_else(|| StoreError::InvalidQuery("end is too far in the future".to_string()))?;
        let points = (to - from) / q.step_ms;
        if points > MAX_POINTS_PER_SERIES {
            return Err(StoreError::InvalidQuery(format!(
                "the range asks for {points} points per series, more than {MAX_POINTS_PER_SERIES}; increase the step or shorten the range"
            )));
        }

        let series = self.find_series(sel).await?;
        if series.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = series.iter().map(|s| s.id).collect();

        let rollup = if q.step_ms % HOUR_MS == 0 {
            Some(("samples_1h", "1h"))
        } else if q.step_ms % MINUTE_MS == 0 && self.mode() == StorageMode::TimescaleDb {
            Some(("samples_1m", "1m"))
        } else {
            // Plain mode stores no minute rollup (migration 0094): decoding an hour chunk
            // and bucketing it here is cheaper than reading the hour's 60 rollup rows was.
            None
        };
        // Buckets before `split` come from the rollup table. The split is on a step
        // boundary, so no bucket mixes both sources.
        // Both modes: TimescaleDB's continuous aggregates keep the same watermark and dirty
        // range (see crate::timescale).
        let split = match rollup {
            None => from,
            Some((_, name)) => {
                // Late samples below the watermark are not in the rollups until the next
                // maintenance: read raw from the start of that dirty range (tracked on the 1m
                // row; 1h is built from 1m), so a query never misses accepted data.
                let watermark: Option<i64> = sqlx::query_scalar(&format!(
                    "SELECT {} FROM rollup_state r, rollup_state m WHERE r.name = $1 AND m.name = '1m'",
                    sql_ms("CASE WHEN m.dirty_from IS NULL THEN r.watermark ELSE least(r.watermark, m.dirty_from) END")
                ))
                .bind(name)
                .fetch_one(self.read_pool())
                .await
                .context("reading the rollup watermark")?;
                watermark
                    .map(|w| (w.div_euclid(q.step_ms) * q.step_ms).clamp(from, to))
                    .unwrap_or(from)
            }
        };

        let mut points: HashMap<i64, Vec<(TimestampMs, f64)>> = HashMap::new();
        if let (Some((table, _)), true) = (rollup, split > from) {
            let agg = rollup_aggregate(q.aggregation);
            if self.mode() == StorageMode::TimescaleDb {
                // Buckets with duplicate timestamps come from de-duplicated raw samples.
                self.timescale_buckets(
                    &mut points,
                    table,
                    agg,
                    q.aggregation,
                    &ids,
                    q.step_ms,
                    from,
                    split,
                )
                .await?;
            } else {
                self.fetch_buckets(
                    &mut points,
                    table,
                    "bucket",
                    agg,
                    &ids,
                    q.step_ms,
                    from,
                    split,
                )
                .await?;
            }
        }
        if to > split {
            // Raw buckets come from de-duplicated samples (fresh rows and, for late samples
            // below the watermark, compacted chunks), aggregated here.
            let mut conn = self
                .read_pool()
                .acquire()
                .await
                .context("starting a read")?;
            // Long ranges a group of series at a time: minute steps over days decode every
            // sample of the range, which is held only briefly this way; short ranges in one
            // read, because each read scans the fresh rows of its range once.
            let per_series = ((to - split) / ASSUMED_SCRAPE_MS).max(1);
            let group = usize::try_from(RAW_SAMPLES_PER_READ / per_series)
                .unwrap_or(usize::MAX)
                .max(1);
            for group in ids.chunks(group) {
                let raw = merged_samples(&mut conn, Some(group), split, to - 1).await?;
                for (id, samples) in raw {
                    let pts = bucket::points(&samples, q.step_ms, q.aggregation);
                    points.entry(id).or_default().extend(pts);
                }
            }
        }

        let mut out: Vec<RangeSeries> = series
            .into_iter()
            .filter_map(|s| {
                let pts = points.remove(&s.id)?;
                Some(RangeSeries {
                    metric: s.key.metric,
                    labels: s.key.labels,
                    points: pts,
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.metric, &a.labels).cmp(&(&b.metric, &b.labels)));
        Ok(out)
    }

    /// Appends (bucket, value) per series for buckets in [from, to), ascending.
    #[allow(clippy::too_many_arguments)]
    async fn fetch_buckets(
        &self,
        points: &mut HashMap<i64, Vec<(TimestampMs, f64)>>,
        table: &str,
        time_column: &str,
        aggregate: &str,
        ids: &[i64],
        step_ms: i64,
        from: TimestampMs,
        to: TimestampMs,
    ) -> Result<(), StoreError> {
        let bucket = format!(
            "date_bin($2::bigint * interval '1 millisecond', {time_column}, timestamptz 'epoch')"
        );
        let sql = format!(
            "SELECT series_id, {} AS b, {aggregate} AS v FROM {table} \
             WHERE series_id = ANY($1) AND {time_column} >= {} AND {time_column} < {} \
             GROUP BY series_id, {bucket} ORDER BY series_id, {bucket}",
            sql_ms(&bucket),
            sql_ts(3),
            sql_ts(4),
        );
        let rows: Vec<(i64, i64, f64)> = sqlx::query_as(&sql)
            .bind(ids)
            .bind(step_ms)
            .bind(from)
            .bind(to)
            .fetch_all(self.read_pool())
            .await
            .context("querying a range")?;
        for (id, b, v) in rows {
            points.entry(id).or_default().push((b, v));
        }
        Ok(())
    }
}

/// The same aggregates recombined from rollup rows.
fn rollup_aggregate(a: Aggregation) -> &'static str {
    match a {
        Aggregation::Avg => "sum(sum) / sum(count)::float8",
        Aggregation::Min => "min(min)",
        Aggregation::Max => "max(max)",
        Aggregation::Sum => "sum(sum)",
        Aggregation::Count => "sum(count)::float8",
        Aggregation::Last => "(array_agg(last ORDER BY last_ts DESC, last DESC))[1]",
    }
}

/// The labels `sel` requires equal to a non-empty value, as a JSON object for `labels @>`.
fn must_contain(sel: &Selector) -> String {
    let map: serde_json::Map<String, serde_json::Value> = sel
        .matchers
        .iter()
        .filter(|m| m.op == model::MatchOp::Eq && m.name != "__name__" && !m.value.is_empty())
        .map(|m| (m.name.clone(), serde_json::Value::String(m.value.clone())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

pub(crate) fn parse_labels(id: i64, json: &str) -> Result<Labels, StoreError> {
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(json).map_err(|e| {
            StoreError::Corrupt(format!("labels of series {id} are not a JSON object: {e}"))
        })?;
    let mut labels = Labels::new();
    for (k, v) in map {
        match v {
            serde_json::Value::String(s) => labels.insert(k, s),
            other => {
                return Err(StoreError::Corrupt(format!(
                    "label {k:?} of series {id} is {other}, not a string"
                )))
            }
        }
    }
    Ok(labels)
}
