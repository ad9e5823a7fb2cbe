//! Anomalies and drift results as the analysis jobs store them and as `/api/v1/anomalies` and
//! `/api/v1/drift` serve them to the browser: one shape for the store, the server and the app.

use crate::TimestampMs;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whether an anomaly is still going on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnomalyState {
    /// The last evaluation still saw the series outside its band.
    Open,
    /// The series came back inside its band (or the anomaly was marked by a person).
    Closed,
}

impl AnomalyState {
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyState::Open => "open",
            AnomalyState::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(AnomalyState::Open),
            "closed" => Some(AnomalyState::Closed),
            _ => None,
        }
    }
}

/// What an on-call engineer said about an anomaly; the detector learns from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackKind {
    /// Real but expected (a backfill, a planned migration): the window joins the baseline.
    Expected,
    /// Not a problem at all: that series' band widens.
    FalseAlarm,
}

impl FeedbackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackKind::Expected => "expected",
            FeedbackKind::FalseAlarm => "false_alarm",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "expected" => Some(FeedbackKind::Expected),
            "false_alarm" => Some(FeedbackKind::FalseAlarm),
            _ => None,
        }
    }
}

/// One anomaly: a span of time in which one signal left its expected band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    pub id: i64,
    /// The signal's identity, stable across evaluations: the PromQL expression that produces
    /// it (e.g. `histogram_quantile(0.95, sum by (le, stage) (rate(x_bucket{stage="t"}[5m])))`).
    /// The detail page charts this expression.
    pub signal: String,
    /// Signal kind: `throughput`, `latency_p95`, `error_ratio`, `volume`, `freshness`,
    /// `run_duration`, `dq_value`.
    pub kind: String,
    /// Labels that say where in the pipeline it is (`stage`, `job`, `dataset`, `service`, ...).
    pub labels: BTreeMap<String, String>,
    /// The pipeline node (lineage job / dataset / stage) it belongs to, when known.
    pub node: Option<String>,
    /// Detector that opened it: `seasonal`, `level_shift`, `spike`, `trend`, `stream`.
    pub detector: String,
    pub state: AnomalyState,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// In [0, 1]; higher is more surprising.
    pub score: f64,
    pub started_at_ms: TimestampMs,
    /// When it closed (None while open).
    pub ended_at_ms: Option<TimestampMs>,
    /// Last evaluation that saw it.
    pub last_seen_ms: TimestampMs,
    /// The most extreme observed value during the span.
    pub observed: f64,
    pub expected_low: f64,
    pub expected_high: f64,
    /// The sentence for people: "p95 latency 4.1 s, expected 0.8–1.2 s for Tue 14:00; started 14:07".
    pub explanation: String,
    /// What a person said about it, if anything.
    pub feedback: Option<FeedbackKind>,
    pub feedback_by: Option<String>,
    pub feedback_at_ms: Option<TimestampMs>,
}

/// The body of `POST /api/v1/anomalies/{id}/feedback`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackRequest {
    pub feedback: FeedbackKind,
    #[serde(default)]
    pub note: Option<String>,
}

/// One drift comparison of a column (or feature) between a reference and a current window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftResult {
    pub id: i64,
    /// Dataset or feature set the column belongs to.
    pub dataset: String,
    pub column: String,
    /// The statistic used: `ks`, `wasserstein`, `psi`, `jensenshannon`, `kl_div`, `chisquare`, `z`, ...
    pub method: String,
    /// The statistic's value (a p-value for tests, a distance otherwise).
    pub value: f64,
    /// The threshold it was compared with.
    pub threshold: f64,
    pub drifted: bool,
    pub reference_from_ms: TimestampMs,
    pub reference_to_ms: TimestampMs,
    pub current_from_ms: TimestampMs,
    pub current_to_ms: TimestampMs,
    pub evaluated_at_ms: TimestampMs,
    /// A sentence for people: "feature_value drifted: Wasserstein 0.41 (threshold 0.1) ...".
    pub explanation: String,
}

/// A pipeline node's health as the Pipelines page colours it: the worst open anomaly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeHealth {
    pub node: String,
    /// `ok`, `info`, `warning` or `critical`.
    pub status: String,
    pub open_anomalies: u32,
}
