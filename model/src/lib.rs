//! Domain types shared by every pipewatch crate and by the browser bundle.
//!
//! Everything here is plain data plus pure functions (no I/O), so it compiles to wasm and can
//! be golden-tested. The one exception is [`clock`], whose system clock is left out of browser
//! builds.

pub mod anomaly;
pub mod auth;
pub mod civil;
pub mod clip;
pub mod clock;
pub mod dq;
pub mod events;
pub mod evidence;
pub mod labels;
pub mod metric;
pub mod query;
pub mod selector;
pub mod status;

pub use events::{ChangeEvent, ChangeEventQuery};
pub use labels::{Labels, SeriesKey};
pub use metric::{Batch, MetricMetadata, MetricType, ResolvedSample, Sample, TimeSeries};
pub use query::{Aggregation, RangeQuery, RangeSeries};
pub use selector::{LabelMatcher, MatchOp, Selector, SelectorError};
pub use status::{StatusInfo, TargetHealth, TargetState};

/// Milliseconds since the Unix epoch, UTC. Prometheus' unit for sample timestamps.
pub type TimestampMs = i64;
