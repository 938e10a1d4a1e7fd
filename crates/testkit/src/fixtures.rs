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
