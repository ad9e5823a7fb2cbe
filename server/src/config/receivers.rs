//! `[receivers]`: size limits and answers shared by the push receivers (`POST /api/v1/write`,
//! OTLP, data quality, OpenLineage, Alertmanager), and the OTLP/gRPC address.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// Limits and answers of the push receivers (`POST /api/v1/write`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiversConfig {
    /// Largest request body read, in bytes as sent (compressed); larger requests get 413.
    pub max_body_bytes: usize,
    /// Largest decompressed body, in bytes; bounds what a small compressed body can expand to.
    pub max_decompressed_bytes: usize,
    /// Embedded messages a protobuf body (remote_write, OTLP/HTTP) may hold, counted on the
    /// wire before decoding: series, labels and samples; resources, scopes, metrics, spans,
    /// data points and attributes. 0 = no limit.
    pub max_decoded_messages: usize,
    /// Status when the ingest queue is full: 503 (every remote_write sender retries it) or 429
    /// (retried by Prometheus only with `queue_config.retry_on_http_429: true`; otherwise the
    /// sender drops the data). Both come with `Retry-After`.
    pub queue_full_status: u16,
    /// Address of the OTLP/gRPC receiver (`host:port`); empty turns it off. OTLP/HTTP is
    /// served on `server.listen` at `/v1/metrics`, `/v1/traces`, `/v1/logs`.
    pub otlp_grpc_listen: String,
}

/// 32 MiB. A decoded protobuf can be several times larger again in memory, and a request of
/// repeated empty messages far more (issue 9 measured ~70x), so this bound is what keeps one
/// request's memory in the low gigabytes at worst; Prometheus' remote_write sends ~2 MiB.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 32 << 20;

/// 500,000 messages. A decoded message is 50 to 300 bytes of struct even when empty on the
/// wire (2 bytes), so this keeps one request's decoded structs under ~150 MB; real batches
/// are far smaller (Prometheus sends 2,000 samples per request, about 30,000 messages; an
/// OTLP batch of 512 spans with 30 attributes each about 32,000).
pub const DEFAULT_MAX_DECODED_MESSAGES: usize = 500_000;

impl Default for ReceiversConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 32 << 20,
            max_decompressed_bytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
            max_decoded_messages: DEFAULT_MAX_DECODED_MESSAGES,
            queue_full_status: 503,
            otlp_grpc_listen: "127.0.0.1:4317".into(),
        }
    }
}

impl ReceiversConfig {
    pub(super) fn validate(&self) -> Result<()> {
        const MIN_BODY: usize = 1024;
        const MAX_BODY: usize = 1 << 30;
        if !(MIN_BODY..=MAX_BODY).contains(&self.max_body_bytes) {
            bail!(
                "key `receivers.max_body_bytes` must be between {MIN_BODY} and {MAX_BODY} (1 GiB), got {}",
                self.max_body_bytes
            );
        }
        if self.max_decompressed_bytes < self.max_body_bytes
            || self.max_decompressed_bytes > 4 * MAX_BODY
        {
            bail!(
                "key `receivers.max_decompressed_bytes` must be at least `receivers.max_body_bytes` ({}) and at most 4 GiB, got {}",
                self.max_body_bytes,
                self.max_decompressed_bytes
            );
        }
        if self.queue_full_status != 503 && self.queue_full_status != 429 {
            bail!(
                "key `receivers.queue_full_status` must be 503 or 429, got {}",
                self.queue_full_status
            );
        }
        if !self.otlp_grpc_listen.is_empty()
            && self
                .otlp_grpc_listen
                .parse::<std::net::SocketAddr>()
                .is_err()
        {
            bail!(
                "key `receivers.otlp_grpc_listen` must be an address like \"127.0.0.1:4317\" or \"\" to turn the OTLP/gRPC receiver off, got {:?}",
                self.otlp_grpc_listen
            );
        }
        Ok(())
    }
}
