//! The series registry: which database id a series (metric + label set) has, and the bounded
//! in-memory cache of the series this process has recently written or admitted.
//!
//! **Ids and collisions.** A series' id is normally [`model::SeriesKey::stable_id`], a 63-bit
//! hash, so writers agree on it without a round trip. Two different label sets can hash to the
//! same id (by chance, about one pair in 2^31 series; or crafted, since xxh3 is not
//! collision-resistant). Such series must never be merged, so registration compares the stored
//! metric and labels with the incoming ones. A series whose hash `h` is taken by another label
//! set gets the first free id of `h+1, h+2, …` (linear probing, at most [`MAX_PROBES`] steps),
//! and the pair (`h`, id) is recorded in `series_collisions`. Lookups of a key check the row
//! at `h` and the ids recorded for `h` there, so a probed series is found again by any process,
//! also after the series at `h` was deleted by retention (which linear probing alone would not
//! survive). The collision row is deleted with its series (`ON DELETE CASCADE`). Samples refer
//! to the registered id, whatever it is; readers never recompute hashes.
//!
//! **The cache.** [`SeriesCache`] maps a keyed 128-bit SipHash fingerprint of the series key to
//! the registered id and its `last_seen` bookkeeping, bounded by LRU eviction
//! (`StoreConfig::series_cache_capacity`, about 100 bytes an entry). The key is random per
//! process, so fingerprints cannot be crafted to collide; an accidental match among n cached
//! series has probability about n²/2^129. The server's limiter shares this cache as its set of
//! known series, so one bounded structure serves both. A series evicted from the cache is
//! looked up in the database again on its next write (and counts as new for the new-series
//! brake), which is what bounds memory when series churn (pod names, run ids).
//!
//! **One fingerprint per series, many locks.** The limiter fingerprints every series it admits
//! and hands the values on with the batch ([`Fingerprints`]), so the writer does not hash the
//! same label set again; the cache id inside [`Fingerprints`] makes sure only values of this
//! cache's key are reused. Large caches are split into [`SHARDS`] LRUs, each behind its own
//! lock and chosen by the fingerprint's high bits, so receiver connections and writers touching
//! different series do not wait for each other; eviction is then least recently used within a
//! shard (the shards fill evenly, fingerprints being uniform). Small caches (tests, tiny
//! deployments) keep one exact LRU.

use crate::error::{DbContext, StoreError};
use crate::writer::LastSeen;
use model::{SeriesKey, TimestampMs};
use std::collections::HashSet;
use std::hash::Hasher;
use std::sync::Mutex;

/// How far a colliding series probes for a free id before its write is refused.
pub const MAX_PROBES: i64 = 64;

/// Default number of series the cache holds.
pub const DEFAULT_SERIES_CACHE_CAPACITY: usize = 1_000_000;

/// Locks of a sharded cache.
pub const SHARDS: usize = 16;

/// Below this capacity the cache is one exact LRU: sharding only pays under concurrency on a
/// large cache, and per-shard bounds of a tiny cache would be coarse.
const MIN_SHARDED_CAPACITY: usize = 16 * 1024;

/// (series id, last_seen to write).
pub(crate) type Bump = (i64, TimestampMs);

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// None: admitted by the limiter, not written (or looked up) by the writer yet.
    id: Option<i64>,
    seen: LastSeen,
    /// The cache's generation when this entry was last moved to the front of its LRU
    /// ([`SeriesCache::generation`]).
    touched: u32,
}

type Shard = Mutex<lru::LruCache<u128, Entry, FingerprintHash>>;

/// The cache's keys are keyed SipHash-1-3 fingerprints already: hashing them again (the
/// crate's default SipHash) was a tenth of the receivers' CPU in a profile. The map takes the
/// low 64 bits as they are; the shard is picked from the high ones.
pub(crate) type FingerprintHash = std::hash::BuildHasherDefault<FingerprintHasher>;

#[derive(Default)]
pub(crate) struct FingerprintHasher(u64);

impl std::hash::Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u128 keys are hashed (write_u128); this keeps other uses correct anyway.
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0 ^ u64::from_le_bytes(b)).rotate_left(29);
        }
    }

    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

/// Raw names of series: what a receiver read a series from, before it built the key
/// ([`collectors::known`] explains raw names), mapped to the series' fingerprint in a
/// [`SeriesCache`], so that a series the receiver has resolved once is found again without
/// its key being built. A raw name stands for a key for good (equal raw bytes always build
/// the same key), so entries never go stale; whether the series may be taken by id is still
/// asked of the series cache each time ([`crate::Store::resolve_fingerprint`]).
///
/// Raw names are kept whole and compared byte for byte, so two names can never be confused;
/// they are found by a seeded fast hash (foldhash: a keyed SipHash of every name cost a tenth
/// of OTLP's CPU). Bounded in bytes: a shard that reaches its share of
/// [`RawNames::MAX_BYTES`] is emptied (its series are resolved from their keys again, and
/// remembered again).
pub struct RawNames {
    hasher: foldhash::quality::RandomState,
    shards: Box<[Mutex<RawShard>]>,
    /// Series found by their raw names ([`Self::count_hits`]).
    hits: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct RawShard {
    table: hashbrown::HashTable<RawEntry>,
    bytes: usize,
}

struct RawEntry {
    hash: u64,
    raw: Box<[u8]>,
    fp: u128,
}

impl std::fmt::Debug for RawNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawNames")
            .field("len", &self.len())
            .finish()
    }
}

impl Default for RawNames {
    fn default() -> Self {
        Self {
            hasher: Default::default(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hits: Default::default(),
        }
    }
}

impl RawNames {
    /// Bytes the remembered names take at most (their bytes and each entry's; about 100,000
    /// OTLP series of a handful of attributes).
    pub const MAX_BYTES: usize = 16 << 20;

    /// What an entry costs beyond its name's bytes: the entry, the name's allocation and the
    /// table's control byte.
    const ENTRY_BYTES: usize = std::mem::size_of::<RawEntry>() + 16 + 1;

    fn shard(&self, hash: u64) -> &Mutex<RawShard> {
        &self.shards[(hash >> 56) as usize % self.shards.len()]
    }

    /// The fingerprint of the series whose raw name is `raw`, if remembered.
    pub fn get(&self, raw: &[u8]) -> Option<u128> {
        use std::hash::BuildHasher;
        let hash = self.hasher.hash_one(raw);
        let shard = lock(self.shard(hash));
        shard
            .table
            .find(hash, |e| e.hash == hash && *e.raw == *raw)
            .map(|e| e.fp)
    }

    /// Remembers that `raw` names the series with fingerprint `fp`.
    pub fn insert(&self, raw: &[u8], fp: u128) {
        use std::hash::BuildHasher;
        let hash = self.hasher.hash_one(raw);
        let mut shard = lock(self.shard(hash));
        if let Some(e) = shard
            .table
            .find_mut(hash, |e| e.hash == hash && *e.raw == *raw)
        {
            e.fp = fp;
            return;
        }
        let cost = raw.len() + Self::ENTRY_BYTES;
        if shard.bytes + cost > Self::MAX_BYTES / SHARDS {
            shard.table = hashbrown::HashTable::new();
            shard.bytes = 0;
        }
        shard.bytes += cost;
        shard.table.insert_unique(
            hash,
            RawEntry {
                hash,
                raw: raw.into(),
                fp,
            },
            |e| e.hash,
        );
    }

    /// Adds `n` series found by their raw names (counted by the caller per request, so the
    /// lookups do not share one atomic).
    pub fn count_hits(&self, n: u64) {
        if n > 0 {
            self.hits.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Series found by their raw names since start.
    pub fn hits(&self) -> u64 {
        self.hits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Raw names remembered now.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).table.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the remembered names take now (see [`Self::MAX_BYTES`]).
    pub fn bytes(&self) -> usize {
        self.shards.iter().map(|s| lock(s).bytes).sum()
    }
}

/// The fingerprints of a batch's series, in order, computed by one [`SeriesCache`]; see the
/// module header. Values from another cache (another key) are never used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fingerprints {
    cache: u64,
    values: Vec<u128>,
}

impl Fingerprints {
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// The bounded cache of recently written or admitted series; see the module header.
pub struct SeriesCache {
    keys: (u64, u64),
    /// Tells this cache's [`Fingerprints`] from another's.
    id: u64,
    shards: Box<[Shard]>,
    /// Entries each shard holds at most; the shards together hold at most `capacity`.
    shard_capacity: usize,
    /// last_seen bumps of entries evicted before maintenance flushed them, so an evicted
    /// series' last_seen is still written (retention deletes series by it). Bounded by the
    /// capacity; beyond that the oldest bumps are dropped and counted.
    evicted_dirty: Mutex<Vec<(i64, TimestampMs)>>,
    capacity: usize,
    /// Entries inserted since start; every [`Self::generation_inserts`] of them start a new
    /// generation ([`Self::generation`]).
    inserts: std::sync::atomic::AtomicU64,
    generation_inserts: u64,
}

impl std::fmt::Debug for SeriesCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeriesCache")
            .field("capacity", &self.capacity)
            .field("shards", &self.shards.len())
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl Default for SeriesCache {
    fn default() -> Self {
        Self::new(DEFAULT_SERIES_CACHE_CAPACITY)
    }
}

fn lock<T>(shard: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    shard.lock().expect("series cache poisoned")
}

impl SeriesCache {
    /// A cache of at most `capacity` series (at least 1).
    pub fn new(capacity: usize) -> Self {
        use rand::RngCore;
        let mut rng = rand::rngs::OsRng;
        let capacity = capacity.max(1);
        let n = if capacity >= MIN_SHARDED_CAPACITY {
            SHARDS
        } else {
            1
        };
        Self {
            keys: (rng.next_u64(), rng.next_u64()),
            id: rng.next_u64(),
            // Unbounded to the crate, bounded by `push` below: `LruCache::new` allocates its
            // whole capacity up front, ~50 MB for the default, in every Store and Guard.
            shards: (0..n)
                .map(|_| {
                    Mutex::new(lru::LruCache::unbounded_with_hasher(
                        FingerprintHash::default(),
                    ))
                })
                .collect(),
            shard_capacity: capacity / n,
            evicted_dirty: Mutex::new(Vec::new()),
            capacity,
            inserts: Default::default(),
            generation_inserts: (capacity / 8).max(1) as u64,
        }
    }

    /// Hits move an entry to the front of its LRU at most once per generation: a generation
    /// ends after an eighth of the capacity in new entries. Moving it on every hit (a linked
    /// list splice, touching the neighbours' cache lines) was ~8 % of each receiver's CPU in a
    /// profile, while an entry hit at least once per generation still cannot reach the back of
    /// the LRU: only new entries and entries hit in a later generation pass it.
    fn generation(&self) -> u32 {
        (self.inserts.load(std::sync::atomic::Ordering::Relaxed) / self.generation_inserts) as u32
    }

    /// Marks `e` touched in generation `now`; whether it is to be moved to the front.
    fn touch(e: &mut Entry, now: u32) -> bool {
        let stale = e.touched != now;
        e.touched = now;
        stale
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Series held now (never more than the capacity).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, fp: u128) -> &Shard {
        // The high bits: uniform like the rest, and independent of the LRU's own hashing
        // (`known_among` picks shards the same way).
        &self.shards[((fp >> 64) as usize) % self.shards.len()]
    }

    /// The cache key of a series: keyed SipHash-1-3 over the same unambiguous encoding as
    /// `stable_id` (each part terminated by 0xff, which UTF-8 never contains).
    pub fn fingerprint(&self, key: &SeriesKey) -> u128 {
        // One `write` of the key's whole encoding instead of one per part: SipHash over the
        // concatenation is the same value, and the per-call buffering of 2 + 4 per label small
        // writes was most of the hashing time in a profile of the receivers.
        key.with_encoding(|buf| self.fingerprint_encoded(buf))
    }

    /// [`Self::fingerprint`] of a key given as its canonical encoding
    /// ([`model::labels::with_key_encoding`]).
    pub fn fingerprint_encoded(&self, encoding: &[u8]) -> u128 {
        let mut h = siphasher::sip128::SipHasher13::new_with_keys(self.keys.0, self.keys.1);
        h.write(encoding);
        use siphasher::sip128::Hasher128;
        h.finish128().as_u128()
    }

    /// Wraps fingerprints this cache computed (in the order of a batch's series) for the
    /// writer.
    pub fn tag(&self, values: Vec<u128>) -> Fingerprints {
        Fingerprints {
            cache: self.id,
            values,
        }
    }

    /// The values of `f` if this cache computed them for exactly `series` series.
    pub(crate) fn own<'a>(&self, f: Option<&'a Fingerprints>, series: usize) -> Option<&'a [u128]> {
        f.filter(|f| f.cache == self.id && f.values.len() == series)
            .map(|f| f.values.as_slice())
    }

    /// For the limiter: whether the series was seen recently (written or admitted).
    pub fn is_known(&self, key: &SeriesKey) -> bool {
        self.is_known_fp(self.fingerprint(key))
    }

    /// [`Self::is_known`] by fingerprint. Does not refresh the series' recency: the writer's
    /// [`Self::hit`] does that when the series is written, and a promotion here (a linked-list
    /// splice per series and request) was the costliest line of the limiter in a profile.
    pub fn is_known_fp(&self, fp: u128) -> bool {
        lock(self.shard(fp)).contains(&fp)
    }

    /// [`Self::is_known_fp`] for a whole batch, taking each shard's lock once instead of once
    /// per series (a request of 500 series took 500 locks; the limiter runs on every request).
    pub fn known_among(&self, fps: &[u128]) -> Vec<bool> {
        let n = self.shards.len();
        // The batch's positions grouped by shard (a counting sort), so each shard's lock is
        // taken once and only its own fingerprints are visited: scanning the whole batch once
        // per shard was 16 passes over every request.
        let shard_of = |fp: u128| ((fp >> 64) as usize) % n;
        let mut start = vec![0usize; n + 1];
        for &fp in fps {
            start[shard_of(fp) + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut order = vec![0usize; fps.len()];
        for (j, &fp) in fps.iter().enumerate() {
            let s = shard_of(fp);
            order[fill[s]] = j;
            fill[s] += 1;
        }
        let mut known = vec![false; fps.len()];
        for (i, shard) in self.shards.iter().enumerate() {
            let group = &order[start[i]..start[i + 1]];
            if group.is_empty() {
                continue;
            }
            let map = lock(shard);
            for &j in group {
                known[j] = map.contains(&fps[j]);
            }
        }
        known
    }

    /// For the limiter: remembers an admitted series until the writer registers it.
    pub fn note_admitted(&self, key: &SeriesKey) {
        self.note_admitted_fp(self.fingerprint(key))
    }

    /// [`Self::note_admitted`] by fingerprint.
    pub fn note_admitted_fp(&self, fp: u128) {
        let mut map = lock(self.shard(fp));
        if !map.contains(&fp) {
            let entry = Entry {
                id: None,
                seen: LastSeen {
                    flushed: i64::MIN,
                    pending: i64::MIN,
                },
                touched: 0,
            };
            let evicted = self.push(&mut map, fp, entry);
            drop(map);
            self.keep_evicted(evicted);
        }
    }

    /// The registered id of a cached series, raising its pending last_seen to `last`.
    pub(crate) fn hit(&self, fp: u128, last: TimestampMs) -> Option<i64> {
        // Every row's flushed last_seen is at least i64::MIN.
        self.hit_settled(fp, last, i64::MIN)
    }

    /// [`Self::hit`] only for a series whose row is known to hold a `last_seen` of at least
    /// `settled_since`: such a row cannot be expired by retention soon (see `writer_resolved`).
    pub(crate) fn hit_settled(
        &self,
        fp: u128,
        last: TimestampMs,
        settled_since: TimestampMs,
    ) -> Option<i64> {
        let now = self.generation();
        let mut map = lock(self.shard(fp));
        let e = map.peek_mut(&fp)?;
        let promote = Self::touch(e, now);
        let id = e.id.filter(|_| e.seen.flushed >= settled_since);
        if id.is_some() {
            e.seen.pending = e.seen.pending.max(last);
        }
        if promote {
            map.promote(&fp);
        }
        id
    }

    /// Records a series the writer registered or found (`flushed`: what its row holds,
    /// i64::MIN when unknown).
    pub(crate) fn insert(&self, fp: u128, id: i64, flushed: TimestampMs, pending: TimestampMs) {
        let mut map = lock(self.shard(fp));
        if let Some(e) = map.get_mut(&fp) {
            if e.id == Some(id) {
                e.seen.pending = e.seen.pending.max(pending);
                e.seen.flushed = e.seen.flushed.max(flushed);
                return;
            }
        }
        let evicted = self.push(
            &mut map,
            fp,
            Entry {
                id: Some(id),
                seen: LastSeen { flushed, pending },
                touched: 0,
            },
        );
        drop(map);
        self.keep_evicted(evicted);
    }

    /// Inserts, evicting the shard's least recently used entry beyond its capacity.
    fn push(
        &self,
        map: &mut lru::LruCache<u128, Entry, FingerprintHash>,
        fp: u128,
        entry: Entry,
    ) -> Option<(u128, Entry)> {
        self.inserts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        map.put(
            fp,
            Entry {
                touched: self.generation(),
                ..entry
            },
        );
        if map.len() > self.shard_capacity {
            map.pop_lru()
        } else {
            None
        }
    }

    fn keep_evicted(&self, evicted: Option<(u128, Entry)>) {
        if let Some((
            _,
            Entry {
                id: Some(id), seen, ..
            },
        )) = evicted
        {
            if seen.pending > seen.flushed {
                let mut list = self.evicted_dirty.lock().expect("series cache poisoned");
                if list.len() >= self.capacity {
                    // Maintenance has not run for a long time; keep the newest bumps.
                    list.drain(..self.capacity / 2);
                    tracing::warn!(
                        dropped = self.capacity / 2,
                        "last_seen updates of evicted series were dropped because maintenance has not flushed them"
                    );
                }
                list.push((id, seen.pending));
            }
        }
    }

    /// Every (id, last_seen) raised since the previous flush: (evicted series, which are
    /// taken out of the cache's keeping, and cached series).
    pub(crate) fn dirty(&self) -> (Vec<Bump>, Vec<Bump>) {
        let evicted =
            std::mem::take(&mut *self.evicted_dirty.lock().expect("series cache poisoned"));
        let mut cached = Vec::new();
        for shard in self.shards.iter() {
            cached.extend(lock(shard).iter().filter_map(|(_, e)| {
                let id = e.id?;
                (e.seen.pending > e.seen.flushed).then_some((id, e.seen.pending))
            }));
        }
        (evicted, cached)
    }

    /// Gives back evicted bumps whose flush failed.
    pub(crate) fn requeue_evicted(&self, evicted: Vec<(i64, TimestampMs)>) {
        self.evicted_dirty
            .lock()
            .expect("series cache poisoned")
            .extend(evicted);
    }

    /// Marks these last_seen values as written.
    pub(crate) fn flushed(&self, written: &[(i64, TimestampMs)]) {
        let by_id: std::collections::HashMap<i64, TimestampMs> = written.iter().copied().collect();
        for shard in self.shards.iter() {
            for (_, e) in lock(shard).iter_mut() {
                if let Some(ts) = e.id.and_then(|id| by_id.get(&id)) {
                    e.seen.flushed = e.seen.flushed.max(*ts);
                }
            }
        }
    }

    /// Drops series whose rows were deleted, so their next write registers them again.
    pub(crate) fn forget(&self, ids: &HashSet<i64>) {
        if ids.is_empty() {
            return;
        }
        for shard in self.shards.iter() {
            let mut map = lock(shard);
            let gone: Vec<u128> = map
                .iter()
                .filter(|(_, e)| e.id.is_some_and(|id| ids.contains(&id)))
                .map(|(fp, _)| *fp)
                .collect();
            for fp in gone {
                map.pop(&fp);
            }
        }
    }
}

/// A series of one write that was not in the cache.
pub(crate) struct Unresolved<'a> {
    pub fp: u128,
    pub hash: i64,
    pub key: &'a SeriesKey,
    pub labels_json: String,
    pub metric_type: &'a str,
    pub first: TimestampMs,
    pub last: TimestampMs,
}

/// What registration found for one series.
pub(crate) struct Resolved {
    pub fp: u128,
    pub id: i64,
    /// Inserted by this transaction (else it existed).
    pub new: bool,
    pub last: TimestampMs,
}

/// The id `k` steps after `hash`, wrapping within the non-negative 63-bit range.
fn probe(hash: i64, k: i64) -> i64 {
    ((hash as u64).wrapping_add(k as u64) & (i64::MAX as u64)) as i64
}

/// Registers or finds every series of `rows` inside the write's transaction. `rows` are sorted
/// by hash, so concurrent writers lock rows in one order.
pub(crate) async fn register(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    rows: &[Unresolved<'_>],
) -> Result<Vec<Resolved>, StoreError> {
    // 1. Insert at the natural id unless that hash has a collision history (then a probed
    //    series of this very key may exist elsewhere: the lookup below decides).
    let inserted: Vec<i64> = sqlx::query_scalar(&format!(
        "INSERT INTO series (id, metric, labels, metric_type, first_seen, last_seen) \
         SELECT id, metric, labels::jsonb, metric_type, {}, {} \
         FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[]) \
           AS t(id, metric, labels, metric_type, first_ms, last_ms) \
         WHERE NOT EXISTS (SELECT 1 FROM series_collisions c WHERE c.hash = t.id) \
         ON CONFLICT (id) DO NOTHING RETURNING id",
        "to_timestamp(first_ms::float8 / 1000)", "to_timestamp(last_ms::float8 / 1000)"
    ))
    .bind(rows.iter().map(|r| r.hash).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|r| r.key.metric.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|r| r.labels_json.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|r| r.metric_type).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.first).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.last).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await
    .context("registering new series")?;
    let inserted: HashSet<i64> = inserted.into_iter().collect();

    // 2. Which row holds each key: the one at its hash, or one recorded for its hash.
    let found = lookup(tx, rows.iter().collect::<Vec<_>>().as_slice()).await?;
    let mut out = Vec::with_capacity(rows.len());
    for (row, id) in rows.iter().zip(found) {
        match id {
            // Two keys of one write may share a hash: only the one whose labels are at the
            // hash was inserted there.
            Some(id) => out.push(Resolved {
                fp: row.fp,
                id,
                new: id == row.hash && inserted.contains(&id),
                last: row.last,
            }),
            None => out.push(register_colliding(tx, row).await?),
        }
    }
    Ok(out)
}

/// The registered id of each row's key, if any (`None`: the key has no row).
async fn lookup(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    rows: &[&Unresolved<'_>],
) -> Result<Vec<Option<i64>>, StoreError> {
    let found: Vec<(i64, i64)> = sqlx::query_as(
        "WITH t AS MATERIALIZED ( \
           SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[]) WITH ORDINALITY AS t(h, metric, labels, ord)) \
         SELECT t.ord, s.id FROM t JOIN series s ON s.id = t.h \
           WHERE s.metric = t.metric AND s.labels = t.labels::jsonb \
         UNION ALL \
         SELECT t.ord, s.id FROM t JOIN series_collisions c ON c.hash = t.h JOIN series s ON s.id = c.id \
           WHERE s.metric = t.metric AND s.labels = t.labels::jsonb",
    )
    .bind(rows.iter().map(|r| r.hash).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.key.metric.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.labels_json.as_str()).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await
    .context("looking up series ids")?;
    let mut out = vec![None; rows.len()];
    for (ord, id) in found {
        if let Some(slot) = usize::try_from(ord - 1).ok().and_then(|i| out.get_mut(i)) {
            *slot = Some(id);
        }
    }
    Ok(out)
}

/// A key whose hash is taken by another label set: probe for a free id and record it.
async fn register_colliding(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    row: &Unresolved<'_>,
) -> Result<Resolved, StoreError> {
    for k in 1..=MAX_PROBES {
        let candidate = probe(row.hash, k);
        let inserted: Option<i64> = sqlx::query_scalar(&format!(
            "INSERT INTO series (id, metric, labels, metric_type, first_seen, last_seen) \
             VALUES ($1, $2, $3::jsonb, $4, {}, {}) ON CONFLICT (id) DO NOTHING RETURNING id",
            crate::sql_ts(5),
            crate::sql_ts(6)
        ))
        .bind(candidate)
        .bind(row.key.metric.as_str())
        .bind(row.labels_json.as_str())
        .bind(row.metric_type)
        .bind(row.first)
        .bind(row.last)
        .fetch_optional(&mut **tx)
        .await
        .context("registering a colliding series")?;
        if inserted.is_some() {
            sqlx::query("INSERT INTO series_collisions (hash, id) VALUES ($1, $2)")
                .bind(row.hash)
                .bind(candidate)
                .execute(&mut **tx)
                .await
                .context("recording a series id collision")?;
            tracing::warn!(
                series = %row.key,
                hash = row.hash,
                id = candidate,
                "series id collision: another label set has this series' hash; registered it under the next free id"
            );
            return Ok(Resolved {
                fp: row.fp,
                id: candidate,
                new: true,
                last: row.last,
            });
        }
        // Taken: by another key, or by this key registered concurrently by another writer.
        if let Some(id) = lookup(tx, &[row]).await?.remove(0) {
            return Ok(Resolved {
                fp: row.fp,
                id,
                new: false,
                last: row.last,
            });
        }
    }
    Err(StoreError::InvalidSample(format!(
        "series {} hashes to id {} like {MAX_PROBES} other stored label sets (the next {MAX_PROBES} ids are all taken); this only happens with label values crafted to collide: rename the series",
        row.key, row.hash
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::Labels;

    fn key(v: &str) -> SeriesKey {
        SeriesKey::new("m", Labels::from_pairs([("i", v)]))
    }

    #[test]
    fn probe_wraps_inside_the_non_negative_range() {
        assert_eq!(probe(5, 1), 6);
        assert_eq!(probe(i64::MAX, 1), 0);
        assert_eq!(probe(i64::MAX - 1, 3), 1);
    }

    #[test]
    fn raw_names_are_remembered_whole_and_bounded_in_bytes() {
        let names = RawNames::default();
        names.insert(b"a", 7);
        assert_eq!(names.get(b"a"), Some(7));
        assert_eq!(names.get(b"b"), None);
        assert_eq!(names.get(b"a\0"), None, "names are compared whole");
        names.insert(b"a", 8);
        assert_eq!((names.get(b"a"), names.len()), (Some(8), 1));
        // Below the bound every name stays; filling past it empties full shards instead of
        // growing.
        let name = |i: usize| format!("a-raw-series-name-of-some-length-{i}").into_bytes();
        let per = name(0).len() + RawNames::ENTRY_BYTES;
        let half = RawNames::MAX_BYTES / per / 2;
        for i in 0..half {
            names.insert(&name(i), i as u128);
        }
        assert_eq!(names.len(), half + 1);
        assert!((0..half).all(|i| names.get(&name(i)) == Some(i as u128)));
        let n = 4 * half;
        for i in half..n {
            names.insert(&name(i), i as u128);
        }
        assert!(names.bytes() <= RawNames::MAX_BYTES, "{}", names.bytes());
        assert!(names.len() < n, "{} of {n}", names.len());
        assert_eq!(names.get(&name(n - 1)), Some((n - 1) as u128));
        names.count_hits(3);
        names.count_hits(0);
        assert_eq!(names.hits(), 3);
    }

    /// Hits move an entry to the front at most once per generation, yet a series hit at least
    /// once a generation survives any number of new series; one hit no more is evicted.
    #[test]
    fn a_series_hit_every_generation_is_never_evicted() {
        let c = SeriesCache::new(64);
        assert_eq!(c.generation_inserts, 8);
        let (hot, cold) = (c.fingerprint(&key("hot")), c.fingerprint(&key("cold")));
        c.insert(hot, 1, 10, 10);
        c.insert(cold, 2, 10, 10);
        assert_eq!(c.hit(cold, 11), Some(2));
        for i in 0..1_000 {
            c.insert(c.fingerprint(&key(&format!("new-{i}"))), 100 + i, 10, 10);
            if i % 4 == 0 {
                assert_eq!(c.hit(hot, 20 + i), Some(1), "hot evicted at insert {i}");
            }
        }
        assert_eq!(c.len(), 64);
        assert_eq!(c.hit(cold, 30), None, "cold was evicted");
    }

    #[test]
    fn cache_is_bounded_and_keeps_bumps_of_evicted_series() {
        let c = SeriesCache::new(2);
        for (i, v) in ["a", "b", "c"].iter().enumerate() {
            let fp = c.fingerprint(&key(v));
            c.insert(fp, i as i64, 10, 10);
            assert_eq!(c.hit(fp, 20), Some(i as i64));
        }
        assert_eq!(c.len(), 2);
        assert_eq!(c.hit(c.fingerprint(&key("a")), 30), None, "a was evicted");
        let (evicted, mut cached) = c.dirty();
        cached.sort();
        assert_eq!(
            (evicted, cached.clone()),
            (vec![(0, 20)], vec![(1, 20), (2, 20)])
        );
        c.flushed(&cached);
        assert_eq!(
            c.dirty(),
            (vec![], vec![]),
            "flushed and the evicted list emptied"
        );
    }

    #[test]
    fn admitted_series_are_known_but_have_no_id_until_written() {
        let c = SeriesCache::new(10);
        let k = key("x");
        assert!(!c.is_known(&k));
        c.note_admitted(&k);
        assert!(c.is_known(&k));
        let fp = c.fingerprint(&k);
        assert_eq!(c.hit(fp, 1), None);
        c.insert(fp, 42, i64::MIN, 1);
        assert_eq!(c.hit(fp, 2), Some(42));
        c.forget(&HashSet::from([42]));
        assert!(!c.is_known(&k));
    }

    #[test]
    fn fingerprints_separate_concatenation_lookalikes_and_differ_per_cache() {
        let c = SeriesCache::new(1);
        let a = SeriesKey::new("m", Labels::from_pairs([("a", "bc")]));
        let b = SeriesKey::new("m", Labels::from_pairs([("ab", "c")]));
        assert_ne!(c.fingerprint(&a), c.fingerprint(&b));
        assert_ne!(c.fingerprint(&a), SeriesCache::new(1).fingerprint(&a));
    }

    #[test]
    fn fingerprints_hash_the_parts_as_one_stream_at_any_key_size() {
        // The one-buffer hash must equal SipHash fed part by part, on the stack buffer and
        // past it (a key longer than 512 bytes).
        let c = SeriesCache::new(1);
        for value_len in [0, 1, 100, 480, 600, 5000] {
            let k = SeriesKey::new(
                "metric_name",
                Labels::from_pairs([("job", "etl"), ("v", &"x".repeat(value_len))]),
            );
            let mut h = siphasher::sip128::SipHasher13::new_with_keys(c.keys.0, c.keys.1);
            h.write(k.metric.as_bytes());
            h.write_u8(0xff);
            for (n, v) in k.labels.iter() {
                h.write(n.as_bytes());
                h.write_u8(0xff);
                h.write(v.as_bytes());
                h.write_u8(0xff);
            }
            use siphasher::sip128::Hasher128;
            assert_eq!(c.fingerprint(&k), h.finish128().as_u128(), "{value_len}");
        }
    }

    #[test]
    fn large_caches_are_sharded_and_stay_bounded_with_recent_series_kept() {
        let c = SeriesCache::new(MIN_SHARDED_CAPACITY * 2);
        assert_eq!(c.shards.len(), SHARDS);
        for i in 0..100_000i64 {
            c.insert(c.fingerprint(&key(&i.to_string())), i, 0, 0);
        }
        let len = c.len();
        assert!(
            len <= c.capacity() && len > c.capacity() * 9 / 10,
            "{len} of {}",
            c.capacity()
        );
        // Each shard evicts its own least recently used: the newest series are all there.
        for i in 99_000..100_000i64 {
            assert_eq!(c.hit(c.fingerprint(&key(&i.to_string())), 1), Some(i));
        }
        assert_eq!(c.hit(c.fingerprint(&key("0")), 1), None);
    }

    #[test]
    fn known_among_answers_as_one_lookup_per_series_in_both_cache_shapes() {
        for c in [
            SeriesCache::new(100),
            SeriesCache::new(MIN_SHARDED_CAPACITY),
        ] {
            let fps: Vec<u128> = (0..200)
                .map(|i| c.fingerprint(&key(&i.to_string())))
                .collect();
            for (i, &fp) in fps.iter().enumerate() {
                if i % 3 == 0 {
                    c.note_admitted_fp(fp);
                }
            }
            let one_by_one: Vec<bool> = fps.iter().map(|&fp| c.is_known_fp(fp)).collect();
            assert_eq!(c.known_among(&fps), one_by_one);
            assert!(one_by_one.iter().any(|&k| k) && one_by_one.iter().any(|&k| !k));
        }
    }

    #[test]
    fn only_this_caches_fingerprints_of_the_right_length_are_reused() {
        let (a, b) = (SeriesCache::new(10), SeriesCache::new(10));
        let f = a.tag(vec![a.fingerprint(&key("x")), a.fingerprint(&key("y"))]);
        assert_eq!(a.own(Some(&f), 2), Some(&f.values[..]));
        assert_eq!(a.own(Some(&f), 3), None, "not this batch's series");
        assert_eq!(b.own(Some(&f), 2), None, "another cache's key");
        assert_eq!(a.own(None, 2), None);
    }
}
