//! The remote_write receiver against a real PostgreSQL:
//!
//! - refusals through `tower::ServiceExt::oneshot`, each with its status and message checked
//!   (not snappy, snappy but not protobuf, empty, oversize, wrong framing headers, queue full
//!   while the database is locked);
//! - a replay of the eight captured Prometheus 2.42 requests, read back from the database and
//!   compared with the fixtures' expected values;
//! - Debian's real `prometheus` scraping a local target and remote-writing to an in-process
//!   pipewatch; the stored samples must equal what Prometheus' own API returns.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use collectors::remote_write::{self, DEFAULT_MAX_DECOMPRESSED_BYTES, STALE_NAN_BITS};
use http_body_util::BodyExt;
use model::{Batch, Labels, MetricType, Sample, SeriesKey, TimeSeries};
use serde_json::Value;
use server::config::{Config, ReceiversConfig};
use server::AppState;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// Prometheus 2.42's request headers (fixtures/remote_write/README.md).
fn prometheus_request(body: Vec<u8>) -> Request<Body> {
    Request::post("/api/v1/write")
        .header("content-encoding", "snappy")
        .header("content-type", "application/x-protobuf")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .header("user-agent", "Prometheus/2.42.0+ds")
        .body(Body::from(body))
        .unwrap()
}

struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: String,
}

async fn send(app: &Router, req: Request<Body>) -> Answer {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        retry_after,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A snappy block holding `bytes` as one literal: valid snappy whatever the content. Built by
/// hand from the format description (uncompressed length as a varint, then a literal tag
/// `(len-1) << 2` for up to 60 bytes) so this test does not lean on the decoder's library.
fn snappy_literal(bytes: &[u8]) -> Vec<u8> {
    assert!(!bytes.is_empty() && bytes.len() <= 60);
    let mut out = vec![bytes.len() as u8, ((bytes.len() - 1) << 2) as u8];
    out.extend_from_slice(bytes);
    out
}

/// `n` samples of one gauge series, one per second from `t0`.
fn gauge_batch(name: &str, t0: i64, n: usize) -> Batch {
    Batch {
        series: vec![TimeSeries {
            key: SeriesKey::new(name, Labels::from_pairs([("job", "load")])),
            metric_type: MetricType::Untyped,
            samples: (0..n)
                .map(|i| Sample {
                    ts: t0 + i as i64 * 1000,
                    value: i as f64,
                })
                .collect(),
        }],
        metadata: vec![],
    }
}

async fn wait_until_drained(st: &AppState) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while st.queue.depth() > 0 {
        assert!(Instant::now() < deadline, "queue did not drain in 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Metric, sorted label pairs, timestamp (ms) and value bits of one sample.
type StoredSample = (String, Vec<(String, String)>, i64, u64);

/// Every stored sample as (metric, labels, ts ms, value bits).
async fn stored(url: &str) -> Vec<(String, BTreeMap<String, String>, i64, u64)> {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let rows: Vec<(String, String, i64, f64)> = sqlx::query_as(
        "SELECT s.metric, s.labels::text, (extract(epoch FROM x.ts) * 1000)::bigint, x.value \
         FROM samples x JOIN series s ON s.id = x.series_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows.into_iter()
        .map(|(m, l, ts, v)| (m, serde_json::from_str(&l).unwrap(), ts, v.to_bits()))
        .collect()
}

fn fixture_bodies() -> Vec<(String, Vec<u8>, Value)> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../collectors/tests/fixtures/remote_write");
    let mut out = Vec::new();
    for d in [dir.clone(), dir.join("stale")] {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.extension().and_then(|x| x.to_str()) == Some("bin") {
                let exp = std::fs::read_to_string(p.with_extension("expected.json")).unwrap();
                out.push((
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                    serde_json::from_str(&exp).unwrap(),
                ));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(out.len(), 8, "expected the 8 captured requests");
    out
}

#[tokio::test]
async fn remote_write_refuses_malformed_bodies_with_400_and_the_reason() {
    let (st, _w, _) = pipewatch_tests::state(10_000).await;
    let app = server::app(st.clone(), std::env::temp_dir());

    let a = send(&app, prometheus_request(b"up{job=\"a\"} 1\n".to_vec())).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert!(
        a.body.starts_with("body is not snappy-compressed: "),
        "{}",
        a.body
    );
    assert!(
        a.body.contains("send Content-Encoding: snappy"),
        "{}",
        a.body
    );

    let a = send(
        &app,
        prometheus_request(snappy_literal(b"this is not protobuf")),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert!(
        a.body
            .starts_with("body is snappy-compressed but not a prometheus.WriteRequest protobuf"),
        "{}",
        a.body
    );

    let a = send(&app, prometheus_request(Vec::new())).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert!(a.body.starts_with("body is empty"), "{}", a.body);

    // A series without a metric name would be unqueryable: refused, the entry named.
    let nameless = Batch {
        series: vec![TimeSeries {
            key: SeriesKey::new("", Labels::from_pairs([("job", "x")])),
            metric_type: MetricType::Untyped,
            samples: vec![Sample { ts: 1, value: 1.0 }],
        }],
        metadata: vec![],
    };
    let a = send(&app, prometheus_request(remote_write::encode(&nameless))).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert!(
        a.body.contains("timeseries[0] has no __name__ label"),
        "{}",
        a.body
    );

    // A timestamp PostgreSQL cannot hold would block the writer forever if it were accepted.
    let a = send(
        &app,
        prometheus_request(remote_write::encode(&gauge_batch(
            "far",
            i64::MAX - 10_000,
            1,
        ))),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert!(a.body.contains("send Unix milliseconds"), "{}", a.body);

    let text = st.metrics.encode();
    assert!(
        text.contains(r#"pipewatch_receiver_requests_total{receiver="remote_write",code="400"} 5"#),
        "{text}"
    );
    assert_eq!(st.queue.depth(), 0);
    assert_eq!(
        st.metrics.samples_enqueued.get(),
        0,
        "nothing refused may be queued"
    );
}

#[tokio::test]
async fn remote_write_answers_415_to_other_encodings_and_remote_write_2() {
    let (st, _w, _) = pipewatch_tests::state(10_000).await;
    let app = server::app(st, std::env::temp_dir());
    let body = remote_write::encode(&gauge_batch("m", 1_790_000_000_000, 1));
    for (name, value, needle) in [
        ("content-encoding", "gzip", "send Content-Encoding: snappy"),
        (
            "content-type",
            "application/json",
            "send Content-Type: application/x-protobuf",
        ),
        (
            "content-type",
            "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            "remote_write 2.0 is not supported",
        ),
    ] {
        let mut req = Request::post("/api/v1/write");
        if name != "content-type" {
            req = req.header("content-type", "application/x-protobuf");
        }
        let req = req
            .header(name, value)
            .body(Body::from(body.clone()))
            .unwrap();
        let a = send(&app, req).await;
        assert_eq!(
            a.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{name}: {value}"
        );
        assert!(a.body.contains(needle), "{name}: {value}: {}", a.body);
    }
    // No Content-Type (what a form posted from another site's page sends): refused, naming
    // the one to send. Every remote_write sender sends it (fixtures/remote_write/README.md).
    let req = Request::post("/api/v1/write")
        .body(Body::from(body.clone()))
        .unwrap();
    let a = send(&app, req).await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        a.body.contains("send Content-Type: application/x-protobuf"),
        "{}",
        a.body
    );
    // The Content-Type alone: accepted, snappy assumed as by Prometheus' own receiver.
    let req = Request::post("/api/v1/write")
        .header("content-type", "application/x-protobuf")
        .body(Body::from(body))
        .unwrap();
    assert_eq!(send(&app, req).await.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn remote_write_answers_413_above_the_body_limit() {
    let (st, _w, _) = pipewatch_tests::state(10_000).await;
    let limits = ReceiversConfig {
        max_body_bytes: 4096,
        max_decompressed_bytes: 8192,
        ..ReceiversConfig::default()
    };
    // Through the whole app, as the server builds it: the limits come from AppState (config).
    let mut st = st;
    st.receivers = limits;
    let app = server::app(st.clone(), std::env::temp_dir());
    // Counter-like values do not compress well: this body is well above 4 KiB.
    let mut big = gauge_batch("big", 1_790_000_000_000, 2000);
    for (i, s) in big.series[0].samples.iter_mut().enumerate() {
        s.value = (i as f64).sqrt();
    }
    let body = remote_write::encode(&big);
    assert!(body.len() > 4096);

    // Streamed without Content-Length, and announced with it.
    let a = send(&app, prometheus_request(body.clone())).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", a.body);
    assert!(
        a.body
            .contains("larger than 4096 bytes (receivers.max_body_bytes)"),
        "{}",
        a.body
    );
    let mut req = prometheus_request(body.clone());
    req.headers_mut()
        .insert("content-length", body.len().to_string().parse().unwrap());
    assert_eq!(send(&app, req).await.status, StatusCode::PAYLOAD_TOO_LARGE);

    // Small on the wire, large once inflated: refused before inflating.
    // 3000 identical samples: about 33 KB of protobuf that snappy packs into a few hundred bytes.
    let mut zeros = gauge_batch("zeros", 1_790_000_000_000, 3000);
    for s in &mut zeros.series[0].samples {
        *s = Sample {
            ts: 1_790_000_000_000,
            value: 0.0,
        };
    }
    let body = remote_write::encode(&zeros);
    assert!(body.len() <= 4096, "{}", body.len());
    let a = send(&app, prometheus_request(body)).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", a.body);
    assert!(
        a.body.contains("receivers.max_decompressed_bytes"),
        "{}",
        a.body
    );
    assert_eq!(st.metrics.samples_enqueued.get(), 0);
}

#[tokio::test]
async fn remote_write_returns_503_with_retry_after_when_queue_full_and_loses_nothing() {
    let (st, writers, url) = pipewatch_tests::state(1000).await;
    let app = server::app(st.clone(), std::env::temp_dir());
    let t0 = 1_790_000_000_000;

    // Hold the samples table so the writer cannot commit: its batch keeps its queue permits.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut lock = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE samples IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();

    let first = remote_write::encode(&gauge_batch("first", t0, 600));
    let second = remote_write::encode(&gauge_batch("second", t0, 600));
    assert_eq!(
        send(&app, prometheus_request(first)).await.status,
        StatusCode::NO_CONTENT
    );
    let a = send(&app, prometheus_request(second.clone())).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    assert_eq!(a.retry_after.as_deref(), Some("1"));
    assert!(
        a.body.contains("ingest queue is full (1000 samples)"),
        "{}",
        a.body
    );

    // The same refusal as 429 when configured so.
    let limits = ReceiversConfig {
        queue_full_status: 429,
        ..ReceiversConfig::default()
    };
    let app429 = server::receivers::router_with_config(st.clone(), limits);
    let a = send(&app429, prometheus_request(second.clone())).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert_eq!(a.retry_after.as_deref(), Some("1"));

    // The database comes back; the sender retries as Prometheus does, and gets in.
    lock.rollback().await.unwrap();
    wait_until_drained(&st).await;
    assert_eq!(
        send(&app, prometheus_request(second)).await.status,
        StatusCode::NO_CONTENT
    );
    wait_until_drained(&st).await;
    assert_eq!(writers.shutdown(Duration::from_secs(10)).await, 0);

    let rows = stored(&url).await;
    for name in ["first", "second"] {
        let mut ts: Vec<i64> = rows.iter().filter(|r| r.0 == name).map(|r| r.2).collect();
        ts.sort();
        assert_eq!(
            ts,
            (0..600).map(|i| t0 + i * 1000).collect::<Vec<_>>(),
            "{name}: each sample once"
        );
    }
    pool.close().await;
}

#[tokio::test]
async fn replayed_prometheus_requests_are_stored_exactly() {
    let (st, writers, url) = pipewatch_tests::state(100_000).await;
    let app = server::app(st.clone(), std::env::temp_dir());
    let fixtures = fixture_bodies();
    for (name, body, _) in &fixtures {
        let a = send(&app, prometheus_request(body.clone())).await;
        assert_eq!(a.status, StatusCode::NO_CONTENT, "{name}: {}", a.body);
        assert!(a.body.is_empty());
    }
    wait_until_drained(&st).await;
    assert_eq!(writers.shutdown(Duration::from_secs(10)).await, 0);
    let rows = stored(&url).await;

    // Counts from the expected files (an independent decoder), over all eight requests.
    let total = |k: &str| {
        fixtures
            .iter()
            .map(|f| f.2[k].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(rows.len() as u64, total("samples_count"));
    let stale = rows.iter().filter(|r| r.3 == STALE_NAN_BITS).count() as u64;
    assert_eq!(stale, total("stale_marker_count"));
    let nan = rows
        .iter()
        .filter(|r| f64::from_bits(r.3).is_nan() && r.3 != STALE_NAN_BITS)
        .count() as u64;
    assert_eq!(nan, total("nan_sample_count"));
    let inf = rows
        .iter()
        .filter(|r| f64::from_bits(r.3).is_infinite())
        .count() as u64;
    assert_eq!(inf, total("inf_sample_count"));
    let min = fixtures
        .iter()
        .filter_map(|f| f.2["min_timestamp_ms"].as_i64())
        .min();
    let max = fixtures
        .iter()
        .filter_map(|f| f.2["max_timestamp_ms"].as_i64())
        .max();
    assert_eq!(rows.iter().map(|r| r.2).min(), min);
    assert_eq!(rows.iter().map(|r| r.2).max(), max);

    // Every example series of the expected files is stored with its labels and value bits.
    let index: BTreeSet<StoredSample> = rows
        .iter()
        .map(|(m, l, ts, v)| (m.clone(), l.clone().into_iter().collect(), *ts, *v))
        .collect();
    let mut checked = 0;
    for (name, _, exp) in &fixtures {
        for ex in exp["example_series"].as_array().unwrap() {
            let mut metric = String::new();
            let mut labels = Vec::new();
            for p in ex["labels"].as_array().unwrap() {
                let (k, v) = (p[0].as_str().unwrap(), p[1].as_str().unwrap());
                if k == "__name__" {
                    metric = v.to_string();
                } else {
                    labels.push((k.to_string(), v.to_string()));
                }
            }
            for s in ex["samples"].as_array().unwrap() {
                let bits = match &s[1] {
                    Value::String(x) if x == "StaleNaN" => STALE_NAN_BITS,
                    Value::String(x) if x == "NaN" => 0x7ff8_0000_0000_0001,
                    Value::String(x) if x == "+Inf" => f64::INFINITY.to_bits(),
                    Value::String(x) if x == "-Inf" => f64::NEG_INFINITY.to_bits(),
                    v => v.as_f64().unwrap().to_bits(),
                };
                let key = (metric.clone(), labels.clone(), s[0].as_i64().unwrap(), bits);
                assert!(
                    index.contains(&key),
                    "{name}: example {} not stored as {key:?}",
                    ex["index"]
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "{checked}");

    // And the whole set equals what the decoder produced, bit for bit.
    let mut decoded: Vec<StoredSample> = Vec::new();
    for (_, body, _) in &fixtures {
        for s in remote_write::decode(body, DEFAULT_MAX_DECOMPRESSED_BYTES)
            .unwrap()
            .batch
            .series
        {
            let labels: Vec<(String, String)> = s
                .key
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            for x in s.samples {
                decoded.push((
                    s.key.metric.clone(),
                    labels.clone(),
                    x.ts,
                    x.value.to_bits(),
                ));
            }
        }
    }
    let mut got: Vec<_> = rows
        .iter()
        .map(|(m, l, ts, v)| {
            (
                m.clone(),
                l.clone().into_iter().collect::<Vec<_>>(),
                *ts,
                *v,
            )
        })
        .collect();
    decoded.sort();
    got.sort();
    assert_eq!(got, decoded);

    // Metadata of the metadata request is stored, type and help included.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let meta: Vec<(String, String, String, String)> =
        sqlx::query_as("SELECT family, metric_type, unit, help FROM metric_metadata")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    let req06 = &fixtures
        .iter()
        .find(|f| f.0 == "req06-metadata.bin")
        .unwrap()
        .2;
    let families: BTreeSet<&str> = meta.iter().map(|m| m.0.as_str()).collect();
    assert!(families.len() > 400, "{} families stored", families.len());
    for ex in req06["metadata_examples"].as_array().unwrap() {
        let family = ex["metric_family_name"].as_str().unwrap();
        let m = meta
            .iter()
            .find(|m| m.0 == family)
            .unwrap_or_else(|| panic!("{family} not stored"));
        assert_eq!(m.1, ex["type"].as_str().unwrap().to_lowercase(), "{family}");
        assert_eq!(m.3, ex["help"].as_str().unwrap(), "{family}");
    }
    let text = st.metrics.encode();
    assert!(
        text.contains(r#"pipewatch_receiver_requests_total{receiver="remote_write",code="204"} 8"#),
        "{text}"
    );
    assert!(
        text.contains("pipewatch_receiver_exemplars_dropped_total 7"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// Live: Debian's prometheus remote-writes to pipewatch.

/// The scrape target: a counter that grows by 1 per scrape, a gauge with awkward label values,
/// a histogram, and a series that disappears after 4 scrapes (so Prometheus sends a staleness
/// marker for it).
async fn live_target() -> std::net::SocketAddr {
    let scrapes = Arc::new(AtomicU64::new(0));
    let router = Router::new().route(
        "/metrics",
        get(move || {
            let n = scrapes.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                let mut body = format!(
                    "# HELP rw_jobs_processed_total Jobs processed.\n# TYPE rw_jobs_processed_total counter\nrw_jobs_processed_total{{stage=\"load\"}} {n}\n\
                     # HELP rw_queue_depth Items waiting.\n# TYPE rw_queue_depth gauge\nrw_queue_depth{{path=\"C:\\\\in\",note=\"say \\\"hi\\\"\",city=\"café_☃\"}} {}\n\
                     # HELP rw_latency_seconds Step latency.\n# TYPE rw_latency_seconds histogram\n\
                     rw_latency_seconds_bucket{{le=\"0.1\"}} {n}\nrw_latency_seconds_bucket{{le=\"+Inf\"}} {}\nrw_latency_seconds_sum {}\nrw_latency_seconds_count {}\n",
                    (n as f64) * 0.25 - 1.5,
                    2 * n,
                    n as f64 * 0.125,
                    2 * n
                );
                if n <= 4 {
                    body.push_str("# HELP rw_short_lived Gone after four scrapes.\n# TYPE rw_short_lived gauge\nrw_short_lived 7\n");
                }
                ([("content-type", "text/plain; version=0.0.4")], body)
            }
        }),
    );
    pipewatch_tests::serve(router).await
}

type SeriesSamples = BTreeMap<(String, Vec<(String, String)>), Vec<(i64, u64)>>;

/// Raw samples Prometheus holds for job `rw_target`, from its own HTTP API.
async fn prometheus_samples(client: &reqwest::Client, prom: &str) -> SeriesSamples {
    let v: Value = client
        .get(format!("http://{prom}/api/v1/query"))
        .query(&[("query", r#"{job="rw_target"}[10m]"#)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "success", "{v}");
    let mut out = SeriesSamples::new();
    for s in v["data"]["result"].as_array().unwrap() {
        let mut metric = String::new();
        let mut labels = Vec::new();
        for (k, val) in s["metric"].as_object().unwrap() {
            if k == "__name__" {
                metric = val.as_str().unwrap().to_string();
            } else {
                labels.push((k.clone(), val.as_str().unwrap().to_string()));
            }
        }
        labels.sort();
        let points = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let ts = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                let value: f64 = match p[1].as_str().unwrap() {
                    "+Inf" => f64::INFINITY,
                    "-Inf" => f64::NEG_INFINITY,
                    x => x.parse().unwrap(),
                };
                (ts, value.to_bits())
            })
            .collect();
        out.insert((metric, labels), points);
    }
    out
}

fn pipewatch_samples(rows: &[(String, BTreeMap<String, String>, i64, u64)]) -> SeriesSamples {
    let mut out = SeriesSamples::new();
    for (m, l, ts, v) in rows {
        if l.get("job").map(String::as_str) != Some("rw_target") {
            continue;
        }
        let key = (m.clone(), l.clone().into_iter().collect());
        out.entry(key).or_default().push((*ts, *v));
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_remote_writes_exactly_what_it_scraped() {
    let target = live_target().await;
    let url = store::testing::fresh_database_url().await;
    let cfg = Config::from_toml_str(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[database]\nurl = \"{url}\"\n[ingest]\nflush_interval = \"100ms\"\n[auth]\nanonymous_role = \"admin\"\n"
    ))
    .unwrap();
    let server = server::run::RunningServer::start(cfg, Default::default())
        .await
        .expect("pipewatch ready");
    let pipewatch = server.addr;

    let mut prometheus = pipewatch_tests::Prometheus::start("pipewatch-rw-live", &[], |_| {
        vec![(
            "prometheus.yml",
            format!(
                "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\n\
             scrape_configs:\n  - job_name: rw_target\n    static_configs: [{{targets: ['{target}']}}]\n\
             remote_write:\n  - url: http://{pipewatch}/api/v1/write\n    metadata_config: {{send: true, send_interval: 1s}}\n    queue_config: {{batch_send_deadline: 500ms, min_backoff: 50ms, max_backoff: 1s}}\n"
            ),
        )]
    });
    let prom_addr = prometheus.addr.clone();

    // Let it scrape at least 8 times, so the short-lived series goes stale in between.
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let reference = loop {
        assert!(
            !prometheus.has_exited(),
            "prometheus exited:\n{}",
            prometheus.log()
        );
        assert!(
            Instant::now() < deadline,
            "prometheus did not scrape 8 times in 60 s:\n{}",
            prometheus.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Ok(r) = client
            .get(format!("http://{prom_addr}/-/ready"))
            .send()
            .await
        else {
            continue;
        };
        if !r.status().is_success() {
            continue;
        }
        let s = prometheus_samples(&client, &prom_addr).await;
        let up = s
            .iter()
            .find(|(k, _)| k.0 == "up")
            .map(|(_, v)| v.len())
            .unwrap_or(0);
        if up >= 8 {
            break s;
        }
    };
    let cutoff = reference.values().flatten().map(|p| p.0).max().unwrap();

    // pipewatch has everything Prometheus held at that moment once the queue has sent it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (got, stale_rows) = loop {
        let rows = stored(&url).await;
        let mut got = pipewatch_samples(&rows);
        let stale: Vec<_> = got
            .iter()
            .flat_map(|(k, v)| {
                v.iter()
                    .filter(|p| p.1 == STALE_NAN_BITS)
                    .map(move |p| (k.0.clone(), p.0))
            })
            .collect();
        for v in got.values_mut() {
            // Prometheus' API hides staleness markers; compare the rest up to the cutoff.
            v.retain(|p| p.0 <= cutoff && p.1 != STALE_NAN_BITS);
        }
        got.retain(|_, v| !v.is_empty());
        if got == reference || Instant::now() > deadline {
            break (got, stale);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        reference.keys().collect::<Vec<_>>(),
        "series differ; prometheus log:\n{}",
        prometheus.log()
    );
    for (k, want) in &reference {
        assert_eq!(&got[k], want, "samples of {k:?} differ");
    }
    eprintln!(
        "compared {} series, {} samples up to {cutoff}; {} staleness markers stored",
        reference.len(),
        reference.values().map(Vec::len).sum::<usize>(),
        stale_rows.len()
    );
    // Sanity of the reference itself: the target's counter rose by one per scrape.
    let counter = &reference[&(
        "rw_jobs_processed_total".to_string(),
        vec![
            ("instance".to_string(), target.to_string()),
            ("job".to_string(), "rw_target".to_string()),
            ("stage".to_string(), "load".to_string()),
        ],
    )];
    assert!(counter.len() >= 8);
    assert!(
        counter
            .windows(2)
            .all(|w| f64::from_bits(w[1].1) == f64::from_bits(w[0].1) + 1.0),
        "{counter:?}"
    );
    assert!(reference.keys().any(|k| k.0 == "rw_queue_depth"
        && k.1
            .contains(&("note".to_string(), "say \"hi\"".to_string()))));

    // The series that vanished after four scrapes ends with Prometheus' staleness marker.
    let short: Vec<&(String, i64)> = stale_rows
        .iter()
        .filter(|s| s.0 == "rw_short_lived")
        .collect();
    assert_eq!(short.len(), 1, "staleness markers: {stale_rows:?}");
    let last_real = reference
        .iter()
        .find(|(k, _)| k.0 == "rw_short_lived")
        .map(|(_, v)| v.last().unwrap().0)
        .expect("rw_short_lived scraped");
    assert!(short[0].1 > last_real);

    // Metadata was sent and stored with type and help.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let meta: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT family, metric_type, help FROM metric_metadata WHERE family LIKE 'rw_%' ORDER BY family",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        let want = vec![
            (
                "rw_jobs_processed_total".to_string(),
                "counter".to_string(),
                "Jobs processed.".to_string(),
            ),
            (
                "rw_latency_seconds".to_string(),
                "histogram".to_string(),
                "Step latency.".to_string(),
            ),
            (
                "rw_queue_depth".to_string(),
                "gauge".to_string(),
                "Items waiting.".to_string(),
            ),
        ];
        let without_short: Vec<_> = meta
            .iter()
            .filter(|m| m.0 != "rw_short_lived")
            .cloned()
            .collect();
        if without_short == want {
            break;
        }
        assert!(Instant::now() < deadline, "metadata stored: {meta:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    pool.close().await;

    drop(prometheus);
    let report = server.stop().await.unwrap();
    assert_eq!(report.samples_lost, 0);
}
