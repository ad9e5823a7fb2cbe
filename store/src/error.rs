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

impl StoreError {
    /// True when PostgreSQL cancelled a read for running past `statement_timeout`
    /// ([`crate::StoreConfig::read_statement_timeout`]; SQLSTATE 57014, query_canceled): the
    /// request asked for too much, and the same request will time out again.
    pub fn is_read_timeout(&self) -> bool {
        matches!(
            self,
            Self::Database {
                source: sqlx::Error::Database(e),
                ..
            } if e.code().as_deref() == Some("57014")
        )
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

/// The URL with every password replaced by `***`, for messages, logs and the Status page: the
/// one in `user:password@` and query parameters such as `?password=` or `sslpassword=` (libpq
/// and sqlx take both). A URL that does not parse is not shown at all: where its password is
/// cannot be known.
pub fn redact_url(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        return "<database URL not shown: it does not parse as a URL>".to_string();
    };
    if u.password().is_some() {
        // Only fails for URLs that cannot have a password, which this one has.
        let _ = u.set_password(Some("***"));
    }
    if let Some(query) = u.query().map(str::to_owned) {
        // Pieces are kept as written (no re-encoding of `host=/run/postgresql`); only the
        // value of a secret-looking key is replaced.
        let redacted: Vec<String> = query
            .split('&')
            .map(|piece| {
                let raw_key = piece.split('=').next().unwrap_or(piece);
                let key: String = url::form_urlencoded::parse(raw_key.as_bytes())
                    .next()
                    .map(|(k, _)| k.to_ascii_lowercase())
                    .unwrap_or_default();
                let secret = key.contains("password")
                    || key.contains("secret")
                    || key.contains("token")
                    || key == "pass";
                if secret {
                    format!("{raw_key}=***")
                } else {
                    piece.to_string()
                }
            })
            .collect();
        u.set_query(Some(&redacted.join("&")));
    }
    u.to_string()
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
        assert!(!redact_url("not a url with hunter2").contains("hunter2"));
    }

    #[test]
    fn redact_url_hides_passwords_given_as_query_parameters() {
        assert_eq!(
            redact_url("postgres://me@db:5432/x?password=hunter2&sslmode=require"),
            "postgres://me@db:5432/x?password=***&sslmode=require"
        );
        assert_eq!(
            redact_url("postgresql://db/x?sslmode=verify-full&sslpassword=k3y&PASSWORD=p%40ss"),
            "postgresql://db/x?sslmode=verify-full&sslpassword=***&PASSWORD=***"
        );
        assert_eq!(
            redact_url("postgres://me:a%40b@db/x?password=c"),
            "postgres://me:***@db/x?password=***"
        );
        // Unix-socket form: the host is a query parameter and stays readable.
        assert_eq!(
            redact_url("postgres:///x?host=/run/postgresql&password=hunter2"),
            "postgres:///x?host=/run/postgresql&password=***"
        );
    }
}
