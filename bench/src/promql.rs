//! `pipewatch bench promql`: PromQL range-query latency of pipewatch against Debian's
//! Prometheus 2.42 answering the same queries over the same data in the same run.
//!
//! One data set is remote-written, in time order, to a pipewatch server (over HTTP, into
//! PostgreSQL) and to a Prometheus started with `--web.enable-remote-write-receiver`: for each
//! size N, a counter `x_N` of N series (ten `job`s) and a classic histogram `h_N_bucket` of N
//! bucket series, one sample per series every `interval`, over the longest duration asked
//! for. Then, per size and duration D, three range queries over the last D (240 steps, as a
//! dashboard panel asks), alternating between the two servers so both see the same machine
//! load: `rate(x_N[5m])`, `sum by (job) (rate(x_N[5m]))` and
//! `histogram_quantile(0.95, sum by (le) (rate(h_N_bucket[5m])))`. Both answers must agree
//! (same series, values within 1e-9 relative) before any time is reported. Printed: p50 and p95
//! of each, and the ratios pipewatch/Prometheus (below 1: pipewatch is faster).

use anyhow::{bail, Context, Result};
use model::{Batch, Labels, MetricType, Sample, SeriesKey, TimeSeries};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The queries, with `{N}` standing for the size.
const QUERIES: [&str; 3] = [
    "rate(x_{N}[5m])",
    "sum by (job) (rate(x_{N}[5m]))",
    "histogram_quantile(0.95, sum by (le) (rate(h_{N}_bucket[5m])))",
];

/// Steps per range query: about what a dashboard panel asks for.
const STEPS: i64 = 240;

/// What to run: sizes, durations, iterations per query, sample interval.
#[derive(Debug, Clone)]
pub struct PromqlBench {
    pub series: Vec<usize>,
    pub durations: Vec<Duration>,
    pub iterations: usize,
    pub interval: Duration,
}

/// Debian's Prometheus on a temp dir and a free loopback port; killed and its dir removed
/// when dropped.
struct Prometheus {
    addr: String,
    dir: PathBuf,
    child: std::process::Child,
}

impl Prometheus {
    fn start() -> Result<Prometheus> {
        let binary = std::env::var_os("PATH")
            .and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join("prometheus"))
                    .find(|p| p.is_file())
            })
            .context("the `prometheus` binary is not on PATH: install Debian's prometheus (apt-get install prometheus, or scripts/setup.sh --test)")?;
        let dir =
            std::env::temp_dir().join(format!("pipewatch-bench-promql-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("prometheus.yml"),
            "global:\n  evaluation_interval: 1m\n",
        )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(dir.join("prometheus.log"))?;
        let child = std::process::Command::new(&binary)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--web.enable-remote-write-receiver")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Prometheus { addr, dir, child })
    }

    fn version(&self) -> String {
        std::process::Command::new("prometheus")
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.lines().next().map(str::to_string))
            .unwrap_or_else(|| "prometheus (version unknown)".into())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A small deterministic generator, so every run loads the same numbers.
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

/// The series of one size: the counter's and the histogram's keys.
fn keys(n: usize) -> Vec<SeriesKey> {
    let mut out = Vec::with_capacity(2 * n);
    for i in 0..n {
        out.push(SeriesKey::new(
            format!("x_{n}"),
            Labels::from_pairs([
                ("job", format!("job{}", i % 10)),
                ("instance", format!("i{i}")),
            ]),
        ));
    }
    // N bucket series: up to ten `le` bounds per histogram, as many histograms as fit.
    let bounds = [
        "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf",
    ];
    let per = n.min(bounds.len());
    for i in 0..n {
        let le = bounds[bounds.len() - per + i % per];
        out.push(SeriesKey::new(
            format!("h_{n}_bucket"),
            Labels::from_pairs([
                ("instance", format!("i{}", i / per)),
                ("le", le.to_string()),
            ]),
        ));
    }
    out
}

/// Value of series `k` at step `i`. Counters rise by 1 to 11 per step with a random wobble
/// (never a reset); a histogram's buckets share one rate scaled by the share of observations
/// under their bound, without wobble, so they are cumulative along `le` at every step.
fn value(key: &SeriesKey, k: usize, i: i64) -> f64 {
    if key.metric.ends_with("_bucket") {
        let instance: u64 = key
            .labels
            .get("instance")
            .and_then(|v| v.trim_start_matches('i').parse().ok())
            .unwrap_or(0);
        let base = Lcg(instance * 7919 + 1).next() * 10.0 + 1.0;
        let le: f64 = key
            .labels
            .get("le")
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::INFINITY);
        let share = 1.0 - (-le.min(100.0)).exp();
        return (base * share * i as f64).floor();
    }
    let base = Lcg(k as u64 * 7919 + 1).next() * 10.0 + 1.0;
    let wobble = Lcg(k as u64 ^ (i as u64).wrapping_mul(0x9E37_79B9)).next();
    (base * i as f64 + wobble).floor()
}

/// remote_write bodies in time order, `window` steps each (Prometheus' head takes samples in
/// order only).
fn bodies(keys: &[SeriesKey], start: i64, steps: i64, interval: i64, window: i64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut first = 0;
    while first < steps {
        let last = (first + window).min(steps);
        let batch = Batch {
            series: keys
                .iter()
                .enumerate()
                .map(|(k, key)| TimeSeries {
                    key: key.clone(),
                    metric_type: MetricType::Counter,
                    samples: (first..last)
                        .map(|i| Sample {
                            ts: start + i * interval,
                            value: value(key, k, i),
                        })
                        .collect(),
                })
                .collect(),
            metadata: vec![],
        };
        out.push(collectors::remote_write::encode(&batch));
        first = last;
    }
    out
}

async fn push(client: &reqwest::Client, url: &str, body: &[u8]) -> Result<()> {
    for _ in 0..100 {
        let r = client
            .post(url)
            .header("content-type", "application/x-protobuf")
            .header("content-encoding", "snappy")
            .header("x-prometheus-remote-write-version", "0.1.0")
            .body(body.to_vec())
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = r.status();
        if status.is_success() {
            return Ok(());
        }
        if status.as_u16() != 429 && !status.is_server_error() {
            bail!(
                "POST {url}: {status} {}",
                r.text().await.unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!("POST {url} kept answering 429/5xx")
}

async fn get(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    params: &[(&str, String)],
) -> Result<Value> {
    let r = client
        .get(format!("http://{base}{path}"))
        .query(params)
        .send()
        .await
        .with_context(|| format!("GET {base}{path}"))?;
    let text = r.text().await?;
    serde_json::from_str(&text).with_context(|| format!("{base}{path}: {text}"))
}

/// Samples the server holds of `metric` up to `end` (Unix ms).
async fn stored(
    client: &reqwest::Client,
    base: &str,
    metric: &str,
    end: i64,
    span: Duration,
) -> Result<u64> {
    let q = format!("sum(count_over_time({metric}[{}s]))", span.as_secs() + 60);
    let v = get(
        client,
        base,
        "/api/v1/query",
        &[("query", q), ("time", secs(end))],
    )
    .await?;
    Ok(v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(0.0) as u64)
}

fn secs(ms: i64) -> String {
    format!("{}", ms as f64 / 1000.0)
}

/// An answer as label set -> points, for comparing the two servers.
fn points(v: &Value) -> Result<BTreeMap<String, Vec<(f64, f64)>>> {
    if v["status"] != "success" {
        bail!("query failed: {v}");
    }
    let mut out = BTreeMap::new();
    for s in v["data"]["result"].as_array().context("no result array")? {
        let mut labels: Vec<(String, String)> =
            serde_json::from_value::<BTreeMap<String, String>>(s["metric"].clone())?
                .into_iter()
                .collect();
        labels.sort();
        let pts = s["values"]
            .as_array()
            .context("no values")?
            .iter()
            .map(|p| {
                let t = p[0].as_f64().unwrap_or(f64::NAN);
                let v = match p[1].as_str().unwrap_or("NaN") {
                    "+Inf" => f64::INFINITY,
                    "-Inf" => f64::NEG_INFINITY,
                    x => x.parse().unwrap_or(f64::NAN),
                };
                (t, v)
            })
            .collect();
        out.insert(format!("{labels:?}"), pts);
    }
    Ok(out)
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-12)
}

/// Fails unless both answers have the same series and points.
fn same_answer(query: &str, prom: &Value, pw: &Value) -> Result<()> {
    let (p, w) = (points(prom)?, points(pw)?);
    if p.len() != w.len() || p.keys().ne(w.keys()) {
        bail!(
            "{query}: Prometheus answers {} series, pipewatch {}",
            p.len(),
            w.len()
        );
    }
    for (labels, pp) in &p {
        let wp = &w[labels];
        if pp.len() != wp.len()
            || pp
                .iter()
                .zip(wp)
                .any(|(a, b)| (a.0 - b.0).abs() > 1e-6 || !close(a.1, b.1))
        {
            bail!("{query}: {labels} differs: Prometheus {pp:?}, pipewatch {wp:?}");
        }
    }
    Ok(())
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let idx = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[idx]
}

async fn timed(
    client: &reqwest::Client,
    base: &str,
    params: &[(&str, String)],
) -> Result<(f64, Value)> {
    let t = Instant::now();
    let v = get(client, base, "/api/v1/query_range", params).await?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    if v["status"] != "success" {
        bail!("{base}: {v}");
    }
    Ok((ms, v))
}

/// Runs the benchmark against a database next to `base_url` (recreated) and a Prometheus
/// from PATH; `cfg` is the pipewatch config (its `[query]` limits apply).
pub async fn run(base_url: &str, b: &PromqlBench, cfg: &server::config::Config) -> Result<()> {
    if b.series.is_empty() || b.durations.is_empty() || b.iterations == 0 {
        bail!("give at least one --series, one --durations and --iterations >= 1");
    }
    let interval = b.interval.as_millis() as i64;
    if interval < 1000 {
        bail!("--interval must be at least 1s");
    }
    let span = *b.durations.iter().max().expect("not empty");
    let steps = span.as_millis() as i64 / interval;
    let now = model::clock::now_ms();
    let end = now - now.rem_euclid(interval);
    let start = end - (steps - 1) * interval;

    let url = super::database_url(base_url, "pipewatch_bench_promql", true).await?;
    let mut cfg = cfg.clone();
    cfg.database.url = url;
    cfg.server.listen = "127.0.0.1:0".parse().expect("static address");
    cfg.receivers.otlp_grpc_listen = String::new();
    cfg.scrape_configs.clear();
    // The benchmark measures queries, not logins: its private server answers anonymous reads.
    cfg.auth.anonymous_role = "viewer".into();
    let server = server::run::RunningServer::start(cfg, Default::default())
        .await
        .context("bench server did not start")?;
    let pw = server.addr.to_string();
    let prom = Prometheus::start()?;
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !client
        .get(format!("http://{}/-/ready", prom.addr))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        if Instant::now() > deadline {
            bail!("Prometheus did not become ready: {}", prom.log());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "bench promql: pipewatch {} vs {}",
        env!("CARGO_PKG_VERSION"),
        prom.version()
    );

    let all: Vec<SeriesKey> = b.series.iter().flat_map(|n| keys(*n)).collect();
    let total = all.len() as u64 * steps as u64;
    println!(
        "  loading {} series x {steps} samples ({} s apart, {}) = {total} samples into both, by remote_write ...",
        all.len(),
        interval / 1000,
        humantime::format_duration(span)
    );
    let t = Instant::now();
    // Ten minutes of every series per request, sent to both servers side by side.
    let window = (600_000 / interval).max(1);
    let bodies = bodies(&all, start, steps, interval, window);
    let (prom_write, pw_write) = (
        format!("http://{}/api/v1/write", prom.addr),
        format!("http://{pw}/api/v1/write"),
    );
    for body in &bodies {
        let (to_prom, to_pw) = tokio::join!(
            push(&client, &prom_write, body),
            push(&client, &pw_write, body)
        );
        to_prom.context("Prometheus refused a remote_write request")?;
        to_pw.context("pipewatch refused a remote_write request")?;
    }
    // Written once every size's samples are counted by both.
    for base in [prom.addr.as_str(), pw.as_str()] {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let mut n = 0;
            for size in &b.series {
                n += stored(&client, base, &format!("x_{size}"), end, span).await?;
                n += stored(&client, base, &format!("h_{size}_bucket"), end, span).await?;
            }
            if n == total {
                break;
            }
            if Instant::now() > deadline {
                bail!("{base} holds {n} of the {total} samples after 10 minutes");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    println!("  loaded in {:.1}s", t.elapsed().as_secs_f64());

    for &d in &b.durations {
        let q_start = end - d.as_millis() as i64 + interval;
        let step = ((end - q_start) / STEPS).max(interval);
        for &n in &b.series {
            for template in QUERIES {
                let query = template.replace("{N}", &n.to_string());
                let params = vec![
                    ("query", query.clone()),
                    ("start", secs(q_start)),
                    ("end", secs(end)),
                    ("step", secs(step)),
                ];
                // Warm-up (connections, caches), and the answers must agree.
                let (_, pv) = timed(&client, &prom.addr, &params).await?;
                let (_, wv) = timed(&client, &pw, &params).await?;
                same_answer(&query, &pv, &wv)?;
                let (mut ours, mut theirs) = (Vec::new(), Vec::new());
                for i in 0..b.iterations {
                    // Alternate who goes first, so neither always runs on a warmer machine.
                    if i % 2 == 0 {
                        theirs.push(timed(&client, &prom.addr, &params).await?.0);
                        ours.push(timed(&client, &pw, &params).await?.0);
                    } else {
                        ours.push(timed(&client, &pw, &params).await?.0);
                        theirs.push(timed(&client, &prom.addr, &params).await?.0);
                    }
                }
                let (p50, p95) = (percentile(&mut ours, 0.5), percentile(&mut ours, 0.95));
                let (r50, r95) = (percentile(&mut theirs, 0.5), percentile(&mut theirs, 0.95));
                println!(
                    "RESULT promql {query} | {n} series x {} | pipewatch p50 {p50:.2} ms p95 {p95:.2} ms | Prometheus p50 {r50:.2} ms p95 {r95:.2} ms | ratio p50 {:.2} p95 {:.2}",
                    humantime::format_duration(d),
                    p50 / r50,
                    p95 / r95
                );
            }
        }
    }
    drop(prom);
    let report = server.stop().await?;
    if report.samples_lost > 0 {
        bail!(
            "the pipewatch server lost {} samples at shutdown",
            report.samples_lost
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_size_has_n_counter_and_n_bucket_series_with_cumulative_buckets() {
        for n in [1, 7, 100] {
            let k = keys(n);
            assert_eq!(k.iter().filter(|s| s.metric == format!("x_{n}")).count(), n);
            assert_eq!(
                k.iter()
                    .filter(|s| s.metric == format!("h_{n}_bucket"))
                    .count(),
                n
            );
        }
        // Within one histogram, a larger bound never holds fewer observations; counters never
        // fall.
        let k = keys(100);
        let hist: Vec<(usize, &SeriesKey)> = k
            .iter()
            .enumerate()
            .filter(|(_, s)| s.metric == "h_100_bucket" && s.labels.get("instance") == Some("i3"))
            .collect();
        assert_eq!(hist.len(), 10);
        for i in [10, 500] {
            let vals: Vec<f64> = hist.iter().map(|(j, s)| value(s, *j, i)).collect();
            assert!(vals.windows(2).all(|w| w[0] <= w[1]), "{vals:?}");
        }
        let x = &k[5];
        assert!((0..1000).all(|i| value(x, 5, i) <= value(x, 5, i + 1)));
    }
}
