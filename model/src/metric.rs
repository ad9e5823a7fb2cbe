//! Samples, series and metric metadata: what collectors produce and the store writes.

use crate::labels::SeriesKey;
use crate::TimestampMs;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The metric types of the Prometheus and OpenMetrics exposition formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    #[default]
    Untyped,
}

impl MetricType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
            Self::GaugeHistogram => "gaugehistogram",
            Self::Summary => "summary",
            Self::Info => "info",
            Self::StateSet => "stateset",
            Self::Untyped => "untyped",
        }
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MetricType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "counter" => Self::Counter,
            "gauge" => Self::Gauge,
            "histogram" => Self::Histogram,
            "gaugehistogram" => Self::GaugeHistogram,
            "summary" => Self::Summary,
            "info" => Self::Info,
            "stateset" => Self::StateSet,
            "untyped" | "unknown" => Self::Untyped,
            other => return Err(format!("unknown metric type {other:?}")),
        })
    }
}

/// One observation. Values are float64 as in Prometheus; NaN and ±Inf are legal.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub ts: TimestampMs,
    pub value: f64,
}

/// One sample of a series the store has registered, held by its id: what the ingest queue
/// holds once a series is known (24 bytes instead of a label set), and what a receiver that
/// recognises a known series while it decodes hands over without building its labels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResolvedSample {
    pub series_id: i64,
    pub ts: TimestampMs,
    pub value: f64,
}

/// Samples of one series, with the type of the family it belongs to (so `foo_bucket` of a
/// histogram is stored as type histogram).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeSeries {
    pub key: SeriesKey,
    pub metric_type: MetricType,
    pub samples: Vec<Sample>,
}

/// Metadata of a metric family, as sent in `# HELP`/`# TYPE`/`# UNIT` lines or remote_write
/// metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricMetadata {
    pub family: String,
    pub metric_type: MetricType,
    pub unit: String,
    pub help: String,
}

/// What a collector hands to the ingest queue: series with samples plus family metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub series: Vec<TimeSeries>,
    pub metadata: Vec<MetricMetadata>,
}

impl Batch {
    pub fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.series.iter().all(|s| s.samples.is_empty()) && self.metadata.is_empty()
    }

    pub fn extend(&mut self, other: Batch) {
        self.series.extend(other.series);
        self.metadata.extend(other.metadata);
    }
}
