//! Explore, server-rendered by the real server over a real PostgreSQL: a chart marks the
//! anomalies of the signal it draws (and not those of another stage or metric), and an empty
//! chart says when the selected series last had data and links to that time, instead of
//! asking whether the target is up while the data sits a day back.

use server::config::Config;
use server::run::{RunningServer, ServeExtras};
use std::collections::BTreeMap;

const MIN: i64 = 60_000;

fn counter(metric: &str, stage: &str, from_ms: i64, minutes: i64) -> model::Batch {
    model::Batch {
        series: vec![model::TimeSeries {
            key: model::SeriesKey::new(metric, model::Labels::from_pairs([("stage", stage)])),
            metric_type: model::MetricType::Counter,
            samples: (0..minutes)
                .map(|i| model::Sample {
                    ts: from_ms + i * MIN,
                    value: (i * 600) as f64,
                })
                .collect(),
        }],
        metadata: vec![],
    }
}

fn anomaly(
    signal: &str,
    stage: &str,
    at: i64,
    explanation: &str,
) -> store::anomalies::AnomalyObservation {
    store::anomalies::AnomalyObservation {
        signal: signal.into(),
        kind: "throughput".into(),
        labels: BTreeMap::from([("stage".to_string(), stage.to_string())]),
        node: Some(stage.into()),
        detector: "level_shift".into(),
        severity: "critical".into(),
        score: 0.9,
        started_at_ms: at,
        seen_at_ms: at,
        observed: 0.0,
        expected_low: 8.0,
        expected_high: 12.0,
        explanation: explanation.into(),
    }
}

async fn page(addr: std::net::SocketAddr, path_and_query: &str) -> String {
    let r = reqwest::get(format!("http://{addr}{path_and_query}"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path_and_query}");
    r.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charts_mark_their_anomalies_and_an_empty_chart_points_to_the_last_data() {
    let url = store::testing::fresh_database_url().await;
    let mut cfg = Config::default();
    cfg.database.url = url.clone();
    cfg.server.listen = "127.0.0.1:0".parse().unwrap();
    cfg.receivers.otlp_grpc_listen = String::new();
    cfg.analysis.enabled = false;
    // Not a test of access control: anonymous requests may read the pages.
    cfg.auth.anonymous_role = "viewer".into();
    let server = RunningServer::start(cfg, ServeExtras::default())
        .await
        .unwrap();
    let st = store::Store::connect(&url, store::StoreConfig::default())
        .await
        .unwrap();
    let now = pipewatch_tests::now_ms();
    let day_ago = now - 24 * 60 * MIN;
    st.write(&[
        counter("orders_total", "load", now - 60 * MIN, 60),
        counter("orders_total", "extract", now - 60 * MIN, 60),
        counter("old_rows_total", "load", day_ago, 30),
    ])
    .await
    .unwrap();
    st.observe_anomaly(&anomaly(
        "rate(orders_total{stage=\"load\"}[2m])",
        "load",
        now - 20 * MIN,
        "throughput 0/s, expected 8/s–12/s for Mon 10:00; started 10:40",
    ))
    .await
    .unwrap();
    st.observe_anomaly(&anomaly(
        "rate(orders_total{stage=\"extract\"}[2m])",
        "extract",
        now - 20 * MIN,
        "extract stalled",
    ))
    .await
    .unwrap();

    let html = page(
        server.addr,
        "/explore?q=rate(orders_total%7Bstage%3D%22load%22%7D%5B2m%5D)&range=1h",
    )
    .await;
    assert!(html.contains("Anomalies in this range"), "{html}");
    assert!(html.contains("throughput 0/s, expected 8/s–12/s"), "{html}");
    assert!(
        !html.contains("extract stalled"),
        "another stage's anomaly is marked: {html}"
    );

    // A day-old series in a one-hour range: say where its data is, and link to it.
    let html = page(server.addr, "/explore?q=old_rows_total&range=1h").await;
    assert!(html.contains("No samples for"), "{html}");
    assert!(html.contains("Its last sample was at"), "{html}");
    let last = day_ago + 29 * MIN;
    let from = format!("from={}", last - 60 * MIN);
    assert!(
        html.contains("class=\"last-data-link\"") && html.contains(&from),
        "no link to the hour before {last}: {html}"
    );
    // A series that never existed: nothing to point to.
    let html = page(server.addr, "/explore?q=never_written_total&range=1h").await;
    assert!(html.contains("No series matches it at any time"), "{html}");
    server.stop().await.unwrap();
}
