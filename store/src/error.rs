//! The store's error type: every variant says what went wrong and what to do about it.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot connect to the database at {url}: {source}. Is the server running and reachable? Check DATABASE_URL (or unset it to use the embedded PostgreSQL)")]
    Connect {
        /// The URL with any password replaced by `***`.
        url: String,
        #[source]
        source: sqlx::Error,
    },

    #[error("applying database migrations failed: {0}. If the database was migrated by a newer pipewatch, upgrade this binary; otherwise check the server log")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    #[error("database error while {context}: {source}")]
    Database {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },

    /// A sample or series the store cannot represent; nothing of its batch was written.
    #[error("invalid sample: {0}")]
    InvalidSample(String),

    /// A setting the operator must change.
    #[error("invalid storage configuration: {0}")]
    InvalidConfig(String),

    /// A query the caller must change.
    #[error("invalid query: {0}")]
    InvalidQuery(String),

    /// The database holds something this version of the store does not understand.
    #[error("unexpected database contents: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// True when the database (or the store's own checks) refused the *data*, so writing the
    /// same rows again can never succeed: SQLSTATE class 22 (data exception, e.g. a NUL byte:
    /// "invalid byte sequence for encoding UTF8: 0x00"), class 23 (integrity constraint
    /// violation) and class 54 (program limit exceeded, e.g. a label set too large for an index
    /// row), plus [`StoreError::InvalidSample`]. Everything else (connection loss, shutdown,
    /// deadlock, serialisation failure, disk full) may pass on its own and is worth retrying.
    pub fn is_refused_data(&self) -> bool {
        match self {
            Self::InvalidSample(_) => true,
            Self::Database {
                source: sqlx::Error::Database(e),
                ..
            } => e
                .code()
                .is_some_and(|c| c.starts_with("22") || c.starts_with("23") || c.starts_with("54")),
            _ => false,
        }
    }
}

/// Attaches what the store was doing to a sqlx error.
pub(crate) trait DbContext<T> {
    fn context(self, context: &'static str) -> Result<T, StoreError>;
}

impl<T> DbContext<T> for Result<T, sqlx::Error> {
    fn context(self, context: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Database { context, source })
    }
}

/// The URL with the password (if any) replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let userinfo = &authority[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &userinfo[..colon],
            &url[scheme_end + 3 + at..]
        ),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_only_the_password() {
        assert_eq!(
            redact_url("postgres://me:s3cr@t@db:5432/x?sslmode=require"),
            "postgres://me:***@db:5432/x?sslmode=require"
        );
        assert_eq!(redact_url("postgres://me@db/x"), "postgres://me@db/x");
        assert_eq!(redact_url("postgres://db/x"), "postgres://db/x");
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
