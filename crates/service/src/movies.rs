//! Movies: a movie version's index is cached in the three tiers (so a fresh instance sharing the
//! object store never re-reads it from the origin) and kept parsed, once, in a byte-bounded table;
//! a version that cannot be served is remembered as such for the listing TTL. And the metadata
//! use case on top.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lazycache_cache::{CachedValue, ServedFrom};
use lazycache_decode::{Metadata, Movie, MovieIndex};
use lazycache_origin::{Mirror, OriginFile, RelPath};

use crate::error::{ServiceError, ServiceResult};
use crate::keys::{INDEX_CONTENT_TYPE, MovieVersion, metadata_key};
use crate::service::{Conditional, Service, retry_if_changed};
use crate::slots::blocking;
use crate::source::OriginSource;
use crate::timestamps::start_time_text;

/// Bytes of parsed indexes kept in memory: a 25,000-frame CamHD index is about 1 MiB parsed, so
/// this keeps a few hundred hot movies while a hostile index cannot grow it past the bound.
const PARSED_MOVIE_BYTES: u64 = 256 << 20;
/// Movie versions remembered as unservable; each entry is a key and a short message.
const UNSERVABLE_MOVIES: u64 = 10_000;

/// Parsed indexes by the canonical form of their metadata key, one copy each, weighed by bytes;
/// and the movie versions that cannot be served, remembered for the listing TTL (SPEC §4).
pub(crate) struct MovieTable {
    parsed: moka::future::Cache<String, Movie>,
    unservable: moka::future::Cache<String, Arc<ServiceError>>,
}

impl MovieTable {
    pub fn new(unservable_ttl: Duration) -> Self {
        Self {
            parsed: moka::future::Cache::builder()
                .weigher(|_key: &String, movie: &Movie| {
                    u32::try_from(movie.heap_bytes()).unwrap_or(u32::MAX)
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

/// A movie ready for frames, and where its index came from.
pub struct LoadedMovie {
    pub movie: Movie,
    pub version: MovieVersion,
    pub served_from: ServedFrom,
    pub elapsed: Duration,
}

/// What the metadata use case answers: the movie's metadata with its path, where it came from,
/// and a tag that changes with the movie version.
pub struct MetadataAnswer {
    pub path: String,
    pub metadata: Metadata,
    pub version_tag: String,
    pub served_from: ServedFrom,
    pub elapsed: Duration,
}

impl Service {
    /// A movie's metadata, from its cached index when known (retried once when the file changed
    /// under the request). `holds(tag)` says whether the caller already has that version: then
    /// [`Conditional::Held`] — but only for a movie that would otherwise be answered.
    pub async fn metadata(
        &self,
        mirror: &Mirror,
        path: &RelPath,
        holds: &(dyn Fn(&str) -> bool + Sync),
    ) -> ServiceResult<Conditional<MetadataAnswer>> {
        retry_if_changed(mirror, path, || async {
            let loaded = self.movie(mirror, path).await?;
            let version_tag = metadata_key(&loaded.version).canonical().to_owned();
            if holds(&version_tag) {
                return Ok(Conditional::Held(version_tag));
            }
            let mut metadata = loaded.movie.metadata();
            metadata.start_time =
                start_time_text(&loaded.movie, path.file_name().unwrap_or_default());
            Ok(Conditional::Fresh(MetadataAnswer {
                path: format!("/{path}"),
                metadata,
                version_tag,
                served_from: loaded.served_from,
                elapsed: loaded.elapsed,
            }))
        })
        .await
    }

    /// The movie at `path` of `mirror`, in its current version.
    pub async fn movie(&self, mirror: &Mirror, path: &RelPath) -> ServiceResult<LoadedMovie> {
        let file = mirror.open_file(path).await?;
        let version = MovieVersion::of(mirror.url().as_str(), &file);
        self.load_movie(version, file).await
    }

    /// The movie `file` is: parsed already, else from its cached index, else (once, shared)
    /// from the origin. Concurrent callers share one parse; a version that cannot be served
    /// answers its remembered error without touching the origin.
    pub(crate) async fn load_movie(
        &self,
        version: MovieVersion,
        file: OriginFile,
    ) -> ServiceResult<LoadedMovie> {
        let started = Instant::now();
        let key = metadata_key(&version);
        let table_key = key.canonical().to_owned();
        let movies = &self.inner.movies;
        if let Some(error) = movies.unservable.get(&table_key).await {
            return Err(ServiceError::Shared(error));
        }
        let served_from = Arc::new(Mutex::new(ServedFrom::Memory));
        let parsed = movies
            .parsed
            .try_get_with_by_ref(
                &table_key,
                self.read_index(key, file, Arc::clone(&served_from)),
            )
            .await;
        match parsed {
            Ok(movie) => Ok(LoadedMovie {
                movie,
                version,
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
                Err(ServiceError::Shared(error))
            }
        }
    }

    /// The movie's index from the cache tiers, else built from the origin in a decode slot.
    async fn read_index(
        &self,
        key: lazycache_cache::CacheKey,
        file: OriginFile,
        served_from: Arc<Mutex<ServedFrom>>,
    ) -> ServiceResult<Movie> {
        let inner = &self.inner;
        let byte_source: Arc<dyn lazycache_decode::ByteSource> =
            Arc::new(OriginSource::new(file, inner.io.clone()));
        let compute_source = Arc::clone(&byte_source);
        let service = self.clone();
        // The request that builds the index keeps the movie it opened, instead of decoding
        // the bytes it just encoded for the cache tiers (a 25,000-frame index: milliseconds).
        let built: Arc<Mutex<Option<Movie>>> = Arc::default();
        let built_here = Arc::clone(&built);
        let lookup = self
            .open_cache()?
            .get_or_compute(&key, move || async move {
                let inner = &service.inner;
                let slot = inner.slots.acquire(&inner.metrics).await?;
                let limits = inner.limits.clone();
                let timer = inner.metrics.index_seconds.start_timer();
                let movie = blocking(slot, move || Movie::open(compute_source, limits)).await?;
                timer.observe_duration();
                let bytes = movie.index().to_bytes()?;
                if let Ok(mut slot) = built_here.lock() {
                    *slot = Some(movie);
                }
                Ok::<_, ServiceError>(CachedValue::new(INDEX_CONTENT_TYPE, bytes))
            })
            .await
            .map_err(ServiceError::from)?;
        if let Ok(mut tier) = served_from.lock() {
            *tier = lookup.served_from;
        }
        let built = built.lock().ok().and_then(|mut slot| slot.take());
        let movie = match built {
            Some(movie) => movie,
            None => {
                let index = MovieIndex::from_bytes(lookup.value.bytes())?;
                Movie::with_index(byte_source, index, inner.limits.clone())?
            }
        };
        Ok(movie.with_warm_pool(Arc::clone(&inner.warm)))
    }
}
