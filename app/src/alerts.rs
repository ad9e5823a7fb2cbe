//! The Alerts pages, where on-call people live. `/alerts`: every alert of the lifecycle engine
//! (rule files, anomaly rules, Alertmanager clients) grouped by the notification group it is
//! paged in, worst first, filtered by state, severity and label matchers (all in the URL), with
//! who acknowledged it, who it is assigned to, since when it is in its state, and whether a
//! silence or a snooze holds its notices back. `/alerts/<id>`: its labels, annotations, value,
//! the timeline of transitions, notices and people's actions, the actions themselves
//! (acknowledge, assign, snooze, resolve, note) for editors, "Silence this group", and links
//! to the rule or the anomaly it came from.
//!
//! Every action is a plain form posting to a server function with the session's CSRF token,
//! so it works before (and without) the browser bundle; viewers see the same pages read-only.
//! On the list, editors tick alerts and acknowledge, resolve or silence them (their groups) in
//! one post; each alert's timeline gets its own event. The detail page charts the rule's
//! expression from an hour before the alert became active, with the firing span in red.

use crate::anomalies::select;
use crate::timefmt::{format_ago, format_utc};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::{use_params_map, use_query_map};
use leptos_router::params::ParamsMap;
use model::auth::{Principal, Role};
use model::TimestampMs;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Alerts on one list page; the page says when there are more.
pub const LIST_LIMIT: usize = 500;
/// The states the list filters by, in the order the list sorts them (worst first).
pub const STATES: [&str; 6] = [
    "firing", "pending", "nodata", "error", "resolved", "inactive",
];
/// Snooze lengths offered on the detail page.
pub const SNOOZES: [&str; 4] = ["15m", "1h", "4h", "1d"];
/// Silence lengths offered by "Silence this group".
pub const SILENCE_DURATIONS: [&str; 4] = ["1h", "2h", "4h", "1d"];

/// Which alerts to list (the backend's filter).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AlertListFilter {
    /// Any of these states; empty: every state but `inactive` (pending alerts that cleared).
    pub states: Vec<String>,
    /// The `severity` label; empty: any.
    pub severity: String,
    /// Label matchers, comma-separated: `job="etl", stage=~"trans.*"`.
    pub matchers: String,
}

/// One alert as the pages show it. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRow {
    pub id: i64,
    /// The rule's name (`alertname`).
    pub rule: String,
    pub rule_group: String,
    /// `rule`, `anomaly` or `alertmanager`.
    pub source: String,
    pub state: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub value: Option<String>,
    pub active_at_ms: Option<TimestampMs>,
    pub fired_at_ms: Option<TimestampMs>,
    pub resolved_at_ms: Option<TimestampMs>,
    pub updated_at_ms: TimestampMs,
    pub episode: i32,
    /// The notification group (route and group labels).
    pub group_key: String,
    /// The labels the group is made of.
    pub group_labels: Vec<(String, String)>,
    /// The silence holding its notices back now, if any.
    pub silenced_by: Option<String>,
    /// The alert (id) inhibiting it now and the inhibit rule's name, if any.
    #[serde(default)]
    pub inhibited_by: Option<(i64, String)>,
    /// Who acknowledged the current episode.
    pub acknowledged_by: Option<String>,
    pub acknowledged_at_ms: Option<TimestampMs>,
    pub assignee: Option<String>,
    /// Set while snoozed.
    pub snoozed_until_ms: Option<TimestampMs>,
    pub resolve_requested_by: Option<String>,
    /// Why a nodata / error alert is in its state; the anomaly or generator of others.
    pub detail: String,
}

impl AlertRow {
    /// When the alert entered its current state.
    pub fn since_ms(&self) -> TimestampMs {
        match self.state.as_str() {
            "resolved" | "inactive" => self.resolved_at_ms.unwrap_or(self.updated_at_ms),
            "firing" => self
                .fired_at_ms
                .or(self.active_at_ms)
                .unwrap_or(self.updated_at_ms),
            _ => self.active_at_ms.unwrap_or(self.updated_at_ms),
        }
    }

    fn summary(&self) -> String {
        self.annotations
            .get("summary")
            .or_else(|| self.annotations.get("description"))
            .cloned()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| self.detail.clone())
    }

    fn severity(&self) -> Option<&str> {
        self.labels.get("severity").map(String::as_str)
    }

    pub fn is_active(&self) -> bool {
        matches!(
            self.state.as_str(),
            "firing" | "pending" | "nodata" | "error"
        )
    }
}

/// One entry of an alert's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEventRow {
    pub at_ms: TimestampMs,
    /// `transition`, `notified`, `silenced`, `acknowledged`, `unacknowledged`, `assigned`,
    /// `snoozed`, `resolve_requested`, `note`.
    pub kind: String,
    pub from: Option<String>,
    pub to: Option<String>,
    /// `system` or a user.
    pub by: String,
    pub detail: String,
}

/// Everything the detail page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertDetail {
    pub alert: AlertRow,
    pub timeline: Vec<AlertEventRow>,
    /// Users an alert can be assigned to.
    pub users: Vec<String>,
    /// The rule's expression, for rule alerts.
    pub rule_query: Option<String>,
    /// Explore over the rule's first selector around the alert.
    pub explore_href: Option<String>,
    /// The anomaly an anomaly-rule alert came from.
    pub anomaly_href: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertsView {
    pub now: TimestampMs,
    pub alerts: Vec<AlertRow>,
    /// The list was cut at [`LIST_LIMIT`].
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertPage {
    pub now: TimestampMs,
    pub detail: Option<AlertDetail>,
    /// The rule's expression charted around the firing time (rule alerts with a query).
    #[serde(default)]
    pub chart: Option<AlertChart>,
}

/// An alert's chart: what is drawn, over which window, and the firing span marked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertChart {
    /// The expression charted: the rule's, or the side of its comparison with a number
    /// (`lag > 10` charts `lag`, so the line shows below the threshold too).
    pub query: String,
    /// The comparison left out, e.g. `> 10`.
    pub threshold: Option<String>,
    pub chart: Option<crate::chart::ChartData>,
    pub error: Option<String>,
}

/// The window charted around an alert: from an hour before it became active to now while it
/// is active, or to a quarter of an hour after it resolved (not past now).
pub fn chart_window(a: &AlertRow, now: TimestampMs) -> (TimestampMs, TimestampMs) {
    let start = a.active_at_ms.or(a.fired_at_ms).unwrap_or(now) - 3_600_000;
    let end = if a.is_active() {
        now
    } else {
        a.resolved_at_ms.map_or(now, |r| r + 15 * 60_000).min(now)
    };
    (start, end.max(start + 60_000))
}

/// What to chart for a rule's expression: a comparison with a number (`expr > 10`, not
/// `bool`) charts its other side and names the comparison; anything else charts as it is.
#[cfg(feature = "ssr")]
pub fn chart_query(expr: &str) -> (String, Option<String>) {
    let Ok(parsed) = query::parse(expr) else {
        return (expr.to_string(), None);
    };
    let mut e = &parsed;
    while let query::Expr::Paren(p) = e {
        e = &p.expr;
    }
    if let query::Expr::Binary(b) = e {
        if b.op.is_comparison_operator() && !b.return_bool() {
            if let query::Expr::NumberLiteral(n) = b.rhs.as_ref() {
                return (
                    b.lhs.to_string(),
                    Some(format!("{} {}", b.op, query::format_value(n.val))),
                );
            }
        }
    }
    (expr.to_string(), None)
}

/// Charts `detail`'s rule expression; series whose labels all agree with the alert's are
/// kept (the alert's own series), all of them when none does.
#[cfg(feature = "ssr")]
async fn alert_chart(
    backend: &std::sync::Arc<dyn crate::Backend>,
    detail: &AlertDetail,
    now: TimestampMs,
) -> Option<AlertChart> {
    let expr = detail
        .rule_query
        .as_deref()
        .filter(|q| !q.trim().is_empty())?;
    let (q, threshold) = chart_query(expr);
    let (start, end) = chart_window(&detail.alert, now);
    let step_ms = crate::range::auto_step(end - start);
    let range = model::RangeQuery {
        start,
        end,
        step_ms,
        aggregation: model::Aggregation::Avg,
    };
    let a = &detail.alert;
    let (chart, error) = match backend.signal_range(&q, range).await {
        Ok(series) => {
            let own: Vec<model::RangeSeries> = series
                .iter()
                .filter(|s| {
                    s.labels
                        .iter()
                        .all(|(k, v)| a.labels.get(k).is_some_and(|x| x == v))
                })
                .cloned()
                .collect();
            let mut series = if own.is_empty() { series } else { own };
            let omitted_series = series.len().saturating_sub(crate::api::MAX_SERIES);
            series.truncate(crate::api::MAX_SERIES);
            (
                Some(crate::chart::ChartData {
                    selector: q.clone(),
                    start,
                    end,
                    step_ms,
                    series,
                    omitted_series,
                    events: Vec::new(),
                    // No expected band (NaN), only the firing span in red.
                    band: Some(crate::chart::ExpectedBand {
                        low: f64::NAN,
                        high: f64::NAN,
                        from: a.fired_at_ms.or(a.active_at_ms).unwrap_or(now),
                        to: if a.is_active() {
                            None
                        } else {
                            a.resolved_at_ms
                        },
                    }),
                    anomalies: Vec::new(),
                    last_sample: None,
                }),
                None,
            )
        }
        Err(e) => (None, Some(e)),
    };
    Some(AlertChart {
        query: q,
        threshold,
        chart,
        error,
    })
}

/// An on-call action from a page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AlertAction {
    Acknowledge,
    Unacknowledge,
    /// Empty: nobody.
    Assign(String),
    /// For how long (`1h`).
    Snooze(String),
    Resolve,
    Note,
}

/// The list's filters as the URL carries them (`?state=firing&severity=page&matcher=job%3D"etl"`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ListParams {
    pub state: String,
    pub severity: String,
    pub matcher: String,
}

impl ListParams {
    pub fn from_query(q: &ParamsMap) -> Self {
        let get = |k: &str| q.get(k).unwrap_or_default().trim().to_string();
        Self {
            state: get("state"),
            severity: get("severity"),
            matcher: get("matcher"),
        }
    }

    /// The backend filter; a bad state is named with the ones to use instead.
    pub fn to_filter(&self) -> Result<AlertListFilter, String> {
        let states = match self.state.as_str() {
            "" | "all" => Vec::new(),
            s if STATES.contains(&s) => vec![s.to_string()],
            s => {
                return Err(format!(
                    "state {s:?} is not known: use one of {} (or leave it empty)",
                    STATES.join(", ")
                ))
            }
        };
        Ok(AlertListFilter {
            states,
            severity: self.severity.clone(),
            matchers: self.matcher.clone(),
        })
    }
}

#[cfg(feature = "ssr")]
use crate::api::backend;

#[server(prefix = "/app-fn", endpoint = "alerts_view")]
pub async fn list_alerts(params: ListParams) -> Result<AlertsView, ServerFnError> {
    let filter = params.to_filter().map_err(ServerFnError::new)?;
    let mut alerts = backend()?
        .lifecycle_alerts(filter)
        .await
        .map_err(ServerFnError::new)?;
    let truncated = alerts.len() > LIST_LIMIT;
    alerts.truncate(LIST_LIMIT);
    Ok(AlertsView {
        now: crate::api::now_ms(),
        alerts,
        truncated,
    })
}

#[server(prefix = "/app-fn", endpoint = "alert_detail")]
pub async fn load_alert(id: i64) -> Result<AlertPage, ServerFnError> {
    let b = backend()?;
    let detail = b.lifecycle_alert(id).await.map_err(ServerFnError::new)?;
    let now = crate::api::now_ms();
    let chart = match &detail {
        Some(d) => alert_chart(&b, d, now).await,
        None => None,
    };
    Ok(AlertPage { now, detail, chart })
}

/// An on-call action as the signed-in user. `csrf_token` is checked by the server's auth layer
/// (the forms carry the session's token); it is a parameter so the form field is accepted.
#[server(prefix = "/app-fn", endpoint = "alert_action")]
pub async fn act_on_alert(
    csrf_token: Option<String>,
    id: i64,
    action: String,
    assignee: Option<String>,
    duration: Option<String>,
    comment: Option<String>,
) -> Result<(), ServerFnError> {
    let _ = csrf_token;
    let who = crate::login::authorize("alert_action")?;
    let action = match action.as_str() {
        "acknowledge" => AlertAction::Acknowledge,
        "unacknowledge" => AlertAction::Unacknowledge,
        "assign" => AlertAction::Assign(assignee.unwrap_or_default()),
        "snooze" => AlertAction::Snooze(duration.unwrap_or_default()),
        "resolve" => AlertAction::Resolve,
        "note" => AlertAction::Note,
        other => {
            return Err(ServerFnError::new(format!(
                "action {other:?} is not known: use acknowledge, unacknowledge, assign, snooze, resolve or note"
            )))
        }
    };
    backend()?
        .alert_action(&who.name, id, action, comment.unwrap_or_default().trim())
        .await
        .map_err(ServerFnError::new)
}

/// The actions `/alerts` applies to several selected alerts at once.
pub const BULK_ACTIONS: [(&str, &str); 3] = [
    ("acknowledge", "Acknowledge"),
    ("resolve", "Resolve by hand"),
    ("silence", "Silence their groups"),
];

/// One action on every selected alert (`ids[]` from the list's checkboxes), each alert's
/// timeline getting its own event: acknowledge and resolve as on the detail page; silence
/// makes one silence per notification group among them (its group matchers, `duration`,
/// `comment`) and notes it on each alert. Alerts it could not act on are named in the answer;
/// it fails only when it acted on none. `csrf_token` is checked by the server's auth layer.
#[server(prefix = "/app-fn", endpoint = "bulk_alert_action")]
pub async fn bulk_alert_action(
    csrf_token: Option<String>,
    ids: Option<Vec<i64>>,
    action: String,
    duration: Option<String>,
    comment: Option<String>,
) -> Result<String, ServerFnError> {
    let _ = csrf_token;
    let who = crate::login::authorize("bulk_alert_action")?;
    let ids = ids.unwrap_or_default();
    if ids.is_empty() {
        return Err(ServerFnError::new(
            "no alert is selected: tick the alerts to act on first",
        ));
    }
    let comment = comment.unwrap_or_default().trim().to_string();
    let b = backend()?;
    let mut done = 0;
    let mut failed = Vec::new();
    match action.as_str() {
        "acknowledge" | "resolve" => {
            let act = if action == "acknowledge" {
                AlertAction::Acknowledge
            } else {
                AlertAction::Resolve
            };
            for id in &ids {
                match b.alert_action(&who.name, *id, act.clone(), &comment).await {
                    Ok(()) => done += 1,
                    Err(e) => failed.push(format!("alert {id}: {e}")),
                }
            }
        }
        "silence" => {
            let duration = duration.unwrap_or_default();
            if comment.is_empty() {
                return Err(ServerFnError::new(
                    "say why in the comment: a silence needs a reason",
                ));
            }
            // One silence per notification group, made once.
            let mut made: BTreeMap<String, String> = BTreeMap::new();
            for id in &ids {
                let alert = match b.lifecycle_alert(*id).await {
                    Ok(Some(d)) => d.alert,
                    Ok(None) => {
                        failed.push(format!("alert {id}: there is no such alert"));
                        continue;
                    }
                    Err(e) => {
                        failed.push(format!("alert {id}: {e}"));
                        continue;
                    }
                };
                let matchers = matcher_text(&alert.group_labels);
                let silence = match made.get(&matchers) {
                    Some(s) => s.clone(),
                    None => match b
                        .create_silence(&who.name, &matchers, &duration, &comment)
                        .await
                    {
                        Ok(s) => {
                            made.insert(matchers.clone(), s.clone());
                            s
                        }
                        Err(e) => {
                            failed.push(format!("alert {id}: {e}"));
                            continue;
                        }
                    },
                };
                let note = format!("silenced with its group ({matchers}) by silence {silence} for {duration}: {comment}");
                match b
                    .alert_action(&who.name, *id, AlertAction::Note, &note)
                    .await
                {
                    Ok(()) => done += 1,
                    Err(e) => failed.push(format!("alert {id}: {e}")),
                }
            }
        }
        other => {
            return Err(ServerFnError::new(format!(
                "bulk action {other:?} is not known: use acknowledge, resolve or silence"
            )))
        }
    }
    if done == 0 {
        return Err(ServerFnError::new(failed.join("\n")));
    }
    let mut out = format!(
        "{action}: done for {done} of {} alert{}",
        ids.len(),
        if ids.len() == 1 { "" } else { "s" }
    );
    for f in failed {
        out.push('\n');
        out.push_str(&f);
    }
    Ok(out)
}

pub fn detail_href(id: i64) -> String {
    format!("/alerts/{id}")
}

/// `{a="1", b="2"}` as matcher text, for links and the silence form.
pub fn matcher_text(labels: &[(String, String)]) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `/alerts?matcher=...`: the alerts with these labels.
pub fn list_href_for(labels: &[(String, String)]) -> String {
    format!(
        "/alerts?matcher={}",
        crate::range::encode_query_value(&matcher_text(labels))
    )
}

fn state_rank(s: &str) -> usize {
    STATES.iter().position(|x| *x == s).unwrap_or(STATES.len())
}

fn filter_form(p: &ListParams, severities: Vec<String>) -> impl IntoView {
    let filtered = *p != ListParams::default();
    let mut state_options = vec![(String::new(), "every state".to_string())];
    state_options.extend(STATES.iter().map(|s| (s.to_string(), s.to_string())));
    let mut sev_options = vec![(String::new(), "any severity".to_string())];
    sev_options.extend(severities.into_iter().map(|s| (s.clone(), s)));
    let state = select("state", "State", &p.state, state_options);
    let severity = select("severity", "Severity", &p.severity, sev_options);
    let matcher = p.matcher.clone();
    view! {
        <Form method="get" action="/alerts">
            <div class="form-row alert-filters">
                {state}
                {severity}
                <label>
                    "Labels"
                    <input type="text" name="matcher" class="filter-matcher" value=matcher
                        placeholder="job=\"etl\", stage=~\"trans.*\"" size="32"/>
                </label>
                <button type="submit">"Apply"</button>
                {filtered.then(|| view! { <a href="/alerts" class="clear-filters">"Clear filters"</a> })}
            </div>
        </Form>
    }
}

fn state_badge(state: &str) -> AnyView {
    view! { <span class=format!("state-badge alert-state state-{state}")>{state.to_string()}</span> }
        .into_any()
}

/// The small marks next to an alert's state: silenced, snoozed, acknowledged, assigned.
fn marks(a: &AlertRow, now: TimestampMs) -> AnyView {
    view! {
        {a.silenced_by.clone().map(|id| view! {
            <a class="mark mark-silenced" href="/silences" title=format!("Held back by silence {id}")>"silenced"</a> " "
        })}
        {a.inhibited_by.clone().map(|(id, rule)| view! {
            <a class="mark mark-inhibited" href=format!("/alerts/{id}")
               title=format!("Held back while alert {id} fires (inhibit rule {rule})")>"inhibited"</a> " "
        })}
        {a.snoozed_until_ms.filter(|u| *u > now).map(|u| view! {
            <span class="mark mark-snoozed" title=format!("No repeat notices until {}", format_utc(u))>"snoozed"</span>
        })}
    }
    .into_any()
}

fn people(a: &AlertRow, now: TimestampMs) -> AnyView {
    view! {
        {a.acknowledged_by.clone().map(|who| {
            let when = a.acknowledged_at_ms.map(|t| format!(" {}", format_ago(now, t))).unwrap_or_default();
            view! { <div class="acked">{format!("ack'd by {who}{when}")}</div> }
        })}
        {a.assignee.clone().map(|who| view! { <div class="assigned">{format!("assigned to {who}")}</div> })}
        {(a.acknowledged_by.is_none() && a.assignee.is_none() && a.is_active())
            .then(|| view! { <span class="muted">"nobody yet"</span> })}
    }
    .into_any()
}

#[component]
pub fn AlertsPage() -> impl IntoView {
    let query = use_query_map();
    let params = Memo::new(move |_| query.with(ListParams::from_query));
    let tick = RwSignal::new(0u64);
    let viewer = Viewer(Resource::new(|| (), |_| crate::login::current_user()));
    provide_context(viewer);
    let bulk = ServerAction::<BulkAlertAction>::new();
    let data = Resource::new(
        move || (params.get(), tick.get(), bulk.version().get()),
        |(p, _, _)| list_alerts(p),
    );
    crate::every_seconds(15, move || tick.update(|t| *t += 1));
    view! {
        <Title text="Alerts · pipewatch"/>
        <h1>"Alerts"</h1>
        <p class="muted">"Firing, pending and recently resolved alerts, grouped as they are paged. See also "
            <a href="/silences">"Silences"</a> " and " <a href="/rules">"Rules"</a> "."</p>
        {move || bulk.value().get().map(|r| match r {
            Err(e) => view! {
                <div class="error-box bulk-result" role="alert"><strong>"Not done: "</strong>
                    <ul>{crate::error_text(&e).lines().map(|l| view! { <li>{l.to_string()}</li> }).collect_view()}</ul></div>
            }.into_any(),
            Ok(text) => view! {
                <div class="ok-box bulk-result" role="status">
                    <ul>{text.lines().map(|l| view! { <li>{l.to_string()}</li> }).collect_view()}</ul></div>
            }.into_any(),
        })}
        <Transition fallback=|| view! { <p class="loading">"Loading alerts…"</p> }>
            {move || {
                let may_act = viewer.may_act();
                let token = viewer.token();
                data.get().map(|r| {
                    let p = params.get_untracked();
                    match r {
                        Err(e) => view! {
                            {filter_form(&p, Vec::new())}
                            <div class="error-box" role="alert">
                                <strong>"Could not list alerts: "</strong>{crate::error_text(&e)}
                            </div>
                        }
                        .into_any(),
                        Ok(v) => alert_list(v, &p, may_act.then_some((bulk, token.clone()))).into_any(),
                    }
                })
            }}
        </Transition>
    }
}

/// The form acting on the ticked alerts (editors only).
fn bulk_toolbar(token: String) -> impl IntoView {
    view! {
        <input type="hidden" name="csrf_token" value=token/>
        <div class="form-row bulk-actions">
            <label>"With the ticked alerts: "
                <select name="action">
                    {BULK_ACTIONS.iter().map(|(v, t)| view! { <option value=*v>{*t}</option> }).collect_view()}
                </select>
            </label>
            <label>"Silence for "
                <select name="duration">
                    {SILENCE_DURATIONS.iter().map(|d| view! { <option value=*d>{*d}</option> }).collect_view()}
                </select>
            </label>
            <input type="text" name="comment" size="30" placeholder="comment (needed to silence)"/>
            <button type="submit" class="primary">"Apply to ticked"</button>
        </div>
    }
}

fn alert_list(
    v: AlertsView,
    p: &ListParams,
    bulk: Option<(ServerAction<BulkAlertAction>, String)>,
) -> impl IntoView {
    let mut severities: Vec<String> = v
        .alerts
        .iter()
        .filter_map(|a| a.severity().map(str::to_string))
        .chain(["page", "critical", "warning", "info"].map(String::from))
        .chain(Some(p.severity.clone()).filter(|s| !s.is_empty()))
        .collect();
    severities.sort();
    severities.dedup();
    let form = filter_form(p, severities);
    if v.alerts.is_empty() {
        let body = if *p != ListParams::default() {
            view! {
                <p class="empty" role="status">"No alert matches these filters. "
                    <a href="/alerts">"Clear the filters"</a> " to see every alert."</p>
            }
            .into_any()
        } else {
            view! {
                <div class="empty" role="status">
                    <p><strong>"No alerts."</strong>
                    " Nothing has fired yet. Alerts come from the alerting rules ("
                    <a href="/rules">"Rules"</a>
                    "), from anomaly rules over what the detection jobs find, and from Alertmanager clients posting to "
                    <code>"/api/v2/alerts"</code> "."</p>
                    <p>"To see the on-call workflow, start the demo with a fault: "
                    <code>"pipewatch demo --inject stall --at transform"</code>
                    " fires StageStalled within about two minutes."</p>
                </div>
            }
            .into_any()
        };
        return view! { {form.into_any()} {body} }.into_any();
    }
    let now = v.now;
    let firing = v.alerts.iter().filter(|a| a.state == "firing").count();
    let acked = v
        .alerts
        .iter()
        .filter(|a| a.state == "firing" && a.acknowledged_by.is_some())
        .count();
    let summary = format!(
        "{} alerts · {firing} firing, {acked} of them acknowledged{}",
        v.alerts.len(),
        if v.truncated {
            format!(" · showing the first {LIST_LIMIT}; narrow the filters")
        } else {
            String::new()
        }
    );
    // Groups in the order of their worst alert, then their newest change.
    let mut groups: BTreeMap<String, Vec<AlertRow>> = BTreeMap::new();
    for a in v.alerts {
        groups.entry(a.group_key.clone()).or_default().push(a);
    }
    let mut groups: Vec<Vec<AlertRow>> = groups.into_values().collect();
    for g in &mut groups {
        g.sort_by(|a, b| {
            state_rank(&a.state)
                .cmp(&state_rank(&b.state))
                .then(b.since_ms().cmp(&a.since_ms()))
        });
    }
    groups.sort_by(|a, b| {
        state_rank(&a[0].state)
            .cmp(&state_rank(&b[0].state))
            .then(b[0].updated_at_ms.cmp(&a[0].updated_at_ms))
    });
    let selectable = bulk.is_some();
    let groups_view = groups
        .into_iter()
        .map(|g| alert_group(g, now, selectable))
        .collect_view();
    // One table, a body per group, so the columns line up across groups.
    let table = view! {
        <table class="alerts">
            <thead><tr>{selectable.then(|| view! { <th class="select">"✓"</th> })}<th>"State"</th><th>"Alert"</th><th>"Value"</th><th>"Since"</th><th>"Acknowledged / assigned"</th></tr></thead>
            {groups_view.into_any()}
        </table>
    };
    let body = match bulk {
        Some((action, token)) => view! {
            <ActionForm action=action attr:class="bulk-alerts">
                {bulk_toolbar(token)}
                {table}
            </ActionForm>
        }
        .into_any(),
        None => table.into_any(),
    };
    view! {
        {form.into_any()}
        <p class="muted alert-summary">{summary}</p>
        {body}
    }
    .into_any()
}

fn alert_group(g: Vec<AlertRow>, now: TimestampMs, selectable: bool) -> AnyView {
    let labels = g[0].group_labels.clone();
    let title = if labels.is_empty() {
        "(one group for every alert)".to_string()
    } else {
        matcher_text(&labels)
    };
    // Alerts on their own route (nodata, error, a configured route) say which.
    let route = g[0]
        .group_key
        .split('/')
        .next()
        .filter(|r| *r != "default")
        .map(|r| format!("route {r} · "))
        .unwrap_or_default();
    let mut counts: BTreeMap<usize, (String, usize)> = BTreeMap::new();
    for a in &g {
        counts
            .entry(state_rank(&a.state))
            .or_insert_with(|| (a.state.clone(), 0))
            .1 += 1;
    }
    let counts = counts
        .into_values()
        .map(|(s, n)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(" · ");
    let rows = g
        .into_iter()
        .map(|a| {
            let href = detail_href(a.id);
            let other_labels: Vec<String> = a
                .labels
                .iter()
                .filter(|(k, _)| *k != "alertname")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let since = a.since_ms();
            view! {
                <tr class=format!("alert-row state-{}", a.state) data-id=a.id.to_string() data-rule=a.rule.clone()>
                    {selectable.then(|| view! {
                        <td class="select"><input type="checkbox" name="ids[]" value=a.id.to_string()
                            aria-label=format!("select alert {} {}", a.id, a.rule)/></td>
                    })}
                    <td>{state_badge(&a.state)} " " {marks(&a, now)}</td>
                    <td class="alert-what">
                        <a href=href class="alert-name">{a.rule.clone()}</a>
                        {a.severity().map(|s| view! { " " <span class=format!("sev-badge sev-{s}")>{s.to_string()}</span> })}
                        <div class="small">{a.summary()}</div>
                        <div class="muted small labels">{other_labels.join(" · ")}</div>
                    </td>
                    <td class="num">{a.value.clone().unwrap_or_default()}</td>
                    <td title=format_utc(since)>{format!("{} {}", a.state, format_ago(now, since))}</td>
                    <td class="alert-people">{people(&a, now)}</td>
                </tr>
            }
            .into_any()
        })
        .collect_view();
    view! {
        <tbody class="alert-group">
            <tr class="alert-group-title">
                <th colspan=if selectable { "6" } else { "5" } style="text-align:left"><code>{title}</code> " " <span class="muted small">{format!("{route}{counts}")}</span></th>
            </tr>
            {rows}
        </tbody>
    }
    .into_any()
}

/// The page's viewer, for deciding whether to offer the actions (the server checks again).
#[derive(Clone, Copy)]
struct Viewer(Resource<Result<Principal, ServerFnError>>);

impl Viewer {
    fn principal(self) -> Option<Principal> {
        self.0.get().and_then(Result::ok)
    }
    fn token(self) -> String {
        self.principal()
            .and_then(|p| p.csrf_token)
            .unwrap_or_default()
    }
    fn may_act(self) -> bool {
        self.principal()
            .and_then(|p| p.role)
            .is_some_and(|r| r >= Role::Editor)
    }
}

#[component]
pub fn AlertPage() -> impl IntoView {
    let viewer = Viewer(Resource::new(|| (), |_| crate::login::current_user()));
    provide_context(viewer);
    let params = use_params_map();
    let id = Memo::new(move |_| {
        params.with(|p| {
            let raw = p.get("id").unwrap_or_default();
            raw.parse::<i64>()
                .map_err(|_| format!("alert id {raw:?} is not a number: open one from the list"))
        })
    });
    let act = ServerAction::<ActOnAlert>::new();
    let silence = ServerAction::<crate::silences::CreateSilence>::new();
    let tick = RwSignal::new(0u64);
    let data = Resource::new(
        move || {
            (
                id.get(),
                act.version().get(),
                silence.version().get(),
                tick.get(),
            )
        },
        |(id, _, _, _)| async move {
            match id {
                Ok(id) => load_alert(id).await.map_err(|e| crate::error_text(&e)),
                Err(e) => Err(e),
            }
        },
    );
    crate::every_seconds(10, move || tick.update(|t| *t += 1));
    view! {
        <Title text="Alert · pipewatch"/>
        <p class="crumbs"><a href="/alerts">"← All alerts"</a></p>
        {move || act.value().get().and_then(|r| r.err()).map(|e| view! {
            <div class="error-box" role="alert"><strong>"The action was not done: "</strong>{crate::error_text(&e)}</div>
        })}
        {move || silence.value().get().map(|r| match r {
            Err(e) => view! {
                <div class="error-box" role="alert"><strong>"No silence was created: "</strong>{crate::error_text(&e)}</div>
            }.into_any(),
            Ok(id) => view! {
                <div class="ok-box" role="status">{format!("Silence {id} created. ")}<a href="/silences">"See silences"</a></div>
            }.into_any(),
        })}
        <Transition fallback=|| view! { <p class="loading">"Loading the alert…"</p> }>
            {move || {
                data.get().map(|r| match r {
                    Err(e) => view! {
                        <div class="error-box" role="alert"><strong>"Could not show this alert: "</strong>{e}</div>
                    }
                    .into_any(),
                    Ok(AlertPage { detail: None, .. }) => {
                        #[cfg(feature = "ssr")]
                        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
                            resp.set_status(axum::http::StatusCode::NOT_FOUND);
                        }
                        view! {
                            <h1>"Alert not found"</h1>
                            <p class="empty">"There is no alert with this id. See "
                            <a href="/alerts">"all alerts"</a> "."</p>
                        }
                        .into_any()
                    }
                    Ok(AlertPage { now, detail: Some(d), chart }) => alert_detail_view(d, chart, now, act, silence).into_any(),
                })
            }}
        </Transition>
    }
}

fn event_text(e: &AlertEventRow) -> String {
    let what = match e.kind.as_str() {
        "transition" => format!(
            "{} → {}",
            e.from.clone().unwrap_or_default(),
            e.to.clone().unwrap_or_default()
        ),
        "notified" => "notified".into(),
        "silenced" => "held back by a silence".into(),
        "acknowledged" => "acknowledged".into(),
        "unacknowledged" => "acknowledgement taken back".into(),
        "assigned" => "assigned".into(),
        "snoozed" => "snoozed".into(),
        "resolve_requested" => "asked to resolve by hand".into(),
        "note" => "note".into(),
        other => other.to_string(),
    };
    what
}

fn alert_detail_view(
    d: AlertDetail,
    chart: Option<AlertChart>,
    now: TimestampMs,
    act: ServerAction<ActOnAlert>,
    silence: ServerAction<crate::silences::CreateSilence>,
) -> AnyView {
    let a = d.alert.clone();
    let viewer = use_context::<Viewer>();
    let may_act = move || viewer.is_some_and(|v| v.may_act());
    let labels = a
        .labels
        .iter()
        .map(|(k, v)| {
            let href = list_href_for(&[(k.clone(), v.clone())]);
            view! { <li><a href=href title="Alerts with this label"><code>{format!("{k}=\"{v}\"")}</code></a></li> }
        })
        .collect_view()
        .into_any();
    let annotations = a
        .annotations
        .iter()
        .map(|(k, v)| {
            let is_link = v.starts_with("http://") || v.starts_with("https://");
            view! {
                <dt>{k.clone()}</dt>
                <dd>{if is_link {
                    view! { <a href=v.clone() rel="noopener noreferrer">{v.clone()}</a> }.into_any()
                } else {
                    view! { <span>{v.clone()}</span> }.into_any()
                }}</dd>
            }
        })
        .collect_view()
        .into_any();
    let timeline = d
        .timeline
        .iter()
        .rev()
        .map(|e| {
            let person = e.by != "system";
            view! {
                <li class=format!("event event-{}", e.kind) class:by-person=person>
                    <span class="event-time" title=format_utc(e.at_ms)>{format_utc(e.at_ms)}</span>
                    " "
                    <strong class="event-what">{event_text(e)}</strong>
                    " "
                    <span class="event-by">{if person { format!("by {}", e.by) } else { String::new() }}</span>
                    {(!e.detail.is_empty()).then(|| view! { <span class="event-detail">{format!(" — {}", e.detail)}</span> })}
                </li>
            }
            .into_any()
        })
        .collect_view()
        .into_any();
    let since = a.since_ms();
    let source = match a.source.as_str() {
        "rule" if a.rule_group.is_empty() => "alerting rule".to_string(),
        "rule" => format!("alerting rule in group {}", a.rule_group),
        "anomaly" => format!("anomaly rule in group {}", a.rule_group),
        "alertmanager" => "an Alertmanager client (POST /api/v2/alerts)".to_string(),
        other => other.to_string(),
    };
    let group_matchers = matcher_text(&a.group_labels);
    let actions = {
        let a = a.clone();
        let users = d.users.clone();
        move || {
            if may_act() {
                action_forms(&a, &users, act, silence, &group_matchers).into_any()
            } else {
                view! {
                    <p class="muted read-only">"Read only: log in as an editor to acknowledge, assign, snooze, resolve, add notes or silence."</p>
                }
                .into_any()
            }
        }
    };
    let head = view! {
        <h1 class="alert-title">
            {state_badge(&a.state)} " " {a.rule.clone()}
            {a.severity().map(|s| view! { " " <span class=format!("sev-badge sev-{s}")>{s.to_string()}</span> })}
            " " {marks(&a, now)}
        </h1>
        <p class="explanation alert-summary-text">{a.summary()}</p>
        {a.annotations.get("description").cloned().filter(|_| a.annotations.contains_key("summary")).map(|t| view! { <p>{t}</p> })}
    }
    .into_any();
    let facts = view! {
                <dl class="status-grid alert-facts">
                    <dt>"State"</dt><dd>{format!("{} since {} ({})", a.state, format_utc(since), format_ago(now, since))}</dd>
                    <dt>"Value"</dt><dd>{a.value.clone().unwrap_or_else(|| "–".into())}</dd>
                    <dt>"Acknowledged"</dt><dd class="fact-ack">{match (&a.acknowledged_by, a.acknowledged_at_ms) {
                        (Some(who), Some(t)) => format!("by {who} at {}", format_utc(t)),
                        (Some(who), None) => format!("by {who}"),
                        _ => "no".into(),
                    }}</dd>
                    <dt>"Assigned to"</dt><dd class="fact-assignee">{a.assignee.clone().unwrap_or_else(|| "nobody".into())}</dd>
                    <dt>"Notices"</dt><dd>{match (&a.silenced_by, a.snoozed_until_ms.filter(|u| *u > now)) {
                        (Some(id), _) => format!("held back by silence {id}"),
                        (None, _) if a.inhibited_by.is_some() => {
                            let (id, rule) = a.inhibited_by.clone().unwrap_or_default();
                            format!("inhibited by alert {id} (inhibit rule {rule})")
                        }
                        (None, Some(u)) => format!("snoozed: no repeat notices until {}", format_utc(u)),
                        _ => "not held back".into(),
                    }}</dd>
                    <dt>"Source"</dt><dd>{source}
                        {d.anomaly_href.clone().map(|h| view! { " · " <a href=h>"the anomaly"</a> })}
                        {(a.source != "alertmanager").then(|| view! { " · " <a href="/rules">"the rule"</a> })}</dd>
                    {d.rule_query.clone().map(|q| view! {
                        <dt>"Query"</dt><dd><code class="signal">{q}</code>
                        {d.explore_href.clone().map(|h| view! { " " <a href=h>"Open in Explore"</a> })}</dd>
                    })}
                    <dt>"Active since"</dt><dd>{a.active_at_ms.map(format_utc).unwrap_or_else(|| "–".into())}</dd>
                    <dt>"Fired"</dt><dd>{a.fired_at_ms.map(format_utc).unwrap_or_else(|| "–".into())}</dd>
                    <dt>"Resolved"</dt><dd>{a.resolved_at_ms.filter(|_| !a.is_active()).map(format_utc).unwrap_or_else(|| "–".into())}</dd>
                    <dt>"Episode"</dt><dd>{a.episode.to_string()}</dd>
                    <dt>"Group"</dt><dd><a href=list_href_for(&a.group_labels)><code>{a.group_key.clone()}</code></a></dd>
                </dl>
    }
    .into_any();
    let chart = chart.map(|c| chart_view(c, &a));
    view! {
        {head}
        <div class="alert-layout">
            <div class="alert-main">
                {chart}
                {facts}
                <h2>"Labels"</h2>
                <ul class="label-list">{labels}</ul>
                <h2>"Annotations"</h2>
                {if a.annotations.is_empty() {
                    view! { <p class="muted">"None."</p> }.into_any()
                } else {
                    view! { <dl class="status-grid annotations">{annotations}</dl> }.into_any()
                }}
                <h2>"Timeline"</h2>
                // Newest first, numbered as they happened.
                <ol class="timeline" reversed=true>{timeline}</ol>
            </div>
            <aside class="alert-actions">
                <h2>"Actions"</h2>
                {actions}
            </aside>
        </div>
    }
    .into_any()
}

fn chart_view(c: AlertChart, a: &AlertRow) -> AnyView {
    let Some(data) = c.chart else {
        return view! {
            <div class="error-box" role="alert"><strong>"Could not chart the rule's expression: "</strong>
                {c.error.unwrap_or_default()}</div>
        }
        .into_any();
    };
    let legend = data
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let label = Some(crate::chart::series_label(s))
                .filter(|l| !l.is_empty())
                .unwrap_or_else(|| data.selector.clone());
            view! {
                <li class="legend-static">
                    <span class="swatch" style=format!("background:{}", crate::chart::series_css_color(i))></span>
                    <code>{label}</code>
                </li>
            }
        })
        .collect_view();
    let note = format!(
        "{}{} · {} to {} · red: firing{}",
        c.query,
        c.threshold
            .as_ref()
            .map(|t| format!(" (the rule fires while it is {t})"))
            .unwrap_or_default(),
        format_utc(data.start),
        format_utc(data.end),
        if a.is_active() { " (still firing)" } else { "" }
    );
    let empty = data.series.is_empty();
    match crate::chart::render_svg(&data, &[]) {
        Err(e) => view! { <div class="error-box">{e}</div> }.into_any(),
        Ok((svg, _)) => view! {
            <p class="chart-summary alert-chart-note" data-start=data.start.to_string() data-end=data.end.to_string()>{note}</p>
            {empty.then(|| view! { <p class="muted">"No data in this window."</p> })}
            <div class="chart alert-chart"><div class="chart-svg" inner_html=svg></div></div>
            {(data.omitted_series > 0).then(|| view! { <p class="warning">{format!("{} more series were left out.", data.omitted_series)}</p> })}
            <ul class="legend">{legend}</ul>
        }
        .into_any(),
    }
}

/// The fields every action form carries.
fn hidden_fields(token: String, id: i64, action: &'static str) -> impl IntoView {
    view! {
        <input type="hidden" name="csrf_token" value=token/>
        <input type="hidden" name="id" value=id.to_string()/>
        <input type="hidden" name="action" value=action/>
    }
}

fn action_forms(
    a: &AlertRow,
    users: &[String],
    act: ServerAction<ActOnAlert>,
    silence: ServerAction<crate::silences::CreateSilence>,
    group_matchers: &str,
) -> AnyView {
    let token = use_context::<Viewer>()
        .map(Viewer::token)
        .unwrap_or_default();
    let id = a.id;
    let hidden = {
        let token = token.clone();
        move |action: &'static str| hidden_fields(token.clone(), id, action)
    };
    let group_matchers = group_matchers.to_string();
    let ack = if a.acknowledged_by.is_some() {
        let hidden = hidden.clone();
        view! {
            <ActionForm action=act attr:class="action-unack">
                {hidden("unacknowledge")}
                <button type="submit">"Un-acknowledge"</button>
            </ActionForm>
        }
        .into_any()
    } else {
        let hidden = hidden.clone();
        view! {
            <ActionForm action=act attr:class="action-ack">
                {hidden("acknowledge")}
                <input type="text" name="comment" placeholder="comment (optional)"/>
                <button type="submit" class="primary">"Acknowledge"</button>
            </ActionForm>
        }
        .into_any()
    };
    let current = a.assignee.clone().unwrap_or_default();
    let user_options = std::iter::once(String::new())
        .chain(users.iter().cloned())
        .map(|u| {
            let selected = u == current;
            let text = if u.is_empty() {
                "nobody".to_string()
            } else {
                u.clone()
            };
            view! { <option value=u selected=selected>{text}</option> }
        })
        .collect_view();
    let active = a.is_active();
    let (h_assign, h_snooze, h_resolve, h_note) =
        (hidden.clone(), hidden.clone(), hidden.clone(), hidden);
    view! {
        {ack}
        <ActionForm action=act attr:class="action-assign">
            {h_assign("assign")}
            <label>"Assign to " <select name="assignee">{user_options}</select></label>
            <button type="submit">"Assign"</button>
        </ActionForm>
        {active.then(|| view! {
            <ActionForm action=act attr:class="action-snooze">
                {h_snooze("snooze")}
                <label>"Snooze repeat notices for "
                    <select name="duration">
                        {SNOOZES.iter().map(|d| view! { <option value=*d>{*d}</option> }).collect_view()}
                    </select>
                </label>
                <button type="submit">"Snooze"</button>
            </ActionForm>
            <ActionForm action=act attr:class="action-resolve">
                {h_resolve("resolve")}
                <input type="text" name="comment" placeholder="why (optional)"/>
                <button type="submit" title="Resolve by hand; a rule that still holds fires again">"Resolve"</button>
            </ActionForm>
        })}
        <ActionForm action=act attr:class="action-note">
            {h_note("note")}
            <textarea name="comment" rows="2" placeholder="what you found, what you did" required=true></textarea>
            <button type="submit">"Add note"</button>
        </ActionForm>
        <h3>"Silence this group"</h3>
        <ActionForm action=silence attr:class="silence-group">
            <input type="hidden" name="csrf_token" value=token.clone()/>
            <label>"Matchers" <input type="text" name="matchers" value=group_matchers.clone() size="36"/></label>
            <label>"For "
                <select name="duration">
                    {SILENCE_DURATIONS.iter().map(|d| view! { <option value=*d>{*d}</option> }).collect_view()}
                </select>
            </label>
            <label>"Why " <input type="text" name="comment" placeholder="known incident, working on it" required=true/></label>
            <button type="submit">"Silence this group"</button>
        </ActionForm>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> ParamsMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn url_filters_become_the_backend_filter_and_bad_states_are_named() {
        let f = ListParams::from_query(&params(&[
            ("state", "firing"),
            ("severity", "page"),
            ("matcher", "job=\"etl\""),
        ]))
        .to_filter()
        .unwrap();
        assert_eq!(f.states, ["firing"]);
        assert_eq!(f.severity, "page");
        assert_eq!(f.matchers, "job=\"etl\"");
        assert!(ListParams::default().to_filter().unwrap().states.is_empty());
        let e = ListParams::from_query(&params(&[("state", "open")]))
            .to_filter()
            .unwrap_err();
        assert!(
            e.contains("firing, pending, nodata, error, resolved"),
            "{e}"
        );
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn a_comparison_with_a_number_charts_its_other_side() {
        assert_eq!(
            chart_query("pw_lag_seconds{job=\"etl\"} > 10"),
            (
                "pw_lag_seconds{job=\"etl\"}".to_string(),
                Some("> 10".to_string())
            )
        );
        assert_eq!(
            chart_query("(rate(x[5m]) <= 0.5)").1.as_deref(),
            Some("<= 0.5")
        );
        assert_eq!(
            chart_query("up == bool 0"),
            ("up == bool 0".to_string(), None)
        );
        assert_eq!(chart_query("a > b"), ("a > b".to_string(), None));
    }

    #[test]
    fn the_chart_starts_an_hour_before_and_ends_now_or_after_the_resolve() {
        let m = 60_000;
        let mut a = AlertRow {
            id: 1,
            rule: "Lag".into(),
            rule_group: "g".into(),
            source: "rule".into(),
            state: "firing".into(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            value: None,
            active_at_ms: Some(100 * m),
            fired_at_ms: Some(102 * m),
            resolved_at_ms: None,
            updated_at_ms: 102 * m,
            episode: 1,
            group_key: String::new(),
            group_labels: Vec::new(),
            silenced_by: None,
            inhibited_by: None,
            acknowledged_by: None,
            acknowledged_at_ms: None,
            assignee: None,
            snoozed_until_ms: None,
            resolve_requested_by: None,
            detail: String::new(),
        };
        assert_eq!(chart_window(&a, 130 * m), (40 * m, 130 * m));
        a.state = "resolved".into();
        a.resolved_at_ms = Some(110 * m);
        assert_eq!(chart_window(&a, 200 * m), (40 * m, 125 * m));
        assert_eq!(chart_window(&a, 115 * m), (40 * m, 115 * m));
    }

    #[test]
    fn group_labels_become_matcher_text_with_quotes_escaped() {
        let labels = vec![
            ("alertname".to_string(), "StageStalled".to_string()),
            ("stage".to_string(), "a\"b".to_string()),
        ];
        assert_eq!(
            matcher_text(&labels),
            "alertname=\"StageStalled\", stage=\"a\\\"b\""
        );
    }
}
