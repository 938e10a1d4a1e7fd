//! The public face of the crate: open a movie (or adopt a cached index), describe it, and turn
//! frame N into an encoded image.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::deadline;
use crate::decoder::warm_pool::WarmPool;
use crate::decoder::{DecodePath, DecodedFrame, WarmMovie, decode_frame, keyframe_scan};
use crate::encode::{DEFAULT_JPEG_QUALITY, Format, encode};
use crate::error::{Error, Result};
use crate::index::{self, MovieIndex};
use crate::jpeg_from_yuv;
use crate::limits::Limits;
use crate::render::{RenderOptions, keeps_picture, render};
use crate::source::{ByteSource, SourceError, SourceErrorKind};

/// Movie metadata with go-lazycache's field names (the HTTP layer adds `URL`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Metadata {
    pub num_frames: u64,
    pub duration: f64,
    pub file_size: u64,
    pub width: u32,
    pub height: u32,
    pub frame_rate: f64,
    pub codec: String,
    /// How frame numbers are known: "samples" (every sample is indexed: exact for any stream) or
    /// "constant-rate" (from the first frame's time and the frame rate, the container having no
    /// cheap sample table: exact for constant-rate streams), or "constant-rate-assumed" when the
    /// stream's stated rates disagree or its keyframes or end lie off the rate's grid.
    #[serde(default)]
    pub frame_numbers: String,
    /// Bits per sample of the decoded picture (its pixel format's luma depth): 8, 10, 12…;
    /// absent when unknown.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bit_depth: u32,
    /// When the movie starts (RFC 3339), if known: the service sets it from the container's
    /// creation time ([`Movie::creation_time`]) or the file's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
}

/// An encoded frame and where its time went.
#[derive(Debug, Clone)]
pub struct EncodedFrame {
    pub bytes: Bytes,
    pub format: Format,
    pub width: u32,
    pub height: u32,
    pub decode_time: Duration,
    pub encode_time: Duration,
    pub decode_path: DecodePath,
}

/// One version of one movie, ready to give frames. Clones share the index (one copy of the
/// samples) and the presentation order.
#[derive(Clone)]
pub struct Movie {
    source: Arc<dyn ByteSource>,
    index: Arc<MovieIndex>,
    /// Frame N is `index.samples[presentation[N - 1]]`.
    presentation: Arc<[u32]>,
    limits: Limits,
    /// This movie's id among the warm pool's states (shared by clones).
    id: u64,
    warm: Option<Arc<WarmPool>>,
}

/// Ids of parsed movies, for the warm pool.
static NEXT_MOVIE_ID: AtomicU64 = AtomicU64::new(1);

impl Movie {
    /// Reads the movie's index from `source` (for MOV/MP4: atom headers and the moov only).
    pub fn open(source: Arc<dyn ByteSource>, limits: Limits) -> Result<Self> {
        let _deadline = deadline::scope(Instant::now() + limits.decode_timeout);
        let index = index::build(Arc::clone(&source), &limits)?;
        let mut movie = Self::assemble(source, index, limits);
        if movie.index.codec.pixel_format.is_empty() {
            movie.learn_pixel_format();
        }
        Ok(movie)
    }

    /// MOV leaves the pixel format (and so `BitDepth`) to the decoder (ProRes aside: its four-cc
    /// names it): learn it from frame 1, once, into the index that is then cached. A frame that
    /// does not decode leaves it unknown.
    fn learn_pixel_format(&mut self) {
        let name = match self.decode(1) {
            Ok(frame) => pixel_format_name(&frame),
            Err(error) => {
                tracing::debug!("pixel format unknown: frame 1 did not decode: {error}");
                return;
            }
        };
        if let Some(index) = Arc::get_mut(&mut self.index) {
            index.codec.pixel_format = name;
        }
    }

    /// Adopts an index built earlier (e.g. from a cache) without reading the movie. Refused
    /// when the source is another version than the one the index describes, or when the index
    /// fails the bounds a fresh one meets ([`MovieIndex::check`]).
    pub fn with_index(
        source: Arc<dyn ByteSource>,
        index: MovieIndex,
        limits: Limits,
    ) -> Result<Self> {
        if index.validator != source.validator() || index.file_size != source.len() {
            return Err(Error::Source(SourceError::new(
                SourceErrorKind::Changed,
                format!("{} changed since its index was built", source.describe()),
            )));
        }
        index.check(&limits)?;
        Ok(Self::assemble(source, index, limits))
    }

    fn assemble(source: Arc<dyn ByteSource>, index: MovieIndex, limits: Limits) -> Self {
        let presentation = Arc::from(index.shown_order());
        Self {
            source,
            index: Arc::new(index),
            presentation,
            limits,
            id: NEXT_MOVIE_ID.fetch_add(1, Ordering::Relaxed),
            warm: None,
        }
    }

    /// Decodes long-GOP frames through `pool`: a frame a little ahead of one decoded before
    /// continues from the decoder state left by it (see `decoder::warm_pool`).
    pub fn with_warm_pool(mut self, pool: Arc<WarmPool>) -> Self {
        self.warm = Some(pool);
        self
    }

    pub fn index(&self) -> &MovieIndex {
        &self.index
    }

    /// Approximate heap bytes of this movie (its index and presentation order), shared by its
    /// clones: for weighing a table of parsed movies by memory.
    pub fn heap_bytes(&self) -> u64 {
        self.index.heap_bytes() + (self.presentation.len() * std::mem::size_of::<u32>()) as u64
    }

    pub fn source(&self) -> &Arc<dyn ByteSource> {
        &self.source
    }

    pub fn frame_count(&self) -> u64 {
        self.index.frame_count(self.presentation.len())
    }

    pub fn metadata(&self) -> Metadata {
        let (num, den) = self.index.frame_rate;
        Metadata {
            num_frames: self.frame_count(),
            duration: self.index.duration,
            file_size: self.index.file_size,
            width: self.index.codec.width.max(0) as u32,
            height: self.index.codec.height.max(0) as u32,
            frame_rate: if den > 0 {
                f64::from(num) / f64::from(den)
            } else {
                0.0
            },
            codec: self.index.codec.codec.clone(),
            frame_numbers: match &self.index.timeline {
                None => "samples",
                Some(t) if t.constant_rate => "constant-rate",
                Some(_) => "constant-rate-assumed",
            }
            .to_owned(),
            bit_depth: bit_depth(&self.index.codec.pixel_format),
            start_time: None,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The decode-order index of frame `frame`'s sample (sample-indexed movies).
    pub(crate) fn sample_of_frame(&self, frame: u64) -> Result<usize> {
        usize::try_from(frame.saturating_sub(1))
            .ok()
            .and_then(|position| self.presentation.get(position))
            .map(|&sample| sample as usize)
            .ok_or(Error::FrameOutOfRange {
                frame,
                count: self.frame_count(),
            })
    }

    pub(crate) fn sample(&self, sample: usize) -> Result<&index::Sample> {
        self.index
            .samples
            .get(sample)
            .ok_or_else(|| Error::BadIndex("a sample outside the index".into()))
    }

    /// The container's creation time as it states it (FFmpeg's `creation_time` tag), unchecked.
    pub fn creation_time(&self) -> Option<&str> {
        self.index.creation_time.as_deref()
    }

    /// Seconds from the first frame's presentation to frame `frame`'s (1-based).
    pub fn frame_time(&self, frame: u64) -> Result<f64> {
        self.check_frame(frame)?;
        let (num, den) = self.index.time_base;
        let seconds = |ticks: i64| ticks as f64 * f64::from(num) / f64::from(den.max(1));
        if let Some(timeline) = &self.index.timeline {
            return Ok(seconds(timeline.pts_of(frame - 1) - timeline.first_pts));
        }
        let pts_at = |position: usize| {
            let sample = *self.presentation.get(position)? as usize;
            self.index.samples.get(sample).map(|s| s.pts)
        };
        let position = usize::try_from(frame - 1).unwrap_or(usize::MAX);
        match (pts_at(0), pts_at(position)) {
            (Some(first), Some(pts)) => Ok(seconds(pts.saturating_sub(first))),
            _ => Err(Error::FrameOutOfRange {
                frame,
                count: self.frame_count(),
            }),
        }
    }

    /// The 1-based number of the frame on screen at `seconds` after the first frame.
    pub fn frame_at_time(&self, seconds: f64) -> Result<u64> {
        let duration = self.index.duration;
        if !seconds.is_finite() || seconds < 0.0 || seconds >= duration.max(f64::MIN_POSITIVE) {
            return Err(Error::TimeOutOfRange {
                time: seconds,
                duration,
            });
        }
        let (num, den) = self.index.time_base;
        if let Some(timeline) = &self.index.timeline {
            let offset = (seconds * f64::from(den) / f64::from(num.max(1))).floor() as i64;
            let frame = timeline.frame_at(timeline.first_pts.saturating_add(offset));
            return Ok(frame.saturating_add(1).min(self.frame_count()));
        }
        let pts_of = |i: &u32| self.index.samples.get(*i as usize).map(|s| s.pts);
        // An index always shows a frame (see `MovieIndex::check`); answer "outside" if not.
        let Some(first) = self.presentation.first().and_then(pts_of) else {
            return Err(Error::TimeOutOfRange {
                time: seconds,
                duration,
            });
        };
        if num <= 0 || den <= 0 {
            return Err(Error::NotAMovie("the video stream has no time base".into()));
        }
        let offset = (seconds * f64::from(den) / f64::from(num)).floor() as i64;
        let wanted = first.saturating_add(offset);
        // Frames shown at or before `wanted`; the last of them is on screen.
        let shown = self
            .presentation
            .partition_point(|i| pts_of(i).is_some_and(|pts| pts <= wanted));
        Ok(shown.max(1) as u64)
    }

    /// Checks a 1-based frame number.
    pub fn check_frame(&self, frame: u64) -> Result<()> {
        match frame {
            0 => Err(Error::FrameZero),
            n if n > self.frame_count() => Err(Error::FrameOutOfRange {
                frame: n,
                count: self.frame_count(),
            }),
            _ => Ok(()),
        }
    }

    /// Decodes frame `frame` (1-based, presentation order). Blocking: call off the async runtime.
    pub fn decode(&self, frame: u64) -> Result<DecodedFrame> {
        self.check_frame(frame)?;
        let _deadline = deadline::scope(Instant::now() + self.limits.decode_timeout);
        let position = usize::try_from(frame - 1).map_err(|_| Error::FrameOutOfRange {
            frame,
            count: self.frame_count(),
        })?;
        decode_frame(
            &self.source,
            &self.index,
            &self.presentation,
            position,
            &self.limits,
            self.warm.as_deref().map(|pool| WarmMovie {
                pool,
                movie: self.id,
            }),
        )
    }

    /// Whether [`Movie::keyframe_at_or_before`] reads the movie — long-GOP MXF and MPEG-TS,
    /// whose keyframes are found only by reading packets —, so that callers run it where
    /// decodes run (a decode slot, a blocking thread).
    pub fn keyframes_need_reading(&self) -> bool {
        self.index
            .timeline
            .as_ref()
            .is_some_and(|timeline| timeline.keyframes.is_empty())
            && !self.index.intra_only
    }

    /// The nearest shown keyframe at or before frame `frame` (both 1-based): what
    /// `?seek=keyframe` answers, decodable without any frame before it.
    ///
    /// Where the index lists no keyframes (MXF and MPEG-TS timelines; see
    /// [`Movie::keyframes_need_reading`]) this seeks and reads packets without decoding them:
    /// blocking, call off the async runtime. If no keyframe is found so, the frame itself.
    pub fn keyframe_at_or_before(&self, frame: u64) -> Result<u64> {
        self.check_frame(frame)?;
        if self.keyframes_need_reading()
            && let Some(timeline) = &self.index.timeline
        {
            let _deadline = deadline::scope(Instant::now() + self.limits.decode_timeout);
            let found = keyframe_scan::keyframe_at_or_before(
                &self.source,
                &self.index,
                timeline,
                frame - 1,
                &self.limits,
            )?;
            return Ok(found.map_or(frame, |position| position + 1));
        }
        if let Some(timeline) = &self.index.timeline {
            let shown = timeline
                .pts_of(frame - 1)
                .saturating_add(timeline.tolerance());
            let keyframe = timeline
                .keyframes
                .iter()
                .rev()
                .find(|keyframe| keyframe.pts <= shown);
            return Ok(keyframe.map_or(frame, |keyframe| {
                (timeline.frame_at(keyframe.pts) + 1).min(frame)
            }));
        }
        let pts_at = |position: usize| {
            let sample = *self.presentation.get(position)? as usize;
            self.index.samples.get(sample)
        };
        let mut position = usize::try_from(frame - 1).unwrap_or(usize::MAX);
        while let Some(sample) = pts_at(position) {
            if sample.keyframe {
                return Ok(position as u64 + 1);
            }
            match position.checked_sub(1) {
                Some(earlier) => position = earlier,
                None => break,
            }
        }
        // No keyframe is shown before it (a stream starting on leading pictures): the frame
        // itself, decoded exactly.
        Ok(frame)
    }

    /// Decodes, renders and encodes frame `frame`. Blocking: call off the async runtime.
    pub fn frame(
        &self,
        frame: u64,
        options: &RenderOptions,
        format: Format,
        quality: Option<u8>,
    ) -> Result<EncodedFrame> {
        let layout = format.layout(options)?;
        let started = Instant::now();
        let decoded = self.decode(frame)?;
        let decode_time = started.elapsed();
        let started = Instant::now();
        let picture = (decoded.width(), decoded.height());
        if format == Format::Jpeg && keeps_picture(picture, options) {
            let quality = quality.unwrap_or(DEFAULT_JPEG_QUALITY);
            if let Some(bytes) =
                jpeg_from_yuv::encode(&decoded, quality, self.limits.decoder_threads)?
            {
                return Ok(EncodedFrame {
                    bytes,
                    format,
                    width: picture.0,
                    height: picture.1,
                    decode_time,
                    encode_time: started.elapsed(),
                    decode_path: decoded.path(),
                });
            }
        }
        let image = render(&decoded, options, layout, self.limits.decoder_threads)?;
        let bytes = encode(&image, format, quality)?;
        Ok(EncodedFrame {
            bytes,
            format,
            width: image.width,
            height: image.height,
            decode_time,
            encode_time: started.elapsed(),
            decode_path: decoded.path(),
        })
    }
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

/// FFmpeg's name of a decoded frame's pixel format ("" when it has none).
fn pixel_format_name(frame: &DecodedFrame) -> String {
    // SAFETY: the frame is alive; av_get_pix_fmt_name returns a static string or null.
    unsafe {
        let format = (*frame.frame_ptr()).format;
        if format < 0 {
            return String::new();
        }
        let format: ffmpeg_next::ffi::AVPixelFormat = std::mem::transmute::<i32, _>(format);
        let name = ffmpeg_next::ffi::av_get_pix_fmt_name(format);
        if name.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(name)
                .to_string_lossy()
                .into_owned()
        }
    }
}

/// The luma bit depth of the FFmpeg pixel format named `name` (0 when unknown).
fn bit_depth(name: &str) -> u32 {
    let Ok(name) = std::ffi::CString::new(name) else {
        return 0;
    };
    // SAFETY: av_get_pix_fmt reads a NUL-terminated name; the descriptor is a static table entry.
    unsafe {
        let format = ffmpeg_next::ffi::av_get_pix_fmt(name.as_ptr());
        let descriptor = ffmpeg_next::ffi::av_pix_fmt_desc_get(format);
        if descriptor.is_null() || (*descriptor).nb_components == 0 {
            0
        } else {
            (*descriptor).comp[0].depth.max(0) as u32
        }
    }
}

/// Parses a presentation time: seconds (`12.5`) or `[HH:]MM:SS[.mmm]`.
pub fn parse_time(text: &str) -> Result<f64> {
    let bad = || {
        Error::InvalidRequest(format!(
            "time must be seconds or HH:MM:SS.mmm, not {text:?}"
        ))
    };
    let mut seconds = 0.0;
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() > 3 {
        return Err(bad());
    }
    for (i, part) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        let value: f64 = if last {
            part.parse().map_err(|_| bad())?
        } else {
            f64::from(part.parse::<u32>().map_err(|_| bad())?)
        };
        if !value.is_finite() || value < 0.0 || (i > 0 && value >= 60.0) {
            return Err(bad());
        }
        seconds = seconds * 60.0 + value;
    }
    Ok(seconds)
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times_parse_in_both_notations() {
        assert_eq!(parse_time("12.5").ok(), Some(12.5));
        assert_eq!(parse_time("01:02:03.500").ok(), Some(3723.5));
        assert_eq!(parse_time("2:30").ok(), Some(150.0));
        for bad in ["", "-1", "1:60", "a", "1:2:3:4", "NaN", "inf"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
