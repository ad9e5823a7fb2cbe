//! Start-up and shutdown of the server: database (embedded or `DATABASE_URL`), store, ingest
//! queue and writers, maintenance, scrape loops, HTTP; and the orderly drain on SIGINT/SIGTERM.
//!
//! The HTTP listener is served connection by connection (hyper, below `axum::serve`) so that
//! idle or slow clients cannot exhaust it: headers must arrive within
//! `server.header_read_timeout` (which also closes idle keep-alive connections), at most
//! `server.max_connections` are open at once, requests end after `server.request_timeout`,
//! and the open-files soft limit is raised to the hard limit at start.

use crate::config::Config;
use crate::ingest::{self, WriterConfig};
use crate::scrape_manager::{ScrapeManager, TargetHealthBoard};
use crate::state::AppState;
use crate::telemetry::SelfMetrics;
use anyhow::{Context, Result};
use collectors::scrape::ScrapeTarget;
use model::clock::now_ms;
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
    /// (name, password) of an admin to create when the database has no users yet (the demo).
    pub first_admin: Option<(String, String)>,
    /// Rule files evaluated besides `alerting.rule_files` (the demo's rule set).
    pub rules: Vec<crate::config::RuleSource>,
}

/// Runs until `shutdown` resolves, then drains the ingest queue and reports what happened.
pub async fn serve(
    cfg: Config,
    extras: ServeExtras,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<ShutdownReport> {
    // Bad rule files stop the start before anything else is set up.
    let mut rules = cfg.alerting.load_rule_files()?;
    rules.extend(extras.rules.iter().cloned());
    for r in &extras.rules {
        crate::config::check_rule_file(&r.path, &r.text)?;
    }
    let db = Database::open(&cfg).await?;
    let result = serve_with_db(&cfg, &db.url, ServeExtras { rules, ..extras }, shutdown).await;
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
        first_admin,
        rules,
    } = extras;
    // Bad on-call files stop the start before the database is touched.
    let oncall = Arc::new(cfg.oncall.load(&cfg.alerting, &cfg.notifications)?);
    let store = store::Store::connect(
        url,
        store::StoreConfig {
            retention_days: cfg.database.retention_days,
            read_statement_timeout: cfg.database.read_statement_timeout,
            compact_after: cfg.database.compact_after,
            ..Default::default()
        },
    )
    .await
    .with_context(|| format!("connecting to the database {}", redact_url(url)))?;
    tracing::info!(mode = %store.mode(), "storage ready");
    if !oncall.is_empty() {
        oncall.check_users(&store.user_names().await?)?;
    }

    let metrics = Arc::new(SelfMetrics::new());
    let (queue, writers) = ingest::start_bounded(
        Arc::new(store.clone()),
        ingest::QueueBounds {
            samples: cfg.ingest.queue_capacity_samples,
            bytes: cfg.ingest.queue_max_bytes,
        },
        WriterConfig {
            batch_max_samples: cfg.ingest.batch_max_samples,
            flush_interval: cfg.ingest.flush_interval,
            flush_idle: cfg.ingest.flush_idle,
            writers: cfg.ingest.writers,
        },
        metrics.clone(),
    );

    raise_open_files_limit(cfg.server.max_connections);
    let listener = tokio::net::TcpListener::bind(cfg.server.listen).await.with_context(|| {
        format!(
            "cannot listen on {} (key `server.listen`, env PIPEWATCH_SERVER__LISTEN): is another pipewatch running?",
            cfg.server.listen
        )
    })?;
    let local = listener.local_addr()?;
    let tls = tls_acceptor(&cfg.server)?;

    let stop_background = CancellationToken::new();
    let maintenance = tokio::spawn(maintenance_loop(
        store.clone(),
        cfg.database.maintenance_interval,
        metrics.clone(),
        stop_background.clone(),
    ));
    // The notification sender; every instance runs one (claims keep them from double-sending).
    if !cfg.notifications.channels.is_empty() {
        let mut sender = crate::notify::Sender::new(store.clone(), &cfg.notifications)?;
        if let Some(person) = crate::oncall::person_mail(cfg)? {
            sender = sender.with_channel(crate::oncall::MAILTO, person);
        }
        sender.spawn(stop_background.clone());
    }

    // Detection and drift jobs; only the instance holding the analysis leadership runs rounds.
    if cfg.analysis.enabled {
        crate::analysis::AnalysisJobs::new(
            store.clone(),
            (&cfg.query).into(),
            cfg.analysis.clone(),
        )
        .spawn(metrics.clone(), stop_background.clone());
    }

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

    // The alert lifecycle engine; every instance runs one, the leader evaluates.
    let lifecycle = crate::lifecycle::Engine::new(
        store.clone(),
        Some(queue.clone()),
        crate::lifecycle::EngineSettings {
            alerting: cfg.alerting.clone(),
            rules,
            limits: (&cfg.query).into(),
            external_url: cfg.notifications.public_url.clone(),
            escalator: crate::lifecycle::escalation::Escalator::new(
                oncall.clone(),
                !cfg.oncall.mail_channel.is_empty(),
            ),
        },
    )?
    .spawn(stop_background.clone());

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
        query_limits: (&cfg.query).into(),
        auth: Arc::new(crate::auth::AuthSettings::from_config(&cfg.auth)),
        oncall: oncall.clone(),
        channels: Arc::new(cfg.notifications.channels.clone()),
    };
    if let Some((name, password)) = first_admin {
        if store.user_count().await? == 0 {
            store
                .create_user(&name, &password, model::auth::Role::Admin)
                .await?;
            store
                .audit(
                    "demo",
                    "user.add",
                    &name,
                    serde_json::json!({"role": "admin"}),
                )
                .await?;
            println!("log in as {name:?} with password {password:?} for the Users and tokens and Audit log pages");
        } else {
            println!("users exist already in this database: log in with one of them (`pipewatch user list`, `pipewatch user passwd <name>`)");
        }
    }
    crate::auth::bootstrap_admin(&store, &state.auth)
        .await
        .context("creating the first admin")?;
    // One receiver state for HTTP and gRPC: OTLP running totals are shared by both.
    let receivers = crate::receivers::ReceiverState::new(state.clone(), cfg.receivers.clone())
        .with_otlp_signals(crate::receivers::otlp_signals::SignalState::new(
            cfg.otlp.signal_config(),
        ));
    let otlp_grpc = start_otlp_grpc(&cfg.receivers, &receivers).await?;
    let router = crate::app_with_receivers(state, receivers, cfg.server.site_root.clone())
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            cfg.server.request_timeout,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http());
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("pipewatch listening on {scheme}://{local}");
    println!("pipewatch is up: open {scheme}://{local}/explore");
    if let Some(tx) = on_ready {
        let _ = tx.send(local);
    }

    serve_http_tls(
        listener,
        router,
        ConnectionLimits::from(&cfg.server),
        tls,
        shutdown,
    )
    .await;
    if let Some((stop, task)) = otlp_grpc {
        let _ = stop.send(());
        let _ = task.await;
    }

    tracing::info!("shutting down: stopping scrapes, draining the ingest queue");
    scrapes.stop().await;
    stop_background.cancel();
    let _ = maintenance.await;
    // Gives the leadership up at once, so another instance takes over without waiting.
    let _ = lifecycle.await;
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

/// How the HTTP listener bounds its connections (from `[server]`).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    /// How long shutdown waits for requests in flight before dropping their connections.
    pub drain_timeout: Duration,
}

impl From<&crate::config::ServerConfig> for ConnectionLimits {
    fn from(s: &crate::config::ServerConfig) -> Self {
        Self {
            header_read_timeout: s.header_read_timeout,
            max_connections: s.max_connections,
            drain_timeout: s.request_timeout,
        }
    }
}

/// Serves `router` over HTTP/1.1 on `listener` until `shutdown` resolves, then stops
/// accepting, lets requests in flight finish (up to `limits.drain_timeout`) and returns.
///
/// At `max_connections` open connections the next one is not accepted until one closes: it
/// waits in the kernel's listen queue instead of costing a file descriptor, and idle
/// connections make room within `header_read_timeout`.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    serve_http_tls(listener, router, limits, None, shutdown).await
}

/// [`serve_http`], over TLS when `tls` is given: the handshake runs in the connection's own
/// task (a slow client cannot stall accepting) within `header_read_timeout`, and requests
/// carry [`crate::auth::ServedOverTls`] so session cookies get `Secure`.
pub async fn serve_http_tls(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    limits: ConnectionLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    tokio::pin!(shutdown);
    let mut refused_logged_at: Option<std::time::Instant> = None;
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE/ENFILE and aborted handshakes: the listener itself is fine, so
                    // wait a moment (for descriptors to free up) and go on; log once a minute.
                    if refused_logged_at.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                        tracing::warn!(error = %e, "accepting an HTTP connection failed; retrying");
                        refused_logged_at = Some(std::time::Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // The peer address, for login throttling by address; TLS, for the cookie's `Secure`.
        let over_tls = tls.is_some();
        let service = tower::ServiceBuilder::new()
            .map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                if over_tls {
                    req.extensions_mut().insert(crate::auth::ServedOverTls);
                }
                req
            })
            .service(router.clone());
        let service = TowerToHyperService::new(service);
        let watcher = graceful.watcher();
        let http1 = http1.clone();
        let tls = tls.clone();
        let handshake_within = limits.header_read_timeout;
        tokio::spawn(async move {
            let served = match tls {
                None => {
                    watcher
                        .watch(http1.serve_connection(TokioIo::new(stream), service))
                        .await
                }
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_within, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            watcher
                                .watch(http1.serve_connection(TokioIo::new(stream), service))
                                .await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, %peer, "TLS handshake failed");
                            Ok(())
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            after = ?limits.drain_timeout,
            "HTTP requests still running at shutdown were cut off"
        );
    }
}

/// The TLS acceptor for `server.tls_cert` and `server.tls_key` (PEM); `None` when both are
/// empty. Errors name the key to fix.
pub fn tls_acceptor(s: &crate::config::ServerConfig) -> Result<Option<tokio_rustls::TlsAcceptor>> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let (cert, key) = (&s.tls_cert, &s.tls_key);
    match (cert.as_os_str().is_empty(), key.as_os_str().is_empty()) {
        (true, true) => return Ok(None),
        (false, false) => {}
        _ => anyhow::bail!(
            "keys `server.tls_cert` and `server.tls_key` go together: set both (PEM certificate chain and private key) to serve HTTPS, or neither for plain HTTP"
        ),
    }
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| {
            format!(
                "key `server.tls_cert`: cannot read PEM certificates from {}",
                cert.display()
            )
        })?;
    if certs.is_empty() {
        anyhow::bail!(
            "key `server.tls_cert`: {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            cert.display()
        );
    }
    let private = PrivateKeyDer::from_pem_file(key).with_context(|| {
        format!(
            "key `server.tls_key`: cannot read a PEM private key from {}",
            key.display()
        )
    })?;
    // ring, the provider reqwest and lettre already use here, chosen explicitly: rustls
    // refuses to guess when none is installed process-wide.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .context("keys `server.tls_cert` / `server.tls_key`: the private key does not match the certificate, or its type is not supported")?;
    // The listener speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
}

/// Raises the soft open-files limit to the hard limit: every connection, database connection
/// and file costs a descriptor, and distributions often start services with a soft limit of
/// 1024 or less.
fn raise_open_files_limit(max_connections: usize) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            tracing::debug!(limit, "open-files limit");
            // Connections plus the database pool, the embedded cluster's pipes, files.
            if limit < max_connections as u64 + 256 {
                tracing::warn!(
                    limit,
                    max_connections,
                    "the open-files limit is close to server.max_connections: lower server.max_connections or raise the hard limit (ulimit -Hn, LimitNOFILE=)"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not raise the open-files limit"),
    }
}

type GrpcHandle = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
);

/// Binds `receivers.otlp_grpc_listen` (empty: no gRPC receiver) and serves OTLP/gRPC until
/// the returned sender fires.
async fn start_otlp_grpc(
    cfg: &crate::config::ReceiversConfig,
    receivers: &crate::receivers::ReceiverState,
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
    let st = receivers.clone();
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
    let rate_metrics = metrics.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = tick.tick() => rate_metrics.record_rate_point(),
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
            Ok(report) => {
                metrics.maintenance.finished(&report);
                tracing::debug!(?report, "maintenance done");
            }
            Err(e) => {
                metrics.maintenance.failures.inc();
                tracing::warn!(error = %e, "maintenance failed; will retry");
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tokio::io::AsyncReadExt;

    /// Issue 9's scenario on loopback: a low open-files soft limit and more idle sockets than
    /// it allows. The limit is raised at start, idle sockets are closed after the header-read
    /// timeout, and a new client is answered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_new_request_is_answered_while_hundreds_of_idle_connections_are_open() {
        let (_, hard) = rlimit::Resource::NOFILE.get().unwrap();
        rlimit::Resource::NOFILE.set(256.min(hard), hard).unwrap();
        raise_open_files_limit(64);
        let (soft, _) = rlimit::Resource::NOFILE.get().unwrap();
        assert_eq!(soft, hard, "the soft open-files limit was not raised");

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = axum::Router::new().route("/ping", axum::routing::get(|| async { "pong" }));
        let limits = ConnectionLimits {
            header_read_timeout: Duration::from_millis(500),
            max_connections: 64,
            drain_timeout: Duration::from_secs(1),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_http(listener, router, limits, async move {
            let _ = stopped.await;
        }));

        // 300 clients that connect and send nothing, then one that asks. Bounded: without the
        // header-read timeout the listen queue fills and this would wait forever.
        let started = Instant::now();
        let (mut idle, answer) = tokio::time::timeout(Duration::from_secs(30), async {
            let mut idle = Vec::new();
            for _ in 0..300 {
                idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
            }
            let answer = reqwest::Client::new()
                .get(format!("http://{addr}/ping"))
                .timeout(Duration::from_secs(20))
                .send()
                .await;
            (idle, answer)
        })
        .await
        .expect("300 idle connections and one request were not served within 30 s");
        let answer = answer.expect("a new client is answered while idle connections are open");
        assert_eq!(answer.text().await.unwrap(), "pong");
        // 300 idle sockets, 64 at a time, each closed after 0.5 s: a few seconds at most.
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{:?}",
            started.elapsed()
        );

        // The server closed the idle ones (EOF or reset), it did not just stop reading them.
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(5), idle[0].read(&mut buf))
            .await
            .expect("an idle connection is closed by the server");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");

        // A keep-alive connection idle after its response is closed too.
        let mut kept = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut kept, b"GET /ping HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut got = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match kept.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        assert!(String::from_utf8_lossy(&got).contains("pong"));
        assert!(closed.is_ok(), "an idle keep-alive connection stayed open");

        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("the server stops")
            .unwrap();
    }
}
