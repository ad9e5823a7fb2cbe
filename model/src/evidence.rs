//! Evidence rows as `/api/v1/evidence/spans` and `/api/v1/evidence/logs` serve them: the failed
//! or slow spans and warning/error log records kept from OTLP traces and logs.

use crate::TimestampMs;
use serde::{Deserialize, Serialize};

/// A kept span.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanEvidence {
    pub id: i64,
    pub received_at_ms: TimestampMs,
    pub service: String,
    /// Why it was kept: `error` or `slow`.
    pub kind: String,
    pub trace_id: String,
    pub span_id: String,
    pub span_name: String,
    pub span_kind: String,
    pub status_code: String,
    pub status_message: String,
    pub start_time_unix_nano: i64,
    pub duration_seconds: f64,
    /// The whole span as received (attributes, events, resource).
    pub detail: serde_json::Value,
}

/// A kept log record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEvidence {
    pub id: i64,
    pub received_at_ms: TimestampMs,
    pub service: String,
    /// Short severity name: `WARN`, `ERROR`, `FATAL`, ...
    pub kind: String,
    pub severity_number: i32,
    pub time_unix_nano: i64,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub body: String,
    /// The whole record as received.
    pub detail: serde_json::Value,
}
