//! Decode slots: at most `--max-concurrent-decodes` FFmpeg jobs at once; a request waits a bounded
//! time for one (then "busy"), and a job keeps its slot on its blocking thread until it ends.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{ServiceError, ServiceResult};
use crate::metrics::{Counted, ServiceMetrics};

/// The decode slots and how long a request may wait for one.
pub struct DecodeSlots {
    semaphore: Arc<Semaphore>,
    count: usize,
    queue_timeout: Duration,
}

impl DecodeSlots {
    pub fn new(count: usize, queue_timeout: Duration) -> Self {
        let count = count.max(1);
        Self {
            semaphore: Arc::new(Semaphore::new(count)),
            count,
            queue_timeout,
        }
    }

    /// One slot, waited for at most the queue timeout.
    pub async fn acquire(&self, metrics: &ServiceMetrics) -> ServiceResult<OwnedSemaphorePermit> {
        let waiting = Counted::enter(&metrics.decodes_waiting);
        let acquired = tokio::time::timeout(
            self.queue_timeout,
            Arc::clone(&self.semaphore).acquire_owned(),
        )
        .await;
        drop(waiting);
        match acquired {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_closed)) => Err(ServiceError::ShuttingDown),
            Err(_elapsed) => {
                metrics.decode_queue_rejections.inc();
                Err(ServiceError::DecodeQueueFull(self.count))
            }
        }
    }

    /// From now on waiting and new requests get "shutting down"; running decodes finish.
    pub fn close(&self) {
        self.semaphore.close();
    }
}

/// Runs FFmpeg work on a blocking thread that keeps its decode slot until the work ends, even
/// when the request that asked for it has gone: slots bound the decoding threads, not requests.
pub async fn blocking<T: Send + 'static>(
    slot: OwnedSemaphorePermit,
    work: impl FnOnce() -> lazycache_decode::Result<T> + Send + 'static,
) -> ServiceResult<T> {
    let held = move || {
        let _slot = slot;
        work()
    };
    match tokio::task::spawn_blocking(held).await {
        Ok(result) => result.map_err(ServiceError::from),
        Err(join) => Err(ServiceError::Internal(format!(
            "decode task failed: {join}"
        ))),
    }
}
