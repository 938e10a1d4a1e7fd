//! Clips by stream copy end to end, against nginx: ffprobe counts the clip's frames, its first
//! shown frame is movie frame A (an edit list hides the GOP's head in MOV/MP4), the codec is
//! copied, the origin reads only the clip's samples, bad ranges are refused, and the CLI writes
//! the same bytes. Movies indexed by a timeline (the real-size Matroska, WebM, MPEG-TS and MXF of
//! `scripts/fixtures --large`) are clipped from their demuxer's packets under the same rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;

use lazycache_testkit::nginx::Nginx;
use lazycache_testkit::{fixtures, oracle};
use support::{Server, client, fixtures_dir, nginx_mirror, nginx_prefix, runtime};

/// Intra-only 10-bit ProRes, 75 frames.
const PRORES: &str = "prores_hq_1080p.mov";
/// H.264 with 60-frame GOPs and B-frames: keyframes are frames 1, 61, 121, …
const H264: &str = "h264_longgop_faststart.mp4";

fn fetch(server: &Server, path: &str) -> (u16, String, Vec<u8>) {
    runtime().block_on(async {
        let response = client().get(server.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (
            status,
            content_type,
            response.bytes().await.unwrap().to_vec(),
        )
    })
}

/// ffprobe's codec name and decoded frame count of a clip.
fn probe(clip: &Path) -> (String, u64) {
    let (stream, _) = oracle::probe(clip);
    (
        stream["codec_name"].as_str().unwrap().to_owned(),
        oracle::number(&stream["nb_read_frames"]) as u64,
    )
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn clips_copy_the_frames_and_start_on_frame_a() {
    let nginx = Nginx::serve(&fixtures_dir());
    let server = Server::start(&["--mirror", &nginx_mirror(&nginx), "--cache-dir", ""], &[]);
    let prefix = nginx_prefix(&nginx);
    let dir = tempfile::tempdir().unwrap();

    // Intra-only: exactly the frames asked for, in either container.
    let a = 10;
    let expected_a = &oracle::frames(&fixtures_dir().join(PRORES), &[a])[0];
    for ext in ["mov", "mkv"] {
        let (status, content_type, body) =
            fetch(&server, &format!("{prefix}{PRORES}/clip/{a}-19.{ext}"));
        assert_eq!(status, 200, "{ext}: {}", String::from_utf8_lossy(&body));
        assert!(content_type.starts_with("video/"), "{content_type}");
        let clip = write(dir.path(), &format!("prores.{ext}"), &body);
        assert_eq!(probe(&clip), ("prores".to_owned(), 10), "{ext}");
        let first = &oracle::frames(&clip, &[1])[0];
        assert!(
            first.data == expected_a.data,
            "{ext}: the clip's first frame is not frame {a}"
        );
    }

    // Long GOP: the clip starts at keyframe 61; MP4's edit list shows frame 100 first.
    let uri = format!("/{H264}");
    let metadata = fetch(&server, &format!("{prefix}{H264}"));
    assert_eq!(metadata.0, 200);
    let before = nginx.gets_of(&uri).1;
    let (status, _, body) = fetch(&server, &format!("{prefix}{H264}/clip/100-129.mp4"));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let read = nginx.gets_of(&uri).1 - before;
    let clip = write(dir.path(), "h264.mp4", &body);
    let (codec, frames) = probe(&clip);
    assert_eq!(codec, "h264");
    // B-frames after frame 129 in decode order, needed by the frames before it, may show too.
    assert!((30..=33).contains(&frames), "{frames} frames");
    let first = &oracle::frames(&clip, &[1])[0];
    let expected = &oracle::frames(&fixtures_dir().join(H264), &[100])[0];
    assert!(
        first.data == expected.data,
        "the clip's first shown frame is not frame 100"
    );
    // Only the samples from keyframe 61 on were read: about 70 of the movie's frames' bytes.
    let packets = oracle::packets(&fixtures_dir().join(H264));
    let span: u64 = packets[60..135].iter().map(|p| p.size).sum();
    assert!(
        read <= span + (1 << 20),
        "read {read} bytes for samples of {span}"
    );
    assert!(server.terminate().success());
}

#[test]
fn bad_clips_are_refused_with_reasons() {
    let nginx = Nginx::serve(&fixtures_dir());
    let server = Server::start(&["--mirror", &nginx_mirror(&nginx), "--cache-dir", ""], &[]);
    let prefix = nginx_prefix(&nginx);
    for (clip, status, words) in [
        ("0-5.mov", 400, "frames count from 1"),
        ("9-5.mov", 400, "later one"),
        ("1-5000.mov", 400, "past the last frame"),
        ("1-5.avi", 400, "clip format"),
        ("x-5.mov", 400, "whole numbers"),
    ] {
        let (got, _, body) = fetch(&server, &format!("{prefix}{PRORES}/clip/{clip}"));
        let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(got, status, "{clip}: {error}");
        assert!(
            error["Error"].as_str().unwrap_or_default().contains(words),
            "{clip}: {error}"
        );
    }
    assert!(server.terminate().success());
}

#[test]
fn the_cli_writes_the_routes_bytes() {
    let nginx = Nginx::serve(&fixtures_dir());
    let server = Server::start(&["--mirror", &nginx_mirror(&nginx), "--cache-dir", ""], &[]);
    let (status, _, served) = fetch(
        &server,
        &format!("{}{PRORES}/clip/3-7.mov", nginx_prefix(&nginx)),
    );
    assert_eq!(status, 200);
    assert!(server.terminate().success());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cli.mov");
    let status = Command::new(env!("CARGO_BIN_EXE_lazycache"))
        .args(["clip", &format!("{}/{PRORES}", nginx.url), "3-7", "-o"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        std::fs::read(&out).unwrap() == served,
        "CLI and route bytes differ"
    );
}

/// Real-size movies indexed by a timeline: (movie, the segment it repeats, clip format).
const TIMELINE_MOVIES: &[(&str, &str, &str)] = &[
    ("large_h264.mkv", "segment_h264.mkv", "mp4"),
    ("large_h264.ts", "segment_h264.mkv", "mov"),
    ("large_mpeg2.mxf", "segment_mpeg2.mxf", "mp4"),
    ("large_vp9.webm", "segment_vp9.webm", "mkv"),
];

#[test]
fn clips_of_time_indexed_movies_at_real_size_start_on_frame_a() {
    let large = fixtures::large_dir();
    let nginx = Nginx::serve(&large);
    let server = Server::start(&["--mirror", &nginx_mirror(&nginx), "--cache-dir", ""], &[]);
    let prefix = nginx_prefix(&nginx);
    let dir = tempfile::tempdir().unwrap();
    for &(movie, segment_name, ext) in TIMELINE_MOVIES {
        let (status, _, body) = fetch(&server, &format!("{prefix}{movie}"));
        assert_eq!(status, 200, "{movie}");
        let metadata: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let numbering = metadata["FrameNumbers"].as_str().unwrap_or_default();
        assert!(
            numbering.starts_with("constant-rate"),
            "{movie}: {metadata}"
        );
        let count = metadata["NumFrames"].as_u64().unwrap();

        // Frames A..B of a copy of the segment in the middle: A deep in a GOP, B in the next.
        let segment_path = large.join(segment_name);
        let segment = oracle::packets(&segment_path);
        let per_copy = segment.len() as u64;
        let base = (count / 2 / per_copy) * per_copy;
        let (a_in, b_in) = (40, 70);
        let (a, b) = (base + a_in, base + b_in);
        let mut shown: Vec<usize> = (0..segment.len()).collect();
        shown.sort_by_key(|&i| (segment[i].pts, i));
        let key_in = (1..=a_in)
            .rev()
            .find(|&m| segment[shown[(m - 1) as usize]].keyframe)
            .unwrap();

        nginx.clear_access_log();
        let (status, content_type, body) =
            fetch(&server, &format!("{prefix}{movie}/clip/{a}-{b}.{ext}"));
        assert_eq!(status, 200, "{movie}: {}", String::from_utf8_lossy(&body));
        assert!(
            content_type.starts_with("video/"),
            "{movie}: {content_type}"
        );
        let (_, read) = nginx.gets_of(&format!("/{movie}"));

        let clip = write(dir.path(), &format!("{movie}.{ext}"), &body);
        let (codec, frames) = probe(&clip);
        assert_eq!(codec, metadata["Codec"].as_str().unwrap(), "{movie}");
        // MOV and MP4 show from A (their edit list); Matroska from the keyframe. B-frames after
        // B in decode order, needed by frames before it, may show too.
        let a_shown_at = if ext == "mkv" { a_in - key_in + 1 } else { 1 };
        let wanted = b_in - a_in + a_shown_at;
        assert!(
            (wanted..=wanted + 3).contains(&frames),
            "{movie}: {frames} frames for {a}-{b} (keyframe {key_in} of the segment)"
        );
        let first = &oracle::frames(&clip, &[a_shown_at])[0];
        let expected = &oracle::frames(&segment_path, &[a_in])[0];
        assert!(
            first.data == expected.data,
            "{movie}: the clip's frame {a_shown_at} is not movie frame {a}"
        );

        // Only the packets from the keyframe through B (and the few after it in decode
        // order), plus container overhead and the origin's sequential read-ahead (at most a
        // quarter of what a run of reads has read), were read: not the movie.
        let key = shown[(key_in - 1) as usize];
        let last = shown[(b_in - 1) as usize];
        let span: u64 = segment[key..(last + 4).min(segment.len())]
            .iter()
            .map(|p| p.size)
            .sum();
        eprintln!("{movie}: clip {a}-{b}: read {read} bytes for packets of {span}");
        assert!(
            read <= span + span / 4 + (1 << 20),
            "{movie}: read {read} bytes for packets of {span}"
        );
    }
    assert!(server.terminate().success());
}
