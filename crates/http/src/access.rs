//! API keys (SPEC §3 Access): `X-Api-Key: KEY` or `Authorization: Bearer KEY` (and `?key=` for
//! the viewer), compared in constant time, never logged.

use actix_web::HttpRequest;
use actix_web::http::header;

use crate::error::ApiError;

/// Passes when no keys are configured or the request carries one of them in a header.
pub fn check(request: &HttpRequest, keys: &[String]) -> Result<(), ApiError> {
    if keys.is_empty() {
        return Ok(());
    }
    match header_key(request) {
        Some(offered) if accepts(keys, offered) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

/// How a request to the viewer showed its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    /// No key needed, or one in a header.
    NotInUrl,
    /// In `?key=` (a browser's address bar cannot send headers): the page passes it on to its
    /// own script and style, which the browser fetches without headers.
    InQuery(String),
}

/// [`check`] for the viewer's pages, which also take `?key=KEY`.
pub fn check_allowing_query_key(request: &HttpRequest, keys: &[String]) -> Result<Shown, ApiError> {
    if check(request, keys).is_ok() {
        return Ok(Shown::NotInUrl);
    }
    match query_key(request.query_string()) {
        Some(offered) if accepts(keys, &offered) => Ok(Shown::InQuery(offered)),
        _ => Err(ApiError::Unauthorized),
    }
}

fn query_key(query: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "key")
        .and_then(|(_, value)| {
            percent_encoding::percent_decode_str(&value.replace('+', " "))
                .decode_utf8()
                .ok()
                .map(|key| key.trim().to_owned())
        })
}

fn header_key(request: &HttpRequest) -> Option<&str> {
    let headers = request.headers();
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        })
        .map(str::trim)
}

/// Compares against every key without stopping early, so timing says nothing about them.
fn accepts(keys: &[String], offered: &str) -> bool {
    keys.iter().fold(false, |found, key| {
        found | constant_time_eq(key.as_bytes(), offered.as_bytes())
    })
}

/// Equal length is not secret (as with `subtle`); the bytes are compared without early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn either_header_carries_the_key() {
        let keys = vec!["k1".to_owned(), "secret-2".to_owned()];
        let with = |name: &str, value: &str| {
            TestRequest::default()
                .insert_header((name, value))
                .to_http_request()
        };
        assert!(check(&with("x-api-key", "secret-2"), &keys).is_ok());
        assert!(check(&with("authorization", "Bearer k1"), &keys).is_ok());
        assert!(check(&with("authorization", "Basic k1"), &keys).is_err());
        assert!(check(&with("x-api-key", "secret-"), &keys).is_err());
        assert!(check(&with("x-api-key", "secret-22"), &keys).is_err());
        assert!(check(&with("x-api-key", ""), &keys).is_err());
        assert!(check(&TestRequest::default().to_http_request(), &keys).is_err());
        assert!(check(&TestRequest::default().to_http_request(), &[]).is_ok());
    }

    #[test]
    fn the_viewer_also_takes_the_key_from_the_query() {
        let keys = vec!["s3cr3t/+=".to_owned()];
        let at = |uri: &str| TestRequest::with_uri(uri).to_http_request();
        assert_eq!(
            check_allowing_query_key(&at("/ui/?key=s3cr3t%2F%2B%3D"), &keys).ok(),
            Some(Shown::InQuery("s3cr3t/+=".to_owned()))
        );
        assert!(check_allowing_query_key(&at("/ui/?key=s3cr3t"), &keys).is_err());
        assert!(check_allowing_query_key(&at("/ui/?other=s3cr3t%2F%2B%3D"), &keys).is_err());
        assert!(check_allowing_query_key(&at("/ui/"), &keys).is_err());
        let with_header = TestRequest::with_uri("/ui/")
            .insert_header(("x-api-key", "s3cr3t/+="))
            .to_http_request();
        assert_eq!(
            check_allowing_query_key(&with_header, &keys).ok(),
            Some(Shown::NotInUrl)
        );
        assert_eq!(
            check_allowing_query_key(&at("/ui/"), &[]).ok(),
            Some(Shown::NotInUrl)
        );
        // Elsewhere the query is no key.
        assert!(check(&at("/v1/x?key=s3cr3t%2F%2B%3D"), &keys).is_err());
    }
}
