//! [`Service`]: everything the use cases share — mirrors, the tiered cache (handed over once
//! open), decode slots, parsed movies, options, metrics — and the small use cases (find a mirror,
//! list a directory, open a file). Movies and frames are in `movies.rs` and `frame.rs`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use lazycache_cache::TieredCache;
use lazycache_decode::{Limits, WarmPool, WarmSettings};
use lazycache_origin::{Listing, Mirror, OriginFile, RangeCache, RelPath};
use prometheus::Registry;
use tokio::runtime::Handle;

use crate::error::{ServiceError, ServiceResult};
use crate::metrics::ServiceMetrics;
use crate::movies::MovieTable;
use crate::slots::DecodeSlots;

/// SPEC §3's movie extensions.
pub const DEFAULT_MOVIE_EXTENSIONS: &[&str] =
    &["mov", "mp4", "m4v", "mkv", "webm", "avi", "mxf", "ts"];

/// The options the use cases follow (SPEC §2), resolved by the binary.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// `--allow-raw-output`: serve `.rgba`/`.raw`/`.npy`.
    pub allow_raw_output: bool,
    /// `--max-concurrent-decodes`.
    pub max_concurrent_decodes: usize,
    /// How long a request waits for a decode slot before it is told "busy".
    pub decode_queue_timeout: Duration,
    /// Lower-case extensions (no dot) of the files served as movies.
    pub movie_extensions: Vec<String>,
    /// `--listing-ttl`: also how long a movie version that cannot be served is remembered as
    /// such, so asking again reads nothing from the origin.
    pub listing_ttl: Duration,
    /// `--decoder-state-memory` and the idle time of kept long-GOP decoder states.
    pub warm: WarmSettings,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            allow_raw_output: false,
            max_concurrent_decodes: 2,
            decode_queue_timeout: Duration::from_secs(10),
            movie_extensions: DEFAULT_MOVIE_EXTENSIONS
                .iter()
                .map(|e| (*e).to_owned())
                .collect(),
            listing_ttl: Duration::from_secs(300),
            warm: WarmSettings::default(),
        }
    }
}

impl ServiceOptions {
    /// Whether `name` (a file name) has one of the movie extensions.
    pub fn is_movie(&self, name: &str) -> bool {
        name.rsplit_once('.').is_some_and(|(_, ext)| {
            self.movie_extensions
                .iter()
                .any(|movie| movie.eq_ignore_ascii_case(ext))
        })
    }
}

/// What a [`Service`] is built from.
pub struct ServiceParts {
    pub mirrors: Vec<Arc<Mirror>>,
    pub ranges: RangeCache,
    /// The registry the service's metrics go in (the cache's are there already).
    pub registry: Registry,
    pub options: ServiceOptions,
    pub limits: Limits,
    /// The runtime origin I/O and cache work run on; decode threads block on it.
    pub io: Handle,
}

/// The use cases of lazycache. Cloning is cheap; every clone is the same service.
#[derive(Clone)]
pub struct Service {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub mirrors: Vec<Arc<Mirror>>,
    pub ranges: RangeCache,
    cache: OnceLock<TieredCache>,
    pub metrics: ServiceMetrics,
    pub options: ServiceOptions,
    pub limits: Limits,
    pub io: Handle,
    pub slots: DecodeSlots,
    pub movies: MovieTable,
    /// Long-GOP decoder states kept for the next frame of the same movie.
    pub warm: Arc<WarmPool>,
}

impl Service {
    /// Registers the service's metrics in `parts.registry`. Until [`Service::start_serving`]
    /// hands it the open cache, movie and frame use cases answer "starting".
    pub fn new(parts: ServiceParts) -> Result<Self, prometheus::Error> {
        let metrics = ServiceMetrics::register(&parts.registry)?;
        let slots = DecodeSlots::new(
            parts.options.max_concurrent_decodes,
            parts.options.decode_queue_timeout,
        );
        let movies = MovieTable::new(parts.options.listing_ttl);
        let warm = Arc::new(WarmPool::new(parts.options.warm));
        Ok(Self {
            inner: Arc::new(Inner {
                mirrors: parts.mirrors,
                ranges: parts.ranges,
                cache: OnceLock::new(),
                metrics,
                options: parts.options,
                limits: parts.limits,
                io: parts.io,
                slots,
                movies,
                warm,
            }),
        })
    }

    /// Takes the opened cache; from now on movies and frames are served.
    pub fn start_serving(&self, cache: TieredCache) {
        if self.inner.cache.set(cache).is_err() {
            tracing::warn!("the cache was handed over twice; keeping the first");
        }
    }

    /// The cache once open, e.g. to flush its write-behind queues at shutdown.
    pub fn cache(&self) -> Option<&TieredCache> {
        self.inner.cache.get()
    }

    /// The cache, or "starting" for a request that came before it was open.
    pub(crate) fn open_cache(&self) -> ServiceResult<&TieredCache> {
        self.cache().ok_or(ServiceError::Starting)
    }

    /// From now on requests waiting for a decode slot, and any that still arrives needing one,
    /// are told "shutting down" rather than start new work; running decodes finish.
    pub fn stop_decoding(&self) {
        self.inner.slots.close();
    }

    pub fn options(&self) -> &ServiceOptions {
        &self.inner.options
    }

    pub fn mirrors(&self) -> &[Arc<Mirror>] {
        &self.inner.mirrors
    }

    /// The runtime origin I/O runs on.
    pub fn io(&self) -> &Handle {
        &self.inner.io
    }

    /// Copies the origin counters and the kept decoder states' bytes into their gauges (at each
    /// metrics scrape).
    pub fn observe_gauges(&self) {
        self.inner
            .metrics
            .observe(self.inner.ranges.stats(), self.inner.warm.bytes());
    }

    /// The mirror whose go-lazycache prefix starts `path_after_v1`, and the path inside it.
    pub fn find_mirror(&self, path_after_v1: &str) -> ServiceResult<(Arc<Mirror>, RelPath)> {
        for mirror in &self.inner.mirrors {
            if let Some(path) = mirror.spec().relative_path(path_after_v1) {
                return Ok((Arc::clone(mirror), path?));
            }
        }
        Err(ServiceError::NotFound(
            "no mirror is served under this path".into(),
        ))
    }

    /// The entries of `dir` (hidden ones left out).
    pub async fn list(&self, mirror: &Mirror, dir: &RelPath) -> ServiceResult<Arc<Listing>> {
        Ok(mirror.list(dir).await?)
    }

    /// A file of `mirror`, pinned to its current version (for serving its bytes).
    pub async fn open_file(&self, mirror: &Mirror, path: &RelPath) -> ServiceResult<OriginFile> {
        Ok(mirror.open_file(path).await?)
    }
}

/// An answer to a caller that may hold it already: `holds(tag)` is asked before the work, and a
/// held version is only confirmed for something that would otherwise be answered.
#[derive(Debug)]
pub enum Conditional<T> {
    /// The caller holds this version already (its tag).
    Held(String),
    Fresh(T),
}

/// Runs `attempt`; when the origin file changed under it, forgets the old version and tries once
/// more (SPEC §4: a changed file is never answered from its old content).
pub(crate) async fn retry_if_changed<T, F, Fut>(
    mirror: &Mirror,
    path: &RelPath,
    attempt: F,
) -> ServiceResult<T>
where
    F: Fn() -> Fut,
    Fut: Future<Output = ServiceResult<T>>,
{
    match attempt().await {
        Err(error) if error.is_changed() => {
            mirror.forget(path).await;
            attempt().await
        }
        other => other,
    }
}
