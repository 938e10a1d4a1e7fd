//! What the decoder reads: a probe reads the index only, a frame reads its samples only, and a
//! stored index replaces the probe entirely.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Counting, png};

use std::sync::Arc;

use bytes::Bytes;
use lazycache_decode::{ByteSource, Limits, Movie, MovieIndex};

#[test]
fn probing_a_moov_at_end_prores_file_reads_well_under_one_percent() {
    let source = Counting::fixture("prores_hq_1080p.mov");
    let movie = Movie::open(source.clone(), Limits::default()).unwrap();
    let (bytes, reads) = source.take();
    let size = source.len();
    assert!(movie.frame_count() > 0);
    // MOV leaves the pixel format to the decoder: the probe also decodes frame 1 (once, for
    // BitDepth). Beside that one sample it reads the index only.
    assert_eq!(movie.metadata().bit_depth, 10);
    let first = movie.index().samples[movie.index().presentation_order()[0]];
    let sample_read = u64::from(first.size) * 5 / 4 + 64 * 1024;
    assert!(
        bytes.saturating_sub(sample_read) * 100 < size,
        "probe read {bytes} of {size} bytes in {reads} reads"
    );
}

#[test]
fn a_cold_prores_frame_reads_only_its_sample() {
    let source = Counting::fixture("prores_hq_1080p.mov");
    let movie = Movie::open(source.clone(), Limits::default()).unwrap();
    source.take();
    for n in [1, 37, movie.frame_count()] {
        movie.decode(n).unwrap();
        let (bytes, reads) = source.take();
        let order = movie.index().presentation_order();
        let sample = movie.index().samples[order[n as usize - 1]];
        let bound = u64::from(sample.size) * 5 / 4 + 64 * 1024;
        assert!(
            bytes <= bound,
            "frame {n}: read {bytes} bytes, sample is {} (bound {bound})",
            sample.size
        );
        assert_eq!(reads, 1, "frame {n}: one range read");
    }
}

#[test]
fn a_long_gop_frame_reads_its_gop_prefix_in_few_requests() {
    let source = Counting::fixture("h264_longgop_moov_end.mp4");
    let movie = Movie::open(source.clone(), Limits::default()).unwrap();
    source.take();
    movie.decode(110).unwrap();
    let (bytes, reads) = source.take();
    assert!(bytes < source.len() / 2, "read {bytes} of {}", source.len());
    assert!(reads <= 2, "{reads} reads");
}

#[test]
fn a_stored_index_replaces_the_probe_and_gives_the_same_frames() {
    let source = Counting::fixture("h264_longgop_moov_end.mp4");
    let movie = Movie::open(source.clone(), Limits::default()).unwrap();
    let stored = movie.index().to_bytes().unwrap();
    assert!(stored.len() < 16 * 1024, "index is {} bytes", stored.len());
    let index = MovieIndex::from_bytes(&stored).unwrap();
    assert_eq!(&index, movie.index());
    source.take();
    let again = Movie::with_index(source.clone(), index, Limits::default()).unwrap();
    assert_eq!(source.take(), (0, 0), "adopting an index reads nothing");
    assert_eq!(again.metadata(), movie.metadata());
    let a = again
        .frame(77, &Default::default(), lazycache_decode::Format::Png, None)
        .unwrap();
    let b = movie
        .frame(77, &Default::default(), lazycache_decode::Format::Png, None)
        .unwrap();
    assert_eq!(a.bytes, b.bytes);
    assert!(MovieIndex::from_bytes(&stored[..stored.len() / 2]).is_err());
}

#[test]
fn the_frame_on_screen_at_a_time() {
    let source = Counting::fixture("h264_longgop_faststart.mp4"); // 25 fps
    let movie = Movie::open(source, Limits::default()).unwrap();
    assert_eq!(movie.frame_at_time(0.0).unwrap(), 1);
    assert_eq!(movie.frame_at_time(0.039).unwrap(), 1);
    assert_eq!(movie.frame_at_time(0.04).unwrap(), 2);
    assert_eq!(movie.frame_at_time(2.5).unwrap(), 63);
    assert_eq!(
        movie
            .frame_at_time(movie.metadata().duration - 0.001)
            .unwrap(),
        movie.frame_count()
    );
    assert!(movie.frame_at_time(movie.metadata().duration).is_err());
    assert!(movie.frame_at_time(-0.5).is_err());
}

#[test]
fn long_gop_fixtures_index_every_keyframe() {
    // A missed keyframe still decodes correctly (from an earlier one) but reads and decodes far
    // more than needed, so check the index itself: GOPs are 60 frames (30 for odd_size).
    for (name, gop) in [
        ("h264_longgop_faststart.mp4", 60),
        ("h264_longgop_moov_end.mp4", 60),
        ("h264_open_gop.mkv", 60),
        ("hevc.mkv", 60),
        ("vp9.webm", 60),
        ("odd_size_333x197.mp4", 30),
    ] {
        let movie = Movie::open(Counting::fixture(name), Limits::default()).unwrap();
        let samples = &movie.index().samples;
        let keyframes = samples.iter().filter(|s| s.keyframe).count();
        assert_eq!(
            keyframes,
            samples.len().div_ceil(gop),
            "{name}: {keyframes} keyframes in {} samples",
            samples.len()
        );
    }
}

#[test]
fn codec_parameters_are_stored_by_name_and_unknown_names_read_as_unspecified() {
    let source = Counting::fixture("prores_hq_1080p.mov");
    let movie = Movie::open(source.clone(), Limits::default()).unwrap();
    let codec = &movie.index().codec;
    // As the MOV demuxer states them (the `fiel` atom), in FFmpeg's words.
    assert_eq!(codec.field_order, "progressive");
    assert_eq!(codec.color_range, "unknown");
    assert_eq!(codec.color_space, "unknown");
    assert_eq!(codec.chroma_location, "unspecified");
    let expected = movie
        .frame(30, &Default::default(), lazycache_decode::Format::Png, None)
        .unwrap();
    // An index written by another FFmpeg (or tampered with) may hold names this one lacks.
    let mut index = movie.index().clone();
    index.codec.field_order = "sideways".into();
    index.codec.color_primaries = "no-such-primaries".into();
    index.codec.chroma_location = String::new();
    let again = Movie::with_index(source, index, Limits::default()).unwrap();
    let frame = again
        .frame(30, &Default::default(), lazycache_decode::Format::Png, None)
        .unwrap();
    assert_eq!(frame.bytes, expected.bytes);
}

#[test]
fn sequential_frames_continue_a_warm_decoder_and_stay_exact() {
    use lazycache_decode::{WarmPool, WarmSettings};
    // 60-frame GOPs with B-frames: frames 100..=110 lie deep in the GOP starting at 61.
    let name = "h264_longgop_faststart.mp4";
    let cold_source = Counting::fixture(name);
    let cold = Movie::open(cold_source.clone(), Limits::default()).unwrap();
    let source = Counting::fixture(name);
    let pool = Arc::new(WarmPool::new(WarmSettings::default()));
    let warm = Movie::open(source.clone(), Limits::default())
        .unwrap()
        .with_warm_pool(pool.clone());
    cold_source.take();
    source.take();
    let first = png(&warm, 100);
    let (first_bytes, _) = source.take();
    assert_eq!(first, png(&cold, 100));
    let (cold_bytes, _) = cold_source.take();
    assert!(
        first_bytes <= cold_bytes + 512 * 1024,
        "{first_bytes} vs {cold_bytes}"
    );
    assert!(pool.bytes() > 0, "the state is kept");
    let mut warm_total = 0;
    for frame in 101..=110 {
        let got = png(&warm, frame);
        warm_total += source.take().0;
        assert_eq!(got, png(&cold, frame), "frame {frame}");
    }
    let cold_total = cold_source.take().0;
    assert!(
        warm_total * 5 < cold_total,
        "continuing read {warm_total} bytes for 10 frames, cold decodes {cold_total}"
    );
    // Back to an earlier frame, a frame of the next GOP, and the last frame: all still exact.
    for frame in [100, 95, 121, 122, warm.frame_count()] {
        assert_eq!(png(&warm, frame), png(&cold, frame), "frame {frame}");
    }
}

#[test]
fn concurrent_requests_around_one_place_are_exact() {
    use lazycache_decode::{WarmPool, WarmSettings};
    let name = "h264_longgop_faststart.mp4";
    let cold = Movie::open(Counting::fixture(name), Limits::default()).unwrap();
    let pool = Arc::new(WarmPool::new(WarmSettings::default()));
    let warm = Movie::open(Counting::fixture(name), Limits::default())
        .unwrap()
        .with_warm_pool(pool);
    let frames: Vec<u64> = (70..=85).rev().chain(86..=95).collect();
    let got: Vec<(u64, Bytes)> = std::thread::scope(|scope| {
        let handles: Vec<_> = frames
            .chunks(4)
            .map(|chunk| {
                let warm = warm.clone();
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|&f| (f, png(&warm, f)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    for (frame, bytes) in got {
        assert_eq!(bytes, png(&cold, frame), "frame {frame}");
    }
}

#[test]
fn keyframe_mode_names_the_shown_keyframe_at_or_before() {
    let movie = Movie::open(
        Counting::fixture("h264_longgop_faststart.mp4"),
        Limits::default(),
    )
    .unwrap();
    // GOPs of 60 frames: keyframes are frames 1, 61, 121, …
    assert_eq!(movie.keyframe_at_or_before(1).unwrap(), 1);
    assert_eq!(movie.keyframe_at_or_before(60).unwrap(), 1);
    assert_eq!(movie.keyframe_at_or_before(61).unwrap(), 61);
    assert_eq!(movie.keyframe_at_or_before(100).unwrap(), 61);
    assert!(movie.keyframe_at_or_before(0).is_err());
    assert!(
        movie
            .keyframe_at_or_before(movie.frame_count() + 1)
            .is_err()
    );
}
