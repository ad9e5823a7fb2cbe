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
}
