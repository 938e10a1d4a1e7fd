//! Every fixture codec/container: metadata equals ffprobe's, and frames equal the ffmpeg CLI's
//! `select=eq(n\,N-1)` output while differing clearly from their neighbours.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use lazycache_decode::{ByteSource, FileSource, Limits, Movie, PixelLayout, RenderOptions, render};
use lazycache_testkit::{fixtures, oracle};

fn open(name: &str) -> Movie {
    let source: Arc<dyn ByteSource> = Arc::new(FileSource::open(fixtures::path(name)).unwrap());
    Movie::open(source, Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn check_metadata(name: &str) {
    let movie = open(name);
    let meta = movie.metadata();
    let (stream, format) = oracle::probe(&fixtures::path(name));
    assert_eq!(
        meta.num_frames,
        oracle::number(&stream["nb_read_frames"]) as u64,
        "{name}: NumFrames"
    );
    assert_eq!(
        meta.width,
        stream["width"].as_u64().unwrap() as u32,
        "{name}: Width"
    );
    assert_eq!(
        meta.height,
        stream["height"].as_u64().unwrap() as u32,
        "{name}: Height"
    );
    assert_eq!(
        meta.codec,
        stream["codec_name"].as_str().unwrap(),
        "{name}: Codec"
    );
    assert_eq!(
        meta.file_size,
        oracle::number(&format["size"]) as u64,
        "{name}: FileSize"
    );
    let fps = oracle::number(&stream["avg_frame_rate"]);
    assert!(
        (meta.frame_rate - fps).abs() < 0.01,
        "{name}: FrameRate {} vs ffprobe {fps}",
        meta.frame_rate
    );
    let duration = if stream["duration"].is_null() {
        &format["duration"]
    } else {
        &stream["duration"]
    };
    let duration = oracle::number(duration);
    assert!(
        (meta.duration - duration).abs() < 1.0 / fps + 1e-3,
        "{name}: Duration {} vs ffprobe {duration}",
        meta.duration
    );
}

/// Frames 1, 2, middle, last-1, last and a few pseudo-random ones.
fn frames_to_check(count: u64) -> Vec<u64> {
    let mut frames = vec![1, 2, count / 2, count - 1, count];
    let mut state = count
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1);
    for _ in 0..3 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        frames.push(1 + (state >> 33) % count);
    }
    frames.sort_unstable();
    frames.dedup();
    frames
}

fn check_frames(name: &str) {
    let movie = open(name);
    let count = movie.frame_count();
    let wanted = frames_to_check(count);
    let mut with_neighbours: Vec<u64> = wanted
        .iter()
        .flat_map(|&n| [n.saturating_sub(1), n, n + 1])
        .filter(|&n| n >= 1 && n <= count)
        .collect();
    with_neighbours.sort_unstable();
    with_neighbours.dedup();
    let reference = oracle::frames(&fixtures::path(name), &with_neighbours);
    let oracle_frame = |n: u64| &reference[with_neighbours.iter().position(|&m| m == n).unwrap()];
    for &n in &wanted {
        let decoded = movie
            .decode(n)
            .unwrap_or_else(|e| panic!("{name} frame {n}: {e}"));
        let image = render(&decoded, &RenderOptions::default(), PixelLayout::Rgb24, 2).unwrap();
        let expected = oracle_frame(n);
        assert_eq!(
            (image.width, image.height),
            (expected.width, expected.height),
            "{name} frame {n}: size"
        );
        let same = oracle::psnr(&image.data, &expected.data);
        assert!(
            same >= 40.0,
            "{name} frame {n}: PSNR {same:.1} dB against ffmpeg's frame {n}"
        );
        for neighbour in [n - 1, n + 1] {
            if neighbour >= 1 && neighbour <= count {
                let other = oracle::psnr(&image.data, &oracle_frame(neighbour).data);
                assert!(
                    other < 35.0 && other + 5.0 < same,
                    "{name} frame {n}: too close to ffmpeg's frame {neighbour} ({other:.1} dB vs {same:.1} dB)"
                );
            }
        }
    }
}

macro_rules! fixture_tests {
    ($($test:ident => $file:literal,)*) => {
        mod metadata_equals_ffprobe {
            $( #[test] fn $test() { super::check_metadata($file); } )*
        }
        mod frames_equal_the_ffmpeg_cli {
            $( #[test] fn $test() { super::check_frames($file); } )*
        }
    };
}

fixture_tests! {
    prores_hq_1080p_moov_at_end => "prores_hq_1080p.mov",
    h264_long_gop_faststart => "h264_longgop_faststart.mp4",
    h264_long_gop_moov_at_end => "h264_longgop_moov_end.mp4",
    h264_open_gop_mkv => "h264_open_gop.mkv",
    hevc_mkv => "hevc.mkv",
    vp9_webm => "vp9.webm",
    mjpeg_avi => "mjpeg.avi",
    odd_size => "odd_size_333x197.mp4",
}

#[test]
fn every_fixture_movie_is_covered() {
    assert_eq!(fixtures::MOVIES.len(), 8);
}
