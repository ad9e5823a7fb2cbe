//! Exactly once (issue 10): a sender that retries — Prometheus re-sending a remote_write
//! request, an OTLP SDK or collector re-exporting — must never double a sum or a rate. The
//! captured bodies are sent twice each through the real receivers into a real PostgreSQL;
//! every read answers each sample once, and after maintenance has compacted the hours the
//! chunks hold each sample once and no fresh copy is left.
//!
//! Delta-temporality OTLP re-sends are refused at intake already (the delta accumulator
//! refuses a point not newer than the last one it added, see collectors' otlp metrics); this
//! file covers cumulative streams and remote_write, which are stored and then de-duplicated.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tower::ServiceExt;

const HOUR: i64 = 3_600_000;

fn fixtures(dir: &str, ext: &str) -> Vec<(PathBuf, Vec<u8>, serde_json::Value)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../collectors/tests/fixtures");
    let mut out = Vec::new();
    for e in std::fs::read_dir(root.join(dir)).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(ext) && !name.contains("delta") {
            let exp = p.with_extension("expected.json");
            let exp = serde_json::from_str(&std::fs::read_to_string(exp).unwrap()).unwrap();
            out.push((p.clone(), std::fs::read(&p).unwrap(), exp));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

async fn post(app: &Router, path: &str, ctype: &str, body: Vec<u8>) -> StatusCode {
    let mut req = Request::post(path).header("content-type", ctype);
    if path == "/api/v1/write" {
        req = req
            .header("content-encoding", "snappy")
            .header("x-prometheus-remote-write-version", "0.1.0");
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(
        status.is_success(),
        "{path}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    status
}

async fn drain(st: &server::AppState) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while st.queue.depth() > 0 {
        assert!(Instant::now() < deadline, "queue did not drain in 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn count(store: &store::Store, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// Sends every body twice, then checks reads and compaction; returns the distinct samples.
async fn send_twice_and_check(path: &str, ctype: &str, bodies: Vec<Vec<u8>>) -> usize {
    let (st, writers, _url) = pipewatch_tests::state(1_000_000).await;
    let app = server::app(st.clone(), std::env::temp_dir());
    for round in 0..2 {
        for body in &bodies {
            let status = post(&app, path, ctype, body.clone()).await;
            assert!(status.is_success(), "round {round}: {status}");
        }
    }
    drain(&st).await;
    assert_eq!(writers.shutdown(Duration::from_secs(10)).await, 0);
    let store = &st.store;

    // Both copies are fresh rows; every read answers each sample once.
    let fresh = count(store, "SELECT count(*) FROM samples").await;
    let ids = store.series_ids().await.unwrap();
    let read = |store: store::Store, ids: Vec<i64>| async move {
        store
            .raw_points(&ids, i64::MIN, i64::MAX, None)
            .await
            .unwrap()
            .values()
            .map(Vec::len)
            .sum::<usize>()
    };
    let once = read(store.clone(), ids.clone()).await;
    assert!(once > 0);
    assert_eq!(
        fresh as usize,
        2 * once,
        "every sample was stored twice as a fresh row"
    );

    // Maintenance as of two hours from now closes every hour: compaction keeps each once.
    let report = store
        .maintain(model::clock::now_ms() + 2 * HOUR)
        .await
        .unwrap();
    assert_eq!(store.mode(), store::testing::expected_mode().await);
    if store.mode() == store::StorageMode::TimescaleDb {
        // No compaction in TimescaleDB mode: both copies stay rows, reads keep one of each.
        assert_eq!(report.compaction, Default::default(), "{report:?}");
        assert_eq!(count(store, "SELECT count(*) FROM samples").await, fresh);
    } else {
        assert_eq!(report.compaction.rows as i64, fresh, "{report:?}");
        assert_eq!(count(store, "SELECT count(*) FROM samples").await, 0);
        let chunked = count(
            store,
            "SELECT coalesce(sum(n), 0)::bigint FROM sample_chunks",
        )
        .await;
        assert_eq!(chunked as usize, once);
    }
    assert_eq!(read(store.clone(), ids).await, once);
    once
}

#[tokio::test]
async fn resent_remote_write_bodies_are_stored_once() {
    let mut bodies = fixtures("remote_write", ".bin");
    bodies.extend(fixtures("remote_write/stale", ".bin"));
    assert_eq!(bodies.len(), 8, "the 8 captured Prometheus requests");
    let expected: u64 = bodies
        .iter()
        .map(|b| b.2["samples_count"].as_u64().unwrap())
        .sum();
    let once = send_twice_and_check(
        "/api/v1/write",
        "application/x-protobuf",
        bodies.into_iter().map(|b| b.1).collect(),
    )
    .await;
    assert_eq!(once as u64, expected);
}

#[tokio::test]
async fn resent_cumulative_otlp_exports_are_stored_once() {
    let bodies = fixtures("otlp/http-protobuf", "metrics-cumulative-c1.pb")
        .into_iter()
        .chain(fixtures("otlp/http-protobuf", "metrics-cumulative-c2.pb"))
        .chain(fixtures("otlp/http-protobuf", "metrics-cumulative-c3.pb"))
        .collect::<Vec<_>>();
    assert_eq!(bodies.len(), 3, "the 3 captured cumulative SDK exports");
    send_twice_and_check(
        "/v1/metrics",
        "application/x-protobuf",
        bodies.into_iter().map(|b| b.1).collect(),
    )
    .await;
}
