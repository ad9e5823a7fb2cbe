//! OTLP evidence tables: insert, list newest first, the per-(service, kind) bound, and
//! idempotent retries.

use super::*;
use serde_json::json;
use store::evidence::{EvidenceQuery, NewLogEvidence, NewSpanEvidence};

fn span(service: &str, reason: &str, n: u32) -> NewSpanEvidence {
    NewSpanEvidence {
        service: service.into(),
        reason: reason.into(),
        trace_id: format!("{n:032x}"),
        span_id: format!("{n:016x}"),
        span_name: format!("step-{n}"),
        span_kind: "SPAN_KIND_INTERNAL".into(),
        status_code: if reason == "error" {
            "STATUS_CODE_ERROR".into()
        } else {
            "STATUS_CODE_UNSET".into()
        },
        status_message: format!("failure {n}"),
        start_unix_nano: 1_795_707_789_523_982_429 + i64::from(n),
        duration_seconds: 0.5 + f64::from(n),
        detail: json!({"attributes": {"n": n, "quote": "a \"b\""}, "events": []}),
    }
}

fn log(service: &str, severity: &str, number: i32, n: u32) -> NewLogEvidence {
    NewLogEvidence {
        service: service.into(),
        severity: severity.into(),
        severity_number: number,
        time_unix_nano: 1_795_707_789_533_211_136 + i64::from(n),
        trace_id: n.is_multiple_of(2).then(|| format!("{n:032x}")),
        span_id: None,
        body: format!("record {n}"),
        detail: json!({"body": format!("record {n}")}),
    }
}

fn all(service: Option<&str>, kind: Option<&str>) -> EvidenceQuery {
    EvidenceQuery {
        service: service.map(Into::into),
        kind: kind.map(Into::into),
        limit: 1000,
        before_id: None,
    }
}

#[tokio::test]
async fn span_evidence_round_trips_and_lists_newest_first() {
    let store = store().await;
    let rows = vec![
        span("a", "error", 1),
        span("a", "slow", 2),
        span("b", "error", 3),
    ];
    let r = store.insert_span_evidence(&rows, 10).await.unwrap();
    assert_eq!((r.inserted, r.duplicates, r.trimmed), (3, 0, 0));

    let listed = store.recent_span_evidence(&all(None, None)).await.unwrap();
    let got: Vec<_> = listed.iter().map(|r| r.evidence.clone()).collect();
    assert_eq!(got, rows.iter().rev().cloned().collect::<Vec<_>>());
    assert!(listed[0].id > listed[1].id);
    assert!((listed[0].received_at_ms - now_ms()).abs() < 60_000);

    let a_errors = store
        .recent_span_evidence(&all(Some("a"), Some("error")))
        .await
        .unwrap();
    assert_eq!(a_errors.len(), 1);
    assert_eq!(a_errors[0].evidence, rows[0]);
    let limited = store
        .recent_span_evidence(&EvidenceQuery {
            limit: 2,
            ..all(None, None)
        })
        .await
        .unwrap();
    assert_eq!(limited.len(), 2);
    // The next page starts below the last id of this one.
    let next = store
        .recent_span_evidence(&EvidenceQuery {
            limit: 2,
            before_id: Some(limited[1].id),
            ..all(None, None)
        })
        .await
        .unwrap();
    assert!(!next.is_empty());
    assert!(next.iter().all(|r| r.id < limited[1].id), "{next:?}");
}

#[tokio::test]
async fn a_retried_export_stores_each_span_and_record_once() {
    let store = store().await;
    let spans = vec![span("a", "error", 1), span("a", "error", 2)];
    store.insert_span_evidence(&spans, 10).await.unwrap();
    let again = store.insert_span_evidence(&spans, 10).await.unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, 2));
    assert_eq!(
        store
            .recent_span_evidence(&all(None, None))
            .await
            .unwrap()
            .len(),
        2
    );

    let logs = vec![log("a", "ERROR", 17, 1), log("a", "WARN", 13, 2)];
    store.insert_log_evidence(&logs, 10).await.unwrap();
    let again = store.insert_log_evidence(&logs, 10).await.unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, 2));
    // A record differing only in its body is a different record.
    let mut other = logs[0].clone();
    other.body.push('!');
    let r = store.insert_log_evidence(&[other], 10).await.unwrap();
    assert_eq!(r.inserted, 1);
    assert_eq!(
        store
            .recent_log_evidence(&all(None, None))
            .await
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn the_bound_keeps_the_newest_rows_per_service_and_kind() {
    let store = store().await;
    let keep = 5;
    // Service a: 12 errors in three requests and 2 slow spans; service b: 3 errors.
    for chunk in [0..4u32, 4..9, 9..12] {
        let rows: Vec<_> = chunk.map(|n| span("a", "error", n)).collect();
        store.insert_span_evidence(&rows, keep).await.unwrap();
    }
    store
        .insert_span_evidence(&[span("a", "slow", 100), span("a", "slow", 101)], keep)
        .await
        .unwrap();
    let r = store
        .insert_span_evidence(
            &(200..203)
                .map(|n| span("b", "error", n))
                .collect::<Vec<_>>(),
            keep,
        )
        .await
        .unwrap();
    assert_eq!(r.trimmed, 0);

    let a_errors = store
        .recent_span_evidence(&all(Some("a"), Some("error")))
        .await
        .unwrap();
    let names: Vec<_> = a_errors
        .iter()
        .map(|r| r.evidence.span_name.as_str())
        .collect();
    assert_eq!(names, ["step-11", "step-10", "step-9", "step-8", "step-7"]);
    // The slow spans and the other service were not pushed out by a's errors.
    assert_eq!(
        store
            .recent_span_evidence(&all(Some("a"), Some("slow")))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        store
            .recent_span_evidence(&all(Some("b"), None))
            .await
            .unwrap()
            .len(),
        3
    );
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM otlp_span_evidence")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(total, 5 + 2 + 3);

    // One request larger than the bound keeps only its newest rows.
    let r = store
        .insert_log_evidence(
            &(0..8).map(|n| log("a", "WARN", 13, n)).collect::<Vec<_>>(),
            3,
        )
        .await
        .unwrap();
    assert_eq!((r.inserted, r.trimmed), (8, 5));
    store
        .insert_log_evidence(&[log("a", "ERROR", 17, 50)], 3)
        .await
        .unwrap();
    let warns = store
        .recent_log_evidence(&all(Some("a"), Some("WARN")))
        .await
        .unwrap();
    let bodies: Vec<_> = warns.iter().map(|r| r.evidence.body.as_str()).collect();
    assert_eq!(bodies, ["record 7", "record 6", "record 5"]);
    let errors = store
        .recent_log_evidence(&all(Some("a"), Some("ERROR")))
        .await
        .unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].evidence, log("a", "ERROR", 17, 50));
}
