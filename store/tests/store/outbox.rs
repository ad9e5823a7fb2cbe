//! The notification outbox against a real PostgreSQL: enqueue in the caller's transaction,
//! dedup keys, claims by concurrent senders, back-off after failures, order within a group.

use crate::store;
use std::collections::HashSet;
use std::time::Duration;
use store::outbox::{self, Backoff, NewNotification, NotificationKind};

fn notice(dedup: &str, group: &str, kind: NotificationKind) -> NewNotification {
    NewNotification {
        channel: "ops-mail".into(),
        dedup_key: dedup.into(),
        group_key: group.into(),
        kind,
        payload: serde_json::json!({"alert": group, "kind": kind.as_str()}),
    }
}

const LEASE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn enqueue_commits_and_rolls_back_with_the_callers_transaction() {
    let s = store().await;
    let mut tx = s.pool().begin().await.unwrap();
    assert!(
        outbox::enqueue(&mut tx, &notice("a", "g", NotificationKind::Firing))
            .await
            .unwrap()
    );
    tx.rollback().await.unwrap();
    assert!(s.notification_statuses().await.unwrap().is_empty());

    let mut tx = s.pool().begin().await.unwrap();
    outbox::enqueue(&mut tx, &notice("a", "g", NotificationKind::Firing))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(s.notification_statuses().await.unwrap().len(), 1);
}

#[tokio::test]
async fn re_enqueueing_a_dedup_key_is_a_no_op_per_channel() {
    let s = store().await;
    let n = notice("alert-1:firing:1", "alert-1", NotificationKind::Firing);
    assert_eq!(
        s.enqueue_notifications(std::slice::from_ref(&n))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.enqueue_notifications(std::slice::from_ref(&n))
            .await
            .unwrap(),
        0
    );
    // The same key on another channel is another notice.
    let other = NewNotification {
        channel: "ops-slack".into(),
        ..n
    };
    assert_eq!(s.enqueue_notifications(&[other]).await.unwrap(), 1);
    let rows = s.notification_statuses().await.unwrap();
    assert_eq!(rows.len(), 2);
    // Once delivered, a re-enqueue still does not bring it back.
    let claimed = s.claim_notifications(10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 2);
    for c in &claimed {
        s.mark_notification_delivered(c.id).await.unwrap();
    }
    let again = notice("alert-1:firing:1", "alert-1", NotificationKind::Firing);
    assert_eq!(s.enqueue_notifications(&[again]).await.unwrap(), 0);
    assert!(s.claim_notifications(10, LEASE).await.unwrap().is_empty());
}

#[tokio::test]
async fn concurrent_claimers_never_get_the_same_row() {
    let s = store().await;
    let ns: Vec<_> = (0..200)
        .map(|i| notice(&format!("d{i}"), &format!("g{i}"), NotificationKind::Firing))
        .collect();
    s.enqueue_notifications(&ns).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = s.claim_notifications(7, LEASE).await.unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|c| c.id));
            }
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut claimers_that_got_rows = 0;
    for t in tasks {
        let ids = t.await.unwrap();
        claimers_that_got_rows += usize::from(!ids.is_empty());
        total += ids.len();
        seen.extend(ids);
    }
    assert_eq!(total, 200, "every row claimed exactly once");
    assert_eq!(seen.len(), 200);
    assert!(
        claimers_that_got_rows > 1,
        "the claims really were concurrent"
    );
}

#[tokio::test]
async fn a_failed_row_comes_back_after_its_back_off_and_attempts_are_recorded() {
    let s = store().await;
    s.enqueue_notifications(&[notice("x", "g", NotificationKind::Firing)])
        .await
        .unwrap();
    let backoff = Backoff {
        base: Duration::from_millis(700),
        cap: Duration::from_secs(2),
    };
    let c = s.claim_notifications(10, LEASE).await.unwrap().remove(0);
    let delay = s
        .mark_notification_failed(c.id, "connection refused", backoff)
        .await
        .unwrap();
    assert_eq!(delay, Duration::from_millis(700));
    assert!(s.claim_notifications(10, LEASE).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(900)).await;
    let c = s.claim_notifications(10, LEASE).await.unwrap();
    assert_eq!(c.len(), 1, "due again after the back-off");
    assert_eq!(c[0].attempts, 1);
    // Second failure doubles the wait; the third is capped.
    let d2 = s
        .mark_notification_failed(c[0].id, "timeout", backoff)
        .await
        .unwrap();
    assert_eq!(d2, Duration::from_millis(1400));
    assert_eq!(backoff.delay(3), Duration::from_secs(2));
    assert_eq!(backoff.delay(40), Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let c = s.claim_notifications(10, LEASE).await.unwrap().remove(0);
    s.mark_notification_delivered(c.id).await.unwrap();

    let attempts = s.notification_attempts(c.id).await.unwrap();
    let outcome: Vec<_> = attempts
        .iter()
        .map(|a| (a.delivered, a.error.as_deref()))
        .collect();
    assert_eq!(
        outcome,
        [
            (false, Some("connection refused")),
            (false, Some("timeout")),
            (true, None)
        ]
    );
    let row = &s.notification_statuses().await.unwrap()[0];
    assert!(row.delivered);
    assert_eq!(row.attempts, 3);
    assert_eq!(row.last_error, None);
}

#[tokio::test]
async fn a_resolve_is_not_claimed_before_its_firing_notice_is_delivered() {
    let s = store().await;
    s.enqueue_notifications(&[
        notice("g1:firing", "g1", NotificationKind::Firing),
        notice("g1:resolved", "g1", NotificationKind::Resolved),
        notice("g2:firing", "g2", NotificationKind::Firing),
    ])
    .await
    .unwrap();
    let first = s.claim_notifications(10, LEASE).await.unwrap();
    let keys: Vec<_> = first.iter().map(|c| c.dedup_key.as_str()).collect();
    assert_eq!(keys, ["g1:firing", "g2:firing"]);
    // The firing notice fails: its resolve must wait for it, whatever the back-off.
    let zero = Backoff {
        base: Duration::ZERO,
        cap: Duration::ZERO,
    };
    s.mark_notification_failed(first[0].id, "down", zero)
        .await
        .unwrap();
    let retry = s.claim_notifications(10, LEASE).await.unwrap();
    let keys: Vec<_> = retry.iter().map(|c| c.dedup_key.as_str()).collect();
    assert_eq!(keys, ["g1:firing"]);
    s.mark_notification_delivered(retry[0].id).await.unwrap();
    let next = s.claim_notifications(10, LEASE).await.unwrap();
    let keys: Vec<_> = next.iter().map(|c| c.dedup_key.as_str()).collect();
    assert_eq!(keys, ["g1:resolved"]);
}

#[tokio::test]
async fn a_dead_senders_claim_runs_out_and_the_row_is_claimed_again() {
    let s = store().await;
    s.enqueue_notifications(&[notice("y", "g", NotificationKind::Firing)])
        .await
        .unwrap();
    let lease = Duration::from_millis(500);
    assert_eq!(s.claim_notifications(10, lease).await.unwrap().len(), 1);
    assert!(s.claim_notifications(10, lease).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(s.claim_notifications(10, lease).await.unwrap().len(), 1);
}
