//! The receiver kernel over a real socket and a real PostgreSQL: a refused request leaves its
//! keep-alive connection usable for the next one, receivers require their protocol's
//! Content-Type and refuse cross-site browser requests, bodies that inflate past
//! `receivers.max_decompressed_bytes` are refused for every protocol, and OTLP/gRPC checks
//! the token before it decodes anything.

use axum::http::StatusCode;
use server::config::{LimitsConfig, ResolvedToken};
use server::guard::Guard;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const ALERT: &str = r#"[{"labels":{"alertname":"KeepAlive","job":"kernel"}}]"#;

/// One HTTP/1.1 response read off a raw connection.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Writes one request with a `Content-Length` body on `conn`.
async fn send(conn: &mut BufReader<TcpStream>, path: &str, headers: &[(&str, &str)], body: &[u8]) {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.get_mut().write_all(head.as_bytes()).await.unwrap();
    conn.get_mut().write_all(body).await.unwrap();
}

/// Reads one response (status line, headers, `Content-Length` body) within 10 s.
async fn read_answer(conn: &mut BufReader<TcpStream>) -> Answer {
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut line = String::new();
        let n = conn.read_line(&mut line).await.unwrap();
        assert!(
            n > 0,
            "the server closed the connection instead of answering"
        );
        let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            conn.read_line(&mut h).await.unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        conn.read_exact(&mut body).await.unwrap();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    })
    .await
    .expect("no answer within 10 s")
}

async fn serve(st: server::AppState) -> SocketAddr {
    pipewatch_tests::serve(server::app(st, std::env::temp_dir())).await
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A refusal before the body is read (415, 401, 403 cross-site), after it is read (404 for an
/// unknown DQ tool, 400), each followed by a good request on the same connection: every good
/// request is answered. The refused bodies are 256 KiB, more than the server reads in one go,
/// so an unread body would be left on the connection.
#[tokio::test]
async fn a_refused_request_leaves_the_keep_alive_connection_usable() {
    let (mut st, _writers, _url) = pipewatch_tests::state(10_000).await;
    st.guard = Arc::new(Guard::new(
        vec![ResolvedToken {
            name: "am".into(),
            secret: "am-token-0123456789abcdef".into(),
            receivers: vec!["alertmanager".into(), "dq".into()],
        }],
        LimitsConfig::default(),
    ));
    let addr = serve(st).await;
    let mut conn = BufReader::new(TcpStream::connect(addr).await.unwrap());
    let big = vec![b' '; 256 << 10];
    let token = ("Authorization", "Bearer am-token-0123456789abcdef");
    let json = ("Content-Type", "application/json");
    // (path, headers, expected status)
    type Refusal<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16);
    let refusals: Vec<Refusal> = vec![
        (
            "/api/v2/alerts",
            vec![token, ("Content-Type", "text/plain")],
            415,
        ),
        ("/api/v2/alerts", vec![json], 401),
        (
            "/api/v2/alerts",
            vec![token, json, ("Origin", "https://elsewhere.example")],
            403,
        ),
        ("/api/v1/dq/great", vec![token, json], 404),
        ("/api/v1/dq/gx", vec![token, json], 400),
    ];
    for (path, headers, status) in refusals {
        send(&mut conn, path, &headers, &big).await;
        let a = read_answer(&mut conn).await;
        assert_eq!(a.status, status, "{path} {headers:?}: {}", a.body);
        assert_ne!(a.header("connection"), Some("close"), "{path}: {a:?}");
        send(
            &mut conn,
            "/api/v2/alerts",
            &[token, json],
            ALERT.as_bytes(),
        )
        .await;
        let a = read_answer(&mut conn).await;
        assert_eq!(
            a.status, 200,
            "good request after {path} ({status}): {}",
            a.body
        );
    }
}

/// A body over `max_body_bytes` cannot be drained within the limit: the answer says the
/// connection closes, instead of leaving the sender to find out from a broken pipe.
#[tokio::test]
async fn a_body_over_the_limit_is_answered_with_connection_close() {
    let (mut st, _writers, _url) = pipewatch_tests::state(10_000).await;
    st.receivers.max_body_bytes = 4096;
    let addr = serve(st).await;
    let mut conn = BufReader::new(TcpStream::connect(addr).await.unwrap());
    send(
        &mut conn,
        "/api/v1/lineage",
        &[("Content-Type", "application/json")],
        &vec![b' '; 64 << 10],
    )
    .await;
    let a = read_answer(&mut conn).await;
    assert_eq!(a.status, 413, "{}", a.body);
    assert!(a.body.contains("receivers.max_body_bytes"), "{}", a.body);
    assert_eq!(a.header("connection"), Some("close"), "{a:?}");
}

/// A POST without the protocol's Content-Type (a browser form posts `text/plain`,
/// `application/x-www-form-urlencoded`, `multipart/form-data` or none) is refused by every
/// receiver, as is a browser request from another site.
#[tokio::test]
async fn receivers_refuse_form_content_types_and_cross_site_requests() {
    let (st, _writers, _url) = pipewatch_tests::state(10_000).await;
    let addr = serve(st.clone()).await;
    let client = reqwest::Client::new();
    let paths = [
        ("/api/v1/write", "application/x-protobuf"),
        ("/v1/metrics", "application/json"),
        ("/api/v1/dq/gx", "application/json"),
        ("/api/v1/lineage", "application/json"),
        ("/api/v2/alerts", "application/json"),
    ];
    for (path, good) in paths {
        for ct in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
        ] {
            let mut req = client.post(format!("http://{addr}{path}")).body("x=1");
            if let Some(ct) = ct {
                req = req.header("content-type", ct);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(
                resp.status(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{path} {ct:?}"
            );
            let text = resp.text().await.unwrap();
            assert!(text.contains(good), "{path} {ct:?}: {text}");
        }
        for (name, value) in [
            ("origin", "https://elsewhere.example"),
            ("sec-fetch-site", "cross-site"),
        ] {
            let resp = client
                .post(format!("http://{addr}{path}"))
                .header("content-type", good)
                .header(name, value)
                .body("{}")
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path} {name}");
            let text = resp.text().await.unwrap();
            assert!(
                text.contains("cross-site request refused"),
                "{path}: {text}"
            );
        }
    }
    // The same site's own page may post (same Origin as the Host it talks to).
    let resp = client
        .post(format!("http://{addr}/api/v2/alerts"))
        .header("content-type", "application/json")
        .header("origin", format!("http://{addr}"))
        .body(ALERT)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // Refusals are counted per receiver and code.
    let metrics = st.metrics.encode();
    for line in [
        r#"pipewatch_receiver_requests_total{receiver="remote_write",code="415"} 4"#,
        r#"pipewatch_receiver_requests_total{receiver="alertmanager",code="403"} 2"#,
        r#"pipewatch_receiver_requests_total{receiver="alertmanager",code="200"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
}

/// 32 KiB of gzip that inflates to 32 MiB, sent to every receiver that takes gzip: 413 naming
/// `receivers.max_decompressed_bytes` (8 MiB here); snappy the same for remote_write.
#[tokio::test]
async fn bodies_inflating_past_the_limit_are_refused_by_every_receiver() {
    let (mut st, _writers, _url) = pipewatch_tests::state(10_000).await;
    st.receivers.max_decompressed_bytes = 8 << 20;
    let addr = serve(st).await;
    let client = reqwest::Client::new();
    let bomb = gzip(&vec![b' '; 32 << 20]);
    assert!(bomb.len() < 64 << 10, "{}", bomb.len());
    for (path, ct) in [
        ("/v1/metrics", "application/x-protobuf"),
        ("/v1/traces", "application/json"),
        ("/api/v1/dq/soda", "application/json"),
        ("/api/v1/lineage", "application/json"),
        ("/api/v2/alerts", "application/json"),
    ] {
        let resp = client
            .post(format!("http://{addr}{path}"))
            .header("content-type", ct)
            .header("content-encoding", "gzip")
            .body(bomb.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        let body = resp.bytes().await.unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains("receivers.max_decompressed_bytes"),
            "{path}: {text}"
        );
    }
    let snappy = snap_compress(&vec![0u8; 32 << 20]);
    let resp = client
        .post(format!("http://{addr}/api/v1/write"))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .body(snappy)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

fn snap_compress(data: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(data).unwrap()
}

/// Without a token, an OTLP/gRPC request is refused UNAUTHENTICATED before its message is
/// decoded: a message over the decoding limit gets UNAUTHENTICATED, not the decoder's
/// size error (which is what a check after decoding would answer).
#[tokio::test]
async fn grpc_refuses_a_missing_token_before_decoding_the_message() {
    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics};

    let (mut st, _writers, _url) = pipewatch_tests::state(10_000).await;
    st.guard = Arc::new(Guard::new(
        vec![ResolvedToken {
            name: "otel".into(),
            secret: "otel-token-0123456789abcdef".into(),
            receivers: vec!["otlp".into()],
        }],
        LimitsConfig::default(),
    ));
    let mut cfg = st.receivers.clone();
    cfg.max_body_bytes = 4096;
    cfg.max_decompressed_bytes = 8192;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let rs = server::receivers::ReceiverState::new(st.clone(), cfg);
    tokio::spawn(server::receivers::otlp_grpc::serve(
        listener,
        rs,
        std::future::pending(),
    ));
    // 64 KiB of metric names: eight times the decoding limit.
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: (0..1024)
                    .map(|i| Metric {
                        name: format!("m{i:063}"),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let mut client = MetricsServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let e = client.export(request.clone()).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    // With the token the same message is read, and refused for its size, naming the key.
    let mut req = tonic::Request::new(request);
    req.metadata_mut().insert(
        "authorization",
        "Bearer otel-token-0123456789abcdef".parse().unwrap(),
    );
    let e = client.export(req).await.unwrap_err();
    assert_ne!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    assert!(
        e.message().contains("receivers.max_decompressed_bytes"),
        "{e:?}"
    );
    let metrics = st.metrics.encode();
    assert!(
        metrics.contains(
            r#"pipewatch_receiver_auth_failures_total{receiver="otlp",reason="missing_token"} 1"#
        ),
        "{metrics}"
    );
}

/// Pages and API answers carry the browser security headers, with a CSP that allows the
/// Leptos hydration script and wasm.
#[tokio::test]
async fn responses_carry_the_security_headers() {
    let (st, _writers, _url) = pipewatch_tests::state(10_000).await;
    let addr = serve(st).await;
    for path in ["/status", "/api/v1/status", "/healthz"] {
        let resp = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
        let h = resp.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("'wasm-unsafe-eval'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
    }
}
