//! The disk tier: entries in files named by key digest, bounded by bytes, crash-safe, checked on
//! every read, and found again after a restart.
//!
//! The directory is opened lazily: if it cannot be used at start-up (missing permissions, a file
//! in the way, a read-only disk), each later use (as often as the read-through chain's retry
//! interval lets it) tries again, so the tier comes back by itself once the directory is fixed.
//! All file work runs on tokio's blocking pool.

mod index;
mod layout;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::sync::OnceCell;

use crate::envelope;
use crate::error::TierError;
use crate::key::{CacheKey, KeyDigest};
use crate::metrics::TierMetrics;
use crate::tier::{Tier, TierKind};
use crate::value::CachedValue;
use index::DiskIndex;
use layout::Layout;

/// Bounded, crash-safe on-disk cache under one directory. Cloning shares the same tier.
#[derive(Clone)]
pub struct DiskTier {
    shared: Arc<Shared>,
}

struct Shared {
    dir: PathBuf,
    bound_bytes: u64,
    metrics: TierMetrics,
    opened: OnceCell<Arc<OpenDisk>>,
}

/// The tier once its directory is prepared and scanned.
struct OpenDisk {
    layout: Layout,
    index: Mutex<DiskIndex>,
    metrics: TierMetrics,
}

impl DiskTier {
    /// A tier in `dir` holding at most `bound_bytes` of entries (file sizes). Nothing is touched
    /// until [`DiskTier::open`] or the first use.
    pub fn new(dir: impl Into<PathBuf>, bound_bytes: u64, metrics: TierMetrics) -> Self {
        Self {
            shared: Arc::new(Shared {
                dir: dir.into(),
                bound_bytes,
                metrics,
                opened: OnceCell::new(),
            }),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Prepares the directory and finds the entries already there (once; later calls return
    /// at once). An error means the directory is unusable for now.
    pub async fn open(&self) -> Result<(), TierError> {
        self.opened().await.map(|_| ())
    }

    /// Bytes of entries currently held, once open.
    pub fn stored_bytes(&self) -> Option<u64> {
        let disk = self.shared.opened.get()?;
        Some(disk.lock_index().used())
    }

    async fn opened(&self) -> Result<Arc<OpenDisk>, TierError> {
        let shared = &self.shared;
        let disk = shared
            .opened
            .get_or_try_init(|| {
                let dir = shared.dir.clone();
                let bound = shared.bound_bytes;
                let metrics = shared.metrics.clone();
                blocking(move || OpenDisk::open(&dir, bound, metrics).map(Arc::new))
            })
            .await?;
        Ok(Arc::clone(disk))
    }
}

impl Tier for DiskTier {
    fn kind(&self) -> TierKind {
        TierKind::Disk
    }

    async fn get(&self, key: &CacheKey) -> Result<Option<CachedValue>, TierError> {
        let disk = self.opened().await?;
        let canonical = key.canonical().to_owned();
        blocking(move || disk.read(&canonical)).await
    }

    async fn put(&self, key: &CacheKey, value: &CachedValue) -> Result<(), TierError> {
        let disk = self.opened().await?;
        let canonical = key.canonical().to_owned();
        let value = value.clone();
        blocking(move || disk.write(&canonical, &value)).await
    }

    async fn remove(&self, key: &CacheKey) -> Result<(), TierError> {
        let disk = self.opened().await?;
        let digest = key.digest();
        blocking(move || {
            let mut index = disk.lock_index();
            index.remove(&digest);
            let result = disk.layout.delete_entry(&digest);
            disk.refresh_gauge(&index);
            result
        })
        .await
    }
}

impl OpenDisk {
    fn open(dir: &Path, bound: u64, metrics: TierMetrics) -> Result<Self, TierError> {
        let layout = Layout::new(dir);
        let mut found = layout.prepare()?;
        found.sort_by_key(|entry| entry.modified);
        let mut index = DiskIndex::new(bound);
        for entry in &found {
            index.insert(entry.digest, entry.size);
        }
        let victims = index.evict_to_bound();
        tracing::info!(
            dir = %layout.root().display(),
            entries = index.len(),
            bytes = index.used(),
            bound,
            "disk cache opened"
        );
        let disk = Self {
            layout,
            index: Mutex::new(index),
            metrics,
        };
        disk.delete_victims(&victims);
        disk.refresh_gauge(&disk.lock_index());
        Ok(disk)
    }

    fn lock_index(&self) -> MutexGuard<'_, DiskIndex> {
        // The index is consistent after every statement that mutates it; a panic elsewhere while
        // the lock was held leaves nothing half-done, so poisoning carries no information.
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn read(&self, canonical_key: &str) -> Result<Option<CachedValue>, TierError> {
        let digest = KeyDigest::of_canonical(canonical_key);
        if !self.lock_index().touch(&digest) {
            return Ok(None);
        }
        let Some(bytes) = self.layout.read_entry(&digest)? else {
            // Deleted behind our back (by hand, or by a concurrent eviction): forget it.
            self.discard(&digest);
            return Ok(None);
        };
        match envelope::decode(Bytes::from(bytes), canonical_key) {
            Ok(value) => Ok(Some(value)),
            Err(problem) => {
                tracing::warn!(
                    path = %self.layout.entry_path(&digest).display(),
                    %problem,
                    "discarding damaged disk cache entry"
                );
                self.metrics.corrupt_entries.inc();
                self.discard(&digest);
                Ok(None)
            }
        }
    }

    fn write(&self, canonical_key: &str, value: &CachedValue) -> Result<(), TierError> {
        let digest = KeyDigest::of_canonical(canonical_key);
        let size = envelope::encoded_len(canonical_key, value);
        {
            let mut index = self.lock_index();
            let Some(victims) = index.reserve(size) else {
                tracing::debug!(
                    size,
                    "entry does not fit the disk cache bound now; not stored"
                );
                return Ok(());
            };
            self.delete_victims(&victims);
            self.refresh_gauge(&index);
        }
        let temp = match self.layout.write_temp(&digest, canonical_key, value) {
            Ok(temp) => temp,
            Err(error) => {
                self.lock_index().release(size);
                return Err(error);
            }
        };
        // Publishing under the lock keeps files and index in step with concurrent evictions.
        let mut index = self.lock_index();
        match self.layout.publish(&temp, &digest) {
            Ok(()) => {
                index.commit(digest, size);
                self.refresh_gauge(&index);
                Ok(())
            }
            Err(error) => {
                index.release(size);
                Err(error)
            }
        }
    }

    /// Forgets an entry and deletes its file, together under the lock.
    fn discard(&self, digest: &KeyDigest) {
        let mut index = self.lock_index();
        index.remove(digest);
        if let Err(error) = self.layout.delete_entry(digest) {
            tracing::warn!(%error, "cannot delete disk cache entry");
        }
        self.refresh_gauge(&index);
    }

    fn delete_victims(&self, victims: &[KeyDigest]) {
        for victim in victims {
            if let Err(error) = self.layout.delete_entry(victim) {
                tracing::warn!(%error, "cannot delete evicted disk cache entry");
            }
        }
        self.metrics.evictions.inc_by(victims.len() as u64);
    }

    fn refresh_gauge(&self, index: &DiskIndex) {
        self.metrics
            .stored_bytes
            .set(i64::try_from(index.used()).unwrap_or(i64::MAX));
    }
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, TierError> + Send + 'static,
) -> Result<T, TierError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| TierError::Task(e.to_string()))?
}
