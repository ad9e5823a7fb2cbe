//! Start-up and shutdown of the server: database (embedded or `DATABASE_URL`), store, ingest
//! queue and writers, maintenance, scrape loops, HTTP; and the orderly drain on SIGINT/SIGTERM.

use crate::config::Config;
use crate::ingest::{self, WriterConfig};
use crate::scrape_manager::{now_ms, ScrapeManager, TargetHealthBoard};
use crate::state::AppState;
use crate::telemetry::SelfMetrics;
use anyhow::{Context, Result};
use collectors::scrape::ScrapeTarget;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use store::error::redact_url;
use tokio_util::sync::CancellationToken;

/// A database connection: the embedded cluster (stopped when this is dropped or closed) or an
/// external server.
pub struct Database {
    pub url: String,
    pub embedded: Option<store::embedded::EmbeddedPostgres>,
}

impl Database {
    pub async fn open(cfg: &Config) -> Result<Database> {
        if !cfg.database.url.is_empty() {
            return Ok(Database {
                url: cfg.database.url.clone(),
                embedded: None,
            });
        }
        let dir = cfg.server.data_dir.clone();
        tracing::info!(data_dir = %dir.display(), "no database.url / DATABASE_URL set: starting the embedded PostgreSQL cluster");
        let pg = store::embedded::EmbeddedPostgres::start(&dir)
            .await
            .context(
            "starting the embedded PostgreSQL (set DATABASE_URL to use an existing server instead)",
        )?;
        Ok(Database {
            url: pg.url(),
            embedded: Some(pg),
        })
    }

    pub async fn close(self) {
        if let Some(pg) = self.embedded {
            if let Err(e) = pg.stop().await {
                tracing::warn!(error = %e, "embedded PostgreSQL did not stop cleanly");
            }
        }
    }
}

/// What happened to the data, printed as the last log line so operators (and the shutdown
/// test) can check that nothing acknowledged was lost.
#[derive(Debug, serde::Serialize)]
pub struct ShutdownReport {
    pub samples_enqueued: u64,
    pub samples_written: u64,
    pub samples_lost: u64,
}

/// Extras for `serve` beyond the config file.
#[derive(Default)]
pub struct ServeExtras {
    /// Scraped besides the configured targets (the demo pipeline).
    pub targets: Vec<ScrapeTarget>,
    /// Queued once at start (demo history).
    pub initial: Vec<model::Batch>,
    /// Told the bound address once the server accepts requests (tests bind port 0).
    pub on_ready: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
}

/// Runs until `shutdown` resolves, then drains the ingest queue and reports what happened.
pub async fn serve(
    cfg: Config,
    extras: ServeExtras,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<ShutdownReport> {
    let db = Database::open(&cfg).await?;
    let result = serve_with_db(&cfg, &db.url, extras, shutdown).await;
    db.close().await;
    result
}

async fn serve_with_db(
    cfg: &Config,
    url: &str,
    extras: ServeExtras,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<ShutdownReport> {
    let ServeExtras {
        targets: extra_targets,
        initial,
        on_ready,
    } = extras;
    let store = store::Store::connect(
        url,
        store::StoreConfig {
            retention_days: cfg.database.retention_days,
            ..Default::default()
        },
    )
    .await
    .with_context(|| format!("connecting to the database {}", redact_url(url)))?;
    tracing::info!(mode = %store.mode(), "storage ready");

    let metrics = Arc::new(SelfMetrics::new());
    let (queue, writers) = ingest::start(
        Arc::new(store.clone()),
        cfg.ingest.queue_capacity_samples,
        WriterConfig {
            batch_max_samples: cfg.ingest.batch_max_samples,
            flush_interval: cfg.ingest.flush_interval,
            writers: cfg.ingest.writers,
        },
        metrics.clone(),
    );

    let listener = tokio::net::TcpListener::bind(cfg.server.listen).await.with_context(|| {
        format!(
            "cannot listen on {} (key `server.listen`, env PIPEWATCH_SERVER__LISTEN): is another pipewatch running?",
            cfg.server.listen
        )
    })?;
    let local = listener.local_addr()?;

    let stop_background = CancellationToken::new();
    let maintenance = tokio::spawn(maintenance_loop(
        store.clone(),
        cfg.database.maintenance_interval,
        metrics.clone(),
        stop_background.clone(),
    ));

    if !initial.is_empty() {
        let q = queue.clone();
        tokio::spawn(async move {
            let n: usize = initial.iter().map(|b| b.sample_count()).sum();
            for b in initial {
                if q.push(b).await.is_err() {
                    return;
                }
            }
            tracing::info!(samples = n, "demo history queued");
        });
    }

    let tokens = cfg.auth.resolve()?;
    if tokens.is_empty() && !cfg.server.listen.ip().is_loopback() {
        tracing::warn!(listen = %cfg.server.listen, "push receivers accept data without a token on a non-loopback address; configure [[auth.tokens]]");
    }
    // One bounded set of known series for the writer and [limits], warmed from the database.
    store
        .load_recent_series()
        .await
        .context("loading known series for [limits]")?;
    let guard = Arc::new(
        crate::guard::Guard::new(tokens, cfg.limits.clone())
            .with_known_series(store.series_cache()),
    );

    let board = TargetHealthBoard::default();
    let jobs: Vec<_> = cfg
        .scrape_configs
        .iter()
        .map(crate::discovery::JobSpec::from_config)
        .collect();
    tracing::info!(
        jobs = jobs.len(),
        extra_targets = extra_targets.len(),
        "starting scrape discovery and loops"
    );
    let scrapes = ScrapeManager::start_jobs(
        jobs,
        extra_targets,
        queue.clone(),
        board.clone(),
        metrics.clone(),
    );

    let state = AppState {
        store: store.clone(),
        queue: queue.clone(),
        metrics: metrics.clone(),
        board,
        started_at: now_ms(),
        retention_days: cfg.database.retention_days,
        database: redact_url(url),
        receivers: cfg.receivers.clone(),
        guard,
        otlp_signals: Default::default(),
        otlp_metrics: Default::default(),
    };
    let otlp_grpc = start_otlp_grpc(&cfg.receivers, &state).await?;
    let router = crate::app(state, cfg.server.site_root.clone())
        .layer(tower_http::trace::TraceLayer::new_for_http());
    tracing::info!("pipewatch listening on http://{local}");
    println!("pipewatch is up: open http://{local}/explore");
    if let Some(tx) = on_ready {
        let _ = tx.send(local);
    }

    let http = axum::serve(listener, router).with_graceful_shutdown(shutdown);
    http.await.context("HTTP server failed")?;
    if let Some((stop, task)) = otlp_grpc {
        let _ = stop.send(());
        let _ = task.await;
    }

    tracing::info!("shutting down: stopping scrapes, draining the ingest queue");
    scrapes.stop().await;
    stop_background.cancel();
    let _ = maintenance.await;
    let lost = writers.shutdown(cfg.server.shutdown_timeout).await;
    let report = ShutdownReport {
        samples_enqueued: metrics.samples_enqueued.get(),
        samples_written: metrics.samples_written_total(),
        samples_lost: lost,
    };
    tracing::info!(
        report = %serde_json::to_string(&report).expect("report serialises"),
        "shutdown complete"
    );
    println!(
        "pipewatch stopped: {}",
        serde_json::to_string(&report).expect("report serialises")
    );
    store.pool().close().await;
    Ok(report)
}

type GrpcHandle = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
);

/// Binds `receivers.otlp_grpc_listen` (empty: no gRPC receiver) and serves OTLP/gRPC until
/// the returned sender fires.
async fn start_otlp_grpc(
    cfg: &crate::config::ReceiversConfig,
    state: &AppState,
) -> Result<Option<GrpcHandle>> {
    if cfg.otlp_grpc_listen.is_empty() {
        return Ok(None);
    }
    let listener = tokio::net::TcpListener::bind(&cfg.otlp_grpc_listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (key `receivers.otlp_grpc_listen`): is another OTLP receiver running? Set it to \"\" to turn gRPC off",
                cfg.otlp_grpc_listen
            )
        })?;
    tracing::info!(addr = %listener.local_addr()?, "OTLP/gRPC receiver listening");
    let st = crate::receivers::ReceiverState {
        app: state.clone(),
        config: Arc::new(cfg.clone()),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(e) = crate::receivers::otlp_grpc::serve(listener, st, shutdown).await {
            tracing::error!(error = %e, "OTLP/gRPC receiver failed");
        }
    });
    Ok(Some((stop, task)))
}

async fn maintenance_loop(
    store: store::Store,
    every: Duration,
    metrics: Arc<SelfMetrics>,
    stop: CancellationToken,
) {
    // The ingest-rate sampler shares this loop's lifetime.
    let rate_stop = stop.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = tick.tick() => metrics.record_rate_point(),
                _ = rate_stop.cancelled() => return,
            }
        }
    });
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        match store.maintain(now_ms()).await {
            Ok(report) => tracing::debug!(?report, "maintenance done"),
            Err(e) => tracing::warn!(error = %e, "maintenance failed; will retry"),
        }
    }
}

/// A server started in this process (benchmarks and tests): its address, and a way to stop it
/// and get its shutdown report.
pub struct RunningServer {
    pub addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<ShutdownReport>>,
}

impl RunningServer {
    /// Starts `serve` in a task and waits until it accepts requests (bind `127.0.0.1:0` for a
    /// free port).
    ///
    /// The OTLP/gRPC receiver also gets a free port when the config keeps the default 4317,
    /// so tests and benchmarks running side by side do not collide on it.
    pub async fn start(mut cfg: Config, extras: ServeExtras) -> Result<RunningServer> {
        let default_grpc = crate::config::ReceiversConfig::default().otlp_grpc_listen;
        if cfg.receivers.otlp_grpc_listen == default_grpc {
            cfg.receivers.otlp_grpc_listen = "127.0.0.1:0".into();
        }
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let extras = ServeExtras {
            on_ready: Some(ready_tx),
            ..extras
        };
        let task = tokio::spawn(serve(cfg, extras, async move {
            let _ = stop_rx.await;
        }));
        match ready_rx.await {
            Ok(addr) => Ok(RunningServer { addr, stop, task }),
            // The server ended before it was ready: its error says why.
            Err(_) => Err(task
                .await?
                .err()
                .unwrap_or_else(|| anyhow::anyhow!("server stopped before it was ready"))),
        }
    }

    /// Stops accepting, drains the ingest queue, and returns the shutdown report.
    pub async fn stop(self) -> Result<ShutdownReport> {
        let _ = self.stop.send(());
        self.task.await?
    }
}

/// Resolves on the first SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
}
