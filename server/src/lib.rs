//! The pipewatch server: configuration, HTTP API, ingest queue and writers, scrape manager.
//! The command line (cli/), the demo pipeline (demo/) and the benchmarks (bench/) are crates
//! of their own on top of [`run`].

pub mod analysis;
pub mod api;
pub mod auth;
pub mod config;
pub mod discovery;
pub mod guard;
pub mod import;
pub mod ingest;
pub mod lifecycle;
pub mod maintenance_metrics;
pub mod notify;
pub mod oncall;
pub mod promql;
pub mod receivers;
pub mod run;
pub mod scrape_manager;
pub mod security_headers;
pub mod state;
pub mod telemetry;
pub mod web;

pub use state::AppState;

/// The whole HTTP surface: read API, receivers, login and the web app, behind the auth layer
/// (`state.auth`, [`auth::policy`]) and the security headers. Tests call this with `oneshot`.
pub fn app(state: AppState, site_root: std::path::PathBuf) -> axum::Router {
    let receivers = receivers::ReceiverState::new(state.clone(), state.receivers.clone());
    app_with_receivers(state, receivers, site_root)
}

/// [`app`] over a receiver state shared with the OTLP/gRPC server (one set of running
/// totals for both).
pub fn app_with_receivers(
    state: AppState,
    receivers: receivers::ReceiverState,
    site_root: std::path::PathBuf,
) -> axum::Router {
    let backend: std::sync::Arc<dyn app::Backend> = std::sync::Arc::new(state.clone());
    api::router(state.clone())
        .merge(receivers::router_with_state(receivers))
        .merge(auth::router(state.clone()))
        .merge(web::router(backend, site_root))
        // `layer`, not `route_layer`: the fallback (404 page) passes the auth layer too.
        .layer(axum::middleware::from_fn_with_state(state, auth::layer))
        .layer(axum::middleware::from_fn(security_headers::layer))
}
