//! `[ingest]`: the queue between receivers/scrapes and the database writers.

use super::duration;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Below this the byte bound would refuse ordinary requests outright.
const MIN_QUEUE_MAX_BYTES: usize = 1 << 20;
/// Far above any machine's memory, and below what a semaphore of byte permits can count.
const MAX_QUEUE_MAX_BYTES: usize = 1 << 40;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Samples the queue holds before receivers get 429/503 and scrapes wait.
    pub queue_capacity_samples: usize,
    /// Estimated heap bytes the queue holds before receivers get 429/503 and scrapes wait
    /// (what each queued item holds, see `server::ingest::footprint`).
    pub queue_max_bytes: usize,
    /// A writer flushes when it holds this many samples...
    pub batch_max_samples: usize,
    /// ...or when its oldest sample has waited this long.
    #[serde(with = "duration")]
    pub flush_interval: Duration,
    /// ...or when no new batch arrived for this long (so a burst's last samples are not held
    /// for the whole `flush_interval`).
    #[serde(with = "duration")]
    pub flush_idle: Duration,
    /// Parallel COPY writers.
    pub writers: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            queue_capacity_samples: 2_000_000,
            queue_max_bytes: crate::ingest::DEFAULT_QUEUE_MAX_BYTES,
            batch_max_samples: 50_000,
            flush_interval: Duration::from_secs(1),
            flush_idle: crate::ingest::FLUSH_WHEN_IDLE_FOR,
            writers: 2,
        }
    }
}

impl IngestConfig {
    pub(super) fn validate(&self) -> Result<()> {
        if self.writers == 0 || self.writers > 64 {
            bail!(
                "key `ingest.writers` must be between 1 and 64, got {}",
                self.writers
            );
        }
        if self.batch_max_samples == 0 {
            bail!("key `ingest.batch_max_samples` must be at least 1");
        }
        if self.queue_capacity_samples < self.batch_max_samples {
            bail!(
                "key `ingest.queue_capacity_samples` ({}) must be at least `ingest.batch_max_samples` ({})",
                self.queue_capacity_samples,
                self.batch_max_samples
            );
        }
        if self.queue_max_bytes > MAX_QUEUE_MAX_BYTES {
            bail!(
                "key `ingest.queue_max_bytes` ({}) must be at most {MAX_QUEUE_MAX_BYTES} (1 TiB); it bounds memory, so give the bytes the queue may really use",
                self.queue_max_bytes
            );
        }
        if self.queue_max_bytes < MIN_QUEUE_MAX_BYTES {
            bail!(
                "key `ingest.queue_max_bytes` ({}) must be at least {MIN_QUEUE_MAX_BYTES} (1 MiB): the queue must hold at least a few requests; the default is {}",
                self.queue_max_bytes,
                crate::ingest::DEFAULT_QUEUE_MAX_BYTES
            );
        }
        if self.flush_idle.is_zero() || self.flush_idle > self.flush_interval {
            bail!("key `ingest.flush_idle` must be greater than 0 and at most `ingest.flush_interval`, like \"25ms\"");
        }
        if self.flush_interval.is_zero() {
            bail!("key `ingest.flush_interval` must be greater than 0, like \"1s\"");
        }
        Ok(())
    }
}
