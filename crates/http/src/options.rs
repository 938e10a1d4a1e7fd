//! What the HTTP front door needs from the server's configuration (the service has its own).

use std::time::Duration;

/// The HTTP-facing options of SPEC §2, resolved by the binary.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// `--public`: every answer carries `X-lazycache-public: 1`.
    pub public: bool,
    /// `--api-key`: when non-empty, `/v1`, `/metrics`, `/info` and `/ui` need one of these.
    pub api_keys: Vec<String>,
    /// Longest a `/v1` request may take before it gets 503.
    pub request_timeout: Duration,
    /// Component name → version, for `/info` (FFmpeg's are added by the crate).
    pub components: Vec<(String, String)>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            public: false,
            api_keys: Vec::new(),
            request_timeout: Duration::from_secs(120),
            components: Vec::new(),
        }
    }
}

/// SPEC §3's movie extensions (the service's default, for the binary's option parsing).
pub use lazycache_service::DEFAULT_MOVIE_EXTENSIONS;
