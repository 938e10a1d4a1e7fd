//! Every failure a request can meet — the service's, by their kind, and HTTP's own — and the
//! one place where each becomes an HTTP status (SPEC §3: the status says whose fault it is) and
//! the JSON `{"URL", "Error"}` body.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use lazycache_service::{ErrorKind, ServiceError};

use crate::request_log::request_id;

/// Seconds a client is asked to wait after a 503.
const RETRY_AFTER_SECONDS: u64 = 2;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// What the service said.
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("an API key is required (X-Api-Key or Authorization: Bearer)")]
    Unauthorized,
    #[error("{0} is not implemented yet")]
    NotImplemented(&'static str),
    #[error("only GET and HEAD are allowed")]
    MethodNotAllowed,
    #[error("the requested range is not satisfiable")]
    RangeNotSatisfiable { size: u64 },
    #[error("the request took longer than {0:?}")]
    RequestTimedOut(Duration),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The status of SPEC §3 for this failure; the only such mapping in the crate.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Service(error) => kind_status(error.kind()),
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::RequestTimedOut(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
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

/// Whose fault it is, as an HTTP status.
fn kind_status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Unsupported => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::NotEnabled => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Busy | ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::Upstream => StatusCode::BAD_GATEWAY,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_say_whose_fault_it_is() {
        let cases: Vec<(ApiError, u16)> = vec![
            (ServiceError::BadRequest("b".into()).into(), 400),
            (ServiceError::NotFound("n".into()).into(), 404),
            (ServiceError::RawOutputDisabled.into(), 501),
            (ServiceError::DecodeQueueFull(2).into(), 503),
            (ServiceError::Starting.into(), 503),
            (ApiError::Unauthorized, 401),
            (ApiError::MethodNotAllowed, 405),
            (ApiError::RangeNotSatisfiable { size: 3 }, 416),
            (ApiError::RequestTimedOut(Duration::from_secs(1)), 503),
        ];
        for (error, status) in cases {
            assert_eq!(error.status().as_u16(), status, "{error}");
        }
        for (kind, status) in [
            (ErrorKind::Unsupported, 415),
            (ErrorKind::UpstreamTimeout, 504),
            (ErrorKind::Upstream, 502),
            (ErrorKind::Internal, 500),
        ] {
            assert_eq!(kind_status(kind).as_u16(), status, "{kind:?}");
        }
    }

    #[test]
    fn a_500_shows_neither_panic_text_nor_paths() {
        let request =
            actix_web::test::TestRequest::with_uri("/v1/m/x.mov/frame/1.png").to_http_request();
        for error in [
            ApiError::Internal("task 7 panicked at src/x.rs:3: index out of bounds".into()),
            ServiceError::Internal("/srv/cache/ab/cd: bad".into()).into(),
            ServiceError::Shared(std::sync::Arc::new(ServiceError::Internal(
                "panicked".into(),
            )))
            .into(),
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
}
