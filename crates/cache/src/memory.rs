//! The memory tier: a moka cache bounded by the bytes of its values.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use moka::future::Cache;
use moka::notification::RemovalCause;

use crate::error::TierError;
use crate::key::CacheKey;
use crate::metrics::TierMetrics;
use crate::tier::{Tier, TierKind};
use crate::value::CachedValue;

/// Rough bytes of bookkeeping per entry beyond the value itself, so many tiny values still count.
const ENTRY_OVERHEAD_BYTES: usize = 256;

/// Fraction of the capacity that may be inserted before moka's maintenance is forced to run.
const SETTLE_FRACTION: u64 = 8;

/// In-process cache of values, weighed by their byte length.
#[derive(Clone)]
pub struct MemoryTier {
    cache: Cache<CacheKey, CachedValue>,
    capacity_bytes: u64,
    /// Bytes inserted since moka last applied its pending evictions.
    unsettled_bytes: Arc<AtomicU64>,
    metrics: TierMetrics,
}

impl MemoryTier {
    /// A cache holding at most about `capacity_bytes` of values. moka applies evictions in
    /// batches (every 64 writes or 300 ms), which large frames could overshoot by far; so
    /// maintenance is also forced whenever an eighth of the capacity has been inserted since.
    pub fn new(capacity_bytes: u64, metrics: TierMetrics) -> Self {
        let evictions = metrics.evictions.clone();
        let cache = Cache::builder()
            .max_capacity(capacity_bytes)
            .weigher(|key: &CacheKey, value: &CachedValue| weight(key, value))
            .eviction_listener(move |_key, _value, cause| {
                if matches!(cause, RemovalCause::Size) {
                    evictions.inc();
                }
            })
            .build();
        metrics.available.set(1);
        Self {
            cache,
            capacity_bytes,
            unsettled_bytes: Arc::new(AtomicU64::new(0)),
            metrics,
        }
    }

    /// The value under `key`, without touching metrics (the read-through chain counts).
    pub async fn lookup(&self, key: &CacheKey) -> Option<CachedValue> {
        self.cache.get(key).await
    }

    /// Stores a value.
    pub async fn insert(&self, key: CacheKey, value: CachedValue) {
        let weight = u64::from(weight(&key, &value));
        self.cache.insert(key, value).await;
        let unsettled = self.unsettled_bytes.fetch_add(weight, Ordering::Relaxed) + weight;
        if unsettled > self.capacity_bytes / SETTLE_FRACTION {
            self.unsettled_bytes.store(0, Ordering::Relaxed);
            self.cache.run_pending_tasks().await;
        }
        self.refresh_size_gauge();
    }

    /// Runs moka's pending maintenance (evictions) now; useful before reading sizes.
    pub async fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks().await;
        self.refresh_size_gauge();
    }

    /// Weighted size in bytes as moka currently accounts it.
    pub fn weighted_size(&self) -> u64 {
        self.cache.weighted_size()
    }

    fn refresh_size_gauge(&self) {
        self.metrics
            .stored_bytes
            .set(i64::try_from(self.cache.weighted_size()).unwrap_or(i64::MAX));
    }
}

fn weight(key: &CacheKey, value: &CachedValue) -> u32 {
    let bytes =
        value.len() + value.content_type().len() + key.canonical().len() + ENTRY_OVERHEAD_BYTES;
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

impl Tier for MemoryTier {
    fn kind(&self) -> TierKind {
        TierKind::Memory
    }

    async fn get(&self, key: &CacheKey) -> Result<Option<CachedValue>, TierError> {
        Ok(self.lookup(key).await)
    }

    async fn put(&self, key: &CacheKey, value: &CachedValue) -> Result<(), TierError> {
        self.insert(key.clone(), value.clone()).await;
        Ok(())
    }

    async fn remove(&self, key: &CacheKey) -> Result<(), TierError> {
        self.cache.invalidate(key).await;
        self.refresh_size_gauge();
        Ok(())
    }
}
