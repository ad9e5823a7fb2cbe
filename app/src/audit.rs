//! The Audit log page (admin): who changed what, newest first, a page at a time
//! (`?before=<id>` continues below an entry).

use crate::timefmt::format_utc;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use model::auth::AuditEntry;

/// Entries per page.
pub const PAGE: u32 = 100;

#[server(prefix = "/app-fn", endpoint = "audit_page")]
pub async fn audit_page(before: Option<i64>) -> Result<Vec<AuditEntry>, ServerFnError> {
    crate::login::authorize("audit_page")?;
    let backend = use_context::<std::sync::Arc<dyn crate::Backend>>()
        .ok_or_else(|| ServerFnError::new("the server did not provide a data backend"))?;
    backend
        .audit_log(PAGE, before)
        .await
        .map_err(ServerFnError::new)
}

#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let before =
        Memo::new(move |_| query.with(|q| q.get("before").and_then(|b| b.parse::<i64>().ok())));
    let entries = Resource::new(move || before.get(), audit_page);
    view! {
        <Title text="Audit log · pipewatch"/>
        <h1>"Audit log"</h1>
        <Transition fallback=|| view! { <p class="loading">"Loading the audit log…"</p> }>
            {move || {
                entries
                    .get()
                    .map(|r| match r {
                        Err(e) => view! { <div class="error-box" role="alert">{crate::error_text(&e)}</div> }.into_any(),
                        Ok(list) if list.is_empty() => view! { <p class="muted">"No entries."</p> }.into_any(),
                        Ok(list) => {
                            let older = (list.len() as u32 == PAGE)
                                .then(|| list.last().map(|e| format!("/audit?before={}", e.id)))
                                .flatten();
                            view! {
                                <table class="audit">
                                    <thead><tr><th>"When (UTC)"</th><th>"Who"</th><th>"Action"</th><th>"Target"</th><th>"Detail"</th></tr></thead>
                                    <tbody>
                                        {list
                                            .into_iter()
                                            .map(|e| view! {
                                                <tr>
                                                    <td>{format_utc(e.at)}</td>
                                                    <td>{e.actor}</td>
                                                    <td>{e.action}</td>
                                                    <td>{e.target}</td>
                                                    <td><code>{e.detail.to_string()}</code></td>
                                                </tr>
                                            })
                                            .collect_view()}
                                    </tbody>
                                </table>
                                {older.map(|href| view! { <a href=href>"Older entries"</a> })}
                            }.into_any()
                        }
                    })
            }}
        </Transition>
    }
}
