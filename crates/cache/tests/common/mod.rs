//! Shared helpers of the cache tests: keys, values, configurations, a fake-gcs-server bucket and
//! S3 options.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // each test binary uses a subset

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use lazycache_cache::{
    CacheConfig, CacheKey, CachedValue, DiskOptions, ObjectStoreOptions, SettingNames, TieredCache,
};
use lazycache_testkit::fake_gcs::FakeGcs;

/// Upper bound for any single awaited step in these tests: a hang fails instead of stalling.
pub const STEP: Duration = Duration::from_secs(20);

/// A frame-like key: the cache knows no frames, only kinds and fields.
pub fn frame_key(n: u64) -> CacheKey {
    CacheKey::new(
        "frame",
        &[
            ("mirror", "test-mirror"),
            ("path", "dir/movie.mov"),
            ("validator", "\"etag-1\""),
            ("frame", &n.to_string()),
            ("format", "png"),
        ],
    )
    .expecting("image/png", FRAME_BOUND)
}

/// The size bound the test keys declare for frames.
pub const FRAME_BOUND: u64 = 8 << 20;

pub fn metadata_key(path: &str) -> CacheKey {
    CacheKey::new(
        "metadata",
        &[
            ("mirror", "test-mirror"),
            ("path", path),
            ("validator", "\"etag-1\""),
        ],
    )
    .expecting("application/json", 1 << 20)
}

/// Deterministic bytes for `seed`, so a reader can check exactly what it got.
pub fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

pub fn value(seed: u64, len: usize) -> CachedValue {
    CachedValue::new("image/png", payload(seed, len))
}

/// The settings a server names its tiers by (the cache's caller chooses them).
pub const SERVER_SETTING_NAMES: SettingNames = SettingNames {
    memory: "--memory-cache-size",
    disk: "--cache-dir",
    object_store: "--object-store",
};

/// A configuration with only the memory tier, and short intervals for tests.
pub fn memory_only(memory_bytes: u64) -> CacheConfig {
    let mut config = CacheConfig::from_options(memory_bytes, None, 0, None);
    config.setting_names = SERVER_SETTING_NAMES;
    config.retry_interval = Duration::from_millis(100);
    config.compute_timeout = Duration::from_secs(10);
    config
}

pub fn with_disk(mut config: CacheConfig, dir: &Path, bound_bytes: u64) -> CacheConfig {
    config.disk = Some(DiskOptions {
        dir: dir.to_path_buf(),
        bound_bytes,
    });
    config
}

pub fn with_object_store(mut config: CacheConfig, options: ObjectStoreOptions) -> CacheConfig {
    config.object_store = Some(options);
    config
}

/// Options for `gs://bucket/prefix` on a fake-gcs-server at `emulator`.
pub fn gcs_options(emulator: &str, bucket: &str) -> ObjectStoreOptions {
    ObjectStoreOptions {
        url: format!("gs://{bucket}/lazycache"),
        gcs_emulator_host: Some(emulator.to_string()),
        operation_timeout: Duration::from_secs(3),
        signing_key: None,
    }
}

/// Options for `s3://bucket/lazycache`. The S3 client reads its endpoint and credentials from
/// the process's `AWS_*` variables (see `lazycache_testkit::s3::S3::env`).
pub fn s3_options(bucket: &str) -> ObjectStoreOptions {
    ObjectStoreOptions {
        url: format!("s3://{bucket}/lazycache"),
        gcs_emulator_host: None,
        operation_timeout: Duration::from_secs(3),
        signing_key: None,
    }
}

/// Options for object_store's local file store in `dir`.
pub fn file_store_options(dir: &Path) -> ObjectStoreOptions {
    ObjectStoreOptions {
        url: format!("file://{}", dir.display()),
        gcs_emulator_host: None,
        operation_timeout: Duration::from_secs(3),
        signing_key: None,
    }
}

/// A running fake-gcs-server with one bucket.
pub fn fake_gcs(bucket: &str) -> FakeGcs {
    let gcs = FakeGcs::start();
    gcs.create_bucket(bucket);
    gcs
}

pub async fn open(config: CacheConfig) -> TieredCache {
    bounded(TieredCache::open(config, &prometheus::Registry::new()))
        .await
        .expect("cache opens")
}

/// Awaits `future`, failing the test if it takes longer than [`STEP`].
pub async fn bounded<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, future)
        .await
        .expect("step did not finish in time")
}

/// Polls `condition` until it holds, failing the test after [`STEP`].
pub async fn eventually(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + STEP;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A computation that must not run (the value is expected from a tier).
pub async fn no_compute() -> Result<CachedValue, std::io::Error> {
    panic!("computed although a tier had the value")
}

/// Log lines captured from the current thread (use a current-thread runtime so that the cache's
/// tasks log on it too).
///
/// One global subscriber writes each event into the buffer of the thread that emitted it, if
/// that thread is capturing. Per-thread subscribers (`set_default`) would not do: tracing caches
/// per-callsite interest process-wide, so events of one test can go unseen by another's.
#[derive(Clone, Default)]
pub struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

/// Ends a capture when dropped.
pub struct CaptureGuard;

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<CapturedLogs>> = const { std::cell::RefCell::new(None) };
}

impl CapturedLogs {
    /// Starts capturing this thread's events at INFO and above.
    pub fn start() -> (Self, CaptureGuard) {
        static GLOBAL: std::sync::Once = std::sync::Once::new();
        GLOBAL.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_writer(|| {
                    CAPTURE
                        .with(|capture| capture.borrow().clone())
                        .map_or_else(
                            || Box::new(std::io::sink()) as Box<dyn std::io::Write>,
                            |logs| Box::new(logs) as Box<dyn std::io::Write>,
                        )
                })
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .finish();
            tracing::subscriber::set_global_default(subscriber).unwrap();
        });
        let logs = Self::default();
        CAPTURE.with(|capture| *capture.borrow_mut() = Some(logs.clone()));
        (logs, CaptureGuard)
    }

    pub fn lines_containing(&self, needle: &str) -> Vec<String> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .filter(|line| line.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURE.with(|capture| *capture.borrow_mut() = None);
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
