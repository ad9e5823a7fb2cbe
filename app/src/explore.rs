//! The Explore page: type PromQL (or choose a metric and labels, which builds a query: counters
//! as rates, histograms as quantiles) and a time range; see the chart with hover read-out,
//! drag-to-zoom, legend toggles and auto-refresh. All state that matters is in the URL, so
//! every view is a link.

use crate::api::{explore_options, query_chart, ExploreChoices};
use crate::chart::{
    event_title, format_value, nearest_point, render_svg, series_css_color, series_label,
    ChartData, CHART_HEIGHT, CHART_WIDTH,
};
use crate::range::{
    auto_step, build_selector, default_query, format_step, ExploreState, TimeRange, PRESETS,
};
use crate::timefmt::{format_utc, format_utc_input};
use leptos::ev::{Event, MouseEvent};
use leptos::prelude::*;
use leptos::wasm_bindgen::JsCast;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::params::ParamsMap;

/// Reads the page state from the URL. The builder form sends `metric` and `l_<label>`
/// instead of `q`; its label choices only count while the metric is the one they belong to
/// (`prev_metric`), so switching metrics does not carry over labels the new one lacks. The
/// builder's query draws the metric as its kind suggests ([`default_query`]). An `agg` left in
/// older links is ignored: PromQL says how to reduce.
pub fn state_from_params(p: &ParamsMap) -> Result<ExploreState, String> {
    let range = TimeRange::from_params(p.get_str("range"), p.get_str("from"), p.get_str("to"))?;
    let q = match p.get_str("metric").map(str::trim).filter(|m| !m.is_empty()) {
        Some(metric) => {
            let same_metric = p.get_str("prev_metric") == Some(metric);
            let mut labels: Vec<(&str, &str)> = p
                .into_iter()
                .filter(|_| same_metric)
                .filter_map(|(k, v)| k.strip_prefix("l_").map(|name| (name, v)))
                .collect();
            labels.sort();
            let (start, end) = range.resolve(0);
            default_query(
                metric,
                &build_selector(metric, labels),
                auto_step(end - start),
            )
        }
        None => p.get("q").unwrap_or_default().trim().to_string(),
    };
    let back = p.get("back").filter(|b| !b.is_empty());
    Ok(ExploreState { q, range, back })
}

/// Hidden inputs that carry the time range through a form that edits
/// something else.
fn hidden_range_inputs(state: &ExploreState) -> impl IntoView {
    let range = match &state.range {
        TimeRange::Relative { label, .. } => {
            view! { <input type="hidden" name="range" value=label.clone()/> }.into_any()
        }
        TimeRange::Absolute { from, to } => view! {
            <input type="hidden" name="from" value=from.to_string()/>
            <input type="hidden" name="to" value=to.to_string()/>
        }
        .into_any(),
    };
    view! {
        {range}
        {state.back.clone().map(|b| view! { <input type="hidden" name="back" value=b/> })}
    }
}

/// Submits the form a select belongs to, so choosing a metric or label applies at once.
pub(crate) fn submit_own_form(ev: Event) {
    let Some(target) = ev.target() else { return };
    if let Ok(select) = target.dyn_into::<leptos::web_sys::HtmlSelectElement>() {
        if let Some(form) = select.form() {
            let _ = form.request_submit();
        }
    }
}

#[component]
pub fn ExplorePage() -> impl IntoView {
    let query = use_query_map();
    let state = Memo::new(move |_| query.with(state_from_params));
    let selector =
        Memo::new(move |_| state.with(|s| s.as_ref().map(|s| s.q.clone()).unwrap_or_default()));
    let tick = RwSignal::new(0u64);
    let auto_refresh = RwSignal::new(true);
    let hidden = RwSignal::new(Vec::<String>::new());
    let hover = RwSignal::new(None::<f64>);
    let drag = RwSignal::new(None::<(f64, f64)>);

    let options = Resource::new(move || selector.get(), explore_options);
    let chart = Resource::new(
        move || (state.get(), tick.get()),
        |(state, _)| async move {
            match state {
                Ok(s) if s.q.is_empty() => None,
                Ok(s) => Some(query_chart(s).await.map_err(|e| crate::error_text(&e))),
                Err(e) => Some(Err(e)),
            }
        },
    );
    crate::every_seconds(10, move || {
        let relative = state.with_untracked(|s| s.as_ref().is_ok_and(|s| s.range.is_relative()));
        // Refreshing mid-drag would throw the selection away under the pointer.
        if auto_refresh.get_untracked() && relative && drag.get_untracked().is_none() {
            tick.update(|t| *t += 1);
        }
    });

    view! {
        <Title text="Explore · pipewatch"/>
        <h1>"Explore"</h1>
        {move || {
            let s = state.get().unwrap_or_default();
            let s2 = s.clone();
            let q = s.q.clone();
            view! {
                <Form method="get" action="/explore">
                    <div class="form-row query-form">
                        <label class="grow">
                            "Query (PromQL)"
                            <input
                                type="text"
                                name="q"
                                class="selector-input"
                                list="metric-names"
                                value=q
                                placeholder="sum by (stage) (rate(demo_stage_rows_processed_total[5m]))"
                                spellcheck="false"
                                autocomplete="off"
                            />
                        </label>
                        {hidden_range_inputs(&s)}
                        <button type="submit">"Run query"</button>
                    </div>
                </Form>
                <RangeBar state=s2 auto_refresh/>
            }
        }}
        <Transition fallback=|| view! { <p class="loading">"Loading metrics…"</p> }>
            {move || {
                options
                    .get()
                    .map(|r| match r {
                        Err(e) => view! {
                            <div class="error-box" role="alert">
                                <strong>"Could not list metrics: "</strong>
                                {crate::error_text(&e)}
                            </div>
                        }
                        .into_any(),
                        Ok(opts) => view! {
                            <Builder opts state=state.get().unwrap_or_default()/>
                        }
                        .into_any(),
                    })
            }}
        </Transition>
        <Transition fallback=|| view! { <p class="loading">"Querying…"</p> }>
            {move || {
                chart
                    .get()
                    .map(|r| match r {
                        None => view! {
                            <p class="hint">
                                "Choose a metric above (counters are drawn as rates, histograms as p50/p95/p99), or type PromQL such as "
                                <code>"sum by (stage) (rate(demo_stage_rows_processed_total[5m]))"</code> " and press Run query."
                            </p>
                        }
                        .into_any(),
                        Some(Err(e)) => view! {
                            <div class="error-box" role="alert">
                                <strong>"Query failed: "</strong>
                                {e}
                            </div>
                        }
                        .into_any(),
                        Some(Ok(data)) => {
                            let s = state.get_untracked().unwrap_or_default();
                            view! { <ChartView data state=s hidden hover drag/> }.into_any()
                        }
                    })
            }}
        </Transition>
    }
}

/// Metric select and one select per label of the chosen metric.
#[component]
fn Builder(opts: ExploreChoices, state: ExploreState) -> impl IntoView {
    let metric = opts.metric.clone();
    let current = metric.clone().unwrap_or_default();
    let chosen = opts.chosen.clone();
    let metric_names = opts.metrics.clone();
    view! {
        <datalist id="metric-names">
            {metric_names.into_iter().map(|m| view! { <option value=m/> }).collect_view()}
        </datalist>
        <Form method="get" action="/explore">
            <div class="form-row builder">
                <label>
                    "Metric"
                    <select name="metric" class="metric-select" on:change=submit_own_form>
                        <option value="" selected=metric.is_none()>"— choose a metric —"</option>
                        {opts
                            .metrics
                            .into_iter()
                            .map(|m| {
                                let selected = m == current;
                                let value = m.clone();
                                view! { <option value=value selected=selected>{m}</option> }
                            })
                            .collect_view()}
                    </select>
                </label>
                <input type="hidden" name="prev_metric" value=current.clone()/>
                {opts
                    .labels
                    .into_iter()
                    .map(|(name, values)| {
                        let chosen_value = chosen.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
                        view! {
                            <label>
                                {name.clone()}
                                <select name=format!("l_{name}") class="label-select" on:change=submit_own_form>
                                    <option value="" selected=chosen_value.is_none()>"any"</option>
                                    {values
                                        .into_iter()
                                        .map(|v| {
                                            let selected = chosen_value.as_deref() == Some(v.as_str());
                                            let value = v.clone();
                                            view! { <option value=value selected=selected>{v}</option> }
                                        })
                                        .collect_view()}
                                </select>
                            </label>
                        }
                    })
                    .collect_view()}
                {hidden_range_inputs(&state)}
                <button type="submit">"Apply"</button>
            </div>
        </Form>
    }
}

/// Preset range links, the custom from/to form, reset zoom and the auto-refresh toggle.
#[component]
fn RangeBar(state: ExploreState, auto_refresh: RwSignal<bool>) -> impl IntoView {
    let (from_value, to_value) = match &state.range {
        TimeRange::Absolute { from, to } => (format_utc_input(*from), format_utc_input(*to)),
        TimeRange::Relative { .. } => (String::new(), String::new()),
    };
    let relative = state.range.is_relative();
    let reset = state.unzoomed().map(|s| s.href());
    view! {
        <div class="form-row range-bar">
            <span class="range-label">"Range"</span>
            <span class="presets">
                {PRESETS
                    .into_iter()
                    .map(|(label, span_ms)| {
                        let active = matches!(&state.range, TimeRange::Relative { label: l, .. } if l == label);
                        let href = state
                            .with_range(TimeRange::Relative { label: label.to_string(), span_ms })
                            .href();
                        view! { <a href=href class="preset" class:active=active>{label}</a> }
                    })
                    .collect_view()}
            </span>
            <Form method="get" action="/explore">
                <span class="custom-range">
                    <input type="hidden" name="q" value=state.q.clone()/>
                    <label>"From" <input type="text" name="from" class="time-input" value=from_value placeholder="YYYY-MM-DD HH:MM"/></label>
                    <label>"to" <input type="text" name="to" class="time-input" value=to_value placeholder="YYYY-MM-DD HH:MM"/></label>
                    <span class="muted">"UTC"</span>
                    <button type="submit">"Apply"</button>
                </span>
            </Form>
            {reset.map(|href| view! { <a href=href class="reset-zoom">"Reset zoom"</a> })}
            <label class="auto-refresh" title="Reload the chart every 10 seconds (relative ranges only)">
                <input
                    type="checkbox"
                    // The attribute for the server-rendered page, the property once it is live.
                    checked=relative
                    prop:checked=move || relative && auto_refresh.get()
                    disabled={!relative}
                    on:change=move |_| auto_refresh.update(|v| *v = !*v)
                />
                "Auto-refresh 10 s"
            </label>
        </div>
    }
}

/// The SVG x coordinate under the pointer: the overlay has the SVG's box, scaled to the
/// column width.
fn pointer_x(ev: &MouseEvent) -> Option<f64> {
    let el = ev
        .current_target()?
        .dyn_into::<leptos::web_sys::Element>()
        .ok()?;
    let rect = el.get_bounding_client_rect();
    if rect.width() <= 0.0 {
        return None;
    }
    Some((f64::from(ev.client_x()) - rect.left()) * f64::from(CHART_WIDTH) / rect.width())
}

fn pct_x(x: f64) -> f64 {
    100.0 * x / f64::from(CHART_WIDTH)
}

fn pct_y(y: f64) -> f64 {
    100.0 * y / f64::from(CHART_HEIGHT)
}

#[component]
fn ChartView(
    data: ChartData,
    state: ExploreState,
    hidden: RwSignal<Vec<String>>,
    hover: RwSignal<Option<f64>>,
    drag: RwSignal<Option<(f64, f64)>>,
) -> impl IntoView {
    if data.series.is_empty() {
        // Where the data is, when it is elsewhere: the hour around its last sample.
        let elsewhere = data.last_sample.map(|t| {
            let around = state.with_range(TimeRange::Absolute {
                from: t - 3_600_000,
                to: t + 600_000,
            });
            view! {
                " Its last sample was at " <strong class="last-sample">{format_utc(t)}</strong> ": "
                <a href=around.href() class="last-data-link">"show the hour before it"</a> "."
            }
        });
        let hint = data.last_sample.is_none().then(|| {
            view! { " No series matches it at any time. Is the target up? See " <a href="/targets">"Targets"</a> "." }
        });
        return view! {
            <div class="empty" role="status">
                "No samples for " <code>{data.selector.clone()}</code> " in " {state.range.describe()} "."
                {elsewhere}
                {hint}
            </div>
        }
        .into_any();
    }
    let data = StoredValue::new(data);
    let rendered = Memo::new(move |_| {
        let h = hidden.get();
        data.with_value(|d| {
            let flags: Vec<bool> = d
                .series
                .iter()
                .map(|s| h.contains(&series_label(s)))
                .collect();
            render_svg(d, &flags)
        })
    });
    let frame = move || rendered.with(|r| r.as_ref().ok().map(|(_, f)| *f));
    let navigate = use_navigate();
    let zoom_state = state.clone();
    let on_up = move |ev: MouseEvent| {
        let (Some((a, _)), Some(f)) = (drag.get_untracked(), frame()) else {
            return;
        };
        drag.set(None);
        let b = pointer_x(&ev).unwrap_or(a);
        // A click, not a drag: nothing to zoom into.
        if (a - b).abs() < 4.0 {
            return;
        }
        let (t0, t1) = (f.time_at(a.min(b)), f.time_at(a.max(b)));
        if t1 > t0 {
            navigate(&zoom_state.zoomed(t0, t1).href(), Default::default());
        }
    };
    let on_move = move |ev: MouseEvent| {
        let (Some(x), Some(f)) = (pointer_x(&ev), frame()) else {
            return;
        };
        hover.set(f.contains_x(x).then_some(x));
        if let Some((a, _)) = drag.get_untracked() {
            drag.set(Some((a, x.clamp(f64::from(f.left), f64::from(f.right)))));
        }
    };
    let on_down = move |ev: MouseEvent| {
        let (Some(x), Some(f)) = (pointer_x(&ev), frame()) else {
            return;
        };
        if ev.button() == 0 && f.contains_x(x) {
            ev.prevent_default();
            drag.set(Some((x, x)));
        }
    };
    let on_leave = move |_: MouseEvent| {
        hover.set(None);
        drag.set(None);
    };

    let summary = data.with_value(|d| {
        let points = (d.end - d.start) / d.step_ms.max(1);
        format!(
            "{} to {} · step {} (~{} points, auto) · {} series",
            format_utc(d.start),
            format_utc(d.end),
            format_step(d.step_ms),
            points,
            d.series.len()
        )
    });
    let (start, end, step) = data.with_value(|d| (d.start, d.end, d.step_ms));
    let omitted = data.with_value(|d| d.omitted_series);
    let events = data.with_value(|d| {
        d.events
            .iter()
            .filter(|e| (d.start..=d.end).contains(&e.time_ms))
            .cloned()
            .collect::<Vec<_>>()
    });
    // Markers on the time axis, over the overlay so that their tooltip shows on hover.
    let markers = {
        let events = events.clone();
        move || {
            let f = frame()?;
            Some(
                events
                    .iter()
                    .map(|e| {
                        view! {
                            <span
                                class="event-marker"
                                title=format!("{} · {}", format_utc(e.time_ms), event_title(e))
                                data-time=e.time_ms.to_string()
                                style=format!(
                                    "position:absolute;left:{:.3}%;top:{:.3}%;transform:translate(-50%,-100%);color:#a63603;font-size:11px;line-height:1;cursor:help",
                                    pct_x(f.x_of(e.time_ms)),
                                    pct_y(f64::from(f.bottom)),
                                )
                            >
                                "▲"
                            </span>
                        }
                    })
                    .collect_view(),
            )
        }
    };
    let anomalies = data.with_value(|d| d.anomalies.clone());
    let anomaly_list = (!anomalies.is_empty()).then(|| {
        view! {
            <h2 class="small">"Anomalies in this range"</h2>
            <ul class="chart-anomalies">
                {anomalies
                    .into_iter()
                    .map(|a| {
                        let until = a.to.map_or("open".to_string(), format_utc);
                        view! {
                            <li class="chart-anomaly" data-from=a.from.to_string()>
                                <span class=format!("sev-badge sev-{}", a.severity)>{a.severity.clone()}</span>
                                " "
                                <span class="muted">{format_utc(a.from)} " – " {until}</span>
                                " "
                                <a href=format!("/anomalies/{}", a.id)>{a.explanation.clone()}</a>
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        }
    });
    let event_list = (!events.is_empty()).then(|| {
        view! {
            <h2 class="small">"Changes in this range"</h2>
            <ul class="change-events">
                {events
                    .into_iter()
                    .map(|e| {
                        view! {
                            <li class="change-event" data-time=e.time_ms.to_string()>
                                <span class="muted">{format_utc(e.time_ms)}</span>
                                " "
                                <strong>{e.kind.clone()}</strong>
                                " "
                                <code>{e.node.clone()}</code>
                                {e.version.clone().map(|v| view! { " " <span class="muted">{v}</span> })}
                                {(!e.detail.is_empty()).then(|| format!(" — {}", e.detail))}
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        }
    });

    let readout = move || {
        let x = hover.get()?;
        let f = frame()?;
        let t = f.time_at(x);
        let h = hidden.get();
        let rows: Vec<(usize, String, (i64, f64))> = data.with_value(|d| {
            d.series
                .iter()
                .enumerate()
                .filter(|(_, s)| !h.contains(&series_label(s)))
                .filter_map(|(i, s)| nearest_point(s, t).map(|p| (i, series_label(s), p)))
                .collect()
        });
        // Snap the line to the bucket actually read out, not to the raw pointer position.
        let snapped = rows
            .iter()
            .map(|(_, _, (pt, _))| *pt)
            .min_by_key(|pt| (pt - t).abs())
            .unwrap_or(t);
        let lx = f.x_of(snapped);
        let box_style = if lx > f64::from(CHART_WIDTH) * 0.6 {
            format!(
                "right:{:.3}%;top:{:.3}%",
                100.0 - pct_x(lx) + 0.8,
                pct_y(f64::from(f.top)) + 1.0
            )
        } else {
            format!(
                "left:{:.3}%;top:{:.3}%",
                pct_x(lx) + 0.8,
                pct_y(f64::from(f.top)) + 1.0
            )
        };
        Some(view! {
            <div
                class="chart-hover-line"
                style=format!(
                    "left:{:.3}%;top:{:.3}%;height:{:.3}%",
                    pct_x(lx),
                    pct_y(f64::from(f.top)),
                    pct_y(f64::from(f.bottom - f.top)),
                )
            ></div>
            <div class="chart-readout" style=box_style>
                <div class="readout-time">{format_utc(snapped)}</div>
                {rows
                    .into_iter()
                    .map(|(i, label, (pt, v))| {
                        view! {
                            <div class="readout-row">
                                <span class="swatch" style=format!("background:{}", series_css_color(i))></span>
                                <span class="readout-label">{label}</span>
                                <span class="readout-value" title=format_utc(pt)>{format_value(v)}</span>
                            </div>
                        }
                    })
                    .collect_view()}
            </div>
        })
    };
    let selection = move || {
        let (a, b) = drag.get()?;
        let f = frame()?;
        Some(view! {
            <div
                class="chart-selection"
                style=format!(
                    "left:{:.3}%;width:{:.3}%;top:{:.3}%;height:{:.3}%",
                    pct_x(a.min(b)),
                    pct_x((a - b).abs()),
                    pct_y(f64::from(f.top)),
                    pct_y(f64::from(f.bottom - f.top)),
                )
            ></div>
        })
    };
    let legend = data.with_value(|d| {
        d.series
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let label = series_label(s);
                let l2 = label.clone();
                let l3 = label.clone();
                view! {
                    <li>
                        <button
                            type="button"
                            class="legend-item"
                            class:off=move || hidden.with(|h| h.contains(&l2))
                            title="Show or hide this series"
                            on:click=move |_| {
                                hidden.update(|h| {
                                    if let Some(p) = h.iter().position(|x| *x == l3) {
                                        h.remove(p);
                                    } else {
                                        h.push(l3.clone());
                                    }
                                })
                            }
                        >
                            <span class="swatch" style=format!("background:{}", series_css_color(i))></span>
                            {label}
                        </button>
                    </li>
                }
            })
            .collect_view()
    });

    view! {
        <div class="chart-summary" data-start=start.to_string() data-end=end.to_string() data-step=step.to_string()>
            {summary}
        </div>
        {(omitted > 0).then(|| view! {
            <p class="warning">{format!("Showing the first 40 series; {omitted} more were left out. Narrow the selector with label filters.")}</p>
        })}
        {move || rendered.with(|r| r.as_ref().err().map(|e| view! { <div class="error-box">{e.clone()}</div> }))}
        <div class="chart">
            <div class="chart-svg" inner_html=move || rendered.with(|r| r.as_ref().map(|(svg, _)| svg.clone()).unwrap_or_default())></div>
            <div
                class="chart-overlay"
                class:dragging=move || drag.get().is_some()
                on:mousemove=on_move
                on:mousedown=on_down
                on:mouseup=on_up
                on:mouseleave=on_leave
            >
                {selection}
                {readout}
            </div>
            {markers}
        </div>
        <p class="chart-help muted small">"Hover to read values; drag across the chart to zoom in; click a legend entry to hide or show it."</p>
        <ul class="legend">{legend}</ul>
        {anomaly_list}
        {event_list}
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
    fn builder_params_make_a_selector_when_labels_belong_to_the_metric() {
        let s = state_from_params(&params(&[
            ("metric", "demo_rows"),
            ("prev_metric", "demo_rows"),
            ("l_stage", "load"),
            ("l_job", ""),
            ("range", "15m"),
        ]))
        .unwrap();
        assert_eq!(s.q, r#"demo_rows{stage="load"}"#);
        assert_eq!(
            s.range,
            TimeRange::Relative {
                label: "15m".into(),
                span_ms: 900_000
            }
        );
    }

    #[test]
    fn switching_metric_drops_the_old_metrics_label_choices() {
        let s = state_from_params(&params(&[
            ("metric", "b"),
            ("prev_metric", "a"),
            ("l_stage", "load"),
        ]))
        .unwrap();
        assert_eq!(s.q, "b");
    }

    #[test]
    fn builder_draws_a_counter_as_its_rate_and_old_agg_links_still_open() {
        let s = state_from_params(&params(&[
            ("metric", "demo_rows_total"),
            ("prev_metric", "demo_rows_total"),
            ("l_stage", "load"),
        ]))
        .unwrap();
        assert_eq!(s.q, r#"rate(demo_rows_total{stage="load"}[5m])"#);
        let s = state_from_params(&params(&[("q", "m"), ("agg", "median")])).unwrap();
        assert_eq!(s.q, "m");
    }
}
