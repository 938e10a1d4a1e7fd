//! Reading response bodies of known or bounded size, chunk by chunk: a lying or runaway
//! origin is cut off at the bound instead of filling memory.

use bytes::{Bytes, BytesMut};
use reqwest::Response;

use super::client::map_reqwest_error;
use crate::error::{OriginError, OriginResult};

/// Exactly `expected` bytes of body; shorter or longer is a bad response.
pub(crate) async fn read_exact(
    mut response: Response,
    expected: usize,
    what: &str,
) -> OriginResult<Bytes> {
    if let Some(announced) = response.content_length()
        && announced != expected as u64
    {
        return Err(OriginError::bad_response(
            what,
            format!("Content-Length {announced} for a range of {expected} bytes"),
        ));
    }
    let mut body = BytesMut::with_capacity(expected);
    while let Some(chunk) = next_chunk(&mut response, what).await? {
        if body.len() + chunk.len() > expected {
            return Err(OriginError::bad_response(
                what,
                format!("body longer than the {expected} bytes asked for"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    if body.len() < expected {
        return Err(OriginError::bad_response(
            what,
            format!("short body: {} of {expected} bytes", body.len()),
        ));
    }
    Ok(body.freeze())
}

/// The whole body, refused once it passes `limit` bytes.
pub(crate) async fn read_bounded(
    mut response: Response,
    limit: usize,
    what: &str,
) -> OriginResult<Bytes> {
    let too_big = || OriginError::bad_response(what, format!("body larger than {limit} bytes"));
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_big());
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = next_chunk(&mut response, what).await? {
        if body.len() + chunk.len() > limit {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

async fn next_chunk(response: &mut Response, what: &str) -> OriginResult<Option<Bytes>> {
    response
        .chunk()
        .await
        .map_err(|error| match map_reqwest_error(what, &error) {
            // A body cut off mid-way is the origin failing, unless it was too slow.
            timeout @ OriginError::Timeout { .. } => timeout,
            other => OriginError::bad_response(what, other.to_string()),
        })
}
