//! `[analysis]`: the detection and drift jobs (`server::analysis`): how often they run, how much
//! history the detectors learn from, the drift windows, and which series to leave out.

use super::duration;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysisConfig {
    /// Run the jobs at all (on the instance that holds the analysis leadership).
    pub enabled: bool,
    /// Time between two evaluations of every signal (and drift check).
    #[serde(with = "duration")]
    pub interval: Duration,
    /// History each detector learns from (up to what is stored): 7 days covers a weekly pattern.
    #[serde(with = "duration")]
    pub history: Duration,
    /// The current window of a drift check: the last this-long of each feature histogram.
    #[serde(with = "duration")]
    pub drift_window: Duration,
    /// The reference a drift check compares with: this long, just before the current window.
    #[serde(with = "duration")]
    pub drift_reference: Duration,
    /// Anomalies below this severity (`info`, `warning`, `critical`) are not recorded.
    pub min_severity: String,
    /// Series selectors (`{job="batch"}`, `metric{env="dev"}`) whose series are never analysed.
    pub exclude: Vec<String>,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(60),
            history: Duration::from_secs(7 * 86_400),
            drift_window: Duration::from_secs(3_600),
            drift_reference: Duration::from_secs(86_400),
            min_severity: "info".into(),
            exclude: Vec::new(),
        }
    }
}

impl AnalysisConfig {
    pub(super) fn validate(&self) -> Result<()> {
        if self.interval < Duration::from_secs(1) || self.interval > Duration::from_secs(3_600) {
            bail!(
                "key `analysis.interval` must be between \"1s\" and \"1h\", like \"1m\", got {}",
                humantime::format_duration(self.interval)
            );
        }
        if self.history < Duration::from_secs(3_600)
            || self.history > Duration::from_secs(90 * 86_400)
        {
            bail!(
                "key `analysis.history` must be between \"1h\" and \"90days\", like \"7days\", got {}",
                humantime::format_duration(self.history)
            );
        }
        if self.drift_window < Duration::from_secs(60) {
            bail!(
                "key `analysis.drift_window` must be at least \"1m\", like \"1h\", got {}",
                humantime::format_duration(self.drift_window)
            );
        }
        if self.drift_reference < self.drift_window {
            bail!(
                "key `analysis.drift_reference` ({}) must be at least `analysis.drift_window` ({}): the reference needs as much data as the window it judges",
                humantime::format_duration(self.drift_reference),
                humantime::format_duration(self.drift_window)
            );
        }
        if !matches!(self.min_severity.as_str(), "info" | "warning" | "critical") {
            bail!(
                "key `analysis.min_severity` must be \"info\", \"warning\" or \"critical\", got {:?}",
                self.min_severity
            );
        }
        for (i, s) in self.exclude.iter().enumerate() {
            if let Err(e) = model::Selector::parse(s) {
                bail!(
                    "key `analysis.exclude[{i}]`: {s:?} is not a series selector ({}); write one like \"{{job=\\\"batch\\\"}}\" or \"metric_name{{env=\\\"dev\\\"}}\"",
                    e.message
                );
            }
        }
        Ok(())
    }

    /// The parsed `exclude` selectors (validated at load).
    pub fn exclude_selectors(&self) -> Vec<model::Selector> {
        self.exclude
            .iter()
            .filter_map(|s| model::Selector::parse(s).ok())
            .collect()
    }
}
