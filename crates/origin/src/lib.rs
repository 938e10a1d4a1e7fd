//! lazycache-origin: where movies come from — HTTP autoindex mirrors, local folders and
//! object-store buckets — read lazily through a shared, bounded, coalescing range cache.
//!
//! Knows nothing of frames or movies: it lists directories, stats files (size + validator) and
//! reads byte ranges of one pinned version of a file. See ARCHITECTURE.md.

mod error;
mod file;
mod http;
mod limited;
mod mirror;
mod object;
mod open;
mod origin;
mod overlay;
mod pinned;
mod range_cache;
mod relpath;
mod retry;
mod spec;
mod stats;

pub use error::{OriginError, OriginResult};
pub use file::FileOrigin;
pub use http::{HttpConfig, HttpOrigin};
pub use lazycache_store::STORAGE_EMULATOR_HOST;
pub use limited::LimitedOrigin;
pub use mirror::{Mirror, OriginConfig};
pub use object::ObjectStoreOrigin;
pub use open::{locate, open_location, origin_for_url};
pub use origin::{FileMeta, Listing, Origin};
pub use overlay::OverlayOrigin;
pub use pinned::{ChangedHook, OriginFile};
pub use range_cache::{RangeCache, RangeCacheConfig};
pub use relpath::RelPath;
pub use retry::RetryPolicy;
pub use spec::{MIRROR_SCHEMES, MirrorSpec, parse_mirror_list, redact_url_text, url_prefix};
pub use stats::OriginStats;
