//! Warm decoding through a kept demuxer — timeline-indexed movies (large Matroska/WebM, MXF,
//! MPEG-TS) and the sample-indexed ones read through FFmpeg's demuxer: a cold start seeks as a
//! cold decode does, packets are fed until the target picture comes out (past the target's
//! packet, at most the decoder's delay in packets, never the next keyframe, and within
//! [`LOOKAHEAD_BYTES`]), and the demuxer is kept with the decoder.

use std::sync::Arc;
use std::time::Instant;

use ffmpeg_next::{ffi, frame};

use super::demuxed::open_stream;
use super::timeline::{self, Positioned, Start};
use super::warm::{fresh_state, through_pool};
use super::warm_pool::{Feed, Reach, Shown, Want, WarmPool, WarmState};
use super::{Attempt, DecodePath, WarmMovie, check_deadline, keyframe_before, packet_for};
use crate::avio::Demuxer;
use crate::error::{Error, Result};
use crate::index::{MovieIndex, Sample, Timeline};
use crate::limits::Limits;
use crate::source::ByteSource;

/// Where keyframes are not listed (MXF, MPEG-TS), a request continues a kept decoder only up to
/// this many frames past the last picture it showed. Continuing costs one decode per frame on
/// the way; a cold decode costs the demuxer's open and seek (several origin round trips, and
/// for MPEG-TS the timestamp probes) plus the decodes from a keyframe we cannot see without
/// reading. 16 decodes of a long-GOP picture cost about what that overhead does, so within 16
/// frames continuing is never much dearer than seeking even when a keyframe lies in between
/// (a cold decode could then start there), and it is far cheaper deep in a GOP; further ahead, a
/// keyframe nearer the target would more and more often make seeking the cheaper way.
pub(super) const UNLISTED_AHEAD: u64 = 16;

/// Bytes a cold decode may fetch past the end of its target's packet while the decoder still
/// holds the target back. What it reads there is counted in packets — the decoder's delay
/// (`FrameCatcher::delay`: reordering plus frame threads), and never a keyframe, where the
/// decoder is flushed instead —; this cap on top keeps a cold frame within its GOP span plus
/// SPEC §4's 1 MiB (with the origin's read-ahead, which it overlaps, and block alignment) when
/// those few pictures are large: a flush then, the state is not kept, and the frame is noted as
/// cut short (`walks.rs`). 512 KiB holds the delay of three noisy 720p H.264 P pictures (~110 KB
/// each). A continued decode, or a walk's next step after a frame cut short, may read as far as
/// the decoder's delay needs (see [`lookahead_bytes`]).
const LOOKAHEAD_BYTES: u64 = 512 * 1024;
/// The most a decode fetches past its target however large its pictures.
const MAX_LOOKAHEAD_BYTES: u64 = 16 << 20;

/// What a kept demuxer costs besides the bytes it was handed (see [`DemuxFeed::tidy`]): its
/// 256 KiB I/O buffer and FFmpeg's parsing state (a partial PES, the cluster being read).
const DEMUXER_BYTES: u64 = 512 * 1024;

/// A demuxer kept with a decoder: the open format context over our own I/O callbacks, the
/// stream read, and how far the packets fed have come. Every packet read is fed at once, so
/// none is held here; the bytes held are the demuxer's own.
pub(crate) struct DemuxFeed {
    demuxer: Demuxer,
    stream_index: i32,
    /// Sample-indexed movies: the sample (decode order) the next packet must be.
    pub(crate) next_sample: Option<usize>,
    /// The pts of the last keyframe fed.
    pub(crate) key_pts: Option<i64>,
    /// Whether a keyframe was fed yet (packets before it are skipped).
    started: bool,
    /// Before the first keyframe: packets before this byte position are left over from the
    /// demuxer's first reads.
    min_pos: i64,
    held: u64,
}

impl DemuxFeed {
    fn new(demuxer: Demuxer, index: &MovieIndex, next_sample: Option<usize>, min_pos: i64) -> Self {
        Self {
            demuxer,
            stream_index: index.stream_index,
            next_sample,
            key_pts: None,
            started: false,
            min_pos,
            held: DEMUXER_BYTES,
        }
    }

    /// Bytes the kept demuxer holds, for the pool's budget.
    pub(crate) fn held_bytes(&self) -> u64 {
        self.held
    }

    /// A later request continues this demuxer: its reads work to that request's deadline, and
    /// may go on past the previous target.
    pub(super) fn resume(&mut self, deadline: Instant) {
        self.demuxer.set_deadline(deadline);
        self.demuxer.stop_fetching_at(u64::MAX);
    }

    /// Before the demuxer is kept: drops the bytes handed to it that it has read past (a
    /// timestamp search's, see `ts_seek`) and weighs what is left.
    pub(super) fn tidy(&mut self) {
        let position = self.demuxer.io_position();
        let known = self.demuxer.forget_known_before(position);
        self.held = DEMUXER_BYTES.saturating_add(known);
    }
}

/// Which packet is the target, and how packets are fed.
enum Target<'a> {
    /// Sample-indexed: packets are the index's samples in decode order (matched by position, or
    /// dts), fed with the index's timestamps and flags; the target is sample `target`.
    Sample {
        samples: &'a [Sample],
        target: usize,
        target_pts: i64,
    },
    /// Timeline: the packet and the picture shown within `tolerance` of `pts`.
    Time { pts: i64, tolerance: i64 },
}

impl Target<'_> {
    fn pts(&self) -> (i64, i64) {
        match *self {
            Self::Sample { target_pts, .. } => (target_pts, 0),
            Self::Time { pts, tolerance } => (pts, tolerance),
        }
    }
}

/// Frame `order_pos` of a timeline-indexed movie through the warm pool; `None` when the warm
/// path could not produce it (the caller decodes cold, trying earlier keyframes).
pub(super) fn timeline_frame(
    source: &Arc<dyn ByteSource>,
    index: &MovieIndex,
    timeline: &Timeline,
    order_pos: usize,
    limits: &Limits,
    warm: WarmMovie<'_>,
) -> Result<Option<(frame::Video, DecodePath)>> {
    let position = order_pos as u64;
    if position >= timeline.frame_count {
        return Err(Error::FrameOutOfRange {
            frame: position + 1,
            count: timeline.frame_count,
        });
    }
    let target = timeline.pts_of(position);
    let tolerance = timeline.tolerance();
    let deadline = crate::deadline::or_from_now(limits.decode_timeout);
    let reach = match timeline::listed_keyframe_before(timeline, target.saturating_add(tolerance)) {
        Some(key_pts) => Reach::Keyframes { key_pts },
        None => Reach::Unlisted {
            ahead: timeline
                .pts_of(UNLISTED_AHEAD)
                .saturating_sub(timeline.first_pts)
                .saturating_add(tolerance),
        },
    };
    let want = Want {
        movie: warm.movie,
        target_pts: target,
        tolerance,
        order_pos,
        reach,
    };
    let cold = || {
        let seek_to = timeline::first_seek(timeline, target);
        let start = Start {
            seek_to,
            from_start: seek_to <= timeline.first_pts,
        };
        let Positioned { demuxer, min_pos } =
            timeline::position(source, index, timeline, &start, limits, deadline)?;
        let feed = Feed::Demux(DemuxFeed::new(demuxer, index, None, min_pos));
        fresh_state(index, limits, target, tolerance, feed).map(Some)
    };
    let goal = Target::Time {
        pts: target,
        tolerance,
    };
    let walk = Walk::of(&warm, index, target);
    through_pool(warm.pool, want, deadline, cold, |state| {
        advance(state, &goal, limits, deadline, &walk)
    })
}

/// A frame's place in a walk: a cold decode of it may read past its target as far as keeping
/// its decoder needs when it follows a frame whose cold decode was cut short by the byte bound
/// (`walks.rs`), and is noted as cut short itself otherwise.
struct Walk<'a> {
    pool: &'a WarmPool,
    movie: u64,
    target_pts: i64,
    follows_cut_short: bool,
}

impl<'a> Walk<'a> {
    fn of(warm: &WarmMovie<'a>, index: &MovieIndex, target_pts: i64) -> Self {
        let within = index.frames_in_time_base(UNLISTED_AHEAD).unwrap_or(0);
        Self {
            pool: warm.pool,
            movie: warm.movie,
            target_pts,
            follows_cut_short: warm.pool.walks.follows(warm.movie, target_pts, within),
        }
    }
}

/// Frame `attempt.target` of a sample-indexed movie read through the demuxer (small files of
/// other containers, long-GOP AVI) through the warm pool; `None` when the warm path could not
/// produce it (the caller decodes cold).
pub(super) fn sample_frame(
    attempt: &Attempt<'_>,
    warm: WarmMovie<'_>,
    order_pos: usize,
) -> Result<Option<(frame::Video, DecodePath)>> {
    let Attempt {
        source,
        index,
        target,
        target_pts,
        limits,
        deadline,
    } = *attempt;
    let cold_start = keyframe_before(&index.samples, target, target_pts);
    let want = Want {
        movie: warm.movie,
        target_pts,
        tolerance: 0,
        order_pos,
        reach: Reach::Samples { target, cold_start },
    };
    let cold = || {
        let Some(key) = index.samples.get(cold_start) else {
            return Ok(None);
        };
        let mut demuxer = open_stream(source, index, limits)?;
        let seek_ts = key.pts.min(key.dts);
        // SAFETY: the context is open and owned by `demuxer`; the stream index was checked.
        let sought = unsafe {
            ffi::avformat_seek_file(
                demuxer.ctx(),
                index.stream_index,
                i64::MIN,
                seek_ts,
                seek_ts,
                0,
            )
        };
        if sought < 0 {
            demuxer = open_stream(source, index, limits)?;
        }
        let feed = Feed::Demux(DemuxFeed::new(demuxer, index, Some(cold_start), -1));
        fresh_state(index, limits, target_pts, 0, feed).map(Some)
    };
    let goal = Target::Sample {
        samples: &index.samples,
        target,
        target_pts,
    };
    let walk = Walk::of(&warm, index, target_pts);
    through_pool(warm.pool, want, deadline, cold, |state| {
        advance(state, &goal, limits, deadline, &walk)
    })
}

/// Reads packets from the kept demuxer and feeds them until the target picture comes out. Once
/// the target's packet is in, at most the decoder's delay in packets more are fed, none of them
/// a keyframe, and the demuxer fetches at most [`lookahead_bytes`] more; at any of those stops
/// (or the end of the movie) the decoder is flushed and the state is not kept. `None` when the
/// target will not come from here (already passed, or the seek landed after it).
fn advance(
    state: &mut WarmState,
    target: &Target<'_>,
    limits: &Limits,
    deadline: Instant,
    walk: &Walk<'_>,
) -> Result<Option<frame::Video>> {
    let WarmState {
        catcher,
        feed,
        reusable,
        cold,
        ..
    } = state;
    // A cold frame reads at most its GOP span plus 1 MiB (SPEC §4), unless it is a walk's next
    // step after a frame cut short by that bound.
    let bounded = *cold && !walk.follows_cut_short;
    let Feed::Demux(demux) = feed else {
        return Err(Error::Decode("a warm state fed by another path".into()));
    };
    let (target_pts, tolerance) = target.pts();
    let last_wanted = target_pts.saturating_add(tolerance);
    let (mut skipped, mut fed) = (0usize, 0usize);
    // The largest picture fed that is not a keyframe (what the lookahead packets are).
    let mut largest_picture = 0usize;
    // Packets shown after the target fed since the target's (`Some` once the target's is in).
    let mut after_target: Option<usize> = None;
    let mut packet = ffmpeg_next::Packet::empty();
    while catcher.found.is_none() {
        if catcher
            .shown
            .as_ref()
            .and_then(Shown::last_pts)
            .is_some_and(|pts| pts > last_wanted)
        {
            // Pictures come out in pts order: the target was skipped and will not come.
            return Ok(None);
        }
        check_deadline(deadline, limits)?;
        if after_target.is_some_and(|after| after >= catcher.delay()) {
            // The decoder took its delay's packets past the target and still holds it back: it
            // will not come out without a flush (the state is not kept).
            *reusable = false;
            catcher.finish()?;
            break;
        }
        let read = demux.demuxer.read_packet(&mut packet);
        if demux.demuxer.stopped() || matches!(read, Ok(false)) {
            // The end of the bytes this decode may read past its target (a packet read now may
            // be cut short: not fed), or of the movie: what the decoder still holds back needs
            // no later packet, so flush; the flushed decoder is not kept.
            if bounded && demux.demuxer.stopped() {
                walk.pool.walks.cut_short(walk.movie, walk.target_pts);
            }
            *reusable = false;
            catcher.finish()?;
            break;
        }
        read?;
        if packet.stream() as i32 != demux.stream_index {
            continue;
        }
        // Whether the packet's picture is shown after the target's: only those count toward the
        // decoder's delay (a P target is followed in decode order by the B pictures shown
        // before it, which must come out first).
        let (own, is_target, shown_after) = match *target {
            Target::Sample {
                samples, target, ..
            } => {
                let next = demux.next_sample.unwrap_or(usize::MAX);
                let Some(expected) = samples.get(next) else {
                    *reusable = false;
                    catcher.finish()?;
                    break;
                };
                if !is_sample(expected, &packet) {
                    if demux.started {
                        return Err(Error::Source(crate::SourceError::new(
                            crate::SourceErrorKind::Changed,
                            "the movie's packets differ from its index",
                        )));
                    }
                    let past = packet.dts().is_some_and(|d| d > expected.dts)
                        && packet.position() as i64 > expected.pos;
                    skipped += 1;
                    if past || skipped > limits.max_decode_packets.saturating_mul(4) {
                        // The seek went past the keyframe: the cold path reads from the start.
                        return Ok(None);
                    }
                    continue;
                }
                if after_target.is_some() && expected.keyframe {
                    // The next GOP: every picture it holds is shown after the target.
                    *reusable = false;
                    catcher.finish()?;
                    break;
                }
                demux.started = true;
                demux.next_sample = Some(next + 1);
                if expected.keyframe {
                    demux.key_pts = Some(expected.pts);
                }
                let mut own = packet_for(expected, packet.data().unwrap_or(&[]));
                own.set_position(packet.position());
                let shown_after = expected.pts > target_pts;
                (Some(own), next == target, shown_after)
            }
            Target::Time { pts, tolerance } => {
                let packet_pts = packet.pts().or(packet.dts());
                if !demux.started {
                    if !packet.is_key() || (packet.position() as i64) < demux.min_pos {
                        // Packets before the first keyframe after the seek point cannot be
                        // decoded.
                        skipped += 1;
                        if skipped > limits.max_decode_packets {
                            return Err(Error::Decode(format!(
                                "no keyframe in the {} packets after the seek point",
                                limits.max_decode_packets
                            )));
                        }
                        continue;
                    }
                    if packet_pts.unwrap_or(i64::MIN) > pts.saturating_add(tolerance) {
                        // The seek landed after the frame's keyframe: the cold path goes back.
                        return Ok(None);
                    }
                    demux.started = true;
                }
                if after_target.is_some() && packet.is_key() {
                    // The next GOP: every picture it holds is shown after the target.
                    *reusable = false;
                    catcher.finish()?;
                    break;
                }
                if packet.is_key() {
                    demux.key_pts = packet_pts.or(demux.key_pts);
                }
                let is_target =
                    packet_pts.is_some_and(|p| p.abs_diff(pts) <= tolerance.unsigned_abs());
                let shown_after = packet_pts.is_some_and(|p| p > pts.saturating_add(tolerance));
                (None, is_target, shown_after)
            }
        };
        fed += 1;
        if fed > limits.max_decode_packets {
            return Err(Error::Decode(format!(
                "frame needs more than {} packets decoded from its keyframe",
                limits.max_decode_packets
            )));
        }
        catcher.feed(own.as_ref().unwrap_or(&packet))?;
        if !packet.is_key() {
            largest_picture = largest_picture.max(packet.size());
        }
        if let Some(after) = after_target.as_mut().filter(|_| shown_after) {
            *after += 1;
        }
        if is_target {
            after_target = Some(0);
            let lookahead = if bounded {
                LOOKAHEAD_BYTES
            } else {
                lookahead_bytes(catcher.delay(), largest_picture)
            };
            stop_after(&mut demux.demuxer, &packet, lookahead);
        }
    }
    Ok(catcher.found.take())
}

/// Bytes a decode that is not bounded as a cold frame may fetch past its target:
/// [`LOOKAHEAD_BYTES`], or room for the decoder's `delay` pictures (plus one, for the container
/// around them) as large as the largest non-key picture fed, when that is more — 1080p noise
/// makes 500 KB P pictures, whose three-picture delay would otherwise flush every decode and
/// keep none. At most [`MAX_LOOKAHEAD_BYTES`].
/// The packets fed past the target stay counted by the delay, and never include a keyframe.
fn lookahead_bytes(delay: usize, largest_picture: usize) -> u64 {
    let pictures = u64::try_from(delay).unwrap_or(u64::MAX).saturating_add(1);
    let room = pictures.saturating_mul(u64::try_from(largest_picture).unwrap_or(u64::MAX));
    room.clamp(LOOKAHEAD_BYTES, MAX_LOOKAHEAD_BYTES)
}

/// Lets the demuxer fetch at most `lookahead` bytes past the end of `packet` (or past what it
/// has read, when the packet's position is unknown).
fn stop_after(demuxer: &mut Demuxer, packet: &ffmpeg_next::Packet, lookahead: u64) {
    let end = u64::try_from(packet.position())
        .ok()
        .map(|pos| pos.saturating_add(packet.size() as u64))
        .unwrap_or_else(|| demuxer.io_position());
    demuxer.stop_fetching_at(end.saturating_add(lookahead));
}

/// Whether `packet` is `sample`: by byte position, else by dts.
fn is_sample(sample: &Sample, packet: &ffmpeg_next::Packet) -> bool {
    if sample.pos >= 0 && packet.position() >= 0 {
        sample.pos == packet.position() as i64
    } else {
        Some(sample.dts) == packet.dts()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lookahead_follows_large_pictures_within_its_bounds() {
        // 720p noise: three 110 KB pictures fit the floor.
        assert_eq!(lookahead_bytes(3, 110_000), LOOKAHEAD_BYTES);
        // 1080p noise: room for the delay plus one 610 KB picture.
        assert_eq!(lookahead_bytes(3, 610_000), 4 * 610_000);
        // Whatever a stream claims, never more than the ceiling.
        assert_eq!(lookahead_bytes(usize::MAX, usize::MAX), MAX_LOOKAHEAD_BYTES);
        assert_eq!(lookahead_bytes(0, 0), LOOKAHEAD_BYTES);
    }
}
