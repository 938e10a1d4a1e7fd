//! lazycache-http: the HTTP API of SPEC §3 on actix-web — routes, statuses, headers, JSON.
//!
//! The only crate that knows HTTP. [`AppState::new`] gathers what the routes need (mirrors,
//! the three-tier cache, options, metrics); [`configure`] mounts the routes on an actix `App`.
//! Library errors become statuses in one place, [`error`].

mod access;
pub mod error;
mod files;
mod frame_request;
mod info;
mod listing;
mod metrics;
mod movies;
pub mod options;
mod request_log;
mod respond;
mod routes;
mod state;
mod v1;

pub use error::ApiError;
pub use metrics::HttpMetrics;
pub use options::HttpOptions;
pub use routes::configure;
pub use state::{AppParts, AppState, SourceFactory};
