//! Clips by stream copy: the coded samples of frames A..B remuxed without re-encoding into MOV,
//! MP4 or Matroska by FFmpeg's muxers, which write through our own callbacks (never a file
//! path). A long-GOP clip starts at the keyframe before A; its timestamps put A at zero, so MOV
//! and MP4 get an edit list that makes A the first frame shown (Matroska, which has none, shows
//! the frames from the keyframe). Movies indexed by samples copy them by range; movies indexed
//! by a timeline (large Matroska/WebM, MXF, MPEG-TS) copy the demuxer's packets (`timeline`).

mod muxer;
mod timeline;

use std::io::{Seek, Write};

use crate::deadline;
use crate::decoder::read_samples;
use crate::error::{Error, Result};
use crate::movie::Movie;
use muxer::{Coded, Muxer};

/// The longest clip, in seconds of the movie and in bytes of samples (SPEC §3).
pub const MAX_CLIP_SECONDS: f64 = 600.0;
pub const MAX_CLIP_BYTES: u64 = 4 << 30;
/// Samples read from the origin at once while writing (bounded memory whatever the clip).
const SAMPLES_PER_READ: usize = 32;

/// A clip's container, named by the URL extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipFormat {
    Mov,
    Mp4,
    Mkv,
}

impl ClipFormat {
    pub fn from_extension(ext: &str) -> Result<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "mov" => Ok(Self::Mov),
            "mp4" => Ok(Self::Mp4),
            "mkv" => Ok(Self::Mkv),
            other => Err(Error::InvalidRequest(format!(
                "unknown clip format .{other} (mov, mp4, mkv)"
            ))),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Mov => "video/quicktime",
            Self::Mp4 => "video/mp4",
            Self::Mkv => "video/x-matroska",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Mov => "mov",
            Self::Mp4 => "mp4",
            Self::Mkv => "mkv",
        }
    }

    pub(super) fn muxer(self) -> &'static str {
        match self {
            Self::Mov => "mov",
            Self::Mp4 => "mp4",
            Self::Mkv => "matroska",
        }
    }
}

/// What a clip copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClipPlan {
    span: ClipSpan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClipSpan {
    /// Decode-order indices `first..=last` of the movie's samples; `start_pts` is frame A's
    /// presentation time (stream time base), which the clip shows at zero.
    Samples {
        first: usize,
        last: usize,
        start_pts: i64,
    },
    /// A movie indexed by a timeline: the packets from the keyframe before A's time through
    /// every frame shown by B's, found by the demuxer as it reads.
    Timeline(timeline::Span),
}

/// A written clip: its length and the coded samples it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClipWritten {
    pub bytes: u64,
    pub samples: usize,
}

impl Movie {
    /// What a clip of frames `a..=b` copies, checked against the clip bounds.
    pub fn clip_plan(&self, a: u64, b: u64) -> Result<ClipPlan> {
        self.check_frame(a)?;
        self.check_frame(b)?;
        if b < a {
            return Err(Error::InvalidRequest(format!(
                "a clip runs from a frame to a later one, not {a}-{b}"
            )));
        }
        let seconds = self.frame_time(b)? - self.frame_time(a)?;
        if seconds > MAX_CLIP_SECONDS {
            return Err(Error::InvalidRequest(format!(
                "a clip lasts at most {MAX_CLIP_SECONDS} s, not {seconds:.1} s"
            )));
        }
        let index = self.index();
        if let Some(line) = &index.timeline {
            return Ok(ClipPlan {
                span: ClipSpan::Timeline(timeline::Span {
                    a_pts: line.pts_of(a - 1),
                    b_pts: line.pts_of(b - 1),
                }),
            });
        }
        let shown: Vec<usize> = (a..=b)
            .map(|frame| self.sample_of_frame(frame))
            .collect::<Result<_>>()?;
        let (Some(&earliest), Some(&last)) = (shown.iter().min(), shown.iter().max()) else {
            return Err(Error::InvalidRequest("an empty clip".into()));
        };
        let first = (0..=earliest)
            .rev()
            .find(|&i| index.samples.get(i).is_some_and(|s| s.keyframe))
            .unwrap_or(0);
        let bytes: u64 = index
            .samples
            .get(first..=last)
            .unwrap_or_default()
            .iter()
            .map(|s| u64::from(s.size))
            .sum();
        check_clip_bytes(bytes)?;
        let start_pts = self.sample(self.sample_of_frame(a)?)?.pts;
        Ok(ClipPlan {
            span: ClipSpan::Samples {
                first,
                last,
                start_pts,
            },
        })
    }

    /// Writes the clip `plan` as `format` into `out`. Blocking: call off the async runtime.
    pub fn write_clip<W: Write + Seek>(
        &self,
        plan: &ClipPlan,
        format: ClipFormat,
        out: &mut W,
    ) -> Result<ClipWritten> {
        let deadline = deadline::or_from_now(self.limits().decode_timeout);
        let index = self.index();
        let mut muxer = Muxer::open(index, format, out)?;
        let samples = match (plan.span, &index.timeline) {
            (
                ClipSpan::Samples {
                    first,
                    last,
                    start_pts,
                },
                _,
            ) => self.copy_samples(&mut muxer, first..=last, start_pts, deadline)?,
            (ClipSpan::Timeline(span), Some(line)) => timeline::copy(
                &mut muxer,
                &timeline::Movie {
                    source: self.source(),
                    index,
                    timeline: line,
                    limits: self.limits(),
                },
                span,
                deadline,
            )?,
            (ClipSpan::Timeline(_), None) => {
                return Err(Error::BadIndex(
                    "a clip planned by time for a movie without a timeline".into(),
                ));
            }
        };
        let bytes = muxer.finish()?;
        Ok(ClipWritten { bytes, samples })
    }

    /// Copies the indexed samples `range` (decode order), `start_pts` shown at zero.
    fn copy_samples(
        &self,
        muxer: &mut Muxer<'_>,
        range: std::ops::RangeInclusive<usize>,
        start_pts: i64,
        deadline: std::time::Instant,
    ) -> Result<usize> {
        let samples = self
            .index()
            .samples
            .get(range)
            .ok_or_else(|| Error::BadIndex("a clip outside the movie".into()))?;
        for (n, chunk) in samples.chunks(SAMPLES_PER_READ).enumerate() {
            let data = read_samples(self.source(), chunk, deadline, self.limits())?;
            for (i, (sample, bytes)) in chunk.iter().zip(&data).enumerate() {
                let duration = samples
                    .get(n * SAMPLES_PER_READ + i + 1)
                    .map(|next| (next.dts - sample.dts).max(1));
                muxer.write(
                    &Coded {
                        pts: sample.pts - start_pts,
                        dts: sample.dts - start_pts,
                        duration,
                        keyframe: sample.keyframe,
                    },
                    bytes,
                )?;
            }
        }
        Ok(samples.len())
    }
}

/// Refuses a clip of more than [`MAX_CLIP_BYTES`] of samples.
fn check_clip_bytes(bytes: u64) -> Result<()> {
    if bytes > MAX_CLIP_BYTES {
        return Err(Error::InvalidRequest(format!(
            "a clip holds at most {} MiB of samples, not {} MiB",
            MAX_CLIP_BYTES >> 20,
            bytes >> 20
        )));
    }
    Ok(())
}
