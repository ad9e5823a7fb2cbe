//! The Targets page: every scrape target with its health, refreshed every 10 seconds.

use crate::api::list_targets;
use crate::timefmt::{format_ago, format_utc};
use leptos::prelude::*;
use leptos_meta::Title;
use model::TargetState;

/// Shown when no target is configured. Names the real config key; the server's config tests
/// check that a file written as it says is accepted.
pub const NO_TARGETS_HINT: &str = "No scrape targets are configured. Add jobs under [[scrape_configs]] in the config file (see pipewatch.example.toml), or set PIPEWATCH_SCRAPE_CONFIGS.";

#[component]
pub fn TargetsPage() -> impl IntoView {
    let tick = RwSignal::new(0u64);
    let targets = Resource::new(move || tick.get(), |_| list_targets());
    crate::every_seconds(10, move || tick.update(|t| *t += 1));
    view! {
        <Title text="Targets · pipewatch"/>
        <h1>"Targets"</h1>
        <Transition fallback=|| view! { <p class="loading">"Loading targets…"</p> }>
            {move || {
                targets
                    .get()
                    .map(|r| match r {
                        Err(e) => {
                            view! {
                                <div class="error-box" role="alert">
                                    <strong>"Could not list targets: "</strong>
                                    {crate::error_text(&e)}
                                </div>
                            }
                                .into_any()
                        }
                        Ok(v) if v.targets.is_empty() => {
                            view! {
                                <p class="empty">
                                    {NO_TARGETS_HINT}
                                </p>
                            }
                                .into_any()
                        }
                        Ok(v) => {
                            let now = v.now;
                            let up = v.targets.iter().filter(|t| t.state == TargetState::Up).count();
                            let total = v.targets.len();
                            let rows = v
                                .targets
                                .into_iter()
                                .map(|t| {
                                    let (badge, text) = match t.state {
                                        TargetState::Up => ("badge up", "up"),
                                        TargetState::Down => ("badge down", "down"),
                                        TargetState::Unknown => ("badge unknown", "unknown"),
                                    };
                                    let last = t.last_scrape.map(|ts| (format_ago(now, ts), format_utc(ts)));
                                    view! {
                                        <tr class="target-row">
                                            <td>{t.job}</td>
                                            <td><a href=t.url.clone()>{t.url.clone()}</a></td>
                                            <td><span class=badge>{text}</span></td>
                                            <td>
                                                {match last {
                                                    Some((ago, abs)) => view! {
                                                        <span title=abs.clone()>{ago}</span>
                                                        <div class="muted small">{abs}</div>
                                                    }.into_any(),
                                                    None => view! { <span class="muted">"never"</span> }.into_any(),
                                                }}
                                            </td>
                                            <td class="num">
                                                {t.last_duration_seconds.map(|d| format!("{:.0} ms", d * 1000.0)).unwrap_or_else(|| "–".into())}
                                            </td>
                                            <td class="num">{t.samples_scraped.to_string()}</td>
                                            <td class="target-error">{t.last_error.unwrap_or_default()}</td>
                                        </tr>
                                    }
                                })
                                .collect_view();
                            view! {
                                <p class="summary">{format!("{up} of {total} targets up")}</p>
                                <table class="targets">
                                    <thead>
                                        <tr>
                                            <th>"Job"</th>
                                            <th>"URL"</th>
                                            <th>"State"</th>
                                            <th>"Last scrape"</th>
                                            <th class="num">"Duration"</th>
                                            <th class="num">"Samples"</th>
                                            <th>"Last error"</th>
                                        </tr>
                                    </thead>
                                    <tbody>{rows}</tbody>
                                </table>
                            }
                                .into_any()
                        }
                    })
            }}
        </Transition>
    }
}
