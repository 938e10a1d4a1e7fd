//! Fragmented MP4's own index of its fragments — the `mfra` box's `tfra` tables, found from the
//! `mfro` box that ends the file — and what one `moof` says about a track's samples, so that a
//! movie's frames are numbered without reading every fragment (`mp4_boxes.rs` reads and checks
//! the boxes; this module only parses bytes already read, and never panics on any input).

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::mp4_boxes::{be32, be64};

/// The `mfro` box that ends a file carrying an `mfra`: size, type, version and flags, the
/// `mfra`'s size.
pub(crate) const MFRO_BYTES: u64 = 16;
/// `trun` and `tfhd` flags (ISO/IEC 14496-12 §8.8).
const TRUN_DATA_OFFSET: u32 = 0x1;
const TRUN_FIRST_SAMPLE_FLAGS: u32 = 0x4;
const TRUN_DURATION: u32 = 0x100;
const TRUN_SIZE: u32 = 0x200;
const TRUN_FLAGS: u32 = 0x400;
const TRUN_CTS: u32 = 0x800;
const TFHD_BASE_DATA_OFFSET: u32 = 0x1;
const TFHD_DESCRIPTION_INDEX: u32 = 0x2;
const TFHD_DURATION: u32 = 0x8;
const TFHD_SIZE: u32 = 0x10;
const TFHD_FLAGS: u32 = 0x20;
/// Sample flags FFmpeg reads as "not a keyframe" (`MOV_FRAG_SAMPLE_FLAG_IS_NON_SYNC`,
/// `MOV_FRAG_SAMPLE_FLAG_DEPENDS_YES`).
const NON_SYNC: u32 = 0x0001_0000 | 0x0100_0000;

/// One `tfra` entry: a fragment's first presentation time (the track's time scale) and the
/// byte offset of its `moof`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FragmentEntry {
    pub time: i64,
    pub offset: u64,
}

/// A track's `tfra` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RandomAccess {
    pub track_id: u32,
    pub entries: Vec<FragmentEntry>,
}

/// The `mfra` size the last four bytes of a file declare (its `mfro`), as FFmpeg reads it.
pub(crate) fn mfra_size(tail: &[u8]) -> Option<u64> {
    let at = tail.len().checked_sub(4)?;
    let size = u64::from(be32(tail, at)?);
    (size >= 8 + MFRO_BYTES).then_some(size)
}

/// The `tfra` tables of an `mfra` box (`mfra` is the whole box, from its header to the end of
/// the file). FFmpeg reads `tfra` children until the first other box; so does this. Refused
/// (`NotAMovie`): a box whose sizes do not add up, a table with more entries than its box holds
/// or than `max_entries` in all, offsets outside the file or not strictly increasing (FFmpeg
/// would seek back and forth through them), times not strictly increasing, two tables for
/// one track.
pub(crate) fn parse_mfra(
    mfra: &[u8],
    file_size: u64,
    max_entries: u64,
) -> Result<Vec<RandomAccess>> {
    let bad = |what: String| Error::NotAMovie(format!("its mfra box {what}"));
    if be32(mfra, 0).map(u64::from) != Some(mfra.len() as u64) || mfra.get(4..8) != Some(b"mfra") {
        return Err(bad("does not match the size its mfro box gives".into()));
    }
    let mut tables: Vec<RandomAccess> = Vec::new();
    let mut total = 0u64;
    let mut at = 8usize;
    while let (Some(size), Some(kind)) = (be32(mfra, at), mfra.get(at + 4..at + 8)) {
        if kind != b"tfra" {
            break;
        }
        let end = usize::try_from(size)
            .ok()
            .filter(|&s| s >= 8)
            .and_then(|s| at.checked_add(s))
            .filter(|&end| end <= mfra.len())
            .ok_or_else(|| bad(format!("has a tfra box of {size} bytes")))?;
        let table = parse_tfra(mfra.get(at + 8..end).unwrap_or_default(), file_size)
            .map_err(|why| bad(format!("has a tfra box that {why}")))?;
        total = total.saturating_add(table.entries.len() as u64);
        if total > max_entries {
            return Err(Error::IndexTooLarge(format!(
                "its mfra box lists more than {max_entries} fragments"
            )));
        }
        if tables.iter().any(|t| t.track_id == table.track_id) {
            return Err(bad(format!(
                "has two tfra boxes for track {}",
                table.track_id
            )));
        }
        tables.push(table);
        at = end;
    }
    Ok(tables)
}

/// A `tfra` payload (after its 8-byte header), or why it is refused.
fn parse_tfra(body: &[u8], file_size: u64) -> std::result::Result<RandomAccess, String> {
    let version = *body.first().ok_or("is empty")?;
    let (Some(track_id), Some(sizes), Some(count)) = (be32(body, 4), be32(body, 8), be32(body, 12))
    else {
        return Err("is too short for its fields".into());
    };
    let time_width = if version == 1 { 16 } else { 8 };
    let number_widths = [(sizes >> 4) & 3, (sizes >> 2) & 3, sizes & 3].map(|w| w as usize + 1);
    let width = time_width + number_widths.iter().sum::<usize>();
    let room = body.len().saturating_sub(16);
    if (count as usize).checked_mul(width).is_none_or(|b| b > room) {
        return Err(format!(
            "declares {count} entries of {width} bytes in {room} bytes"
        ));
    }
    let mut entries: Vec<FragmentEntry> = Vec::with_capacity(count as usize);
    for row in body
        .get(16..)
        .unwrap_or_default()
        .chunks_exact(width)
        .take(count as usize)
    {
        let (time, offset) = if version == 1 {
            (
                be64(row, 0).unwrap_or(u64::MAX),
                be64(row, 8).unwrap_or(u64::MAX),
            )
        } else {
            (
                u64::from(be32(row, 0).unwrap_or(0)),
                u64::from(be32(row, 4).unwrap_or(0)),
            )
        };
        let time = i64::try_from(time).map_err(|_| format!("has a time of {time}"))?;
        if offset.checked_add(8).is_none_or(|end| end > file_size) {
            return Err(format!("points at byte {offset}, past the end of the file"));
        }
        if let Some(last) = entries.last()
            && (offset <= last.offset || time <= last.time)
        {
            return Err(format!(
                "lists fragments out of order (byte {offset} at time {time} after byte {} at \
                 time {})",
                last.offset, last.time
            ));
        }
        entries.push(FragmentEntry { time, offset });
    }
    Ok(RandomAccess { track_id, entries })
}

/// A track's defaults from its `trex` box, which a fragment's `tfhd` and `trun` override.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TrackDefaults {
    pub duration: u32,
    pub size: u32,
    pub flags: u32,
}

/// What one `moof` says about one track's samples (its `traf`s, in order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FragmentSamples {
    pub samples: u64,
    /// Every sample's duration, when they are all the same.
    pub uniform_duration: Option<u32>,
    /// The first sample (in decode order) is a keyframe, as FFmpeg judges its flags.
    pub starts_with_keyframe: bool,
    /// The samples' presentation times relative to the first sample's: the decode time so far
    /// plus the composition offset, minus the first sample's offset.
    pub shown_offsets: Vec<i64>,
    /// The first sample's composition offset.
    pub first_cts: Option<i64>,
}

impl FragmentSamples {
    /// The samples are shown one every `duration`, from the first sample's time on: the
    /// fragment is `samples` frames of a constant-rate stream, starting with its keyframe.
    pub fn on_grid(&self, duration: u32) -> bool {
        let mut shown = self.shown_offsets.clone();
        shown.sort_unstable();
        self.samples > 0
            && self.starts_with_keyframe
            && self.uniform_duration == Some(duration)
            && shown
                .iter()
                .zip(0i64..)
                .all(|(&t, i)| i.checked_mul(i64::from(duration)) == Some(t))
    }
}

/// The samples of track `track_id` in a `moof`'s payload (the box already checked by
/// `mp4_boxes.rs`: every declared count fits in its box, so the loops here are bounded by it).
pub(crate) fn fragment_samples(
    moof: &[u8],
    track_id: u32,
    trex: &HashMap<u32, TrackDefaults>,
) -> FragmentSamples {
    let mut found = FragmentSamples::default();
    let mut durations: Option<Option<u32>> = None;
    let mut decode_time = 0i64;
    let mut first_cts: Option<i64> = None;
    for traf in boxes(moof).filter(|(kind, _)| kind == b"traf") {
        let mut defaults = None;
        for (kind, body) in boxes(traf.1) {
            match &kind {
                b"tfhd" => defaults = track_fragment_defaults(body, trex),
                b"trun" => {
                    let Some((_, d)) = defaults.filter(|(id, _)| *id == track_id) else {
                        continue;
                    };
                    for sample in run_samples(body, &d) {
                        if found.samples == 0 {
                            found.starts_with_keyframe = sample.flags & NON_SYNC == 0;
                        }
                        found.samples += 1;
                        durations = Some(match durations {
                            None => Some(sample.duration),
                            Some(same) => same.filter(|&d| d == sample.duration),
                        });
                        let cts = i64::from(sample.cts);
                        let first = *first_cts.get_or_insert(cts);
                        found
                            .shown_offsets
                            .push(decode_time.saturating_add(cts).saturating_sub(first));
                        decode_time = decode_time.saturating_add(i64::from(sample.duration));
                    }
                }
                _ => {}
            }
        }
    }
    found.uniform_duration = durations.flatten();
    found.first_cts = first_cts;
    found
}

/// A `tfhd`'s track id and the defaults it sets over the track's `trex`.
fn track_fragment_defaults(
    body: &[u8],
    trex: &HashMap<u32, TrackDefaults>,
) -> Option<(u32, TrackDefaults)> {
    let flags = be32(body, 0)? & 0x00ff_ffff;
    let track_id = be32(body, 4)?;
    let mut d = trex.get(&track_id).copied().unwrap_or_default();
    let mut at = 8usize;
    for (flag, width) in [
        (TFHD_BASE_DATA_OFFSET, 8),
        (TFHD_DESCRIPTION_INDEX, 4),
        (TFHD_DURATION, 4),
        (TFHD_SIZE, 4),
        (TFHD_FLAGS, 4),
    ] {
        if flags & flag != 0 {
            let value = be32(body, at);
            match flag {
                TFHD_DURATION => d.duration = value?,
                TFHD_SIZE => d.size = value?,
                TFHD_FLAGS => d.flags = value?,
                _ => {}
            }
            at += width;
        }
    }
    Some((track_id, d))
}

struct RunSample {
    duration: u32,
    flags: u32,
    /// Composition offset: unsigned in version 0, signed in version 1 (FFmpeg reads it signed).
    cts: i32,
}

/// The samples of a `trun` (as many as fit in it).
fn run_samples<'a>(body: &'a [u8], d: &TrackDefaults) -> impl Iterator<Item = RunSample> + 'a {
    let flags = be32(body, 0).unwrap_or(0) & 0x00ff_ffff;
    let count = be32(body, 4).unwrap_or(0);
    let mut at = 8usize;
    if flags & TRUN_DATA_OFFSET != 0 {
        at += 4;
    }
    let first_flags = if flags & TRUN_FIRST_SAMPLE_FLAGS != 0 {
        at += 4;
        be32(body, at - 4)
    } else {
        None
    };
    let fields = [TRUN_DURATION, TRUN_SIZE, TRUN_FLAGS, TRUN_CTS];
    let width = fields.iter().filter(|&&f| flags & f != 0).count() * 4;
    let defaults = *d;
    let rows = body.get(at..).unwrap_or_default();
    // Without per-sample fields every sample takes the defaults (`mp4_boxes.rs` capped the
    // count at `max_samples`).
    let take = rows
        .len()
        .checked_div(width)
        .map_or(count as usize, |fit| (count as usize).min(fit));
    (0..take).map(move |i| {
        let row = rows.get(i * width..).unwrap_or_default();
        let mut field = 0usize;
        let mut next = |flag: u32| {
            (flags & flag != 0).then(|| {
                field += 4;
                be32(row, field - 4).unwrap_or(0)
            })
        };
        let duration = next(TRUN_DURATION).unwrap_or(defaults.duration);
        let _size = next(TRUN_SIZE);
        let own_flags = next(TRUN_FLAGS);
        let cts = next(TRUN_CTS).unwrap_or(0) as i32;
        let flags = match (i, first_flags, own_flags) {
            (0, Some(first), _) => first,
            (_, _, Some(own)) => own,
            _ => defaults.flags,
        };
        RunSample {
            duration,
            flags,
            cts,
        }
    })
}

/// The boxes of a payload (32-bit sizes, as FFmpeg's muxer writes inside a `moof`), stopping at
/// the first bad size.
fn boxes(data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let size = usize::try_from(be32(data, at)?).ok()?;
        let kind: [u8; 4] = data.get(at + 4..at + 8)?.try_into().ok()?;
        let end = at
            .checked_add(size)
            .filter(|&e| size >= 8 && e <= data.len())?;
        let body = data.get(at + 8..end)?;
        at = end;
        Some((kind, body))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn tfra(version: u8, track: u32, rows: &[(u64, u64)], count: u32) -> Vec<u8> {
        let mut body = vec![version, 0, 0, 0];
        for v in [track, 0, count] {
            body.extend_from_slice(&v.to_be_bytes());
        }
        for &(time, offset) in rows {
            if version == 1 {
                body.extend_from_slice(&time.to_be_bytes());
                body.extend_from_slice(&offset.to_be_bytes());
            } else {
                body.extend_from_slice(&(time as u32).to_be_bytes());
                body.extend_from_slice(&(offset as u32).to_be_bytes());
            }
            body.extend_from_slice(&[1, 1, 1]);
        }
        boxed(b"tfra", &body)
    }

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    fn mfra(children: &[Vec<u8>]) -> Vec<u8> {
        let mut body = children.concat();
        let total = (body.len() + 8 + 16) as u32;
        body.extend_from_slice(&boxed(
            b"mfro",
            &[&[0u8; 4][..], &total.to_be_bytes()].concat(),
        ));
        boxed(b"mfra", &body)
    }

    #[test]
    fn an_mfra_lists_each_track_s_fragments() {
        let m = mfra(&[tfra(1, 1, &[(1280, 773), (17280, 5000)], 2)]);
        assert_eq!(mfra_size(&m), Some(m.len() as u64));
        let tables = parse_mfra(&m, 10_000, 100).unwrap();
        assert_eq!(tables.len(), 1);
        assert_eq!(tables[0].track_id, 1);
        assert_eq!(
            tables[0].entries,
            vec![
                FragmentEntry {
                    time: 1280,
                    offset: 773
                },
                FragmentEntry {
                    time: 17280,
                    offset: 5000
                }
            ]
        );
        let v0 = mfra(&[tfra(0, 2, &[(0, 100)], 1)]);
        assert_eq!(parse_mfra(&v0, 10_000, 100).unwrap()[0].entries.len(), 1);
    }

    #[test]
    fn hostile_mfra_boxes_are_refused() {
        let refused = |m: Vec<u8>| {
            let err = parse_mfra(&m, 10_000, 100).unwrap_err();
            assert!(
                matches!(err, Error::NotAMovie(_) | Error::IndexTooLarge(_)),
                "{err}"
            );
        };
        // More entries than the box holds.
        refused(mfra(&[tfra(1, 1, &[(0, 100)], 4_000_000_000)]));
        // Past the end of the file.
        refused(mfra(&[tfra(1, 1, &[(0, 100), (10, 9_999)], 2)]));
        refused(mfra(&[tfra(1, 1, &[(0, u64::MAX)], 1)]));
        // Loops: offsets or times that do not increase.
        refused(mfra(&[tfra(1, 1, &[(0, 500), (10, 100)], 2)]));
        refused(mfra(&[tfra(1, 1, &[(0, 100), (0, 500)], 2)]));
        refused(mfra(&[tfra(1, 1, &[(u64::MAX, 100)], 1)]));
        // Two tables for a track; over the cap.
        let t = tfra(1, 1, &[(0, 100)], 1);
        refused(mfra(&[t.clone(), t]));
        let many: Vec<(u64, u64)> = (0..101).map(|i| (i, 100 + i)).collect();
        refused(mfra(&[tfra(1, 1, &many, 101)]));
        // A tfra whose size is 0 (FFmpeg would read it again and again) or past the mfra.
        let mut zero = mfra(&[tfra(1, 1, &[(0, 100)], 1)]);
        zero[8..12].copy_from_slice(&0u32.to_be_bytes());
        refused(zero);
        let mut long = mfra(&[tfra(1, 1, &[(0, 100)], 1)]);
        long[8..12].copy_from_slice(&1000u32.to_be_bytes());
        refused(long);
        // Sizes that disagree with the mfro's.
        let mut m = mfra(&[tfra(1, 1, &[(0, 100)], 1)]);
        m[3] ^= 1;
        refused(m);
        // Nothing here panics, whatever the bytes.
        let m = mfra(&[tfra(1, 1, &[(0, 100), (640, 200), (1280, 300)], 3)]);
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..5000 {
            let mut bad = m.clone();
            for _ in 0..3 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let i = (state % bad.len() as u64) as usize;
                bad[i] = (state >> 32) as u8;
            }
            let _ = mfra_size(&bad);
            let _ = parse_mfra(&bad, 10_000, 100);
            let _ = fragment_samples(&bad, 1, &HashMap::new());
        }
    }

    /// A moof with one traf for track 1: `cts` per sample, durations from the tfhd.
    fn moof(duration: u32, cts: &[u32], first_flags: u32) -> Vec<u8> {
        let mut tfhd = vec![0, 0, 0, 0x28];
        for v in [1, duration, 0x0101_0000] {
            tfhd.extend_from_slice(&u32::to_be_bytes(v));
        }
        let mut trun = vec![0, 0, 0x08, 0x04];
        trun.extend_from_slice(&(cts.len() as u32).to_be_bytes());
        trun.extend_from_slice(&first_flags.to_be_bytes());
        for c in cts {
            trun.extend_from_slice(&c.to_be_bytes());
        }
        boxed(
            b"traf",
            &[boxed(b"tfhd", &tfhd), boxed(b"trun", &trun)].concat(),
        )
    }

    #[test]
    fn a_fragment_is_on_the_grid_when_its_frames_are() {
        // I P B B in decode order, shown I B B P.
        let on = fragment_samples(&moof(640, &[1280, 2560, 640, 640], 0), 1, &HashMap::new());
        assert_eq!(on.samples, 4);
        assert!(on.on_grid(640), "{on:?}");
        assert!(!on.on_grid(641));
        // Not starting with a keyframe.
        let off = fragment_samples(
            &moof(640, &[1280, 2560, 640, 640], 0x0101_0000),
            1,
            &HashMap::new(),
        );
        assert!(!off.on_grid(640));
        // A hole in the shown times.
        let off = fragment_samples(&moof(640, &[1280, 3200, 640, 640], 0), 1, &HashMap::new());
        assert!(!off.on_grid(640));
        // Another track's samples do not count.
        assert_eq!(
            fragment_samples(&moof(640, &[0], 0), 2, &HashMap::new()).samples,
            0
        );
    }
}
