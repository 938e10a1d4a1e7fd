//! The byte-source trait: the only way the decoder sees a movie's bytes.

use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use bytes::Bytes;

/// Random access to one version of one movie file.
///
/// Reads are blocking: FFmpeg calls them from its I/O callbacks on a decode thread, never on the
/// async runtime. Every read of one source must come from the same version of the file (the one
/// `validator` names); an implementation that sees the file change fails with
/// [`SourceErrorKind::Changed`] instead of returning bytes of another version.
pub trait ByteSource: Send + Sync {
    /// Total size in bytes.
    fn len(&self) -> u64;
    /// True for an empty file.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Opaque version of the file: changes whenever its content may have changed
    /// (ETag, else Last-Modified/mtime and size).
    fn validator(&self) -> &str;
    /// Up to `len` bytes starting at `offset`; fewer only at the end of the file.
    fn read_at(&self, offset: u64, len: usize) -> Result<Bytes, SourceError>;
    /// As [`ByteSource::read_at`], for bytes read past what the caller is sure to need (a warm
    /// decode's lookahead past its target): a source that reads ahead on sequential reads
    /// should fetch exactly these bytes, no more. By default, `read_at`.
    fn read_lookahead_at(&self, offset: u64, len: usize) -> Result<Bytes, SourceError> {
        self.read_at(offset, len)
    }
    /// Human-readable name for messages and logs (a path or URL, never credentials).
    fn describe(&self) -> String;
    /// The extension of the file's name, without the dot (`mov`, `MP4` …), or None when the
    /// name has none. It chooses the demuxer; FFmpeg's probe only confirms it, and a file
    /// whose extension names no movie container is refused unread.
    fn extension(&self) -> Option<String>;
}

/// Why a read failed, so the service can say whose fault it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceErrorKind {
    /// The file does not exist (any more).
    NotFound,
    /// The origin took too long.
    Timeout,
    /// The file changed since it was opened.
    Changed,
    /// The origin answered something that makes no sense (bad range, short body, …).
    BadResponse,
    /// Any other I/O failure.
    Io,
}

/// A failed read of a [`ByteSource`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    pub kind: SourceErrorKind,
    pub message: String,
}

impl SourceError {
    pub fn new(kind: SourceErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for SourceErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotFound => "not found",
            Self::Timeout => "timed out",
            Self::Changed => "changed while being read",
            Self::BadResponse => "bad response",
            Self::Io => "I/O error",
        })
    }
}

/// A movie in the local file system, read with positioned reads.
pub struct FileSource {
    file: File,
    path: PathBuf,
    len: u64,
    validator: String,
}

impl FileSource {
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SourceError> {
        let path = path.as_ref().to_path_buf();
        let io_err = |e: std::io::Error| {
            let kind = if e.kind() == std::io::ErrorKind::NotFound {
                SourceErrorKind::NotFound
            } else {
                SourceErrorKind::Io
            };
            SourceError::new(kind, format!("{}: {e}", path.display()))
        };
        let file = File::open(&path).map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        if !meta.is_file() {
            return Err(SourceError::new(
                SourceErrorKind::NotFound,
                format!("{} is not a regular file", path.display()),
            ));
        }
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        Ok(Self {
            validator: format!("mtime-ns={mtime_ns};size={}", meta.len()),
            len: meta.len(),
            file,
            path,
        })
    }
}

impl ByteSource for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn validator(&self) -> &str {
        &self.validator
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Bytes, SourceError> {
        let available = self.len.saturating_sub(offset);
        let want = len.min(usize::try_from(available).unwrap_or(usize::MAX));
        let mut buf = vec![0u8; want];
        let mut filled = 0;
        while filled < want {
            let n = self
                .file
                .read_at(&mut buf[filled..], offset + filled as u64)
                .map_err(|e| {
                    SourceError::new(SourceErrorKind::Io, format!("{}: {e}", self.path.display()))
                })?;
            if n == 0 {
                // The file shrank under us: a different version now.
                return Err(SourceError::new(
                    SourceErrorKind::Changed,
                    format!("{} shrank while being read", self.path.display()),
                ));
            }
            filled += n;
        }
        Ok(Bytes::from(buf))
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn extension(&self) -> Option<String> {
        self.path
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
    }
}
