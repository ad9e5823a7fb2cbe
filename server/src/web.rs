//! The web app's routes: server-rendered Leptos pages with the data backend in their
//! context, the browser bundle and stylesheet under `/pkg`, and the favicon. The server
//! merges this router with its API router.
//!
//! The bundle (`pkg/pipewatch.js`, `pipewatch_bg.wasm`, `pipewatch.css`, built by
//! `scripts/build-site.sh`) is compiled into the binary by `build.rs`, so the binary serves
//! its web app from any working directory. `server.site_root` (or `PIPEWATCH_SITE_ROOT`)
//! serves a bundle from disk instead. Without either, pages still render but do not hydrate.

use app::{shell, App, Backend};
use axum::extract::Path as UrlPath;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{
    file_and_error_handler_with_context, generate_route_list, render_app_to_stream_with_context,
    LeptosRoutes,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tower_http::services::ServeDir;

/// The compiled-in bundle. `server/build.rs` sets `pipewatch_bundle`; the app crate's page
/// tests and preview compile this file without it (and without a bundle).
#[allow(unexpected_cfgs)]
mod bundle {
    #[cfg(pipewatch_bundle)]
    include!(concat!(env!("OUT_DIR"), "/site_bundle.rs"));
    #[cfg(not(pipewatch_bundle))]
    pub const BUNDLE: Option<&[(&str, &[u8])]> = None;
    #[cfg(not(pipewatch_bundle))]
    pub const BUNDLE_SOURCE: &str = "(web.rs compiled outside the server crate)";
}

/// A small blue pulse line; served so browsers do not log a 404 for `/favicon.ico`.
const FAVICON_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#1f3a5f"/><polyline points="3,18 10,18 13,9 18,25 21,15 29,15" fill="none" stroke="#7fd1ff" stroke-width="3" stroke-linejoin="round" stroke-linecap="round"/></svg>"##;

/// What to tell an operator whose pages render without charts.
const NO_BUNDLE_FIX: &str = "run scripts/build-site.sh and then build pipewatch again (the bundle is compiled in), \
     or set server.site_root (env PIPEWATCH_SERVER__SITE_ROOT or PIPEWATCH_SITE_ROOT) to a folder holding pkg/";

/// Whether this binary carries the browser bundle.
pub fn bundle_is_embedded() -> bool {
    bundle::BUNDLE.is_some()
}

/// Leptos options built in code, so the server needs none of cargo-leptos' variables.
pub fn leptos_options(site_root: &Path) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("pipewatch")
        .site_pkg_dir("pkg")
        .site_root(site_root.to_string_lossy().into_owned())
        .env(leptos::config::Env::PROD)
        .build()
}

/// The pages and their assets. `site_root` empty: the bundle compiled into the binary;
/// otherwise a folder holding `pkg/` as built by `scripts/build-site.sh`.
///
/// Unknown paths get the app's "Page not found" page with status 404 through this router's
/// fallback, so merge routers without a fallback of their own into it.
pub fn router(backend: Arc<dyn Backend>, site_root: PathBuf) -> Router {
    let from_disk = !site_root.as_os_str().is_empty();
    if from_disk {
        let wasm = site_root.join("pkg").join("pipewatch_bg.wasm");
        if !wasm.exists() {
            tracing::warn!(
                path = %wasm.display(),
                "server.site_root has no browser bundle: pages render but charts will not respond to the pointer; {NO_BUNDLE_FIX}"
            );
        }
    } else if !bundle_is_embedded() {
        tracing::warn!(
            looked_in = bundle::BUNDLE_SOURCE,
            "this binary was built without the browser bundle: pages render but charts will not respond to the pointer; {NO_BUNDLE_FIX}"
        );
    }
    let options = leptos_options(&site_root);
    let routes = generate_route_list(App);
    let shell_options = options.clone();
    let context = move || provide_context::<Arc<dyn Backend>>(backend.clone());
    let router = Router::new()
        .leptos_routes_with_context(&options, routes, context.clone(), move || {
            shell(shell_options.clone())
        })
        .route("/favicon.ico", get(favicon))
        .route("/favicon.svg", get(favicon));
    let router = if from_disk {
        router
            .nest_service("/pkg", ServeDir::new(site_root.join("pkg")))
            .fallback(file_and_error_handler_with_context(context, shell))
    } else {
        // Only the app's 404 page: leptos' file handler would serve files from the working
        // directory, which is not the site here.
        let not_found_options = options.clone();
        router.route("/pkg/{*file}", get(embedded_file)).fallback(
            render_app_to_stream_with_context(context, move || shell(not_found_options.clone())),
        )
    };
    router.with_state(options)
}

/// `GET /pkg/<file>` from the compiled-in bundle, with its content type and an ETag so
/// browsers revalidate cheaply instead of downloading the wasm again.
async fn embedded_file(UrlPath(file): UrlPath<String>, headers: HeaderMap) -> Response {
    let Some(files) = bundle::BUNDLE else {
        return (
            StatusCode::NOT_FOUND,
            format!(
                "this pipewatch binary was built without the browser bundle: {NO_BUNDLE_FIX}\n"
            ),
        )
            .into_response();
    };
    let Some(index) = files.iter().position(|(name, _)| *name == file) else {
        return (
            StatusCode::NOT_FOUND,
            format!("no file {file:?} in the browser bundle\n"),
        )
            .into_response();
    };
    let body = files[index].1;
    // Hashed once per file (the wasm is megabytes), not per request.
    static ETAGS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let etag = ETAGS.get_or_init(|| {
        files
            .iter()
            .map(|(_, bytes)| {
                let mut h = std::hash::DefaultHasher::new();
                std::hash::Hash::hash(bytes, &mut h);
                format!("\"{:016x}\"", std::hash::Hasher::finish(&h))
            })
            .collect()
    })[index]
        .clone();
    let cache = [
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, "no-cache".to_string()),
    ];
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        [(header::CONTENT_TYPE, content_type(&file).to_string())],
        cache,
        body,
    )
        .into_response()
}

fn content_type(file: &str) -> &'static str {
    match file.rsplit('.').next() {
        Some("wasm") => "application/wasm",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
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
