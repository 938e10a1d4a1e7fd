//! `s3://` for real: the `lazycache` binary with an `s3://` mirror and an `s3://` object-store
//! tier on moto's S3 server (started here, as fake-gcs-server is for `gs://`), through
//! object_store's S3 client configured by the usual `AWS_*` variables.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use lazycache_testkit::fixtures;
use lazycache_testkit::s3::S3;
use support::{Server, client, header, local_mirror, runtime};

const PRORES: &str = "prores_hq_1080p.mov";
const TINY: &str = "tiny_prores.mov";
/// A name that needs escaping in a URL path, with a `+` (which form decoding would make a space).
const ODD: &str = "a b+c & d.mov";

/// A moto server with bucket `movies` holding, under `prores/`, the ProRes fixture, a
/// subfolder, and hidden objects that must never be listed or served.
fn movies_bucket() -> S3 {
    let s3 = S3::start();
    s3.create_bucket("movies");
    s3.put_file(
        "movies",
        &format!("prores/{PRORES}"),
        &fixtures::path(PRORES),
    );
    s3.put_file(
        "movies",
        &format!("prores/sub/{TINY}"),
        &fixtures::path(TINY),
    );
    s3.put_file(
        "movies",
        &format!("prores/sub/{ODD}"),
        &fixtures::path(TINY),
    );
    s3.put_object("movies", "prores/.hidden.mov", b"not for clients");
    s3.put_object("movies", "prores/.git/config", b"[core]");
    s3.put_object("movies", "outside-the-prefix.mov", b"not under prores/");
    s3
}

/// `S3::env` as `Server::start` takes it.
fn as_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect()
}

/// How many times moto was asked for the bytes of `bucket/key`.
fn gets_of(s3: &S3, bucket: &str, key: &str) -> usize {
    // Log lines are `"GET /bucket/key HTTP/1.1" 206 -`, some of them in colour.
    let request = format!("GET /{bucket}/{key} HTTP/1.1");
    s3.log().lines().filter(|l| l.contains(&request)).count()
}

#[test]
fn an_s3_mirror_lists_describes_and_serves_frames_like_a_local_one() {
    let s3 = movies_bucket();
    let env = s3.env();
    let local = local_mirror();
    let server = Server::start(
        &[
            "--mirror",
            "s3=s3://movies/prores",
            "--mirror",
            &local,
            "--cache-dir",
            "",
        ],
        &as_refs(&env),
    );
    let rt = runtime();
    let c = client();
    rt.block_on(async {
        let get = |path: &str| {
            let request = c.get(server.url(path));
            async move { request.send().await.unwrap() }
        };
        let json_of = |path: &'static str| {
            let response = get(path);
            async move {
                let response = response.await;
                assert_eq!(response.status(), 200, "{path}");
                let body = response.bytes().await.unwrap();
                serde_json::from_slice::<serde_json::Value>(&body).unwrap()
            }
        };

        // The root map names the bucket URL (a folder: trailing slash) and its API path.
        let root = json_of("/").await;
        assert_eq!(
            root["s3://movies/prores/"]["APIPath"]["V1"], "/v1/s3/",
            "{root}"
        );

        // Listings: the prefix's objects and "folders", hidden ones left out, nothing from
        // outside the prefix.
        let listing = json_of("/v1/s3/").await;
        assert_eq!(listing["Path"], "/");
        assert_eq!(listing["Files"], serde_json::json!([PRORES]), "{listing}");
        assert_eq!(
            listing["Directories"],
            serde_json::json!(["sub"]),
            "{listing}"
        );
        let sub = json_of("/v1/s3/sub/").await;
        assert_eq!(sub["Files"], serde_json::json!([ODD, TINY]), "{sub}");
        assert_eq!(sub["Directories"], serde_json::json!([]), "{sub}");

        // Metadata, read from the bucket with range requests.
        let response = get(&format!("/v1/s3/{PRORES}")).await;
        assert_eq!(response.status(), 200);
        assert!(!header(&response, "etag").is_empty());
        let metadata: serde_json::Value =
            serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(metadata["NumFrames"], 75, "{metadata}");
        assert_eq!(metadata["Codec"], "prores");
        assert_eq!(
            metadata["FileSize"],
            fixtures::path(PRORES).metadata().unwrap().len()
        );
        let tiny = json_of("/v1/s3/sub/tiny_prores.mov").await;
        assert!(tiny["NumFrames"].as_u64().unwrap() > 0, "{tiny}");
        let odd = json_of("/v1/s3/sub/a%20b+c%20%26%20d.mov").await;
        assert_eq!(odd["NumFrames"], tiny["NumFrames"], "{odd}");
        assert_eq!(odd["FileSize"], tiny["FileSize"], "{odd}");

        // A frame, computed from the bucket's bytes, equals the same frame of the local file.
        let frame_of = |path: String| {
            let response = get(&path);
            async move {
                let response = response.await;
                assert_eq!(response.status(), 200, "{path}");
                let tier = header(&response, "x-lazycache-cache");
                (tier, response.bytes().await.unwrap())
            }
        };
        let (tier, from_s3) = frame_of(format!("/v1/s3/{PRORES}/frame/40.png")).await;
        assert_eq!(tier, "miss");
        let (_, from_local) = frame_of(format!("/v1/local/{PRORES}/frame/40.png")).await;
        assert!(from_s3.starts_with(b"\x89PNG"));
        assert!(
            from_s3 == from_local,
            "frame 40 differs between s3 and local"
        );
        let (_, other) = frame_of(format!("/v1/s3/{PRORES}/frame/41.png")).await;
        assert!(other != from_s3, "frames 40 and 41 are different pictures");
        let (_, odd) = frame_of("/v1/s3/sub/a%20b+c%20%26%20d.mov/frame/2.png".into()).await;
        let (_, tiny) = frame_of(format!("/v1/local/{TINY}/frame/2.png")).await;
        assert!(odd == tiny, "frame 2 of the oddly named copy differs");

        // Missing and hidden objects are not found, whatever the route.
        for path in [
            "/v1/s3/missing.mov",
            "/v1/s3/missing.mov/frame/1.jpg",
            "/v1/s3/nowhere/",
            "/v1/s3/.hidden.mov",
            "/v1/s3/.hidden.mov/frame/1.jpg",
            "/v1/s3/.git/",
            "/v1/s3/.git/config",
            "/v1/s3/../outside-the-prefix.mov",
        ] {
            let status = get(path).await.status();
            assert_eq!(status, 404, "{path}");
        }
    });
    assert!(server.terminate().success());
}

#[test]
fn the_s3_object_store_tier_is_shared_between_instances() {
    let s3 = movies_bucket();
    s3.create_bucket("cachebucket");
    let env = s3.env();
    let args = [
        "--mirror",
        "s3=s3://movies/prores",
        "--cache-dir",
        "",
        "--object-store",
        "s3://cachebucket/lazycache",
    ];
    let frame = format!("/v1/s3/{PRORES}/frame/5.jpg");
    let rt = runtime();
    let tier_of = |server: &Server, path: &str| {
        let url = server.url(path);
        rt.block_on(async {
            let response = client().get(url).send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}\n{}", server.log());
            let tier = header(&response, "x-lazycache-cache");
            (tier, response.bytes().await.unwrap())
        })
    };
    let movie_key = format!("prores/{PRORES}");

    let first = Server::start(&args, &as_refs(&env));
    let (tier, bytes) = tier_of(&first, &frame);
    assert_eq!(tier, "miss");
    assert!(
        gets_of(&s3, "movies", &movie_key) > 0,
        "the movie was read:\n{}",
        s3.log()
    );
    // SIGTERM drains and flushes the write-behind to the bucket, then exits 0.
    assert!(first.terminate().success());

    // The frame is an object of the cache bucket, under the prefix, byte for byte.
    let stored = s3.list("cachebucket", "lazycache/");
    assert!(
        stored
            .iter()
            .any(|object| s3.get_object("cachebucket", &object.key).as_deref() == Some(&bytes[..])),
        "no object in s3://cachebucket/lazycache/ holds the frame: {stored:?}"
    );

    let reads_before = gets_of(&s3, "movies", &movie_key);
    let fresh = Server::start(&args, &as_refs(&env));
    // The index first: a frame's answer loads the index too (for its time headers), which
    // would put it in the memory tier before the metadata request could see where it came from.
    let (tier, _) = tier_of(&fresh, &format!("/v1/s3/{PRORES}"));
    assert_eq!(tier, "object-store", "the index comes from the shared tier");
    let (tier, from_store) = tier_of(&fresh, &frame);
    assert_eq!(tier, "object-store");
    assert!(from_store == bytes, "the shared frame differs");
    assert_eq!(
        gets_of(&s3, "movies", &movie_key),
        reads_before,
        "no byte of the movie was read by the fresh instance"
    );
    assert!(fresh.terminate().success());
}
