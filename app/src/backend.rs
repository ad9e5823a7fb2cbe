//! What the server must provide for the pages: the server functions in [`crate::api`] find
//! an `Arc<dyn Backend>` in the Leptos context (the server's router provides it) and read
//! everything through it.

/// Data access for the pages. Errors are user-facing text: say what is wrong and what to do.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    async fn metric_names(&self) -> Result<Vec<String>, String>;
    async fn label_names(&self, metric: &str) -> Result<Vec<String>, String>;
    async fn label_values(&self, metric: &str, label: &str) -> Result<Vec<String>, String>;
    /// `selector` is Prometheus selector text, e.g. `demo_rows_total{job="x"}`; errors are user-facing text.
    async fn query_range(
        &self,
        selector: &str,
        q: model::RangeQuery,
    ) -> Result<Vec<model::RangeSeries>, String>;
    async fn targets(&self) -> Vec<model::TargetHealth>;
    async fn status(&self) -> Result<model::StatusInfo, String>;
    /// Data-quality datasets with the latest status of their checks, worst first. The default
    /// says the backend keeps no data-quality results.
    async fn dq_datasets(&self) -> Result<Vec<model::dq::DatasetSummary>, String> {
        Err("this backend keeps no data-quality results".into())
    }
    /// The checks of `dataset` with their last `last_n` runs, oldest first.
    async fn dq_checks(
        &self,
        dataset: &str,
        last_n: u32,
    ) -> Result<Vec<model::dq::CheckHistory>, String> {
        let _ = (dataset, last_n);
        Err("this backend keeps no data-quality results".into())
    }
    /// Change events matching `q`, newest first (markers on Explore charts). The default
    /// keeps none, so a chart simply shows no markers.
    async fn change_events(
        &self,
        q: model::ChangeEventQuery,
    ) -> Result<Vec<model::ChangeEvent>, String> {
        let _ = q;
        Ok(Vec::new())
    }
}
