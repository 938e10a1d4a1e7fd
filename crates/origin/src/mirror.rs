//! A served mirror: its origin (under the file overlay, if any), listings and validators
//! trusted for the listing TTL, and files opened through the shared range cache.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::error::{OriginError, OriginResult};
use crate::file::FileOrigin;
use crate::http::HttpConfig;
use crate::limited::LimitedOrigin;
use crate::open::origin_for_url;
use crate::origin::{FileMeta, Listing, Origin};
use crate::overlay::OverlayOrigin;
use crate::pinned::{ChangedHook, OriginFile};
use crate::range_cache::RangeCache;
use crate::relpath::{RelPath, is_hidden_name};
use crate::spec::MirrorSpec;

/// Settings shared by every mirror (SPEC §2).
#[derive(Clone, Debug)]
pub struct OriginConfig {
    /// The HTTP client's timeouts, retries and limits (object stores use its timeouts and
    /// retries too).
    pub http: HttpConfig,
    /// `--listing-ttl`: how long listings and file validators are trusted.
    pub listing_ttl: Duration,
    /// `--file-overlay DIR`.
    pub file_overlay: Option<PathBuf>,
    /// `--file-overlay-flatten`.
    pub file_overlay_flatten: bool,
    /// `--origin-concurrency`: requests in flight to the mirror's origin at once.
    pub origin_concurrency: usize,
    /// How long a request waits for its turn before it fails as an origin timeout.
    pub origin_queue_timeout: Duration,
}

impl Default for OriginConfig {
    fn default() -> Self {
        Self {
            http: HttpConfig::default(),
            listing_ttl: Duration::from_secs(300),
            file_overlay: None,
            file_overlay_flatten: false,
            origin_concurrency: 32,
            origin_queue_timeout: Duration::from_secs(30),
        }
    }
}

/// One `--mirror`, ready to serve.
pub struct Mirror {
    spec: MirrorSpec,
    prefix: String,
    origin: Arc<dyn Origin>,
    ranges: RangeCache,
    listings: moka::future::Cache<RelPath, Arc<Listing>>,
    metas: moka::future::Cache<RelPath, FileMeta>,
}

/// Hidden files and directories are never read, whatever path led to them.
fn refuse_hidden(path: &RelPath) -> OriginResult<()> {
    if path.is_hidden() {
        return Err(OriginError::not_found(format!("/{path}")));
    }
    Ok(())
}

/// Entries of the listing and validator caches, each.
const MAX_CACHED_PATHS: u64 = 100_000;

fn ttl_cache<V: Clone + Send + Sync + 'static>(ttl: Duration) -> moka::future::Cache<RelPath, V> {
    moka::future::Cache::builder()
        .max_capacity(MAX_CACHED_PATHS)
        .time_to_live(ttl)
        .build()
}

impl Mirror {
    /// Builds the origin `spec` names (no request is made yet), under the configured overlay.
    pub fn open(spec: MirrorSpec, config: &OriginConfig, ranges: RangeCache) -> OriginResult<Self> {
        let origin = origin_for_url(&spec.origin_url(), &config.http)?;
        // The bound is on the remote origin; overlay files are local and not counted.
        let mut origin: Arc<dyn Origin> = Arc::new(LimitedOrigin::new(
            origin,
            config.origin_concurrency,
            config.origin_queue_timeout,
        ));
        if let Some(dir) = &config.file_overlay {
            let overlay = FileOrigin::new(dir).map_err(|e| {
                OriginError::config(format!("--file-overlay {}: {e}", dir.display()))
            })?;
            origin = Arc::new(OverlayOrigin::new(
                overlay,
                config.file_overlay_flatten,
                origin,
            ));
        }
        Ok(Self::with_origin(spec, origin, ranges, config.listing_ttl))
    }

    /// A mirror over an origin built by the caller.
    pub fn with_origin(
        spec: MirrorSpec,
        origin: Arc<dyn Origin>,
        ranges: RangeCache,
        listing_ttl: Duration,
    ) -> Self {
        Self {
            prefix: spec.prefix(),
            spec,
            origin,
            ranges,
            listings: ttl_cache(listing_ttl),
            metas: ttl_cache(listing_ttl),
        }
    }

    /// What `--mirror` said.
    pub fn spec(&self) -> &MirrorSpec {
        &self.spec
    }

    /// The mirror's root URL (for `GET /`).
    pub fn url(&self) -> &Url {
        &self.spec.url
    }

    /// The prefix after `/v1/`, ending in `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The origin itself, uncached.
    pub fn origin(&self) -> &Arc<dyn Origin> {
        &self.origin
    }

    /// The range cache reads go through.
    pub fn ranges(&self) -> &RangeCache {
        &self.ranges
    }

    /// The entries of `dir`, fetched at most once per listing TTL; concurrent callers share
    /// one origin request.
    /// Hidden entries (names beginning with `.`) are left out, and a hidden `dir` is not found.
    pub async fn list(&self, dir: &RelPath) -> OriginResult<Arc<Listing>> {
        refuse_hidden(dir)?;
        self.listings
            .try_get_with_by_ref(dir, async {
                self.ranges.counters().list_request();
                let mut listing = self.origin.list(dir).await?;
                listing.files.retain(|name| !is_hidden_name(name));
                listing.directories.retain(|name| !is_hidden_name(name));
                Ok(Arc::new(listing))
            })
            .await
            .map_err(|e| OriginError::clone(&e))
    }

    /// Size and validator of `path`, trusted for the listing TTL.
    pub async fn stat(&self, path: &RelPath) -> OriginResult<FileMeta> {
        refuse_hidden(path)?;
        self.metas
            .try_get_with_by_ref(path, async {
                self.ranges.counters().stat_request();
                self.origin.stat(path).await
            })
            .await
            .map_err(|e| OriginError::clone(&e))
    }

    /// Opens `path`, pinned to its current validator. A read that finds the file changed
    /// forgets the cached validator, so the next open sees the new version.
    pub async fn open_file(&self, path: &RelPath) -> OriginResult<OriginFile> {
        let meta = self.stat(path).await?;
        let metas = self.metas.clone();
        let hook: ChangedHook = Arc::new(move |path: &RelPath| {
            let metas = metas.clone();
            let path = path.clone();
            // The hook runs inside a read on the runtime; the removal need not be awaited.
            tokio::spawn(async move { metas.invalidate(&path).await });
        });
        Ok(OriginFile::pinned(
            self.origin.clone(),
            path.clone(),
            meta,
            self.ranges.clone(),
            Some(hook),
        ))
    }

    /// Forgets the cached validator and listing entry of `path` (e.g. after a "changed" error
    /// surfaced elsewhere).
    pub async fn forget(&self, path: &RelPath) {
        self.metas.invalidate(path).await;
        if let Some(parent) = path.parent() {
            self.listings.invalidate(&parent).await;
        }
    }

    /// Where clients may be redirected for `path` (http(s) mirrors only, SPEC §3 "other file").
    pub fn public_url(&self, path: &RelPath) -> Option<Url> {
        self.origin.public_url(path)
    }
}
