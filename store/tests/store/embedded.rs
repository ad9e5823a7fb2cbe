//! The embedded PostgreSQL cluster: start, stop, start again on the same data directory.

use sqlx::Connection;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use store::EmbeddedPostgres;

fn scratch_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("pipewatch-embedded-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test]
async fn cluster_survives_stop_and_start_with_its_data_and_port() {
    let dir = scratch_dir("restart");
    let pg = EmbeddedPostgres::start(&dir).await.unwrap();
    let url = pg.url();
    assert!(
        url.starts_with("postgres://pipewatch:") && url.ends_with("/pipewatch"),
        "{}",
        store::error::redact_url(&url)
    );
    let port = pg.port();
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    // A second start while it runs reuses the running server.
    let again = EmbeddedPostgres::start(&dir).await.unwrap();
    assert_eq!(again.port(), port);
    std::mem::forget(again); // the first handle owns the shutdown

    pg.stop().await.unwrap();
    assert!(
        sqlx::PgConnection::connect(&url).await.is_err(),
        "server still up after stop"
    );

    let pg = EmbeddedPostgres::start(&dir).await.unwrap();
    assert_eq!(pg.port(), port, "the remembered port is reused while free");
    let mut conn = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
    let v: i32 = sqlx::query_scalar("SELECT v FROM kept")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(v, 42);
    conn.close().await.unwrap();

    // Dropping the handle stops the server too.
    let url = pg.url();
    drop(pg);
    assert!(
        sqlx::PgConnection::connect(&url).await.is_err(),
        "server still up after drop"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// As root, PostgreSQL runs as the `postgres` user, which cannot enter a 0700 directory of
/// root's: the cluster moves to /var/tmp. As anyone else, pipewatch runs PostgreSQL itself and
/// the cluster stays inside the data directory. Either way it starts, answers, and comes back
/// to the same place.
#[tokio::test]
async fn a_data_dir_closed_to_the_postgres_user_moves_the_cluster_only_as_root() {
    let as_root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
    let closed = scratch_dir("closed");
    std::fs::create_dir_all(&closed).unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
    let data_dir = closed.join("data");
    let pg = EmbeddedPostgres::start(&data_dir).await.unwrap();
    let cluster = pg.cluster_dir().to_path_buf();
    if as_root {
        assert!(cluster.starts_with("/var/tmp"), "{}", cluster.display());
        assert!(cluster
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("pipewatch-"));
    } else {
        assert!(
            cluster.starts_with(data_dir.canonicalize().unwrap()),
            "{}",
            cluster.display()
        );
    }
    let mut conn = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    conn.close().await.unwrap();
    pg.stop().await.unwrap();
    // Same data dir, same cluster.
    let pg = EmbeddedPostgres::start(&data_dir).await.unwrap();
    assert_eq!(pg.cluster_dir(), cluster);
    pg.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&cluster);
    let _ = std::fs::remove_dir_all(&closed);
}

/// The superuser has a random password in a 0600 file inside a 0700 cluster directory;
/// connecting without it, or with a wrong one, is refused.
#[tokio::test]
async fn the_cluster_requires_the_password_from_its_private_file() {
    let dir = scratch_dir("auth");
    let pg = EmbeddedPostgres::start(&dir).await.unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let file = pg.cluster_dir().join("password");
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(pg.cluster_dir()), 0o700);
    let password = std::fs::read_to_string(&file).unwrap();
    assert!(password.trim().len() >= 32);
    assert!(pg.url().contains(password.trim()));
    let hba = std::fs::read_to_string(pg.cluster_dir().join("pgdata/pg_hba.conf")).unwrap();
    assert!(
        !hba.lines()
            .any(|l| !l.trim_start().starts_with('#') && l.contains("trust")),
        "{hba}"
    );

    let port = pg.port();
    for url in [
        format!("postgres://pipewatch@127.0.0.1:{port}/pipewatch"),
        format!("postgres://pipewatch:wrong@127.0.0.1:{port}/pipewatch"),
        format!("postgres://postgres@127.0.0.1:{port}/postgres"),
    ] {
        let err = sqlx::PgConnection::connect(&url).await.unwrap_err();
        assert!(
            err.to_string().contains("password"),
            "{url} should be refused for its password: {err}"
        );
    }
    sqlx::PgConnection::connect(&pg.url())
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    pg.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A cluster made by an earlier version (initdb --auth=trust, no password file) is switched
/// to passwords on its next start, keeping its data.
#[tokio::test]
async fn a_trust_cluster_of_an_earlier_version_is_migrated_to_passwords() {
    let dir = scratch_dir("trust");
    let pg = EmbeddedPostgres::start(&dir).await.unwrap();
    let mut conn = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
    sqlx::raw_sql("CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let cluster = pg.cluster_dir().to_path_buf();
    let port = pg.port();
    pg.stop().await.unwrap();
    // What an earlier version left: trust everywhere, no password file.
    let hba_path = cluster.join("pgdata/pg_hba.conf");
    let hba = std::fs::read_to_string(&hba_path)
        .unwrap()
        .replace("scram-sha-256", "trust");
    std::fs::write(&hba_path, hba).unwrap();
    std::fs::remove_file(cluster.join("password")).unwrap();

    let pg = EmbeddedPostgres::start(&dir).await.unwrap();
    assert_eq!(pg.port(), port);
    let hba = std::fs::read_to_string(&hba_path).unwrap();
    assert!(
        !hba.lines()
            .any(|l| !l.trim_start().starts_with('#') && l.contains("trust")),
        "{hba}"
    );
    let no_password = format!("postgres://pipewatch@127.0.0.1:{port}/pipewatch");
    assert!(sqlx::PgConnection::connect(&no_password).await.is_err());
    let mut conn = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
    let v: i32 = sqlx::query_scalar("SELECT v FROM kept")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(v, 7);
    conn.close().await.unwrap();
    pg.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_server_that_cannot_start_reports_the_reason_from_its_log() {
    let dir = scratch_dir("broken");
    let pg = EmbeddedPostgres::start(&dir).await.unwrap();
    let conf = pg.cluster_dir().join("pgdata/postgresql.conf");
    pg.stop().await.unwrap();
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("\nno_such_setting_for_pipewatch = 1\n");
    std::fs::write(&conf, text).unwrap();

    let err = EmbeddedPostgres::start(&dir).await.unwrap_err().to_string();
    assert!(err.contains("no_such_setting_for_pipewatch"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
