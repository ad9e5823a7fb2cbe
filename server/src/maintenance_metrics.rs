//! Self-metrics of the store's maintenance (rollups, compaction, retention), so an operator
//! sees its progress — how much it compacted, how far behind its watermarks are, whether it
//! fails — without reading debug logs.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

#[derive(Debug)]
pub struct MaintenanceMetrics {
    pub runs: Counter,
    pub failures: Counter,
    pub duration: Histogram,
    pub compacted_samples: Counter,
    pub compaction_steps: Counter,
    pub chunks_written: Counter,
    pub rollup_rows: Counter,
    pub expired_rows: Counter,
    /// Unix seconds below which every hour is compacted (0 before the first compaction).
    pub compaction_watermark: Gauge,
    pub rollup_watermark: Gauge,
}

impl Default for MaintenanceMetrics {
    fn default() -> Self {
        Self {
            runs: Counter::default(),
            failures: Counter::default(),
            duration: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
            compacted_samples: Counter::default(),
            compaction_steps: Counter::default(),
            chunks_written: Counter::default(),
            rollup_rows: Counter::default(),
            expired_rows: Counter::default(),
            compaction_watermark: Gauge::default(),
            rollup_watermark: Gauge::default(),
        }
    }
}

impl MaintenanceMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "storage_maintenance_runs",
            "Maintenance rounds finished (rollups, compaction, retention)",
            self.runs.clone(),
        );
        registry.register(
            "storage_maintenance_failures",
            "Maintenance rounds that failed (retried at the next interval; see the warning log)",
            self.failures.clone(),
        );
        registry.register_with_unit(
            "storage_maintenance_duration",
            "Duration of one maintenance round",
            Unit::Seconds,
            self.duration.clone(),
        );
        registry.register(
            "storage_compacted_samples",
            "Fresh sample rows moved into compressed chunks (re-sent duplicates included)",
            self.compacted_samples.clone(),
        );
        registry.register(
            "storage_compaction_steps",
            "Compaction steps committed (one hour, or a slice of one hour's series)",
            self.compaction_steps.clone(),
        );
        registry.register(
            "storage_chunks_written",
            "Compressed per-series hour chunks written or rewritten",
            self.chunks_written.clone(),
        );
        registry.register(
            "storage_rollup_rows",
            "Minute and hour rollup rows (re)written",
            self.rollup_rows.clone(),
        );
        registry.register(
            "storage_expired_rows",
            "Rows deleted by retention (dropped partitions not counted)",
            self.expired_rows.clone(),
        );
        registry.register_with_unit(
            "storage_compaction_watermark",
            "Unix time before which every hour of samples is compacted",
            Unit::Seconds,
            self.compaction_watermark.clone(),
        );
        registry.register_with_unit(
            "storage_rollup_watermark",
            "Unix time before which every hour of samples is rolled up (whole hours; minute buckets are computed on read in plain mode)",
            Unit::Seconds,
            self.rollup_watermark.clone(),
        );
    }

    /// Records a finished round.
    pub fn finished(&self, r: &store::MaintenanceReport) {
        self.runs.inc();
        self.duration.observe(r.elapsed.as_secs_f64());
        self.compacted_samples.inc_by(r.compaction.rows);
        self.compaction_steps.inc_by(r.compaction.steps);
        self.chunks_written.inc_by(r.compaction.chunks);
        self.rollup_rows.inc_by(r.rollup_1m_rows + r.rollup_1h_rows);
        self.expired_rows.inc_by(r.expired_rows);
        if let Some(w) = r.compaction.watermark {
            self.compaction_watermark.set(w.div_euclid(1000));
        }
        if let Some(w) = r.watermark_1m {
            self.rollup_watermark.set(w.div_euclid(1000));
        }
    }
}
