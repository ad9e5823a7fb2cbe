//! The demo's push-based jobs speak the real protocols to a real pipewatch: what they send
//! over loopback ends up stored like any other sender's data.

use server::config::Config;
use server::run::{RunningServer, ServeExtras};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn the_demo_export_job_remote_writes_its_metrics() {
    let url = store::testing::fresh_database_url().await;
    let mut cfg = Config::default();
    cfg.database.url = url.clone();
    cfg.server.listen = "127.0.0.1:0".parse().unwrap();
    let server = RunningServer::start(cfg, ServeExtras::default())
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let pushes = tokio::spawn(server::demo::push::run(
        format!("http://{}", server.addr),
        None,
        stop.clone(),
    ));

    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let rows: Vec<(String, String, f64)> = loop {
        let rows = sqlx::query_as(
            "SELECT s.metric, s.labels->>'job', x.value FROM samples x \
             JOIN series s ON s.id = x.series_id WHERE s.metric LIKE 'demo_export_%' ORDER BY 1",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        if rows.len() == 3 || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.cancel();
    pushes.await.unwrap();
    let report = server.stop().await.unwrap();
    assert_eq!(report.samples_lost, 0);
    let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "demo_export_duration_seconds",
            "demo_export_last_success_timestamp_seconds",
            "demo_export_rows_total"
        ]
    );
    assert!(rows.iter().all(|r| r.1 == "nightly_export"));
    let now_s = pipewatch_tests::now_ms() as f64 / 1000.0;
    assert!(
        (now_s - rows[1].2) <= 300.0 + 5.0,
        "last success {}",
        rows[1].2
    );
    let help: String =
        sqlx::query_scalar("SELECT help FROM metric_metadata WHERE family = 'demo_export_rows'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(help, "Rows the nightly_export batch job wrote.");
}
