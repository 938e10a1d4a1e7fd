//! lazycache-service: what lazycache does, in its own words — find a mirror, list a directory,
//! describe a movie, give one frame by number or time, many frames in one answer, a sprite —
//! over origins, the tiered cache and the decoder. Knows no HTTP: every front door (the HTTP API, the CLI) is a thin translation into
//! these calls, with typed requests validated here once ([`request`]) and one error type whose
//! [`ErrorKind`] each front door maps to its own answers. See ARCHITECTURE.md.

mod batch;
mod clip;
mod error;
mod frame;
mod keys;
mod metrics;
mod movies;
mod npy;
pub mod request;
pub mod selection;
mod service;
mod slots;
mod source;
pub mod timestamps;

pub use clip::{ClipAnswer, ClipRequest};
pub mod sprite;
mod stored_zip;

pub use batch::{Container, FrameChunks, FramesAnswer, FramesRequest, MAX_OUTPUT_BYTES};
pub use error::{ErrorKind, ServiceError, ServiceResult};
pub use frame::{FrameAnswer, FrameTimings};
pub use keys::{MovieVersion, frame_key, frames_key, metadata_key, sprite_key};
pub use metrics::{Counted, ServiceMetrics};
pub use movies::{LoadedMovie, MetadataAnswer};
pub use request::{FrameOutput, FrameRequest, FrameSelector, OutputParams, Seek, split_extension};
pub use selection::{FrameSelection, MAX_FRAMES};
pub use service::{Conditional, DEFAULT_MOVIE_EXTENSIONS, Service, ServiceOptions, ServiceParts};
pub use source::{OriginSource, source_error};
pub use sprite::{SpriteAnswer, SpriteFormat, SpriteParams, SpriteRequest};
pub use timestamps::FrameTime;

/// The vocabulary the front doors share with the service: paths, mirrors, listings and files of
/// the origins; cached values and where they came from; output formats; library versions.
pub use lazycache_cache::{CachedValue, ServedFrom, TieredCache};
pub use lazycache_decode::{ClipFormat, Format, WarmSettings, ffmpeg_versions};
pub use lazycache_origin::{Listing, Mirror, OriginFile, RelPath};
