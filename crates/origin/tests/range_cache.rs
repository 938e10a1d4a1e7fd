//! The range cache over object_store's in-memory store: coalescing, merging of nearby reads,
//! the memory bound, sequential read-ahead within SPEC §4's bound, shared errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use lazycache_origin::{
    FileMeta, Listing, ObjectStoreOrigin, Origin, OriginError, OriginFile, OriginResult,
    RangeCache, RangeCacheConfig, RelPath,
};
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};

/// An in-memory bucket whose reads are counted, can be made to fail, and take a moment (so
/// concurrent readers really overlap).
struct Counted {
    inner: ObjectStoreOrigin,
    reads: AtomicU64,
    bytes: AtomicU64,
    failing: AtomicBool,
}

#[async_trait]
impl Origin for Counted {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn list(&self, dir: &RelPath) -> OriginResult<Listing> {
        self.inner.list(dir).await
    }
    async fn stat(&self, path: &RelPath) -> OriginResult<FileMeta> {
        self.inner.stat(path).await
    }
    async fn read(
        &self,
        path: &RelPath,
        pinned: &FileMeta,
        range: Range<u64>,
    ) -> OriginResult<Bytes> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.bytes
            .fetch_add(range.end - range.start, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        if self.failing.load(Ordering::SeqCst) {
            return Err(OriginError::Unavailable {
                what: path.to_string(),
                detail: "test failure".into(),
            });
        }
        self.inner.read(path, pinned, range).await
    }
}

const SIZE: usize = 8 << 20;

fn content() -> Vec<u8> {
    (0..SIZE).map(|i| (i * 7 % 256) as u8).collect()
}

async fn setup(config: RangeCacheConfig) -> (Arc<Counted>, OriginFile) {
    let store = Arc::new(InMemory::new());
    store
        .put(
            &ObjectPath::parse("m/movie.mov").unwrap(),
            PutPayload::from(content()),
        )
        .await
        .unwrap();
    let counted = Arc::new(Counted {
        inner: ObjectStoreOrigin::new(store, "m", "memory://m/").unwrap(),
        reads: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        failing: AtomicBool::new(false),
    });
    let file = OriginFile::open(
        counted.clone(),
        RelPath::parse("movie.mov").unwrap(),
        RangeCache::new(config),
    )
    .await
    .unwrap();
    (counted, file)
}

fn expected(range: Range<u64>) -> Vec<u8> {
    content()[range.start as usize..range.end as usize].to_vec()
}

#[tokio::test]
async fn nearby_small_reads_share_one_request() {
    let (origin, file) = setup(RangeCacheConfig::default()).await;
    // Atom headers as a demuxer reads them: all inside one 32 KiB block.
    for range in [0..8, 8..16, 1000..1016, 20_000..20_016, 32_000..32_768] {
        assert_eq!(
            &file.read(range.clone()).await.unwrap()[..],
            &expected(range)[..]
        );
    }
    assert_eq!(origin.reads.load(Ordering::SeqCst), 1);
    assert_eq!(origin.bytes.load(Ordering::SeqCst), 32 << 10);
    // A read across a block edge fetches only the block it lacks.
    let edge = 32_760..32_800;
    assert_eq!(
        &file.read(edge.clone()).await.unwrap()[..],
        &expected(edge)[..]
    );
    assert_eq!(origin.reads.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_readers_share_requests_and_their_errors() {
    let (origin, file) = setup(RangeCacheConfig::default()).await;
    let file = Arc::new(file);
    let range = 1_000_000..1_400_000;
    let readers: Vec<_> = (0..50)
        .map(|_| {
            let (file, range) = (file.clone(), range.clone());
            tokio::spawn(async move { file.read(range).await })
        })
        .collect();
    for reader in readers {
        assert_eq!(
            &reader.await.unwrap().unwrap()[..],
            &expected(range.clone())[..]
        );
    }
    assert_eq!(origin.reads.load(Ordering::SeqCst), 1);

    origin.failing.store(true, Ordering::SeqCst);
    let failing = 5_000_000..5_000_100;
    let readers: Vec<_> = (0..20)
        .map(|_| {
            let (file, range) = (file.clone(), failing.clone());
            tokio::spawn(async move { file.read(range).await })
        })
        .collect();
    for reader in readers {
        let err = reader.await.unwrap().unwrap_err();
        assert!(matches!(err, OriginError::Unavailable { .. }), "{err}");
    }
    assert_eq!(
        origin.reads.load(Ordering::SeqCst),
        2,
        "one failed request for all readers"
    );
    // Failures are not cached: the next read asks again, and succeeds.
    origin.failing.store(false, Ordering::SeqCst);
    assert_eq!(
        &file.read(failing.clone()).await.unwrap()[..],
        &expected(failing)[..]
    );
    assert_eq!(origin.reads.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn memory_stays_within_the_capacity() {
    let capacity = 1 << 20;
    let config = RangeCacheConfig {
        capacity_bytes: capacity,
        ..RangeCacheConfig::default()
    };
    let (_origin, file) = setup(config).await;
    // Every other 64 KiB: not sequential, so no read-ahead; 4 MiB in all.
    for start in (0..SIZE as u64).step_by(128 << 10) {
        let range = start..start + (64 << 10);
        assert_eq!(
            &file.read(range.clone()).await.unwrap()[..],
            &expected(range)[..]
        );
    }
    let held = file.cache().cached_bytes();
    assert!(
        held <= capacity,
        "cache holds {held} bytes, capacity {capacity}"
    );
    assert!(held > 0);
}

#[tokio::test]
async fn sequential_reads_fetch_ahead_within_a_quarter() {
    let (origin, file) = setup(RangeCacheConfig::default()).await;
    let total: u64 = 4 << 20;
    let chunk: u64 = 32 << 10;
    for start in (0..total).step_by(chunk as usize) {
        let range = start..start + chunk;
        assert_eq!(
            &file.read(range.clone()).await.unwrap()[..],
            &expected(range)[..]
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await; // the last read-ahead lands
    let reads = origin.reads.load(Ordering::SeqCst);
    let bytes = origin.bytes.load(Ordering::SeqCst);
    eprintln!(
        "{} reads of {chunk}: {reads} origin requests, {bytes} bytes",
        total / chunk
    );
    assert!(
        reads < (total / chunk) / 4,
        "read-ahead should cut requests, got {reads}"
    );
    assert!(
        bytes <= total + total / 4 + (64 << 10),
        "read {bytes} for {total}"
    );
}

#[tokio::test]
async fn long_reads_are_split_into_bounded_requests() {
    let config = RangeCacheConfig {
        max_request_bytes: 1 << 20,
        ..RangeCacheConfig::default()
    };
    let (origin, file) = setup(config).await;
    let range = 100..(3 << 20) + (1 << 19);
    assert_eq!(
        &file.read(range.clone()).await.unwrap()[..],
        &expected(range)[..]
    );
    assert_eq!(origin.reads.load(Ordering::SeqCst), 4);
    // Reads past the end are clamped; at the end they are empty.
    let tail = file.read_at(SIZE as u64 - 10, 100).await.unwrap();
    assert_eq!(&tail[..], &expected(SIZE as u64 - 10..SIZE as u64)[..]);
    assert!(file.read_at(SIZE as u64, 100).await.unwrap().is_empty());
}
