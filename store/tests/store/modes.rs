//! What must hold in both storage modes (plain PostgreSQL and TimescaleDB, see
//! `store::testing`): late and re-sent samples give the same answers at every step, before
//! and after maintenance; maintenance moves last_seen and expires raw samples with their
//! rollups; a changed config does not stop a restart. Each test also asserts the mode it ran
//! in, so a run meant for TimescaleDB cannot pass on plain PostgreSQL.

use super::*;
use model::{Aggregation, RangeQuery, Selector};
use std::collections::BTreeMap;
use std::time::Duration;
use store::StorageMode;

const METRIC: &str = "mode_test";

fn skey(i: usize) -> SeriesKey {
    key(METRIC, &[("instance", &format!("host-{i}"))])
}

async fn mode_store(cfg: StoreConfig) -> Store {
    let s = store_with(cfg).await;
    assert_eq!(s.mode(), store::testing::expected_mode().await);
    s
}

async fn write(store: &Store, data: &[(usize, i64, f64)]) {
    let mut by_series: BTreeMap<usize, Vec<(i64, f64)>> = BTreeMap::new();
    for &(s, t, v) in data {
        by_series.entry(s).or_default().push((t, v));
    }
    let b = batch(
        by_series
            .into_iter()
            .map(|(s, pts)| series(skey(s), &pts))
            .collect(),
    );
    store.write(&[b]).await.unwrap();
}

/// One sample per (series, ts), the larger value (total order) kept: the documented rule.
fn dedup(data: &[(usize, i64, f64)]) -> BTreeMap<(usize, i64), f64> {
    let mut out: BTreeMap<(usize, i64), f64> = BTreeMap::new();
    for &(s, t, v) in data {
        out.entry((s, t))
            .and_modify(|w| {
                if v.total_cmp(w).is_gt() {
                    *w = v
                }
            })
            .or_insert(v);
    }
    out
}

/// What a range query must answer, from the de-duplicated samples.
fn expected(data: &[(usize, i64, f64)], q: &RangeQuery) -> BTreeMap<usize, Vec<(i64, f64)>> {
    let from = q.start.div_euclid(q.step_ms) * q.step_ms;
    let to = q.end.div_euclid(q.step_ms) * q.step_ms + q.step_ms;
    let mut buckets: BTreeMap<(usize, i64), Vec<(i64, f64)>> = BTreeMap::new();
    for ((s, t), v) in dedup(data) {
        if t >= from && t < to {
            buckets
                .entry((s, t.div_euclid(q.step_ms) * q.step_ms))
                .or_default()
                .push((t, v));
        }
    }
    let mut out: BTreeMap<usize, Vec<(i64, f64)>> = BTreeMap::new();
    for ((s, b), pts) in buckets {
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

/// Every aggregation at every step in `steps` over [start, end] equals [`expected`].
async fn check(store: &Store, data: &[(usize, i64, f64)], start: i64, end: i64, steps: &[i64]) {
    let sel = Selector::parse(METRIC).unwrap();
    for &step_ms in steps {
        for aggregation in Aggregation::ALL {
            let q = RangeQuery {
                start,
                end,
                step_ms,
                aggregation,
            };
            let want = expected(data, &q);
            let got: BTreeMap<usize, Vec<(i64, f64)>> = store
                .query_range(&sel, &q)
                .await
                .unwrap()
                .into_iter()
                .map(|rs| {
                    let i = rs.labels.get("instance").unwrap()["host-".len()..]
                        .parse()
                        .unwrap();
                    (i, rs.points)
                })
                .collect();
            assert_eq!(
                got.keys().collect::<Vec<_>>(),
                want.keys().collect::<Vec<_>>(),
                "series, step {step_ms} {aggregation:?}"
            );
            for (s, w) in &want {
                let g = &got[s];
                let first_wrong = g.iter().zip(w).position(|(a, b)| {
                    a.0 != b.0 || (a.1 - b.1).abs() > 1e-9 * a.1.abs().max(b.1.abs())
                });
                assert!(
                    first_wrong.is_none() && g.len() == w.len(),
                    "series {s}, step {step_ms} {aggregation:?}: {} points, want {}; first wrong: got {:?} want {:?}",
                    g.len(),
                    w.len(),
                    first_wrong.map(|i| g[i]),
                    first_wrong.map(|i| w[i]),
                );
            }
        }
    }
}

/// Two series, a sample every 10 s for `hours` hours from `t0`.
fn regular(t0: i64, hours: i64, salt: f64) -> Vec<(usize, i64, f64)> {
    let mut out = Vec::new();
    for s in 0..2 {
        let mut t = t0;
        while t < t0 + hours * HOUR {
            out.push((s, t, (t / 10_000 % 97) as f64 + s as f64 * 1000.0 + salt));
            t += 10_000;
        }
    }
    out
}

/// Minute and hour rollups, a multiple of the minute, and a step only raw samples serve.
const STEPS: [i64; 4] = [MINUTE, 5 * MINUTE, HOUR, 30_000];

/// Item 7 (a): samples written below the rollup watermark (a backfill, a day-old replay)
/// appear at every step at once and after the next maintenance, and stay there.
#[tokio::test]
async fn late_samples_below_the_watermark_appear_at_every_step() {
    let store = mode_store(StoreConfig::default()).await;
    let now = now_ms();
    // Two days ago to one hour ago, hour-aligned: the backfill lands well below the
    // watermark (and, in TimescaleDB mode, in chunks that may be compressed).
    let t0 = (now / HOUR - 48) * HOUR;
    let mut data = regular(t0 + 6 * HOUR, 40, 0.0);
    write(&store, &data).await;
    let report = store.maintain(now).await.unwrap();
    let w1m = report.watermark_1m.expect("the minute rollup ran");
    assert!(w1m >= t0 + 46 * HOUR, "watermark {w1m}");
    check(&store, &data, t0, now, &STEPS).await;

    // The backfill: the six hours before, and a gap filled in the middle of rolled-up data.
    let mut late = regular(t0, 6, 0.5);
    late.retain(|&(_, t, _)| t % 20_000 == 0);
    late.extend(
        regular(t0 + 20 * HOUR, 1, 0.25)
            .into_iter()
            .map(|(s, t, v)| (s, t + 5_000, v)),
    );
    write(&store, &late).await;
    data.extend(late);
    check(&store, &data, t0, now, &STEPS).await;
    store.maintain(now + MINUTE).await.unwrap();
    check(&store, &data, t0, now, &STEPS).await;
    // And once more, when nothing is dirty any more: the rollups alone hold them.
    store.maintain(now + 2 * MINUTE).await.unwrap();
    check(&store, &data, t0, now, &STEPS).await;
}

/// Item 7 (d): re-sent samples (same value) and conflicting ones (another value for the
/// same timestamp, a stale NaN) give one sample per timestamp, the larger value, at every
/// step and through the raw read, in rolled-up and fresh ranges alike.
#[tokio::test]
async fn re_sent_and_conflicting_samples_are_read_once_with_the_larger_value() {
    let store = mode_store(StoreConfig::default()).await;
    let now = now_ms();
    let t0 = (now / HOUR - 5) * HOUR;
    let mut data = regular(t0, 5, 0.0);
    write(&store, &data).await;
    store.maintain(now).await.unwrap();
    // Retries of a quarter of the samples, some with a larger value, some with a smaller one,
    // across rolled-up hours and the fresh part.
    let again: Vec<(usize, i64, f64)> = data
        .iter()
        .filter(|&&(_, t, _)| t % 40_000 == 0)
        .map(|&(s, t, v)| match (t / 40_000) % 3 {
            0 => (s, t, v),
            1 => (s, t, v + 0.5),
            _ => (s, t, v - 0.5),
        })
        .collect();
    write(&store, &again).await;
    data.extend(again.iter().copied());
    check(&store, &data, t0, now, &STEPS).await;
    store.maintain(now + MINUTE).await.unwrap();
    check(&store, &data, t0, now, &STEPS).await;
    write(&store, &again).await;
    data.extend(again);
    check(&store, &data, t0, now, &STEPS).await;

    // Equal timestamps at the end of a bucket: `last` is the larger value whichever copy
    // was written first.
    let edge = t0 + HOUR - 1;
    write(&store, &[(0, edge, 7.0)]).await;
    write(&store, &[(0, edge, 3.0)]).await;
    data.extend([(0, edge, 7.0), (0, edge, 3.0)]);
    store.maintain(now + 2 * MINUTE).await.unwrap();
    check(&store, &data, t0, now, &STEPS).await;

    let ids = store
        .find_series(&Selector::parse(METRIC).unwrap())
        .await
        .unwrap();
    let id0 = ids.iter().find(|s| s.key == skey(0)).unwrap().id;
    let raw = raw_samples(&store, id0).await;
    let want: Vec<(i64, f64)> = dedup(&data)
        .into_iter()
        .filter(|((s, _), _)| *s == 0)
        .map(|((_, t), v)| (t, v))
        .collect();
    assert_eq!(raw, want);
}

/// Item 7 (b): maintenance writes last_seen in both modes.
#[tokio::test]
async fn maintenance_moves_last_seen() {
    let store = mode_store(StoreConfig::default()).await;
    let now = now_ms();
    write(&store, &[(0, now - HOUR, 1.0)]).await;
    store.maintain(now).await.unwrap();
    write(&store, &[(0, now - MINUTE, 2.0)]).await;
    let report = store.maintain(now).await.unwrap();
    assert_eq!(report.last_seen_flushed, 1);
    let found = store
        .find_series(&Selector::parse(METRIC).unwrap())
        .await
        .unwrap();
    assert_eq!(found[0].last_seen, now - MINUTE);
}

/// Item 7 (c): retention removes raw samples and their rollups at the same day boundary,
/// and keeps both for the days inside the window.
#[tokio::test]
async fn retention_expires_raw_samples_and_their_rollups_together() {
    let store = mode_store(StoreConfig {
        retention_days: 2,
        ..StoreConfig::default()
    })
    .await;
    let now = now_ms();
    let day0 = now / DAY * DAY - DAY; // yesterday, 00:00 UTC
                                      // Evenings of the day before yesterday and of yesterday: inside the window now.
    let old = regular(day0 - DAY + 20 * HOUR, 2, 0.0);
    let recent = regular(day0 + 20 * HOUR, 2, 0.0);
    write(&store, &old).await;
    write(&store, &recent).await;
    store.maintain(now).await.unwrap();
    let rows = |table: &'static str, from: i64, to: i64| {
        let store = store.clone();
        async move {
            sqlx::query_scalar::<_, i64>(&format!(
                "SELECT count(*) FROM {table} WHERE bucket >= to_timestamp($1::float8 / 1000) \
                 AND bucket < to_timestamp($2::float8 / 1000)"
            ))
            .bind(from)
            .bind(to)
            .fetch_one(store.pool())
            .await
            .unwrap()
        }
    };
    // Plain mode computes minute buckets on read (migration 0094); TimescaleDB keeps its
    // minute aggregate.
    let timescale = store.mode() == StorageMode::TimescaleDb;
    let tables: &[&'static str] = if timescale {
        &["samples_1m", "samples_1h"]
    } else {
        &["samples_1h"]
    };
    for day in [day0 - DAY, day0] {
        if timescale {
            assert_eq!(rows("samples_1m", day, day + DAY).await, 2 * 120);
        }
        assert_eq!(rows("samples_1h", day, day + DAY).await, 2 * 2);
    }
    let mut all = old.clone();
    all.extend(recent.iter().copied());
    check(&store, &all, day0 - DAY, day0 + DAY - 1, &STEPS).await;

    // A day later the day before yesterday is past the two-day window; yesterday is not.
    store.maintain(now + DAY).await.unwrap();
    for &table in tables {
        assert_eq!(rows(table, day0 - DAY, day0).await, 0, "{table}");
        assert!(rows(table, day0, day0 + DAY).await > 0, "{table}");
    }
    check(&store, &recent, day0 - DAY, day0 + DAY - 1, &STEPS).await;
}

/// Item 7 (e): a restart with another rollup lag and retention (config edited) connects.
#[tokio::test]
async fn a_restart_with_changed_settings_connects() {
    let url = store::testing::fresh_database_url().await;
    for (lag, days) in [(120, 30), (30, 7), (600, 30)] {
        let cfg = StoreConfig {
            rollup_lag: Duration::from_secs(lag),
            retention_days: days,
            ..StoreConfig::default()
        };
        let s = Store::connect(&url, cfg).await.unwrap();
        assert_eq!(s.mode(), store::testing::expected_mode().await);
        s.maintain(now_ms()).await.unwrap();
    }
}

/// TimescaleDB mode keeps TimescaleDB's compression policy and no refresh or retention
/// policy (maintenance does those); plain mode has no TimescaleDB at all.
#[tokio::test]
async fn timescaledb_jobs_are_compression_only() {
    let store = mode_store(StoreConfig::default()).await;
    let has_ext: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    match store.mode() {
        StorageMode::Postgres => assert!(!has_ext),
        StorageMode::TimescaleDb => {
            let jobs: Vec<String> = sqlx::query_scalar(
                "SELECT proc_name::text FROM timescaledb_information.jobs \
                 WHERE hypertable_name IN ('samples', 'samples_1m', 'samples_1h') \
                    OR hypertable_name LIKE '_materialized_hypertable_%' ORDER BY 1",
            )
            .fetch_all(store.pool())
            .await
            .unwrap();
            assert_eq!(jobs, vec!["policy_compression".to_string()]);
        }
    }
}
