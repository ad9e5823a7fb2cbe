//! `store::testing`: every call gives a new empty database; leftovers of exited test
//! processes are cleaned up in the private cluster.

use sqlx::Connection;

async fn databases(url: &str) -> Vec<String> {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let names = sqlx::query_scalar("SELECT datname::text FROM pg_database ORDER BY 1")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    names
}

#[tokio::test]
async fn each_call_gives_a_distinct_empty_database() {
    let a = store::testing::fresh_database_url().await;
    let b = store::testing::fresh_database_url().await;
    assert_ne!(a, b);
    let mut conn = sqlx::PgConnection::connect(&a).await.unwrap();
    let tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(tables, 0);
    conn.close().await.unwrap();
}

/// Databases of exited test processes are dropped when the next one is made (each database
/// with TimescaleDB holds a background worker, so leftovers would exhaust them). On a server
/// given by DATABASE_URL (perhaps shared with other machines) only those made on this machine
/// since boot go (their names end in its boot tag); the others are left alone.
#[tokio::test]
async fn databases_of_exited_test_processes_are_dropped_and_other_machines_ones_kept() {
    let shared_server = std::env::var("DATABASE_URL").is_ok_and(|u| !u.trim().is_empty());
    // A pid that certainly exited: a child we waited for.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let url = store::testing::fresh_database_url().await;
    let admin = format!("{}/postgres", &url[..url.rfind('/').unwrap()]);
    // Our own names end in this machine's boot tag: the last part of the name.
    let tag = url.rsplit('_').next().unwrap().to_string();
    assert_eq!(tag.len(), 8, "boot tag in {url}");
    let ours = format!("pw_test_{dead}_0_0_{tag}");
    let elsewhere = format!("pw_test_{dead}_0_0_0000zzzz");
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    for name in [&ours, &elsewhere] {
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    conn.close().await.unwrap();
    // (Not checked here that they exist: a concurrent test process may already have dropped
    // them, as it should.)

    let mine = store::testing::fresh_database_url().await;
    let names = databases(&admin).await;
    assert!(!names.contains(&ours), "{ours} survived");
    if shared_server {
        assert!(
            names.contains(&elsewhere),
            "{elsewhere} (another machine's) was dropped on a DATABASE_URL server"
        );
    } else {
        assert!(!names.contains(&elsewhere), "{elsewhere} survived");
    }
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {elsewhere}"))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let mine = &mine[mine.rfind('/').unwrap() + 1..];
    assert!(
        names.iter().any(|n| n == mine),
        "our own database must stay"
    );
}
