//! Nothing acknowledged is lost: the real `pipewatch` binary is stopped with SIGTERM while it
//! scrapes a large target and its writers hold a long flush interval, so samples are waiting in
//! the queue at the signal. Every sample that entered the queue must be in the database, once,
//! counted independently of the server's own counters: the test's target counts the scrapes it
//! served, and the database must hold exactly that many complete scrapes.

use pipewatch_tests::{get_text, pipewatch_bin, serve, Pipewatch};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn big_exposition(series: usize) -> String {
    let mut s = String::from("# TYPE load_test_value gauge\n");
    for i in 0..series {
        s.push_str(&format!(
            "load_test_value{{shard=\"{}\",i=\"{i}\"}} {}\n",
            i % 7,
            i as f64 * 0.5
        ));
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_load_drains_every_queued_sample() {
    const SERIES: i64 = 5_000;
    let body = big_exposition(SERIES as usize);
    // Scrapes answered with the exposition, and a switch that makes the target answer 503 from
    // then on, so the test knows exactly how many scrapes pipewatch received.
    let served = Arc::new(AtomicU64::new(0));
    let refusing = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicU64::new(0));
    let (s, r, rd) = (served.clone(), refusing.clone(), refused.clone());
    let target = serve(axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let b = body.clone();
            let (s, r, rd) = (s.clone(), r.clone(), rd.clone());
            async move {
                if r.load(Ordering::SeqCst) {
                    rd.fetch_add(1, Ordering::SeqCst);
                    return Err(axum::http::StatusCode::SERVICE_UNAVAILABLE);
                }
                s.fetch_add(1, Ordering::SeqCst);
                Ok(b)
            }
        }),
    ))
    .await;
    let url = store::testing::fresh_database_url().await;
    let dir = std::env::temp_dir().join(format!("pipewatch-shutdown-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let server = Pipewatch::start(
        &dir,
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[database]\nurl = \"{url}\"\n\
             [auth]\nanonymous_role = \"admin\"\n\
             [ingest]\nflush_interval = \"3s\"\nflush_idle = \"3s\"\nbatch_max_samples = 1000000\nqueue_capacity_samples = 2000000\n\
             [[scrape_configs]]\njob_name = \"load\"\nscrape_interval = \"200ms\"\nscrape_timeout = \"200ms\"\n\
             static_configs = [{{ targets = [\"{target}\"] }}]\n",
            dir.display()
        ),
        Stdio::null(),
    )
    .await;
    let addr = server.addr.clone();

    // Let several scrapes queue up, but signal before the 3 s flush: data is only in the queue.
    let started = Instant::now();
    let mut queued = 0.0;
    while started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let m = get_text(&format!("http://{addr}/metrics")).await;
        queued = m
            .lines()
            .find(|l| l.starts_with("pipewatch_ingest_queue_depth_samples "))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if queued >= 15_000.0 {
            break;
        }
    }
    assert!(
        queued >= 15_000.0,
        "expected a loaded queue before SIGTERM, saw {queued}"
    );
    // Stop serving data and wait for one refused scrape: scrapes of a target run one after
    // the other, so every successful one has been handed to the queue by then.
    refusing.store(true, Ordering::SeqCst);
    let wait = Instant::now();
    while refused.load(Ordering::SeqCst) == 0 && wait.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        refused.load(Ordering::SeqCst) > 0,
        "the target was not scraped again"
    );
    let scrapes_served = served.load(Ordering::SeqCst) as i64;
    let (exit, rest) = server.terminate();
    assert!(exit.success(), "pipewatch exited with {exit}");
    let report_line = rest
        .lines()
        .find_map(|l| l.strip_prefix("pipewatch stopped: "))
        .unwrap_or_else(|| panic!("no shutdown report in {rest:?}"));
    let report: serde_json::Value = serde_json::from_str(report_line).unwrap();
    let enqueued = report["samples_enqueued"].as_i64().unwrap();
    assert_eq!(report["samples_lost"], 0);
    assert!(enqueued as f64 >= queued);

    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    // Independent of the server's counters: what the target served, counted by the test.
    let (rows, distinct, scrapes): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT (series_id, ts)), count(DISTINCT ts) FROM samples \
         WHERE series_id IN (SELECT id FROM series WHERE metric = 'load_test_value')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (scrapes, rows),
        (scrapes_served, scrapes_served * SERIES),
        "every served scrape is stored whole: {scrapes_served} scrapes of {SERIES} series"
    );
    assert_eq!(distinct, rows, "no sample stored twice");
    let all_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM samples")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(all_rows, enqueued, "the server's own count agrees");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_config_stops_startup_naming_the_key() {
    let dir = std::env::temp_dir().join(format!("pipewatch-badcfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (text, needle) in [
        ("[ingest]\nwritters = 2\n", "writters"),
        ("[ingest]\nwriters = \"many\"\n", "ingest.writers"),
        (
            "[database]\nretention_days = 0\n",
            "database.retention_days",
        ),
        (
            "[[scrape_configs]]\njob_name = \"x\"\nscrape_interval = \"soon\"\n",
            "scrape_configs[0].scrape_interval",
        ),
        ("[server\nlisten = 1\n", "not valid TOML"),
    ] {
        let cfg = dir.join("bad.toml");
        std::fs::write(&cfg, text).unwrap();
        let out = Command::new(pipewatch_bin())
            .args(["--config", cfg.to_str().unwrap(), "serve"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{text:?} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(needle),
            "{text:?}: stderr {err:?} should name {needle:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
