//! Runs one scrape loop per configured target and keeps each target's health for the Targets
//! page. Scraped batches go to the ingest queue with `push`, so a full queue slows scraping
//! down instead of dropping data.

use crate::ingest::IngestQueue;
use crate::telemetry::{SelfMetrics, TargetLabels};
use collectors::scrape::{ScrapeTarget, Scraper};
use model::{TargetHealth, TargetState};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Shared, read-mostly view of every target's last scrape.
#[derive(Clone, Default)]
pub struct TargetHealthBoard(Arc<RwLock<Vec<TargetHealth>>>);

impl TargetHealthBoard {
    pub fn snapshot(&self) -> Vec<TargetHealth> {
        self.0.read().expect("target board lock").clone()
    }

    fn update(&self, idx: usize, f: impl FnOnce(&mut TargetHealth)) {
        if let Some(t) = self.0.write().expect("target board lock").get_mut(idx) {
            f(t);
        }
    }
}

pub struct ScrapeManager {
    tasks: JoinSet<()>,
    stop: CancellationToken,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl ScrapeManager {
    pub fn start(
        targets: Vec<ScrapeTarget>,
        queue: IngestQueue,
        board: TargetHealthBoard,
        metrics: Arc<SelfMetrics>,
    ) -> Self {
        *board.0.write().expect("target board lock") = targets
            .iter()
            .map(|t| TargetHealth {
                job: t.job.clone(),
                url: t.url.clone(),
                labels: t.labels.clone(),
                state: TargetState::Unknown,
                last_scrape: None,
                last_duration_seconds: None,
                last_error: None,
                samples_scraped: 0,
                interval_seconds: t.interval.as_secs_f64(),
            })
            .collect();
        let stop = CancellationToken::new();
        let scraper = Arc::new(Scraper::new());
        let mut tasks = JoinSet::new();
        for (idx, target) in targets.into_iter().enumerate() {
            let ctx = Loop {
                idx,
                target,
                scraper: scraper.clone(),
                queue: queue.clone(),
                board: board.clone(),
                metrics: metrics.clone(),
                stop: stop.clone(),
            };
            tasks.spawn(ctx.run());
        }
        Self { tasks, stop }
    }

    /// Stops all loops; a scrape in flight finishes and its samples are queued first.
    pub async fn stop(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

struct Loop {
    idx: usize,
    target: ScrapeTarget,
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
            let started = now_ms();
            let outcome = self.scraper.scrape(&self.target, started).await;
            self.metrics.scrapes.get_or_create(&labels).inc();
            self.metrics
                .scrape_duration
                .get_or_create(&labels)
                .observe(outcome.duration.as_secs_f64());
            if !outcome.up {
                self.metrics.scrape_failures.get_or_create(&labels).inc();
                tracing::info!(job = %self.target.job, url = %self.target.url, error = ?outcome.error, "target down");
            }
            self.board.update(self.idx, |h| {
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

fn spread_offset(url: &str, interval: Duration) -> Duration {
    let h = xxhash(url);
    let ms = interval.as_millis().max(1) as u64;
    Duration::from_millis(h % ms)
}

fn xxhash(s: &str) -> u64 {
    // Any stable hash does; reuse the series-id hash rather than add a dependency.
    model::SeriesKey::new(s, model::Labels::new()).stable_id() as u64
}
