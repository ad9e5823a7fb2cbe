//! The series registry and metric metadata.

use super::*;
use model::{MetricMetadata, Selector};

#[tokio::test]
async fn same_series_twice_is_one_row_with_the_stable_id() {
    let store = store().await;
    let k = key("http_requests_total", &[("job", "api"), ("code", "200")]);
    let t = now_ms();
    let first = store
        .write(&[batch(vec![series(k.clone(), &[(t, 1.0)])])])
        .await
        .unwrap();
    let second = store
        .write(&[batch(vec![
            series(k.clone(), &[(t + 1000, 2.0)]),
            series(k.clone(), &[(t + 2000, 3.0)]),
        ])])
        .await
        .unwrap();
    assert_eq!((first.new_series, second.new_series), (1, 0));
    assert_eq!(second.rows, 2);

    // A second process (cold cache) registering the same key does not duplicate it either.
    let other = Store::connect(&database_url(&store).await, StoreConfig::default())
        .await
        .unwrap();
    let third = other
        .write(&[batch(vec![series(k.clone(), &[(t + 3000, 4.0)])])])
        .await
        .unwrap();
    assert_eq!(third.new_series, 0);

    assert_eq!(store.series_count().await.unwrap(), 1);
    let found = store
        .find_series(&Selector::parse("http_requests_total").unwrap())
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, k.stable_id());
    assert_eq!(found[0].key, k);
    assert_eq!(found[0].metric_type, MetricType::Gauge);
    assert_eq!(found[0].first_seen, t);
    assert_eq!(raw_samples(&store, k.stable_id()).await.len(), 4);
}

#[tokio::test]
async fn last_seen_is_deferred_to_the_flush_and_never_moves_back() {
    let store = store().await;
    let k = key("up", &[("job", "x")]);
    let t = now_ms() - 10 * MINUTE;
    store
        .write(&[batch(vec![series(k.clone(), &[(t, 1.0)])])])
        .await
        .unwrap();
    store
        .write(&[batch(vec![series(k.clone(), &[(t + 90_000, 1.0)])])])
        .await
        .unwrap();
    let sel = Selector::parse("up").unwrap();
    let info = store.find_series(&sel).await.unwrap().remove(0);
    assert_eq!(
        (info.first_seen, info.last_seen),
        (t, t),
        "the write path does not touch series rows of known series"
    );
    assert_eq!(store.flush_last_seen().await.unwrap(), 1);
    let info = store.find_series(&sel).await.unwrap().remove(0);
    assert_eq!((info.first_seen, info.last_seen), (t, t + 90_000));
    assert_eq!(
        store.flush_last_seen().await.unwrap(),
        0,
        "nothing new to flush"
    );

    // An older sample arriving late does not move last_seen back; maintain flushes too.
    store
        .write(&[batch(vec![series(
            k.clone(),
            &[(t + 30_000, 1.0), (t + 120_000, 2.0)],
        )])])
        .await
        .unwrap();
    let report = store.maintain(now_ms()).await.unwrap();
    assert_eq!(report.last_seen_flushed, 1);
    let info = store.find_series(&sel).await.unwrap().remove(0);
    assert_eq!(info.last_seen, t + 120_000);
}

#[tokio::test]
async fn metadata_upsert_keeps_one_row_per_family_with_the_latest_text() {
    let store = store().await;
    let meta = |help: &str, unit: &str| MetricMetadata {
        family: "job_duration_seconds".to_string(),
        metric_type: MetricType::Histogram,
        unit: unit.to_string(),
        help: help.to_string(),
    };
    let b = |m: Vec<MetricMetadata>| Batch {
        series: Vec::new(),
        metadata: m,
    };
    store.write(&[b(vec![meta("old help", "")])]).await.unwrap();
    // Twice in one write: the last one wins, and the upsert does not trip over the repeat.
    store
        .write(&[
            b(vec![meta("newer", "")]),
            b(vec![meta("newest", "seconds")]),
        ])
        .await
        .unwrap();
    let rows: Vec<(String, String, String, String)> =
        sqlx::query_as("SELECT family, metric_type, unit, help FROM metric_metadata")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![(
            "job_duration_seconds".to_string(),
            "histogram".to_string(),
            "seconds".to_string(),
            "newest".to_string()
        )]
    );
}

#[tokio::test]
async fn concurrent_writers_register_shared_series_once() {
    let store = store().await;
    let t = now_ms();
    let keys: Vec<SeriesKey> = (0..50)
        .map(|i| key("shared", &[("i", &i.to_string())]))
        .collect();
    let mut tasks = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        // Each writer sends the keys in a different order.
        let mut ks = keys.clone();
        ks.rotate_left(w * 13);
        tasks.push(tokio::spawn(async move {
            let series: Vec<TimeSeries> = ks
                .into_iter()
                .map(|k| super::series(k, &[(t + w as i64, 1.0)]))
                .collect();
            store.write(&[batch(series)]).await.unwrap()
        }));
    }
    let mut new_total = 0;
    for t in tasks {
        new_total += t.await.unwrap().new_series;
    }
    assert_eq!(new_total, 50);
    assert_eq!(store.series_count().await.unwrap(), 50);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM samples")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(n, 200);
}

/// The URL of the store's database, rebuilt from the connection (tests only).
async fn database_url(store: &Store) -> String {
    let (db, port): (String, i32) =
        sqlx::query_as("SELECT current_database()::text, inet_server_port()")
            .fetch_one(store.pool())
            .await
            .unwrap();
    let user: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(store.pool())
        .await
        .unwrap();
    match std::env::var("DATABASE_URL") {
        Ok(u) if !u.is_empty() => {
            let base = u.split('?').next().unwrap();
            let base = &base[..base.rfind('/').unwrap()];
            format!("{base}/{db}")
        }
        _ => {
            let password = std::fs::read_to_string(
                store::testing::test_cluster_dir().join("postgres/password"),
            )
            .expect("the test cluster's password file");
            format!(
                "postgres://{user}:{}@127.0.0.1:{port}/{db}",
                password.trim()
            )
        }
    }
}

/// Test hasher: every series of metric `collide` gets natural id 4242, others their real one.
fn colliding_hash(k: &SeriesKey) -> i64 {
    if k.metric == "collide" {
        4242
    } else {
        k.stable_id()
    }
}

async fn colliding_store(url: &str) -> Store {
    Store::connect_with_series_hash(url, StoreConfig::default(), colliding_hash)
        .await
        .unwrap()
}

/// (id, value of label `who`) of every stored `collide` series and its sample values.
async fn collide_rows(store: &Store) -> Vec<(i64, String, Vec<f64>)> {
    let found = store
        .find_series(&Selector::parse("collide").unwrap())
        .await
        .unwrap();
    let mut out = Vec::new();
    for s in found {
        let values = raw_samples(store, s.id)
            .await
            .into_iter()
            .map(|p| p.1)
            .collect();
        out.push((s.id, s.key.labels.get("who").unwrap().to_string(), values));
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

#[tokio::test]
async fn colliding_label_sets_get_their_own_ids_and_are_found_again() {
    let store = store().await;
    let url = database_url(&store).await;
    let first = colliding_store(&url).await;
    let t = now_ms();
    let k = |who: &str| key("collide", &[("who", who)]);
    // Two colliding label sets in one write, a third in a later one.
    let stats = first
        .write(&[batch(vec![
            series(k("a"), &[(t, 1.0)]),
            series(k("b"), &[(t, 2.0)]),
        ])])
        .await
        .unwrap();
    assert_eq!(stats.new_series, 2);
    first
        .write(&[batch(vec![series(k("c"), &[(t, 3.0)])])])
        .await
        .unwrap();
    let rows = collide_rows(&first).await;
    assert_eq!(
        rows.iter()
            .map(|r| (r.1.as_str(), r.2.clone()))
            .collect::<Vec<_>>(),
        vec![("a", vec![1.0]), ("b", vec![2.0]), ("c", vec![3.0])],
        "three series, none merged: {rows:?}"
    );
    let ids: std::collections::HashSet<i64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.contains(&4242));

    // A second process (cold cache) finds each colliding series again instead of merging.
    let second = colliding_store(&url).await;
    let stats = second
        .write(&[batch(vec![
            series(k("c"), &[(t + 1000, 30.0)]),
            series(k("b"), &[(t + 1000, 20.0)]),
        ])])
        .await
        .unwrap();
    assert_eq!(stats.new_series, 0);
    // Even when the series holding the natural id is gone (retention), the probed ones are
    // found through their collision record, not registered twice.
    let holder = rows.iter().find(|r| r.0 == 4242).unwrap().1.clone();
    sqlx::query("DELETE FROM series WHERE id = 4242")
        .execute(second.pool())
        .await
        .unwrap();
    let third = colliding_store(&url).await;
    let others: Vec<&str> = ["a", "b", "c"]
        .into_iter()
        .filter(|w| *w != holder)
        .collect();
    let stats = third
        .write(&[batch(
            others
                .iter()
                .map(|w| series(k(w), &[(t + 2000, 99.0)]))
                .collect(),
        )])
        .await
        .unwrap();
    assert_eq!(stats.new_series, 0, "found through series_collisions");
    let after = collide_rows(&third).await;
    assert_eq!(after.len(), 2, "{after:?}");
    for (id, who, values) in &after {
        let before = rows.iter().find(|r| &r.1 == who).unwrap();
        assert_eq!(*id, before.0, "{who} kept its id");
        // "a" got no sample from the second process; "b" and "c" did. Which series holds the
        // natural id (and so was deleted) depends on registration order within one write.
        let expected = if who == "a" { 2 } else { 3 };
        assert_eq!(values.len(), expected, "{who}: {values:?}");
    }
}

#[tokio::test]
async fn maintenance_deletes_series_not_written_within_retention() {
    let store = store_with(StoreConfig {
        retention_days: 3,
        ..StoreConfig::default()
    })
    .await;
    let now = now_ms();
    let old = key("churned", &[("pod", "gone-1")]);
    let live = key("churned", &[("pod", "live-1")]);
    store
        .write(&[batch(vec![
            series(old.clone(), &[(now - 5 * DAY, 1.0)]),
            series(live.clone(), &[(now - 5 * DAY, 1.0)]),
        ])])
        .await
        .unwrap();
    // The live series is written again recently; only the cache knows until the flush, which
    // maintenance does before it expires anything.
    store
        .write(&[batch(vec![series(live.clone(), &[(now - MINUTE, 2.0)])])])
        .await
        .unwrap();
    let report = store.maintain(now).await.unwrap();
    assert_eq!(report.series_expired, 1);
    let left = store
        .find_series(&Selector::parse("churned").unwrap())
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].key, live);
    // A series that comes back is registered again.
    let stats = store
        .write(&[batch(vec![series(old.clone(), &[(now, 3.0)])])])
        .await
        .unwrap();
    assert_eq!(stats.new_series, 1);
    assert_eq!(store.series_count().await.unwrap(), 2);
}

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// 200,000 series that each appear once (pod names, run ids) go through a writer whose cache
/// holds 10,000. The cache stays at its bound, and the process' resident memory stays flat:
/// after the first 40,000 series it grows by less than 6 MiB over the next 160,000 (an
/// unbounded cache grows by ~100 bytes a series, ~16 MiB here, plus its table doubling).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churning_series_keep_memory_flat() {
    const SERIES: usize = 200_000;
    const PER_WRITE: usize = 5_000;
    const CAPACITY: usize = 10_000;
    let store = store_with(StoreConfig {
        series_cache_capacity: CAPACITY,
        ..StoreConfig::default()
    })
    .await;
    let t = now_ms();
    let started = std::time::Instant::now();
    let mut rss_after_warmup = 0;
    let mut rss_max = 0;
    for w in 0..SERIES / PER_WRITE {
        let series: Vec<TimeSeries> = (0..PER_WRITE)
            .map(|i| {
                let n = w * PER_WRITE + i;
                super::series(
                    key("churn", &[("pod", &format!("pod-{n:07}")), ("job", "etl")]),
                    &[(t + n as i64, 1.0)],
                )
            })
            .collect();
        let stats = store.write(&[batch(series)]).await.unwrap();
        assert_eq!(stats.new_series, PER_WRITE as u64);
        assert!(store.series_cache().len() <= CAPACITY);
        let rss = vm_rss_kib();
        if (w + 1) * PER_WRITE == 40_000 {
            rss_after_warmup = rss;
        }
        rss_max = rss_max.max(rss);
    }
    let growth_kib = rss_max.saturating_sub(rss_after_warmup);
    eprintln!(
        "churned {SERIES} series in {:?}; VmRSS after 40k: {rss_after_warmup} KiB, max after: {rss_max} KiB, growth {growth_kib} KiB; cache {} of {CAPACITY}",
        started.elapsed(),
        store.series_cache().len()
    );
    assert_eq!(store.series_cache().len(), CAPACITY);
    assert_eq!(store.series_count().await.unwrap(), SERIES as i64);
    assert!(
        growth_kib < 6 * 1024,
        "resident memory grew by {growth_kib} KiB while churning series through a cache of {CAPACITY}"
    );
}

/// The writer takes the fingerprints the server's limiter computed with this store's cache
/// (each series in the right row, cached or new, a series repeated within the write once), and
/// ignores fingerprints of another cache or of the wrong length instead of misplacing rows.
#[tokio::test]
async fn fingerprints_from_the_limiter_place_every_sample_in_its_series() {
    let store = store().await;
    let cache = store.series_cache();
    let t = now_ms();
    let keys: Vec<SeriesKey> = (0..4)
        .map(|i| key("fp_test", &[("i", &i.to_string())]))
        .collect();
    let write = |round: i64, tag: &dyn Fn(&Batch) -> Option<store::Fingerprints>| {
        let b = batch(
            keys.iter()
                .chain(&keys[..1])
                .enumerate()
                .map(|(n, k)| series(k.clone(), &[(t + round * 10_000 + n as i64, round as f64)]))
                .collect(),
        );
        let f = tag(&b);
        let store = store.clone();
        async move { store.write_fingerprinted(&[b], &[f]).await.unwrap() }
    };
    let own =
        |b: &Batch| Some(cache.tag(b.series.iter().map(|s| cache.fingerprint(&s.key)).collect()));
    let other = store::SeriesCache::new(10);
    let foreign =
        |b: &Batch| Some(other.tag(b.series.iter().map(|s| other.fingerprint(&s.key)).collect()));
    let short = |b: &Batch| Some(cache.tag(vec![cache.fingerprint(&b.series[0].key)]));

    assert_eq!(
        write(0, &own).await.new_series,
        4,
        "registered from fingerprints"
    );
    assert_eq!(write(1, &own).await.rows, 5, "cache hits from fingerprints");
    assert_eq!(write(2, &foreign).await.new_series, 0);
    assert_eq!(write(3, &short).await.new_series, 0);
    assert_eq!(store.series_count().await.unwrap(), 4);
    for (i, k) in keys.iter().enumerate() {
        let rows = raw_samples(&store, k.stable_id()).await;
        // Series 0 appears twice per write.
        let per_round = if i == 0 { 2 } else { 1 };
        assert_eq!(rows.len(), 4 * per_round, "series {i}: {rows:?}");
        for (ts, round) in rows {
            let n = ts - t - round as i64 * 10_000;
            assert!(
                n == i as i64 || (i == 0 && n == 4),
                "series {i} holds the sample of position {n}"
            );
        }
    }
}
