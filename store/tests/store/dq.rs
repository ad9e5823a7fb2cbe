//! Data-quality check runs on a real PostgreSQL: idempotent recording, the dataset summary and
//! the per-check history strip.

use crate::{store, DAY, HOUR};
use store::dq::CheckRunRecord;

fn run(
    dataset: &str,
    check: &str,
    run_id: &str,
    t: i64,
    status: &str,
    value: f64,
) -> CheckRunRecord {
    CheckRunRecord {
        tool: "soda".into(),
        run_id: run_id.into(),
        check_id: format!("{dataset}:{check}"),
        tool_version: Some("3.5.6".into()),
        suite: "checks.yml".into(),
        dataset: dataset.into(),
        column: Some("amount".into()),
        check_name: check.into(),
        check_type: "avg".into(),
        status: status.into(),
        raw_status: status.into(),
        observed_value: Some(value),
        observed_raw: Some(value.to_string()),
        expected: Some("between 20 and 250".into()),
        message: None,
        run_time_ms: t,
        id_may_change: false,
    }
}

/// 2024-05-02T01:00:00Z: the fixtures' first run, far older than any retention.
const T0: i64 = 1_714_611_600_000;

#[tokio::test]
async fn recording_the_same_runs_twice_stores_them_once() {
    let st = store().await;
    let runs = vec![
        run("orders", "avg", "r1", T0, "pass", 95.2),
        run("orders", "min", "r1", T0, "fail", -5.0),
    ];
    let first = st.record_check_runs(&runs).await.unwrap();
    assert_eq!(first.inserted, vec![0, 1]);
    let again = st.record_check_runs(&runs).await.unwrap();
    assert!(again.inserted.is_empty());
    assert_eq!(st.dq_check_run_count().await.unwrap(), 2);
    // A new run of one check is new; the old run of the other is not.
    let mixed = vec![
        run("orders", "avg", "r2", T0 + DAY, "fail", 821.5),
        run("orders", "min", "r1", T0, "fail", -5.0),
    ];
    assert_eq!(
        st.record_check_runs(&mixed).await.unwrap().inserted,
        vec![0]
    );
    assert_eq!(st.dq_check_run_count().await.unwrap(), 3);
}

#[tokio::test]
async fn datasets_summarise_the_latest_status_of_each_check() {
    let st = store().await;
    st.record_check_runs(&[
        run("orders", "avg", "r1", T0, "pass", 95.2),
        run("orders", "min", "r1", T0, "fail", -5.0),
        run("orders", "count", "r1", T0, "pass", 30.0),
        // The next day avg fails and min recovers: latest statuses are avg fail, min pass.
        run("orders", "avg", "r2", T0 + DAY, "fail", 821.5),
        run("orders", "min", "r2", T0 + DAY, "pass", 1.0),
        run("customers", "count", "r3", T0 + HOUR, "pass", 12.0),
        run("customers", "unique", "r3", T0 + HOUR, "skipped", 0.0),
    ])
    .await
    .unwrap();
    let ds = st.dq_datasets().await.unwrap();
    assert_eq!(ds.len(), 2);
    // Worst first.
    let orders = &ds[0];
    assert_eq!(orders.dataset, "orders");
    assert_eq!((orders.checks, orders.pass, orders.fail), (3, 2, 1));
    assert_eq!(orders.status, "fail");
    assert_eq!(orders.pass_ratio, Some(2.0 / 3.0));
    assert_eq!(orders.last_run_ms, T0 + DAY);
    assert_eq!(orders.tools, vec!["soda".to_string()]);
    let customers = &ds[1];
    assert_eq!(
        (customers.checks, customers.pass, customers.skipped),
        (2, 1, 1)
    );
    assert_eq!(customers.status, "pass");
    assert_eq!(
        customers.pass_ratio,
        Some(1.0),
        "skipped checks do not count"
    );
}

#[tokio::test]
async fn checks_come_with_their_last_n_runs_oldest_first() {
    let st = store().await;
    let mut runs = Vec::new();
    for day in 0..6 {
        let status = if day % 2 == 0 { "pass" } else { "warn" };
        runs.push(run(
            "orders",
            "avg",
            &format!("r{day}"),
            T0 + day * DAY,
            status,
            day as f64,
        ));
    }
    runs.push(run("orders", "min", "r5", T0 + 5 * DAY, "error", f64::NAN));
    runs.push(run("other", "avg", "r9", T0, "fail", 0.0));
    st.record_check_runs(&runs).await.unwrap();
    let checks = st.dq_checks("orders", 4).await.unwrap();
    assert_eq!(checks.len(), 2);
    // Worst latest status first: min (error) before avg (warn).
    assert_eq!(checks[0].check_name, "min");
    assert_eq!(checks[0].runs.len(), 1);
    assert_eq!(checks[0].runs[0].status, "error");
    let avg = &checks[1];
    assert_eq!(avg.check_name, "avg");
    assert_eq!(avg.column.as_deref(), Some("amount"));
    let times: Vec<i64> = avg.runs.iter().map(|c| c.run_time_ms).collect();
    assert_eq!(times, (2..6).map(|d| T0 + d * DAY).collect::<Vec<_>>());
    let statuses: Vec<&str> = avg.runs.iter().map(|c| c.status.as_str()).collect();
    assert_eq!(statuses, ["pass", "warn", "pass", "warn"]);
    assert_eq!(avg.latest().unwrap().observed_value, Some(5.0));
    assert!(st.dq_checks("nothing-here", 4).await.unwrap().is_empty());
}
