//! The decoder's bytes from an origin: one pinned [`OriginFile`] behind the blocking
//! [`ByteSource`] trait, read by blocking on the I/O runtime (from decode threads only).

use bytes::Bytes;
use lazycache_decode::{ByteSource, SourceError, SourceErrorKind};
use lazycache_origin::{OriginError, OriginFile};
use tokio::runtime::Handle;

/// One pinned version of one origin file, read by blocking on the async origin.
pub struct OriginSource {
    file: OriginFile,
    runtime: Handle,
}

impl OriginSource {
    /// `file` (e.g. from `Mirror::open_file`), read on `runtime`. Reads block the calling
    /// thread: call them from decode threads or `spawn_blocking`, never from async tasks.
    pub fn new(file: OriginFile, runtime: Handle) -> Self {
        Self { file, runtime }
    }

    /// Runs an origin read on the I/O runtime, bounded by what is left of the running decode's
    /// deadline, if any: an origin that sends a byte now and then cannot hold the decode (and
    /// its slot) past it.
    fn bounded(
        &self,
        read: impl std::future::Future<Output = Result<Bytes, OriginError>>,
    ) -> Result<Bytes, SourceError> {
        let result = match lazycache_decode::deadline::current() {
            Some(deadline) => self.runtime.block_on(async {
                tokio::time::timeout_at(deadline.into(), read)
                    .await
                    .unwrap_or_else(|_| {
                        Err(OriginError::Timeout {
                            what: self.file.path().to_string(),
                            detail: "the decode's deadline (--decode-timeout) passed during a read"
                                .into(),
                        })
                    })
            }),
            None => self.runtime.block_on(read),
        };
        result.map_err(|e| source_error(&e))
    }
}

impl ByteSource for OriginSource {
    fn len(&self) -> u64 {
        self.file.size()
    }

    fn validator(&self) -> &str {
        self.file.validator()
    }

    /// Bounded by the running decode's deadline (see `bounded`).
    fn read_at(&self, offset: u64, len: usize) -> Result<Bytes, SourceError> {
        self.bounded(self.file.read_at(offset, len))
    }

    /// A warm decode's lookahead: exactly these bytes, no read-ahead behind them.
    fn read_lookahead_at(&self, offset: u64, len: usize) -> Result<Bytes, SourceError> {
        self.bounded(self.file.read_exactly_at(offset, len))
    }

    /// The file's path inside its mirror: decode errors reach clients, so never a server path
    /// or an origin URL.
    fn describe(&self) -> String {
        format!("/{}", self.file.path())
    }

    fn extension(&self) -> Option<String> {
        let name = self.file.path().file_name()?;
        name.rsplit_once('.')
            .map(|(_, extension)| extension.to_owned())
    }
}

/// The decoder's view of an origin failure.
pub fn source_error(error: &OriginError) -> SourceError {
    let kind = match error {
        OriginError::NotFound { .. } | OriginError::OutsideMirror { .. } => {
            SourceErrorKind::NotFound
        }
        OriginError::Timeout { .. } => SourceErrorKind::Timeout,
        OriginError::Changed { .. } => SourceErrorKind::Changed,
        OriginError::BadResponse { .. } => SourceErrorKind::BadResponse,
        OriginError::Unavailable { .. } | OriginError::Config { .. } => SourceErrorKind::Io,
    };
    SourceError::new(kind, error.to_string())
}
