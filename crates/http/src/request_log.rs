//! One structured log line per request: its id, method, path (never the query or headers, so
//! keys stay out of logs), status, cache tier, total and per-stage durations, body bytes; and
//! responses by status and requests in flight.

use std::time::Instant;

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, web};

use crate::respond::CACHE_HEADER;
use crate::state::AppState;
use lazycache_service::Counted;

/// The response header naming a request, as its log line does.
const REQUEST_ID_HEADER: &str = "x-request-id";

/// A request's id: in its log line, its `X-Request-Id` header and a 500's message, so an
/// operator finds the details a client is not shown.
#[derive(Clone, Debug)]
pub struct RequestId(String);

impl RequestId {
    fn new() -> Self {
        Self(format!("{:016x}", rand::random::<u64>()))
    }
}

/// The id [`log_request`] gave `request` (`-` outside the middleware, e.g. in unit tests).
pub fn request_id(request: &HttpRequest) -> String {
    request
        .extensions()
        .get::<RequestId>()
        .map_or_else(|| "-".to_owned(), |id| id.0.clone())
}

pub async fn log_request(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let started = Instant::now();
    let id = RequestId::new();
    request.extensions_mut().insert(id.clone());
    let method = request.method().to_string();
    let path = request.path().to_owned();
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let in_flight = state
        .as_ref()
        .map(|state| Counted::enter(&state.inner.metrics.requests_in_flight));
    let mut response = next.call(request).await?;
    drop(in_flight);
    if let Ok(value) = HeaderValue::from_str(&id.0) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    let status = response.status().as_u16();
    let header_text = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned()
    };
    let tier = header_text(CACHE_HEADER);
    // Frames' stage durations (metadata, fetch, decode, encode), as sent in Server-Timing.
    let stages = header_text("server-timing");
    let bytes = match response.response().body().size() {
        BodySize::Sized(n) => n,
        _ => 0,
    };
    if let Some(state) = state {
        state
            .inner
            .metrics
            .responses
            .with_label_values(&[&status.to_string()])
            .inc();
    }
    tracing::info!(
        target: "lazycache::request",
        request_id = id.0,
        method,
        path,
        status,
        tier,
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        stages,
        bytes,
        "request"
    );
    Ok(response)
}
