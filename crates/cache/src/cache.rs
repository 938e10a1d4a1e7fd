//! The read-through chain over the three tiers: memory → disk → object store → compute, with
//! promotion of hits into the tiers above, write-behind below memory, and single flight.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use prometheus::Registry;

use crate::config::CacheConfig;
use crate::disk::DiskTier;
use crate::error::{CacheError, LoadError};
use crate::gate::TierGate;
use crate::guarded::Guarded;
use crate::key::CacheKey;
use crate::memory::MemoryTier;
use crate::metrics::CacheMetrics;
use crate::object_tier::ObjectStoreTier;
use crate::single_flight::{Failure, Flights, Outcome};
use crate::tier::{Tier, TierKind};
use crate::value::{CachedValue, Lookup, ServedFrom};
use crate::write_behind::WriteBehind;

/// The three-tier cache. Cloning is cheap and shares everything.
#[derive(Clone)]
pub struct TieredCache {
    inner: Arc<Inner>,
}

struct Inner {
    memory: MemoryTier,
    disk: Option<WriteBehindTier<DiskTier>>,
    object_store: Option<WriteBehindTier<ObjectStoreTier>>,
    flights: Arc<Flights>,
    metrics: CacheMetrics,
    compute_timeout: Duration,
}

/// A tier below memory (disk or object store), behind its availability gate, with the
/// write-behind queue that stores computed values in it off the caller's path.
struct WriteBehindTier<T> {
    tier: Arc<Guarded<T>>,
    writes: WriteBehind,
}

impl TieredCache {
    /// Builds the cache and registers its metrics in `registry`. Must run inside a tokio runtime.
    ///
    /// An unusable cache directory or unreachable object store is not an error: it is logged in
    /// one line naming the option, the cache runs on the other tiers, and the tier is tried again
    /// every `retry_interval`. Errors are bad options only (an object-store URL naming no store).
    pub async fn open(config: CacheConfig, registry: &Registry) -> Result<Self, CacheError> {
        let metrics = CacheMetrics::register(registry)?;
        let memory = MemoryTier::new(config.memory_bytes, metrics.memory.clone());
        let disk = match &config.disk {
            Some(options) => {
                let tier = DiskTier::new(&options.dir, options.bound_bytes, metrics.disk.clone());
                let guarded = guard(tier, options.dir.display().to_string(), &config, &metrics);
                guarded.record_check("open", guarded.tier.open().await);
                Some(WriteBehindTier::start(guarded, &config, &metrics))
            }
            None => {
                metrics.disk.available.set(0);
                None
            }
        };
        let object_store = match &config.object_store {
            Some(options) => {
                let tier = ObjectStoreTier::connect(
                    options,
                    config.setting_names.object_store,
                    metrics.object_store.clone(),
                )?;
                let guarded = guard(tier, options.url.clone(), &config, &metrics);
                guarded.record_check("probe", guarded.tier.probe().await);
                Some(WriteBehindTier::start(guarded, &config, &metrics))
            }
            None => {
                metrics.object_store.available.set(0);
                None
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                memory,
                disk,
                object_store,
                flights: Arc::new(Flights::default()),
                metrics,
                compute_timeout: config.compute_timeout,
            }),
        })
    }

    /// The value for `key` from the first tier that has it, else from `compute`.
    ///
    /// Concurrent calls for one key share one lookup below memory and at most one computation,
    /// which runs as its own task (a caller that goes away does not cancel it for the others)
    /// and is cut off after the configured compute timeout. A computed value is in memory before
    /// this returns; disk and object-store copies are written behind. An error reaches the
    /// callers waiting at the time and is not cached: the next call computes again.
    ///
    /// All concurrent callers of one key should use the same error type `E`; a caller that joins
    /// a run of another type gets [`LoadError::Foreign`] with its message.
    pub async fn get_or_compute<F, Fut, E>(
        &self,
        key: &CacheKey,
        compute: F,
    ) -> Result<Lookup, LoadError<E>>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<CachedValue, E>> + Send + 'static,
        E: std::fmt::Display + Send + Sync + 'static,
    {
        if let Some(lookup) = self.lookup_memory(key).await {
            return Ok(lookup);
        }
        let inner = Arc::clone(&self.inner);
        let run_key = key.clone();
        let (outcome, joined) = self.inner.flights.join_or_start(key, move || {
            let compute: BoxFuture<'static, Result<CachedValue, Failure>> = async move {
                compute().await.map_err(|error| {
                    let message = error.to_string();
                    Failure::Computed {
                        error: Arc::new(error),
                        message,
                    }
                })
            }
            .boxed();
            inner.load(run_key, compute).boxed()
        });
        if joined {
            self.inner.metrics.coalesced_waits.inc();
        }
        outcome.await.map_err(|failure| match failure {
            Failure::Computed { error, message } => match error.downcast::<E>() {
                Ok(error) => LoadError::Failed(error),
                Err(_) => LoadError::Foreign(message),
            },
            Failure::TimedOut(limit) => LoadError::TimedOut(limit),
            Failure::Panicked => LoadError::Panicked,
        })
    }

    /// The value for `key` if any tier has it (promoting it into the tiers above); never
    /// computes. Unlike [`TieredCache::get_or_compute`], concurrent calls do not coalesce.
    pub async fn get(&self, key: &CacheKey) -> Option<Lookup> {
        match self.lookup_memory(key).await {
            Some(lookup) => Some(lookup),
            None => self.inner.lookup_below_memory(key).await,
        }
    }

    /// Stores a value computed elsewhere: in memory now, below it behind.
    pub async fn put(&self, key: &CacheKey, value: CachedValue) {
        self.inner.store_computed(key, value).await;
    }

    /// Waits until the write-behind queues are empty (for shutdown); false if `timeout` passed
    /// first.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut flushed = true;
        if let Some(disk) = &self.inner.disk {
            flushed &= disk.writes.flush(remaining(deadline)).await;
        }
        if let Some(object_store) = &self.inner.object_store {
            flushed &= object_store.writes.flush(remaining(deadline)).await;
        }
        flushed
    }

    /// The cache's metrics (also registered in the registry given to [`TieredCache::open`]).
    pub fn metrics(&self) -> &CacheMetrics {
        &self.inner.metrics
    }

    /// Whether a tier is configured and currently in use.
    pub fn tier_available(&self, kind: TierKind) -> bool {
        match kind {
            TierKind::Memory => true,
            TierKind::Disk => self
                .inner
                .disk
                .as_ref()
                .is_some_and(|disk| disk.tier.gate.is_available()),
            TierKind::ObjectStore => self
                .inner
                .object_store
                .as_ref()
                .is_some_and(|store| store.tier.gate.is_available()),
        }
    }

    /// Number of shared runs (lookups below memory and computations) in progress.
    pub fn loads_in_progress(&self) -> usize {
        self.inner.flights.len()
    }

    async fn lookup_memory(&self, key: &CacheKey) -> Option<Lookup> {
        let memory_metrics = &self.inner.metrics.memory;
        match self.inner.memory.lookup(key).await {
            Some(value) => {
                memory_metrics.hits.inc();
                memory_metrics.read_bytes.inc_by(value.len() as u64);
                Some(Lookup {
                    value,
                    served_from: ServedFrom::Memory,
                })
            }
            None => {
                memory_metrics.misses.inc();
                None
            }
        }
    }
}

impl Inner {
    /// One shared run: the tiers below memory, then the computation.
    async fn load(
        self: Arc<Self>,
        key: CacheKey,
        compute: BoxFuture<'static, Result<CachedValue, Failure>>,
    ) -> Outcome {
        if let Some(lookup) = self.lookup_below_memory(&key).await {
            return Ok(lookup);
        }
        self.metrics.computations.inc();
        let computed = match tokio::time::timeout(self.compute_timeout, compute).await {
            Ok(result) => result,
            Err(_) => Err(Failure::TimedOut(self.compute_timeout)),
        };
        match computed {
            Ok(value) => {
                self.store_computed(&key, value.clone()).await;
                Ok(Lookup {
                    value,
                    served_from: ServedFrom::Computed,
                })
            }
            Err(failure) => {
                self.metrics.computation_failures.inc();
                Err(failure)
            }
        }
    }

    /// Disk, then object store; a hit is copied into the tiers above it.
    async fn lookup_below_memory(&self, key: &CacheKey) -> Option<Lookup> {
        // A run that finished just before this one started may have filled memory.
        if let Some(value) = self.memory.lookup(key).await {
            return Some(Lookup {
                value,
                served_from: ServedFrom::Memory,
            });
        }
        if let Some(disk) = &self.disk
            && let Some(value) = disk.tier.get(key).await
        {
            self.memory.insert(key.clone(), value.clone()).await;
            return Some(Lookup {
                value,
                served_from: ServedFrom::Disk,
            });
        }
        if let Some(object_store) = &self.object_store
            && let Some(value) = object_store.tier.get(key).await
        {
            self.memory.insert(key.clone(), value.clone()).await;
            if let Some(disk) = &self.disk {
                disk.writes.enqueue(key.clone(), value.clone());
            }
            return Some(Lookup {
                value,
                served_from: ServedFrom::ObjectStore,
            });
        }
        None
    }

    async fn store_computed(&self, key: &CacheKey, value: CachedValue) {
        self.memory.insert(key.clone(), value.clone()).await;
        if let Some(disk) = &self.disk {
            disk.writes.enqueue(key.clone(), value.clone());
        }
        if let Some(object_store) = &self.object_store {
            object_store.writes.enqueue(key.clone(), value);
        }
    }
}

impl<T: Tier> WriteBehindTier<T> {
    fn start(tier: Guarded<T>, config: &CacheConfig, metrics: &CacheMetrics) -> Self {
        let tier = Arc::new(tier);
        let writes = WriteBehind::start(
            Arc::clone(&tier),
            config.write_queue_capacity,
            config.write_queue_bytes,
            config.write_workers,
            metrics.tier(tier.tier.kind()).clone(),
        );
        Self { tier, writes }
    }
}

/// Puts a tier behind its availability gate; `location` is its directory or URL, for log lines.
fn guard<T: Tier>(
    tier: T,
    location: String,
    config: &CacheConfig,
    metrics: &CacheMetrics,
) -> Guarded<T> {
    let tier_metrics = metrics.tier(tier.kind()).clone();
    let gate = TierGate::new(
        tier.kind(),
        config.setting_names.of(tier.kind()),
        location,
        config.retry_interval,
        tier_metrics.clone(),
    );
    Guarded::new(tier, gate, tier_metrics)
}

fn remaining(deadline: tokio::time::Instant) -> Duration {
    deadline.saturating_duration_since(tokio::time::Instant::now())
}
