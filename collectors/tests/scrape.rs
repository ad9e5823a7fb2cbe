//! The scraper against real HTTP servers on 127.0.0.1: captured exporter bodies served with
//! their original headers, gzip, OpenMetrics, garbage, 404, a slow handler and a closed port.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use collectors::scrape::{ScrapeOutcome, ScrapeTarget, Scraper, ACCEPT_HEADER};
use model::{Labels, MetricType};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NOW: i64 = 1_795_707_629_000;

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/prometheus")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The exporter's own response headers (Content-Type, Content-Encoding) from the capture.
fn captured_headers(name: &str) -> Vec<(String, String)> {
    String::from_utf8(fixture(&format!("{name}.headers.txt")))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(k, _)| matches!(*k, "Content-Type" | "Content-Encoding"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn replay(name: &str) -> Response {
    let mut resp = Response::new(Body::from(fixture(name)));
    for (k, v) in captured_headers(name) {
        resp.headers_mut().insert(
            header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            header::HeaderValue::from_str(&v).unwrap(),
        );
    }
    resp
}

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<HeaderMap>>>);

async fn serve() -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(seen): State<Seen>, headers: HeaderMap| async move {
                seen.0.lock().unwrap().push(headers);
                replay("node_exporter.txt")
            }),
        )
        .route("/gzip", get(|| async { replay("node_exporter.txt.gz") }))
        .route(
            "/openmetrics",
            get(|| async { replay("python_client.openmetrics.txt") }),
        )
        .route(
            "/garbage",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html")],
                    "<html><body>Welcome to nginx!</body></html>\n",
                )
            }),
        )
        .route(
            "/binary",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/plain")],
                    vec![b'a', b' ', 0xff, 0xfe],
                )
            }),
        )
        .route(
            "/truncated",
            get(|| async {
                let body = String::from_utf8(fixture("python_client.openmetrics.txt")).unwrap();
                let cut = body.strip_suffix("# EOF\n").unwrap().to_string();
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0",
                    )],
                    cut,
                )
            }),
        )
        .route(
            "/conflict",
            get(|| async {
                "# TYPE rows counter\nrows{job=\"batch\",instance=\"worker-1\",team=\"data\"} 7\n"
            }),
        )
        .route(
            "/missing",
            get(|| async { (StatusCode::NOT_FOUND, "404 page not found\n").into_response() }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                "late 1\n"
            }),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

fn target(url: String, timeout: Duration) -> ScrapeTarget {
    ScrapeTarget {
        job: "node".into(),
        url,
        labels: Labels::from_pairs([("env", "test")]),
        interval: Duration::from_secs(15),
        timeout,
    }
}

fn synthetic(o: &ScrapeOutcome, name: &str) -> f64 {
    let s = o
        .batch
        .series
        .iter()
        .find(|s| s.key.metric == name)
        .unwrap_or_else(|| panic!("no {name}"));
    assert_eq!(s.metric_type, MetricType::Gauge);
    assert_eq!(s.samples.len(), 1);
    assert_eq!(
        s.samples[0].ts, NOW,
        "{name} is stamped with the scrape start"
    );
    s.samples[0].value
}

fn assert_down_with_only_synthetic_series(o: &ScrapeOutcome) {
    assert!(!o.up);
    assert_eq!(o.samples_scraped, 0);
    let names: Vec<&str> = o
        .batch
        .series
        .iter()
        .map(|s| s.key.metric.as_str())
        .collect();
    assert_eq!(
        names,
        ["up", "scrape_duration_seconds", "scrape_samples_scraped"]
    );
    assert_eq!(synthetic(o, "up"), 0.0);
    assert_eq!(synthetic(o, "scrape_samples_scraped"), 0.0);
}

#[tokio::test]
async fn scrape_of_node_exporter_labels_every_series_and_adds_synthetic_ones() {
    let (base, _) = serve().await;
    let t = target(format!("{base}/metrics"), Duration::from_secs(2));
    let o = Scraper::new().scrape(&t, NOW).await;
    assert!(o.up, "{:?}", o.error);
    assert_eq!(o.error, None);
    assert_eq!(o.samples_scraped, 507);
    assert_eq!(o.batch.series.len(), 507 + 3);
    let instance = base.strip_prefix("http://").unwrap();
    for s in &o.batch.series {
        assert_eq!(s.key.labels.get("job"), Some("node"), "{}", s.key);
        assert_eq!(s.key.labels.get("instance"), Some(instance), "{}", s.key);
        assert_eq!(s.key.labels.get("env"), Some("test"), "{}", s.key);
        assert!(s.samples.iter().all(|x| x.ts == NOW));
    }
    assert_eq!(synthetic(&o, "up"), 1.0);
    assert_eq!(synthetic(&o, "scrape_samples_scraped"), 507.0);
    let d = synthetic(&o, "scrape_duration_seconds");
    assert!(
        d > 0.0 && d == o.duration.as_secs_f64(),
        "{d} vs {:?}",
        o.duration
    );
    let up = o
        .batch
        .series
        .iter()
        .find(|s| s.key.metric == "up")
        .unwrap();
    assert_eq!(
        up.key.labels.len(),
        3,
        "up has exactly job, instance and the target labels"
    );
    // Family metadata from the body survives, plus metadata for the synthetic series.
    assert_eq!(o.batch.metadata.len(), 283 + 3);
}

#[tokio::test]
async fn request_carries_the_headers_prometheus_sends() {
    let (base, seen) = serve().await;
    let t = target(format!("{base}/metrics"), Duration::from_secs(2));
    assert!(Scraper::new().scrape(&t, NOW).await.up);
    let headers = seen
        .0
        .lock()
        .unwrap()
        .pop()
        .expect("the server saw the request");
    // Compare with what a real Prometheus 2.42 sent, as captured in the fixture.
    let captured: serde_json::Value =
        serde_json::from_slice(&fixture("prometheus_scrape_request.headers.json")).unwrap();
    let prom = |name: &str| {
        captured["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0] == name)
            .unwrap_or_else(|| panic!("capture has no {name}"))[1]
            .as_str()
            .unwrap()
            .to_string()
    };
    let ours = |name: &str| {
        headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(ours("accept"), prom("Accept"));
    assert_eq!(ACCEPT_HEADER, prom("Accept"));
    assert_eq!(ours("accept-encoding"), prom("Accept-Encoding"));
    assert_eq!(
        ours("x-prometheus-scrape-timeout-seconds"),
        prom("X-Prometheus-Scrape-Timeout-Seconds")
    );
    assert_eq!(
        ours("user-agent"),
        format!("pipewatch/{}", env!("CARGO_PKG_VERSION"))
    );

    let t = target(format!("{base}/metrics"), Duration::from_millis(1500));
    assert!(Scraper::new().scrape(&t, NOW).await.up);
    let headers = seen.0.lock().unwrap().pop().unwrap();
    assert_eq!(headers["x-prometheus-scrape-timeout-seconds"], "1.5");
}

#[tokio::test]
async fn gzip_encoded_body_is_decoded() {
    use std::io::Read;
    let (base, _) = serve().await;
    let o = Scraper::new()
        .scrape(&target(format!("{base}/gzip"), Duration::from_secs(2)), NOW)
        .await;
    assert!(o.up, "{:?}", o.error);
    let mut text = String::new();
    flate2::read::GzDecoder::new(&fixture("node_exporter.txt.gz")[..])
        .read_to_string(&mut text)
        .unwrap();
    let sample_lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count();
    assert_eq!(o.samples_scraped, sample_lines);
    assert!(o
        .batch
        .series
        .iter()
        .any(|s| s.key.metric == "node_uname_info"));
}

#[tokio::test]
async fn openmetrics_content_type_selects_the_openmetrics_parser() {
    let (base, _) = serve().await;
    let o = Scraper::new()
        .scrape(
            &target(format!("{base}/openmetrics"), Duration::from_secs(2)),
            NOW,
        )
        .await;
    assert!(o.up, "{:?}", o.error);
    assert_eq!(o.samples_scraped, 22);
    let total = o
        .batch
        .series
        .iter()
        .find(|s| s.key.metric == "etl_rows_written_total")
        .unwrap();
    assert_eq!(total.metric_type, MetricType::Counter);
    assert!(o
        .batch
        .metadata
        .iter()
        .any(|m| m.family == "etl_freshness_lag_seconds" && m.unit == "seconds"));
}

#[tokio::test]
async fn scraped_labels_that_clash_with_target_labels_are_exported() {
    let (base, _) = serve().await;
    let mut t = target(format!("{base}/conflict"), Duration::from_secs(2));
    t.labels.insert("team", "platform");
    let o = Scraper::new().scrape(&t, NOW).await;
    assert!(o.up, "{:?}", o.error);
    let rows = o
        .batch
        .series
        .iter()
        .find(|s| s.key.metric == "rows")
        .unwrap();
    let instance = base.strip_prefix("http://").unwrap();
    assert_eq!(
        rows.key.labels,
        Labels::from_pairs([
            ("job", "node"),
            ("instance", instance),
            ("env", "test"),
            ("team", "platform"),
            ("exported_job", "batch"),
            ("exported_instance", "worker-1"),
            ("exported_team", "data"),
        ])
    );
}

#[tokio::test]
async fn not_found_makes_the_target_down() {
    let (base, _) = serve().await;
    let url = format!("{base}/missing");
    let o = Scraper::new()
        .scrape(&target(url.clone(), Duration::from_secs(2)), NOW)
        .await;
    assert_eq!(
        o.error.as_deref(),
        Some(format!("GET {url} returned 404 Not Found").as_str())
    );
    assert_down_with_only_synthetic_series(&o);
}

#[tokio::test]
async fn garbage_body_is_a_parse_error_naming_the_line() {
    let (base, _) = serve().await;
    let o = Scraper::new()
        .scrape(
            &target(format!("{base}/garbage"), Duration::from_secs(2)),
            NOW,
        )
        .await;
    let e = o.error.clone().unwrap();
    assert!(
        e.starts_with("parse error: line 1: expected a metric name"),
        "{e}"
    );
    assert_down_with_only_synthetic_series(&o);

    let o = Scraper::new()
        .scrape(
            &target(format!("{base}/binary"), Duration::from_secs(2)),
            NOW,
        )
        .await;
    let e = o.error.clone().unwrap();
    assert!(
        e.contains("is not UTF-8 text (invalid byte at offset 2)"),
        "{e}"
    );
    assert_down_with_only_synthetic_series(&o);

    let o = Scraper::new()
        .scrape(
            &target(format!("{base}/truncated"), Duration::from_secs(2)),
            NOW,
        )
        .await;
    let e = o.error.clone().unwrap();
    assert!(
        e.starts_with("parse error: line 38: missing \"# EOF\""),
        "{e}"
    );
    assert_down_with_only_synthetic_series(&o);
}

#[tokio::test]
async fn slow_target_times_out_without_waiting_for_the_handler() {
    let (base, _) = serve().await;
    let url = format!("{base}/slow");
    let o = Scraper::new()
        .scrape(&target(url.clone(), Duration::from_millis(300)), NOW)
        .await;
    assert_eq!(
        o.error.as_deref(),
        Some(format!("GET {url} timed out after 300ms").as_str())
    );
    assert!(
        o.duration >= Duration::from_millis(300) && o.duration < Duration::from_secs(5),
        "{:?}",
        o.duration
    );
    assert_down_with_only_synthetic_series(&o);
}

#[tokio::test]
async fn closed_port_is_a_connection_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    drop(listener);
    let o = Scraper::new()
        .scrape(&target(url.clone(), Duration::from_secs(2)), NOW)
        .await;
    let e = o.error.clone().unwrap();
    assert!(
        e.starts_with(&format!("GET {url} failed: could not connect")),
        "{e}"
    );
    assert!(e.to_lowercase().contains("connection refused"), "{e}");
    assert!(
        !e.contains("error sending request"),
        "reqwest's generic wrapper is left out: {e}"
    );
    assert_down_with_only_synthetic_series(&o);
}

/// A target that answers one request per connection with keep-alive, then closes the
/// connection when the next request arrives on it, without answering: what a server whose idle
/// timeout ends just as the scraper reuses the connection looks like.
#[tokio::test]
async fn a_kept_alive_connection_closed_by_the_target_is_retried_once_on_a_new_one() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let body = "# TYPE x gauge\nx 1\n";
                let mut buf = vec![0u8; 4096];
                // The first request on this connection is answered and kept alive...
                if sock.read(&mut buf).await.unwrap_or(0) == 0 {
                    return;
                }
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                sock.write_all(resp.as_bytes()).await.unwrap();
                // ...the next one is read and the connection closed with no answer.
                let _ = sock.read(&mut buf).await;
            });
        }
    });
    let scraper = Scraper::new();
    let t = target(format!("http://{addr}/metrics"), Duration::from_secs(5));
    for i in 0..3 {
        let o = scraper.scrape(&t, NOW).await;
        assert!(o.up, "scrape {i}: {:?}", o.error);
    }
    // Scrapes 2 and 3 each found the kept-alive connection closed and used a new one.
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 3);
}
