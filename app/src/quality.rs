//! The Data quality page: every dataset with the latest status of its checks and its pass
//! ratio, and for the chosen dataset (`?dataset=`, default the worst) each check with a
//! history strip of its last runs. Every check links to Explore with its
//! `dq_check_status` series selected over the span of its history.

use crate::range::encode_query_value;
use crate::timefmt::format_utc;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

/// Runs shown per check in the history strip.
pub const STRIP_RUNS: u32 = 20;

// The rows are the store's and the read API's own types (one definition in `model`); the
// page names them by what they are here.
pub use model::dq::{
    CheckHistory as DqCheckRow, DatasetSummary as DqDatasetRow, RunCell as DqRunCell,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityPageData {
    pub datasets: Vec<DqDatasetRow>,
    /// The dataset whose checks are shown.
    pub selected: Option<String>,
    pub checks: Vec<DqCheckRow>,
}

#[server(prefix = "/app-fn", endpoint = "quality_view")]
pub async fn quality_view(dataset: Option<String>) -> Result<QualityPageData, ServerFnError> {
    let backend = use_context::<std::sync::Arc<dyn crate::Backend>>()
        .ok_or_else(|| ServerFnError::new("the server did not provide a data backend"))?;
    let datasets = backend.dq_datasets().await.map_err(ServerFnError::new)?;
    let selected = dataset
        .filter(|d| !d.is_empty())
        .or_else(|| datasets.first().map(|d| d.dataset.clone()));
    let checks = match &selected {
        Some(d) => backend
            .dq_checks(d, STRIP_RUNS)
            .await
            .map_err(ServerFnError::new)?,
        None => Vec::new(),
    };
    Ok(QualityPageData {
        datasets,
        selected,
        checks,
    })
}

/// Escapes a label value for a selector.
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `dq_check_status{...}` of a check, as the receiver labels it.
pub fn status_selector(c: &DqCheckRow) -> String {
    let mut labels = vec![
        ("tool", c.tool.as_str()),
        ("suite", c.suite.as_str()),
        ("dataset", c.dataset.as_str()),
        ("check", c.check_name.as_str()),
    ];
    if let Some(col) = c.column.as_deref().filter(|c| !c.is_empty()) {
        labels.push(("column", col));
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", label_value(v)))
        .collect();
    format!("dq_check_status{{{}}}", inner.join(","))
}

/// Explore over the check's history (a day either side), so old runs are in view too.
pub fn explore_href(c: &DqCheckRow) -> String {
    const DAY: i64 = 86_400_000;
    let first = c.runs.first().map_or(0, |r| r.run_time_ms);
    let last = c.runs.last().map_or(0, |r| r.run_time_ms);
    format!(
        "/explore?q={}&from={}&to={}",
        encode_query_value(&status_selector(c)),
        first - DAY,
        last + DAY
    )
}

fn cell_title(r: &DqRunCell) -> String {
    let observed = r
        .observed_raw
        .clone()
        .or_else(|| r.observed_value.map(|v| v.to_string()))
        .unwrap_or_else(|| "–".into());
    let mut t = format!(
        "{} · {} · observed {}",
        format_utc(r.run_time_ms),
        r.status,
        observed
    );
    if let Some(m) = &r.message {
        t.push_str(" · ");
        t.push_str(m.lines().next().unwrap_or(""));
    }
    t
}

#[component]
pub fn QualityPage() -> impl IntoView {
    let query = use_query_map();
    let dataset = Memo::new(move |_| query.with(|q| q.get("dataset")));
    let view_data = Resource::new(move || dataset.get(), quality_view);
    view! {
        <Title text="Data quality · pipewatch"/>
        <h1>"Data quality"</h1>
        <Transition fallback=|| view! { <p class="loading">"Loading data-quality results…"</p> }>
            {move || {
                view_data
                    .get()
                    .map(|r| match r {
                        Err(e) => view! {
                            <div class="error-box" role="alert">
                                <strong>"Could not read data-quality results: "</strong>
                                {crate::error_text(&e)}
                            </div>
                        }
                        .into_any(),
                        Ok(v) if v.datasets.is_empty() => view! {
                            <p class="empty">
                                "No data-quality results yet. POST Great Expectations, dbt or Soda results to /api/v1/dq/gx, /api/v1/dq/dbt or /api/v1/dq/soda, or run "
                                <code>"pipewatch import <file>"</code> "."
                            </p>
                        }
                        .into_any(),
                        Ok(v) => quality_tables(v).into_any(),
                    })
            }}
        </Transition>
    }
}

fn quality_tables(v: QualityPageData) -> impl IntoView {
    let selected = v.selected.clone().unwrap_or_default();
    let rows = v
        .datasets
        .into_iter()
        .map(|d| {
            let href = format!("/quality?dataset={}", encode_query_value(&d.dataset));
            let ratio = d
                .pass_ratio
                .map(|r| format!("{:.0}%", r * 100.0))
                .unwrap_or_else(|| "–".into());
            let class = if d.dataset == selected {
                "dq-dataset selected"
            } else {
                "dq-dataset"
            };
            view! {
                <tr class=class>
                    <td><a href=href>{d.dataset.clone()}</a></td>
                    <td><span class=format!("dq-badge dq-{}", d.status)>{d.status.clone()}</span></td>
                    <td class="num">{ratio}</td>
                    <td class="num">{d.checks}</td>
                    <td class="num">{d.pass}</td>
                    <td class="num">{d.warn}</td>
                    <td class="num">{d.fail}</td>
                    <td class="num">{d.error}</td>
                    <td class="num">{d.skipped}</td>
                    <td>{d.tools.join(", ")}</td>
                    <td title=format_utc(d.last_run_ms)>{format_utc(d.last_run_ms)}</td>
                </tr>
            }
        })
        .collect_view();
    let checks = v
        .checks
        .into_iter()
        .map(|c| {
            let href = explore_href(&c);
            let latest = c.runs.last().map(|r| r.status.clone()).unwrap_or_default();
            let cells = c
                .runs
                .iter()
                .map(|r| {
                    view! { <span class=format!("dq-cell dq-{}", r.status) title=cell_title(r)></span> }
                })
                .collect_view();
            let last_value = c
                .runs
                .last()
                .and_then(|r| r.observed_raw.clone().or_else(|| r.observed_value.map(|v| v.to_string())))
                .unwrap_or_else(|| "–".into());
            view! {
                <tr class="dq-check">
                    <td>
                        <a class="dq-explore" href=href title="Plot this check's status in Explore">{c.check_name.clone()}</a>
                        <div class="muted small">{format!("{} · {} · {}", c.tool, c.suite, c.check_type)}</div>
                    </td>
                    <td>{c.column.clone().unwrap_or_else(|| "–".into())}</td>
                    <td><span class=format!("dq-badge dq-{latest}")>{latest.clone()}</span></td>
                    <td class="num dq-observed">{last_value}</td>
                    <td><div class="dq-strip">{cells}</div></td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="dq-datasets">
            <thead>
                <tr>
                    <th>"Dataset"</th><th>"Status"</th><th>"Pass ratio"</th><th>"Checks"</th>
                    <th>"Pass"</th><th>"Warn"</th><th>"Fail"</th><th>"Error"</th><th>"Skipped"</th>
                    <th>"Tools"</th><th>"Last run"</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
        <h2 class="dq-selected">{format!("Checks of {selected}")}</h2>
        <p class="muted small">
            "Latest status of each check and its last runs, oldest left; hover a cell for time, status and observed value. A check's name opens its status series (1 pass, 0.5 warn, 0 fail/error) in Explore."
        </p>
        <table class="dq-checks">
            <thead>
                <tr><th>"Check"</th><th>"Column"</th><th>"Latest"</th><th>"Observed"</th><th>"History"</th></tr>
            </thead>
            <tbody>{checks}</tbody>
        </table>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explore_link_selects_the_checks_status_series_over_its_history() {
        let c = DqCheckRow {
            tool: "gx".into(),
            suite: "orders_suite".into(),
            dataset: "orders".into(),
            check_id: "expect_column_mean_to_be_between-amount".into(),
            check_name: "expect_column_mean_to_be_between".into(),
            check_type: "expect_column_mean_to_be_between".into(),
            column: Some("amount".into()),
            expected: None,
            runs: vec![DqRunCell {
                run_time_ms: 1_714_611_600_000,
                run_id: "run-1".into(),
                status: "pass".into(),
                observed_value: Some(95.2),
                observed_raw: None,
                message: None,
            }],
        };
        assert_eq!(
            status_selector(&c),
            "dq_check_status{tool=\"gx\",suite=\"orders_suite\",dataset=\"orders\",check=\"expect_column_mean_to_be_between\",column=\"amount\"}"
        );
        let href = explore_href(&c);
        assert!(
            href.starts_with("/explore?q=dq_check_status%7Btool%3D%22gx%22"),
            "{href}"
        );
        assert!(
            href.contains("&from=1714525200000&to=1714698000000"),
            "{href}"
        );
    }
}
