//! Cache benchmarks: a memory-tier hit through the read-through chain, and a disk-tier hit of a
//! 1 MiB entry (read, length, checksum and key checks included). Targets: ≤ 2 µs and ≤ 1 ms.
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark set-up: failing loudly is the point

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use lazycache_cache::{
    CacheConfig, CacheKey, CacheMetrics, CachedValue, DiskTier, Tier, TierKind, TieredCache,
};

fn frame_key(frame: u64) -> CacheKey {
    CacheKey::new(
        "frame",
        &[
            ("mirror", "rawdata.oceanobservatories.org"),
            (
                "path",
                "RS03ASHS/PN03B/06-CAMHDA301/2016/01/01/CAMHDA301-20160101T000000Z.mov",
            ),
            ("validator", "\"5e8f1a2b-4c3d9e00\""),
            ("frame", &frame.to_string()),
            ("format", "jpg"),
            ("width", "640"),
            ("quality", "75"),
        ],
    )
}

fn value(len: usize) -> CachedValue {
    CachedValue::new(
        "image/jpeg",
        (0..len).map(|i| (i * 31 % 251) as u8).collect::<Vec<_>>(),
    )
}

async fn not_cached() -> Result<CachedValue, std::io::Error> {
    panic!("the benchmark expected a hit")
}

fn memory_hit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cache = runtime.block_on(async {
        let config = CacheConfig::from_options(256 << 20, None, 0, None);
        let cache = TieredCache::open(config, &prometheus::Registry::new())
            .await
            .unwrap();
        for frame in 0..1_000 {
            cache.put(&frame_key(frame), value(100_000)).await;
        }
        cache
    });
    let key = frame_key(500);
    c.bench_function("cache/memory_hit_100kB", |b| {
        b.iter_custom(|iterations| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iterations {
                    let found = cache.get_or_compute(&key, not_cached).await.unwrap();
                    std::hint::black_box(found);
                }
                start.elapsed()
            })
        });
    });
}

fn disk_hit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let metrics = CacheMetrics::register(&prometheus::Registry::new()).unwrap();
    let tier = DiskTier::new(dir.path(), 1 << 30, metrics.tier(TierKind::Disk).clone());
    let key = frame_key(1);
    let one_mib = value(1 << 20);
    runtime.block_on(tier.put(&key, &one_mib)).unwrap();
    let mut group = c.benchmark_group("cache");
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("disk_hit_1MiB", |b| {
        b.iter_custom(|iterations| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iterations {
                    let found = tier.get(&key).await.unwrap();
                    assert_eq!(found.as_ref().map(CachedValue::len), Some(1 << 20));
                    std::hint::black_box(found);
                }
                start.elapsed()
            })
        });
    });
    group.finish();
}

criterion_group!(benches, memory_hit, disk_hit);
criterion_main!(benches);
