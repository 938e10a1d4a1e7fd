//! The origin abstraction: list a directory, stat a file, read a byte range of one version.

use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;
use url::Url;

use crate::error::OriginResult;
use crate::relpath::RelPath;

/// A directory's entries as SPEC §3 names them: names only, directories without a slash.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    pub files: Vec<String>,
    pub directories: Vec<String>,
}

impl Listing {
    /// Sorts both lists and removes duplicates, so every origin answers alike.
    pub(crate) fn normalised(mut self) -> Self {
        self.files.sort();
        self.files.dedup();
        self.directories.sort();
        self.directories.dedup();
        self
    }
}

/// One version of one file, as `stat` saw it. Reads are pinned to it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileMeta {
    /// Size in bytes.
    pub size: u64,
    /// The origin's entity tag, quotes kept (`"5f3a-1c2"`, `W/"x"`).
    pub etag: Option<String>,
    /// The origin's modification time, in the origin's own notation (an HTTP date, RFC 3339,
    /// or nanoseconds since the epoch for local files).
    pub last_modified: Option<String>,
    /// Served from the file overlay rather than the mirror itself.
    pub from_overlay: bool,
}

impl FileMeta {
    /// The opaque version string SPEC §4 keys caches with: the ETag, else Last-Modified, with
    /// the size in both cases. Changes whenever the file's content may have changed.
    pub fn validator(&self) -> String {
        let layer = if self.from_overlay { "overlay;" } else { "" };
        match (&self.etag, &self.last_modified) {
            (Some(etag), _) => format!("{layer}etag={etag};size={}", self.size),
            (None, Some(modified)) => format!("{layer}modified={modified};size={}", self.size),
            (None, None) => format!("{layer}size={}", self.size),
        }
    }

    /// True when an ETag may be used for `If-Range`/`If-Match` (weak tags may not).
    pub(crate) fn strong_etag(&self) -> Option<&str> {
        self.etag.as_deref().filter(|tag| !tag.starts_with("W/"))
    }
}

/// A tree of files somewhere: an HTTP autoindex mirror, a local folder, a bucket.
///
/// Paths are [`RelPath`]s, so an implementation only ever joins validated segments under its
/// own root. Reads name the [`FileMeta`] they are pinned to and fail with
/// [`OriginError::Changed`](crate::OriginError::Changed) rather than return bytes of another
/// version.
#[async_trait]
pub trait Origin: Send + Sync + 'static {
    /// Where this origin is, for messages and logs (no credentials).
    fn describe(&self) -> String;

    /// The entries of directory `dir`.
    async fn list(&self, dir: &RelPath) -> OriginResult<Listing>;

    /// Size and validator of file `path`; directories are not files (`NotFound`).
    async fn stat(&self, path: &RelPath) -> OriginResult<FileMeta>;

    /// Exactly the bytes `range` of the version `pinned` of `path`. `range` is non-empty and
    /// lies within `0..pinned.size`.
    async fn read(
        &self,
        path: &RelPath,
        pinned: &FileMeta,
        range: Range<u64>,
    ) -> OriginResult<Bytes>;

    /// The file's own public URL, for origins clients may be redirected to (http(s) only).
    fn public_url(&self, _path: &RelPath) -> Option<Url> {
        None
    }
}
