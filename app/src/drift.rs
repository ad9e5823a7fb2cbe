//! The Drift page: for each dataset, every compared column (or feature) with its latest
//! result — the statistic used, its value, the threshold and whether it drifted — and for the
//! chosen column (`?dataset=&column=`, default the first that drifted) the value over time
//! against its threshold, and its past results.

use crate::chart::{format_value, render_svg, series_css_color, ChartData};
use crate::range::encode_query_value;
use crate::timefmt::{format_ago, format_duration_ms, format_utc};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use model::anomaly::DriftResult;
use model::{Labels, RangeSeries, TimestampMs};
use serde::{Deserialize, Serialize};

/// Results of one column shown in its history.
pub const HISTORY_LIMIT: u32 = 500;
/// Past results listed under the history chart (the chart shows them all).
pub const HISTORY_ROWS: usize = 12;
/// Latest results listed (one per dataset, column and method).
pub const LATEST_LIMIT: u32 = 1000;

/// Which drift results to read (the backend's filter).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DriftFilter {
    pub dataset: Option<String>,
    pub column: Option<String>,
    /// Only the latest result per dataset, column and method; otherwise all, newest first.
    pub latest_only: bool,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftView {
    pub now: TimestampMs,
    /// The latest result per dataset, column and method, drifted ones first within a dataset.
    pub latest: Vec<DriftResult>,
    /// The column whose history is shown.
    pub selected: Option<(String, String)>,
    /// Its results, oldest first.
    pub history: Vec<DriftResult>,
}

/// Statistical tests report a p-value and drift when it falls *below* the threshold; the
/// distances (Wasserstein, PSI, Jensen–Shannon, …) drift when they reach it.
pub fn is_p_value(method: &str) -> bool {
    matches!(
        method,
        "ks" | "chisquare"
            | "z"
            | "anderson"
            | "cramer_von_mises"
            | "mannw"
            | "fisher_exact"
            | "g_test"
            | "t_test"
            | "epps_singleton"
    )
}

fn rule_text(method: &str, threshold: f64) -> String {
    if is_p_value(method) {
        format!("p-value below {}", format_value(threshold))
    } else {
        format!("distance at or above {}", format_value(threshold))
    }
}

/// Orders the latest results: by dataset, drifted columns first, then by column and method.
pub fn order_latest(v: &mut [DriftResult]) {
    v.sort_by(|a, b| {
        (&a.dataset, !a.drifted, &a.column, &a.method)
            .cmp(&(&b.dataset, !b.drifted, &b.column, &b.method))
    });
}

#[server(prefix = "/app-fn", endpoint = "drift_view")]
pub async fn load_drift(
    dataset: Option<String>,
    column: Option<String>,
) -> Result<DriftView, ServerFnError> {
    let backend = use_context::<std::sync::Arc<dyn crate::Backend>>()
        .ok_or_else(|| ServerFnError::new("the server did not provide a data backend"))?;
    let asked = match (
        dataset.filter(|d| !d.is_empty()),
        column.filter(|c| !c.is_empty()),
    ) {
        (Some(d), Some(c)) => Some((d, c)),
        (Some(_), None) | (None, Some(_)) => {
            return Err(ServerFnError::new(
                "choose a column with both dataset and column, e.g. /drift?dataset=features_daily&column=basket_value",
            ))
        }
        (None, None) => None,
    };
    let mut latest = backend
        .drift_results(DriftFilter {
            latest_only: true,
            limit: LATEST_LIMIT,
            ..Default::default()
        })
        .await
        .map_err(ServerFnError::new)?;
    order_latest(&mut latest);
    let chosen = match asked {
        Some(dc) => Some(dc),
        None => latest
            .iter()
            .find(|r| r.drifted)
            .or(latest.first())
            .map(|r| (r.dataset.clone(), r.column.clone())),
    };
    let mut history = match &chosen {
        Some((d, c)) => backend
            .drift_results(DriftFilter {
                dataset: Some(d.clone()),
                column: Some(c.clone()),
                latest_only: false,
                limit: HISTORY_LIMIT,
            })
            .await
            .map_err(ServerFnError::new)?,
        None => Vec::new(),
    };
    history.reverse();
    Ok(DriftView {
        now: crate::api::now_ms(),
        latest,
        selected: chosen,
        history,
    })
}

/// A window's length without zero parts: `1 d`, `1 h`, `1 h 30 min`.
pub fn short_span(ms: i64) -> String {
    let s = format_duration_ms(ms);
    s.strip_suffix(" 0 h")
        .or_else(|| s.strip_suffix(" 0 min"))
        .unwrap_or(&s)
        .to_string()
}

pub fn column_href(dataset: &str, column: &str) -> String {
    format!(
        "/drift?dataset={}&column={}",
        encode_query_value(dataset),
        encode_query_value(column)
    )
}

/// The history as a chart: one line per method and its threshold, dashed lines being
/// impossible in the shared renderer, as a second series.
pub fn history_chart(history: &[DriftResult]) -> Option<ChartData> {
    let first = history.first()?.evaluated_at_ms;
    let last = history.last()?.evaluated_at_ms;
    let mut methods: Vec<&str> = history.iter().map(|r| r.method.as_str()).collect();
    methods.sort();
    methods.dedup();
    let mut series = Vec::new();
    for m in methods {
        let pts: Vec<&DriftResult> = history.iter().filter(|r| r.method == m).collect();
        series.push(RangeSeries {
            metric: m.to_string(),
            labels: Labels::from_pairs([("method", m)]),
            points: pts.iter().map(|r| (r.evaluated_at_ms, r.value)).collect(),
        });
        series.push(RangeSeries {
            metric: format!("{m} threshold"),
            labels: Labels::from_pairs([("threshold", m)]),
            points: pts
                .iter()
                .map(|r| (r.evaluated_at_ms, r.threshold))
                .collect(),
        });
    }
    // The widest gap between evaluations, so the line is not broken between regular runs.
    let step_ms = history
        .windows(2)
        .map(|w| w[1].evaluated_at_ms - w[0].evaluated_at_ms)
        .max()
        .unwrap_or(60_000)
        .max(1);
    let pad = ((last - first) / 20).max(60_000);
    Some(ChartData {
        selector: String::new(),
        start: first - pad,
        end: last + pad,
        step_ms,
        series,
        omitted_series: 0,
        events: Vec::new(),
        band: None,
        anomalies: Vec::new(),
        last_sample: None,
    })
}

#[component]
pub fn DriftPage() -> impl IntoView {
    let query = use_query_map();
    let chosen = Memo::new(move |_| query.with(|q| (q.get("dataset"), q.get("column"))));
    let data = Resource::new(move || chosen.get(), |(d, c)| load_drift(d, c));
    view! {
        <Title text="Drift · pipewatch"/>
        <h1>"Drift"</h1>
        <Transition fallback=|| view! { <p class="loading">"Loading drift results…"</p> }>
            {move || {
                data.get()
                    .map(|r| match r {
                        Err(e) => view! {
                            <div class="error-box" role="alert">
                                <strong>"Could not read drift results: "</strong>
                                {crate::error_text(&e)}
                            </div>
                        }
                        .into_any(),
                        Ok(v) if v.latest.is_empty() => view! {
                            <div class="empty" role="status">
                                <p><strong>"No drift results yet."</strong>
                                " Drift checks compare a column's or feature's distribution in a recent window with a reference window (Kolmogorov–Smirnov, Wasserstein, PSI, Jensen–Shannon, chi-square), and list each comparison here."</p>
                                <p>"They need histogram series with a " <code>"feature"</code>
                                " label (such as the demo's " <code>"demo_feature_value"</code>
                                ") and a reference window of history. Run " <code>"pipewatch demo"</code>
                                " to see some, or " <code>"pipewatch demo --inject drift --at feature_store"</code> " to see one drift."</p>
                            </div>
                        }
                        .into_any(),
                        Ok(v) => drift_tables(v).into_any(),
                    })
            }}
        </Transition>
    }
}

fn drift_tables(v: DriftView) -> impl IntoView {
    let now = v.now;
    let selected = v.selected.clone();
    let drifted = v.latest.iter().filter(|r| r.drifted).count();
    let summary = format!("{} columns compared · {drifted} drifted", v.latest.len());
    let mut last_dataset = String::new();
    let rows = v
        .latest
        .iter()
        .map(|r| {
            let heading = (r.dataset != last_dataset).then(|| {
                last_dataset = r.dataset.clone();
                view! { <tr class="drift-dataset"><th colspan="8">{r.dataset.clone()}</th></tr> }
            });
            let is_selected = selected.as_ref() == Some(&(r.dataset.clone(), r.column.clone()));
            let windows = format!(
                "reference {} – {}\ncurrent {} – {}",
                format_utc(r.reference_from_ms),
                format_utc(r.reference_to_ms),
                format_utc(r.current_from_ms),
                format_utc(r.current_to_ms)
            );
            view! {
                {heading}
                <tr class="drift-row" class:selected=is_selected class:drifted=r.drifted data-column=r.column.clone()>
                    <td><a href=column_href(&r.dataset, &r.column)>{r.column.clone()}</a></td>
                    <td>{r.method.clone()}</td>
                    <td class="num">{format_value(r.value)}</td>
                    <td class="num" title=rule_text(&r.method, r.threshold)>{format_value(r.threshold)}</td>
                    <td>{if r.drifted {
                        view! { <span class="sev-badge sev-critical">"drifted"</span> }.into_any()
                    } else {
                        view! { <span class="sev-badge sev-ok">"stable"</span> }.into_any()
                    }}</td>
                    <td class="small nowrap" title=windows>
                        {format!("reference {}", short_span(r.reference_to_ms - r.reference_from_ms))}
                        <br/>
                        {format!("current {}", short_span(r.current_to_ms - r.current_from_ms))}
                    </td>
                    <td class="nowrap" title=format_utc(r.evaluated_at_ms)>{format_ago(now, r.evaluated_at_ms)}</td>
                    <td class="drift-explanation">{r.explanation.clone()}</td>
                </tr>
            }
        })
        .collect_view();
    let history = selected.map(|(d, c)| history_view(&d, &c, &v.history, now));
    view! {
        <p class="muted drift-summary">{summary}
            " · tests (ks, chi-square, z) drift when the p-value falls below the threshold; distances (Wasserstein, PSI, Jensen–Shannon) when they reach it."</p>
        <table class="drift">
            <thead>
                <tr><th>"Column"</th><th>"Method"</th><th class="num">"Value"</th><th class="num">"Threshold"</th><th>"Result"</th><th>"Windows"</th><th>"Evaluated"</th><th>"Explanation"</th></tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
        {history}
    }
}

fn history_view(
    dataset: &str,
    column: &str,
    history: &[DriftResult],
    now: TimestampMs,
) -> impl IntoView {
    let chart = history_chart(history).map(|c| match render_svg(&c, &[]) {
        Ok((svg, _)) => {
            let legend = c
                .series
                .iter()
                .enumerate()
                .map(|(i, s)| view! {
                    <li class="legend-static">
                        <span class="swatch" style=format!("background:{}", series_css_color(i))></span>
                        {s.metric.clone()}
                    </li>
                })
                .collect_view();
            view! {
                <div class="chart drift-chart"><div class="chart-svg" inner_html=svg></div></div>
                <ul class="legend">{legend}</ul>
            }
            .into_any()
        }
        Err(e) => view! { <div class="error-box">{e}</div> }.into_any(),
    });
    let rows = history
        .iter()
        .rev()
        .take(HISTORY_ROWS)
        .map(|r| view! {
            <tr class:drifted=r.drifted>
                <td title=format_utc(r.evaluated_at_ms)>{format_utc(r.evaluated_at_ms)}<div class="muted small">{format_ago(now, r.evaluated_at_ms)}</div></td>
                <td>{r.method.clone()}</td>
                <td class="num">{format_value(r.value)}</td>
                <td class="num">{format_value(r.threshold)}</td>
                <td>{if r.drifted { "drifted" } else { "stable" }}</td>
                <td>{r.explanation.clone()}</td>
            </tr>
        })
        .collect_view();
    view! {
        <h2 class="drift-selected">{format!("History of {dataset} · {column}")}</h2>
        <p class="muted small">{format!(
            "{} results: the value of each comparison and its threshold over time; the latest {} below.",
            history.len(),
            history.len().min(HISTORY_ROWS)
        )}</p>
        {chart}
        <table class="drift-history">
            <thead><tr><th>"Evaluated"</th><th>"Method"</th><th class="num">"Value"</th><th class="num">"Threshold"</th><th>"Result"</th><th>"Explanation"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(
        dataset: &str,
        column: &str,
        method: &str,
        t: i64,
        value: f64,
        drifted: bool,
    ) -> DriftResult {
        DriftResult {
            id: t,
            dataset: dataset.into(),
            column: column.into(),
            method: method.into(),
            value,
            threshold: 0.1,
            drifted,
            reference_from_ms: 0,
            reference_to_ms: 0,
            current_from_ms: 0,
            current_to_ms: t,
            evaluated_at_ms: t,
            explanation: String::new(),
        }
    }

    #[test]
    fn drifted_columns_come_first_within_each_dataset() {
        let mut v = vec![
            r("b", "x", "psi", 1, 0.0, false),
            r("a", "y", "ks", 1, 0.5, false),
            r("a", "z", "wasserstein", 1, 0.4, true),
        ];
        order_latest(&mut v);
        let got: Vec<(&str, &str)> = v
            .iter()
            .map(|r| (r.dataset.as_str(), r.column.as_str()))
            .collect();
        assert_eq!(got, vec![("a", "z"), ("a", "y"), ("b", "x")]);
    }

    #[test]
    fn history_charts_each_method_with_its_threshold() {
        let h = vec![
            r("a", "x", "wasserstein", 60_000, 0.05, false),
            r("a", "x", "wasserstein", 120_000, 0.41, true),
        ];
        let c = history_chart(&h).unwrap();
        assert_eq!(c.series.len(), 2);
        assert_eq!(c.series[0].points, vec![(60_000, 0.05), (120_000, 0.41)]);
        assert_eq!(c.series[1].points, vec![(60_000, 0.1), (120_000, 0.1)]);
        assert!(c.start < 60_000 && c.end > 120_000);
        assert!(history_chart(&[]).is_none());
        assert!(is_p_value("ks") && !is_p_value("psi"));
        assert_eq!(short_span(86_400_000), "1 d");
        assert_eq!(short_span(3_600_000), "1 h");
        assert_eq!(short_span(5_400_000), "1 h 30 min");
    }
}
