//! Size accounting and least-recently-used order of the disk tier's entries.
//!
//! Pure bookkeeping: callers delete the files of the victims it names. Bytes of writes in
//! progress are reserved up front, so concurrent writers can never push the total over the bound.

use std::collections::{BTreeMap, HashMap};

use crate::key::KeyDigest;

struct Slot {
    size: u64,
    tick: u64,
}

/// Entries by digest with their sizes, in recency order, under a byte bound.
pub(super) struct DiskIndex {
    bound: u64,
    used: u64,
    reserved: u64,
    entries: HashMap<KeyDigest, Slot>,
    recency: BTreeMap<u64, KeyDigest>,
    next_tick: u64,
}

impl DiskIndex {
    pub(super) fn new(bound: u64) -> Self {
        Self {
            bound,
            used: 0,
            reserved: 0,
            entries: HashMap::new(),
            recency: BTreeMap::new(),
            next_tick: 0,
        }
    }

    /// Bytes of committed entries.
    pub(super) fn used(&self) -> u64 {
        self.used
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Records an entry as most recently used, replacing any previous one under the digest.
    pub(super) fn insert(&mut self, digest: KeyDigest, size: u64) {
        self.remove(&digest);
        let tick = self.bump();
        self.entries.insert(digest, Slot { size, tick });
        self.recency.insert(tick, digest);
        self.used += size;
    }

    /// Marks an entry as just used; false when the index does not know it.
    pub(super) fn touch(&mut self, digest: &KeyDigest) -> bool {
        let tick = self.next_tick;
        let Some(slot) = self.entries.get_mut(digest) else {
            return false;
        };
        self.recency.remove(&slot.tick);
        slot.tick = tick;
        self.recency.insert(tick, *digest);
        self.next_tick += 1;
        true
    }

    /// Forgets an entry; returns its size if it was known.
    pub(super) fn remove(&mut self, digest: &KeyDigest) -> Option<u64> {
        let slot = self.entries.remove(digest)?;
        self.recency.remove(&slot.tick);
        self.used -= slot.size;
        Some(slot.size)
    }

    /// Makes room for a write of `size` bytes and reserves it. Returns the evicted entries (whose
    /// files the caller must delete), or `None` when `size` cannot fit beside the writes already
    /// in progress (then nothing is evicted).
    pub(super) fn reserve(&mut self, size: u64) -> Option<Vec<KeyDigest>> {
        // Committed entries can all be evicted; other writers' reservations cannot. Refusing here
        // (rather than waiting) keeps the bound without ever blocking a writer.
        if self.reserved.saturating_add(size) > self.bound {
            return None;
        }
        let mut victims = Vec::new();
        while self.used + self.reserved + size > self.bound {
            match self.pop_least_recent() {
                Some(victim) => victims.push(victim),
                None => break,
            }
        }
        self.reserved += size;
        Some(victims)
    }

    /// Turns a reservation into a committed entry.
    pub(super) fn commit(&mut self, digest: KeyDigest, size: u64) {
        self.release(size);
        self.insert(digest, size);
    }

    /// Gives back a reservation whose write failed.
    pub(super) fn release(&mut self, size: u64) {
        self.reserved = self.reserved.saturating_sub(size);
    }

    /// Evicts least recently used entries until the committed bytes fit the bound.
    pub(super) fn evict_to_bound(&mut self) -> Vec<KeyDigest> {
        let mut victims = Vec::new();
        while self.used + self.reserved > self.bound {
            match self.pop_least_recent() {
                Some(victim) => victims.push(victim),
                None => break,
            }
        }
        victims
    }

    fn pop_least_recent(&mut self) -> Option<KeyDigest> {
        let (_, digest) = self.recency.pop_first()?;
        if let Some(slot) = self.entries.remove(&digest) {
            self.used -= slot.size;
        }
        Some(digest)
    }

    fn bump(&mut self) -> u64 {
        let tick = self.next_tick;
        self.next_tick += 1;
        tick
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> KeyDigest {
        KeyDigest([n; 32])
    }

    #[test]
    fn evicts_least_recently_used_first() {
        let mut index = DiskIndex::new(300);
        for n in 1..=3 {
            assert_eq!(index.reserve(100), Some(vec![]));
            index.commit(digest(n), 100);
        }
        assert!(index.touch(&digest(1)));
        assert_eq!(index.reserve(150), Some(vec![digest(2), digest(3)]));
        index.commit(digest(4), 150);
        assert_eq!(index.used(), 250);
        assert_eq!(index.len(), 2);
    }

    #[test]
    fn reservations_count_against_the_bound() {
        let mut index = DiskIndex::new(250);
        assert_eq!(index.reserve(100), Some(vec![]));
        assert_eq!(index.reserve(100), Some(vec![]));
        // Two writes in flight hold 200 bytes: a third of 100 cannot fit and evicts nothing.
        assert_eq!(index.reserve(100), None);
        index.release(100);
        assert_eq!(index.reserve(100), Some(vec![]));
    }

    #[test]
    fn too_large_entry_is_refused() {
        let mut index = DiskIndex::new(100);
        assert_eq!(index.reserve(101), None);
    }

    #[test]
    fn replacing_an_entry_counts_it_once() {
        let mut index = DiskIndex::new(1000);
        index.insert(digest(1), 100);
        index.insert(digest(1), 300);
        assert_eq!(index.used(), 300);
        assert_eq!(index.remove(&digest(1)), Some(300));
        assert_eq!(index.used(), 0);
        assert!(!index.touch(&digest(1)));
    }

    #[test]
    fn evict_to_bound_after_a_smaller_bound() {
        let mut index = DiskIndex::new(100);
        index.insert(digest(1), 80);
        index.insert(digest(2), 80);
        assert_eq!(index.evict_to_bound(), vec![digest(1)]);
        assert_eq!(index.used(), 80);
    }
}
