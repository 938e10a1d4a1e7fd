//! The one error type of every origin, typed so the HTTP layer can say whose fault a failure is.

/// Why an origin operation failed.
///
/// Suggested HTTP mapping: [`NotFound`](Self::NotFound) and [`OutsideMirror`](Self::OutsideMirror)
/// → 404, [`Timeout`](Self::Timeout) → 504, [`Changed`](Self::Changed) → drop cached indexes of the
/// file and retry once, else 502, [`BadResponse`](Self::BadResponse) and
/// [`Unavailable`](Self::Unavailable) → 502, [`Config`](Self::Config) → refuse to start.
/// Errors are `Clone` because one failed origin request answers every reader waiting on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    /// No such file or directory at the origin.
    #[error("{what}: not found")]
    NotFound { what: String },
    /// The path names something outside the mirror (`..`, an absolute path, a symlink out).
    #[error("{path}: outside the mirror ({reason})")]
    OutsideMirror { path: String, reason: &'static str },
    /// The file is not the version the read was pinned to (validator or size differ, or the
    /// origin refused the pinned validator). Bytes of two versions are never combined.
    #[error("{what}: changed at the origin while being read ({detail})")]
    Changed { what: String, detail: String },
    /// The origin did not connect or answer in time.
    #[error("{what}: origin timed out ({detail})")]
    Timeout { what: String, detail: String },
    /// The origin answered something that makes no sense for the request: a whole body for a
    /// range, a wrong `Content-Range`, a short or overlong body, an unparseable page.
    #[error("{what}: bad answer from the origin ({detail})")]
    BadResponse { what: String, detail: String },
    /// The origin failed: connection refused or reset, 5xx after the retries, a local I/O error.
    #[error("{what}: origin failed ({detail})")]
    Unavailable { what: String, detail: String },
    /// A mirror or origin URL that cannot be used.
    #[error("bad origin configuration: {detail}")]
    Config { detail: String },
}

impl OriginError {
    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    pub(crate) fn changed(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Changed {
            what: what.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn timeout(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Timeout {
            what: what.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn bad_response(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::BadResponse {
            what: what.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn unavailable(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Unavailable {
            what: what.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn config(detail: impl Into<String>) -> Self {
        Self::Config {
            detail: detail.into(),
        }
    }

    /// True when the caller should answer "no such thing" (404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. } | Self::OutsideMirror { .. })
    }

    /// True when the file changed under a pinned read: drop whatever was derived from it.
    pub fn is_changed(&self) -> bool {
        matches!(self, Self::Changed { .. })
    }

    /// True when the origin was too slow (504).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }
}

/// Result of an origin operation.
pub type OriginResult<T> = Result<T, OriginError>;
