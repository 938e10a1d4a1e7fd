//! Indexes of large Matroska/WebM, AVI, MXF and MPEG-TS movies from the structures each container
//! has for this, never from a scan of their packets: what FFmpeg's demuxer reads when it opens
//! the file (Matroska's SeekHead → Cues, AVI's idx1 / OpenDML indx, MXF's index table segments),
//! plus, for MPEG-TS, which has no index, the stream's last presentation time from the file's
//! tail (`crate::mpegts`). All of it within the index budget (2% of the file or 4 MiB).

use std::ffi::CStr;

use ffmpeg_next::ffi;

use super::model::{Keyframe, Sample, Timeline};
use crate::avio::Demuxer;
use crate::error::{Error, Result};
use crate::fragments::FragmentEntry;
use crate::limits::{Limits, STREAM_PROBE_BYTES};
use crate::mpegts;
use crate::source::ByteSource;

/// What the index builder knows of the video stream when it asks for its frames.
pub(super) struct Stream {
    pub st: *mut ffi::AVStream,
    pub index: i32,
    pub intra_only: bool,
    pub frame_rate: (i32, i32),
    /// The index budget, of which the demuxer has spent some already.
    pub fetch_cap: u64,
}

/// How the frames of a large movie are known.
pub(super) enum Frames {
    /// Every sample, from the container's index (AVI); `direct` when each sample's bytes lie
    /// exactly at its position, so frames are read by range without a demuxer.
    Samples { samples: Vec<Sample>, direct: bool },
    /// By time, from the first frame's time, the frame rate and the frame count.
    Timeline(Timeline),
    /// No index to use: scan the packets (within `max_index_bytes`, as small files are).
    Scan,
}

/// Stream analysis may read a quarter of the index budget, between 1 MiB and FFmpeg's default:
/// enough for the codec parameters (the first keyframe), leaving the rest for the index itself.
pub(super) fn stream_probe_bytes(budget: u64) -> i64 {
    i64::try_from(budget / 4)
        .unwrap_or(i64::MAX)
        .clamp(1 << 20, STREAM_PROBE_BYTES)
}

/// Seconds the timeline's frames cover.
pub(super) fn timeline_seconds(timeline: &Timeline, time_base: (i32, i32)) -> f64 {
    let (num, den) = timeline.frame_duration;
    timeline.frame_count as f64 * num as f64 / den as f64 * f64::from(time_base.0)
        / f64::from(time_base.1)
}

/// The frames of `stream`, from the container's own index.
///
/// # Safety
/// `stream.st` must be a stream of `demuxer`'s open context.
pub(super) unsafe fn frames(
    demuxer: &mut Demuxer,
    source: &dyn ByteSource,
    stream: &Stream,
    limits: &Limits,
) -> Result<Frames> {
    let name = demuxer.format_name();
    let family = name.split(',').next().unwrap_or_default();
    // SAFETY: per the contract.
    unsafe {
        match family {
            "avi" => avi(demuxer, stream, limits),
            "matroska" => matroska(demuxer, stream, limits),
            "mxf" => mxf(stream, limits),
            "mpegts" => mpegts(demuxer, source, stream),
            _ => Ok(Frames::Scan),
        }
    }
}

/// AVI: the demuxer loaded `idx1` (or the OpenDML `indx` chain) on open, one entry per chunk.
/// An entry's position is its chunk header (four-cc and size): the payload is the 8 bytes after.
/// AVI stores frames in decode order, one chunk per frame, stamped by their count: that is every
/// frame's presentation time too when the codec does not reorder pictures (intra-only codecs, and
/// long-GOP streams without B-frames: the stream's `video_delay` is 0), and each is read by range.
/// A stream that reorders has its presentation times only in the packets: it is scanned.
unsafe fn avi(demuxer: &mut Demuxer, stream: &Stream, limits: &Limits) -> Result<Frames> {
    // SAFETY: per the caller's contract.
    let reorders = unsafe { (*(*stream.st).codecpar).video_delay } != 0;
    if !stream.intra_only && reorders {
        return Ok(Frames::Scan);
    }
    // SAFETY: per the caller's contract.
    let entries = unsafe { index_entries(stream.st, limits)? };
    let samples: Vec<Sample> = entries
        .iter()
        .filter(|e| e.size > 0 && e.pos >= 0)
        .map(|e| Sample {
            pos: e.pos + 8,
            size: e.size,
            pts: e.timestamp,
            dts: e.timestamp,
            keyframe: stream.intra_only || e.keyframe,
            discard: false,
        })
        .collect();
    if !samples.first().is_some_and(|first| first.keyframe) {
        // A stream that does not start on a keyframe: its first pictures are not decodable
        // alone, and what the ffmpeg CLI numbers as frame 1 is known only from its packets.
        return Ok(Frames::Scan);
    }
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return Ok(Frames::Scan);
    };
    // The payload must follow a chunk header that states its size: check the first and last.
    for sample in [first, last] {
        let header = demuxer.read_at((sample.pos - 8) as u64, 8)?;
        let size = header
            .get(4..8)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes);
        if size != Some(sample.size) {
            return Err(Error::NotAMovie(
                "the AVI index does not point at its chunks".into(),
            ));
        }
    }
    Ok(Frames::Samples {
        samples,
        direct: true,
    })
}

/// Matroska/WebM: the demuxer followed the SeekHead to the Cues on open (the input is seekable),
/// which became the stream's index entries: each keyframe's time and its cluster's position.
/// The end is the track's `DURATION` tag (FFmpeg's muxer writes one), else the Segment's
/// Duration.
unsafe fn matroska(demuxer: &mut Demuxer, stream: &Stream, limits: &Limits) -> Result<Frames> {
    let ctx = demuxer.ctx();
    // SAFETY: per the caller's contract.
    unsafe {
        let st = stream.st;
        let tb = (*st).time_base;
        let end_seconds = duration_tag(st).or_else(|| {
            ((*ctx).duration > 0).then(|| (*ctx).duration as f64 / f64::from(ffi::AV_TIME_BASE))
        });
        let Some(end_seconds) = end_seconds else {
            return Ok(Frames::Scan);
        };
        let end_pts = (end_seconds * f64::from(tb.den) / f64::from(tb.num)).round() as i64;
        // FFmpeg 5.1 defers the Cues until the first seek: seek to the start to have them read
        // (a seek near the end would read the last clusters; without Cues, every cluster up to
        // the time sought: the budget stops that).
        let start = first_pts(st, &[]).max(0);
        let sought = ffi::avformat_seek_file(ctx, stream.index, i64::MIN, start, start, 0);
        if let Some(e) = demuxer.take_io_error() {
            return Err(e);
        }
        if sought < 0 {
            return Ok(Frames::Scan);
        }
        let keyframes = keyframes(st, limits)?;
        // Without Cues the demuxer only lists the keyframes it met reading the first clusters:
        // then there is no index to use.
        let (num, den) = frame_duration(stream).unwrap_or((1, 1));
        let gap = (end_pts / 10).max(60 * i64::from(tb.den) / i64::from(tb.num.max(1)));
        let listed_to_end = keyframes.last().is_some_and(|last| {
            last.pts
                .saturating_add(gap)
                .saturating_add(num / den.max(1))
                >= end_pts
        });
        if !listed_to_end {
            return Ok(Frames::Scan);
        }
        timeline(stream, first_pts(st, &keyframes), end_pts, keyframes)
    }
}

/// MXF: the demuxer read the header and footer partitions and the index table segments on open;
/// the track's duration is its count of edit units (frames), and seeking uses the index tables.
unsafe fn mxf(stream: &Stream, limits: &Limits) -> Result<Frames> {
    // SAFETY: per the caller's contract.
    unsafe {
        let st = stream.st;
        if (*st).duration <= 0 {
            return Ok(Frames::Scan);
        }
        let keyframes = keyframes(st, limits)?;
        let first = first_pts(st, &keyframes);
        timeline(
            stream,
            first,
            first.saturating_add((*st).duration),
            keyframes,
        )
    }
}

/// MPEG-TS: no index. The first time comes from stream analysis at the start; the last from the
/// PES headers of the stream in the file's tail (`crate::mpegts`), so the frame count is the span
/// over the frame rate. Seeking bisects the file by timestamps (FFmpeg's `read_timestamp`).
unsafe fn mpegts(
    demuxer: &mut Demuxer,
    source: &dyn ByteSource,
    stream: &Stream,
) -> Result<Frames> {
    // SAFETY: per the caller's contract.
    unsafe {
        let st = stream.st;
        if (*st).start_time == ffi::AV_NOPTS_VALUE {
            return Ok(Frames::Scan);
        }
        let first = (*st).start_time;
        let budget = stream.fetch_cap.saturating_sub(demuxer.fetched());
        let delay = (*(*st).codecpar).video_delay.max(0) as usize;
        let Some(last) = mpegts::last_pts(source, (*st).id, delay, budget)? else {
            return Ok(Frames::Scan);
        };
        let last = mpegts::unwrap_after(last, first);
        let Some(frame) = frame_duration(stream) else {
            return Ok(Frames::Scan);
        };
        // The end is one frame after the last frame's time.
        let end = i128::from(last) + i128::from(frame.0) / i128::from(frame.1);
        let end = i64::try_from(end).unwrap_or(i64::MAX);
        timeline(stream, first, end, Vec::new())
    }
}

/// Fragmented MP4 read by its `mfra` (checked by `mp4_boxes.rs`): fragment `i` starts with a
/// keyframe shown at `entries[i].time`, the frames are `frame_duration` apart, and the last
/// fragment holds `last_samples`. The fragments listed are the timeline's keyframes (the
/// position is the `moof`'s).
pub(super) fn fragmented_mp4(
    stream: &Stream,
    frame_duration: u32,
    entries: &[FragmentEntry],
    last_samples: Option<u64>,
) -> Result<Timeline> {
    let (Some(first), Some(last), Some(last_samples)) =
        (entries.first(), entries.last(), last_samples)
    else {
        return Err(Error::BadIndex(
            "a fragmented index without fragments".into(),
        ));
    };
    let samples = i64::try_from(last_samples).unwrap_or(i64::MAX);
    let end = last
        .time
        .saturating_add(samples.saturating_mul(i64::from(frame_duration)));
    let keyframes = entries
        .iter()
        .map(|e| Keyframe {
            pts: e.time,
            pos: i64::try_from(e.offset).unwrap_or(i64::MAX),
        })
        .collect();
    let Frames::Timeline(mut timeline) = timeline(stream, first.time, end, keyframes)? else {
        return Err(Error::NotAMovie(
            "the video stream has no frame rate".into(),
        ));
    };
    // Constant rate by what was read, not by FFmpeg's rates (it saw one fragment): the first
    // and last fragments' samples, every fragment's time on their grid; each other fragment is
    // held to it when it is read (`mp4_boxes::FragmentGate`).
    timeline.constant_rate = true;
    Ok(timeline)
}

/// A timeline of the frames shown from `first` (inclusive) to `end` (exclusive).
fn timeline(stream: &Stream, first: i64, end: i64, keyframes: Vec<Keyframe>) -> Result<Frames> {
    let Some(frame_duration) = frame_duration(stream) else {
        return Ok(Frames::Scan);
    };
    let (num, den) = (i128::from(frame_duration.0), i128::from(frame_duration.1));
    let span = i128::from(end) - i128::from(first);
    if span <= 0 {
        return Err(Error::NotAMovie("the video stream has no frames".into()));
    }
    // Rounded to the nearest frame: container times are rounded (Matroska to milliseconds).
    let count = (span * den * 2 + num) / (num * 2);
    let frame_count = u64::try_from(count).unwrap_or(u64::MAX);
    // SAFETY: st is a valid stream (the caller's contract).
    let (avg, real) = unsafe { ((*stream.st).avg_frame_rate, (*stream.st).r_frame_rate) };
    let constant_rate = avg.num > 0
        && avg.den > 0
        && real.num > 0
        && real.den > 0
        && i64::from(avg.num) * i64::from(real.den) == i64::from(real.num) * i64::from(avg.den);
    let mut timeline = Timeline {
        first_pts: first,
        frame_duration,
        frame_count,
        constant_rate,
        keyframes,
    };
    // The rates agree at the start (stream analysis); the end and every listed keyframe must
    // also lie on the frame grid (within a quarter frame, for the container's rounding), else
    // the stream is not constant-rate throughout.
    let tolerance = (i128::from(timeline.tolerance()) / 2).max(1);
    let on_grid = |pts: i64| {
        let i = timeline.frame_at(pts.saturating_add(timeline.tolerance()));
        (i128::from(timeline.pts_of(i)) - i128::from(pts)).abs() <= tolerance
    };
    let end_on_grid =
        (i128::from(timeline.pts_of(frame_count)) - i128::from(end)).abs() <= tolerance;
    let keyframes_on_grid = timeline.keyframes.iter().all(|k| on_grid(k.pts));
    timeline.constant_rate &= end_on_grid && keyframes_on_grid;
    Ok(Frames::Timeline(timeline))
}

/// Time-base units per frame, as a reduced fraction, from the stream's frame rate.
fn frame_duration(stream: &Stream) -> Option<(i64, i64)> {
    // SAFETY: st is a valid stream (the caller's contract).
    let tb = unsafe { (*stream.st).time_base };
    let (rate_num, rate_den) = stream.frame_rate;
    if rate_num <= 0 || rate_den <= 0 || tb.num <= 0 || tb.den <= 0 {
        return None;
    }
    let num = i64::from(tb.den) * i64::from(rate_den);
    let den = i64::from(tb.num) * i64::from(rate_num);
    let g = gcd(num, den);
    Some((num / g, den / g))
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

/// The first frame's time: what stream analysis saw, else the first keyframe's, else 0.
unsafe fn first_pts(st: *const ffi::AVStream, keyframes: &[Keyframe]) -> i64 {
    // SAFETY: st is valid (the caller's contract).
    let start = unsafe { (*st).start_time };
    if start != ffi::AV_NOPTS_VALUE {
        start
    } else {
        keyframes.first().map_or(0, |k| k.pts)
    }
}

/// A Matroska track's `DURATION` tag ("HH:MM:SS.nnnnnnnnn"), in seconds.
unsafe fn duration_tag(st: *const ffi::AVStream) -> Option<f64> {
    // SAFETY: st is valid; the dictionary's strings live as long as it.
    let text = unsafe {
        let entry = ffi::av_dict_get((*st).metadata, c"DURATION".as_ptr(), std::ptr::null(), 0);
        if entry.is_null() || (*entry).value.is_null() {
            return None;
        }
        CStr::from_ptr((*entry).value).to_str().ok()?.to_owned()
    };
    let mut seconds = 0.0;
    for part in text.split(':') {
        let value: f64 = part.trim().parse().ok()?;
        if !value.is_finite() || value < 0.0 {
            return None;
        }
        seconds = seconds * 60.0 + value;
    }
    (seconds > 0.0).then_some(seconds)
}

/// One entry of the demuxer's index for a stream.
struct Entry {
    pos: i64,
    timestamp: i64,
    size: u32,
    keyframe: bool,
}

/// The stream's index entries (at most `max_samples`).
unsafe fn index_entries(st: *mut ffi::AVStream, limits: &Limits) -> Result<Vec<Entry>> {
    // SAFETY: st is valid; entries are read-only views valid until the next demux call.
    unsafe {
        let count = ffi::avformat_index_get_entries_count(st).max(0) as usize;
        if count > limits.max_samples {
            return Err(Error::IndexTooLarge(format!(
                "{count} index entries (at most {} allowed)",
                limits.max_samples
            )));
        }
        let mut entries = Vec::with_capacity(count);
        for i in 0..count {
            let entry = ffi::avformat_index_get_entry(st, i as i32);
            if entry.is_null() {
                break;
            }
            let e = &*entry;
            entries.push(Entry {
                pos: e.pos,
                timestamp: e.timestamp,
                size: e.size().max(0) as u32,
                keyframe: e.flags() as i32 & ffi::AVINDEX_KEYFRAME != 0,
            });
        }
        Ok(entries)
    }
}

/// The keyframes among the stream's index entries, by time, one per time.
unsafe fn keyframes(st: *mut ffi::AVStream, limits: &Limits) -> Result<Vec<Keyframe>> {
    // SAFETY: per the caller's contract.
    let entries = unsafe { index_entries(st, limits)? };
    let mut keyframes: Vec<Keyframe> = entries
        .iter()
        .filter(|e| e.keyframe && e.timestamp != ffi::AV_NOPTS_VALUE)
        .map(|e| Keyframe {
            pts: e.timestamp,
            pos: e.pos,
        })
        .collect();
    keyframes.sort_by_key(|k| k.pts);
    keyframes.dedup_by_key(|k| k.pts);
    Ok(keyframes)
}
