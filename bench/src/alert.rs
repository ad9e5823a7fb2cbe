//! `pipewatch bench alert`: how long from the sample that breaks a rule being accepted (the
//! remote_write answer) to the notification being received, at an SMTP server and at a JSON
//! webhook, over repeated trials, as a ratio to the evaluation interval (the anchor: a rule
//! cannot be seen to break sooner than its next evaluation, so one interval is the floor's
//! scale and the aim is p95 <= 2 intervals).
//!
//! Everything runs on loopback: a pipewatch server in this process over a fresh database, a
//! small SMTP receiver (enough of RFC 5321 for lettre: greeting, EHLO, MAIL, RCPT, DATA, QUIT)
//! and an HTTP receiver. Each trial breaks the rule for a label set of its own
//! (`group_by = ["..."]`, `group_wait = 0s`) at a random point of the evaluation cycle, waits
//! for both messages, then clears it.

use anyhow::{bail, Context, Result};
use rand::{Rng, SeedableRng};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// What `pipewatch bench alert` takes.
#[derive(Debug, Clone)]
pub struct AlertBench {
    pub trials: usize,
    pub interval: Duration,
}

/// Subjects (SMTP) or bodies (webhook) received, with when.
type Received = Arc<Mutex<Vec<(Instant, String)>>>;

/// A minimal SMTP receiver: records each message's Subject with its arrival time.
async fn smtp_receiver(got: Received) -> Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let got = got.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220 bench ESMTP\r\n").await;
                let mut in_data = false;
                let mut subject = String::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line == "." {
                            in_data = false;
                            got.lock()
                                .unwrap()
                                .push((Instant::now(), std::mem::take(&mut subject)));
                            let _ = w.write_all(b"250 OK\r\n").await;
                        } else if let Some(s) = line.strip_prefix("Subject: ") {
                            subject = s.to_string();
                        }
                        continue;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let answer: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-bench\r\n250 8BITMIME\r\n",
                        "DATA" => {
                            in_data = true;
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => b"250 OK\r\n",
                    };
                    let _ = w.write_all(answer).await;
                }
            });
        }
    });
    Ok(port)
}

async fn webhook_receiver(got: Received) -> Result<std::net::SocketAddr> {
    use axum::routing::post;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let router = axum::Router::new().route(
        "/hook",
        post(move |body: String| {
            let got = got.clone();
            async move {
                got.lock().unwrap().push((Instant::now(), body));
                axum::http::StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(addr)
}

async fn write(http: &reqwest::Client, base: &str, trial: usize, value: f64) -> Result<()> {
    let batch = model::Batch {
        series: vec![model::TimeSeries {
            key: model::SeriesKey::new(
                "bench_alert_value",
                model::Labels::from_pairs([("trial", trial.to_string())]),
            ),
            metric_type: model::MetricType::Gauge,
            samples: vec![model::Sample {
                ts: model::clock::now_ms(),
                value,
            }],
        }],
        metadata: Vec::new(),
    };
    let resp = http
        .post(format!("{base}/api/v1/write"))
        .header("content-encoding", "snappy")
        .header("content-type", "application/x-protobuf")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .body(collectors::remote_write::encode(&batch))
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("remote_write answered {}", resp.status());
    }
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs the benchmark against a fresh database next to `base_url`.
pub async fn run(base_url: &str, b: &AlertBench) -> Result<()> {
    let url = crate::database_url(base_url, "pipewatch_bench_alert", true).await?;
    let mails: Received = Arc::default();
    let hooks: Received = Arc::default();
    let smtp_port = smtp_receiver(mails.clone()).await?;
    let hook = webhook_receiver(hooks.clone()).await?;
    let dir = std::env::temp_dir().join(format!("pipewatch-bench-alert-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let rules = dir.join("bench.rules.yml");
    std::fs::write(
        &rules,
        "groups:\n- name: bench\n  rules:\n  - alert: BenchBroken\n    expr: bench_alert_value > 10\n",
    )?;
    let interval = humantime::format_duration(b.interval).to_string();
    let mut cfg = server::config::Config::from_toml_str(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{d}\"\n[database]\nurl = \"{url}\"\n\
         [auth]\nanonymous_role = \"admin\"\n\
         [ingest]\nflush_interval = \"50ms\"\n\
         [notifications]\npoll_interval = \"100ms\"\n\
         [notifications.channels.mail]\ntype = \"email\"\nsmtp_host = \"127.0.0.1\"\n\
         smtp_port = {smtp_port}\ntls = \"none\"\nfrom = \"pipewatch@example.com\"\n\
         to = [\"oncall@example.com\"]\n\
         [notifications.channels.hook]\ntype = \"webhook\"\nurl = \"http://{hook}/hook\"\n\
         [alerting]\nevaluation_interval = \"{interval}\"\ngroup_by = [\"...\"]\n\
         group_wait = \"0s\"\ngroup_interval = \"{interval}\"\nchannels = [\"mail\", \"hook\"]\n",
        d = dir.display()
    ))?;
    cfg.alerting.rule_files = vec![rules.display().to_string()];
    let server = server::run::RunningServer::start(cfg, Default::default()).await?;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    println!(
        "bench alert: {} trials, evaluation interval {interval}, one notification group per trial",
        b.trials
    );
    let (mut to_mail, mut to_hook) = (Vec::new(), Vec::new());
    let timeout = b.interval * 10 + Duration::from_secs(20);
    // Trials start at a random point of the evaluation cycle: started right after the last
    // notice, each would land just after an evaluation and always wait a whole interval.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for trial in 0..b.trials {
        let tag = format!("trial={trial}");
        let phase = rng.gen_range(0..b.interval.as_millis().max(1) as u64);
        tokio::time::sleep(Duration::from_millis(phase)).await;
        write(&http, &base, trial, 50.0).await?;
        let accepted = Instant::now();
        let started = Instant::now();
        let (mut m, mut h) = (None, None);
        while m.is_none() || h.is_none() {
            if started.elapsed() > timeout {
                bail!(
                    "trial {trial}: no notification within {timeout:?} (mail {m:?}, webhook {h:?})"
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            m = m.or_else(|| {
                mails
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|(_, s)| s.starts_with("[FIRING]") && s.contains(&tag))
                    .map(|(t, _)| *t)
            });
            h = h.or_else(|| {
                hooks
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|(_, s)| {
                        s.contains("\"firing\"") && s.contains(&format!("\"trial\":\"{trial}\""))
                    })
                    .map(|(t, _)| *t)
            });
        }
        let (m, h) = (
            m.context("mail")?.duration_since(accepted).as_secs_f64(),
            h.context("webhook")?.duration_since(accepted).as_secs_f64(),
        );
        println!(
            "  trial {}: started {phase} ms into the cycle; SMTP {m:.3} s, webhook {h:.3} s",
            trial + 1
        );
        to_mail.push(m);
        to_hook.push(h);
        write(&http, &base, trial, 0.0).await?;
    }
    server.stop().await?;
    let _ = std::fs::remove_dir_all(&dir);
    let iv = b.interval.as_secs_f64();
    for (name, v) in [("SMTP", &mut to_mail), ("webhook", &mut to_hook)] {
        v.sort_by(f64::total_cmp);
        let (p50, p95) = (percentile(v, 0.5), percentile(v, 0.95));
        println!(
            "RESULT alert {name}: p50 {p50:.3} s, p95 {p95:.3} s | evaluation interval {iv:.3} s | p50 {:.2} intervals, p95 {:.2} intervals (aim: p95 <= 2)",
            p50 / iv,
            p95 / iv
        );
    }
    Ok(())
}
