//! One behavioural suite, run against every tier: memory, disk, the object store on
//! fake-gcs-server and on moto's S3, and object_store's local file store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    bounded, fake_gcs, file_store_options, frame_key, gcs_options, metadata_key, s3_options, value,
};
use lazycache_cache::{
    CacheMetrics, CachedValue, DiskTier, MemoryTier, ObjectStoreTier, Tier, TierKind, TierMetrics,
};
use lazycache_testkit::s3::S3;

fn metrics(kind: TierKind) -> TierMetrics {
    CacheMetrics::register(&prometheus::Registry::new())
        .unwrap()
        .tier(kind)
        .clone()
}

/// What every tier must do: a tier may forget, but never return anything but the last value put.
async fn conformance_suite<T: Tier>(tier: &T) {
    let name = tier.kind().label();

    assert_eq!(
        tier.get(&frame_key(1)).await.unwrap(),
        None,
        "{name}: empty tier hit"
    );

    let first = value(1, 10_000);
    tier.put(&frame_key(1), &first).await.unwrap();
    assert_eq!(
        tier.get(&frame_key(1)).await.unwrap(),
        Some(first),
        "{name}: round trip"
    );

    let replacement = CachedValue::new("image/png", common::payload(2, 7_000));
    tier.put(&frame_key(1), &replacement).await.unwrap();
    assert_eq!(
        tier.get(&frame_key(1)).await.unwrap(),
        Some(replacement.clone()),
        "{name}: a put replaces the value"
    );

    let metadata = CachedValue::new("application/json", &b"{\"NumFrames\":3}"[..]);
    tier.put(&metadata_key("dir/movie.mov"), &metadata)
        .await
        .unwrap();
    assert_eq!(
        tier.get(&metadata_key("dir/movie.mov")).await.unwrap(),
        Some(metadata),
        "{name}: metadata keys"
    );
    assert_eq!(
        tier.get(&frame_key(1)).await.unwrap(),
        Some(replacement),
        "{name}: a frame and the metadata of its movie are different entries"
    );
    assert_eq!(
        tier.get(&frame_key(2)).await.unwrap(),
        None,
        "{name}: other frame"
    );

    let empty = CachedValue::new("image/png", Vec::new());
    tier.put(&frame_key(3), &empty).await.unwrap();
    assert_eq!(
        tier.get(&frame_key(3)).await.unwrap(),
        Some(empty),
        "{name}: empty value"
    );

    let every_byte: Vec<u8> = (0..=255u8).cycle().take(3 * 1024 * 1024 + 17).collect();
    let large = CachedValue::new("image/png", every_byte);
    tier.put(&frame_key(4), &large).await.unwrap();
    assert_eq!(
        tier.get(&frame_key(4)).await.unwrap(),
        Some(large),
        "{name}: 3 MiB value"
    );

    tier.remove(&frame_key(1)).await.unwrap();
    assert_eq!(
        tier.get(&frame_key(1)).await.unwrap(),
        None,
        "{name}: removed"
    );
    tier.remove(&frame_key(1)).await.unwrap();

    let concurrent = futures::future::join_all((10..30).map(|n| async move {
        tier.put(&frame_key(n), &value(n, 5_000 + n as usize))
            .await
            .unwrap();
        tier.get(&frame_key(n)).await.unwrap()
    }))
    .await;
    for (n, got) in (10..30).zip(concurrent) {
        assert_eq!(
            got,
            Some(value(n, 5_000 + n as usize)),
            "{name}: concurrent {n}"
        );
    }
}

#[tokio::test]
async fn memory_tier_conforms() {
    let tier = MemoryTier::new(64 << 20, metrics(TierKind::Memory));
    bounded(conformance_suite(&tier)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_tier_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let tier = DiskTier::new(dir.path(), 64 << 20, metrics(TierKind::Disk));
    bounded(conformance_suite(&tier)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_tier_on_fake_gcs_conforms() {
    let gcs = fake_gcs("conformance");
    let tier = ObjectStoreTier::connect(
        &gcs_options(&gcs.url, "conformance"),
        "--object-store",
        metrics(TierKind::ObjectStore),
    )
    .unwrap();
    bounded(tier.probe()).await.unwrap();
    bounded(conformance_suite(&tier)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_tier_on_local_files_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let tier = ObjectStoreTier::connect(
        &file_store_options(&dir.path().join("bucket")),
        "--object-store",
        metrics(TierKind::ObjectStore),
    )
    .unwrap();
    bounded(conformance_suite(&tier)).await;
}

/// Set (to the bucket) in the child run of [`object_store_tier_on_moto_s3_conforms`].
const S3_CHILD_BUCKET: &str = "LAZYCACHE_TEST_S3_CONFORMANCE_BUCKET";

/// The S3 client takes its endpoint and credentials from the process's `AWS_*` variables, which
/// a multi-threaded test binary cannot set safely. So this test starts moto and runs itself
/// again, alone, in a child process given moto's variables; the child runs the suite.
#[test]
fn object_store_tier_on_moto_s3_conforms() {
    const NAME: &str = "object_store_tier_on_moto_s3_conforms";
    if let Ok(bucket) = std::env::var(S3_CHILD_BUCKET) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let tier = ObjectStoreTier::connect(
                &s3_options(&bucket),
                "--object-store",
                metrics(TierKind::ObjectStore),
            )
            .unwrap();
            bounded(tier.probe()).await.unwrap();
            bounded(conformance_suite(&tier)).await;
        });
        return;
    }
    let s3 = S3::start();
    s3.create_bucket("conformance");
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([NAME, "--exact", "--test-threads=1", "--nocapture"])
        .envs(s3.env())
        .env(S3_CHILD_BUCKET, "conformance")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "the suite on moto failed ({}):\n{stdout}\n{}\nmoto's log:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        s3.log()
    );
    let stored = s3.list("conformance", "lazycache/");
    assert!(
        stored.len() >= 20,
        "the suite's values are objects in moto: {stored:?}"
    );
}
