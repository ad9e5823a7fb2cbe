//! The On-call page (`/oncall`): for each schedule of the on-call files, who is on call now,
//! the next hand-offs, its layers and its overrides; the escalation policies level by level.
//! Editors add an override from the page ("ann covers the primary schedule for the next 4
//! hours") and remove one added earlier; overrides from the files are changed in the files.
//!
//! Schedules are UTC: every time here is shown and read as UTC.

use crate::timefmt::{format_ago, format_utc};
use leptos::prelude::*;
use leptos_meta::Title;
use model::auth::{Principal, Role};
use model::TimestampMs;
use serde::{Deserialize, Serialize};

/// How long an override added from the page lasts (the form's choices).
pub const OVERRIDE_DURATIONS: [&str; 7] = ["1h", "4h", "12h", "1d", "3d", "7d", "14d"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OncallView {
    pub now: TimestampMs,
    pub schedules: Vec<ScheduleView>,
    pub policies: Vec<PolicyView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleView {
    pub name: String,
    /// `None`: nobody (a gap).
    pub on_call: Option<String>,
    /// The next changes of who is on call: (when, who; `None` is nobody).
    pub handoffs: Vec<(TimestampMs, Option<String>)>,
    pub layers: Vec<LayerView>,
    pub overrides: Vec<OverrideView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerView {
    pub name: String,
    pub users: Vec<String>,
    /// `1w`, `12h`.
    pub shift: String,
    pub start: TimestampMs,
    pub end: Option<TimestampMs>,
    /// `mon-fri 09:00-17:00`, empty when around the clock.
    pub restrict: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverrideView {
    /// Set for overrides added from the page (they can be removed here); `None` for the
    /// file's own.
    pub id: Option<i64>,
    pub user: String,
    pub from: TimestampMs,
    pub to: TimestampMs,
    /// Who added it (`file` for the file's own).
    pub by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyView {
    pub name: String,
    /// One line per level: `after 15m: schedule secondary, user lead`.
    pub levels: Vec<String>,
    /// The routes using it (`default`, `routes[0]` or the route's name).
    pub routes: Vec<String>,
}

#[cfg(feature = "ssr")]
use crate::api::backend;

#[server(prefix = "/app-fn", endpoint = "oncall_view")]
pub async fn get_oncall() -> Result<OncallView, ServerFnError> {
    backend()?.oncall_view().await.map_err(ServerFnError::new)
}

/// Adds an override as the signed-in user. `from` is UTC (`2026-12-24 09:00`) or empty for
/// now; `duration` one of [`OVERRIDE_DURATIONS`] (any Prometheus duration is accepted).
#[server(prefix = "/app-fn", endpoint = "add_override")]
pub async fn add_override(
    csrf_token: Option<String>,
    schedule: String,
    user: String,
    from: String,
    duration: String,
) -> Result<(), ServerFnError> {
    let _ = csrf_token;
    let who = crate::login::authorize("add_override")?;
    let from_ms = if from.trim().is_empty() {
        crate::api::now_ms()
    } else {
        crate::timefmt::parse_utc(&from).map_err(ServerFnError::new)?
    };
    backend()?
        .add_override(&who.name, &schedule, user.trim(), from_ms, duration.trim())
        .await
        .map_err(ServerFnError::new)?;
    crate::login::mark_audited();
    Ok(())
}

#[server(prefix = "/app-fn", endpoint = "delete_override")]
pub async fn delete_override(csrf_token: Option<String>, id: i64) -> Result<(), ServerFnError> {
    let _ = csrf_token;
    let who = crate::login::authorize("delete_override")?;
    backend()?
        .delete_override(&who.name, id)
        .await
        .map_err(ServerFnError::new)?;
    crate::login::mark_audited();
    Ok(())
}

fn may_edit(p: &Option<Principal>) -> bool {
    p.as_ref()
        .and_then(|p| p.role)
        .is_some_and(|r| r >= Role::Editor)
}

fn who(u: &Option<String>) -> String {
    u.clone().unwrap_or_else(|| "nobody".into())
}

#[component]
pub fn OncallPage() -> impl IntoView {
    let me = Resource::new(|| (), |_| crate::login::current_user());
    let add = ServerAction::<AddOverride>::new();
    let remove = ServerAction::<DeleteOverride>::new();
    let data = Resource::new(
        move || (add.version().get(), remove.version().get()),
        |_| get_oncall(),
    );
    let principal = move || me.get().and_then(Result::ok);
    let token = move || principal().and_then(|p| p.csrf_token).unwrap_or_default();
    view! {
        <Title text="On call · pipewatch"/>
        <h1>"On call"</h1>
        <p class="muted">"Schedules and escalation policies come from the on-call files ("
            <code>"[oncall] files"</code>"). Times are UTC. An alert group whose route has a policy and that nobody acknowledges notifies the policy's levels in turn; every step is on the alert's timeline ("
            <a href="/alerts">"Alerts"</a>")."</p>
        {move || add.value().get().and_then(|r| r.err()).map(|e| view! {
            <div class="error-box" role="alert"><strong>"No override was added: "</strong>{crate::error_text(&e)}</div>
        })}
        {move || remove.value().get().and_then(|r| r.err()).map(|e| view! {
            <div class="error-box" role="alert"><strong>"The override was not removed: "</strong>{crate::error_text(&e)}</div>
        })}
        <Transition fallback=|| view! { <p class="loading">"Loading schedules…"</p> }>
            {move || data.get().map(|r| match r {
                Err(e) => view! { <div class="error-box" role="alert">{crate::error_text(&e)}</div> }.into_any(),
                Ok(v) if v.schedules.is_empty() && v.policies.is_empty() => view! {
                    <p class="empty">"No schedules or escalation policies: list on-call files under "
                        <code>"[oncall] files"</code>" (see the README's On-call section)."</p>
                }.into_any(),
                Ok(v) => {
                    let now = v.now;
                    let edit = may_edit(&principal());
                    view! {
                        <section class="oncall-now">
                            <table class="oncall">
                                <thead><tr><th>"Schedule"</th><th>"On call now"</th><th>"Next hand-offs"</th></tr></thead>
                                <tbody>
                                    {v.schedules.iter().map(|s| view! {
                                        <tr>
                                            <td><a href=format!("#schedule-{}", s.name)>{s.name.clone()}</a></td>
                                            <td class="oncall-user"><strong>{who(&s.on_call)}</strong></td>
                                            <td>{s.handoffs.iter().take(3).map(|(t, u)| view! {
                                                <span class="handoff" title=format_utc(*t)>{format!("{} {} ", who(u), format_ago(now, *t))}</span>
                                            }).collect_view()}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </section>
                        {v.schedules.into_iter().map(|s| {
                            let name = s.name.clone();
                            view! {
                                <section class="schedule" id=format!("schedule-{}", s.name)>
                                    <h2>{format!("Schedule {}", s.name)}</h2>
                                    <h3>"Hand-offs"</h3>
                                    <ul>
                                        {s.handoffs.iter().map(|(t, u)| view! {
                                            <li>{format!("{} — {}", format_utc(*t), who(u))}</li>
                                        }).collect_view()}
                                    </ul>
                                    <h3>"Layers (later ones override earlier ones)"</h3>
                                    <table class="layers">
                                        <thead><tr><th>"Layer"</th><th>"Users in turn"</th><th>"Shift"</th><th>"From"</th><th>"Until"</th><th>"Only"</th></tr></thead>
                                        <tbody>
                                            {s.layers.iter().map(|l| view! {
                                                <tr>
                                                    <td>{l.name.clone()}</td>
                                                    <td>{l.users.join(", ")}</td>
                                                    <td>{l.shift.clone()}</td>
                                                    <td>{format_utc(l.start)}</td>
                                                    <td>{l.end.map(format_utc).unwrap_or_else(|| "-".into())}</td>
                                                    <td>{if l.restrict.is_empty() { "always".to_string() } else { l.restrict.clone() }}</td>
                                                </tr>
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                    <h3>"Overrides (on top of every layer)"</h3>
                                    {if s.overrides.is_empty() {
                                        view! { <p class="empty">"None."</p> }.into_any()
                                    } else {
                                        view! {
                                            <table class="overrides">
                                                <thead><tr><th>"User"</th><th>"From"</th><th>"Until"</th><th>"Added by"</th><th></th></tr></thead>
                                                <tbody>
                                                    {s.overrides.iter().map(|o| {
                                                        let id = o.id;
                                                        view! {
                                                            <tr>
                                                                <td>{o.user.clone()}</td>
                                                                <td>{format_utc(o.from)}</td>
                                                                <td>{format_utc(o.to)}</td>
                                                                <td>{o.by.clone()}</td>
                                                                <td>{(edit && id.is_some()).then(|| view! {
                                                                    <ActionForm action=remove>
                                                                        <input type="hidden" name="csrf_token" value=token/>
                                                                        <input type="hidden" name="id" value=id.unwrap_or_default().to_string()/>
                                                                        <button type="submit">"Remove"</button>
                                                                    </ActionForm>
                                                                })}</td>
                                                            </tr>
                                                        }
                                                    }).collect_view()}
                                                </tbody>
                                            </table>
                                        }.into_any()
                                    }}
                                    {edit.then(|| view! {
                                        <ActionForm action=add attr:class="add-override">
                                            <input type="hidden" name="csrf_token" value=token/>
                                            <input type="hidden" name="schedule" value=name.clone()/>
                                            <div class="form-row">
                                                <label>"User " <input type="text" name="user" required=true size="16"/></label>
                                                <label>"From (UTC, empty: now) " <input type="text" name="from" size="18" placeholder="2026-12-24 09:00"/></label>
                                                <label>"For "
                                                    <select name="duration">
                                                        {OVERRIDE_DURATIONS.iter().map(|d| view! { <option value=*d>{*d}</option> }).collect_view()}
                                                    </select>
                                                </label>
                                                <button type="submit" class="primary">"Add override"</button>
                                            </div>
                                        </ActionForm>
                                    })}
                                </section>
                            }
                        }).collect_view()}
                        <section class="policies">
                            <h2>"Escalation policies"</h2>
                            {v.policies.into_iter().map(|p| view! {
                                <h3>{p.name.clone()}</h3>
                                <p class="muted">{if p.routes.is_empty() {
                                    "No route uses it.".to_string()
                                } else {
                                    format!("Used by the routes: {}", p.routes.join(", "))
                                }}</p>
                                <ol>{p.levels.iter().map(|l| view! { <li>{l.clone()}</li> }).collect_view()}</ol>
                            }).collect_view()}
                        </section>
                    }.into_any()
                }
            })}
        </Transition>
    }
}
