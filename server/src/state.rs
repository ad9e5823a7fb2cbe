//! Shared server state, and the web app's view of it (`app::Backend`).

use crate::ingest::IngestQueue;
use crate::scrape_manager::TargetHealthBoard;
use crate::telemetry::SelfMetrics;
use model::{RangeQuery, RangeSeries, Selector, StatusInfo, TargetHealth};
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub store: store::Store,
    pub queue: IngestQueue,
    pub metrics: Arc<SelfMetrics>,
    pub board: TargetHealthBoard,
    pub started_at: i64,
    pub retention_days: u32,
    /// Where the data lives, for the Status page, without credentials.
    pub database: String,
    /// Limits and answers of the push receivers (`[receivers]` in the config).
    pub receivers: crate::config::ReceiversConfig,
    /// Bearer tokens and series limits shared by every push receiver.
    pub guard: Arc<crate::guard::Guard>,
    /// Running totals of the series derived from OTLP traces and logs, and how evidence is kept.
    pub otlp_signals: Arc<crate::otlp_signals::SignalState>,
    /// Running totals of OTLP delta metrics (see `collectors::otlp::metrics`); lost on restart,
    /// which readers see as a counter reset.
    pub otlp_metrics: Arc<std::sync::Mutex<collectors::otlp::metrics::DeltaAccumulator>>,
}

impl AppState {
    pub async fn status_info(&self) -> Result<StatusInfo, store::StoreError> {
        Ok(StatusInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            storage_mode: self.store.mode().to_string(),
            database: self.database.clone(),
            series_count: self.store.series_count().await?,
            samples_written_total: self.metrics.samples_written_total(),
            ingest_rate: self.metrics.ingest_rate(),
            queue_depth: self.queue.depth(),
            queue_capacity: self.queue.capacity(),
            started_at: self.started_at,
            retention_days: self.retention_days,
        })
    }
}

#[async_trait::async_trait]
impl app::Backend for AppState {
    async fn metric_names(&self) -> Result<Vec<String>, String> {
        self.store.metric_names().await.map_err(|e| e.to_string())
    }

    async fn label_names(&self, metric: &str) -> Result<Vec<String>, String> {
        self.store
            .label_names(Some(metric))
            .await
            .map_err(|e| e.to_string())
    }

    async fn label_values(&self, metric: &str, label: &str) -> Result<Vec<String>, String> {
        self.store
            .label_values(label, Some(metric))
            .await
            .map_err(|e| e.to_string())
    }

    async fn query_range(&self, selector: &str, q: RangeQuery) -> Result<Vec<RangeSeries>, String> {
        let sel = Selector::parse(selector).map_err(|e| e.message)?;
        if q.step_ms <= 0 || (q.end - q.start) / q.step_ms > crate::api::MAX_POINTS_PER_SERIES {
            return Err(format!(
                "too many points: {} ms step over this range; choose a larger step",
                q.step_ms
            ));
        }
        self.store
            .query_range(&sel, &q)
            .await
            .map_err(|e| e.to_string())
    }

    async fn targets(&self) -> Vec<TargetHealth> {
        self.board.snapshot()
    }

    async fn status(&self) -> Result<StatusInfo, String> {
        self.status_info().await.map_err(|e| e.to_string())
    }

    async fn dq_datasets(&self) -> Result<Vec<app::quality::DqDatasetRow>, String> {
        let rows = self.store.dq_datasets().await.map_err(|e| e.to_string())?;
        Ok(rows
            .into_iter()
            .map(|d| app::quality::DqDatasetRow {
                dataset: d.dataset,
                checks: d.checks,
                pass: d.pass,
                warn: d.warn,
                fail: d.fail,
                error: d.error,
                skipped: d.skipped,
                status: d.status,
                pass_ratio: d.pass_ratio,
                last_run_ms: d.last_run_ms,
                tools: d.tools,
            })
            .collect())
    }

    async fn dq_checks(
        &self,
        dataset: &str,
        last_n: u32,
    ) -> Result<Vec<app::quality::DqCheckRow>, String> {
        let rows = self
            .store
            .dq_checks(dataset, last_n)
            .await
            .map_err(|e| e.to_string())?;
        Ok(rows
            .into_iter()
            .map(|c| app::quality::DqCheckRow {
                tool: c.tool,
                suite: c.suite,
                dataset: c.dataset,
                check_name: c.check_name,
                check_type: c.check_type,
                column: c.column,
                expected: c.expected,
                runs: c
                    .runs
                    .into_iter()
                    .map(|r| app::quality::DqRunCell {
                        run_time_ms: r.run_time_ms,
                        status: r.status,
                        observed_value: r.observed_value,
                        observed_raw: r.observed_raw,
                        message: r.message,
                    })
                    .collect(),
            })
            .collect())
    }

    async fn change_events(
        &self,
        q: model::ChangeEventQuery,
    ) -> Result<Vec<model::ChangeEvent>, String> {
        self.store
            .list_change_events(&q)
            .await
            .map_err(|e| e.to_string())
    }
}
