//! `pipewatch backtest` as a user runs it: the real binary against a real PostgreSQL holding a
//! day of a stage's counter with a one-hour stall three hours ago. The replay must report that
//! stall (once, at the stage, as a throughput dip, closed after the counter moved again) and
//! nothing else; a bad selector stops it with a message naming the flag.

use std::process::Command;

const MIN: i64 = 60_000;

fn history(end_ms: i64) -> Vec<model::Batch> {
    let key = model::SeriesKey::new(
        "orders_processed_total",
        model::Labels::from_pairs([("job", "etl"), ("stage", "transform")]),
    );
    let stall = (end_ms - 180 * MIN)..(end_ms - 120 * MIN);
    let mut total = 0.0;
    let samples = (0..24 * 60)
        .map(|i| {
            let ts = end_ms - (24 * 60 - 1 - i) * MIN;
            if !stall.contains(&ts) {
                // ~100/s with a little wobble.
                total += 6_000.0 + ((i * 7919) % 13) as f64 * 10.0;
            }
            model::Sample { ts, value: total }
        })
        .collect();
    vec![model::Batch {
        series: vec![model::TimeSeries {
            key,
            metric_type: model::MetricType::Counter,
            samples,
        }],
        metadata: vec![],
    }]
}

fn backtest(url: &str, args: &[&str]) -> std::process::Output {
    Command::new(pipewatch_tests::pipewatch_bin())
        .arg("backtest")
        .args(args)
        .env("PIPEWATCH_DATABASE__URL", url)
        .env("PIPEWATCH_LOG", "warn")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backtest_reports_the_stall_in_stored_history_and_nothing_else() {
    let url = store::testing::fresh_database_url().await;
    let st = store::Store::connect(&url, store::StoreConfig::default())
        .await
        .unwrap();
    let now = pipewatch_tests::now_ms();
    let end = now - now.rem_euclid(MIN);
    st.write(&history(end)).await.unwrap();

    let out = backtest(
        &url,
        &["--selector", "{stage=\"transform\"}", "--from", "8h"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 episode(s) on 1 signal(s)"), "{stdout}");
    let line = stdout.lines().next().unwrap();
    assert!(
        line.contains("throughput") && line.contains("transform"),
        "{stdout}"
    );
    assert!(!line.contains("still open"), "{stdout}");
    // It starts within the stall's first quarter hour.
    let fmt = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .format("%Y-%m-%d %H:%M")
            .to_string()
    };
    let starts: Vec<String> = (0..=15).map(|m| fmt(end - 180 * MIN + m * MIN)).collect();
    assert!(
        starts.iter().any(|s| line.starts_with(s.as_str())),
        "{line} does not start in {starts:?}"
    );
    assert!(stdout.contains("rate(orders_processed_total{"), "{stdout}");

    let bad = backtest(&url, &["--selector", "{stage=}", "--from", "8h"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("--selector"), "{err}");
}
