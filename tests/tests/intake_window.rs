//! The intake window against a real PostgreSQL: samples older than `database.retention_days`
//! or further ahead than `limits.future_tolerance` are refused at intake, never acknowledged
//! and deleted later.
//!
//! - remote_write: a request holding one such sample is refused whole with 400 naming the key
//!   (as Prometheus' receiver does), nothing of it stored; the refusals are counted by reason in
//!   `/metrics` and on `/api/v1/status`; a backfill inside the window is stored;
//! - OTLP: a real SDK export (captured bytes) whose points are all too old gets
//!   `partial_success` with one rejected point per data point (a histogram point counts once,
//!   however many series it becomes); so does the same export refused by `[limits]`;
//! - retention: every sample the window accepts survives maintenance until it is
//!   `retention_days` old, and older ones are deleted.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use model::{Batch, Labels, MetricType, Sample, SeriesKey, TimeSeries};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use prost::Message;
use server::config::LimitsConfig;
use server::guard::Guard;
use server::ingest::window::IntakeWindow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

const DAY_MS: i64 = 86_400_000;

fn gauge(name: &str, ts: &[i64]) -> TimeSeries {
    TimeSeries {
        key: SeriesKey::new(name, Labels::from_pairs([("job", "intake")])),
        metric_type: MetricType::Gauge,
        samples: ts.iter().map(|&ts| Sample { ts, value: 1.0 }).collect(),
    }
}

async fn send(
    app: &Router,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, Vec<u8>) {
    let mut req = Request::post(path).header("content-type", content_type);
    if path == "/api/v1/write" {
        req = req.header("content-encoding", "snappy");
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, body)
}

async fn remote_write(app: &Router, series: Vec<TimeSeries>) -> (StatusCode, String) {
    let body = collectors::remote_write::encode(&Batch {
        series,
        metadata: vec![],
    });
    let (status, body) = send(app, "/api/v1/write", "application/x-protobuf", body).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn stored(url: &str) -> Vec<(String, i64)> {
    pipewatch_tests::stored_rows(url)
        .await
        .into_iter()
        .map(|(metric, _, ts, _)| (metric, ts))
        .collect()
}

async fn wait_until_drained(st: &server::AppState) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while st.queue.depth() > 0 {
        assert!(Instant::now() < deadline, "queue did not drain in 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the queue is drained, stops the writers, and returns the stored rows, sorted.
async fn drained_rows(
    st: &server::AppState,
    writers: server::ingest::BatchWriters,
    url: &str,
) -> Vec<(String, i64)> {
    wait_until_drained(st).await;
    assert_eq!(writers.shutdown(Duration::from_secs(10)).await, 0);
    let mut rows = stored(url).await;
    rows.sort();
    rows
}

/// A series written before is registered: the receivers' resolver takes it by id now.
fn assert_held_by_id(st: &server::AppState, key: &SeriesKey, now: i64) {
    assert!(
        key.with_encoding(|e| st.queue.resolve_encoded(e, now, now))
            .is_some(),
        "{key} is not held by id"
    );
}

async fn status(app: &Router) -> serde_json::Value {
    let resp = app
        .clone()
        .oneshot(Request::get("/api/v1/status").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice::<serde_json::Value>(&body).unwrap()["data"].clone()
}

#[tokio::test]
async fn remote_write_refuses_requests_with_samples_outside_the_window_whole() {
    let (mut st, writers, url) = pipewatch_tests::state(10_000).await;
    st.retention_days = 2;
    let app = server::app(st.clone(), std::env::temp_dir());
    let now = pipewatch_tests::now_ms();

    // One sample three days old among good ones: nothing of the request is stored.
    let (code, body) = remote_write(
        &app,
        vec![
            gauge("good", &[now - 1000, now]),
            gauge("late", &[now - 3 * DAY_MS]),
        ],
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body.contains("1 older than the retention window of 2 days (`database.retention_days`)"),
        "{body}"
    );
    assert!(
        body.contains("First: series late{job=\"intake\"} at "),
        "{body}"
    );
    assert!(
        body.contains("the whole request (3 samples) was refused and nothing of it stored"),
        "{body}"
    );

    // An hour ahead, beyond the default ten minutes.
    let (code, body) = remote_write(&app, vec![gauge("early", &[now + 3_600_000])]).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body.contains("1 more than 10m ahead of this server's clock (`limits.future_tolerance`)"),
        "{body}"
    );

    // Backfill inside the window (a day and a half old) and a little skew ahead are stored.
    let backfill = now - DAY_MS - DAY_MS / 2;
    let (code, body) = remote_write(
        &app,
        vec![
            gauge("backfill", &[backfill]),
            gauge("skewed", &[now + 60_000]),
        ],
    )
    .await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    wait_until_drained(&st).await;
    assert_eq!(writers.shutdown(Duration::from_secs(10)).await, 0);
    assert_eq!(
        stored(&url).await,
        [
            ("backfill".to_string(), backfill),
            ("skewed".to_string(), now + 60_000)
        ]
    );

    let metrics = st.metrics.encode();
    for (reason, n) in [("too_old", 1), ("too_new", 1)] {
        let line = format!("pipewatch_ingest_samples_rejected_total{{reason=\"{reason}\"}} {n}");
        assert!(metrics.contains(&line), "{line} not in\n{metrics}");
    }
    let s = status(&app).await;
    assert_eq!(
        (&s["samples_refused_too_old"], &s["samples_refused_too_new"]),
        (&serde_json::json!(1), &serde_json::json!(1))
    );
}

/// A series the store already knows is taken by its id while the body is decoded, without its
/// label set being built (`KnownSeries` in the remote_write receiver): its samples must still
/// go or stay with the rest of their request. Here the request also holds a sample an hour
/// ahead, so it is refused whole, and the known series' samples in it are not stored either.
#[tokio::test]
async fn a_known_series_is_refused_with_the_rest_of_its_request() {
    let (st, writers, url) = pipewatch_tests::state(10_000).await;
    let app = server::app(st.clone(), std::env::temp_dir());
    let now = pipewatch_tests::now_ms();
    let first = [now - 3_000, now - 2_000];
    let (code, body) = remote_write(&app, vec![gauge("known", &first)]).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    wait_until_drained(&st).await;
    // Registered by the write: the receiver's resolver now knows it by id.
    assert_held_by_id(&st, &gauge("known", &[]).key, now);

    let (code, body) = remote_write(
        &app,
        vec![
            gauge("known", &[now - 1_000]),
            gauge("early", &[now + 3_600_000]),
        ],
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body.contains("the whole request (2 samples) was refused and nothing of it stored"),
        "{body}"
    );

    // Alone, its next sample is taken (by id) and stored once.
    let (code, body) = remote_write(&app, vec![gauge("known", &[now])]).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        drained_rows(&st, writers, &url).await,
        [first[0], first[1], now]
            .iter()
            .map(|&ts| ("known".to_string(), ts))
            .collect::<Vec<_>>()
    );
}

/// An OTLP request with one gauge `probe.temp` of `service.name` "intake", points at `ts`.
fn otlp_gauge(ts: &[i64]) -> Vec<u8> {
    otlp_gauge_with(ts, &[("probe.site", "north")])
}

/// `probe.temp` points at `ts` with the point attributes `attrs`, in that order.
fn otlp_gauge_with(ts: &[i64], attrs: &[(&str, &str)]) -> Vec<u8> {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::metrics::v1::{
        metric::Data, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics,
        ScopeMetrics,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    let kv = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    };
    let data_points = ts
        .iter()
        .map(|&ms| NumberDataPoint {
            attributes: attrs.iter().map(|(k, v)| kv(k, v)).collect(),
            time_unix_nano: ms as u64 * 1_000_000,
            value: Some(number_data_point::Value::AsDouble(1.0)),
            ..Default::default()
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "intake")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "probe.temp".into(),
                    data: Some(Data::Gauge(Gauge { data_points })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// The OTLP receiver takes a known series by id while it maps the request too: a point of it
/// outside the window is still refused with the `partial_success` message and counted, the
/// other is stored.
#[tokio::test]
async fn otlp_points_of_a_known_series_outside_the_window_are_refused() {
    let (st, writers, url) = pipewatch_tests::state(10_000).await;
    let app = server::app(st.clone(), std::env::temp_dir());
    let now = pipewatch_tests::now_ms();
    let first = now - 3_000;
    let (code, body) = send(
        &app,
        "/v1/metrics",
        "application/x-protobuf",
        otlp_gauge(&[first]),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    wait_until_drained(&st).await;
    let key = SeriesKey::new(
        "probe_temp",
        Labels::from_pairs([("job", "intake"), ("probe_site", "north")]),
    );
    assert_held_by_id(&st, &key, now);

    let (rejected, message) = export(&app, otlp_gauge(&[now - 1_000, now + 3_600_000])).await;
    assert_eq!(rejected, 1, "{message}");
    assert!(
        message
            .contains("1 more than 10m ahead of this server's clock (`limits.future_tolerance`)"),
        "{message}"
    );
    assert_eq!(st.metrics.rejected_total("too_new"), 1);
    assert_eq!(
        drained_rows(&st, writers, &url).await,
        [first, now - 1_000]
            .iter()
            .map(|&ts| ("probe_temp".to_string(), ts))
            .collect::<Vec<_>>()
    );
}

/// The OTLP receiver remembers the raw attribute bytes of the number points whose series it
/// took by id, and next time recognises the series by them before building its key. The
/// window still applies to every point, and the samples are stored once each under the right
/// series; the same attributes in another order are another raw name of the same series.
#[tokio::test]
async fn otlp_series_recognised_by_raw_attributes_are_checked_and_stored_once() {
    let (st, writers, url) = pipewatch_tests::state(10_000).await;
    let rst = server::receivers::ReceiverState::new(st.clone(), Default::default());
    let app = server::receivers::router_with_state(rst.clone());
    let now = pipewatch_tests::now_ms();
    let attrs = [("probe.site", "north"), ("probe.zone", "a")];
    let reversed = [("probe.zone", "a"), ("probe.site", "north")];
    let ok = |(code, body): (StatusCode, Vec<u8>)| {
        assert_eq!(code, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        assert!(
            ExportMetricsServiceResponse::decode(&body[..])
                .unwrap()
                .partial_success
                .is_none(),
            "{body:?}"
        );
    };
    let raw = &rst.otlp.raw_names;
    let post = |body: Vec<u8>| send(&app, "/v1/metrics", "application/x-protobuf", body);

    // New: built in full and registered by the writer.
    ok(post(otlp_gauge_with(&[now - 4_000], &attrs)).await);
    wait_until_drained(&st).await;
    assert_eq!((raw.len(), raw.hits()), (0, 0), "nothing taken by id yet");
    // Registered: taken by id from its key, and its raw name remembered.
    ok(post(otlp_gauge_with(&[now - 3_000], &attrs)).await);
    assert_eq!((raw.len(), raw.hits()), (1, 0));
    // Recognised by its raw name; the point beyond the future tolerance is still refused.
    let (rejected, message) = export(
        &app,
        otlp_gauge_with(&[now - 2_000, now + 3_600_000], &attrs),
    )
    .await;
    assert_eq!(rejected, 1, "{message}");
    assert!(message.contains("`limits.future_tolerance`"), "{message}");
    assert_eq!((raw.len(), raw.hits()), (1, 1));
    // The same attributes in another order: a second raw name of the same series.
    ok(post(otlp_gauge_with(&[now - 1_000], &reversed)).await);
    ok(post(otlp_gauge_with(&[now - 500], &reversed)).await);
    assert_eq!((raw.len(), raw.hits()), (2, 2));

    let rows = drained_rows(&st, writers, &url).await;
    let expected: Vec<(String, i64)> = [4_000, 3_000, 2_000, 1_000, 500]
        .iter()
        .map(|ago| ("probe_temp".to_string(), now - ago))
        .collect();
    assert_eq!(rows, expected);
    let series: i64 = sqlx::query_scalar("SELECT count(*) FROM series WHERE metric = 'probe_temp'")
        .fetch_one(&sqlx::PgPool::connect(&url).await.unwrap())
        .await
        .unwrap();
    assert_eq!(series, 1);
}

/// A captured OpenTelemetry Python SDK export (fixtures/otlp README): one delta sum, one delta
/// histogram and another delta sum, one data point each.
fn sdk_export() -> (Vec<u8>, i64) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../collectors/tests/fixtures/otlp/http-protobuf");
    let body = std::fs::read(dir.join("02-metrics-delta-c1.pb")).unwrap();
    let expected: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("02-metrics-delta-c1.expected.json")).unwrap(),
    )
    .unwrap();
    let points = expected["totals"]["data_point_count"].as_i64().unwrap();
    (body, points)
}

async fn export(app: &Router, body: Vec<u8>) -> (i64, String) {
    let (code, body) = send(app, "/v1/metrics", "application/x-protobuf", body).await;
    assert_eq!(code, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let p = ExportMetricsServiceResponse::decode(&body[..])
        .unwrap()
        .partial_success
        .expect("a partial success");
    (p.rejected_data_points, p.error_message)
}

#[tokio::test]
async fn otlp_reports_points_outside_the_window_and_over_limits_as_partial_success() {
    let (body, points) = sdk_export();
    assert_eq!(points, 3);

    // Retention of one day: the capture is older than that (it was taken on 2026-11-26).
    let (mut st, writers, url) = pipewatch_tests::state(10_000).await;
    st.retention_days = 1;
    let app = server::app(st.clone(), std::env::temp_dir());
    let (rejected, message) = export(&app, body.clone()).await;
    assert_eq!(rejected, points, "{message}");
    assert!(message.contains("`database.retention_days`"), "{message}");
    let too_old = st.metrics.rejected_total("too_old");
    assert!(
        too_old > points as u64,
        "the histogram point is several samples ({too_old})"
    );
    assert_eq!(writers.shutdown(Duration::from_secs(10)).await, 0);
    assert!(stored(&url).await.is_empty());

    // The same export through [limits] that refuse every one of its series.
    let (mut st, writers, url) = pipewatch_tests::state(10_000).await;
    st.guard = Arc::new(Guard::new(
        vec![],
        LimitsConfig {
            max_labels_per_series: 1,
            ..Default::default()
        },
    ));
    let app = server::app(st.clone(), std::env::temp_dir());
    let (rejected, message) = export(&app, body).await;
    assert_eq!(rejected, points, "{message}");
    assert!(
        message.contains("`limits.max_labels_per_series`"),
        "{message}"
    );
    assert_eq!(writers.shutdown(Duration::from_secs(10)).await, 0);
    assert!(stored(&url).await.is_empty());
}

/// Whatever the window accepts stays until it is `retention_days` old, through maintenance
/// runs at later and later times; what is older than that is deleted.
#[tokio::test]
async fn retention_deletes_nothing_the_window_accepted_before_its_time() {
    const RETENTION_DAYS: u32 = 2;
    let url = store::testing::fresh_database_url().await;
    let store = store::Store::connect(
        &url,
        store::StoreConfig {
            retention_days: RETENTION_DAYS,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let window = IntakeWindow::new(RETENTION_DAYS, Duration::from_secs(600));
    let now = pipewatch_tests::now_ms();
    let (oldest, newest) = window.bounds(now);
    let accepted: Vec<i64> = [
        oldest,
        oldest + 1,
        oldest + 3_600_000,
        now - DAY_MS,
        now,
        newest,
    ]
    .into_iter()
    .filter(|&ts| window.check(ts, now).is_none())
    .collect();
    assert_eq!(accepted.len(), 6, "the bounds are inclusive");
    assert!(window.check(oldest - 1, now).is_some());
    store
        .write(&[Batch {
            series: vec![gauge("kept", &accepted)],
            metadata: vec![],
        }])
        .await
        .unwrap();

    let mut left = accepted.len();
    for hours in [0, 1, 6, 12, 24, 36, 48, 60, 72, 100] {
        let t = now + hours * 3_600_000;
        store.maintain(t).await.unwrap();
        let rows: Vec<i64> = stored(&url).await.into_iter().map(|r| r.1).collect();
        let due = t - i64::from(RETENTION_DAYS) * DAY_MS;
        for ts in accepted.iter().filter(|&&ts| ts >= due) {
            assert!(
                rows.contains(ts),
                "maintenance at +{hours} h deleted the sample at {ts}, {} ms before it was {RETENTION_DAYS} days old",
                ts - due
            );
        }
        left = rows.len();
    }
    assert_eq!(
        left, 0,
        "100 h later every sample (the newest was 10 min ahead) is older than the window and deleted"
    );
}
