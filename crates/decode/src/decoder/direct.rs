//! MOV/MP4 frames without a demuxer: the samples from the keyframe to the target, read by byte
//! range (neighbours merged into one request) and fed straight to the decoder.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ffmpeg_next::frame;

use super::{Attempt, FrameCatcher, check_deadline, finish_attempt, make_catcher, packet_for};
use crate::error::{Error, Result};
use crate::index::Sample;
use crate::limits::Limits;
use crate::source::ByteSource;

/// Two samples closer than this are fetched in one read.
const MERGE_GAP: u64 = 64 * 1024;
/// One read never spans more than this.
const MAX_READ_SPAN: u64 = 32 * 1024 * 1024;

/// MOV/MP4: read samples `start..=target` by byte range (merging neighbours) and decode them.
pub(super) fn decode(attempt: &Attempt<'_>, start: usize) -> Result<Option<frame::Video>> {
    let Attempt {
        source,
        index,
        target,
        target_pts,
        limits,
        deadline,
    } = *attempt;
    let mut catcher = make_catcher(index, target_pts, limits)?;
    let samples = index
        .samples
        .get(start..=target)
        .ok_or_else(outside_the_file)?;
    feed_samples(source, samples, &mut catcher, deadline, limits)?;
    catcher.finish()?;
    finish_attempt(catcher)
}

/// One keyframe decoded by itself (its picture refers to no other): for what the decoder makes
/// of the stream (its pixel format) where there is no sample table to decode frame 1 from (a
/// fragmented MP4 read by its `mfra`). One range read.
pub(crate) fn decode_keyframe(
    source: &Arc<dyn ByteSource>,
    index: &crate::index::MovieIndex,
    key: &Sample,
    limits: &Limits,
) -> Result<frame::Video> {
    let deadline = crate::deadline::or_from_now(limits.decode_timeout);
    let mut catcher = make_catcher(index, key.pts, limits)?;
    feed_samples(
        source,
        std::slice::from_ref(key),
        &mut catcher,
        deadline,
        limits,
    )?;
    catcher.finish()?;
    finish_attempt(catcher)?
        .ok_or_else(|| Error::Decode("the first keyframe did not decode".into()))
}

fn outside_the_file() -> Error {
    Error::BadIndex("a sample lies outside the file".into())
}

/// Reads `samples` (consecutive, decode order) with as few range reads as their layout allows
/// and feeds each to `catcher`.
pub(super) fn feed_samples(
    source: &Arc<dyn ByteSource>,
    samples: &[Sample],
    catcher: &mut FrameCatcher,
    deadline: Instant,
    limits: &Limits,
) -> Result<()> {
    for span in read_spans(samples) {
        check_deadline(deadline, limits)?;
        let run = samples.get(span).unwrap_or_default();
        for (sample, data) in run.iter().zip(read_run(source, run)?) {
            catcher.feed(&packet_for(sample, &data))?;
        }
    }
    Ok(())
}

/// Reads `samples` like [`feed_samples`], returning each one's bytes (slices of the reads).
pub(crate) fn read_samples(
    source: &Arc<dyn ByteSource>,
    samples: &[Sample],
    deadline: Instant,
    limits: &Limits,
) -> Result<Vec<Bytes>> {
    let mut data = Vec::with_capacity(samples.len());
    for span in read_spans(samples) {
        check_deadline(deadline, limits)?;
        data.extend(read_run(source, samples.get(span).unwrap_or_default())?);
    }
    Ok(data)
}

/// One range read covering `run` (samples close together), cut into the samples' bytes.
fn read_run(source: &Arc<dyn ByteSource>, run: &[Sample]) -> Result<Vec<Bytes>> {
    let (Some(first), Some(last)) = (run.first(), run.last()) else {
        return Ok(Vec::new());
    };
    let offset = u64::try_from(first.pos).map_err(|_| outside_the_file())?;
    let len = u64::try_from(last.pos)
        .ok()
        .and_then(|pos| pos.checked_add(u64::from(last.size)))
        .and_then(|end| end.checked_sub(offset))
        .and_then(|len| usize::try_from(len).ok())
        .ok_or_else(outside_the_file)?;
    let bytes = source.read_at(offset, len)?;
    if bytes.len() < len {
        return Err(Error::Truncated(format!(
            "the file ends inside the sample at byte {offset}"
        )));
    }
    run.iter()
        .map(|sample| {
            let from = u64::try_from(sample.pos)
                .ok()
                .and_then(|pos| usize::try_from(pos.checked_sub(offset)?).ok())
                .ok_or_else(outside_the_file)?;
            let to = from
                .checked_add(sample.size as usize)
                .filter(|to| *to <= bytes.len())
                .ok_or_else(outside_the_file)?;
            Ok(bytes.slice(from..to))
        })
        .collect()
}

/// Groups consecutive samples into ranges of `samples` read with one request each.
fn read_spans(samples: &[Sample]) -> Vec<std::ops::Range<usize>> {
    let mut spans = Vec::new();
    let mut begin = 0;
    let pos = |s: &Sample| u64::try_from(s.pos).unwrap_or(0);
    let end = |s: &Sample| pos(s).saturating_add(u64::from(s.size));
    for i in 1..=samples.len() {
        let split = match (samples.get(i - 1), samples.get(i), samples.get(begin)) {
            (Some(prev), Some(next), Some(first)) => {
                pos(next) < end(prev)
                    || pos(next) - end(prev) > MERGE_GAP
                    || end(next).saturating_sub(pos(first)) > MAX_READ_SPAN
            }
            _ => true,
        };
        if split {
            spans.push(begin..i);
            begin = i;
        }
    }
    spans
}
