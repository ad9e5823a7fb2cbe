//! The private PostgreSQL cluster pipewatch runs when no `DATABASE_URL` is given: finds the
//! machine's PostgreSQL server binaries, initialises a cluster on first use, starts it on a
//! loopback port, creates the `pipewatch` database, and stops it again.
//!
//! PostgreSQL refuses to run as root. When pipewatch runs as root, the cluster directory is
//! handed to the `postgres` system user and every binary runs through
//! `runuser -u postgres --`.
//!
//! Authentication: the cluster accepts only `scram-sha-256` (no `trust`), for the superuser
//! `pipewatch` with a random password kept in `password` (mode 0600) in the cluster directory
//! (itself mode 0700), so other local users can neither connect nor read the password.
//! Clusters made by earlier versions with `--auth=trust` are migrated on their next start: a
//! password is set and `pg_hba.conf`'s `trust` lines become `scram-sha-256`, then the server
//! reloads its configuration.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;
use thiserror::Error;
use tracing::{info, warn};

const SUPERUSER: &str = "pipewatch";
const DATABASE: &str = "pipewatch";
const SERVICE_USER: &str = "postgres";

#[derive(Debug, Error)]
pub enum EmbeddedError {
    #[error("no PostgreSQL server binaries (initdb, pg_ctl, postgres) found via pg_config, /usr/lib/postgresql/*/bin or PATH: install PostgreSQL server binaries (Debian/Ubuntu: apt-get install postgresql) or set DATABASE_URL to an existing server")]
    BinariesNotFound,

    #[error("pipewatch runs as root, and PostgreSQL refuses to run as root; the `postgres` system user it would run PostgreSQL as does not exist. Create it (useradd --system postgres) or set DATABASE_URL to an existing server")]
    NoServiceUser,

    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("`{command}` failed ({status}): {output}")]
    Command {
        command: String,
        status: String,
        output: String,
    },

    #[error("the cluster in {data_dir} was created by PostgreSQL {cluster_version}, but the binaries found are version {binary_version} ({bindir}); install PostgreSQL {cluster_version} or move the cluster away to start afresh")]
    VersionMismatch {
        data_dir: PathBuf,
        cluster_version: String,
        binary_version: String,
        bindir: PathBuf,
    },

    #[error("the embedded PostgreSQL cluster in {cluster} uses password authentication, but its password file {path} is missing or empty; restore it, or move the cluster away to start afresh")]
    PasswordMissing { cluster: PathBuf, path: PathBuf },

    #[error("the embedded PostgreSQL started on port {port} but cannot be reached: {source}; see its log {log}")]
    Connect {
        port: u16,
        log: PathBuf,
        #[source]
        source: sqlx::Error,
    },
}

/// Where the cluster's files live. `root` is owned by the user PostgreSQL runs as.
#[derive(Debug, Clone)]
struct ClusterPaths {
    root: PathBuf,
    pgdata: PathBuf,
    port_file: PathBuf,
    log: PathBuf,
    password_file: PathBuf,
}

impl ClusterPaths {
    fn new(root: PathBuf) -> Self {
        Self {
            pgdata: root.join("pgdata"),
            password_file: root.join("password"),
            port_file: root.join("port"),
            log: root.join("postgres.log"),
            root,
        }
    }
}

/// How to run the server binaries: directly, or as the `postgres` user when we are root.
#[derive(Debug, Clone)]
struct Runner {
    bindir: PathBuf,
    as_service_user: bool,
    cwd: PathBuf,
}

impl Runner {
    fn command(&self, program: &str) -> std::process::Command {
        let binary = self.bindir.join(program);
        let mut cmd = if self.as_service_user {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", SERVICE_USER, "--"]).arg(binary);
            c
        } else {
            std::process::Command::new(binary)
        };
        // The caller's working directory (e.g. /root) may be closed to the postgres user.
        cmd.current_dir(&self.cwd);
        cmd.stdin(std::process::Stdio::null());
        cmd
    }

    async fn run(&self, program: &str, args: &[&str]) -> Result<Output, EmbeddedError> {
        let cmd = self.command(program);
        let mut cmd = tokio::process::Command::from(cmd);
        cmd.args(args);
        let description = format!("{program} {}", args.join(" "));
        let out = cmd.output().await.map_err(|source| EmbeddedError::Io {
            what: "cannot run",
            path: self.bindir.join(program),
            source,
        })?;
        if !out.status.success() {
            return Err(EmbeddedError::Command {
                command: description,
                status: out.status.to_string(),
                output: tail(&out),
            });
        }
        Ok(out)
    }
}

fn tail(out: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = text.trim();
    let start = text.len().saturating_sub(2000);
    let start = (start..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_string()
}

/// A private PostgreSQL cluster started by pipewatch. Stopped by [`EmbeddedPostgres::stop`],
/// or (best effort, synchronously) when dropped.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    paths: ClusterPaths,
    runner: Runner,
    port: u16,
    /// The superuser's password (hex, so it needs no escaping in a URL).
    password: String,
    stop_on_drop: bool,
}

impl EmbeddedPostgres {
    /// Starts (initialising on first use) the cluster belonging to `data_dir`, or reuses one
    /// already running there, and makes sure database `pipewatch` exists.
    pub async fn start(data_dir: &Path) -> Result<EmbeddedPostgres, EmbeddedError> {
        Self::start_with(data_dir, &[]).await
    }

    /// Like `start`, with extra `postgresql.conf` settings written when the cluster is
    /// initialised (the test cluster trades durability for speed this way).
    pub(crate) async fn start_with(
        data_dir: &Path,
        settings: &[(&str, &str)],
    ) -> Result<EmbeddedPostgres, EmbeddedError> {
        let bindir = find_bindir().ok_or(EmbeddedError::BinariesNotFound)?;
        info!(bindir = %bindir.display(), "found PostgreSQL server binaries");
        let as_root = running_as_root(data_dir)?;
        std::fs::create_dir_all(data_dir).map_err(|source| EmbeddedError::Io {
            what: "cannot create data directory",
            path: data_dir.to_path_buf(),
            source,
        })?;
        let data_dir = data_dir
            .canonicalize()
            .map_err(|source| EmbeddedError::Io {
                what: "cannot resolve data directory",
                path: data_dir.to_path_buf(),
                source,
            })?;
        let mut root = data_dir.join("postgres");
        let mut owner = None;
        if as_root {
            let ids = service_user_ids().await?;
            owner = Some(ids);
            if !service_user_can_traverse(&data_dir).await {
                let hash = xxhash_rust::xxh3::xxh3_64(data_dir.as_os_str().as_encoded_bytes());
                let fallback = PathBuf::from(format!("/var/tmp/pipewatch-{:012x}", hash >> 16));
                warn!(
                    data_dir = %data_dir.display(),
                    cluster = %fallback.display(),
                    "the postgres user cannot reach the data directory; keeping the PostgreSQL cluster under /var/tmp instead"
                );
                root = fallback;
            }
            create_owned_dir(&root, Some(ids))?;
        } else {
            create_owned_dir(&root, None)?;
        }
        let paths = ClusterPaths::new(root.clone());
        let runner = Runner {
            bindir,
            as_service_user: as_root,
            cwd: root,
        };

        let binary_version = binary_major_version(&runner).await?;
        let initialised = paths.pgdata.join("PG_VERSION").exists();
        let password = match read_password(&paths) {
            Some(p) => p,
            // A trust cluster of an earlier version has no password yet; it gets one below.
            None if !initialised || cluster_trusts(&paths) => new_password(&paths, owner)?,
            None => {
                return Err(EmbeddedError::PasswordMissing {
                    cluster: paths.root.clone(),
                    path: paths.password_file.clone(),
                })
            }
        };
        match std::fs::read_to_string(paths.pgdata.join("PG_VERSION")) {
            Ok(v) if v.trim() != binary_version => {
                return Err(EmbeddedError::VersionMismatch {
                    data_dir: paths.pgdata.clone(),
                    cluster_version: v.trim().to_string(),
                    binary_version,
                    bindir: runner.bindir.clone(),
                })
            }
            Ok(_) => info!(pgdata = %paths.pgdata.display(), "reusing existing PostgreSQL cluster"),
            Err(_) => initdb(&runner, &paths, settings).await?,
        }

        let port = match running_port(&runner, &paths).await {
            Some(port) => {
                info!(port, "PostgreSQL is already running on this cluster (left by an earlier run); reusing it");
                port
            }
            None => start_server(&runner, &paths).await?,
        };
        let pg = EmbeddedPostgres {
            paths,
            runner,
            port,
            password,
            stop_on_drop: true,
        };
        if cluster_trusts(&pg.paths) {
            pg.require_passwords().await?;
        }
        pg.create_database().await?;
        Ok(pg)
    }

    /// `postgres://pipewatch:PASSWORD@127.0.0.1:PORT/pipewatch` (show it with
    /// `store::error::redact_url`).
    pub fn url(&self) -> String {
        self.url_for(DATABASE)
    }

    pub(crate) fn url_for(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    /// Migrates a cluster made with `--auth=trust`: sets the superuser's password (connecting
    /// while trust still applies), rewrites `pg_hba.conf` to `scram-sha-256` and reloads.
    async fn require_passwords(&self) -> Result<(), EmbeddedError> {
        use sqlx::Connection;
        let connect_err = |source| EmbeddedError::Connect {
            port: self.port,
            log: self.paths.log.clone(),
            source,
        };
        let mut conn = sqlx::PgConnection::connect(&self.url_for("postgres"))
            .await
            .map_err(connect_err)?;
        // Plain queries, not raw_sql: its future is not Send for every lifetime, which the
        // server's spawned start-up needs.
        let set_encryption = "SET password_encryption = 'scram-sha-256'";
        let set_password = format!("ALTER ROLE {SUPERUSER} PASSWORD '{}'", self.password);
        for sql in [set_encryption, set_password.as_str()] {
            sqlx::query(sql)
                .execute(&mut conn)
                .await
                .map_err(connect_err)?;
        }
        conn.close().await.ok();
        let hba = self.paths.pgdata.join("pg_hba.conf");
        let io = |source| EmbeddedError::Io {
            what: "cannot switch the cluster from trust to password authentication in",
            path: hba.clone(),
            source,
        };
        let text = std::fs::read_to_string(&hba).map_err(io)?;
        std::fs::write(&hba, without_trust(&text)).map_err(io)?;
        let pgdata = self.paths.pgdata.to_string_lossy().into_owned();
        self.runner
            .run("pg_ctl", &["-D", &pgdata, "reload"])
            .await?;
        info!(cluster = %self.paths.root.display(), "embedded PostgreSQL switched from trust to scram-sha-256 password authentication");
        Ok(())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where the cluster lives (the data dir's `postgres/`, or its /var/tmp fallback).
    pub fn cluster_dir(&self) -> &Path {
        &self.paths.root
    }

    /// Leaves the server running when this handle is dropped (the shared test cluster).
    #[cfg(feature = "testing")]
    pub(crate) fn keep_running(mut self) {
        self.stop_on_drop = false;
    }

    /// Stops the server (`pg_ctl -m fast stop`) and waits for it to exit.
    pub async fn stop(mut self) -> Result<(), EmbeddedError> {
        self.stop_on_drop = false;
        let pgdata = self.paths.pgdata.to_string_lossy().into_owned();
        self.runner
            .run("pg_ctl", &["-D", &pgdata, "-m", "fast", "-w", "stop"])
            .await?;
        info!(port = self.port, "stopped embedded PostgreSQL");
        Ok(())
    }

    async fn create_database(&self) -> Result<(), EmbeddedError> {
        use sqlx::Connection;
        let connect_err = |source| EmbeddedError::Connect {
            port: self.port,
            log: self.paths.log.clone(),
            source,
        };
        let mut conn = sqlx::PgConnection::connect(&self.url_for("postgres"))
            .await
            .map_err(connect_err)?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(DATABASE)
                .fetch_one(&mut conn)
                .await
                .map_err(connect_err)?;
        if !exists {
            match sqlx::query(&format!("CREATE DATABASE {DATABASE}"))
                .execute(&mut conn)
                .await
            {
                Ok(_) => info!(database = DATABASE, "created database"),
                // Another process sharing the cluster won the race.
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
                Err(e) => return Err(connect_err(e)),
            }
        }
        conn.close().await.ok();
        Ok(())
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        if !self.stop_on_drop {
            return;
        }
        let result = self
            .runner
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.paths.pgdata)
            .args(["-m", "fast", "-w", "stop"])
            .output();
        match result {
            Ok(out) if out.status.success() => {
                info!(port = self.port, "stopped embedded PostgreSQL")
            }
            Ok(out) => warn!(output = %tail(&out), "stopping embedded PostgreSQL failed"),
            Err(e) => warn!(error = %e, "stopping embedded PostgreSQL failed"),
        }
    }
}

/// `pg_config --bindir`, else the highest `/usr/lib/postgresql/*/bin`, else the directory of
/// `initdb` on PATH; each only if it holds initdb, pg_ctl and postgres.
fn find_bindir() -> Option<PathBuf> {
    let complete = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    if let Ok(out) = std::process::Command::new("pg_config")
        .arg("--bindir")
        .output()
    {
        if out.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if complete(&dir) {
                return Some(dir);
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<(Vec<u32>, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let version: Option<Vec<u32>> = name.split('.').map(|p| p.parse().ok()).collect();
                Some((version?, e.path().join("bin")))
            })
            .filter(|(_, bin)| complete(bin))
            .collect();
        versions.sort();
        if let Some((_, bin)) = versions.pop() {
            return Some(bin);
        }
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("initdb"))
        .find(|initdb| initdb.is_file())
        .and_then(|initdb| initdb.canonicalize().ok())
        .and_then(|initdb| initdb.parent().map(Path::to_path_buf))
        .filter(|dir| complete(dir))
}

/// The workspace forbids `unsafe`, so no geteuid(): the owner of /proc/self is our uid.
fn running_as_root(data_dir: &Path) -> Result<bool, EmbeddedError> {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .map_err(|source| EmbeddedError::Io {
            what: "cannot tell which user runs pipewatch (reading /proc/self) before starting PostgreSQL for",
            path: data_dir.to_path_buf(),
            source,
        })
}

async fn service_user_ids() -> Result<(u32, u32), EmbeddedError> {
    let id = |flag: &'static str| async move {
        let out = tokio::process::Command::new("id")
            .args([flag, SERVICE_USER])
            .output()
            .await
            .ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u32>()
            .ok()
    };
    match (id("-u").await, id("-g").await) {
        (Some(uid), Some(gid)) => Ok((uid, gid)),
        _ => Err(EmbeddedError::NoServiceUser),
    }
}

/// Whether the postgres user can reach `dir` (asks the kernel rather than re-deriving
/// permission rules: `test -x` fails unless every ancestor is searchable).
async fn service_user_can_traverse(dir: &Path) -> bool {
    tokio::process::Command::new("runuser")
        .args(["-u", SERVICE_USER, "--", "test", "-x"])
        .arg(dir)
        .current_dir("/")
        .output()
        .await
        .is_ok_and(|o| o.status.success())
}

fn create_owned_dir(dir: &Path, owner: Option<(u32, u32)>) -> Result<(), EmbeddedError> {
    std::fs::create_dir_all(dir).map_err(|source| EmbeddedError::Io {
        what: "cannot create the PostgreSQL cluster directory",
        path: dir.to_path_buf(),
        source,
    })?;
    // Holds the password file and the server's data: nobody else's business.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|source| {
        EmbeddedError::Io {
            what: "cannot restrict access (mode 0700) to the PostgreSQL cluster directory",
            path: dir.to_path_buf(),
            source,
        }
    })?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(dir, Some(uid), Some(gid)).map_err(|source| {
            EmbeddedError::Io {
                what: "cannot hand the PostgreSQL cluster directory to the postgres user",
                path: dir.to_path_buf(),
                source,
            }
        })?;
    }
    Ok(())
}

fn read_password(paths: &ClusterPaths) -> Option<String> {
    std::fs::read_to_string(&paths.password_file)
        .ok()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
}

/// Writes a new random password (192 bits, hex) to the password file, mode 0600, owned by
/// the user PostgreSQL runs as (initdb reads it from there).
fn new_password(paths: &ClusterPaths, owner: Option<(u32, u32)>) -> Result<String, EmbeddedError> {
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let password: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let io = |source| EmbeddedError::Io {
        what: "cannot write the PostgreSQL password file",
        path: paths.password_file.clone(),
        source,
    };
    use std::io::Write;
    let _ = std::fs::remove_file(&paths.password_file);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&paths.password_file)
        .map_err(io)?;
    f.write_all(format!("{password}\n").as_bytes())
        .map_err(io)?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&paths.password_file, Some(uid), Some(gid)).map_err(io)?;
    }
    Ok(password)
}

/// Whether `pg_hba.conf` lets anyone in without a password (clusters of earlier versions).
fn cluster_trusts(paths: &ClusterPaths) -> bool {
    std::fs::read_to_string(paths.pgdata.join("pg_hba.conf"))
        .is_ok_and(|t| t.lines().any(|l| hba_method(l) == Some("trust")))
}

/// The authentication method of a pg_hba.conf line (its last field before options), if the
/// line is a rule.
fn hba_method(line: &str) -> Option<&str> {
    let rule = line.split('#').next()?.trim();
    if rule.is_empty() || rule.starts_with("include") {
        return None;
    }
    rule.split_whitespace().find(|f| {
        matches!(
            *f,
            "trust" | "reject" | "scram-sha-256" | "md5" | "password" | "peer" | "ident" | "cert"
        )
    })
}

/// pg_hba.conf with every `trust` rule changed to `scram-sha-256`.
fn without_trust(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if hba_method(line) == Some("trust") {
            let rule_end = line.find('#').unwrap_or(line.len());
            let (rule, comment) = line.split_at(rule_end);
            let fields: Vec<&str> = rule
                .split_whitespace()
                .map(|f| if f == "trust" { "scram-sha-256" } else { f })
                .collect();
            out.push_str(&fields.join(" "));
            if !comment.is_empty() {
                out.push(' ');
                out.push_str(comment);
            }
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// Major version of the binaries, as PG_VERSION spells it ("15", "9.6").
async fn binary_major_version(runner: &Runner) -> Result<String, EmbeddedError> {
    let out = runner.run("pg_ctl", &["--version"]).await?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "pg_ctl (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)"
    let version = text
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or("");
    let parts: Vec<&str> = version.split('.').collect();
    let major = match parts.first().and_then(|p| p.parse::<u32>().ok()) {
        Some(m) if m >= 10 => m.to_string(),
        Some(m) => format!("{m}.{}", parts.get(1).unwrap_or(&"0")),
        None => version.to_string(),
    };
    Ok(major)
}

async fn initdb(
    runner: &Runner,
    paths: &ClusterPaths,
    settings: &[(&str, &str)],
) -> Result<(), EmbeddedError> {
    let pgdata = paths.pgdata.to_string_lossy().into_owned();
    let pwfile = format!("--pwfile={}", paths.password_file.to_string_lossy());
    runner
        .run(
            "initdb",
            &[
                "-D",
                &pgdata,
                "--auth=scram-sha-256",
                &pwfile,
                "--username",
                SUPERUSER,
                "--encoding=UTF8",
                "--locale=C",
            ],
        )
        .await?;
    // Loopback TCP only; no Unix socket, whose default directory may not exist or be
    // writable, and whose path length is limited.
    let mut conf = String::from(
        "\n# pipewatch embedded cluster\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n",
    );
    for (k, v) in settings {
        conf.push_str(&format!("{k} = {v}\n"));
    }
    let conf_path = paths.pgdata.join("postgresql.conf");
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&conf_path)
        .and_then(|mut f| f.write_all(conf.as_bytes()))
        .map_err(|source| EmbeddedError::Io {
            what: "cannot configure the cluster in",
            path: conf_path,
            source,
        })?;
    info!(pgdata = %paths.pgdata.display(), "initialised PostgreSQL cluster");
    Ok(())
}

/// The port of a server already running on this cluster, read from postmaster.pid.
async fn running_port(runner: &Runner, paths: &ClusterPaths) -> Option<u16> {
    let pgdata = paths.pgdata.to_string_lossy().into_owned();
    runner
        .run("pg_ctl", &["-D", &pgdata, "status"])
        .await
        .ok()?;
    let pid_file = std::fs::read_to_string(paths.pgdata.join("postmaster.pid")).ok()?;
    // Line 4 of postmaster.pid is the port.
    pid_file.lines().nth(3)?.trim().parse().ok()
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).is_ok()
}

fn pick_port(paths: &ClusterPaths) -> Result<u16, EmbeddedError> {
    if let Some(port) = std::fs::read_to_string(&paths.port_file)
        .ok()
        .and_then(|s| s.trim().parse::<u16>().ok())
        .filter(|&p| p != 0 && port_is_free(p))
    {
        return Ok(port);
    }
    let io = |source| EmbeddedError::Io {
        what: "cannot find a free loopback port for PostgreSQL; writing",
        path: paths.port_file.clone(),
        source,
    };
    let port = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map_err(io)?
        .port();
    std::fs::write(&paths.port_file, format!("{port}\n")).map_err(io)?;
    Ok(port)
}

async fn start_server(runner: &Runner, paths: &ClusterPaths) -> Result<u16, EmbeddedError> {
    let pgdata = paths.pgdata.to_string_lossy().into_owned();
    let log = paths.log.to_string_lossy().into_owned();
    let mut last_err = None;
    // Another process may grab the port between our check and the server's bind.
    for _ in 0..3 {
        let port = pick_port(paths)?;
        let options = format!("-p {port}");
        match runner
            .run(
                "pg_ctl",
                &[
                    "-D", &pgdata, "-l", &log, "-w", "-t", "120", "-o", &options, "start",
                ],
            )
            .await
        {
            Ok(_) => {
                info!(port, log = %log, "started embedded PostgreSQL");
                return Ok(port);
            }
            Err(e) => {
                warn!(port, error = %e, "starting PostgreSQL failed; see {log}");
                let _ = std::fs::remove_file(&paths.port_file);
                last_err = Some(e);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    // pg_ctl only says that the server did not start; the reason is in the server log.
    Err(match last_err.expect("at least one attempt") {
        EmbeddedError::Command {
            command,
            status,
            output,
        } => EmbeddedError::Command {
            command,
            status,
            output: format!("{output}\n--- end of {log} ---\n{}", log_tail(&paths.log)),
        },
        other => other,
    })
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_rules_become_scram_and_the_rest_is_kept() {
        let text = "# TYPE DATABASE USER ADDRESS METHOD\n\
                    # \"local\" is for Unix domain socket connections only\n\
                    local   all             all                                     trust\n\
                    host    all             all             127.0.0.1/32            trust # loopback\n\
                    host    replication     all             ::1/128                 scram-sha-256\n";
        let out = without_trust(text);
        assert!(
            !out.lines().any(|l| hba_method(l) == Some("trust")),
            "{out}"
        );
        assert!(out.contains("local all all scram-sha-256\n"), "{out}");
        assert!(
            out.contains("host all all 127.0.0.1/32 scram-sha-256 # loopback"),
            "{out}"
        );
        assert!(out.contains("# \"local\" is for Unix domain socket connections only"));
        assert!(out.contains("::1/128                 scram-sha-256"));
    }
}
