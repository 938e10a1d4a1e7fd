//! `lazycache serve` end to end: the real binary against real nginx and fake-gcs-server —
//! every route, status and header of SPEC §3, API keys, the Python client, the cache tiers
//! across restarts and instances, single flight under 200 clients, and SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::TcpListener;
use std::time::Duration;

use lazycache_testkit::fake_gcs::FakeGcs;
use lazycache_testkit::nginx::Nginx;
use lazycache_testkit::procs::require_tool;
use support::{
    Server, client, fixtures_dir, header, local_mirror, metric, nginx_mirror, nginx_prefix,
    raw_get_status, runtime,
};

const PRORES: &str = "prores_hq_1080p.mov";
const H264: &str = "h264_longgop_faststart.mp4";

#[test]
fn every_route_answers_with_its_status_and_headers() {
    let nginx = Nginx::serve(&fixtures_dir());
    let local = local_mirror();
    let server = Server::start(
        &[
            "--mirror",
            &nginx_mirror(&nginx),
            "--mirror",
            &local,
            "--cache-dir",
            "",
        ],
        &[],
    );
    let http = nginx_prefix(&nginx);
    let rt = runtime();
    let c = client();
    rt.block_on(async {
        let get = |path: String| {
            let c = c.clone();
            let url = server.url(&path);
            async move { c.get(url).send().await.unwrap() }
        };
        let bytes_of = |path: String| {
            let response = get(path);
            async move { response.await.bytes().await.unwrap() }
        };
        let json_of = |path: String| {
            let body = bytes_of(path);
            async move { serde_json::from_slice::<serde_json::Value>(&body.await).unwrap() }
        };

        // Root map and health.
        let root: serde_json::Value = json_of("/".into()).await;
        assert_eq!(root[nginx_mirror(&nginx)]["APIPath"]["V1"], http.as_str());
        assert_eq!(
            root[format!("file://{}/", fixtures_dir().display())]["APIPath"]["V1"],
            "/v1/local/"
        );
        for path in ["/_ah/health", "/healthz", "/readyz"] {
            let response = get(path.into()).await;
            assert_eq!(response.status(), 200, "{path}");
            assert_eq!(response.text().await.unwrap(), "ok");
        }

        // Listings, from nginx's autoindex and from a folder.
        for prefix in [http.clone(), "/v1/local/".to_owned()] {
            let response = get(prefix.clone()).await;
            assert_eq!(response.status(), 200);
            assert_eq!(header(&response, "access-control-allow-origin"), "*");
            let listing: serde_json::Value = response
                .bytes()
                .await
                .map(|b| serde_json::from_slice(&b).unwrap())
                .unwrap();
            assert_eq!(listing["Path"], "/");
            let files = listing["Files"].as_array().unwrap();
            assert!(files.iter().any(|f| f == PRORES), "{listing}");
            assert!(listing["Directories"].is_array());
        }

        // Metadata.
        let response = get(format!("{http}{PRORES}")).await;
        assert_eq!(response.status(), 200);
        assert!(!header(&response, "etag").is_empty());
        let metadata: serde_json::Value = response
            .bytes()
            .await
            .map(|b| serde_json::from_slice(&b).unwrap())
            .unwrap();
        assert_eq!(metadata["URL"], format!("/{PRORES}"));
        assert_eq!(metadata["NumFrames"], 75);
        assert_eq!(
            (metadata["Width"].clone(), metadata["Height"].clone()),
            (1920.into(), 1080.into())
        );
        assert_eq!(metadata["Codec"], "prores");
        for key in ["Duration", "FileSize", "FrameRate"] {
            assert!(metadata[key].is_number(), "{key}");
        }

        // Frames in every format, by number and by time.
        for (suffix, content_type, magic) in [
            ("", "image/png", &b"\x89PNG"[..]),
            (".png", "image/png", b"\x89PNG"),
            (".jpg", "image/jpeg", b"\xff\xd8\xff"),
            (".jpeg", "image/jpeg", b"\xff\xd8\xff"),
            (".bmp", "image/bmp", b"BM"),
            (".webp", "image/webp", b"RIFF"),
        ] {
            for route in [format!("frame/7{suffix}"), format!("time/0.2{suffix}")] {
                let response = get(format!("{http}{H264}/{route}?width=64")).await;
                assert_eq!(response.status(), 200, "{route}");
                assert_eq!(header(&response, "content-type"), content_type);
                assert_eq!(header(&response, "cache-control"), "public, max-age=86400");
                let length: usize = header(&response, "content-length").parse().unwrap();
                let body = response.bytes().await.unwrap();
                assert_eq!(body.len(), length);
                assert!(body.starts_with(magic), "{route}");
            }
        }

        // Sizes from the query or the headers, fit, crop, quality.
        let size_of = |bytes: &[u8]| {
            let image = image::load_from_memory(bytes).unwrap();
            (image.width(), image.height())
        };
        let frame = format!("{http}{PRORES}/frame/3.png");
        let body = bytes_of(format!("{frame}?width=320&height=100&fit=contain")).await;
        assert_eq!(size_of(&body), (320, 100));
        let body = bytes_of(format!("{frame}?width=320")).await;
        assert_eq!(size_of(&body), (320, 180));
        let by_headers = c
            .get(server.url(&frame))
            .header("X-lazycache-output-width", "200")
            .header("X-lazycache-output-height", "50")
            .send()
            .await
            .unwrap();
        assert_eq!(size_of(&by_headers.bytes().await.unwrap()), (200, 50));
        let body = bytes_of(format!("{frame}?crop=0,0,100,80")).await;
        assert_eq!(size_of(&body), (100, 80));
        let low = bytes_of(format!("{http}{PRORES}/frame/3.jpg?quality=5")).await;
        let high = bytes_of(format!("{http}{PRORES}/frame/3.jpg?quality=95")).await;
        assert!(low.len() < high.len());

        // Server timing and go-lazycache's timing headers; the tier header.
        let response = get(format!("{http}{PRORES}/frame/11.jpg")).await;
        assert_eq!(header(&response, "x-lazycache-cache"), "miss");
        let timing = header(&response, "server-timing");
        for part in ["metadata;dur=", "fetch;dur=", "decode;dur=", "encode;dur="] {
            assert!(timing.contains(part), "{timing}");
        }
        for name in ["handler", "metadata", "extraction", "encode"] {
            let value = header(&response, &format!("x-lazycache-timing-{name}-ns"));
            assert!(value.parse::<u64>().is_ok(), "{name}: {value:?}");
        }
        let etag = header(&response, "etag");
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
        let again = get(format!("{http}{PRORES}/frame/11.jpg")).await;
        assert_eq!(header(&again, "x-lazycache-cache"), "memory");
        assert_eq!(header(&again, "etag"), etag);

        // ETag and 304; the tag changes with the parameters.
        let revalidated = c
            .get(server.url(&format!("{http}{PRORES}/frame/11.jpg")))
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(revalidated.status(), 304);
        let other = get(format!("{http}{PRORES}/frame/11.jpg?width=100")).await;
        assert_ne!(header(&other, "etag"), etag);

        // HEAD on every kind of route: same status and headers, no body.
        for path in [
            "/".to_owned(),
            "/healthz".to_owned(),
            "/metrics".to_owned(),
            http.clone(),
            format!("{http}{PRORES}"),
            format!("{http}{PRORES}/frame/11.jpg"),
        ] {
            let head = c.head(server.url(&path)).send().await.unwrap();
            assert_eq!(head.status(), 200, "HEAD {path}");
            if path.ends_with(".jpg") {
                assert_eq!(header(&head, "content-type"), "image/jpeg");
                assert_eq!(header(&head, "etag"), etag);
                let length: usize = header(&head, "content-length").parse().unwrap();
                assert!(length > 1000);
            }
            assert!(head.bytes().await.unwrap().is_empty());
        }

        // Other files: a redirect to the origin for http mirrors, bytes with Range otherwise.
        std::fs::write(fixtures_dir().join("notes.txt"), b"0123456789abcdef").unwrap();
        let response = get(format!("{http}notes.txt")).await;
        assert_eq!(response.status(), 302);
        assert_eq!(
            header(&response, "location"),
            format!("{}/notes.txt", nginx.url)
        );
        let response = get("/v1/local/notes.txt".into()).await;
        assert_eq!(response.status(), 200);
        let etag = header(&response, "etag");
        assert_eq!(response.text().await.unwrap(), "0123456789abcdef");
        let ranged = |range: &'static str, if_range: Option<&str>| {
            let mut request = c
                .get(server.url("/v1/local/notes.txt"))
                .header("Range", range);
            if let Some(tag) = if_range {
                request = request.header("If-Range", tag);
            }
            async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let content_range = header(&response, "content-range");
                (status, content_range, response.text().await.unwrap())
            }
        };
        let (status, content_range, body) = ranged("bytes=4-7", None).await;
        assert_eq!(
            (status, content_range.as_str(), body.as_str()),
            (206, "bytes 4-7/16", "4567")
        );
        let (status, _, body) = ranged("bytes=-3", Some(&etag)).await;
        assert_eq!(
            (status, body.as_str()),
            (206, "def"),
            "If-Range naming this version"
        );
        let (status, _, body) = ranged("bytes=-3", Some("\"older\"")).await;
        assert_eq!(
            (status, body.as_str()),
            (200, "0123456789abcdef"),
            "If-Range of another version"
        );
        let (status, _, body) = ranged("bytes=0-1,4-5", None).await;
        assert_eq!(
            (status, body.as_str()),
            (200, "0123456789abcdef"),
            "several ranges: all of it"
        );
        let (status, content_range, _) = ranged("bytes=99-", None).await;
        assert_eq!((status, content_range.as_str()), (416, "bytes */16"));

        // Sprites are served (tests/sprite.rs checks their tiles and maps).
        let response = get(format!("{http}{PRORES}/sprite.jpg?count=4")).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "image/jpeg"
        );

        // Errors: JSON {URL, Error} with the status that says whose fault it is.
        let cases = [
            (
                format!("{http}{PRORES}/frame/0"),
                400,
                Some("frames count from 1"),
            ),
            (
                format!("{http}{PRORES}/frame/76"),
                400,
                Some("past the last frame"),
            ),
            (format!("{http}{PRORES}/frame/x.png"), 400, None),
            (format!("{http}{PRORES}/frame/3.gif"), 400, Some(".gif")),
            (format!("{http}{PRORES}/time/99.png"), 400, None),
            (format!("{http}{PRORES}/frame/3.png?width=0"), 400, None),
            (format!("{http}{PRORES}/frame/3.png?width=9000"), 400, None),
            (
                format!("{http}{PRORES}/frame/3.png?width=8000&height=8000"),
                400,
                None,
            ),
            (format!("{http}{PRORES}/frame/3.jpg?quality=101"), 400, None),
            (
                format!("{http}{PRORES}/frame/3.png?fit=squash&width=10&height=10"),
                400,
                None,
            ),
            (format!("{http}{PRORES}/frame/3.png?crop=1,2"), 400, None),
            (
                format!("{http}{PRORES}/frame/3.rgba"),
                501,
                Some("--allow-raw-output"),
            ),
            (format!("{http}{PRORES}/frame/3.raw"), 501, None),
            (format!("{http}{PRORES}/frame/3.npy"), 501, None),
            ("/v1/nowhere/a.mov".to_owned(), 404, None),
            (format!("{http}missing.mov"), 404, None),
            (format!("{http}missing.mov/frame/1.jpg"), 404, None),
            ("/v1/local/missing/".to_owned(), 404, None),
            (format!("{http}bad_text.mov"), 415, None),
            (format!("{http}bad_audio_only.mp4/frame/1.png"), 415, None),
            ("/no/such/route".to_owned(), 404, None),
        ];
        for (path, status, words) in cases {
            let response = get(path.clone()).await;
            assert_eq!(response.status(), status, "{path}");
            let error: serde_json::Value = response
                .bytes()
                .await
                .map(|b| serde_json::from_slice(&b).unwrap())
                .unwrap();
            assert_eq!(error["URL"], path.split('?').next().unwrap(), "{path}");
            let message = error["Error"].as_str().unwrap();
            assert!(!message.is_empty());
            if let Some(words) = words {
                assert!(message.contains(words), "{path}: {message}");
            }
        }
        let post = c.post(server.url("/healthz")).send().await.unwrap();
        assert_eq!(post.status(), 405);

        // /metrics and /info.
        let text = get("/metrics".into()).await.text().await.unwrap();
        for name in [
            "lazycache_cache_hits_total{tier=\"memory\"}",
            "lazycache_cache_misses_total{tier=\"disk\"}",
            "lazycache_decode_seconds_bucket",
            "lazycache_encode_seconds_count",
            "lazycache_decodes_in_flight 0",
            "lazycache_origin_range_bytes",
            "lazycache_origin_range_requests",
        ] {
            assert!(text.contains(name), "{name} missing from /metrics");
        }
        assert!(metric(&text, "lazycache_decode_seconds_count") >= 10.0);
        let info: serde_json::Value = json_of("/info".into()).await;
        for name in [
            "lazycache",
            "lazycache-http",
            "libavcodec",
            "libavformat",
            "libswscale",
        ] {
            assert!(info[name].is_string(), "{name}: {info}");
        }
    });
    std::fs::remove_file(fixtures_dir().join("notes.txt")).ok();
    // Paths are taken verbatim: a literal `..` never leaves the mirror.
    for path in [
        "/v1/local/../../etc/passwd",
        "/v1/local/%2E%2E/secret.mov",
        "/v1/local/a/..%2F..%2Fx.mov",
    ] {
        assert_eq!(raw_get_status(server.addr, path), 404, "{path}");
    }
    let log = server.log();
    assert!(
        log.lines().any(|l| l.contains("lazycache::request")
            && l.contains("status=200")
            && l.contains("tier=\"memory\"")
            && l.contains("duration_ms=")
            && l.contains("decode;dur=")
            && l.contains("bytes=")),
        "no per-request log line: {log}"
    );
}

#[test]
fn origins_that_fail_or_stall_get_502_and_504() {
    // A port nothing listens on, and a listener that accepts and never answers.
    let dead = lazycache_testkit::procs::free_port();
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let server = Server::start(
        &[
            "--mirror",
            &format!("dead=http://127.0.0.1:{dead}/"),
            "--mirror",
            &format!("silent=http://127.0.0.1:{silent_port}/"),
            "--origin-timeout",
            "1s",
            "--cache-dir",
            "",
        ],
        &[],
    );
    let rt = runtime();
    rt.block_on(async {
        let c = client();
        let dead = c.get(server.url("/v1/dead/a.mov")).send().await.unwrap();
        assert_eq!(dead.status(), 502);
        let error: serde_json::Value = dead
            .bytes()
            .await
            .map(|b| serde_json::from_slice(&b).unwrap())
            .unwrap();
        assert_eq!(error["URL"], "/v1/dead/a.mov");
        let stalled = c.get(server.url("/v1/silent/a.mov")).send().await.unwrap();
        assert_eq!(stalled.status(), 504);
    });
    drop(silent);
}

#[test]
fn api_keys_guard_v1_only_and_public_mode_marks_answers() {
    let local = local_mirror();
    let server = Server::start(
        &[
            "--mirror",
            &local,
            "--cache-dir",
            "",
            "--api-key",
            "first-key",
            "--public",
        ],
        &[("LAZYCACHE_API_KEY", "ignored-because-the-flag-wins")],
    );
    let rt = runtime();
    rt.block_on(async {
        let c = client();
        let listing = server.url("/v1/local/");
        let refused = c.get(&listing).send().await.unwrap();
        assert_eq!(refused.status(), 401);
        assert_eq!(header(&refused, "x-lazycache-public"), "1");
        let wrong = c
            .get(&listing)
            .header("X-Api-Key", "first-kez")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        let by_header = c
            .get(&listing)
            .header("X-Api-Key", "first-key")
            .send()
            .await
            .unwrap();
        assert_eq!(by_header.status(), 200);
        assert_eq!(header(&by_header, "x-lazycache-public"), "1");
        // Browser scripts on other origins: the preflight needs no key, and they may read the
        // cache tier and timings.
        let preflight = c
            .request(reqwest::Method::OPTIONS, &listing)
            .header("Origin", "https://notebook.example")
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "x-api-key")
            .send()
            .await
            .unwrap();
        assert_eq!(preflight.status(), 204);
        assert_eq!(header(&preflight, "access-control-allow-origin"), "*");
        assert!(header(&preflight, "access-control-allow-methods").contains("GET"));
        assert!(header(&preflight, "access-control-allow-headers").contains("X-Api-Key"));
        let exposed = header(&by_header, "access-control-expose-headers");
        assert!(
            exposed.contains("X-Lazycache-Cache") && exposed.contains("Server-Timing"),
            "{exposed}"
        );
        let by_bearer = c
            .get(&listing)
            .bearer_auth("first-key")
            .send()
            .await
            .unwrap();
        assert_eq!(by_bearer.status(), 200);
        let env_key = c
            .get(&listing)
            .header("X-Api-Key", "ignored-because-the-flag-wins")
            .send()
            .await
            .unwrap();
        assert_eq!(env_key.status(), 401);
        for open in ["/", "/healthz", "/_ah/health", "/readyz"] {
            assert_eq!(
                c.get(server.url(open)).send().await.unwrap().status(),
                200,
                "{open}"
            );
        }
    });
    assert!(
        !server.log().contains("first-key"),
        "an API key reached the log"
    );
}

#[test]
fn bad_options_are_refused_in_one_line_naming_them() {
    let run = |args: &[&str], envs: &[(&str, &str)]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_lazycache"))
            .args(args)
            .envs(envs.iter().copied())
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?} was accepted");
        String::from_utf8(output.stderr).unwrap()
    };
    let config = ["--config", "/dev/null"];
    let stderr = run(&[&["serve", "--port", "http"][..], &config].concat(), &[]);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--port"), "{stderr}");
    let stderr = run(&config, &[("LAZYCACHE_MEMORY_CACHE_SIZE", "lots")]);
    assert!(
        stderr.contains("LAZYCACHE_MEMORY_CACHE_SIZE") && stderr.contains("lots"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    let stderr = run(&[&["--image-store", "cloud"][..], &config].concat(), &[]);
    assert!(stderr.contains("--image-store"), "{stderr}");
    let stderr = run(&[&["--mirror", "ftp://host/x/"][..], &config].concat(), &[]);
    assert!(stderr.contains("--mirror"), "{stderr}");
    let stderr = run(&[&["--shutdown-delay", "soon"][..], &config].concat(), &[]);
    assert!(
        stderr.contains("--shutdown-delay") && stderr.contains("soon"),
        "{stderr}"
    );
}

#[test]
fn the_python_client_reads_metadata_frames_and_listings() {
    let python = require_tool(
        "python",
        "scripts/test's venv provides python with pycamhd-lazycache",
    );
    let nginx = Nginx::serve(&fixtures_dir());
    let server = Server::start(&["--mirror", &nginx_mirror(&nginx), "--cache-dir", ""], &[]);
    let base = server.url(nginx_prefix(&nginx).trim_end_matches('/'));
    let script = format!(
        r#"
import numpy as np
import pycamhd.lazycache as pycamhd
lc = pycamhd.lazycache("{base}")
meta = lc.get_metadata("/{PRORES}")
assert meta["NumFrames"] == 75 and meta["Width"] == 1920, meta
image = lc.get_frame("/{PRORES}", 10, format="np")
assert isinstance(image, np.ndarray) and image.shape == (1080, 1920, 3), image.shape
png = lc.get_frame("/{PRORES}", 10, format="png")
assert png.format == "PNG" and png.size == (1920, 1080), (png.format, png.size)
jpg = lc.get_frame("/{PRORES}", 10, format="jpg")
assert jpg.format == "JPEG" and jpg.size == (1920, 1080)
listing = lc.get_dir("/")
assert "{PRORES}" in listing["Files"], listing
assert pycamhd.get_frame("{base}/missing.mov", 1) is None
print("ok")
"#
    );
    let output = std::process::Command::new(python)
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "ok");
}

#[test]
fn frames_come_from_memory_then_disk_then_the_shared_object_store() {
    let nginx = Nginx::serve(&fixtures_dir());
    let gcs = FakeGcs::start();
    gcs.create_bucket("frames");
    let disk = tempfile::tempdir().unwrap();
    let fresh_disk = tempfile::tempdir().unwrap();
    let mirror = nginx_mirror(&nginx);
    let frame = format!("{}{PRORES}/frame/5.jpg", nginx_prefix(&nginx));
    let movie_uri = format!("/{PRORES}");
    let env = [("STORAGE_EMULATOR_HOST", gcs.url.as_str())];
    let start = |cache_dir: &std::path::Path| {
        Server::start(
            &[
                "--mirror",
                &mirror,
                "--cache-dir",
                cache_dir.to_str().unwrap(),
                "--object-store",
                "gs://frames/lazycache",
            ],
            &env,
        )
    };
    let rt = runtime();
    let tier_of = |server: &Server, path: &str| {
        let url = server.url(path);
        rt.block_on(async {
            let response = client().get(url).send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            let tier = header(&response, "x-lazycache-cache");
            (tier, response.bytes().await.unwrap())
        })
    };

    let first = start(disk.path());
    let (tier, bytes) = tier_of(&first, &frame);
    assert_eq!(tier, "miss");
    let (tier, again) = tier_of(&first, &frame);
    assert_eq!((tier.as_str(), &again), ("memory", &bytes));
    // SIGTERM drains and flushes the write-behind to disk and the bucket, then exits 0.
    assert!(first.terminate().success());

    let restarted = start(disk.path());
    let (tier, from_disk) = tier_of(&restarted, &frame);
    assert_eq!((tier.as_str(), &from_disk), ("disk", &bytes));
    assert!(restarted.terminate().success());

    nginx.clear_access_log();
    let fresh = start(fresh_disk.path());
    // The index first (a frame answer reads it too, for its time headers).
    let (tier, _) = tier_of(&fresh, &format!("{}{PRORES}", nginx_prefix(&nginx)));
    assert_eq!(tier, "object-store", "the index comes from the shared tier");
    let (tier, from_store) = tier_of(&fresh, &frame);
    assert_eq!((tier.as_str(), &from_store), ("object-store", &bytes));
    assert_eq!(
        nginx.gets_of(&movie_uri),
        (0, 0),
        "no byte of the movie was read"
    );

    // A frame no instance made: only its sample is read, never the index.
    let (tier, _) = tier_of(
        &fresh,
        &format!("{}{PRORES}/frame/40.jpg", nginx_prefix(&nginx)),
    );
    assert_eq!(tier, "miss");
    let (_, read) = nginx.gets_of(&movie_uri);
    let size = std::fs::metadata(fixtures_dir().join(PRORES))
        .unwrap()
        .len();
    assert!(
        read > 0 && read < size / 20,
        "{read} bytes of {size} for one frame"
    );
    assert!(fresh.terminate().success());
}

#[test]
fn two_hundred_clients_of_one_cold_frame_share_one_decode_and_one_origin_read() {
    let nginx = Nginx::serve(&fixtures_dir());
    let server = Server::start(&["--mirror", &nginx_mirror(&nginx), "--cache-dir", ""], &[]);
    let prefix = nginx_prefix(&nginx);
    let rt = runtime();
    rt.block_on(async {
        let c = client();
        let metadata = c
            .get(server.url(&format!("{prefix}{PRORES}")))
            .send()
            .await
            .unwrap();
        assert_eq!(metadata.status(), 200);
        nginx.clear_access_log();
        let before = c
            .get(server.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let url = server.url(&format!("{prefix}{PRORES}/frame/33.jpg"));
        let requests = (0..200).map(|_| {
            let c = c.clone();
            let url = url.clone();
            async move {
                let response = c.get(url).send().await.unwrap();
                assert_eq!(response.status(), 200);
                response.bytes().await.unwrap()
            }
        });
        let bodies =
            tokio::time::timeout(Duration::from_secs(90), futures::future::join_all(requests))
                .await
                .expect("200 clients answered in time");
        assert!(bodies.iter().all(|b| *b == bodies[0] && !b.is_empty()));
        let after = c
            .get(server.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let decodes = metric(&after, "lazycache_decode_seconds_count")
            - metric(&before, "lazycache_decode_seconds_count");
        assert_eq!(decodes, 1.0, "one decode for 200 clients");
    });
    let (requests, _) = nginx.gets_of(&format!("/{PRORES}"));
    assert_eq!(
        requests,
        1,
        "one origin read for the frame: {:?}",
        nginx.access_log()
    );
}
