//! `[database]`: which PostgreSQL (embedded or `DATABASE_URL`), retention and maintenance.

use super::duration;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// PostgreSQL URL. Empty: start the embedded cluster under `server.data_dir`.
    pub url: String,
    /// Samples older than this many days are dropped (whole partitions).
    pub retention_days: u32,
    /// How often partitions, rollups and retention are maintained.
    #[serde(with = "duration")]
    pub maintenance_interval: Duration,
    /// PostgreSQL `statement_timeout` for the reads requests make (series, labels, ranges,
    /// PromQL, evidence and lists); "0s" = none.
    #[serde(with = "duration")]
    pub read_statement_timeout: Duration,
    /// An hour of fresh samples is compacted into per-series chunks once it ended this long
    /// ago (see docs/ARCHITECTURE.md, Storage); samples arriving later are merged in by the
    /// next compaction.
    #[serde(with = "duration")]
    pub compact_after: Duration,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            retention_days: 30,
            maintenance_interval: Duration::from_secs(30),
            read_statement_timeout: Duration::from_secs(30),
            compact_after: Duration::from_secs(600),
        }
    }
}

impl DatabaseConfig {
    pub(super) fn validate(&self) -> Result<()> {
        let known_scheme = ["postgres://", "postgresql://"]
            .iter()
            .any(|p| self.url.starts_with(p));
        if !self.url.is_empty() && !known_scheme {
            // The URL itself is not echoed: it may hold a password.
            bail!("key `database.url` (or DATABASE_URL) must start with postgres:// or postgresql://, like \"postgres://user@host:5432/pipewatch\"; leave it empty for the embedded database");
        }
        if self.retention_days == 0 {
            bail!("key `database.retention_days` must be at least 1");
        }
        if self.compact_after > Duration::from_secs(7 * 86_400) {
            // Fresh rows have no per-series index: a week of them makes every read slow.
            bail!("key `database.compact_after` must be at most 7d, like \"10m\" (fresh samples are not indexed by series; reads slow down the longer they stay fresh)");
        }
        if self.maintenance_interval.is_zero() {
            bail!("key `database.maintenance_interval` must be greater than 0, like \"30s\"");
        }
        Ok(())
    }
}
