//! Data-quality check runs (`migrations/0004_dq.sql`): recording imported runs idempotently,
//! and the queries of the Data quality page and `/api/v1/dq/*`: datasets with the latest
//! status of their checks, and per check its last N runs (the history strip).
//!
//! The types here are the store's own (the store does not depend on `collectors`); the server
//! maps `collectors::dq::CheckRun` onto [`CheckRunRecord`].

use crate::error::DbContext;
use crate::{Store, StoreError};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// One execution of one check, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRunRecord {
    pub tool: String,
    pub run_id: String,
    pub check_id: String,
    pub tool_version: Option<String>,
    pub suite: String,
    pub dataset: String,
    pub column: Option<String>,
    pub check_name: String,
    pub check_type: String,
    /// pass, warn, fail, error or skipped.
    pub status: String,
    pub raw_status: String,
    pub observed_value: Option<f64>,
    pub observed_raw: Option<String>,
    pub expected: Option<String>,
    pub message: Option<String>,
    pub run_time_ms: i64,
    /// `check_id` may be new in every run of the same check (GX 1.x ephemeral contexts): when
    /// it has not been seen for this tool, suite and dataset, the run is filed under the check
    /// with the same `check_type`, `column` and `expected` instead.
    #[serde(default)]
    pub id_may_change: bool,
}

// The read rows are shared with the server's API and the browser app, so they live in `model`.
pub use model::dq::{CheckHistory, DatasetSummary, RunCell};

/// What [`Store::record_check_runs`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecordOutcome {
    /// Indexes (into the input) of the runs that were new; the others were already stored.
    pub inserted: Vec<usize>,
}

/// The check id a run is filed under when its own id may change between runs: its own id when
/// that is known, else the id of the latest run of the same check by content (type, column,
/// kwargs), else its own (a new check).
async fn stable_check_id(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    r: &CheckRunRecord,
) -> Result<String, StoreError> {
    let known: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM dq_check_runs
         WHERE dataset = $1 AND tool = $2 AND suite = $3 AND check_id = $4 LIMIT 1",
    )
    .bind(&r.dataset)
    .bind(&r.tool)
    .bind(&r.suite)
    .bind(&r.check_id)
    .fetch_optional(&mut **tx)
    .await
    .context("looking up a dq check id")?;
    if known.is_some() {
        return Ok(r.check_id.clone());
    }
    let same: Option<String> = sqlx::query_scalar(
        "SELECT check_id FROM dq_check_runs
         WHERE dataset = $1 AND tool = $2 AND suite = $3 AND check_type = $4
           AND column_name IS NOT DISTINCT FROM $5 AND expected IS NOT DISTINCT FROM $6
         ORDER BY run_time DESC LIMIT 1",
    )
    .bind(&r.dataset)
    .bind(&r.tool)
    .bind(&r.suite)
    .bind(&r.check_type)
    .bind(&r.column)
    .bind(&r.expected)
    .fetch_optional(&mut **tx)
    .await
    .context("looking up a dq check by content")?;
    Ok(same.unwrap_or_else(|| r.check_id.clone()))
}

const STATUS_RANK: &str = "CASE status WHEN 'error' THEN 4 WHEN 'fail' THEN 3 WHEN 'warn' THEN 2 WHEN 'pass' THEN 1 ELSE 0 END";

impl Store {
    /// Records check runs in one transaction. Runs already stored (same tool, run id and check
    /// id) are left as they are, so importing a file twice stores it once.
    pub async fn record_check_runs(
        &self,
        runs: &[CheckRunRecord],
    ) -> Result<RecordOutcome, StoreError> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .context("starting a dq transaction")?;
        let mut inserted = Vec::new();
        // Row by row keeps the statement simple; result files hold tens to a few thousand
        // checks, and this runs once per import.
        for (i, r) in runs.iter().enumerate() {
            let check_id = if r.id_may_change {
                stable_check_id(&mut tx, r).await?
            } else {
                r.check_id.clone()
            };
            let done = sqlx::query(
                "INSERT INTO dq_check_runs (tool, run_id, check_id, tool_version, suite, dataset,
                     column_name, check_name, check_type, status, raw_status, observed_value,
                     observed_raw, expected, message, run_time)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                     to_timestamp($16::float8 / 1000))
                 ON CONFLICT (tool, run_id, check_id) DO NOTHING",
            )
            .bind(&r.tool)
            .bind(&r.run_id)
            .bind(&check_id)
            .bind(&r.tool_version)
            .bind(&r.suite)
            .bind(&r.dataset)
            .bind(&r.column)
            .bind(&r.check_name)
            .bind(&r.check_type)
            .bind(&r.status)
            .bind(&r.raw_status)
            .bind(r.observed_value)
            .bind(&r.observed_raw)
            .bind(&r.expected)
            .bind(&r.message)
            .bind(r.run_time_ms)
            .execute(&mut *tx)
            .await
            .context("recording a dq check run")?;
            if done.rows_affected() == 1 {
                inserted.push(i);
            }
        }
        tx.commit().await.context("committing dq check runs")?;
        Ok(RecordOutcome { inserted })
    }

    /// Every dataset with the latest status of each of its checks, worst first.
    pub async fn dq_datasets(&self) -> Result<Vec<DatasetSummary>, StoreError> {
        let sql = format!(
            "WITH latest AS (
                 SELECT DISTINCT ON (dataset, tool, suite, check_id)
                        dataset, tool, status, run_time, {STATUS_RANK} AS rank
                 FROM dq_check_runs
                 ORDER BY dataset, tool, suite, check_id, run_time DESC
             )
             SELECT dataset,
                    count(*) AS checks,
                    count(*) FILTER (WHERE status = 'pass') AS pass,
                    count(*) FILTER (WHERE status = 'warn') AS warn,
                    count(*) FILTER (WHERE status = 'fail') AS fail,
                    count(*) FILTER (WHERE status = 'error') AS error,
                    count(*) FILTER (WHERE status = 'skipped') AS skipped,
                    max(rank) AS worst,
                    (extract(epoch from max(run_time)) * 1000)::bigint AS last_run_ms,
                    array_agg(DISTINCT tool ORDER BY tool) AS tools
             FROM latest
             GROUP BY dataset
             ORDER BY max(rank) DESC, dataset"
        );
        let rows = sqlx::query(&sql)
            .fetch_all(self.read_pool())
            .await
            .context("listing dq datasets")?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let pass: i64 = r.get("pass");
                let checks: i64 = r.get("checks");
                let skipped: i64 = r.get("skipped");
                let ran = checks - skipped;
                DatasetSummary {
                    dataset: r.get("dataset"),
                    checks,
                    pass,
                    warn: r.get("warn"),
                    fail: r.get("fail"),
                    error: r.get("error"),
                    skipped,
                    status: match r.get::<i32, _>("worst") {
                        4 => "error",
                        3 => "fail",
                        2 => "warn",
                        1 => "pass",
                        _ => "skipped",
                    }
                    .to_owned(),
                    pass_ratio: (ran > 0).then(|| pass as f64 / ran as f64),
                    last_run_ms: r.get("last_run_ms"),
                    tools: r.get("tools"),
                }
            })
            .collect())
    }

    /// The checks of `dataset`, each with its last `last_n` runs (oldest first), worst latest
    /// status first.
    pub async fn dq_checks(
        &self,
        dataset: &str,
        last_n: u32,
    ) -> Result<Vec<CheckHistory>, StoreError> {
        let rows = sqlx::query(
            "SELECT tool, suite, dataset, check_id, check_name, check_type, column_name, expected,
                    run_id, status, observed_value, observed_raw, message,
                    (extract(epoch from run_time) * 1000)::bigint AS run_time_ms, rn
             FROM (
                 SELECT *, row_number() OVER (PARTITION BY tool, suite, check_id
                                              ORDER BY run_time DESC, run_id DESC) AS rn
                 FROM dq_check_runs WHERE dataset = $1
             ) t
             WHERE rn <= $2
             ORDER BY tool, suite, check_id, run_time, run_id",
        )
        .bind(dataset)
        .bind(i64::from(last_n.max(1)))
        .fetch_all(self.read_pool())
        .await
        .context("listing dq checks of a dataset")?;
        let mut out: Vec<CheckHistory> = Vec::new();
        for r in rows {
            let (tool, suite, check_id): (String, String, String) =
                (r.get("tool"), r.get("suite"), r.get("check_id"));
            let cell = RunCell {
                run_time_ms: r.get("run_time_ms"),
                run_id: r.get("run_id"),
                status: r.get("status"),
                observed_value: r.get("observed_value"),
                observed_raw: r.get("observed_raw"),
                message: r.get("message"),
            };
            // The latest run's name, type and expectation describe the check.
            let describe = |h: &mut CheckHistory| {
                h.check_name = r.get("check_name");
                h.check_type = r.get("check_type");
                h.column = r.get("column_name");
                h.expected = r.get("expected");
            };
            match out.last_mut() {
                Some(h) if h.tool == tool && h.suite == suite && h.check_id == check_id => {
                    describe(h);
                    h.runs.push(cell);
                }
                _ => {
                    let mut h = CheckHistory {
                        tool,
                        suite,
                        dataset: r.get("dataset"),
                        check_id,
                        check_name: String::new(),
                        check_type: String::new(),
                        column: None,
                        expected: None,
                        runs: vec![cell],
                    };
                    describe(&mut h);
                    out.push(h);
                }
            }
        }
        let rank = |h: &CheckHistory| match h.latest().map(|c| c.status.as_str()) {
            Some("error") => 0,
            Some("fail") => 1,
            Some("warn") => 2,
            Some("pass") => 3,
            _ => 4,
        };
        out.sort_by(|a, b| {
            rank(a)
                .cmp(&rank(b))
                .then_with(|| a.check_name.cmp(&b.check_name))
                .then_with(|| a.column.cmp(&b.column))
        });
        Ok(out)
    }

    /// Number of stored check runs (tests, the status page).
    pub async fn dq_check_run_count(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT count(*) FROM dq_check_runs")
            .fetch_one(self.pool())
            .await
            .context("counting dq check runs")
    }
}
