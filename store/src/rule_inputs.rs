//! What the `dq_check` and `drift` alerting rule kinds read: the data-quality runs of a
//! dataset (`dq_check_runs`, migration 0004) and the drift results of a column
//! (`drift_results`, migration 0050), as the latest result of each check or statistic at an
//! instant plus everything stored after it up to a later one. The engine reads at one instant
//! (`from == to`); a backtest reads its whole range at once and picks the latest at each step.

use crate::error::DbContext;
use crate::{sql_ms, sql_ts, Store, StoreError};
use sqlx::Row;

/// One data-quality run as the rule kinds see it.
#[derive(Debug, Clone, PartialEq)]
pub struct DqRunRow {
    pub tool: String,
    pub suite: String,
    pub dataset: String,
    pub check_id: String,
    pub check_name: String,
    pub column: Option<String>,
    pub status: String,
    pub observed: Option<f64>,
    pub message: Option<String>,
    pub run_time_ms: i64,
}

/// One drift result as the rule kinds see it.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftRow {
    pub dataset: String,
    pub column: String,
    pub method: String,
    pub value: f64,
    pub evaluated_at_ms: i64,
    pub explanation: String,
}

impl Store {
    /// The latest run of every check of `dataset` at or before `from_ms`, then every run
    /// after it up to `to_ms`.
    pub async fn dq_runs_for_rules(
        &self,
        dataset: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<DqRunRow>, StoreError> {
        let cols = format!(
            "tool, suite, dataset, check_id, check_name, column_name, status, observed_value,
             message, {} AS run_ms",
            sql_ms("run_time")
        );
        let rows = sqlx::query(&format!(
            "(SELECT DISTINCT ON (tool, suite, check_id) {cols} FROM dq_check_runs
              WHERE dataset = $1 AND run_time <= {from}
              ORDER BY tool, suite, check_id, run_time DESC)
             UNION ALL
             (SELECT {cols} FROM dq_check_runs
              WHERE dataset = $1 AND run_time > {from} AND run_time <= {to})",
            from = sql_ts(2),
            to = sql_ts(3),
        ))
        .bind(dataset)
        .bind(from_ms as f64)
        .bind(to_ms as f64)
        .fetch_all(self.read_pool())
        .await
        .context("reading data-quality runs for dq_check rules")?;
        Ok(rows
            .iter()
            .map(|r| DqRunRow {
                tool: r.get("tool"),
                suite: r.get("suite"),
                dataset: r.get("dataset"),
                check_id: r.get("check_id"),
                check_name: r.get("check_name"),
                column: r.get("column_name"),
                status: r.get("status"),
                observed: r.get("observed_value"),
                message: r.get("message"),
                run_time_ms: r.get("run_ms"),
            })
            .collect())
    }

    /// The latest drift result of every dataset's `column` for `method` at or before
    /// `from_ms`, then every one after it up to `to_ms`.
    pub async fn drift_for_rules(
        &self,
        column: &str,
        method: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<DriftRow>, StoreError> {
        let cols = format!(
            "dataset, \"column\", method, value, explanation, {} AS ev_ms",
            sql_ms("evaluated_at")
        );
        let rows = sqlx::query(&format!(
            "(SELECT DISTINCT ON (dataset) {cols} FROM drift_results
              WHERE \"column\" = $1 AND method = $2 AND evaluated_at <= {from}
              ORDER BY dataset, evaluated_at DESC, id DESC)
             UNION ALL
             (SELECT {cols} FROM drift_results
              WHERE \"column\" = $1 AND method = $2 AND evaluated_at > {from}
                AND evaluated_at <= {to})",
            from = sql_ts(3),
            to = sql_ts(4),
        ))
        .bind(column)
        .bind(method)
        .bind(from_ms as f64)
        .bind(to_ms as f64)
        .fetch_all(self.read_pool())
        .await
        .context("reading drift results for drift rules")?;
        Ok(rows
            .iter()
            .map(|r| DriftRow {
                dataset: r.get("dataset"),
                column: r.get("column"),
                method: r.get("method"),
                value: r.get("value"),
                evaluated_at_ms: r.get("ev_ms"),
                explanation: r.get("explanation"),
            })
            .collect())
    }
}
