//! `[limits]`: what every push receiver refuses per series (label counts and lengths, the
//! new-series brakes), per sample (timestamps too far in the future), and how much of a span,
//! log record or alert is kept (counts and bytes of attributes, events, bodies, alert labels and
//! annotations).

use super::duration;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Limits every push receiver applies to the series it is sent (`[limits]`). Series over a
/// limit are refused with a 4xx naming the limit; the rest of the request is stored. 0 turns a
/// limit off.
///
/// The evidence and annotation limits cut rather than refuse: a failed span is the evidence
/// of a failure, so it is kept, with every cut value or list marked as truncated (the value
/// ends in `… (N bytes)`, a list or map gains an entry saying how many items were dropped and
/// by which limit). Alert labels are the alert's identity and are never cut: an alert over
/// `max_alert_labels` or the label length limits is refused with 400.
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
    /// Entries kept per attribute map of a span or log record (span, resource, event and link
    /// attributes).
    pub max_evidence_attributes: usize,
    /// Events and links kept per span.
    pub max_evidence_events: usize,
    /// Bytes kept of one text value of a span or log record (attribute values, status
    /// message, exception stack trace).
    pub max_evidence_value_bytes: usize,
    /// Bytes of one stored span or log record as a whole (its JSON detail); the largest parts
    /// are replaced by a note when the cut values still add up to more.
    pub max_evidence_bytes: usize,
    /// Bytes kept of a log record's body.
    pub max_log_body_bytes: usize,
    /// Labels per Alertmanager alert; alerts with more are refused.
    pub max_alert_labels: usize,
    /// Annotations kept per alert.
    pub max_alert_annotations: usize,
    /// Bytes kept of one annotation value.
    pub max_alert_annotation_bytes: usize,
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
            max_evidence_attributes: 128,
            max_evidence_events: 128,
            max_evidence_value_bytes: 16 * 1024,
            max_evidence_bytes: 256 * 1024,
            max_log_body_bytes: 64 * 1024,
            max_alert_labels: 64,
            max_alert_annotations: 64,
            max_alert_annotation_bytes: 16 * 1024,
        }
    }
}

impl LimitsConfig {
    /// How much of a span's or log record's JSON detail is kept.
    pub fn evidence_budget(&self) -> model::clip::JsonBudget {
        model::clip::JsonBudget {
            max_entries: self.max_evidence_attributes,
            entries_limit: "limits.max_evidence_attributes",
            max_items: self.max_evidence_events,
            items_limit: "limits.max_evidence_events",
            max_string_bytes: self.max_evidence_value_bytes,
            max_total_bytes: self.max_evidence_bytes,
            total_limit: "limits.max_evidence_bytes",
        }
    }
}
