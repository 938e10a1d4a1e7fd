//! The CLI's one-shot commands (`probe`, `frame`, `frames`, `sprite`, `clip`) through the same
//! service as the server: the
//! SOURCE's directory becomes a one-mirror service, so validation, defaults, errors and bytes are
//! those of the HTTP routes. Origin I/O runs on a small runtime; the service decodes on its
//! blocking threads.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use lazycache_cache::{CacheConfig, TieredCache};
use lazycache_decode::Limits;
use lazycache_origin::{Mirror, OriginConfig, RangeCache, RangeCacheConfig, RelPath, locate};
use lazycache_service::{
    ClipAnswer, ClipRequest, Conditional, FrameAnswer, FrameRequest, FramesRequest, MetadataAnswer,
    Service, ServiceError, ServiceOptions, ServiceParts, SpriteAnswer, SpriteRequest,
};
use prometheus::Registry;

/// Memory tier of a one-shot command: one movie's index and a frame or two.
const ONESHOT_MEMORY_BYTES: u64 = 64 << 20;
/// Disk tier bound when `--cache-dir` is given (the server's default).
const ONESHOT_DISK_BYTES: u64 = 10 << 30;
/// How long pending disk writes may take before the command exits.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// A one-mirror service over the directory of `location`, and the movie's path in it.
pub struct OneShot {
    runtime: tokio::runtime::Runtime,
    service: Service,
    mirror: Arc<Mirror>,
    path: RelPath,
}

impl OneShot {
    /// Opens `location` (a local path or an http(s)/file/gs/s3 URL), caching in memory and, with
    /// `cache_dir`, on disk (the same entries a server with that `--cache-dir` would use).
    pub fn open(location: &str, cache_dir: Option<&str>) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("cannot start the I/O runtime")?;
        let (spec, path) = locate(location).map_err(ServiceError::from)?;
        let ranges = RangeCache::new(RangeCacheConfig::default());
        let mirror = Arc::new(
            Mirror::open(spec, &OriginConfig::default(), ranges.clone())
                .map_err(ServiceError::from)?,
        );
        let registry = Registry::new();
        let cache_dir = cache_dir.filter(|dir| !dir.trim().is_empty());
        let mut cache_config = CacheConfig::from_options(
            ONESHOT_MEMORY_BYTES,
            cache_dir.map(Into::into),
            ONESHOT_DISK_BYTES,
            None,
        );
        cache_config.setting_names.disk = "--cache-dir";
        let cache = runtime.block_on(TieredCache::open(cache_config, &registry));
        let cache = cache.map_err(|e| anyhow::anyhow!("--cache-dir: {e}"))?;
        let service = Service::new(ServiceParts {
            mirrors: vec![Arc::clone(&mirror)],
            ranges,
            registry,
            // Raw output guards a server's bandwidth; a local command may write any format.
            options: ServiceOptions {
                allow_raw_output: true,
                ..ServiceOptions::default()
            },
            limits: Limits::default(),
            io: runtime.handle().clone(),
        })
        .context("cannot register metrics")?;
        service.start_serving(cache);
        Ok(Self {
            runtime,
            service,
            mirror,
            path,
        })
    }

    /// The movie's metadata, as the HTTP metadata route gives it.
    pub fn metadata(&self) -> Result<MetadataAnswer, ServiceError> {
        let answer =
            self.runtime
                .block_on(self.service.metadata(&self.mirror, &self.path, &|_| false))?;
        self.flush();
        fresh(answer)
    }

    /// One frame, as the HTTP frame routes give it.
    pub fn frame(&self, request: &FrameRequest) -> Result<FrameAnswer, ServiceError> {
        let answer = self.runtime.block_on(self.service.frame(
            &self.mirror,
            &self.path,
            request,
            &|_| false,
        ))?;
        self.flush();
        fresh(answer)
    }

    /// A clip, as the HTTP clip route gives it.
    pub fn clip(&self, request: &ClipRequest) -> Result<ClipAnswer, ServiceError> {
        self.runtime
            .block_on(self.service.clip(&self.mirror, &self.path, request))
    }

    /// Many frames, as the HTTP frames route gives them, written to `out` as they come.
    pub fn frames(&self, request: &FramesRequest, out: &mut impl std::io::Write) -> Result<()> {
        let written = self.runtime.block_on(async {
            let answer = self
                .service
                .frames(&self.mirror, &self.path, request, &|_| false)
                .await?;
            let mut chunks = fresh(answer)?.start();
            while let Some(chunk) = chunks.next().await {
                out.write_all(&chunk?)
                    .context("cannot write the output file")?;
            }
            Ok::<(), anyhow::Error>(())
        });
        self.flush();
        written
    }

    /// A sprite or its WebVTT map, as the HTTP sprite route gives it.
    pub fn sprite(&self, request: &SpriteRequest) -> Result<SpriteAnswer, ServiceError> {
        let answer = self.runtime.block_on(self.service.sprite(
            &self.mirror,
            &self.path,
            request,
            &|_| false,
        ))?;
        self.flush();
        fresh(answer)
    }

    /// Waits for the disk tier's pending writes, so the next command finds them.
    fn flush(&self) {
        if let Some(cache) = self.service.cache()
            && !self.runtime.block_on(cache.flush(FLUSH_TIMEOUT))
        {
            tracing::warn!("some cache writes were still pending after {FLUSH_TIMEOUT:?}");
        }
    }
}

fn fresh<T>(answer: Conditional<T>) -> Result<T, ServiceError> {
    match answer {
        Conditional::Fresh(value) => Ok(value),
        Conditional::Held(_) => Err(ServiceError::Internal(
            "the service answered 'not modified' to a request without versions".into(),
        )),
    }
}
