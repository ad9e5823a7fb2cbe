//! Shared helpers for the integration tests: real HTTP peers on 127.0.0.1, the pipewatch
//! binary, and a server state over a fresh real database.

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// Serves `router` on a free loopback port for the rest of the test process.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// Scrape targets that misbehave in the ways real ones do, plus a good one, on one server:
/// `/good` (node_exporter capture), `/openmetrics`, `/garbage`, `/missing` (404), `/slow` (5 s).
pub async fn exporter_zoo() -> SocketAddr {
    let node = Arc::new(fixture("node_exporter.txt"));
    let om = Arc::new(fixture("python_client.openmetrics.txt"));
    let router = Router::new()
        .route(
            "/good",
            get(move || {
                let body = node.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        (*body).clone(),
                    )
                }
            }),
        )
        .route(
            "/openmetrics",
            get(move || {
                let body = om.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        (*body).clone(),
                    )
                }
            }),
        )
        .route(
            "/garbage",
            get(|| async { "this is {not metrics\n\u{1}\u{2}" }),
        )
        .route(
            "/missing",
            get(|| async { (StatusCode::NOT_FOUND, "404 page not found").into_response() }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "up 1\n"
            }),
        );
    serve(router).await
}

/// The `pipewatch` binary built next to this test (`cargo build -p pipewatch` comes first in
/// scripts/test.sh; the binary is the cli/ crate).
pub fn pipewatch_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test binary> -> target/<profile>/pipewatch
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target profile dir");
    let bin = dir.join("pipewatch");
    assert!(
        bin.exists(),
        "{} not found: build it first with `cargo build -p pipewatch --bin pipewatch`",
        bin.display()
    );
    bin
}

/// GET `url` and return the body as text; panics with the URL on failure (tests only).
pub async fn get_text(url: &str) -> String {
    let resp = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    resp.text()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: reading body: {e}"))
}

pub use model::clock::now_ms;

/// A state over a fresh database, with a queue of `capacity` samples and one writer.
pub async fn state(capacity: usize) -> (server::AppState, server::ingest::BatchWriters, String) {
    let url = store::testing::fresh_database_url().await;
    let store = store::Store::connect(&url, store::StoreConfig::default())
        .await
        .expect("connect");
    let metrics = Arc::new(server::telemetry::SelfMetrics::new());
    let (queue, writers) = server::ingest::start(
        Arc::new(store.clone()),
        capacity,
        server::ingest::WriterConfig {
            batch_max_samples: 10_000,
            flush_interval: Duration::from_millis(50),
            flush_idle: server::ingest::FLUSH_WHEN_IDLE_FOR,
            writers: 1,
        },
        metrics.clone(),
    );
    let st = server::AppState {
        store,
        queue,
        metrics,
        board: server::scrape_manager::TargetHealthBoard::default(),
        started_at: 0,
        // Replayed captures keep the timestamps they were captured with: a century of
        // retention keeps them inside the intake window however old the capture gets. Tests
        // of the window set their own.
        retention_days: 36_500,
        database: "test".into(),
        receivers: Default::default(),
        guard: Default::default(),
        query_limits: Default::default(),
        // Tests whose subject is not auth act as an anonymous admin; tests/tests/authz.rs
        // sets its own.
        auth: Arc::new(server::auth::AuthSettings::anonymous(Some(
            model::auth::Role::Admin,
        ))),
        oncall: Default::default(),
        channels: Default::default(),
    };
    (st, writers, url)
}

/// The Python interpreter of the test virtualenv that `scripts/setup.sh --test` fills from
/// tests/python/requirements.txt (OpenTelemetry SDK, openlineage-python). Panics with the fix
/// when it is missing: the live-client tests must not pass by skipping.
pub fn python() -> PathBuf {
    let venv = std::env::var_os("PIPEWATCH_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/pipewatch/venv")
        });
    let py = venv.join("bin/python");
    assert!(
        py.exists(),
        "{} not found: run scripts/setup.sh --test to install the Python test clients",
        py.display()
    );
    py
}

/// Path of a file under tests/python/.
pub fn python_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(name)
}

/// Debian's `prometheus` (installed by `scripts/setup.sh --test`), run on its own temp dir
/// and a free loopback port; killed, and its dir removed, when dropped however the test ends.
pub struct Prometheus {
    /// `127.0.0.1:<port>` of its web API.
    pub addr: String,
    pub dir: PathBuf,
    child: std::process::Child,
}

impl Prometheus {
    /// Writes the files `files(dir)` returns (at least `prometheus.yml`) into a fresh
    /// `$TMPDIR/<name>-<pid>` and starts Prometheus on them with `extra_args`.
    pub fn start(
        name: &str,
        extra_args: &[&str],
        files: impl FnOnce(&std::path::Path) -> Vec<(&'static str, String)>,
    ) -> Prometheus {
        let binary = std::env::var_os("PATH")
            .and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join("prometheus"))
                    .find(|p| p.is_file())
            })
            .unwrap_or_else(|| {
                panic!("the `prometheus` binary is not on PATH; run scripts/setup.sh --test (it installs Debian's prometheus)")
            });
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (file, text) in files(&dir) {
            std::fs::write(dir.join(file), text).unwrap();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = std::process::Command::new(&binary)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .args(extra_args)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        Prometheus { addr, dir, child }
    }

    /// True once the process has ended (its log says why).
    pub fn has_exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    /// Everything it logged so far, for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `pipewatch serve` process a test started from a config file, up and ready; killed when
/// dropped (tests that stop it on purpose call [`Pipewatch::terminate`]).
pub struct Pipewatch {
    child: Option<std::process::Child>,
    /// `127.0.0.1:<port>`: where it listens (the config asks for port 0).
    pub addr: String,
    /// Its standard output after the "pipewatch is up" line.
    stdout: Option<std::io::BufReader<std::process::ChildStdout>>,
}

impl Pipewatch {
    /// Writes `config` to `dir/pipewatch.toml`, runs `pipewatch --config <it> serve` (without
    /// `DATABASE_URL` from the environment, `PIPEWATCH_LOG=info`, standard error to `stderr`),
    /// reads the address from its "pipewatch is up" line and waits until `/readyz` answers 200.
    /// Panics with what it saw when that takes over 60 s.
    pub async fn start(
        dir: &std::path::Path,
        config: &str,
        stderr: std::process::Stdio,
    ) -> Pipewatch {
        use std::io::BufRead;
        let cfg = dir.join("pipewatch.toml");
        std::fs::write(&cfg, config).unwrap();
        let mut child = std::process::Command::new(pipewatch_bin())
            .args(["--config", cfg.to_str().unwrap(), "serve"])
            .env_remove("DATABASE_URL")
            .env("PIPEWATCH_LOG", "info")
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start pipewatch");
        // The first line is read on a thread so a server that never prints it fails the
        // test after a deadline instead of hanging it.
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = out.read_line(&mut line);
            let _ = tx.send((line, out));
        });
        let mut server = Pipewatch {
            child: Some(child),
            addr: String::new(),
            stdout: None,
        };
        let (line, out) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("pipewatch printed no line within 60 s");
        server.stdout = Some(out);
        assert!(line.contains("pipewatch is up"), "{line}");
        server.addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        let ready = format!("{}/readyz", server.base());
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let answer = reqwest::Client::new()
                .get(&ready)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            match answer {
                Ok(r) if r.status() == StatusCode::OK => break,
                other => assert!(
                    std::time::Instant::now() < deadline,
                    "{ready} not ready within 60 s: {other:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The process id (for `/proc/<pid>/status` or signals).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends SIGTERM, waits for the exit, and returns its status and the rest of standard
    /// output (the shutdown report).
    pub fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let mut child = self.child.take().expect("running");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let exit = child.wait().expect("wait for pipewatch");
        let mut rest = String::new();
        if let Some(mut out) = self.stdout.take() {
            std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
        }
        (exit, rest)
    }
}

impl Drop for Pipewatch {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One stored sample row, fresh or decoded from a compacted chunk: (metric, labels as JSON
/// text, timestamp ms, value). A re-sent sample not yet compacted is one row per copy, so
/// tests can count duplicates the way the database holds them.
pub type StoredRow = (String, String, i64, f64);

/// Every sample row in the database at `url`: the fresh `samples` table plus every
/// `sample_chunks` row decoded (see `store::chunk`), ordered by metric, labels and time.
/// Tests use this instead of `SELECT .. FROM samples`, which misses what maintenance compacted.
pub async fn stored_rows(url: &str) -> Vec<StoredRow> {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let mut rows: Vec<StoredRow> = sqlx::query_as(
        "SELECT s.metric, s.labels::text, (extract(epoch FROM x.ts) * 1000)::bigint, x.value \
         FROM samples x JOIN series s ON s.id = x.series_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    // metric, labels, count, timestamps, values
    type ChunkRow = (String, String, i32, Vec<u8>, Vec<u8>);
    let chunks: Vec<ChunkRow> = sqlx::query_as(
        "SELECT s.metric, s.labels::text, c.n, c.ts_data, c.val_data \
         FROM sample_chunks c JOIN series s ON s.id = c.series_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    for (metric, labels, n, ts, vals) in chunks {
        for (t, v) in store::chunk::decode(n, &ts, &vals).unwrap() {
            rows.push((metric.clone(), labels.clone(), t, v));
        }
    }
    rows.sort_by(|a, b| (&a.0, &a.1, a.2).cmp(&(&b.0, &b.1, b.2)));
    rows
}

/// A fresh, empty directory under the system temp dir for one test (`<prefix>-<name>-<pid>`).
pub fn temp_dir(prefix: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("{prefix}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Polls `$cond` every 200 ms until it holds, failing the test after `$timeout` naming `$what`.
#[macro_export]
macro_rules! wait_until {
    ($what:expr, $timeout:expr, $cond:expr) => {{
        let start = std::time::Instant::now();
        loop {
            if $cond {
                break;
            }
            assert!(
                start.elapsed() < $timeout,
                "timed out after {:?} waiting for {}",
                $timeout,
                $what
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }};
}

/// A logged-in user of a running server: its session cookie and CSRF token.
pub struct Session {
    pub base: String,
    pub cookie: String,
    pub csrf: String,
}

impl Session {
    /// Logs `user` in at `base` (`http://127.0.0.1:port`).
    pub async fn login(base: &str, user: &str, password: &str) -> Session {
        let r = reqwest::Client::new()
            .post(format!("{base}/login"))
            .json(&serde_json::json!({"user": user, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "login of {user}");
        let cookie = r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let v: serde_json::Value = r.json().await.unwrap();
        Session {
            base: base.to_string(),
            cookie,
            csrf: v["data"]["csrf_token"].as_str().unwrap().to_string(),
        }
    }

    /// Calls a server function with form fields; `csrf: false` leaves the token out.
    pub async fn call(&self, endpoint: &str, fields: &[(&str, &str)], csrf: bool) -> (u16, String) {
        let mut req = reqwest::Client::new()
            .post(format!("{}/app-fn/{endpoint}", self.base))
            .header("cookie", &self.cookie)
            .form(fields);
        if csrf {
            req = req.header("x-csrf-token", &self.csrf);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// A JSON API answer.
    pub async fn get(&self, path: &str) -> serde_json::Value {
        reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A page as HTML: status and body.
    pub async fn page(&self, path: &str) -> (u16, String) {
        let r = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}
