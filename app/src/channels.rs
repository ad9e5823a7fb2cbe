//! The Notification channels page (`/channels`): every `[notifications.channels.<name>]` with
//! its type, where it delivers (never a secret: a webhook shows its host only), how many
//! notifications it delivered and has waiting, and the newest error of one still waiting.
//! Editors send a test notification: it goes through the outbox like any alert notice (same
//! sender, retries, attempts recorded), so a delivered test proves the whole path.

use crate::timefmt::{format_ago, format_utc};
use leptos::prelude::*;
use leptos_meta::Title;
use model::auth::{Principal, Role};
use model::TimestampMs;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelsView {
    pub now: TimestampMs,
    pub channels: Vec<ChannelView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelView {
    pub name: String,
    /// `email`, `webhook`, `slack_webhook`, `slack`, `teams`.
    pub kind: String,
    pub destination: String,
    pub delivered: i64,
    pub waiting: i64,
    pub last_delivered: Option<TimestampMs>,
    pub last_error: Option<String>,
}

#[cfg(feature = "ssr")]
use crate::api::backend;

#[server(prefix = "/app-fn", endpoint = "channels_view")]
pub async fn get_channels() -> Result<ChannelsView, ServerFnError> {
    Ok(ChannelsView {
        now: crate::api::now_ms(),
        channels: backend()?.channels().await.map_err(ServerFnError::new)?,
    })
}

/// Queues a test notification to `channel` as the signed-in user; returns its outbox id.
#[server(prefix = "/app-fn", endpoint = "send_test_notification")]
pub async fn send_test_notification(
    csrf_token: Option<String>,
    channel: String,
) -> Result<i64, ServerFnError> {
    let _ = csrf_token;
    let who = crate::login::authorize("send_test_notification")?;
    backend()?
        .send_test_notification(&who.name, &channel)
        .await
        .map_err(ServerFnError::new)
}

fn may_send(p: &Option<Principal>) -> bool {
    p.as_ref()
        .and_then(|p| p.role)
        .is_some_and(|r| r >= Role::Editor)
}

#[component]
pub fn ChannelsPage() -> impl IntoView {
    let me = Resource::new(|| (), |_| crate::login::current_user());
    let send = ServerAction::<SendTestNotification>::new();
    let tick = RwSignal::new(0u64);
    let data = Resource::new(
        move || (send.version().get(), tick.get()),
        |_| get_channels(),
    );
    // A test goes out within a sender poll; show its outcome without a reload.
    crate::every_seconds(3, move || tick.update(|t| *t += 1));
    let principal = move || me.get().and_then(Result::ok);
    let token = move || principal().and_then(|p| p.csrf_token).unwrap_or_default();
    view! {
        <Title text="Notification channels · pipewatch"/>
        <h1>"Notification channels"</h1>
        <p class="muted">"Channels come from "<code>"[notifications.channels.<name>]"</code>
            " in the configuration; routes name them ("<a href="/rules">"Rules"</a>", "<a href="/alerts">"Alerts"</a>"). A test notification goes through the outbox like an alert notice: delivered below means the whole path works."</p>
        {move || send.value().get().map(|r| match r {
            Ok(id) => view! { <div class="ok-box" role="status">{format!("Test notification {id} queued; it is delivered within a few seconds (see Delivered).")}</div> }.into_any(),
            Err(e) => view! { <div class="error-box" role="alert"><strong>"No test was sent: "</strong>{crate::error_text(&e)}</div> }.into_any(),
        })}
        <Transition fallback=|| view! { <p class="loading">"Loading channels…"</p> }>
            {move || data.get().map(|r| match r {
                Err(e) => view! { <div class="error-box" role="alert">{crate::error_text(&e)}</div> }.into_any(),
                Ok(v) if v.channels.is_empty() => view! {
                    <p class="empty">"No channels: add one under "<code>"[notifications.channels.<name>]"</code>
                        " (email, webhook, slack, slack_webhook or teams; the README's Alerting section has examples)."</p>
                }.into_any(),
                Ok(v) => {
                    let now = v.now;
                    let edit = may_send(&principal());
                    view! {
                        <table class="channels">
                            <thead><tr><th>"Channel"</th><th>"Type"</th><th>"Delivers to"</th><th>"Delivered"</th><th>"Waiting"</th><th>"Last error"</th><th></th></tr></thead>
                            <tbody>
                                {v.channels.into_iter().map(|c| {
                                    let name = c.name.clone();
                                    view! {
                                        <tr class="channel" data-channel=c.name.clone()>
                                            <td><strong>{c.name.clone()}</strong></td>
                                            <td>{c.kind.clone()}</td>
                                            <td>{c.destination.clone()}</td>
                                            <td class="delivered">{c.delivered.to_string()}
                                                {c.last_delivered.map(|t| view! { <span class="muted" title=format_utc(t)>{format!(" (last {})", format_ago(now, t))}</span> })}
                                            </td>
                                            <td class="waiting">{c.waiting.to_string()}</td>
                                            <td class="last-error">{c.last_error.clone().unwrap_or_default()}</td>
                                            <td>{edit.then(|| view! {
                                                <ActionForm action=send>
                                                    <input type="hidden" name="csrf_token" value=token/>
                                                    <input type="hidden" name="channel" value=name.clone()/>
                                                    <button type="submit">"Send test"</button>
                                                </ActionForm>
                                            })}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any()
                }
            })}
        </Transition>
    }
}
