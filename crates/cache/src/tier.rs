//! The interface every tier implements, and the names of the three tiers.

use std::future::Future;

use crate::error::TierError;
use crate::key::CacheKey;
use crate::value::{CachedValue, ServedFrom};

/// Which tier: memory, disk or object store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TierKind {
    Memory,
    Disk,
    ObjectStore,
}

impl TierKind {
    /// The `tier` label of its metrics.
    pub fn label(self) -> &'static str {
        match self {
            TierKind::Memory => "memory",
            TierKind::Disk => "disk",
            TierKind::ObjectStore => "object-store",
        }
    }

    /// What a hit in this tier reports as the place it was served from.
    pub fn served_from(self) -> ServedFrom {
        match self {
            TierKind::Memory => ServedFrom::Memory,
            TierKind::Disk => ServedFrom::Disk,
            TierKind::ObjectStore => ServedFrom::ObjectStore,
        }
    }
}

/// A key-value store of [`CachedValue`]s. A tier may forget anything at any time; it must never
/// return a value other than the one last put under the key.
pub trait Tier: Send + Sync + 'static {
    fn kind(&self) -> TierKind;

    /// The value under `key`, or `None` when the tier does not have it (or had a damaged copy).
    fn get(
        &self,
        key: &CacheKey,
    ) -> impl Future<Output = Result<Option<CachedValue>, TierError>> + Send;

    /// Stores `value` under `key`, replacing any previous value.
    fn put(
        &self,
        key: &CacheKey,
        value: &CachedValue,
    ) -> impl Future<Output = Result<(), TierError>> + Send;

    /// Forgets `key`; removing a missing key is not an error.
    fn remove(&self, key: &CacheKey) -> impl Future<Output = Result<(), TierError>> + Send;
}
