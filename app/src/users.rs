//! The Users and tokens page (admin): add a user, change a role, disable or enable, set the
//! e-mail address escalations mail them at; create an
//! API token (its secret is shown once, right after), revoke one.
//!
//! Every change is a server function taking the session's CSRF token as its `csrf_token`
//! argument: it travels in the form body, where the server's auth layer checks it before the
//! function runs. The functions check the role themselves as well ([`crate::login::authorize`]).

use crate::login::current_user;
use crate::timefmt::format_utc;
use leptos::prelude::*;
use leptos_meta::Title;
use model::auth::{Role, TokenInfo, TokenScope, UserInfo};

#[server(prefix = "/app-fn", endpoint = "list_users")]
pub async fn list_users() -> Result<Vec<UserInfo>, ServerFnError> {
    crate::login::authorize("list_users")?;
    backend()?.list_users().await.map_err(ServerFnError::new)
}

#[server(prefix = "/app-fn", endpoint = "list_tokens")]
pub async fn list_tokens() -> Result<Vec<TokenInfo>, ServerFnError> {
    crate::login::authorize("list_tokens")?;
    backend()?.list_tokens().await.map_err(ServerFnError::new)
}

#[server(prefix = "/app-fn", endpoint = "add_user")]
pub async fn add_user(
    csrf_token: Option<String>,
    name: String,
    password: String,
    role: Role,
) -> Result<(), ServerFnError> {
    let _ = csrf_token;
    let who = crate::login::authorize("add_user")?;
    backend()?
        .add_user(&who.name, name.trim(), &password, role)
        .await
        .map_err(ServerFnError::new)?;
    crate::login::mark_audited();
    Ok(())
}

/// `role` empty: unchanged; `disabled` empty: unchanged, else "true" / "false".
#[server(prefix = "/app-fn", endpoint = "change_user")]
pub async fn change_user(
    csrf_token: Option<String>,
    name: String,
    role: Option<Role>,
    disabled: Option<bool>,
) -> Result<(), ServerFnError> {
    let _ = csrf_token;
    let who = crate::login::authorize("change_user")?;
    backend()?
        .change_user(&who.name, &name, role, disabled)
        .await
        .map_err(ServerFnError::new)?;
    crate::login::mark_audited();
    Ok(())
}

/// Sets the address escalations to `name` are mailed to (on-call schedules and policies);
/// empty removes it.
#[server(prefix = "/app-fn", endpoint = "set_user_email")]
pub async fn set_user_email(
    csrf_token: Option<String>,
    name: String,
    email: String,
) -> Result<(), ServerFnError> {
    let _ = csrf_token;
    let who = crate::login::authorize("set_user_email")?;
    backend()?
        .set_user_email(&who.name, &name, email.trim())
        .await
        .map_err(ServerFnError::new)?;
    crate::login::mark_audited();
    Ok(())
}

/// Returns the new token's secret: shown once, stored only as a hash.
#[server(prefix = "/app-fn", endpoint = "create_token")]
pub async fn create_token(
    csrf_token: Option<String>,
    name: String,
    scope: TokenScope,
) -> Result<String, ServerFnError> {
    let _ = csrf_token;
    let who = crate::login::authorize("create_token")?;
    let secret = backend()?
        .create_token(&who.name, name.trim(), scope)
        .await
        .map_err(ServerFnError::new)?;
    crate::login::mark_audited();
    Ok(secret)
}

#[server(prefix = "/app-fn", endpoint = "revoke_token")]
pub async fn revoke_token(csrf_token: Option<String>, id: i64) -> Result<(), ServerFnError> {
    let _ = csrf_token;
    let who = crate::login::authorize("revoke_token")?;
    backend()?
        .revoke_token(&who.name, id)
        .await
        .map_err(ServerFnError::new)?;
    crate::login::mark_audited();
    Ok(())
}

#[cfg(feature = "ssr")]
use crate::api::backend;

fn outcome<T>(r: Option<Result<T, ServerFnError>>) -> Option<AnyView> {
    match r {
        Some(Err(e)) => Some(
            view! { <div class="error-box" role="alert">{crate::error_text(&e)}</div> }.into_any(),
        ),
        _ => None,
    }
}

#[component]
pub fn UsersPage() -> impl IntoView {
    let add = ServerAction::<AddUser>::new();
    let change = ServerAction::<ChangeUser>::new();
    let email = ServerAction::<SetUserEmail>::new();
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let me = Resource::new(|| (), |_| current_user());
    let users = Resource::new(
        move || {
            (
                add.version().get(),
                change.version().get(),
                email.version().get(),
            )
        },
        |_| list_users(),
    );
    let tokens = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| list_tokens(),
    );
    let csrf = move || {
        me.get()
            .and_then(Result::ok)
            .and_then(|p| p.csrf_token)
            .unwrap_or_default()
    };
    view! {
        <Title text="Users and tokens · pipewatch"/>
        <h1>"Users and tokens"</h1>
        <Transition fallback=|| view! { <p class="loading">"Loading users…"</p> }>
            <h2>"Users"</h2>
            {move || outcome(change.value().get())}
            {move || outcome(email.value().get())}
            {move || {
                users
                    .get()
                    .map(|r| match r {
                        Err(e) => view! { <div class="error-box" role="alert">{crate::error_text(&e)}</div> }.into_any(),
                        Ok(list) => view! {
                            <table class="users">
                                <thead><tr><th>"Name"</th><th>"Role"</th><th>"State"</th><th>"Since"</th><th>"E-mail (escalations)"</th><th>"Change"</th></tr></thead>
                                <tbody>
                                    {list
                                        .into_iter()
                                        .map(|u| {
                                            // One copy per form: each form's children own theirs.
                                            let (name, name_role, name_state, name_email) = (
                                                u.name.clone(),
                                                u.name.clone(),
                                                u.name.clone(),
                                                u.name.clone(),
                                            );
                                            let address = u.email.clone().unwrap_or_default();
                                            let toggle = (!u.disabled).to_string();
                                            let current = u.role;
                                            view! {
                                                <tr data-user=name>
                                                    <td>{u.name.clone()}</td>
                                                    <td>{u.role.as_str()}</td>
                                                    <td>{if u.disabled { "disabled" } else { "active" }}</td>
                                                    <td>{format_utc(u.created_at)}</td>
                                                    <td>
                                                        <ActionForm action=email attr:class="inline-form">
                                                            <input type="hidden" name="csrf_token" value=csrf/>
                                                            <input type="hidden" name="name" value=name_email/>
                                                            <input type="email" name="email" value=address size="22" placeholder="none"/>
                                                            <button type="submit">"Set"</button>
                                                        </ActionForm>
                                                    </td>
                                                    <td>
                                                        <ActionForm action=change attr:class="inline-form">
                                                            <input type="hidden" name="csrf_token" value=csrf/>
                                                            <input type="hidden" name="name" value=name_role/>
                                                            <select name="role">
                                                                {Role::ALL.into_iter().map(move |r| view! {
                                                                    <option value={r.as_str()} selected={r == current}>{r.as_str()}</option>
                                                                }).collect_view()}
                                                            </select>
                                                            <button type="submit">"Set role"</button>
                                                        </ActionForm>
                                                        <ActionForm action=change attr:class="inline-form">
                                                            <input type="hidden" name="csrf_token" value=csrf/>
                                                            <input type="hidden" name="name" value=name_state/>
                                                            <input type="hidden" name="disabled" value=toggle/>
                                                            <button type="submit">{if u.disabled { "Enable" } else { "Disable" }}</button>
                                                        </ActionForm>
                                                    </td>
                                                </tr>
                                            }
                                        })
                                        .collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                    })
            }}
            <h3>"Add a user"</h3>
            {move || outcome(add.value().get())}
            <ActionForm action=add attr:class="add-user">
                <input type="hidden" name="csrf_token" value=csrf/>
                <label>"Name " <input type="text" name="name" required/></label>
                <label>"Password " <input type="password" name="password" autocomplete="new-password" required minlength="8"/></label>
                <label>"Role "
                    <select name="role">
                        {Role::ALL.into_iter().map(|r| view! { <option value={r.as_str()}>{r.as_str()}</option> }).collect_view()}
                    </select>
                </label>
                <button type="submit">"Add user"</button>
            </ActionForm>

            <h2>"API tokens"</h2>
            <p class="muted">"read: every read route as a viewer; admin: everything; ingest: the push receivers only. Send as "
                <code>"Authorization: Bearer <token>"</code>"."</p>
            {move || outcome(revoke.value().get())}
            {move || match create.value().get() {
                Some(Ok(secret)) => Some(view! {
                    <div class="token-once" role="status">
                        "New token (copy it now, it is not shown again): "
                        <code class="token-secret">{secret}</code>
                    </div>
                }.into_any()),
                other => outcome(other),
            }}
            {move || {
                tokens
                    .get()
                    .map(|r| match r {
                        Err(e) => view! { <div class="error-box" role="alert">{crate::error_text(&e)}</div> }.into_any(),
                        Ok(list) => view! {
                            <table class="tokens">
                                <thead><tr><th>"Name"</th><th>"Scope"</th><th>"Created"</th><th>"Last used"</th><th>"State"</th><th></th></tr></thead>
                                <tbody>
                                    {list
                                        .into_iter()
                                        .map(|t| {
                                            let live = t.revoked_at.is_none();
                                            view! {
                                                <tr data-token=t.name.clone()>
                                                    <td>{t.name.clone()}</td>
                                                    <td>{t.scope.as_str()}</td>
                                                    <td>{format!("{} by {}", format_utc(t.created_at), t.created_by)}</td>
                                                    <td>{t.last_used_at.map(format_utc).unwrap_or_else(|| "never".into())}</td>
                                                    <td>{t.revoked_at.map(|r| format!("revoked {}", format_utc(r))).unwrap_or_else(|| "live".into())}</td>
                                                    <td>
                                                        {live.then(|| view! {
                                                            <ActionForm action=revoke attr:class="inline-form">
                                                                <input type="hidden" name="csrf_token" value=csrf/>
                                                                <input type="hidden" name="id" value=t.id.to_string()/>
                                                                <button type="submit">"Revoke"</button>
                                                            </ActionForm>
                                                        })}
                                                    </td>
                                                </tr>
                                            }
                                        })
                                        .collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                    })
            }}
            <h3>"Create a token"</h3>
            <ActionForm action=create attr:class="create-token">
                <input type="hidden" name="csrf_token" value=csrf/>
                <label>"Name " <input type="text" name="name" required/></label>
                <label>"Scope "
                    <select name="scope">
                        {TokenScope::ALL.into_iter().map(|s| view! { <option value={s.as_str()}>{s.as_str()}</option> }).collect_view()}
                    </select>
                </label>
                <button type="submit">"Create token"</button>
            </ActionForm>
        </Transition>
    }
}
