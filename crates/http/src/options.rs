//! What the routes need from the server's configuration.

use std::time::Duration;

/// The HTTP-facing options of SPEC §2, resolved by the binary.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// `--allow-raw-output`: serve `.rgba`/`.raw`/`.npy`.
    pub allow_raw_output: bool,
    /// `--public`: every answer carries `X-lazycache-public: 1`.
    pub public: bool,
    /// `--api-key`: when non-empty, `/v1` routes need one of these.
    pub api_keys: Vec<String>,
    /// `--max-concurrent-decodes`.
    pub max_concurrent_decodes: usize,
    /// How long a request waits for a decode slot before it gets 503.
    pub decode_queue_timeout: Duration,
    /// Longest a `/v1` request may take before it gets 503.
    pub request_timeout: Duration,
    /// Lower-case extensions (no dot) of the files served as movies.
    pub movie_extensions: Vec<String>,
    /// `--listing-ttl`: also how long a movie version that cannot be served is remembered as
    /// such, so asking again reads nothing from the origin.
    pub listing_ttl: Duration,
    /// Component name → version, for `/info` (FFmpeg's are added by the crate).
    pub components: Vec<(String, String)>,
}

/// SPEC §3's movie extensions.
pub const DEFAULT_MOVIE_EXTENSIONS: &[&str] =
    &["mov", "mp4", "m4v", "mkv", "webm", "avi", "mxf", "ts"];

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            allow_raw_output: false,
            public: false,
            api_keys: Vec::new(),
            max_concurrent_decodes: 2,
            decode_queue_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            movie_extensions: DEFAULT_MOVIE_EXTENSIONS
                .iter()
                .map(|e| (*e).to_owned())
                .collect(),
            listing_ttl: Duration::from_secs(300),
            components: Vec::new(),
        }
    }
}

impl HttpOptions {
    /// Whether `name` (a file name) has one of the movie extensions.
    pub fn is_movie(&self, name: &str) -> bool {
        name.rsplit_once('.').is_some_and(|(_, ext)| {
            self.movie_extensions
                .iter()
                .any(|movie| movie.eq_ignore_ascii_case(ext))
        })
    }
}
