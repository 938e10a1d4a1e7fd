//! lazycache-http: the HTTP API of SPEC §3 on actix-web — routes, statuses, headers, JSON.
//!
//! The only crate that knows HTTP, and a thin one: it parses a request, calls
//! [`lazycache_service::Service`], and writes the answer (statuses, ETag and 304, timing and
//! tier headers, streamed file bodies). [`AppState::new`] wraps the service with the HTTP
//! options and metrics; [`configure`] mounts the routes on an actix `App`. Errors become
//! statuses in one place, [`error`].

mod access;
mod clip;
pub mod error;
mod files;
mod frame_request;
mod info;
mod listing;
mod many;
mod metrics;
pub mod options;
mod request_log;
mod respond;
mod routes;
mod state;
mod ui;
mod v1;

/// Longest a `/v1` request waits for the tiers to open at start-up before it is told "starting"
/// (503): an object-store probe takes a round trip, or its timeout when the store is down.
pub const STARTUP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

pub use error::ApiError;
pub use metrics::HttpMetrics;
pub use options::HttpOptions;
pub use routes::configure;
pub use state::AppState;
