//! `/v1/<mirror prefix><path>`: finds the mirror, tells listings, movies, frames, sprites and
//! other files apart, and runs the work on the I/O runtime.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use lazycache_cache::{CachedValue, ServedFrom};
use lazycache_decode::{Movie, parse_time};
use lazycache_origin::{Mirror, OriginFile, RelPath};
use serde_json::Value;

use crate::error::ApiError;
use crate::files::{self, Conditions, FileAnswer};
use crate::frame_request::{FrameWishes, frame_number, split_extension, wishes};
use crate::movies::{
    FrameSpec, FrameTimings, LoadedMovie, compute_frame, frame_key, load_movie, source_id,
};
use crate::respond::{
    CACHE_CONTROL_IMMUTABLE, Timings, if_none_match, not_modified, not_modified_response,
    strong_etag, tier_header,
};
use crate::state::AppState;
use crate::{access, listing};

/// How long clients may keep listings and metadata.
const CACHE_CONTROL_SHORT: &str = "public, max-age=60";

/// What a `/v1` path names.
enum Route {
    Listing(RelPath),
    Metadata(RelPath),
    Frame {
        movie: RelPath,
        which: Which,
        wishes: FrameWishes,
    },
    Sprite,
    OtherFile(RelPath),
}

enum Which {
    Number(u64),
    Time(f64),
}

/// What the I/O side found, turned into a response on the HTTP worker.
enum Answer {
    Json {
        body: Value,
        etag: Option<String>,
        tier: Option<ServedFrom>,
        metadata: Duration,
    },
    Image {
        value: CachedValue,
        etag: String,
        tier: ServedFrom,
        timings: Timings,
    },
    NotModified(String),
    Redirect(String),
    File(FileAnswer),
}

/// The request details the I/O side needs (actix requests stay on their worker).
struct Facts {
    if_none_match: Vec<String>,
    range: Option<String>,
    if_range: Option<String>,
}

pub async fn handle(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let started = Instant::now();
    let url = request.uri().path().to_owned();
    match respond(&request, &state, &url, started).await {
        Ok(response) => response,
        Err(error) => error.to_response(&request),
    }
}

async fn respond(
    request: &HttpRequest,
    state: &AppState,
    url: &str,
    started: Instant,
) -> Result<HttpResponse, ApiError> {
    if state.is_starting() {
        return Err(ApiError::Starting);
    }
    access::check(request, &state.inner.options.api_keys)?;
    let tail = url.strip_prefix("/v1").unwrap_or(url);
    let (mirror, path) = find_mirror(state, tail)?;
    let route = route(state, request, url, path)?;
    let facts = Facts {
        if_none_match: if_none_match(request),
        range: header_text(request, header::RANGE),
        if_range: header_text(request, header::IF_RANGE),
    };
    let io_state = state.clone();
    let work = state
        .inner
        .io
        .spawn(async move { answer(&io_state, &mirror, route, facts).await });
    let limit = state.inner.options.request_timeout;
    let answer = match tokio::time::timeout(limit, work).await {
        Ok(Ok(answer)) => answer?,
        Ok(Err(join)) => return Err(ApiError::Internal(format!("request task failed: {join}"))),
        Err(_) => return Err(ApiError::RequestTimedOut(limit)),
    };
    Ok(into_response(answer, state, started))
}

fn find_mirror(state: &AppState, tail: &str) -> Result<(Arc<Mirror>, RelPath), ApiError> {
    for mirror in &state.inner.mirrors {
        if let Some(path) = mirror.spec().relative_path(tail) {
            return Ok((Arc::clone(mirror), path?));
        }
    }
    Err(ApiError::NotFound(
        "no mirror is served under this path".into(),
    ))
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
    let options = &state.inner.options;
    let segments = path.segments();
    let n = segments.len();
    if n >= 3 && options.is_movie(&segments[n - 3]) {
        let movie = sub_path(&segments[..n - 2])?;
        let (stem, format) = split_extension(&segments[n - 1])?;
        let which = match segments[n - 2].as_str() {
            "frame" => Some(Which::Number(frame_number(stem)?)),
            "time" => Some(Which::Time(parse_time(stem)?)),
            _ => None,
        };
        if let Some(which) = which {
            if format.is_raw() && !options.allow_raw_output {
                return Err(ApiError::RawOutputDisabled);
            }
            let wishes = wishes(request, format)?;
            return Ok(Route::Frame {
                movie,
                which,
                wishes,
            });
        }
    }
    if n >= 2 && options.is_movie(&segments[n - 2]) {
        let last = segments[n - 1].as_str();
        if last == "sprite" || last.starts_with("sprite.") {
            return Ok(Route::Sprite);
        }
    }
    if options.is_movie(&segments[n - 1]) {
        return Ok(Route::Metadata(path));
    }
    Ok(Route::OtherFile(path))
}

fn sub_path(segments: &[String]) -> Result<RelPath, ApiError> {
    Ok(RelPath::parse(&segments.join("/"))?)
}

async fn answer(
    state: &AppState,
    mirror: &Mirror,
    route: Route,
    facts: Facts,
) -> Result<Answer, ApiError> {
    match route {
        Route::Listing(dir) => listing_answer(mirror, &dir).await,
        Route::Metadata(path) => {
            retry_if_changed(mirror, &path, || metadata(state, mirror, &path, &facts)).await
        }
        Route::Frame {
            movie,
            which,
            wishes,
        } => {
            retry_if_changed(mirror, &movie, || {
                frame(state, mirror, &movie, &which, &wishes, &facts)
            })
            .await
        }
        Route::Sprite => Err(ApiError::NotImplemented("the sprite (contact sheet) route")),
        Route::OtherFile(path) => other_file(mirror, &path, &facts).await,
    }
}

/// Runs `attempt`; when the origin file changed under it, forgets the old version and tries once
/// more (SPEC §4: a changed file is never answered from its old content).
async fn retry_if_changed<F, Fut>(
    mirror: &Mirror,
    path: &RelPath,
    attempt: F,
) -> Result<Answer, ApiError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Answer, ApiError>>,
{
    match attempt().await {
        Err(error) if error.is_changed() => {
            mirror.forget(path).await;
            attempt().await
        }
        other => other,
    }
}

async fn listing_answer(mirror: &Mirror, dir: &RelPath) -> Result<Answer, ApiError> {
    let entries = mirror.list(dir).await?;
    Ok(Answer::Json {
        body: listing::body(dir, &entries),
        etag: None,
        tier: None,
        metadata: Duration::ZERO,
    })
}

async fn metadata(
    state: &AppState,
    mirror: &Mirror,
    path: &RelPath,
    facts: &Facts,
) -> Result<Answer, ApiError> {
    let file = mirror.open_file(path).await?;
    let etag = strong_etag(&[
        mirror.url().as_str(),
        &path.to_string(),
        file.validator(),
        "metadata",
    ]);
    let source = source_id(mirror.url().as_str(), &file);
    // Loaded before any 304: only a movie that would get its 200 gets a 304 (SPEC §3).
    let loaded = load_movie(state, source, file).await?;
    if not_modified(&facts.if_none_match, &etag) {
        return Ok(Answer::NotModified(etag));
    }
    let mut body = serde_json::to_value(loaded.movie.metadata())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if let Value::Object(object) = &mut body {
        object.insert("URL".into(), Value::String(format!("/{path}")));
    }
    Ok(Answer::Json {
        body,
        etag: Some(etag),
        tier: Some(loaded.served_from),
        metadata: loaded.elapsed,
    })
}

async fn frame(
    state: &AppState,
    mirror: &Mirror,
    path: &RelPath,
    which: &Which,
    wishes: &FrameWishes,
    facts: &Facts,
) -> Result<Answer, ApiError> {
    let file = mirror.open_file(path).await?;
    let source = source_id(mirror.url().as_str(), &file);
    let (number, movie, metadata_time) = match which {
        Which::Number(number) => (*number, MovieHandle::File(file), Duration::ZERO),
        Which::Time(seconds) => {
            let LoadedMovie { movie, elapsed, .. } =
                load_movie(state, source.clone(), file).await?;
            (
                movie.frame_at_time(*seconds)?,
                MovieHandle::Loaded(movie),
                elapsed,
            )
        }
    };
    let spec = FrameSpec {
        frame: number,
        format: wishes.format,
        options: wishes.options,
        quality: wishes.quality,
    };
    let key = frame_key(source.clone(), &spec);
    let etag = strong_etag(&[&key.canonical()]);
    if not_modified(&facts.if_none_match, &etag) {
        // Only a frame that would get its 200 gets a 304 (SPEC §3): `*` or a forged tag must not
        // stand in for a frame past the end.
        let movie = match movie {
            MovieHandle::Loaded(movie) => movie,
            MovieHandle::File(file) => load_movie(state, source, file).await?.movie,
        };
        movie.check_frame(number)?;
        return Ok(Answer::NotModified(etag));
    }
    let timings = Arc::new(Mutex::new(FrameTimings::default()));
    let compute_timings = Arc::clone(&timings);
    let compute_state = state.clone();
    let fetch_started = Instant::now();
    let lookup = state
        .open_cache()?
        .get_or_compute(&key, move || async move {
            let movie = match movie {
                MovieHandle::Loaded(movie) => movie,
                MovieHandle::File(file) => {
                    let loaded = load_movie(&compute_state, source, file).await?;
                    if let Ok(mut timings) = compute_timings.lock() {
                        timings.index = loaded.elapsed;
                    }
                    loaded.movie
                }
            };
            compute_frame(compute_state, movie, spec, compute_timings).await
        })
        .await
        .map_err(ApiError::from)?;
    let computed = timings.lock().map(|t| *t).unwrap_or_default();
    let fetch = fetch_started
        .elapsed()
        .saturating_sub(computed.decode + computed.encode + computed.index);
    Ok(Answer::Image {
        value: lookup.value,
        etag,
        tier: lookup.served_from,
        timings: Timings {
            handler: Duration::ZERO,
            metadata: metadata_time + computed.index,
            fetch,
            decode: computed.decode,
            encode: computed.encode,
        },
    })
}

/// A movie known already, or the file to load it from inside the computation.
enum MovieHandle {
    Loaded(Movie),
    File(OriginFile),
}

fn header_text(request: &HttpRequest, name: header::HeaderName) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn other_file(mirror: &Mirror, path: &RelPath, facts: &Facts) -> Result<Answer, ApiError> {
    if let Some(url) = mirror.public_url(path) {
        return Ok(Answer::Redirect(url.to_string()));
    }
    match mirror.open_file(path).await {
        Ok(file) => Ok(Answer::File(files::answer(
            mirror,
            file,
            &Conditions {
                if_none_match: &facts.if_none_match,
                range: facts.range.as_deref(),
                if_range: facts.if_range.as_deref(),
            },
        )?)),
        // A directory named without its trailing slash is listed.
        Err(error) if error.is_not_found() => match mirror.list(path).await {
            Ok(entries) => Ok(Answer::Json {
                body: listing::body(path, &entries),
                etag: None,
                tier: None,
                metadata: Duration::ZERO,
            }),
            Err(_) => Err(error.into()),
        },
        Err(error) => Err(error.into()),
    }
}

fn into_response(answer: Answer, state: &AppState, started: Instant) -> HttpResponse {
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
            etag,
            tier,
            mut timings,
        } => {
            let mut response = HttpResponse::Ok();
            response
                .content_type(value.content_type())
                .insert_header((header::ETAG, etag))
                .insert_header((header::CACHE_CONTROL, CACHE_CONTROL_IMMUTABLE))
                .insert_header(tier_header(tier.as_str()));
            timings.handler = started.elapsed();
            timings.apply(&mut response);
            response.body(Bytes::clone(value.bytes()))
        }
        Answer::NotModified(etag) => not_modified_response(&etag),
        Answer::Redirect(location) => HttpResponse::Found()
            .insert_header((header::LOCATION, location))
            .finish(),
        Answer::File(file) => files::into_response(file, state.inner.io.clone()),
    }
}
