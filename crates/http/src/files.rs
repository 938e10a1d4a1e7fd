//! Files that are not movies, on mirrors clients cannot be redirected to: their bytes, with
//! single-range `Range` and `If-Range` support, streamed in chunks through the range cache.

use std::sync::Arc;

use actix_web::HttpResponse;
use actix_web::http::header;
use bytes::Bytes;
use lazycache_service::{Mirror, OriginFile};
use tokio::runtime::Handle;

use crate::error::ApiError;
use crate::respond::{not_modified, strong_etag};

/// Bytes read from the origin per streamed chunk.
const CHUNK_BYTES: u64 = 1 << 20;

/// What to send of a file.
pub enum FileAnswer {
    NotModified(String),
    Bytes {
        file: Arc<OriginFile>,
        /// Inclusive byte range when the request asked for one.
        range: Option<(u64, u64)>,
        etag: String,
        content_type: &'static str,
    },
}

/// The answer for `file`: 304 when `If-None-Match` matches; else its bytes, or the one range
/// asked for when `If-Range` (if any) names the current version.
pub fn answer(
    mirror: &Mirror,
    file: OriginFile,
    conditions: &Conditions<'_>,
) -> Result<FileAnswer, ApiError> {
    let etag = strong_etag(&[
        mirror.url().as_str(),
        &file.path().to_string(),
        file.validator(),
    ]);
    if not_modified(conditions.if_none_match, &etag) {
        return Ok(FileAnswer::NotModified(etag));
    }
    let size = file.size();
    // RFC 9110 §13.1.5: a Range under an If-Range that does not match is ignored.
    let current = conditions.if_range.is_none_or(|tag| tag.trim() == etag);
    let range = match conditions.range {
        Some(text) if current => parse_range(text, size)?,
        _ => None,
    };
    let content_type = content_type(file.path().file_name().unwrap_or_default());
    Ok(FileAnswer::Bytes {
        file: Arc::new(file),
        range,
        etag,
        content_type,
    })
}

/// The request headers a file answer depends on.
pub struct Conditions<'a> {
    pub if_none_match: &'a [String],
    pub range: Option<&'a str>,
    pub if_range: Option<&'a str>,
}

/// The inclusive byte range a `Range` header asks of a `size`-byte file: `bytes=a-b`, `a-` or
/// `-n`. `None` means "send it all": other units, several ranges and malformed values are ignored,
/// as RFC 9110 §14.2 allows. A well-formed range that starts past the end is a 416.
fn parse_range(text: &str, size: u64) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(spec) = text
        .trim()
        .strip_prefix("bytes=")
        .filter(|spec| !spec.contains(','))
    else {
        return Ok(None);
    };
    let Some((first, last)) = spec.split_once('-') else {
        return Ok(None);
    };
    let number = |s: &str| s.trim().parse::<u64>().ok();
    let (start, end) = match (first.trim().is_empty(), last.trim().is_empty()) {
        (false, false) => match (number(first), number(last)) {
            (Some(start), Some(last)) if start <= last => (start, last.min(size.saturating_sub(1))),
            _ => return Ok(None),
        },
        (false, true) => match number(first) {
            Some(start) => (start, size.saturating_sub(1)),
            None => return Ok(None),
        },
        (true, false) => match number(last) {
            Some(0) => return Err(ApiError::RangeNotSatisfiable { size }),
            Some(suffix) => (size.saturating_sub(suffix), size.saturating_sub(1)),
            None => return Ok(None),
        },
        (true, true) => return Ok(None),
    };
    if size == 0 || start >= size {
        return Err(ApiError::RangeNotSatisfiable { size });
    }
    Ok(Some((start, end)))
}

/// A mirror's files are someone else's content: browsers must not guess a type for them...
const NOSNIFF: (header::HeaderName, &str) = (header::X_CONTENT_TYPE_OPTIONS, "nosniff");
/// ...nor run scripts of an HTML or SVG file with this server's origin.
const SANDBOX: (header::HeaderName, &str) = (header::CONTENT_SECURITY_POLICY, "sandbox");

fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("txt" | "log" | "csv") => "text/plain; charset=utf-8",
        Some("json") => "application/json",
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

pub fn into_response(answer: FileAnswer, io: Handle) -> HttpResponse {
    match answer {
        FileAnswer::NotModified(etag) => HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header(NOSNIFF)
            .insert_header(SANDBOX)
            .finish(),
        FileAnswer::Bytes {
            file,
            range,
            etag,
            content_type,
        } => {
            let size = file.size();
            let (start, end) = range.unwrap_or((0, size.saturating_sub(1)));
            let length = if size == 0 { 0 } else { end - start + 1 };
            let mut response = match range {
                Some(_) => {
                    let mut partial = HttpResponse::PartialContent();
                    partial.insert_header((
                        header::CONTENT_RANGE,
                        format!("bytes {start}-{end}/{size}"),
                    ));
                    partial
                }
                None => HttpResponse::Ok(),
            };
            response
                .content_type(content_type)
                .insert_header((header::ETAG, etag))
                .insert_header((header::ACCEPT_RANGES, "bytes"))
                .insert_header(NOSNIFF)
                .insert_header(SANDBOX)
                .no_chunking(length);
            let chunks = futures::stream::unfold(start, move |offset| {
                let file = Arc::clone(&file);
                let io = io.clone();
                async move {
                    if length == 0 || offset > end {
                        return None;
                    }
                    let chunk_end = (offset + CHUNK_BYTES).min(end + 1);
                    let read = io
                        .spawn(async move { file.read(offset..chunk_end).await })
                        .await;
                    let chunk = match read {
                        Ok(Ok(bytes)) => Ok::<Bytes, ApiError>(bytes),
                        Ok(Err(error)) => Err(ApiError::Service(error.into())),
                        Err(join) => Err(ApiError::Internal(join.to_string())),
                    };
                    // A failed chunk ends the body; the client sees a short response.
                    let next = if chunk.is_ok() { chunk_end } else { end + 1 };
                    Some((chunk, next))
                }
            });
            response.streaming(chunks)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_of_every_form() {
        let range = |text| parse_range(text, 100).ok().flatten();
        assert_eq!(range("bytes=0-9"), Some((0, 9)));
        assert_eq!(range("bytes=90-"), Some((90, 99)));
        assert_eq!(range("bytes=-10"), Some((90, 99)));
        assert_eq!(range("bytes=-200"), Some((0, 99)));
        assert_eq!(range("bytes=95-200"), Some((95, 99)));
        for ignored in [
            "bytes=5-2",
            "items=0-1",
            "bytes=0-1,3-4",
            "bytes=-",
            "bytes=x-3",
        ] {
            assert!(matches!(parse_range(ignored, 100), Ok(None)), "{ignored}");
        }
        for unsatisfiable in ["bytes=100-", "bytes=100-200", "bytes=-0"] {
            assert!(parse_range(unsatisfiable, 100).is_err(), "{unsatisfiable}");
        }
        assert!(parse_range("bytes=0-", 0).is_err());
    }
}
