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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReceiverLabels {
    /// `remote_write`, ...
    pub receiver: String,
    /// HTTP status answered.
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GuardLabels {
    pub receiver: String,
    /// Why: `missing_token`, `invalid_token`, `token_not_allowed`, or the limit's config key.
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
    pub queue_depth_bytes: Gauge,
    pub queue_capacity_bytes: Gauge,
    pub write_duration: Histogram,
    pub scrapes: Family<TargetLabels, Counter>,
    pub scrape_failures: Family<TargetLabels, Counter>,
    pub scrape_duration: Family<TargetLabels, Histogram>,
    written_total: AtomicU64,
    rate_window: Mutex<std::collections::VecDeque<(Instant, u64)>>,
    pub receiver_requests: Family<ReceiverLabels, Counter>,
    pub receiver_exemplars_dropped: Counter,
    pub receiver_auth_failures: Family<GuardLabels, Counter>,
    pub receiver_series_refused: Family<GuardLabels, Counter>,
    /// The analysis jobs' `pipewatch_analysis_*` metrics.
    pub analysis: crate::analysis::AnalysisMetrics,
    /// The store's maintenance: `pipewatch_storage_*` metrics.
    pub maintenance: crate::maintenance_metrics::MaintenanceMetrics,
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
        let queue_depth_bytes = Gauge::default();
        let queue_capacity_bytes = Gauge::default();
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
        registry.register(
            "ingest_queue_depth_bytes",
            "Estimated heap bytes of what waits in the ingest queue (see ingest.queue_max_bytes)",
            queue_depth_bytes.clone(),
        );
        registry.register(
            "ingest_queue_capacity_bytes",
            "Bound on the ingest queue's estimated heap bytes (ingest.queue_max_bytes)",
            queue_capacity_bytes.clone(),
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
        let receiver_requests = Family::<ReceiverLabels, Counter>::default();
        let receiver_exemplars_dropped = Counter::default();
        registry.register(
            "receiver_requests",
            "Push requests (remote_write, ...) by receiver and answered HTTP status",
            receiver_requests.clone(),
        );
        registry.register(
            "receiver_exemplars_dropped",
            "Exemplars received and not stored (the store keeps no exemplars yet)",
            receiver_exemplars_dropped.clone(),
        );
        let receiver_auth_failures = Family::<GuardLabels, Counter>::default();
        let receiver_series_refused = Family::<GuardLabels, Counter>::default();
        registry.register(
            "receiver_auth_failures",
            "Push requests refused with 401/403 by receiver and reason",
            receiver_auth_failures.clone(),
        );
        registry.register(
            "receiver_series_refused",
            "Series refused by a [limits] limit, by receiver and limit (config key)",
            receiver_series_refused.clone(),
        );
        let analysis = crate::analysis::AnalysisMetrics::new();
        analysis.register(&mut registry);
        let maintenance = crate::maintenance_metrics::MaintenanceMetrics::default();
        maintenance.register(&mut registry);
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
            queue_depth_bytes,
            queue_capacity_bytes,
            write_duration,
            scrapes,
            scrape_failures,
            scrape_duration,
            written_total: AtomicU64::new(0),
            rate_window: Mutex::new(Default::default()),
            receiver_requests,
            receiver_exemplars_dropped,
            receiver_auth_failures,
            receiver_series_refused,
            analysis,
            maintenance,
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

    /// Samples counted under `reason` by [`Self::rejected`] so far.
    pub fn rejected_total(&self, reason: &str) -> u64 {
        self.samples_rejected
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .get()
    }

    /// A push request was answered: counts it by status, and logs refusals with their reason
    /// (never the body or credentials).
    pub fn receiver_answered(&self, receiver: &str, code: u16, error: Option<&str>) {
        self.receiver_requests
            .get_or_create(&ReceiverLabels {
                receiver: receiver.to_string(),
                code: code.to_string(),
            })
            .inc();
        if let Some(error) = error {
            if code >= 500 || code == 429 {
                tracing::warn!(receiver, code, %error, "push request refused");
            } else {
                tracing::info!(receiver, code, %error, "push request refused");
            }
        }
    }

    pub fn samples_written_total(&self) -> u64 {
        self.written_total.load(Ordering::Relaxed)
    }

    /// Records the written-samples total for [`Self::ingest_rate`]; the server calls this every
    /// few seconds, and points older than a minute are dropped.
    pub fn record_rate_point(&self) {
        let now = Instant::now();
        let mut w = self.rate_window.lock().expect("rate window lock");
        w.push_back((now, self.samples_written_total()));
        while w.len() > 1 && now.duration_since(w[0].0) > Duration::from_secs(60) {
            w.pop_front();
        }
    }

    /// Samples per second written over roughly the last minute (0 until a point is recorded).
    pub fn ingest_rate(&self) -> f64 {
        let w = self.rate_window.lock().expect("rate window lock");
        let Some(&(t0, c0)) = w.front() else {
            return 0.0;
        };
        let secs = t0.elapsed().as_secs_f64();
        if secs < 0.5 {
            return 0.0;
        }
        self.samples_written_total().saturating_sub(c0) as f64 / secs
    }
}

impl Default for SelfMetrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_rate_is_written_samples_over_the_window() {
        let m = SelfMetrics::new();
        assert_eq!(m.ingest_rate(), 0.0, "no point recorded yet");
        m.record_rate_point();
        m.batch_written(1_000, 0, Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(600));
        let rate = m.ingest_rate();
        // 1000 samples over ~0.6 s (a slow machine makes it longer, never shorter).
        assert!(rate > 100.0 && rate <= 1_000.0 / 0.6, "{rate}");
    }

    #[test]
    fn exposition_names_follow_prometheus_conventions() {
        let m = SelfMetrics::new();
        m.batch_written(5, 1, Duration::from_millis(3));
        let text = m.encode();
        assert!(
            text.contains("pipewatch_ingest_samples_written_total 5"),
            "{text}"
        );
        assert!(
            text.contains("# UNIT pipewatch_ingest_write_duration_seconds seconds"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
