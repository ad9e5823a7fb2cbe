//! Query errors, with the `errorType` Prometheus' HTTP API reports for each.

/// Why a query was refused or failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// The query cannot be parsed or is not valid PromQL, or uses something pipewatch does not
    /// evaluate (named in the message).
    #[error("{0}")]
    BadData(String),
    /// Valid PromQL that fails on the data (e.g. many-to-many matching).
    #[error("{0}")]
    Execution(String),
    /// More samples than `max_samples` would be held at once.
    #[error("query processing would load too many samples into memory in {0}")]
    TooManySamples(&'static str),
    /// The storage below failed.
    #[error("{0}")]
    Storage(String),
    /// The query ran past its deadline.
    #[error("query timed out in {0}")]
    Timeout(&'static str),
}

impl QueryError {
    /// The `errorType` field of Prometheus' API for this error.
    pub fn error_type(&self) -> &'static str {
        match self {
            QueryError::BadData(_) => "bad_data",
            QueryError::Execution(_) | QueryError::TooManySamples(_) => "execution",
            QueryError::Storage(_) => "internal",
            QueryError::Timeout(_) => "timeout",
        }
    }
}

pub type Result<T> = std::result::Result<T, QueryError>;
