//! The bounded write-behind queue of one tier: writes to disk and the object store happen after
//! the value is already served from memory. The queue is bounded by entries and by bytes (the
//! values it holds, writes in progress included); a write over either bound is dropped
//! (counted), and [`WriteBehind::flush`] waits for everything queued, for shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, mpsc, watch};

use crate::guarded::Guarded;
use crate::key::CacheKey;
use crate::metrics::TierMetrics;
use crate::tier::Tier;
use crate::value::CachedValue;

struct Job {
    key: CacheKey,
    value: CachedValue,
}

/// Queue and workers writing into one tier.
pub(crate) struct WriteBehind {
    sender: mpsc::Sender<Job>,
    /// Writes queued or in progress.
    pending: watch::Sender<usize>,
    /// Bytes of the values queued or being written, and their bound.
    bytes: Arc<AtomicU64>,
    max_bytes: u64,
    metrics: TierMetrics,
}

impl WriteBehind {
    /// Starts `workers` tasks (on the current tokio runtime) draining a queue of `capacity`
    /// writes and `max_bytes` bytes.
    pub(crate) fn start<T: Tier>(
        tier: Arc<Guarded<T>>,
        capacity: usize,
        max_bytes: u64,
        workers: usize,
        metrics: TierMetrics,
    ) -> Self {
        let bytes = Arc::new(AtomicU64::new(0));
        let (sender, receiver) = mpsc::channel::<Job>(capacity.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        let (pending, _) = watch::channel(0usize);
        for _ in 0..workers.max(1) {
            let receiver = Arc::clone(&receiver);
            let tier = Arc::clone(&tier);
            let pending = pending.clone();
            let metrics = metrics.clone();
            let bytes = Arc::clone(&bytes);
            tokio::spawn(async move {
                loop {
                    let job = receiver.lock().await.recv().await;
                    let Some(job) = job else { break };
                    tier.put(&job.key, &job.value).await;
                    bytes.fetch_sub(job.value.len() as u64, Ordering::AcqRel);
                    change_pending(&pending, &metrics, false);
                }
            });
        }
        Self {
            sender,
            pending,
            bytes,
            max_bytes,
            metrics,
        }
    }

    /// Queues a write, or drops it (and counts the drop) when the queue is full — by entries,
    /// or by bytes.
    pub(crate) fn enqueue(&self, key: CacheKey, value: CachedValue) {
        let size = value.len() as u64;
        let reserved = self
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                queued
                    .checked_add(size)
                    .filter(|total| *total <= self.max_bytes)
            })
            .is_ok();
        if !reserved {
            self.metrics.dropped_queue_full.inc();
            return;
        }
        change_pending(&self.pending, &self.metrics, true);
        if self.sender.try_send(Job { key, value }).is_err() {
            self.bytes.fetch_sub(size, Ordering::AcqRel);
            change_pending(&self.pending, &self.metrics, false);
            self.metrics.dropped_queue_full.inc();
        }
    }

    /// Waits until every queued write is done; false if that took longer than `timeout`.
    pub(crate) async fn flush(&self, timeout: Duration) -> bool {
        let mut pending = self.pending.subscribe();
        tokio::time::timeout(timeout, pending.wait_for(|count| *count == 0))
            .await
            .is_ok_and(|changed| changed.is_ok())
    }
}

fn change_pending(pending: &watch::Sender<usize>, metrics: &TierMetrics, increment: bool) {
    pending.send_modify(|count| {
        *count = if increment {
            *count + 1
        } else {
            count.saturating_sub(1)
        };
        metrics
            .queue_depth
            .set(i64::try_from(*count).unwrap_or(i64::MAX));
    });
}
