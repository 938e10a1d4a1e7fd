//! Every failure a request can meet, and the one place where each becomes an HTTP status
//! (SPEC §3: the status says whose fault it is) and the JSON `{"URL", "Error"}` body.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use lazycache_cache::LoadError;
use lazycache_decode::{Error as DecodeError, SourceErrorKind};
use lazycache_origin::OriginError;

use crate::request_log::request_id;

/// Seconds a client is asked to wait after a 503.
const RETRY_AFTER_SECONDS: u64 = 2;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("an API key is required (X-Api-Key or Authorization: Bearer)")]
    Unauthorized,
    #[error("raw output (.rgba, .raw, .npy) is not enabled on this server (--allow-raw-output)")]
    RawOutputDisabled,
    #[error("{0} is not implemented yet")]
    NotImplemented(&'static str),
    #[error("only GET and HEAD are allowed")]
    MethodNotAllowed,
    #[error("the requested range is not satisfiable")]
    RangeNotSatisfiable { size: u64 },
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Origin(#[from] OriginError),
    #[error("all {0} decode slots stayed busy; try again shortly")]
    DecodeQueueFull(usize),
    #[error("the request took longer than {0:?}")]
    RequestTimedOut(Duration),
    #[error("the server is starting; try again shortly")]
    Starting,
    #[error("the server is shutting down; try another instance")]
    ShuttingDown,
    /// A failure shared by concurrent requests for the same value.
    #[error("{0}")]
    Shared(Arc<ApiError>),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The status of SPEC §3 for this failure; the only such mapping in the crate.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::RawOutputDisabled | ApiError::NotImplemented(_) => {
                StatusCode::NOT_IMPLEMENTED
            }
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::Decode(error) => decode_status(error),
            ApiError::Origin(error) => origin_status(error),
            ApiError::DecodeQueueFull(_)
            | ApiError::RequestTimedOut(_)
            | ApiError::Starting
            | ApiError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Shared(inner) => inner.status(),
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the origin file changed under the request (its cached validator must go).
    pub fn is_changed(&self) -> bool {
        match self {
            ApiError::Origin(error) => error.is_changed(),
            ApiError::Decode(DecodeError::Source(source)) => {
                source.kind == SourceErrorKind::Changed
            }
            ApiError::Shared(inner) => inner.is_changed(),
            _ => false,
        }
    }

    /// Whether the movie version itself cannot be served (not a movie, over a bound): asking
    /// again would fail the same way, so the answer is worth remembering.
    pub fn is_unservable_movie(&self) -> bool {
        match self {
            ApiError::Decode(
                DecodeError::NotAMovie(_)
                | DecodeError::NoVideoStream
                | DecodeError::Truncated(_)
                | DecodeError::IndexTooLarge(_)
                | DecodeError::UnsupportedCodec(_),
            ) => true,
            ApiError::Shared(inner) => inner.is_unservable_movie(),
            _ => false,
        }
    }

    /// The JSON error answer to `request`. A 500 shows only "internal error" and the request's
    /// id; what went wrong goes to the log line under that id (SPEC §3: no panic text, no paths).
    pub fn to_response(&self, request: &HttpRequest) -> HttpResponse {
        let url = request.path();
        let status = self.status();
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            let request_id = request_id(request);
            tracing::error!(request_id, path = url, error = %self, "internal error");
            format!("internal error (request id {request_id})")
        } else {
            self.to_string()
        };
        let mut response = HttpResponse::build(status);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECONDS.to_string()));
        }
        if let ApiError::RangeNotSatisfiable { size } = self {
            response.insert_header((header::CONTENT_RANGE, format!("bytes */{size}")));
        }
        response.json(serde_json::json!({ "URL": url, "Error": message }))
    }
}

impl From<LoadError<ApiError>> for ApiError {
    fn from(error: LoadError<ApiError>) -> Self {
        match error {
            LoadError::Failed(shared) => ApiError::Shared(shared),
            LoadError::TimedOut(limit) => ApiError::RequestTimedOut(limit),
            LoadError::Panicked => ApiError::Internal("the computation was cancelled".into()),
            LoadError::Foreign(message) => ApiError::Internal(message),
        }
    }
}

fn decode_status(error: &DecodeError) -> StatusCode {
    match error {
        DecodeError::FrameZero
        | DecodeError::FrameOutOfRange { .. }
        | DecodeError::TimeOutOfRange { .. }
        | DecodeError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
        DecodeError::NotAMovie(_)
        | DecodeError::NoVideoStream
        | DecodeError::Truncated(_)
        | DecodeError::IndexTooLarge(_)
        | DecodeError::UnsupportedCodec(_)
        | DecodeError::Decode(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        DecodeError::DecodeTimeout(_) => StatusCode::SERVICE_UNAVAILABLE,
        DecodeError::BadIndex(_) | DecodeError::Encode(_) => StatusCode::INTERNAL_SERVER_ERROR,
        DecodeError::Source(source) => match source.kind {
            SourceErrorKind::NotFound => StatusCode::NOT_FOUND,
            SourceErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            SourceErrorKind::Changed | SourceErrorKind::BadResponse | SourceErrorKind::Io => {
                StatusCode::BAD_GATEWAY
            }
        },
    }
}

fn origin_status(error: &OriginError) -> StatusCode {
    match error {
        OriginError::NotFound { .. } | OriginError::OutsideMirror { .. } => StatusCode::NOT_FOUND,
        OriginError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        OriginError::Changed { .. }
        | OriginError::BadResponse { .. }
        | OriginError::Unavailable { .. } => StatusCode::BAD_GATEWAY,
        OriginError::Config { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lazycache_decode::SourceError;

    #[test]
    fn statuses_say_whose_fault_it_is() {
        let cases: Vec<(ApiError, u16)> = vec![
            (DecodeError::FrameZero.into(), 400),
            (DecodeError::NotAMovie("x".into()).into(), 415),
            (
                DecodeError::Source(SourceError::new(SourceErrorKind::Timeout, "t")).into(),
                504,
            ),
            (OriginError::NotFound { what: "f".into() }.into(), 404),
            (
                OriginError::BadResponse {
                    what: "f".into(),
                    detail: "d".into(),
                }
                .into(),
                502,
            ),
            (ApiError::RawOutputDisabled, 501),
            (ApiError::DecodeQueueFull(2), 503),
            (ApiError::Shared(Arc::new(ApiError::Unauthorized)), 401),
        ];
        for (error, status) in cases {
            assert_eq!(error.status().as_u16(), status, "{error}");
        }
        assert_eq!(DecodeError::FrameZero.to_string(), "frames count from 1");
    }

    #[test]
    fn a_500_shows_neither_panic_text_nor_paths() {
        let request =
            actix_web::test::TestRequest::with_uri("/v1/m/x.mov/frame/1.png").to_http_request();
        for error in [
            ApiError::Internal("task 7 panicked at src/x.rs:3: index out of bounds".into()),
            ApiError::Decode(DecodeError::BadIndex("/srv/cache/ab/cd: bad".into())),
            ApiError::Shared(Arc::new(ApiError::Internal("panicked".into()))),
        ] {
            let response = error.to_response(&request);
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
            let body = actix_web::body::to_bytes(response.into_body());
            let body = futures::executor::block_on(body).unwrap_or_default();
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let said = json["Error"].as_str().unwrap_or_default();
            assert!(said.starts_with("internal error (request id "), "{said}");
            assert!(!said.contains("panick") && !said.contains("/srv"), "{said}");
            assert_eq!(json["URL"], "/v1/m/x.mov/frame/1.png");
        }
    }

    #[test]
    fn unservable_movies_are_told_from_passing_failures() {
        let not_a_movie = ApiError::Decode(DecodeError::NotAMovie("text".into()));
        assert!(ApiError::Shared(Arc::new(not_a_movie)).is_unservable_movie());
        let timeout = ApiError::Decode(DecodeError::Source(SourceError::new(
            SourceErrorKind::Timeout,
            "slow",
        )));
        assert!(!timeout.is_unservable_movie());
        assert!(!ApiError::DecodeQueueFull(2).is_unservable_movie());
    }

    #[test]
    fn a_changed_file_is_recognised_through_every_wrapper() {
        let changed = ApiError::Decode(DecodeError::Source(SourceError::new(
            SourceErrorKind::Changed,
            "c",
        )));
        assert!(ApiError::Shared(Arc::new(changed)).is_changed());
        assert!(!ApiError::Unauthorized.is_changed());
    }
}
