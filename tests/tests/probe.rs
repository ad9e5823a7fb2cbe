//! The hardening probe (issue 9): the real `pipewatch` binary on loopback, and for each
//! finding of the issue the hostile or careless input, the answer it must get, and then the
//! same three checks every time: later good data is still stored, `/readyz` answers within
//! 1 s, and the server's resident memory (VmRSS and its peak VmHWM, read from
//! `/proc/<pid>/status`) stays under [`RSS_BOUND_MB`].
//!
//! A finding whose fix belongs to another change is a case marked expected-to-fail with its
//! reason: it runs, its failure is printed as XFAIL, and if it starts passing the suite fails
//! asking for the mark to be removed, so nothing passes silently.
//!
//! Bounded: every request has a timeout, every wait a deadline; the whole suite takes well
//! under two minutes on the 2-core development machine. Run it alone with
//! `cargo build -p pipewatch --bin pipewatch && cargo nextest run -p pipewatch-tests --test probe`.

use flate2::write::GzEncoder;
use model::{Batch, Labels, MetricType, Sample, SeriesKey, TimeSeries};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use pipewatch_tests::Pipewatch;
use prost::Message;
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// What the server may hold resident at any point of the probe (debug build, the workload of
/// this suite). Measured peaks on the development machine: 202 to 239 MiB (the suite prints
/// its peak); the bound leaves room for allocator slack, not for any of the amplifications of
/// issue 9 (each was 1.6 GB or more; with the message budget off, case 3 alone reached 1.7 GB).
const RSS_BOUND_MB: u64 = 400;

const TOKEN: &str = "probe-token-0123456789abcdef";

struct Probe {
    base: String,
    grpc: String,
    pid: u32,
    http: reqwest::Client,
    password: String,
    /// The database URL, for seeding what the HTTP path would refuse or take long to admit.
    db: String,
    peak_mb: u64,
}

type CaseResult = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err(format!($($arg)*));
        }
    };
}

impl Probe {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<(u16, String), String> {
        let resp = req
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(|e| format!("body: {e}"))?;
        Ok((status, body))
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(self.url(path)).bearer_auth(TOKEN)
    }

    async fn get(&self, path: &str) -> Result<(u16, String), String> {
        self.send(self.http.get(self.url(path))).await
    }

    async fn remote_write(&self, batch: &Batch) -> Result<(u16, String), String> {
        self.send(
            self.post("/api/v1/write")
                .header("content-type", "application/x-protobuf")
                .header("content-encoding", "snappy")
                .body(collectors::remote_write::encode(batch)),
        )
        .await
    }

    /// Writes `probe_good_<case>{case}` and waits until the API lists it: the ingest path and
    /// the writers still work after the case. (A metric per case: the new-series brake is
    /// per metric.)
    async fn good_data_is_stored(&self, case: &str) -> CaseResult {
        let metric = format!("probe_good_{}", case.replace('-', "_"));
        let batch = Batch {
            series: vec![TimeSeries {
                key: SeriesKey::new(metric.clone(), Labels::from_pairs([("case", case)])),
                metric_type: MetricType::Gauge,
                samples: vec![Sample {
                    ts: model::clock::now_ms(),
                    value: 1.0,
                }],
            }],
            metadata: vec![],
        };
        let (status, body) = self.remote_write(&batch).await?;
        ensure!(status == 204, "good remote_write got {status}: {body}");
        let q = format!(
            "/api/v1/query?query={}",
            urlencode(&format!("{metric}{{case=\"{case}\"}}"))
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, body) = self.get(&q).await?;
            if status == 200 && body.contains(&format!("\"case\":\"{case}\"")) {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "good sample of case {case} not readable within 10 s: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn ready_within_a_second(&self) -> CaseResult {
        let started = Instant::now();
        let resp = self
            .http
            .get(self.url("/readyz"))
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .map_err(|e| format!("/readyz did not answer within 1 s: {e}"))?;
        ensure!(
            resp.status() == 200,
            "/readyz answered {} after {:?}",
            resp.status(),
            started.elapsed()
        );
        Ok(())
    }

    /// VmRSS and VmHWM in MiB.
    fn rss_mb(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .expect("server process status");
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                / 1024
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    async fn after_case(&mut self, case: &str) -> CaseResult {
        self.good_data_is_stored(case).await?;
        self.ready_within_a_second().await?;
        let (rss, hwm) = self.rss_mb();
        self.peak_mb = self.peak_mb.max(hwm);
        ensure!(
            hwm <= RSS_BOUND_MB,
            "server memory over the bound after {case}: VmRSS {rss} MiB, VmHWM {hwm} MiB (bound {RSS_BOUND_MB} MiB)"
        );
        println!("  {case}: VmRSS {rss} MiB, VmHWM {hwm} MiB");
        Ok(())
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn gauge_request(name: &str, attributes: Vec<KeyValue>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "probe")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: name.into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint {
                            attributes,
                            time_unix_nano: model::clock::now_ms() as u64 * 1_000_000,
                            value: Some(number_data_point::Value::AsDouble(1.0)),
                            ..Default::default()
                        }],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

// ---- one case per finding of issue 9 -------------------------------------------------------

/// 1. A NUL byte in a label is refused at decode (remote_write 400, OTLP partial success),
///    never handed to the writers.
async fn nul_bytes(p: &Probe) -> CaseResult {
    let batch = Batch {
        series: vec![TimeSeries {
            key: SeriesKey::new("probe_nul", Labels::from_pairs([("job", "a\0b")])),
            metric_type: MetricType::Gauge,
            samples: vec![Sample {
                ts: model::clock::now_ms(),
                value: 1.0,
            }],
        }],
        metadata: vec![],
    };
    for _ in 0..2 {
        let (status, body) = p.remote_write(&batch).await?;
        ensure!(status == 400, "remote_write with NUL got {status}: {body}");
        ensure!(body.contains("NUL byte"), "no NUL in the message: {body}");
    }
    let req = gauge_request("probe_nul_otlp", vec![kv("probe_attr", "a\0b")]);
    let resp = p
        .post("/v1/metrics")
        .header("content-type", "application/x-protobuf")
        .body(req.encode_to_vec())
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    let answer = ExportMetricsServiceResponse::decode(&body[..]).unwrap_or_default();
    ensure!(
        status == 200
            && answer
                .partial_success
                .as_ref()
                .is_some_and(|p| p.rejected_data_points == 1),
        "OTLP with NUL got {status}: {answer:?}"
    );
    Ok(())
}

/// 2. Regex matchers compile within 1 MiB and are counted: 400 naming the matcher.
async fn regex_matchers(p: &Probe) -> CaseResult {
    let big = r#"probe_x{a=~".{9999}"}"#;
    let (status, body) = p
        .get(&format!(
            "/api/v1/query_range?query={}&start=0&end=60&step=15",
            urlencode(big)
        ))
        .await?;
    ensure!(
        status == 400 && body.contains(r#"a=~\".{9999}\""#) && body.contains("KiB"),
        "big regex in query_range got {status}: {body}"
    );
    let (status, body) = p
        .get(&format!("/api/v1/series?match[]={}", urlencode(big)))
        .await?;
    ensure!(
        status == 400 && body.contains("compiles to more than"),
        "big regex in series got {status}: {body}"
    );
    // ~1,500 matchers fit a 64 KB URL: refused by count before any is compiled.
    let many: Vec<String> = (0..1500).map(|i| format!("a{i}=~\".{{99}}\"")).collect();
    let q = format!("probe_x{{{}}}", many.join(","));
    let (status, body) = p
        .get(&format!("/api/v1/query?query={}&time=60", urlencode(&q)))
        .await?;
    ensure!(
        status == 400 && body.contains("label matchers in one selector"),
        "1,500 matchers got {status}: {body}"
    );
    Ok(())
}

/// 3. Protobuf amplification: repeated empty messages are counted before decoding (413).
async fn protobuf_amplification(p: &Probe) -> CaseResult {
    // 8 M empty ResourceMetrics (16 MiB, ~16 KB gzipped): decoded they were 2.3 GB.
    let empties = [0x0a, 0x00].repeat(8 << 20);
    let (status, body) = p
        .send(
            p.post("/v1/metrics")
                .header("content-type", "application/x-protobuf")
                .header("content-encoding", "gzip")
                .body(gzip(&empties)),
        )
        .await?;
    ensure!(
        status == 413 && body.contains("receivers.max_decoded_messages"),
        "gzip of empty messages at /v1/metrics got {status}: {body}"
    );
    let snappy = snap::raw::Encoder::new().compress_vec(&empties).unwrap();
    let (status, body) = p
        .send(
            p.post("/api/v1/write")
                .header("content-type", "application/x-protobuf")
                .header("content-encoding", "snappy")
                .body(snappy),
        )
        .await?;
    ensure!(
        status == 413 && body.contains("receivers.max_decoded_messages"),
        "snappy of empty messages at /api/v1/write got {status}: {body}"
    );
    Ok(())
}

/// 3b. The same amplification over OTLP/gRPC: the messages of a gRPC request are counted before
///     tonic decodes it, plain and gzip-compressed (INVALID_ARGUMENT naming the limit).
async fn grpc_protobuf_amplification(p: &Probe) -> CaseResult {
    // 8 M empty ResourceMetrics: the same 16 MiB body as case 3, sent as raw bytes because a
    // typed client would have to build the 8 M structs itself.
    let empties = [0x0a, 0x00].repeat(8 << 20);
    for gzip in [false, true] {
        let channel = tonic::transport::Endpoint::from_shared(p.grpc.clone())
            .map_err(|e| format!("gRPC endpoint: {e}"))?
            .connect()
            .await
            .map_err(|e| format!("gRPC connect: {e}"))?;
        let mut grpc = tonic::client::Grpc::new(channel);
        if gzip {
            grpc = grpc.send_compressed(tonic::codec::CompressionEncoding::Gzip);
        }
        grpc.ready().await.map_err(|e| format!("gRPC ready: {e}"))?;
        let mut req = tonic::Request::new(empties.clone());
        req.metadata_mut()
            .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(
            "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        );
        let err =
            grpc.unary(req, path, RawCodec).await.err().ok_or_else(|| {
                format!("8 M empty messages over gRPC (gzip {gzip}) were accepted")
            })?;
        ensure!(
            err.code() == tonic::Code::InvalidArgument
                && err.message().contains("receivers.max_decoded_messages"),
            "8 M empty messages over gRPC (gzip {gzip}): {err}"
        );
    }
    Ok(())
}

/// Sends a `Vec<u8>` as the message bytes and reads the answer's bytes back.
#[derive(Clone, Copy)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        let n = bytes::Buf::remaining(src);
        Ok(Some(bytes::Buf::copy_to_bytes(src, n).to_vec()))
    }
}

/// 4. gRPC checks the token before decoding: a large message without a token is
///    UNAUTHENTICATED, and one with the token is taken.
async fn grpc_token_first(p: &Probe) -> CaseResult {
    let mut client = MetricsServiceClient::connect(p.grpc.clone())
        .await
        .map_err(|e| format!("gRPC connect: {e}"))?
        .max_decoding_message_size(64 << 20);
    let big = gauge_request(
        "probe_grpc",
        (0..100_000).map(|i| kv(&format!("k{i}"), "v")).collect(),
    );
    let err = client
        .export(big)
        .await
        .err()
        .ok_or("export without a token was accepted")?;
    ensure!(
        err.code() == tonic::Code::Unauthenticated,
        "export without a token: {err}"
    );
    let mut ok = tonic::Request::new(gauge_request("probe_grpc_ok", vec![]));
    ok.metadata_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let resp: ExportMetricsServiceResponse = client
        .export(ok)
        .await
        .map_err(|e| format!("export with the token: {e}"))?
        .into_inner();
    ensure!(
        resp.partial_success
            .is_none_or(|p| p.rejected_data_points == 0),
        "good gRPC export partly refused"
    );
    Ok(())
}

/// 5. Evidence and alerts are cut at intake and marked; reading them back stays small.
async fn unbounded_evidence_and_alerts(p: &Probe) -> CaseResult {
    let now = model::clock::now_ms() as u64 * 1_000_000;
    let span = Span {
        trace_id: vec![7; 16],
        span_id: vec![9; 8],
        name: "probe-failed".into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: now,
        end_time_unix_nano: now + 1_000_000,
        attributes: (0..200_000)
            .map(|i| kv(&format!("attr.{i:06}"), "some value"))
            .collect(),
        status: Some(Status {
            code: status::StatusCode::Error as i32,
            message: "x".repeat(1 << 20),
        }),
        ..Default::default()
    };
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "probe-evidence")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![span],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let (status, body) = p
        .send(
            p.post("/v1/traces")
                .header("content-type", "application/x-protobuf")
                .body(req.encode_to_vec()),
        )
        .await?;
    ensure!(
        status == 200,
        "span with 200k attributes got {status}: {body}"
    );
    let (status, body) = p
        .get("/api/v1/evidence/spans?service=probe-evidence")
        .await?;
    ensure!(status == 200, "evidence read got {status}: {body}");
    ensure!(
        body.len() < 512 << 10,
        "evidence of one span is {} bytes",
        body.len()
    );
    ensure!(
        body.contains("pipewatch.truncated") && body.contains("(1048576 bytes)"),
        "the cut is not marked: {}",
        &body[..body.len().min(2000)]
    );

    let labels: serde_json::Map<String, serde_json::Value> = (0..300_000)
        .map(|i| (format!("l{i}"), serde_json::Value::from("v")))
        .chain([("alertname".to_string(), "ProbeHuge".into())])
        .collect();
    let (status, body) = p
        .send(
            p.post("/api/v2/alerts")
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&serde_json::json!([{ "labels": labels }])).unwrap()),
        )
        .await?;
    ensure!(
        status == 400 && body.contains("limits.max_alert_labels") && body.len() < 2000,
        "alert with 300k labels got {status}: {}",
        &body[..body.len().min(500)]
    );
    let alert = serde_json::json!([{
        "labels": {"alertname": "ProbeAnnotated"},
        "annotations": {"description": "d".repeat(1 << 20)},
    }]);
    let (status, body) = p
        .send(
            p.post("/api/v2/alerts")
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&alert).unwrap()),
        )
        .await?;
    ensure!(
        status == 200,
        "alert with a 1 MB annotation got {status}: {body}"
    );
    let (status, body) = p.get("/api/v1/alerts").await?;
    ensure!(
        status == 200 && body.contains("ProbeAnnotated") && body.contains("(1048576 bytes)"),
        "alert annotation not cut and marked: {status} {}",
        &body[..body.len().min(500)]
    );
    ensure!(
        body.len() < 64 << 10,
        "alerts answer is {} bytes",
        body.len()
    );
    Ok(())
}

/// 6. A password given as `?password=` is shown nowhere.
async fn secrets(p: &Probe) -> CaseResult {
    for path in ["/api/v1/status", "/status"] {
        let (status, body) = p.get(path).await?;
        ensure!(status == 200, "{path} got {status}");
        ensure!(
            !body.contains(&p.password),
            "{path} shows the database password"
        );
    }
    Ok(())
}

/// 7. The embedded PostgreSQL (the cluster the test databases live in is started by the same
///    code) refuses a connection without the password.
async fn embedded_database_needs_a_password(p: &Probe, url: &url::Url) -> CaseResult {
    let mut no_password = url.clone();
    no_password.set_password(None).unwrap();
    no_password.set_query(None);
    let attempt = sqlx::PgPool::connect(no_password.as_str()).await;
    ensure!(
        attempt.is_err(),
        "connecting without a password succeeded: the cluster trusts local users"
    );
    let _ = p;
    Ok(())
}

/// 8. Idle connections do not starve new ones: 300 sockets held open, `/readyz` still answers.
async fn idle_connections(p: &Probe) -> CaseResult {
    let addr = p.base.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    for _ in 0..300 {
        held.push(
            tokio::net::TcpStream::connect(&addr)
                .await
                .map_err(|e| format!("connect: {e}"))?,
        );
    }
    p.ready_within_a_second().await?;
    drop(held);
    Ok(())
}

/// Series seeded for case 9, more than `query.max_series` (10,000 by default).
const WIDE_SERIES: usize = 20_000;

/// How long a refused expensive read may take (debug build on the shared 2-core machine;
/// measured: see the suite's output). Before the limit the same request took 34 s (release).
const EXPENSIVE_READ_BOUND: Duration = Duration::from_secs(5);

/// 9. Expensive reads: 20,000 series selected twice (`match[]` repeated, and a PromQL query
///    reading the same selector in two places) are refused quickly with 422 `execution`
///    naming `query.max_series`, while `/readyz` keeps answering; a narrow selector repeated
///    and overlapping still answers each series once.
async fn expensive_reads(p: &Probe) -> CaseResult {
    // Written straight into the database: the server's new-series brake (set low for case
    // 12d) would otherwise take minutes to admit 20,000 series.
    let store = store::Store::connect(&p.db, store::StoreConfig::default())
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let now = model::clock::now_ms();
    let batch = Batch {
        series: (0..WIDE_SERIES)
            .map(|i| TimeSeries {
                key: SeriesKey::new(
                    "probe_wide",
                    Labels::from_pairs([("i", format!("{i:05}")), ("pod", format!("p{}", i % 7))]),
                ),
                metric_type: MetricType::Gauge,
                samples: vec![Sample {
                    ts: now,
                    value: 1.0,
                }],
            })
            .collect(),
        metadata: vec![],
    };
    store
        .write(&[batch])
        .await
        .map_err(|e| format!("seeding: {e}"))?;

    let every = urlencode(r#"{__name__=~".+"}"#);
    let wide = urlencode("probe_wide");
    let requests = [
        format!("/api/v1/series?match[]={every}&match[]={every}"),
        format!("/api/v1/series?match[]={wide}&match[]={every}"),
        format!("/api/v1/labels?match[]={wide}&match[]={wide}"),
        format!(
            "/api/v1/query?query={}",
            urlencode("count(probe_wide) + count(probe_wide offset 1m)")
        ),
        format!(
            "/api/v1/query_range?query={}&start={}&end={}&step=15",
            urlencode("sum(probe_wide)"),
            now / 1000 - 600,
            // Past the seeded samples' time (the range must contain them).
            now / 1000 + 60
        ),
    ];
    for path in &requests {
        let started = Instant::now();
        // /readyz is asked while the expensive read runs, not only after it.
        let (answer, ready) = tokio::join!(p.get(path), async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            p.ready_within_a_second().await
        });
        let (status, body) = answer?;
        let took = started.elapsed();
        ready.map_err(|e| format!("during {path}: {e}"))?;
        println!("  9: {path} answered {status} in {took:?}");
        ensure!(
            status == 422
                && body.contains(r#""errorType":"execution""#)
                && body.contains("query.max_series")
                && body.contains("10000"),
            "{path} over {WIDE_SERIES} series was answered {status} (the series limit per query would refuse it with 422 naming query.max_series): {}",
            &body[..body.len().min(300)]
        );
        ensure!(
            took < EXPENSIVE_READ_BOUND,
            "{path} took {took:?} to be refused (bound {EXPENSIVE_READ_BOUND:?})"
        );
    }

    // Repeated and overlapping selectors under the limit: each series once.
    let one = urlencode(r#"probe_wide{i="00007"}"#);
    let two = urlencode(r#"{__name__="probe_wide",i=~"0000[78]"}"#);
    let (status, body) = p
        .get(&format!(
            "/api/v1/series?match[]={one}&match[]={one}&match[]={two}"
        ))
        .await?;
    ensure!(status == 200, "narrow match[] got {status}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    let names: Vec<&str> = v["data"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["i"].as_str()).collect())
        .unwrap_or_default();
    ensure!(
        names == ["00007", "00008"],
        "repeated/overlapping match[] should list 00007 and 00008 once each: {body}"
    );
    let (status, body) = p
        .get(&format!(
            "/api/v1/query?query={}",
            urlencode(
                r#"count(probe_wide{i="00007"}) + count({__name__="probe_wide",i=~"0000[78]"})"#
            )
        ))
        .await?;
    ensure!(
        status == 200 && body.contains(r#""3""#),
        "overlapping selectors in one query: 1 + 2 series expected: {status} {body}"
    );
    Ok(())
}

/// 10. Cross-site writes are refused.
async fn cross_site(p: &Probe) -> CaseResult {
    for path in ["/api/v2/alerts", "/api/v1/lineage", "/api/v1/write"] {
        let (status, body) = p
            .send(
                p.post(path)
                    .header("origin", "http://evil.example")
                    .header("sec-fetch-site", "cross-site")
                    .body("[]"),
            )
            .await?;
        ensure!(
            status == 403 || status == 415,
            "cross-site POST {path} got {status}: {body}"
        );
    }
    let resp = p
        .http
        .get(p.url("/"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        resp.headers().contains_key("content-security-policy")
            && resp.headers().contains_key("x-content-type-options"),
        "pages lack security headers: {:?}",
        resp.headers()
    );
    Ok(())
}

/// 11. Bad query input is a 400, never a 503 from the database.
async fn bad_input_is_400(p: &Probe) -> CaseResult {
    for path in [
        "/api/v1/query_range?query=up&start=-9.2e15&end=0&step=1e300".to_string(),
        "/api/v1/query_range?query=up&start=0&end=9.2e15&step=1".to_string(),
        format!("/api/v1/series?match[]={}", urlencode("up{a=\"\0\"}")),
        format!("/api/v1/query?query={}", urlencode("up{a=\"\0\"}")),
    ] {
        let (status, body) = p.get(&path).await?;
        ensure!(
            status == 200 || status == 400 || status == 422,
            "{path} got {status}: {body}"
        );
    }
    Ok(())
}

/// 12a. A refused series with 300k labels gets a short answer (and log line).
async fn huge_refused_series(p: &Probe) -> CaseResult {
    let labels = Labels::from_pairs((0..300_000).map(|i| (format!("l{i:06}"), "v".to_string())));
    let batch = Batch {
        series: vec![TimeSeries {
            key: SeriesKey::new("probe_huge", labels),
            metric_type: MetricType::Gauge,
            samples: vec![Sample {
                ts: model::clock::now_ms(),
                value: 1.0,
            }],
        }],
        metadata: vec![],
    };
    let (status, body) = p.remote_write(&batch).await?;
    ensure!(
        status == 400 && body.contains("limits.max_labels_per_series"),
        "300k labels got {status}: {}",
        &body[..body.len().min(300)]
    );
    ensure!(body.len() < 2000, "error body is {} bytes", body.len());
    Ok(())
}

/// 12b. OTLP/JSON that is not an export request is refused like protobuf junk.
async fn otlp_json_junk(p: &Probe) -> CaseResult {
    let (status, body) = p
        .send(
            p.post("/v1/metrics")
                .header("content-type", "application/json")
                .body(r#"{"foo":1}"#),
        )
        .await?;
    ensure!(status == 400, "{{\"foo\":1}} got {status}: {body}");
    Ok(())
}

/// 12c. OTLP partial_success counts the points `[limits]` refused (storage engineer's
///      change in receivers/otlp.rs).
async fn otlp_partial_success_counts_limits(p: &Probe) -> CaseResult {
    let req = gauge_request(
        "probe_many_labels",
        (0..100).map(|i| kv(&format!("k{i}"), "v")).collect(),
    );
    let (status, body) = p
        .send(
            p.post("/v1/metrics")
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&req).unwrap()),
        )
        .await?;
    ensure!(status == 200, "got {status}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    let rejected = v
        .pointer("/partialSuccess/rejectedDataPoints")
        .and_then(|r| {
            r.as_str()
                .map(str::to_string)
                .or(r.as_i64().map(|n| n.to_string()))
        });
    ensure!(
        rejected.as_deref() == Some("1"),
        "partial_success reports {rejected:?} rejected points for one refused point: {body}"
    );
    Ok(())
}

/// 12d. A global new-series cap: 500 new series over 50 metrics are braked (storage
///      engineer's change in store/registry).
async fn global_new_series_cap(p: &Probe) -> CaseResult {
    // The brake also refuses the harness's new good series after this case within the same
    // minute, so that series is written (and so known) before the churn exhausts the window:
    // known series are never braked.
    p.good_data_is_stored("12d-global-new-series-cap").await?;
    let batch = Batch {
        series: (0..500)
            .map(|i| TimeSeries {
                key: SeriesKey::new(
                    format!("probe_churn_{}", i % 50),
                    Labels::from_pairs([("i", i.to_string())]),
                ),
                metric_type: MetricType::Gauge,
                samples: vec![Sample {
                    ts: model::clock::now_ms(),
                    value: 1.0,
                }],
            })
            .collect(),
        metadata: vec![],
    };
    let (status, body) = p.remote_write(&batch).await?;
    ensure!(
        status == 400,
        "500 new series over 50 metrics (10 each, under the per-metric brake of 100) were all taken ({status}): no global cap braked them: {body}"
    );
    Ok(())
}

// ---- the harness ----------------------------------------------------------------------------

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_issue_9_finding_holds_against_the_real_binary() {
    let suite = Instant::now();
    let db = store::testing::fresh_database_url().await;
    // The password moves from `user:pass@` to `?password=`, the form issue 9 found shown.
    let mut url = url::Url::parse(&db).unwrap();
    let password = url.password().expect("test URL has a password").to_string();
    url.set_password(None).unwrap();
    url.query_pairs_mut().append_pair("password", &password);
    let dir = std::env::temp_dir().join(format!("pipewatch-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let grpc_port = free_port();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\
         [database]\nurl = \"{url}\"\n\
         [ingest]\nflush_interval = \"100ms\"\n\
         [receivers]\notlp_grpc_listen = \"127.0.0.1:{grpc_port}\"\n\
         [limits]\nmax_new_series_per_metric_per_minute = 100\nmax_new_series_per_minute = 450\n\
         [auth]\nanonymous_role = \"admin\"\n\
         [[auth.tokens]]\nname = \"probe\"\ntoken = \"{TOKEN}\"\n",
        dir.display()
    );
    let log_path = dir.join("stderr.log");
    let server = Pipewatch::start(
        &dir,
        &config,
        Stdio::from(std::fs::File::create(&log_path).unwrap()),
    )
    .await;
    let mut p = Probe {
        base: server.base(),
        grpc: format!("http://127.0.0.1:{grpc_port}"),
        pid: server.pid(),
        http: reqwest::Client::new(),
        password: password.clone(),
        db: db.clone(),
        peak_mb: 0,
    };
    p.after_case("baseline").await.unwrap();

    // (name, finding, expected to fail: the reason)
    type Xfail = Option<&'static str>;
    let mut failures = Vec::new();
    let mut report = |name: &str, result: CaseResult, xfail: Xfail| match (result, xfail) {
        (Ok(()), None) => println!("PASS  {name}"),
        (Err(e), Some(why)) => println!("XFAIL {name}: {e}\n      expected: {why}"),
        (Ok(()), Some(why)) => failures.push(format!(
            "{name} passes now but is marked expected-to-fail ({why}): remove the mark"
        )),
        (Err(e), None) => failures.push(format!("{name}: {e}")),
    };
    macro_rules! case {
        ($name:expr, $xfail:expr, $body:expr) => {{
            let started = Instant::now();
            let r = $body.await;
            let r = match r {
                Ok(()) => p.after_case($name).await,
                Err(e) => match p.after_case($name).await {
                    Ok(()) => Err(e),
                    Err(after) => Err(format!("{e}; and after it: {after}")),
                },
            };
            println!("      ({:?})", started.elapsed());
            report($name, r, $xfail);
        }};
    }
    case!("1-nul-bytes", None, nul_bytes(&p));
    case!("2-regex-matchers", None, regex_matchers(&p));
    case!("3-protobuf-amplification", None, protobuf_amplification(&p));
    case!(
        "3b-grpc-protobuf-amplification",
        None,
        grpc_protobuf_amplification(&p)
    );
    case!("4-grpc-token-before-decode", None, grpc_token_first(&p));
    case!(
        "5-unbounded-evidence-and-alerts",
        None,
        unbounded_evidence_and_alerts(&p)
    );
    case!("6-secrets", None, secrets(&p));
    case!(
        "7-embedded-database-password",
        None,
        embedded_database_needs_a_password(&p, &url::Url::parse(&db).unwrap())
    );
    case!("8-idle-connections", None, idle_connections(&p));
    case!("9-expensive-reads-series-limit", None, expensive_reads(&p));
    case!("10-cross-site-writes", None, cross_site(&p));
    case!("11-bad-input-is-400", None, bad_input_is_400(&p));
    case!("12a-huge-refused-series", None, huge_refused_series(&p));
    case!("12b-otlp-json-junk", None, otlp_json_junk(&p));
    case!(
        "12c-otlp-partial-success-counts-limits",
        None,
        otlp_partial_success_counts_limits(&p)
    );
    case!("12d-global-new-series-cap", None, global_new_series_cap(&p));

    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    if log.contains(&password) {
        failures.push("the server log shows the database password".into());
    }
    let longest = log.lines().map(str::len).max().unwrap_or(0);
    if longest > 16 << 10 {
        failures.push(format!("the server log has a line of {longest} bytes"));
    }
    println!(
        "probe: {:?}, peak VmHWM {} MiB (bound {RSS_BOUND_MB} MiB), longest log line {longest} bytes",
        suite.elapsed(),
        p.peak_mb
    );
    drop(server);
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        failures.is_empty(),
        "probe failures:\n{}",
        failures.join("\n")
    );
}

/// Finding 9's `statement_timeout`: a read on the read pool that runs past
/// `read_statement_timeout` is cancelled by PostgreSQL and recognised as a read timeout (the
/// API answers it 503 `timeout`), while the write pool has no such limit.
#[tokio::test]
async fn read_statement_timeout_cancels_a_slow_read() {
    let url = store::testing::fresh_database_url().await;
    let store = store::Store::connect(
        &url,
        store::StoreConfig {
            read_statement_timeout: Duration::from_millis(200),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let started = Instant::now();
    let err = sqlx::query("SELECT pg_sleep(3)")
        .execute(store.read_pool())
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let err = store::StoreError::Database {
        context: "probe",
        source: err,
    };
    assert!(err.is_read_timeout(), "{err}");
    sqlx::query("SELECT pg_sleep(0.5)")
        .execute(store.pool())
        .await
        .expect("the write pool has no statement_timeout");
}

/// Finding 9's `statement_timeout` from the query timeout: a PromQL query whose budget (here a
/// request's `timeout` of 300 ms) runs out while its read waits in PostgreSQL is answered
/// `timeout`, and PostgreSQL stops that read itself, instead of the backend waiting on until
/// the read pool's own 30 s while the client is long gone.
#[tokio::test]
async fn a_query_past_its_timeout_stops_its_database_read() {
    let url = store::testing::fresh_database_url().await;
    let store = store::Store::connect(&url, store::StoreConfig::default())
        .await
        .unwrap();
    // A write holding the series table makes every series lookup wait.
    let mut lock = store.pool().begin().await.unwrap();
    sqlx::query("LOCK TABLE series IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let limits = server::promql::QueryLimits {
        timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let started = Instant::now();
    let err = server::promql::instant(&store, &limits, "up", model::clock::now_ms())
        .await
        .unwrap_err();
    assert_eq!(
        err.error_type(),
        "timeout",
        "{err:?} after {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The read's backend no longer waits for the lock (PostgreSQL cancelled it at the
    // query's deadline), well before the read pool's 30 s statement_timeout.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
        )
        .fetch_one(&mut *lock)
        .await
        .unwrap();
        if waiting == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{waiting} backend(s) still wait for the lock {:?} after the query was answered",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    lock.rollback().await.unwrap();
}
