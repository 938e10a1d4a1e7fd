//! The first request of an unseen movie of CamHD's shape (issue 15): a 16 GB QuickTime file
//! with 25,200 ProRes frames and its moov at the end (`scripts/sparse_movie.py` writes it as a
//! sparse file around a real moov, every sample repeating the 12 frames of `tiny_prores.mov`),
//! served by nginx. The movie's index comes in at most two range requests (the head, then the
//! rest of the file after the mdat, moov and all), and its frames are the ffmpeg CLI's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;

use lazycache_testkit::nginx::Nginx;
use lazycache_testkit::{fixtures, oracle};
use support::{Server, client, nginx_mirror, nginx_prefix, runtime};

const FRAMES: u64 = 25_200;

fn make_camhd_shaped(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("camhd_shaped.mov");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/sparse_movie.py");
    let status = Command::new("python3")
        .arg(script)
        .arg(fixtures::path("tiny_prores.mov"))
        .arg(&out)
        .args([FRAMES.to_string(), "16e9".to_string()])
        .status()
        .expect("python3 runs scripts/sparse_movie.py");
    assert!(status.success());
    out
}

#[test]
fn an_unseen_16_gb_movie_is_indexed_in_two_range_requests() {
    let dir = tempfile::tempdir().unwrap();
    let movie = make_camhd_shaped(dir.path());
    assert!(std::fs::metadata(&movie).unwrap().len() > 15_000_000_000);
    let nginx = Nginx::serve(dir.path());
    let server = Server::start(&["--mirror", &nginx_mirror(&nginx), "--cache-dir", ""], &[]);
    let prefix = nginx_prefix(&nginx);
    let rt = runtime();
    let c = client();
    let get = |path: String| {
        rt.block_on(async {
            let response = c.get(server.url(&path)).send().await.unwrap();
            (response.status().as_u16(), response.bytes().await.unwrap())
        })
    };

    // Metadata first: only the index is read.
    nginx.clear_access_log();
    let (status, body) = get(format!("{prefix}camhd_shaped.mov"));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let metadata: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(metadata["NumFrames"], FRAMES, "{metadata}");
    let (requests, bytes) = nginx.gets_of("/camhd_shaped.mov");
    eprintln!("index: {requests} range requests, {bytes} bytes");
    assert!(requests <= 2, "the index took {requests} range requests");
    assert!(bytes < 1 << 20, "the index read {bytes} bytes");

    // Frames anywhere in the 16 GB are the CLI's frames of the segment the samples repeat.
    let segment = fixtures::path("tiny_prores.mov");
    for n in [1u64, 12_345, FRAMES] {
        let (status, body) = get(format!("{prefix}camhd_shaped.mov/frame/{n}.png"));
        assert_eq!(status, 200, "frame {n}");
        let ours = image::load_from_memory(&body).unwrap().to_rgb8();
        let expected = &oracle::frames(&segment, &[(n - 1) % 12 + 1])[0];
        assert_eq!(ours.as_raw(), &expected.data, "frame {n}");
    }

    // A movie nobody asked for yet, asked for a frame straight away: the same two index reads,
    // then the frame's own.
    std::os::unix::fs::symlink(&movie, dir.path().join("unseen.mov")).unwrap();
    nginx.clear_access_log();
    let (status, body) = get(format!("{prefix}unseen.mov/frame/1.jpg"));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (requests, _) = nginx.gets_of("/unseen.mov");
    assert!(
        requests <= 3,
        "index and frame took {requests} range requests"
    );
}
