//! The ingest queue and its batch writers.
//!
//! Receivers and scrapers hand `model::Batch`es to the [`IngestQueue`]; receivers first pass
//! them through [`window`] (which timestamps are taken at all) and the limiter, whose series
//! fingerprints travel with the batch so the writer does not hash the label sets again.
//!
//! The queue is bounded twice: in *samples* (`ingest.queue_capacity_samples`) and in *bytes*
//! (`ingest.queue_max_bytes`, the estimated heap an item holds, see [`footprint`]), each a
//! semaphore of permits. When either is full, `try_push` fails at once so HTTP receivers can
//! answer 429/503 with Retry-After (counted as `queue_full` or `queue_full_bytes` in
//! `pipewatch_ingest_samples_rejected_total`), and `push` waits so scrapers slow down.
//!
//! Items are held compactly: at push time, the series whose ids the store's series cache
//! already holds are converted to series id + timestamp + value ([`store::ResolvedSamples`],
//! 24 bytes a sample instead of a label set each, about 1 KB); only series not registered yet
//! stay as full `TimeSeries`. `store/src/writer_resolved.rs` says why such an id stays valid
//! while it waits.
//!
//! [`BatchWriters`] take items off the queue, merge them until `batch_max_samples` or
//! `flush_interval`, write them (full series with one COPY transaction that registers what is
//! new, series held by id with another), and only then release the permits.
//! A write the database could not take (connection lost, restart) is retried with back-off;
//! such data is never dropped while the process runs. Rows the database refuses as data (a
//! NUL byte, SQLSTATE class 22/23/54) are isolated by halving the batch: the rest is stored,
//! the refused series are counted and logged, and they are never retried. On
//! shutdown the queue is closed to new data and drained; only if the database stays unreachable
//! past `shutdown_timeout` are samples given up, and that is logged as an error with the count.

pub mod footprint;
pub mod window;

use crate::telemetry::SelfMetrics;
use model::Batch;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Mutex, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// `ingest.queue_max_bytes` when nothing else is said (see README's limits table).
pub const DEFAULT_QUEUE_MAX_BYTES: usize = 128 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("ingest queue is full ({capacity} {bound}); retry after {retry_after:?}")]
    Full {
        capacity: usize,
        /// Which bound: "samples", or "bytes of queued data (ingest.queue_max_bytes)".
        bound: &'static str,
        retry_after: Duration,
    },
    #[error(
        "pipewatch is shutting down and accepts no new data; retry against the restarted server"
    )]
    Closed,
}

const SAMPLES_BOUND: &str = "samples";
const BYTES_BOUND: &str = "bytes of queued data (ingest.queue_max_bytes)";

/// Default of `ingest.flush_idle`: a writer flushes what it gathered once no new item arrived
/// for this long, so the last samples of a burst are committed within milliseconds rather
/// than after `flush_interval` (which was most of the time between a sender's last answer
/// and its data being durable).
pub const FLUSH_WHEN_IDLE_FOR: Duration = Duration::from_millis(25);

struct Item {
    /// Series held neither by id nor by shared key (what the writer would refuse, and series
    /// beyond the bound of the shared keys; see `store::pending`), and all metadata.
    batch: Batch,
    /// The series cache's fingerprints of `batch.series`, when a receiver's limiter computed
    /// them; the writer reuses them instead of hashing every label set again.
    fingerprints: Option<store::Fingerprints>,
    /// Samples of known series, by id.
    resolved: store::ResolvedSamples,
    /// Samples of series not registered yet (or not settled), by shared key
    /// (`store::pending`).
    shared: store::SharedSamples,
    samples: u64,
    /// Sample permits taken (the sample count, clamped to the capacity).
    permits: u32,
    /// Byte permits taken (the estimate, clamped to the bound).
    bytes: u32,
}

/// The two bounds of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueBounds {
    /// `ingest.queue_capacity_samples`.
    pub samples: usize,
    /// `ingest.queue_max_bytes`.
    pub bytes: usize,
}

/// Handle for producers; cheap to clone.
#[derive(Clone)]
pub struct IngestQueue {
    tx: mpsc::UnboundedSender<Item>,
    sink: Arc<dyn BatchSink>,
    permits: Arc<Semaphore>,
    byte_permits: Arc<Semaphore>,
    capacity: usize,
    max_bytes: usize,
    closed: Arc<AtomicBool>,
    depth: Arc<AtomicU64>,
    depth_bytes: Arc<AtomicU64>,
    metrics: Arc<SelfMetrics>,
}

impl IngestQueue {
    /// Puts a batch in the queue if there is room for all its samples now.
    pub fn try_push(&self, batch: Batch) -> Result<(), PushError> {
        self.try_push_fingerprinted(batch, None)
    }

    /// [`Self::try_push`] with the fingerprints of the batch's series (see [`store::Fingerprints`]).
    pub fn try_push_fingerprinted(
        &self,
        batch: Batch,
        fingerprints: Option<store::Fingerprints>,
    ) -> Result<(), PushError> {
        self.try_push_with_resolved(batch, fingerprints, store::ResolvedSamples::default())
    }

    /// [`Self::try_push_fingerprinted`] with samples a receiver already resolved to series
    /// ids ([`Self::resolve_encoded`]), queued in the same item.
    pub fn try_push_with_resolved(
        &self,
        batch: Batch,
        fingerprints: Option<store::Fingerprints>,
        resolved: store::ResolvedSamples,
    ) -> Result<(), PushError> {
        let total = batch.sample_count() + resolved.len();
        let n = self.permits_for_samples(total);
        if self.closed.load(Ordering::Acquire) {
            return Err(PushError::Closed);
        }
        match self.permits.clone().try_acquire_many_owned(n) {
            Ok(p) => p.forget(),
            Err(tokio::sync::TryAcquireError::Closed) => return Err(PushError::Closed),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                self.metrics.rejected("queue_full", total as u64);
                return Err(self.full(self.capacity, SAMPLES_BOUND));
            }
        }
        // Resolving raises the known series' pending last_seen before the byte bound is
        // asked; if it then refuses, the sender retries these samples, so the raise stands.
        let item = self.compact(batch, fingerprints, resolved, n);
        match self.byte_permits.clone().try_acquire_many_owned(item.bytes) {
            Ok(p) => {
                p.forget();
                self.send(item)
            }
            Err(e) => {
                self.permits.add_permits(n as usize);
                match e {
                    tokio::sync::TryAcquireError::Closed => Err(PushError::Closed),
                    tokio::sync::TryAcquireError::NoPermits => {
                        self.metrics.rejected("queue_full_bytes", item.samples);
                        Err(self.full(self.max_bytes, BYTES_BOUND))
                    }
                }
            }
        }
    }

    /// Waits up to `wait` until `samples` samples of `bytes` estimated bytes would fit (both
    /// clamped to the bounds, as a push clamps them), without taking the room: permits are
    /// acquired and given back at once. Returns whether there was room in time.
    pub async fn wait_for_room(&self, samples: usize, bytes: usize, wait: Duration) -> bool {
        let n = samples.clamp(1, self.capacity) as u32;
        let b = bytes.clamp(1, self.max_bytes.min(u32::MAX as usize)) as u32;
        let both = async {
            let s = self.permits.acquire_many(n).await;
            let b = self.byte_permits.acquire_many(b).await;
            s.is_ok() && b.is_ok()
        };
        tokio::time::timeout(wait, both).await.unwrap_or(false)
    }

    fn full(&self, capacity: usize, bound: &'static str) -> PushError {
        PushError::Full {
            capacity,
            bound,
            retry_after: Duration::from_secs(1),
        }
    }

    /// Puts a batch in the queue, waiting for room.
    pub async fn push(&self, batch: Batch) -> Result<(), PushError> {
        let n = self.permits_for(&batch);
        if self.closed.load(Ordering::Acquire) {
            return Err(PushError::Closed);
        }
        let p = self
            .permits
            .clone()
            .acquire_many_owned(n)
            .await
            .map_err(|_| PushError::Closed)?;
        p.forget();
        let item = self.compact(batch, None, store::ResolvedSamples::default(), n);
        // Waiting here holds the sample permits: the writers free bytes and samples together,
        // so this cannot wait for something only it could release.
        match self
            .byte_permits
            .clone()
            .acquire_many_owned(item.bytes)
            .await
        {
            Ok(p) => p.forget(),
            Err(_) => {
                self.permits.add_permits(n as usize);
                return Err(PushError::Closed);
            }
        }
        self.send(item)
    }

    /// A batch larger than the whole queue takes all permits rather than waiting forever.
    fn permits_for(&self, batch: &Batch) -> u32 {
        self.permits_for_samples(batch.sample_count())
    }

    fn permits_for_samples(&self, samples: usize) -> u32 {
        samples.clamp(1, self.capacity) as u32
    }

    /// The id of a series given as its key's encoding when the sink would hold it by id
    /// ([`BatchSink::resolve_encoded`]).
    pub fn resolve_encoded(
        &self,
        encoding: &[u8],
        newest: model::TimestampMs,
        now: model::TimestampMs,
    ) -> Option<i64> {
        self.sink.resolve_encoded(encoding, newest, now)
    }

    /// [`BatchSink::fingerprint_encoded`].
    pub fn fingerprint_encoded(&self, encoding: &[u8]) -> Option<u128> {
        self.sink.fingerprint_encoded(encoding)
    }

    /// [`BatchSink::resolve_fingerprint`].
    pub fn resolve_fingerprint(
        &self,
        fp: u128,
        newest: model::TimestampMs,
        now: model::TimestampMs,
    ) -> Option<i64> {
        self.sink.resolve_fingerprint(fp, newest, now)
    }

    /// Holds the series the store already knows by id (after `already`, resolved by the
    /// receiver) and estimates what the item holds.
    fn compact(
        &self,
        batch: Batch,
        fingerprints: Option<store::Fingerprints>,
        already: store::ResolvedSamples,
        permits: u32,
    ) -> Item {
        let samples = (batch.sample_count() + already.len()) as u64;
        let store::Resolution {
            batch,
            fingerprints,
            resolved: more,
            shared,
        } = self.sink.resolve_known(batch, fingerprints);
        let mut resolved = already;
        resolved.append(more);
        let bytes = std::mem::size_of::<Item>()
            + footprint::batch_bytes(&batch)
            + footprint::fingerprints_bytes(fingerprints.as_ref())
            + footprint::resolved_bytes(&resolved)
            + footprint::shared_bytes(&shared);
        // Like samples: an item larger than the whole bound takes all of it.
        let bytes = bytes.clamp(1, self.max_bytes.min(u32::MAX as usize)) as u32;
        Item {
            batch,
            fingerprints,
            resolved,
            shared,
            samples,
            permits,
            bytes,
        }
    }

    fn send(&self, item: Item) -> Result<(), PushError> {
        let (samples, permits, bytes) = (item.samples, item.permits, item.bytes);
        match self.tx.send(item) {
            Ok(()) => {
                self.metrics.samples_enqueued.inc_by(samples);
                let d = self.depth.fetch_add(samples, Ordering::AcqRel) + samples;
                self.metrics.queue_depth.set(d as i64);
                let b = self.depth_bytes.fetch_add(bytes as u64, Ordering::AcqRel) + bytes as u64;
                self.metrics.queue_depth_bytes.set(b as i64);
                Ok(())
            }
            Err(_) => {
                self.permits.add_permits(permits as usize);
                self.byte_permits.add_permits(bytes as usize);
                Err(PushError::Closed)
            }
        }
    }

    /// Samples in the queue or being written.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Acquire) as usize
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Estimated heap bytes of what is in the queue or being written (see [`footprint`]).
    pub fn depth_bytes(&self) -> usize {
        self.depth_bytes.load(Ordering::Acquire) as usize
    }

    /// `ingest.queue_max_bytes`.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Whether `samples` more samples holding about `bytes` (see [`footprint`]) fit under both
    /// bounds now: for receivers that must refuse before they record anything, since a retry
    /// after a later queue refusal would be a duplicate (`ReceiverState::reserve` checks only
    /// samples so far).
    pub fn has_room(&self, samples: usize, bytes: usize) -> bool {
        self.depth() + samples <= self.capacity && self.depth_bytes() + bytes <= self.max_bytes
    }
}

/// Why a sink did not commit a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkError {
    /// The database refused the data itself (SQLSTATE class 22/23/54, or a sample the store
    /// cannot represent): the same rows will be refused again, so they are not retried.
    Refused(String),
    /// The database could not take the write now (connection lost, restarting, deadlock):
    /// retried with back-off.
    Unavailable(String),
}

impl std::fmt::Display for SinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(e) | Self::Unavailable(e) => f.write_str(e),
        }
    }
}

/// Where writers put batches. The real one is `store::Store`; the trait keeps the writer loop
/// testable against the bench anchor too.
#[async_trait::async_trait]
pub trait BatchSink: Send + Sync + 'static {
    /// Commits the batches (all or nothing); returns (rows, new series).
    async fn write_batches(&self, batches: &[Batch]) -> Result<(u64, u64), SinkError>;

    /// [`Self::write_batches`] with the fingerprints receivers computed for some batches
    /// (`fingerprints[i]` for `batches[i]`); sinks without a series cache ignore them.
    async fn write_fingerprinted(
        &self,
        batches: &[Batch],
        fingerprints: &[Option<store::Fingerprints>],
    ) -> Result<(u64, u64), SinkError> {
        let _ = fingerprints;
        self.write_batches(batches).await
    }

    /// Splits off the series this sink can write by id ([`Self::write_resolved`]) when they
    /// are queued. Sinks without a series cache keep everything as it is.
    fn resolve_known(
        &self,
        batch: Batch,
        fingerprints: Option<store::Fingerprints>,
    ) -> store::Resolution {
        store::Resolution {
            batch,
            fingerprints,
            ..Default::default()
        }
    }

    /// What a writer makes of samples held by shared keys ([`store::Store::unshare`]): series
    /// to write in full and samples by id. Sinks without a series cache write them in full.
    fn unshare(&self, parts: Vec<store::SharedSamples>) -> store::Resolution {
        store::Resolution {
            batch: store::SharedSamples::into_batch(parts),
            ..Default::default()
        }
    }

    /// The id of a series given as its key's canonical encoding when this sink would hold it
    /// by id ([`store::Store::resolve_encoded`]). Sinks without a series cache know none.
    fn resolve_encoded(
        &self,
        encoding: &[u8],
        newest: model::TimestampMs,
        now: model::TimestampMs,
    ) -> Option<i64> {
        self.resolve_fingerprint(self.fingerprint_encoded(encoding)?, newest, now)
    }

    /// The fingerprint of a series given as its key's canonical encoding in this sink's
    /// series cache; `None` for sinks without one.
    fn fingerprint_encoded(&self, encoding: &[u8]) -> Option<u128> {
        let _ = encoding;
        None
    }

    /// [`Self::resolve_encoded`] of a series given by its fingerprint
    /// ([`Self::fingerprint_encoded`]).
    fn resolve_fingerprint(
        &self,
        fp: u128,
        newest: model::TimestampMs,
        now: model::TimestampMs,
    ) -> Option<i64> {
        let _ = (fp, newest, now);
        None
    }

    /// Commits samples that [`Self::resolve_known`] resolved (all or nothing); returns rows.
    async fn write_resolved(&self, parts: &[&store::ResolvedSamples]) -> Result<u64, SinkError> {
        let _ = parts;
        Err(SinkError::Refused(
            "this sink resolves no series, so it has no samples by id to write".into(),
        ))
    }
}

fn sink_error(e: store::StoreError) -> SinkError {
    if e.is_refused_data() {
        SinkError::Refused(e.to_string())
    } else {
        SinkError::Unavailable(e.to_string())
    }
}

#[async_trait::async_trait]
impl BatchSink for store::Store {
    async fn write_batches(&self, batches: &[Batch]) -> Result<(u64, u64), SinkError> {
        BatchSink::write_fingerprinted(self, batches, &[]).await
    }

    async fn write_fingerprinted(
        &self,
        batches: &[Batch],
        fingerprints: &[Option<store::Fingerprints>],
    ) -> Result<(u64, u64), SinkError> {
        store::Store::write_fingerprinted(self, batches, fingerprints)
            .await
            .map(|s| (s.rows, s.new_series))
            .map_err(sink_error)
    }

    fn resolve_known(
        &self,
        batch: Batch,
        fingerprints: Option<store::Fingerprints>,
    ) -> store::Resolution {
        store::Store::resolve_known(self, batch, fingerprints)
    }

    fn unshare(&self, parts: Vec<store::SharedSamples>) -> store::Resolution {
        store::Store::unshare(self, parts)
    }

    fn fingerprint_encoded(&self, encoding: &[u8]) -> Option<u128> {
        Some(store::Store::fingerprint_encoded(self, encoding))
    }

    fn resolve_fingerprint(
        &self,
        fp: u128,
        newest: model::TimestampMs,
        now: model::TimestampMs,
    ) -> Option<i64> {
        store::Store::resolve_fingerprint(self, fp, newest, now)
    }

    async fn write_resolved(&self, parts: &[&store::ResolvedSamples]) -> Result<u64, SinkError> {
        store::Store::write_resolved(self, parts)
            .await
            .map(|s| s.rows)
            .map_err(sink_error)
    }
}

#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub batch_max_samples: usize,
    pub flush_interval: Duration,
    /// Flush once no new item arrived for this long (`ingest.flush_idle`).
    pub flush_idle: Duration,
    pub writers: usize,
}

/// The running writer tasks. `shutdown` closes the queue, drains it and waits.
pub struct BatchWriters {
    closed: Arc<AtomicBool>,
    permits: Arc<Semaphore>,
    byte_permits: Arc<Semaphore>,
    tasks: JoinSet<()>,
    closing: CancellationToken,
    abandon: CancellationToken,
    lost: Arc<AtomicU64>,
}

/// Creates a queue of `capacity` samples and [`DEFAULT_QUEUE_MAX_BYTES`], and starts
/// `cfg.writers` writer tasks.
pub fn start(
    sink: Arc<dyn BatchSink>,
    capacity: usize,
    cfg: WriterConfig,
    metrics: Arc<SelfMetrics>,
) -> (IngestQueue, BatchWriters) {
    start_bounded(
        sink,
        QueueBounds {
            samples: capacity,
            bytes: DEFAULT_QUEUE_MAX_BYTES,
        },
        cfg,
        metrics,
    )
}

/// Creates the queue with both bounds and starts `cfg.writers` writer tasks.
pub fn start_bounded(
    sink: Arc<dyn BatchSink>,
    bounds: QueueBounds,
    cfg: WriterConfig,
    metrics: Arc<SelfMetrics>,
) -> (IngestQueue, BatchWriters) {
    let (tx, rx) = mpsc::unbounded_channel();
    let capacity = bounds.samples.max(1);
    let max_bytes = bounds.bytes.max(1);
    let permits = Arc::new(Semaphore::new(capacity));
    let byte_permits = Arc::new(Semaphore::new(max_bytes));
    let closed = Arc::new(AtomicBool::new(false));
    let depth = Arc::new(AtomicU64::new(0));
    let depth_bytes = Arc::new(AtomicU64::new(0));
    metrics.queue_capacity.set(capacity as i64);
    metrics.queue_capacity_bytes.set(max_bytes as i64);
    let queue = IngestQueue {
        tx,
        sink: sink.clone(),
        permits: permits.clone(),
        byte_permits: byte_permits.clone(),
        capacity,
        max_bytes,
        closed: closed.clone(),
        depth: depth.clone(),
        depth_bytes: depth_bytes.clone(),
        metrics: metrics.clone(),
    };
    let rx = Arc::new(Mutex::new(rx));
    let closing = CancellationToken::new();
    let abandon = CancellationToken::new();
    let lost = Arc::new(AtomicU64::new(0));
    let refusal_log = Arc::new(RefusalLog::new(Duration::from_secs(10)));
    let mut tasks = JoinSet::new();
    for id in 0..cfg.writers.max(1) {
        let w = Writer {
            id,
            rx: rx.clone(),
            sink: sink.clone(),
            cfg: cfg.clone(),
            permits: permits.clone(),
            byte_permits: byte_permits.clone(),
            depth: depth.clone(),
            depth_bytes: depth_bytes.clone(),
            metrics: metrics.clone(),
            closing: closing.clone(),
            abandon: abandon.clone(),
            lost: lost.clone(),
            refusal_log: refusal_log.clone(),
        };
        tasks.spawn(w.run());
    }
    (
        queue,
        BatchWriters {
            closed,
            permits,
            byte_permits,
            tasks,
            closing,
            abandon,
            lost,
        },
    )
}

impl BatchWriters {
    /// Refuses new data, writes everything already queued, and returns the number of samples
    /// that could not be written within `timeout` (0 unless the database stayed down).
    pub async fn shutdown(mut self, timeout: Duration) -> u64 {
        self.closed.store(true, Ordering::Release);
        self.permits.close();
        self.byte_permits.close();
        // The writer holding the receiver closes it (it may be waiting in recv with the lock).
        self.closing.cancel();
        let drained = tokio::time::timeout(timeout, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::error!(
                ?timeout,
                "ingest queue not drained in time; giving up the rest"
            );
            self.abandon.cancel();
            while self.tasks.join_next().await.is_some() {}
        }
        self.lost.load(Ordering::Acquire)
    }
}

struct Writer {
    id: usize,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<Item>>>,
    sink: Arc<dyn BatchSink>,
    cfg: WriterConfig,
    permits: Arc<Semaphore>,
    byte_permits: Arc<Semaphore>,
    depth: Arc<AtomicU64>,
    depth_bytes: Arc<AtomicU64>,
    metrics: Arc<SelfMetrics>,
    closing: CancellationToken,
    abandon: CancellationToken,
    lost: Arc<AtomicU64>,
    refusal_log: Arc<RefusalLog>,
}

/// What one writer took off the queue for one flush.
#[derive(Default)]
struct Collected {
    /// Items' full parts, without the empty ones.
    batches: Vec<Batch>,
    fingerprints: Vec<Option<store::Fingerprints>>,
    /// Items' samples held by id, without the empty ones.
    resolved: Vec<store::ResolvedSamples>,
    /// Items' samples held by shared keys, without the empty ones.
    shared: Vec<store::SharedSamples>,
    permits: u64,
    bytes: u64,
    samples: u64,
}

impl Collected {
    fn add(&mut self, item: Item) {
        self.permits += item.permits as u64;
        self.bytes += item.bytes as u64;
        self.samples += item.samples;
        if !item.batch.is_empty() {
            self.batches.push(item.batch);
            self.fingerprints.push(item.fingerprints);
        }
        if !item.resolved.is_empty() {
            self.resolved.push(item.resolved);
        }
        if !item.shared.is_empty() {
            self.shared.push(item.shared);
        }
    }
}

impl Writer {
    async fn run(self) {
        loop {
            let (mut c, done) = self.collect().await;
            if c.permits > 0 {
                if !c.batches.is_empty() {
                    let n = c.batches.iter().map(|b| b.sample_count() as u64).sum();
                    self.write(&c.batches, &c.fingerprints, n).await;
                }
                if !c.shared.is_empty() {
                    // After the full batches: the series they registered are taken by id.
                    let u = self.sink.unshare(std::mem::take(&mut c.shared));
                    if !u.batch.is_empty() {
                        let n = u.batch.sample_count() as u64;
                        self.write(&[u.batch], &[u.fingerprints], n).await;
                    }
                    if !u.resolved.is_empty() {
                        c.resolved.push(u.resolved);
                    }
                }
                if !c.resolved.is_empty() {
                    self.write_resolved(&c.resolved).await;
                }
                // Permits go back only after commit, so the queue bounds cover in-flight data.
                self.permits.add_permits(c.permits as usize);
                self.byte_permits.add_permits(c.bytes as usize);
                let d = self.depth.fetch_sub(c.samples, Ordering::AcqRel) - c.samples;
                self.metrics.queue_depth.set(d as i64);
                let b = self.depth_bytes.fetch_sub(c.bytes, Ordering::AcqRel) - c.bytes;
                self.metrics.queue_depth_bytes.set(b as i64);
            }
            if done {
                tracing::debug!(writer = self.id, "writer drained and stopped");
                return;
            }
        }
    }

    /// Gathers items until the size limit, the age limit, a pause of `flush_idle`
    /// without new items, or the closed-and-empty queue.
    async fn collect(&self) -> (Collected, bool) {
        let mut c = Collected::default();
        // Holding the receiver lock while gathering gives each writer whole, large batches;
        // other writers meanwhile are busy writing theirs.
        let mut rx = self.rx.lock().await;
        // Once shutdown starts, close the channel: recv then yields what is buffered, then None.
        let mut closed = false;
        let first = loop {
            tokio::select! {
                item = rx.recv() => break item,
                _ = self.closing.cancelled(), if !closed => {
                    rx.close();
                    closed = true;
                }
            }
        };
        let Some(first) = first else {
            return (c, true);
        };
        let deadline = Instant::now() + self.cfg.flush_interval;
        c.add(first);
        while (c.samples as usize) < self.cfg.batch_max_samples {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            // A quiet queue is flushed at once instead of holding the last samples for the
            // rest of `flush_interval`: under load items keep coming and batches still fill.
            let wait = (deadline - now).min(self.cfg.flush_idle);
            tokio::select! {
                r = tokio::time::timeout(wait, rx.recv()) => match r {
                    Ok(Some(item)) => c.add(item),
                    Ok(None) => return (c, true),
                    Err(_) => break,
                },
                _ = self.closing.cancelled(), if !closed => {
                    rx.close();
                    closed = true;
                }
            }
        }
        (c, false)
    }

    /// Writes samples held by id. They were validated when they were resolved, so a refusal
    /// is unexpected; if it happens, each item's part is tried alone and the refused parts
    /// are counted and logged like refused series, never retried.
    async fn write_resolved(&self, parts: &[store::ResolvedSamples]) {
        let all: Vec<&store::ResolvedSamples> = parts.iter().collect();
        let samples = all.iter().map(|p| p.len() as u64).sum();
        let error = match self.write_retrying(Payload::Resolved(&all), samples).await {
            Outcome::Written | Outcome::Abandoned => return,
            Outcome::Refused(e) => e,
        };
        tracing::debug!(%error, "samples held by series id were refused; writing them item by item");
        for (i, part) in all.iter().enumerate() {
            let n = part.len() as u64;
            match self.write_retrying(Payload::Resolved(&[*part]), n).await {
                Outcome::Written => {}
                Outcome::Refused(e) => {
                    self.metrics.rejected("refused_by_database", n);
                    self.refusal_log
                        .warn("samples of known series (held by id)", n, &e);
                }
                Outcome::Abandoned => {
                    let rest: u64 = all[i + 1..].iter().map(|p| p.len() as u64).sum();
                    self.lost.fetch_add(rest, Ordering::AcqRel);
                    return;
                }
            }
        }
    }

    /// Writes the merged batches. When the database refuses the data itself, the batch is
    /// split in halves until the refused series (or metadata entries) stand alone: every other
    /// row is stored, the refused ones are counted in
    /// `pipewatch_ingest_samples_rejected{reason="refused_by_database"}` and logged
    /// (rate-limited), and nothing refused is retried. Unavailability is retried as before.
    async fn write(
        &self,
        batches: &[Batch],
        fingerprints: &[Option<store::Fingerprints>],
        samples: u64,
    ) {
        let first_error = match self
            .write_retrying(Payload::Full(batches, fingerprints), samples)
            .await
        {
            Outcome::Written | Outcome::Abandoned => return,
            Outcome::Refused(e) => e,
        };
        tracing::debug!(error = %first_error, "a batch was refused by the database; splitting it to find the refused rows");
        let whole = Batch {
            series: batches
                .iter()
                .flat_map(|b| b.series.iter().cloned())
                .collect(),
            metadata: batches
                .iter()
                .flat_map(|b| b.metadata.iter().cloned())
                .collect(),
        };
        // Every part on the stack was written on its own and refused. Depth-first halving:
        // with one bad row among n, about 2·log2(n) writes.
        let mut stack = vec![(whole, first_error)];
        while let Some((part, error)) = stack.pop() {
            if part.series.len() + part.metadata.len() <= 1 {
                self.refused(&part, &error);
                continue;
            }
            let (a, b) = halves(part);
            let mut pending = vec![b, a];
            while let Some(half) = pending.pop() {
                let n = half.sample_count() as u64;
                // Halves are rare (refused data): their writes fingerprint the series again.
                match self
                    .write_retrying(Payload::Full(std::slice::from_ref(&half), &[]), n)
                    .await
                {
                    Outcome::Written => {}
                    Outcome::Refused(e) => stack.push((half, e)),
                    Outcome::Abandoned => {
                        // The abandoned half is counted by write_retrying; the rest here.
                        let rest: u64 = stack
                            .iter()
                            .map(|(p, _)| p)
                            .chain(&pending)
                            .map(|p| p.sample_count() as u64)
                            .sum();
                        self.lost.fetch_add(rest, Ordering::AcqRel);
                        return;
                    }
                }
            }
        }
    }

    /// One write, retried with back-off while the database is unavailable.
    async fn write_retrying(&self, payload: Payload<'_>, samples: u64) -> Outcome {
        let mut attempt = 0u32;
        loop {
            let started = Instant::now();
            let result = match payload {
                Payload::Full(batches, fingerprints) => {
                    self.sink.write_fingerprinted(batches, fingerprints).await
                }
                Payload::Resolved(parts) => self.sink.write_resolved(parts).await.map(|n| (n, 0)),
            };
            match result {
                Ok((rows, new_series)) => {
                    self.metrics
                        .batch_written(rows, new_series, started.elapsed());
                    return Outcome::Written;
                }
                Err(SinkError::Refused(e)) => return Outcome::Refused(e),
                Err(SinkError::Unavailable(e)) => {
                    attempt += 1;
                    self.metrics.write_failed(samples, attempt, &e);
                    let backoff = Duration::from_millis((100u64 << attempt.min(6)).min(5_000));
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = self.abandon.cancelled() => {
                            tracing::error!(samples, error = %e, "giving up a batch at shutdown: the database did not come back in time");
                            self.lost.fetch_add(samples, Ordering::AcqRel);
                            return Outcome::Abandoned;
                        }
                    }
                }
            }
        }
    }

    /// Counts and logs a series or metadata entry the database refused.
    fn refused(&self, part: &Batch, error: &str) {
        let samples = part.sample_count() as u64;
        self.metrics.rejected("refused_by_database", samples);
        let what = match (part.series.first(), part.metadata.first()) {
            (Some(s), _) => format!("series {}", s.key),
            (None, Some(m)) => format!("metadata of family {:?}", m.family),
            (None, None) => "an empty batch".to_string(),
        };
        self.refusal_log.warn(&what, samples, error);
    }
}

/// What one write commits.
#[derive(Clone, Copy)]
enum Payload<'a> {
    /// Series with their label sets (registered if new), and metadata.
    Full(&'a [Batch], &'a [Option<store::Fingerprints>]),
    /// Samples of known series, by id.
    Resolved(&'a [&'a store::ResolvedSamples]),
}

enum Outcome {
    Written,
    Refused(String),
    /// Shutdown gave up while the database was unavailable; the samples are counted as lost.
    Abandoned,
}

/// Splits the series and metadata of `b` into two non-empty halves (b holds at least two).
fn halves(mut b: Batch) -> (Batch, Batch) {
    let units = b.series.len() + b.metadata.len();
    let mid = units / 2;
    let second = if mid <= b.series.len() {
        Batch {
            series: b.series.split_off(mid),
            metadata: std::mem::take(&mut b.metadata),
        }
    } else {
        Batch {
            series: Vec::new(),
            metadata: b.metadata.split_off(mid - b.series.len()),
        }
    };
    (b, second)
}

/// Warnings about refused rows, at most one per interval: a sender repeating a bad series
/// every second must not flood the log. The first refusal after a quiet interval is logged
/// in full (truncated to a readable length), with how many were suppressed before it.
struct RefusalLog {
    interval: Duration,
    state: std::sync::Mutex<(Option<Instant>, u64)>,
}

impl RefusalLog {
    fn new(interval: Duration) -> Self {
        Self {
            interval,
            state: std::sync::Mutex::new((None, 0)),
        }
    }

    fn warn(&self, what: &str, samples: u64, error: &str) {
        let suppressed = {
            let mut st = self.state.lock().expect("refusal log lock");
            let now = Instant::now();
            if st
                .0
                .is_some_and(|last| now.duration_since(last) < self.interval)
            {
                st.1 += 1;
                return;
            }
            st.0 = Some(now);
            std::mem::take(&mut st.1)
        };
        tracing::warn!(
            samples,
            suppressed_since_last_warning = suppressed,
            error = %truncate(error, 300),
            "the database refused {}; its samples are dropped and not retried (counted in pipewatch_ingest_samples_rejected{{reason=\"refused_by_database\"}})",
            truncate(what, 300)
        );
    }
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Labels, MetricType, Sample, SeriesKey, TimeSeries};
    use std::sync::Mutex as StdMutex;

    /// An in-process sink that records what reached it. Used only for the queue's own
    /// mechanics (bounds, merging); the database path is tested against real PostgreSQL in
    /// tests/.
    #[derive(Default)]
    struct RecordingSink {
        written: StdMutex<Vec<usize>>,
        fail_first: AtomicU64,
        gate: tokio::sync::Notify,
        gated: AtomicBool,
    }

    #[async_trait::async_trait]
    impl BatchSink for RecordingSink {
        async fn write_batches(&self, batches: &[Batch]) -> Result<(u64, u64), SinkError> {
            if self.gated.load(Ordering::Acquire) {
                self.gate.notified().await;
            }
            if self.fail_first.load(Ordering::Acquire) > 0 {
                self.fail_first.fetch_sub(1, Ordering::AcqRel);
                return Err(SinkError::Unavailable("database unavailable".into()));
            }
            let n: usize = batches.iter().map(|b| b.sample_count()).sum();
            self.written.lock().unwrap().push(n);
            Ok((n as u64, 0))
        }
    }

    fn batch(n: usize) -> Batch {
        Batch {
            series: vec![TimeSeries {
                key: SeriesKey::new("m", Labels::new()),
                metric_type: MetricType::Gauge,
                samples: (0..n)
                    .map(|i| Sample {
                        ts: i as i64,
                        value: 1.0,
                    })
                    .collect(),
            }],
            metadata: vec![],
        }
    }

    fn cfg() -> WriterConfig {
        WriterConfig {
            batch_max_samples: 100,
            flush_interval: Duration::from_millis(20),
            flush_idle: crate::ingest::FLUSH_WHEN_IDLE_FOR,
            writers: 1,
        }
    }

    #[tokio::test]
    async fn try_push_reports_full_when_capacity_is_taken() {
        let sink = Arc::new(RecordingSink::default());
        sink.gated.store(true, Ordering::Release);
        let (q, w) = start(sink.clone(), 10, cfg(), Arc::new(SelfMetrics::new()));
        q.try_push(batch(8)).unwrap();
        let err = q.try_push(batch(5)).unwrap_err();
        assert!(
            matches!(err, PushError::Full { capacity: 10, .. }),
            "{err:?}"
        );
        sink.gated.store(false, Ordering::Release);
        sink.gate.notify_waiters();
        sink.gate.notify_one();
        assert_eq!(w.shutdown(Duration::from_secs(5)).await, 0);
        assert_eq!(sink.written.lock().unwrap().iter().sum::<usize>(), 8);
    }

    #[tokio::test]
    async fn try_push_reports_full_when_the_byte_bound_is_taken_and_counts_it_apart() {
        let sink = Arc::new(RecordingSink::default());
        sink.gated.store(true, Ordering::Release);
        let metrics = Arc::new(SelfMetrics::new());
        let one = std::mem::size_of::<Item>() + footprint::batch_bytes(&batch(10));
        let (q, w) = start_bounded(
            sink.clone(),
            QueueBounds {
                samples: 1_000,
                bytes: one * 2 + one / 2,
            },
            cfg(),
            metrics.clone(),
        );
        q.try_push(batch(10)).unwrap();
        q.try_push(batch(10)).unwrap();
        assert_eq!(q.depth_bytes(), 2 * one);
        assert!(q.has_room(10, one / 2) && !q.has_room(10, one) && !q.has_room(981, 1));
        let err = q.try_push(batch(10)).unwrap_err();
        assert!(
            err.to_string()
                .contains("bytes of queued data (ingest.queue_max_bytes)"),
            "{err}"
        );
        assert_eq!(metrics.rejected_total("queue_full_bytes"), 10);
        assert_eq!(metrics.rejected_total("queue_full"), 0);
        assert_eq!(
            q.depth(),
            20,
            "the refused batch's sample permits went back"
        );
        let text = metrics.encode();
        assert!(
            text.contains(&format!("pipewatch_ingest_queue_depth_bytes {}", 2 * one)),
            "{text}"
        );
        sink.gated.store(false, Ordering::Release);
        sink.gate.notify_waiters();
        sink.gate.notify_one();
        assert_eq!(w.shutdown(Duration::from_secs(5)).await, 0);
        assert_eq!(sink.written.lock().unwrap().iter().sum::<usize>(), 20);
        assert_eq!(q.depth_bytes(), 0, "every byte permit is given back");
    }

    /// Scrapers' `push` waits for byte permits as it waits for sample permits.
    #[tokio::test]
    async fn push_waits_for_room_in_the_byte_bound() {
        let sink = Arc::new(RecordingSink::default());
        sink.gated.store(true, Ordering::Release);
        let one = std::mem::size_of::<Item>() + footprint::batch_bytes(&batch(10));
        let (q, w) = start_bounded(
            sink.clone(),
            QueueBounds {
                samples: 1_000,
                bytes: one + one / 2,
            },
            cfg(),
            Arc::new(SelfMetrics::new()),
        );
        q.push(batch(10)).await.unwrap();
        let waiting = tokio::time::timeout(Duration::from_millis(300), q.push(batch(10))).await;
        assert!(waiting.is_err(), "the second push must wait for bytes");
        sink.gated.store(false, Ordering::Release);
        sink.gate.notify_waiters();
        sink.gate.notify_one();
        tokio::time::timeout(Duration::from_secs(5), q.push(batch(10)))
            .await
            .expect("room once the first batch is written")
            .unwrap();
        assert_eq!(w.shutdown(Duration::from_secs(5)).await, 0);
        assert_eq!(sink.written.lock().unwrap().iter().sum::<usize>(), 20);
    }

    /// A sink that holds every series by a made-up id and refuses any write holding id 13, as
    /// a database would refuse rows it cannot take.
    #[derive(Default)]
    struct ResolvingSink {
        written: StdMutex<Vec<i64>>,
        attempts: AtomicU64,
    }

    #[async_trait::async_trait]
    impl BatchSink for ResolvingSink {
        async fn write_batches(&self, _: &[Batch]) -> Result<(u64, u64), SinkError> {
            panic!("every series is resolved");
        }

        fn resolve_known(&self, batch: Batch, _: Option<store::Fingerprints>) -> store::Resolution {
            let rows = batch
                .series
                .iter()
                .flat_map(|s| {
                    let id: i64 = s.key.labels.get("id").unwrap().parse().unwrap();
                    s.samples.iter().map(move |x| store::ResolvedSample {
                        series_id: id,
                        ts: x.ts,
                        value: x.value,
                    })
                })
                .collect();
            store::Resolution {
                resolved: store::ResolvedSamples::from_rows(rows),
                ..Default::default()
            }
        }

        async fn write_resolved(
            &self,
            parts: &[&store::ResolvedSamples],
        ) -> Result<u64, SinkError> {
            self.attempts.fetch_add(1, Ordering::AcqRel);
            let ids: Vec<i64> = parts
                .iter()
                .flat_map(|p| p.rows().iter().map(|r| r.series_id))
                .collect();
            if ids.contains(&13) {
                return Err(SinkError::Refused("value out of range".into()));
            }
            self.written.lock().unwrap().extend(&ids);
            Ok(ids.len() as u64)
        }
    }

    /// Samples held by id that the database refuses are isolated item by item: the other items
    /// of the same flush are stored, the refused samples counted, nothing retried.
    #[tokio::test]
    async fn a_refused_item_held_by_id_is_dropped_and_the_others_are_stored() {
        let sink = Arc::new(ResolvingSink::default());
        let metrics = Arc::new(SelfMetrics::new());
        let (q, w) = start(sink.clone(), 1_000, cfg(), metrics.clone());
        let item = |ids: &[i64]| Batch {
            series: ids
                .iter()
                .map(|id| TimeSeries {
                    key: SeriesKey::new("m", Labels::from_pairs([("id", id.to_string())])),
                    metric_type: MetricType::Gauge,
                    samples: vec![Sample { ts: 1, value: 1.0 }; 2],
                })
                .collect(),
            metadata: vec![],
        };
        q.try_push(item(&[1, 2])).unwrap();
        q.try_push(item(&[12, 13])).unwrap();
        q.try_push(item(&[3])).unwrap();
        assert_eq!(w.shutdown(Duration::from_secs(5)).await, 0);
        let mut written = sink.written.lock().unwrap().clone();
        written.sort();
        assert_eq!(written, vec![1, 1, 2, 2, 3, 3]);
        assert_eq!(metrics.rejected_total("refused_by_database"), 4);
        assert_eq!(metrics.write_errors.get(), 0);
        assert_eq!(
            sink.attempts.load(Ordering::Acquire),
            4,
            "one merged write, then one per item"
        );
    }

    #[tokio::test]
    async fn shutdown_drains_everything_queued_and_then_refuses() {
        let sink = Arc::new(RecordingSink::default());
        let (q, w) = start(sink.clone(), 10_000, cfg(), Arc::new(SelfMetrics::new()));
        for _ in 0..50 {
            q.push(batch(30)).await.unwrap();
        }
        assert_eq!(w.shutdown(Duration::from_secs(5)).await, 0);
        let written = sink.written.lock().unwrap().clone();
        assert_eq!(written.iter().sum::<usize>(), 1500);
        // merged: far fewer writes than pushes, none much above the size limit
        assert!(written.len() < 50, "{written:?}");
        assert_eq!(q.try_push(batch(1)), Err(PushError::Closed));
    }

    #[tokio::test]
    async fn failed_writes_are_retried_until_they_succeed() {
        let sink = Arc::new(RecordingSink::default());
        sink.fail_first.store(3, Ordering::Release);
        let metrics = Arc::new(SelfMetrics::new());
        let (q, w) = start(sink.clone(), 1000, cfg(), metrics.clone());
        q.push(batch(7)).await.unwrap();
        assert_eq!(w.shutdown(Duration::from_secs(10)).await, 0);
        assert_eq!(sink.written.lock().unwrap().clone(), vec![7]);
        assert_eq!(metrics.write_errors.get(), 3);
    }

    #[tokio::test]
    async fn shutdown_gives_up_after_timeout_and_counts_the_loss() {
        let sink = Arc::new(RecordingSink::default());
        sink.fail_first.store(u64::MAX, Ordering::Release);
        let (q, w) = start(sink.clone(), 1000, cfg(), Arc::new(SelfMetrics::new()));
        q.push(batch(9)).await.unwrap();
        assert_eq!(w.shutdown(Duration::from_millis(300)).await, 9);
    }

    #[test]
    fn halves_split_series_and_metadata_into_two_non_empty_parts() {
        let meta = |f: &str| model::MetricMetadata {
            family: f.into(),
            metric_type: MetricType::Gauge,
            unit: String::new(),
            help: String::new(),
        };
        let b = Batch {
            series: batch(1).series.into_iter().chain(batch(2).series).collect(),
            metadata: vec![meta("a"), meta("b"), meta("c")],
        };
        let (x, y) = halves(b);
        assert_eq!((x.series.len(), x.metadata.len()), (2, 0));
        assert_eq!((y.series.len(), y.metadata.len()), (0, 3));
        let (x, y) = halves(y);
        assert_eq!((x.metadata.len(), y.metadata.len()), (1, 2));
        let (x, y) = halves(batch(1).series.into_iter().chain(batch(1).series).fold(
            Batch::default(),
            |mut b, s| {
                b.series.push(s);
                b
            },
        ));
        assert_eq!((x.series.len(), y.series.len()), (1, 1));
    }

    /// Against real PostgreSQL: series the store registered are queued by id (24 bytes a
    /// sample instead of their label sets), new ones in full, and both are stored exactly
    /// once under the right series.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn known_series_are_queued_by_id_and_stored_once() {
        let url = store::testing::fresh_database_url().await;
        let db = store::Store::connect(&url, Default::default())
            .await
            .unwrap();
        let metrics = Arc::new(SelfMetrics::new());
        let (q, w) = start(
            Arc::new(db.clone()),
            100_000,
            WriterConfig {
                batch_max_samples: 100_000,
                flush_interval: Duration::from_millis(300),
                flush_idle: crate::ingest::FLUSH_WHEN_IDLE_FOR,
                writers: 1,
            },
            metrics.clone(),
        );
        let now = model::clock::now_ms() - 60_000;
        let labels = |i: usize| {
            Labels::from_pairs([
                ("i", i.to_string()),
                ("job", "a-rather-long-job-name".into()),
                ("instance", "host-0123.example:9100".into()),
                ("pod", "pipeline-worker-7f9c6d5b8-x2x4q".into()),
            ])
        };
        let request = |round: i64, series: std::ops::Range<usize>| Batch {
            series: series
                .map(|i| TimeSeries {
                    key: SeriesKey::new("queued_by_id", labels(i)),
                    metric_type: MetricType::Gauge,
                    samples: vec![Sample {
                        ts: now + round,
                        value: i as f64 + round as f64 / 10.0,
                    }],
                })
                .collect(),
            metadata: vec![],
        };
        // New series: each sample by the series' shared key (24 bytes), the keys counted once
        // by the item that noted them (`store::pending`).
        let shared = |r: &Batch| {
            footprint::ALLOCATION_OVERHEAD
                + r.series.len() * std::mem::size_of::<store::SharedSample>()
                + r.series
                    .iter()
                    .map(|s| store::pending::key_bytes(&s.key))
                    .sum::<usize>()
        };
        let full = std::mem::size_of::<Item>() + footprint::batch_bytes(&request(0, 0..100));
        let first = std::mem::size_of::<Item>() + shared(&request(0, 0..100));
        q.try_push(request(0, 0..100)).unwrap();
        assert_eq!(q.depth_bytes(), first, "new series are held by shared keys");
        // A note costs the key's shared allocation and its map entry beyond the label set.
        assert!(
            first > full && first < full + 100 * 160,
            "their keys weigh about what the label sets did ({first} vs {full})"
        );
        let count = || async {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM samples")
                .fetch_one(db.pool())
                .await
                .unwrap()
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while (count().await < 100 || q.depth() > 0) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Registered now: the next rounds are held by id, except the 20 new series.
        for round in 1..=3 {
            q.try_push(request(round, 0..100)).unwrap();
        }
        q.try_push(request(4, 0..120)).unwrap();
        let by_id = std::mem::size_of::<Item>() + 100 * 24 + footprint::ALLOCATION_OVERHEAD;
        let expected = 4 * by_id + shared(&request(4, 100..120));
        let depth = q.depth_bytes();
        assert!(
            depth == expected && depth < full,
            "{depth} bytes queued, expected {expected} (one full request is {full})"
        );
        assert_eq!(w.shutdown(Duration::from_secs(10)).await, 0);
        let rows: Vec<(String, i64, f64, i64)> = sqlx::query_as(
            "SELECT s.labels->>'i', (extract(epoch FROM x.ts) * 1000)::bigint - $1, x.value, count(*) OVER (PARTITION BY x.series_id, x.ts) \
             FROM samples x JOIN series s ON s.id = x.series_id ORDER BY 1, 2",
        )
        .bind(now)
        .fetch_all(db.pool())
        .await
        .unwrap();
        assert_eq!(rows.len(), 4 * 100 + 120);
        for (i, round, value, copies) in &rows {
            let i: usize = i.parse().unwrap();
            assert_eq!(*copies, 1, "series {i} round {round} stored once");
            assert_eq!(
                *value,
                i as f64 + *round as f64 / 10.0,
                "series {i} round {round}"
            );
        }
        assert_eq!(db.series_count().await.unwrap(), 120);
        assert_eq!(metrics.samples_written.get(), 520);
    }

    /// The writer against real PostgreSQL: a series with a NUL byte in a label value (which
    /// the decoders refuse; pushed here straight into the queue) makes PostgreSQL refuse the
    /// whole COPY transaction. The other series of that batch and every later batch must
    /// still be stored, the refused samples counted, and nothing retried.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_series_the_database_refuses_is_dropped_and_the_rest_is_stored() {
        let url = store::testing::fresh_database_url().await;
        let db = store::Store::connect(&url, Default::default())
            .await
            .unwrap();
        let metrics = Arc::new(SelfMetrics::new());
        let (q, w) = start(
            Arc::new(db.clone()),
            100_000,
            WriterConfig {
                batch_max_samples: 10_000,
                flush_interval: Duration::from_millis(50),
                flush_idle: crate::ingest::FLUSH_WHEN_IDLE_FOR,
                writers: 2,
            },
            metrics.clone(),
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let series = |value: &str, samples: usize| TimeSeries {
            key: SeriesKey::new("poison_test", Labels::from_pairs([("i", value)])),
            metric_type: MetricType::Gauge,
            samples: (0..samples)
                .map(|k| Sample {
                    ts: now + k as i64,
                    value: 1.0,
                })
                .collect(),
        };
        let mut first: Vec<TimeSeries> = (0..20).map(|i| series(&i.to_string(), 1)).collect();
        first.insert(7, series("bad\0value", 3));
        q.push(Batch {
            series: first,
            metadata: vec![],
        })
        .await
        .unwrap();
        q.push(Batch {
            series: (20..30).map(|i| series(&i.to_string(), 1)).collect(),
            metadata: vec![],
        })
        .await
        .unwrap();

        let count = || async {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM samples")
                .fetch_one(db.pool())
                .await
                .unwrap()
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while count().await < 30 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(count().await, 30, "every good sample is stored");
        assert_eq!(w.shutdown(Duration::from_secs(5)).await, 0);
        assert_eq!(count().await, 30);
        assert_eq!(db.series_count().await.unwrap(), 30);
        let rejected = metrics
            .samples_rejected
            .get_or_create(&crate::telemetry::ReasonLabels {
                reason: "refused_by_database".into(),
            })
            .get();
        assert_eq!(rejected, 3, "the refused series' samples are counted");
        assert_eq!(
            metrics.write_errors.get(),
            0,
            "refused data is not retried as if the database were down"
        );
    }
}
