//! Headers shared by successful answers: strong ETags and `304`, `Cache-Control`, the cache
//! tier, `Server-Timing` and go-lazycache's `X-lazycache-timing-*` headers.

use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};

pub const CACHE_CONTROL_IMMUTABLE: &str = "public, max-age=86400";
pub const CACHE_HEADER: &str = "x-lazycache-cache";

/// A strong ETag naming everything an answer was made from.
pub fn strong_etag(parts: &[&str]) -> String {
    let mut hasher = blake3::Hasher::new();
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    let hex = hasher.finalize().to_hex();
    format!("\"{}\"", &hex.as_str()[..32])
}

/// The request's `If-None-Match` values.
pub fn if_none_match(request: &HttpRequest) -> Vec<String> {
    request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|value| value.to_str().ok())
        .map(str::to_owned)
        .collect()
}

/// Whether `If-None-Match` values name `etag` (or `*`).
pub fn not_modified(if_none_match: &[String], etag: &str) -> bool {
    if_none_match
        .iter()
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

/// A `304` with the validator and caching headers.
pub fn not_modified_response(etag: &str) -> HttpResponse {
    HttpResponse::NotModified()
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, CACHE_CONTROL_IMMUTABLE))
        .finish()
}

/// Where a request's time went.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    pub handler: Duration,
    pub metadata: Duration,
    pub fetch: Duration,
    pub decode: Duration,
    pub encode: Duration,
}

impl Timings {
    /// `Server-Timing` and go-lazycache's nanosecond headers.
    pub fn apply(&self, response: &mut HttpResponseBuilder) {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        response.insert_header((
            "server-timing",
            format!(
                "metadata;dur={:.3}, fetch;dur={:.3}, decode;dur={:.3}, encode;dur={:.3}, total;dur={:.3}",
                ms(self.metadata),
                ms(self.fetch),
                ms(self.decode),
                ms(self.encode),
                ms(self.handler)
            ),
        ));
        for (name, duration) in [
            ("x-lazycache-timing-handler-ns", self.handler),
            ("x-lazycache-timing-metadata-ns", self.metadata),
            ("x-lazycache-timing-extraction-ns", self.decode),
            ("x-lazycache-timing-encode-ns", self.encode),
        ] {
            response.insert_header((name, duration.as_nanos().to_string()));
        }
    }
}

/// The tier header value, checked to be a valid header.
pub fn tier_header(tier: &'static str) -> (&'static str, HeaderValue) {
    (CACHE_HEADER, HeaderValue::from_static(tier))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn etags_are_strong_and_change_with_every_part() {
        let a = strong_etag(&["m", "p", "v1", "frame", "1"]);
        assert!(a.starts_with('"') && a.ends_with('"') && !a.starts_with("W/"));
        assert_ne!(a, strong_etag(&["m", "p", "v2", "frame", "1"]));
        assert_ne!(strong_etag(&["ab", "c"]), strong_etag(&["a", "bc"]));
    }

    #[test]
    fn if_none_match_lists_and_weak_forms_match() {
        let etag = strong_etag(&["x"]);
        let request = TestRequest::default()
            .insert_header((header::IF_NONE_MATCH, format!("\"other\", W/{etag}")))
            .to_http_request();
        assert!(not_modified(&if_none_match(&request), &etag));
        let request = TestRequest::default()
            .insert_header((header::IF_NONE_MATCH, "\"other\""))
            .to_http_request();
        assert!(!not_modified(&if_none_match(&request), &etag));
    }
}
