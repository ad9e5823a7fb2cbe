//! The Rules page (`/rules`): the rule groups of the rule files the lifecycle engine evaluates,
//! each rule with its state (inactive / pending / firing, and how many alerts), health, last
//! evaluation and last error, its query (with a link to Explore over the series it reads),
//! `for:` and labels, as the leading instance last saw them (the same data as Prometheus'
//! `/api/v1/rules`).

use crate::timefmt::{format_ago, format_duration_ms, format_utc};
use leptos::prelude::*;
use leptos_meta::Title;
use model::TimestampMs;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One rule as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleRow {
    pub name: String,
    /// `alerting` or `recording`.
    pub kind: String,
    pub query: String,
    pub for_ms: i64,
    pub labels: BTreeMap<String, String>,
    /// `inactive`, `pending` or `firing` for alerting rules; empty for recording rules.
    pub state: String,
    /// Pending and firing alerts of the rule.
    pub active_alerts: usize,
    /// `ok`, `err` or `unknown` (not evaluated yet).
    pub health: String,
    pub last_error: String,
    pub last_evaluation_ms: Option<TimestampMs>,
    pub evaluation_s: f64,
    /// Explore over the first series the query reads.
    pub explore_href: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleGroupView {
    pub file: String,
    pub name: String,
    pub interval_ms: i64,
    pub rules: Vec<RuleRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulesView {
    pub now: TimestampMs,
    pub groups: Vec<RuleGroupView>,
}

#[cfg(feature = "ssr")]
use crate::api::backend;

#[server(prefix = "/app-fn", endpoint = "rules_view")]
pub async fn list_rules() -> Result<RulesView, ServerFnError> {
    Ok(RulesView {
        now: crate::api::now_ms(),
        groups: backend()?.rule_groups().await.map_err(ServerFnError::new)?,
    })
}

#[component]
pub fn RulesPage() -> impl IntoView {
    let tick = RwSignal::new(0u64);
    let data = Resource::new(move || tick.get(), |_| list_rules());
    crate::every_seconds(15, move || tick.update(|t| *t += 1));
    view! {
        <Title text="Rules · pipewatch"/>
        <h1>"Rules"</h1>
        <p class="muted">"The alerting and recording rules of "<code>"[alerting].rule_files"</code>
            ", as the instance that evaluates them last saw them. Their alerts are on "
            <a href="/alerts">"Alerts"</a> "."</p>
        <Transition fallback=|| view! { <p class="loading">"Loading rules…"</p> }>
            {move || data.get().map(|r| match r {
                Err(e) => view! {
                    <div class="error-box" role="alert"><strong>"Could not list rules: "</strong>{crate::error_text(&e)}</div>
                }.into_any(),
                Ok(v) => rules_view(v).into_any(),
            })}
        </Transition>
    }
}

fn rules_view(v: RulesView) -> impl IntoView {
    if v.groups.is_empty() {
        return view! {
            <div class="empty" role="status">
                <p><strong>"No rules."</strong>
                " List Prometheus rule files in " <code>"[alerting] rule_files"</code>
                " of the configuration (check one with " <code>"pipewatch rules lint FILE"</code>
                "); the demo loads " <code>"demo/rules/pipewatch-demo.rules.yml"</code> "."</p>
                <p>"Rules show here once the instance that leads evaluation has started (within a few seconds)."</p>
            </div>
        }
        .into_any();
    }
    let now = v.now;
    v.groups
        .into_iter()
        .map(|g| {
            let rows = g
                .rules
                .into_iter()
                .map(|r| {
                    let labels = r
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" · ");
                    let state = if r.kind == "alerting" {
                        r.state.clone()
                    } else {
                        "recording".to_string()
                    };
                    let alerts_href = format!(
                        "/alerts?matcher={}",
                        crate::range::encode_query_value(&format!("alertname={:?}", r.name))
                    );
                    let eval = match r.last_evaluation_ms {
                        Some(t) => format!("{} ({:.3} s)", format_ago(now, t), r.evaluation_s),
                        None => "not yet".into(),
                    };
                    view! {
                        <tr class=format!("rule-row rule-{state}") data-rule=r.name.clone()>
                            <td>
                                <strong>{r.name.clone()}</strong>
                                <div class="muted small">{labels}</div>
                            </td>
                            <td>
                                <span class=format!("state-badge state-{state}")>{state.clone()}</span>
                                {(r.active_alerts > 0).then(|| view! {
                                    " " <a href=alerts_href.clone()>{format!("{} alert{}", r.active_alerts, if r.active_alerts == 1 { "" } else { "s" })}</a>
                                })}
                            </td>
                            <td>
                                <code class="rule-query">{r.query.clone()}</code>
                                {r.explore_href.clone().map(|h| view! { <div class="small"><a href=h>"Open in Explore"</a></div> })}
                            </td>
                            <td>{if r.kind == "alerting" && r.for_ms > 0 { format_duration_ms(r.for_ms) } else { "–".to_string() }}</td>
                            <td>
                                <span class=format!("health health-{}", r.health)>{r.health.clone()}</span>
                                {(!r.last_error.is_empty()).then(|| view! { <div class="error-text small">{r.last_error.clone()}</div> })}
                            </td>
                            <td title=r.last_evaluation_ms.map(format_utc).unwrap_or_default()>{eval}</td>
                        </tr>
                    }
                    .into_any()
                })
                .collect_view();
            view! {
                <section class="rule-group" data-group=g.name.clone()>
                    <h2>{g.name.clone()} " " <span class="muted small">{format!("{} · every {}", g.file, format_duration_ms(g.interval_ms))}</span></h2>
                    <table class="rules">
                        <thead><tr><th>"Rule"</th><th>"State"</th><th>"Query"</th><th>"For"</th><th>"Health"</th><th>"Last evaluation"</th></tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                </section>
            }
        })
        .collect_view()
        .into_any()
}
