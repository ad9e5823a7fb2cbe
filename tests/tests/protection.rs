//! Protection every push receiver shares, through the whole app against a real PostgreSQL:
//! bearer tokens (401 without or with an unknown token, 403 for a token not allowed on that
//! receiver) and the `[limits]` series limits (400 naming the limit, the rest of the request
//! stored, nothing stored twice), each with its self-metric.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use collectors::remote_write;
use http_body_util::BodyExt;
use model::{Batch, Labels, MetricType, Sample, SeriesKey, TimeSeries};
use server::config::{LimitsConfig, ResolvedToken};
use server::guard::Guard;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

fn series(metric: &str, labels: &[(&str, &str)], ts: i64) -> TimeSeries {
    TimeSeries {
        key: SeriesKey::new(metric, Labels::from_pairs(labels.iter().copied())),
        metric_type: MetricType::Gauge,
        samples: vec![Sample { ts, value: 1.5 }],
    }
}

fn write_request(batch: &Batch, authorization: Option<&str>) -> Request<Body> {
    let mut req = Request::post("/api/v1/write")
        .header("content-encoding", "snappy")
        .header("content-type", "application/x-protobuf");
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    req.body(Body::from(remote_write::encode(batch))).unwrap()
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, Option<String>, String) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let www = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, www, String::from_utf8_lossy(&body).into_owned())
}

async fn stored_metrics(url: &str) -> Vec<(String, i64)> {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT s.metric, count(*) FROM samples x JOIN series s ON s.id = x.series_id \
         GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows
}

async fn wait_for_samples(st: &server::AppState, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while st.metrics.samples_written_total() < n {
        assert!(Instant::now() < deadline, "{n} samples not written in 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn receivers_require_an_accepted_bearer_token_once_tokens_are_configured() {
    let (mut st, _writers, url) = pipewatch_tests::state(10_000).await;
    st.guard = Arc::new(Guard::new(
        vec![
            ResolvedToken {
                name: "otel-only".into(),
                secret: "otel-token-0123456789abcdef".into(),
                receivers: vec!["otlp".into()],
            },
            ResolvedToken {
                name: "prometheus".into(),
                secret: "prom-token-0123456789abcdef".into(),
                receivers: vec!["remote_write".into()],
            },
        ],
        LimitsConfig::default(),
    ));
    let app = server::app(st.clone(), std::env::temp_dir());
    let batch = Batch {
        series: vec![series(
            "auth_probe",
            &[("job", "t")],
            pipewatch_tests::now_ms(),
        )],
        metadata: vec![],
    };

    let (status, www, body) = send(&app, write_request(&batch, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(www.as_deref(), Some("Bearer realm=\"pipewatch\""));
    assert!(
        body.contains("missing bearer token") && body.contains("Authorization: Bearer"),
        "{body}"
    );

    let (status, _, body) = send(
        &app,
        write_request(&batch, Some("Bearer prom-token-0123456789abcdeX")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("not accepted"), "{body}");
    assert!(
        !body.contains("prom-token"),
        "a refusal must not echo tokens: {body}"
    );

    let (status, _, body) = send(
        &app,
        write_request(&batch, Some("Bearer otel-token-0123456789abcdef")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("may not write to remote_write"), "{body}");

    // Nothing refused was queued; the accepted request is stored once.
    assert_eq!(st.metrics.samples_enqueued.get(), 0);
    let (status, _, body) = send(
        &app,
        write_request(&batch, Some("Bearer prom-token-0123456789abcdef")),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    wait_for_samples(&st, 1).await;
    assert_eq!(stored_metrics(&url).await, [("auth_probe".to_string(), 1)]);

    // Unknown paths stay 404 rather than asking for a token; read APIs need none.
    let resp = app
        .clone()
        .oneshot(Request::get("/api/v1/labels").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let text = st.metrics.encode();
    for reason in ["missing_token", "invalid_token", "token_not_allowed"] {
        let line = format!(
            "pipewatch_receiver_auth_failures_total{{receiver=\"remote_write\",reason=\"{reason}\"}} 1"
        );
        assert!(text.contains(&line), "{line} not in\n{text}");
    }
}

#[tokio::test]
async fn series_over_a_limit_are_refused_by_name_and_the_rest_is_stored_once() {
    let (mut st, _writers, url) = pipewatch_tests::state(10_000).await;
    st.guard = Arc::new(Guard::new(
        vec![],
        LimitsConfig {
            max_labels_per_series: 3,
            max_label_name_length: 32,
            max_label_value_length: 16,
            max_new_series_per_metric_per_minute: 3,
            ..Default::default()
        },
    ));
    let app = server::app(st.clone(), std::env::temp_dir());
    let t = pipewatch_tests::now_ms();
    let long_value = "v".repeat(17);
    let batch = Batch {
        series: vec![
            series("kept", &[("job", "a")], t),
            series("wide", &[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")], t),
            series("long_value", &[("path", &long_value)], t),
        ],
        metadata: vec![],
    };
    let (status, _, body) = send(&app, write_request(&batch, None)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("2 series (2 samples) refused"), "{body}");
    assert!(body.contains("`limits.max_labels_per_series`"), "{body}");
    assert!(body.contains("`limits.max_label_value_length`"), "{body}");
    assert!(body.contains("the other 1 series were stored"), "{body}");

    // A cardinality explosion: 5 new series of one metric in a minute, the brake admits 3.
    let burst = Batch {
        series: (0..5)
            .map(|i| series("exploding", &[("user_id", &i.to_string())], t))
            .collect(),
        metadata: vec![],
    };
    let (status, _, body) = send(&app, write_request(&burst, None)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body.contains("`limits.max_new_series_per_metric_per_minute`")
            && body.contains("metric exploding already gained 3 new series this minute"),
        "{body}"
    );
    // Known series keep flowing through the brake.
    let again = Batch {
        series: (0..3)
            .map(|i| series("exploding", &[("user_id", &i.to_string())], t + 1000))
            .collect(),
        metadata: vec![],
    };
    let (status, _, body) = send(&app, write_request(&again, None)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    wait_for_samples(&st, 7).await;
    assert_eq!(
        stored_metrics(&url).await,
        [("exploding".to_string(), 6), ("kept".to_string(), 1)]
    );
    let text = st.metrics.encode();
    for (limit, n) in [
        ("limits.max_labels_per_series", 1),
        ("limits.max_label_value_length", 1),
        ("limits.max_new_series_per_metric_per_minute", 2),
    ] {
        let line = format!(
            "pipewatch_receiver_series_refused_total{{receiver=\"remote_write\",reason=\"{limit}\"}} {n}"
        );
        assert!(text.contains(&line), "{line} not in\n{text}");
    }
}

/// The same tokens guard OTLP over gRPC (UNAUTHENTICATED / PERMISSION_DENIED in the metadata
/// check) and HTTP; the series limits answer OTLP with `partial_success` naming the limit, and
/// the rest of the request is stored.
#[tokio::test]
async fn otlp_over_grpc_and_http_is_guarded_by_the_same_tokens_and_limits() {
    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::metrics::v1::{
        metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    };

    let (mut st, _writers, url) = pipewatch_tests::state(10_000).await;
    st.guard = Arc::new(Guard::new(
        vec![ResolvedToken {
            name: "otel".into(),
            secret: "otel-token-0123456789abcdef".into(),
            receivers: vec!["otlp".into()],
        }],
        LimitsConfig {
            max_labels_per_series: 3,
            ..Default::default()
        },
    ));
    let now_ns = pipewatch_tests::now_ms() as u64 * 1_000_000;
    let gauge = |name: &str, attrs: usize| Metric {
        name: name.into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                attributes: (0..attrs)
                    .map(|i| KeyValue {
                        key: format!("a{i}"),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::StringValue("v".into())),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                time_unix_nano: now_ns,
                value: Some(number_data_point::Value::AsDouble(2.5)),
                ..Default::default()
            }],
        })),
        ..Default::default()
    };
    // No resource: the series carry only their own attributes (plus no job/instance).
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![gauge("narrow_gauge", 1), gauge("wide_gauge", 6)],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let rs = server::receivers::ReceiverState::new(st.clone(), st.receivers.clone());
    tokio::spawn(server::receivers::otlp_grpc::serve(
        listener,
        rs,
        std::future::pending(),
    ));
    let mut client = MetricsServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let e = client.export(request.clone()).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    assert!(
        e.message().contains("missing bearer token"),
        "{}",
        e.message()
    );

    let mut req = tonic::Request::new(request.clone());
    req.metadata_mut().insert(
        "authorization",
        "Bearer otel-token-0123456789abcdef".parse().unwrap(),
    );
    let answer = client.export(req).await.expect("accepted with the token");
    let partial = answer
        .into_inner()
        .partial_success
        .expect("the wide series is refused as a partial success");
    assert_eq!(partial.rejected_data_points, 1, "its one point");
    assert!(
        partial
            .error_message
            .contains("`limits.max_labels_per_series`"),
        "{}",
        partial.error_message
    );

    // pipewatch API tokens work over gRPC as over HTTP: ingest (or admin) scope sends,
    // read scope is refused naming the scope, an unknown one is not accepted.
    let ingest = st
        .store
        .create_api_token("collector", model::auth::TokenScope::Ingest, "test")
        .await
        .unwrap();
    let read = st
        .store
        .create_api_token("dashboard", model::auth::TokenScope::Read, "test")
        .await
        .unwrap();
    let with = |secret: &str| {
        let mut req = tonic::Request::new(ExportMetricsServiceRequest {
            resource_metrics: request.resource_metrics.clone(),
        });
        req.metadata_mut()
            .insert("authorization", format!("Bearer {secret}").parse().unwrap());
        req
    };
    client
        .export(with(&ingest.secret))
        .await
        .expect("an ingest API token is accepted over gRPC");
    let e = client.export(with(&read.secret)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("read scope"), "{}", e.message());
    let e = client
        .export(with("pwt_nosuchselector_0123456789"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");

    // HTTP: the token is required there too.
    let app = server::app(st.clone(), std::env::temp_dir());
    let resp = app
        .clone()
        .oneshot(
            Request::post("/v1/metrics")
                .header("content-type", "application/x-protobuf")
                .body(Body::from(prost::Message::encode_to_vec(&request)))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // The static token's request and the ingest API token's (a re-send of the same point: a
    // second row until compaction merges them).
    wait_for_samples(&st, 2).await;
    assert_eq!(
        stored_metrics(&url).await,
        [("narrow_gauge".to_string(), 2)]
    );
}
