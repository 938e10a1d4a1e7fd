//! The decoder's bytes from any origin: a local path or an `http(s)://`, `file://`, `gs://` or
//! `s3://` URL, read through lazycache-origin's range cache behind the blocking
//! [`ByteSource`] trait.

use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use lazycache_decode::{ByteSource, SourceError, SourceErrorKind};
use lazycache_origin::{
    HttpConfig, OriginError, OriginFile, RangeCache, RangeCacheConfig, redact_url_text,
};
use tokio::runtime::Handle;

/// One pinned version of one origin file, read by blocking on the async origin.
pub struct OriginSource {
    file: OriginFile,
    runtime: Handle,
}

impl OriginSource {
    /// `file` (e.g. from `Mirror::open_file`), read on `runtime`. Reads block the calling
    /// thread: call them from decode threads or `spawn_blocking`, never from async tasks.
    pub fn new(file: OriginFile, runtime: Handle) -> Self {
        Self { file, runtime }
    }
}

impl ByteSource for OriginSource {
    fn len(&self) -> u64 {
        self.file.size()
    }

    fn validator(&self) -> &str {
        self.file.validator()
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Bytes, SourceError> {
        self.runtime
            .block_on(self.file.read_at(offset, len))
            .map_err(|e| source_error(&e))
    }

    /// The file's path inside its mirror: decode errors reach clients, so never a server path
    /// or an origin URL.
    fn describe(&self) -> String {
        format!("/{}", self.file.path())
    }

    fn extension(&self) -> Option<String> {
        let name = self.file.path().file_name()?;
        name.rsplit_once('.')
            .map(|(_, extension)| extension.to_owned())
    }
}

/// The decoder's view of an origin failure.
pub fn source_error(error: &OriginError) -> SourceError {
    let kind = match error {
        OriginError::NotFound { .. } | OriginError::OutsideMirror { .. } => {
            SourceErrorKind::NotFound
        }
        OriginError::Timeout { .. } => SourceErrorKind::Timeout,
        OriginError::Changed { .. } => SourceErrorKind::Changed,
        OriginError::BadResponse { .. } => SourceErrorKind::BadResponse,
        OriginError::Unavailable { .. } | OriginError::Config { .. } => SourceErrorKind::Io,
    };
    SourceError::new(kind, error.to_string())
}

/// Opens `location` (a local path or an http(s)/file/gs/s3 URL) with default timeouts and a
/// range cache of its own. Blocks on `runtime`: call it outside async tasks.
pub fn open_source(location: &str, runtime: &Handle) -> anyhow::Result<Arc<dyn ByteSource>> {
    let ranges = RangeCache::new(RangeCacheConfig::default());
    runtime.block_on(open_source_with(
        location,
        &HttpConfig::default(),
        ranges,
        runtime.clone(),
    ))
}

/// Opens `location` with the given HTTP settings, through a shared range cache.
pub async fn open_source_with(
    location: &str,
    http: &HttpConfig,
    ranges: RangeCache,
    runtime: Handle,
) -> anyhow::Result<Arc<dyn ByteSource>> {
    let file = lazycache_origin::open_location(location, http, ranges)
        .await
        .with_context(|| format!("cannot open {}", redact_url_text(location)))?;
    Ok(Arc::new(OriginSource::new(file, runtime)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use lazycache_decode::{Limits, Movie};
    use lazycache_testkit::fixtures;
    use lazycache_testkit::nginx::Nginx;

    const PRORES: &str = "prores_hq_1080p.mov";

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    /// The decoder probing the moov-at-end ProRes fixture over HTTP reads well under 1% of it;
    /// then, with the index known, a cold frame reads at most 1.25 × its sample + 64 KiB.
    #[test]
    fn the_decoder_reads_only_the_index_and_one_sample_over_http() {
        let runtime = runtime();
        let nginx = Nginx::serve(&fixtures::dir());
        let url = format!("{}/{PRORES}", nginx.url);
        let uri = format!("/{PRORES}");

        let source = open_source(&url, runtime.handle()).unwrap();
        let movie = Movie::open(source.clone(), Limits::default()).unwrap();
        let local = Movie::open(
            Arc::new(lazycache_decode::FileSource::open(fixtures::path(PRORES)).unwrap()),
            Limits::default(),
        )
        .unwrap();
        assert_eq!(movie.metadata(), local.metadata());
        let (requests, probed) = nginx.gets_of(&uri);
        eprintln!(
            "probe: {probed} of {} bytes in {requests} requests ({:.3}%)",
            source.len(),
            probed as f64 * 100.0 / source.len() as f64
        );
        assert!(probed * 100 < source.len(), "probe read {probed} bytes");

        for frame in [1, movie.frame_count() / 2, movie.frame_count()] {
            let cold = open_source(&url, runtime.handle()).unwrap();
            let movie = Movie::with_index(cold, movie.index().clone(), Limits::default()).unwrap();
            nginx.clear_access_log();
            let decoded = movie.decode(frame).unwrap();
            assert_eq!((decoded.width(), decoded.height()), (1920, 1080));
            let sample = u64::from(movie.index().samples[frame as usize - 1].size);
            let (requests, read) = nginx.gets_of(&uri);
            let bound = sample + sample / 4 + (64 << 10);
            eprintln!(
                "frame {frame}: sample {sample} bytes, {read} origin bytes in {requests} requests, bound {bound}"
            );
            assert!(read <= bound, "frame {frame}: {read} > {bound}");
        }
    }

    #[test]
    fn paths_and_file_urls_read_the_same_file() {
        let runtime = runtime();
        let path = fixtures::path("h264_longgop_faststart.mp4");
        let by_path = open_source(path.to_str().unwrap(), runtime.handle()).unwrap();
        let url = format!("file://{}", path.display());
        let by_url = open_source(&url, runtime.handle()).unwrap();
        assert_eq!(by_path.len(), std::fs::metadata(&path).unwrap().len());
        assert_eq!(by_path.validator(), by_url.validator());
        assert_eq!(
            by_path.read_at(1000, 500).unwrap(),
            by_url.read_at(1000, 500).unwrap()
        );
        let frames = Movie::open(by_url, Limits::default())
            .unwrap()
            .frame_count();
        assert_eq!(frames, 150);
        let missing = open_source("/nonexistent/movie.mov", runtime.handle())
            .err()
            .unwrap();
        assert!(format!("{missing:#}").contains("not found"), "{missing:#}");
        let refused = open_source("ftp://host/movie.mov", runtime.handle())
            .err()
            .unwrap();
        assert!(
            format!("{refused:#}").contains("not a supported origin"),
            "{refused:#}"
        );
    }

    #[test]
    fn origin_errors_keep_their_meaning_for_the_decoder() {
        let what = || "f".to_owned();
        let cases = [
            (
                OriginError::NotFound { what: what() },
                SourceErrorKind::NotFound,
            ),
            (
                OriginError::OutsideMirror {
                    path: what(),
                    reason: "dot segment",
                },
                SourceErrorKind::NotFound,
            ),
            (
                OriginError::Timeout {
                    what: what(),
                    detail: what(),
                },
                SourceErrorKind::Timeout,
            ),
            (
                OriginError::Changed {
                    what: what(),
                    detail: what(),
                },
                SourceErrorKind::Changed,
            ),
            (
                OriginError::BadResponse {
                    what: what(),
                    detail: what(),
                },
                SourceErrorKind::BadResponse,
            ),
            (
                OriginError::Unavailable {
                    what: what(),
                    detail: what(),
                },
                SourceErrorKind::Io,
            ),
        ];
        for (error, kind) in cases {
            let mapped = source_error(&error);
            assert_eq!(mapped.kind, kind, "{error}");
            assert_eq!(mapped.message, error.to_string());
        }
    }
}
