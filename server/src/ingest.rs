//! The ingest queue and its batch writers.
//!
//! Receivers and scrapers hand `model::Batch`es to the [`IngestQueue`]; receivers first pass
//! them through [`window`] (which timestamps are taken at all) and the limiter, whose series
//! fingerprints travel with the batch so the writer does not hash the label sets again. The queue is bounded in
//! *samples* (a semaphore of sample permits): when it is full, `try_push` fails at once so HTTP
//! receivers can answer 429/503 with Retry-After, and `push` waits so scrapers slow down.
//! [`BatchWriters`] take batches off the queue, merge them until `batch_max_samples` or
//! `flush_interval`, write them with one COPY transaction, and only then release the permits.
//! A write the database could not take (connection lost, restart) is retried with back-off;
//! such data is never dropped while the process runs. Rows the database refuses as data (a
//! NUL byte, SQLSTATE class 22/23/54) are isolated by halving the batch: the rest is stored,
//! the refused series are counted and logged, and they are never retried. On
//! shutdown the queue is closed to new data and drained; only if the database stays unreachable
//! past `shutdown_timeout` are samples given up, and that is logged as an error with the count.

pub mod window;

use crate::telemetry::SelfMetrics;
use model::Batch;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Mutex, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("ingest queue is full ({capacity} samples); retry after {retry_after:?}")]
    Full {
        capacity: usize,
        retry_after: Duration,
    },
    #[error(
        "pipewatch is shutting down and accepts no new data; retry against the restarted server"
    )]
    Closed,
}

struct Item {
    batch: Batch,
    /// The series cache's fingerprints of `batch.series`, when a receiver's limiter computed
    /// them; the writer reuses them instead of hashing every label set again.
    fingerprints: Option<store::Fingerprints>,
    permits: u32,
}

/// Handle for producers; cheap to clone.
#[derive(Clone)]
pub struct IngestQueue {
    tx: mpsc::UnboundedSender<Item>,
    permits: Arc<Semaphore>,
    capacity: usize,
    closed: Arc<AtomicBool>,
    depth: Arc<AtomicU64>,
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
        let n = self.permits_for(&batch);
        if self.closed.load(Ordering::Acquire) {
            return Err(PushError::Closed);
        }
        match self.permits.clone().try_acquire_many_owned(n) {
            Ok(p) => {
                p.forget();
                self.send(batch, fingerprints, n)
            }
            Err(tokio::sync::TryAcquireError::Closed) => Err(PushError::Closed),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                self.metrics
                    .rejected("queue_full", batch.sample_count() as u64);
                Err(PushError::Full {
                    capacity: self.capacity,
                    retry_after: Duration::from_secs(1),
                })
            }
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
        self.send(batch, None, n)
    }

    /// A batch larger than the whole queue takes all permits rather than waiting forever.
    fn permits_for(&self, batch: &Batch) -> u32 {
        batch.sample_count().clamp(1, self.capacity) as u32
    }

    fn send(
        &self,
        batch: Batch,
        fingerprints: Option<store::Fingerprints>,
        permits: u32,
    ) -> Result<(), PushError> {
        let samples = batch.sample_count() as u64;
        match self.tx.send(Item {
            batch,
            fingerprints,
            permits,
        }) {
            Ok(()) => {
                self.metrics.samples_enqueued.inc_by(samples);
                let d = self.depth.fetch_add(samples, Ordering::AcqRel) + samples;
                self.metrics.queue_depth.set(d as i64);
                Ok(())
            }
            Err(_) => {
                self.permits.add_permits(permits as usize);
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
            .map_err(|e| {
                if e.is_refused_data() {
                    SinkError::Refused(e.to_string())
                } else {
                    SinkError::Unavailable(e.to_string())
                }
            })
    }
}

#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub batch_max_samples: usize,
    pub flush_interval: Duration,
    pub writers: usize,
}

/// The running writer tasks. `shutdown` closes the queue, drains it and waits.
pub struct BatchWriters {
    closed: Arc<AtomicBool>,
    permits: Arc<Semaphore>,
    tasks: JoinSet<()>,
    closing: CancellationToken,
    abandon: CancellationToken,
    lost: Arc<AtomicU64>,
}

/// Creates the queue and starts `cfg.writers` writer tasks.
pub fn start(
    sink: Arc<dyn BatchSink>,
    capacity: usize,
    cfg: WriterConfig,
    metrics: Arc<SelfMetrics>,
) -> (IngestQueue, BatchWriters) {
    let (tx, rx) = mpsc::unbounded_channel();
    let permits = Arc::new(Semaphore::new(capacity));
    let closed = Arc::new(AtomicBool::new(false));
    let depth = Arc::new(AtomicU64::new(0));
    metrics.queue_capacity.set(capacity as i64);
    let queue = IngestQueue {
        tx,
        permits: permits.clone(),
        capacity,
        closed: closed.clone(),
        depth: depth.clone(),
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
            depth: depth.clone(),
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
    depth: Arc<AtomicU64>,
    metrics: Arc<SelfMetrics>,
    closing: CancellationToken,
    abandon: CancellationToken,
    lost: Arc<AtomicU64>,
    refusal_log: Arc<RefusalLog>,
}

impl Writer {
    async fn run(self) {
        loop {
            let (batches, fingerprints, permits, samples, done) = self.collect().await;
            if !batches.is_empty() {
                self.write(&batches, &fingerprints, samples).await;
                // Permits go back only after commit, so the queue bound covers in-flight data.
                self.permits.add_permits(permits as usize);
                let d = self.depth.fetch_sub(samples, Ordering::AcqRel) - samples;
                self.metrics.queue_depth.set(d as i64);
            }
            if done {
                tracing::debug!(writer = self.id, "writer drained and stopped");
                return;
            }
        }
    }

    /// Gathers batches until the size limit, the age limit, or the closed-and-empty queue.
    async fn collect(&self) -> (Vec<Batch>, Vec<Option<store::Fingerprints>>, u64, u64, bool) {
        let mut batches = Vec::new();
        let mut fingerprints = Vec::new();
        let mut permits = 0u64;
        let mut samples = 0u64;
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
            return (batches, fingerprints, 0, 0, true);
        };
        let deadline = Instant::now() + self.cfg.flush_interval;
        let mut add =
            |item: Item, batches: &mut Vec<Batch>, permits: &mut u64, samples: &mut u64| {
                *permits += item.permits as u64;
                *samples += item.batch.sample_count() as u64;
                batches.push(item.batch);
                fingerprints.push(item.fingerprints);
            };
        add(first, &mut batches, &mut permits, &mut samples);
        while (samples as usize) < self.cfg.batch_max_samples {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            tokio::select! {
                r = tokio::time::timeout(deadline - now, rx.recv()) => match r {
                    Ok(Some(item)) => add(item, &mut batches, &mut permits, &mut samples),
                    Ok(None) => return (batches, fingerprints, permits, samples, true),
                    Err(_) => break,
                },
                _ = self.closing.cancelled(), if !closed => {
                    rx.close();
                    closed = true;
                }
            }
        }
        (batches, fingerprints, permits, samples, false)
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
        let first_error = match self.write_retrying(batches, fingerprints, samples).await {
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
                    .write_retrying(std::slice::from_ref(&half), &[], n)
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
    async fn write_retrying(
        &self,
        batches: &[Batch],
        fingerprints: &[Option<store::Fingerprints>],
        samples: u64,
    ) -> Outcome {
        let mut attempt = 0u32;
        loop {
            let started = Instant::now();
            match self.sink.write_fingerprinted(batches, fingerprints).await {
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
