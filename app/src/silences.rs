//! The Silences page (`/silences`): active, pending and expired silences with their matchers,
//! who made them and why, and how many current alerts each one holds back; a form to create
//! one (matchers, duration, comment; it shows how many current alerts the matchers catch
//! before anything is saved); and "Expire" to end one early. Silences are the same as the
//! Alertmanager API's (`/api/v2/silences`), so `amtool` sees these and this page sees theirs.

use crate::timefmt::{format_ago, format_utc};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use model::auth::{Principal, Role};
use model::TimestampMs;
use serde::{Deserialize, Serialize};

/// Durations the create form offers.
pub const DURATIONS: [&str; 5] = ["1h", "2h", "4h", "1d", "7d"];

/// One silence as the page shows it. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilenceRow {
    pub id: String,
    /// The matchers as text: `alertname="Lag", job=~"etl.*"`.
    pub matchers: String,
    pub starts_at_ms: TimestampMs,
    pub ends_at_ms: TimestampMs,
    pub created_by: String,
    pub comment: String,
    /// `active`, `pending` or `expired`.
    pub status: String,
    /// Current (active) alerts its matchers catch.
    pub matching: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilencesView {
    pub now: TimestampMs,
    pub silences: Vec<SilenceRow>,
}

#[cfg(feature = "ssr")]
use crate::api::backend;

#[server(prefix = "/app-fn", endpoint = "silences_view")]
pub async fn list_silences() -> Result<SilencesView, ServerFnError> {
    Ok(SilencesView {
        now: crate::api::now_ms(),
        silences: backend()?.silences().await.map_err(ServerFnError::new)?,
    })
}

/// How many current alerts `matchers` catch (the create form's preview).
#[server(prefix = "/app-fn", endpoint = "silence_preview")]
pub async fn silence_preview(matchers: String) -> Result<usize, ServerFnError> {
    backend()?
        .silence_matches(&matchers)
        .await
        .map_err(ServerFnError::new)
}

/// Creates a silence as the signed-in user and returns its id. `csrf_token` is checked by the
/// server's auth layer.
#[server(prefix = "/app-fn", endpoint = "create_silence")]
pub async fn create_silence(
    csrf_token: Option<String>,
    matchers: String,
    duration: String,
    comment: String,
) -> Result<String, ServerFnError> {
    let _ = csrf_token;
    let who = crate::login::authorize("create_silence")?;
    let id = backend()?
        .create_silence(&who.name, &matchers, &duration, comment.trim())
        .await
        .map_err(ServerFnError::new)?;
    // The backend wrote a `silence.create` audit row naming the silence.
    crate::login::mark_audited();
    Ok(id)
}

#[server(prefix = "/app-fn", endpoint = "expire_silence")]
pub async fn expire_silence(csrf_token: Option<String>, id: String) -> Result<(), ServerFnError> {
    let _ = csrf_token;
    let who = crate::login::authorize("expire_silence")?;
    backend()?
        .expire_silence(&who.name, &id)
        .await
        .map_err(ServerFnError::new)?;
    // The backend wrote a `silence.expire` audit row naming the silence.
    crate::login::mark_audited();
    Ok(())
}

fn may_act(p: &Option<Principal>) -> bool {
    p.as_ref()
        .and_then(|p| p.role)
        .is_some_and(|r| r >= Role::Editor)
}

#[component]
pub fn SilencesPage() -> impl IntoView {
    let me = Resource::new(|| (), |_| crate::login::current_user());
    let create = ServerAction::<CreateSilence>::new();
    let expire = ServerAction::<ExpireSilence>::new();
    let data = Resource::new(
        move || (create.version().get(), expire.version().get()),
        |_| list_silences(),
    );
    let query = use_query_map();
    // `?matchers=...` prefills the form (links from the Alerts pages).
    let prefill = query.with_untracked(|q| q.get("matchers").unwrap_or_default());
    let matchers = RwSignal::new(prefill);
    let preview = Resource::new(
        move || matchers.get(),
        |m| async move {
            if m.trim().is_empty() {
                None
            } else {
                Some(silence_preview(m).await.map_err(|e| crate::error_text(&e)))
            }
        },
    );
    let principal = move || me.get().and_then(Result::ok);
    let token = move || principal().and_then(|p| p.csrf_token).unwrap_or_default();
    view! {
        <Title text="Silences · pipewatch"/>
        <h1>"Silences"</h1>
        <p class="muted">"A silence holds back the firing notices of the alerts its matchers catch, for a while. A resolve is still sent for every firing notice that went out. See also "
            <a href="/alerts">"Alerts"</a> "."</p>
        {move || create.value().get().map(|r| match r {
            Err(e) => view! { <div class="error-box" role="alert"><strong>"No silence was created: "</strong>{crate::error_text(&e)}</div> }.into_any(),
            Ok(id) => view! { <div class="ok-box" role="status">{format!("Silence {id} created.")}</div> }.into_any(),
        })}
        {move || expire.value().get().and_then(|r| r.err()).map(|e| view! {
            <div class="error-box" role="alert"><strong>"The silence was not expired: "</strong>{crate::error_text(&e)}</div>
        })}
        <Transition fallback=|| ()>
            {move || may_act(&principal()).then(|| view! {
                <h2>"New silence"</h2>
                <ActionForm action=create attr:class="create-silence">
                    <input type="hidden" name="csrf_token" value=token/>
                    <div class="form-row">
                        <label>"Matchers "
                            <input type="text" name="matchers" size="40" required=true
                                placeholder="alertname=\"StageStalled\", stage=\"transform\""
                                prop:value=move || matchers.get()
                                on:input=move |ev| matchers.set(event_target_value(&ev))/>
                        </label>
                        <label>"For "
                            <select name="duration">
                                {DURATIONS.iter().map(|d| view! { <option value=*d>{*d}</option> }).collect_view()}
                            </select>
                        </label>
                        <label>"Why " <input type="text" name="comment" required=true size="30" placeholder="maintenance of the orders DB"/></label>
                        <button type="submit" class="primary">"Create silence"</button>
                    </div>
                    <p class="muted small silence-preview">
                        {move || match preview.get().flatten() {
                            None => "Write matchers to see how many current alerts they catch.".to_string(),
                            Some(Ok(1)) => "Catches 1 current alert.".to_string(),
                            Some(Ok(n)) => format!("Catches {n} current alerts."),
                            Some(Err(e)) => e,
                        }}
                    </p>
                </ActionForm>
            })}
        </Transition>
        <Transition fallback=|| view! { <p class="loading">"Loading silences…"</p> }>
            {move || data.get().map(|r| match r {
                Err(e) => view! {
                    <div class="error-box" role="alert"><strong>"Could not list silences: "</strong>{crate::error_text(&e)}</div>
                }.into_any(),
                Ok(v) => silence_table(v, may_act(&principal()), expire, token).into_any(),
            })}
        </Transition>
    }
}

fn silence_table(
    v: SilencesView,
    may_act: bool,
    expire: ServerAction<ExpireSilence>,
    token: impl Fn() -> String + Copy + Send + Sync + 'static,
) -> impl IntoView {
    if v.silences.is_empty() {
        return view! {
            <div class="empty" role="status">
                <p><strong>"No silences."</strong>
                " Create one above, or from an alert's page with \"Silence this group\", when you know about a problem and do not want to be paged for it again while you work on it."</p>
            </div>
        }
        .into_any();
    }
    let now = v.now;
    let mut rows = v.silences;
    // Active first, then pending, then expired; the newest end first within each.
    let rank = |s: &str| match s {
        "active" => 0,
        "pending" => 1,
        _ => 2,
    };
    rows.sort_by(|a, b| {
        rank(&a.status)
            .cmp(&rank(&b.status))
            .then(b.ends_at_ms.cmp(&a.ends_at_ms))
    });
    let rows = rows
        .into_iter()
        .map(|s| {
            let id = s.id.clone();
            let ends = if s.status == "expired" {
                format!("ended {}", format_ago(now, s.ends_at_ms))
            } else {
                format!("ends {}", format_utc(s.ends_at_ms))
            };
            let alerts_href = format!(
                "/alerts?matcher={}",
                crate::range::encode_query_value(&s.matchers)
            );
            view! {
                <tr class=format!("silence-row silence-{}", s.status) data-id=s.id.clone()>
                    <td><span class=format!("state-badge silence-state state-{}", s.status)>{s.status.clone()}</span></td>
                    <td><code>{s.matchers.clone()}</code></td>
                    <td class="num"><a href=alerts_href title="The alerts these matchers catch">{s.matching.to_string()}</a></td>
                    <td title=format_utc(s.starts_at_ms)>{format!("from {}", format_utc(s.starts_at_ms))}<div class="muted small">{ends}</div></td>
                    <td>{s.created_by.clone()}<div class="muted small">{s.comment.clone()}</div></td>
                    <td>{(may_act && s.status != "expired").then(|| view! {
                        <ActionForm action=expire>
                            <input type="hidden" name="csrf_token" value=token/>
                            <input type="hidden" name="id" value=id.clone()/>
                            <button type="submit">"Expire"</button>
                        </ActionForm>
                    })}</td>
                </tr>
            }
            .into_any()
        })
        .collect_view();
    view! {
        <table class="silences">
            <thead><tr><th>"State"</th><th>"Matchers"</th><th>"Alerts caught"</th><th>"When"</th><th>"By, why"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}
