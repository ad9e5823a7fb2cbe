//! Daily partitions, the DEFAULT partition, and retention. In TimescaleDB mode the same
//! tests check its counterparts: daily chunks made on write (no DEFAULT partition, nothing
//! for maintenance to create) and retention by dropping whole chunks.

use super::*;
use store::{StorageMode, StoreConfig};

/// The store, after checking it is in the mode this run expects (`store::testing`).
async fn checked(store: Store) -> Store {
    assert_eq!(store.mode(), store::testing::expected_mode().await);
    store
}

/// Start (Unix ms) of every chunk of the `samples` hypertable, ascending.
async fn chunk_starts(store: &Store) -> Vec<i64> {
    sqlx::query_scalar(
        "SELECT (extract(epoch FROM range_start) * 1000)::bigint FROM timescaledb_information.chunks \
         WHERE hypertable_name = 'samples' ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
}

/// Names of the partitions of `samples`, computed by PostgreSQL from their bounds rather
/// than by the store's own naming code.
async fn partition_days(store: &Store) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'samples'::regclass ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
}

async fn day_name(store: &Store, ts: i64) -> String {
    sqlx::query_scalar("SELECT 'samples_p' || to_char(to_timestamp($1::float8 / 1000) AT TIME ZONE 'UTC', 'YYYYMMDD')")
        .bind(ts)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

async fn count(store: &Store, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn samples_spanning_days_get_daily_partitions_and_far_past_lands_in_default() {
    let store = checked(store().await).await;
    let now = now_ms();
    let k = key("spread", &[]);
    let far_past = 631_152_000_000; // 1990-01-01
    let samples = [
        (now - DAY, 1.0),
        (now, 2.0),
        (now + DAY, 3.0),
        (now + 2 * DAY, 4.0),
        (far_past, 5.0),
    ];
    store
        .write(&[batch(vec![series(k.clone(), &samples)])])
        .await
        .unwrap();
    if store.mode() == StorageMode::TimescaleDb {
        // One daily chunk per day written, 1990 included; read back in full.
        let mut days: Vec<i64> = samples.iter().map(|s| s.0.div_euclid(DAY) * DAY).collect();
        days.sort();
        assert_eq!(chunk_starts(&store).await, days);
        let mut back = raw_samples(&store, k.stable_id()).await;
        back.sort_by_key(|s| s.0);
        let mut expected = samples.to_vec();
        expected.sort_by_key(|s| s.0);
        assert_eq!(back, expected);
        return;
    }

    let parts = partition_days(&store).await;
    for (ts, _) in &samples[..4] {
        let name = day_name(&store, *ts).await;
        assert!(parts.contains(&name), "{name} missing from {parts:?}");
        assert_eq!(count(&store, &name).await, 1, "{name}");
    }
    assert!(parts.contains(&"samples_default".to_string()));
    assert!(
        !parts.contains(&day_name(&store, far_past).await),
        "1990 is outside retention"
    );
    assert_eq!(count(&store, "samples_default").await, 1);
    let mut back = raw_samples(&store, k.stable_id()).await;
    back.sort_by_key(|s| s.0);
    let mut expected = samples.to_vec();
    expected.sort_by_key(|s| s.0);
    assert_eq!(back, expected);

    // Each partition has the BRIN on time and no per-row (series_id, ts) btree (issue 10:
    // that btree was most of a write's cost).
    let (with_brin, with_btree): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE EXISTS (SELECT 1 FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid \
           JOIN pg_am am ON am.oid = ic.relam WHERE x.indrelid = i.inhrelid AND am.amname = 'brin')), \
         count(*) FILTER (WHERE EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = i.inhrelid AND x.indkey::text = '1 2')) \
         FROM pg_inherits i WHERE i.inhparent = 'samples'::regclass",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(with_brin as usize, parts.len());
    assert_eq!(with_btree, 0);
}

#[tokio::test]
async fn creating_a_partition_moves_its_rows_out_of_default() {
    let store = checked(store().await).await;
    let now = now_ms();
    let later = now + 10 * DAY; // beyond the writer's on-demand window
    let k = key("future", &[]);
    store
        .write(&[batch(vec![series(
            k.clone(),
            &[(later, 7.0), (later + 1, 8.0)],
        )])])
        .await
        .unwrap();
    if store.mode() == StorageMode::TimescaleDb {
        // No DEFAULT: the rows are in their day's chunk at once.
        assert_eq!(
            chunk_starts(&store).await,
            vec![later.div_euclid(DAY) * DAY]
        );
        let report = store.maintain(later).await.unwrap();
        assert!(report.partitions_created.is_empty(), "{report:?}");
        assert_eq!(
            raw_samples(&store, k.stable_id()).await,
            vec![(later, 7.0), (later + 1, 8.0)]
        );
        return;
    }
    assert_eq!(count(&store, "samples_default").await, 2);

    let report = store.maintain(later).await.unwrap();
    let name = day_name(&store, later).await;
    assert!(
        report.partitions_created.contains(&name),
        "{:?}",
        report.partitions_created
    );
    assert_eq!(count(&store, "samples_default").await, 0);
    assert_eq!(count(&store, &name).await, 2);
    assert_eq!(
        raw_samples(&store, k.stable_id()).await,
        vec![(later, 7.0), (later + 1, 8.0)]
    );
}

#[tokio::test]
async fn maintenance_creates_partitions_ahead_and_is_idempotent() {
    let store = checked(store().await).await;
    let now = now_ms();
    let first = store.maintain(now).await.unwrap();
    if store.mode() == StorageMode::TimescaleDb {
        // Chunks are made by the writes that need them.
        assert!(first.partitions_created.is_empty());
        assert!(chunk_starts(&store).await.is_empty());
        let second = store.maintain(now).await.unwrap();
        assert!(second.partitions_dropped.is_empty());
        assert_eq!((second.rollup_1m_rows, second.rollup_1h_rows), (0, 0));
        return;
    }
    let mut expected = Vec::new();
    for d in 0..=2 {
        expected.push(day_name(&store, now + d * DAY).await);
    }
    assert_eq!(first.partitions_created, expected);
    let second = store.maintain(now).await.unwrap();
    assert!(second.partitions_created.is_empty());
    assert!(second.partitions_dropped.is_empty());
    assert_eq!((second.rollup_1m_rows, second.rollup_1h_rows), (0, 0));
}

#[tokio::test]
async fn retention_drops_old_partitions_and_keeps_recent_data() {
    let store = checked(
        store_with(StoreConfig {
            retention_days: 30,
            ..StoreConfig::default()
        })
        .await,
    )
    .await;
    let now = now_ms();
    let old = key("old", &[]);
    let recent = key("recent", &[]);
    store.maintain(now).await.unwrap(); // partitions for today..+2
    store
        .write(&[batch(vec![
            series(
                old.clone(),
                &[(now - 2 * DAY, 1.0), (now - DAY, 2.0), (now, 3.0)],
            ),
            series(recent.clone(), &[(now + 2 * DAY + HOUR, 4.0)]),
        ])])
        .await
        .unwrap();
    // Also one old sample in DEFAULT (retention applies there too).
    store
        .write(&[batch(vec![series(old.clone(), &[(631_152_000_000, 9.0)])])])
        .await
        .unwrap();

    // 32 days later the oldest kept day is now + 2 days.
    let later = now + 32 * DAY;
    let report = store.maintain(later).await.unwrap();
    if store.mode() == StorageMode::TimescaleDb {
        // The chunks of 1990 and of now - 2 days .. now went; the one of now + 2 days stays.
        assert_eq!(report.partitions_dropped.len(), 4, "{report:?}");
        assert_eq!(
            chunk_starts(&store).await,
            vec![(now + 2 * DAY + HOUR).div_euclid(DAY) * DAY]
        );
        assert!(raw_samples(&store, old.stable_id()).await.is_empty());
        assert_eq!(
            raw_samples(&store, recent.stable_id()).await,
            vec![(now + 2 * DAY + HOUR, 4.0)]
        );
        let rollups: i64 =
            sqlx::query_scalar("SELECT count(*) FROM samples_1m WHERE series_id = $1")
                .bind(old.stable_id())
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(rollups, 0);
        return;
    }
    let mut gone = Vec::new();
    for d in -2..=1 {
        gone.push(day_name(&store, now + d * DAY).await);
    }
    assert_eq!(report.partitions_dropped, gone);
    let parts = partition_days(&store).await;
    for name in &gone {
        assert!(!parts.contains(name), "{name} still there");
    }
    assert!(parts.contains(&day_name(&store, now + 2 * DAY).await));
    assert!(raw_samples(&store, old.stable_id()).await.is_empty());
    assert_eq!(
        raw_samples(&store, recent.stable_id()).await,
        vec![(now + 2 * DAY + HOUR, 4.0)]
    );
    let expired_rollups: i64 =
        sqlx::query_scalar("SELECT count(*) FROM samples_1h WHERE series_id = $1")
            .bind(old.stable_id())
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(expired_rollups, 0);
    assert!(
        report.expired_rows >= 1,
        "the DEFAULT row and old rollups count: {report:?}"
    );
}
