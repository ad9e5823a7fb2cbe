//! The OTLP receivers against a real PostgreSQL:
//!
//! - refusals over OTLP/HTTP through `tower::ServiceExt::oneshot`, each with status and
//!   message checked (wrong Content-Type, wrong Content-Encoding, malformed protobuf and
//!   JSON with a `google.rpc.Status` body, oversize, queue full while the database is locked);
//! - a replay of the captured SDK requests (protobuf, JSON, gzip, deflate), read back from the
//!   database: delta sums accumulated to the fixture README's totals;
//! - the OpenTelemetry Python SDK exporting known values over HTTP protobuf and over gRPC to
//!   pipewatch on loopback; the stored samples must equal what the script says it recorded;
//! - gRPC status codes: queue full is UNAVAILABLE with RetryInfo, refused points are a
//!   partial success;
//! - span and log counters idempotent on re-send and stamped with the data's own time, and NUL
//!   bytes refused as a partial success with the rest stored.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    metrics_service_client::MetricsServiceClient, ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use prost::Message;
use serde_json::Value;
use server::receivers::otlp::RpcStatus;
use server::AppState;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tower::ServiceExt;

fn fixture(path: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../collectors/tests/fixtures/otlp")
        .join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

struct Answer {
    status: StatusCode,
    content_type: String,
    retry_after: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn post(app: &Router, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
    let mut req = Request::post(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let h = |n: &str| {
        resp.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let (content_type, retry_after) = (h("content-type").unwrap_or_default(), h("retry-after"));
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        content_type,
        retry_after,
        body,
    }
}

const PB: &[(&str, &str)] = &[("content-type", "application/x-protobuf")];
const JSON: &[(&str, &str)] = &[("content-type", "application/json")];

async fn wait_until_drained(st: &AppState) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while st.queue.depth() > 0 {
        assert!(Instant::now() < deadline, "queue did not drain in 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Latest stored value per series, as `metric{labels}` (labels as sorted JSON pairs).
async fn latest(url: &str) -> BTreeMap<(String, BTreeMap<String, String>), f64> {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let rows: Vec<(String, String, f64)> = sqlx::query_as(
        "SELECT DISTINCT ON (s.id) s.metric, s.labels::text, x.value \
         FROM samples x JOIN series s ON s.id = x.series_id ORDER BY s.id, x.ts DESC",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows.into_iter()
        .map(|(m, l, v)| ((m, serde_json::from_str(&l).unwrap()), v))
        .collect()
}

fn value_of(
    rows: &BTreeMap<(String, BTreeMap<String, String>), f64>,
    metric: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    rows.iter()
        .find(|((m, l), _)| {
            m == metric
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| *v)
}

#[tokio::test]
async fn otlp_http_refuses_bad_requests_with_the_status_and_a_message_naming_the_fix() {
    let (mut st, _w, _) = pipewatch_tests::state(10_000).await;
    st.receivers.max_body_bytes = 4096;
    st.receivers.max_decompressed_bytes = 8192;
    let app = server::app(st.clone(), std::env::temp_dir());

    let a = post(
        &app,
        "/v1/metrics",
        &[("content-type", "text/plain")],
        b"x".to_vec(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", a.text());
    assert!(
        a.text()
            .contains("send Content-Type: application/x-protobuf"),
        "{}",
        a.text()
    );
    let a = post(&app, "/v1/traces", &[], b"x".to_vec()).await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        a.text()
            .starts_with("no Content-Type is not supported by otlp"),
        "{}",
        a.text()
    );

    let a = post(
        &app,
        "/v1/metrics",
        &[
            ("content-type", "application/x-protobuf"),
            ("content-encoding", "br"),
        ],
        b"x".to_vec(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        a.text().contains("send gzip, deflate (zlib)"),
        "{}",
        a.text()
    );

    // Malformed protobuf: 400 with a protobuf google.rpc.Status naming the message.
    let a = post(&app, "/v1/metrics", PB, vec![0x0a, 0xff, 0x01]).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.content_type, "application/x-protobuf");
    let s = RpcStatus::decode(&a.body[..]).unwrap();
    assert_eq!(s.code, 3, "INVALID_ARGUMENT");
    assert!(
        s.message
            .starts_with("body is not a protobuf ExportMetricsServiceRequest"),
        "{}",
        s.message
    );
    // A traces body sent to /v1/logs decodes as nothing known: refused, not acknowledged.
    let a = post(&app, "/v1/logs", PB, b"\x78\x01".to_vec()).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let s = RpcStatus::decode(&a.body[..]).unwrap();
    assert!(
        s.message.contains("hold no resource entries"),
        "{}",
        s.message
    );

    // Malformed JSON: 400 with a JSON status whose message has the path.
    let a = post(
        &app,
        "/v1/metrics",
        JSON,
        br#"{"resourceMetrics": {}}"#.to_vec(),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.content_type, "application/json");
    let v: Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(v["code"], 3);
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains("at resourceMetrics"), "{msg}");
    assert!(msg.contains("send OTLP/JSON"), "{msg}");

    // Gzip that is not gzip.
    let a = post(
        &app,
        "/v1/metrics",
        &[
            ("content-type", "application/x-protobuf"),
            ("content-encoding", "gzip"),
        ],
        b"plain bytes".to_vec(),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let s = RpcStatus::decode(&a.body[..]).unwrap();
    assert!(
        s.message.starts_with("body is not valid gzip data"),
        "{}",
        s.message
    );

    // Over max_body_bytes as sent, and over max_decompressed_bytes once inflated.
    let a = post(&app, "/v1/metrics", PB, vec![0; 5000]).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        RpcStatus::decode(&a.body[..])
            .unwrap()
            .message
            .contains("receivers.max_body_bytes"),
        "{}",
        a.text()
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 100_000]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 4096);
    let a = post(
        &app,
        "/v1/metrics",
        &[
            ("content-type", "application/x-protobuf"),
            ("content-encoding", "gzip"),
        ],
        bomb,
    )
    .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        RpcStatus::decode(&a.body[..])
            .unwrap()
            .message
            .contains("receivers.max_decompressed_bytes"),
        "{}",
        a.text()
    );
    assert_eq!(st.metrics.samples_enqueued.get(), 0);
}

#[tokio::test]
async fn replayed_sdk_requests_in_every_encoding_are_stored_with_deltas_accumulated() {
    let (st, writers, url) = pipewatch_tests::state(100_000).await;
    let app = server::app(st.clone(), std::env::temp_dir());
    // The delta pipeline as protobuf, in order: c1, c2, c3.
    for name in [
        "02-metrics-delta-c1",
        "04-metrics-delta-c2",
        "08-metrics-delta-c3",
    ] {
        let a = post(
            &app,
            "/v1/metrics",
            PB,
            fixture(&format!("http-protobuf/{name}.pb")),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{name}: {}", a.text());
        assert!(
            a.body.is_empty(),
            "{name}: empty ExportMetricsServiceResponse"
        );
    }
    // The cumulative c1 as JSON, gzip JSON, gzip and deflate protobuf; traces and logs.
    let a = post(
        &app,
        "/v1/metrics",
        JSON,
        fixture("http-json/01-metrics-cumulative-c1.json"),
    )
    .await;
    assert_eq!((a.status, a.text().as_str()), (StatusCode::OK, "{}"));
    for (path, headers, file) in [
        (
            "/v1/metrics",
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            "http-json-gzip/01-metrics-cumulative-c1.json.gz",
        ),
        (
            "/v1/metrics",
            &[
                ("content-type", "application/x-protobuf"),
                ("content-encoding", "gzip"),
            ],
            "http-protobuf-gzip/01-metrics-cumulative-c1.pb.gz",
        ),
        (
            "/v1/metrics",
            &[
                ("content-type", "application/x-protobuf"),
                ("content-encoding", "deflate"),
            ],
            "http-protobuf-deflate/01-metrics-cumulative-c1.pb.deflate",
        ),
        (
            "/v1/traces",
            &[
                ("content-type", "application/x-protobuf"),
                ("content-encoding", "identity"),
            ],
            "http-protobuf/05-traces.pb",
        ),
        (
            "/v1/logs",
            &[
                ("content-type", "application/json"),
                ("content-encoding", "identity"),
            ],
            "http-json/06-logs.json",
        ),
    ] {
        let a = post(&app, path, headers, fixture(file)).await;
        assert_eq!(a.status, StatusCode::OK, "{file}: {}", a.text());
    }
    // Replaying the delta c2 (a sender retrying after a lost answer) adds nothing and says so.
    let a = post(
        &app,
        "/v1/metrics",
        JSON,
        fixture("http-json/04-metrics-delta-c2.json"),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    // The JSON capture is another run (its own instance id): a new stream, accepted.
    assert_eq!(a.text(), "{}");
    let a = post(
        &app,
        "/v1/metrics",
        PB,
        fixture("http-protobuf/04-metrics-delta-c2.pb"),
    )
    .await;
    let v =
        opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse::decode(
            &a.body[..],
        )
        .unwrap();
    let p = v.partial_success.expect("partial success for the replay");
    assert_eq!(p.rejected_data_points, 4, "{}", p.error_message);
    assert!(
        p.error_message
            .contains("not newer than the last one added"),
        "{}",
        p.error_message
    );

    wait_until_drained(&st).await;
    assert_eq!(writers.shutdown(Duration::from_secs(10)).await, 0);
    let rows = latest(&url).await;
    // README "Delta pipeline": rejected schema 3+4 = 7, duplicate 1; files.seen 10+15+0 = 25.
    let delta = serde_json::from_slice::<Value>(&fixture(
        "http-protobuf/02-metrics-delta-c1.expected.json",
    ))
    .unwrap();
    let inst = delta["resources"][0]["attributes"]["service.instance.id"]
        .as_str()
        .unwrap()
        .to_string();
    let job = [
        ("job", "pipewatch-fixtures/orders-etl"),
        ("instance", inst.as_str()),
    ];
    let with = |extra: (&'static str, &'static str)| {
        let mut l = job.to_vec();
        l.push(extra);
        l
    };
    assert_eq!(
        value_of(
            &rows,
            "etl_rows_rejected_total",
            &with(("reason", "schema"))
        ),
        Some(7.0)
    );
    assert_eq!(
        value_of(
            &rows,
            "etl_rows_rejected_total",
            &with(("reason", "duplicate"))
        ),
        Some(1.0)
    );
    assert_eq!(
        value_of(&rows, "etl_files_seen_total", &with(("bucket", "landing"))),
        Some(25.0)
    );
    assert_eq!(
        value_of(
            &rows,
            "etl_io_wait_milliseconds_count",
            &with(("disk", "nvme0"))
        ),
        Some(4.0)
    );
    // Cumulative values from the JSON capture (README: c1).
    assert_eq!(
        value_of(
            &rows,
            "etl_rows_processed_total",
            &[("step", "extract"), ("retry", "false")]
        ),
        Some(350.0)
    );
    assert_eq!(
        value_of(&rows, "etl_batch_lag_seconds", &[("source", "kafka")]),
        Some(4.25)
    );
    assert!(value_of(&rows, "target_info", &[("service_version", "1.4.2")]).is_some());
}

#[tokio::test]
async fn otlp_returns_503_with_retry_after_over_http_and_unavailable_over_grpc_when_queue_full() {
    let (st, writers, url) = pipewatch_tests::state(20).await;
    let app = server::app(st.clone(), std::env::temp_dir());
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut lock = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE samples IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let body = fixture("http-protobuf/01-metrics-cumulative-c1.pb");
    // The first request fills the queue (the writer holds it while the table is locked).
    let first = post(&app, "/v1/metrics", PB, body.clone()).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    let a = post(
        &app,
        "/v1/metrics",
        PB,
        fixture("http-protobuf/03-metrics-cumulative-c2.pb"),
    )
    .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.text());
    assert_eq!(a.retry_after.as_deref(), Some("1"));
    let s = RpcStatus::decode(&a.body[..]).unwrap();
    assert_eq!(s.code, 14, "UNAVAILABLE");
    assert!(s.message.contains("ingest queue is full"), "{}", s.message);

    // The same over gRPC: UNAVAILABLE with a RetryInfo detail.
    let (addr, stop) = start_grpc(&st).await;
    let mut client = MetricsServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let req = ExportMetricsServiceRequest::decode(&fixture("grpc/03-metrics-cumulative-c2.pb")[..])
        .unwrap();
    let err = client.export(req.clone()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(
        err.message().contains("ingest queue is full"),
        "{}",
        err.message()
    );
    let details = RpcStatus::decode(err.details()).unwrap();
    assert_eq!(
        details.details[0].type_url,
        "type.googleapis.com/google.rpc.RetryInfo"
    );

    // The database comes back; the retried requests get in.
    lock.rollback().await.unwrap();
    wait_until_drained(&st).await;
    client.export(req).await.unwrap();
    wait_until_drained(&st).await;
    let _ = stop.send(());
    assert_eq!(writers.shutdown(Duration::from_secs(10)).await, 0);
    let rows = latest(&url).await;
    // c2 of the gRPC capture: etl.rows.processed extract = 400 (c1 over HTTP: 350).
    let extract: Vec<f64> = rows
        .iter()
        .filter(|((m, l), _)| m == "etl_rows_processed_total" && l["step"] == "extract")
        .map(|(_, v)| *v)
        .collect();
    assert!(
        extract.contains(&400.0) && extract.contains(&350.0),
        "{extract:?}"
    );
    pool.close().await;
}

#[tokio::test]
async fn grpc_answers_partial_success_for_points_it_cannot_store() {
    let (st, writers, url) = pipewatch_tests::state(10_000).await;
    let (addr, stop) = start_grpc(&st).await;
    let mut client = MetricsServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let point = |t: u64, v: f64| NumberDataPoint {
        time_unix_nano: t,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    };
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "probe.temp".into(),
                    unit: "Cel".into(),
                    data: Some(Data::Gauge(Gauge {
                        data_points: vec![point(1_790_000_000_000_000_000, 21.5), point(0, 99.0)],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let resp: ExportMetricsServiceResponse = client.export(req).await.unwrap().into_inner();
    let p = resp.partial_success.unwrap();
    assert_eq!(p.rejected_data_points, 1);
    assert!(
        p.error_message.contains("has no time_unix_nano"),
        "{}",
        p.error_message
    );
    wait_until_drained(&st).await;
    let _ = stop.send(());
    assert_eq!(writers.shutdown(Duration::from_secs(10)).await, 0);
    let rows = latest(&url).await;
    assert_eq!(value_of(&rows, "probe_temp_celsius", &[]), Some(21.5));
}

/// Serves OTLP/gRPC for `st` on a free loopback port.
async fn start_grpc(st: &AppState) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    start_grpc_with(server::receivers::ReceiverState::new(
        st.clone(),
        st.receivers.clone(),
    ))
    .await
}

/// Serves OTLP/gRPC over an existing receiver state (shared with an HTTP router).
async fn start_grpc_with(
    rs: server::receivers::ReceiverState,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server::receivers::otlp_grpc::serve(
        listener,
        rs,
        async move {
            let _ = rx.await;
        },
    ));
    (addr, tx)
}

/// The Prometheus name the OTel conventions give the script's metrics (units used there only).
fn prometheus_name(r: &Value) -> String {
    let mut name = r["name"].as_str().unwrap().replace('.', "_");
    match r["unit"].as_str().unwrap() {
        "ms" => name.push_str("_milliseconds"),
        "s" => name.push_str("_seconds"),
        _ => {}
    }
    if r["kind"] == "counter" {
        name.push_str("_total");
    }
    name
}

/// A series the script's values must produce: metric, extra labels, value.
type Expected = (String, Vec<(&'static str, String)>, f64);

/// Runs tests/python/otlp_send.py against `endpoint`, then waits until every value it
/// reports is stored, and checks each one.
async fn sdk_values_are_stored(exporter: &str, endpoint: String, url: &str, service: &str) {
    let out = tokio::process::Command::new(pipewatch_tests::python())
        .arg(pipewatch_tests::python_script("otlp_send.py"))
        .args([
            "--exporter",
            exporter,
            "--endpoint",
            &endpoint,
            "--service",
            service,
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "otlp_send.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent: Value = serde_json::from_slice(&out.stdout).unwrap();
    let recorded = sent["recorded"].as_array().unwrap();
    let job = [
        ("job", service),
        ("instance", &format!("{service}-1") as &str),
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = latest(url).await;
        let mut missing = Vec::new();
        for r in recorded {
            let name = prometheus_name(r);
            let mut labels: Vec<(&str, &str)> = job.to_vec();
            for (k, v) in r["attributes"].as_object().unwrap() {
                labels.push((k, v.as_str().unwrap()));
            }
            let mut expect: Vec<Expected> = Vec::new();
            if let Some(values) = r["values"].as_array() {
                let vals: Vec<f64> = values.iter().map(|v| v.as_f64().unwrap()).collect();
                expect.push((format!("{name}_count"), vec![], vals.len() as f64));
                expect.push((format!("{name}_sum"), vec![], vals.iter().sum()));
                for b in r["bounds"].as_array().unwrap() {
                    let b = b.as_f64().unwrap();
                    let n = vals.iter().filter(|v| **v <= b).count() as f64;
                    expect.push((format!("{name}_bucket"), vec![("le", format!("{b}"))], n));
                }
                expect.push((
                    format!("{name}_bucket"),
                    vec![("le", "+Inf".into())],
                    vals.len() as f64,
                ));
            } else {
                expect.push((name.clone(), vec![], r["value"].as_f64().unwrap()));
            }
            for (metric, extra, want) in expect {
                let mut l = labels.clone();
                l.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
                let got = value_of(&rows, &metric, &l);
                if got != Some(want) {
                    missing.push(format!("{metric}{l:?}: got {got:?}, want {want}"));
                }
            }
        }
        if value_of(&rows, "target_info", &[("job", service), ("team", "data")]).is_none() {
            missing.push("target_info{team=\"data\"}".into());
        }
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after 30 s, not stored as sent:\n{}",
            missing.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn python_sdk_metrics_over_http_protobuf_are_stored_as_sent() {
    let (st, writers, url) = pipewatch_tests::state(100_000).await;
    let addr = pipewatch_tests::serve(server::app(st.clone(), std::env::temp_dir())).await;
    sdk_values_are_stored("http", format!("http://{addr}"), &url, "live-http").await;
    assert_eq!(writers.shutdown(Duration::from_secs(10)).await, 0);
}

#[tokio::test]
async fn python_sdk_metrics_over_grpc_are_stored_as_sent() {
    let (st, writers, url) = pipewatch_tests::state(100_000).await;
    let (addr, stop) = start_grpc(&st).await;
    sdk_values_are_stored("grpc", addr.to_string(), &url, "live-grpc").await;
    let _ = stop.send(());
    assert_eq!(writers.shutdown(Duration::from_secs(10)).await, 0);
}

/// The captured traces and logs, over HTTP and then the traces again over gRPC: the span
/// series count both exports, the failed span and the WARN/ERROR records are kept as evidence
/// once (the same spans resent are not a second piece of evidence).
#[tokio::test]
async fn traces_and_logs_become_series_and_evidence_over_http_and_grpc() {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    let (st, _writers, url) = pipewatch_tests::state(100_000).await;
    // One receiver state for HTTP and gRPC, as `pipewatch serve` builds it: the span counts
    // of both add up.
    let rs = server::receivers::ReceiverState::new(st.clone(), st.receivers.clone());
    let app = server::app_with_receivers(st.clone(), rs.clone(), std::env::temp_dir());
    for (path, file) in [
        ("/v1/traces", "http-protobuf/05-traces.pb"),
        ("/v1/logs", "http-protobuf/06-logs.pb"),
    ] {
        let a = post(&app, path, PB, fixture(file)).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text());
    }
    let (addr, _stop) = start_grpc_with(rs).await;
    let mut client = TraceServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let req =
        ExportTraceServiceRequest::decode(&fixture("http-protobuf/05-traces.pb")[..]).unwrap();
    client.export(req).await.expect("gRPC traces export");
    wait_until_drained(&st).await;

    let rows = latest(&url).await;
    let job = ("job", "pipewatch-fixtures/orders-etl");
    let calls = |span: &str, status: &str| {
        value_of(
            &rows,
            "traces_span_metrics_calls_total",
            &[job, ("span_name", span), ("status_code", status)],
        )
    };
    // The gRPC export carries the same spans (same trace and span ids) as the HTTP one: a
    // re-send, counted once.
    assert_eq!(calls("load", "STATUS_CODE_ERROR"), Some(1.0));
    assert_eq!(calls("ingest-batch", "STATUS_CODE_UNSET"), Some(1.0));
    assert_eq!(calls("retry-load", "STATUS_CODE_OK"), Some(1.0));
    assert_eq!(
        value_of(
            &rows,
            "traces_span_metrics_duration_seconds_count",
            &[job, ("span_name", "extract")]
        ),
        Some(1.0)
    );
    for (severity, n) in [("DEBUG", 1.0), ("INFO", 1.0), ("WARN", 1.0), ("ERROR", 1.0)] {
        assert_eq!(
            value_of(
                &rows,
                "otel_log_records_total",
                &[job, ("severity", severity)]
            ),
            Some(n),
            "{severity}"
        );
    }

    let evidence = |path: &'static str| {
        let app = app.clone();
        async move {
            let resp = app
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            serde_json::from_slice::<Value>(&body).unwrap()
        }
    };
    let spans = evidence("/api/v1/evidence/spans").await;
    let failed: Vec<&Value> = spans["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["span_name"] == "load")
        .collect();
    assert_eq!(failed.len(), 1, "{spans}");
    assert_eq!(failed[0]["status_message"], "constraint violation");
    let logs = evidence("/api/v1/evidence/logs").await.to_string();
    assert!(
        logs.contains("pipewatch.schema.drift") || logs.contains("schema"),
        "{logs}"
    );
}

/// Every stored sample of `metric` as (labels, time in ms, value), oldest first.
async fn samples_of(url: &str, metric: &str) -> Vec<(BTreeMap<String, String>, i64, f64)> {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let rows: Vec<(String, i64, f64)> = sqlx::query_as(
        "SELECT s.labels::text, (extract(epoch FROM x.ts) * 1000)::bigint, x.value \
         FROM samples x JOIN series s ON s.id = x.series_id WHERE s.metric = $1 \
         ORDER BY x.ts, s.labels::text",
    )
    .bind(metric)
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows.into_iter()
        .map(|(l, ts, v)| (serde_json::from_str(&l).unwrap(), ts, v))
        .collect()
}

#[tokio::test]
async fn re_sent_trace_and_log_exports_count_once_at_the_time_of_the_data() {
    let (st, _writers, url) = pipewatch_tests::state(100_000).await;
    let app = server::app(st.clone(), std::env::temp_dir());
    // Each export three times, as an exporter retrying after lost answers would.
    for _ in 0..3 {
        for (path, file) in [
            ("/v1/traces", "http-protobuf/05-traces.pb"),
            ("/v1/logs", "http-protobuf/06-logs.pb"),
        ] {
            let a = post(&app, path, PB, fixture(file)).await;
            assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text());
            assert_eq!(a.text(), "", "{path}: nothing refused, no partial_success");
        }
    }
    wait_until_drained(&st).await;

    // One sample per series (the re-sends wrote none), value 1, at the span's end time.
    let expected: Value =
        serde_json::from_slice(&fixture("http-protobuf/05-traces.expected.json")).unwrap();
    let mut spans = Vec::new();
    for r in expected["resources"].as_array().unwrap() {
        for sc in r["scopes"].as_array().unwrap() {
            spans.extend(sc["spans"].as_array().unwrap().iter());
        }
    }
    let calls = samples_of(&url, "traces_span_metrics_calls_total").await;
    assert_eq!(calls.len(), spans.len(), "{calls:?}");
    for sp in spans {
        let name = sp["name"].as_str().unwrap();
        let end_ms = (sp["end_time_unix_nano"].as_u64().unwrap() / 1_000_000) as i64;
        let got: Vec<_> = calls
            .iter()
            .filter(|(l, _, _)| l.get("span_name").map(String::as_str) == Some(name))
            .map(|(_, ts, v)| (*ts, *v))
            .collect();
        assert_eq!(got, [(end_ms, 1.0)], "{name}");
    }

    let expected: Value =
        serde_json::from_slice(&fixture("http-protobuf/06-logs.expected.json")).unwrap();
    let mut records = Vec::new();
    for r in expected["resources"].as_array().unwrap() {
        for sc in r["scopes"].as_array().unwrap() {
            records.extend(sc["log_records"].as_array().unwrap().iter());
        }
    }
    let counts = samples_of(&url, "otel_log_records_total").await;
    assert_eq!(counts.len(), 4, "{counts:?}");
    for r in records {
        let severity = r["severity_text"].as_str().unwrap();
        let time = match r["time_unix_nano"].as_u64().unwrap() {
            0 => r["observed_time_unix_nano"].as_u64().unwrap(),
            t => t,
        };
        let got: Vec<_> = counts
            .iter()
            .filter(|(l, _, _)| l.get("severity").map(String::as_str) == Some(severity))
            .map(|(_, ts, v)| (*ts, *v))
            .collect();
        assert_eq!(got, [((time / 1_000_000) as i64, 1.0)], "{severity}");
    }
}

#[tokio::test]
async fn nul_bytes_are_refused_as_partial_success_and_the_rest_is_stored() {
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    let (st, _writers, url) = pipewatch_tests::state(100_000).await;
    let app = server::app(st.clone(), std::env::temp_dir());
    let point = |host: &str, v: f64| NumberDataPoint {
        attributes: vec![opentelemetry_proto::tonic::common::v1::KeyValue {
            key: "host".into(),
            value: Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                value: Some(
                    opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                        host.into(),
                    ),
                ),
            }),
            ..Default::default()
        }],
        time_unix_nano: 1_700_000_000_000_000_000,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    };
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "nul.probe".into(),
                    data: Some(Data::Gauge(Gauge {
                        data_points: vec![point("a\0b", 1.0), point("good", 2.0)],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let a = post(&app, "/v1/metrics", PB, req.encode_to_vec()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let resp = ExportMetricsServiceResponse::decode(&a.body[..]).unwrap();
    let p = resp.partial_success.expect("partial_success");
    assert_eq!(p.rejected_data_points, 1);
    assert!(
        p.error_message
            .contains("the value of label \"host\" holds a NUL byte"),
        "{}",
        p.error_message
    );

    let mut traces =
        ExportTraceServiceRequest::decode(&fixture("http-protobuf/05-traces.pb")[..]).unwrap();
    traces.resource_spans[0].scope_spans[0].spans[0]
        .name
        .push('\0');
    let a = post(&app, "/v1/traces", PB, traces.encode_to_vec()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let p = ExportTraceServiceResponse::decode(&a.body[..])
        .unwrap()
        .partial_success
        .expect("partial_success");
    assert_eq!(p.rejected_spans, 1, "{}", p.error_message);
    assert!(p.error_message.contains("NUL byte"), "{}", p.error_message);
    wait_until_drained(&st).await;

    let rows = latest(&url).await;
    assert_eq!(value_of(&rows, "nul_probe", &[("host", "good")]), Some(2.0));
    let calls = samples_of(&url, "traces_span_metrics_calls_total").await;
    assert_eq!(
        calls.len(),
        4,
        "the other four spans are counted: {calls:?}"
    );
    // Later data is still stored: the writer was not jammed.
    let a = post(&app, "/v1/logs", PB, fixture("http-protobuf/06-logs.pb")).await;
    assert_eq!(a.status, StatusCode::OK);
    wait_until_drained(&st).await;
    assert_eq!(samples_of(&url, "otel_log_records_total").await.len(), 4);
}
