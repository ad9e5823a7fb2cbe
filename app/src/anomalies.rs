//! The Anomalies pages. `/anomalies`: every anomaly the detection jobs opened, open ones
//! first, filtered by state, severity, pipeline node and time (all in the URL), each with its
//! explanation and how long ago it started. `/anomalies/<id>`: the signal charted around the
//! anomaly with the expected band shaded and the flagged span tinted, the explanation,
//! detector, score, and related anomalies in the same window. Both offer the "Expected" and
//! "False alarm" buttons, which record feedback the detectors learn from; they are plain
//! forms, so they work before (and without) the browser bundle too.

use crate::chart::{format_value, render_svg, series_css_color, series_label, ChartData};
use crate::range::parse_span;
use crate::timefmt::{format_ago, format_duration_ms, format_utc};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::{use_params_map, use_query_map};
use leptos_router::params::ParamsMap;
use model::anomaly::{Anomaly, AnomalyState, FeedbackKind};
use model::TimestampMs;
use serde::{Deserialize, Serialize};

/// Rows on one list page; the page says when there are more.
pub const LIST_LIMIT: u32 = 200;
/// Related anomalies shown on a detail page.
pub const RELATED_LIMIT: u32 = 20;
/// The session's CSRF token, provided by the pages that show feedback buttons (one request
/// for the page, not one per row).
#[derive(Clone, Copy)]
struct Csrf(Resource<Result<model::auth::Principal, ServerFnError>>);

impl Csrf {
    fn provide() {
        provide_context(Csrf(Resource::new(|| (), |_| crate::login::current_user())));
    }
    fn token(self) -> String {
        self.0
            .get()
            .and_then(Result::ok)
            .and_then(|p| p.csrf_token)
            .unwrap_or_default()
    }
}

pub const SEVERITIES: [&str; 3] = ["critical", "warning", "info"];
/// The time filter's choices: anomalies going on within the last …
pub const WINDOWS: [&str; 4] = ["1h", "24h", "7d", "30d"];

/// Which anomalies to list (the backend's filter). `None` means "any".
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AnomalyFilter {
    pub state: Option<AnomalyState>,
    pub severity: Option<String>,
    pub node: Option<String>,
    /// Open, or ended at or after this time.
    pub since_ms: Option<TimestampMs>,
    /// Spans overlapping `[from, to]`.
    pub overlapping: Option<(TimestampMs, TimestampMs)>,
    pub limit: u32,
}

/// The list's filters as the URL carries them (`?state=open&severity=critical&node=transform&window=24h`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ListParams {
    pub state: String,
    pub severity: String,
    pub node: String,
    pub window: String,
}

impl ListParams {
    pub fn from_query(q: &ParamsMap) -> Self {
        let get = |k: &str| q.get(k).unwrap_or_default().trim().to_string();
        Self {
            state: get("state"),
            severity: get("severity"),
            node: get("node"),
            window: get("window"),
        }
    }

    /// The backend filter at `now`; a bad parameter is named with what to use instead.
    pub fn to_filter(&self, now: TimestampMs) -> Result<AnomalyFilter, String> {
        let state = match self.state.as_str() {
            "" | "all" => None,
            s => Some(AnomalyState::parse(s).ok_or_else(|| {
                format!("state {s:?} is not known: use open or closed (or leave it empty for both)")
            })?),
        };
        let severity = match self.severity.as_str() {
            "" | "all" => None,
            s if SEVERITIES.contains(&s) => Some(s.to_string()),
            s => {
                return Err(format!(
                    "severity {s:?} is not known: use critical, warning or info (or leave it empty)"
                ))
            }
        };
        let since_ms = match self.window.as_str() {
            "" | "all" => None,
            w => Some(now - parse_span(w).map_err(|e| format!("window: {e}"))?),
        };
        Ok(AnomalyFilter {
            state,
            severity,
            node: Some(self.node.clone()).filter(|n| !n.is_empty()),
            since_ms,
            overlapping: None,
            limit: LIST_LIMIT,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomaliesView {
    pub now: TimestampMs,
    pub anomalies: Vec<Anomaly>,
    /// Nodes to offer in the node filter.
    pub nodes: Vec<String>,
    /// The list was cut at [`LIST_LIMIT`].
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyDetail {
    pub now: TimestampMs,
    pub anomaly: Option<Anomaly>,
    pub chart: Option<ChartData>,
    pub chart_error: Option<String>,
    /// Explore over the same window, when the signal is a plain selector Explore can draw.
    pub explore_href: Option<String>,
    pub related: Vec<Anomaly>,
}

#[cfg(feature = "ssr")]
use crate::api::backend;

#[server(prefix = "/app-fn", endpoint = "anomalies_view")]
pub async fn list_anomalies(params: ListParams) -> Result<AnomaliesView, ServerFnError> {
    let now = crate::api::now_ms();
    let filter = params.to_filter(now).map_err(ServerFnError::new)?;
    let backend = backend()?;
    let mut anomalies = backend
        .anomalies(filter.clone())
        .await
        .map_err(ServerFnError::new)?;
    let truncated = anomalies.len() >= filter.limit as usize;
    anomalies.truncate(filter.limit as usize);
    // Offer every node the pipeline knows, the ones with open anomalies and the ones listed.
    let mut nodes: Vec<String> = backend
        .pipeline_graph()
        .await
        .map(|g| {
            g.nodes
                .into_iter()
                .filter(|n| n.kind == "job")
                .map(|n| n.name)
                .collect()
        })
        .unwrap_or_default();
    nodes.extend(
        backend
            .pipeline_health()
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|h| h.node),
    );
    nodes.extend(anomalies.iter().filter_map(|a| a.node.clone()));
    nodes.extend(filter.node.clone());
    nodes.sort();
    nodes.dedup();
    Ok(AnomaliesView {
        now,
        anomalies,
        nodes,
        truncated,
    })
}

/// The window charted around an anomaly: its span with context before (twice the span, at
/// least an hour, so the normal level is visible) and after (up to now).
pub fn chart_window(a: &Anomaly, now: TimestampMs) -> (TimestampMs, TimestampMs) {
    let end = a.ended_at_ms.unwrap_or(a.last_seen_ms).max(a.started_at_ms);
    let span = (end - a.started_at_ms).max(60_000);
    let from = a.started_at_ms - (2 * span).max(3_600_000);
    let to = (end + span.max(15 * 60_000)).min(now.max(end));
    (from, to.max(from + 60_000))
}

#[server(prefix = "/app-fn", endpoint = "anomaly_detail")]
pub async fn load_anomaly(id: i64) -> Result<AnomalyDetail, ServerFnError> {
    let now = crate::api::now_ms();
    let backend = backend()?;
    let Some(anomaly) = backend.anomaly(id).await.map_err(ServerFnError::new)? else {
        return Ok(AnomalyDetail {
            now,
            anomaly: None,
            chart: None,
            chart_error: None,
            explore_href: None,
            related: Vec::new(),
        });
    };
    let (start, end) = chart_window(&anomaly, now);
    let step_ms = crate::range::auto_step(end - start);
    let q = model::RangeQuery {
        start,
        end,
        step_ms,
        aggregation: model::Aggregation::Avg,
    };
    let (chart, chart_error) = match backend.signal_range(&anomaly.signal, q).await {
        Ok(mut series) => {
            let omitted_series = series.len().saturating_sub(crate::api::MAX_SERIES);
            series.truncate(crate::api::MAX_SERIES);
            (
                Some(ChartData {
                    selector: anomaly.signal.clone(),
                    start,
                    end,
                    step_ms,
                    series,
                    omitted_series,
                    events: Vec::new(),
                    band: Some(crate::chart::ExpectedBand {
                        low: anomaly.expected_low,
                        high: anomaly.expected_high,
                        from: anomaly.started_at_ms,
                        to: anomaly.ended_at_ms,
                    }),
                    // The band and the red span already show this anomaly.
                    anomalies: Vec::new(),
                    last_sample: None,
                }),
                None,
            )
        }
        Err(e) => (None, Some(e)),
    };
    // Explore draws selectors only; a PromQL expression gets no link.
    let explore_href = model::Selector::parse(&anomaly.signal).ok().map(|_| {
        format!(
            "/explore?q={}&from={start}&to={end}",
            crate::range::encode_query_value(&anomaly.signal)
        )
    });
    let related = backend
        .anomalies(AnomalyFilter {
            overlapping: Some((start, end)),
            limit: RELATED_LIMIT + 1,
            ..Default::default()
        })
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.id != anomaly.id)
        .take(RELATED_LIMIT as usize)
        .collect();
    Ok(AnomalyDetail {
        now,
        anomaly: Some(anomaly),
        chart,
        chart_error,
        explore_href,
        related,
    })
}

/// Records feedback as the signed-in user. `csrf_token` is checked by the server's auth layer
/// (the forms carry the session's token); it is a parameter so the form field is accepted.
#[server(prefix = "/app-fn", endpoint = "anomaly_feedback")]
pub async fn give_feedback(
    csrf_token: Option<String>,
    id: i64,
    feedback: String,
) -> Result<Anomaly, ServerFnError> {
    let _ = csrf_token;
    let who = crate::login::authorize("anomaly_feedback")?;
    let kind = FeedbackKind::parse(&feedback).ok_or_else(|| {
        ServerFnError::new(format!(
            "feedback {feedback:?} is not known: send expected or false_alarm"
        ))
    })?;
    backend()?
        .anomaly_feedback(id, kind, &who.name)
        .await
        .map_err(ServerFnError::new)?
        .ok_or_else(|| ServerFnError::new(format!("there is no anomaly {id}")))
}

pub fn detail_href(id: i64) -> String {
    format!("/anomalies/{id}")
}

fn feedback_text(k: FeedbackKind) -> &'static str {
    match k {
        FeedbackKind::Expected => "expected",
        FeedbackKind::FalseAlarm => "false alarm",
    }
}

/// "12 min" while open, "ended after 12 min" once closed.
fn duration_text(a: &Anomaly, now: TimestampMs) -> String {
    match a.ended_at_ms {
        Some(end) => format!("lasted {}", format_duration_ms(end - a.started_at_ms)),
        None => format!("ongoing for {}", format_duration_ms(now - a.started_at_ms)),
    }
}

/// "Expected" and "False alarm": one small form each, so a click posts without scripts too.
#[component]
fn FeedbackButtons(
    id: i64,
    current: Option<FeedbackKind>,
    action: ServerAction<GiveFeedback>,
) -> impl IntoView {
    let csrf = use_context::<Csrf>();
    let button = move |kind: FeedbackKind, label: &'static str, help: &'static str| {
        let chosen = current == Some(kind);
        let token = move || csrf.map(Csrf::token).unwrap_or_default();
        view! {
            <ActionForm action=action>
                <input type="hidden" name="csrf_token" value=token/>
                <input type="hidden" name="id" value=id.to_string()/>
                <input type="hidden" name="feedback" value=kind.as_str()/>
                <button
                    type="submit"
                    class=format!("fb-button fb-{}", kind.as_str())
                    class:chosen=chosen
                    aria-pressed=chosen.to_string()
                    title=help
                >
                    {label}
                </button>
            </ActionForm>
        }
    };
    view! {
        <span class="feedback-buttons">
            {button(
                FeedbackKind::Expected,
                "Expected",
                "Real but expected (a backfill, a planned change): this window joins the baseline",
            )}
            {button(
                FeedbackKind::FalseAlarm,
                "False alarm",
                "Not a problem: the detector widens this signal's band",
            )}
        </span>
    }
}

fn feedback_note(a: &Anomaly) -> Option<impl IntoView> {
    let k = a.feedback?;
    let when = a
        .feedback_at_ms
        .map(|t| format!(" at {}", format_utc(t)))
        .unwrap_or_default();
    let by = a
        .feedback_by
        .as_deref()
        .map(|b| format!(" by {b}"))
        .unwrap_or_default();
    Some(view! {
        <span class=format!("feedback-note fb-{}", k.as_str()) title=format!("Marked{by}{when}")>
            {format!("marked {}", feedback_text(k))}
        </span>
    })
}

pub(crate) fn select(
    name: &'static str,
    label: &'static str,
    current: &str,
    options: Vec<(String, String)>,
) -> impl IntoView {
    let current = current.to_string();
    view! {
        <label>
            {label}
            <select name=name class=format!("filter-{name}") on:change=crate::explore::submit_own_form>
                {options
                    .into_iter()
                    .map(|(value, text)| {
                        let selected = value == current;
                        view! { <option value=value selected=selected>{text}</option> }
                    })
                    .collect_view()}
            </select>
        </label>
    }
}

#[component]
pub fn AnomaliesPage() -> impl IntoView {
    Csrf::provide();
    let query = use_query_map();
    let params = Memo::new(move |_| query.with(ListParams::from_query));
    let feedback = ServerAction::<GiveFeedback>::new();
    let tick = RwSignal::new(0u64);
    let data = Resource::new(
        move || (params.get(), feedback.version().get(), tick.get()),
        |(p, _, _)| list_anomalies(p),
    );
    // Slower than the charts: rows move under the pointer when the list reloads.
    crate::every_seconds(30, move || tick.update(|t| *t += 1));
    view! {
        <Title text="Anomalies · pipewatch"/>
        <h1>"Anomalies"</h1>
        {move || feedback.value().get().and_then(|r| r.err()).map(|e| view! {
            <div class="error-box" role="alert"><strong>"Feedback was not recorded: "</strong>{crate::error_text(&e)}</div>
        })}
        // The filters are inside the transition: their node choices come with the data, and
        // server and browser must render the same options.
        <Transition fallback=|| view! { <p class="loading">"Loading anomalies…"</p> }>
            {move || {
                data.get()
                    .map(|r| {
                        let p = params.get_untracked();
                        match r {
                            Err(e) => view! {
                                {filter_form(&p, Some(p.node.clone()).filter(|n| !n.is_empty()).into_iter().collect())}
                                <div class="error-box" role="alert">
                                    <strong>"Could not list anomalies: "</strong>
                                    {crate::error_text(&e)}
                                </div>
                            }
                            .into_any(),
                            Ok(v) => anomaly_list(v, &p, feedback).into_any(),
                        }
                    })
            }}
        </Transition>
    }
}

/// The filter form; `nodes` are offered in the node select.
fn filter_form(p: &ListParams, nodes: Vec<String>) -> impl IntoView {
    let filtered = *p != ListParams::default();
    let state = select(
        "state",
        "State",
        &p.state,
        vec![
            (String::new(), "open and closed".into()),
            ("open".into(), "open".into()),
            ("closed".into(), "closed".into()),
        ],
    );
    let mut node_options = vec![(String::new(), "all nodes".to_string())];
    node_options.extend(nodes.into_iter().map(|n| (n.clone(), n)));
    let mut sev_options = vec![(String::new(), "any severity".to_string())];
    sev_options.extend(SEVERITIES.iter().map(|s| (s.to_string(), s.to_string())));
    let mut window_options = vec![(String::new(), "any time".to_string())];
    window_options.extend(WINDOWS.iter().map(|w| (w.to_string(), format!("last {w}"))));
    let severity = select("severity", "Severity", &p.severity, sev_options);
    let node = select("node", "Pipeline node", &p.node, node_options);
    let window = select("window", "Going on in", &p.window, window_options);
    view! {
        <Form method="get" action="/anomalies">
            <div class="form-row anomaly-filters">
                {state}
                {severity}
                {node}
                {window}
                <button type="submit">"Apply"</button>
                {filtered.then(|| view! { <a href="/anomalies" class="clear-filters">"Clear filters"</a> })}
            </div>
        </Form>
    }
}

fn anomaly_list(
    v: AnomaliesView,
    p: &ListParams,
    action: ServerAction<GiveFeedback>,
) -> impl IntoView {
    let form = filter_form(p, v.nodes.clone());
    let body = if v.anomalies.is_empty() {
        if *p != ListParams::default() {
            view! {
                <p class="empty" role="status">
                    "No anomaly matches these filters. "
                    <a href="/anomalies">"Clear the filters"</a>
                    " to see every anomaly."
                </p>
            }
            .into_any()
        } else {
            view! {
                <div class="empty" role="status">
                    <p><strong>"No anomalies."</strong>
                    " The detection jobs check every pipeline signal (throughput, latency, error ratios, volume, freshness, run durations, data-quality values) each minute and list here what leaves its expected band."</p>
                    <p>"Nothing yet means nothing unusual, or too little history: a signal needs a few hours of data before it is judged. See the "
                    <a href="/">"Pipelines"</a> " page for what is being watched, or try "
                    <code>"pipewatch demo --inject latency --at transform"</code> "."</p>
                </div>
            }
            .into_any()
        }
    } else {
        anomaly_table(v, action).into_any()
    };
    view! { {form} {body} }
}

fn anomaly_table(v: AnomaliesView, action: ServerAction<GiveFeedback>) -> impl IntoView {
    let now = v.now;
    let open = v
        .anomalies
        .iter()
        .filter(|a| a.state == AnomalyState::Open)
        .count();
    let summary = format!(
        "{} anomalies · {open} open{}",
        v.anomalies.len(),
        if v.truncated {
            format!(" · showing the first {LIST_LIMIT}; narrow the filters to see older ones")
        } else {
            String::new()
        }
    );
    let rows = v
        .anomalies
        .into_iter()
        .map(|a| {
            let href = detail_href(a.id);
            let node = a.node.clone();
            let state = a.state.as_str();
            view! {
                <tr class=format!("anomaly-row state-{state}") data-id=a.id.to_string() data-node=a.node.clone().unwrap_or_default()>
                    <td><span class=format!("sev-badge sev-{}", a.severity)>{a.severity.clone()}</span></td>
                    <td><span class=format!("state-badge state-{state}")>{state}</span></td>
                    <td>{node.map(|n| {
                        let href = crate::pipelines::anomalies_href(&n);
                        view! { <a href=href title="Only this node's anomalies">{n}</a> }
                    })}</td>
                    <td class="anomaly-what">
                        <a href=href.clone() class="anomaly-explanation">{a.explanation.clone()}</a>
                        <div class="muted small">{format!("{} · {} · score {:.2}", a.kind, a.detector, a.score)}</div>
                    </td>
                    <td title=format_utc(a.started_at_ms)>
                        {format_ago(now, a.started_at_ms)}
                        <div class="muted small">{duration_text(&a, now)}</div>
                    </td>
                    <td class="anomaly-feedback">
                        {feedback_note(&a)}
                        <FeedbackButtons id=a.id current=a.feedback action/>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <p class="muted anomaly-summary">{summary}</p>
        <table class="anomalies">
            <thead>
                <tr><th>"Severity"</th><th>"State"</th><th>"Node"</th><th>"What happened"</th><th>"Started"</th><th>"Feedback"</th></tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
}

#[component]
pub fn AnomalyPage() -> impl IntoView {
    Csrf::provide();
    let params = use_params_map();
    let id = Memo::new(move |_| {
        params.with(|p| {
            let raw = p.get("id").unwrap_or_default();
            raw.parse::<i64>()
                .map_err(|_| format!("anomaly id {raw:?} is not a number: open one from the list"))
        })
    });
    let feedback = ServerAction::<GiveFeedback>::new();
    let data = Resource::new(
        move || (id.get(), feedback.version().get()),
        |(id, _)| async move {
            match id {
                Ok(id) => load_anomaly(id).await.map_err(|e| crate::error_text(&e)),
                Err(e) => Err(e),
            }
        },
    );
    view! {
        <Title text="Anomaly · pipewatch"/>
        <p class="crumbs"><a href="/anomalies">"← All anomalies"</a></p>
        {move || feedback.value().get().and_then(|r| r.err()).map(|e| view! {
            <div class="error-box" role="alert"><strong>"Feedback was not recorded: "</strong>{crate::error_text(&e)}</div>
        })}
        <Transition fallback=|| view! { <p class="loading">"Loading the anomaly…"</p> }>
            {move || {
                data.get()
                    .map(|r| match r {
                        Err(e) => view! {
                            <div class="error-box" role="alert"><strong>"Could not show this anomaly: "</strong>{e}</div>
                        }
                        .into_any(),
                        Ok(AnomalyDetail { anomaly: None, .. }) => {
                            #[cfg(feature = "ssr")]
                            if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
                                resp.set_status(axum::http::StatusCode::NOT_FOUND);
                            }
                            view! {
                                <h1>"Anomaly not found"</h1>
                                <p class="empty">"There is no anomaly with this id (retention may have removed it). See "
                                <a href="/anomalies">"all anomalies"</a> "."</p>
                            }
                            .into_any()
                        }
                        Ok(d) => anomaly_detail_view(d, feedback).into_any(),
                    })
            }}
        </Transition>
    }
}

fn anomaly_detail_view(d: AnomalyDetail, action: ServerAction<GiveFeedback>) -> impl IntoView {
    let a = d.anomaly.clone().expect("checked by the caller");
    let now = d.now;
    let state = a.state.as_str();
    let heading = format!(
        "{} {} at {}",
        a.kind.replace('_', " "),
        if a.state == AnomalyState::Open {
            "anomaly"
        } else {
            "anomaly (closed)"
        },
        a.node.clone().unwrap_or_else(|| "an unknown node".into())
    );
    let labels = a
        .labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let ended = match a.ended_at_ms {
        Some(t) => format!("{} ({})", format_utc(t), format_ago(now, t)),
        None => format!("still open; last seen {}", format_ago(now, a.last_seen_ms)),
    };
    let chart = match (&d.chart, &d.chart_error) {
        (_, Some(e)) => view! {
            <div class="error-box" role="alert"><strong>"Could not chart the signal: "</strong>{e.clone()}</div>
        }
        .into_any(),
        (Some(c), None) if c.series.is_empty() => view! {
            <p class="empty" role="status">
                "The signal has no data between " {format_utc(c.start)} " and " {format_utc(c.end)}
                " (retention may have removed it, or its series stopped)."
            </p>
        }
        .into_any(),
        (Some(c), None) => anomaly_chart(c.clone(), &a).into_any(),
        (None, None) => ().into_any(),
    };
    let related = if d.related.is_empty() {
        view! { <p class="muted">"No other anomaly overlaps this window."</p> }.into_any()
    } else {
        view! {
            <ul class="related">
                {d.related
                    .iter()
                    .map(|r| view! {
                        <li>
                            <span class=format!("sev-badge sev-{}", r.severity)>{r.severity.clone()}</span>
                            " "
                            <a href=detail_href(r.id)>{r.explanation.clone()}</a>
                            <span class="muted small">{format!(" · {} · started {}", r.node.clone().unwrap_or_default(), format_utc(r.started_at_ms))}</span>
                        </li>
                    })
                    .collect_view()}
            </ul>
        }
        .into_any()
    };
    view! {
        <h1 class="anomaly-title">
            <span class=format!("sev-badge sev-{}", a.severity)>{a.severity.clone()}</span>
            " "
            {heading}
        </h1>
        <p class="explanation">{a.explanation.clone()}</p>
        <div class="feedback-bar">
            <span class="muted">"Is this a real problem? Tell the detector: "</span>
            <FeedbackButtons id=a.id current=a.feedback action/>
            {feedback_note(&a)}
        </div>
        {chart}
        <dl class="status-grid anomaly-facts">
            <dt>"State"</dt><dd><span class=format!("state-badge state-{state}")>{state}</span></dd>
            <dt>"Signal"</dt><dd><code class="signal">{a.signal.clone()}</code>
                {d.explore_href.clone().map(|h| view! { " " <a href=h>"Open in Explore"</a> })}</dd>
            <dt>"Labels"</dt><dd><code>{if labels.is_empty() { "–".to_string() } else { labels }}</code></dd>
            <dt>"Node"</dt><dd>{a.node.clone().map(|n| {
                let href = crate::pipelines::anomalies_href(&n);
                view! { <a href=href>{n}</a> }
            })}</dd>
            <dt>"Detector"</dt><dd>{a.detector.clone()}</dd>
            <dt>"Score"</dt><dd>{format!("{:.2} of 1", a.score)}</dd>
            <dt>"Observed"</dt><dd>{format_value(a.observed)}</dd>
            <dt>"Expected"</dt><dd>{format!("{} to {}", format_value(a.expected_low), format_value(a.expected_high))}</dd>
            <dt>"Started"</dt><dd>{format!("{} ({})", format_utc(a.started_at_ms), format_ago(now, a.started_at_ms))}</dd>
            <dt>"Ended"</dt><dd>{ended}</dd>
            <dt>"Duration"</dt><dd>{duration_text(&a, now)}</dd>
        </dl>
        <h2>"Related anomalies in this window"</h2>
        {related}
    }
}

fn anomaly_chart(c: ChartData, a: &Anomaly) -> impl IntoView {
    let svg = render_svg(&c, &[]);
    let legend = c
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            // An expression such as histogram_quantile(...) has no name and maybe no labels.
            let label = Some(series_label(s))
                .filter(|l| !l.is_empty())
                .unwrap_or_else(|| c.selector.clone());
            view! {
                <li class="legend-static">
                    <span class="swatch" style=format!("background:{}", series_css_color(i))></span>
                    <code>{label}</code>
                </li>
            }
        })
        .collect_view();
    let note = format!(
        "{} to {} · green: expected {} to {} · red: the flagged span{}",
        format_utc(c.start),
        format_utc(c.end),
        format_value(a.expected_low),
        format_value(a.expected_high),
        if a.ended_at_ms.is_none() {
            " (still open)"
        } else {
            ""
        }
    );
    match svg {
        Err(e) => view! { <div class="error-box">{e}</div> }.into_any(),
        Ok((svg, _)) => view! {
            <p class="chart-summary anomaly-chart-note" data-start=c.start.to_string() data-end=c.end.to_string()>{note}</p>
            <div class="chart anomaly-chart"><div class="chart-svg" inner_html=svg></div></div>
            {(c.omitted_series > 0).then(|| view! { <p class="warning">{format!("{} more series were left out.", c.omitted_series)}</p> })}
            <ul class="legend">{legend}</ul>
        }
        .into_any(),
    }
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
    fn url_filters_become_the_backend_filter() {
        let p = ListParams::from_query(&params(&[
            ("state", "open"),
            ("severity", "critical"),
            ("node", "transform"),
            ("window", "24h"),
        ]));
        let f = p.to_filter(100 * 86_400_000).unwrap();
        assert_eq!(f.state, Some(AnomalyState::Open));
        assert_eq!(f.severity.as_deref(), Some("critical"));
        assert_eq!(f.node.as_deref(), Some("transform"));
        assert_eq!(f.since_ms, Some(99 * 86_400_000));
        assert_eq!(f.limit, LIST_LIMIT);
        let none = ListParams::default().to_filter(0).unwrap();
        assert_eq!(
            (none.state, none.severity, none.node, none.since_ms),
            (None, None, None, None)
        );
    }

    #[test]
    fn bad_filters_name_the_parameter_and_the_choices() {
        let bad = |k: &str, v: &str| {
            ListParams::from_query(&params(&[(k, v)]))
                .to_filter(0)
                .unwrap_err()
        };
        assert!(bad("state", "firing").contains("use open or closed"));
        assert!(bad("severity", "high").contains("critical, warning or info"));
        assert!(bad("window", "soon").starts_with("window:"));
    }

    #[test]
    fn the_chart_window_shows_the_normal_level_before_and_stops_at_now() {
        let a = Anomaly {
            id: 1,
            signal: "x".into(),
            kind: "latency_p95".into(),
            labels: Default::default(),
            node: None,
            detector: "seasonal".into(),
            state: AnomalyState::Open,
            severity: "warning".into(),
            score: 0.9,
            started_at_ms: 10 * 3_600_000,
            ended_at_ms: None,
            last_seen_ms: 10 * 3_600_000 + 600_000,
            observed: 4.1,
            expected_low: 0.8,
            expected_high: 1.2,
            explanation: "e".into(),
            feedback: None,
            feedback_by: None,
            feedback_at_ms: None,
        };
        let now = 10 * 3_600_000 + 660_000;
        let (from, to) = chart_window(&a, now);
        assert_eq!(
            from,
            9 * 3_600_000,
            "an hour of context before a 10-minute anomaly"
        );
        assert_eq!(to, now, "not past now");
        let closed = Anomaly {
            ended_at_ms: Some(10 * 3_600_000 + 7_200_000),
            ..a
        };
        let (from, to) = chart_window(&closed, 100 * 3_600_000);
        assert_eq!(from, 6 * 3_600_000, "twice the 2-hour span before");
        assert_eq!(to, 14 * 3_600_000, "the span again after");
    }
}
