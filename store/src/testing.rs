//! Test-database support for the test suites of every crate (cargo feature `testing`).
//!
//! Each call to [`fresh_database_url`] returns a brand-new, empty database, so tests run in
//! parallel (nextest runs each in its own process) and never share state.

use crate::embedded::EmbeddedPostgres;
use sqlx::Connection;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Prefix of every database created here; the private cluster drops those whose creating
/// process has exited.
const DB_PREFIX: &str = "pw_test_";

/// The shared private cluster's directory. The name changed when the embedded cluster moved
/// from trust to password authentication, so test runs of older checkouts on the same machine
/// keep their own (trust) cluster instead of finding this one locked to them.
pub fn test_cluster_dir() -> std::path::PathBuf {
    std::env::temp_dir().join("pipewatch-test-cluster-scram")
}

/// A URL of a new, empty database.
///
/// With `DATABASE_URL` set, the database is created on that server (the user needs
/// CREATEDB) and left there afterwards (drop `pw_test_*` databases when done). Otherwise one private cluster under `$TMPDIR/pipewatch-test-cluster` is
/// started (or reused) and left running for the next test process.
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
    if let Ok(server) = std::env::var("DATABASE_URL") {
        if !server.trim().is_empty() {
            create_database(&server, &name, false).await?;
            return Ok(with_database(&server, &name));
        }
    }
    let cluster = start_shared_cluster().await?;
    let admin = cluster.url_for("postgres");
    let url = cluster.url_for(&name);
    cluster.keep_running();
    create_database(&admin, &name, true).await?;
    Ok(url)
}

fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{DB_PREFIX}{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
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
    let settings = [
        ("fsync", "off"),
        ("synchronous_commit", "off"),
        ("full_page_writes", "off"),
        ("max_connections", "400"),
        ("shared_buffers", "'128MB'"),
    ];
    let result = EmbeddedPostgres::start_with(&dir, &settings)
        .await
        .map_err(|e| e.to_string());
    drop(lock_file);
    result
}

async fn create_database(admin_url: &str, name: &str, reap: bool) -> Result<(), String> {
    let shown = crate::error::redact_url(admin_url);
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .map_err(|e| format!("cannot connect to {shown}: {e}; is the server running?"))?;
    if reap {
        drop_databases_of_exited_processes(&mut conn).await;
    }
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .map_err(|e| format!("cannot create database {name} on {shown}: {e}"))?;
    conn.close().await.ok();
    Ok(())
}

/// Keeps the shared cluster from filling up: a test database whose creating process is gone
/// is never used again.
async fn drop_databases_of_exited_processes(conn: &mut sqlx::PgConnection) {
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
