//! The Status page: what this pipewatch instance is, where it stores data, and how busy it is.

use crate::api::get_status;
use crate::timefmt::{format_duration_ms, format_utc};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn StatusPage() -> impl IntoView {
    let tick = RwSignal::new(0u64);
    let status = Resource::new(move || tick.get(), |_| get_status());
    crate::every_seconds(10, move || tick.update(|t| *t += 1));
    view! {
        <Title text="Status · pipewatch"/>
        <h1>"Status"</h1>
        <Transition fallback=|| view! { <p class="loading">"Loading status…"</p> }>
            {move || {
                status
                    .get()
                    .map(|r| match r {
                        Err(e) => {
                            view! {
                                <div class="error-box" role="alert">
                                    <strong>"Could not read the status: "</strong>
                                    {crate::error_text(&e)}
                                </div>
                            }
                                .into_any()
                        }
                        Ok(v) => {
                            let i = v.info;
                            let fill = if i.queue_capacity > 0 {
                                100.0 * i.queue_depth as f64 / i.queue_capacity as f64
                            } else {
                                0.0
                            };
                            view! {
                                <dl class="status-grid">
                                    <dt>"Version"</dt>
                                    <dd>{i.version}</dd>
                                    <dt>"Storage mode"</dt>
                                    <dd>{i.storage_mode}</dd>
                                    <dt>"Database"</dt>
                                    <dd><code>{i.database}</code></dd>
                                    <dt>"Series"</dt>
                                    <dd>{i.series_count.to_string()}</dd>
                                    <dt>"Samples written"</dt>
                                    <dd>{i.samples_written_total.to_string()}</dd>
                                    <dt>"Ingest rate"</dt>
                                    <dd>{format!("{:.1} samples/s (last minute)", i.ingest_rate)}</dd>
                                    <dt>"Ingest queue"</dt>
                                    <dd>
                                        {format!("{} / {} ({fill:.0} % full)", i.queue_depth, i.queue_capacity)}
                                    </dd>
                                    <dt>"Uptime"</dt>
                                    <dd>
                                        {format_duration_ms(v.now - i.started_at)}
                                        <span class="muted">
                                            {format!(" (since {})", format_utc(i.started_at))}
                                        </span>
                                    </dd>
                                    <dt>"Retention"</dt>
                                    <dd>{format!("{} days", i.retention_days)}</dd>
                                    <dt>"Refused at intake"</dt>
                                    <dd>
                                        {format!(
                                            "{} samples older than the retention window, {} too far in the future",
                                            i.samples_refused_too_old,
                                            i.samples_refused_too_new,
                                        )}
                                    </dd>
                                </dl>
                            }
                                .into_any()
                        }
                    })
            }}
        </Transition>
    }
}
