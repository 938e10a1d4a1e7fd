//! One behavioural suite, run against every tier: memory, disk, the object store on
//! fake-gcs-server, and object_store's local file store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{bounded, fake_gcs, file_store_options, frame_key, gcs_options, metadata_key, value};
use lazycache_cache::{
    CacheMetrics, CachedValue, DiskTier, MemoryTier, ObjectStoreTier, Tier, TierKind, TierMetrics,
};

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
