//! Alerts from the Alertmanager intake on a real PostgreSQL: merged by fingerprint, resolved
//! once endsAt passes, a new instance after a resolved one.

use std::collections::BTreeMap;
use store::alerts::AlertRecord;

const T0: i64 = 1_767_261_600_000;
const MIN: i64 = 60_000;

fn alert(starts: i64, ends: i64, summary: &str) -> AlertRecord {
    AlertRecord {
        fingerprint: "4a5f81a8d0f39a1c".into(),
        labels: BTreeMap::from([("alertname".to_string(), "Stalled".to_string())]),
        annotations: BTreeMap::from([("summary".to_string(), summary.to_string())]),
        starts_at_ms: starts,
        ends_at_ms: ends,
        generator_url: Some("http://prom/graph".into()),
        received_at_ms: starts,
    }
}

#[tokio::test]
async fn reposts_extend_the_alert_and_a_passed_end_resolves_it() {
    let store = crate::store().await;
    store
        .record_alerts(&[alert(T0, T0 + 4000, "first")])
        .await
        .unwrap();
    // Re-post while active: same startsAt, later endsAt, new annotations.
    store
        .record_alerts(&[alert(T0, T0 + 8000, "second")])
        .await
        .unwrap();
    let firing = store.alerts(T0 + 5000, false).await.unwrap();
    assert_eq!(firing.len(), 1);
    let a = &firing[0];
    assert_eq!((a.starts_at_ms, a.ends_at_ms, a.posts), (T0, T0 + 8000, 2));
    assert_eq!(a.annotations["summary"], "second");
    assert_eq!(a.state, "firing");
    // After endsAt: resolved, shown only with resolved ones.
    assert!(store.alerts(T0 + 9000, false).await.unwrap().is_empty());
    let all = store.alerts(T0 + 9000, true).await.unwrap();
    assert_eq!(all[0].state, "resolved");
    // Firing again later is a new instance with its own startsAt.
    store
        .record_alerts(&[alert(T0 + 10 * MIN, T0 + 11 * MIN, "again")])
        .await
        .unwrap();
    let a = &store.alerts(T0 + 10 * MIN, false).await.unwrap()[0];
    assert_eq!(a.starts_at_ms, T0 + 10 * MIN);
}
