//! A bounded window of recently seen identities (spans, log records), so that an export the
//! sender sends again — a retry after a timeout, a collector replaying its queue — is not
//! counted again by the span and log counters.
//!
//! Bounded in entries, and so in memory: once `capacity` identities are held, each new one
//! evicts the oldest. A re-send is recognised as long as its identities are among the last
//! `capacity` seen, which covers exporter retries (seconds to minutes) at the default size
//! unless a sender pushes more than that many spans or records in between. Identities are
//! 128-bit hashes, so a false match between two different spans is not a practical concern.
//! The tables are sized for the full window on first use, with room for the hash table to
//! clear the tombstones of evicted entries in place, so memory does not grow afterwards:
//! about 60 bytes an entry.

use std::collections::{HashSet, VecDeque};

/// Identities remembered per signal unless configured otherwise (about 6 MB of tables,
/// reserved on first use and touched as the window fills).
pub const DEFAULT_SEEN_CAPACITY: usize = 100_000;

/// The last `capacity` identities seen, oldest evicted first.
#[derive(Debug, Clone)]
pub struct SeenWindow {
    capacity: usize,
    order: VecDeque<u128>,
    set: HashSet<u128>,
}

impl Default for SeenWindow {
    fn default() -> Self {
        Self::new(DEFAULT_SEEN_CAPACITY)
    }
}

impl SeenWindow {
    /// A window of `capacity` identities; 0 remembers nothing (every re-send counts again).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            order: VecDeque::new(),
            set: HashSet::new(),
        }
    }

    pub fn contains(&self, id: u128) -> bool {
        self.set.contains(&id)
    }

    /// Remembers `id`, evicting the oldest identity when the window is full.
    pub fn insert(&mut self, id: u128) {
        if self.capacity == 0 {
            return;
        }
        if self.order.capacity() == 0 {
            // Twice the window: with at most half the table live, hashbrown rehashes in place
            // when evictions have used up its free slots, instead of growing.
            self.set.reserve(2 * self.capacity);
            self.order.reserve_exact(self.capacity + 1);
        }
        if !self.set.insert(id) {
            return;
        }
        self.order.push_back(id);
        if self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.set.remove(&oldest);
            }
        }
    }

    /// Identities held (at most [`capacity`](Self::capacity)).
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes the window's tables hold room for (entries and hash control bytes, less slots
    /// taken by tombstones; excludes allocator overhead): never more than after the first
    /// insert, which sizes the tables for the whole window.
    pub fn allocated_bytes(&self) -> usize {
        let id = std::mem::size_of::<u128>();
        self.order.capacity() * id + self.set.capacity() * (id + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_identity_is_forgotten_first_and_memory_stops_growing_when_full() {
        let mut w = SeenWindow::new(1000);
        w.insert(0);
        let sized = w.allocated_bytes();
        assert!(sized <= 1000 * 100, "{sized} bytes for 1000 entries");
        for id in 1..50_000u128 {
            w.insert(id);
            assert_eq!(w.len(), (id as usize + 1).min(1000));
            // hashbrown reports tombstones of evicted entries as used, so the figure may dip
            // below the first one; it must never rise above it.
            assert!(
                w.allocated_bytes() <= sized,
                "grew to {} bytes at id {id}",
                w.allocated_bytes()
            );
        }
        assert!(!w.contains(48_999));
        assert!(w.contains(49_000));
        assert!(w.contains(49_999));
        // Inserting an identity already held neither duplicates nor evicts.
        w.insert(49_999);
        assert!(w.contains(49_000));
        assert_eq!(w.len(), 1000);
    }

    #[test]
    fn a_zero_capacity_window_remembers_nothing() {
        let mut w = SeenWindow::new(0);
        w.insert(7);
        assert!(!w.contains(7));
        assert!(w.is_empty());
    }
}
