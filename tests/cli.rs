//! The `lazycache probe` and `lazycache frame` commands, run as a user would run them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use lazycache_testkit::{fixtures, oracle};

fn lazycache(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lazycache"))
        .args(args)
        .output()
        .expect("run lazycache")
}

/// Runs `lazycache ARGS` and checks that it succeeded.
fn lazycache_ok(args: &[&str]) -> Output {
    let out = lazycache(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn fixture(name: &str) -> String {
    fixtures::path(name).display().to_string()
}

#[test]
fn probe_prints_the_metadata_object() {
    let out = lazycache_ok(&["probe", &fixture("prores_hq_1080p.mov")]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (stream, _) = oracle::probe(&fixtures::path("prores_hq_1080p.mov"));
    assert_eq!(
        json["NumFrames"],
        stream["nb_read_frames"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    );
    assert_eq!(json["Width"], 1920);
    assert_eq!(json["Height"], 1080);
    assert_eq!(json["Codec"], "prores");
    assert!((json["FrameRate"].as_f64().unwrap() - 29.97).abs() < 0.01);
    assert_eq!(json["URL"], fixture("prores_hq_1080p.mov"));
    for key in ["Duration", "FileSize"] {
        assert!(json[key].is_number(), "{key}");
    }
}

#[test]
fn frame_writes_the_format_its_extension_names() {
    let dir = tempfile::tempdir().unwrap();
    for (ext, magic) in [
        ("png", &b"\x89PNG"[..]),
        ("jpg", b"\xff\xd8\xff"),
        ("bmp", b"BM"),
        ("webp", b"RIFF"),
        ("npy", b"\x93NUMPY"),
    ] {
        let out_path = dir.path().join(format!("frame.{ext}"));
        lazycache_ok(&[
            "frame",
            &fixture("hevc.mkv"),
            "20",
            "-o",
            out_path.to_str().unwrap(),
        ]);
        let bytes = std::fs::read(&out_path).unwrap();
        assert!(
            bytes.starts_with(magic),
            "{ext} output starts with {:?}",
            &bytes[..8.min(bytes.len())]
        );
    }
}

#[test]
fn frame_png_equals_the_ffmpeg_cli_frame() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("f.png");
    lazycache_ok(&[
        "frame",
        &fixture("h264_longgop_moov_end.mp4"),
        "100",
        "-o",
        out_path.to_str().unwrap(),
    ]);
    let ours = image::open(&out_path).unwrap().to_rgb8();
    let reference = &oracle::frames(&fixtures::path("h264_longgop_moov_end.mp4"), &[100])[0];
    assert_eq!(
        (ours.width(), ours.height()),
        (reference.width, reference.height)
    );
    assert!(oracle::psnr(ours.as_raw(), &reference.data) >= 40.0);
}

#[test]
fn frame_resizes_like_ffmpeg_lanczos() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("small.png");
    let src = fixture("prores_hq_1080p.mov");
    lazycache_ok(&[
        "frame",
        &src,
        "5",
        "--width",
        "480",
        "-o",
        out_path.to_str().unwrap(),
    ]);
    let ours = image::open(&out_path).unwrap().to_rgb8();
    assert_eq!((ours.width(), ours.height()), (480, 270));
    let reference = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-i", &src])
        .args([
            "-vf",
            "select=eq(n\\,4),scale=480:270:flags=lanczos",
            "-fps_mode",
            "passthrough",
            "-frames:v",
            "1",
        ])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    assert!(reference.status.success());
    let psnr = oracle::psnr(ours.as_raw(), &reference.stdout);
    assert!(
        psnr >= 30.0,
        "resized frame vs ffmpeg lanczos: {psnr:.1} dB"
    );
}

#[test]
fn bad_input_exits_non_zero_with_one_clear_line() {
    let cases = [
        (
            vec!["frame".to_owned(), fixture("hevc.mkv"), "0".into()],
            "frames count from 1",
        ),
        (
            vec!["probe".to_owned(), fixture("bad_text.mov")],
            "not a readable movie",
        ),
        (
            vec!["probe".to_owned(), fixture("bad_audio_only.mp4")],
            "no video stream",
        ),
        (
            vec!["probe".to_owned(), "/nonexistent/movie.mov".into()],
            "/nonexistent/movie.mov",
        ),
        (
            vec![
                "frame".to_owned(),
                fixture("hevc.mkv"),
                "1".into(),
                "-o".into(),
                "/tmp/x.gif".into(),
            ],
            "unknown image format",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = lazycache(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    }
}

#[test]
fn probe_and_frame_read_http_urls_through_nginx() {
    let nginx = lazycache_testkit::nginx::Nginx::serve(&fixtures::dir());
    let url = format!(
        "{}/h264_longgop_moov_end.mp4",
        nginx.url.trim_end_matches('/')
    );
    let out = lazycache_ok(&["probe", &url]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["NumFrames"], 150);
    let dir = tempfile::tempdir().unwrap();
    let (remote, local) = (dir.path().join("remote.png"), dir.path().join("local.png"));
    lazycache_ok(&["frame", &url, "100", "-o", remote.to_str().unwrap()]);
    lazycache_ok(&[
        "frame",
        &fixture("h264_longgop_moov_end.mp4"),
        "100",
        "-o",
        local.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read(remote).unwrap(),
        std::fs::read(local).unwrap()
    );
    let missing = lazycache(&[
        "probe",
        &format!("{}/no-such.mov", nginx.url.trim_end_matches('/')),
    ]);
    assert!(!missing.status.success());
}
