//! A clip's response: the movie the service wrote to a temporary file, streamed out in chunks
//! read off the async workers, with its length, type, ETag and a file name to save it under.

use std::io::Read;

use actix_web::HttpResponse;
use actix_web::http::header;
use bytes::Bytes;
use lazycache_service::ClipAnswer;

use crate::error::ApiError;
use crate::respond::CACHE_CONTROL_IMMUTABLE;

/// Bytes read from the temporary file per streamed chunk.
const CHUNK_BYTES: usize = 1 << 20;

pub fn into_response(clip: ClipAnswer, etag: String, file_name: &str) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response
        .content_type(clip.content_type)
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, CACHE_CONTROL_IMMUTABLE))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "inline; filename=\"{}\"",
                file_name.replace(['"', '\\'], "_")
            ),
        ))
        .no_chunking(clip.len);
    let chunks = futures::stream::unfold(Some(clip.file), |file| async move {
        let mut file = file?;
        let read = tokio::task::spawn_blocking(move || {
            let mut chunk = vec![0; CHUNK_BYTES];
            let n = file.read(&mut chunk)?;
            chunk.truncate(n);
            Ok::<_, std::io::Error>((file, chunk))
        })
        .await;
        match read {
            Ok(Ok((_, chunk))) if chunk.is_empty() => None,
            Ok(Ok((file, chunk))) => Some((Ok(Bytes::from(chunk)), Some(file))),
            // A failed read ends the body; the client sees a short response.
            Ok(Err(error)) => Some((Err(ApiError::Internal(error.to_string())), None)),
            Err(join) => Some((Err(ApiError::Internal(join.to_string())), None)),
        }
    });
    response.streaming(chunks)
}
