//! The Rules page (`/rules`): the rule groups the lifecycle engine evaluates, each rule with
//! its state (inactive / pending / firing, and how many alerts), health, last evaluation and
//! last error, its query (with a link to Explore over the series it reads), `for:` and labels,
//! as the leading instance last saw them (the same data as Prometheus' `/api/v1/rules`).
//!
//! Groups come from the rule files (read-only here: they are edited in version control) and
//! from this page: editors write a group in the rule-file format, check it with the same
//! linter as `pipewatch rules lint` (errors with their line and column), preview what it would
//! have fired on over the last 24 hours (the backtest's replay over stored history), and save,
//! edit or delete it; the engine evaluates saved groups within a few seconds.

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
    /// The groups made on this page, as stored (evaluated ones are in `groups` too).
    pub editable: Vec<UiRuleGroupRow>,
}

/// The `file` of the groups made on this page (as `rule_status` names it).
pub const PAGE_FILE: &str = "(made on the Rules page)";

/// A rule group made on this page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UiRuleGroupRow {
    pub name: String,
    /// The group as a rule file (`groups:` with this one group).
    pub text: String,
    pub updated_by: String,
    pub updated_at_ms: TimestampMs,
}

/// One alert episode the preview found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviewEpisode {
    pub rule: String,
    /// `job="etl", stage="load"` (without `alertname`).
    pub labels: String,
    pub active_at_ms: TimestampMs,
    pub fired_at_ms: Option<TimestampMs>,
    pub resolved_at_ms: Option<TimestampMs>,
}

/// What a group would have done over the last 24 hours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulePreview {
    pub from_ms: TimestampMs,
    pub to_ms: TimestampMs,
    pub step_ms: i64,
    pub episodes: Vec<PreviewEpisode>,
    /// Rules that could not be replayed and rules whose evaluation failed, with why.
    pub notes: Vec<String>,
}

/// An example group for the editor.
pub const EXAMPLE: &str = "groups:\n  - name: my-rules\n    rules:\n      - alert: TransformSlow\n        expr: histogram_quantile(0.95, sum by (le) (rate(demo_stage_latency_seconds_bucket{stage=\"transform\"}[5m]))) > 2\n        for: 5m\n        labels: { severity: warning }\n        annotations: { summary: \"p95 latency of transform is {{ $value }} s\" }\n";

#[cfg(feature = "ssr")]
use crate::api::backend;

#[server(prefix = "/app-fn", endpoint = "rules_view")]
pub async fn list_rules() -> Result<RulesView, ServerFnError> {
    let b = backend()?;
    Ok(RulesView {
        now: crate::api::now_ms(),
        groups: b.rule_groups().await.map_err(ServerFnError::new)?,
        editable: b.ui_rule_groups().await.map_err(ServerFnError::new)?,
    })
}

/// Saves a group written on the page: a new one when `original` is empty, else it replaces
/// the group of that name. Lint errors come back one per line, each with its line:column.
/// `csrf_token` is checked by the server's auth layer.
#[server(prefix = "/app-fn", endpoint = "save_rule_group")]
pub async fn save_rule_group(
    csrf_token: Option<String>,
    original: Option<String>,
    text: String,
) -> Result<String, ServerFnError> {
    let _ = csrf_token;
    let who = crate::login::authorize("save_rule_group")?;
    let original = original.filter(|o| !o.trim().is_empty());
    let name = backend()?
        .save_rule_group(&who.name, original.as_deref(), &text)
        .await
        .map_err(ServerFnError::new)?;
    // The backend wrote a `rules.create` / `rules.update` audit row with the text.
    crate::login::mark_audited();
    Ok(name)
}

#[server(prefix = "/app-fn", endpoint = "delete_rule_group")]
pub async fn delete_rule_group(
    csrf_token: Option<String>,
    name: String,
) -> Result<(), ServerFnError> {
    let _ = csrf_token;
    let who = crate::login::authorize("delete_rule_group")?;
    backend()?
        .delete_rule_group(&who.name, &name)
        .await
        .map_err(ServerFnError::new)?;
    crate::login::mark_audited();
    Ok(())
}

/// What `text` would have fired on over the last 24 hours (nothing is saved).
#[server(prefix = "/app-fn", endpoint = "preview_rule_group")]
pub async fn preview_rule_group(text: String) -> Result<RulePreview, ServerFnError> {
    crate::login::authorize("preview_rule_group")?;
    backend()?
        .preview_rule_group(&text)
        .await
        .map_err(ServerFnError::new)
}

fn may_edit(p: &Option<model::auth::Principal>) -> bool {
    p.as_ref()
        .and_then(|p| p.role)
        .is_some_and(|r| r >= model::auth::Role::Editor)
}

#[component]
pub fn RulesPage() -> impl IntoView {
    let me = Resource::new(|| (), |_| crate::login::current_user());
    let save = ServerAction::<SaveRuleGroup>::new();
    let delete = ServerAction::<DeleteRuleGroup>::new();
    let preview = ServerAction::<PreviewRuleGroup>::new();
    let tick = RwSignal::new(0u64);
    let data = Resource::new(
        move || (tick.get(), save.version().get(), delete.version().get()),
        |_| list_rules(),
    );
    crate::every_seconds(15, move || tick.update(|t| *t += 1));
    // The editor: the text, and the group it replaces (empty: a new group).
    let text = RwSignal::new(EXAMPLE.to_string());
    let original = RwSignal::new(String::new());
    let principal = move || me.get().and_then(Result::ok);
    let token = move || principal().and_then(|p| p.csrf_token).unwrap_or_default();
    let edit = Editing { text, original };
    view! {
        <Title text="Rules · pipewatch"/>
        <h1>"Rules"</h1>
        <p class="muted">"The alerting and recording rules the engine evaluates, as the instance that evaluates them last saw them: the groups of "
            <code>"[alerting].rule_files"</code>
            " (read-only here: edit the files in version control, check them with "<code>"pipewatch rules lint"</code>
            ", and restart) and the groups made on this page. Their alerts are on "
            <a href="/alerts">"Alerts"</a> "."</p>
        <Transition fallback=|| ()>
            {move || may_edit(&principal()).then(|| view! {
                <section class="rule-editor">
                    <h2>{move || if original.get().is_empty() { "New rule group".to_string() } else { format!("Edit rule group {}", original.get()) }}</h2>
                    <p class="muted small">"One group in the rule-file format (Prometheus' "<code>"groups:"</code>
                        " with pipewatch's "<code>"pipewatch:"</code>" kinds), checked by the same linter as "
                        <code>"pipewatch rules lint"</code>". Preview replays it over the last 24 hours of stored data; nothing is saved until you save."</p>
                    <ActionForm action=save attr:class="save-rule-group">
                        <input type="hidden" name="csrf_token" value=token/>
                        <input type="hidden" name="original" prop:value=move || original.get()/>
                        <textarea name="text" class="rule-text" rows="14" cols="100" spellcheck="false"
                            prop:value=move || text.get()
                            on:input=move |ev| text.set(event_target_value(&ev))></textarea>
                        <div class="form-row">
                            <button type="submit" class="primary">"Save"</button>
                            <button type="button" class="preview-rule-group"
                                on:click=move |_| { preview.dispatch(PreviewRuleGroup { text: text.get_untracked() }); }>
                                "Preview: last 24 h"
                            </button>
                            {move || (!original.get().is_empty()).then(|| view! {
                                <button type="button" on:click=move |_| { original.set(String::new()); text.set(EXAMPLE.to_string()); }>"New group instead"</button>
                            })}
                        </div>
                    </ActionForm>
                    {move || save.value().get().map(|r| match r {
                        Err(e) => view! {
                            <div class="error-box rule-errors" role="alert">
                                <strong>"Not saved: "</strong>
                                <ul>{crate::error_text(&e).lines().map(|l| view! { <li><code>{l.to_string()}</code></li> }).collect_view()}</ul>
                            </div>
                        }.into_any(),
                        Ok(name) => view! {
                            <div class="ok-box" role="status">{format!("Saved group {name}; the engine evaluates it within a few seconds.")}</div>
                        }.into_any(),
                    })}
                    {move || delete.value().get().and_then(|r| r.err()).map(|e| view! {
                        <div class="error-box" role="alert"><strong>"Not deleted: "</strong>{crate::error_text(&e)}</div>
                    })}
                    {move || preview.pending().get().then(|| view! { <p class="loading">"Replaying the last 24 hours…"</p> })}
                    {move || preview.value().get().map(|r| match r {
                        Err(e) => view! {
                            <div class="error-box rule-errors" role="alert">
                                <strong>"No preview: "</strong>
                                <ul>{crate::error_text(&e).lines().map(|l| view! { <li><code>{l.to_string()}</code></li> }).collect_view()}</ul>
                            </div>
                        }.into_any(),
                        Ok(p) => preview_view(p).into_any(),
                    })}
                </section>
            })}
        </Transition>
        <Transition fallback=|| view! { <p class="loading">"Loading rules…"</p> }>
            {move || data.get().map(|r| match r {
                Err(e) => view! {
                    <div class="error-box" role="alert"><strong>"Could not list rules: "</strong>{crate::error_text(&e)}</div>
                }.into_any(),
                Ok(v) => rules_view(v, may_edit(&principal()), edit, delete, token).into_any(),
            })}
        </Transition>
    }
}

/// The editor's signals, for the "Edit" buttons of page-made groups.
#[derive(Clone, Copy)]
struct Editing {
    text: RwSignal<String>,
    original: RwSignal<String>,
}

fn preview_view(p: RulePreview) -> impl IntoView {
    let head = format!(
        "From {} to {}, every {}: {}",
        format_utc(p.from_ms),
        format_utc(p.to_ms),
        format_duration_ms(p.step_ms),
        match p
            .episodes
            .iter()
            .filter(|e| e.fired_at_ms.is_some())
            .count()
        {
            0 => "it would not have fired.".to_string(),
            1 => "it would have fired once.".to_string(),
            n => format!("it would have fired {n} times."),
        }
    );
    let rows = p
        .episodes
        .into_iter()
        .map(|e| {
            let fired = e
                .fired_at_ms
                .map_or_else(|| "never (cleared while pending)".to_string(), format_utc);
            let resolved = match (e.fired_at_ms, e.resolved_at_ms) {
                (_, Some(r)) => format_utc(r),
                (Some(_), None) => "still firing".into(),
                (None, None) => "still pending".into(),
            };
            view! {
                <tr class="preview-episode">
                    <td>{e.rule}</td>
                    <td><code>{e.labels}</code></td>
                    <td>{format_utc(e.active_at_ms)}</td>
                    <td>{fired}</td>
                    <td>{resolved}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="rule-preview" role="status">
            <p><strong>"Preview: "</strong>{head}</p>
            <table class="rules preview">
                <thead><tr><th>"Rule"</th><th>"Labels"</th><th>"Pending from"</th><th>"Fired"</th><th>"Resolved"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
            <ul class="muted small">{p.notes.into_iter().map(|n| view! { <li>{n}</li> }).collect_view()}</ul>
        </div>
    }
}

fn rules_view(
    v: RulesView,
    may_edit: bool,
    edit: Editing,
    delete: ServerAction<DeleteRuleGroup>,
    token: impl Fn() -> String + Copy + Send + Sync + 'static,
) -> impl IntoView {
    // Page-made groups the engine has not evaluated yet (just saved, or not leading yet).
    let mut groups = v.groups;
    for e in &v.editable {
        if !groups
            .iter()
            .any(|g| g.file == PAGE_FILE && g.name == e.name)
        {
            groups.push(RuleGroupView {
                file: PAGE_FILE.to_string(),
                name: e.name.clone(),
                interval_ms: 0,
                rules: Vec::new(),
            });
        }
    }
    let editable = v.editable;
    if groups.is_empty() {
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
    groups
        .into_iter()
        .map(|g| {
            let stored = editable.iter().find(|e| g.file == PAGE_FILE && e.name == g.name).cloned();
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
            let origin = if g.file == PAGE_FILE {
                match &stored {
                    Some(s) => format!("made on this page · last edited by {} {}", s.updated_by, format_ago(now, s.updated_at_ms)),
                    None => "made on this page".to_string(),
                }
            } else {
                format!("{} · read-only here: edit the file", g.file)
            };
            let every = if g.interval_ms > 0 {
                format!(" · every {}", format_duration_ms(g.interval_ms))
            } else {
                " · not evaluated yet".to_string()
            };
            let actions = stored.filter(|_| may_edit).map(|s| {
                let name = s.name.clone();
                view! {
                    <div class="form-row rule-group-actions">
                        <button type="button" class="edit-rule-group" on:click=move |_| {
                            edit.text.set(s.text.clone());
                            edit.original.set(s.name.clone());
                        }>"Edit"</button>
                        <ActionForm action=delete attr:class="delete-rule-group">
                            <input type="hidden" name="csrf_token" value=token/>
                            <input type="hidden" name="name" value=name/>
                            <button type="submit">"Delete"</button>
                        </ActionForm>
                    </div>
                }
            });
            view! {
                <section class="rule-group" data-group=g.name.clone() data-file=g.file.clone()>
                    <h2>{g.name.clone()} " " <span class="muted small">{format!("{origin}{every}")}</span></h2>
                    {actions}
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
