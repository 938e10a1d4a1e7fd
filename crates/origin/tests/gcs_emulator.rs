//! `gs://` mirrors against fake-gcs-server, found through `STORAGE_EMULATOR_HOST` exactly as a
//! deployment would (SPEC §2). One test in this binary: it sets a process environment variable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use lazycache_origin::{Mirror, MirrorSpec, OriginConfig, RangeCache, RangeCacheConfig, RelPath};
use lazycache_testkit::fake_gcs::FakeGcs;
use lazycache_testkit::procs::http_request;

const BUCKET: &str = "lazycache-origin";

fn upload(gcs: &FakeGcs, name: &str, body: &[u8]) {
    let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
    let path = format!("/upload/storage/v1/b/{BUCKET}/o?uploadType=media&name={encoded}");
    let status = http_request(
        gcs.addr,
        "POST",
        &path,
        Some(("application/octet-stream", body)),
    );
    assert_eq!(status, 200, "upload of {name}");
}

fn patterned(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 241) as u8 ^ seed).collect()
}

#[test]
fn gs_mirrors_list_stat_and_read_through_the_emulator() {
    let gcs = FakeGcs::start();
    gcs.create_bucket(BUCKET);
    upload(&gcs, "camhd/2016/a b & c.mov", &patterned(200_000, 0));
    upload(&gcs, "camhd/2016/ü.mov", b"unicode");
    upload(&gcs, "camhd/readme.txt", b"hello");
    upload(&gcs, "elsewhere/secret.mov", b"not in the mirror");
    upload(&gcs, "with space/x.mov", b"x");
    // SAFETY: the only test of this binary sets the variable before any thread of its own reads
    // the environment (the runtime is built after).
    unsafe { std::env::set_var(lazycache_origin::STORAGE_EMULATOR_HOST, &gcs.url) };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let spec: MirrorSpec = format!("gs://{BUCKET}/camhd").parse().unwrap();
            assert_eq!(spec.prefix(), format!("gs/{BUCKET}/camhd/"));
            let mirror = Mirror::open(
                spec,
                &OriginConfig::default(),
                RangeCache::new(RangeCacheConfig::default()),
            )
            .unwrap();

            let root = mirror.list(&RelPath::root()).await.unwrap();
            assert_eq!(root.files, ["readme.txt"]);
            assert_eq!(root.directories, ["2016"]);
            let year = mirror.list(&RelPath::parse("2016").unwrap()).await.unwrap();
            assert_eq!(year.files, ["a b & c.mov", "ü.mov"]);
            assert!(year.directories.is_empty());
            let err = mirror
                .list(&RelPath::parse("1999").unwrap())
                .await
                .unwrap_err();
            assert!(err.is_not_found(), "{err}");

            let path = RelPath::parse("2016/a b & c.mov").unwrap();
            let file = mirror.open_file(&path).await.unwrap();
            assert_eq!(file.size(), 200_000);
            assert!(file.meta().etag.is_some(), "GCS objects have ETags");
            let bytes = file.read(70_000..140_000).await.unwrap();
            assert_eq!(&bytes[..], &patterned(200_000, 0)[70_000..140_000]);
            let unicode = mirror
                .open_file(&RelPath::parse("2016/ü.mov").unwrap())
                .await
                .unwrap();
            assert_eq!(&unicode.read_at(0, 100).await.unwrap()[..], b"unicode");

            let missing = mirror
                .open_file(&RelPath::parse("secret.mov").unwrap())
                .await
                .unwrap_err();
            assert!(missing.is_not_found(), "{missing}");
            assert!(
                mirror.public_url(&path).is_none(),
                "bucket files are served, not redirected"
            );

            // A prefix is the URL's path percent-decoded, as object names are.
            let spaced = Mirror::open(
                format!("gs://{BUCKET}/with%20space/").parse().unwrap(),
                &OriginConfig::default(),
                RangeCache::new(RangeCacheConfig::default()),
            )
            .unwrap();
            assert_eq!(
                spaced.list(&RelPath::root()).await.unwrap().files,
                ["x.mov"]
            );

            // Replaced in the bucket: a read of bytes not yet cached fails as changed.
            upload(&gcs, "camhd/2016/a b & c.mov", &patterned(150_000, 7));
            let err = file.read(0..1000).await.unwrap_err();
            assert!(err.is_changed(), "{err}");
            tokio::time::sleep(Duration::from_millis(50)).await;
            let reopened = mirror.open_file(&path).await.unwrap();
            assert_eq!(reopened.size(), 150_000);
            assert_eq!(
                &reopened.read(0..1000).await.unwrap()[..],
                &patterned(150_000, 7)[..1000]
            );
        })
        .await
        .expect("gs:// test took over 60 s");
    });
}
