//! What the decoder tests share: a byte source over a file that counts the bytes and reads
//! passing through it, and a frame as PNG bytes.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use lazycache_decode::{ByteSource, FileSource, Format, Movie, SourceError};

/// Counts the bytes and reads that pass through to the file.
pub struct Counting {
    inner: FileSource,
    bytes: AtomicU64,
    reads: AtomicU64,
}

impl Counting {
    /// A fixture by name (`lazycache_testkit::fixtures::path`).
    pub fn fixture(name: &str) -> Arc<Self> {
        Self::open(&lazycache_testkit::fixtures::path(name))
    }

    pub fn open(path: &Path) -> Arc<Self> {
        Arc::new(Self {
            inner: FileSource::open(path).unwrap(),
            bytes: AtomicU64::new(0),
            reads: AtomicU64::new(0),
        })
    }

    /// Bytes and reads since the last call.
    pub fn take(&self) -> (u64, u64) {
        (
            self.bytes.swap(0, Ordering::SeqCst),
            self.reads.swap(0, Ordering::SeqCst),
        )
    }
}

impl ByteSource for Counting {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn validator(&self) -> &str {
        self.inner.validator()
    }
    fn read_at(&self, offset: u64, len: usize) -> Result<Bytes, SourceError> {
        let bytes = self.inner.read_at(offset, len)?;
        self.bytes.fetch_add(bytes.len() as u64, Ordering::SeqCst);
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(bytes)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn extension(&self) -> Option<String> {
        self.inner.extension()
    }
}

/// Frame `frame` of `movie` as PNG bytes, at its own size.
pub fn png(movie: &Movie, frame: u64) -> Bytes {
    movie
        .frame(frame, &Default::default(), Format::Png, None)
        .unwrap()
        .bytes
}
