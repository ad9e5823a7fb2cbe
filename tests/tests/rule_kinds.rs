//! The `dq_check` and `drift` rule kinds evaluated by a running server over a real database
//! (results stored through the store API, as the receivers and analysis jobs store them), and
//! `pipewatch rules backtest` replaying a stored series with a known excursion.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pw-rule-kinds-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

macro_rules! wait_until {
    ($what:expr, $timeout:expr, $cond:expr) => {{
        let start = Instant::now();
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
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }};
}

/// The alerts the lifecycle API lists for `query`.
async fn alerts(base: &str, query: &str) -> Vec<Value> {
    let v: Value = reqwest::get(format!("{base}/api/v1/lifecycle/alerts?{query}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "success", "{v}");
    v["data"].as_array().unwrap().clone()
}

fn check_run(
    check: &str,
    dataset: &str,
    status: &str,
    run: &str,
    at_ms: i64,
) -> store::dq::CheckRunRecord {
    store::dq::CheckRunRecord {
        tool: "gx".into(),
        run_id: run.into(),
        check_id: format!("expect_{check}"),
        tool_version: Some("1.3.0".into()),
        suite: "orders_suite".into(),
        dataset: dataset.into(),
        column: Some("id".into()),
        check_name: check.into(),
        check_type: "expect_column_values_to_not_be_null".into(),
        status: status.into(),
        raw_status: status.into(),
        observed_value: Some(if status == "pass" { 0.0 } else { 12.0 }),
        observed_raw: None,
        expected: None,
        message: (status != "pass").then(|| "12 null ids".to_string()),
        run_time_ms: at_ms,
        id_may_change: false,
    }
}

fn drift(dataset: &str, method: &str, value: f64, at_ms: i64) -> store::anomalies::NewDriftResult {
    model::anomaly::DriftResult {
        id: 0,
        dataset: dataset.into(),
        column: "amount".into(),
        method: method.into(),
        value,
        threshold: 0.2,
        drifted: value > 0.2,
        reference_from_ms: at_ms - 7_200_000,
        reference_to_ms: at_ms - 3_600_000,
        current_from_ms: at_ms - 3_600_000,
        current_to_ms: at_ms,
        evaluated_at_ms: at_ms,
        explanation: format!("{method} {value}"),
    }
}

const KIND_RULES: &str = r#"groups:
- name: quality
  rules:
  - alert: OrdersChecksFailing
    pipewatch: {kind: dq_check, dataset: orders}
    labels: {team: data}
    annotations: {summary: '{{ $labels.check }} fails on {{ $labels.dataset }}'}
  - alert: AmountDrift
    pipewatch: {kind: drift, feature: amount, statistic: psi, threshold: 0.2}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dq_check_and_drift_rules_fire_on_the_latest_results_and_resolve_on_a_later_good_one() {
    let url = store::testing::fresh_database_url().await;
    let dir = temp_dir("engine");
    std::fs::write(dir.join("rules.yml"), KIND_RULES).unwrap();
    let mut cfg = server::config::Config::from_toml_str(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{d}\"\n[database]\nurl = \"{url}\"\n\
         [auth]\nanonymous_role = \"admin\"\n\
         [alerting]\nevaluation_interval = \"1s\"\n",
        d = dir.display()
    ))
    .unwrap();
    cfg.alerting.rule_files = vec![dir.join("rules.yml").display().to_string()];
    cfg.check_references().unwrap();
    let server = server::run::RunningServer::start(cfg, Default::default())
        .await
        .unwrap();
    let base = format!("http://{}", server.addr);
    let st = store::Store::connect(&url, store::StoreConfig::default())
        .await
        .unwrap();
    let now = model::clock::now_ms();
    // not_null failed in its latest run, unique failed before but passes now, and a check of
    // another dataset fails (not this rule's).
    st.record_check_runs(&[
        check_run("not_null", "orders", "pass", "r1", now - 120_000),
        check_run("not_null", "orders", "fail", "r2", now - 60_000),
        check_run("unique", "orders", "fail", "r1", now - 120_000),
        check_run("unique", "orders", "pass", "r2", now - 60_000),
        check_run("not_null", "customers", "fail", "r2", now - 60_000),
    ])
    .await
    .unwrap();
    // psi past 0.2 for scoring, below it for ranking; a ks p-value is another statistic.
    st.record_drift_results(&[
        drift("scoring", "psi", 0.35, now - 30_000),
        drift("ranking", "psi", 0.05, now - 30_000),
        drift("ranking", "ks", 0.001, now - 30_000),
    ])
    .await
    .unwrap();

    wait_until!(
        "both rules firing",
        Duration::from_secs(20),
        !alerts(&base, "rule=OrdersChecksFailing&state=firing")
            .await
            .is_empty()
            && !alerts(&base, "rule=AmountDrift&state=firing")
                .await
                .is_empty()
    );
    let dq = alerts(&base, "rule=OrdersChecksFailing").await;
    assert_eq!(dq.len(), 1, "{dq:#?}");
    assert_eq!(dq[0]["labels"]["check"], "not_null");
    assert_eq!(dq[0]["labels"]["dataset"], "orders");
    assert_eq!(dq[0]["labels"]["dq_tool"], "gx");
    assert_eq!(dq[0]["labels"]["team"], "data");
    assert_eq!(dq[0]["annotations"]["summary"], "not_null fails on orders");
    let dr = alerts(&base, "rule=AmountDrift").await;
    assert_eq!(dr.len(), 1, "{dr:#?}");
    assert_eq!(dr[0]["labels"]["dataset"], "scoring");
    assert_eq!(dr[0]["labels"]["statistic"], "psi");

    // A later passing run and a later drift result within the threshold resolve them.
    let now = model::clock::now_ms();
    st.record_check_runs(&[check_run("not_null", "orders", "pass", "r3", now)])
        .await
        .unwrap();
    st.record_drift_results(&[drift("scoring", "psi", 0.1, now)])
        .await
        .unwrap();
    wait_until!(
        "both rules resolved",
        Duration::from_secs(20),
        alerts(&base, "rule=OrdersChecksFailing").await[0]["state"] == "resolved"
            && alerts(&base, "rule=AmountDrift").await[0]["state"] == "resolved"
    );
    assert!(alerts(&base, "state=firing").await.is_empty());
    server.stop().await.unwrap();
}

const M: i64 = 60_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_backtest_prints_when_a_stored_excursion_would_have_fired_and_resolved() {
    let url = store::testing::fresh_database_url().await;
    let st = store::Store::connect(&url, store::StoreConfig::default())
        .await
        .unwrap();
    // An hour of samples every 15 s starting on a whole hour two hours ago: 50 from minute
    // 20 to before minute 30, 1 otherwise.
    let t0 = (model::clock::now_ms() / 3_600_000 - 2) * 3_600_000;
    let samples = (0..=240)
        .map(|i| {
            let ts = t0 + i * 15_000;
            let high = (t0 + 20 * M..t0 + 30 * M).contains(&ts);
            model::Sample {
                ts,
                value: if high { 50.0 } else { 1.0 },
            }
        })
        .collect();
    st.write(&[model::Batch {
        series: vec![model::TimeSeries {
            key: model::SeriesKey::new(
                "pw_lag_seconds",
                model::Labels::from_pairs([("job", "orders")]),
            ),
            metric_type: model::MetricType::Gauge,
            samples,
        }],
        metadata: Vec::new(),
    }])
    .await
    .unwrap();
    let dir = temp_dir("backtest");
    std::fs::write(
        dir.join("rules.yml"),
        "groups:\n- name: etl\n  rules:\n  - alert: HighLag\n    expr: pw_lag_seconds > 10\n    for: 2m\n    keep_firing_for: 1m\n\
         \x20 - alert: Odd\n    pipewatch: {kind: anomaly}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("pipewatch.toml"),
        format!(
            "[server]\ndata_dir = \"{}\"\n[database]\nurl = \"{url}\"\n",
            dir.display()
        ),
    )
    .unwrap();
    // As the table prints times (RFC 3339, whole seconds, UTC).
    let rfc = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    let backtest = |step: &str, extra: &[&str]| {
        let out = Command::new(pipewatch_tests::pipewatch_bin())
            .arg("--config")
            .arg(dir.join("pipewatch.toml"))
            .args(["rules", "backtest"])
            .arg(dir.join("rules.yml"))
            .args([
                "--from",
                &rfc(t0),
                "--to",
                &rfc(t0 + 60 * M),
                "--step",
                step,
            ])
            .args(extra)
            .env_remove("DATABASE_URL")
            .env("PIPEWATCH_LOG", "error")
            .output()
            .expect("run pipewatch");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, stdout, stderr) = backtest("1m", &[]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let row: Vec<&str> = stdout
        .lines()
        .find(|l| l.starts_with("HighLag"))
        .unwrap_or_else(|| panic!("no HighLag row:\n{stdout}\n{stderr}"))
        .split_whitespace()
        .collect();
    // Pending from minute 20, firing after `for` (22), the condition gone at 30 and kept
    // firing for a minute: resolved at 31.
    assert_eq!(
        row,
        [
            "HighLag",
            "{job=\"orders\"}",
            &rfc(t0 + 20 * M),
            &rfc(t0 + 22 * M),
            &rfc(t0 + 31 * M)
        ],
        "{stdout}"
    );
    assert!(
        stdout.contains("not replayed: rule \"Odd\": kind anomaly"),
        "{stdout}"
    );
    assert!(stdout.contains("61 steps of 1m"), "{stdout}");

    let (code, stdout, stderr) = backtest("1m", &["--json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let eps = v[0]["episodes"].as_array().unwrap();
    assert_eq!(eps.len(), 1, "{v:#}");
    assert_eq!(eps[0]["fired_at_ms"], t0 + 22 * M);
    assert_eq!(eps[0]["resolved_at_ms"], t0 + 31 * M);

    // A range it cannot take says what to change.
    let (code, _, stderr) = backtest("0s", &[]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("step"), "{stderr}");
}
