//! The Login page (`/login`), the user's name and logout button in the navigation, and the
//! helpers every server function that changes something uses: who is asking, and whether the
//! server's policy table lets them.
//!
//! Logging in and out are plain HTML form posts to the server's `POST /login` and
//! `POST /logout` (server/src/auth.rs), so they work before (and without) the browser bundle.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use model::auth::Principal;

/// Who is looking at the page, with the session's CSRF token for forms that change things.
#[server(prefix = "/app-fn", endpoint = "current_user")]
pub async fn current_user() -> Result<Principal, ServerFnError> {
    Ok(principal())
}

/// The request's principal, as the server's auth layer put it in the request extensions;
/// anonymous without a role when there is none (a router set up without the auth layer).
#[cfg(feature = "ssr")]
pub fn principal() -> Principal {
    use_context::<axum::http::request::Parts>()
        .and_then(|p| p.extensions.get::<Principal>().cloned())
        .unwrap_or_else(|| Principal::anonymous(None))
}

/// Refuses unless the policy table lets the current principal call the server function
/// `endpoint`. Server functions run while a page renders do not pass the auth layer, so the
/// ones that reveal or change more than their page does call this.
#[cfg(feature = "ssr")]
pub fn authorize(endpoint: &str) -> Result<Principal, ServerFnError> {
    let backend = use_context::<std::sync::Arc<dyn crate::Backend>>()
        .ok_or_else(|| ServerFnError::new("the server did not provide a data backend"))?;
    let who = principal();
    if backend.allows("POST", &format!("/app-fn/{endpoint}"), who.role) {
        Ok(who)
    } else {
        Err(ServerFnError::new(format!(
            "{} may not do this ({endpoint}): it needs a higher role; ask an admin",
            who.name
        )))
    }
}

/// Tells the auth layer this server function wrote its own audit row.
#[cfg(feature = "ssr")]
pub fn mark_audited() {
    if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
        resp.insert_header(
            axum::http::HeaderName::from_static("x-pipewatch-audited"),
            axum::http::HeaderValue::from_static("1"),
        );
    }
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let error = move || query.with(|q| q.get("error"));
    let next = move || query.with(|q| q.get("next")).unwrap_or_default();
    view! {
        <Title text="Log in · pipewatch"/>
        <section class="login">
            <h1>"Log in"</h1>
            {move || {
                error()
                    .map(|e| {
                        let text = match e.as_str() {
                            "invalid" => "Wrong user name or password.".to_string(),
                            other => format!("Login failed: {other}"),
                        };
                        view! { <div class="error-box" role="alert">{text}</div> }
                    })
            }}
            <form method="post" action="/login" class="login-form">
                <label>"User name" <input type="text" name="user" autocomplete="username" required autofocus/></label>
                <label>"Password" <input type="password" name="password" autocomplete="current-password" required/></label>
                <input type="hidden" name="next" value=next/>
                <button type="submit">"Log in"</button>
            </form>
            <p class="muted">
                "No account? An admin adds users on the Users page or with "
                <code>"pipewatch user add <name> --role viewer"</code> "."
            </p>
        </section>
    }
}

/// The user's name, role and a logout button; or a link to log in.
#[component]
pub fn UserMenu() -> impl IntoView {
    let me = Resource::new(|| (), |_| current_user());
    view! {
        <Suspense fallback=|| ()>
            {move || {
                me.get()
                    .and_then(Result::ok)
                    .map(|p| match (p.via, p.csrf_token) {
                        (model::auth::Via::Session, Some(csrf)) => {
                            let role = p.role.map(|r| r.as_str()).unwrap_or("");
                            let admin = p.role == Some(model::auth::Role::Admin);
                            view! {
                                <span class="user-menu">
                                    {admin.then(|| view! {
                                        <a href="/users">"Users"</a>
                                        <a href="/audit">"Audit log"</a>
                                    })}
                                    <span class="user-name" title=role.to_string()>{p.name.clone()}</span>
                                    <form method="post" action="/logout" class="logout-form">
                                        <input type="hidden" name="csrf_token" value=csrf/>
                                        <button type="submit">"Log out"</button>
                                    </form>
                                </span>
                            }
                                .into_any()
                        }
                        _ => view! { <a class="user-menu" href="/login">"Log in"</a> }.into_any(),
                    })
            }}
        </Suspense>
    }
}
