//! What the Targets and Status pages show.

use crate::labels::Labels;
use crate::TimestampMs;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetState {
    Unknown,
    Up,
    Down,
}

/// Health of one scrape target, as of its last scrape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetHealth {
    pub job: String,
    pub url: String,
    pub labels: Labels,
    pub state: TargetState,
    pub last_scrape: Option<TimestampMs>,
    pub last_duration_seconds: Option<f64>,
    pub last_error: Option<String>,
    pub samples_scraped: u64,
    pub interval_seconds: f64,
    /// Labels as service discovery found the target, before `relabel_configs`
    /// (`__address__`, `__meta_*`, group labels); empty for fixed targets.
    #[serde(default)]
    pub discovered_labels: Labels,
    /// Current error of the service discovery that listed this target (file unreadable, HTTP
    /// endpoint failing, ...); its last good target list is still scraped.
    #[serde(default)]
    pub discovery_error: Option<String>,
}

/// What the Status page and `/api/v1/status` report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusInfo {
    pub version: String,
    /// `timescaledb` or `postgres`.
    pub storage_mode: String,
    pub database: String,
    pub series_count: i64,
    pub samples_written_total: u64,
    /// Samples per second written over the last minute.
    pub ingest_rate: f64,
    pub queue_depth: usize,
    pub queue_capacity: usize,
    pub started_at: TimestampMs,
    pub retention_days: u32,
    /// Samples refused at intake because they were older than the retention window.
    #[serde(default)]
    pub samples_refused_too_old: u64,
    /// Samples refused at intake because they were stamped too far in the future.
    #[serde(default)]
    pub samples_refused_too_new: u64,
}
