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
    let pw = pipewatch_tests::serve(server::app(st, std::env::temp_dir()))
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
    for f in &failures {
        eprintln!("DIFF {f}");
    }
    eprintln!(
        "{} queries, {evaluations} evaluations, {} differences outside KNOWN_DIFFERENCES.md",
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
