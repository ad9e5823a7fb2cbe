//! `[limits]`: what every push receiver refuses per series (label counts and lengths, the
//! new-series brake).

use serde::{Deserialize, Serialize};

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
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_labels_per_series: 64,
            max_label_name_length: 1024,
            max_label_value_length: 4096,
            max_new_series_per_metric_per_minute: 10_000,
        }
    }
}
