//! The web app's routes: server-rendered Leptos pages with the data backend in their
//! context, the browser bundle and stylesheet under `/pkg`, and the favicon. The server
//! merges this router with its API router.
//!
//! The site (`<site_root>/pkg/pipewatch.js`, `pipewatch_bg.wasm`, `pipewatch.css`) is built
//! by `scripts/build-site.sh`; without it pages still render, but do not hydrate.

use app::{shell, App, Backend};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{file_and_error_handler_with_context, generate_route_list, LeptosRoutes};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tower_http::services::ServeDir;

/// A small blue pulse line; served so browsers do not log a 404 for `/favicon.ico`.
const FAVICON_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#1f3a5f"/><polyline points="3,18 10,18 13,9 18,25 21,15 29,15" fill="none" stroke="#7fd1ff" stroke-width="3" stroke-linejoin="round" stroke-linecap="round"/></svg>"##;

/// Leptos options built in code, so the server needs none of cargo-leptos' variables.
pub fn leptos_options(site_root: &Path) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("pipewatch")
        .site_pkg_dir("pkg")
        .site_root(site_root.to_string_lossy().into_owned())
        .env(leptos::config::Env::PROD)
        .build()
}

/// The pages and their assets. `site_root` holds `pkg/` as built by `scripts/build-site.sh`.
///
/// Unknown paths get the app's "Page not found" page with status 404 through this router's
/// fallback, so merge routers without a fallback of their own into it.
pub fn router(backend: Arc<dyn Backend>, site_root: PathBuf) -> Router {
    let wasm = site_root.join("pkg").join("pipewatch_bg.wasm");
    if !wasm.exists() {
        tracing::warn!(
            path = %wasm.display(),
            "the browser bundle is missing: pages render but charts will not respond to the pointer; \
             run scripts/build-site.sh (or set PIPEWATCH_SITE_ROOT to where it was built)"
        );
    }
    let options = leptos_options(&site_root);
    let routes = generate_route_list(App);
    let shell_options = options.clone();
    let context = move || provide_context::<Arc<dyn Backend>>(backend.clone());
    Router::new()
        .leptos_routes_with_context(&options, routes, context.clone(), move || {
            shell(shell_options.clone())
        })
        .route("/favicon.ico", get(favicon))
        .route("/favicon.svg", get(favicon))
        .nest_service("/pkg", ServeDir::new(site_root.join("pkg")))
        .fallback(file_and_error_handler_with_context(context, shell))
        .with_state(options)
}

async fn favicon() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        FAVICON_SVG,
    )
}
