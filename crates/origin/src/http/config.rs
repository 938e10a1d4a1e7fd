//! Knobs of the HTTP origin client.

use std::time::Duration;

use crate::retry::RetryPolicy;

/// Timeouts, retries and limits of the HTTP(S) origin client.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Longest wait for a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Longest silence while waiting for a response or between chunks of its body.
    pub read_timeout: Duration,
    /// Longest any single request may take, body included.
    pub request_timeout: Duration,
    /// Retries for connection failures and 5xx answers.
    pub retry: RetryPolicy,
    /// Largest directory index page read; a bigger one is a bad response.
    pub max_listing_bytes: usize,
    /// Redirect hops followed (each within the mirror) before giving up.
    pub max_redirects: usize,
    /// Idle keep-alive connections kept per host.
    pub max_idle_per_host: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(120),
            retry: RetryPolicy::default(),
            max_listing_bytes: 32 << 20,
            max_redirects: 5,
            max_idle_per_host: 32,
        }
    }
}
