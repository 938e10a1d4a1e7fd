//! The media made by scripts/fixtures with the real ffmpeg CLI, generated on first use.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The fixtures folder, made (once per process, and only if stale) by scripts/fixtures.
pub fn dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::var_os("LAZYCACHE_FIXTURES_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let cache = std::env::var_os("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| {
                        PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache")
                    });
                cache.join("lazycache-fixtures")
            });
        let script = super::procs::repo_root().join("scripts/fixtures");
        let status = Command::new(&script)
            .arg(&dir)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            status.success(),
            "scripts/fixtures failed ({status}); is the ffmpeg CLI installed?"
        );
        dir
    })
    .clone()
}

/// The real-size movies (≥ 300 MiB each) and their segments, in `dir()/large`, made (once per
/// process, and only if stale) by `scripts/fixtures --large`.
pub fn large_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = dir();
        let script = super::procs::repo_root().join("scripts/fixtures");
        let status = Command::new(&script)
            .arg("--large")
            .arg(&dir)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            status.success(),
            "scripts/fixtures --large failed ({status}); is the ffmpeg CLI installed?"
        );
        dir.join("large")
    })
    .clone()
}

/// Path of one real-size fixture (or segment) by name, e.g. `large_h264.mkv`.
pub fn large_path(name: &str) -> PathBuf {
    let path = large_dir().join(name);
    assert!(path.is_file(), "fixture {} is missing", path.display());
    path
}

/// ffprobe's view of a real-size fixture's video stream, with `-count_packets`, made with it:
/// `(stream, format)` JSON objects.
pub fn large_probe(name: &str) -> (serde_json::Value, serde_json::Value) {
    let path = large_path(&format!("{name}.probe.json"));
    let text = std::fs::read_to_string(&path).expect("read the probe");
    let mut json: serde_json::Value = serde_json::from_str(&text).expect("probe JSON");
    let stream = json["streams"][0].take();
    let format = json["format"].take();
    (stream, format)
}

/// Path of one fixture file by name, e.g. `prores_hq_1080p.mov`.
pub fn path(name: &str) -> PathBuf {
    let path = dir().join(name);
    assert!(path.is_file(), "fixture {} is missing", path.display());
    path
}

/// The playable movies, each one codec/container case the decoder must get exactly right.
pub const MOVIES: &[&str] = &[
    "prores_hq_1080p.mov",
    "h264_longgop_faststart.mp4",
    "h264_longgop_moov_end.mp4",
    "h264_open_gop.mkv",
    "hevc.mkv",
    "vp9.webm",
    "mjpeg.avi",
    "odd_size_333x197.mp4",
];
