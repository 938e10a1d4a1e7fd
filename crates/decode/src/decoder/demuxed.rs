//! Frames of containers read through FFmpeg's demuxer: seek to the start keyframe, then feed
//! the packets through the target, matched to the index by byte position (or dts).

use std::sync::Arc;

use ffmpeg_next::{ffi, frame};

use super::{Attempt, check_deadline, finish_attempt, make_catcher, packet_for};
use crate::avio::{Demuxer, KnownBytes};
use crate::error::{Error, Result, av_error_string};
use crate::index::{MovieIndex, Sample};
use crate::limits::Limits;
use crate::mp4_boxes::{self, FragmentReading};
use crate::source::ByteSource;

/// Other containers: seek the demuxer to the start keyframe, then feed its packets through the
/// target. Packets are matched to index samples by byte position (or dts when unknown).
pub(super) fn decode(attempt: &Attempt<'_>, start: usize) -> Result<Option<frame::Video>> {
    let Attempt {
        source,
        index,
        target,
        target_pts,
        limits,
        deadline,
    } = *attempt;
    let stream_index = index.stream_index;
    let mut demuxer = open_stream(source, index, limits)?;
    let ctx = demuxer.ctx();
    let wanted = index
        .samples
        .get(start..=target)
        .ok_or_else(|| Error::BadIndex("a frame outside the index".into()))?;
    let Some(&key_sample) = wanted.first() else {
        return Ok(None);
    };
    let seek_ts = key_sample.pts.min(key_sample.dts);
    // SAFETY: as above.
    let sought =
        unsafe { ffi::avformat_seek_file(ctx, stream_index, i64::MIN, seek_ts, seek_ts, 0) };
    if sought < 0 {
        demuxer = open_stream(source, index, limits)?;
    }
    let mut catcher = make_catcher(index, target_pts, limits)?;
    let mut next = 0; // position in `wanted` of the next packet to feed
    let mut rewound = sought < 0 || start == 0;
    let mut packet = ffmpeg_next::Packet::empty();
    let mut read = 0usize;
    while next < wanted.len() {
        check_deadline(deadline, limits)?;
        // SAFETY: as above. av_read_frame overwrites the packet without freeing what it held:
        // unreference it first, or every packet read leaks its data.
        let ret = unsafe {
            let raw = ffmpeg_next::packet::Mut::as_mut_ptr(&mut packet);
            ffi::av_packet_unref(raw);
            ffi::av_read_frame(demuxer.ctx(), raw)
        };
        if ret < 0 {
            if let Some(e) = demuxer.take_io_error() {
                return Err(e);
            }
            if ret == ffi::AVERROR_EOF && next == 0 && !rewound {
                // The seek overshot the keyframe: read from the start instead.
                demuxer = open_stream(source, index, limits)?;
                rewound = true;
                continue;
            }
            return Err(Error::Decode(format!(
                "demuxing stopped early: {}",
                av_error_string(ret)
            )));
        }
        if packet.stream() as i32 != stream_index {
            continue;
        }
        read += 1;
        if read
            > limits
                .max_decode_packets
                .saturating_mul(4)
                .max(wanted.len() * 2)
            && next == 0
            && !rewound
        {
            demuxer = open_stream(source, index, limits)?;
            rewound = true;
            continue;
        }
        let is = |s: &Sample| {
            if s.pos >= 0 && packet.position() >= 0 {
                s.pos == packet.position() as i64
            } else {
                Some(s.dts) == packet.dts()
            }
        };
        let Some(expected) = wanted.get(next) else {
            break;
        };
        if next == 0 {
            if !is(expected) {
                let past = packet.dts().is_some_and(|d| d > expected.dts)
                    && packet.position() as i64 > expected.pos;
                if past && !rewound {
                    demuxer = open_stream(source, index, limits)?;
                    rewound = true;
                }
                continue;
            }
        } else if !is(expected) {
            return Err(Error::Source(crate::SourceError::new(
                crate::SourceErrorKind::Changed,
                "the movie's packets differ from its index",
            )));
        }
        let mut fed = packet_for(expected, packet.data().unwrap_or(&[]));
        fed.set_position(packet.position());
        catcher.feed(&fed)?;
        next += 1;
    }
    catcher.finish()?;
    finish_attempt(catcher)
}

/// A fresh demuxer at the start of the movie, reading only the indexed video stream.
pub(super) fn open_stream(
    source: &Arc<dyn ByteSource>,
    index: &MovieIndex,
    limits: &Limits,
) -> Result<Demuxer> {
    let mut demuxer = if index.timeline.is_some() && index.container.starts_with("mov") {
        // A fragmented MP4 indexed by its mfra: the head is checked again (the index may come
        // from a cache), and each fragment as the demuxer reaches it.
        let checked = mp4_boxes::check_movie(&**source, limits, FragmentReading::Head)?;
        let Some(fragments) = checked.fragments else {
            return Err(Error::Source(crate::SourceError::new(
                crate::SourceErrorKind::Changed,
                "the movie no longer lists its fragments as its index says",
            )));
        };
        Demuxer::open_fragmented(
            Arc::clone(source),
            checked.known,
            u64::MAX,
            limits.decode_timeout,
            fragments.gate,
        )?
    } else {
        Demuxer::open(
            Arc::clone(source),
            KnownBytes::default(),
            u64::MAX,
            limits.decode_timeout,
        )?
    };
    let ctx = demuxer.ctx();
    let stream_index = index.stream_index;
    // SAFETY: ctx is open and owned by `demuxer`; stream_index is checked against nb_streams.
    unsafe {
        if stream_index < 0 || stream_index as u32 >= (*ctx).nb_streams {
            return Err(Error::Source(crate::SourceError::new(
                crate::SourceErrorKind::Changed,
                "the movie's streams differ from its index",
            )));
        }
        for i in 0..(*ctx).nb_streams as usize {
            if i as i32 != stream_index {
                (**(*ctx).streams.add(i)).discard = ffi::AVDiscard::AVDISCARD_ALL;
            }
        }
    }
    Ok(demuxer)
}
