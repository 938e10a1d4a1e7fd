//! The frame use case: one frame of one movie as an image — from the cache tiers, else decoded
//! once (concurrent requests share it) in a decode slot, with where it came from and its timings.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lazycache_cache::{CachedValue, ServedFrom};
use lazycache_decode::Movie;
use lazycache_origin::{Mirror, OriginFile, RelPath};

use crate::error::{ServiceError, ServiceResult};
use crate::keys::{MovieVersion, frame_key};
use crate::metrics::Counted;
use crate::request::{FrameOutput, FrameRequest, FrameSelector, Seek};
use crate::service::{Conditional, Service, retry_if_changed};
use crate::slots::blocking;
use crate::timestamps::FrameTime;

/// Where a frame's time went.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameTimings {
    /// Finding or reading the movie's index.
    pub metadata: Duration,
    /// Everything else before decoding: cache lookups, waiting for a slot, origin reads.
    pub fetch: Duration,
    pub decode: Duration,
    pub encode: Duration,
}

/// An encoded frame and its provenance.
pub struct FrameAnswer {
    pub value: CachedValue,
    /// The frame's number: resolved from the time when asked by time, the keyframe answered in
    /// keyframe mode. A keyframe-mode answer is exact frame K, cached under K's own key.
    pub frame: u64,
    /// Changes whenever the bytes would (movie version, frame, every output option).
    pub version_tag: String,
    pub served_from: ServedFrom,
    pub timings: FrameTimings,
    /// The frame's time from the start and, when the movie's start is known, its wall-clock time.
    pub time: FrameTime,
}

/// A movie known already, or the file to load it from inside the computation.
enum MovieSource {
    Loaded(Movie),
    Unread(MovieVersion, OriginFile),
}

impl Service {
    /// Frame `request` of the movie at `path` of `mirror` (retried once when the file changed
    /// under the request). `holds(tag)` says whether the caller already has that version: then
    /// [`Conditional::Held`] — but only for a frame that exists.
    pub async fn frame(
        &self,
        mirror: &Mirror,
        path: &RelPath,
        request: &FrameRequest,
        holds: &(dyn Fn(&str) -> bool + Sync),
    ) -> ServiceResult<Conditional<FrameAnswer>> {
        if request.output.format.is_raw() && !self.inner.options.allow_raw_output {
            return Err(ServiceError::RawOutputDisabled);
        }
        retry_if_changed(mirror, path, || {
            self.frame_once(mirror, path, request, holds)
        })
        .await
    }

    async fn frame_once(
        &self,
        mirror: &Mirror,
        path: &RelPath,
        request: &FrameRequest,
        holds: &(dyn Fn(&str) -> bool + Sync),
    ) -> ServiceResult<Conditional<FrameAnswer>> {
        let started = Instant::now();
        let file = mirror.open_file(path).await?;
        let version = MovieVersion::of(mirror.url().as_str(), &file);
        // Times and keyframe mode need the index to know which frame; exact numbers do not
        // until the frame is missing from every tier.
        let (number, movie, metadata_time) = match (request.selector, request.seek) {
            (FrameSelector::Number(number), Seek::Exact) => (
                number,
                MovieSource::Unread(version.clone(), file),
                Duration::ZERO,
            ),
            (selector, seek) => {
                let loaded = self.load_movie(version.clone(), file).await?;
                let mut number = match selector {
                    FrameSelector::Number(number) => number,
                    FrameSelector::Time(seconds) => loaded.movie.frame_at_time(seconds)?,
                };
                if seek == Seek::Keyframe {
                    number = self.keyframe_of(&loaded.movie, number).await?;
                }
                (number, MovieSource::Loaded(loaded.movie), loaded.elapsed)
            }
        };
        let known_movie = match &movie {
            MovieSource::Loaded(movie) => Some(movie.clone()),
            MovieSource::Unread(..) => None,
        };
        let key = frame_key(&version, number, &request.output);
        let version_tag = key.canonical().to_owned();
        if holds(&version_tag) {
            // `*` or a forged tag must not stand in for a frame past the end.
            let movie = match movie {
                MovieSource::Loaded(movie) => movie,
                MovieSource::Unread(version, file) => self.load_movie(version, file).await?.movie,
            };
            movie.check_frame(number)?;
            return Ok(Conditional::Held(version_tag));
        }
        let timings = Arc::new(Mutex::new(FrameTimings::default()));
        let compute_timings = Arc::clone(&timings);
        let service = self.clone();
        let output = request.output;
        let lookup = self
            .open_cache()?
            .get_or_compute(&key, move || async move {
                let movie = match movie {
                    MovieSource::Loaded(movie) => movie,
                    MovieSource::Unread(version, file) => {
                        let loaded = service.load_movie(version, file).await?;
                        if let Ok(mut timings) = compute_timings.lock() {
                            timings.metadata = loaded.elapsed;
                        }
                        loaded.movie
                    }
                };
                service
                    .compute_frame(movie, number, output, compute_timings)
                    .await
            })
            .await
            .map_err(ServiceError::from)?;
        // A frame found in a cache tier did not need the movie: its times do (from the table
        // of parsed movies, or the cached index).
        let movie = match known_movie {
            Some(movie) => movie,
            None => self.movie(mirror, path).await?.movie,
        };
        let time = FrameTime::of(&movie, number, path.file_name().unwrap_or_default())?;
        let computed = timings.lock().map(|t| *t).unwrap_or_default();
        let fetch = started
            .elapsed()
            .saturating_sub(computed.decode + computed.encode + computed.metadata + metadata_time);
        Ok(Conditional::Fresh(FrameAnswer {
            value: lookup.value,
            frame: number,
            version_tag,
            served_from: lookup.served_from,
            timings: FrameTimings {
                metadata: metadata_time + computed.metadata,
                fetch,
                decode: computed.decode,
                encode: computed.encode,
            },
            time,
        }))
    }

    /// The keyframe keyframe mode answers for frame `number`: from the index, or — where the
    /// movie's keyframes are found only by reading it (MXF, MPEG-TS) — read in a decode slot.
    async fn keyframe_of(&self, movie: &Movie, number: u64) -> ServiceResult<u64> {
        if !movie.keyframes_need_reading() {
            return Ok(movie.keyframe_at_or_before(number)?);
        }
        movie.check_frame(number)?;
        let slot = self.inner.slots.acquire(&self.inner.metrics).await?;
        let movie = movie.clone();
        blocking(slot, move || movie.keyframe_at_or_before(number)).await
    }

    /// Decodes and encodes one frame in a decode slot, recording its timings into `timings`.
    async fn compute_frame(
        &self,
        movie: Movie,
        number: u64,
        output: FrameOutput,
        timings: Arc<Mutex<FrameTimings>>,
    ) -> ServiceResult<CachedValue> {
        movie.check_frame(number)?;
        let inner = &self.inner;
        let slot = inner.slots.acquire(&inner.metrics).await?;
        let metrics = inner.metrics.clone();
        let in_flight = Counted::enter(&metrics.decodes_in_flight);
        let encoded = blocking(slot, move || {
            let _in_flight = in_flight;
            movie.frame(number, &output.render, output.format, output.quality)
        })
        .await?;
        metrics
            .decode_seconds
            .observe(encoded.decode_time.as_secs_f64());
        metrics
            .decodes
            .with_label_values(&[encoded.decode_path.as_str()])
            .inc();
        metrics
            .encode_seconds
            .observe(encoded.encode_time.as_secs_f64());
        if let Ok(mut slot) = timings.lock() {
            slot.decode = encoded.decode_time;
            slot.encode = encoded.encode_time;
        }
        Ok(CachedValue::new(
            output.format.content_type(),
            encoded.bytes,
        ))
    }
}
