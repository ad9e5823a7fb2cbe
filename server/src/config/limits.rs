//! `[limits]`: what every push receiver refuses per series (label counts and lengths, the
//! new-series brakes) and per sample (timestamps too far in the future).

use super::duration;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Limits every push receiver applies to the series it is sent (`[limits]`). Series over a
/// limit are refused with a 4xx naming the limit; the rest of the request is stored. 0 turns a
/// limit off.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Labels per series, not counting the metric name.
    pub max_labels_per_series: usize,
    /// Bytes in a label name (or metric name).
    pub max_label_name_length: usize,
    /// Bytes in a label value.
    pub max_label_value_length: usize,
    /// Series a metric may gain per minute (a cardinality-explosion brake).
    pub max_new_series_per_metric_per_minute: usize,
    /// Series all metrics together may gain per minute: the per-metric brake alone lets a
    /// sender spread an explosion over many metric names.
    pub max_new_series_per_minute: usize,
    /// How far ahead of this server's clock a sample's timestamp may be; later samples are
    /// refused at intake like samples older than `database.retention_days`. "0s" turns the
    /// check off, like 0 for the other limits.
    #[serde(with = "duration")]
    pub future_tolerance: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_labels_per_series: 64,
            max_label_name_length: 1024,
            max_label_value_length: 4096,
            max_new_series_per_metric_per_minute: 10_000,
            max_new_series_per_minute: 100_000,
            // Mimir's and Loki's creation grace period: enough for skewed clocks and batching
            // delays, far less than a wrong unit (seconds as milliseconds) or a wrong year.
            future_tolerance: Duration::from_secs(600),
        }
    }
}
