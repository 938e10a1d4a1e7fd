//! The service's life and load limits, end to end with the real binary: "starting" before the
//! caches are open, a full decode queue, and the SIGTERM drain. Slow dependencies are real
//! processes frozen with SIGSTOP (nginx, fake-gcs-server), so every wait is on an event, not
//! on a guess of how long something takes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use lazycache_testkit::fake_gcs::FakeGcs;
use lazycache_testkit::nginx::Nginx;
use support::{
    Server, client, fixtures_dir, header, local_mirror, metric, nginx_mirror, nginx_prefix,
    raw_get_status, runtime,
};

const PRORES: &str = "prores_hq_1080p.mov";

fn get_metrics(rt: &tokio::runtime::Runtime, server: &Server) -> String {
    rt.block_on(async {
        client()
            .get(server.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    })
}

/// Waits until the gauge `name` reads `value`, or panics after 20 s.
fn wait_for_gauge(rt: &tokio::runtime::Runtime, server: &Server, name: &str, value: f64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = get_metrics(rt, server);
        if metric(&text, name) == value {
            return;
        }
        assert!(Instant::now() < deadline, "{name} never reached {value}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A request running in the background; its status, `Retry-After` and body when done.
type Pending = tokio::task::JoinHandle<(u16, String, bytes::Bytes)>;

fn request_in_background(rt: &tokio::runtime::Runtime, url: String) -> Pending {
    rt.spawn(async move {
        let response = client().get(url).send().await.unwrap();
        let status = response.status().as_u16();
        let retry_after = header(&response, "retry-after");
        (status, retry_after, response.bytes().await.unwrap())
    })
}

/// GETs `url` and checks the answer is a 503 with `Retry-After` whose JSON error mentions
/// `words`; returns that error.
fn expect_503(rt: &tokio::runtime::Runtime, url: &str, words: &str) -> serde_json::Value {
    rt.block_on(async {
        let response = client().get(url).send().await.unwrap();
        assert_eq!(response.status(), 503, "{url}");
        assert!(header(&response, "retry-after").parse::<u32>().unwrap() > 0);
        assert_eq!(header(&response, "access-control-allow-origin"), "*");
        let error: serde_json::Value =
            serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert!(
            error["Error"].as_str().unwrap().contains(words),
            "{url}: {error}"
        );
        error
    })
}

fn is_jpeg(body: &[u8]) -> bool {
    body.starts_with(&[0xff, 0xd8]) && body.ends_with(&[0xff, 0xd9])
}

#[test]
fn a_request_during_start_up_waits_for_the_caches_while_readyz_says_starting() {
    // The object-store tier is probed at start-up; a frozen store holds the start there.
    let gcs = FakeGcs::start();
    gcs.create_bucket("frames");
    gcs.child.pause();
    let local = local_mirror();
    let server = Server::spawn(
        &[
            "--mirror",
            &local,
            "--cache-dir",
            "",
            "--object-store",
            "gs://frames/lazycache",
        ],
        &[("STORAGE_EMULATOR_HOST", gcs.url.as_str())],
    );
    assert_eq!(raw_get_status(server.addr, "/readyz"), 503);
    assert_eq!(raw_get_status(server.addr, "/healthz"), 200);
    assert_eq!(raw_get_status(server.addr, "/_ah/health"), 200);
    assert_eq!(
        raw_get_status(server.addr, "/"),
        200,
        "the root map needs no cache"
    );
    // A client such as pycamhd-lazycache, which does not retry a 503, asks now: it waits (at
    // most 10 s) instead of failing, while /readyz keeps saying "starting".
    let url = server.url(&format!("/v1/local/{PRORES}/frame/3.jpg"));
    let waiting = std::thread::spawn(move || {
        runtime().block_on(async {
            let response = client().get(url).send().await.unwrap();
            (response.status().as_u16(), response.bytes().await.unwrap())
        })
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!waiting.is_finished(), "the request waits for the start");
    assert_eq!(
        raw_get_status(server.addr, "/readyz"),
        503,
        "still starting while the store is frozen"
    );
    gcs.child.resume();
    let (status, body) = waiting.join().unwrap();
    assert_eq!(status, 200);
    assert!(is_jpeg(&body));
    server.wait_ready(Duration::from_secs(20));
    assert!(server.terminate().success());
}

#[test]
fn sigterm_while_starting_exits_0() {
    let gcs = FakeGcs::start();
    gcs.child.pause();
    let server = Server::spawn(
        &["--cache-dir", "", "--object-store", "gs://frames/lazycache"],
        &[("STORAGE_EMULATOR_HOST", gcs.url.as_str())],
    );
    assert_eq!(raw_get_status(server.addr, "/readyz"), 503);
    let status = server.terminate();
    assert!(status.success(), "{status}");
}

#[test]
fn a_full_decode_queue_answers_503_with_retry_after() {
    let nginx = Nginx::serve(&fixtures_dir());
    let server = Server::start(
        &[
            "--mirror",
            &nginx_mirror(&nginx),
            "--cache-dir",
            "",
            "--max-concurrent-decodes",
            "1",
            "--decode-queue-timeout",
            "200ms",
            "--origin-timeout",
            "30s",
        ],
        &[],
    );
    let prefix = nginx_prefix(&nginx);
    let rt = runtime();
    let frame = |n: u32| server.url(&format!("{prefix}{PRORES}/frame/{n}.jpg"));
    // The index first, so the frames below are decodes that read the origin.
    rt.block_on(async {
        let url = server.url(&format!("{prefix}{PRORES}"));
        assert_eq!(client().get(url).send().await.unwrap().status(), 200);
    });

    // The only decode slot is held by a frame whose bytes the frozen origin never sends.
    nginx.child.pause();
    let holder = request_in_background(&rt, frame(3));
    wait_for_gauge(&rt, &server, "lazycache_decodes_in_flight", 1.0);
    expect_503(&rt, &frame(4), "decode slots");
    let text = get_metrics(&rt, &server);
    assert_eq!(
        metric(&text, "lazycache_decode_queue_rejections_total"),
        1.0
    );

    nginx.child.resume();
    let (status, _, body) = rt.block_on(holder).unwrap();
    assert_eq!(status, 200);
    assert!(is_jpeg(&body));
    rt.block_on(async {
        let response = client().get(frame(4)).send().await.unwrap();
        assert_eq!(response.status(), 200, "the slot is free again");
    });
}

#[test]
fn a_request_past_its_time_limit_answers_503_while_its_decode_keeps_the_slot() {
    let nginx = Nginx::serve(&fixtures_dir());
    let server = Server::start(
        &[
            "--mirror",
            &nginx_mirror(&nginx),
            "--cache-dir",
            "",
            "--request-timeout",
            "1s",
            "--origin-timeout",
            "30s",
            "--max-concurrent-decodes",
            "1",
            "--decode-queue-timeout",
            "100ms",
        ],
        &[],
    );
    let prefix = nginx_prefix(&nginx);
    let frame = server.url(&format!("{prefix}{PRORES}/frame/12.png"));
    let rt = runtime();
    rt.block_on(async {
        let movie = server.url(&format!("{prefix}{PRORES}"));
        assert_eq!(client().get(movie).send().await.unwrap().status(), 200);
    });
    // The origin, frozen, answers only after the request's limit.
    nginx.child.pause();
    expect_503(&rt, &frame, "longer than 1s");
    // The decoding thread still waits on the origin and still holds its slot: another frame
    // cannot start (one slot), and the gauges say so.
    let text = get_metrics(&rt, &server);
    assert_eq!(metric(&text, "lazycache_decodes_in_flight"), 1.0);
    assert_eq!(metric(&text, "lazycache_decodes_waiting"), 0.0);
    // "decode slots": the slot is still held.
    expect_503(
        &rt,
        &server.url(&format!("{prefix}{PRORES}/frame/13.png")),
        "decode slots",
    );
    nginx.child.resume();
    wait_for_gauge(&rt, &server, "lazycache_decodes_in_flight", 0.0);
    rt.block_on(async {
        let response = client().get(&frame).send().await.unwrap();
        assert_eq!(response.status(), 200, "the failure was not cached");
        assert_eq!(header(&response, "x-lazycache-cache"), "miss");
    });
}

#[test]
fn sigterm_turns_unready_drains_running_decodes_refuses_queued_ones_flushes_and_exits_0() {
    let nginx = Nginx::serve(&fixtures_dir());
    let disk = tempfile::tempdir().unwrap();
    let args = [
        "--mirror",
        &nginx_mirror(&nginx),
        "--cache-dir",
        disk.path().to_str().unwrap(),
        "--origin-timeout",
        "30s",
        "--max-concurrent-decodes",
        "1",
        "--decode-queue-timeout",
        "30s",
    ];
    // Long: the second SIGTERM below ends it, so no step here races a clock.
    let server = Server::start(&[&args[..], &["--shutdown-delay", "60s"]].concat(), &[]);
    let prefix = nginx_prefix(&nginx);
    let movie = server.url(&format!("{prefix}{PRORES}"));
    let frame = |server: &Server, n: u32| server.url(&format!("{prefix}{PRORES}/frame/{n}.jpg"));
    let rt = runtime();
    let get = |url: String| {
        rt.block_on(async {
            let response = client().get(url).send().await.unwrap();
            let status = response.status().as_u16();
            let retry_after = header(&response, "retry-after");
            (status, retry_after, response.bytes().await.unwrap())
        })
    };
    assert_eq!(get(movie.clone()).0, 200);

    // One decode running (its origin frozen), one waiting for the only slot.
    nginx.child.pause();
    let running = request_in_background(&rt, frame(&server, 9));
    wait_for_gauge(&rt, &server, "lazycache_decodes_in_flight", 1.0);
    let queued = request_in_background(&rt, frame(&server, 10));
    wait_for_gauge(&rt, &server, "lazycache_decodes_waiting", 1.0);
    // The two, and the scrape that counts them.
    wait_for_gauge(&rt, &server, "lazycache_http_requests_in_flight", 3.0);

    server.send_sigterm();
    let deadline = Instant::now() + Duration::from_secs(10);
    while raw_get_status(server.addr, "/readyz") != 503 {
        assert!(
            Instant::now() < deadline,
            "/readyz stayed 200 after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let (_, retry_after, body) = get(server.url("/readyz"));
    assert_eq!(&body[..], b"shutting down");
    assert!(retry_after.parse::<u32>().unwrap() > 0);
    // Within --shutdown-delay, requests are still answered.
    assert_eq!(get(movie.clone()).0, 200);
    assert_eq!(get(server.url("/healthz")).0, 200);

    // The second signal ends the delay: the listener closes, the queued request is turned
    // away, the running one finishes.
    server.send_sigterm();
    let (status, _, body) = rt.block_on(queued).unwrap();
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        error["Error"].as_str().unwrap().contains("shutting down"),
        "{error}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(server.addr).is_ok() {
        assert!(Instant::now() < deadline, "the listener stayed open");
        std::thread::sleep(Duration::from_millis(10));
    }
    nginx.child.resume();
    let (status, _, drained) = rt.block_on(running).unwrap();
    assert_eq!(status, 200, "the running request finished");
    assert!(is_jpeg(&drained));
    let log = server.log();
    let exit = server.wait_exit();
    assert!(exit.success(), "{exit}: {log}");

    // The frame made during the drain was flushed to disk before the exit.
    let restarted = Server::start(&args, &[]);
    rt.block_on(async {
        let response = client().get(frame(&restarted, 9)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "x-lazycache-cache"), "disk");
        assert_eq!(response.bytes().await.unwrap(), drained);
    });
    drop(nginx);
    assert!(restarted.terminate().success());
}
