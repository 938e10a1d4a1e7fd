//! The disk tier on a real file system: restarts, damage, churn against the bound, stray files,
//! and a writer process killed mid-write.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bounded, frame_key, metadata_key, value};
use lazycache_cache::{CacheKey, CacheMetrics, DiskTier, Tier, TierKind, TierMetrics};

fn metrics() -> TierMetrics {
    CacheMetrics::register(&prometheus::Registry::new())
        .unwrap()
        .tier(TierKind::Disk)
        .clone()
}

fn entry_path(dir: &Path, key: &CacheKey) -> PathBuf {
    let hex = key.digest().to_hex();
    dir.join("entries")
        .join(&hex[..2])
        .join(format!("{hex}.lce"))
}

/// Files under `dir/sub`, recursively, with their sizes.
fn files_under(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut found = Vec::new();
    let Ok(listing) = std::fs::read_dir(dir) else {
        return found;
    };
    for item in listing {
        let item = item.unwrap();
        // A writer may rename or delete a file between the listing and its stat.
        let meta = match item.metadata() {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("{}: {e}", item.path().display()),
        };
        if meta.is_dir() {
            found.extend(files_under(&item.path()));
        } else {
            found.push((item.path(), meta.len()));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_finds_every_entry_again() {
    let dir = tempfile::tempdir().unwrap();
    let first = DiskTier::new(dir.path(), 64 << 20, metrics());
    for n in 0..20 {
        bounded(first.put(&frame_key(n), &value(n, 1_000 + n as usize * 100)))
            .await
            .unwrap();
    }
    bounded(first.put(&metadata_key("a.mov"), &value(99, 300)))
        .await
        .unwrap();
    let stored = first.stored_bytes().unwrap();
    drop(first);

    let second_metrics = metrics();
    let second = DiskTier::new(dir.path(), 64 << 20, second_metrics.clone());
    bounded(second.open()).await.unwrap();
    assert_eq!(second.stored_bytes(), Some(stored));
    assert_eq!(second_metrics.stored_bytes.get(), stored as i64);
    for n in 0..20 {
        let got = bounded(second.get(&frame_key(n))).await.unwrap();
        assert_eq!(got, Some(value(n, 1_000 + n as usize * 100)), "entry {n}");
    }
    assert_eq!(
        bounded(second.get(&metadata_key("a.mov"))).await.unwrap(),
        Some(value(99, 300))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_entries_are_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let tier_metrics = metrics();
    let tier = DiskTier::new(dir.path(), 64 << 20, tier_metrics.clone());
    for n in 0..4 {
        bounded(tier.put(&frame_key(n), &value(n, 50_000)))
            .await
            .unwrap();
    }

    // A flipped bit in the value.
    let flipped = entry_path(dir.path(), &frame_key(0));
    let mut bytes = std::fs::read(&flipped).unwrap();
    bytes[30_000] ^= 1;
    std::fs::write(&flipped, bytes).unwrap();
    // A truncated file.
    let truncated = entry_path(dir.path(), &frame_key(1));
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() - 1]).unwrap();
    // Another key's entry under this key's name.
    let swapped = entry_path(dir.path(), &frame_key(2));
    std::fs::copy(entry_path(dir.path(), &frame_key(3)), &swapped).unwrap();

    for n in 0..3 {
        assert_eq!(
            bounded(tier.get(&frame_key(n))).await.unwrap(),
            None,
            "entry {n}"
        );
    }
    assert!(!flipped.exists() && !truncated.exists() && !swapped.exists());
    assert_eq!(tier_metrics.corrupt_entries.get(), 3);
    assert_eq!(
        bounded(tier.get(&frame_key(3))).await.unwrap(),
        Some(value(3, 50_000)),
        "the intact entry is still served"
    );
    let remaining: u64 = files_under(&dir.path().join("entries"))
        .iter()
        .map(|f| f.1)
        .sum();
    assert_eq!(
        tier.stored_bytes(),
        Some(remaining),
        "accounting follows the discards"
    );

    // A damaged file found at start-up is discarded on its first read, too.
    let reopened_metrics = metrics();
    let reopened = DiskTier::new(dir.path(), 64 << 20, reopened_metrics.clone());
    std::fs::write(entry_path(dir.path(), &frame_key(3)), b"LZCE garbage").unwrap();
    assert_eq!(bounded(reopened.get(&frame_key(3))).await.unwrap(), None);
    assert_eq!(reopened_metrics.corrupt_entries.get(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bound_holds_under_concurrent_churn() {
    const BOUND: u64 = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let tier_metrics = metrics();
    let tier = DiskTier::new(dir.path(), BOUND, tier_metrics.clone());
    bounded(tier.open()).await.unwrap();

    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let tier = tier.clone();
        let sampling = Arc::clone(&sampling);
        tokio::spawn(async move {
            let mut samples = 0u32;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                let used = tier.stored_bytes().unwrap();
                assert!(used <= BOUND, "index holds {used} bytes, bound {BOUND}");
                samples += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            samples
        })
    };
    let writers = (0..6u64).map(|writer| {
        let tier = tier.clone();
        tokio::spawn(async move {
            for round in 0..40u64 {
                let n = writer * 1000 + round;
                let len = 10_000 + ((n * 7919) % 90_000) as usize;
                tier.put(&frame_key(n), &value(n, len)).await.unwrap();
                // Re-read an earlier entry of this writer: evicted or intact, never wrong.
                let earlier = writer * 1000 + round / 2;
                let earlier_len = 10_000 + ((earlier * 7919) % 90_000) as usize;
                if let Some(got) = tier.get(&frame_key(earlier)).await.unwrap() {
                    assert_eq!(got, value(earlier, earlier_len));
                }
            }
        })
    });
    for writer in writers {
        bounded(writer).await.unwrap();
    }
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    assert!(bounded(sampler).await.unwrap() > 0);

    let entries = files_under(&dir.path().join("entries"));
    let on_disk: u64 = entries.iter().map(|f| f.1).sum();
    assert!(on_disk <= BOUND, "{on_disk} bytes on disk, bound {BOUND}");
    assert_eq!(tier.stored_bytes(), Some(on_disk), "index and files agree");
    assert!(
        files_under(&dir.path().join("tmp")).is_empty(),
        "no temp files left"
    );
    assert!(
        tier_metrics.evictions.get() > 0,
        "churn past the bound evicts"
    );
    assert!(
        on_disk > BOUND / 2,
        "eviction does not empty the cache: {on_disk} bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smaller_bound_at_restart_evicts_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let tier = DiskTier::new(dir.path(), 64 << 20, metrics());
    for n in 0..10 {
        bounded(tier.put(&frame_key(n), &value(n, 100_000)))
            .await
            .unwrap();
        // Distinct modification times order the entries for the start-up scan.
        let path = entry_path(dir.path(), &frame_key(n));
        let when = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + n * 60);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(when)
            .unwrap();
    }
    drop(tier);
    let smaller = DiskTier::new(dir.path(), 350_000, metrics());
    bounded(smaller.open()).await.unwrap();
    assert!(smaller.stored_bytes().unwrap() <= 350_000);
    for n in 0..7 {
        assert_eq!(
            bounded(smaller.get(&frame_key(n))).await.unwrap(),
            None,
            "old {n}"
        );
    }
    for n in 7..10 {
        assert_eq!(
            bounded(smaller.get(&frame_key(n))).await.unwrap(),
            Some(value(n, 100_000)),
            "recent {n}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_deletes_stray_files_but_nothing_foreign() {
    let dir = tempfile::tempdir().unwrap();
    let tier = DiskTier::new(dir.path(), 1 << 20, metrics());
    bounded(tier.put(&frame_key(1), &value(1, 500)))
        .await
        .unwrap();
    drop(tier);
    std::fs::write(dir.path().join("tmp/abc.123.0.tmp"), b"half an entry").unwrap();
    std::fs::write(dir.path().join("entries/00/not-a-digest.lce"), b"x").unwrap();
    std::fs::write(dir.path().join("README"), b"someone else's file").unwrap();
    std::fs::write(dir.path().join("entries/00/notes.txt"), b"also not ours").unwrap();

    let reopened = DiskTier::new(dir.path(), 1 << 20, metrics());
    bounded(reopened.open()).await.unwrap();
    assert!(files_under(&dir.path().join("tmp")).is_empty());
    assert!(!dir.path().join("entries/00/not-a-digest.lce").exists());
    assert!(dir.path().join("README").exists());
    assert!(dir.path().join("entries/00/notes.txt").exists());
    assert_eq!(
        bounded(reopened.get(&frame_key(1))).await.unwrap(),
        Some(value(1, 500))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_larger_than_the_bound_is_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let tier = DiskTier::new(dir.path(), 10_000, metrics());
    bounded(tier.put(&frame_key(1), &value(1, 5_000)))
        .await
        .unwrap();
    bounded(tier.put(&frame_key(2), &value(2, 20_000)))
        .await
        .unwrap();
    assert_eq!(bounded(tier.get(&frame_key(2))).await.unwrap(), None);
    assert_eq!(
        bounded(tier.get(&frame_key(1))).await.unwrap(),
        Some(value(1, 5_000)),
        "a refused entry evicts nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emptied_cache_dir_is_rebuilt_on_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let tier = DiskTier::new(dir.path(), 1 << 20, metrics());
    bounded(tier.put(&frame_key(1), &value(1, 500)))
        .await
        .unwrap();
    std::fs::remove_dir_all(dir.path().join("entries")).unwrap();
    std::fs::remove_dir_all(dir.path().join("tmp")).unwrap();

    assert_eq!(bounded(tier.get(&frame_key(1))).await.unwrap(), None);
    bounded(tier.put(&frame_key(2), &value(2, 700)))
        .await
        .unwrap();
    assert_eq!(
        bounded(tier.get(&frame_key(2))).await.unwrap(),
        Some(value(2, 700))
    );
    assert_eq!(
        tier.stored_bytes(),
        Some(
            std::fs::metadata(entry_path(dir.path(), &frame_key(2)))
                .unwrap()
                .len()
        )
    );
}

/// Where the child writer puts its entries; set only in the child process.
const CHILD_DIR_ENV: &str = "LAZYCACHE_CACHE_TEST_CHILD_DIR";
const CHILD_ROUND_ENV: &str = "LAZYCACHE_CACHE_TEST_CHILD_ROUND";
const CHILD_VALUE_LEN: usize = 8 << 20;

fn child_key(round: u64, n: u64) -> CacheKey {
    frame_key(round * 10_000 + n)
}

/// Not a test on its own: the body of the child process that
/// `killed_writer_never_leaves_a_truncated_entry` starts and kills. It writes entries forever,
/// announcing each on stdout. Run normally (without the variable), it returns at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_process_writer() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let round: u64 = std::env::var(CHILD_ROUND_ENV).unwrap().parse().unwrap();
    let tier = DiskTier::new(PathBuf::from(dir), 1 << 34, metrics());
    tier.open().await.unwrap();
    for n in 0.. {
        println!("writing {n}");
        let key = child_key(round, n);
        tier.put(&key, &value(round * 10_000 + n, CHILD_VALUE_LEN))
            .await
            .unwrap();
        println!("wrote {n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_writer_never_leaves_a_truncated_entry() {
    let dir = tempfile::tempdir().unwrap();
    let mut completed: Vec<BTreeSet<u64>> = Vec::new();
    let mut started: Vec<u64> = Vec::new();
    for round in 0..3u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_process_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR_ENV, dir.path())
            .env(CHILD_ROUND_ENV, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Let one entry complete, then kill while the next one is half written: its temp file
        // exists in tmp/ and has not been renamed yet.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut lines = Vec::new();
        loop {
            assert!(Instant::now() < deadline, "child never got mid-write");
            lines.extend(lines_rx.try_iter());
            let seen_complete = lines.iter().any(|line| line.starts_with("wrote "));
            let mid_write = files_under(&dir.path().join("tmp"))
                .iter()
                .any(|(_, len)| *len > 0);
            if seen_complete && mid_write {
                child.kill().unwrap(); // SIGKILL
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        child.wait().unwrap();
        reader.join().unwrap();
        lines.extend(lines_rx.try_iter());
        let mut wrote = BTreeSet::new();
        let mut highest_started = 0;
        for line in &lines {
            if let Some(n) = line.strip_prefix("wrote ") {
                wrote.insert(n.parse::<u64>().unwrap());
            } else if let Some(n) = line.strip_prefix("writing ") {
                highest_started = highest_started.max(n.parse::<u64>().unwrap());
            }
        }
        completed.push(wrote);
        started.push(highest_started);
    }

    let tier_metrics = metrics();
    let tier = DiskTier::new(dir.path(), 1 << 34, tier_metrics.clone());
    bounded(tier.open()).await.unwrap();
    assert!(
        files_under(&dir.path().join("tmp")).is_empty(),
        "stray temp files are deleted at start-up"
    );
    for round in 0..3u64 {
        for n in 0..=started[round as usize] + 1 {
            let got = bounded(tier.get(&child_key(round, n))).await.unwrap();
            match got {
                Some(got) => assert_eq!(
                    got,
                    value(round * 10_000 + n, CHILD_VALUE_LEN),
                    "round {round} entry {n} is not the value written"
                ),
                None => assert!(
                    !completed[round as usize].contains(&n),
                    "round {round} entry {n} was written completely but is gone"
                ),
            }
        }
    }
    assert_eq!(
        tier_metrics.corrupt_entries.get(),
        0,
        "no damaged entry is ever found: writes are atomic"
    );
}
