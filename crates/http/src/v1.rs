//! `/v1/<mirror prefix><path>`: sorts a path into listing, metadata, frame/time, many frames,
//! sprite or other file, asks the service on the I/O runtime, and writes the answer with its HTTP headers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use lazycache_service::{
    CachedValue, ClipAnswer, ClipRequest, Conditional, FrameRequest, FrameSelector, FrameTime,
    FrameTimings, FramesAnswer, FramesRequest, Mirror, RelPath, ServedFrom, ServiceError,
    SpriteAnswer, SpriteRequest, split_extension,
};
use serde_json::Value;

use crate::error::ApiError;
use crate::files::{self, Conditions, FileAnswer};
use crate::frame_request::frame_request;
use crate::respond::{
    CACHE_CONTROL_IMMUTABLE, Timings, if_none_match, not_modified, not_modified_response,
    strong_etag, tier_header,
};
use crate::state::AppState;
use crate::{access, listing, many};

/// How long clients may keep listings and metadata.
const CACHE_CONTROL_SHORT: &str = "public, max-age=60";

/// What a `/v1` path names.
enum Route {
    Listing(RelPath),
    Metadata(RelPath),
    Frame {
        movie: RelPath,
        request: FrameRequest,
    },
    Frames {
        movie: RelPath,
        request: FramesRequest,
    },
    Sprite {
        movie: RelPath,
        request: SpriteRequest,
    },
    Clip {
        movie: RelPath,
        request: ClipRequest,
    },
    OtherFile(RelPath),
}

/// Which frame an image is, its time from the start, and the wall-clock time it shows when
/// the movie's start is known (SPEC §3: frame responses).
const FRAME_HEADER: &str = "x-lazycache-frame";
const FRAME_TIME_HEADER: &str = "x-lazycache-frame-time";
const FRAME_TIMESTAMP_HEADER: &str = "x-lazycache-frame-timestamp";

/// What the service answered, turned into a response on the HTTP worker.
enum Answer {
    Json {
        body: Value,
        etag: Option<String>,
        tier: Option<ServedFrom>,
        metadata: Duration,
    },
    Image {
        value: CachedValue,
        /// The frame answered (the keyframe in keyframe mode, the frame on screen for a time).
        frame: u64,
        time: FrameTime,
        etag: String,
        tier: ServedFrom,
        timings: FrameTimings,
    },
    Frames {
        answer: FramesAnswer,
        etag: String,
    },
    Sprite {
        answer: SpriteAnswer,
        etag: String,
    },
    NotModified(String),
    Redirect(String),
    File(FileAnswer),
    Clip {
        clip: ClipAnswer,
        etag: String,
        /// The file name to save it under: `<movie stem>-<A>-<B>.<ext>`.
        name: String,
    },
}

/// The request headers the answer depends on (actix requests stay on their worker).
struct RequestHeaders {
    if_none_match: Vec<String>,
    range: Option<String>,
    if_range: Option<String>,
}

impl RequestHeaders {
    /// Whether the client holds the version `tag` names (its ETag is in `If-None-Match`).
    fn holds(&self, tag: &str) -> bool {
        not_modified(&self.if_none_match, &etag_of(tag))
    }
}

/// The strong ETag of a service version tag.
fn etag_of(tag: &str) -> String {
    strong_etag(&[tag])
}

pub async fn handle(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let started = Instant::now();
    match respond(&request, &state, started).await {
        Ok(response) => response,
        Err(error) => error.to_response(&request),
    }
}

async fn respond(
    request: &HttpRequest,
    state: &AppState,
    started: Instant,
) -> Result<HttpResponse, ApiError> {
    access::check(request, &state.inner.options.api_keys)?;
    if state.is_starting() && !state.wait_until_started(crate::STARTUP_WAIT).await {
        return Err(ServiceError::Starting.into());
    }
    let url = request.uri().path();
    let tail = url.strip_prefix("/v1").unwrap_or(url);
    let service = state.service();
    let (mirror, path) = service.find_mirror(tail)?;
    let route = route(state, request, url, path)?;
    let headers = RequestHeaders {
        if_none_match: if_none_match(request),
        range: header_text(request, header::RANGE),
        if_range: header_text(request, header::IF_RANGE),
    };
    let io_state = state.clone();
    let work = service
        .io()
        .spawn(async move { answer(&io_state, &mirror, route, headers).await });
    let limit = state.inner.options.request_timeout;
    let answer = match tokio::time::timeout(limit, work).await {
        Ok(Ok(answer)) => answer?,
        Ok(Err(join)) => return Err(ApiError::Internal(format!("request task failed: {join}"))),
        Err(_) => return Err(ApiError::RequestTimedOut(limit)),
    };
    let head = request.method() == actix_web::http::Method::HEAD;
    Ok(into_response(answer, state, started, head))
}

fn route(
    state: &AppState,
    request: &HttpRequest,
    url: &str,
    path: RelPath,
) -> Result<Route, ApiError> {
    if url.ends_with('/') || path.is_root() {
        return Ok(Route::Listing(path));
    }
    let options = state.service().options();
    let segments = path.segments();
    let n = segments.len();
    if n >= 3 && options.is_movie(&segments[n - 3]) && segments[n - 2] == "clip" {
        return Ok(Route::Clip {
            movie: sub_path(&segments[..n - 2])?,
            request: ClipRequest::parse_segment(&segments[n - 1])?,
        });
    }
    if n >= 3 && options.is_movie(&segments[n - 3]) && segments[n - 2] == "frames" {
        return Ok(Route::Frames {
            movie: sub_path(&segments[..n - 2])?,
            request: many::frames_request(request, &segments[n - 1])?,
        });
    }
    if n >= 3 && options.is_movie(&segments[n - 3]) {
        let (stem, format) = split_extension(&segments[n - 1])?;
        let selector = match segments[n - 2].as_str() {
            "frame" => Some(FrameSelector::number(stem)?),
            "time" => Some(FrameSelector::time(stem)?),
            _ => None,
        };
        if let Some(selector) = selector {
            return Ok(Route::Frame {
                movie: sub_path(&segments[..n - 2])?,
                request: frame_request(request, selector, format)?,
            });
        }
    }
    if n >= 2 && options.is_movie(&segments[n - 2]) {
        let last = segments[n - 1].as_str();
        if last == "sprite" || last.starts_with("sprite.") {
            return Ok(Route::Sprite {
                movie: sub_path(&segments[..n - 1])?,
                request: many::sprite_request(request, last)?,
            });
        }
    }
    if options.is_movie(&segments[n - 1]) {
        return Ok(Route::Metadata(path));
    }
    Ok(Route::OtherFile(path))
}

fn sub_path(segments: &[String]) -> Result<RelPath, ApiError> {
    RelPath::parse(&segments.join("/")).map_err(|e| ApiError::Service(e.into()))
}

async fn answer(
    state: &AppState,
    mirror: &Arc<Mirror>,
    route: Route,
    headers: RequestHeaders,
) -> Result<Answer, ApiError> {
    let service = state.service();
    let holds = |tag: &str| headers.holds(tag);
    match route {
        Route::Listing(dir) => Ok(listing_answer(&dir, &*service.list(mirror, &dir).await?)),
        Route::Metadata(path) => match service.metadata(mirror, &path, &holds).await? {
            Conditional::Held(tag) => Ok(Answer::NotModified(etag_of(&tag))),
            Conditional::Fresh(found) => {
                let mut body = serde_json::to_value(&found.metadata)
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
                if let Value::Object(object) = &mut body {
                    object.insert("URL".into(), Value::String(found.path));
                }
                Ok(Answer::Json {
                    body,
                    etag: Some(etag_of(&found.version_tag)),
                    tier: Some(found.served_from),
                    metadata: found.elapsed,
                })
            }
        },
        Route::Frame { movie, request } => {
            match service.frame(mirror, &movie, &request, &holds).await? {
                Conditional::Held(tag) => Ok(Answer::NotModified(etag_of(&tag))),
                Conditional::Fresh(frame) => Ok(Answer::Image {
                    frame: frame.frame,
                    time: frame.time,
                    etag: etag_of(&frame.version_tag),
                    value: frame.value,
                    tier: frame.served_from,
                    timings: frame.timings,
                }),
            }
        }
        Route::Frames { movie, request } => {
            match service.frames(mirror, &movie, &request, &holds).await? {
                Conditional::Held(tag) => Ok(Answer::NotModified(etag_of(&tag))),
                Conditional::Fresh(answer) => Ok(Answer::Frames {
                    etag: etag_of(&answer.version_tag),
                    answer,
                }),
            }
        }
        Route::Sprite { movie, request } => {
            match service.sprite(mirror, &movie, &request, &holds).await? {
                Conditional::Held(tag) => Ok(Answer::NotModified(etag_of(&tag))),
                Conditional::Fresh(answer) => Ok(Answer::Sprite {
                    etag: etag_of(&answer.version_tag),
                    answer,
                }),
            }
        }
        Route::Clip { movie, request } => {
            let clip = service.clip(mirror, &movie, &request).await?;
            let stem = movie
                .file_name()
                .and_then(|name| name.rsplit_once('.').map(|(stem, _)| stem))
                .unwrap_or("clip");
            Ok(Answer::Clip {
                etag: etag_of(&clip.version_tag),
                name: format!(
                    "{stem}-{}-{}.{}",
                    request.first,
                    request.last,
                    request.format.extension()
                ),
                clip,
            })
        }
        Route::OtherFile(path) => other_file(state, mirror, &path, &headers).await,
    }
}

fn listing_answer(dir: &RelPath, entries: &lazycache_service::Listing) -> Answer {
    Answer::Json {
        body: listing::body(dir, entries),
        etag: None,
        tier: None,
        metadata: Duration::ZERO,
    }
}

fn header_text(request: &HttpRequest, name: header::HeaderName) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn other_file(
    state: &AppState,
    mirror: &Mirror,
    path: &RelPath,
    headers: &RequestHeaders,
) -> Result<Answer, ApiError> {
    if let Some(url) = mirror.public_url(path) {
        return Ok(Answer::Redirect(url.to_string()));
    }
    let service = state.service();
    match service.open_file(mirror, path).await {
        Ok(file) => Ok(Answer::File(files::answer(
            mirror,
            file,
            &Conditions {
                if_none_match: &headers.if_none_match,
                range: headers.range.as_deref(),
                if_range: headers.if_range.as_deref(),
            },
        )?)),
        // A directory named without its trailing slash is listed.
        Err(error) if error.kind() == lazycache_service::ErrorKind::NotFound => {
            match service.list(mirror, path).await {
                Ok(entries) => Ok(listing_answer(path, &entries)),
                Err(_) => Err(error.into()),
            }
        }
        Err(error) => Err(error.into()),
    }
}

fn into_response(answer: Answer, state: &AppState, started: Instant, head: bool) -> HttpResponse {
    match answer {
        Answer::Json {
            body,
            etag,
            tier,
            metadata,
        } => {
            let mut response = HttpResponse::Ok();
            response.insert_header((header::CACHE_CONTROL, CACHE_CONTROL_SHORT));
            if let Some(etag) = etag {
                response.insert_header((header::ETAG, etag));
            }
            if let Some(tier) = tier {
                response.insert_header(tier_header(tier.as_str()));
            }
            Timings {
                handler: started.elapsed(),
                metadata,
                ..Timings::default()
            }
            .apply(&mut response);
            response.json(body)
        }
        Answer::Image {
            value,
            frame,
            time,
            etag,
            tier,
            timings,
        } => {
            let mut response = HttpResponse::Ok();
            if let Some(timestamp) = time.timestamp {
                response.insert_header((FRAME_TIMESTAMP_HEADER, timestamp));
            }
            response
                .content_type(value.content_type())
                .insert_header((FRAME_HEADER, frame.to_string()))
                .insert_header((FRAME_TIME_HEADER, format!("{:.6}", time.seconds)))
                .insert_header((header::ETAG, etag))
                .insert_header((header::CACHE_CONTROL, CACHE_CONTROL_IMMUTABLE))
                .insert_header(tier_header(tier.as_str()));
            Timings {
                handler: started.elapsed(),
                metadata: timings.metadata,
                fetch: timings.fetch,
                decode: timings.decode,
                encode: timings.encode,
            }
            .apply(&mut response);
            response.body(Bytes::clone(value.bytes()))
        }
        Answer::Frames { answer, etag } => many::frames_response(answer, etag, head),
        Answer::Sprite { answer, etag } => many::sprite_response(answer, etag),
        Answer::NotModified(etag) => not_modified_response(&etag),
        Answer::Redirect(location) => HttpResponse::Found()
            .insert_header((header::LOCATION, location))
            .finish(),
        Answer::File(file) => files::into_response(file, state.service().io().clone()),
        Answer::Clip { clip, etag, name } => crate::clip::into_response(clip, etag, &name),
    }
}
