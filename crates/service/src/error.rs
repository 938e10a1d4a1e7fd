//! The service's one error type, and its small [`ErrorKind`]: whose fault a failure is, which
//! each front door turns into its own answer (HTTP statuses, CLI exit codes) in one place.

use std::sync::Arc;
use std::time::Duration;

use lazycache_cache::LoadError;
use lazycache_decode::{Error as DecodeError, SourceErrorKind};
use lazycache_origin::OriginError;

/// Whose fault a failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No such mirror, file, directory or route (also paths that try to leave a mirror).
    NotFound,
    /// The request itself is wrong: frame number, extension, size, crop, quality, time.
    BadRequest,
    /// The file is not a movie this service can read (container, codec, bounds).
    Unsupported,
    /// The request asks for something this deployment has not enabled (raw output).
    NotEnabled,
    /// Every decode slot stayed busy, or a decode ran out of time: try again shortly.
    Busy,
    /// The service is starting or shutting down: try again, or another instance.
    Unavailable,
    /// The origin did not answer in time.
    UpstreamTimeout,
    /// The origin failed or answered garbage.
    Upstream,
    /// A fault of this service; details go to the log, not to the client.
    Internal,
}

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("raw output (.rgba, .raw, .npy) is not enabled on this server (--allow-raw-output)")]
    RawOutputDisabled,
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Origin(#[from] OriginError),
    #[error("all {0} decode slots stayed busy; try again shortly")]
    DecodeQueueFull(usize),
    #[error("the computation took longer than {0:?}")]
    TimedOut(Duration),
    #[error("the server is starting; try again shortly")]
    Starting,
    #[error("the server is shutting down; try another instance")]
    ShuttingDown,
    /// A failure shared by concurrent requests for the same value.
    #[error("{0}")]
    Shared(Arc<ServiceError>),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type ServiceResult<T> = Result<T, ServiceError>;

impl ServiceError {
    /// Whose fault this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ServiceError::NotFound(_) => ErrorKind::NotFound,
            ServiceError::BadRequest(_) => ErrorKind::BadRequest,
            ServiceError::RawOutputDisabled => ErrorKind::NotEnabled,
            ServiceError::Decode(error) => decode_kind(error),
            ServiceError::Origin(error) => origin_kind(error),
            ServiceError::DecodeQueueFull(_) | ServiceError::TimedOut(_) => ErrorKind::Busy,
            ServiceError::Starting | ServiceError::ShuttingDown => ErrorKind::Unavailable,
            ServiceError::Shared(inner) => inner.kind(),
            ServiceError::Internal(_) => ErrorKind::Internal,
        }
    }

    /// Whether the origin file changed under the request (its cached validator must go).
    pub fn is_changed(&self) -> bool {
        match self {
            ServiceError::Origin(error) => error.is_changed(),
            ServiceError::Decode(DecodeError::Source(source)) => {
                source.kind == SourceErrorKind::Changed
            }
            ServiceError::Shared(inner) => inner.is_changed(),
            _ => false,
        }
    }

    /// Whether the movie version itself cannot be served (not a movie, over a bound): asking
    /// again would fail the same way, so the answer is worth remembering.
    pub fn is_unservable_movie(&self) -> bool {
        match self {
            ServiceError::Decode(
                DecodeError::NotAMovie(_)
                | DecodeError::NoVideoStream
                | DecodeError::Truncated(_)
                | DecodeError::IndexTooLarge(_)
                | DecodeError::UnsupportedCodec(_),
            ) => true,
            ServiceError::Shared(inner) => inner.is_unservable_movie(),
            _ => false,
        }
    }
}

impl From<LoadError<ServiceError>> for ServiceError {
    fn from(error: LoadError<ServiceError>) -> Self {
        match error {
            LoadError::Failed(shared) => ServiceError::Shared(shared),
            LoadError::TimedOut(limit) => ServiceError::TimedOut(limit),
            LoadError::Panicked => ServiceError::Internal("the computation was cancelled".into()),
            LoadError::Foreign(message) => ServiceError::Internal(message),
        }
    }
}

fn decode_kind(error: &DecodeError) -> ErrorKind {
    match error {
        DecodeError::FrameZero
        | DecodeError::FrameOutOfRange { .. }
        | DecodeError::TimeOutOfRange { .. }
        | DecodeError::InvalidRequest(_) => ErrorKind::BadRequest,
        DecodeError::NotAMovie(_)
        | DecodeError::NoVideoStream
        | DecodeError::Truncated(_)
        | DecodeError::IndexTooLarge(_)
        | DecodeError::UnsupportedCodec(_)
        | DecodeError::Decode(_) => ErrorKind::Unsupported,
        // The wall-clock deadline (--decode-timeout) passed, origin reads included: almost
        // always a slow origin, so a gateway timeout, as SPEC §2 says.
        DecodeError::DecodeTimeout(_) => ErrorKind::UpstreamTimeout,
        DecodeError::BadIndex(_) | DecodeError::Encode(_) => ErrorKind::Internal,
        DecodeError::Source(source) => match source.kind {
            SourceErrorKind::NotFound => ErrorKind::NotFound,
            SourceErrorKind::Timeout => ErrorKind::UpstreamTimeout,
            SourceErrorKind::Changed | SourceErrorKind::BadResponse | SourceErrorKind::Io => {
                ErrorKind::Upstream
            }
        },
    }
}

fn origin_kind(error: &OriginError) -> ErrorKind {
    match error {
        OriginError::NotFound { .. } | OriginError::OutsideMirror { .. } => ErrorKind::NotFound,
        OriginError::Timeout { .. } => ErrorKind::UpstreamTimeout,
        OriginError::Changed { .. }
        | OriginError::BadResponse { .. }
        | OriginError::Unavailable { .. } => ErrorKind::Upstream,
        OriginError::Config { .. } => ErrorKind::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lazycache_decode::SourceError;

    #[test]
    fn kinds_say_whose_fault_it_is() {
        let cases: Vec<(ServiceError, ErrorKind)> = vec![
            (DecodeError::FrameZero.into(), ErrorKind::BadRequest),
            (
                DecodeError::NotAMovie("x".into()).into(),
                ErrorKind::Unsupported,
            ),
            (
                DecodeError::Source(SourceError::new(SourceErrorKind::Timeout, "t")).into(),
                ErrorKind::UpstreamTimeout,
            ),
            (
                OriginError::NotFound { what: "f".into() }.into(),
                ErrorKind::NotFound,
            ),
            (
                OriginError::BadResponse {
                    what: "f".into(),
                    detail: "d".into(),
                }
                .into(),
                ErrorKind::Upstream,
            ),
            (ServiceError::RawOutputDisabled, ErrorKind::NotEnabled),
            (ServiceError::DecodeQueueFull(2), ErrorKind::Busy),
            (ServiceError::Starting, ErrorKind::Unavailable),
            (
                ServiceError::Shared(Arc::new(ServiceError::BadRequest("b".into()))),
                ErrorKind::BadRequest,
            ),
        ];
        for (error, kind) in cases {
            assert_eq!(error.kind(), kind, "{error}");
        }
        assert_eq!(DecodeError::FrameZero.to_string(), "frames count from 1");
    }

    #[test]
    fn a_changed_file_is_recognised_through_every_wrapper() {
        let changed = ServiceError::Decode(DecodeError::Source(SourceError::new(
            SourceErrorKind::Changed,
            "c",
        )));
        assert!(ServiceError::Shared(Arc::new(changed)).is_changed());
        assert!(!ServiceError::Starting.is_changed());
    }

    #[test]
    fn unservable_movies_are_told_from_passing_failures() {
        let not_a_movie = ServiceError::Decode(DecodeError::NotAMovie("text".into()));
        assert!(ServiceError::Shared(Arc::new(not_a_movie)).is_unservable_movie());
        let timeout = ServiceError::Decode(DecodeError::Source(SourceError::new(
            SourceErrorKind::Timeout,
            "slow",
        )));
        assert!(!timeout.is_unservable_movie());
        assert!(!ServiceError::DecodeQueueFull(2).is_unservable_movie());
    }
}
