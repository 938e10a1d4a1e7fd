//! The shared, bounded, coalescing cache of origin bytes.
//!
//! Files are cut into aligned blocks. A read takes the blocks it covers from the cache, waits
//! for blocks another reader is already fetching, and fetches the rest as runs of consecutive
//! blocks, one origin request per run. Alignment costs less than two blocks per read, which is
//! what keeps SPEC §4's bound (≤ 1.25 × sample + 64 KiB) with 32 KiB blocks and no fixed
//! read-ahead; the only read-ahead is the one [`OriginFile`](crate::OriginFile) asks for on
//! sequential reads — a quarter of what was already read in sequence, added to a request the
//! read makes anyway.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use crate::error::{OriginError, OriginResult};
use crate::origin::{FileMeta, Origin};
use crate::relpath::RelPath;
use crate::stats::{Counters, OriginStats};

/// Sizes of the range cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeCacheConfig {
    /// Alignment and caching unit. Each read may fetch up to two blocks beyond what it needs.
    pub block_size: u64,
    /// Memory bound of the cached blocks, in bytes.
    pub capacity_bytes: u64,
    /// Longest single origin request; longer runs are split.
    pub max_request_bytes: u64,
    /// Upper bound of the read-ahead of sequential reads.
    pub max_readahead_bytes: u64,
}

impl Default for RangeCacheConfig {
    fn default() -> Self {
        Self {
            block_size: 32 << 10,
            capacity_bytes: 256 << 20,
            max_request_bytes: 16 << 20,
            // What a sequential read fetches past the bytes asked for is read past a cold
            // frame's last packet too: with a warm decode's 512 KiB lookahead (fetched exactly,
            // overlapping it) and the block alignment, within SPEC §4's 1 MiB past a GOP span.
            // 4 MiB read a 1080p cold frame 2.7 MB past its span.
            max_readahead_bytes: 512 << 10,
        }
    }
}

/// Which version of which file, of which origin: the cache key of its blocks.
#[derive(Debug, Hash, PartialEq, Eq)]
pub(crate) struct FileKey {
    pub(crate) origin: String,
    pub(crate) path: RelPath,
    pub(crate) validator: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct BlockKey {
    file: Arc<FileKey>,
    index: u64,
}

type SharedFetch = Shared<BoxFuture<'static, OriginResult<Bytes>>>;

/// A run of blocks being fetched: every reader of any of its blocks awaits the same request.
#[derive(Clone)]
struct Pending {
    fetch: SharedFetch,
    start: u64,
}

/// Where a block's bytes come from.
#[derive(Clone)]
enum Block {
    Cached(Bytes),
    Fetching(Pending),
}

struct Inner {
    config: RangeCacheConfig,
    blocks: moka::sync::Cache<BlockKey, Bytes>,
    in_flight: Mutex<HashMap<BlockKey, Pending>>,
    counters: Arc<Counters>,
}

/// The process-wide range cache; cheap to clone (all clones share it).
#[derive(Clone)]
pub struct RangeCache {
    inner: Arc<Inner>,
}

/// What one read asks of the cache.
pub(crate) struct BlockRead<'a> {
    pub(crate) origin: &'a Arc<dyn Origin>,
    pub(crate) key: &'a Arc<FileKey>,
    pub(crate) meta: &'a FileMeta,
    /// The bytes wanted; non-empty, within the file.
    pub(crate) want: Range<u64>,
    /// When the read must fetch anyway, extend that request up to here (≥ `want.end`,
    /// ≤ size).
    pub(crate) prefetch_end: u64,
}

impl RangeCache {
    /// An empty cache.
    pub fn new(config: RangeCacheConfig) -> Self {
        Self::with_counters(config, Arc::new(Counters::default()))
    }

    pub(crate) fn with_counters(mut config: RangeCacheConfig, counters: Arc<Counters>) -> Self {
        config.block_size = config.block_size.max(512);
        config.max_request_bytes = config.max_request_bytes.max(config.block_size);
        let blocks = moka::sync::Cache::builder()
            .max_capacity(config.capacity_bytes)
            .weigher(|_key: &BlockKey, bytes: &Bytes| {
                u32::try_from(bytes.len() + 64).unwrap_or(u32::MAX)
            })
            .build();
        Self {
            inner: Arc::new(Inner {
                config,
                blocks,
                in_flight: Mutex::new(HashMap::new()),
                counters,
            }),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &RangeCacheConfig {
        &self.inner.config
    }

    /// Origin and cache counters since start.
    pub fn stats(&self) -> OriginStats {
        self.inner.counters.snapshot()
    }

    pub(crate) fn counters(&self) -> &Arc<Counters> {
        &self.inner.counters
    }

    /// Bytes held by cached blocks (approximate until pending evictions run).
    pub fn cached_bytes(&self) -> u64 {
        self.inner.blocks.run_pending_tasks();
        self.inner.blocks.weighted_size()
    }

    /// The bytes `read.want`, through the cache.
    pub(crate) async fn read(&self, read: BlockRead<'_>) -> OriginResult<Bytes> {
        let block_size = self.inner.config.block_size;
        let first = read.want.start / block_size;
        let last_needed = (read.want.end - 1) / block_size;
        let last_fetched = (read.prefetch_end.max(read.want.end) - 1) / block_size;
        let needed = self.claim(&read, first..last_needed + 1, last_fetched + 1);
        let mut pieces = Vec::with_capacity(needed.len());
        for (index, block) in (first..).zip(needed) {
            let block_start = index * block_size;
            let bytes = match block {
                Block::Cached(bytes) => bytes,
                Block::Fetching(pending) => {
                    let run = pending.fetch.await?;
                    let offset = to_usize(block_start - pending.start);
                    let end = (offset + to_usize(block_size)).min(run.len());
                    run.slice(offset..end)
                }
            };
            // The part of this block the read wants.
            let from = to_usize(read.want.start.saturating_sub(block_start)).min(bytes.len());
            let to = to_usize(read.want.end - block_start).min(bytes.len());
            pieces.push(bytes.slice(from..to));
        }
        Ok(concat(pieces))
    }

    /// Under the lock: looks every block from `needed.start` up to `fetch_end` up, starts one
    /// fetch per run of missing blocks, and returns where each needed block comes from.
    fn claim(&self, read: &BlockRead<'_>, needed: Range<u64>, fetch_end: u64) -> Vec<Block> {
        let block_size = self.inner.config.block_size;
        let max_run = to_usize(self.inner.config.max_request_bytes / block_size);
        let mut in_flight = self.lock_in_flight();
        let mut found: Vec<Option<Block>> = (needed.start..fetch_end)
            .map(|index| {
                let key = BlockKey {
                    file: read.key.clone(),
                    index,
                };
                match self.inner.blocks.get(&key) {
                    Some(bytes) => Some(Block::Cached(bytes)),
                    None => in_flight.get(&key).cloned().map(Block::Fetching),
                }
            })
            .collect();
        let needed_count = to_usize(needed.end - needed.start);
        let hits = found[..needed_count]
            .iter()
            .filter(|b| matches!(b, Some(Block::Cached(_))))
            .count();
        self.inner
            .counters
            .blocks(hits as u64, (needed_count - hits) as u64);

        // Read-ahead rides along with a request the read makes anyway; alone it would cost a
        // request per read.
        if found[..needed_count].iter().all(Option::is_some) {
            found.truncate(needed_count);
        }

        let mut blocks = Vec::with_capacity(found.len());
        let mut position = 0;
        while position < found.len() {
            if let Some(block) = found[position].take() {
                blocks.push(block);
                position += 1;
                continue;
            }
            let run_start = position;
            while position < found.len()
                && found[position].is_none()
                && position - run_start < max_run
            {
                position += 1;
            }
            let run = needed.start + run_start as u64..needed.start + position as u64;
            let pending = self.start_fetch(read, run, &mut in_flight);
            blocks.extend(std::iter::repeat_n(
                Block::Fetching(pending),
                position - run_start,
            ));
        }
        blocks.truncate(needed_count);
        blocks
    }

    /// Spawns the origin request for `blocks` and registers it for concurrent readers. The
    /// request runs to completion even if every reader goes away, so its bytes still land in
    /// the cache.
    fn start_fetch(
        &self,
        read: &BlockRead<'_>,
        blocks: Range<u64>,
        in_flight: &mut HashMap<BlockKey, Pending>,
    ) -> Pending {
        let block_size = self.inner.config.block_size;
        let start = blocks.start * block_size;
        let end = (blocks.end * block_size).min(read.meta.size);
        let task = {
            let this = self.clone();
            let origin = read.origin.clone();
            let key = read.key.clone();
            let meta = read.meta.clone();
            let blocks = blocks.clone();
            tokio::spawn(async move {
                let result = origin.read(&key.path, &meta, start..end).await;
                this.finish_fetch(&key, blocks, start, &result);
                result
            })
        };
        let what = format!("{}{}", read.key.origin, read.key.path);
        let fetch = task
            .map(move |joined| {
                joined.unwrap_or_else(|e| {
                    Err(OriginError::unavailable(
                        what,
                        format!("fetch task failed: {e}"),
                    ))
                })
            })
            .boxed()
            .shared();
        let pending = Pending { fetch, start };
        for index in blocks {
            let key = BlockKey {
                file: read.key.clone(),
                index,
            };
            in_flight.insert(key, pending.clone());
        }
        pending
    }

    /// Caches a fetched run block by block (copied, so the memory bound counts what is held),
    /// then retires its in-flight entries: a reader finds the bytes in one place or the other.
    fn finish_fetch(
        &self,
        file: &Arc<FileKey>,
        blocks: Range<u64>,
        start: u64,
        result: &OriginResult<Bytes>,
    ) {
        let block_size = self.inner.config.block_size;
        if let Ok(run) = result {
            self.inner.counters.range_request(run.len() as u64);
            for index in blocks.clone() {
                let offset = to_usize(index * block_size - start);
                if offset >= run.len() {
                    break;
                }
                let end = (offset + to_usize(block_size)).min(run.len());
                let key = BlockKey {
                    file: file.clone(),
                    index,
                };
                self.inner
                    .blocks
                    .insert(key, Bytes::copy_from_slice(&run[offset..end]));
            }
        } else {
            self.inner.counters.range_request(0);
        }
        let mut in_flight = self.lock_in_flight();
        for index in blocks {
            in_flight.remove(&BlockKey {
                file: file.clone(),
                index,
            });
        }
    }

    fn lock_in_flight(&self) -> MutexGuard<'_, HashMap<BlockKey, Pending>> {
        // The map stays consistent even if a holder panicked: every change is one insert/remove.
        self.inner
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn concat(mut pieces: Vec<Bytes>) -> Bytes {
    if pieces.len() == 1 {
        return pieces.pop().unwrap_or_default();
    }
    let mut out = BytesMut::with_capacity(pieces.iter().map(Bytes::len).sum());
    for piece in &pieces {
        out.extend_from_slice(piece);
    }
    out.freeze()
}
