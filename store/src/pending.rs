//! Samples of series that are not registered yet, held with one shared key per series.
//!
//! A series the store has no id for yet (a writer has not registered it) came to the ingest
//! queue with its whole label set (about 1 KB for a series of 6-8 labels), in every request
//! that brought it. A sender that starts 10,000 series at once keeps sending them while they
//! are being registered, so each of those samples was queued with a label set of its own: the
//! burst was most of pipewatch's peak memory in the peers' benchmark (166 MiB, against 57 MiB
//! when the series were registered before). [`Store::resolve_known`] now moves the key of such
//! a series into a note ([`PendingKeys`]), and every sample of it, from that request and the
//! ones after it, is queued as a [`SharedSample`]: the shared key, a timestamp and a value (24
//! bytes). The item that noted a key counts its bytes toward the queue's byte bound.
//!
//! The writer turns shared samples back into what it writes ([`Store::unshare`]): by id once
//! the series is registered (usually by the write just before), else as a `TimeSeries` that
//! any writer can register, so no ordering between the writers is needed and what is stored is
//! what it was before. Unsharing drops the series' notes, so the key moves into the
//! `TimeSeries` when no other queued item shares it (it is cloned otherwise).
//!
//! Noted keys are dropped once no queued sample shares them and they are a few seconds old,
//! and the notes are bounded in bytes ([`PendingKeys::MAX_BYTES`]): beyond that, series are
//! queued in full as before.

use crate::registry::FingerprintHash;
use crate::writer_resolved::{Resolution, ResolvedSample, ResolvedSamples};
use crate::Store;
use model::{Batch, Labels, MetricType, Sample, SeriesKey, TimeSeries};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The key of a series that is queued but not registered.
#[derive(Debug)]
pub struct SharedKey {
    pub key: SeriesKey,
    pub metric_type: MetricType,
    /// Its fingerprint in the store's series cache.
    pub fp: u128,
}

/// One sample of a series held by its [`SharedKey`].
#[derive(Debug, Clone)]
pub struct SharedSample {
    pub key: Arc<SharedKey>,
    pub ts: i64,
    pub value: f64,
}

/// Samples held by shared keys (see the module header).
#[derive(Debug, Clone, Default)]
pub struct SharedSamples {
    pub(crate) rows: Vec<SharedSample>,
    /// Bytes of the keys these samples noted ([`key_bytes`]): an item that brings a series'
    /// first samples carries its key's weight, as it did holding the key itself.
    pub(crate) noted_bytes: usize,
}

impl SharedSamples {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn rows(&self) -> &[SharedSample] {
        &self.rows
    }

    /// Bytes these samples hold on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.rows.capacity() * std::mem::size_of::<SharedSample>()
    }

    /// Bytes of the keys these samples noted (see [`Self::noted_bytes`]'s field).
    pub fn noted_bytes(&self) -> usize {
        self.noted_bytes
    }

    /// The samples as a batch, one series per key (in first-seen order): what a sink without
    /// a series cache writes.
    pub fn into_batch(parts: Vec<SharedSamples>) -> Batch {
        Batch {
            series: group(parts)
                .into_iter()
                .map(|(key, samples)| series_of(key, samples))
                .collect(),
            metadata: Vec::new(),
        }
    }
}

/// The series `key` with `samples`: the key moves out of its shared allocation when nothing
/// else holds it, and is cloned otherwise.
fn series_of(key: Arc<SharedKey>, samples: Vec<Sample>) -> TimeSeries {
    let (key, metric_type) = match Arc::try_unwrap(key) {
        Ok(k) => (k.key, k.metric_type),
        Err(shared) => (shared.key.clone(), shared.metric_type),
    };
    TimeSeries {
        key,
        metric_type,
        samples,
    }
}

/// The samples of `parts` per series, in first-seen order, each with one of its keys (the
/// others are dropped here).
fn group(parts: Vec<SharedSamples>) -> Vec<(Arc<SharedKey>, Vec<Sample>)> {
    let mut groups: Vec<(Arc<SharedKey>, Vec<Sample>)> = Vec::new();
    let mut at: HashMap<u128, usize, FingerprintHash> = HashMap::default();
    for r in parts.into_iter().flat_map(|p| p.rows) {
        let sample = Sample {
            ts: r.ts,
            value: r.value,
        };
        match at.entry(r.key.fp) {
            std::collections::hash_map::Entry::Occupied(e) => groups[*e.get()].1.push(sample),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(groups.len());
                groups.push((r.key, vec![sample]));
            }
        }
    }
    groups
}

/// A noted key and when it was noted.
struct Noted {
    key: Arc<SharedKey>,
    at: Instant,
    bytes: usize,
}

/// Keys of series not registered yet, shared by their queued samples (see the module header).
#[derive(Default)]
pub(crate) struct PendingKeys {
    inner: Mutex<PendingInner>,
}

#[derive(Default)]
struct PendingInner {
    keys: HashMap<u128, Noted, FingerprintHash>,
    bytes: usize,
    swept: Option<Instant>,
}

impl PendingKeys {
    /// The notes take at most this many bytes of keys (an estimate, as the queue's footprint).
    pub const MAX_BYTES: usize = 32 << 20;

    /// How long a note is kept after no queued sample shares it.
    const KEEP: Duration = Duration::from_secs(5);

    /// Runs `f` with the notes locked, after dropping the ones nothing shares any more.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Notes<'_>) -> R) -> R {
        let mut inner = self.inner.lock().expect("pending keys poisoned");
        let now = Instant::now();
        if inner
            .swept
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            let mut freed = 0;
            inner.keys.retain(|_, n| {
                let keep = Arc::strong_count(&n.key) > 1 || now.duration_since(n.at) < Self::KEEP;
                if !keep {
                    freed += n.bytes;
                }
                keep
            });
            inner.bytes -= freed;
            inner.swept = Some(now);
        }
        f(&mut Notes {
            inner: &mut inner,
            now,
        })
    }

    /// Drops the notes of `keys` (when they are still these keys).
    pub(crate) fn forget<'k>(&self, keys: impl Iterator<Item = &'k Arc<SharedKey>>) {
        let mut inner = self.inner.lock().expect("pending keys poisoned");
        let mut freed = 0;
        for k in keys {
            if let std::collections::hash_map::Entry::Occupied(e) = inner.keys.entry(k.fp) {
                if Arc::ptr_eq(&e.get().key, k) {
                    freed += e.remove().bytes;
                }
            }
        }
        inner.bytes -= freed;
    }

    /// Keys noted now.
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().expect("pending keys poisoned").keys.len()
    }
}

/// The locked notes.
pub(crate) struct Notes<'a> {
    inner: &'a mut PendingInner,
    now: Instant,
}

impl Notes<'_> {
    /// The shared key of the series `ts` (fingerprint `fp`): the one noted before, or a new
    /// note that takes `ts`'s key (leaving an empty one) when the notes have room, with the
    /// bytes the new note holds; `None` when there is no room: the series goes in full.
    pub(crate) fn share(
        &mut self,
        fp: u128,
        ts: &mut TimeSeries,
    ) -> Option<(Arc<SharedKey>, usize)> {
        if let Some(n) = self.inner.keys.get(&fp) {
            return Some((n.key.clone(), 0));
        }
        let bytes = key_bytes(&ts.key);
        if self.inner.bytes + bytes > PendingKeys::MAX_BYTES {
            return None;
        }
        let key = std::mem::replace(&mut ts.key, SeriesKey::new(String::new(), Labels::new()));
        let key = Arc::new(SharedKey {
            key,
            metric_type: ts.metric_type,
            fp,
        });
        self.inner.bytes += bytes;
        self.inner.keys.insert(
            fp,
            Noted {
                key: key.clone(),
                at: self.now,
                bytes,
            },
        );
        Some((key, bytes))
    }
}

/// A noted key's heap bytes, estimated as the ingest queue's footprint estimates a series'
/// key (strings by length, the label vector, 16 bytes of allocator overhead per allocation),
/// with the shared allocation and the note's map entry.
pub fn key_bytes(key: &SeriesKey) -> usize {
    const OVERHEAD: usize = 16;
    let labels: usize = key
        .labels
        .iter()
        .map(|(k, v)| k.len() + v.len() + 2 * OVERHEAD)
        .sum();
    let label_vec = key.labels.len() * 2 * std::mem::size_of::<String>() + OVERHEAD;
    let arc = 2 * std::mem::size_of::<usize>() + std::mem::size_of::<SharedKey>() + OVERHEAD;
    let entry = std::mem::size_of::<(u128, Noted)>() + 1;
    key.metric.len() + OVERHEAD + label_vec + labels + arc + entry
}

impl Store {
    /// What the writer makes of shared samples (see the module header): the samples of series
    /// registered by now by id, the others as full series with the series cache's
    /// fingerprints. The notes of these series are dropped (they are being written; later
    /// samples note them again until they are registered), so a key that nothing else shares
    /// any more moves into its series instead of being cloned.
    pub fn unshare(&self, parts: Vec<SharedSamples>) -> Resolution {
        let cache = &self.inner.series;
        let settled_since = self.settled_since(model::clock::now_ms());
        let groups = group(parts);
        self.inner.pending.forget(groups.iter().map(|(k, _)| k));
        let mut rows = Vec::new();
        let mut series = Vec::new();
        let mut fps = Vec::new();
        for (key, samples) in groups {
            let last = samples.iter().map(|s| s.ts).max().unwrap_or(i64::MIN);
            match cache.hit_settled(key.fp, last, settled_since) {
                Some(series_id) => rows.extend(samples.iter().map(|s| ResolvedSample {
                    series_id,
                    ts: s.ts,
                    value: s.value,
                })),
                None => {
                    fps.push(key.fp);
                    series.push(series_of(key, samples));
                }
            }
        }
        Resolution {
            batch: Batch {
                series,
                metadata: Vec::new(),
            },
            fingerprints: Some(cache.tag(fps)),
            resolved: ResolvedSamples::from_rows(rows),
            shared: SharedSamples::default(),
        }
    }

    /// Series noted as queued and not registered ([`PendingKeys`]); for tests.
    pub fn pending_keys(&self) -> usize {
        self.inner.pending.len()
    }
}
