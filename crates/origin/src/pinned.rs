//! An open file: one version of one file, read through the range cache.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::error::OriginResult;
use crate::origin::{FileMeta, Origin};
use crate::range_cache::{BlockRead, FileKey, RangeCache};
use crate::relpath::RelPath;

/// Called when a read finds the file changed, so whatever was derived from the old version
/// (cached validators, parsed indexes) can be dropped.
pub type ChangedHook = Arc<dyn Fn(&RelPath) + Send + Sync>;

/// One version of one file, pinned when opened: every read is of that version or fails with
/// [`OriginError::Changed`](crate::OriginError::Changed).
pub struct OriginFile {
    origin: Arc<dyn Origin>,
    key: Arc<FileKey>,
    meta: FileMeta,
    cache: RangeCache,
    run: Mutex<SequentialRun>,
    on_changed: Option<ChangedHook>,
}

impl std::fmt::Debug for OriginFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginFile")
            .field("file", &self.describe())
            .field("validator", &self.key.validator)
            .finish_non_exhaustive()
    }
}

/// The reads so far that followed each other without a gap.
#[derive(Default)]
struct SequentialRun {
    next: u64,
    length: u64,
}

/// Sequential reads fetch ahead by this fraction of what they already read in sequence, so
/// that read-ahead never adds more than a quarter to what a caller reads (SPEC §4's 1.25).
const READAHEAD_DIVISOR: u64 = 4;

impl OriginFile {
    /// Stats `path` at `origin` and pins it.
    pub async fn open(
        origin: Arc<dyn Origin>,
        path: RelPath,
        cache: RangeCache,
    ) -> OriginResult<Self> {
        cache.counters().stat_request();
        let meta = origin.stat(&path).await?;
        Ok(Self::pinned(origin, path, meta, cache, None))
    }

    /// The version `meta` of `path` (from an earlier stat).
    pub fn pinned(
        origin: Arc<dyn Origin>,
        path: RelPath,
        meta: FileMeta,
        cache: RangeCache,
        on_changed: Option<ChangedHook>,
    ) -> Self {
        let key = Arc::new(FileKey {
            origin: origin.describe(),
            path,
            validator: meta.validator(),
        });
        Self {
            origin,
            key,
            meta,
            cache,
            run: Mutex::new(SequentialRun::default()),
            on_changed,
        }
    }

    /// Size and validators of the pinned version.
    pub fn meta(&self) -> &FileMeta {
        &self.meta
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.meta.size
    }

    /// The pinned version's validator (see [`FileMeta::validator`]).
    pub fn validator(&self) -> &str {
        &self.key.validator
    }

    /// The path inside its origin.
    pub fn path(&self) -> &RelPath {
        &self.key.path
    }

    /// The range cache this file is read through.
    pub fn cache(&self) -> &RangeCache {
        &self.cache
    }

    /// The file's location for messages (no credentials).
    pub fn describe(&self) -> String {
        format!("{}{}", self.key.origin, self.key.path)
    }

    /// Up to `len` bytes from `offset`; fewer only at the end of the file, none past it.
    pub async fn read_at(&self, offset: u64, len: usize) -> OriginResult<Bytes> {
        let end = offset.saturating_add(len as u64).min(self.meta.size);
        self.read(offset..end).await
    }

    /// Up to `len` bytes from `offset`, fetching no more than asked (no read-ahead, and the
    /// sequence that read-ahead follows starts again after it): bytes a caller reads in case it
    /// needs them (a warm decode's lookahead), which read-ahead must not multiply.
    pub async fn read_exactly_at(&self, offset: u64, len: usize) -> OriginResult<Bytes> {
        let end = offset.saturating_add(len as u64).min(self.meta.size);
        self.read_range(offset..end, false).await
    }

    /// The bytes `range` (clamped to the file).
    pub async fn read(&self, range: Range<u64>) -> OriginResult<Bytes> {
        self.read_range(range, true).await
    }

    async fn read_range(&self, range: Range<u64>, read_ahead: bool) -> OriginResult<Bytes> {
        let end = range.end.min(self.meta.size);
        if range.start >= end {
            return Ok(Bytes::new());
        }
        let want = range.start..end;
        let ahead = if read_ahead { self.readahead(&want) } else { 0 };
        let prefetch_end = end.saturating_add(ahead).min(self.meta.size);
        let result = self
            .cache
            .read(BlockRead {
                origin: &self.origin,
                key: &self.key,
                meta: &self.meta,
                want,
                prefetch_end,
            })
            .await;
        if let (Err(error), Some(hook)) = (&result, &self.on_changed)
            && error.is_changed()
        {
            hook(&self.key.path);
        }
        result
    }

    /// How far past `want` to fetch: nothing for a read that does not continue the previous
    /// one, else a quarter of the sequence read so far (capped).
    fn readahead(&self, want: &Range<u64>) -> u64 {
        let mut run = self
            .run
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = if want.start == run.next {
            run.length
        } else {
            0
        };
        run.length = before + (want.end - want.start);
        run.next = want.end;
        (before / READAHEAD_DIVISOR).min(self.cache.config().max_readahead_bytes)
    }
}
