//! pipewatch's own metrics, served on `/metrics`.
//!
//! Internal events are methods here (`batch_written`, `scrape_finished`, ...) that both log and
//! count, so logs and self-metrics never disagree.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    pub job: String,
    pub instance: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

pub struct SelfMetrics {
    registry: Registry,
    pub samples_enqueued: Counter,
    pub samples_rejected: Family<ReasonLabels, Counter>,
    pub samples_written: Counter,
    pub batches_written: Counter,
    pub write_errors: Counter,
    pub series_created: Counter,
    pub queue_depth: Gauge,
    pub queue_capacity: Gauge,
    pub write_duration: Histogram,
    pub scrapes: Family<TargetLabels, Counter>,
    pub scrape_failures: Family<TargetLabels, Counter>,
    pub scrape_duration: Family<TargetLabels, Histogram>,
    written_total: AtomicU64,
    rate_window: Mutex<std::collections::VecDeque<(Instant, u64)>>,
}

impl SelfMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("pipewatch");
        let samples_enqueued = Counter::default();
        let samples_rejected = Family::<ReasonLabels, Counter>::default();
        let samples_written = Counter::default();
        let batches_written = Counter::default();
        let write_errors = Counter::default();
        let series_created = Counter::default();
        let queue_depth = Gauge::default();
        let queue_capacity = Gauge::default();
        let write_duration = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        let scrapes = Family::<TargetLabels, Counter>::default();
        let scrape_failures = Family::<TargetLabels, Counter>::default();
        let scrape_duration = Family::<TargetLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        });
        registry.register(
            "ingest_samples_enqueued",
            "Samples accepted into the ingest queue",
            samples_enqueued.clone(),
        );
        registry.register(
            "ingest_samples_rejected",
            "Samples refused at the ingest queue, by reason",
            samples_rejected.clone(),
        );
        registry.register(
            "ingest_samples_written",
            "Samples committed to the database",
            samples_written.clone(),
        );
        registry.register(
            "ingest_batches_written",
            "COPY batches committed to the database",
            batches_written.clone(),
        );
        registry.register(
            "ingest_write_errors",
            "Failed batch writes (retried)",
            write_errors.clone(),
        );
        registry.register(
            "ingest_series_created",
            "New series registered",
            series_created.clone(),
        );
        registry.register(
            "ingest_queue_depth_samples",
            "Samples waiting in the ingest queue",
            queue_depth.clone(),
        );
        registry.register(
            "ingest_queue_capacity_samples",
            "Capacity of the ingest queue",
            queue_capacity.clone(),
        );
        registry.register_with_unit(
            "ingest_write_duration",
            "Duration of one batch write (COPY and commit)",
            Unit::Seconds,
            write_duration.clone(),
        );
        registry.register("scrapes", "Scrapes attempted, per target", scrapes.clone());
        registry.register(
            "scrape_failures",
            "Scrapes that marked the target down",
            scrape_failures.clone(),
        );
        registry.register_with_unit(
            "scrape_duration",
            "Scrape duration per target",
            Unit::Seconds,
            scrape_duration.clone(),
        );
        Self {
            registry,
            samples_enqueued,
            samples_rejected,
            samples_written,
            batches_written,
            write_errors,
            series_created,
            queue_depth,
            queue_capacity,
            write_duration,
            scrapes,
            scrape_failures,
            scrape_duration,
            written_total: AtomicU64::new(0),
            rate_window: Mutex::new(Default::default()),
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    pub fn batch_written(&self, rows: u64, new_series: u64, elapsed: Duration) {
        self.samples_written.inc_by(rows);
        self.batches_written.inc();
        self.series_created.inc_by(new_series);
        self.write_duration.observe(elapsed.as_secs_f64());
        self.written_total.fetch_add(rows, Ordering::Relaxed);
        tracing::debug!(
            rows,
            new_series,
            elapsed_ms = elapsed.as_millis() as u64,
            "batch written"
        );
    }

    pub fn write_failed(&self, rows: u64, attempt: u32, error: &dyn std::fmt::Display) {
        self.write_errors.inc();
        tracing::warn!(rows, attempt, %error, "batch write failed; retrying");
    }

    pub fn rejected(&self, reason: &str, samples: u64) {
        self.samples_rejected
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc_by(samples);
    }

    pub fn samples_written_total(&self) -> u64 {
        self.written_total.load(Ordering::Relaxed)
    }

    /// Samples per second written over roughly the last minute. Called by the status page; each
    /// call records a point, so the window is as fine as the calls are frequent (the server also
    /// samples it every 10 s).
    pub fn ingest_rate(&self) -> f64 {
        let now = Instant::now();
        let total = self.samples_written_total();
        let mut w = self.rate_window.lock().expect("rate window lock");
        w.push_back((now, total));
        while w.len() > 2 && now.duration_since(w[0].0) > Duration::from_secs(60) {
            w.pop_front();
        }
        let (t0, c0) = w[0];
        let secs = now.duration_since(t0).as_secs_f64();
        if secs < 0.5 {
            return 0.0;
        }
        (total - c0) as f64 / secs
    }
}

impl Default for SelfMetrics {
    fn default() -> Self {
        Self::new()
    }
}
