//! Error types: bad configuration, a failed tier operation, and a failed computation.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The cache could not be built from its configuration: a bad option, refused at start-up.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{setting} {url}: {reason}")]
    InvalidObjectStore {
        setting: &'static str,
        url: String,
        reason: String,
    },
    #[error("{option}: {reason}")]
    InvalidOption {
        option: &'static str,
        reason: String,
    },
    #[error("cannot register cache metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("the cache signing key is empty")]
    InvalidSigningKey,
}

/// One operation on one tier failed. The read-through chain logs, counts and swallows these.
#[derive(Debug, thiserror::Error)]
pub enum TierError {
    #[error("{operation} {}: {source}", path.display())]
    Io {
        operation: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("gave up after {0:?}")]
    TimedOut(Duration),
    #[error("background task failed: {0}")]
    Task(String),
}

impl TierError {
    pub(crate) fn io(operation: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        TierError::Io {
            operation,
            path: path.into(),
            source,
        }
    }

    /// Whether this failure says the tier itself is unusable for now (disk full, read-only,
    /// unreachable store), as opposed to a problem with one entry. Such a failure disables the
    /// tier until a retry succeeds.
    pub fn disables_tier(&self) -> bool {
        match self {
            TierError::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::StorageFull
                    | io::ErrorKind::ReadOnlyFilesystem
                    | io::ErrorKind::QuotaExceeded
                    | io::ErrorKind::PermissionDenied
                    | io::ErrorKind::NotADirectory
                    | io::ErrorKind::NotFound
                    | io::ErrorKind::AlreadyExists
            ),
            // Every store error but "not found" (which is a miss, not an error) may be an outage;
            // treating them all as one keeps a failing store from costing a timeout per request.
            TierError::ObjectStore(_) | TierError::TimedOut(_) => true,
            TierError::Task(_) => false,
        }
    }
}

/// A get-or-compute call could not produce a value.
#[derive(Debug, thiserror::Error)]
pub enum LoadError<E> {
    /// The computation returned this error (shared by every caller that waited on it).
    #[error("{0}")]
    Failed(Arc<E>),
    #[error("computation did not finish within {0:?}")]
    TimedOut(Duration),
    #[error("computation panicked or was cancelled by runtime shutdown")]
    Panicked,
    /// A concurrent call for the same key computed with a different error type; its message.
    #[error("{0}")]
    Foreign(String),
}
