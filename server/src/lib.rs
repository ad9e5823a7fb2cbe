//! The pipewatch server: configuration, HTTP API, ingest queue and writers, scrape manager,
//! demo pipeline and benchmarks. `main.rs` is only the command line on top of [`run`].

pub mod api;
pub mod bench;
pub mod config;
pub mod demo;
pub mod discovery;
pub mod evidence_api;
pub mod guard;
pub mod import;
pub mod ingest;
pub mod lineage_api;
pub mod otlp_signals;
pub mod receivers;
pub mod run;
pub mod scrape_manager;
pub mod state;
pub mod telemetry;
pub mod web;

pub use state::AppState;

/// The whole HTTP surface: API routes plus the web app. Tests call this with `oneshot`.
pub fn app(state: AppState, site_root: std::path::PathBuf) -> axum::Router {
    let backend: std::sync::Arc<dyn app::Backend> = std::sync::Arc::new(state.clone());
    api::router(state.clone())
        .merge(lineage_api::router(state.clone()))
        .merge(receivers::dq::read_router(state.clone()))
        .merge(evidence_api::router(state.clone()))
        .merge(api::events::router(state.clone()))
        .merge(receivers::router_with_config(
            state.clone(),
            state.receivers,
        ))
        .merge(web::router(backend, site_root))
}
