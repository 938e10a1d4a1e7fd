//! The read-through chain over real tiers: promotion, write-behind, single flight, time caps,
//! and tiers that fail, vanish and come back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{
    bounded, eventually, fake_gcs, file_store_options, frame_key, gcs_options, memory_only,
    metadata_key, no_compute, open, value, with_disk, with_object_store,
};
use lazycache_cache::{
    CachedValue, DiskTier, LoadError, Lookup, ServedFrom, Tier, TierKind, TieredCache,
};
use lazycache_testkit::fake_gcs::FakeGcs;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("origin said no ({0})")]
struct ComputeError(u32);

async fn compute_ok(seed: u64) -> Result<CachedValue, ComputeError> {
    Ok(value(seed, 4_000))
}

#[tokio::test]
async fn computed_value_is_in_memory_before_the_call_returns() {
    let cache = open(memory_only(16 << 20)).await;
    let computed = bounded(cache.get_or_compute(&frame_key(1), || compute_ok(1)))
        .await
        .unwrap();
    assert_eq!(computed.served_from, ServedFrom::Computed);
    assert_eq!(computed.served_from.as_str(), "miss");
    assert_eq!(computed.value, value(1, 4_000));
    let again = bounded(cache.get_or_compute(&frame_key(1), no_compute))
        .await
        .unwrap();
    assert_eq!(again.served_from, ServedFrom::Memory);
    assert_eq!(again.value, computed.value);
    assert_eq!(cache.metrics().computations.get(), 1);
    assert_eq!(cache.metrics().memory.hits.get(), 1);
}

#[tokio::test]
async fn memory_tier_is_bounded_by_bytes() {
    let cache = open(memory_only(1 << 20)).await;
    for n in 0..40 {
        bounded(cache.put(&frame_key(n), value(n, 100_000))).await;
    }
    let mut held = 0;
    for n in 0..40 {
        if let Some(found) = bounded(cache.get(&frame_key(n))).await {
            assert_eq!(found.value, value(n, 100_000));
            held += 1;
        }
    }
    assert!(
        held > 0 && held <= 10,
        "{held} values of 100 kB in a 1 MiB memory tier"
    );
    assert!(cache.metrics().memory.evictions.get() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_are_promoted_into_the_tiers_above() {
    let store = tempfile::tempdir().unwrap();
    let first_disk = tempfile::tempdir().unwrap();
    let second_disk = tempfile::tempdir().unwrap();
    let store_options = file_store_options(&store.path().join("bucket"));

    // Instance 1 computes; write-behind puts the value on its disk and in the shared store.
    let first = open(with_object_store(
        with_disk(memory_only(16 << 20), first_disk.path(), 64 << 20),
        store_options.clone(),
    ))
    .await;
    let computed = bounded(first.get_or_compute(&frame_key(7), || compute_ok(7)))
        .await
        .unwrap();
    assert_eq!(computed.served_from, ServedFrom::Computed);
    assert!(bounded(first.flush(Duration::from_secs(10))).await);
    assert_eq!(first.metrics().disk.written_bytes.get(), 4_000);
    assert_eq!(first.metrics().object_store.written_bytes.get(), 4_000);

    // Instance 2 has an empty disk and memory: the store answers, and the value moves up.
    let second_config = with_object_store(
        with_disk(memory_only(16 << 20), second_disk.path(), 64 << 20),
        store_options,
    );
    let second = open(second_config.clone()).await;
    let found = bounded(second.get_or_compute(&frame_key(7), no_compute))
        .await
        .unwrap();
    assert_eq!(found.served_from, ServedFrom::ObjectStore);
    assert_eq!(found.value, computed.value);
    let found = bounded(second.get_or_compute(&frame_key(7), no_compute))
        .await
        .unwrap();
    assert_eq!(found.served_from, ServedFrom::Memory);
    assert!(bounded(second.flush(Duration::from_secs(10))).await);
    drop(second);

    // Instance 3 on instance 2's disk without a store: the promoted copy is there.
    let mut disk_only = second_config;
    disk_only.object_store = None;
    let third = open(disk_only).await;
    let found = bounded(third.get_or_compute(&frame_key(7), no_compute))
        .await
        .unwrap();
    assert_eq!(found.served_from, ServedFrom::Disk);
    assert_eq!(found.value, computed.value);
    let found = bounded(third.get(&frame_key(7))).await.unwrap();
    assert_eq!(found.served_from, ServedFrom::Memory);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_instance_reads_metadata_from_the_shared_gcs_bucket() {
    let gcs = fake_gcs("shared");
    let disk = tempfile::tempdir().unwrap();
    let metadata = CachedValue::new("application/json", &b"{\"NumFrames\":25}"[..]);

    let first = open(with_object_store(
        memory_only(16 << 20),
        gcs_options(&gcs.url, "shared"),
    ))
    .await;
    let stored = metadata.clone();
    bounded(
        first.get_or_compute(&metadata_key("m.mov"), move || async move {
            Ok::<_, ComputeError>(stored)
        }),
    )
    .await
    .unwrap();
    assert!(bounded(first.flush(Duration::from_secs(10))).await);

    let fresh = open(with_object_store(
        with_disk(memory_only(16 << 20), disk.path(), 64 << 20),
        gcs_options(&gcs.url, "shared"),
    ))
    .await;
    let found = bounded(fresh.get_or_compute(&metadata_key("m.mov"), no_compute))
        .await
        .unwrap();
    assert_eq!(found.served_from, ServedFrom::ObjectStore);
    assert_eq!(found.value, metadata);
    assert_eq!(fresh.metrics().object_store.hits.get(), 1);
    assert_eq!(fresh.metrics().computations.get(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_objects_are_the_raw_bytes_with_their_content_type() {
    // The object carries the value's content type (for people browsing the bucket); reading
    // it back, the cache takes the type from the key.
    let gcs = fake_gcs("raw");
    let cache = open(with_object_store(
        memory_only(16 << 20),
        gcs_options(&gcs.url, "raw"),
    ))
    .await;
    let jpeg = CachedValue::new("image/png", common::payload(3, 2_000));
    let stored = jpeg.clone();
    bounded(cache.get_or_compute(&frame_key(3), move || async move {
        Ok::<_, ComputeError>(stored)
    }))
    .await
    .unwrap();
    assert!(bounded(cache.flush(Duration::from_secs(10))).await);

    let object = format!(
        "{}/raw/lazycache/frame/{}",
        gcs.url,
        frame_key(3).digest().to_hex()
    );
    let response = bounded(reqwest::get(&object)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(bounded(response.bytes()).await.unwrap(), jpeg.bytes());
}

/// Callers whose computations count their runs and finish only when released.
struct Gate {
    runs: Arc<AtomicUsize>,
    release: Arc<tokio::sync::Notify>,
}

impl Gate {
    fn new() -> Self {
        Self {
            runs: Arc::new(AtomicUsize::new(0)),
            release: Arc::new(tokio::sync::Notify::new()),
        }
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    /// Lets the (single) computation waiting at the gate finish.
    fn open(&self) {
        self.release.notify_one();
    }

    /// A task asking `cache` for frame `seed`; its computation, if it runs, yields `result`.
    fn spawn_caller(
        &self,
        cache: &TieredCache,
        seed: u64,
        result: Result<u64, u32>,
    ) -> tokio::task::JoinHandle<Result<Lookup, LoadError<ComputeError>>> {
        let (cache, runs, release) = (cache.clone(), self.runs.clone(), self.release.clone());
        let compute = move || async move {
            runs.fetch_add(1, Ordering::SeqCst);
            release.notified().await;
            result.map(|seed| value(seed, 1_000)).map_err(ComputeError)
        };
        tokio::spawn(async move { cache.get_or_compute(&frame_key(seed), compute).await })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_misses_compute_once() {
    let cache = open(memory_only(16 << 20)).await;
    let gate = Gate::new();
    let callers: Vec<_> = (0..100)
        .map(|_| gate.spawn_caller(&cache, 5, Ok(5)))
        .collect();
    eventually("all 100 callers wait on one computation", async || {
        cache.metrics().coalesced_waits.get() == 99 && gate.runs() == 1
    })
    .await;
    gate.open();
    for caller in callers {
        let lookup = bounded(caller).await.unwrap().unwrap();
        assert_eq!(lookup.value, value(5, 1_000));
        assert_eq!(lookup.served_from, ServedFrom::Computed);
    }
    assert_eq!(gate.runs(), 1);
    assert_eq!(cache.metrics().computations.get(), 1);
    assert_eq!(cache.loads_in_progress(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_reaches_every_waiter_and_the_next_call_recomputes() {
    let cache = open(memory_only(16 << 20)).await;
    let gate = Gate::new();
    let callers: Vec<_> = (0..10)
        .map(|_| gate.spawn_caller(&cache, 9, Err(42)))
        .collect();
    eventually("the waiters have joined", async || {
        cache.metrics().coalesced_waits.get() == 9
    })
    .await;
    gate.open();
    for caller in callers {
        match bounded(caller).await.unwrap() {
            Err(LoadError::Failed(error)) => assert_eq!(*error, ComputeError(42)),
            other => panic!("expected the leader's error, got {other:?}"),
        }
    }
    assert_eq!(cache.metrics().computation_failures.get(), 1);

    let next = bounded(cache.get_or_compute(&frame_key(9), || compute_ok(9)))
        .await
        .unwrap();
    assert_eq!(
        next.served_from,
        ServedFrom::Computed,
        "the error was not cached"
    );
    assert_eq!(gate.runs(), 1);
    assert_eq!(cache.metrics().computations.get(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_goes_away_does_not_cancel_the_computation() {
    let cache = open(memory_only(16 << 20)).await;
    let gate = Gate::new();
    let leader = gate.spawn_caller(&cache, 11, Ok(11));
    eventually("the computation started", async || gate.runs() == 1).await;
    leader.abort();
    assert!(bounded(leader).await.unwrap_err().is_cancelled());
    gate.open();
    eventually("the computation finished without its caller", async || {
        cache.loads_in_progress() == 0
    })
    .await;
    let found = bounded(cache.get(&frame_key(11))).await.unwrap();
    assert_eq!(found.served_from, ServedFrom::Memory);
    assert_eq!(found.value, value(11, 1_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn computation_is_cut_off_at_the_time_cap() {
    let mut config = memory_only(16 << 20);
    config.compute_timeout = Duration::from_millis(200);
    let cache = open(config).await;
    let stuck = || std::future::pending::<Result<CachedValue, ComputeError>>();
    match bounded(cache.get_or_compute(&frame_key(13), stuck)).await {
        Err(LoadError::TimedOut(limit)) => assert_eq!(limit, Duration::from_millis(200)),
        other => panic!("expected a timeout, got {other:?}"),
    }
    let next = bounded(cache.get_or_compute(&frame_key(13), || compute_ok(13)))
        .await
        .unwrap();
    assert_eq!(next.served_from, ServedFrom::Computed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_computation_is_an_error_not_a_hang() {
    let cache = open(memory_only(16 << 20)).await;
    let result = bounded(cache.get_or_compute(&frame_key(14), || async {
        if true {
            panic!("decoder bug");
        }
        compute_ok(14).await
    }))
    .await;
    assert!(matches!(result, Err(LoadError::Panicked)), "{result:?}");
    let next = bounded(cache.get_or_compute(&frame_key(14), || compute_ok(14)))
        .await
        .unwrap();
    assert_eq!(next.served_from, ServedFrom::Computed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_object_store_never_fails_or_stalls_a_get() {
    let gcs = fake_gcs("stops");
    let disk = tempfile::tempdir().unwrap();
    let config = with_object_store(
        with_disk(memory_only(16 << 20), disk.path(), 64 << 20),
        gcs_options(&gcs.url, "stops"),
    );
    let cache = open(config.clone()).await;
    for n in 0..3 {
        bounded(cache.get_or_compute(&frame_key(n), move || compute_ok(n)))
            .await
            .unwrap();
    }
    assert!(bounded(cache.flush(Duration::from_secs(10))).await);
    assert!(cache.tier_available(TierKind::ObjectStore));

    drop(gcs); // kills fake-gcs-server

    // The running instance: memory hits, and new values are computed; their store writes fail
    // behind the response and disable the tier.
    let hit = bounded(cache.get_or_compute(&frame_key(0), no_compute))
        .await
        .unwrap();
    assert_eq!(hit.served_from, ServedFrom::Memory);
    let computed = bounded(cache.get_or_compute(&frame_key(50), || compute_ok(50)))
        .await
        .unwrap();
    assert_eq!(computed.served_from, ServedFrom::Computed);
    assert!(bounded(cache.flush(Duration::from_secs(10))).await);
    assert!(!cache.tier_available(TierKind::ObjectStore));
    assert!(cache.metrics().object_store.errors.get() >= 1);
    drop(cache);

    // A restarted instance: the store is unreachable from the start; disk and compute serve.
    let restarted = open(config).await;
    assert!(!restarted.tier_available(TierKind::ObjectStore));
    assert_eq!(restarted.metrics().object_store.available.get(), 0);
    for n in 0..3 {
        let found = bounded(restarted.get_or_compute(&frame_key(n), no_compute))
            .await
            .unwrap();
        assert_eq!(found.served_from, ServedFrom::Disk);
        assert_eq!(found.value, value(n, 4_000));
    }
    let computed = bounded(restarted.get_or_compute(&frame_key(60), || compute_ok(60)))
        .await
        .unwrap();
    assert_eq!(computed.served_from, ServedFrom::Computed);
    assert!(bounded(restarted.flush(Duration::from_secs(10))).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_tier_comes_back_when_the_store_does() {
    let port = lazycache_testkit::procs::free_port();
    let emulator = format!("http://127.0.0.1:{port}");
    let mut config = with_object_store(memory_only(16 << 20), gcs_options(&emulator, "back"));
    config.retry_interval = Duration::from_millis(50);
    let cache = open(config).await;
    assert!(
        !cache.tier_available(TierKind::ObjectStore),
        "nothing listens yet"
    );
    bounded(cache.get_or_compute(&frame_key(1), || compute_ok(1)))
        .await
        .unwrap();
    assert!(bounded(cache.flush(Duration::from_secs(10))).await);

    let gcs = FakeGcs::start_on_port(port);
    gcs.create_bucket("back");
    let mut n = 100;
    eventually("the object-store tier is used again", async || {
        n += 1;
        let seed = n;
        cache
            .get_or_compute(&frame_key(n), move || compute_ok(seed))
            .await
            .unwrap();
        cache.flush(Duration::from_secs(10)).await;
        cache.tier_available(TierKind::ObjectStore)
    })
    .await;
    assert!(cache.metrics().object_store.written_bytes.get() > 0);
    assert_eq!(cache.metrics().object_store.available.get(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_cache_dir_disables_the_disk_tier_until_it_is_fixed() {
    let root = tempfile::tempdir().unwrap();
    let blocker = root.path().join("not-a-dir");
    std::fs::write(&blocker, b"a file where the cache dir should be").unwrap();
    let cache_dir = blocker.join("cache");
    let mut config = with_disk(memory_only(16 << 20), &cache_dir, 64 << 20);
    config.retry_interval = Duration::from_millis(50);
    let cache = open(config).await;
    assert!(!cache.tier_available(TierKind::Disk));
    assert_eq!(cache.metrics().disk.disabled.get(), 1);
    let computed = bounded(cache.get_or_compute(&frame_key(1), || compute_ok(1)))
        .await
        .unwrap();
    assert_eq!(
        computed.served_from,
        ServedFrom::Computed,
        "the cache works without its disk"
    );

    std::fs::remove_file(&blocker).unwrap();
    let mut n = 100;
    eventually("the disk tier is used again", async || {
        n += 1;
        let seed = n;
        cache
            .get_or_compute(&frame_key(n), move || compute_ok(seed))
            .await
            .unwrap();
        cache.flush(Duration::from_secs(10)).await;
        cache.tier_available(TierKind::Disk)
    })
    .await;
    assert!(bounded(cache.flush(Duration::from_secs(10))).await);
    let written = cache.metrics().disk.written_bytes.get();
    assert!(written > 0);
    // What it wrote after recovering is really on disk.
    let reader = DiskTier::new(&cache_dir, 64 << 20, cache.metrics().disk.clone());
    let found = bounded(reader.get(&frame_key(n))).await.unwrap();
    assert_eq!(found, Some(value(n, 4_000)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_behind_queue_is_bounded_by_bytes() {
    // A store that accepts connections and never answers: queued writes stay queued.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let emulator = format!("http://{}", silent.local_addr().unwrap());
    let mut options = gcs_options(&emulator, "silent");
    options.operation_timeout = Duration::from_secs(1);
    let mut config = with_object_store(memory_only(64 << 20), options);
    config.write_queue_capacity = 100;
    config.write_queue_bytes = 1 << 20;
    config.write_workers = 1;
    config.retry_interval = Duration::ZERO;
    let cache = open(config).await;
    // Ten 300 kB values: room for three in 1 MiB, whatever the entry count allows.
    for n in 0..10 {
        bounded(cache.put(&frame_key(n), value(n, 300_000))).await;
    }
    let metrics = &cache.metrics().object_store;
    assert!(
        metrics.queue_depth.get() <= 3,
        "{}",
        metrics.queue_depth.get()
    );
    assert!(metrics.dropped_queue_full.get() >= 7);
    assert!(bounded(cache.flush(Duration::from_secs(15))).await);
    // Freed bytes make room again.
    let before = metrics.dropped_queue_full.get();
    bounded(cache.put(&frame_key(20), value(20, 300_000))).await;
    assert_eq!(metrics.dropped_queue_full.get(), before);
    assert!(bounded(cache.flush(Duration::from_secs(15))).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_write_behind_queue_drops_writes_and_flush_still_finishes() {
    // A store that accepts connections and never answers: every write takes the full timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let emulator = format!("http://{}", silent.local_addr().unwrap());
    let mut options = gcs_options(&emulator, "silent");
    options.operation_timeout = Duration::from_secs(1);
    let mut config = with_object_store(memory_only(16 << 20), options);
    config.write_queue_capacity = 1;
    config.write_workers = 1;
    config.retry_interval = Duration::ZERO; // every write is tried, so the queue backs up
    let cache = open(config).await;

    for n in 0..6 {
        bounded(cache.put(&frame_key(n), value(n, 100))).await;
    }
    let metrics = &cache.metrics().object_store;
    assert!(
        metrics.dropped_queue_full.get() >= 1,
        "six writes into a queue of one behind a stalled worker"
    );
    assert!(bounded(cache.flush(Duration::from_secs(15))).await);
    assert_eq!(metrics.queue_depth.get(), 0);
    assert!(metrics.errors.get() >= 1);
    for n in 0..6 {
        let found = bounded(cache.get(&frame_key(n))).await.unwrap();
        assert_eq!(
            found.served_from,
            ServedFrom::Memory,
            "memory kept every value"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_waits_for_every_queued_write() {
    let disk = tempfile::tempdir().unwrap();
    let cache = open(with_disk(memory_only(16 << 20), disk.path(), 64 << 20)).await;
    for n in 0..30 {
        bounded(cache.get_or_compute(&frame_key(n), move || compute_ok(n)))
            .await
            .unwrap();
    }
    assert!(bounded(cache.flush(Duration::from_secs(10))).await);
    assert_eq!(cache.metrics().disk.queue_depth.get(), 0);
    let reader = DiskTier::new(disk.path(), 64 << 20, cache.metrics().disk.clone());
    for n in 0..30 {
        assert_eq!(
            bounded(reader.get(&frame_key(n))).await.unwrap(),
            Some(value(n, 4_000))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_object_store_url_is_refused_naming_the_option() {
    for url in ["ftp://bucket/x", "gs://", "not a url"] {
        let config = with_object_store(
            memory_only(1 << 20),
            lazycache_cache::ObjectStoreOptions {
                url: url.into(),
                gcs_emulator_host: None,
                operation_timeout: Duration::from_secs(1),
                signing_key: None,
            },
        );
        let error = TieredCache::open(config, &prometheus::Registry::new())
            .await
            .err()
            .unwrap_or_else(|| panic!("{url} accepted"));
        assert!(error.to_string().starts_with("--object-store"), "{error}");
    }
}

#[tokio::test]
async fn unreachable_object_store_is_logged_once_naming_the_option() {
    let (logs, _capture) = common::CapturedLogs::start();
    let port = lazycache_testkit::procs::free_port(); // nothing listens there
    let options = gcs_options(&format!("http://127.0.0.1:{port}"), "gone");
    let url = options.url.clone();
    let mut config = with_object_store(memory_only(16 << 20), options);
    config.retry_interval = Duration::from_secs(3600);
    let cache = open(config).await;
    for n in 0..20 {
        bounded(cache.get_or_compute(&frame_key(n), move || compute_ok(n)))
            .await
            .unwrap();
    }
    assert!(bounded(cache.flush(Duration::from_secs(10))).await);
    let lines = logs.lines_containing("--object-store");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains(&url) && lines[0].contains("WARN"),
        "{}",
        lines[0]
    );
    assert_eq!(cache.metrics().object_store.disabled.get(), 1);
    assert_eq!(cache.metrics().object_store.dropped_unavailable.get(), 20);
}

#[tokio::test]
async fn unusable_cache_dir_is_logged_once_naming_the_option() {
    let (logs, _capture) = common::CapturedLogs::start();
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("file"), b"in the way").unwrap();
    let cache_dir = root.path().join("file/cache");
    let mut config = with_disk(memory_only(16 << 20), &cache_dir, 64 << 20);
    config.retry_interval = Duration::from_secs(3600);
    let cache = open(config).await;
    for n in 0..20 {
        bounded(cache.get_or_compute(&frame_key(n), move || compute_ok(n)))
            .await
            .unwrap();
    }
    assert!(bounded(cache.flush(Duration::from_secs(10))).await);
    let lines = logs.lines_containing("--cache-dir");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains(&cache_dir.display().to_string()),
        "{}",
        lines[0]
    );
}
