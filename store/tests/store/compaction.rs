//! Compaction of fresh samples into per-series hour chunks (issue 10): whatever mix of
//! chunks, fresh rows, re-sent duplicates and late samples the store holds, every read equals
//! a reference computed here from the samples written, with one sample per (series,
//! timestamp) and the larger value kept.

use super::*;
use model::{Aggregation, RangeQuery, Selector};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

const SERIES: usize = 3;

fn series_key(i: usize) -> SeriesKey {
    key("compaction_test", &[("instance", &format!("host-{i}"))])
}

/// The reference: per series, one value per timestamp, the larger of any duplicates (NaN
/// larger than any number), written independently of the store's code.
#[derive(Default)]
struct Reference(BTreeMap<(usize, i64), f64>);

impl Reference {
    fn add(&mut self, s: usize, t: i64, v: f64) {
        self.0
            .entry((s, t))
            .and_modify(|old| {
                if v.total_cmp(old).is_gt() {
                    *old = v
                }
            })
            .or_insert(v);
    }

    fn series(&self, s: usize, from: i64, to: i64) -> Vec<(i64, f64)> {
        self.0
            .range((s, from)..=(s, to))
            .map(|(&(_, t), &v)| (t, v))
            .collect()
    }
}

async fn write(store: &Store, samples: &[(usize, i64, f64)]) {
    let mut by_series: BTreeMap<usize, Vec<(i64, f64)>> = BTreeMap::new();
    for &(s, t, v) in samples {
        by_series.entry(s).or_default().push((t, v));
    }
    let b = batch(
        by_series
            .into_iter()
            .map(|(s, pts)| series(series_key(s), &pts))
            .collect(),
    );
    store.write(&[b]).await.unwrap();
}

async fn check_raw(store: &Store, reference: &Reference, from: i64, to: i64) {
    let got = store
        .raw_samples(&Selector::parse("compaction_test").unwrap(), from, to, 100)
        .await
        .unwrap();
    for s in 0..SERIES {
        let want = reference.series(s, from, to);
        let have = got
            .iter()
            .find(|(k, _)| *k == series_key(s))
            .map(|(_, p)| p.clone())
            .unwrap_or_default();
        assert_eq!(have.len(), want.len(), "series {s} in [{from}, {to}]");
        for (a, b) in have.iter().zip(&want) {
            assert_eq!(a.0, b.0);
            assert_eq!(a.1.to_bits(), b.1.to_bits(), "series {s} at {}", a.0);
        }
    }
}

async fn check_sums(store: &Store, reference: &Reference, from: i64, to: i64, step: i64) {
    let q = RangeQuery {
        start: from,
        end: to,
        step_ms: step,
        aggregation: Aggregation::Sum,
    };
    let got = store
        .query_range(&Selector::parse("compaction_test").unwrap(), &q)
        .await
        .unwrap();
    let lo = from.div_euclid(step) * step;
    let hi = to.div_euclid(step) * step + step;
    for s in 0..SERIES {
        let mut want: BTreeMap<i64, f64> = BTreeMap::new();
        for (t, v) in reference.series(s, lo, hi - 1) {
            *want.entry(t.div_euclid(step) * step).or_default() += v;
        }
        let key = series_key(s);
        let have = got
            .iter()
            .find(|r| r.metric == key.metric && r.labels == key.labels)
            .map(|r| r.points.clone())
            .unwrap_or_default();
        let want: Vec<(i64, f64)> = want.into_iter().collect();
        assert_eq!(have.len(), want.len(), "series {s}, step {step}");
        for (a, b) in have.iter().zip(&want) {
            assert_eq!(a.0, b.0, "series {s}, step {step}");
            assert!(
                (a.1.is_nan() && b.1.is_nan()) || (a.1 - b.1).abs() <= 1e-9 * b.1.abs().max(1.0),
                "series {s}, step {step}, bucket {}: {} vs {}",
                a.0,
                a.1,
                b.1
            );
        }
    }
}

async fn count(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn reads_over_chunks_and_fresh_rows_equal_the_samples_written_once_each() {
    let store = store().await;
    let mut rng = StdRng::seed_from_u64(42);
    let mut reference = Reference::default();
    // Six hours of samples every 5-30 s, ending 30 minutes ago.
    let now = now_ms();
    let t0 = (now - 6 * HOUR - 30 * MINUTE).div_euclid(HOUR) * HOUR;
    let mut first = Vec::new();
    for s in 0..SERIES {
        let mut t = t0 + rng.gen_range(0..5_000);
        while t < now - 30 * MINUTE {
            let v = rng.gen_range(-1000.0..1000.0);
            first.push((s, t, v));
            t += rng.gen_range(5_000..30_000);
        }
    }
    for &(s, t, v) in &first {
        reference.add(s, t, v);
    }
    write(&store, &first).await;
    // A retry re-sends a third of it unchanged: stored again as fresh rows, read once.
    let resent: Vec<_> = first.iter().copied().step_by(3).collect();
    write(&store, &resent).await;
    let fresh_before = count(&store, "SELECT count(*) FROM samples").await;
    assert_eq!(fresh_before as usize, first.len() + resent.len());
    check_raw(&store, &reference, t0, now).await;

    // Maintenance compacts every closed hour that ended 10 minutes ago (after rolling up).
    // TimescaleDB mode has no compaction (its own compression works on whole chunks, and
    // duplicates stay rows that reads de-duplicate): the same reads must give the same answers.
    let plain = store.mode() == store::StorageMode::Postgres;
    assert_eq!(store.mode(), store::testing::expected_mode().await);
    let report = store.maintain(now).await.unwrap();
    let c = &report.compaction;
    let chunk_samples = count(&store, "SELECT coalesce(sum(n), 0) FROM sample_chunks").await;
    let fresh_after = count(&store, "SELECT count(*) FROM samples").await;
    if plain {
        assert!(c.steps >= 5 && c.chunks >= 5 * SERIES as u64, "{report:?}");
        assert_eq!(c.rows as i64 + fresh_after, fresh_before, "{report:?}");
        // Every compacted duplicate is gone: chunks hold each sample once.
        let compacted_unique = reference
            .0
            .keys()
            .filter(|(_, t)| *t < c.watermark.unwrap())
            .count();
        assert_eq!(chunk_samples as usize, compacted_unique);
    } else {
        assert_eq!(*c, Default::default());
        assert_eq!((chunk_samples, fresh_after), (0, fresh_before));
    }
    check_raw(&store, &reference, t0, now).await;
    // A range starting and ending inside compacted hours, and one spanning chunks and fresh.
    check_raw(&store, &reference, t0 + HOUR + 1_234, t0 + 3 * HOUR - 17).await;
    check_raw(&store, &reference, t0 + 4 * HOUR + 5, now).await;

    // Late samples into compacted hours: new timestamps, a re-sent identical sample, and a
    // different value for a stored timestamp (the larger one is kept whichever came first).
    let mut late = vec![
        (0usize, t0 + 30 * MINUTE + 1, 7.5),
        (1, t0 + 2 * HOUR + 999, -3.0),
    ];
    late.push(first[10]);
    let (s, t, v) = first[20];
    late.push((s, t, v + 100.0));
    let (s2, t2, v2) = first[30];
    late.push((s2, t2, v2 - 100.0));
    late.push((2, t0 + HOUR + 5, f64::from_bits(0x7ff0_0000_0000_0002)));
    late.push((2, t0 + HOUR + 5, 1e300));
    for &(s, t, v) in &late {
        reference.add(s, t, v);
    }
    write(&store, &late).await;
    check_raw(&store, &reference, t0, now).await;
    for step in [MINUTE, 15 * MINUTE, HOUR, 7_000] {
        check_sums(&store, &reference, t0 + 1, now, step).await;
    }

    // The next maintenance merges the late samples into their hours' chunks.
    let again = store.maintain(now + MINUTE).await.unwrap();
    if plain {
        assert!(again.compaction.rows >= late.len() as u64, "{again:?}");
        let below: i64 = count(
            &store,
            &format!(
                "SELECT count(*) FROM samples WHERE ts < to_timestamp({}::float8 / 1000)",
                again.compaction.watermark.unwrap()
            ),
        )
        .await;
        assert_eq!(
            below, 0,
            "nothing fresh is left below the compaction watermark"
        );
    }
    check_raw(&store, &reference, t0, now).await;
    for step in [MINUTE, HOUR] {
        check_sums(&store, &reference, t0 + 1, now, step).await;
    }
    // Nothing left to do: a repeat run at the same time changes nothing. (At a later time an
    // hour may have closed in between: at 10 minutes past an hour, the one before it becomes
    // compactable, and this test failed when run between 8 and 10 minutes past.)
    let third = store.maintain(now + MINUTE).await.unwrap();
    assert_eq!(third.compaction.rows, 0, "{third:?}");
}

#[tokio::test]
async fn a_compacted_hour_costs_a_few_bytes_per_sample() {
    let store = store().await;
    let now = now_ms();
    let t0 = (now - 3 * HOUR).div_euclid(HOUR) * HOUR;
    // 50 counters scraped every 15 s for an hour: the usual shape of pipeline metrics.
    let mut samples = Vec::new();
    for s in 0..50usize {
        let mut c = 0.0;
        for i in 0..240 {
            c += (i % 7) as f64;
            samples.push((s, t0 + i * 15_000, c));
        }
    }
    let b = batch(
        (0..50usize)
            .map(|s| {
                let pts: Vec<(i64, f64)> = samples
                    .iter()
                    .filter(|x| x.0 == s)
                    .map(|x| (x.1, x.2))
                    .collect();
                series(key("bytes_test", &[("i", &s.to_string())]), &pts)
            })
            .collect(),
    );
    store.write(&[b]).await.unwrap();
    store.maintain(now).await.unwrap();
    assert_eq!(store.mode(), store::testing::expected_mode().await);
    if store.mode() == store::StorageMode::TimescaleDb {
        // TimescaleDB compresses whole chunks (its policy: those older than a day); do it now
        // and count what the compressed chunk takes: data, TOAST and indexes.
        sqlx::query("SELECT count(compress_chunk(c)) FROM show_chunks('samples') AS c")
            .execute(store.pool())
            .await
            .unwrap();
        let bytes: i64 = sqlx::query_scalar(
            "SELECT sum(after_compression_total_bytes)::bigint FROM chunk_compression_stats('samples')",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        let per_sample = bytes as f64 / 12_000.0;
        eprintln!("TimescaleDB compression: {per_sample:.2} bytes per sample");
        assert!(per_sample < 10.0, "{per_sample} bytes per sample");
        assert_eq!(
            raw_samples(&store, key("bytes_test", &[("i", "7")]).stable_id())
                .await
                .len(),
            240
        );
        return;
    }
    let (n, bytes): (i64, i64) = sqlx::query_as(
        "SELECT sum(n)::bigint, sum(octet_length(ts_data) + octet_length(val_data))::bigint FROM sample_chunks",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(n, 12_000);
    let per_sample = bytes as f64 / n as f64;
    assert!(per_sample < 2.0, "{per_sample} bytes per sample");
}
