//! Movies and frames through the cache: a movie's index is cached in the three tiers (so a fresh
//! instance sharing the object store never re-reads it from the origin) and kept parsed in a
//! small in-process table; frames are computed on blocking threads within the decode slots.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lazycache_cache::{CacheKey, CachedValue, FrameKey, MetadataKey, ServedFrom, SourceId};
use lazycache_decode::{Format, Movie, MovieIndex, RenderOptions};
use lazycache_origin::OriginFile;
use tokio::sync::OwnedSemaphorePermit;

use crate::error::ApiError;
use crate::metrics::Counted;
use crate::state::AppState;

/// Bump when the cached index bytes change form.
const METADATA_REVISION: u32 = 1;
/// Bump when the same frame request would now give other bytes.
const FRAME_REVISION: u32 = 1;
/// Bytes of parsed indexes kept in memory: a 25,000-frame CamHD index is about 1 MiB parsed, so
/// this keeps a few hundred hot movies while a hostile index cannot grow it past the bound.
const PARSED_MOVIE_BYTES: u64 = 256 << 20;
/// Movie versions remembered as unservable; each entry is a key and a short message.
const UNSERVABLE_MOVIES: u64 = 10_000;
const INDEX_CONTENT_TYPE: &str = "application/x-lazycache-movie-index";

/// Parsed indexes by the canonical form of their metadata key, one copy each, weighed by bytes;
/// and the movie versions that cannot be served, remembered for the listing TTL (SPEC §4).
pub struct MovieTable {
    parsed: moka::future::Cache<String, Movie>,
    unservable: moka::future::Cache<String, Arc<ApiError>>,
}

impl MovieTable {
    pub fn new(unservable_ttl: Duration) -> Self {
        Self {
            parsed: moka::future::Cache::builder()
                .weigher(|_key: &String, movie: &Movie| {
                    u32::try_from(parsed_bytes(movie)).unwrap_or(u32::MAX)
                })
                .max_capacity(PARSED_MOVIE_BYTES)
                .build(),
            unservable: moka::future::Cache::builder()
                .max_capacity(UNSERVABLE_MOVIES)
                .time_to_live(unservable_ttl)
                .build(),
        }
    }
}

/// About what a parsed movie occupies: its samples (and their presentation order) dominate.
fn parsed_bytes(movie: &Movie) -> usize {
    let index = movie.index();
    let per_sample = std::mem::size_of::<lazycache_decode::index::Sample>() + 8;
    index.samples.len() * per_sample + index.codec.extradata.len() + 1024
}

/// A movie ready for frames, and where its index came from.
pub struct LoadedMovie {
    pub movie: Movie,
    pub served_from: ServedFrom,
    pub elapsed: Duration,
}

/// Time spent decoding and encoding a frame this request computed.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameTimings {
    /// Reading (or finding) the movie's index inside the computation.
    pub index: Duration,
    pub decode: Duration,
    pub encode: Duration,
}

/// What a frame request asks for, with the frame number resolved.
#[derive(Debug, Clone)]
pub struct FrameSpec {
    pub frame: u64,
    pub format: Format,
    pub options: RenderOptions,
    pub quality: Option<u8>,
}

pub fn source_id(mirror: &str, file: &OriginFile) -> SourceId {
    SourceId {
        mirror: mirror.to_owned(),
        path: file.path().to_string(),
        validator: file.validator().to_owned(),
    }
}

/// The movie `file` is: parsed already, else from its cached index, else (once, shared) from
/// the origin. Concurrent callers share one parse; a version that cannot be served answers its
/// remembered error without touching the origin.
pub async fn load_movie(
    state: &AppState,
    source: SourceId,
    file: OriginFile,
) -> Result<LoadedMovie, ApiError> {
    let started = Instant::now();
    let key = CacheKey::Metadata(MetadataKey {
        source,
        revision: METADATA_REVISION,
    });
    let table_key = key.canonical();
    let movies = &state.inner.movies;
    if let Some(error) = movies.unservable.get(&table_key).await {
        return Err(ApiError::Shared(error));
    }
    let served_from = Arc::new(Mutex::new(ServedFrom::Memory));
    let parsed = movies
        .parsed
        .try_get_with_by_ref(
            &table_key,
            read_index(state, key, file, Arc::clone(&served_from)),
        )
        .await;
    match parsed {
        Ok(movie) => Ok(LoadedMovie {
            movie,
            served_from: served_from.lock().map_or(ServedFrom::Memory, |tier| *tier),
            elapsed: started.elapsed(),
        }),
        Err(error) => {
            if error.is_unservable_movie() {
                movies
                    .unservable
                    .insert(table_key, Arc::clone(&error))
                    .await;
            }
            Err(ApiError::Shared(error))
        }
    }
}

/// The movie's index from the cache tiers, else built from the origin in a decode slot.
async fn read_index(
    state: &AppState,
    key: CacheKey,
    file: OriginFile,
    served_from: Arc<Mutex<ServedFrom>>,
) -> Result<Movie, ApiError> {
    let inner = &state.inner;
    let byte_source = (inner.sources)(file);
    let compute_source = Arc::clone(&byte_source);
    let compute_state = state.clone();
    let lookup = state
        .open_cache()?
        .get_or_compute(&key, move || async move {
            let slot = decode_slot(&compute_state).await?;
            let limits = compute_state.inner.limits.clone();
            let timer = compute_state.inner.metrics.index_seconds.start_timer();
            let movie = blocking(slot, move || Movie::open(compute_source, limits)).await?;
            timer.observe_duration();
            let bytes = movie.index().to_bytes()?;
            Ok::<_, ApiError>(CachedValue::new(INDEX_CONTENT_TYPE, bytes))
        })
        .await
        .map_err(ApiError::from)?;
    if let Ok(mut tier) = served_from.lock() {
        *tier = lookup.served_from;
    }
    let index = MovieIndex::from_bytes(lookup.value.bytes())?;
    Ok(Movie::with_index(byte_source, index, inner.limits.clone())?)
}

/// The cache key of one frame of one movie version.
pub fn frame_key(source: SourceId, spec: &FrameSpec) -> CacheKey {
    CacheKey::Frame(FrameKey {
        source,
        frame: spec.frame,
        format: spec.format.extension().to_owned(),
        width: spec.options.width,
        height: spec.options.height,
        fit: format!("{:?}", spec.options.fit).to_ascii_lowercase(),
        crop: spec.options.crop.map(|c| lazycache_cache::CropRect {
            x: c.x,
            y: c.y,
            width: c.width,
            height: c.height,
        }),
        quality: spec.quality,
        revision: FRAME_REVISION,
    })
}

/// Decodes and encodes one frame in a decode slot, recording its timings into `timings`.
pub async fn compute_frame(
    state: AppState,
    movie: Movie,
    spec: FrameSpec,
    timings: Arc<Mutex<FrameTimings>>,
) -> Result<CachedValue, ApiError> {
    movie.check_frame(spec.frame)?;
    let slot = decode_slot(&state).await?;
    let metrics = state.inner.metrics.clone();
    let in_flight = Counted::enter(&metrics.decodes_in_flight);
    let format = spec.format;
    let encoded = blocking(slot, move || {
        let _in_flight = in_flight;
        movie.frame(spec.frame, &spec.options, spec.format, spec.quality)
    })
    .await?;
    metrics
        .decode_seconds
        .observe(encoded.decode_time.as_secs_f64());
    metrics
        .encode_seconds
        .observe(encoded.encode_time.as_secs_f64());
    if let Ok(mut slot) = timings.lock() {
        slot.decode = encoded.decode_time;
        slot.encode = encoded.encode_time;
    }
    Ok(CachedValue::new(format.content_type(), encoded.bytes))
}

/// One of `--max-concurrent-decodes` slots, waited for at most the queue timeout.
async fn decode_slot(state: &AppState) -> Result<OwnedSemaphorePermit, ApiError> {
    let inner = &state.inner;
    let slots = Arc::clone(&inner.decode_slots);
    let waiting = Counted::enter(&inner.metrics.decodes_waiting);
    let acquired =
        tokio::time::timeout(inner.options.decode_queue_timeout, slots.acquire_owned()).await;
    drop(waiting);
    match acquired {
        Ok(Ok(permit)) => Ok(permit),
        Ok(Err(_closed)) => Err(ApiError::ShuttingDown),
        Err(_elapsed) => {
            inner.metrics.decode_queue_rejections.inc();
            Err(ApiError::DecodeQueueFull(
                inner.options.max_concurrent_decodes,
            ))
        }
    }
}

/// Runs FFmpeg work on a blocking thread that keeps its decode slot until the work ends, even
/// when the request that asked for it has gone: slots bound the decoding threads, not requests.
async fn blocking<T: Send + 'static>(
    slot: OwnedSemaphorePermit,
    work: impl FnOnce() -> lazycache_decode::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let held = move || {
        let _slot = slot;
        work()
    };
    match tokio::task::spawn_blocking(held).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(join) => Err(ApiError::Internal(format!("decode task failed: {join}"))),
    }
}
