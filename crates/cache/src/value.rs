//! Cached values (bytes with a content type) and where a lookup found them.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

/// A cached value: opaque bytes and their MIME type. Cloning is cheap (reference counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedValue {
    content_type: Arc<str>,
    bytes: Bytes,
}

impl CachedValue {
    pub fn new(content_type: impl Into<Arc<str>>, bytes: impl Into<Bytes>) -> Self {
        Self {
            content_type: content_type.into(),
            bytes: bytes.into(),
        }
    }

    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Length of the bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Where the bytes of a lookup came from; [`ServedFrom::as_str`] is the `X-Lazycache-Cache` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServedFrom {
    Memory,
    Disk,
    ObjectStore,
    /// Not cached: computed for this request (or for a concurrent one it waited on).
    Computed,
}

impl ServedFrom {
    /// `memory`, `disk`, `object-store` or `miss`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServedFrom::Memory => "memory",
            ServedFrom::Disk => "disk",
            ServedFrom::ObjectStore => "object-store",
            ServedFrom::Computed => "miss",
        }
    }
}

impl fmt::Display for ServedFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer of a lookup: the value and the tier it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub value: CachedValue,
    pub served_from: ServedFrom,
}
