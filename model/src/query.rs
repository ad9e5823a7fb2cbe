//! Range queries and their results.

use crate::labels::Labels;
use crate::TimestampMs;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// How samples inside one step bucket are reduced to one point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregation {
    #[default]
    Avg,
    Min,
    Max,
    Sum,
    Count,
    Last,
}

impl Aggregation {
    pub const ALL: [Aggregation; 6] = [
        Self::Avg,
        Self::Min,
        Self::Max,
        Self::Sum,
        Self::Count,
        Self::Last,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Avg => "avg",
            Self::Min => "min",
            Self::Max => "max",
            Self::Sum => "sum",
            Self::Count => "count",
            Self::Last => "last",
        }
    }
}

impl FromStr for Aggregation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                format!("unknown aggregation {s:?}; use one of avg, min, max, sum, count, last")
            })
    }
}

/// A range query: buckets of `step_ms` aligned to the Unix epoch, covering [start, end].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeQuery {
    pub start: TimestampMs,
    pub end: TimestampMs,
    pub step_ms: i64,
    pub aggregation: Aggregation,
}

/// One series of a range query result; `points` are (bucket start, value), ascending.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeSeries {
    pub metric: String,
    pub labels: Labels,
    pub points: Vec<(TimestampMs, f64)>,
}
