//! The pipewatch web app: the page shell, the layout with its navigation, and the routes of
//! the Pipelines (the landing page), Anomalies, Alerts, Silences, On call, Rules, Drift, Explore, Data
//! quality, Targets, Status, Login, Users and tokens, and Audit log pages. Built twice: with `ssr` into the server (pages
//! render completely there, state lives in the URL) and with `hydrate` into the browser
//! bundle that makes hover, zoom, legend toggles and auto-refresh work.

pub mod alerts;
pub mod anomalies;
pub mod api;
pub mod audit;
#[cfg(feature = "ssr")]
pub mod backend;
pub mod channels;
pub mod chart;
pub mod drift;
pub mod explore;
pub mod login;
pub mod oncall;
pub mod pipelines;
pub mod quality;
pub mod range;
pub mod rules;
pub mod silences;
pub mod status;
pub mod targets;
pub mod timefmt;
pub mod users;

#[cfg(feature = "ssr")]
pub use backend::Backend;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Link, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::{path, SsrMode};
use login::UserMenu;

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/pipewatch.css"/>
        <Link rel="icon" type_="image/svg+xml" href="/favicon.svg"/>
        <Title text="pipewatch"/>
        <Router>
            <header class="topbar">
                <a class="brand" href="/">"pipewatch"</a>
                <nav class="nav">
                    <A href="/" exact=true>"Pipelines"</A>
                    <A href="/anomalies">"Anomalies"</A>
                    <A href="/alerts">"Alerts"</A>
                    <A href="/silences">"Silences"</A>
                    <A href="/oncall">"On call"</A>
                    <A href="/channels">"Channels"</A>
                    <A href="/rules">"Rules"</A>
                    <A href="/drift">"Drift"</A>
                    <A href="/explore">"Explore"</A>
                    <A href="/targets">"Targets"</A>
                    <A href="/quality">"Data quality"</A>
                    <A href="/status">"Status"</A>
                </nav>
                <UserMenu/>
            </header>
            <main class="page">
                // Async: the server waits for the data, so a page is complete before any
                // script runs (and without scripts at all).
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=pipelines::PipelinesPage ssr=SsrMode::Async/>
                    <Route path=path!("/anomalies") view=anomalies::AnomaliesPage ssr=SsrMode::Async/>
                    <Route path=path!("/anomalies/:id") view=anomalies::AnomalyPage ssr=SsrMode::Async/>
                    <Route path=path!("/alerts") view=alerts::AlertsPage ssr=SsrMode::Async/>
                    <Route path=path!("/alerts/:id") view=alerts::AlertPage ssr=SsrMode::Async/>
                    <Route path=path!("/silences") view=silences::SilencesPage ssr=SsrMode::Async/>
                    <Route path=path!("/oncall") view=oncall::OncallPage ssr=SsrMode::Async/>
                    <Route path=path!("/channels") view=channels::ChannelsPage ssr=SsrMode::Async/>
                    <Route path=path!("/rules") view=rules::RulesPage ssr=SsrMode::Async/>
                    <Route path=path!("/drift") view=drift::DriftPage ssr=SsrMode::Async/>
                    <Route path=path!("/explore") view=explore::ExplorePage ssr=SsrMode::Async/>
                    <Route path=path!("/targets") view=targets::TargetsPage ssr=SsrMode::Async/>
                    <Route path=path!("/status") view=status::StatusPage ssr=SsrMode::Async/>
                    <Route path=path!("/quality") view=quality::QualityPage ssr=SsrMode::Async/>
                    <Route path=path!("/login") view=login::LoginPage ssr=SsrMode::Async/>
                    <Route path=path!("/users") view=users::UsersPage ssr=SsrMode::Async/>
                    <Route path=path!("/audit") view=audit::AuditPage ssr=SsrMode::Async/>
                </Routes>
            </main>
        </Router>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
        resp.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found · pipewatch"/>
        <h1>"Page not found"</h1>
        <p>"There is no page at this address. Try " <a href="/">"Pipelines"</a> ", "
            <a href="/anomalies">"Anomalies"</a> ", " <a href="/explore">"Explore"</a> ", "
            <a href="/targets">"Targets"</a> " or " <a href="/status">"Status"</a> "."</p>
    }
}

/// Error text for people: the message a server function failed with, without the framework's
/// prefix.
pub fn error_text(e: &ServerFnError) -> String {
    match e {
        ServerFnError::ServerError(msg) => msg.clone(),
        other => other.to_string(),
    }
}

/// Calls `f` every `secs` seconds while the page is open in the browser; does nothing on the
/// server.
pub fn every_seconds(secs: u64, f: impl Fn() + 'static) {
    #[cfg(feature = "hydrate")]
    {
        if let Ok(handle) = set_interval_with_handle(f, std::time::Duration::from_secs(secs)) {
            on_cleanup(move || handle.clear());
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (secs, f);
}

/// The browser entry point: attaches the app to the HTML the server rendered.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
    // A marker for browser tests (and curious humans): event handlers are attached now.
    if let Some(body) = document().body() {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}
