//! Many frames and sprites over HTTP: `<movie>/frames/<SELECTION>.<npy|zip>` and
//! `<movie>/sprite[.<ext>]` into the service's requests, and their answers written — many
//! frames as a body streamed while the frames are fetched, a sprite as one image or WebVTT map.
//!
//! A many-frames answer's status and headers go out before its frames are ready: a failure
//! after that (origin gone, movie changed) cannot become an error status. The service logs it
//! and the body ends early — short of its `Content-Length` for `.npy`, without the chunked
//! terminator and the zip's central directory for `.zip` — so a client sees a broken transfer,
//! never a complete-looking wrong answer.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;
use lazycache_service::{FramesAnswer, FramesRequest, SpriteAnswer, SpriteParams, SpriteRequest};

use crate::error::ApiError;
use crate::frame_request::FrameQuery;
use crate::respond::{CACHE_CONTROL_IMMUTABLE, tier_header};

/// How many frames a many-frames answer holds.
const FRAMES_HEADER: &str = "x-lazycache-frames";
/// How many tiles a sprite holds.
const SPRITE_TILES_HEADER: &str = "x-lazycache-sprite-tiles";

/// `frames/<segment>` with the request's frame options and `?format=`.
pub fn frames_request(request: &HttpRequest, segment: &str) -> Result<FramesRequest, ApiError> {
    let query = FrameQuery::of(request)?;
    Ok(FramesRequest::parse_segment(
        segment,
        query.get("format"),
        &query.output_params(),
    )?)
}

/// `sprite` or `sprite.<ext>` with `?count`, `every`, `cols`, `width`, `quality`.
pub fn sprite_request(request: &HttpRequest, segment: &str) -> Result<SpriteRequest, ApiError> {
    let query = FrameQuery::of(request)?;
    let extension = segment
        .strip_prefix("sprite")
        .and_then(|rest| rest.strip_prefix('.'));
    Ok(SpriteRequest::parse(
        extension,
        &SpriteParams {
            count: query.get("count"),
            every: query.get("every"),
            cols: query.get("cols"),
            width: query.get("width"),
            quality: query.get("quality"),
        },
    )?)
}

/// The answer's headers, then (unless `head`) its chunks as the service produces them.
pub fn frames_response(answer: FramesAnswer, etag: String, head: bool) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response
        .content_type(answer.content_type)
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, CACHE_CONTROL_IMMUTABLE))
        .insert_header((FRAMES_HEADER, answer.frame_count.to_string()));
    if let Some(length) = answer.content_length {
        response.no_chunking(length);
    }
    if head {
        return response.streaming(futures::stream::empty::<Result<Bytes, ApiError>>());
    }
    let chunks = answer.start();
    response.streaming(futures::stream::unfold(chunks, |mut chunks| async move {
        let chunk = chunks.next().await?;
        // The service has logged a failure; an error item makes actix cut the body off.
        Some((chunk.map_err(ApiError::from), chunks))
    }))
}

/// A sprite image or its WebVTT map, with its version and the tier it came from.
pub fn sprite_response(answer: SpriteAnswer, etag: String) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response
        .content_type(answer.value.content_type())
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, CACHE_CONTROL_IMMUTABLE))
        .insert_header(tier_header(answer.served_from.as_str()))
        .insert_header((SPRITE_TILES_HEADER, answer.tiles.to_string()));
    response.body(Bytes::clone(answer.value.bytes()))
}
