//! Warm decoding, one driver for every path: lease from the pool — a picture a kept decoder
//! produced answers at once —, else continue a kept decoder that reaches the frame or start one
//! cold, feed it until the target picture comes out (a few packets past it rather than a flush,
//! so the decoder stays usable), and keep it with its feed for the next frame. Range-read
//! samples (MOV/MP4) are fed here; a kept demuxer in `warm_demux.rs`.

use std::time::Instant;

use ffmpeg_next::frame;

use super::direct::read_samples;
use super::warm_pool::{Feed, Lease, Reach, Shown, Want, WarmPool, WarmState, state_bytes};
use super::{
    Attempt, DecodePath, FrameCatcher, check_deadline, keyframe_before, make_catcher, packet_for,
};
use crate::error::{Error, Result};
use crate::index::{MovieIndex, Sample};
use crate::limits::Limits;

/// Samples read past the target in the first read, so that the decoder's reordering and thread
/// delay usually release the target without a second request...
const LOOKAHEAD_SAMPLES: usize = 6;
/// ... as long as they are this small together (B/P pictures are; this keeps a cold frame within
/// its GOP span plus SPEC §4's 1 MiB).
const LOOKAHEAD_BYTES: u64 = 512 * 1024;
/// Sample bytes one decode holds at once, read but not yet fed (a cold start reads its GOP
/// prefix in parts of this size).
const MAX_HELD_BYTES: u64 = 32 * 1024 * 1024;

/// The driver: `want` through `pool`. A kept picture answers directly; else a kept state that
/// can continue (see `Want::can_continue`) is resumed — a kept demuxer takes this request's
/// deadline —, or `cold` starts one; `advance` feeds it until the target comes out, and the
/// state is kept afterwards (if still usable). `None` when `cold` could not start or the
/// decoder did not produce the frame: the caller falls back to its cold decode.
pub(super) fn through_pool(
    pool: &WarmPool,
    want: Want,
    deadline: Instant,
    cold: impl FnOnce() -> Result<Option<WarmState>>,
    advance: impl FnOnce(&mut WarmState) -> Result<Option<frame::Video>>,
) -> Result<Option<(frame::Video, DecodePath)>> {
    let mut checkout = match pool.lease(want, deadline)? {
        Lease::Picture(picture) => return Ok(Some((picture, DecodePath::Kept))),
        Lease::Decode(checkout) => *checkout,
    };
    let (mut state, path) = match checkout.state.take() {
        Some(mut state) => {
            state.catcher.aim(want.target_pts);
            if let Feed::Demux(demux) = &mut state.feed {
                demux.resume(deadline);
            }
            (state, DecodePath::Continued)
        }
        None => match cold()? {
            Some(state) => (state, DecodePath::Cold),
            None => return Ok(None),
        },
    };
    let found = advance(&mut state)?;
    if found.is_some() {
        if let Feed::Demux(demux) = &mut state.feed {
            demux.tidy();
        }
        state.cold = false;
        checkout.give_back(state);
    }
    Ok(found.map(|frame| (frame, path)))
}

/// A fresh warm state: a decoder that remembers what it shows, aimed at `target_pts`.
pub(super) fn fresh_state(
    index: &MovieIndex,
    limits: &Limits,
    target_pts: i64,
    tolerance: i64,
    feed: Feed,
) -> Result<WarmState> {
    let mut catcher: FrameCatcher = make_catcher(index, target_pts, limits)?;
    catcher.shown = Some(Shown::default());
    catcher.tolerance = tolerance;
    Ok(WarmState {
        catcher,
        feed,
        reusable: true,
        cold: true,
        decoder_bytes: state_bytes(
            &index.codec.codec,
            picture_bytes(index),
            limits.decoder_threads,
        ),
    })
}

/// Frame `attempt.target` of a MOV/MP4 (range-read samples) through `pool`. `None` when the
/// decoder did not produce it (the caller falls back to cold decodes from earlier keyframes).
pub(super) fn decode(
    attempt: &Attempt<'_>,
    pool: &WarmPool,
    movie: u64,
    order_pos: usize,
) -> Result<Option<(frame::Video, DecodePath)>> {
    let Attempt {
        index,
        target,
        target_pts,
        limits,
        deadline,
        ..
    } = *attempt;
    let cold_start = keyframe_before(&index.samples, target, target_pts);
    let want = Want {
        movie,
        target_pts,
        tolerance: 0,
        order_pos,
        reach: Reach::Samples { target, cold_start },
    };
    let feed = || Feed::Samples {
        next: cold_start,
        pending: Default::default(),
    };
    through_pool(
        pool,
        want,
        deadline,
        || fresh_state(index, limits, target_pts, 0, feed()).map(Some),
        |state| advance(attempt, state),
    )
}

/// Feeds `state` a sample at a time until the target comes out, reading ahead in runs (the
/// target plus a lookahead, so the pictures the decoder holds back for reordering come out
/// without another request); samples read but not needed yet stay with the state. At the end of
/// the movie the decoder is flushed (and not kept).
fn advance(attempt: &Attempt<'_>, state: &mut WarmState) -> Result<Option<frame::Video>> {
    let Attempt {
        source,
        index,
        target,
        target_pts,
        limits,
        deadline,
    } = *attempt;
    let samples = &index.samples;
    let WarmState {
        catcher,
        feed,
        reusable,
        ..
    } = state;
    let Feed::Samples { next, pending } = feed else {
        return Err(Error::Decode("a warm state fed by another path".into()));
    };
    let first_feed = *next;
    while catcher.found.is_none() {
        let shown_past = catcher.shown.as_ref().and_then(Shown::last_pts);
        if shown_past.is_some_and(|pts| pts > target_pts) {
            // Pictures come out in pts order: the target was skipped (a leading picture of an
            // open GOP) and will not come.
            return Ok(None);
        }
        if let Some(data) = pending.pop_front() {
            let sample = samples
                .get(*next)
                .ok_or_else(|| Error::BadIndex("a frame outside the index".into()))?;
            catcher.feed(&packet_for(sample, &data))?;
            *next += 1;
            continue;
        }
        check_deadline(deadline, limits)?;
        let next_gop = samples
            .get(*next)
            .is_some_and(|sample| sample.keyframe && *next > target);
        if *next >= samples.len() || next_gop {
            // The end of the movie, or of the target's GOP: what the decoder still holds back
            // needs no later packet (the next GOP's pictures are all shown after the target), so
            // flush rather than read the next keyframe; the next frame starts cold from it
            // anyway.
            *reusable = false;
            catcher.finish()?;
            break;
        }
        if *next - first_feed >= limits.max_decode_packets + LOOKAHEAD_SAMPLES {
            return Err(Error::Decode(format!(
                "frame needs more than {} packets decoded",
                limits.max_decode_packets
            )));
        }
        let end = held_end(samples, *next, lookahead_end(samples, target.max(*next)));
        let run = samples
            .get(*next..=end)
            .ok_or_else(|| Error::BadIndex("a frame outside the index".into()))?;
        *pending = read_samples(source, run, deadline, limits)?.into();
    }
    Ok(catcher.found.take())
}

/// The last sample of `from..=end` whose bytes, read ahead and held until fed, stay within
/// [`MAX_HELD_BYTES`] (at least `from` itself): a long GOP is read in parts, never whole.
fn held_end(samples: &[Sample], from: usize, end: usize) -> usize {
    let mut held = 0u64;
    for (i, sample) in samples.iter().enumerate().take(end + 1).skip(from) {
        held += u64::from(sample.size);
        if held > MAX_HELD_BYTES && i > from {
            return i - 1;
        }
    }
    end
}

/// The last sample to read with `target`: up to [`LOOKAHEAD_SAMPLES`] more, within
/// [`LOOKAHEAD_BYTES`], and never the next GOP's keyframe.
fn lookahead_end(samples: &[Sample], target: usize) -> usize {
    let mut end = target;
    let mut bytes = 0u64;
    for (i, sample) in samples
        .iter()
        .enumerate()
        .skip(target + 1)
        .take(LOOKAHEAD_SAMPLES)
    {
        bytes += u64::from(sample.size);
        if bytes > LOOKAHEAD_BYTES || sample.keyframe {
            break;
        }
        end = i;
    }
    end
}

/// Bytes of one decoded picture of this stream (8-bit 4:2:0 counted as 1.5 bytes a pixel,
/// deeper or fuller formats at up to 8).
pub(super) fn picture_bytes(index: &MovieIndex) -> u64 {
    let pixels = u64::from(index.codec.width.max(0).unsigned_abs())
        * u64::from(index.codec.height.max(0).unsigned_abs());
    let per_pixel_x2: u64 = match index.codec.pixel_format.as_str() {
        "yuv420p" | "yuvj420p" | "nv12" => 3,
        "yuv422p" | "yuvj422p" => 4,
        "yuv420p10le" | "yuv444p" | "yuvj444p" => 6,
        "yuv422p10le" => 8,
        _ => 16,
    };
    pixels * per_pixel_x2 / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(size: u32, keyframe: bool) -> Sample {
        Sample {
            pos: 0,
            size,
            pts: 0,
            dts: 0,
            keyframe,
            discard: false,
        }
    }

    #[test]
    fn a_long_gop_is_read_in_parts_and_the_lookahead_stops_at_the_next_keyframe() {
        let mb = 1024 * 1024;
        let mut samples = vec![sample(10 * mb, true)];
        samples.extend((0..9).map(|_| sample(10 * mb, false)));
        // 32 MiB at a time: three 10 MiB samples, but never fewer than one.
        assert_eq!(held_end(&samples, 0, 9), 2);
        assert_eq!(held_end(&samples, 3, 9), 5);
        let huge = [sample(40 * mb, true), sample(1, false)];
        assert_eq!(held_end(&huge, 0, 1), 0);
        // Small pictures after the target, up to the next keyframe.
        let gop = [
            sample(1000, true),
            sample(10, false),
            sample(10, false),
            sample(1000, true),
            sample(10, false),
        ];
        assert_eq!(lookahead_end(&gop, 0), 2);
        assert_eq!(lookahead_end(&gop, 3), 4);
    }
}
