//! The demo pipeline's jobs report their runs with OpenLineage, as an Airflow or Spark
//! integration would: a `START` and a `COMPLETE` (or `FAIL`) `RunEvent` per run, with the
//! input and output datasets, the output's schema and row count, and data-quality metrics on
//! inputs. Runs and their ids are a pure function of time, so re-sending a run is a no-op for
//! the store (events are unique on run, type and time).
//!
//! Faults show the way they would in a real pipeline: a stalled stage's runs fail; a volume
//! drop shrinks row counts from that stage on; a schema change adds a column to the stage's
//! output; a data-quality failure raises the null count the next job sees on its input; latency
//! makes the stage's runs six times longer.

use super::{Fault, FaultKind};
use serde_json::{json, Value};

/// A job runs every 5 minutes.
const RUN_EVERY_MS: i64 = 5 * 60_000;
/// Runs re-sent per push (the last ones that have ended).
const RUNS_PER_PUSH: i64 = 3;
const NAMESPACE: &str = "demo";
const PRODUCER: &str = "https://github.com/pipewatch/pipewatch/tree/main/demo/src/lineage.rs";

struct Job {
    name: &'static str,
    /// Index of the simulated stage (`super::STAGES`).
    stage: usize,
    input: &'static str,
    output: &'static str,
    columns: &'static [(&'static str, &'static str)],
    rows: f64,
    /// Offset of the run start within the 5-minute slot.
    offset_ms: i64,
}

const JOBS: [Job; 3] = [
    Job {
        name: "stream_ingest",
        stage: 0,
        input: "kafka.events",
        output: "raw_events",
        columns: &[
            ("event_id", "STRING"),
            ("payload", "JSON"),
            ("received_at", "TIMESTAMP"),
        ],
        rows: 360_000.0,
        offset_ms: 0,
    },
    Job {
        name: "transform",
        stage: 1,
        input: "raw_events",
        output: "clean_orders",
        columns: &[
            ("order_id", "BIGINT"),
            ("customer_id", "BIGINT"),
            ("amount", "DECIMAL(10,2)"),
            ("created_at", "TIMESTAMP"),
        ],
        rows: 345_000.0,
        offset_ms: 60_000,
    },
    Job {
        name: "feature_store",
        stage: 2,
        input: "clean_orders",
        output: "features_daily",
        columns: &[
            ("customer_id", "BIGINT"),
            ("basket_value", "DOUBLE"),
            ("orders_7d", "INT"),
        ],
        rows: 12_000.0,
        offset_ms: 120_000,
    },
];

/// RFC 3339 in UTC with milliseconds, as OpenLineage clients write `eventTime`.
pub(super) fn rfc3339(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let (y, m, d) = model::civil::civil_from_days(days);
    let rem = ms.rem_euclid(86_400_000);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// A stable UUID-shaped run id for a job's run number.
pub(super) fn run_id(job: &str, run: i64) -> String {
    let h = xxhash_rust::xxh3::xxh3_128(format!("{job}/{run}").as_bytes());
    let b = h.to_be_bytes();
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]) & 0x0fff,
        u16::from_be_bytes([b[8], b[9]]) & 0x0fff,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]])
    )
}

fn dataset(name: &str) -> Value {
    json!({"namespace": NAMESPACE, "name": name, "facets": {}})
}

/// The START and final event of `job`'s run number `run`, if that run has ended by `t_ms`.
fn run_events(job: &Job, run: i64, t_ms: i64, fault: Option<Fault>) -> Option<[Value; 2]> {
    let start = run * RUN_EVERY_MS + job.offset_ms;
    let active = fault.filter(|f| f.in_effect(start));
    let hits = |kind| active.is_some_and(|f: Fault| f.kind == kind && f.stage == job.stage);
    let upstream = |kind| active.is_some_and(|f: Fault| f.kind == kind && f.stage <= job.stage);
    let duration =
        if hits(FaultKind::Latency) { 6 } else { 1 } * (40_000 + run.rem_euclid(7) * 3_000);
    let end = start + duration;
    if end > t_ms {
        return None;
    }
    let id = run_id(job.name, run);
    let job_ref = json!({"namespace": NAMESPACE, "name": job.name, "facets": {}});
    let base = |event_type: &str, time: i64| {
        json!({
            "eventType": event_type,
            "eventTime": rfc3339(time),
            "producer": PRODUCER,
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": id, "facets": {}},
            "job": job_ref,
            "inputs": [dataset(job.input)],
            "outputs": [dataset(job.output)],
        })
    };
    let started = base("START", start);
    let mut ended = base("COMPLETE", end);
    if hits(FaultKind::Stall) {
        ended["eventType"] = json!("FAIL");
        ended["run"]["facets"]["errorMessage"] = json!({
            "_producer": PRODUCER,
            "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
            "message": format!("{} stalled: no progress on {} for {} s", job.name, job.input, duration / 1000),
            "programmingLanguage": "python",
        });
        return Some([started, ended]);
    }
    let stalled_upstream =
        active.is_some_and(|f| f.kind == FaultKind::Stall && f.stage < job.stage);
    let volume = if stalled_upstream {
        0.0
    } else if upstream(FaultKind::VolumeDrop) {
        0.2
    } else {
        1.0
    };
    let rows = (job.rows * volume).round() as i64;
    let mut fields: Vec<Value> = job
        .columns
        .iter()
        .map(|(n, t)| json!({"name": n, "type": t}))
        .collect();
    if hits(FaultKind::SchemaChange) {
        fields.push(json!({"name": "discount_code", "type": "STRING"}));
    }
    ended["outputs"][0]["facets"]["schema"] = json!({
        "_producer": PRODUCER,
        "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
        "fields": fields,
    });
    ended["outputs"][0]["outputFacets"] = json!({"outputStatistics": {
        "_producer": PRODUCER,
        "_schemaURL": "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet",
        "rowCount": rows,
        "size": rows * 120,
    }});
    // The input was written by the previous stage; a DQ failure there shows as nulls here.
    let broken_input = active.is_some_and(|f| {
        f.kind == FaultKind::DqFailure && job.stage > 0 && f.stage == job.stage - 1
    });
    let input_rows = (JOBS[job.stage.saturating_sub(1)].rows * volume).round() as i64;
    let null_ratio = if broken_input { 0.12 } else { 0.001 };
    ended["inputs"][0]["inputFacets"] = json!({"dataQualityMetrics": {
        "_producer": PRODUCER,
        "_schemaURL": "https://openlineage.io/spec/facets/1-0-2/DataQualityMetricsInputDatasetFacet.json#/$defs/DataQualityMetricsInputDatasetFacet",
        "rowCount": input_rows,
        "columnMetrics": {"customer_id": {"nullCount": (input_rows as f64 * null_ratio).round() as i64}},
    }});
    Some([started, ended])
}

/// The events of every job's last few ended runs at `t_ms`, as one JSON array body.
pub fn events(t_ms: i64, fault: Option<Fault>) -> Vec<Value> {
    let mut out = Vec::new();
    for job in &JOBS {
        let current = (t_ms - job.offset_ms).div_euclid(RUN_EVERY_MS);
        for run in (current - RUNS_PER_PUSH..=current).rev() {
            if let Some(pair) = run_events(job, run, t_ms, fault) {
                out.extend(pair);
            }
        }
    }
    out
}

/// POSTs [`events`] to `{base_url}/api/v1/lineage`.
pub async fn push(http: &reqwest::Client, base_url: &str, t_ms: i64, fault: Option<Fault>) {
    let sent = http
        .post(format!("{base_url}/api/v1/lineage"))
        .json(&events(t_ms, fault))
        .send()
        .await;
    super::push::log_outcome(sent, "OpenLineage").await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use collectors::openlineage::{decode, RunEventType};

    const T0: i64 = 1_800_000_000_000;

    fn decoded(t: i64, fault: Option<Fault>) -> Vec<collectors::openlineage::LineageEvent> {
        decode(&serde_json::to_vec(&events(t, fault)).unwrap()).expect("the demo's events decode")
    }

    #[test]
    fn every_job_reports_start_and_complete_with_datasets_and_rfc3339_times() {
        let evs = decoded(T0, None);
        for job in ["stream_ingest", "transform", "feature_store"] {
            let of_job: Vec<_> = evs
                .iter()
                .filter(|e| e.job.as_ref().is_some_and(|j| j.name == job))
                .collect();
            let count = |t| of_job.iter().filter(|e| e.event_type == Some(t)).count();
            let (starts, completes) = (count(RunEventType::Start), count(RunEventType::Complete));
            assert!(
                starts >= 3 && starts == completes,
                "{job}: {starts} START, {completes} COMPLETE"
            );
            assert!(of_job
                .iter()
                .all(|e| e.inputs.len() == 1 && e.outputs.len() == 1));
        }
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_707_791_316), "2026-11-26T15:43:11.316Z");
        let ids: std::collections::HashSet<String> = events(T0, None)
            .iter()
            .map(|e| e["run"]["runId"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            ids.len() * 2,
            evs.len(),
            "one run id per START/COMPLETE pair"
        );
        assert!(ids
            .iter()
            .all(|id| id.len() == 36 && id.as_bytes()[14] == b'4'));
        // Run ids are stable: the next push re-sends the same runs.
        assert_eq!(events(T0, None), events(T0, None));
    }

    #[test]
    fn faults_show_in_the_events() {
        let at = |kind| Fault::new(kind, "transform", T0 - 3_600_000).ok();
        let transform = |evs: &[Value]| -> Vec<Value> {
            evs.iter()
                .filter(|e| e["job"]["name"] == "transform")
                .cloned()
                .collect()
        };
        let stalled = transform(&events(T0, at(FaultKind::Stall)));
        assert!(stalled.iter().any(|e| e["eventType"] == "FAIL"));
        let failed = decoded(T0, at(FaultKind::Stall));
        assert!(failed
            .iter()
            .any(|e| e.event_type == Some(RunEventType::Fail)));

        let rows = |f| {
            transform(&events(T0, f))[1]["outputs"][0]["outputFacets"]["outputStatistics"]
                ["rowCount"]
                .as_i64()
                .unwrap()
        };
        assert_eq!(rows(at(FaultKind::VolumeDrop)) * 5, rows(None));

        let columns = |f| {
            transform(&events(T0, f))[1]["outputs"][0]["facets"]["schema"]["fields"]
                .as_array()
                .unwrap()
                .len()
        };
        assert_eq!(columns(at(FaultKind::SchemaChange)), columns(None) + 1);

        let nulls = |f| {
            events(T0, f)
                .iter()
                .find(|e| e["job"]["name"] == "feature_store" && e["eventType"] == "COMPLETE")
                .unwrap()["inputs"][0]["inputFacets"]["dataQualityMetrics"]["columnMetrics"]
                ["customer_id"]["nullCount"]
                .as_i64()
                .unwrap()
        };
        assert!(nulls(at(FaultKind::DqFailure)) > 50 * nulls(None));
    }
}
