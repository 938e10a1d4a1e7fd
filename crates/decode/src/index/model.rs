//! The persisted model of a movie's index: its video stream's codec parameters and either every
//! sample's place and time or, where the container has no cheap sample table, a sparse timeline
//! (keyframes, first time, frame rate, frame count); serialisable (versioned postcard) so other
//! instances skip building it, and the bounds (`MovieIndex::check`) a fresh or cached index must
//! meet.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::limits::Limits;

/// Bumped whenever the serialised form or its meaning changes.
pub const INDEX_FORMAT_VERSION: u32 = 5;

/// The longest container `creation_time` text kept (an RFC 3339 time takes about 30).
pub(crate) const MAX_CREATION_TIME_LEN: usize = 64;

/// One compressed video sample (packet), in decode order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// Byte offset in the file (−1 when the demuxer does not know it).
    pub pos: i64,
    pub size: u32,
    pub pts: i64,
    pub dts: i64,
    pub keyframe: bool,
    /// Decoded as a reference but never shown (outside a MOV edit list).
    pub discard: bool,
}

/// A keyframe the container's own index names (Matroska Cues …): its presentation time and the
/// byte position the demuxer seeks to for it (−1 when unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keyframe {
    pub pts: i64,
    pub pos: i64,
}

/// The frames of a movie whose container has no cheap per-sample table (Matroska/WebM, MXF,
/// MPEG-TS): frame `i` (0-based) is shown at `first_pts + i × frame_duration` (time-base units,
/// a fraction), matched within half a frame. Exact for constant-rate streams, which is what
/// `constant_rate` states (false when the container's rates disagree: frame numbers are then
/// the rate's grid, not counted samples).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    pub first_pts: i64,
    /// Time-base units per frame, as (numerator, denominator), both positive.
    pub frame_duration: (i64, i64),
    pub frame_count: u64,
    pub constant_rate: bool,
    /// Keyframes by presentation time, where the container lists them (may be empty: the
    /// demuxer then finds them by its own seeking).
    pub keyframes: Vec<Keyframe>,
}

impl Timeline {
    /// The presentation time of frame `i` (0-based), rounded to the nearest time-base unit.
    pub fn pts_of(&self, i: u64) -> i64 {
        let (num, den) = self.frame_duration;
        let offset =
            (i128::from(i) * i128::from(num) * 2 + i128::from(den)) / (i128::from(den) * 2);
        i64::try_from(i128::from(self.first_pts) + offset).unwrap_or(i64::MAX)
    }

    /// Half a frame, in time-base units (at least 0): how far a frame's time may be from the grid.
    pub fn tolerance(&self) -> i64 {
        let (num, den) = self.frame_duration;
        i64::try_from(i128::from(num) / (2 * i128::from(den.max(1)))).unwrap_or(0)
    }

    /// The 0-based frame shown at `pts` (the last one starting at or before it).
    pub fn frame_at(&self, pts: i64) -> u64 {
        let (num, den) = self.frame_duration;
        let since = i128::from(pts) - i128::from(self.first_pts);
        if since <= 0 || num <= 0 {
            return 0;
        }
        let i = u64::try_from(since * i128::from(den) / i128::from(num)).unwrap_or(u64::MAX);
        // Frame times are rounded to the time base: the next frame may start a unit early.
        if i < u64::MAX && self.pts_of(i + 1) <= pts {
            i + 1
        } else {
            i
        }
    }
}

/// Codec parameters, by name where FFmpeg's enums are not stable across versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodecParams {
    pub codec: String,
    pub codec_tag: u32,
    pub extradata: Vec<u8>,
    pub pixel_format: String,
    pub width: i32,
    pub height: i32,
    pub profile: i32,
    pub level: i32,
    pub bits_per_coded_sample: i32,
    pub bits_per_raw_sample: i32,
    pub sample_aspect_ratio: (i32, i32),
    /// ffprobe's words: "progressive", "tt", "bb", "tb", "bt" or "unknown".
    pub field_order: String,
    /// FFmpeg's names (`av_color_*_name`), e.g. "tv", "bt709", "left"; "" when FFmpeg has none.
    pub color_range: String,
    pub color_primaries: String,
    pub color_trc: String,
    pub color_space: String,
    pub chroma_location: String,
    pub video_delay: i32,
}

/// Everything needed to find and decode any frame of one version of one movie.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MovieIndex {
    pub version: u32,
    /// The demuxer that read it, e.g. "mov,mp4,m4a,3gp,3g2,mj2".
    pub container: String,
    pub file_size: u64,
    /// The source validator the index was built from.
    pub validator: String,
    pub stream_index: i32,
    pub codec: CodecParams,
    pub intra_only: bool,
    pub time_base: (i32, i32),
    pub frame_rate: (i32, i32),
    /// Seconds, as the container states it (falls back to the samples' span).
    pub duration: f64,
    /// Samples in decode order; empty when `timeline` describes the frames instead.
    pub samples: Vec<Sample>,
    /// True when each sample's bytes are exactly `size` bytes at `pos` (MOV/MP4), so a frame is
    /// decoded from range reads of its samples without the demuxer.
    pub direct_reads: bool,
    /// The frames by time, for containers indexed without reading every sample.
    pub timeline: Option<Timeline>,
    /// The container's `creation_time` as FFmpeg reports it (RFC 3339), when it has one.
    pub creation_time: Option<String>,
}

impl MovieIndex {
    /// How long `frames` frames last in the stream's time base, from its frame rate (rounded
    /// down); `None` without a frame rate or time base.
    pub fn frames_in_time_base(&self, frames: u64) -> Option<i64> {
        let (tb_num, tb_den) = self.time_base;
        let (rate_num, rate_den) = self.frame_rate;
        if tb_num <= 0 || tb_den <= 0 || rate_num <= 0 || rate_den <= 0 {
            return None;
        }
        let span = i128::from(frames) * i128::from(tb_den) * i128::from(rate_den)
            / (i128::from(tb_num) * i128::from(rate_num));
        Some(i64::try_from(span).unwrap_or(i64::MAX))
    }

    /// Compact binary form for caches: version-prefixed postcard.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        postcard::to_allocvec(self).map_err(|e| Error::BadIndex(e.to_string()))
    }

    /// Reads [`MovieIndex::to_bytes`] output; refuses other versions.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let index: Self =
            postcard::from_bytes(bytes).map_err(|e| Error::BadIndex(e.to_string()))?;
        if index.version != INDEX_FORMAT_VERSION {
            return Err(Error::BadIndex(format!(
                "format version {} is not {}",
                index.version, INDEX_FORMAT_VERSION
            )));
        }
        Ok(index)
    }

    /// Frames shown: counted samples, or the timeline's count.
    pub fn frame_count(&self, shown_samples: usize) -> u64 {
        match &self.timeline {
            Some(timeline) => timeline.frame_count,
            None => shown_samples as u64,
        }
    }

    /// Sample indices (decode order) of the shown frames, in presentation order: frame N is
    /// `samples[presentation_order()[N - 1]]` (empty for a timeline index).
    pub fn presentation_order(&self) -> Vec<usize> {
        self.shown_order().into_iter().map(|i| i as usize).collect()
    }

    /// [`MovieIndex::presentation_order`], compactly (an index has at most `u32::MAX` samples;
    /// see [`MovieIndex::check`]).
    pub(crate) fn shown_order(&self) -> Vec<u32> {
        let mut order: Vec<u32> = self
            .samples
            .iter()
            .zip(0..u32::MAX)
            .filter(|(s, _)| !s.discard)
            .map(|(_, i)| i)
            .collect();
        order.sort_by_key(|&i| {
            let pts = self.samples.get(i as usize).map_or(i64::MAX, |s| s.pts);
            (pts, i)
        });
        order
    }

    /// Approximate bytes the parsed index occupies on the heap: its samples, extradata and
    /// strings. For weighing tables of parsed movies by memory.
    pub fn heap_bytes(&self) -> u64 {
        let strings = [
            &self.container,
            &self.validator,
            &self.codec.codec,
            &self.codec.pixel_format,
        ];
        let creation_time = self.creation_time.as_ref().map_or(0, String::capacity);
        let keyframes = self.timeline.as_ref().map_or(0, |t| {
            t.keyframes.capacity() * std::mem::size_of::<Keyframe>()
        });
        let bytes = self.samples.capacity() * std::mem::size_of::<Sample>()
            + keyframes
            + creation_time
            + self.codec.extradata.capacity()
            + strings.iter().map(|s| s.capacity()).sum::<usize>();
        bytes as u64
    }

    /// The bounds a fresh index meets, checked again on one from a cache (which may be old,
    /// damaged or planted): a sample count within `limits`, at least one frame shown, no sample
    /// over `limits.max_sample_bytes`, a time base, a picture size within `limits`, and for direct reads every sample inside the file.
    pub fn check(&self, limits: &Limits) -> Result<()> {
        if self
            .creation_time
            .as_ref()
            .is_some_and(|t| t.len() > MAX_CREATION_TIME_LEN)
        {
            return Err(Error::NotAMovie("an overlong creation time".into()));
        }
        if let Some(timeline) = &self.timeline {
            return self.check_timeline(timeline, limits);
        }
        let count = self.samples.len();
        if count > limits.max_samples || u32::try_from(count).is_err() {
            return Err(Error::IndexTooLarge(format!(
                "{count} samples (at most {} allowed)",
                limits.max_samples
            )));
        }
        if self.samples.is_empty() {
            return Err(Error::NotAMovie("the video stream has no frames".into()));
        }
        if self.samples.iter().all(|s| s.discard) {
            // E.g. a MOV whose edit list starts past its last sample.
            return Err(Error::NotAMovie("no frames are shown".into()));
        }
        if let Some(huge) = self
            .samples
            .iter()
            .find(|s| u64::from(s.size) > limits.max_sample_bytes)
        {
            return Err(Error::IndexTooLarge(format!(
                "a sample of {} bytes (at most {} allowed)",
                huge.size, limits.max_sample_bytes
            )));
        }
        if self.time_base.0 <= 0 || self.time_base.1 <= 0 {
            return Err(Error::NotAMovie("the video stream has no time base".into()));
        }
        check_picture_size(&self.codec, limits)?;
        if self.direct_reads {
            check_samples_inside(&self.samples, self.file_size)?;
        }
        Ok(())
    }
}

impl MovieIndex {
    /// [`MovieIndex::check`] for a timeline: a frame count within the sample cap, a positive
    /// frame duration, keyframes within the cap, sorted, inside the file, no samples beside it.
    fn check_timeline(&self, timeline: &Timeline, limits: &Limits) -> Result<()> {
        let count = timeline.frame_count;
        if count > limits.max_samples as u64 || u32::try_from(count).is_err() {
            return Err(Error::IndexTooLarge(format!(
                "{count} frames (at most {} allowed)",
                limits.max_samples
            )));
        }
        if count == 0 {
            return Err(Error::NotAMovie("the video stream has no frames".into()));
        }
        if self.time_base.0 <= 0 || self.time_base.1 <= 0 {
            return Err(Error::NotAMovie("the video stream has no time base".into()));
        }
        let (num, den) = timeline.frame_duration;
        if num <= 0 || den <= 0 || num / den > i64::from(i32::MAX) {
            return Err(Error::NotAMovie(
                "the video stream has no frame rate".into(),
            ));
        }
        if !self.samples.is_empty() || self.direct_reads {
            return Err(Error::BadIndex("a timeline index with samples".into()));
        }
        if timeline.keyframes.len() > limits.max_samples {
            return Err(Error::IndexTooLarge(format!(
                "{} keyframes (at most {} allowed)",
                timeline.keyframes.len(),
                limits.max_samples
            )));
        }
        let sorted = timeline.keyframes.windows(2).all(|w| match w {
            [a, b] => a.pts < b.pts,
            _ => true,
        });
        let inside = timeline
            .keyframes
            .iter()
            .all(|k| k.pos < 0 || (k.pos as u64) < self.file_size);
        if !sorted || !inside {
            return Err(Error::BadIndex(
                "keyframes out of order or outside the file".into(),
            ));
        }
        check_picture_size(&self.codec, limits)
    }
}

pub(super) fn check_picture_size(codec: &CodecParams, limits: &Limits) -> Result<()> {
    let (w, h) = (i64::from(codec.width), i64::from(codec.height));
    if w <= 0 || h <= 0 {
        return Err(Error::NotAMovie(
            "the video stream has no picture size".into(),
        ));
    }
    if (w * h) as u64 > limits.max_source_pixels {
        return Err(Error::NotAMovie(format!(
            "{w}×{h} pictures are larger than the {} pixels allowed",
            limits.max_source_pixels
        )));
    }
    Ok(())
}

pub(super) fn check_samples_inside(samples: &[Sample], file_size: u64) -> Result<()> {
    if let Some((i, _)) = samples.iter().enumerate().find(|(_, s)| {
        u64::try_from(s.pos)
            .ok()
            .and_then(|pos| pos.checked_add(u64::from(s.size)))
            .is_none_or(|end| end > file_size)
    }) {
        return Err(Error::Truncated(format!(
            "sample {} of {} lies beyond the end of the file ({file_size} bytes)",
            i + 1,
            samples.len()
        )));
    }
    Ok(())
}
