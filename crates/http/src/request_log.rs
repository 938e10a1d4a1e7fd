//! One structured log line per request: method, path (never the query or headers, so keys
//! stay out of logs), status, cache tier, duration and body bytes; and responses by status.

use std::time::Instant;

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use prometheus::IntGauge;

use crate::respond::CACHE_HEADER;
use crate::state::AppState;

pub async fn log_request(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let started = Instant::now();
    let method = request.method().to_string();
    let path = request.path().to_owned();
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let in_flight = state
        .as_ref()
        .map(|state| InFlight::enter(&state.inner.metrics.requests_in_flight));
    let response = next.call(request).await?;
    drop(in_flight);
    let status = response.status().as_u16();
    let tier = response
        .headers()
        .get(CACHE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
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
        method,
        path,
        status,
        tier,
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        bytes,
        "request"
    );
    Ok(response)
}

/// Counts a request in the in-flight gauge until dropped (also when the request is cancelled).
struct InFlight(IntGauge);

impl InFlight {
    fn enter(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}
