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
//!   `receivers.max_body_bytes` (or `max_decompressed_bytes` once inflated); 415 for another
//!   content type or encoding;
//! - 503 with `Retry-After` when the ingest queue has no room (checked before anything is
//!   recorded) or the database fails; events recorded before the failure are duplicates on the
//!   retry, so a retry never double-counts.

use super::{ReceiverError, ReceiverState};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use collectors::openlineage::{self as decoder, flatten_schema, LineageEvent, RunOutcome};
use model::{Batch, Labels, MetricType, Sample, SeriesKey, TimeSeries};
use std::io::Read;
use store::lineage::{DatasetRecord, EventKind, EventRecord, Qualified};

pub const RECEIVER: &str = "openlineage";

/// The handler of `POST /api/v1/lineage`.
pub async fn post(State(st): State<ReceiverState>, headers: HeaderMap, body: Body) -> Response {
    match accept(&st, &headers, body).await {
        Ok((accepted, duplicates)) => {
            st.app.metrics.receiver_answered(RECEIVER, 201, None);
            (
                StatusCode::CREATED,
                Json(serde_json::json!({"accepted": accepted, "duplicates": duplicates})),
            )
                .into_response()
        }
        Err(e) => {
            st.app
                .metrics
                .receiver_answered(RECEIVER, e.status.as_u16(), Some(&e.message));
            e.into_response()
        }
    }
}

async fn accept(
    st: &ReceiverState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(usize, usize), ReceiverError> {
    let gzip = check_headers(headers)?;
    let body = super::read_body(
        headers,
        body,
        st.config.max_body_bytes,
        "send fewer events per request",
    )
    .await?;
    let body = if gzip {
        gunzip(&body, st.config.max_decompressed_bytes)?
    } else {
        body
    };
    let events = decoder::decode(&body).map_err(|e| ReceiverError::bad_request(e.to_string()))?;
    for (i, e) in events.iter().enumerate() {
        if !store::pgcopy::timestamp_in_range(e.time_ms) {
            return Err(ReceiverError::bad_request(format!(
                "event {i}: eventTime {} is outside what PostgreSQL can store; send a real date-time",
                e.event_time
            )));
        }
    }
    // Refuse before recording anything when the queue cannot take the series: once an event
    // is recorded, its retry is a duplicate and would not bring its series again.
    let facet: Vec<Vec<TimeSeries>> = events.iter().map(decoder::facet_series).collect();
    let needed: usize = facet.iter().flatten().count() + 3 * events.len();
    let (depth, capacity) = (st.app.queue.depth(), st.app.queue.capacity());
    if depth + needed > capacity {
        return Err(ReceiverError {
            status: StatusCode::from_u16(st.config.queue_full_status)
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            message: format!(
                "ingest queue is full ({depth} of {capacity} samples); retry after the Retry-After delay"
            ),
            retry_after: Some(1),
        });
    }
    let mut batch = Batch::default();
    let (mut accepted, mut duplicates) = (0, 0);
    for (e, series) in events.iter().zip(facet) {
        let outcome = st
            .app
            .store
            .record_lineage_event(&record(e))
            .await
            .map_err(|err| {
                tracing::error!(error = %err, "recording an OpenLineage event failed");
                ReceiverError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    message: format!("the database did not take the event, retry later: {err}"),
                    retry_after: Some(5),
                }
            })?;
        if outcome.duplicate {
            duplicates += 1;
            continue;
        }
        accepted += 1;
        batch.series.extend(series);
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
        st.push(RECEIVER, batch)?;
    }
    Ok((accepted, duplicates))
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

/// Checks framing; returns whether the body is gzip-encoded.
fn check_headers(headers: &HeaderMap) -> Result<bool, ReceiverError> {
    let get = |name: header::HeaderName| {
        headers
            .get(&name)
            .map(|v| {
                v.to_str().map(str::trim).map_err(|_| {
                    ReceiverError::bad_request(format!("header {name} is not visible ASCII"))
                })
            })
            .transpose()
    };
    if let Some(ct) = get(header::CONTENT_TYPE)? {
        let media = ct.split(';').next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case("application/json") {
            return Err(ReceiverError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Type {ct:?} is not supported; send OpenLineage events as Content-Type: application/json"),
            ));
        }
    }
    match get(header::CONTENT_ENCODING)? {
        None => Ok(false),
        Some(enc) if enc.eq_ignore_ascii_case("identity") => Ok(false),
        Some(enc) if enc.eq_ignore_ascii_case("gzip") => Ok(true),
        Some(enc) => Err(ReceiverError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Encoding {enc:?} is not supported; send the JSON plain or with Content-Encoding: gzip"),
        )),
    }
}

fn too_large(limit: usize, key: &str) -> ReceiverError {
    ReceiverError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body is larger than {limit} bytes ({key}); send fewer events per request or raise the limit"),
    )
}

fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, ReceiverError> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            ReceiverError::bad_request(format!(
                "body is not valid gzip ({e}); send gzip data with Content-Encoding: gzip, or plain JSON without it"
            ))
        })?;
    if out.len() > limit {
        return Err(too_large(limit, "receivers.max_decompressed_bytes"));
    }
    Ok(out)
}
