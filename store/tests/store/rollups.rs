//! Rollups and range queries: results must equal an independent computation from the
//! generated samples, whichever mix of rollup and raw data the store reads.

use super::*;
use model::{Aggregation, RangeQuery, Selector};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::time::Duration;

/// (series index, ts ms, value)
type Generated = Vec<(usize, i64, f64)>;

const SERIES: usize = 4;

fn series_key(i: usize) -> SeriesKey {
    key("rollup_test", &[("instance", &format!("host-{i}"))])
}

/// Samples every 1–40 s with millisecond jitter over `hours` hours from `t0`, values spread
/// over several magnitudes (all finite and positive, so sums do not cancel).
fn generate(rng: &mut StdRng, t0: i64, hours: i64) -> Generated {
    let mut out = Vec::new();
    for s in 0..SERIES {
        let mut t = t0 + rng.gen_range(0..5_000);
        while t < t0 + hours * HOUR {
            let v = rng.gen_range(0.5..1000.0) * 10f64.powi(rng.gen_range(-3..4));
            out.push((s, t, v));
            t += rng.gen_range(1_000..40_000);
        }
    }
    out
}

fn to_batches(data: &Generated) -> Vec<Batch> {
    // Several batches, as an ingest queue would hand them over.
    data.chunks(500)
        .map(|chunk| {
            let mut by_series: BTreeMap<usize, Vec<(i64, f64)>> = BTreeMap::new();
            for &(s, t, v) in chunk {
                by_series.entry(s).or_default().push((t, v));
            }
            batch(
                by_series
                    .into_iter()
                    .map(|(s, pts)| series(series_key(s), &pts))
                    .collect(),
            )
        })
        .collect()
}

/// What query_range must return, computed directly from the samples: every bucket of
/// `step` that intersects [start, end], aggregated over the whole bucket.
fn expected(data: &Generated, q: &RangeQuery) -> BTreeMap<usize, Vec<(i64, f64)>> {
    let from = q.start.div_euclid(q.step_ms) * q.step_ms;
    let to = q.end.div_euclid(q.step_ms) * q.step_ms + q.step_ms;
    let mut buckets: BTreeMap<(usize, i64), Vec<(i64, f64)>> = BTreeMap::new();
    for &(s, t, v) in data {
        if t >= from && t < to {
            buckets
                .entry((s, t.div_euclid(q.step_ms) * q.step_ms))
                .or_default()
                .push((t, v));
        }
    }
    let mut out: BTreeMap<usize, Vec<(i64, f64)>> = BTreeMap::new();
    for ((s, b), mut pts) in buckets {
        pts.sort_by(|x, y| x.0.cmp(&y.0).then(x.1.total_cmp(&y.1)));
        let values: Vec<f64> = pts.iter().map(|p| p.1).collect();
        let sum: f64 = values.iter().sum();
        let v = match q.aggregation {
            Aggregation::Avg => sum / values.len() as f64,
            Aggregation::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
            Aggregation::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Aggregation::Sum => sum,
            Aggregation::Count => values.len() as f64,
            Aggregation::Last => pts.last().unwrap().1,
        };
        out.entry(s).or_default().push((b, v));
    }
    out
}

async fn check(store: &Store, data: &Generated, start: i64, end: i64, step_ms: i64) {
    let sel = Selector::parse(r#"rollup_test{instance=~"host-.*"}"#).unwrap();
    for aggregation in Aggregation::ALL {
        let q = RangeQuery {
            start,
            end,
            step_ms,
            aggregation,
        };
        let want = expected(data, &q);
        let got = store.query_range(&sel, &q).await.unwrap();
        assert_eq!(
            got.len(),
            want.len(),
            "series count, step {step_ms} {aggregation:?}"
        );
        for rs in got {
            let idx: usize = rs.labels.get("instance").unwrap()["host-".len()..]
                .parse()
                .unwrap();
            let w = &want[&idx];
            assert_eq!(
                rs.points.iter().map(|p| p.0).collect::<Vec<_>>(),
                w.iter().map(|p| p.0).collect::<Vec<_>>(),
                "buckets of series {idx}, step {step_ms} {aggregation:?}"
            );
            for (g, e) in rs.points.iter().zip(w) {
                let tol = 1e-9 * g.1.abs().max(e.1.abs());
                assert!(
                    (g.1 - e.1).abs() <= tol,
                    "series {idx} bucket {} step {step_ms} {aggregation:?}: got {} want {}",
                    g.0,
                    g.1,
                    e.1
                );
            }
        }
    }
}

#[tokio::test]
async fn range_queries_match_an_independent_computation_across_rollups_and_raw() {
    let store = store_with(StoreConfig {
        rollup_lag: Duration::from_secs(120),
        ..StoreConfig::default()
    })
    .await;
    let mut rng = StdRng::seed_from_u64(0x5eed);
    // Five hours ending an hour ago, starting on an hour boundary.
    let t0 = (now_ms() / HOUR - 6) * HOUR;
    let mut data = generate(&mut rng, t0, 5);
    for b in to_batches(&data) {
        store.write(&[b]).await.unwrap();
    }

    // Roll up to t0 + 3h17m: the hour watermark lands at t0 + 3h, so hour-step queries read
    // rollups for the first part and raw samples for the rest. Minute buckets are computed on
    // read from the samples (plain mode stores no minute rollup).
    let report = store
        .maintain(t0 + 3 * HOUR + 17 * MINUTE + 2 * MINUTE)
        .await
        .unwrap();
    // TimescaleDB keeps a minute aggregate whose watermark lands at t0 + 3h17m; plain mode
    // keeps none, and reports the hour watermark for it.
    let timescale = store.mode() == store::StorageMode::TimescaleDb;
    let minute_watermark = if timescale {
        t0 + 3 * HOUR + 17 * MINUTE
    } else {
        t0 + 3 * HOUR
    };
    assert_eq!(report.watermark_1m, Some(minute_watermark));
    assert_eq!(report.watermark_1h, Some(t0 + 3 * HOUR));
    assert!(
        (report.rollup_1m_rows > 0) == timescale && report.rollup_1h_rows > 0,
        "{report:?}"
    );

    let (start, end) = (t0 - 30 * MINUTE + 1234, t0 + 5 * HOUR + 10 * MINUTE);
    for step in [MINUTE, HOUR, 15_000, 5 * MINUTE, 2 * HOUR] {
        check(&store, &data, start, end, step).await;
    }
    // A range that starts and ends inside buckets.
    check(
        &store,
        &data,
        t0 + 61 * MINUTE + 7,
        t0 + 4 * HOUR + 59 * MINUTE + 59_999,
        HOUR,
    )
    .await;

    // Late samples below both watermarks: reflected after the next maintenance.
    let late = vec![
        (0usize, t0 + 30 * MINUTE + 5_000 + 1, 1e6),
        (2usize, t0 + 2 * HOUR + 1, 0.25),
    ];
    let stale_check = late.clone();
    store.write(&to_batches(&late)).await.unwrap();
    data.extend(stale_check);
    // Before that maintenance, queries read raw samples from the dirty range on, so the late
    // samples are already visible.
    for step in [MINUTE, HOUR] {
        check(&store, &data, start, end, step).await;
    }
    let again = store.maintain(t0 + 3 * HOUR + 19 * MINUTE).await.unwrap();
    assert!(
        again.rollup_1h_rows > 0,
        "late buckets re-rolled: {again:?}"
    );
    for step in [MINUTE, HOUR, 15_000] {
        check(&store, &data, start, end, step).await;
    }

    // Prove the hour rollup is what is read below its watermark: without raw samples, the
    // rolled-up hours still answer, and only those; steps of minutes or seconds read samples.
    let watermark_1h = again.watermark_1h.unwrap();
    for table in ["samples", "sample_chunks"] {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(store.pool())
            .await
            .unwrap();
    }
    let rolled: Generated = data
        .iter()
        .copied()
        .filter(|d| d.1 < watermark_1h)
        .collect();
    check(&store, &rolled, start, watermark_1h - 1, HOUR).await;
    // TimescaleDB mode keeps a minute rollup (a continuous aggregate); plain mode does not.
    let steps = match store.mode() {
        store::StorageMode::Postgres => vec![15_000, MINUTE],
        store::StorageMode::TimescaleDb => vec![15_000],
    };
    for step_ms in steps {
        let raw_only = store
            .query_range(
                &Selector::parse("rollup_test").unwrap(),
                &RangeQuery {
                    start,
                    end,
                    step_ms,
                    aggregation: Aggregation::Count,
                },
            )
            .await
            .unwrap();
        assert!(
            raw_only.is_empty(),
            "{step_ms} ms steps have no stored rollup and read raw samples"
        );
    }
}

#[tokio::test]
async fn special_values_aggregate_the_same_from_rollups_and_raw() {
    let store = store().await;
    let t0 = (now_ms() / HOUR - 3) * HOUR;
    let k = key("special_agg", &[]);
    let samples = [
        (t0 + 1_000, 1.0),
        (t0 + 2_000, f64::NAN),
        (t0 + MINUTE + 1_000, f64::INFINITY),
        (t0 + MINUTE + 2_000, 5.0),
        (t0 + 2 * MINUTE, f64::NEG_INFINITY),
    ];
    store
        .write(&[batch(vec![series(k, &samples)])])
        .await
        .unwrap();
    let sel = Selector::parse("special_agg").unwrap();
    // Minute steps (computed from samples) and hour steps (raw before maintenance, the hour
    // rollup after).
    let queries: Vec<(Aggregation, i64)> = Aggregation::ALL
        .into_iter()
        .flat_map(|a| [(a, MINUTE), (a, HOUR)])
        .collect();
    let q = |(aggregation, step_ms): (Aggregation, i64)| RangeQuery {
        start: t0,
        end: t0 + 3 * MINUTE,
        step_ms,
        aggregation,
    };
    let mut before = Vec::new();
    for &a in &queries {
        before.push(store.query_range(&sel, &q(a)).await.unwrap());
    }
    let report = store.maintain(t0 + 2 * HOUR).await.unwrap();
    assert_eq!(report.watermark_1h, Some(t0 + HOUR), "{report:?}");
    for (i, &a) in queries.iter().enumerate() {
        let after = store.query_range(&sel, &q(a)).await.unwrap();
        let bits = |r: &Vec<model::RangeSeries>| {
            r[0].points
                .iter()
                .map(|p| {
                    (
                        p.0,
                        if p.1.is_nan() {
                            u64::MAX
                        } else {
                            p.1.to_bits()
                        },
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&before[i]), bits(&after), "{a:?}");
    }
    // PostgreSQL semantics, which both paths follow: NaN sorts above every number.
    let max = store
        .query_range(&sel, &q((Aggregation::Max, MINUTE)))
        .await
        .unwrap();
    assert!(max[0].points[0].1.is_nan());
    let min = store
        .query_range(&sel, &q((Aggregation::Min, MINUTE)))
        .await
        .unwrap();
    assert_eq!(min[0].points[1].1, 5.0);
    assert_eq!(min[0].points[2].1, f64::NEG_INFINITY);
    let min = store
        .query_range(&sel, &q((Aggregation::Min, HOUR)))
        .await
        .unwrap();
    assert_eq!(min[0].points, vec![(t0, f64::NEG_INFINITY)]);
}

#[tokio::test]
async fn rollups_stay_exact_while_writers_race_maintenance() {
    let store = store().await;
    let t0 = (now_ms() / HOUR - 5) * HOUR;
    let mut rng = StdRng::seed_from_u64(7);
    // Three writers with their own series (indexes 10w..10w+SERIES), each sending its
    // samples in shuffled batches, so many land below a watermark that moves meanwhile.
    let mut all: Generated = Vec::new();
    let mut writers = Vec::new();
    for w in 0..3usize {
        let mut data: Generated = generate(&mut rng, t0, 3)
            .into_iter()
            .map(|(s, t, v)| (10 * w + s, t, v))
            .collect();
        all.extend(data.iter().copied());
        use rand::seq::SliceRandom;
        data.shuffle(&mut rng);
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for chunk in data.chunks(97) {
                store.write(&to_batches(&chunk.to_vec())).await.unwrap();
            }
        }));
    }
    let maint = {
        let store = store.clone();
        tokio::spawn(async move {
            for k in 1..=20 {
                store.maintain(t0 + k * 10 * MINUTE).await.unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    for w in writers {
        w.await.unwrap();
    }
    maint.await.unwrap();
    let report = store.maintain(t0 + 4 * HOUR).await.unwrap();
    assert_eq!(report.watermark_1h, Some(t0 + 3 * HOUR));

    let (start, end) = (t0, t0 + 3 * HOUR - 1);
    // Everything asked is below both watermarks, so these read rollups only.
    check(&store, &all, start, end, MINUTE).await;
    check(&store, &all, start, end, HOUR).await;
    sqlx::query("DELETE FROM samples")
        .execute(store.pool())
        .await
        .unwrap();
    check(&store, &all, start, end, MINUTE).await;
    check(&store, &all, start, end, HOUR).await;
}

/// Plain mode stores no minute rollup: minute buckets are computed on read from compacted
/// chunks and fresh rows. Over a range that spans compacted hours, an hour written into after
/// it was compacted (dirty) and the fresh part not compacted yet, with re-sent copies stored
/// twice, every aggregation at minute steps (and at the other steps) equals the reference,
/// before and after the maintenance that merges the late samples.
#[tokio::test]
async fn minute_steps_over_compacted_dirty_and_fresh_hours_equal_the_reference() {
    let store = store().await;
    let mut rng = StdRng::seed_from_u64(0x10);
    let now = now_ms();
    let t0 = (now / HOUR - 4) * HOUR;
    // One sample per (series, timestamp), the larger value on a conflict: the store's rule.
    let mut reference: BTreeMap<(usize, i64), f64> = BTreeMap::new();
    let add = |reference: &mut BTreeMap<(usize, i64), f64>, (s, t, v): (usize, i64, f64)| {
        let e = reference.entry((s, t)).or_insert(v);
        if v.total_cmp(e).is_gt() {
            *e = v;
        }
    };
    let first: Generated = generate(&mut rng, t0, 5)
        .into_iter()
        .filter(|d| d.1 < now)
        .collect();
    for &d in &first {
        add(&mut reference, d);
    }
    store.write(&to_batches(&first)).await.unwrap();
    // A retry re-sends every fifth sample unchanged.
    let resent: Generated = first.iter().copied().step_by(5).collect();
    store.write(&to_batches(&resent)).await.unwrap();

    // Rolls up and compacts every hour that ended at least 10 minutes ago.
    let report = store.maintain(now).await.unwrap();
    let plain = store.mode() == store::StorageMode::Postgres;
    if plain {
        assert!(report.compaction.chunks >= 3 * SERIES as u64, "{report:?}");
        let samples_1m: Option<String> =
            sqlx::query_scalar("SELECT to_regclass('samples_1m')::text")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(samples_1m, None, "plain mode has no minute rollup table");
    }

    // Late samples into a compacted hour: a new timestamp, a re-sent one and a larger value
    // for a stored timestamp.
    let in_hour_1: Vec<(usize, i64, f64)> = first
        .iter()
        .copied()
        .filter(|d| d.1 >= t0 + HOUR && d.1 < t0 + 2 * HOUR)
        .collect();
    let (s, t, v) = in_hour_1[3];
    let late = vec![
        (1usize, t0 + HOUR + 30 * MINUTE + 7, 123.5),
        in_hour_1[1],
        (s, t, v + 1e4),
    ];
    for &d in &late {
        add(&mut reference, d);
    }
    store.write(&to_batches(&late)).await.unwrap();
    if plain {
        let (dirty, fresh_above): (Option<i64>, i64) = sqlx::query_as(
            "SELECT (SELECT (extract(epoch FROM dirty_from) * 1000)::bigint FROM rollup_state \
               WHERE name = 'compact'), \
             (SELECT count(*) FROM samples WHERE ts >= (SELECT watermark FROM rollup_state \
               WHERE name = 'compact'))",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(dirty, late.iter().map(|d| d.1).min(), "a dirty hour");
        assert!(fresh_above > 0, "a fresh part");
    }

    let data: Generated = reference.iter().map(|(&(s, t), &v)| (s, t, v)).collect();
    let (start, end) = (t0 - 10 * MINUTE + 123, now);
    for step in [MINUTE, 5 * MINUTE, 15_000, HOUR] {
        check(&store, &data, start, end, step).await;
    }
    check(
        &store,
        &data,
        t0 + HOUR + 17 * MINUTE + 5,
        t0 + 2 * HOUR + 3,
        MINUTE,
    )
    .await;

    // The next maintenance merges the late samples into their chunk and hour rollup.
    let again = store.maintain(now + MINUTE).await.unwrap();
    if plain {
        assert!(again.compaction.rows >= late.len() as u64, "{again:?}");
        assert!(again.rollup_1h_rows >= SERIES as u64, "{again:?}");
    }
    for step in [MINUTE, 5 * MINUTE, HOUR] {
        check(&store, &data, start, end, step).await;
    }
}
