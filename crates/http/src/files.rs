//! Files that are not movies, on mirrors clients cannot be redirected to: their bytes, with
//! single-range `Range` support, streamed in chunks through the range cache.

use std::sync::Arc;

use actix_web::HttpResponse;
use actix_web::http::header;
use bytes::Bytes;
use lazycache_origin::{Mirror, OriginFile};
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

pub fn answer(
    mirror: &Mirror,
    file: OriginFile,
    range: Option<&str>,
    if_none_match: &[String],
) -> Result<FileAnswer, ApiError> {
    let etag = strong_etag(&[
        mirror.url().as_str(),
        &file.path().to_string(),
        file.validator(),
    ]);
    if not_modified(if_none_match, &etag) {
        return Ok(FileAnswer::NotModified(etag));
    }
    let size = file.size();
    let range = range.map(|text| parse_range(text, size)).transpose()?;
    let content_type = content_type(file.path().file_name().unwrap_or_default());
    Ok(FileAnswer::Bytes {
        file: Arc::new(file),
        range,
        etag,
        content_type,
    })
}

/// One `bytes=a-b`, `bytes=a-` or `bytes=-n` range of a `size`-byte file, inclusive.
fn parse_range(text: &str, size: u64) -> Result<(u64, u64), ApiError> {
    let unsatisfiable = || ApiError::RangeNotSatisfiable { size };
    let spec = text
        .trim()
        .strip_prefix("bytes=")
        .filter(|spec| !spec.contains(','))
        .ok_or_else(unsatisfiable)?;
    let (first, last) = spec.split_once('-').ok_or_else(unsatisfiable)?;
    let number = |s: &str| s.trim().parse::<u64>().map_err(|_| unsatisfiable());
    let (start, end) = match (first.trim().is_empty(), last.trim().is_empty()) {
        (false, false) => (number(first)?, number(last)?.min(size.saturating_sub(1))),
        (false, true) => (number(first)?, size.saturating_sub(1)),
        (true, false) => {
            let suffix = number(last)?;
            (size.saturating_sub(suffix), size.saturating_sub(1))
        }
        (true, true) => return Err(unsatisfiable()),
    };
    if size == 0 || start > end || start >= size {
        return Err(unsatisfiable());
    }
    Ok((start, end))
}

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
                        Ok(Err(error)) => Err(error.into()),
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
        assert_eq!(parse_range("bytes=0-9", 100).ok(), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100).ok(), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100).ok(), Some((90, 99)));
        assert_eq!(parse_range("bytes=95-200", 100).ok(), Some((95, 99)));
        for bad in [
            "bytes=100-",
            "bytes=5-2",
            "items=0-1",
            "bytes=0-1,3-4",
            "bytes=-",
        ] {
            assert!(parse_range(bad, 100).is_err(), "{bad}");
        }
    }
}
