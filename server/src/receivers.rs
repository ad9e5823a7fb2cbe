//! Push receivers: the endpoints senders POST data to (Prometheus remote_write, OTLP over HTTP
//! and gRPC, data-quality results, OpenLineage events, Alertmanager alerts).
//!
//! Everything protocols share is done once, in the kernel:
//!
//! - [`kind::Receiver`] names each protocol and its framing (media types, encodings, hints);
//! - [`kernel`] is the middleware of every receiver route: token, cross-site refusal,
//!   Content-Type, Content-Encoding, body read with `receivers.max_body_bytes`, draining refused
//!   bodies, the per-receiver answer metric, rate-limited refusal logs, error bodies in the
//!   protocol's shape;
//! - [`body`] inflates (gzip, deflate, snappy) within `receivers.max_decompressed_bytes` and
//!   decodes off the async runtime behind one semaphore ([`body::DecodePool`]);
//! - [`error::ReceiverError`] is every refusal with its HTTP status, gRPC code and
//!   `Retry-After`; handlers return `Result<Accepted, ReceiverError>`;
//! - [`ReceiverState::push`] hands a batch to the ingest queue through the shared `[limits]`.
//!
//! A handler is then thin: decode its [`body::Payload`], validate what the store would refuse,
//! record or push, answer. A 2xx means the data is recorded or in the ingest queue, which is
//! drained on shutdown. Dependencies go one way: receivers use [`crate::state`], never
//! [`crate::api`].
//!
//! # Adding a receiver
//!
//! 1. Add a variant to [`kind::Receiver`] and fill in its `name`, `media_types`, `encodings`,
//!    `smaller_hint` and `content_type_hint` (the compiler lists every match to extend), and
//!    add the name to `config::RECEIVER_NAMES` (a test checks both agree).
//! 2. Write `receivers/<name>.rs` with
//!    `async fn post(State(st): State<ReceiverState>, payload: Payload) -> Result<Accepted, ReceiverError>`:
//!    `payload.decode(|bytes| ...)` runs your decoder on the inflated body off the runtime;
//!    push series with [`ReceiverState::push`], record rows in the store, map a store failure
//!    with [`ReceiverError::storage`].
//! 3. Route it in [`router_with_config`] with `route(&st, Receiver::X, post(x::post))`; the
//!    kernel layer comes with it. Protocol state that outlives a request (running totals)
//!    goes in a struct of its own held by [`ReceiverState`], like [`otlp::OtlpState`].

pub mod alertmanager;
pub mod body;
pub mod dq;
pub mod drift_profile;
pub mod drift_profile_body;
pub mod error;
pub mod events;
pub mod grpc_budget;
pub mod kernel;
pub mod kind;
pub mod lineage;
pub mod otlp;
pub mod otlp_grpc;
pub mod otlp_signals;
pub mod remote_write;

pub use body::Payload;
pub use error::{Accepted, AcceptedNote, ReceiverError};
pub use kind::Receiver;

use crate::config::ReceiversConfig;
use crate::state::AppState;
use crate::telemetry::GuardLabels;
use axum::extract::DefaultBodyLimit;
use axum::routing::{post, MethodRouter};
use axum::Router;
use std::sync::Arc;
use std::time::Duration;

/// What every receiver handler gets: the server state, the receiver limits, and the state of
/// the protocols that keep some between requests.
#[derive(Clone)]
pub struct ReceiverState {
    pub app: AppState,
    pub config: Arc<ReceiversConfig>,
    /// OTLP running totals, shared by the HTTP and gRPC receivers.
    pub otlp: Arc<otlp::OtlpState>,
    pub(crate) decodes: body::DecodePool,
    pub(crate) refusals: Arc<kernel::RefusalLog>,
    /// Which sample timestamps are taken (retention back, `limits.future_tolerance` ahead).
    pub window: crate::ingest::window::IntakeWindow,
}

impl ReceiverState {
    pub fn new(app: AppState, config: ReceiversConfig) -> Self {
        let window = crate::ingest::window::IntakeWindow::new(
            app.retention_days,
            app.guard.limits().future_tolerance,
        );
        Self {
            app,
            config: Arc::new(config),
            otlp: Arc::new(otlp::OtlpState::default()),
            decodes: body::DecodePool::per_cpu(),
            refusals: Arc::default(),
            window,
        }
    }

    /// The receivers with OTLP trace/log settings from `[otlp]` instead of the defaults.
    pub fn with_otlp_signals(mut self, signals: otlp_signals::SignalState) -> Self {
        self.otlp = Arc::new(otlp::OtlpState {
            signals,
            ..Default::default()
        });
        self
    }

    /// The same receivers (protocol state, decode pool) over another server state; tests use
    /// it to put a refusing queue under running totals.
    pub fn with_app(&self, app: AppState) -> Self {
        Self {
            app,
            ..self.clone()
        }
    }

    /// Hands a decoded batch to the ingest queue. Every receiver pushes through here so that the
    /// limits all sources share (labels per series, label length, new series per metric and in
    /// all) and the queue-full answer are the same for all of them. Series refused by a limit
    /// make it `Err(OverLimit)` after the rest was queued.
    pub fn push(&self, receiver: Receiver, batch: model::Batch) -> Result<(), ReceiverError> {
        match self.push_partial(receiver, batch)? {
            Some(refused) => Err(ReceiverError::OverLimit(refused.message)),
            None => Ok(()),
        }
    }

    /// [`Self::push`] for protocols that answer a partial success (OTLP): what the limits
    /// refused comes back with its sample count instead of as an error.
    pub fn push_partial(
        &self,
        receiver: Receiver,
        batch: model::Batch,
    ) -> Result<Option<LimitRefusal>, ReceiverError> {
        self.push_with_resolved(receiver, batch, Vec::new())
    }

    /// [`Self::push_partial`] with samples of known series the receiver resolved to ids
    /// while it decoded ([`IngestQueue::resolve_encoded`](crate::ingest::IngestQueue::resolve_encoded)):
    /// queued with the batch, past the limits (they were checked with
    /// [`Guard::shape_allows`](crate::guard::Guard::shape_allows); a known series is not new).
    pub fn push_with_resolved(
        &self,
        receiver: Receiver,
        batch: model::Batch,
        resolved: Vec<model::ResolvedSample>,
    ) -> Result<Option<LimitRefusal>, ReceiverError> {
        let admission = self.app.guard.admit(batch, model::clock::now_ms());
        for r in &admission.refused {
            self.app
                .metrics
                .receiver_series_refused
                .get_or_create(&GuardLabels {
                    receiver: receiver.name().to_string(),
                    reason: r.limit.to_string(),
                })
                .inc();
        }
        let refused = admission
            .message(receiver.name())
            .map(|message| LimitRefusal {
                samples: admission.refused_samples,
                points: admission.refused_points,
                message,
            });
        if !admission.batch.is_empty() || !resolved.is_empty() {
            self.app
                .queue
                .try_push_with_resolved(
                    admission.batch,
                    Some(admission.fingerprints),
                    store::ResolvedSamples::from_rows(resolved),
                )
                .map_err(|e| ReceiverError::from_push(e, self.config.queue_full_status))?;
        }
        Ok(refused)
    }

    /// Waits up to [`RECEIVER_QUEUE_WAIT`] until the queue has room for `samples` samples of
    /// about `bytes` bytes, so a queue full for a moment (a burst of series the store has not
    /// registered yet is held with its label sets until the first write registers them) costs
    /// the sender milliseconds instead of a 503 and a whole `Retry-After` second. It only
    /// waits: the push after it still refuses if the room is gone, and a queue that stays full
    /// (database down) is refused after the wait.
    pub async fn wait_for_room(&self, samples: usize, bytes: usize) {
        self.app
            .queue
            .wait_for_room(samples, bytes, RECEIVER_QUEUE_WAIT)
            .await;
    }

    /// Refuses before anything is recorded when the queue cannot take `needed` more samples:
    /// for receivers that record rows in the request, a retry after a later queue refusal
    /// would be a duplicate and not bring its series again.
    /// The byte bound is checked with [`RESERVE_BYTES_PER_SAMPLE`] per sample, since the
    /// series are built only after the rows are recorded.
    pub fn reserve(&self, needed: usize) -> Result<(), ReceiverError> {
        let q = &self.app.queue;
        if !q.has_room(needed, needed.saturating_mul(RESERVE_BYTES_PER_SAMPLE)) {
            let (depth, capacity) = (q.depth(), q.capacity());
            return Err(ReceiverError::QueueFull {
                message: format!(
                    "ingest queue is full ({depth} of {capacity} samples, {} of {} bytes); retry after the Retry-After delay",
                    q.depth_bytes(),
                    q.max_bytes()
                ),
                status: axum::http::StatusCode::from_u16(self.config.queue_full_status)
                    .unwrap_or(axum::http::StatusCode::SERVICE_UNAVAILABLE),
                retry_after: std::time::Duration::from_secs(1),
            });
        }
        Ok(())
    }
}

/// Recognises the series of a request that the store holds by id, so the decoders build label
/// sets only for the others ([`collectors::known`]). A series is taken by id only when nothing
/// about it could be refused: all its samples inside the intake window and storable, and its
/// label set within the per-series limits. Anything else is decoded in full and meets the
/// usual checks and messages. A series that is known is not new, so the new-series brakes do
/// not apply.
pub(crate) struct KnownSeries {
    queue: crate::ingest::IngestQueue,
    guard: Arc<crate::guard::Guard>,
    window: crate::ingest::window::IntakeWindow,
    now: model::TimestampMs,
}

impl collectors::known::Known for KnownSeries {
    fn id(&mut self, s: &collectors::known::SeriesView<'_>) -> Option<i64> {
        let last = self.admits(s)?;
        self.queue.resolve_encoded(s.encoding, last, self.now)
    }
}

impl KnownSeries {
    /// The newest of the series' timestamps when nothing about the series could be refused
    /// but whether it is new (see the type's header).
    fn admits(&self, s: &collectors::known::SeriesView<'_>) -> Option<model::TimestampMs> {
        let last = self.admits_samples(s.samples)?;
        self.guard.shape_allows(s.metric, s.labels).then_some(last)
    }

    /// The newest of `samples`' timestamps when all are inside the intake window and storable.
    fn admits_samples(&self, samples: &[model::Sample]) -> Option<model::TimestampMs> {
        let (oldest, newest) = self.window.bounds(self.now);
        let mut last = i64::MIN;
        for x in samples {
            if x.ts < oldest || x.ts > newest || !store::pgcopy::timestamp_in_range(x.ts) {
                return None;
            }
            last = last.max(x.ts);
        }
        Some(last)
    }

    /// A resolver that also recognises series by raw names remembered in `raw`
    /// ([`collectors::known`]).
    pub(crate) fn with_raw<'a>(&'a self, raw: &'a store::RawNames) -> KnownRaw<'a> {
        KnownRaw {
            known: self,
            raw,
            hits: 0,
        }
    }
}

/// [`KnownSeries`] with the raw names of series it resolved before ([`store::RawNames`]). A raw
/// name is remembered only for a series that was taken by id, so its label set passed the
/// per-series limits (which depend on the label set alone); the samples' window and the
/// series cache are checked every time.
pub(crate) struct KnownRaw<'a> {
    known: &'a KnownSeries,
    raw: &'a store::RawNames,
    /// Series found by raw name, added to `raw`'s count when done.
    hits: u64,
}

impl Drop for KnownRaw<'_> {
    fn drop(&mut self) {
        self.raw.count_hits(self.hits);
    }
}

impl collectors::known::Known for KnownRaw<'_> {
    fn id(&mut self, s: &collectors::known::SeriesView<'_>) -> Option<i64> {
        let k = self.known;
        let last = k.admits(s)?;
        let fp = k.queue.fingerprint_encoded(s.encoding)?;
        let id = k.queue.resolve_fingerprint(fp, last, k.now)?;
        if let Some(raw) = s.raw {
            self.raw.insert(raw, fp);
        }
        Some(id)
    }

    fn id_raw(&mut self, raw: &[u8], samples: &[model::Sample]) -> Option<i64> {
        let k = self.known;
        let last = k.admits_samples(samples)?;
        let fp = self.raw.get(raw)?;
        let id = k.queue.resolve_fingerprint(fp, last, k.now)?;
        self.hits += 1;
        Some(id)
    }
}

impl ReceiverState {
    /// The resolver of known series for a request received at `now`.
    pub(crate) fn known_series(&self, now: model::TimestampMs) -> KnownSeries {
        KnownSeries {
            queue: self.app.queue.clone(),
            guard: self.app.guard.clone(),
            window: self.window,
            now,
        }
    }
}

/// How long a push receiver waits for room in a full ingest queue before it answers
/// 429/503 with `Retry-After` (see [`crate::ingest::IngestQueue::push_within`]).
pub const RECEIVER_QUEUE_WAIT: Duration = Duration::from_millis(250);

/// A generous estimate of one queued sample's memory for [`ReceiverState::reserve`]: the
/// data-quality and lineage receivers' series carry a handful of short labels, held with
/// their label set (~0.9 KB for 7 labels, see `ingest::footprint`).
pub const RESERVE_BYTES_PER_SAMPLE: usize = 2048;

/// Series a `[limits]` limit refused from one push, while the rest was queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitRefusal {
    /// Samples of the refused series.
    pub samples: usize,
    /// Data points they came from (a histogram point's series count once).
    pub points: usize,
    /// For the sender: how many series each limit refused, the first example, the keys.
    pub message: String,
}

/// A receiver route with the kernel layer in front of its handler.
fn route(
    st: &ReceiverState,
    receiver: Receiver,
    handler: MethodRouter<ReceiverState>,
) -> MethodRouter<ReceiverState> {
    handler.route_layer(axum::middleware::from_fn_with_state(
        kernel::Route {
            st: st.clone(),
            receiver,
        },
        kernel::kernel,
    ))
}

/// The receiver routes with the default limits (`[receivers]` defaults).
pub fn router(state: AppState) -> Router {
    router_with_config(state, ReceiversConfig::default())
}

/// The receiver routes with explicit limits.
pub fn router_with_config(state: AppState, config: ReceiversConfig) -> Router {
    router_with_state(ReceiverState::new(state, config))
}

/// The receiver routes over an existing receiver state (shared with the gRPC server).
pub fn router_with_state(st: ReceiverState) -> Router {
    use Receiver::*;
    Router::new()
        .route(
            "/api/v1/write",
            route(&st, RemoteWrite, post(remote_write::write)),
        )
        .route("/api/v1/dq/{tool}", route(&st, Dq, post(dq::post)))
        .route(
            "/api/v1/lineage",
            route(&st, OpenLineage, post(lineage::post)),
        )
        .route("/api/v1/events", route(&st, Events, post(events::post)))
        .route(
            "/api/v1/drift/profile",
            route(&st, DriftProfile, post(drift_profile::post)),
        )
        .route(
            "/api/v2/alerts",
            route(&st, Alertmanager, post(alertmanager::post)),
        )
        .route("/v1/metrics", route(&st, Otlp, post(otlp::metrics)))
        .route("/v1/traces", route(&st, Otlp, post(otlp::traces)))
        .route("/v1/logs", route(&st, Otlp, post(otlp::logs)))
        // The kernel reads bodies with its own limit and message.
        .layer(DefaultBodyLimit::disable())
        .with_state(st)
}

/// A header map from static pairs, for the receivers' unit tests.
#[cfg(test)]
pub(crate) fn test_headers(pairs: &[(&'static str, &'static str)]) -> axum::http::HeaderMap {
    let mut h = axum::http::HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, axum::http::HeaderValue::from_static(v));
    }
    h
}
