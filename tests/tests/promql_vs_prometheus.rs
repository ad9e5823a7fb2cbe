//! PromQL equal to Prometheus: the same generated data is remote-written to Debian's real
//! Prometheus 2.42 and to pipewatch (over HTTP, into a real PostgreSQL), then every query of
//! `fixtures/promql/corpus.promql` is asked of both at two instants and over a range, and the
//! answers must agree: same result type, same label sets, values within 1e-9 relative, and
//! both refusing what one refuses (with the same `errorType`). The data has counter resets,
//! staleness markers, sparse series with a gap, classic histograms, negative and repeated
//! values. Known, justified differences are listed in `fixtures/promql/KNOWN_DIFFERENCES.md`.

use model::{Batch, Labels, MetricType, Sample, SeriesKey, TimeSeries};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const STEP_MS: i64 = 15_000;
const STEPS: i64 = 480; // two hours
const STALE: f64 = f64::from_bits(0x7ff0_0000_0000_0002);

fn series(metric: &str, labels: &[(&str, &str)], t: MetricType) -> TimeSeries {
    TimeSeries {
        key: SeriesKey::new(metric, Labels::from_pairs(labels.iter().copied())),
        metric_type: t,
        samples: Vec::new(),
    }
}

/// A small deterministic generator, so both servers and every run see the same numbers.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// All series, filled for steps `0..STEPS` from `t0`.
fn generate(t0: i64) -> Vec<TimeSeries> {
    let mut rng = Lcg(42);
    let mut out = Vec::new();
    // Counters, one with two resets.
    let mut idx = 0.0;
    for job in ["api", "etl"] {
        for inst in ["a", "b"] {
            for code in ["200", "500"] {
                let mut s = series(
                    "pw_requests_total",
                    &[("job", job), ("instance", inst), ("code", code)],
                    MetricType::Counter,
                );
                let rate = 0.5 + idx * 0.3;
                idx += 1.0;
                let mut v = 10.0 * idx;
                for i in 0..STEPS {
                    v += rate * 15.0 + (rng.next() * 3.0).floor();
                    if (job, inst, code) == ("etl", "b", "500") && (i == 200 || i == 350) {
                        v = (rng.next() * 5.0).floor();
                    }
                    s.samples.push(Sample {
                        ts: t0 + i * STEP_MS,
                        value: v,
                    });
                }
                out.push(s);
            }
        }
    }
    // Classic histograms.
    let bounds = [
        ("0.05", 0.1),
        ("0.1", 0.3),
        ("0.25", 0.55),
        ("0.5", 0.75),
        ("1", 0.9),
        ("2.5", 0.97),
        ("+Inf", 1.0),
    ];
    for (j, job) in ["api", "etl"].into_iter().enumerate() {
        let mut buckets: Vec<TimeSeries> = bounds
            .iter()
            .map(|(le, _)| {
                series(
                    "pw_latency_seconds_bucket",
                    &[("job", job), ("le", le)],
                    MetricType::Histogram,
                )
            })
            .collect();
        let mut sum = series(
            "pw_latency_seconds_sum",
            &[("job", job)],
            MetricType::Histogram,
        );
        let mut count = series(
            "pw_latency_seconds_count",
            &[("job", job)],
            MetricType::Histogram,
        );
        let mut cum = vec![0.0; bounds.len()];
        let mut total_sum = 0.0;
        for i in 0..STEPS {
            let n = 10.0 + ((i + j as i64) % 7) as f64;
            for (k, (_, frac)) in bounds.iter().enumerate() {
                cum[k] += (n * frac * (1.0 + 0.2 * j as f64))
                    .floor()
                    .min(n * (1.0 + 0.2 * j as f64));
            }
            // Keep +Inf the largest, as a real histogram's is.
            let top = cum[..bounds.len() - 1].iter().cloned().fold(0.0, f64::max);
            if cum[bounds.len() - 1] < top {
                cum[bounds.len() - 1] = top;
            }
            let total = cum[bounds.len() - 1];
            total_sum += n * (0.3 + 0.1 * j as f64);
            let ts = t0 + i * STEP_MS;
            for (k, b) in buckets.iter_mut().enumerate() {
                b.samples.push(Sample { ts, value: cum[k] });
            }
            sum.samples.push(Sample {
                ts,
                value: total_sum,
            });
            count.samples.push(Sample { ts, value: total });
        }
        out.extend(buckets);
        out.push(sum);
        out.push(count);
    }
    // Gauges: waves with negative dips and repeated values.
    for (k, (job, queue)) in [("api", "q1"), ("api", "q2"), ("etl", "q1"), ("etl", "q2")]
        .into_iter()
        .enumerate()
    {
        let mut s = series(
            "pw_queue_depth",
            &[("job", job), ("queue", queue)],
            MetricType::Gauge,
        );
        for i in 0..STEPS {
            let v = if i % 13 == 0 {
                -5.0
            } else {
                ((20.0 + 15.0 * ((i as f64) / 20.0 + k as f64).sin()) * 10.0).round() / 10.0
            };
            s.samples.push(Sample {
                ts: t0 + i * STEP_MS,
                value: v,
            });
        }
        out.push(s);
    }
    for (k, room) in ["north", "south"].into_iter().enumerate() {
        let mut s = series(
            "pw_temperature",
            &[("job", "etl"), ("room", room)],
            MetricType::Gauge,
        );
        for i in 0..STEPS {
            let v = 18.5 + k as f64 + 0.01 * i as f64 + ((i * 7) % 5) as f64 * 0.1;
            s.samples.push(Sample {
                ts: t0 + i * STEP_MS,
                value: v,
            });
        }
        out.push(s);
    }
    // Sparse: every 7th step, with a 20-minute gap.
    let mut s = series("pw_sparse", &[("job", "etl")], MetricType::Gauge);
    for i in (0..STEPS).filter(|i| i % 7 == 0 && !(200..280).contains(i)) {
        s.samples.push(Sample {
            ts: t0 + i * STEP_MS,
            value: i as f64 / 3.0,
        });
    }
    out.push(s);
    // Stale: ends with a staleness marker, comes back later.
    let mut s = series("pw_stale", &[("job", "api")], MetricType::Gauge);
    for i in (0..STEPS).filter(|i| *i <= 300 || *i >= 380) {
        let v = if i == 300 {
            STALE
        } else if i < 300 {
            (i % 10) as f64
        } else {
            42.0
        };
        s.samples.push(Sample {
            ts: t0 + i * STEP_MS,
            value: v,
        });
    }
    out.push(s);
    for (job, version) in [("api", "1.2"), ("etl", "2.0")] {
        let mut s = series(
            "pw_info",
            &[("job", job), ("version", version)],
            MetricType::Gauge,
        );
        for i in 0..STEPS {
            s.samples.push(Sample {
                ts: t0 + i * STEP_MS,
                value: 1.0,
            });
        }
        out.push(s);
    }
    for (k, (job, inst)) in [("api", "a"), ("api", "b"), ("etl", "a"), ("etl", "b")]
        .into_iter()
        .enumerate()
    {
        let mut s = series(
            "pw_up",
            &[("job", job), ("instance", inst)],
            MetricType::Gauge,
        );
        for i in 0..STEPS {
            let up = (i / 40 + k as i64) % 3 != 0;
            s.samples.push(Sample {
                ts: t0 + i * STEP_MS,
                value: if up { 1.0 } else { 0.0 },
            });
        }
        out.push(s);
    }
    out
}

/// remote_write bodies in time order, ten steps each (Prometheus' head only takes samples
/// in order within an hour of its newest).
fn bodies(all: &[TimeSeries], t0: i64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for chunk in 0..(STEPS / 10) {
        let (lo, hi) = (t0 + chunk * 10 * STEP_MS, t0 + (chunk + 1) * 10 * STEP_MS);
        let batch = Batch {
            series: all
                .iter()
                .map(|s| TimeSeries {
                    key: s.key.clone(),
                    metric_type: s.metric_type,
                    samples: s
                        .samples
                        .iter()
                        .filter(|x| x.ts >= lo && x.ts < hi)
                        .cloned()
                        .collect(),
                })
                .filter(|s| !s.samples.is_empty())
                .collect(),
            metadata: vec![],
        };
        out.push(collectors::remote_write::encode(&batch));
    }
    out
}

async fn push(client: &reqwest::Client, url: &str, body: Vec<u8>) {
    for _ in 0..50 {
        let r = client
            .post(url)
            .header("content-type", "application/x-protobuf")
            .header("content-encoding", "snappy")
            .header("x-prometheus-remote-write-version", "0.1.0")
            .body(body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        if r.status().is_success() {
            return;
        }
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        assert!(
            status.is_server_error() || status == 429,
            "POST {url}: {status} {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("POST {url} kept failing");
}

/// GET with `params` in the URL, or POST with them form-encoded; the status code and the body.
async fn ask(
    client: &reqwest::Client,
    method: &str,
    base: &str,
    path: &str,
    params: &[(&str, String)],
) -> (u16, Value) {
    let url = format!("http://{base}{path}");
    let req = if method == "POST" {
        client.post(&url).form(params)
    } else {
        client.get(&url).query(params)
    };
    let r = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url} {params:?}: {e}: {text}"));
    (status, v)
}

/// A method, a path and its parameters.
type CatalogueRequest = (&'static str, &'static str, Vec<(&'static str, String)>);

/// Series, label-name and label-value requests over the generated data: unions of selectors,
/// regex matchers, ranges covering all, part, none of the data and the gaps of the sparse and
/// stale series, form POSTs, and requests both must refuse.
fn catalogue_requests(t0: i64, t_end: i64) -> Vec<CatalogueRequest> {
    let secs = |ms: i64| format!("{}", ms as f64 / 1000.0);
    let min = 60_000;
    let ranges: Vec<Vec<(&str, String)>> = vec![
        vec![],
        vec![("start", secs(t0)), ("end", secs(t_end))],
        vec![("start", secs(t0 + 30 * min)), ("end", secs(t0 + 40 * min))],
        vec![
            ("start", secs(t0 - 120 * min)),
            ("end", secs(t0 - 60 * min)),
        ],
        vec![("start", secs(t_end + min)), ("end", secs(t_end + 2 * min))],
        // RFC 3339 and only one end given.
        vec![("start", "2001-01-01T00:00:00Z".to_string())],
        vec![("end", secs(t0 - 60 * min))],
    ];
    let match_sets: Vec<Vec<&str>> = vec![
        vec!["pw_requests_total"],
        vec![r#"{__name__=~"pw_.*", job="etl"}"#],
        vec!["pw_up", r#"pw_info{version="1.2"}"#],
        vec!["pw_up", r#"pw_up{job="api"}"#],
        vec![r#"pw_latency_seconds_bucket{le=~"0.*|\\+Inf"}"#],
        vec![r#"{job=~"api|etl", __name__!~"pw_(latency|requests).*"}"#],
        vec!["pw_sparse", "pw_stale"],
        vec!["nonexistent_metric"],
    ];
    let mut out = Vec::new();
    for range in &ranges {
        for set in &match_sets {
            let mut params: Vec<(&str, String)> =
                set.iter().map(|m| ("match[]", m.to_string())).collect();
            params.extend(range.iter().cloned());
            out.push(("GET", "/api/v1/series", params.clone()));
            out.push(("GET", "/api/v1/labels", params.clone()));
            for name in ["job", "le", "__name__"] {
                let path: &'static str = match name {
                    "job" => "/api/v1/label/job/values",
                    "le" => "/api/v1/label/le/values",
                    _ => "/api/v1/label/__name__/values",
                };
                out.push(("GET", path, params.clone()));
            }
        }
        out.push(("GET", "/api/v1/labels", range.clone()));
        out.push(("GET", "/api/v1/label/job/values", range.clone()));
        out.push(("GET", "/api/v1/label/__name__/values", range.clone()));
        out.push(("GET", "/api/v1/label/nonexistent/values", range.clone()));
    }
    let union = vec![
        ("match[]", "pw_up".to_string()),
        ("match[]", r#"{__name__="pw_temperature"}"#.to_string()),
        ("start", secs(t0)),
        ("end", secs(t_end)),
    ];
    out.push(("POST", "/api/v1/series", union.clone()));
    out.push(("POST", "/api/v1/labels", union));
    // Refused by both, with bad_data.
    for bad in [
        vec![],
        vec![("match[]", "rate(pw_up[5m])".to_string())],
        vec![("match[]", "{}".to_string())],
        vec![("match[]", r#"{job=""}"#.to_string())],
        vec![("match[]", "pw_up{".to_string())],
        vec![
            ("match[]", "pw_up".to_string()),
            ("start", "yesterday".to_string()),
        ],
        vec![
            ("match[]", "pw_up".to_string()),
            ("end", "soon".to_string()),
        ],
    ] {
        out.push(("GET", "/api/v1/series", bad.clone()));
        if !bad.is_empty() {
            out.push(("GET", "/api/v1/labels", bad.clone()));
            out.push(("GET", "/api/v1/label/job/values", bad));
        }
    }
    out.push(("GET", "/api/v1/label/1job/values", vec![]));
    out
}

/// Same status, and the same data up to order (series as sorted label maps), or the same
/// `errorType`.
fn same_catalogue(prom: &(u16, Value), pw: &(u16, Value)) -> Result<(), String> {
    let sorted = |v: &Value| -> Value {
        match v.as_array() {
            Some(a) => {
                let mut items: Vec<String> = a.iter().map(|x| x.to_string()).collect();
                items.sort();
                Value::Array(items.into_iter().map(Value::String).collect())
            }
            None => v.clone(),
        }
    };
    if prom.0 != pw.0 {
        return Err(format!(
            "status {} vs {}: {} vs {}",
            prom.0, pw.0, prom.1, pw.1
        ));
    }
    if prom.1["status"] != "success" {
        return if prom.1["errorType"] == pw.1["errorType"] {
            Ok(())
        } else {
            Err(format!("errorType {} vs {}", prom.1, pw.1))
        };
    }
    let (p, w) = (sorted(&prom.1["data"]), sorted(&pw.1["data"]));
    if p != w {
        return Err(format!("Prometheus {p}\n    pipewatch  {w}"));
    }
    Ok(())
}

/// `/api/v1/metadata`: a second Prometheus scrapes `fixtures/promql/metadata.prom` (Prometheus
/// serves metadata of scraped families only, and the first one cannot scrape: its head would
/// then refuse the hours-old remote_write data), pipewatch's scraper reads the same page once;
/// the families of the page must be described alike. Returns the differences.
async fn metadata_differences(
    client: &reqwest::Client,
    pw: &str,
    st: &server::AppState,
) -> Vec<String> {
    let page = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/promql/metadata.prom"),
    )
    .unwrap();
    let target = pipewatch_tests::serve(axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let page = page.clone();
            async move { ([("content-type", "text/plain; version=0.0.4")], page) }
        }),
    ))
    .await;
    let meta_prom = pipewatch_tests::Prometheus::start("promql-metadata", &[], |_| {
        vec![(
            "prometheus.yml",
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: meta\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )]
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client
        .get(format!("http://{}/-/ready", meta_prom.addr))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            Instant::now() < deadline,
            "the metadata Prometheus did not start: {}",
            meta_prom.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let scraped = collectors::scrape::Scraper::new()
        .scrape(
            &collectors::scrape::ScrapeTarget {
                job: "meta".into(),
                url: format!("http://{target}/metrics"),
                labels: Labels::new(),
                interval: Duration::from_secs(1),
                timeout: Duration::from_secs(5),
            },
            pipewatch_tests::now_ms(),
        )
        .await;
    assert!(scraped.up, "pipewatch's scrape failed: {:?}", scraped.error);
    st.queue.push(scraped.batch).await.unwrap();
    let families = [
        "pwmeta_jobs_total",
        "pwmeta_queue_depth",
        "pwmeta_run_seconds",
        "pwmeta_mystery",
        "pwmeta_help_only",
        "pwmeta_type_only",
    ];
    // Both know every family once Prometheus has scraped and the queue is written.
    let deadline = Instant::now() + Duration::from_secs(30);
    for base in [meta_prom.addr.as_str(), pw] {
        loop {
            let v = ask(client, "GET", base, "/api/v1/metadata", &[]).await.1;
            let known = v["data"]
                .as_object()
                .map(|m| families.iter().filter(|f| m.contains_key(**f)).count());
            if known == Some(families.len()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{base} does not describe every family of metadata.prom: {v}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let mut out = Vec::new();
    let mut asks: Vec<Vec<(&str, String)>> = families
        .iter()
        .map(|f| vec![("metric", f.to_string())])
        .collect();
    asks.push(vec![("metric", "nonexistent_metric".to_string())]);
    asks.push(vec![
        ("metric", "pwmeta_jobs_total".to_string()),
        ("limit", "1".to_string()),
    ]);
    asks.push(vec![("limit", "many".to_string())]);
    for params in &asks {
        let p = ask(client, "GET", &meta_prom.addr, "/api/v1/metadata", params).await;
        let w = ask(client, "GET", pw, "/api/v1/metadata", params).await;
        if let Err(e) = same_catalogue(&p, &w) {
            out.push(format!("GET /api/v1/metadata {params:?}\n    {e}"));
        }
    }
    // The whole map, on the page's families (pipewatch also describes its own scrape series
    // `up`, `scrape_duration_seconds` and `scrape_samples_scraped`; see KNOWN_DIFFERENCES.md).
    let page_only = |v: &Value| -> Value {
        let m = v["data"].as_object().cloned().unwrap_or_default();
        Value::Object(
            m.into_iter()
                .filter(|(k, _)| k.starts_with("pwmeta_"))
                .collect(),
        )
    };
    let p = ask(client, "GET", &meta_prom.addr, "/api/v1/metadata", &[])
        .await
        .1;
    let w = ask(client, "GET", pw, "/api/v1/metadata", &[]).await.1;
    if page_only(&p) != page_only(&w) {
        out.push(format!(
            "GET /api/v1/metadata\n    Prometheus {}\n    pipewatch  {}",
            page_only(&p),
            page_only(&w)
        ));
    }
    out
}

async fn api(client: &reqwest::Client, base: &str, path: &str, params: &[(&str, String)]) -> Value {
    let r = client
        .get(format!("http://{base}{path}"))
        .query(params)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {base}{path}: {e}"));
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{base}{path} {params:?}: {e}: {text}"))
}

fn parse_value(v: &Value) -> f64 {
    match v.as_str().unwrap() {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        s => s.parse().unwrap(),
    }
}

fn close(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-12)
}

type Points = Vec<(f64, f64)>;
/// A result type and its series (label set and points).
type Normalised = (String, Vec<(BTreeMap<String, String>, Points)>);

/// A result as comparable data: per label set, its points (instant results have one).
fn normalise(v: &Value) -> Result<Normalised, String> {
    if v["status"] != "success" {
        return Err(v["errorType"].as_str().unwrap_or("?").to_string());
    }
    let kind = v["data"]["resultType"].as_str().unwrap().to_string();
    let result = &v["data"]["result"];
    let mut out = Vec::new();
    match kind.as_str() {
        "scalar" | "string" => {
            let val = if kind == "scalar" {
                parse_value(&result[1])
            } else {
                0.0
            };
            out.push((BTreeMap::new(), vec![(result[0].as_f64().unwrap(), val)]));
        }
        _ => {
            for e in result.as_array().unwrap() {
                let labels: BTreeMap<String, String> =
                    serde_json::from_value(e["metric"].clone()).unwrap();
                let points = if let Some(val) = e.get("value") {
                    vec![(val[0].as_f64().unwrap(), parse_value(&val[1]))]
                } else {
                    e["values"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| (p[0].as_f64().unwrap(), parse_value(&p[1])))
                        .collect()
                };
                out.push((labels, points));
            }
        }
    }
    Ok((kind, out))
}

fn compare(query: &str, prom: &Value, pw: &Value) -> Result<(), String> {
    let (p, w) = (normalise(prom), normalise(pw));
    let (mut p, mut w) = match (p, w) {
        (Err(a), Err(b)) if a == b => return Ok(()),
        (Err(a), Err(b)) => return Err(format!("both refuse, errorType {a} vs {b}")),
        (Err(a), Ok(_)) => {
            return Err(format!(
                "Prometheus refuses ({a}: {}), pipewatch answers {pw}",
                prom["error"]
            ))
        }
        (Ok(_), Err(b)) => {
            return Err(format!(
                "pipewatch refuses ({b}: {}), Prometheus answers",
                pw["error"]
            ))
        }
        (Ok(a), Ok(b)) => (a, b),
    };
    if p.0 != w.0 {
        return Err(format!("result type {} vs {}", p.0, w.0));
    }
    let ordered = query.trim_start().starts_with("sort");
    if !ordered {
        p.1.sort_by(|a, b| a.0.cmp(&b.0));
        w.1.sort_by(|a, b| a.0.cmp(&b.0));
    }
    if p.1.len() != w.1.len() {
        return Err(format!(
            "{} series vs {}: Prometheus {:?} pipewatch {:?}",
            p.1.len(),
            w.1.len(),
            p.1.iter().map(|x| &x.0).collect::<Vec<_>>(),
            w.1.iter().map(|x| &x.0).collect::<Vec<_>>()
        ));
    }
    for ((pl, pp), (wl, wp)) in p.1.iter().zip(&w.1) {
        if pl != wl {
            return Err(format!("labels {pl:?} vs {wl:?}"));
        }
        if pp.len() != wp.len() {
            return Err(format!("{pl:?}: {} points vs {}", pp.len(), wp.len()));
        }
        for (a, b) in pp.iter().zip(wp) {
            if (a.0 - b.0).abs() > 1e-6 || !close(a.1, b.1) {
                return Err(format!("{pl:?}: point {a:?} vs {b:?}"));
            }
        }
    }
    Ok(())
}

/// Listed queries, and whether Prometheus' own answer varies from run to run for each (then
/// agreeing is no sign the entry is out of date).
/// promtool's printed lines equal up to the last digits of floats: every line of one has a
/// line in the other with the same words and numbers within 1e-9 relative (Go's `math.Exp`
/// and Rust's `exp` can differ in the last bit).
fn same_lines(a: &[String], b: &[String]) -> bool {
    fn words_match(x: &str, y: &str) -> bool {
        let (xs, ys): (Vec<&str>, Vec<&str>) = (
            x.split_whitespace().collect(),
            y.split_whitespace().collect(),
        );
        xs.len() == ys.len()
            && xs.iter().zip(&ys).all(|(u, v)| {
                u == v
                    || matches!((u.parse::<f64>(), v.parse::<f64>()), (Ok(p), Ok(q)) if close(p, q))
            })
    }
    if a.len() != b.len() {
        return false;
    }
    let mut left: Vec<&String> = b.iter().collect();
    for line in a {
        match left.iter().position(|l| words_match(line, l)) {
            Some(i) => {
                left.swap_remove(i);
            }
            None => return false,
        }
    }
    true
}

fn known_differences() -> Vec<(String, bool)> {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/promql/KNOWN_DIFFERENCES.md"),
    )
    .unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("- `"))
        .filter_map(|l| {
            l.split_once("` ")
                .map(|(q, reason)| (q.to_string(), reason.starts_with("[varies]")))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pipewatch_answers_the_corpus_as_prometheus_2_42_does() {
    let corpus: Vec<String> = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/promql/corpus.promql"),
    )
    .unwrap()
    .lines()
    .map(str::trim)
    .filter(|l| !l.is_empty() && !l.starts_with('#'))
    .map(String::from)
    .collect();
    assert!(corpus.len() >= 300, "corpus has {} queries", corpus.len());

    let prom = pipewatch_tests::Prometheus::start(
        "promql-equal",
        &["--web.enable-remote-write-receiver"],
        |_| {
            vec![(
                "prometheus.yml",
                "global:\n  evaluation_interval: 1m\n".to_string(),
            )]
        },
    );
    let (st, _writers, _url) = pipewatch_tests::state(1_000_000).await;
    let pw = pipewatch_tests::serve(server::app(st.clone(), std::env::temp_dir()))
        .await
        .to_string();

    let now = pipewatch_tests::now_ms();
    let t0 = (now / 60_000 - 125) * 60_000;
    let all = generate(t0);
    let client = reqwest::Client::new();
    // Wait for Prometheus to listen.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if client
            .get(format!("http://{}/-/ready", prom.addr))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus did not start: {}",
            prom.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for body in bodies(&all, t0) {
        push(
            &client,
            &format!("http://{}/api/v1/write", prom.addr),
            body.clone(),
        )
        .await;
        push(&client, &format!("http://{pw}/api/v1/write"), body).await;
    }
    // Both have everything once this count (stale markers excluded) agrees with the data.
    let t_end = t0 + (STEPS - 1) * STEP_MS;
    let expected: usize = all
        .iter()
        .map(|s| {
            s.samples
                .iter()
                .filter(|x| x.value.to_bits() != STALE.to_bits())
                .count()
        })
        .sum();
    // Counted per metric name: a function over several metrics would collide once it drops
    // the names.
    let mut names: Vec<&str> = all.iter().map(|s| s.key.metric.as_str()).collect();
    names.sort();
    names.dedup();
    for base in [prom.addr.as_str(), pw.as_str()] {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut n = 0usize;
            for name in &names {
                let q = vec![
                    ("query", format!("sum(count_over_time({name}[3h]))")),
                    ("time", format!("{}", t_end as f64 / 1000.0)),
                ];
                let v = api(&client, base, "/api/v1/query", &q).await;
                n += v["data"]["result"][0]["value"][1]
                    .as_str()
                    .map(|s| s.parse::<f64>().unwrap() as usize)
                    .unwrap_or(0);
            }
            if n == expected {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{base} holds {n} samples, expected {expected}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    let known = known_differences();
    let instants = [t_end, t0 + 60 * 60_000 + 7_500];
    let (range_start, range_end) = (t0 + 20 * 60_000, t0 + 118 * 60_000);
    let mut failures = Vec::new();
    let mut known_hit = std::collections::HashSet::new();
    let mut evaluations = 0;
    for q in &corpus {
        let mut asks: Vec<(&str, Vec<(&str, String)>)> = instants
            .iter()
            .map(|t| {
                (
                    "/api/v1/query",
                    vec![
                        ("query", q.clone()),
                        ("time", format!("{}", *t as f64 / 1000.0)),
                    ],
                )
            })
            .collect();
        asks.push((
            "/api/v1/query_range",
            vec![
                ("query", q.clone()),
                ("start", format!("{}", range_start as f64 / 1000.0)),
                ("end", format!("{}", range_end as f64 / 1000.0)),
                ("step", "60".to_string()),
            ],
        ));
        for (path, params) in asks {
            evaluations += 1;
            let p = api(&client, &prom.addr, path, &params).await;
            let w = api(&client, &pw, path, &params).await;
            if let Err(e) = compare(q, &p, &w) {
                if known.iter().any(|(k, _)| k == q) {
                    known_hit.insert(q.clone());
                } else {
                    failures.push(format!("{path} {q}\n    {e}"));
                }
            }
        }
    }
    // The real client: promtool prints the same for both servers (a sample of the corpus,
    // every query Prometheus answers among the first ones).
    let t = format!("{}", instants[1] as f64 / 1000.0);
    let (rs, re) = (
        format!("{}", range_start as f64 / 1000.0),
        format!("{}", range_end as f64 / 1000.0),
    );
    let mut promtool_runs = 0;
    for q in corpus.iter().step_by(9).take(40) {
        for args in [
            vec!["query", "instant", "--time", t.as_str()],
            vec![
                "query",
                "range",
                "--start",
                rs.as_str(),
                "--end",
                re.as_str(),
                "--step",
                "5m",
            ],
        ] {
            let run = |server: &str| {
                let out = std::process::Command::new("promtool")
                    .args(&args)
                    .arg(format!("http://{server}"))
                    .arg(q)
                    .output()
                    .expect(
                        "promtool is installed with Debian's prometheus (scripts/setup.sh --test)",
                    );
                let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(String::from)
                    .collect();
                lines.sort();
                (out.status.success(), lines)
            };
            let (p_ok, p_out) = run(&prom.addr);
            let (w_ok, w_out) = run(&pw);
            promtool_runs += 1;
            if (p_ok != w_ok || !same_lines(&p_out, &w_out)) && !known.iter().any(|(k, _)| k == q) {
                failures.push(format!(
                    "promtool {} {q}\n    Prometheus ({p_ok}): {p_out:?}\n    pipewatch ({w_ok}): {w_out:?}",
                    args[1]
                ));
            }
        }
    }
    assert!(promtool_runs >= 80, "only {promtool_runs} promtool runs");

    // The catalogue routes Grafana's query editor and label browser call. Maintenance writes
    // last_seen every 30 s in a running server; here it is flushed once by hand.
    st.store.flush_last_seen().await.unwrap();
    let catalogue = catalogue_requests(t0, t_end);
    let mut catalogue_runs = 0;
    for (method, path, params) in &catalogue {
        let p = ask(&client, method, &prom.addr, path, params).await;
        let w = ask(&client, method, &pw, path, params).await;
        catalogue_runs += 1;
        if let Err(e) = same_catalogue(&p, &w) {
            failures.push(format!("{method} {path} {params:?}\n    {e}"));
        }
    }
    failures.extend(metadata_differences(&client, &pw, &st).await);
    // Inside the gaps of pw_sparse (no samples) and pw_stale (ended by a staleness marker,
    // back later), pipewatch lists both: their span covers the range. Prometheus lists them
    // when one of its chunks spans the gap, which depends on where the run's data falls
    // against its 2 h block boundaries, so its answer is not compared here.
    for (from, to) in [(55, 65), (80, 90)] {
        let params = vec![
            ("match[]", "pw_sparse".to_string()),
            ("match[]", "pw_stale".to_string()),
            ("start", format!("{}", (t0 + from * 60_000) as f64 / 1000.0)),
            ("end", format!("{}", (t0 + to * 60_000) as f64 / 1000.0)),
        ];
        let (status, v) = ask(&client, "GET", &pw, "/api/v1/series", &params).await;
        let names: Vec<&str> = v["data"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s["__name__"].as_str()).collect())
            .unwrap_or_default();
        if status != 200 || names != ["pw_sparse", "pw_stale"] {
            failures.push(format!(
                "pipewatch /api/v1/series in a gap ({from}-{to} min): {status} {v}"
            ));
        }
    }
    for f in &failures {
        eprintln!("DIFF {f}");
    }
    eprintln!(
        "{} queries, {evaluations} evaluations, {catalogue_runs} catalogue requests, {} differences outside KNOWN_DIFFERENCES.md",
        corpus.len(),
        failures.len()
    );
    let stale: Vec<_> = known
        .iter()
        .filter(|(k, varies)| !varies && !known_hit.contains(k))
        .collect();
    assert!(
        failures.is_empty(),
        "{} answers differ from Prometheus",
        failures.len()
    );
    assert!(
        stale.is_empty(),
        "listed as different but now equal (remove them): {stale:?}"
    );
}
