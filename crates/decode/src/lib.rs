//! lazycache-decode: exact single frames of any movie FFmpeg can read, over a [`ByteSource`].
//!
//! Knows nothing of HTTP or caching. See ARCHITECTURE.md.

pub mod source;

pub use source::{ByteSource, FileSource, SourceError, SourceErrorKind};
