//! Golden tests of the OpenLineage decoder over the eleven request bodies openlineage-python
//! 1.54.0's HttpTransport sent (`fixtures/openlineage/`, see its README). The expected values
//! come from `expected.json`, which the sending script wrote from its own scenario.

use collectors::openlineage::{
    self, decode, facet_series, flatten_schema, EventKind, OpenLineageError, RunEventType,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openlineage")
}

/// (file name, body) of every captured request, in sending order.
fn bodies() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.ends_with(".json") && n != "expected.json"
        })
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join("expected.json")).unwrap()).unwrap()
}

fn ms(seconds: &Value) -> i64 {
    (seconds.as_f64().unwrap() * 1000.0).round() as i64
}

#[test]
fn every_captured_event_decodes_to_what_the_client_sent() {
    let exp = expected();
    let sent = exp["events"].as_array().unwrap();
    let bodies = bodies();
    assert_eq!(bodies.len(), sent.len(), "one body per sent event");
    for ((file, body), want) in bodies.iter().zip(sent) {
        let events = decode(body).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(events.len(), 1, "{file}");
        let e = &events[0];
        assert_eq!(e.time_ms, ms(&want["time"]), "{file}");
        assert_eq!(
            e.producer, "https://github.com/pipewatch/tests/python/lineage_emit.py",
            "{file}"
        );
        match want["kind"].as_str().unwrap() {
            "run" => {
                assert_eq!(e.kind, EventKind::Run, "{file}");
                assert_eq!(
                    e.event_type.unwrap().as_str(),
                    want["eventType"].as_str().unwrap(),
                    "{file}"
                );
                assert_eq!(e.run.as_ref().unwrap().run_id, want["runId"], "{file}");
                assert_eq!(e.job.as_ref().unwrap().name, want["job"], "{file}");
                assert_eq!(e.job.as_ref().unwrap().namespace, exp["namespace"]);
            }
            "job" => {
                assert_eq!(e.kind, EventKind::Job, "{file}");
                assert!(e.run.is_none() && e.event_type.is_none());
                assert_eq!(e.job.as_ref().unwrap().name, want["job"], "{file}");
            }
            "dataset" => {
                assert_eq!(e.kind, EventKind::Dataset, "{file}");
                assert_eq!(e.dataset.as_ref().unwrap().id.name, want["dataset"]);
                assert!(e.job.is_none());
            }
            k => panic!("unknown kind {k}"),
        }
    }
}

#[test]
fn input_output_edges_match_the_scenario() {
    let exp = expected();
    let mut edges = Vec::new();
    for (_, body) in bodies() {
        for e in decode(&body).unwrap() {
            let Some(job) = &e.job else { continue };
            let j = format!("{}/{}", job.namespace, job.name);
            for d in &e.inputs {
                edges.push(vec![
                    "dataset".to_string(),
                    format!("{}/{}", d.id.namespace, d.id.name),
                    "job".to_string(),
                    j.clone(),
                ]);
            }
            for d in &e.outputs {
                edges.push(vec![
                    "job".to_string(),
                    j.clone(),
                    "dataset".to_string(),
                    format!("{}/{}", d.id.namespace, d.id.name),
                ]);
            }
        }
    }
    edges.sort();
    edges.dedup();
    let want: Vec<Vec<String>> = serde_json::from_value(exp["edges"].clone()).unwrap();
    assert_eq!(edges, want);
}

#[test]
fn run_facets_carry_error_message_and_parent() {
    let exp = expected();
    let body = std::fs::read(dir().join("07-train_model-fail.json")).unwrap();
    let e = decode(&body).unwrap().remove(0);
    assert_eq!(e.event_type, Some(RunEventType::Fail));
    let run = e.run.unwrap();
    let want = &exp["runs"][&run.run_id];
    assert_eq!(run.error_message.as_deref(), want["error"].as_str());
    let parent = run.parent.unwrap();
    assert_eq!(parent.run_id, want["parent"]["runId"]);
    assert_eq!(parent.job.name, want["parent"]["job"]);
}

#[test]
fn schema_facets_show_the_change_the_client_made() {
    let exp = expected();
    let change = &exp["schema_changes"][0];
    let schema_of = |file: &str| {
        let e = decode(&std::fs::read(dir().join(file)).unwrap())
            .unwrap()
            .remove(0);
        let d = e
            .outputs
            .iter()
            .find(|d| d.id.name == change["dataset"])
            .unwrap()
            .clone();
        flatten_schema(&d.schema.unwrap())
            .into_iter()
            .collect::<BTreeMap<_, _>>()
    };
    let before = schema_of("03-ingest_orders-complete.json");
    let after = schema_of("05-ingest_orders-complete.json");
    let added: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    let removed: Vec<&String> = before.keys().filter(|k| !after.contains_key(*k)).collect();
    assert_eq!(
        added,
        change["added"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect::<Vec<_>>()
    );
    assert!(removed.is_empty() && change["removed"].as_array().unwrap().is_empty());
    for t in change["type_changed"].as_array().unwrap() {
        let n = t["name"].as_str().unwrap();
        assert_eq!(before[n].as_deref(), t["from"].as_str());
        assert_eq!(after[n].as_deref(), t["to"].as_str());
    }
}

/// Value of the one sample of `metric` whose labels include all of `labels`.
fn value(series: &[model::TimeSeries], metric: &str, labels: &[(&str, &str)]) -> f64 {
    let hits: Vec<_> = series
        .iter()
        .filter(|s| {
            s.key.metric == metric && labels.iter().all(|(k, v)| s.key.labels.get(k) == Some(v))
        })
        .collect();
    assert_eq!(hits.len(), 1, "{metric}{labels:?}: {hits:?}");
    hits[0].samples[0].value
}

#[test]
fn facets_become_series_with_the_sent_values() {
    let exp = expected();
    let fail = decode(&std::fs::read(dir().join("07-train_model-fail.json")).unwrap())
        .unwrap()
        .remove(0);
    let s = facet_series(&fail);
    let dq = &exp["dq"];
    let ds = dq["dataset"].as_str().unwrap();
    assert!(s.iter().all(|x| x.samples[0].ts == fail.time_ms));
    assert_eq!(
        value(&s, "openlineage_dataset_rows", &[("dataset", ds)]),
        dq["rowCount"].as_f64().unwrap()
    );
    assert_eq!(
        value(&s, "openlineage_dataset_bytes", &[("dataset", ds)]),
        dq["bytes"].as_f64().unwrap()
    );
    for (col, m) in dq["columns"].as_object().unwrap() {
        for (field, metric) in [
            ("nullCount", "openlineage_dataset_column_nulls"),
            (
                "distinctCount",
                "openlineage_dataset_column_distinct_values",
            ),
            ("sum", "openlineage_dataset_column_sum"),
            ("count", "openlineage_dataset_column_values"),
            ("min", "openlineage_dataset_column_min"),
            ("max", "openlineage_dataset_column_max"),
        ] {
            if let Some(want) = m.get(field) {
                assert_eq!(
                    value(&s, metric, &[("dataset", ds), ("column", col)]),
                    want.as_f64().unwrap(),
                    "{col}.{field}"
                );
            }
        }
        for (q, want) in m["quantiles"].as_object().into_iter().flatten() {
            assert_eq!(
                value(
                    &s,
                    "openlineage_dataset_column_quantile",
                    &[("column", col), ("quantile", q)]
                ),
                want.as_f64().unwrap()
            );
        }
    }
    for a in dq["assertions"].as_array().unwrap() {
        let mut l = vec![("assertion", a["assertion"].as_str().unwrap())];
        if let Some(c) = a["column"].as_str() {
            l.push(("column", c));
        }
        let v = value(&s, "openlineage_dataset_assertion_success", &l);
        assert_eq!(
            v,
            if a["success"].as_bool().unwrap() {
                1.0
            } else {
                0.0
            }
        );
    }

    // outputStatistics of the first COMPLETE: 1000 rows, 52000 bytes, 2 files (lineage_emit.py).
    let done = decode(&std::fs::read(dir().join("03-ingest_orders-complete.json")).unwrap())
        .unwrap()
        .remove(0);
    let s = facet_series(&done);
    let l = [("dataset", "warehouse.orders"), ("job", "ingest_orders")];
    assert_eq!(value(&s, "openlineage_dataset_output_rows", &l), 1000.0);
    assert_eq!(value(&s, "openlineage_dataset_output_bytes", &l), 52000.0);
    assert_eq!(value(&s, "openlineage_dataset_output_files", &l), 2.0);
    let l = [("dataset", "raw.orders"), ("job", "ingest_orders")];
    assert_eq!(value(&s, "openlineage_dataset_input_rows", &l), 1200.0);
    assert_eq!(value(&s, "openlineage_dataset_input_bytes", &l), 65536.0);
    assert_eq!(
        value(
            &s,
            "openlineage_dataset_schema_fields",
            &[("dataset", "warehouse.orders")]
        ),
        3.0
    );
}

#[test]
fn an_array_of_events_decodes_in_order() {
    let mut arr = Vec::new();
    for (_, b) in bodies() {
        arr.push(serde_json::from_slice::<Value>(&b).unwrap());
    }
    let body = serde_json::to_vec(&arr).unwrap();
    let events = decode(&body).unwrap();
    assert_eq!(events.len(), arr.len());
    assert!(events.windows(2).all(|w| w[0].time_ms <= w[1].time_ms));
}

fn err(body: &str) -> String {
    match decode(body.as_bytes()) {
        Ok(e) => panic!("{body} decoded: {e:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn malformed_events_are_refused_naming_the_field() {
    assert_eq!(decode(b"  \n"), Err(OpenLineageError::EmptyBody));
    let e = err("{\"eventTime\": ");
    assert!(e.starts_with("body is not an OpenLineage event"), "{e}");
    let e = err(
        r#"{"eventTime":"2026-01-01T00:00:00Z","run":{"runId":5},"job":{"namespace":"n","name":"j"}}"#,
    );
    assert!(e.contains("run.runId") && e.contains("invalid type"), "{e}");
    let e = err(r#"{"eventTime":"yesterday","job":{"namespace":"n","name":"j"}}"#);
    assert!(
        e.contains("event.eventTime") && e.contains("ISO-8601"),
        "{e}"
    );
    let e = err(r#"{"job":{"namespace":"n","name":"j"}}"#);
    assert!(e.contains("eventTime is missing"), "{e}");
    let e = err(
        r#"{"eventTime":"2026-01-01T00:00:00Z","eventType":"DONE","run":{"runId":"r"},"job":{"namespace":"n","name":"j"}}"#,
    );
    assert!(e.contains("eventType") && e.contains("START"), "{e}");
    let e = err(r#"{"eventTime":"2026-01-01T00:00:00Z"}"#);
    assert!(e.contains("neither"), "{e}");
    let e = err(
        r#"[{"eventTime":"2026-01-01T00:00:00Z","job":{"namespace":"n","name":"j"}},{"eventTime":"2026-01-01T00:00:00Z","job":{"namespace":"n","name":"j"},"inputs":[{"namespace":"n","name":"d","inputFacets":{"dataQualityMetrics":{"rowCount":"many","columnMetrics":{}}}}]}]"#,
    );
    assert!(
        e.contains("[1].inputs[0].inputFacets.dataQualityMetrics.rowCount"),
        "{e}"
    );
    let e = err(r#"{"eventTime":"2026-01-01T00:00:00Z","job":{"namespace":"","name":"j"}}"#);
    assert!(e.contains("event.job: namespace is empty"), "{e}");
    let e = err("[]");
    assert!(e.contains("no events"), "{e}");
}

#[test]
fn unknown_facets_and_fields_are_ignored_and_times_without_offset_are_utc() {
    let e = decode(
        br#"{"eventTime":"2026-01-01T00:00:01.5","eventType":"START","run":{"runId":"r","facets":{"spark_version":{"x":1}}},"job":{"namespace":"n","name":"j","facets":{"sql":{"query":"select 1"}}},"extra":true}"#,
    )
    .unwrap()
    .remove(0);
    assert_eq!(e.time_ms, 1_767_225_601_500);
    assert_eq!(e.event_type, Some(openlineage::RunEventType::Start));
}
