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
        _ => format!("postgres://{user}@127.0.0.1:{port}/{db}"),
    }
}
