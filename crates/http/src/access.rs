//! API keys (SPEC §3 Access): `X-Api-Key: KEY` or `Authorization: Bearer KEY`, compared in
//! constant time, never logged.

use actix_web::HttpRequest;
use actix_web::http::header;

use crate::error::ApiError;

/// Passes when no keys are configured or the request carries one of them.
pub fn check(request: &HttpRequest, keys: &[String]) -> Result<(), ApiError> {
    if keys.is_empty() {
        return Ok(());
    }
    let headers = request.headers();
    let offered = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        })
        .map(str::trim);
    match offered {
        Some(offered) if accepts(keys, offered) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
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
}
