//! What the Pipelines, Anomalies and Drift pages read from the analysis tables
//! (`migrations/0050_analysis.sql`): anomalies with filters, one anomaly, per-node health from
//! the open ones, drift results, and the one write the pages make, a person's feedback on an
//! anomaly (kept on the anomaly for display and in `anomaly_feedback` for the detectors).
//!
//! The detection jobs own the writes that open, extend and close anomalies; this module only
//! reads those rows, so the pages work against whatever the jobs have written.

use crate::anomalies::{anomaly_columns, anomaly_from_row};
use crate::error::DbContext;
use crate::{sql_ms, Store, StoreError};
use model::anomaly::{Anomaly, AnomalyState, DriftResult};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row};

/// Which anomalies to list. Every field narrows the list; `None` means "any".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AnomalyQuery {
    pub state: Option<AnomalyState>,
    /// `info`, `warning` or `critical`, matched exactly.
    pub severity: Option<String>,
    pub node: Option<String>,
    /// Anomalies still going on at or after this time (open, or ended since).
    pub since_ms: Option<i64>,
    /// Anomalies whose span overlaps `[from, to]` (related anomalies of one window); an open
    /// one spans until now.
    pub overlapping: Option<(i64, i64)>,
    /// At most this many rows; open ones come first, then the latest started.
    pub limit: i64,
}

/// Which drift results to list.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DriftQuery {
    pub dataset: Option<String>,
    pub column: Option<String>,
    /// Only the latest result per dataset, column and method (the Drift page's table);
    /// otherwise every result, newest first (a column's history).
    pub latest_only: bool,
    pub limit: i64,
}

fn drift_from_row(r: &PgRow) -> DriftResult {
    DriftResult {
        id: r.get("id"),
        dataset: r.get("dataset"),
        column: r.get("column"),
        method: r.get("method"),
        value: r.get("value"),
        threshold: r.get("threshold"),
        drifted: r.get("drifted"),
        reference_from_ms: r.get("reference_from_ms"),
        reference_to_ms: r.get("reference_to_ms"),
        current_from_ms: r.get("current_from_ms"),
        current_to_ms: r.get("current_to_ms"),
        evaluated_at_ms: r.get("evaluated_ms"),
        explanation: r.get("explanation"),
    }
}

impl Store {
    /// Anomalies matching `q`: open ones first, then by start time, newest first.
    pub async fn read_anomalies(&self, q: &AnomalyQuery) -> Result<Vec<Anomaly>, StoreError> {
        let mut b: QueryBuilder<Postgres> = QueryBuilder::new(format!(
            "SELECT {} FROM anomalies WHERE TRUE",
            anomaly_columns()
        ));
        if let Some(state) = q.state {
            b.push(" AND state = ").push_bind(state.as_str());
        }
        if let Some(sev) = &q.severity {
            b.push(" AND severity = ").push_bind(sev.clone());
        }
        if let Some(node) = &q.node {
            b.push(" AND node = ").push_bind(node.clone());
        }
        if let Some(since) = q.since_ms {
            b.push(" AND (state = 'open' OR coalesce(ended_at, last_seen_at) >= to_timestamp(")
                .push_bind(since as f64)
                .push(" / 1000))");
        }
        if let Some((from, to)) = q.overlapping {
            // An open anomaly is still going on, whenever it was last seen.
            b.push(" AND started_at <= to_timestamp(")
                .push_bind(to as f64)
                .push(" / 1000) AND (state = 'open' OR coalesce(ended_at, last_seen_at) >= to_timestamp(")
                .push_bind(from as f64)
                .push(" / 1000))");
        }
        b.push(" ORDER BY (state = 'open') DESC, started_at DESC, id DESC LIMIT ")
            .push_bind(q.limit.max(0));
        let rows = b
            .build()
            .fetch_all(self.read_pool())
            .await
            .context("reading anomalies")?;
        rows.iter().map(anomaly_from_row).collect()
    }

    /// Drift results matching `q`, ordered by dataset and column, newest first within each.
    pub async fn read_drift_results(&self, q: &DriftQuery) -> Result<Vec<DriftResult>, StoreError> {
        let mut b: QueryBuilder<Postgres> = QueryBuilder::new(format!(
            "SELECT {distinct} id, dataset, \"column\", method, value, threshold, drifted, \
             {} AS reference_from_ms, {} AS reference_to_ms, {} AS current_from_ms, \
             {} AS current_to_ms, {} AS evaluated_ms, explanation \
             FROM drift_results WHERE TRUE",
            sql_ms("reference_from_at"),
            sql_ms("reference_to_at"),
            sql_ms("current_from_at"),
            sql_ms("current_to_at"),
            sql_ms("evaluated_at"),
            distinct = if q.latest_only {
                "DISTINCT ON (dataset, \"column\", method)"
            } else {
                ""
            },
        ));
        if let Some(d) = &q.dataset {
            b.push(" AND dataset = ").push_bind(d.clone());
        }
        if let Some(c) = &q.column {
            b.push(" AND \"column\" = ").push_bind(c.clone());
        }
        if q.latest_only {
            b.push(" ORDER BY dataset, \"column\", method, evaluated_at DESC, id DESC");
        } else {
            b.push(" ORDER BY evaluated_at DESC, id DESC");
        }
        b.push(" LIMIT ").push_bind(q.limit.max(0));
        let rows = b
            .build()
            .fetch_all(self.read_pool())
            .await
            .context("reading drift results")?;
        Ok(rows.iter().map(drift_from_row).collect())
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::testing::fresh_database_url;
    use crate::StoreConfig;
    use model::anomaly::FeedbackKind;

    const T0: i64 = 1_764_000_000_000;
    const MIN: i64 = 60_000;

    async fn store() -> Store {
        let url = fresh_database_url().await;
        Store::connect(&url, StoreConfig::default()).await.unwrap()
    }

    /// Inserts an anomaly as the detection jobs would; returns its id.
    async fn insert(
        st: &Store,
        signal: &str,
        node: &str,
        state: &str,
        severity: &str,
        start: i64,
        end: Option<i64>,
    ) -> i64 {
        sqlx::query_scalar(
            "INSERT INTO anomalies (signal, kind, labels, node, detector, state, severity, score, \
               started_at, ended_at, last_seen_at, observed, expected_low, expected_high, explanation) \
             VALUES ($1, 'latency_p95', '{\"stage\": \"transform\"}', $2, 'seasonal', $3, $4, 0.9, \
               to_timestamp($5::float8 / 1000), to_timestamp($6::float8 / 1000), \
               to_timestamp($7::float8 / 1000), 4.1, 0.8, 1.2, 'p95 latency 4.1 s, expected 0.8–1.2 s') \
             RETURNING id",
        )
        .bind(signal)
        .bind(node)
        .bind(state)
        .bind(severity)
        .bind(start as f64)
        .bind(end.map(|e| e as f64))
        .bind(end.unwrap_or(start + 5 * MIN) as f64)
        .fetch_one(st.pool())
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn lists_open_first_and_filters_by_state_severity_node_and_time() {
        let st = store().await;
        let old = insert(
            &st,
            "a",
            "transform",
            "closed",
            "warning",
            T0,
            Some(T0 + 10 * MIN),
        )
        .await;
        let open = insert(
            &st,
            "b",
            "transform",
            "open",
            "critical",
            T0 - 60 * MIN,
            None,
        )
        .await;
        let newer = insert(
            &st,
            "c",
            "feature_store",
            "closed",
            "info",
            T0 + 30 * MIN,
            Some(T0 + 40 * MIN),
        )
        .await;
        let all = st
            .read_anomalies(&AnomalyQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        let ids: Vec<i64> = all.iter().map(|a| a.id).collect();
        assert_eq!(ids, vec![open, newer, old], "open first, then newest start");
        let a = &all[0];
        assert_eq!(a.state, AnomalyState::Open);
        assert_eq!(a.started_at_ms, T0 - 60 * MIN);
        assert_eq!(a.ended_at_ms, None);
        assert_eq!(a.labels.get("stage").map(String::as_str), Some("transform"));
        assert_eq!(a.explanation, "p95 latency 4.1 s, expected 0.8–1.2 s");
        assert_eq!(all[2].ended_at_ms, Some(T0 + 10 * MIN));

        let q = |f: fn(&mut AnomalyQuery)| {
            let mut q = AnomalyQuery {
                limit: 10,
                ..Default::default()
            };
            f(&mut q);
            q
        };
        let ids = |v: Vec<Anomaly>| v.into_iter().map(|a| a.id).collect::<Vec<_>>();
        let closed = st
            .read_anomalies(&q(|q| q.state = Some(AnomalyState::Closed)))
            .await
            .unwrap();
        assert_eq!(ids(closed), vec![newer, old]);
        let crit = st
            .read_anomalies(&q(|q| q.severity = Some("critical".into())))
            .await
            .unwrap();
        assert_eq!(ids(crit), vec![open]);
        let fs = st
            .read_anomalies(&q(|q| q.node = Some("feature_store".into())))
            .await
            .unwrap();
        assert_eq!(ids(fs), vec![newer]);
        // Since T0+20min: the open one and the one that ended at T0+40min.
        let since = st
            .read_anomalies(&q(|q| q.since_ms = Some(T0 + 20 * MIN)))
            .await
            .unwrap();
        assert_eq!(ids(since), vec![open, newer]);
        // Overlapping [T0+5, T0+12]: the old closed one and the open one (started before).
        let overlap = st
            .read_anomalies(&q(|q| q.overlapping = Some((T0 + 5 * MIN, T0 + 12 * MIN))))
            .await
            .unwrap();
        assert_eq!(ids(overlap), vec![open, old]);
        let one = st.read_anomalies(&q(|q| q.limit = 1)).await.unwrap();
        assert_eq!(ids(one), vec![open]);
        assert_eq!(st.anomaly(old).await.unwrap().unwrap().signal, "a");
        assert!(st.anomaly(old + 1000).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn feedback_is_shown_on_the_anomaly_and_kept_as_a_window_for_the_detectors() {
        let st = store().await;
        let id = insert(
            &st,
            "sig",
            "transform",
            "closed",
            "warning",
            T0,
            Some(T0 + 10 * MIN),
        )
        .await;
        let a = st
            .give_anomaly_feedback(
                id,
                FeedbackKind::FalseAlarm,
                Some("known backfill"),
                "web",
                T0 + 20 * MIN,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.feedback, Some(FeedbackKind::FalseAlarm));
        assert_eq!(a.feedback_by.as_deref(), Some("web"));
        assert!(a.feedback_at_ms.is_some());
        let (signal, from, to, kind, note): (String, i64, i64, String, Option<String>) =
            sqlx::query_as(
                "SELECT signal, (extract(epoch from window_from) * 1000)::bigint, \
                 (extract(epoch from window_to) * 1000)::bigint, kind, note \
                 FROM anomaly_feedback WHERE anomaly_id = $1",
            )
            .bind(id)
            .fetch_one(st.pool())
            .await
            .unwrap();
        assert_eq!(
            (signal.as_str(), from, to, kind.as_str(), note.as_deref()),
            (
                "sig",
                T0,
                T0 + 10 * MIN,
                "false_alarm",
                Some("known backfill")
            )
        );
        // A second word replaces the first on the anomaly; both stay in the feedback table.
        let a = st
            .give_anomaly_feedback(id, FeedbackKind::Expected, None, "web", T0 + 21 * MIN)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.feedback, Some(FeedbackKind::Expected));
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM anomaly_feedback")
            .fetch_one(st.pool())
            .await
            .unwrap();
        assert_eq!(n, 2);
        assert!(st
            .give_anomaly_feedback(
                id + 1000,
                FeedbackKind::Expected,
                None,
                "web",
                T0 + 22 * MIN
            )
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn node_health_is_the_worst_open_severity_with_its_count() {
        let st = store().await;
        insert(&st, "a", "transform", "open", "warning", T0, None).await;
        insert(&st, "b", "transform", "open", "critical", T0, None).await;
        insert(&st, "c", "feature_store", "open", "info", T0, None).await;
        // Closed ones do not count.
        insert(
            &st,
            "d",
            "stream_ingest",
            "closed",
            "critical",
            T0,
            Some(T0 + MIN),
        )
        .await;
        let h = st.node_health().await.unwrap();
        let got: Vec<(&str, &str, u32)> = h
            .iter()
            .map(|n| (n.node.as_str(), n.status.as_str(), n.open_anomalies))
            .collect();
        assert_eq!(
            got,
            vec![("feature_store", "info", 1), ("transform", "critical", 2)]
        );
    }

    #[tokio::test]
    async fn drift_results_latest_per_column_or_a_columns_history() {
        let st = store().await;
        for (col, t, value, drifted) in [
            ("basket_value", T0, 0.05, false),
            ("basket_value", T0 + 60 * MIN, 0.41, true),
            ("orders_7d", T0, 0.02, false),
        ] {
            sqlx::query(
                "INSERT INTO drift_results (dataset, \"column\", method, value, threshold, drifted, \
                   reference_from_at, reference_to_at, current_from_at, current_to_at, evaluated_at, explanation) \
                 VALUES ('features_daily', $1, 'wasserstein', $2, 0.1, $3, \
                   to_timestamp($4::float8 / 1000 - 86400), to_timestamp($4::float8 / 1000 - 3600), \
                   to_timestamp($4::float8 / 1000 - 3600), to_timestamp($4::float8 / 1000), \
                   to_timestamp($4::float8 / 1000), 'x')",
            )
            .bind(col)
            .bind(value)
            .bind(drifted)
            .bind(t as f64)
            .execute(st.pool())
            .await
            .unwrap();
        }
        let latest = st
            .read_drift_results(&DriftQuery {
                latest_only: true,
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        let got: Vec<(&str, f64, bool)> = latest
            .iter()
            .map(|d| (d.column.as_str(), d.value, d.drifted))
            .collect();
        assert_eq!(
            got,
            vec![("basket_value", 0.41, true), ("orders_7d", 0.02, false)]
        );
        assert_eq!(latest[0].evaluated_at_ms, T0 + 60 * MIN);
        assert_eq!(latest[0].current_from_ms, T0 + 60 * MIN - 3_600_000);
        let history = st
            .read_drift_results(&DriftQuery {
                dataset: Some("features_daily".into()),
                column: Some("basket_value".into()),
                latest_only: false,
                limit: 100,
            })
            .await
            .unwrap();
        let values: Vec<f64> = history.iter().map(|d| d.value).collect();
        assert_eq!(values, vec![0.41, 0.05], "newest first");
    }
}
