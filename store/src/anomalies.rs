//! Anomalies and drift results as the analysis jobs write them (`migrations/0050_analysis.sql`):
//! opening, extending and closing anomalies (at most one open per signal), the feedback people
//! give on them (which the detectors read back on every run), the lists and details behind
//! `/api/v1/anomalies`, the health of pipeline nodes, and drift comparisons.
//!
//! The page-side reads (`anomaly_read.rs`) live elsewhere; this module is what the jobs and the
//! JSON API use.

use crate::error::DbContext;
use crate::{sql_ms, sql_ts, Store, StoreError};
use model::anomaly::{Anomaly, AnomalyState, DriftResult, FeedbackKind, NodeHealth};
use model::TimestampMs;
use sqlx::postgres::PgRow;
use sqlx::Row;
use std::collections::BTreeMap;

/// Most anomalies or drift results one list call returns, whatever the caller asks for.
pub const MAX_ANOMALIES_PAGE: u32 = 1000;

/// What one evaluation found for one signal: opens an anomaly, or extends the open one.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyObservation {
    pub signal: String,
    pub kind: String,
    pub labels: BTreeMap<String, String>,
    pub node: Option<String>,
    pub detector: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    pub score: f64,
    /// When the anomalous span began (used only when this opens the anomaly).
    pub started_at_ms: TimestampMs,
    /// The evaluation that saw it.
    pub seen_at_ms: TimestampMs,
    pub observed: f64,
    pub expected_low: f64,
    pub expected_high: f64,
    pub explanation: String,
}

/// Whether [`Store::observe_anomaly`] opened a new anomaly or extended the open one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    Opened(i64),
    Extended(i64),
}

impl Observed {
    pub fn id(self) -> i64 {
        match self {
            Observed::Opened(id) | Observed::Extended(id) => id,
        }
    }
}

/// Filters of [`Store::list_anomalies`]; `None` means "any".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnomalyQuery {
    pub state: Option<AnomalyState>,
    /// Anomalies still going on at or after this time (open, or ended at or after it).
    pub since_ms: Option<TimestampMs>,
    pub node: Option<String>,
    /// Only anomalies with an id below this (the cursor of the next page, newest first).
    pub before_id: Option<i64>,
    pub limit: u32,
}

/// One piece of feedback as the detectors read it: a signal's time window and what it was.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackWindow {
    pub signal: String,
    pub from_ms: TimestampMs,
    pub to_ms: TimestampMs,
    pub kind: FeedbackKind,
}

/// A drift comparison to record (the id is assigned by the database).
pub type NewDriftResult = DriftResult;

/// Severity order for "worst of": info < warning < critical.
const SEVERITY_RANK_SQL: &str =
    "CASE {x} WHEN 'critical' THEN 3 WHEN 'warning' THEN 2 WHEN 'info' THEN 1 ELSE 0 END";

fn severity_rank(x: &str) -> String {
    SEVERITY_RANK_SQL.replace("{x}", x)
}

/// The columns [`anomaly_from_row`] reads, times as Unix ms (also used by `anomaly_read`).
pub(crate) fn anomaly_columns() -> String {
    format!(
        "id, signal, kind, labels, node, detector, state, severity, score, \
         {} AS started_ms, {} AS ended_ms, {} AS last_seen_ms, observed, expected_low, \
         expected_high, explanation, feedback, feedback_by, {} AS feedback_ms",
        sql_ms("started_at"),
        sql_ms("ended_at"),
        sql_ms("last_seen_at"),
        sql_ms("feedback_at"),
    )
}

pub(crate) fn anomaly_from_row(r: &PgRow) -> Result<Anomaly, StoreError> {
    let id: i64 = r.get("id");
    let labels: serde_json::Value = r.get("labels");
    let labels: BTreeMap<String, String> = serde_json::from_value(labels)
        .map_err(|e| StoreError::Corrupt(format!("anomalies {id}: labels: {e}")))?;
    let state: String = r.get("state");
    let state = AnomalyState::parse(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("anomalies {id}: state {state:?}")))?;
    let feedback: Option<String> = r.get("feedback");
    let feedback = match feedback {
        None => None,
        Some(f) => Some(
            FeedbackKind::parse(&f)
                .ok_or_else(|| StoreError::Corrupt(format!("anomalies {id}: feedback {f:?}")))?,
        ),
    };
    Ok(Anomaly {
        id,
        signal: r.get("signal"),
        kind: r.get("kind"),
        labels,
        node: r.get("node"),
        detector: r.get("detector"),
        state,
        severity: r.get("severity"),
        score: r.get("score"),
        started_at_ms: r.get("started_ms"),
        ended_at_ms: r.get("ended_ms"),
        last_seen_ms: r.get("last_seen_ms"),
        observed: r.get("observed"),
        expected_low: r.get("expected_low"),
        expected_high: r.get("expected_high"),
        explanation: r.get("explanation"),
        feedback,
        feedback_by: r.get("feedback_by"),
        feedback_at_ms: r.get("feedback_ms"),
    })
}

impl Store {
    /// Opens an anomaly for `o.signal`, or extends the one already open for it: `last_seen`
    /// moves on, severity and score keep the worst seen, and the observed value, band, detector
    /// and explanation follow the most surprising evaluation. The partial unique index on open
    /// anomalies makes this one statement safe even if two writers raced.
    pub async fn observe_anomaly(&self, o: &AnomalyObservation) -> Result<Observed, StoreError> {
        let better = "EXCLUDED.score >= anomalies.score";
        let sql = format!(
            "INSERT INTO anomalies (signal, kind, labels, node, detector, state, severity, score, \
               started_at, last_seen_at, observed, expected_low, expected_high, explanation) \
             VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, {started}, {seen}, $10, $11, $12, $13) \
             ON CONFLICT (signal) WHERE state = 'open' DO UPDATE SET \
               last_seen_at = GREATEST(anomalies.last_seen_at, EXCLUDED.last_seen_at), \
               severity = CASE WHEN {new_rank} > {old_rank} THEN EXCLUDED.severity ELSE anomalies.severity END, \
               score = GREATEST(anomalies.score, EXCLUDED.score), \
               detector = CASE WHEN {better} THEN EXCLUDED.detector ELSE anomalies.detector END, \
               observed = CASE WHEN {better} THEN EXCLUDED.observed ELSE anomalies.observed END, \
               expected_low = CASE WHEN {better} THEN EXCLUDED.expected_low ELSE anomalies.expected_low END, \
               expected_high = CASE WHEN {better} THEN EXCLUDED.expected_high ELSE anomalies.expected_high END, \
               explanation = CASE WHEN {better} THEN EXCLUDED.explanation ELSE anomalies.explanation END \
             RETURNING id, (xmax = 0) AS inserted",
            started = sql_ts(8),
            seen = sql_ts(9),
            new_rank = severity_rank("EXCLUDED.severity"),
            old_rank = severity_rank("anomalies.severity"),
        );
        let row = sqlx::query(&sql)
            .bind(&o.signal)
            .bind(&o.kind)
            .bind(serde_json::to_value(&o.labels).unwrap_or_default())
            .bind(&o.node)
            .bind(&o.detector)
            .bind(&o.severity)
            .bind(o.score)
            .bind(o.started_at_ms)
            .bind(o.seen_at_ms)
            .bind(o.observed)
            .bind(o.expected_low)
            .bind(o.expected_high)
            .bind(&o.explanation)
            .fetch_one(self.pool())
            .await
            .context("opening or extending an anomaly")?;
        let id: i64 = row.get("id");
        Ok(if row.get::<bool, _>("inserted") {
            Observed::Opened(id)
        } else {
            Observed::Extended(id)
        })
    }

    /// Closes the open anomaly of `signal` at `at_ms`; its id, or None when none was open.
    pub async fn close_anomaly(
        &self,
        signal: &str,
        at_ms: TimestampMs,
    ) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar(&format!(
            "UPDATE anomalies SET state = 'closed', ended_at = GREATEST(last_seen_at, {}) \
             WHERE signal = $2 AND state = 'open' RETURNING id",
            sql_ts(1)
        ))
        .bind(at_ms)
        .bind(signal)
        .fetch_optional(self.pool())
        .await
        .context("closing an anomaly")
    }

    /// Closes the open anomaly of `signal` because its signal stopped being reported: it ends
    /// when it was last seen (not now: nothing was observed since), and `reason` is appended
    /// to its explanation so the list and detail say why it closed. Its id, or None when none
    /// was open.
    pub async fn close_absent_anomaly(
        &self,
        signal: &str,
        reason: &str,
    ) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar(
            "UPDATE anomalies SET state = 'closed', ended_at = last_seen_at, \
               explanation = explanation || '; closed: ' || $2 \
             WHERE signal = $1 AND state = 'open' RETURNING id",
        )
        .bind(signal)
        .bind(reason)
        .fetch_optional(self.pool())
        .await
        .context("closing an anomaly whose signal is absent")
    }

    /// Every open anomaly (what the job compares its new findings with).
    pub async fn open_anomalies(&self) -> Result<Vec<Anomaly>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM anomalies WHERE state = 'open' ORDER BY id",
            anomaly_columns()
        ))
        .fetch_all(self.pool())
        .await
        .context("listing open anomalies")?;
        rows.iter().map(anomaly_from_row).collect()
    }

    /// Anomalies matching `q`, newest first (by id), at most `q.limit` (1 to
    /// [`MAX_ANOMALIES_PAGE`]).
    pub async fn list_anomalies(&self, q: &AnomalyQuery) -> Result<Vec<Anomaly>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM anomalies \
             WHERE ($1::text IS NULL OR state = $1) \
               AND ($2::bigint IS NULL OR state = 'open' OR ended_at >= {}) \
               AND ($3::text IS NULL OR node = $3) \
               AND ($4::bigint IS NULL OR id < $4) \
             ORDER BY id DESC LIMIT $5",
            anomaly_columns(),
            sql_ts(2)
        ))
        .bind(q.state.map(AnomalyState::as_str))
        .bind(q.since_ms)
        .bind(&q.node)
        .bind(q.before_id)
        .bind(i64::from(q.limit.clamp(1, MAX_ANOMALIES_PAGE)))
        .fetch_all(self.read_pool())
        .await
        .context("listing anomalies")?;
        rows.iter().map(anomaly_from_row).collect()
    }

    /// One anomaly by id.
    pub async fn anomaly(&self, id: i64) -> Result<Option<Anomaly>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM anomalies WHERE id = $1",
            anomaly_columns()
        ))
        .bind(id)
        .fetch_optional(self.read_pool())
        .await
        .context("reading an anomaly")?;
        row.as_ref().map(anomaly_from_row).transpose()
    }

    /// Records what a person said about anomaly `id`, in one transaction: the anomaly carries
    /// the feedback and is closed (a person has dealt with it), and the window it covered
    /// (start to last seen) joins `anomaly_feedback`, which the detectors read on every run.
    /// None when there is no such anomaly.
    pub async fn give_anomaly_feedback(
        &self,
        id: i64,
        kind: FeedbackKind,
        note: Option<&str>,
        given_by: &str,
        at_ms: TimestampMs,
    ) -> Result<Option<Anomaly>, StoreError> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .context("starting a feedback transaction")?;
        let updated: Option<i64> = sqlx::query_scalar(&format!(
            "UPDATE anomalies SET feedback = $2, feedback_by = $3, feedback_at = {at}, \
               state = 'closed', ended_at = COALESCE(ended_at, GREATEST(last_seen_at, {at})) \
             WHERE id = $1 RETURNING id",
            at = sql_ts(4)
        ))
        .bind(id)
        .bind(kind.as_str())
        .bind(given_by)
        .bind(at_ms)
        .fetch_optional(&mut *tx)
        .await
        .context("recording feedback on an anomaly")?;
        if updated.is_none() {
            return Ok(None);
        }
        sqlx::query(
            "INSERT INTO anomaly_feedback (anomaly_id, signal, window_from, window_to, kind, note, given_by, given_at) \
             SELECT id, signal, started_at, COALESCE(ended_at, last_seen_at), $2, $3, $4, feedback_at \
             FROM anomalies WHERE id = $1",
        )
        .bind(id)
        .bind(kind.as_str())
        .bind(note)
        .bind(given_by)
        .execute(&mut *tx)
        .await
        .context("recording a feedback window")?;
        tx.commit().await.context("committing feedback")?;
        self.anomaly(id).await
    }

    /// Every feedback window, oldest first (the jobs group them by signal).
    pub async fn feedback_windows(&self) -> Result<Vec<FeedbackWindow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT signal, {} AS from_ms, {} AS to_ms, kind FROM anomaly_feedback ORDER BY id",
            sql_ms("window_from"),
            sql_ms("window_to")
        ))
        .fetch_all(self.pool())
        .await
        .context("reading feedback windows")?;
        rows.iter()
            .map(|r| {
                let kind: String = r.get("kind");
                Ok(FeedbackWindow {
                    signal: r.get("signal"),
                    from_ms: r.get("from_ms"),
                    to_ms: r.get("to_ms"),
                    kind: FeedbackKind::parse(&kind).ok_or_else(|| {
                        StoreError::Corrupt(format!("anomaly_feedback.kind {kind:?}"))
                    })?,
                })
            })
            .collect()
    }

    /// Windows of closed anomalies without feedback that ended at or after `since_ms`, per
    /// signal: the detectors leave them out of training, so a bad hour does not teach the
    /// baseline that bad is normal.
    pub async fn past_anomaly_windows(
        &self,
        since_ms: TimestampMs,
    ) -> Result<Vec<(String, TimestampMs, TimestampMs)>, StoreError> {
        sqlx::query_as(&format!(
            "SELECT signal, {}, {} FROM anomalies \
             WHERE state = 'closed' AND feedback IS NULL AND ended_at >= {} ORDER BY id",
            sql_ms("started_at"),
            sql_ms("ended_at"),
            sql_ts(1)
        ))
        .bind(since_ms)
        .fetch_all(self.pool())
        .await
        .context("reading past anomaly windows")
    }

    /// Each pipeline node with open anomalies, coloured by the worst of them; nodes without
    /// open anomalies are not listed (the caller knows its nodes and shows them `ok`).
    pub async fn node_health(&self) -> Result<Vec<NodeHealth>, StoreError> {
        let rows: Vec<(String, i32, i64)> = sqlx::query_as(&format!(
            "SELECT node, max({})::int AS worst, count(*) FROM anomalies \
             WHERE state = 'open' AND node IS NOT NULL GROUP BY node ORDER BY node",
            severity_rank("severity")
        ))
        .fetch_all(self.read_pool())
        .await
        .context("reading node health")?;
        Ok(rows
            .into_iter()
            .map(|(node, worst, n)| NodeHealth {
                node,
                status: match worst {
                    3 => "critical",
                    2 => "warning",
                    _ => "info",
                }
                .to_string(),
                open_anomalies: u32::try_from(n).unwrap_or(u32::MAX),
            })
            .collect())
    }

    /// Records drift comparisons in one transaction; returns their ids in order.
    pub async fn record_drift_results(
        &self,
        results: &[NewDriftResult],
    ) -> Result<Vec<i64>, StoreError> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .context("starting a drift transaction")?;
        let sql = format!(
            "INSERT INTO drift_results (dataset, \"column\", method, value, threshold, drifted, \
               reference_from_at, reference_to_at, current_from_at, current_to_at, evaluated_at, \
               explanation) \
             VALUES ($1, $2, $3, $4, $5, $6, {}, {}, {}, {}, {}, $12) RETURNING id",
            sql_ts(7),
            sql_ts(8),
            sql_ts(9),
            sql_ts(10),
            sql_ts(11)
        );
        let mut ids = Vec::with_capacity(results.len());
        for d in results {
            let id: i64 = sqlx::query_scalar(&sql)
                .bind(&d.dataset)
                .bind(&d.column)
                .bind(&d.method)
                .bind(d.value)
                .bind(d.threshold)
                .bind(d.drifted)
                .bind(d.reference_from_ms)
                .bind(d.reference_to_ms)
                .bind(d.current_from_ms)
                .bind(d.current_to_ms)
                .bind(d.evaluated_at_ms)
                .bind(&d.explanation)
                .fetch_one(&mut *tx)
                .await
                .context("recording a drift result")?;
            ids.push(id);
        }
        tx.commit().await.context("committing drift results")?;
        Ok(ids)
    }

    /// Drift results of a dataset and/or column (None: any), newest evaluation first, at most
    /// `limit` (1 to [`MAX_ANOMALIES_PAGE`]); `before_id` pages on.
    pub async fn list_drift_results(
        &self,
        dataset: Option<&str>,
        column: Option<&str>,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DriftResult>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT id, dataset, \"column\", method, value, threshold, drifted, \
               {} AS rf, {} AS rt, {} AS cf, {} AS ct, {} AS ev, explanation \
             FROM drift_results \
             WHERE ($1::text IS NULL OR dataset = $1) AND ($2::text IS NULL OR \"column\" = $2) \
               AND ($3::bigint IS NULL OR id < $3) \
             ORDER BY id DESC LIMIT $4",
            sql_ms("reference_from_at"),
            sql_ms("reference_to_at"),
            sql_ms("current_from_at"),
            sql_ms("current_to_at"),
            sql_ms("evaluated_at"),
        ))
        .bind(dataset)
        .bind(column)
        .bind(before_id)
        .bind(i64::from(limit.clamp(1, MAX_ANOMALIES_PAGE)))
        .fetch_all(self.read_pool())
        .await
        .context("listing drift results")?;
        Ok(rows
            .iter()
            .map(|r| DriftResult {
                id: r.get("id"),
                dataset: r.get("dataset"),
                column: r.get("column"),
                method: r.get("method"),
                value: r.get("value"),
                threshold: r.get("threshold"),
                drifted: r.get("drifted"),
                reference_from_ms: r.get("rf"),
                reference_to_ms: r.get("rt"),
                current_from_ms: r.get("cf"),
                current_to_ms: r.get("ct"),
                evaluated_at_ms: r.get("ev"),
                explanation: r.get("explanation"),
            })
            .collect())
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::testing::fresh_database_url;
    use crate::StoreConfig;

    fn obs(signal: &str, score: f64, severity: &str, seen: i64) -> AnomalyObservation {
        AnomalyObservation {
            signal: signal.into(),
            kind: "throughput".into(),
            labels: BTreeMap::from([("stage".to_string(), "transform".to_string())]),
            node: Some("transform".into()),
            detector: format!("d{score}"),
            severity: severity.into(),
            score,
            started_at_ms: 1_800_000_000_000,
            seen_at_ms: seen,
            observed: score * 10.0,
            expected_low: 1.0,
            expected_high: 2.0,
            explanation: format!("seen at {seen}"),
        }
    }

    async fn store() -> Store {
        let url = fresh_database_url().await;
        Store::connect(&url, StoreConfig::default()).await.unwrap()
    }

    #[tokio::test]
    async fn one_open_anomaly_per_signal_extends_keeping_the_worst_and_closes() {
        let s = store().await;
        let t = 1_800_000_060_000;
        let first = s
            .observe_anomaly(&obs("sig", 0.8, "warning", t))
            .await
            .unwrap();
        assert!(matches!(first, Observed::Opened(_)));
        // A milder evaluation extends it without lowering severity or replacing the text.
        let second = s
            .observe_anomaly(&obs("sig", 0.6, "info", t + 60_000))
            .await
            .unwrap();
        assert_eq!(second, Observed::Extended(first.id()));
        let a = s.anomaly(first.id()).await.unwrap().unwrap();
        assert_eq!(
            (
                a.severity.as_str(),
                a.score,
                a.last_seen_ms,
                a.explanation.as_str()
            ),
            ("warning", 0.8, t + 60_000, "seen at 1800000060000")
        );
        // A worse one raises severity and takes over the explanation.
        s.observe_anomaly(&obs("sig", 0.95, "critical", t + 120_000))
            .await
            .unwrap();
        let a = s.anomaly(first.id()).await.unwrap().unwrap();
        assert_eq!(
            (a.severity.as_str(), a.detector.as_str()),
            ("critical", "d0.95")
        );
        assert_eq!(a.started_at_ms, 1_800_000_000_000);
        // Another signal is another anomaly.
        let other = s
            .observe_anomaly(&obs("other", 0.8, "warning", t))
            .await
            .unwrap();
        assert_ne!(other.id(), first.id());
        assert_eq!(s.open_anomalies().await.unwrap().len(), 2);

        // Closing ends it; the next finding opens a new one.
        assert_eq!(
            s.close_anomaly("sig", t + 180_000).await.unwrap(),
            Some(first.id())
        );
        assert_eq!(s.close_anomaly("sig", t + 180_000).await.unwrap(), None);
        let a = s.anomaly(first.id()).await.unwrap().unwrap();
        assert_eq!(
            (a.state, a.ended_at_ms),
            (AnomalyState::Closed, Some(t + 180_000))
        );
        let again = s
            .observe_anomaly(&obs("sig", 0.8, "warning", t + 240_000))
            .await
            .unwrap();
        assert!(matches!(again, Observed::Opened(id) if id != first.id()));

        // Lists: filters by state, node and time; newest first; health per node.
        let open = s
            .list_anomalies(&AnomalyQuery {
                state: Some(AnomalyState::Open),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            open.iter().map(|a| a.id).collect::<Vec<_>>(),
            vec![again.id(), other.id()]
        );
        let closed_late = s
            .list_anomalies(&AnomalyQuery {
                state: Some(AnomalyState::Closed),
                since_ms: Some(t + 200_000),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(closed_late.is_empty());
        let nowhere = s
            .list_anomalies(&AnomalyQuery {
                node: Some("loader".into()),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(nowhere.is_empty());
        let health = s.node_health().await.unwrap();
        assert_eq!(
            health,
            vec![NodeHealth {
                node: "transform".into(),
                status: "warning".into(),
                open_anomalies: 2
            }]
        );
        let windows = s.past_anomaly_windows(0).await.unwrap();
        assert_eq!(
            windows,
            vec![("sig".to_string(), 1_800_000_000_000, t + 180_000)]
        );
    }

    #[tokio::test]
    async fn an_absent_signal_closes_at_its_last_sighting_with_the_reason() {
        let s = store().await;
        let t = 1_800_000_060_000;
        let id = s
            .observe_anomaly(&obs("sig", 0.8, "warning", t))
            .await
            .unwrap()
            .id();
        s.observe_anomaly(&obs("sig", 0.8, "warning", t + 60_000))
            .await
            .unwrap();
        assert_eq!(
            s.close_absent_anomaly("sig", "signal absent for 3 intervals")
                .await
                .unwrap(),
            Some(id)
        );
        assert_eq!(s.close_absent_anomaly("sig", "again").await.unwrap(), None);
        let a = s.anomaly(id).await.unwrap().unwrap();
        assert_eq!(
            (a.state, a.ended_at_ms, a.explanation.as_str()),
            (
                AnomalyState::Closed,
                Some(t + 60_000),
                "seen at 1800000120000; closed: signal absent for 3 intervals"
            )
        );
    }

    #[tokio::test]
    async fn feedback_closes_the_anomaly_and_records_its_window() {
        let s = store().await;
        let t = 1_800_000_060_000;
        let id = s
            .observe_anomaly(&obs("sig", 0.8, "warning", t))
            .await
            .unwrap()
            .id();
        assert!(s
            .give_anomaly_feedback(id + 99, FeedbackKind::Expected, None, "api", t)
            .await
            .unwrap()
            .is_none());
        let a = s
            .give_anomaly_feedback(
                id,
                FeedbackKind::FalseAlarm,
                Some("backfill"),
                "api",
                t + 5_000,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.feedback, Some(FeedbackKind::FalseAlarm));
        assert_eq!(a.state, AnomalyState::Closed);
        assert_eq!(a.feedback_at_ms, Some(t + 5_000));
        assert_eq!(
            s.feedback_windows().await.unwrap(),
            vec![FeedbackWindow {
                signal: "sig".into(),
                from_ms: 1_800_000_000_000,
                to_ms: t + 5_000,
                kind: FeedbackKind::FalseAlarm,
            }]
        );
        // Marked windows are feedback, not past anomalies to leave out of training.
        assert!(s.past_anomaly_windows(0).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn drift_results_round_trip_and_filter() {
        let s = store().await;
        let d = |column: &str, ev: i64| DriftResult {
            id: 0,
            dataset: "transform".into(),
            column: column.into(),
            method: "psi".into(),
            value: 0.4,
            threshold: 0.1,
            drifted: true,
            reference_from_ms: 1_000,
            reference_to_ms: 2_000,
            current_from_ms: 3_000,
            current_to_ms: 4_000,
            evaluated_at_ms: ev,
            explanation: "moved".into(),
        };
        let ids = s
            .record_drift_results(&[d("a", 5_000), d("b", 6_000)])
            .await
            .unwrap();
        let all = s.list_drift_results(None, None, None, 10).await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].id, ids[1]);
        assert_eq!(
            all[1],
            DriftResult {
                id: ids[0],
                ..d("a", 5_000)
            }
        );
        let b = s
            .list_drift_results(Some("transform"), Some("b"), None, 10)
            .await
            .unwrap();
        assert_eq!(b.len(), 1);
        let paged = s
            .list_drift_results(None, None, Some(ids[1]), 10)
            .await
            .unwrap();
        assert_eq!(paged.iter().map(|r| r.id).collect::<Vec<_>>(), vec![ids[0]]);
    }
}
