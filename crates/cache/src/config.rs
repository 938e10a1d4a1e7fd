//! What the cache is built from: the server's cache options, with sensible defaults for the rest.

use std::path::PathBuf;
use std::time::Duration;

use crate::object_tier::ObjectStoreOptions;
use crate::tier::TierKind;

/// The disk tier's place and bound.
#[derive(Debug, Clone)]
pub struct DiskOptions {
    /// `--cache-dir`.
    pub dir: PathBuf,
    /// `--disk-cache-size`, in bytes (sum of entry file sizes).
    pub bound_bytes: u64,
}

/// Everything [`crate::TieredCache::open`] needs.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// The memory tier's bound, in bytes.
    pub memory_bytes: u64,
    /// How log lines and errors name the setting of each tier (the caller's option names).
    pub setting_names: SettingNames,
    /// `None` disables the disk tier.
    pub disk: Option<DiskOptions>,
    /// `None` disables the object-store tier.
    pub object_store: Option<ObjectStoreOptions>,
    /// Cap on one computation; past it the waiters get [`crate::LoadError::TimedOut`].
    pub compute_timeout: Duration,
    /// How long a disabled tier (unusable directory, unreachable store) is skipped before it is
    /// tried again.
    pub retry_interval: Duration,
    /// Writes that may wait per tier in the write-behind queue before new ones are dropped.
    pub write_queue_capacity: usize,
    /// Bytes of values that may wait (or be in writing) per tier before new writes are dropped.
    pub write_queue_bytes: u64,
    /// Concurrent writers per tier.
    pub write_workers: usize,
}

/// The names of the settings that configure each tier, for log lines and errors about them
/// ("`--cache-dir /x` is not usable"). The cache knows no command line: its caller names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingNames {
    pub memory: &'static str,
    pub disk: &'static str,
    pub object_store: &'static str,
}

impl Default for SettingNames {
    fn default() -> Self {
        Self {
            memory: "memory tier",
            disk: "disk tier",
            object_store: "object-store tier",
        }
    }
}

impl SettingNames {
    /// The name of the setting of `kind`'s tier.
    pub fn of(&self, kind: TierKind) -> &'static str {
        match kind {
            TierKind::Memory => self.memory,
            TierKind::Disk => self.disk,
            TierKind::ObjectStore => self.object_store,
        }
    }
}

impl CacheConfig {
    /// The configuration for the server's options: an empty cache dir or object-store URL
    /// disables that tier (as SPEC §2 says); `STORAGE_EMULATOR_HOST` is honoured for `gs://`.
    pub fn from_options(
        memory_bytes: u64,
        cache_dir: Option<PathBuf>,
        disk_bytes: u64,
        object_store_url: Option<&str>,
    ) -> Self {
        Self {
            memory_bytes,
            setting_names: SettingNames::default(),
            disk: cache_dir
                .filter(|dir| !dir.as_os_str().is_empty())
                .map(|dir| DiskOptions {
                    dir,
                    bound_bytes: disk_bytes,
                }),
            object_store: object_store_url
                .map(str::trim)
                .filter(|url| !url.is_empty())
                .map(ObjectStoreOptions::new),
            compute_timeout: Duration::from_secs(60),
            retry_interval: Duration::from_secs(30),
            write_queue_capacity: 256,
            write_queue_bytes: 128 << 20,
            write_workers: 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_disable_tiers() {
        let config = CacheConfig::from_options(1 << 20, Some(PathBuf::new()), 1 << 30, Some(" "));
        assert!(config.disk.is_none());
        assert!(config.object_store.is_none());
        let config =
            CacheConfig::from_options(1 << 20, Some("/var/cache/x".into()), 7, Some("gs://b/p"));
        assert_eq!(config.disk.map(|d| d.bound_bytes), Some(7));
        assert_eq!(
            config.object_store.map(|o| o.url),
            Some("gs://b/p".to_string())
        );
    }
}
