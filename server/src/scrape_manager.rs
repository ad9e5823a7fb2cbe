//! Runs one scrape loop per target and keeps each target's health for the Targets page.
//!
//! Targets come from the scrape jobs (static_configs, file_sd, http_sd, after
//! `relabel_configs`; see [`crate::discovery`]) and from fixed extras (the demo pipeline). When
//! a job's target set changes, loops of targets that left are stopped and loops of new targets
//! started; a target that stays keeps its loop. Scraped series pass through the job's
//! `metric_relabel_configs` before they are queued with `push`, so a full queue slows scraping
//! down instead of dropping data.

use crate::discovery::{self, ActiveTarget, JobSpec, JobTargets};
use crate::ingest::IngestQueue;
use crate::telemetry::{SelfMetrics, TargetLabels};
use collectors::relabel::{relabel_series, RelabelConfig};
use collectors::scrape::{ScrapeTarget, Scraper};
use model::{
    Batch, Labels, MetricMetadata, MetricType, Sample, SeriesKey, TargetHealth, TargetState,
    TimeSeries,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Shared, read-mostly view of every target's last scrape.
#[derive(Clone, Default)]
pub struct TargetHealthBoard(Arc<RwLock<BTreeMap<String, TargetHealth>>>);

impl TargetHealthBoard {
    /// Every active target, ordered by job then URL.
    pub fn snapshot(&self) -> Vec<TargetHealth> {
        self.0
            .read()
            .expect("target board lock")
            .values()
            .cloned()
            .collect()
    }

    fn update(&self, key: &str, f: impl FnOnce(&mut TargetHealth)) {
        if let Some(t) = self.0.write().expect("target board lock").get_mut(key) {
            f(t);
        }
    }

    fn insert(&self, key: String, health: TargetHealth) {
        self.0
            .write()
            .expect("target board lock")
            .insert(key, health);
    }

    fn remove(&self, key: &str) {
        self.0.write().expect("target board lock").remove(key);
    }
}

pub struct ScrapeManager {
    control: tokio::task::JoinHandle<()>,
    stop: CancellationToken,
}

/// Identity of a scrape loop: a target whose URL, labels, interval or timeout change is a new
/// target (Prometheus hashes labels and URL the same way).
fn target_key(t: &ScrapeTarget) -> String {
    format!(
        "{}\u{0}{}\u{0}{}\u{0}{:?}\u{0}{:?}",
        t.job, t.url, t.labels, t.interval, t.timeout
    )
}

struct RunningLoop {
    owner: String,
    stop: CancellationToken,
}

struct Control {
    scraper: Arc<Scraper>,
    queue: IngestQueue,
    board: TargetHealthBoard,
    metrics: Arc<SelfMetrics>,
    stop: CancellationToken,
    loops: JoinSet<()>,
    running: HashMap<String, RunningLoop>,
    metric_relabel: HashMap<String, Arc<Vec<RelabelConfig>>>,
}

/// Owner of the fixed extra targets; no job can be named with a NUL.
const FIXED_OWNER: &str = "\u{0}fixed";

impl ScrapeManager {
    /// Scrapes a fixed list of targets (no discovery, no relabelling).
    pub fn start(
        targets: Vec<ScrapeTarget>,
        queue: IngestQueue,
        board: TargetHealthBoard,
        metrics: Arc<SelfMetrics>,
    ) -> Self {
        Self::start_jobs(Vec::new(), targets, queue, board, metrics)
    }

    /// Scrapes the targets each job discovers, plus `fixed` targets.
    pub fn start_jobs(
        jobs: Vec<JobSpec>,
        fixed: Vec<ScrapeTarget>,
        queue: IngestQueue,
        board: TargetHealthBoard,
        metrics: Arc<SelfMetrics>,
    ) -> Self {
        let stop = CancellationToken::new();
        let mut control = Control {
            scraper: Arc::new(Scraper::new()),
            queue,
            board,
            metrics,
            stop: stop.clone(),
            loops: JoinSet::new(),
            running: HashMap::new(),
            metric_relabel: jobs
                .iter()
                .map(|j| {
                    (
                        j.defaults.job_name.clone(),
                        j.metric_relabel_configs.clone(),
                    )
                })
                .collect(),
        };
        control.apply(JobTargets {
            job: FIXED_OWNER.to_string(),
            active: fixed
                .into_iter()
                .map(|target| ActiveTarget {
                    target,
                    discovered: Labels::new(),
                    discovery_error: None,
                })
                .collect(),
            dropped: Vec::new(),
            errors: Vec::new(),
        });
        let (tx, rx) = mpsc::channel(jobs.len().max(1));
        let mut discoverers = JoinSet::new();
        for job in jobs {
            discoverers.spawn(discovery::run_job(job, tx.clone(), stop.child_token()));
        }
        drop(tx);
        let control = tokio::spawn(control.run(rx, discoverers));
        Self { control, stop }
    }

    /// Stops discovery and all loops; a scrape in flight finishes and its samples are queued
    /// first.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.control.await;
    }
}

impl Control {
    async fn run(mut self, mut rx: mpsc::Receiver<JobTargets>, mut discoverers: JoinSet<()>) {
        loop {
            tokio::select! {
                update = rx.recv() => match update {
                    Some(u) => self.apply(u),
                    // Every discoverer ended: only happens on stop.
                    None => { self.stop.cancelled().await; break; }
                },
                // Reap finished loops so stopped targets leave nothing behind.
                Some(_) = self.loops.join_next(), if !self.loops.is_empty() => {}
                _ = self.stop.cancelled() => break,
            }
        }
        while discoverers.join_next().await.is_some() {}
        for l in self.running.values() {
            l.stop.cancel();
        }
        while self.loops.join_next().await.is_some() {}
    }

    /// Makes the running loops of `update.job` match its new target set.
    fn apply(&mut self, update: JobTargets) {
        let owner = update.job.clone();
        if !update.errors.is_empty() || !update.dropped.is_empty() {
            tracing::info!(job = %owner, active = update.active.len(), dropped = update.dropped.len(), errors = ?update.errors, "discovered targets");
        }
        let mut wanted: HashMap<String, ActiveTarget> = HashMap::new();
        for a in update.active {
            wanted.insert(target_key(&a.target), a);
        }
        let gone: Vec<String> = self
            .running
            .iter()
            .filter(|(k, l)| l.owner == owner && !wanted.contains_key(*k))
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            if let Some(l) = self.running.remove(&key) {
                l.stop.cancel();
            }
            self.board.remove(&key);
        }
        for (key, a) in wanted {
            if self.running.contains_key(&key) {
                // Same target; only what discovery says about it may have changed.
                self.board.update(&key, |h| {
                    h.discovered_labels = a.discovered;
                    h.discovery_error = a.discovery_error;
                });
                continue;
            }
            self.board.insert(
                key.clone(),
                TargetHealth {
                    job: a.target.job.clone(),
                    url: a.target.url.clone(),
                    labels: a.target.labels.clone(),
                    state: TargetState::Unknown,
                    last_scrape: None,
                    last_duration_seconds: None,
                    last_error: None,
                    samples_scraped: 0,
                    interval_seconds: a.target.interval.as_secs_f64(),
                    discovered_labels: a.discovered,
                    discovery_error: a.discovery_error,
                },
            );
            let stop = self.stop.child_token();
            let ctx = Loop {
                key: key.clone(),
                metric_relabel: self
                    .metric_relabel
                    .get(&a.target.job)
                    .cloned()
                    .unwrap_or_default(),
                target: a.target,
                scraper: self.scraper.clone(),
                queue: self.queue.clone(),
                board: self.board.clone(),
                metrics: self.metrics.clone(),
                stop: stop.clone(),
            };
            self.loops.spawn(ctx.run());
            self.running.insert(
                key,
                RunningLoop {
                    owner: owner.clone(),
                    stop,
                },
            );
        }
    }
}

struct Loop {
    key: String,
    target: ScrapeTarget,
    metric_relabel: Arc<Vec<RelabelConfig>>,
    scraper: Arc<Scraper>,
    queue: IngestQueue,
    board: TargetHealthBoard,
    metrics: Arc<SelfMetrics>,
    stop: CancellationToken,
}

impl Loop {
    async fn run(self) {
        // Spread targets over the interval, as Prometheus does, so they do not all fire at once.
        let offset = spread_offset(&self.target.url, self.target.interval);
        let labels = TargetLabels {
            job: self.target.job.clone(),
            instance: self.target.instance(),
        };
        tokio::select! {
            _ = tokio::time::sleep(offset) => {}
            _ = self.stop.cancelled() => return,
        }
        let mut tick = tokio::time::interval(self.target.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.stop.cancelled() => return,
            }
            let started = model::clock::now_ms();
            let mut outcome = self.scraper.scrape(&self.target, started).await;
            self.metrics.scrapes.get_or_create(&labels).inc();
            self.metrics
                .scrape_duration
                .get_or_create(&labels)
                .observe(outcome.duration.as_secs_f64());
            if !outcome.up {
                self.metrics.scrape_failures.get_or_create(&labels).inc();
                tracing::info!(job = %self.target.job, url = %self.target.url, error = ?outcome.error, "target down");
            }
            if !self.metric_relabel.is_empty() {
                apply_metric_relabel(
                    &mut outcome.batch,
                    &self.target.target_labels(),
                    &self.metric_relabel,
                    started,
                );
            }
            self.board.update(&self.key, |h| {
                h.state = if outcome.up {
                    TargetState::Up
                } else {
                    TargetState::Down
                };
                h.last_scrape = Some(started);
                h.last_duration_seconds = Some(outcome.duration.as_secs_f64());
                h.last_error = outcome.error.clone();
                h.samples_scraped = outcome.samples_scraped as u64;
            });
            if self.queue.push(outcome.batch).await.is_err() {
                return; // shutting down
            }
        }
    }
}

/// Series the scraper adds for every scrape; Prometheus does not metric-relabel them.
const SYNTHETIC: [&str; 3] = ["up", "scrape_duration_seconds", "scrape_samples_scraped"];

/// Applies `metric_relabel_configs` to the scraped series of `batch` (not to the synthetic
/// ones), and adds Prometheus' `scrape_samples_post_metric_relabeling`.
fn apply_metric_relabel(
    batch: &mut Batch,
    target_labels: &Labels,
    rules: &[RelabelConfig],
    ts: model::TimestampMs,
) {
    let is_synthetic = |s: &TimeSeries| {
        SYNTHETIC.contains(&s.key.metric.as_str()) && &s.key.labels == target_labels
    };
    let mut kept_samples = 0usize;
    batch.series.retain_mut(|s| {
        if is_synthetic(s) {
            return true;
        }
        match relabel_series(&s.key, rules) {
            Some(key) => {
                s.key = key;
                kept_samples += s.samples.len();
                true
            }
            None => false,
        }
    });
    let name = "scrape_samples_post_metric_relabeling";
    batch.series.push(TimeSeries {
        key: SeriesKey::new(name, target_labels.clone()),
        metric_type: MetricType::Gauge,
        samples: vec![Sample {
            ts,
            value: kept_samples as f64,
        }],
    });
    batch.metadata.push(MetricMetadata {
        family: name.to_string(),
        metric_type: MetricType::Gauge,
        unit: String::new(),
        help: "Number of samples remaining after metric relabeling was applied.".to_string(),
    });
}

fn spread_offset(url: &str, interval: Duration) -> Duration {
    let h = xxhash(url);
    let ms = interval.as_millis().max(1) as u64;
    Duration::from_millis(h % ms)
}

fn xxhash(s: &str) -> u64 {
    // Any stable hash does; reuse the series-id hash rather than add a dependency.
    model::SeriesKey::new(s, model::Labels::new()).stable_id() as u64
}
