//! Counters of origin traffic and range-cache use, for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the counters since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OriginStats {
    /// Range requests sent to origins.
    pub range_requests: u64,
    /// Bytes those range requests returned.
    pub range_bytes: u64,
    /// Directory listings fetched from origins (cache misses of the listing cache).
    pub list_requests: u64,
    /// File stats fetched from origins (cache misses of the validator cache).
    pub stat_requests: u64,
    /// Blocks served from the range cache.
    pub block_hits: u64,
    /// Blocks a reader had to wait for, fetched by it or by a concurrent reader.
    pub block_misses: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    range_requests: AtomicU64,
    range_bytes: AtomicU64,
    list_requests: AtomicU64,
    stat_requests: AtomicU64,
    block_hits: AtomicU64,
    block_misses: AtomicU64,
}

impl Counters {
    pub(crate) fn range_request(&self, bytes: u64) {
        self.range_requests.fetch_add(1, Ordering::Relaxed);
        self.range_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn list_request(&self) {
        self.list_requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn stat_request(&self) {
        self.stat_requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn blocks(&self, hits: u64, misses: u64) {
        self.block_hits.fetch_add(hits, Ordering::Relaxed);
        self.block_misses.fetch_add(misses, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> OriginStats {
        OriginStats {
            range_requests: self.range_requests.load(Ordering::Relaxed),
            range_bytes: self.range_bytes.load(Ordering::Relaxed),
            list_requests: self.list_requests.load(Ordering::Relaxed),
            stat_requests: self.stat_requests.load(Ordering::Relaxed),
            block_hits: self.block_hits.load(Ordering::Relaxed),
            block_misses: self.block_misses.load(Ordering::Relaxed),
        }
    }
}
