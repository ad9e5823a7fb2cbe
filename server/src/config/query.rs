//! `[query]`: the limits every PromQL query runs under (`/api/v1/query`, `query_range`, and the
//! pages and rules that evaluate PromQL), named after Prometheus' `--query.*` flags.

use super::duration;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// Wall-clock budget of one query, fetch and evaluation together (`--query.timeout`); a
    /// request's own `timeout` parameter can only shorten it.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Samples one query may load and hold (`--query.max-samples`).
    pub max_samples: usize,
    /// Series one selector may match before the query is refused (pipewatch's own: each is
    /// read from PostgreSQL).
    pub max_series_per_selector: usize,
    /// Distinct series one query may select over all its selectors, and one catalogue request
    /// (`/api/v1/series`, labels, label values) over all its `match[]`s (pipewatch's own:
    /// Prometheus has no such limit; the README's limits table says why this value).
    pub max_series: usize,
    /// How far back an instant selector looks for a sample (`--query.lookback-delta`).
    #[serde(with = "duration")]
    pub lookback_delta: Duration,
    /// Points per series a range query may return (Prometheus' fixed 11,000).
    pub max_points: u64,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_samples: 50_000_000,
            max_series_per_selector: 50_000,
            max_series: 10_000,
            lookback_delta: Duration::from_secs(300),
            max_points: 11_000,
        }
    }
}

impl QueryConfig {
    /// Checks each key; `request_timeout` is `server.request_timeout`, which cuts every
    /// request short, so a longer query timeout could never be reached.
    pub(super) fn validate(&self, request_timeout: Duration) -> Result<()> {
        if self.timeout < Duration::from_millis(100) {
            bail!(
                "key `query.timeout` must be at least \"100ms\", like \"30s\", got {:?}",
                self.timeout
            );
        }
        if self.timeout > request_timeout {
            bail!(
                "key `query.timeout` ({}) is longer than `server.request_timeout` ({}), which ends every request first; lower it or raise `server.request_timeout`",
                humantime::format_duration(self.timeout),
                humantime::format_duration(request_timeout)
            );
        }
        if self.max_samples == 0 {
            bail!("key `query.max_samples` must be at least 1, like 50000000");
        }
        if self.max_series_per_selector == 0 {
            bail!("key `query.max_series_per_selector` must be at least 1, like 50000");
        }
        if self.max_series == 0 {
            bail!("key `query.max_series` must be at least 1, like 10000");
        }
        if self.lookback_delta < Duration::from_secs(1) {
            bail!(
                "key `query.lookback_delta` must be at least \"1s\", like \"5m\", got {:?}",
                self.lookback_delta
            );
        }
        if !(1..=1_000_000).contains(&self.max_points) {
            bail!(
                "key `query.max_points` must be between 1 and 1000000, like 11000, got {}",
                self.max_points
            );
        }
        Ok(())
    }
}
