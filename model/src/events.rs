//! Change events: deploys, config changes, schema changes, backfills — what changed in a
//! pipeline and when, so a chart can show "the deploy at 14:02" next to the latency jump and
//! root-cause ranking can weigh it.
//!
//! Received on `POST /api/v1/events`, stored once per distinct content, listed by
//! `GET /api/v1/events` and drawn as markers on Explore charts.

use crate::TimestampMs;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The kinds the issue names; any other text is kept as sent (`backfill`, `rollback`, ...).
pub const KNOWN_KINDS: [&str; 3] = ["deploy", "config_change", "schema_change"];

/// One change event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEvent {
    /// When the change happened (not when pipewatch heard of it).
    pub time_ms: TimestampMs,
    /// The pipeline node that changed: an OpenLineage job or dataset name, an OTLP
    /// `service.name`, a DQ dataset — equal names are the same node.
    pub node: String,
    /// `deploy`, `config_change`, `schema_change` or any other word the sender uses.
    pub kind: String,
    /// What changed, in the sender's words.
    pub detail: String,
    /// Extra context (commit, author system, ticket); sorted so equal events compare equal.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The version deployed or configured, when there is one.
    #[serde(default)]
    pub version: Option<String>,
}

/// What `GET /api/v1/events` may filter on; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEventQuery {
    pub node: Option<String>,
    pub kind: Option<String>,
    /// Inclusive bounds on [`ChangeEvent::time_ms`].
    pub start_ms: Option<TimestampMs>,
    pub end_ms: Option<TimestampMs>,
    /// At most this many events, newest first.
    pub limit: u32,
}
