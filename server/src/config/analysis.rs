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
    /// Per-feature references, tried in order; the first whose `dataset` and `column` match
    /// a feature decides its reference (a pinned window or a trailing one of its own length).
    /// Features no entry matches use the trailing `drift_reference`.
    pub drift_references: Vec<DriftReference>,
}

/// One `[[analysis.drift_references]]`: which features (empty `dataset`/`column`: any) compare
/// with which reference: a pinned window (`from` and `to`, RFC 3339: a known-good week, the
/// training data's period) or a trailing one (`trailing = "7d"`: that long, just before the
/// current window).
///
/// ```toml
/// [[analysis.drift_references]]
/// dataset = "transform"
/// column = "basket_value"
/// from = "2026-11-01T00:00:00Z"
/// to = "2026-11-08T00:00:00Z"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DriftReference {
    /// The dataset (pipeline node) the feature belongs to; empty: any.
    #[serde(default)]
    pub dataset: String,
    /// The column or feature; empty: any.
    #[serde(default)]
    pub column: String,
    /// Start of a pinned reference (RFC 3339).
    #[serde(default)]
    pub from: Option<String>,
    /// End of a pinned reference (RFC 3339), exclusive.
    #[serde(default)]
    pub to: Option<String>,
    /// Length of a trailing reference just before the current window.
    #[serde(default, with = "duration::option")]
    pub trailing: Option<Duration>,
}

/// A reference window as the drift job uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceWindow {
    /// `[from_ms, to_ms)`.
    Pinned { from_ms: i64, to_ms: i64 },
    /// This long, just before the current window.
    Trailing(Duration),
}

impl ReferenceWindow {
    /// `[from, to)` of the reference for a current window starting at `current_from_ms`.
    pub fn span(self, current_from_ms: i64) -> (i64, i64) {
        match self {
            ReferenceWindow::Pinned { from_ms, to_ms } => (from_ms, to_ms),
            ReferenceWindow::Trailing(d) => {
                (current_from_ms - d.as_millis() as i64, current_from_ms)
            }
        }
    }

    /// Words for explanations: "the pinned 2026-11-01 00:00 to 2026-11-08 00:00 UTC" or
    /// "the 1day before".
    pub fn describe(self) -> String {
        match self {
            ReferenceWindow::Pinned { from_ms, to_ms } => {
                let t = |ms: i64| {
                    chrono::DateTime::from_timestamp_millis(ms)
                        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_default()
                };
                format!("the pinned {} to {} UTC", t(from_ms), t(to_ms))
            }
            ReferenceWindow::Trailing(d) => {
                format!("the {} before", humantime::format_duration(d))
            }
        }
    }
}

fn rfc3339_ms(v: &str) -> Option<i64> {
    humantime::parse_rfc3339_weak(v)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
}

impl DriftReference {
    fn matches(&self, dataset: &str, column: &str) -> bool {
        (self.dataset.is_empty() || self.dataset == dataset)
            && (self.column.is_empty() || self.column == column)
    }

    /// The window; `None` only for an entry `validate` refuses.
    fn window(&self) -> Option<ReferenceWindow> {
        match (&self.from, &self.to, self.trailing) {
            (Some(f), Some(t), None) => Some(ReferenceWindow::Pinned {
                from_ms: rfc3339_ms(f)?,
                to_ms: rfc3339_ms(t)?,
            }),
            (None, None, Some(d)) => Some(ReferenceWindow::Trailing(d)),
            _ => None,
        }
    }
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
            drift_references: Vec::new(),
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
        for (i, r) in self.drift_references.iter().enumerate() {
            let key = format!("analysis.drift_references[{i}]");
            for (name, v) in [("from", &r.from), ("to", &r.to)] {
                if let Some(v) = v {
                    if rfc3339_ms(v).is_none() {
                        bail!("key `{key}.{name}`: {v:?} is not an RFC 3339 time like \"2026-11-01T00:00:00Z\"");
                    }
                }
            }
            match (r.window(), r.trailing) {
                (Some(ReferenceWindow::Pinned { from_ms, to_ms }), _) if from_ms >= to_ms => {
                    bail!("key `{key}`: `from` must be before `to`")
                }
                (None, _) => bail!(
                    "key `{key}`: give either `from` and `to` (a pinned reference) or `trailing` (a duration like \"7d\"), not both or neither"
                ),
                (_, Some(d)) if d < self.drift_window => bail!(
                    "key `{key}.trailing` ({}) must be at least `analysis.drift_window` ({})",
                    humantime::format_duration(d),
                    humantime::format_duration(self.drift_window)
                ),
                _ => {}
            }
        }
        Ok(())
    }

    /// The reference window of one feature: the first matching `drift_references` entry, or
    /// the trailing `drift_reference`.
    pub fn reference_for(&self, dataset: &str, column: &str) -> ReferenceWindow {
        self.drift_references
            .iter()
            .find(|r| r.matches(dataset, column))
            .and_then(DriftReference::window)
            .unwrap_or(ReferenceWindow::Trailing(self.drift_reference))
    }

    /// The parsed `exclude` selectors (validated at load).
    pub fn exclude_selectors(&self) -> Vec<model::Selector> {
        self.exclude
            .iter()
            .filter_map(|s| model::Selector::parse(s).ok())
            .collect()
    }
}
