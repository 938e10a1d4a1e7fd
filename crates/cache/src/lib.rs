//! lazycache-cache: a three-tier cache of byte values (memory, disk, object store) with
//! read-through, promotion, write-behind and single flight.
//!
//! It knows nothing of video or HTTP: a [`CacheKey`] names what a value was made from, a
//! [`CachedValue`] is bytes with a content type. [`TieredCache::get_or_compute`] is the one call
//! the server needs; [`TieredCache::flush`] is for shutdown; [`CacheMetrics`] are registered in
//! the caller's Prometheus registry.

mod cache;
mod config;
mod disk;
mod envelope;
mod error;
mod gate;
mod guarded;
mod key;
mod memory;
mod metrics;
mod object_tier;
mod single_flight;
mod tier;
mod value;
mod write_behind;

pub use cache::TieredCache;
pub use config::{CacheConfig, DiskOptions, SettingNames};
pub use disk::DiskTier;
pub use error::{CacheError, LoadError, TierError};
pub use key::{CacheKey, Expected, KEY_FORMAT_VERSION, KeyDigest};
pub use memory::MemoryTier;
pub use metrics::{CacheMetrics, TierMetrics};
pub use object_tier::{ObjectStoreOptions, ObjectStoreTier, SigningKey};
pub use tier::{Tier, TierKind};
pub use value::{CachedValue, Lookup, ServedFrom};
