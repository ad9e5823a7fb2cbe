//! `POST /api/v1/lineage`: the OpenLineage receiver (what Marquez serves at the same path, and
//! the default endpoint of every OpenLineage client's HTTP transport).
//!
//! A body is one event or a JSON array of events, `application/json`, optionally gzip-encoded
//! (openlineage-python's `compression: gzip`). Each event is recorded in the pipeline graph
//! ([`store::lineage`]) and its facets and run outcome become series through the ingest queue
//! (see `docs/ARCHITECTURE.md` for the names). Answers:
//!
//! - 201 with `{"accepted": n, "duplicates": m}` once every event is recorded and its series
//!   queued; a re-sent event (same run, eventType and eventTime) is a duplicate and changes
//!   nothing;
//! - 400 naming the event and field when the body is not OpenLineage; 413 over
//!   `receivers.max_body_bytes` (or `max_decompressed_bytes` once inflated); 415 without
//!   `Content-Type: application/json` or for another encoding (the kernel);
//! - 503 with `Retry-After` when the ingest queue has no room (checked before anything is
//!   recorded) or the database fails; events recorded before the failure are duplicates on the
//!   retry, so a retry never double-counts.

use super::{Accepted, Payload, Receiver, ReceiverError, ReceiverState};
use axum::extract::State;
use axum::http::StatusCode;
use collectors::openlineage::{self as decoder, flatten_schema, LineageEvent, RunOutcome};
use model::{Batch, Labels, MetricType, Sample, SeriesKey, TimeSeries};
use serde::Serialize;
use store::lineage::{DatasetRecord, EventKind, EventRecord, Qualified};

/// What a lineage post answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Answer {
    /// Events recorded now.
    pub accepted: usize,
    /// Events already recorded (a re-sent event).
    pub duplicates: usize,
}

/// The handler of `POST /api/v1/lineage`.
pub async fn post(
    State(st): State<ReceiverState>,
    payload: Payload,
) -> Result<Accepted, ReceiverError> {
    let events = payload
        .decode(|raw| decoder::decode(raw).map_err(|e| ReceiverError::Malformed(e.to_string())))
        .await?;
    let answer = record_events(&st, &events).await?;
    Ok(Accepted::json(StatusCode::CREATED, &answer))
}

async fn record_events(
    st: &ReceiverState,
    events: &[LineageEvent],
) -> Result<Answer, ReceiverError> {
    for (i, e) in events.iter().enumerate() {
        if !store::pgcopy::timestamp_in_range(e.time_ms) {
            return Err(ReceiverError::Malformed(format!(
                "event {i}: eventTime {} is outside what PostgreSQL can store; send a real date-time",
                e.event_time
            )));
        }
    }
    // Refuse before recording anything when the queue cannot take the series: once an event
    // is recorded, its retry is a duplicate and would not bring its series again.
    let facet: Vec<Vec<TimeSeries>> = events.iter().map(decoder::facet_series).collect();
    // Up to four run series per event (`decoder::run_series`) and a schema change.
    st.reserve(facet.iter().flatten().count() + 4 * events.len())?;
    let mut batch = Batch::default();
    let (mut accepted, mut duplicates) = (0, 0);
    for (e, series) in events.iter().zip(facet) {
        let outcome = st
            .app
            .store
            .record_lineage_event(&record(e))
            .await
            .map_err(|e| ReceiverError::storage("event", &e))?;
        if outcome.duplicate {
            duplicates += 1;
            continue;
        }
        accepted += 1;
        batch.series.extend(series);
        record_column_profiles(&st.app.store, e).await;
        let run = RunOutcome {
            ended: outcome.ended.as_ref().and_then(|(state, secs)| {
                decoder::RunEventType::from_name(state).map(|s| (s, *secs))
            }),
            runs_in_state: outcome.runs_in_state.map(|n| n as u64),
        };
        batch.series.extend(decoder::run_series(e, &run));
        for c in &outcome.schema_changes {
            tracing::info!(
                dataset = %format!("{}/{}", c.dataset.namespace, c.dataset.name),
                from = c.from_version, to = c.to_version,
                added = ?c.added, removed = ?c.removed, type_changed = ?c.type_changed,
                "dataset schema changed"
            );
            batch.series.push(TimeSeries {
                key: SeriesKey::new(
                    "openlineage_dataset_schema_changes_total",
                    Labels::from_pairs([
                        ("namespace", c.dataset.namespace.as_str()),
                        ("dataset", c.dataset.name.as_str()),
                    ]),
                ),
                metric_type: MetricType::Counter,
                samples: vec![Sample {
                    ts: c.changed_at_ms,
                    value: c.changes_total as f64,
                }],
            });
        }
    }
    if !batch.is_empty() {
        st.push(Receiver::OpenLineage, batch)?;
    }
    Ok(Answer {
        accepted,
        duplicates,
    })
}

/// Column statistics (`dataQualityMetrics.columnMetrics` with `quantiles`) become column
/// profiles for the drift job, at the event's time, approximated from the quantiles
/// ([`analysis::drift::NumericProfile::from_quantiles`]). The event is already recorded when
/// this runs and a retry would be a duplicate, so a failure is logged, not answered.
async fn record_column_profiles(store: &store::Store, e: &LineageEvent) {
    let all = e.inputs.iter().chain(&e.outputs).chain(e.dataset.as_ref());
    for d in all {
        let Some(q) = &d.quality else { continue };
        for (column, m) in &q.column_metrics {
            let quantiles: Vec<(f64, f64)> = m
                .quantiles
                .iter()
                .filter_map(|(p, v)| p.parse::<f64>().ok().map(|p| (p, *v)))
                .collect();
            if quantiles.is_empty() {
                continue;
            }
            let Some(p) = analysis::drift::NumericProfile::from_quantiles(
                &quantiles,
                m.min,
                m.max,
                m.count.or(q.row_count),
            ) else {
                continue;
            };
            let profile = analysis::drift::ColumnProfile::Numeric(p);
            let row = store::profiles::NewColumnProfile {
                dataset: d.id.name.clone(),
                column: column.clone(),
                at_ms: e.time_ms,
                kind: "numeric",
                value_count: profile.count(),
                profile: serde_json::to_value(&profile).unwrap_or_default(),
            };
            if let Err(err) = store.insert_column_profile(&row).await {
                tracing::warn!(dataset = %d.id.name, %column, error = %err, "openlineage: a column profile from columnMetrics was not stored");
            }
        }
    }
}

/// The store's view of a decoded event.
pub fn record(e: &LineageEvent) -> EventRecord {
    let q = |n: &decoder::Name| Qualified::new(n.namespace.clone(), n.name.clone());
    let ds = |d: &decoder::DatasetInfo| DatasetRecord {
        id: Some(q(&d.id)),
        schema: d.schema.as_deref().map(flatten_schema),
    };
    EventRecord {
        kind: match e.kind {
            decoder::EventKind::Run => EventKind::Run,
            decoder::EventKind::Job => EventKind::Job,
            decoder::EventKind::Dataset => EventKind::Dataset,
        },
        event_type: e.event_type.map(|t| t.as_str().to_string()),
        time_ms: e.time_ms,
        producer: e.producer.clone(),
        run_id: e.run.as_ref().map(|r| r.run_id.clone()),
        job: e.job.as_ref().map(q),
        parent_run_id: e
            .run
            .as_ref()
            .and_then(|r| r.parent.as_ref())
            .map(|p| p.run_id.clone()),
        parent_job: e
            .run
            .as_ref()
            .and_then(|r| r.parent.as_ref())
            .map(|p| q(&p.job)),
        error_message: e.run.as_ref().and_then(|r| r.error_message.clone()),
        inputs: e.inputs.iter().map(ds).collect(),
        outputs: e.outputs.iter().map(ds).collect(),
        dataset: e.dataset.as_ref().map(ds),
    }
}
