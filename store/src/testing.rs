//! Test-database support for the test suites of every crate (cargo feature `testing`).
//!
//! Each call to [`fresh_database_url`] returns a brand-new, empty database, so tests run in
//! parallel (nextest runs each in its own process) and never share state.
//!
//! # TimescaleDB mode
//!
//! With [`TIMESCALEDB_ENV`] (`PIPEWATCH_TEST_TIMESCALEDB=1`) every test database gets the
//! TimescaleDB extension, so the store takes its TimescaleDB mode (migration 0002); a test
//! database that cannot have it fails the test instead of quietly testing the plain mode. The
//! server is `DATABASE_URL`'s, or else a private cluster of its own
//! (`$TMPDIR/pipewatch-test-cluster-tsdb`) started with the TimescaleDB library preloaded from
//! the PostgreSQL whose `pg_config` is first on PATH (see the README). A `DATABASE_URL` to a
//! server that preloads TimescaleDB gives the same mode without the variable. Tests assert
//! the mode they expect with [`expected_mode`].
//!
//! Every database with the extension starts a TimescaleDB scheduler, and a server runs only
//! so many background workers, so databases of exited test processes are dropped when the
//! next one is made, on a `DATABASE_URL` server too (there only those made on this machine
//! since it booted, by name, so other machines' test databases are left alone).

use crate::embedded::EmbeddedPostgres;
use sqlx::Connection;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Prefix of every database created here; the private cluster drops those whose creating
/// process has exited.
const DB_PREFIX: &str = "pw_test_";

/// Set (to anything but empty or `0`) to run the tests in TimescaleDB mode; see the module
/// documentation.
pub const TIMESCALEDB_ENV: &str = "PIPEWATCH_TEST_TIMESCALEDB";

/// Whether [`TIMESCALEDB_ENV`] asks for TimescaleDB mode.
pub fn timescaledb_requested() -> bool {
    std::env::var(TIMESCALEDB_ENV).is_ok_and(|v| !v.trim().is_empty() && v.trim() != "0")
}

/// The storage mode a store on a test database takes: TimescaleDB when
/// [`TIMESCALEDB_ENV`] asks for it or the `DATABASE_URL` server preloads the extension,
/// else plain PostgreSQL. Tests assert per mode with this rather than skip.
pub async fn expected_mode() -> crate::StorageMode {
    if timescaledb_requested() {
        return crate::StorageMode::TimescaleDb;
    }
    let Some(server) = database_url() else {
        return crate::StorageMode::Postgres;
    };
    let mut conn = sqlx::PgConnection::connect(&server)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to DATABASE_URL: {e}"));
    let preloaded: bool = sqlx::query_scalar(
        "SELECT current_setting('shared_preload_libraries') LIKE '%timescaledb%' \
         AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("cannot ask DATABASE_URL's server about TimescaleDB: {e}"));
    conn.close().await.ok();
    if preloaded {
        crate::StorageMode::TimescaleDb
    } else {
        crate::StorageMode::Postgres
    }
}

fn database_url() -> Option<String> {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// The shared private cluster's directory. The name changed when the embedded cluster moved
/// from trust to password authentication, so test runs of older checkouts on the same machine
/// keep their own (trust) cluster instead of finding this one locked to them. TimescaleDB
/// mode has a cluster of its own (other binaries, other settings).
pub fn test_cluster_dir() -> std::path::PathBuf {
    if timescaledb_requested() {
        std::env::temp_dir().join("pipewatch-test-cluster-tsdb")
    } else {
        std::env::temp_dir().join("pipewatch-test-cluster-scram")
    }
}

/// A URL of a new, empty database.
///
/// With `DATABASE_URL` set, the database is created on that server (the user needs
/// CREATEDB). Otherwise one private cluster under `$TMPDIR` ([`test_cluster_dir`]) is
/// started (or reused) and left running for the next test process. Either way, databases
/// this machine made for test processes that have exited are dropped first (see the module
/// documentation). In TimescaleDB mode the database gets the extension.
///
/// Panics with an explanation when no database can be had: this is for tests.
pub async fn fresh_database_url() -> String {
    match try_fresh_database_url().await {
        Ok(url) => url,
        Err(e) => panic!("cannot get a test database: {e}"),
    }
}

/// Like [`fresh_database_url`], returning the failure instead of panicking.
pub async fn try_fresh_database_url() -> Result<String, String> {
    let name = unique_name();
    let url = if let Some(server) = database_url() {
        create_database(&server, &name, Reap::MadeHere).await?;
        with_database(&server, &name)
    } else {
        let cluster = start_shared_cluster().await?;
        let admin = cluster.url_for("postgres");
        let url = cluster.url_for(&name);
        cluster.keep_running();
        create_database(&admin, &name, Reap::All).await?;
        url
    };
    if timescaledb_requested() {
        add_timescaledb(&url).await?;
    }
    Ok(url)
}

/// Creates the extension in the new database, so the store's migration finds it there
/// rather than falling back to plain mode without a word.
async fn add_timescaledb(url: &str) -> Result<(), String> {
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .map_err(|e| format!("cannot connect to the new test database: {e}"))?;
    sqlx::query("CREATE EXTENSION IF NOT EXISTS timescaledb")
        .execute(&mut conn)
        .await
        .map_err(|e| {
            format!(
                "{TIMESCALEDB_ENV} is set, but the test database cannot have TimescaleDB: {e}; \
                 put the bin directory of a PostgreSQL with TimescaleDB installed first on PATH \
                 (the private test cluster takes the binaries of the first pg_config), or set \
                 DATABASE_URL to a server with shared_preload_libraries = 'timescaledb'"
            )
        })?;
    conn.close().await.ok();
    Ok(())
}

/// Which leftover test databases [`create_database`] drops.
#[derive(Clone, Copy, PartialEq)]
enum Reap {
    /// Every one whose process has exited: the private cluster is this machine's alone.
    All,
    /// Only those made on this machine since it booted (their names end in [`boot_tag`]),
    /// on a server that other machines may share.
    MadeHere,
}

/// A short tag of this boot of this machine (from the kernel's boot id), so process ids in
/// database names are only compared with this machine's processes.
fn boot_tag() -> String {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let tag: String = id.chars().filter(char::is_ascii_hexdigit).take(8).collect();
    if tag.is_empty() {
        "noboot".to_string()
    } else {
        tag
    }
}

fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{DB_PREFIX}{}_{}_{nanos}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        boot_tag()
    )
}

/// Starts or reuses the shared cluster. A file lock serialises test processes, so exactly
/// one of them runs initdb and starts the server.
async fn start_shared_cluster() -> Result<EmbeddedPostgres, String> {
    let dir = test_cluster_dir();
    let lock_path = std::env::temp_dir().join("pipewatch-test-cluster-scram.lock");
    let lock_file = tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("cannot open lock file {}: {e}", lock_path.display()))?;
        file.lock()
            .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
        Ok::<_, String>(file)
    })
    .await
    .map_err(|e| e.to_string())??;
    // Tests need neither durability nor the default connection limit of 100.
    let mut settings = vec![
        ("fsync", "off"),
        ("synchronous_commit", "off"),
        ("full_page_writes", "off"),
        ("max_connections", "400"),
        ("shared_buffers", "'128MB'"),
    ];
    if timescaledb_requested() {
        // One scheduler per database with the extension, plus its jobs.
        settings.extend([
            ("shared_preload_libraries", "'timescaledb'"),
            ("max_worker_processes", "24"),
            ("timescaledb.max_background_workers", "16"),
            ("timescaledb.telemetry_level", "off"),
        ]);
    }
    let result = EmbeddedPostgres::start_with(&dir, &settings)
        .await
        .map_err(|e| {
            if timescaledb_requested() {
                format!("{e} ({TIMESCALEDB_ENV} is set: the cluster needs a PostgreSQL with TimescaleDB installed, found through the first pg_config on PATH)")
            } else {
                e.to_string()
            }
        });
    drop(lock_file);
    result
}

async fn create_database(admin_url: &str, name: &str, reap: Reap) -> Result<(), String> {
    let shown = crate::error::redact_url(admin_url);
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .map_err(|e| format!("cannot connect to {shown}: {e}; is the server running?"))?;
    drop_databases_of_exited_processes(&mut conn, reap).await;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .map_err(|e| format!("cannot create database {name} on {shown}: {e}"))?;
    conn.close().await.ok();
    Ok(())
}

/// Keeps the shared cluster from filling up: a test database whose creating process is gone
/// is never used again.
async fn drop_databases_of_exited_processes(conn: &mut sqlx::PgConnection, reap: Reap) {
    let tag = format!("_{}", boot_tag());
    let names: Vec<String> =
        match sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE datname LIKE $1")
            .bind(format!("{DB_PREFIX}%"))
            .fetch_all(&mut *conn)
            .await
        {
            Ok(n) => n,
            Err(_) => return,
        };
    for name in names {
        if reap == Reap::MadeHere && !name.ends_with(&tag) {
            continue;
        }
        let pid = name[DB_PREFIX.len()..].split('_').next().unwrap_or("");
        if pid.is_empty() || std::path::Path::new("/proc").join(pid).exists() {
            continue;
        }
        // Best effort: a concurrent process may be dropping the same one.
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut *conn)
            .await;
    }
}

/// `url` with its database name replaced by `name` (query parameters kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.find('?') {
        Some(i) => (&url[..i], &url[i..]),
        None => (url, ""),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    format!("{base}/{name}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_only_the_path() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/app?sslmode=disable", "x"),
            "postgres://u:p@h:5432/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
        assert_eq!(with_database("postgres://h/", "x"), "postgres://h/x");
    }
}
