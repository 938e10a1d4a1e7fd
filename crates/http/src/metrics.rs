//! The HTTP front door's Prometheus metrics (responses by status, requests in flight), next to
//! the service's and the cache's, and the `/metrics` text.

use prometheus::{Encoder, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

/// Metrics registered by the HTTP front door.
#[derive(Clone)]
pub struct HttpMetrics {
    pub requests_in_flight: IntGauge,
    pub responses: IntCounterVec,
}

impl HttpMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests_in_flight = IntGauge::with_opts(
            Opts::new("http_requests_in_flight", "Requests being answered now")
                .namespace("lazycache"),
        )?;
        registry.register(Box::new(requests_in_flight.clone()))?;
        let responses = IntCounterVec::new(
            Opts::new("http_responses_total", "HTTP responses by status").namespace("lazycache"),
            &["status"],
        )?;
        registry.register(Box::new(responses.clone()))?;
        Ok(Self {
            requests_in_flight,
            responses,
        })
    }
}

/// The registry in Prometheus' text format.
pub fn render(registry: &Registry) -> Result<String, prometheus::Error> {
    let mut text = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut text)?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}
