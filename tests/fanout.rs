//! `--origin-concurrency` end to end: a thousand concurrent cold requests for different frames
//! reach the origin (nginx) with at most N requests in flight at once, over a handful of pooled
//! connections, and every one is answered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;

use lazycache_testkit::nginx::{AccessLogEntry, Nginx};
use support::{Server, client, fixtures_dir, nginx_mirror, nginx_prefix, runtime};

const PRORES: &str = "prores_hq_1080p.mov";
const ORIGIN_CONCURRENCY: usize = 3;

#[test]
fn a_thousand_cold_frames_use_at_most_n_origin_connections() {
    // Throttled so that each origin request lasts long enough (tens of milliseconds) for the
    // overlap of requests to be read off nginx's millisecond timestamps.
    let nginx = Nginx::serve_throttled(&fixtures_dir(), 8 << 20);
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
    let peak = peak_in_flight(&reads);
    eprintln!(
        "{} origin requests, at most {peak} at once, over {} connections",
        reads.len(),
        connections.len()
    );
    assert!(!reads.is_empty());
    assert_eq!(
        peak, ORIGIN_CONCURRENCY,
        "requests in flight at the origin at once"
    );
    // The pool may open a connection while a finished one is on its way back to it (hyper
    // connects in the background when no idle connection is ready), so connections can
    // outnumber the requests in flight, but never one per request.
    assert!(
        connections.len() <= 2 * ORIGIN_CONCURRENCY,
        "{} connections to the origin",
        connections.len()
    );
    assert!(server.terminate().success());
}

/// The most requests nginx was serving at once. Timestamps have millisecond resolution, so
/// each request is trimmed by a millisecond at both ends: a request that started the
/// millisecond its predecessor on the same permit finished does not count as overlapping.
fn peak_in_flight(reads: &[&AccessLogEntry]) -> usize {
    let mut events: Vec<(u64, i32)> = reads
        .iter()
        .filter(|e| e.finished_ms > e.started_ms + 2)
        .flat_map(|e| [(e.started_ms + 1, 1), (e.finished_ms - 1, -1)])
        .collect();
    // At equal times, ends before starts.
    events.sort_unstable();
    let mut in_flight = 0i32;
    let mut peak = 0i32;
    for (_, change) in events {
        in_flight += change;
        peak = peak.max(in_flight);
    }
    usize::try_from(peak).unwrap_or(0)
}
