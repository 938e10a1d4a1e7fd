//! MPEG-TS has no index: the keyframe before a frame is found by reading PES headers. Probes
//! interpolated between the file's ends by time find where the stream's decode time passes the
//! frame's; from there, chunks read backwards find the last random-access PES shown no later
//! than the frame. The chunks are exactly the bytes the demuxer reads next, so they are handed
//! to it (`Demuxer::add_known`): a cold frame reads its GOP span plus a few probes.

use std::time::Instant;

use bytes::Bytes;

use super::check_deadline;
use crate::avio::KnownBytes;
use crate::error::Result;
use crate::index::Timeline;
use crate::limits::Limits;
use crate::mpegts::{self, PesStart};
use crate::source::ByteSource;

/// A probe's first read; doubled (up to `MAX_PROBE`) while it holds no PES header.
const PROBE: u64 = 64 * 1024;
const MAX_PROBE: u64 = 4 * 1024 * 1024;
/// Probes before settling for the closest one past the frame.
const MAX_PROBES: usize = 12;
/// Backward reads from there.
const CHUNK: u64 = 256 * 1024;

/// The keyframe found, and the bytes read on the way (for the demuxer).
pub(super) struct Found {
    pub key: PesStart,
    pub read: KnownBytes,
}

/// The last random-access PES of `pid` whose time is at most `target`, at or before the frame
/// in decode order (before the PES that follows the frame's own, or the first one decoded after
/// `target`); `None` when none is found within `limits.max_index_bytes` of backward reads.
pub(super) fn keyframe_before(
    source: &dyn ByteSource,
    pid: i32,
    timeline: &Timeline,
    target: i64,
    limits: &Limits,
    deadline: Instant,
) -> Result<Option<Found>> {
    let size = source.len();
    // Times relative to the first frame's, unwrapped past the 33-bit clock's wrap.
    let base = timeline.first_pts.saturating_sub(1 << 32);
    let time = |pts: i64| mpegts::unwrap_after(pts, base);
    let end_time = timeline.pts_of(timeline.frame_count);
    let tolerance = timeline.tolerance().unsigned_abs();
    // Where the decode time passes the target: bracket it, interpolating by time.
    let mut low = (0u64, timeline.first_pts);
    let mut high = (size, end_time.max(timeline.first_pts + 1));
    let mut read = KnownBytes::default();
    let mut past: Option<u64> = None;
    for _ in 0..MAX_PROBES {
        check_deadline(deadline, limits)?;
        let (span_bytes, span_time) = (high.0.saturating_sub(low.0), high.1 - low.1);
        if span_bytes <= PROBE || span_time <= 0 {
            past = Some(high.0);
            break;
        }
        let ahead = i128::from((target - low.1).clamp(0, span_time));
        let guess = low.0 + (i128::from(span_bytes) * ahead / i128::from(span_time)) as u64;
        let at = guess.min(high.0.saturating_sub(PROBE)).max(low.0);
        let starts = probe(source, &mut read, pid, at, high.0)?;
        let (Some(first), Some(last)) = (starts.first(), starts.last()) else {
            past = Some(high.0);
            break;
        };
        // The frame's own PES, and the next one's start: where the frame's bytes end.
        let own = starts
            .iter()
            .position(|s| time(s.pts).abs_diff(target) <= tolerance);
        if let Some(next) = own.and_then(|i| starts.get(i + 1)) {
            past = Some(next.pos);
            break;
        }
        if time(first.dts) > target {
            high = (first.pos, time(first.dts));
        } else if let Some(after) = starts.iter().find(|s| time(s.dts) > target) {
            past = Some(after.pos);
            break;
        } else {
            low = (last.pos + 1, time(last.dts));
        }
    }
    let past = past.unwrap_or(high.0);
    // Backwards from there to the keyframe, reusing what the probes read.
    let mut end = past;
    while end > 0 && read.len() < limits.max_index_bytes {
        check_deadline(deadline, limits)?;
        let start = end.saturating_sub(CHUNK);
        // A chunk reaches a packet into the next one, so headers at its end are complete.
        let bytes = read_through(source, &mut read, start, (end + 188).min(size))?;
        let key = mpegts::pes_starts(&bytes, start, pid)
            .into_iter()
            .rfind(|s| s.pos < end && s.random_access && time(s.pts) <= target);
        if let Some(key) = key {
            return Ok(Some(Found { key, read }));
        }
        end = start;
    }
    Ok(None)
}

/// Bytes `start..stop`, from `read` where known, else from the source (and then kept).
fn read_through(
    source: &dyn ByteSource,
    read: &mut KnownBytes,
    start: u64,
    stop: u64,
) -> Result<Bytes> {
    let mut pos = start;
    while pos < stop {
        if let Some(known) = read.at(pos) {
            pos += known.len() as u64;
            continue;
        }
        let gap_end = read.next_start(pos).map_or(stop, |next| next.min(stop));
        let bytes = source.read_at(pos, usize::try_from(gap_end - pos).unwrap_or(0))?;
        if bytes.is_empty() {
            break;
        }
        pos += bytes.len() as u64;
        read.insert(pos - bytes.len() as u64, bytes);
    }
    let mut out = Vec::with_capacity(usize::try_from(stop - start).unwrap_or(0));
    let mut pos = start;
    while pos < stop {
        let Some(known) = read.at(pos) else { break };
        let take = known
            .len()
            .min(usize::try_from(stop - pos).unwrap_or(usize::MAX));
        out.extend_from_slice(&known[..take]);
        pos += take as u64;
    }
    Ok(Bytes::from(out))
}

/// The PES headers in a probe read at `at` (not past `limit`), extended until it holds one.
fn probe(
    source: &dyn ByteSource,
    read: &mut KnownBytes,
    pid: i32,
    at: u64,
    limit: u64,
) -> Result<Vec<PesStart>> {
    let mut len = PROBE;
    loop {
        let stop = (at + len).min(limit);
        let bytes = read_through(source, read, at, stop)?;
        let starts = mpegts::pes_starts(&bytes, at, pid);
        if !starts.is_empty() || stop == limit || len >= MAX_PROBE {
            return Ok(starts);
        }
        len *= 2;
    }
}
