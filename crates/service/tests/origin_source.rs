//! The decoder's byte source over origins (`OriginSource`): through nginx it reads only the
//! index and one sample per cold frame; paths and file URLs read the same file; origin errors
//! keep their meaning for the decoder.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use lazycache_decode::{ByteSource, SourceErrorKind};
use lazycache_origin::{HttpConfig, OriginError, RangeCache, RangeCacheConfig, open_location};
use lazycache_service::{OriginSource, source_error};

/// `location` as the decoder's byte source, through a range cache of its own.
fn open_source(
    location: &str,
    runtime: &tokio::runtime::Handle,
) -> Result<Arc<dyn ByteSource>, OriginError> {
    let ranges = RangeCache::new(RangeCacheConfig::default());
    let file = runtime.block_on(open_location(location, &HttpConfig::default(), ranges))?;
    Ok(Arc::new(OriginSource::new(file, runtime.clone())))
}

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
    assert!(missing.to_string().contains("not found"), "{missing}");
    let refused = open_source("ftp://host/movie.mov", runtime.handle())
        .err()
        .unwrap();
    assert!(
        refused.to_string().contains("not a supported origin"),
        "{refused}"
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
