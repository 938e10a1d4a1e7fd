//! Hostile movies against the real `lazycache serve` and a real nginx origin (issue 10, items
//! 3 and 4): index memory bombs — a moov of a few hundred bytes declaring 10 or 60 million
//! samples, and links to them — asked for all at once are each a 415 with a JSON error within
//! 2 s, and the server's peak RSS rises by at most 64 MiB; a movie whose edit list shows nothing
//! is a 415 ("no frames are shown"), never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use lazycache_testkit::hostile::{self, BOMB_SAMPLES};
use lazycache_testkit::nginx::Nginx;
use support::{Server, client, nginx_mirror, nginx_prefix, runtime};

/// What the bombs may add to the server's peak RSS, all four together.
const RSS_BUDGET: u64 = 64 << 20;
/// How long each answer may take.
const TIME_BUDGET: Duration = Duration::from_secs(2);

/// The server's peak resident memory so far.
fn peak_rss(server: &Server) -> u64 {
    hostile::peak_rss_bytes(Some(server.pid()))
}

#[test]
fn index_bombs_are_415_promptly_and_cost_no_memory() {
    let origin = tempfile::tempdir().unwrap();
    let dir = origin.path();
    // Four movies: the 10 and 60 million sample bombs, and two more links to the first.
    let [ten, sixty] = BOMB_SAMPLES;
    hostile::index_bomb(dir, "bomb_10m.mov", ten);
    hostile::index_bomb(dir, "bomb_60m.mp4", sixty);
    std::fs::hard_link(dir.join("bomb_10m.mov"), dir.join("bomb_10m_link.mov")).unwrap();
    std::fs::hard_link(dir.join("bomb_10m.mov"), dir.join("bomb_10m_link.m4v")).unwrap();
    let names = [
        "bomb_10m.mov",
        "bomb_60m.mp4",
        "bomb_10m_link.mov",
        "bomb_10m_link.m4v",
    ];
    let nginx = Nginx::serve(dir);
    let server = Server::start(&["--mirror", &nginx_mirror(&nginx), "--cache-dir", ""], &[]);
    let prefix = nginx_prefix(&nginx);
    let rt = runtime();
    let c = client();
    // Warm up: the server has answered a request and listed the origin.
    let listing = rt.block_on(async { c.get(server.url(&prefix)).send().await.unwrap() });
    assert_eq!(listing.status(), 200);
    let before = peak_rss(&server);

    let paths: Vec<String> = names
        .iter()
        .flat_map(|name| {
            [
                format!("{prefix}{name}"),
                format!("{prefix}{name}/frame/1.jpg"),
            ]
        })
        .collect();
    let answers = rt.block_on(futures::future::join_all(paths.iter().map(|path| {
        let c = c.clone();
        let url = server.url(path);
        async move {
            let started = Instant::now();
            let response = c.get(url).send().await.unwrap();
            let status = response.status().as_u16();
            let content_type = support::header(&response, "content-type");
            let body = response.bytes().await.unwrap();
            (status, content_type, body, started.elapsed())
        }
    })));
    let after = peak_rss(&server);
    eprintln!(
        "server peak RSS {} MiB before, {} MiB after ({} KiB more)",
        before >> 20,
        after >> 20,
        after.saturating_sub(before) >> 10
    );
    for (path, (status, content_type, body, elapsed)) in paths.iter().zip(&answers) {
        let text = String::from_utf8_lossy(body);
        eprintln!("{path}: {status} in {elapsed:?}: {text}");
        assert_eq!(*status, 415, "{path}: {text}\n{}", server.log());
        assert!(
            content_type.starts_with("application/json"),
            "{path}: {content_type}"
        );
        let json: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert!(
            json["Error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}: {json}"
        );
        assert!(*elapsed < TIME_BUDGET, "{path}: {elapsed:?}");
    }
    assert!(
        after.saturating_sub(before) <= RSS_BUDGET,
        "peak RSS rose from {before} to {after} bytes"
    );
}

#[test]
fn a_movie_that_shows_nothing_is_415_not_a_panic() {
    let origin = tempfile::tempdir().unwrap();
    hostile::nothing_shown(origin.path(), "hidden.mp4");
    let nginx = Nginx::serve(origin.path());
    let server = Server::start(&["--mirror", &nginx_mirror(&nginx), "--cache-dir", ""], &[]);
    let prefix = nginx_prefix(&nginx);
    let rt = runtime();
    let c = client();
    for route in ["", "/time/0", "/frame/1"] {
        let path = format!("{prefix}hidden.mp4{route}");
        let response = rt.block_on(async { c.get(server.url(&path)).send().await.unwrap() });
        let status = response.status().as_u16();
        let text = rt.block_on(response.text()).unwrap();
        assert_eq!(status, 415, "{path}: {text}");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let error = json["Error"].as_str().unwrap_or_default();
        assert!(error.contains("no frames are shown"), "{path}: {text}");
    }
}

#[test]
fn a_movie_with_a_sample_over_max_sample_size_is_415_before_any_frame_is_read() {
    let nginx = Nginx::serve(&lazycache_testkit::fixtures::dir());
    let server = Server::start(
        &[
            "--mirror",
            &nginx_mirror(&nginx),
            "--cache-dir",
            "",
            "--max-sample-size",
            "100KiB",
        ],
        &[],
    );
    let prefix = nginx_prefix(&nginx);
    let rt = runtime();
    let c = client();
    // ProRes HQ 1080p frames are about 330 kB each.
    for route in ["", "/frame/5.jpg"] {
        let path = format!("{prefix}prores_hq_1080p.mov{route}");
        let response = rt.block_on(async { c.get(server.url(&path)).send().await.unwrap() });
        let status = response.status().as_u16();
        let text = rt.block_on(response.text()).unwrap();
        assert_eq!(status, 415, "{path}: {text}");
        assert!(text.contains("at most 102400 allowed"), "{path}: {text}");
    }
    let (_, read) = nginx.gets_of("/prores_hq_1080p.mov");
    assert!(
        read < 200_000,
        "the index alone was read, not frames: {read} bytes"
    );
}
