//! Values and timestamps survive the binary COPY writer and come back bit for bit.

use super::*;
use model::{Aggregation, RangeQuery, Selector};
use store::pgcopy::{END_TIMESTAMP_MS, MIN_TIMESTAMP_MS};
use store::StoreError;

#[tokio::test]
async fn special_values_round_trip_bit_exactly() {
    let store = store().await;
    let t0 = now_ms() / 1000 * 1000;
    let values = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e-300,
        -1e-300,
        5e-324, // smallest subnormal
        f64::MAX,
        -0.0,
        0.1 + 0.2,
        -123456.789,
    ];
    let samples: Vec<(i64, f64)> = values
        .iter()
        .enumerate()
        .map(|(i, &v)| (t0 + i as i64, v))
        .collect();
    let k = key("roundtrip_values", &[("case", "special")]);
    let stats = store
        .write(&[batch(vec![series(k.clone(), &samples)])])
        .await
        .unwrap();
    assert_eq!(stats.rows, values.len() as u64);
    assert_eq!(stats.new_series, 1);

    let back = raw_samples(&store, k.stable_id()).await;
    assert_eq!(back.len(), samples.len());
    for ((ts, v), (ts0, v0)) in back.iter().zip(&samples) {
        assert_eq!(ts, ts0);
        if v0.is_nan() {
            assert!(v.is_nan(), "NaN came back as {v}");
        } else {
            assert_eq!(v.to_bits(), v0.to_bits(), "{v0:e} came back as {v:e}");
        }
    }

    // And through the query path, one sample per 1 ms bucket.
    let sel = Selector::parse("roundtrip_values").unwrap();
    let q = RangeQuery {
        start: t0,
        end: t0 + 20,
        step_ms: 1,
        aggregation: Aggregation::Last,
    };
    let got = store.query_range(&sel, &q).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].points.len(), values.len());
    for ((ts, v), (ts0, v0)) in got[0].points.iter().zip(&samples) {
        assert_eq!(ts, ts0);
        assert!(v.to_bits() == v0.to_bits() || (v.is_nan() && v0.is_nan()));
    }
}

#[tokio::test]
async fn timestamps_before_1970_and_2000_round_trip() {
    let store = store().await;
    let k = key("roundtrip_ts", &[]);
    // 1969-12-31T23:59:59.999Z, 1999-12-31T23:59:59.999Z, 2000-01-01T00:00:00.001Z.
    let samples = [(-1, 1.0), (946_684_799_999, 2.0), (946_684_800_001, 3.0)];
    store
        .write(&[batch(vec![series(k.clone(), &samples)])])
        .await
        .unwrap();
    assert_eq!(raw_samples(&store, k.stable_id()).await, samples.to_vec());
}

#[tokio::test]
async fn anchor_copy_round_trips_the_extreme_timestamps_postgres_accepts() {
    let store = store().await;
    let rows = [
        (1, MIN_TIMESTAMP_MS, 1.5),
        (2, 0, f64::NAN),
        (3, END_TIMESTAMP_MS - 1, -2.5),
        (4, now_ms(), 4.0),
        (4, now_ms() + DAY, 5.0),
    ];
    store.prepare_anchor(&rows).await.unwrap();
    assert_eq!(store.copy_anchor(&rows).await.unwrap(), rows.len() as u64);
    let back: Vec<(i64, i64, f64)> = sqlx::query_as(
        "SELECT series_id, (extract(epoch from ts) * 1000)::bigint, value FROM bench_anchor_samples ORDER BY series_id, ts",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(back.len(), rows.len());
    for (b, r) in back.iter().zip(&rows) {
        assert_eq!((b.0, b.1), (r.0, r.1));
        assert!(b.2.to_bits() == r.2.to_bits() || (b.2.is_nan() && r.2.is_nan()));
    }
    // Laid out like samples: daily partitions for the recent days, the rest in DEFAULT.
    let partitions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'bench_anchor_samples'::regclass",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(
        partitions >= 3,
        "expected DEFAULT plus two daily partitions, got {partitions}"
    );
    let in_default: i64 = sqlx::query_scalar("SELECT count(*) FROM bench_anchor_samples_default")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(
        in_default, 2,
        "the 4713 BC and 294276 AD rows have no daily partition"
    );

    store.drop_anchor().await.unwrap();
    let exists: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('bench_anchor_samples')::text")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(exists, None);
    store.drop_anchor().await.unwrap();
}

#[tokio::test]
async fn out_of_range_timestamp_rejects_the_whole_write_with_a_reason() {
    let store = store().await;
    let good = series(key("good", &[]), &[(now_ms(), 1.0)]);
    let bad = series(key("bad", &[("x", "1")]), &[(i64::MAX, 1.0)]);
    let err = store.write(&[batch(vec![good, bad])]).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidSample(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("bad{x=\"1\"}") && msg.contains("Unix milliseconds"),
        "{msg}"
    );
    assert_eq!(store.series_count().await.unwrap(), 0);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM samples")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn empty_write_does_nothing() {
    let store = store().await;
    let stats = store
        .write(&[Batch::default(), batch(vec![series(key("m", &[]), &[])])])
        .await
        .unwrap();
    assert_eq!((stats.rows, stats.new_series), (0, 0));
    assert_eq!(store.series_count().await.unwrap(), 0);
}

#[tokio::test]
async fn bad_range_queries_say_what_to_change() {
    let store = store().await;
    let sel = Selector::parse("m").unwrap();
    let q = |start, end, step_ms| RangeQuery {
        start,
        end,
        step_ms,
        aggregation: Aggregation::Avg,
    };
    let e = store
        .query_range(&sel, &q(0, 10, 0))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("step must be positive"), "{e}");
    let e = store
        .query_range(&sel, &q(10, 0, 1))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("swap them"), "{e}");
    let e = store
        .query_range(&sel, &q(0, DAY, 1000))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("increase the step"), "{e}");
}

#[tokio::test]
async fn migrate_is_idempotent_and_connect_reports_the_storage_mode() {
    let url = store::testing::fresh_database_url().await;
    Store::migrate(&url).await.unwrap();
    Store::migrate(&url).await.unwrap();
    let s = Store::connect(&url, StoreConfig::default()).await.unwrap();
    let expected = store::testing::expected_mode().await;
    assert_eq!(s.mode(), expected);
    let name = match expected {
        store::StorageMode::Postgres => "postgres",
        store::StorageMode::TimescaleDb => "timescaledb",
    };
    assert_eq!(s.mode().to_string(), name);
}

#[tokio::test]
async fn connect_to_a_closed_port_explains_itself() {
    // Bind then release a port so nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://u:secret@127.0.0.1:{port}/x");
    let err = Store::connect(&url, StoreConfig::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("is the server running") || err.contains("Is the server running"),
        "{err}"
    );
    assert!(!err.contains("secret"), "password leaked: {err}");
}

#[tokio::test]
async fn zero_retention_is_refused_with_the_setting_named() {
    let url = store::testing::fresh_database_url().await;
    let cfg = StoreConfig {
        retention_days: 0,
        ..StoreConfig::default()
    };
    let err = Store::connect(&url, cfg).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidConfig(_)), "{err:?}");
    assert!(err.to_string().contains("retention_days"), "{err}");
}
