//! Clips by stream copy end to end, against nginx: ffprobe counts the clip's frames, its first
//! shown frame is movie frame A (an edit list hides the GOP's head in MOV/MP4), the codec is
//! copied, the origin reads only the clip's samples, bad ranges are refused, and the CLI writes
//! the same bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;

use lazycache_testkit::nginx::Nginx;
use lazycache_testkit::oracle;
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
