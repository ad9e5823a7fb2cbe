//! Server functions: the API between the pages and the server. Each one reads through the
//! [`Backend`](crate::Backend) found in the Leptos context and returns plain serde data, so
//! the same values render on the server and hydrate in the browser.

use crate::chart::ChartData;
use crate::range::ExploreState;
use leptos::prelude::*;
use model::{StatusInfo, TargetHealth, TimestampMs};
use serde::{Deserialize, Serialize};

/// More series than this make an unreadable chart; the rest are counted, not drawn.
pub const MAX_SERIES: usize = 40;
/// Label values offered in one builder select.
///
/// Endpoints are named explicitly: the default name hashes the crate's directory, so a
/// bundle and a server built from different checkouts would not find each other.
pub const MAX_LABEL_VALUES: usize = 200;

/// What the Explore form offers: every metric, and the labels (with values) of the chosen one.
/// The query is parsed here on the server (its first selector names the metric and labels),
/// which keeps the PromQL parser and the regex engine out of the browser bundle.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ExploreChoices {
    pub metrics: Vec<String>,
    /// The metric named by the current selector, if any.
    pub metric: Option<String>,
    pub labels: Vec<(String, Vec<String>)>,
    /// The selector's `label="value"` matchers, to preselect in the label selects.
    pub chosen: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetsView {
    /// The server's clock when the list was read, for "3 s ago".
    pub now: TimestampMs,
    pub targets: Vec<TargetHealth>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusView {
    pub now: TimestampMs,
    pub info: StatusInfo,
}

/// The data backend every server function reads through (the pages' modules use this one).
#[cfg(feature = "ssr")]
pub(crate) fn backend() -> Result<std::sync::Arc<dyn crate::Backend>, ServerFnError> {
    use_context::<std::sync::Arc<dyn crate::Backend>>().ok_or_else(|| {
        ServerFnError::new(
            "the server did not provide a data backend to the web app (router set-up bug)",
        )
    })
}

#[cfg(feature = "ssr")]
pub(crate) fn now_ms() -> TimestampMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as TimestampMs)
        .unwrap_or(0)
}

#[server(prefix = "/app-fn", endpoint = "explore_options")]
pub async fn explore_options(q: String) -> Result<ExploreChoices, ServerFnError> {
    let backend = backend()?;
    let metrics = backend.metric_names().await.map_err(ServerFnError::new)?;
    // A query that does not parse is reported by the chart; here it just chooses nothing.
    let selector = query::plan::first_selector(&q);
    let metric = selector.as_ref().and_then(|s| s.metric.clone());
    let chosen = selector
        .map(|s| {
            s.matchers
                .into_iter()
                .filter(|m| m.op == model::MatchOp::Eq)
                .map(|m| (m.name, m.value))
                .collect()
        })
        .unwrap_or_default();
    let mut labels = Vec::new();
    if let Some(metric) = metric.as_ref().filter(|m| metrics.contains(m)) {
        for name in backend
            .label_names(metric)
            .await
            .map_err(ServerFnError::new)?
        {
            // A bucket bound is not a choice: the picker draws a histogram's quantiles over
            // all of them.
            if name == "__name__" || (name == "le" && metric.ends_with("_bucket")) {
                continue;
            }
            let mut values = backend
                .label_values(metric, &name)
                .await
                .map_err(ServerFnError::new)?;
            values.truncate(MAX_LABEL_VALUES);
            labels.push((name, values));
        }
    }
    Ok(ExploreChoices {
        metrics,
        metric,
        labels,
        chosen,
    })
}

#[server(prefix = "/app-fn", endpoint = "query_chart")]
pub async fn query_chart(state: ExploreState) -> Result<ChartData, ServerFnError> {
    if state.q.trim().is_empty() {
        return Err(ServerFnError::new(
            "choose a metric or type a PromQL query such as rate(up[5m])",
        ));
    }
    let (start, end) = state.range.resolve(now_ms());
    let step_ms = crate::range::auto_step(end - start);
    let query = model::RangeQuery {
        start,
        end,
        step_ms,
        aggregation: model::Aggregation::Avg,
    };
    let mut series = backend()?
        .signal_range(state.q.trim(), query)
        .await
        .map_err(ServerFnError::new)?;
    series.sort_by(|a, b| (&a.metric, &a.labels).cmp(&(&b.metric, &b.labels)));
    let omitted_series = series.len().saturating_sub(MAX_SERIES);
    series.truncate(MAX_SERIES);
    // Markers are context: a failure to read them must not hide the chart itself.
    let events = backend()?
        .change_events(model::ChangeEventQuery {
            start_ms: Some(start),
            end_ms: Some(end),
            limit: crate::chart::MAX_EVENT_MARKERS,
            ..Default::default()
        })
        .await
        .unwrap_or_default();
    let selector = query::plan::first_selector(state.q.trim());
    let anomalies = match &selector {
        Some(sel) => anomaly_marks(sel, start, end).await,
        None => Vec::new(),
    };
    let last_sample = match (&selector, series.is_empty()) {
        (Some(sel), true) => backend()?.last_sample(sel).await.unwrap_or_default(),
        _ => None,
    };
    Ok(ChartData {
        selector: state.q.trim().to_string(),
        start,
        end,
        step_ms,
        series,
        omitted_series,
        events,
        band: None,
        anomalies,
        last_sample,
    })
}

/// Anomalies overlapping `[start, end]` whose signal reads the selector's metric with labels
/// that agree with its matchers: the ones a chart of that selector should mark. Markers
/// are context: a failure to read them leaves the chart without them.
#[cfg(feature = "ssr")]
async fn anomaly_marks(
    sel: &model::Selector,
    start: TimestampMs,
    end: TimestampMs,
) -> Vec<crate::chart::AnomalyMark> {
    let Some(metric) = sel.metric.as_deref() else {
        return Vec::new();
    };
    let Ok(b) = backend() else {
        return Vec::new();
    };
    let found = b
        .anomalies(crate::anomalies::AnomalyFilter {
            overlapping: Some((start, end)),
            limit: 200,
            ..Default::default()
        })
        .await
        .unwrap_or_default();
    found
        .into_iter()
        .filter(|a| signal_reads(&a.signal, metric))
        // A label the anomaly does not carry (`le`, an aggregated-away label) does not rule it
        // out; one it carries must match.
        .filter(|a| {
            sel.matchers.iter().all(|m| {
                a.labels
                    .get(&m.name)
                    .is_none_or(|v| m.matches(Some(v.as_str())))
            })
        })
        .take(crate::chart::MAX_EVENT_MARKERS as usize)
        .map(|a| crate::chart::AnomalyMark {
            id: a.id,
            from: a.started_at_ms,
            to: a.ended_at_ms,
            severity: a.severity.clone(),
            explanation: a.explanation.clone(),
        })
        .collect()
}

/// Whether a signal's PromQL names `metric` as a whole word (`rate(x_total{...}[2m])` reads
/// `x_total`, not `x`).
#[cfg(feature = "ssr")]
fn signal_reads(signal: &str, metric: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    signal.match_indices(metric).any(|(i, _)| {
        let before = signal[..i].chars().next_back();
        let after = signal[i + metric.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

#[server(prefix = "/app-fn", endpoint = "list_targets")]
pub async fn list_targets() -> Result<TargetsView, ServerFnError> {
    let mut targets = backend()?.targets().await;
    targets.sort_by(|a, b| (&a.job, &a.url).cmp(&(&b.job, &b.url)));
    Ok(TargetsView {
        now: now_ms(),
        targets,
    })
}

#[server(prefix = "/app-fn", endpoint = "get_status")]
pub async fn get_status() -> Result<StatusView, ServerFnError> {
    let info = backend()?.status().await.map_err(ServerFnError::new)?;
    Ok(StatusView {
        now: now_ms(),
        info,
    })
}
