//! Frames of movies indexed by a timeline (large Matroska/WebM, MXF, MPEG-TS): seek the demuxer
//! to a keyframe shown no later than the frame's time — the container's own index finds it
//! (Cues, MXF index tables, MPEG-TS timestamp bisection) —, feed the packets from there and catch
//! the decoder's output frame whose time is the frame's, within half a frame.

use std::sync::Arc;
use std::time::Instant;

use ffmpeg_next::{ffi, frame};

use super::demuxed::open_stream;
use super::{check_deadline, open_decoder, ts_seek};
use crate::avio::Demuxer;
use crate::error::{Error, Result, av_error_string};
use crate::index::{MovieIndex, Timeline};
use crate::limits::Limits;
use crate::source::ByteSource;

/// Start points tried before giving up: the keyframe before the frame, then earlier ones (an open
/// GOP whose recovery FFmpeg does not honour, a timestamp seek that landed after the keyframe).
const START_ATTEMPTS: usize = 6;

/// Frame `order_pos` (0-based, presentation order) of a timeline-indexed movie.
pub(super) fn decode(
    source: &Arc<dyn ByteSource>,
    index: &MovieIndex,
    timeline: &Timeline,
    order_pos: usize,
    limits: &Limits,
) -> Result<frame::Video> {
    let count = timeline.frame_count;
    let position = order_pos as u64;
    if position >= count {
        return Err(Error::FrameOutOfRange {
            frame: position + 1,
            count,
        });
    }
    let target = timeline.pts_of(position);
    let tolerance = timeline.tolerance();
    let deadline = crate::deadline::or_from_now(limits.decode_timeout);
    let mut seek_to = first_seek(timeline, target);
    let mut back = one_second(index.time_base);
    let goal = Goal {
        source,
        index,
        timeline,
        limits,
        target,
        tolerance,
        deadline,
    };
    for _ in 0..START_ATTEMPTS {
        let tried = Start {
            seek_to,
            from_start: seek_to <= timeline.first_pts,
        };
        let (key, overshot) = match attempt(&goal, &tried)? {
            Outcome::Found(frame) => return Ok(frame),
            _ if tried.from_start => break,
            Outcome::Overshot(key) => (key, true),
            Outcome::Missed(key) => (key, false),
        };
        seek_to = earlier_start(timeline, target, &tried, key, overshot, &mut back);
    }
    Err(Error::Decode(format!(
        "the decoder did not produce the frame at pts {target}"
    )))
}

/// One second in `time_base` units: how far back the first retreat from a seek that landed
/// after the wanted keyframe goes (doubled at each further one).
pub(crate) fn one_second(time_base: (i32, i32)) -> i64 {
    let (num, den) = time_base;
    (i64::from(den) / i64::from(num.max(1))).max(1)
}

/// Where to seek next for the frame at `target` when starting at `tried` did not yield it:
/// `key` is the keyframe that start found, `overshot` when it is shown after the frame.
pub(crate) fn earlier_start(
    timeline: &Timeline,
    target: i64,
    tried: &Start,
    key: i64,
    overshot: bool,
    back: &mut i64,
) -> i64 {
    let earlier_than = key.min(tried.seek_to);
    match listed_keyframe_before(timeline, earlier_than.saturating_sub(1)) {
        Some(pts) => pts,
        // The keyframe before the one that did not yield the frame: the demuxer's seek (MXF's
        // index tables, `ts_seek`) finds the last one before this time.
        None if !overshot => earlier_than.saturating_sub(1),
        // The seek landed after the keyframe wanted: further back.
        None => {
            let earlier = earlier_than.min(target).saturating_sub(*back);
            *back = back.saturating_mul(2);
            earlier
        }
    }
}

/// The last keyframe the container lists at or before `pts`.
pub(crate) fn listed_keyframe_before(timeline: &Timeline, pts: i64) -> Option<i64> {
    timeline
        .keyframes
        .iter()
        .rev()
        .find(|k| k.pts <= pts)
        .map(|k| k.pts)
}

/// Where a decode of the frame at `target` seeks first: the listed keyframe before it, else —
/// without a list of keyframes — the frame's own time (the demuxer's seek lands at or before
/// a keyframe before it, or after one: then further back, a second, two, four …).
pub(crate) fn first_seek(timeline: &Timeline, target: i64) -> i64 {
    listed_keyframe_before(timeline, target.saturating_add(timeline.tolerance())).unwrap_or(target)
}

/// Where one attempt starts.
pub(crate) struct Start {
    /// Seek the demuxer to the last keyframe at or before this time …
    pub seek_to: i64,
    /// … or read from the start of the movie.
    pub from_start: bool,
}

enum Outcome {
    Found(frame::Video),
    /// The first keyframe after the seek point is shown after the frame (its time).
    Overshot(i64),
    /// Decoding from this keyframe did not produce the frame.
    Missed(i64),
}

/// One frame request: the movie, the frame's time and the caps.
struct Goal<'a> {
    source: &'a Arc<dyn ByteSource>,
    index: &'a MovieIndex,
    timeline: &'a Timeline,
    limits: &'a Limits,
    target: i64,
    tolerance: i64,
    deadline: Instant,
}

/// A demuxer reading the movie's video stream from a seek point.
pub(crate) struct Positioned {
    pub demuxer: Demuxer,
    /// Packets before this byte position are left over from the demuxer's first reads.
    pub min_pos: i64,
}

/// Opens a demuxer and seeks it to the last keyframe at or before `start.seek_to` — through
/// `ts_seek` for MPEG-TS, the Cues for Matroska, the demuxer's own seeking otherwise — or leaves
/// it at the start.
pub(crate) fn position(
    source: &Arc<dyn ByteSource>,
    index: &MovieIndex,
    timeline: &Timeline,
    start: &Start,
    limits: &Limits,
    deadline: Instant,
) -> Result<Positioned> {
    let stream_index = index.stream_index;
    let mut demuxer = open_stream(source, index, limits)?;
    let mut min_pos = -1;
    let is_mpegts = index.container == "mpegts";
    if !start.from_start && is_mpegts {
        // SAFETY: the context is open; the stream index was checked by `open_stream`.
        let pid = unsafe { (**(*demuxer.ctx()).streams.add(stream_index as usize)).id };
        let found =
            ts_seek::keyframe_before(&**source, pid, timeline, start.seek_to, limits, deadline)?;
        if let Some(found) = found {
            let pos = i64::try_from(found.key.pos).unwrap_or(i64::MAX);
            demuxer.add_known_bytes(found.read);
            // SAFETY: the context is open and owned by `demuxer`.
            let sought = unsafe {
                ffi::avformat_seek_file(demuxer.ctx(), -1, pos, pos, pos, ffi::AVSEEK_FLAG_BYTE)
            };
            if sought >= 0 {
                min_pos = pos;
            } else {
                if let Some(e) = demuxer.take_io_error() {
                    return Err(e);
                }
                demuxer = open_stream(source, index, limits)?;
            }
        }
    }
    if !start.from_start && min_pos < 0 {
        // Fragmented MP4 read by its mfra: the fragment sought is checked first.
        demuxer.require_fragment_at(start.seek_to)?;
        if index.container.split(',').any(|name| name == "matroska") {
            // Matroska's seek to the last Cue reads on to the end of the file, looking for a
            // later one: an entry for the end itself (never sought: no frame is shown there)
            // makes it seek straight to the cluster.
            // SAFETY: the context is open; the stream index was checked by `open_stream`.
            unsafe {
                let st = *(*demuxer.ctx()).streams.add(stream_index as usize);
                let end = timeline.pts_of(timeline.frame_count);
                let pos = i64::try_from(index.file_size).unwrap_or(i64::MAX);
                ffi::av_add_index_entry(st, pos, end, 0, 0, ffi::AVINDEX_KEYFRAME);
            }
        }
        // SAFETY: the context is open and owned by `demuxer`.
        let sought = unsafe {
            ffi::avformat_seek_file(
                demuxer.ctx(),
                stream_index,
                i64::MIN,
                start.seek_to,
                start.seek_to,
                0,
            )
        };
        if sought < 0 {
            if let Some(e) = demuxer.take_io_error() {
                return Err(e);
            }
            tracing::debug!(
                "seek failed ({}): reading from the start",
                av_error_string(sought)
            );
            demuxer = open_stream(source, index, limits)?;
        }
    }
    Ok(Positioned { demuxer, min_pos })
}

fn attempt(goal: &Goal<'_>, start: &Start) -> Result<Outcome> {
    let Goal {
        source,
        index,
        timeline,
        limits,
        target,
        tolerance,
        deadline,
    } = *goal;
    let stream_index = index.stream_index;
    let Positioned {
        mut demuxer,
        min_pos,
    } = position(source, index, timeline, start, limits, deadline)?;
    let mut catcher = TimeCatcher {
        decoder: open_decoder(index, limits)?,
        target,
        tolerance,
        found: None,
        passed: false,
        last_error: None,
        max_pixels: limits.max_source_pixels,
    };
    let mut key: Option<i64> = None;
    let (mut skipped, mut fed) = (0usize, 0usize);
    let mut packet = ffmpeg_next::Packet::empty();
    loop {
        check_deadline(deadline, limits)?;
        if !demuxer.read_packet(&mut packet)? {
            break;
        }
        if packet.stream() as i32 != stream_index {
            continue;
        }
        let pts = packet.pts().or(packet.dts());
        let start_key = match key {
            Some(k) => k,
            None if !packet.is_key() || (packet.position() as i64) < min_pos => {
                // Packets before the first keyframe after the seek point cannot be decoded.
                skipped += 1;
                if skipped > limits.max_decode_packets {
                    return Err(Error::Decode(format!(
                        "no keyframe in the {} packets after the seek point",
                        limits.max_decode_packets
                    )));
                }
                continue;
            }
            None => {
                let k = pts.unwrap_or(i64::MIN);
                if k > target.saturating_add(tolerance) {
                    return Ok(Outcome::Overshot(k));
                }
                key = Some(k);
                k
            }
        };
        fed += 1;
        if fed > limits.max_decode_packets {
            return Err(Error::Decode(format!(
                "frame needs more than {} packets decoded from its keyframe",
                limits.max_decode_packets
            )));
        }
        catcher.feed(&packet)?;
        // Once the frame's own packet is in, so are its references (they come before it in
        // decode order): flush instead of reading the packets the decoder's delay would want.
        let is_target = pts.is_some_and(|p| p.abs_diff(target) <= tolerance.unsigned_abs());
        if catcher.found.is_some() || is_target {
            break;
        }
        if catcher.passed {
            return Ok(Outcome::Missed(start_key));
        }
    }
    catcher.finish()?;
    match (catcher.found, key) {
        (Some(frame), _) => Ok(Outcome::Found(frame)),
        (None, Some(k)) => {
            if let Some(e) = &catcher.last_error {
                tracing::debug!("frame not produced; last decoder error: {e}");
            }
            Ok(Outcome::Missed(k))
        }
        (None, None) => Ok(Outcome::Overshot(start.seek_to)),
    }
}

/// Feeds packets and watches the output for the frame shown within `tolerance` of `target`;
/// notes when the output has passed it (frames come out in presentation order).
struct TimeCatcher {
    decoder: ffmpeg_next::decoder::Video,
    target: i64,
    tolerance: i64,
    found: Option<frame::Video>,
    passed: bool,
    last_error: Option<String>,
    max_pixels: u64,
}

impl TimeCatcher {
    fn feed(&mut self, packet: &ffmpeg_next::Packet) -> Result<()> {
        loop {
            match self.decoder.send_packet(packet) {
                Ok(()) => return self.drain(),
                Err(ffmpeg_next::Error::Other { errno }) if errno == ffi::EAGAIN => self.drain()?,
                Err(e) => {
                    // Corrupt packets are survivable, as for the ffmpeg CLI.
                    self.last_error = Some(e.to_string());
                    return Ok(());
                }
            }
            if self.found.is_some() || self.passed {
                return Ok(());
            }
        }
    }

    fn finish(&mut self) -> Result<()> {
        if self.found.is_none() && !self.passed && self.decoder.send_eof().is_ok() {
            self.drain()?;
        }
        Ok(())
    }

    fn drain(&mut self) -> Result<()> {
        let mut picture = frame::Video::empty();
        while self.found.is_none() && self.decoder.receive_frame(&mut picture).is_ok() {
            let Some(pts) = picture.pts().or(picture.timestamp()) else {
                continue;
            };
            if pts.abs_diff(self.target) <= self.tolerance.unsigned_abs() {
                let pixels = u64::from(picture.width()) * u64::from(picture.height());
                if pixels == 0 || pixels > self.max_pixels {
                    return Err(Error::Decode(format!(
                        "the decoder produced a {}×{} picture",
                        picture.width(),
                        picture.height()
                    )));
                }
                self.found = Some(std::mem::replace(&mut picture, frame::Video::empty()));
            } else if pts > self.target.saturating_add(self.tolerance) {
                self.passed = true;
            }
        }
        Ok(())
    }
}
