//! The lineage tables on a real PostgreSQL: runs in any arrival order, re-sent events,
//! schema versions and change events, and the graph read back.

use store::lineage::{DatasetRecord, EventKind, EventRecord, Qualified};

const T0: i64 = 1_767_261_600_000;

fn ds(name: &str, schema: Option<&[(&str, &str)]>) -> DatasetRecord {
    DatasetRecord {
        id: Some(Qualified::new("ns", name)),
        schema: schema.map(|f| {
            f.iter()
                .map(|(n, t)| (n.to_string(), Some(t.to_string())))
                .collect()
        }),
    }
}

fn run(t: &str, at: i64, run_id: &str, outputs: Vec<DatasetRecord>) -> EventRecord {
    EventRecord {
        kind: EventKind::Run,
        event_type: Some(t.to_string()),
        time_ms: at,
        producer: "test".into(),
        run_id: Some(run_id.into()),
        job: Some(Qualified::new("ns", "load")),
        parent_run_id: None,
        parent_job: None,
        error_message: None,
        inputs: vec![ds("raw", None)],
        outputs,
        dataset: None,
    }
}

#[tokio::test]
async fn runs_end_with_duration_whatever_the_arrival_order_and_resends_change_nothing() {
    let store = crate::store().await;
    // COMPLETE arrives before START: the duration is known once both are.
    let done = run("COMPLETE", T0 + 42_500, "r1", vec![]);
    let o = store.record_lineage_event(&done).await.unwrap();
    assert_eq!(o.ended, None);
    assert_eq!(o.runs_in_state, Some(1));
    let o = store
        .record_lineage_event(&run("START", T0, "r1", vec![]))
        .await
        .unwrap();
    assert_eq!(o.ended, Some(("COMPLETE".to_string(), 42.5)));
    // A late RUNNING does not reopen it; a re-sent COMPLETE is a duplicate.
    let o = store
        .record_lineage_event(&run("RUNNING", T0 + 10_000, "r1", vec![]))
        .await
        .unwrap();
    assert!(!o.duplicate);
    let o = store.record_lineage_event(&done).await.unwrap();
    assert!(o.duplicate);
    assert_eq!(o.runs_in_state, None);

    let runs = store
        .lineage_runs(&Qualified::new("ns", "load"), 10)
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].state, "COMPLETE");
    assert_eq!(runs[0].started_at_ms, Some(T0));
    assert_eq!(runs[0].ended_at_ms, Some(T0 + 42_500));
    assert_eq!(runs[0].duration_seconds, Some(42.5));

    // A second run counts as the second COMPLETE.
    store
        .record_lineage_event(&run("START", T0 + 100_000, "r2", vec![]))
        .await
        .unwrap();
    let o = store
        .record_lineage_event(&run("FAIL", T0 + 101_000, "r2", vec![]))
        .await
        .unwrap();
    assert_eq!(o.ended, Some(("FAIL".to_string(), 1.0)));
    assert_eq!(o.runs_in_state, Some(1));
    let o = store
        .record_lineage_event(&run("COMPLETE", T0 + 200_000, "r3", vec![]))
        .await
        .unwrap();
    assert_eq!(o.runs_in_state, Some(2));
}

#[tokio::test]
async fn a_changed_schema_is_a_new_version_with_a_change_event() {
    let store = crate::store().await;
    let v1: &[(&str, &str)] = &[("id", "BIGINT"), ("amount", "DECIMAL")];
    let v2: &[(&str, &str)] = &[
        ("id", "BIGINT"),
        ("amount", "DOUBLE"),
        ("discount", "DOUBLE"),
    ];
    let o = store
        .record_lineage_event(&run("COMPLETE", T0, "a", vec![ds("orders", Some(v1))]))
        .await
        .unwrap();
    assert!(o.schema_changes.is_empty(), "first version is not a change");
    let o = store
        .record_lineage_event(&run(
            "COMPLETE",
            T0 + 1000,
            "b",
            vec![ds("orders", Some(v1))],
        ))
        .await
        .unwrap();
    assert!(o.schema_changes.is_empty(), "same schema again");
    let o = store
        .record_lineage_event(&run(
            "COMPLETE",
            T0 + 2000,
            "c",
            vec![ds("orders", Some(v2))],
        ))
        .await
        .unwrap();
    assert_eq!(o.schema_changes.len(), 1);
    let c = &o.schema_changes[0];
    assert_eq!((c.from_version, c.to_version), (1, 2));
    assert_eq!(c.added, vec!["discount".to_string()]);
    assert!(c.removed.is_empty());
    assert_eq!(
        c.type_changed,
        vec![(
            "amount".to_string(),
            Some("DECIMAL".to_string()),
            Some("DOUBLE".to_string())
        )]
    );
    assert_eq!(c.changes_total, 1);
    assert_eq!(c.run_id.as_deref(), Some("c"));

    let stored = store.lineage_schema_changes(10).await.unwrap();
    assert_eq!(stored, o.schema_changes);

    let g = store.lineage_graph().await.unwrap();
    let orders = g.nodes.iter().find(|n| n.name == "orders").unwrap();
    assert_eq!(orders.schema_version, Some(2));
    let job = g.nodes.iter().find(|n| n.kind == "job").unwrap();
    assert_eq!(job.latest_run.as_ref().unwrap().run_id, "c");
    let mut edges: Vec<(String, String)> = g
        .edges
        .iter()
        .map(|e| (e.from.clone(), e.to.clone()))
        .collect();
    edges.sort();
    assert_eq!(
        edges,
        vec![
            ("dataset:ns/raw".to_string(), "job:ns/load".to_string()),
            ("job:ns/load".to_string(), "dataset:ns/orders".to_string()),
        ]
    );
}
