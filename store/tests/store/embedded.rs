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
        url.starts_with("postgres://pipewatch@127.0.0.1:") && url.ends_with("/pipewatch"),
        "{url}"
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

#[tokio::test]
async fn as_root_a_data_dir_the_postgres_user_cannot_reach_moves_to_var_tmp() {
    if std::fs::metadata("/proc/self").unwrap().uid() != 0 {
        eprintln!("not running as root: the /var/tmp fallback does not apply");
        return;
    }
    let closed = scratch_dir("closed");
    std::fs::create_dir_all(&closed).unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
    let data_dir = closed.join("data");
    let pg = EmbeddedPostgres::start(&data_dir).await.unwrap();
    let cluster = pg.cluster_dir().to_path_buf();
    assert!(cluster.starts_with("/var/tmp"), "{}", cluster.display());
    assert!(cluster
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("pipewatch-"));
    let mut conn = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    conn.close().await.unwrap();
    pg.stop().await.unwrap();
    // Same data dir, same fallback cluster.
    let pg = EmbeddedPostgres::start(&data_dir).await.unwrap();
    assert_eq!(pg.cluster_dir(), cluster);
    pg.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&cluster);
    let _ = std::fs::remove_dir_all(&closed);
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
