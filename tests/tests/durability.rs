//! Database outage: a client that retries as Prometheus' remote_write queue does keeps sending
//! while PostgreSQL is stopped for 30 s and started again. Afterwards every sample the client
//! was told succeeded (204) is stored, none twice, and nothing else is stored.
//!
//! The database is a private embedded cluster (not the shared test cluster) so it can be
//! stopped; pipewatch runs in-process on a free port and is reached over real HTTP.

use collectors::remote_write;
use model::{Batch, Labels, MetricType, Sample, SeriesKey, TimeSeries};
use server::config::Config;
use server::run::{RunningServer, ServeExtras};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SERIES: usize = 10;
const SAMPLES_PER_SERIES: usize = 10;
const OUTAGE: Duration = Duration::from_secs(30);

#[derive(Default)]
struct ClientLog {
    /// (series index, ts) of every sample in a request answered 204.
    acked: Vec<(usize, i64)>,
    statuses: BTreeMap<u16, u64>,
    transport_errors: u64,
}

/// One request: SERIES series with SAMPLES_PER_SERIES samples each; timestamps never repeat.
fn request(seq: i64, t0: i64) -> (Batch, Vec<(usize, i64)>) {
    let mut ids = Vec::new();
    let series = (0..SERIES)
        .map(|i| TimeSeries {
            key: SeriesKey::new(
                "durability_probe",
                Labels::from_pairs([("series", i.to_string())]),
            ),
            metric_type: MetricType::Gauge,
            samples: (0..SAMPLES_PER_SERIES as i64)
                .map(|k| {
                    let ts = t0 + seq * SAMPLES_PER_SERIES as i64 + k;
                    ids.push((i, ts));
                    Sample {
                        ts,
                        value: (seq * 100 + k) as f64,
                    }
                })
                .collect(),
        })
        .collect();
    (
        Batch {
            series,
            metadata: vec![],
        },
        ids,
    )
}

/// Sends requests one after another, resending each until it is answered 2xx, backing off as
/// Prometheus does (30 ms doubling to 5 s, or the server's Retry-After) on 5xx, 429 and
/// connection errors. Prometheus drops a batch on any other 4xx; none may occur here.
async fn prometheus_like_client(url: String, stop: Arc<AtomicBool>, log: Arc<Mutex<ClientLog>>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let t0 = pipewatch_tests::now_ms() - 3_600_000;
    let mut seq = 0i64;
    while !stop.load(Ordering::Relaxed) {
        let (batch, ids) = request(seq, t0);
        let body = remote_write::encode(&batch);
        let mut backoff = Duration::from_millis(30);
        loop {
            let sent = http
                .post(&url)
                .header("content-encoding", "snappy")
                .header("content-type", "application/x-protobuf")
                .header("x-prometheus-remote-write-version", "0.1.0")
                .body(body.clone())
                .send()
                .await;
            let wait = match sent {
                Ok(resp) => {
                    let code = resp.status().as_u16();
                    *log.lock().unwrap().statuses.entry(code).or_default() += 1;
                    if resp.status().is_success() {
                        log.lock().unwrap().acked.extend(ids.iter().copied());
                        break;
                    }
                    assert!(
                        code >= 500 || code == 429,
                        "status {code} would make Prometheus drop the batch: {}",
                        resp.text().await.unwrap_or_default()
                    );
                    resp.headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                        .map(Duration::from_secs)
                        .unwrap_or(backoff)
                }
                Err(_) => {
                    log.lock().unwrap().transport_errors += 1;
                    backoff
                }
            };
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        seq += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_samples_survive_a_30s_database_outage_exactly_once() {
    let dir = std::env::temp_dir().join(format!("pipewatch-durability-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let pg = store::embedded::EmbeddedPostgres::start(&dir)
        .await
        .expect("start a private PostgreSQL");
    let db_url = pg.url();

    let mut cfg = Config::default();
    cfg.database.url = db_url.clone();
    cfg.server.listen = "127.0.0.1:0".parse().unwrap();
    // Small enough that the outage fills it and senders get 503 + Retry-After.
    cfg.ingest.queue_capacity_samples = 20_000;
    cfg.ingest.batch_max_samples = 2_000;
    cfg.ingest.flush_interval = Duration::from_millis(200);
    cfg.server.shutdown_timeout = Duration::from_secs(60);
    let server = RunningServer::start(cfg, ServeExtras::default())
        .await
        .expect("pipewatch starts");
    let write_url = format!("http://{}/api/v1/write", server.addr);

    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(ClientLog::default()));
    let client = tokio::spawn(prometheus_like_client(write_url, stop.clone(), log.clone()));

    tokio::time::sleep(Duration::from_secs(3)).await;
    let before_outage = log.lock().unwrap().acked.len();
    assert!(before_outage > 0, "nothing was accepted before the outage");
    pg.stop().await.expect("stop PostgreSQL");
    let outage_started = Instant::now();
    tokio::time::sleep(OUTAGE).await;
    let during = log.lock().unwrap().statuses.clone();
    let pg = store::embedded::EmbeddedPostgres::start(&dir)
        .await
        .expect("restart PostgreSQL");
    assert_eq!(pg.url(), db_url, "the restarted cluster must keep its port");
    let outage = outage_started.elapsed();

    // Keep sending after the restart, then stop the client between requests.
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);
    tokio::time::timeout(Duration::from_secs(90), client)
        .await
        .expect("the client finishes its last request once the server recovered")
        .unwrap();
    let report = server.stop().await.expect("orderly shutdown");

    // The client has finished: take its log out of the mutex.
    let log = std::mem::take(&mut *log.lock().unwrap());
    assert!(
        during.keys().any(|c| *c == 503),
        "the outage never filled the queue (statuses {during:?}); the test did not test backpressure"
    );
    assert_eq!(report.samples_lost, 0, "{report:?}");

    // Per (series, timestamp): how many rows hold it, fresh or compacted.
    let mut copies: std::collections::BTreeMap<(String, i64), i64> = Default::default();
    for (metric, labels, ts, _) in pipewatch_tests::stored_rows(&db_url).await {
        if metric == "durability_probe" {
            let labels: serde_json::Value = serde_json::from_str(&labels).unwrap();
            let series = labels["series"].as_str().unwrap().to_string();
            *copies.entry((series, ts)).or_default() += 1;
        }
    }
    let rows: Vec<(String, i64, i64)> = copies.into_iter().map(|((s, t), n)| (s, t, n)).collect();
    let twice: Vec<_> = rows.iter().filter(|r| r.2 > 1).take(5).collect();
    assert!(twice.is_empty(), "samples stored more than once: {twice:?}");
    let mut stored: Vec<(usize, i64)> = rows
        .iter()
        .map(|(s, ts, _)| (s.parse().unwrap(), *ts))
        .collect();
    stored.sort_unstable();
    let mut acked = log.acked.clone();
    acked.sort_unstable();
    let missing = acked
        .iter()
        .filter(|a| stored.binary_search(a).is_err())
        .count();
    assert_eq!(missing, 0, "{missing} acknowledged samples are not stored");
    assert_eq!(
        stored.len(),
        acked.len(),
        "stored samples nobody was told were accepted"
    );
    println!(
        "outage {:.1}s: {} samples acknowledged ({} before the outage), statuses {:?}, {} connection errors, report {:?}",
        outage.as_secs_f64(),
        acked.len(),
        before_outage,
        log.statuses,
        log.transport_errors,
        report
    );
    pg.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
