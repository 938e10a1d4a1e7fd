//! Hostile and broken input: each case is a typed error with a clear message, promptly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use lazycache_decode::{ByteSource, Error, FileSource, Limits, Movie};
use lazycache_testkit::fixtures;

fn open_with(name: &str, limits: Limits) -> Result<Movie, Error> {
    let source: Arc<dyn ByteSource> = Arc::new(FileSource::open(fixtures::path(name)).unwrap());
    Movie::open(source, limits)
}

fn open(name: &str) -> Result<Movie, Error> {
    open_with(name, Limits::default())
}

/// Runs `f` and checks it returns quickly (a hang would be a failure, not a slow pass).
fn promptly<T>(f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let value = f();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    value
}

#[test]
fn a_movie_cut_before_its_moov_is_not_a_movie() {
    match promptly(|| open("bad_truncated_no_moov.mov")) {
        Err(Error::NotAMovie(message)) => assert!(message.contains("moov"), "{message}"),
        other => panic!("expected NotAMovie, got {:?}", other.err()),
    }
}

#[test]
fn a_movie_cut_inside_its_samples_is_truncated() {
    match promptly(|| open("bad_truncated_samples.mp4")) {
        Err(Error::Truncated(message)) => assert!(message.contains("beyond the end"), "{message}"),
        other => panic!("expected Truncated, got {:?}", other.err()),
    }
}

#[test]
fn audio_only_has_no_video_stream() {
    assert!(matches!(
        promptly(|| open("bad_audio_only.mp4")),
        Err(Error::NoVideoStream)
    ));
}

#[test]
fn text_renamed_mov_is_not_a_movie() {
    assert!(matches!(
        promptly(|| open("bad_text.mov")),
        Err(Error::NotAMovie(_))
    ));
}

#[test]
fn an_empty_file_is_not_a_movie() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.mov");
    std::fs::write(&path, b"").unwrap();
    let source: Arc<dyn ByteSource> = Arc::new(FileSource::open(&path).unwrap());
    assert!(matches!(
        promptly(|| Movie::open(source, Limits::default())),
        Err(Error::NotAMovie(_))
    ));
}

#[test]
fn frame_numbers_count_from_one_to_num_frames() {
    let movie = open("h264_longgop_faststart.mp4").unwrap();
    let count = movie.frame_count();
    assert!(matches!(movie.decode(0), Err(Error::FrameZero)));
    assert_eq!(Error::FrameZero.to_string(), "frames count from 1");
    match movie.decode(count + 1) {
        Err(Error::FrameOutOfRange { frame, count: c }) => {
            assert_eq!((frame, c), (count + 1, count))
        }
        other => panic!("expected FrameOutOfRange, got {:?}", other.err()),
    }
    assert!(movie.decode(count).is_ok());
}

#[test]
fn an_index_larger_than_the_cap_is_refused() {
    let limits = Limits {
        max_index_bytes: 4096,
        ..Limits::default()
    };
    match promptly(|| open_with("prores_hq_1080p.mov", limits)) {
        Err(Error::IndexTooLarge(message)) => assert!(message.contains("4096"), "{message}"),
        other => panic!("expected IndexTooLarge, got {:?}", other.err()),
    }
    let limits = Limits {
        max_samples: 10,
        ..Limits::default()
    };
    assert!(matches!(
        open_with("h264_open_gop.mkv", limits),
        Err(Error::IndexTooLarge(_))
    ));
}

#[test]
fn a_sample_over_the_cap_makes_the_movie_unservable_fresh_or_cached() {
    // ProRes HQ 1080p samples are about 330 kB.
    let small = Limits {
        max_sample_bytes: 100_000,
        ..Limits::default()
    };
    match open_with("prores_hq_1080p.mov", small.clone()) {
        Err(Error::IndexTooLarge(message)) => {
            assert!(message.contains("at most 100000"), "{message}")
        }
        other => panic!("expected IndexTooLarge, got {:?}", other.err()),
    }
    let movie = open_with("prores_hq_1080p.mov", Limits::default()).unwrap();
    let cached = movie.index().clone();
    let source: std::sync::Arc<dyn lazycache_decode::ByteSource> = std::sync::Arc::new(
        lazycache_decode::FileSource::open(lazycache_testkit::fixtures::path(
            "prores_hq_1080p.mov",
        ))
        .unwrap(),
    );
    assert!(matches!(
        lazycache_decode::Movie::with_index(source, cached, small),
        Err(Error::IndexTooLarge(_))
    ));
}

#[test]
fn garbage_inside_a_valid_container_fails_cleanly() {
    // Overwrite the middle of every sample region of an H.264 MP4 with noise: the index still
    // parses, decoding must give a frame or a typed error, never a panic or a hang.
    let original = std::fs::read(fixtures::path("h264_longgop_faststart.mp4")).unwrap();
    let mut damaged = original.clone();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for byte in damaged[original.len() / 4..original.len() - 1024].iter_mut() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state as u8;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.mp4");
    std::fs::write(&path, &damaged).unwrap();
    let source: Arc<dyn ByteSource> = Arc::new(FileSource::open(&path).unwrap());
    let movie = Movie::open(source, Limits::default()).unwrap();
    let count = movie.frame_count();
    for n in [count / 2, count - 3, count] {
        promptly(|| match movie.decode(n) {
            Ok(_) | Err(Error::Decode(_)) => {}
            Err(other) => panic!("frame {n}: unexpected error kind {other}"),
        });
    }
}

#[test]
fn a_cached_index_of_another_version_is_refused() {
    let movie = open("mjpeg.avi").unwrap();
    let mut index = movie.index().clone();
    index.validator.push_str("-old");
    let source: Arc<dyn ByteSource> =
        Arc::new(FileSource::open(fixtures::path("mjpeg.avi")).unwrap());
    assert!(matches!(
        Movie::with_index(source, index, Limits::default()),
        Err(Error::Source(_))
    ));
}
