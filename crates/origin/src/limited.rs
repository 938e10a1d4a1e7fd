//! `--origin-concurrency`: at most N requests in flight from one mirror to its origin. Excess
//! requests wait (at most the queue timeout, then "origin busy"), so a thousand cold frames, or
//! one huge sample cut into many range requests, never open more than N connections at once.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{Semaphore, SemaphorePermit};
use url::Url;

use crate::error::{OriginError, OriginResult};
use crate::origin::{FileMeta, Listing, Origin};
use crate::relpath::RelPath;

/// An origin with a bound on its requests in flight.
pub struct LimitedOrigin {
    inner: Arc<dyn Origin>,
    permits: Semaphore,
    limit: usize,
    queue_timeout: Duration,
}

impl LimitedOrigin {
    /// `inner` with at most `limit` (at least 1) requests at once; a request waits at most
    /// `queue_timeout` for its turn.
    pub fn new(inner: Arc<dyn Origin>, limit: usize, queue_timeout: Duration) -> Self {
        let limit = limit.max(1);
        Self {
            inner,
            permits: Semaphore::new(limit),
            limit,
            queue_timeout,
        }
    }

    async fn turn(&self, what: &RelPath) -> OriginResult<SemaphorePermit<'_>> {
        match tokio::time::timeout(self.queue_timeout, self.permits.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) | Err(_) => Err(OriginError::Timeout {
                what: what.to_string(),
                detail: format!(
                    "all {} requests to the origin allowed at once (--origin-concurrency) were busy for {:?}",
                    self.limit, self.queue_timeout
                ),
            }),
        }
    }
}

#[async_trait]
impl Origin for LimitedOrigin {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn list(&self, dir: &RelPath) -> OriginResult<Listing> {
        let _turn = self.turn(dir).await?;
        self.inner.list(dir).await
    }

    async fn stat(&self, path: &RelPath) -> OriginResult<FileMeta> {
        let _turn = self.turn(path).await?;
        self.inner.stat(path).await
    }

    async fn read(
        &self,
        path: &RelPath,
        pinned: &FileMeta,
        range: Range<u64>,
    ) -> OriginResult<Bytes> {
        let _turn = self.turn(path).await?;
        self.inner.read(path, pinned, range).await
    }

    fn public_url(&self, path: &RelPath) -> Option<Url> {
        self.inner.public_url(path)
    }
}
