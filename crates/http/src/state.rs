//! Everything the routes share: mirrors, cache, options, metrics, decode slots, readiness.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use lazycache_cache::TieredCache;
use lazycache_decode::{ByteSource, Limits};
use lazycache_origin::{Mirror, OriginFile, RangeCache};
use prometheus::Registry;
use tokio::runtime::Handle;
use tokio::sync::Semaphore;

use crate::metrics::HttpMetrics;
use crate::movies::MovieTable;
use crate::options::HttpOptions;

/// Turns a pinned origin file into the decoder's blocking byte source (the binary's adapter).
pub type SourceFactory = Arc<dyn Fn(OriginFile) -> Arc<dyn ByteSource> + Send + Sync>;

/// Shared state of the service. Cloning is cheap.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub mirrors: Vec<Arc<Mirror>>,
    pub ranges: RangeCache,
    pub cache: TieredCache,
    pub registry: Registry,
    pub metrics: HttpMetrics,
    pub options: HttpOptions,
    pub limits: Limits,
    pub sources: SourceFactory,
    /// The runtime origin I/O, cache work and decodes run on.
    pub io: Handle,
    pub decode_slots: Arc<Semaphore>,
    pub movies: MovieTable,
    pub ready: AtomicBool,
}

/// The parts [`AppState::new`] is built from.
pub struct AppParts {
    pub mirrors: Vec<Arc<Mirror>>,
    pub ranges: RangeCache,
    pub cache: TieredCache,
    /// The registry the cache's metrics are in; the service adds its own.
    pub registry: Registry,
    pub options: HttpOptions,
    pub limits: Limits,
    pub sources: SourceFactory,
    pub io: Handle,
}

impl AppState {
    /// Registers the service's metrics in `parts.registry`; not ready until [`Self::set_ready`].
    pub fn new(parts: AppParts) -> Result<Self, prometheus::Error> {
        let metrics = HttpMetrics::register(&parts.registry)?;
        let slots = parts.options.max_concurrent_decodes.max(1);
        Ok(Self {
            inner: Arc::new(Inner {
                mirrors: parts.mirrors,
                ranges: parts.ranges,
                cache: parts.cache,
                registry: parts.registry,
                metrics,
                options: parts.options,
                limits: parts.limits,
                sources: parts.sources,
                io: parts.io,
                decode_slots: Arc::new(Semaphore::new(slots)),
                movies: MovieTable::new(),
                ready: AtomicBool::new(false),
            }),
        })
    }

    /// `/readyz` answers 200 while true, 503 otherwise (starting, shutting down).
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::SeqCst)
    }

    /// The cache, e.g. to flush its write-behind queues at shutdown.
    pub fn cache(&self) -> &TieredCache {
        &self.inner.cache
    }
}
