//! Keyframe mode where the container lists no keyframes (MXF, MPEG-TS): seek as a frame's
//! decode would — MXF's index tables, `ts_seek`'s timestamp search —, then read packets, without
//! decoding any, to the first keyframe after the seek point; its time names the frame answered.

use std::sync::Arc;
use std::time::Instant;

use super::check_deadline;
use super::timeline::{self, Positioned, Start};
use crate::avio::Demuxer;
use crate::error::{Error, Result};
use crate::index::{MovieIndex, Timeline};
use crate::limits::Limits;
use crate::source::ByteSource;

/// Seek points tried: the frame's own time, then a second earlier, two, four … (a seek that
/// landed after the keyframe wanted).
const ATTEMPTS: usize = 6;

/// The 0-based position of the last keyframe shown no later than frame `order_pos`; `None`
/// when none is found that way (the caller answers the frame itself, decoded exactly).
pub(crate) fn keyframe_at_or_before(
    source: &Arc<dyn ByteSource>,
    index: &MovieIndex,
    timeline: &Timeline,
    order_pos: u64,
    limits: &Limits,
) -> Result<Option<u64>> {
    let target = timeline.pts_of(order_pos);
    let last_wanted = target.saturating_add(timeline.tolerance());
    let deadline = crate::deadline::or_from_now(limits.decode_timeout);
    let (tb_num, tb_den) = index.time_base;
    let mut back = (i64::from(tb_den) / i64::from(tb_num.max(1))).max(1);
    let mut seek_to = target;
    for _ in 0..ATTEMPTS {
        let start = Start {
            seek_to,
            from_start: seek_to <= timeline.first_pts,
        };
        let Positioned {
            mut demuxer,
            min_pos,
        } = timeline::position(source, index, timeline, &start, limits, deadline)?;
        let key = first_keyframe(&mut demuxer, index.stream_index, min_pos, limits, deadline)?;
        match key {
            Some(pts) if pts <= last_wanted => {
                return Ok(Some(timeline.frame_at(pts).min(order_pos)));
            }
            _ if start.from_start => return Ok(None),
            _ => {
                seek_to = seek_to.min(target).saturating_sub(back);
                back = back.saturating_mul(2);
            }
        }
    }
    Ok(None)
}

/// The pts of the first keyframe of the stream at or after byte `min_pos`, reading packets
/// (never decoding them); `None` at the end of the movie.
fn first_keyframe(
    demuxer: &mut Demuxer,
    stream_index: i32,
    min_pos: i64,
    limits: &Limits,
    deadline: Instant,
) -> Result<Option<i64>> {
    let mut packet = ffmpeg_next::Packet::empty();
    let mut read = 0usize;
    loop {
        check_deadline(deadline, limits)?;
        if !demuxer.read_packet(&mut packet)? {
            return Ok(None);
        }
        if packet.stream() as i32 != stream_index {
            continue;
        }
        if packet.is_key() && packet.position() as i64 >= min_pos {
            return Ok(packet.pts().or(packet.dts()));
        }
        read += 1;
        if read > limits.max_decode_packets {
            return Err(Error::Decode(format!(
                "no keyframe in the {} packets after the seek point",
                limits.max_decode_packets
            )));
        }
    }
}
