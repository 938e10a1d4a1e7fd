//! Everything the routes share: mirrors, cache, options, metrics, decode slots, readiness.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use lazycache_cache::TieredCache;
use lazycache_decode::{ByteSource, Limits};
use lazycache_origin::{Mirror, OriginFile, RangeCache};
use prometheus::Registry;
use tokio::runtime::Handle;
use tokio::sync::Semaphore;

use crate::error::ApiError;
use crate::metrics::HttpMetrics;
use crate::movies::MovieTable;
use crate::options::HttpOptions;

/// Turns a pinned origin file into the decoder's blocking byte source (the binary's adapter).
pub type SourceFactory = Arc<dyn Fn(OriginFile) -> Arc<dyn ByteSource> + Send + Sync>;

/// Where the service is in its life; only `Serving` is ready.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Starting,
    Serving,
    /// Told to stop: not ready, but still answering everything (`--shutdown-delay`).
    Leaving,
    /// Listener closed: running requests finish; those still waiting for a decode slot get 503.
    Draining,
}

/// Shared state of the service. Cloning is cheap.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub mirrors: Vec<Arc<Mirror>>,
    pub ranges: RangeCache,
    /// Set once the tiers are open ([`AppState::start_serving`]).
    cache: OnceLock<TieredCache>,
    pub registry: Registry,
    pub metrics: HttpMetrics,
    pub options: HttpOptions,
    pub limits: Limits,
    pub sources: SourceFactory,
    /// The runtime origin I/O, cache work and decodes run on.
    pub io: Handle,
    pub decode_slots: Arc<Semaphore>,
    pub movies: MovieTable,
    pub phase: AtomicU8,
}

/// The parts [`AppState::new`] is built from.
pub struct AppParts {
    pub mirrors: Vec<Arc<Mirror>>,
    pub ranges: RangeCache,
    /// The registry the cache's metrics go in; the service adds its own.
    pub registry: Registry,
    pub options: HttpOptions,
    pub limits: Limits,
    pub sources: SourceFactory,
    pub io: Handle,
}

impl AppState {
    /// Registers the service's metrics in `parts.registry`. Until [`Self::start_serving`] hands
    /// it the open cache, `/v1` answers 503 "starting" (health, `/`, `/info` and `/metrics`
    /// already answer), so the port can be bound before the slow start-up work.
    pub fn new(parts: AppParts) -> Result<Self, prometheus::Error> {
        let metrics = HttpMetrics::register(&parts.registry)?;
        let slots = parts.options.max_concurrent_decodes.max(1);
        let movies = MovieTable::new(parts.options.listing_ttl);
        Ok(Self {
            inner: Arc::new(Inner {
                mirrors: parts.mirrors,
                ranges: parts.ranges,
                cache: OnceLock::new(),
                registry: parts.registry,
                metrics,
                options: parts.options,
                limits: parts.limits,
                sources: parts.sources,
                io: parts.io,
                decode_slots: Arc::new(Semaphore::new(slots)),
                movies,
                phase: AtomicU8::new(Phase::Starting as u8),
            }),
        })
    }

    /// Takes the opened cache; from now on `/v1` is served and `/readyz` answers 200.
    pub fn start_serving(&self, cache: TieredCache) {
        if self.inner.cache.set(cache).is_err() {
            tracing::warn!("the cache was handed over twice; keeping the first");
        }
        self.set_phase(Phase::Serving);
    }

    /// From now on `/readyz` answers 503 "shutting down"; requests are still answered.
    pub fn begin_shutdown(&self) {
        self.set_phase(Phase::Leaving);
    }

    /// From now on requests waiting for a decode slot, and any that still arrives needing one,
    /// get 503 "shutting down" rather than start new work; running decodes finish. The drain is
    /// then bounded by the decodes under way, not by the queue.
    pub fn begin_drain(&self) {
        self.set_phase(Phase::Draining);
        self.inner.decode_slots.close();
    }

    pub fn is_ready(&self) -> bool {
        self.phase() == Phase::Serving
    }

    pub fn is_shutting_down(&self) -> bool {
        matches!(self.phase(), Phase::Leaving | Phase::Draining)
    }

    fn set_phase(&self, phase: Phase) {
        self.inner.phase.store(phase as u8, Ordering::SeqCst);
    }

    fn phase(&self) -> Phase {
        match self.inner.phase.load(Ordering::SeqCst) {
            0 => Phase::Starting,
            1 => Phase::Serving,
            2 => Phase::Leaving,
            _ => Phase::Draining,
        }
    }

    pub fn is_starting(&self) -> bool {
        self.phase() == Phase::Starting
    }

    /// The cache once open, e.g. to flush its write-behind queues at shutdown.
    pub fn cache(&self) -> Option<&TieredCache> {
        self.inner.cache.get()
    }

    /// The cache, or 503 "starting" for a request that came before it was open.
    pub(crate) fn open_cache(&self) -> Result<&TieredCache, ApiError> {
        self.cache().ok_or(ApiError::Starting)
    }
}
