//! Data-quality rows as the store returns them, the read API serves them and the Data quality
//! page shows them: one definition for all three, so the browser cannot drift from the server.

use crate::TimestampMs;
use serde::{Deserialize, Serialize};

/// A dataset with the latest status of each of its checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetSummary {
    pub dataset: String,
    /// Distinct checks (tool, suite, check id) ever run on the dataset.
    pub checks: i64,
    /// Latest status of each check, counted.
    pub pass: i64,
    pub warn: i64,
    pub fail: i64,
    pub error: i64,
    pub skipped: i64,
    /// Worst latest status: error > fail > warn > pass (skipped only if nothing else).
    pub status: String,
    /// pass / (checks that were not skipped), latest runs; `None` when all were skipped.
    pub pass_ratio: Option<f64>,
    pub last_run_ms: TimestampMs,
    pub tools: Vec<String>,
}

/// One run in a check's history strip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunCell {
    pub run_time_ms: TimestampMs,
    pub run_id: String,
    /// pass, warn, fail, error or skipped.
    pub status: String,
    pub observed_value: Option<f64>,
    pub observed_raw: Option<String>,
    pub message: Option<String>,
}

/// A check of a dataset with its last runs, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckHistory {
    pub tool: String,
    pub suite: String,
    pub dataset: String,
    pub check_id: String,
    pub check_name: String,
    pub check_type: String,
    pub column: Option<String>,
    pub expected: Option<String>,
    pub runs: Vec<RunCell>,
}

impl CheckHistory {
    /// The most recent run, if any.
    pub fn latest(&self) -> Option<&RunCell> {
        self.runs.last()
    }
}
