//! Clips of movies indexed by a timeline (large Matroska/WebM, MXF, MPEG-TS), whose samples are
//! not listed before reading: the demuxer is placed at the keyframe before frame A's time as a
//! frame decode places it, and its packets are copied in decode order until every frame shown
//! up to B's time is in. The packets from the keyframe to A are held (bounded) until A's own
//! packet gives the time the clip starts at. Decode times the demuxer leaves out (Matroska
//! stores none) are derived from the presentation times as FFmpeg's muxers derive them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use ffmpeg_next::Packet;

use super::check_clip_bytes;
use super::muxer::{Coded, Muxer};
use crate::decoder::{Positioned, Start, check_deadline, earlier_start, first_seek, one_second};
use crate::error::{Error, Result};
use crate::index::{MovieIndex, Timeline};
use crate::limits::Limits;
use crate::source::ByteSource;

/// Start points tried before giving up, as for a frame: the keyframe before A, then earlier
/// ones (a seek that landed after the keyframe, an open GOP whose A needs the one before).
const START_ATTEMPTS: usize = 6;
/// Bytes of packets held between the keyframe and frame A. A GOP's head is what a cold frame
/// decode reads too; this bounds the memory one clip holds whatever the movie says.
const MAX_LEAD_BYTES: usize = 256 << 20;
/// The deepest reordering FFmpeg's muxers derive decode times for (`MAX_REORDER_DELAY`).
const MAX_REORDER_DELAY: usize = 16;
/// Packets shown after B held in case a packet shown before B follows (reordering is a few
/// frames deep; past this many, no packet shown before B can follow).
const MAX_HELD_AFTER_B: usize = 64;

/// Frames A and B of a clip by their presentation times (stream time base).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    pub a_pts: i64,
    pub b_pts: i64,
}

/// The movie a timeline clip reads from.
pub(super) struct Movie<'a> {
    pub source: &'a Arc<dyn ByteSource>,
    pub index: &'a MovieIndex,
    pub timeline: &'a Timeline,
    pub limits: &'a Limits,
}

/// Copies the packets of `span` into `muxer`; returns how many.
pub(super) fn copy(
    muxer: &mut Muxer<'_>,
    movie: &Movie<'_>,
    span: Span,
    deadline: Instant,
) -> Result<usize> {
    let timeline = movie.timeline;
    let mut seek_to = first_seek(timeline, span.a_pts);
    let mut back = one_second(movie.index.time_base);
    for _ in 0..START_ATTEMPTS {
        let start = Start {
            seek_to,
            from_start: seek_to <= timeline.first_pts,
        };
        let (key, overshot) = match copy_from(muxer, movie, span, &start, deadline)? {
            Outcome::Copied(count) => return Ok(count),
            _ if start.from_start => break,
            Outcome::Overshot(key) => (key, true),
            Outcome::Missed(key) => (key, false),
        };
        seek_to = earlier_start(timeline, span.a_pts, &start, key, overshot, &mut back);
    }
    Err(Error::Decode(format!(
        "no keyframe found from which the clip's first frame (pts {}) decodes",
        span.a_pts
    )))
}

/// How one start went; when A was not reached, nothing was written to the muxer.
enum Outcome {
    Copied(usize),
    /// The first keyframe after the seek point (its time) is shown after A.
    Overshot(i64),
    /// A does not decode from this keyframe (its time): an earlier one is needed.
    Missed(i64),
}

fn copy_from(
    muxer: &mut Muxer<'_>,
    movie: &Movie<'_>,
    span: Span,
    start: &Start,
    deadline: Instant,
) -> Result<Outcome> {
    let Positioned {
        mut demuxer,
        min_pos,
    } = crate::decoder::position(
        movie.source,
        movie.index,
        movie.timeline,
        start,
        movie.limits,
        deadline,
    )?;
    let tolerance = movie.timeline.tolerance();
    let after_b = span.b_pts.saturating_add(tolerance);
    let stream_index = movie.index.stream_index;
    let max_packets = movie.limits.max_decode_packets;
    let frame = (movie.timeline.pts_of(1) - movie.timeline.pts_of(0)).max(1);
    let mut decode_times = DecodeTimes::new(movie.index.codec.video_delay, frame);
    let mut key: Option<i64> = None;
    let mut skipped = 0usize;
    let mut lead = Lead::default();
    let mut copier = Copier {
        muxer,
        start_pts: None,
        bytes: 0,
        written: 0,
    };
    let mut held: VecDeque<Timed> = VecDeque::new();
    let mut packet = Packet::empty();
    loop {
        check_deadline(deadline, movie.limits)?;
        if !demuxer.read_packet(&mut packet)? {
            break;
        }
        if packet.stream() as i32 != stream_index {
            continue;
        }
        let Some(pts) = packet.pts().or(packet.dts()) else {
            return Err(Error::Decode("a packet without a timestamp".into()));
        };
        let key_pts = match key {
            Some(k) => k,
            None if !packet.is_key() || (packet.position() as i64) < min_pos => {
                skipped += 1;
                if skipped > max_packets {
                    return Err(Error::Decode(format!(
                        "no keyframe in the {max_packets} packets after the seek point"
                    )));
                }
                continue;
            }
            None if pts > span.a_pts.saturating_add(tolerance) => {
                return Ok(Outcome::Overshot(pts));
            }
            None => {
                key = Some(pts);
                pts
            }
        };
        let timed = Timed {
            dts: decode_times.next(pts, packet.dts()),
            pts,
            packet: std::mem::replace(&mut packet, Packet::empty()),
        };
        if copier.start_pts.is_some() {
            // Every frame shown by B's time is in once decode times pass it.
            if timed.dts > after_b {
                break;
            }
            if timed.pts > after_b {
                held.push_back(timed);
                if held.len() > MAX_HELD_AFTER_B {
                    break;
                }
                continue;
            }
            for earlier in held.drain(..) {
                copier.write(&earlier)?;
            }
            copier.write(&timed)?;
            continue;
        }
        let is_a = pts.abs_diff(span.a_pts) <= tolerance.unsigned_abs();
        let passed_a = timed.dts > span.a_pts.saturating_add(tolerance);
        if (is_a && pts < key_pts) || (!is_a && passed_a) {
            // A is shown before its keyframe (an open GOP's leading frame) or was not among
            // the packets from this keyframe: it needs an earlier one.
            return Ok(Outcome::Missed(key_pts));
        }
        lead.push(timed, max_packets)?;
        if is_a {
            copier.start_pts = Some(pts);
            for earlier in lead.packets.drain(..) {
                copier.write(&earlier)?;
            }
        }
    }
    if copier.start_pts.is_none() {
        return Ok(match key {
            Some(key) => Outcome::Missed(key),
            None => Outcome::Overshot(start.seek_to),
        });
    }
    Ok(Outcome::Copied(copier.written))
}

/// A packet read, with its presentation and decode times (derived when the demuxer gave none).
struct Timed {
    packet: Packet,
    pts: i64,
    dts: i64,
}

/// Decode times for packets in decode order: the demuxer's, else derived as FFmpeg's muxers
/// derive them — the smallest of the last `delay + 1` presentation times not yet used —, kept
/// increasing.
struct DecodeTimes {
    delay: usize,
    frame: i64,
    pending: BinaryHeap<Reverse<i64>>,
    last: Option<i64>,
}

impl DecodeTimes {
    fn new(video_delay: i32, frame: i64) -> Self {
        Self {
            delay: usize::try_from(video_delay)
                .unwrap_or(0)
                .min(MAX_REORDER_DELAY),
            frame,
            pending: BinaryHeap::new(),
            last: None,
        }
    }

    fn next(&mut self, pts: i64, dts: Option<i64>) -> i64 {
        if self.last.is_none() {
            // Before the first packet, `delay` frames' worth of earlier decode times.
            for i in 0..self.delay {
                let frames_before = (self.delay - i) as i64;
                self.pending
                    .push(Reverse(pts.saturating_sub(frames_before * self.frame)));
            }
        }
        self.pending.push(Reverse(pts));
        let derived = self.pending.pop().map_or(pts, |Reverse(min)| min);
        let dts = dts.unwrap_or(derived).min(pts);
        let dts = match self.last {
            Some(last) if dts <= last => last + 1,
            _ => dts,
        };
        self.last = Some(dts);
        dts
    }
}

/// The packets from the keyframe up to frame A, held until A's own packet gives the time the
/// clip starts at.
#[derive(Default)]
struct Lead {
    packets: Vec<Timed>,
    bytes: usize,
}

impl Lead {
    fn push(&mut self, timed: Timed, max_packets: usize) -> Result<()> {
        self.bytes = self.bytes.saturating_add(timed.packet.size());
        if self.packets.len() >= max_packets || self.bytes > MAX_LEAD_BYTES {
            return Err(Error::InvalidRequest(format!(
                "the clip's first frame lies more than {max_packets} packets or {} MiB after its keyframe",
                MAX_LEAD_BYTES >> 20
            )));
        }
        self.packets.push(timed);
        Ok(())
    }
}

/// Writes packets into the muxer, frame A's time at zero.
struct Copier<'m, 'w> {
    muxer: &'m mut Muxer<'w>,
    /// Frame A's presentation time, once its packet was read.
    start_pts: Option<i64>,
    bytes: u64,
    written: usize,
}

impl Copier<'_, '_> {
    fn write(&mut self, timed: &Timed) -> Result<()> {
        let data = timed.packet.data().unwrap_or(&[]);
        self.bytes = self.bytes.saturating_add(data.len() as u64);
        check_clip_bytes(self.bytes)?;
        let start = self.start_pts.unwrap_or(0);
        let duration = timed.packet.duration();
        self.muxer.write(
            &Coded {
                pts: timed.pts - start,
                dts: timed.dts - start,
                duration: (duration > 0).then_some(duration),
                keyframe: timed.packet.is_key(),
            },
            data,
        )?;
        self.written += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_decode_times_are_derived_as_ffmpeg_derives_them() {
        // A Matroska H.264 stream after a seek (ffprobe): no dts on the first two packets, then
        // FFmpeg's own derivation. Ours gives those, and earlier ones one frame apart before.
        let pts = [33000, 33160, 33080, 33040, 33120, 33320, 33240, 33200];
        let ffmpeg = [
            None,
            None,
            Some(33000),
            Some(33040),
            Some(33080),
            Some(33120),
        ];
        let mut times = DecodeTimes::new(2, 40);
        let derived: Vec<i64> = pts.iter().map(|&p| times.next(p, None)).collect();
        assert_eq!(
            derived,
            [32920, 32960, 33000, 33040, 33080, 33120, 33160, 33200]
        );
        let mut times = DecodeTimes::new(2, 40);
        let mixed: Vec<i64> = pts
            .iter()
            .zip(ffmpeg.iter().chain(std::iter::repeat(&None)))
            .map(|(&p, &d)| times.next(p, d))
            .collect();
        assert_eq!(derived, mixed);
    }

    #[test]
    fn decode_times_always_increase() {
        let mut times = DecodeTimes::new(0, 40);
        // No reordering announced, yet packets reorder: still increasing (the muxer then
        // refuses the packet shown before its decode time, rather than writing a broken file).
        let got: Vec<i64> = [0, 80, 40, 120]
            .iter()
            .map(|&p| times.next(p, None))
            .collect();
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
        assert_eq!(got[0], 0);
    }
}
