//! `--cache-signing-key` end to end, against fake-gcs-server: instances sharing a bucket and a key
//! take each other's frames and indexes; an instance with another key (or none) treats them as
//! misses and computes its own, and nothing is deleted from the shared bucket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use lazycache_testkit::fake_gcs::FakeGcs;
use lazycache_testkit::nginx::Nginx;
use support::{Server, client, fixtures_dir, header, metric, nginx_mirror, nginx_prefix, runtime};

const PRORES: &str = "prores_hq_1080p.mov";

#[test]
fn instances_share_only_entries_signed_with_their_key() {
    let nginx = Nginx::serve(&fixtures_dir());
    let gcs = FakeGcs::start();
    gcs.create_bucket("signed");
    let mirror = nginx_mirror(&nginx);
    let frame = format!("{}{PRORES}/frame/6.jpg", nginx_prefix(&nginx));
    let env = [("STORAGE_EMULATOR_HOST", gcs.url.as_str())];
    let start = |key: Option<&str>| {
        let mut args = vec![
            "--mirror",
            &mirror,
            "--cache-dir",
            "",
            "--object-store",
            "gs://signed/lazycache",
        ];
        if let Some(key) = key {
            args.extend(["--cache-signing-key", key]);
        }
        Server::start(&args, &env)
    };
    let rt = runtime();
    let get = |server: &Server, path: &str| {
        let url = server.url(path);
        rt.block_on(async {
            let response = client().get(url).send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            let tier = header(&response, "x-lazycache-cache");
            (tier, response.bytes().await.unwrap())
        })
    };
    let text = |server: &Server, path: &str| {
        let url = server.url(path);
        rt.block_on(async {
            client()
                .get(url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    };

    let writer = start(Some("first-key"));
    let (tier, bytes) = get(&writer, &frame);
    assert_eq!(tier, "miss");
    assert!(writer.terminate().success(), "flushes to the bucket");

    let same_key = start(Some("first-key"));
    assert_eq!(
        get(&same_key, &frame),
        ("object-store".to_owned(), bytes.clone())
    );
    assert!(same_key.terminate().success());

    let corrupt = |server: &Server| {
        metric(
            &text(server, "/metrics"),
            "lazycache_cache_corrupt_entries_total{tier=\"object-store\"}",
        )
    };
    // Another key: a miss, counted; its own entry then replaces the shared one.
    let other_key = start(Some("second-key"));
    assert_eq!(get(&other_key, &frame), ("miss".to_owned(), bytes.clone()));
    assert_eq!(corrupt(&other_key), 2.0, "the frame and the movie's index");
    assert!(other_key.terminate().success());
    let other_again = start(Some("second-key"));
    assert_eq!(get(&other_again, &frame).0, "object-store");
    assert!(other_again.terminate().success());

    // An unsigned entry (an instance without the key, or planted) is a miss for a signer.
    let unsigned = start(None);
    let frame_7 = format!("{}{PRORES}/frame/7.jpg", nginx_prefix(&nginx));
    assert_eq!(get(&unsigned, &frame_7).0, "miss");
    assert!(unsigned.terminate().success());
    let signer = start(Some("first-key"));
    assert_eq!(get(&signer, &frame_7).0, "miss");
    assert!(corrupt(&signer) >= 1.0);
    assert!(signer.terminate().success());
}
