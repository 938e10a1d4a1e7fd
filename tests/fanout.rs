//! `--origin-concurrency` end to end: a thousand concurrent cold requests for different frames
//! reach the origin (nginx) over at most N connections, and every one is answered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;

use lazycache_testkit::nginx::Nginx;
use support::{Server, client, fixtures_dir, nginx_mirror, nginx_prefix, runtime};

const PRORES: &str = "prores_hq_1080p.mov";
const ORIGIN_CONCURRENCY: usize = 3;

#[test]
fn a_thousand_cold_frames_use_at_most_n_origin_connections() {
    let nginx = Nginx::serve(&fixtures_dir());
    let server = Server::start(
        &[
            "--mirror",
            &nginx_mirror(&nginx),
            "--cache-dir",
            "",
            "--origin-concurrency",
            &ORIGIN_CONCURRENCY.to_string(),
            "--max-concurrent-decodes",
            "16",
            "--decode-queue-timeout",
            "120s",
        ],
        &[],
    );
    let prefix = nginx_prefix(&nginx);
    let c = client();
    // 75 frames × 14 sizes: every request is a different cold frame.
    let paths: Vec<String> = (0..1000)
        .map(|i| {
            let frame = i % 75 + 1;
            let width = 32 + (i / 75) * 8;
            format!("{prefix}{PRORES}/frame/{frame}.jpg?width={width}")
        })
        .collect();
    let statuses: Vec<u16> = runtime().block_on(async {
        let requests = paths.iter().map(|path| {
            let c = c.clone();
            let url = server.url(path);
            async move { c.get(url).send().await.unwrap().status().as_u16() }
        });
        futures::future::join_all(requests).await
    });
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    let log = nginx.access_log();
    let movie = format!("/{PRORES}");
    let reads: Vec<_> = log.iter().filter(|e| e.uri == movie).collect();
    let connections: HashSet<u64> = reads.iter().map(|e| e.connection).collect();
    eprintln!(
        "{} origin requests over {} connections",
        reads.len(),
        connections.len()
    );
    assert!(!reads.is_empty());
    assert!(
        connections.len() <= ORIGIN_CONCURRENCY,
        "{} connections to the origin",
        connections.len()
    );
    assert!(server.terminate().success());
}
