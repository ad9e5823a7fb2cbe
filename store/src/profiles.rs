//! Column profiles (`column_profiles`): the summaries `POST /api/v1/drift/profile` stores and
//! the drift job merges per window. The store keeps each profile as the JSON the analysis crate
//! serialises (`analysis::drift::ColumnProfile`) and does not look inside it: merging and
//! comparing are the analysis crate's, so this module stays free of its types.

use crate::error::DbContext;
use crate::{sql_ms, sql_ts, Store, StoreError};
use futures::TryStreamExt;
use model::TimestampMs;
use sqlx::Row;

/// One profile to store.
#[derive(Debug, Clone)]
pub struct NewColumnProfile {
    pub dataset: String,
    pub column: String,
    pub at_ms: TimestampMs,
    /// `numeric` or `categorical`.
    pub kind: &'static str,
    pub value_count: u64,
    pub profile: serde_json::Value,
}

/// A column that has profiles, with the time of its newest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfiledColumn {
    pub dataset: String,
    pub column: String,
    pub last_at_ms: TimestampMs,
}

impl Store {
    /// Stores one profile; returns its id.
    pub async fn insert_column_profile(&self, p: &NewColumnProfile) -> Result<i64, StoreError> {
        let sql = format!(
            "INSERT INTO column_profiles (dataset, \"column\", at, kind, value_count, profile) \
             VALUES ($1, $2, {}, $4, $5, $6) RETURNING id",
            sql_ts(3)
        );
        sqlx::query_scalar(&sql)
            .bind(&p.dataset)
            .bind(&p.column)
            .bind(p.at_ms)
            .bind(p.kind)
            .bind(i64::try_from(p.value_count).unwrap_or(i64::MAX))
            .bind(&p.profile)
            .fetch_one(self.pool())
            .await
            .context("storing a column profile")
    }

    /// Columns with at least one profile at or after `since_ms`, by dataset and column.
    pub async fn profiled_columns(
        &self,
        since_ms: TimestampMs,
    ) -> Result<Vec<ProfiledColumn>, StoreError> {
        let sql = format!(
            "SELECT dataset, \"column\", {} AS last_at FROM column_profiles WHERE at >= {} \
             GROUP BY dataset, \"column\" ORDER BY dataset, \"column\"",
            sql_ms("max(at)"),
            sql_ts(1)
        );
        let rows = sqlx::query(&sql)
            .bind(since_ms)
            .fetch_all(self.pool())
            .await
            .context("listing profiled columns")?;
        Ok(rows
            .into_iter()
            .map(|r| ProfiledColumn {
                dataset: r.get("dataset"),
                column: r.get("column"),
                last_at_ms: r.get("last_at"),
            })
            .collect())
    }

    /// Hands every profile of `dataset`/`column` with `from_ms <= at < to_ms` to `each`, oldest
    /// first, one row at a time (a window of many large profiles is merged without holding
    /// them all). Returns how many there were.
    pub async fn for_each_column_profile(
        &self,
        dataset: &str,
        column: &str,
        from_ms: TimestampMs,
        to_ms: TimestampMs,
        mut each: impl FnMut(serde_json::Value),
    ) -> Result<usize, StoreError> {
        let sql = format!(
            "SELECT profile FROM column_profiles WHERE dataset = $1 AND \"column\" = $2 \
             AND at >= {} AND at < {} ORDER BY at, id",
            sql_ts(3),
            sql_ts(4)
        );
        let mut rows = sqlx::query_scalar::<_, serde_json::Value>(&sql)
            .bind(dataset)
            .bind(column)
            .bind(from_ms)
            .bind(to_ms)
            .fetch(self.pool());
        let mut n = 0;
        while let Some(p) = rows.try_next().await.context("reading column profiles")? {
            each(p);
            n += 1;
        }
        Ok(n)
    }
}
