//! The clip use case: frames A..B of a movie as a new movie by stream copy, written in a decode
//! slot into an anonymous temporary file (a clip may reach 4 GiB: disk, not memory, holds it)
//! that the caller streams out. Clips are not cached: they are rare and large.

use std::fs::File;
use std::time::Instant;

use lazycache_decode::ClipFormat;
use lazycache_origin::{Mirror, RelPath};

use crate::error::{ServiceError, ServiceResult};
use crate::keys::{MovieVersion, clip_key};
use crate::metrics::Counted;
use crate::service::{Service, retry_if_changed};
use crate::slots::blocking;

/// Frames `first..=last` (1-based) as a `format` movie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClipRequest {
    pub first: u64,
    pub last: u64,
    pub format: ClipFormat,
}

impl ClipRequest {
    /// `A-B.mov` as typed in a URL or on the command line (`A-B` and a separate extension).
    pub fn parse(range: &str, extension: &str) -> ServiceResult<Self> {
        let bad = || {
            ServiceError::BadRequest(format!(
                "a clip is frames A-B, whole numbers from 1, not {range:?}"
            ))
        };
        let (first, last) = range.split_once('-').ok_or_else(bad)?;
        let first: u64 = first.parse().map_err(|_| bad())?;
        let last: u64 = last.parse().map_err(|_| bad())?;
        if first == 0 || last == 0 {
            return Err(lazycache_decode::Error::FrameZero.into());
        }
        if last < first {
            return Err(ServiceError::BadRequest(format!(
                "a clip runs from a frame to a later one, not {range}"
            )));
        }
        Ok(Self {
            first,
            last,
            format: ClipFormat::from_extension(extension)?,
        })
    }

    /// `A-B.ext` → the request.
    pub fn parse_segment(segment: &str) -> ServiceResult<Self> {
        let (range, extension) = segment.rsplit_once('.').ok_or_else(|| {
            ServiceError::BadRequest(format!(
                "a clip needs an extension (.mov, .mp4 or .mkv), not {segment:?}"
            ))
        })?;
        Self::parse(range, extension)
    }
}

/// A clip, ready to be streamed from `file` (positioned at its start).
pub struct ClipAnswer {
    pub file: File,
    pub len: u64,
    pub content_type: &'static str,
    /// Changes whenever the bytes would (movie version, frames, container).
    pub version_tag: String,
    /// Samples copied and how long writing took.
    pub samples: usize,
    pub elapsed: std::time::Duration,
}

impl Service {
    /// The clip `request` of the movie at `path` of `mirror` (retried once when the file
    /// changed under the request).
    pub async fn clip(
        &self,
        mirror: &Mirror,
        path: &RelPath,
        request: &ClipRequest,
    ) -> ServiceResult<ClipAnswer> {
        retry_if_changed(mirror, path, || self.clip_once(mirror, path, request)).await
    }

    async fn clip_once(
        &self,
        mirror: &Mirror,
        path: &RelPath,
        request: &ClipRequest,
    ) -> ServiceResult<ClipAnswer> {
        let started = Instant::now();
        let loaded = self.movie(mirror, path).await?;
        let movie = loaded.movie;
        let plan = movie.clip_plan(request.first, request.last)?;
        let version_tag = clip_tag(&loaded.version, request);
        let inner = &self.inner;
        let slot = inner.slots.acquire(&inner.metrics).await?;
        let in_flight = Counted::enter(&inner.metrics.decodes_in_flight);
        let format = request.format;
        let (file, written) = blocking(slot, move || {
            let _in_flight = in_flight;
            let mut file = tempfile::tempfile().map_err(|e| {
                lazycache_decode::Error::Encode(format!("no temporary file for the clip: {e}"))
            })?;
            let written = movie.write_clip(&plan, format, &mut file)?;
            std::io::Seek::rewind(&mut file).map_err(|e| {
                lazycache_decode::Error::Encode(format!("cannot read the clip back: {e}"))
            })?;
            Ok::<_, lazycache_decode::Error>((file, written))
        })
        .await?;
        Ok(ClipAnswer {
            file,
            len: written.bytes,
            content_type: format.content_type(),
            version_tag,
            samples: written.samples,
            elapsed: started.elapsed(),
        })
    }
}

fn clip_tag(movie: &MovieVersion, request: &ClipRequest) -> String {
    let frames = format!("{}-{}", request.first, request.last);
    clip_key(movie, &frames, request.format.extension())
        .canonical()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_ranges_are_checked() {
        let ok = ClipRequest::parse_segment("10-20.mov").ok();
        assert_eq!(
            ok,
            Some(ClipRequest {
                first: 10,
                last: 20,
                format: ClipFormat::Mov
            })
        );
        for bad in ["0-3.mov", "5-3.mp4", "a-b.mkv", "3.mov", "1-2.avi", "1-2"] {
            assert!(ClipRequest::parse_segment(bad).is_err(), "{bad}");
        }
    }
}
