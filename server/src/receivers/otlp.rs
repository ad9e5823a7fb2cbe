//! OTLP/HTTP receiver: `POST /v1/metrics`, `/v1/traces` and `/v1/logs`, per the OTLP
//! specification's OTLP/HTTP section, and the ingest steps it shares with the gRPC receiver
//! ([`super::otlp_grpc`]).
//!
//! - `Content-Type: application/x-protobuf` (binary protobuf) or `application/json`
//!   (OTLP/JSON); anything else, or none, gets 415 saying which to send (the kernel,
//!   [`super::kernel`]).
//! - `Content-Encoding: gzip`, `deflate` (zlib, RFC 1950) or `identity`; others get 415.
//! - Bodies over `receivers.max_body_bytes` (as sent) or `receivers.max_decompressed_bytes`
//!   (inflated) get 413; decoding runs off the async runtime ([`super::body`]).
//! - A malformed body gets 400 with an OTLP `google.rpc.Status` body, in the request's
//!   encoding, whose message names the problem.
//! - Success is 200 with an `Export*ServiceResponse` in the request's encoding: empty (JSON
//!   `{}`) when everything was stored, with `partial_success` (count and reasons) when some
//!   data points were refused: by the mapping, by `[limits]`, or outside the intake window
//!   ([`crate::ingest::window`]). OTLP senders do not retry a partial success. The count is of
//!   data points: the series one histogram or summary point becomes (buckets, `_sum`,
//!   `_count`) count once ([`crate::guard::RefusedPoints`]).
//! - A full ingest queue gets `receivers.queue_full_status` (503 by default, or 429) with
//!   `Retry-After`; OTLP exporters retry 429, 502, 503 and 504 and honour `Retry-After`.
//!
//! Metrics protobuf bodies are decoded by the borrowing decoder of [`collectors::otlp::wire`]
//! (prost for what it does not take, and for OTLP/JSON and gRPC), and mapped from the
//! resulting view with [`collectors::otlp::metrics`]; the delta accumulator's new totals
//! are committed only once the batch is in the queue, so a refused request that the sender
//! retries is not counted twice. The accumulator is sharded by `job` ([`DeltaShards`]), so
//! requests of different services do not wait for each other.
//!
//! Traces become spanmetrics-style request/error/duration series plus failed and slow span
//! evidence, logs become counts by severity plus WARN+ record evidence ([`traces_received`],
//! [`logs_received`], built on `collectors::otlp::{traces, logs}` and [`super::otlp_signals`]).

use super::body::Payload;
use super::kind::MediaType;
use super::{Accepted, Receiver, ReceiverError, ReceiverState};
use axum::extract::State;
use axum::http::StatusCode;
use collectors::otlp::attributes::value_string;
use collectors::otlp::metrics::{DeltaAccumulator, DeltaUpdates, MappedMetrics};
use collectors::otlp::view::{Attr, MetricsView};
use collectors::otlp::wire::MetricsBody;
use collectors::otlp::{
    self, BodyEncoding, ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportRequest,
    ExportTraceServiceRequest,
};
use model::MetricMetadata;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, MutexGuard};

/// `google.rpc.Status`, the body of OTLP error responses (from `tonic-types`).
pub use tonic_types::Status as RpcStatus;

/// What the OTLP receivers keep between requests: the running totals of delta metrics and of
/// the series derived from traces and logs. Lost on restart, which readers see as a counter
/// reset (Prometheus' `rate()` handles that).
#[derive(Debug, Default)]
pub struct OtlpState {
    pub metrics: DeltaShards,
    pub signals: super::otlp_signals::SignalState,
    /// Metric metadata queued recently ([`MetadataSeen`]).
    pub metadata: MetadataSeen,
    /// Raw names of the number points' series taken by id ([`super::KnownRaw`]).
    pub raw_names: store::RawNames,
}

/// How long a family's metadata counts as queued: after this it is queued again with the next
/// request that carries it, so a row changed elsewhere (another instance, an operator) is
/// brought back to what the sender says.
pub const METADATA_REFRESH: std::time::Duration = std::time::Duration::from_secs(600);

/// Families remembered at most; the memory is forgotten whole beyond this (their metadata is
/// then upserted once more).
const METADATA_FAMILIES: usize = 100_000;

/// Metric metadata this instance queued recently. Every OTLP request carries its metrics'
/// type, unit and description; queued each time, they made the writer upsert the same rows in a
/// transaction of their own beside the samples taken by id (a second commit per write). A
/// family's metadata is queued again when what the sender says of it changes, and at least
/// every [`METADATA_REFRESH`].
#[derive(Debug, Default)]
pub struct MetadataSeen {
    queued: Mutex<std::collections::HashMap<String, (MetricMetadata, std::time::Instant)>>,
}

impl MetadataSeen {
    /// Keeps in `metadata` only what was not queued in the last [`METADATA_REFRESH`].
    pub fn retain_unseen(&self, metadata: &mut Vec<MetricMetadata>, now: std::time::Instant) {
        if metadata.is_empty() {
            return;
        }
        let queued = lock(&self.queued);
        metadata.retain(|m| {
            !queued.get(&m.family).is_some_and(|(seen, at)| {
                seen == m && now.saturating_duration_since(*at) < METADATA_REFRESH
            })
        });
    }

    /// Records metadata that was queued (call only once the batch holding it was taken).
    pub fn record(&self, metadata: &[MetricMetadata], now: std::time::Instant) {
        if metadata.is_empty() {
            return;
        }
        let mut queued = lock(&self.queued);
        if queued.len() + metadata.len() > METADATA_FAMILIES {
            queued.clear();
        }
        for m in metadata {
            queued.insert(m.family.clone(), (m.clone(), now));
        }
    }
}

/// Shards of the delta accumulator, one lock each.
pub const DELTA_SHARDS: usize = 16;

/// The delta-metrics accumulator split by the `job` a resource maps to. Every series carries
/// its resource's `job` label, so one series is always in one shard; a request locks only the
/// shards of its resources (in index order, so two requests cannot deadlock), and holds them
/// from mapping to commit so two requests for one delta series cannot interleave between
/// reading the running total and committing it. Resources without a `service.name` all share
/// the shard of the empty `job`; a point attribute `job` on them is the one way a series of
/// theirs could equal a series of a named service, which the single accumulator before this
/// summed and the shards keep apart.
#[derive(Debug)]
pub struct DeltaShards {
    shards: Vec<Mutex<DeltaAccumulator>>,
}

impl Default for DeltaShards {
    fn default() -> Self {
        Self {
            // Each shard has the accumulator's default bound, so the whole tracks at most
            // DELTA_SHARDS times that many delta series.
            shards: (0..DELTA_SHARDS)
                .map(|_| Mutex::new(DeltaAccumulator::default()))
                .collect(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The shard of a resource's series, from the resource's attributes.
fn shard_of(attrs: &[Attr<'_>]) -> usize {
    let get = |k: &str| {
        attrs
            .iter()
            .find(|a| a.key == k)
            .map(|a| value_string(&a.value).into_owned())
            .unwrap_or_default()
    };
    // The same inputs as the mapper's `job` (service.namespace/service.name).
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (get("service.namespace"), get("service.name")).hash(&mut h);
    (h.finish() % DELTA_SHARDS as u64) as usize
}

impl DeltaShards {
    /// Maps a request under the locks of its shards, runs `push` on the merged mapping and
    /// commits the new totals of every shard only when `push` says the batch was taken.
    fn map_push_commit<R>(
        &self,
        view: &MetricsView<'_>,
        mut known: super::KnownRaw<'_>,
        push: impl FnOnce(&mut MappedMetrics) -> (bool, R),
    ) -> R {
        // Per shard, the indexes of its resources in request order.
        let mut parts: Vec<(usize, Vec<usize>)> = Vec::new();
        for (r, rm) in view.resources.iter().enumerate() {
            let i = shard_of(view.attrs(&rm.attrs));
            match parts.iter_mut().find(|(s, _)| *s == i) {
                Some((_, rs)) => rs.push(r),
                None => parts.push((i, vec![r])),
            }
        }
        // Lock in index order, so two requests over the same shards cannot deadlock.
        parts.sort_by_key(|(i, _)| *i);
        let mut guards: Vec<(usize, MutexGuard<'_, DeltaAccumulator>)> = parts
            .iter()
            .map(|(i, _)| (*i, lock(&self.shards[*i])))
            .collect();
        let mut merged = MappedMetrics::default();
        let mut pending: Vec<(usize, DeltaUpdates)> = Vec::new();
        for (i, part) in &parts {
            let guard = &guards.iter().find(|(g, _)| g == i).expect("locked").1;
            let mut m = guard.map_view_resolving(view, part, Some(&mut known));
            pending.push((*i, std::mem::take(&mut m.pending)));
            merged.batch.series.append(&mut m.batch.series);
            merged.resolved.append(&mut m.resolved);
            merged.batch.metadata.append(&mut m.batch.metadata);
            merged.accepted_points += m.accepted_points;
            merged.rejected_points += m.rejected_points;
            merged.exemplars_dropped += m.exemplars_dropped;
            for r in m.rejections {
                if !merged.rejections.contains(&r) {
                    merged.rejections.push(r);
                }
            }
        }
        let (commit, out) = push(&mut merged);
        if commit {
            for (i, updates) in pending {
                let guard = &mut guards.iter_mut().find(|(g, _)| *g == i).expect("locked").1;
                guard.commit(updates);
            }
        }
        out
    }
}

/// What a successful export answers: nothing refused, or some data points refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartialSuccess {
    /// Refused data points (metrics), spans (traces) or log records (logs).
    pub rejected: i64,
    /// Why, for the sender's log; empty when nothing was refused.
    pub message: String,
}

impl PartialSuccess {
    fn add(&mut self, rejected: i64, message: &str) {
        self.rejected += rejected;
        if !message.is_empty() {
            if !self.message.is_empty() {
                self.message.push_str("; ");
            }
            self.message.push_str(message);
        }
    }

    fn is_empty(&self) -> bool {
        self.rejected == 0 && self.message.is_empty()
    }
}

/// Maps, validates and enqueues one metrics request. Shared by HTTP and gRPC.
pub fn ingest_metrics(
    st: &ReceiverState,
    req: ExportMetricsServiceRequest,
) -> Result<PartialSuccess, ReceiverError> {
    ingest_metrics_view(st, &MetricsView::of(&req))
}

/// [`ingest_metrics`] of a request's view, whichever decoder built it.
pub fn ingest_metrics_view(
    st: &ReceiverState,
    view: &MetricsView<'_>,
) -> Result<PartialSuccess, ReceiverError> {
    let now = model::clock::now_ms();
    let known = st.known_series(now);
    st.otlp
        .metrics
        .map_push_commit(view, known.with_raw(&st.otlp.raw_names), |mapped| {
            let r = push_mapped(st, mapped, now);
            // Commit unless the queue refused the batch (a retry must not count twice).
            (r.is_ok(), r)
        })
}

fn push_mapped(
    st: &ReceiverState,
    mapped: &mut MappedMetrics,
    now: model::TimestampMs,
) -> Result<PartialSuccess, ReceiverError> {
    st.app
        .metrics
        .receiver_exemplars_dropped
        .inc_by(mapped.exemplars_dropped as u64);
    let mut partial = PartialSuccess::default();
    // A timestamp PostgreSQL cannot store would make the writer retry forever: refuse it here.
    let mut out_of_range = (0usize, 0usize);
    mapped.batch.series.retain(|s| {
        let storable = s
            .samples
            .iter()
            .all(|x| store::pgcopy::timestamp_in_range(x.ts));
        if !storable {
            out_of_range.0 += 1;
            out_of_range.1 += s.samples.len();
        }
        storable
    });
    if let Some(msg) = mapped.rejection_message() {
        partial.add(mapped.rejected_points as i64, &msg);
    }
    let (series, samples) = out_of_range;
    if series > 0 {
        partial.add(
            samples as i64,
            &format!("{series} series had a time_unix_nano outside what PostgreSQL can store (4714 BC to 294276 AD); send Unix nanoseconds"),
        );
    }
    // Points outside the intake window would be deleted by retention (or never queried):
    // refused here and reported, the rest stored.
    let outside = st.window.remove(&mut mapped.batch, now);
    if !outside.is_empty() {
        outside.count_in(&st.app.metrics);
        partial.add(outside.points as i64, &st.window.message(&outside));
    }
    let queued_at = std::time::Instant::now();
    st.otlp
        .metadata
        .retain_unseen(&mut mapped.batch.metadata, queued_at);
    if mapped.batch.is_empty() && mapped.resolved.is_empty() {
        return Ok(partial);
    }
    tracing::debug!(
        points = mapped.accepted_points,
        series = mapped.batch.series.len(),
        known_samples = mapped.resolved.len(),
        rejected = mapped.rejected_points,
        "OTLP metrics accepted"
    );
    // The shared series limits may refuse some series and store the rest: for OTLP that is a
    // partial success, which the sender must not retry. Samples of known series (taken by id
    // while mapping) passed the window and per-series limits already.
    let batch = std::mem::take(&mut mapped.batch);
    let resolved = std::mem::take(&mut mapped.resolved);
    let metadata = batch.metadata.clone();
    let refused = st.push_with_resolved(Receiver::Otlp, batch, resolved)?;
    st.otlp.metadata.record(&metadata, queued_at);
    if let Some(refused) = refused {
        partial.add(refused.points as i64, &refused.message);
    }
    Ok(partial)
}

/// How each signal's decoded request is stored and answered; shared by HTTP and gRPC.
pub trait Ingest: ExportRequest + Sized + Send + 'static {
    /// The signal's `Export*ServiceResponse`.
    type Response: prost::Message + serde::Serialize + Default + Send + 'static;

    fn ingest(
        st: &ReceiverState,
        req: Self,
    ) -> impl std::future::Future<Output = Result<PartialSuccess, ReceiverError>> + Send;

    /// The response for an accepted request; `partial_success` only when something was refused.
    fn response(partial: PartialSuccess) -> Self::Response;
}

impl Ingest for ExportMetricsServiceRequest {
    type Response = ExportMetricsServiceResponse;

    async fn ingest(st: &ReceiverState, req: Self) -> Result<PartialSuccess, ReceiverError> {
        ingest_metrics_body(st, &MetricsBody::Prost(req)).await
    }

    fn response(p: PartialSuccess) -> Self::Response {
        ExportMetricsServiceResponse {
            partial_success: (!p.is_empty()).then_some(ExportMetricsPartialSuccess {
                rejected_data_points: p.rejected,
                error_message: p.message,
            }),
        }
    }
}

impl Ingest for ExportTraceServiceRequest {
    type Response = ExportTraceServiceResponse;

    async fn ingest(st: &ReceiverState, req: Self) -> Result<PartialSuccess, ReceiverError> {
        let r = super::otlp_signals::ingest_traces(st, &req).await?;
        Ok(PartialSuccess {
            rejected: r.rejected,
            message: r.message,
        })
    }

    fn response(p: PartialSuccess) -> Self::Response {
        ExportTraceServiceResponse {
            partial_success: (!p.is_empty()).then_some(ExportTracePartialSuccess {
                rejected_spans: p.rejected,
                error_message: p.message,
            }),
        }
    }
}

impl Ingest for ExportLogsServiceRequest {
    type Response = ExportLogsServiceResponse;

    async fn ingest(st: &ReceiverState, req: Self) -> Result<PartialSuccess, ReceiverError> {
        let r = super::otlp_signals::ingest_logs(st, &req).await?;
        Ok(PartialSuccess {
            rejected: r.rejected,
            message: r.message,
        })
    }

    fn response(p: PartialSuccess) -> Self::Response {
        ExportLogsServiceResponse {
            partial_success: (!p.is_empty()).then_some(ExportLogsPartialSuccess {
                rejected_log_records: p.rejected,
                error_message: p.message,
            }),
        }
    }
}

/// Waits for room in the queue, then maps, validates and enqueues a metrics request.
async fn ingest_metrics_body(
    st: &ReceiverState,
    body: &MetricsBody,
) -> Result<PartialSuccess, ReceiverError> {
    // Mapping runs under the delta accumulator's lock, which cannot be held across a wait:
    // wait for room first, estimated from the encoded size (an uncompressed OTLP point is
    // 100+ bytes on the wire, and held with its labels it takes up to ~1 KB).
    let wire = body.wire_len();
    st.wait_for_room(wire / 64 + 1, wire.saturating_mul(8))
        .await;
    body.with_view(|view| ingest_metrics_view(st, view))
}

/// `POST /v1/metrics`: as [`export`] does for the other signals, but protobuf bodies go
/// through the borrowing decoder ([`MetricsBody`]).
pub async fn metrics(
    State(st): State<ReceiverState>,
    payload: Payload,
) -> Result<Accepted, ReceiverError> {
    let media = payload.media;
    let malformed = |e: otlp::OtlpError| ReceiverError::Malformed(e.to_string());
    let body = match media {
        MediaType::Protobuf => {
            payload
                .decode(move |raw| MetricsBody::decode(raw).map_err(malformed))
                .await?
        }
        MediaType::Json | MediaType::Ndjson => {
            payload
                .decode(move |raw| {
                    otlp::decode(raw, BodyEncoding::Json)
                        .map(MetricsBody::Prost)
                        .map_err(malformed)
                })
                .await?
        }
    };
    let partial = ingest_metrics_body(&st, &body).await?;
    Ok(answer::<ExportMetricsServiceRequest>(media, partial))
}

/// `POST /v1/traces`
pub async fn traces(
    State(st): State<ReceiverState>,
    payload: Payload,
) -> Result<Accepted, ReceiverError> {
    export::<ExportTraceServiceRequest>(&st, payload).await
}

/// `POST /v1/logs`
pub async fn logs(
    State(st): State<ReceiverState>,
    payload: Payload,
) -> Result<Accepted, ReceiverError> {
    export::<ExportLogsServiceRequest>(&st, payload).await
}

async fn export<T: Ingest>(
    st: &ReceiverState,
    payload: Payload,
) -> Result<Accepted, ReceiverError> {
    let media = payload.media;
    let encoding = match media {
        MediaType::Protobuf => BodyEncoding::Protobuf,
        MediaType::Json | MediaType::Ndjson => BodyEncoding::Json,
    };
    let req: T = payload
        .decode(move |raw| {
            otlp::decode::<T>(raw, encoding).map_err(|e| ReceiverError::Malformed(e.to_string()))
        })
        .await?;
    let partial = T::ingest(st, req).await?;
    Ok(answer::<T>(media, partial))
}

/// The response to an accepted export, in the request's encoding.
fn answer<T: Ingest>(media: MediaType, partial: PartialSuccess) -> Accepted {
    let note = partial.message.clone();
    let response = T::response(partial);
    let accepted = match media {
        MediaType::Protobuf => Accepted::protobuf(StatusCode::OK, &response),
        // The official response type's JSON form; without partial_success it is `{}`, which
        // is what OTLP/JSON writes for an empty message.
        MediaType::Json | MediaType::Ndjson => match serde_json::to_value(&response) {
            Ok(serde_json::Value::Object(mut o)) => {
                o.retain(|_, v| !v.is_null());
                Accepted::json(StatusCode::OK, &o)
            }
            _ => Accepted::json(StatusCode::OK, &serde_json::Map::new()),
        },
    };
    accepted.with_note(note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn shard_of(rm: ResourceMetrics) -> usize {
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![rm],
        };
        let view = MetricsView::of(&req);
        super::shard_of(view.attrs(&view.resources[0].attrs))
    }

    fn resource(service: Option<&str>) -> ResourceMetrics {
        ResourceMetrics {
            resource: Some(Resource {
                attributes: service
                    .map(|s| KeyValue {
                        key: "service.name".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(s.into())),
                        }),
                        ..Default::default()
                    })
                    .into_iter()
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn one_service_is_always_in_one_shard() {
        let a = shard_of(resource(Some("checkout")));
        assert_eq!(shard_of(resource(Some("checkout"))), a);
        assert!(a < DELTA_SHARDS);
        assert_eq!(shard_of(resource(None)), shard_of(resource(None)));
        // Distinct services spread over shards.
        let shards: std::collections::BTreeSet<usize> = (0..64)
            .map(|i| shard_of(resource(Some(&format!("svc-{i}")))))
            .collect();
        assert!(shards.len() > DELTA_SHARDS / 2, "{shards:?}");
    }

    #[test]
    fn metadata_is_queued_again_only_when_it_changes_or_is_old() {
        let seen = MetadataSeen::default();
        let meta = |help: &str| MetricMetadata {
            family: "etl_rows".into(),
            metric_type: model::MetricType::Counter,
            unit: "".into(),
            help: help.into(),
        };
        let t0 = std::time::Instant::now();
        let mut m = vec![meta("rows")];
        seen.retain_unseen(&mut m, t0);
        assert_eq!(m.len(), 1, "never queued: kept");
        seen.record(&m, t0);
        let mut again = vec![meta("rows")];
        seen.retain_unseen(&mut again, t0 + std::time::Duration::from_secs(1));
        assert!(again.is_empty(), "queued a second ago, unchanged: dropped");
        let mut changed = vec![meta("rows read")];
        seen.retain_unseen(&mut changed, t0 + std::time::Duration::from_secs(1));
        assert_eq!(changed, vec![meta("rows read")], "changed: kept");
        let mut old = vec![meta("rows")];
        seen.retain_unseen(&mut old, t0 + METADATA_REFRESH);
        assert_eq!(old.len(), 1, "queued {METADATA_REFRESH:?} ago: kept");
    }

    #[test]
    fn partial_success_uses_the_official_response_message() {
        let resp = ExportMetricsServiceRequest::response(PartialSuccess {
            rejected: 3,
            message: "three".into(),
        });
        let p = resp.partial_success.unwrap();
        assert_eq!(
            (p.rejected_data_points, p.error_message.as_str()),
            (3, "three")
        );
        assert!(
            ExportMetricsServiceRequest::response(PartialSuccess::default())
                .partial_success
                .is_none()
        );
    }
}
