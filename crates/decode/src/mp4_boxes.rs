//! QuickTime/MP4 atoms, walked and checked by us before FFmpeg opens the file, so that a tiny
//! moov declaring millions of samples is refused before FFmpeg allocates a table for them.
//!
//! The walk reads the top-level atoms by their headers through the [`ByteSource`], reads each
//! movie atom (`moov`) and movie fragment (`moof`) whole, and follows FFmpeg's own reading of
//! atoms (libavformat/mov.c, `mov_read_default`): the same sizes (32-bit, 64-bit, 0 = to the
//! end of the parent, clamped to the parent, a bad size ends the parent), the same containers
//! and quirks (`meta`, `hoov`), and table atoms are checked wherever FFmpeg would parse them,
//! not only at trak/mdia/minf/stbl. Every declared count is compared with the file size, with
//! its atom's payload and with [`Limits::max_samples`]. The bytes read here are kept (up to
//! [`KEPT_INDEX_BYTES`]) and answer FFmpeg's reads of the same ranges, so the origin is asked
//! once. Nothing here panics on any input: all reads are `get`s and all arithmetic is checked.
//!
//! A large fragmented MP4 whose `mfra` (or a `sidx` to the end of the file) lists its fragments
//! is not walked whole: the head, that index and the last `moof` are read, and `FragmentGate`
//! checks every other `moof` when FFmpeg is about to read it (see `check_movie`).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::avio::KnownBytes;
use crate::error::{Error, Result};
use crate::fragments::{self, FragmentEntry, TrackDefaults};
use crate::limits::{KEPT_INDEX_BYTES, Limits};
use crate::source::ByteSource;

type FourCc = [u8; 4];

/// The parent of top-level atoms, as FFmpeg names it.
const ROOT: FourCc = *b"root";
/// Read at once at the start of the file: FFmpeg's first read is as large, and it holds the
/// leading atoms' headers of most files.
const FIRST_READ: u64 = 16 * 1024;
/// An atom's start: its header (64-bit size included) and FFmpeg's peek at its first child.
const HEAD: u64 = 16;
/// Read at an atom's start when its head is not known yet: a movie fragment's `moof` (a few
/// hundred bytes) and the next atom's head come with it, so a fragmented movie costs one read per
/// fragment, not two.
const HEAD_READ: u64 = 4 * 1024;
/// Past the first atoms, a file's rest up to this size is read at once where its head is not
/// known: after the `mdat` of a movie with its `moov` at the end (CamHD's layout: ~300 KB for
/// 25,000 frames), the moov comes in the same request as its header.
const REST_READ: u64 = 2 * 1024 * 1024;
/// Read at the end of a file for its `mfro` box and, in one request, the `mfra` before it
/// (64 fragments take 1.3 KB).
const TAIL_READ: u64 = 64 * 1024;
/// Nesting FFmpeg accepts below the top level ("Atoms too deeply nested" past it).
const MAX_DEPTH: usize = 10;
/// FFmpeg's `max_stts_delta`: larger sample durations are read as 1.
const STTS_DELTA_CLIP: u32 = u32::MAX - 48_000 * 10;
/// FFmpeg indexes a PCM-like sound track by chunk, at least this many samples per entry.
const MIN_SAMPLES_PER_CHUNK_ENTRY: u64 = 160;

/// Containers FFmpeg descends into wherever it meets them (its parse table's
/// `mov_read_default` entries, plus `moov`, `moof`, `trak`, `ilst` and `wave`, which end there).
const CONTAINERS: &[FourCc] = &[
    *b"moov", *b"trak", *b"mdia", *b"minf", *b"stbl", *b"dinf", *b"edts", *b"udta", *b"mvex",
    *b"moof", *b"traf", *b"tref", *b"sinf", *b"schi", *b"ilst", *b"wave",
];

/// Atoms checked by themselves (see `Checker::leaf`), and refused ones. They are also looked
/// for inside sample descriptions, whose layout depends on the codec: FFmpeg parses the atoms
/// after each description's fixed fields like any others, so a table hidden there counts too.
const LEAVES: &[FourCc] = &[
    *b"stsz", *b"stz2", *b"stts", *b"ctts", *b"stsc", *b"stco", *b"co64", *b"stss", *b"stps",
    *b"sbgp", *b"sgpd", *b"keys", *b"hdlr", *b"trex", *b"tfhd", *b"trun", *b"cmov", *b"senc",
    *b"sidx",
];

/// Atoms the walk reads: containers, checked leaves and the two with quirks.
fn is_checked(kind: &FourCc) -> bool {
    CONTAINERS.contains(kind) || LEAVES.contains(kind) || kind == b"meta" || kind == b"stsd"
}

/// How much of a fragmented MP4 [`check_movie`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FragmentReading {
    /// Every `moof` (small files, and files without a usable index of their fragments).
    Every,
    /// Where the file lists its fragments (an `mfra`, else a `sidx` to the end of the file) and
    /// the first and last fragments confirm a constant frame rate (the index build): the head,
    /// the tail (`mfro`, `mfra`) and the last `moof`.
    Indexed,
    /// The head and the tail only (a frame of a movie indexed that way): the fragments the
    /// demuxer reads later are checked as it reaches them (`FragmentGate`).
    Head,
}

/// What [`check_movie`] read: the bytes, for FFmpeg's reads of the same ranges, and the
/// fragments' index when the movie's `moof`s are left for later.
pub(crate) struct CheckedMovie {
    pub known: KnownBytes,
    pub fragments: Option<IndexedFragments>,
}

/// A fragmented MP4 whose fragments are listed by its `mfra` or `sidx` and numbered at a
/// constant frame rate: fragment `i` starts with a keyframe shown at `entries[i].time`, frame
/// `(time - entries[0].time) / frame_duration` (0-based).
pub(crate) struct IndexedFragments {
    /// The video track's id (FFmpeg's `AVStream::id`).
    pub track_id: u32,
    /// Each sample's duration, in the track's time scale.
    pub frame_duration: u32,
    pub entries: Vec<FragmentEntry>,
    /// The last fragment's samples (read for the index build only).
    pub last_samples: Option<u64>,
    /// Where the listed fragments end: the `mfra`, or the end of the file.
    pub listed_end: u64,
    /// Checks each fragment the demuxer reaches later.
    pub gate: FragmentGate,
}

impl IndexedFragments {
    /// Where the second fragment starts (where the fragments end when there is one).
    fn next_after_first(&self) -> u64 {
        self.entries.get(1).map_or(self.listed_end, |e| e.offset)
    }
}

/// Checks the movie atoms of `source` (a MOV/MP4) before FFmpeg opens it, and returns the bytes
/// read, for FFmpeg's reads of the same ranges.
pub(crate) fn check_movie(
    source: &dyn ByteSource,
    limits: &Limits,
    reading: FragmentReading,
) -> Result<CheckedMovie> {
    let file_size = source.len();
    let mut reader = Reader {
        source,
        known: KnownBytes::default(),
        cap: limits.max_index_bytes,
        deadline: crate::deadline::or_from_now(limits.decode_timeout),
        timeout: limits.decode_timeout,
    };
    let mut checker = Checker::new(file_size, limits.max_samples);
    reader.read(0, FIRST_READ.min(file_size))?;
    let mut pos = 0u64;
    let mut movies = 0usize;
    // 'free' atoms that hold a movie header: FFmpeg reads them as the moov when it found none.
    let mut retry = Vec::new();
    let mut fragments: Option<IndexedFragments> = None;
    let mut looked_for_index = reading == FragmentReading::Every;
    let mut segment_indexes = Vec::new();
    while pos.checked_add(8).is_some_and(|end| end <= file_size) {
        reader.check_deadline()?;
        if let Some(met) = checker.sidx_refs.get_mut(&pos) {
            *met = true;
        }
        let remaining = file_size - pos;
        let head = match reader.known.contiguous(pos, HEAD_READ as usize) {
            Some(known) if known.len() as u64 >= HEAD.min(remaining) => known,
            _ if pos > 0 && remaining <= REST_READ => reader.read(pos, remaining)?,
            _ => reader.read(pos, HEAD_READ.min(remaining))?,
        };
        let Some(header) = Header::parse(&head, remaining) else {
            break;
        };
        let total = header.total();
        match header.effective_kind(ROOT) {
            // Everything FFmpeg would parse at the top level (not mdat, free, …) is read whole.
            Some(kind) if is_checked(&kind) => {
                let atom = reader.read_atom(pos, total)?;
                checker.walk_body(&atom, pos, &header, kind)?;
                movies += usize::from(&kind == b"moov");
                if &kind == b"sidx" {
                    segment_indexes.push(pos);
                }
                if &kind == b"moof" && !looked_for_index && movies > 0 {
                    looked_for_index = true;
                    let body = atom.get(header.header as usize..).unwrap_or_default();
                    fragments =
                        indexed_fragments(&mut reader, &mut checker, pos, body, reading, limits)?;
                }
            }
            // FFmpeg, given the fragments' index, stops reading the top level at the first
            // `mdat` after the `moov`: so does this walk.
            _ if &header.kind == b"mdat" && fragments.is_some() => {
                // … and goes on from the atom after that `mdat` when it has shown the first
                // fragment's samples: the second listed fragment, or what ends the fragments.
                let next = pos.saturating_add(total);
                if fragments
                    .as_ref()
                    .is_some_and(|f| f.next_after_first() == next)
                {
                    break;
                }
                tracing::debug!("reading every fragment: the second is not after the first");
                fragments = None;
            }
            _ if &header.kind == b"free" && header.peeks_movie() => retry.push((pos, header)),
            _ => {}
        }
        // total ≤ remaining, so this stays inside the file.
        pos += total;
    }
    if movies == 0 {
        for (pos, header) in retry {
            let atom = reader.read_atom(pos, header.total())?;
            checker.walk_body(&atom, pos, &header, *b"moov")?;
            movies += 1;
        }
    }
    if movies == 0 {
        return Err(Error::NotAMovie("no moov atom found".into()));
    }
    // FFmpeg parses atoms from wherever a sidx says a fragment starts: only where this walk
    // met an atom, or at a listed fragment, which `FragmentGate` checks.
    for (&at, &met) in &checker.sidx_refs {
        let gated = fragments
            .as_ref()
            .is_some_and(|f| f.entries.binary_search_by_key(&at, |e| e.offset).is_ok());
        if !met && !gated {
            return Err(Error::NotAMovie(format!(
                "its sidx box lists a fragment at byte {at}, where no atom starts"
            )));
        }
    }
    if fragments.is_none() {
        // Every moof is read here, and FFmpeg must read them all too: a sidx that lists the
        // fragments to the end of the file would have it read the first only (its sample
        // table then disagrees with its packets). FFmpeg reads it as `free` instead.
        for at in segment_indexes {
            reader.known.overwrite(at + 4, b"free");
        }
    }
    Ok(CheckedMovie {
        known: reader.known,
        fragments,
    })
}

/// The fragments' index of a fragmented MP4 whose first `moof` (`first_body`, at `first_at`)
/// was just checked: its `mfra`, found from the `mfro` at the end of the file, or else its
/// `sidx`, when it lists the video track's fragments and they confirm a constant frame rate — the first fragment's
/// samples, every fragment's time on their grid and, for the index build, the last fragment's
/// samples. `None` (every `moof` is then walked, exactly) when there is no such index or the
/// fragments read do not confirm it; an error when the `mfra` or the last `moof` is hostile
/// (a hostile `sidx` was refused by the walk).
fn indexed_fragments(
    reader: &mut Reader<'_>,
    checker: &mut Checker,
    first_at: u64,
    first_body: &[u8],
    reading: FragmentReading,
    limits: &Limits,
) -> Result<Option<IndexedFragments>> {
    let file_size = reader.source.len();
    let not_indexed = |why: &str| {
        tracing::debug!("reading every fragment: {why}");
        Ok(None)
    };
    let [(track_id, timescale)] = checker.video_tracks[..] else {
        return not_indexed("not exactly one video track");
    };
    if checker.edit_lists {
        return not_indexed("the movie has an edit list");
    }
    let first_samples = fragments::fragment_samples(first_body, track_id, &checker.trex);
    let listed = match listed_in_mfra(reader, track_id, first_at, limits)? {
        Some((entries, mfra_at)) => Some((entries, None, mfra_at)),
        None => listed_in_sidx(checker, track_id, timescale, file_size)
            .zip(first_samples.first_cts)
            .map(|(entries, cts)| {
                // FFmpeg takes a sidx's times for the fragments' first decode times ("FIXME" in
                // mov_read_trun): the keyframe is shown its composition offset later.
                let shifted = entries
                    .into_iter()
                    .map(|e| FragmentEntry {
                        time: e.time.saturating_add(cts),
                        ..e
                    })
                    .collect();
                (shifted, Some(cts), file_size)
            }),
    };
    let Some((entries, first_cts, listed_end)) = listed else {
        return not_indexed("neither an mfra nor a sidx lists the video track's fragments");
    };
    let (Some(first), Some(last)) = (entries.first().copied(), entries.last().copied()) else {
        return not_indexed("the index lists no fragment");
    };
    if first.offset != first_at {
        return not_indexed("the index's first fragment is not the first moof");
    }
    let Some(frame_duration) = first_samples
        .uniform_duration
        .filter(|&d| d > 0 && first_samples.on_grid(d))
    else {
        return not_indexed("the first fragment is not shown at a constant frame rate");
    };
    let step = i64::from(frame_duration);
    if entries.iter().any(|e| (e.time - first.time) % step != 0) {
        return not_indexed("a fragment's time lies off the frame grid");
    }
    if let Some(second) = entries.get(1)
        && Some(second.time - first.time)
            != i64::try_from(first_samples.samples)
                .ok()
                .and_then(|n| n.checked_mul(step))
    {
        return not_indexed("the first fragment's samples do not reach the second's time");
    }
    let mut gate = FragmentGate {
        file_size,
        track_id,
        frame_duration,
        checked: entries
            .iter()
            .map(|e| {
                if e.offset == first_at {
                    Checked::Fine
                } else {
                    Checked::No
                }
            })
            .collect(),
        broken_from: u64::MAX,
        entries: entries.clone(),
        trex: checker.trex.clone(),
        max_samples: limits.max_samples,
        max_moof_bytes: limits.index_budget(file_size),
        last_samples: None,
        first_cts,
        listed_end,
    };
    let mut last_samples = None;
    if reading == FragmentReading::Indexed {
        let samples = if last.offset == first_at {
            first_samples.samples
        } else {
            let (bytes, samples) = gate.read_fragment(reader.source, entries.len() - 1)?;
            reader.known.fetched = reader.known.fetched.saturating_add(bytes.len() as u64);
            reader.known.insert(last.offset, bytes);
            match samples {
                Ok(samples) => samples,
                Err(why) => return not_indexed(&why),
            }
        };
        last_samples = Some(samples);
        gate.last_samples = last_samples;
    }
    Ok(Some(IndexedFragments {
        track_id,
        frame_duration,
        entries,
        last_samples,
        listed_end,
        gate,
    }))
}

/// The video track's fragments as the `mfra` lists them (found from the `mfro` that ends the
/// file), if it does; an error when it is hostile.
fn listed_in_mfra(
    reader: &mut Reader<'_>,
    track_id: u32,
    first_at: u64,
    limits: &Limits,
) -> Result<Option<(Vec<FragmentEntry>, u64)>> {
    let file_size = reader.source.len();
    let tail_len = TAIL_READ.min(file_size);
    let tail = reader.read(file_size - tail_len, tail_len)?;
    let Some(mfra_size) = fragments::mfra_size(&tail) else {
        return Ok(None);
    };
    let mfra_at = file_size.saturating_sub(mfra_size);
    if mfra_size > limits.index_budget(file_size) || mfra_at <= first_at {
        return Ok(None);
    }
    let mfra = reader.read(mfra_at, mfra_size)?;
    if mfra.get(4..8) != Some(b"mfra") {
        return Ok(None);
    }
    let max_entries = u64::try_from(limits.max_samples).unwrap_or(u64::MAX);
    let tables = fragments::parse_mfra(&mfra, mfra_at, max_entries)?;
    Ok(tables
        .into_iter()
        .find(|t| t.track_id == track_id)
        .map(|t| (t.entries, mfra_at)))
}

/// The video track's fragments as the one top-level `sidx` lists them (times as it gives
/// them), when it lists them to the end of the file — FFmpeg then reads a fragment's `moof`
/// only when it gets there — in the track's own time scale.
fn listed_in_sidx(
    checker: &Checker,
    track_id: u32,
    timescale: u32,
    file_size: u64,
) -> Option<Vec<FragmentEntry>> {
    let [(reference, scale, entries, end)] = &checker.segment_indexes[..] else {
        return None;
    };
    let increasing = entries.windows(2).all(|w| match w {
        [a, b] => a.time < b.time && a.offset < b.offset,
        _ => true,
    });
    (*reference == track_id && *scale == timescale && *end == Some(file_size) && increasing)
        .then(|| entries.clone())
}

/// Checks each fragment of an [`IndexedFragments`] movie as the demuxer reaches it: the `moof`
/// the index points at, read whole before FFmpeg parses it, must be one (followed by its
/// `mdat`), pass the walk's checks, and hold samples that keep the constant-rate numbering the
/// movie's frames were given — else the read fails with the reason.
pub(crate) struct FragmentGate {
    file_size: u64,
    track_id: u32,
    frame_duration: u32,
    entries: Vec<FragmentEntry>,
    checked: Vec<Checked>,
    /// The first byte of the first fragment found off the grid: the movie ends there for
    /// FFmpeg (frames before it are still exact; its own are refused by `refusal`).
    pub broken_from: u64,
    trex: HashMap<u32, TrackDefaults>,
    max_samples: usize,
    max_moof_bytes: u64,
    last_samples: Option<u64>,
    /// Fragments listed by a sidx: their times were taken as the first's composition offset
    /// after each fragment's first decode time, so each must have that offset.
    first_cts: Option<i64>,
    /// Where the listed fragments end (the `mfra`, or the end of the file).
    listed_end: u64,
}

/// What is known of one fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Checked {
    No,
    Fine,
    /// Its samples break the constant-rate numbering, for this reason.
    Breaks(String),
}

impl FragmentGate {
    /// The first fragment not checked yet whose `moof` starts in `start..end`.
    pub fn unchecked_in(&self, start: u64, end: u64) -> Option<usize> {
        let from = self.entries.partition_point(|e| e.offset < start);
        (from..self.entries.len())
            .take_while(|&i| self.entries.get(i).is_some_and(|e| e.offset < end))
            .find(|&i| self.checked.get(i) == Some(&Checked::No))
    }

    /// The fragment whose frames are shown from `pts` on: the last one starting at or before it.
    pub fn fragment_at(&self, pts: i64) -> Option<usize> {
        self.entries.iter().rposition(|e| e.time <= pts)
    }

    /// Whether fragment `i` was checked.
    pub fn is_checked(&self, i: usize) -> bool {
        self.checked.get(i).is_some_and(|c| c != &Checked::No)
    }

    /// Why fragment `i`'s frames are refused, when it was checked and breaks the numbering.
    pub fn refusal(&self, i: usize) -> Option<Error> {
        let (Some(Checked::Breaks(why)), Some(entry)) = (self.checked.get(i), self.entries.get(i))
        else {
            return None;
        };
        // The movie's frame numbers (answered already, and cached) assume a constant rate this
        // fragment breaks: a frame numbered by them could be the wrong picture, and numbering
        // the movie again now would change what earlier answers meant. So its frames are
        // refused; the metadata's `frame_numbers` said "constant-rate" all along.
        Some(Error::Decode(format!(
            "this fragmented MP4's frames are numbered at a constant frame rate from its index \
             of fragments, but the fragment at byte {} {why}, so its frames cannot be served exactly",
            entry.offset
        )))
    }

    /// Reads and checks fragment `i`: its offset and the bytes read (the `moof` and the next
    /// box's head), for FFmpeg's reads of them. A hostile `moof` is an error; one whose samples
    /// break the numbering ends the movie for FFmpeg there (`broken_from`, `refusal`).
    pub fn check(&mut self, source: &dyn ByteSource, i: usize) -> Result<(u64, Bytes)> {
        let (bytes, samples) = self.read_fragment(source, i)?;
        let offset = self.entries.get(i).map_or(0, |e| e.offset);
        let verdict = match samples {
            Ok(_) => Checked::Fine,
            Err(why) => {
                self.broken_from = self.broken_from.min(offset);
                Checked::Breaks(why)
            }
        };
        if let Some(slot) = self.checked.get_mut(i) {
            *slot = verdict;
        }
        Ok((offset, bytes))
    }

    /// Fragment `i`'s bytes (the `moof` and the next box's head) and its video samples — or
    /// why they break the constant-rate numbering. Hostile boxes are errors.
    fn read_fragment(
        &self,
        source: &dyn ByteSource,
        i: usize,
    ) -> Result<(Bytes, std::result::Result<u64, String>)> {
        let Some(entry) = self.entries.get(i).copied() else {
            return Err(Error::BadIndex("a fragment outside the index".into()));
        };
        let remaining = self.file_size.saturating_sub(entry.offset);
        let read = |len: u64| -> Result<Bytes> {
            let want = usize::try_from(len.min(remaining)).unwrap_or(usize::MAX);
            let bytes = source.read_at(entry.offset, want)?;
            if bytes.len() < want {
                return Err(Error::Truncated(format!(
                    "{} ended before its fragment at byte {}",
                    source.describe(),
                    entry.offset
                )));
            }
            Ok(bytes)
        };
        let not_a_fragment = || {
            Error::NotAMovie(format!(
                "its index of fragments (mfra or sidx) points at byte {}, which is not a moof \
                 box followed by its mdat",
                entry.offset
            ))
        };
        let mut bytes = read(HEAD_READ)?;
        let header = Header::parse(&bytes, remaining).ok_or_else(not_a_fragment)?;
        if &header.kind != b"moof" {
            return Err(not_a_fragment());
        }
        let total = header.total();
        if total > self.max_moof_bytes {
            return Err(Error::IndexTooLarge(format!(
                "its moof box at byte {} has {total} bytes (at most {} allowed)",
                entry.offset, self.max_moof_bytes
            )));
        }
        let with_next = total.saturating_add(HEAD).min(remaining);
        if (bytes.len() as u64) < with_next {
            bytes = read(with_next)?;
        }
        let next = usize::try_from(total)
            .ok()
            .and_then(|t| bytes.get(t..))
            .and_then(|rest| Header::parse(rest, remaining - total));
        let Some(mdat) = next.filter(|next| &next.kind == b"mdat") else {
            return Err(not_a_fragment());
        };
        // FFmpeg goes on from the atom after this mdat once it has shown these samples.
        let after = entry
            .offset
            .saturating_add(total)
            .saturating_add(mdat.total());
        let listed_after = self
            .entries
            .get(i + 1)
            .map_or(self.listed_end, |e| e.offset);
        let atom = bytes.slice(..usize::try_from(total).unwrap_or(0).min(bytes.len()));
        let mut checker = Checker::new(self.file_size, self.max_samples);
        checker.trex = self.trex.clone();
        checker.walk_body(&atom, entry.offset, &header, *b"moof")?;
        let body = atom.get(header.header as usize..).unwrap_or_default();
        let found = fragments::fragment_samples(body, self.track_id, &self.trex);
        let d = self.frame_duration;
        let expected = match self.entries.get(i + 1) {
            Some(next) => u64::try_from((next.time - entry.time) / i64::from(d)).ok(),
            None => self.last_samples,
        };
        let verdict = if after != listed_after {
            Err(format!(
                "is followed at byte {after} by an atom its index does not list (the next \
                 listed one is at byte {listed_after})"
            ))
        } else if self.first_cts.is_some() && found.first_cts != self.first_cts {
            Err(format!(
                "shows its first sample {:?} ticks after its decode time, not {:?}",
                found.first_cts, self.first_cts
            ))
        } else if !found.on_grid(d) {
            Err(format!(
                "does not start with a keyframe or is not shown one frame every {d} ticks ({} samples, durations {:?})",
                found.samples, found.uniform_duration
            ))
        } else if expected.is_some_and(|n| n != found.samples) {
            Err(format!(
                "holds {} samples where the next fragment's time implies {}",
                found.samples,
                expected.unwrap_or(0)
            ))
        } else {
            Ok(found.samples)
        };
        Ok((bytes, verdict))
    }
}

/// Reads through the source, keeping what it read, under the index byte cap and the deadline.
struct Reader<'a> {
    source: &'a dyn ByteSource,
    known: KnownBytes,
    cap: u64,
    deadline: Instant,
    timeout: Duration,
}

impl Reader<'_> {
    fn check_deadline(&self) -> Result<()> {
        if Instant::now() > self.deadline {
            return Err(Error::DecodeTimeout(self.timeout));
        }
        Ok(())
    }

    /// Exactly `len` bytes at `pos` (inside the file), from what is known or from the source.
    fn read(&mut self, pos: u64, len: u64) -> Result<Bytes> {
        let known = self
            .known
            .contiguous(pos, usize::try_from(len).unwrap_or(usize::MAX))
            .unwrap_or_default();
        let have = known.len() as u64;
        if have >= len {
            return Ok(known.slice(..usize::try_from(len).unwrap_or(0)));
        }
        let rest_at = pos.saturating_add(have);
        let fetched = self.fetch(rest_at, len - have)?;
        let bytes = if known.is_empty() {
            fetched
        } else {
            let mut joined = Vec::with_capacity(known.len().saturating_add(fetched.len()));
            joined.extend_from_slice(&known);
            joined.extend_from_slice(&fetched);
            Bytes::from(joined)
        };
        if self.known.len().saturating_add(bytes.len() as u64) <= KEPT_INDEX_BYTES {
            self.known.insert(pos, bytes.clone());
        }
        Ok(bytes)
    }

    /// A whole atom of `total` bytes at `pos`, and the next atom's head when there is one.
    fn read_atom(&mut self, pos: u64, total: u64) -> Result<Bytes> {
        let end = pos.saturating_add(total);
        let with_next_head = end
            .saturating_add(HEAD)
            .min(self.source.len())
            .saturating_sub(pos);
        let bytes = self.read(pos, with_next_head.max(total))?;
        Ok(bytes.slice(..usize::try_from(total).unwrap_or(0).min(bytes.len())))
    }

    fn fetch(&mut self, pos: u64, len: u64) -> Result<Bytes> {
        self.check_deadline()?;
        let cap = self.cap;
        let too_large = || {
            Error::IndexTooLarge(format!(
                "reading it needs more than {cap} bytes (the configured cap)"
            ))
        };
        if self.known.fetched.saturating_add(len) > cap {
            return Err(too_large());
        }
        let want = usize::try_from(len).map_err(|_| too_large())?;
        let bytes = self.source.read_at(pos, want)?;
        self.known.fetched = self.known.fetched.saturating_add(bytes.len() as u64);
        if bytes.len() < want {
            return Err(Error::Truncated(format!(
                "{} ended at byte {} but claims {} bytes",
                self.source.describe(),
                pos.saturating_add(bytes.len() as u64),
                self.source.len()
            )));
        }
        Ok(bytes)
    }
}

/// An atom header as FFmpeg reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    kind: FourCc,
    /// 8, or 16 with a 64-bit size.
    header: u64,
    /// Payload bytes, already clamped to the parent.
    payload: u64,
    /// The four bytes at offset 12, which FFmpeg peeks at in `free` and `hoov` atoms.
    peek: Option<FourCc>,
}

impl Header {
    /// The header at the start of `bytes`, inside a parent with `remaining` bytes from here on.
    /// None where FFmpeg stops reading the parent (fewer than 8 bytes left, or a bad size).
    fn parse(bytes: &[u8], remaining: u64) -> Option<Self> {
        if remaining < 8 {
            return None;
        }
        let size32 = be32(bytes, 0)?;
        let kind = fourcc(bytes, 4)?;
        let (header, payload) = match size32 {
            0 => (8, remaining - 8),
            1 => {
                if remaining < 16 {
                    return None;
                }
                match be64(bytes, 8)? {
                    8 => (16, remaining - 16),
                    size if (16..=i64::MAX as u64).contains(&size) => (16, size - 16),
                    _ => return None,
                }
            }
            2..=7 => return None,
            size => (8, u64::from(size) - 8),
        };
        Some(Self {
            kind,
            header,
            payload: payload.min(remaining - header),
            peek: fourcc(bytes, 12),
        })
    }

    fn total(&self) -> u64 {
        self.header + self.payload
    }

    /// `hoov` (and, on FFmpeg's second pass, `free`) atoms that start with a movie header are
    /// read as a `moov`.
    fn peeks_movie(&self) -> bool {
        matches!(&self.peek, Some(p) if p == b"mvhd" || p == b"cmov")
    }

    /// The kind FFmpeg handles the atom as, or None where it stops reading the parent.
    fn effective_kind(&self, parent: FourCc) -> Option<FourCc> {
        if &parent != b"root"
            && &parent != b"moov"
            && (&self.kind == b"trak" || &self.kind == b"mdat")
        {
            return None; // "Broken file, trak/mdat not at top-level"
        }
        if &self.kind == b"hoov" && self.peeks_movie() {
            return Some(*b"moov");
        }
        Some(self.kind)
    }
}

/// One atom inside a parent's payload.
#[derive(Debug, Clone, Copy)]
struct Atom<'a> {
    header: Header,
    body: &'a [u8],
}

/// The atoms of a payload, in order, as FFmpeg reads them.
struct Children<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Children<'a> {
    type Item = Atom<'a>;

    fn next(&mut self) -> Option<Atom<'a>> {
        let rest = self.data.get(self.pos..)?;
        let header = Header::parse(rest, rest.len() as u64)?;
        let start = usize::try_from(header.header).ok()?;
        let len = usize::try_from(header.payload).ok()?;
        let body = rest.get(start..start.checked_add(len)?)?;
        let atom = Atom { header, body };
        self.pos = self.pos.checked_add(start)?.checked_add(len)?;
        Some(atom)
    }
}

fn children(data: &[u8]) -> Children<'_> {
    Children { data, pos: 0 }
}

/// Big-endian readers that answer `None` past the end (shared with `fragments`).
pub(crate) fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

pub(crate) fn be64(bytes: &[u8], at: usize) -> Option<u64> {
    let hi = be32(bytes, at)?;
    let lo = be32(bytes, at.checked_add(4)?)?;
    Some((u64::from(hi) << 32) | u64::from(lo))
}

fn fourcc(bytes: &[u8], at: usize) -> Option<FourCc> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some([b[0], b[1], b[2], b[3]])
}

fn name(kind: &FourCc) -> String {
    kind.iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect()
}

/// What one trak declares, judged when it ends (FFmpeg builds the track's index there).
#[derive(Debug, Default)]
struct Track {
    number: usize,
    /// Its tkhd's track id.
    id: u32,
    /// Its mdia/hdlr names a video handler.
    video_handler: bool,
    /// Its mdhd's time scale.
    timescale: u32,
    /// Its mdia/hdlr names a sound handler.
    sound_handler: bool,
    /// Some other handler in it names video or subtitles (or cannot be read).
    other_handler: bool,
    /// The last stts: entry count and first sample duration.
    last_stts: Option<(u32, u32)>,
    stts_samples: u64,
    stsz_samples: u64,
    /// The first stco/co64 with entries (FFmpeg ignores later ones).
    chunks: Option<u64>,
    /// The largest samples-per-chunk of the first stsc with entries (ditto).
    samples_per_chunk: Option<u64>,
}

/// The running checks over the movie and its fragments.
struct Checker {
    file_size: u64,
    max_samples: u64,
    tracks: usize,
    track: Option<Track>,
    /// trex: track id → default sample duration, size and flags (the first one counts, as in
    /// FFmpeg).
    trex: HashMap<u32, TrackDefaults>,
    /// The ids and time scales of the tracks with a video handler.
    video_tracks: Vec<(u32, u32)>,
    /// The top-level sidx boxes: reference id, time scale, each fragment's earliest time and
    /// offset, and where the last one ends.
    segment_indexes: Vec<(u32, u32, Vec<FragmentEntry>, Option<u64>)>,
    /// Some track has an edit list.
    edit_lists: bool,
    /// The address and file offset of the top-level atom being walked: where a sidx's
    /// references start follows from its own place in the file.
    origin: Option<(usize, u64)>,
    /// Byte offsets sidx boxes list as fragment starts, each with whether the walk met a
    /// top-level atom there (sidx references only ever point forward).
    sidx_refs: BTreeMap<u64, bool>,
    /// The current fragment's track and default sample size (from tfhd or trex).
    fragment: Option<(u32, u32)>,
    /// Samples the fragments declared so far, per track id.
    fragment_samples: HashMap<u32, u64>,
}

/// Entry count, after the fixed fields, of a full atom that is a table of `width`-byte entries.
struct Table {
    entries: u64,
    /// The entries' bytes (exactly entries × width of them).
    rows: usize,
}

impl Checker {
    fn new(file_size: u64, max_samples: usize) -> Self {
        Self {
            file_size,
            max_samples: u64::try_from(max_samples).unwrap_or(u64::MAX),
            tracks: 0,
            track: None,
            trex: HashMap::new(),
            video_tracks: Vec::new(),
            segment_indexes: Vec::new(),
            edit_lists: false,
            origin: None,
            sidx_refs: BTreeMap::new(),
            fragment: None,
            fragment_samples: HashMap::new(),
        }
    }

    /// Walks the payload of a top-level atom read whole (`atom` starts with its header).
    fn walk_body(&mut self, atom: &[u8], at: u64, header: &Header, kind: FourCc) -> Result<()> {
        let start = usize::try_from(header.header).unwrap_or(usize::MAX);
        let body = atom.get(start..).unwrap_or_default();
        self.origin = Some((atom.as_ptr() as usize, at));
        let walked = self.visit(ROOT, kind, body, 1);
        self.origin = None;
        walked
    }

    /// A sidx, as FFmpeg's `mov_read_sidx` reads it: each reference becomes a fragment FFmpeg
    /// may seek to and parse atoms at (checked once the walk is over). Its references start
    /// after the box, at `first_offset`.
    fn segment_index(&mut self, kind: &FourCc, body: &[u8], top_level: bool) -> Result<()> {
        let Some((base, base_at)) = self.origin else {
            return Ok(());
        };
        let version = body.first().copied().unwrap_or(0);
        if version > 1 {
            return Ok(()); // FFmpeg ignores it.
        }
        let (offset_at, count_at) = if version == 0 { (16, 22) } else { (20, 30) };
        let first_offset = if version == 0 {
            be32(body, offset_at).map(u64::from)
        } else {
            be64(body, offset_at)
        };
        let (Some(first_offset), Some(count)) = (first_offset, be16(body, count_at)) else {
            return Err(self.not_a_movie(kind, "is too short for its fields"));
        };
        let rows = body.get(count_at + 2..).unwrap_or_default();
        if usize::from(count) * 12 > rows.len() {
            return Err(self.not_a_movie(
                kind,
                format_args!("declares {count} references in {} bytes", rows.len()),
            ));
        }
        let end_of_box = (body.as_ptr() as usize)
            .checked_sub(base)
            .and_then(|start| u64::try_from(start.checked_add(body.len())?).ok())
            .and_then(|end| end.checked_add(base_at));
        let mut at = end_of_box.and_then(|end| end.checked_add(first_offset));
        let mut time = if version == 0 {
            be32(body, 12).map(u64::from)
        } else {
            be64(body, 12)
        };
        let mut listed = Vec::new();
        for row in rows.chunks_exact(12).take(usize::from(count)) {
            let size = be32(row, 0).unwrap_or(0);
            if size & 0x8000_0000 != 0 {
                time = None; // FFmpeg stops at a reference to another sidx.
                break;
            }
            let Some(start) = at.filter(|&start| start < self.file_size) else {
                return Err(self.not_a_movie(kind, "lists a fragment past the end of the file"));
            };
            self.sidx_refs.entry(start).or_insert(false);
            if self.sidx_refs.len() as u64 > self.max_samples {
                return Err(self.too_many(kind, self.sidx_refs.len() as u64, "fragments"));
            }
            if let Some(t) = time.and_then(|t| i64::try_from(t).ok()) {
                listed.push(FragmentEntry {
                    time: t,
                    offset: start,
                });
            }
            at = start.checked_add(u64::from(size));
            time = time.and_then(|t| t.checked_add(u64::from(be32(row, 4).unwrap_or(0))));
        }
        if top_level && time.is_some() && listed.len() == usize::from(count) {
            let (Some(reference), Some(scale)) = (be32(body, 4), be32(body, 8)) else {
                return Ok(());
            };
            self.segment_indexes.push((reference, scale, listed, at));
        }
        Ok(())
    }

    fn walk(&mut self, parent: FourCc, data: &[u8], depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(Error::NotAMovie("its atoms are nested too deeply".into()));
        }
        for atom in children(data) {
            let Some(kind) = atom.header.effective_kind(parent) else {
                break;
            };
            self.visit(parent, kind, atom.body, depth)?;
        }
        Ok(())
    }

    fn visit(&mut self, parent: FourCc, kind: FourCc, body: &[u8], depth: usize) -> Result<()> {
        match &kind {
            b"trak" => {
                self.tracks += 1;
                let outer = self.track.replace(Track {
                    number: self.tracks,
                    ..Track::default()
                });
                let walked = self.walk(kind, body, depth + 1);
                let track = std::mem::replace(&mut self.track, outer);
                walked?;
                if let Some(track) = track {
                    self.end_track(&track)?;
                    if track.video_handler {
                        self.video_tracks.push((track.id, track.timescale));
                    }
                }
                Ok(())
            }
            b"moof" => {
                self.fragment = None;
                self.walk(kind, body, depth + 1)
            }
            b"meta" => self.meta(body, depth),
            b"stsd" => self.sample_descriptions(body, depth),
            b"cmov" => Err(Error::NotAMovie(
                "compressed movie atoms (cmov) are not supported".into(),
            )),
            b"senc" => Err(Error::NotAMovie(
                "encrypted samples (senc) are not supported".into(),
            )),
            _ if CONTAINERS.contains(&kind) => self.walk(kind, body, depth + 1),
            _ => self.leaf(parent, kind, body),
        }
    }

    /// FFmpeg reads a meta atom from the word before the first `hdlr` it finds in it, four
    /// bytes at a time.
    fn meta(&mut self, body: &[u8], depth: usize) -> Result<()> {
        let mut at = 0usize;
        while body.len().saturating_sub(at) > 8 {
            if body.get(at..at + 4) == Some(&b"hdlr"[..]) {
                return match at.checked_sub(4) {
                    Some(from) => {
                        self.walk(*b"meta", body.get(from..).unwrap_or_default(), depth + 1)
                    }
                    // The size would be the meta atom's own type: one hdlr to the end.
                    None => self.leaf(*b"meta", *b"hdlr", body.get(4..).unwrap_or_default()),
                };
            }
            at += 4;
        }
        Ok(())
    }

    /// Sample descriptions: the atoms after each description's (codec-specific) fixed fields
    /// are parsed by FFmpeg like any others, so look for the checked kinds anywhere in them.
    fn sample_descriptions(&mut self, body: &[u8], depth: usize) -> Result<()> {
        let mut found: Vec<usize> = Vec::new();
        for (at, window) in body.windows(4).enumerate() {
            if at >= 4 && LEAVES.iter().any(|k| k[..] == *window) {
                found.push(at - 4);
            }
        }
        for start in found {
            let rest = body.get(start..).unwrap_or_default();
            if let Some(atom) = children(rest).next() {
                self.visit(*b"stsd", atom.header.kind, atom.body, depth + 1)?;
            }
        }
        Ok(())
    }

    fn where_(&self) -> String {
        match &self.track {
            Some(track) => format!("track {}", track.number),
            None => "the movie".into(),
        }
    }

    fn not_a_movie(&self, kind: &FourCc, what: impl std::fmt::Display) -> Error {
        Error::NotAMovie(format!(
            "the {} atom of {} {what}",
            name(kind),
            self.where_()
        ))
    }

    fn too_many(&self, kind: &FourCc, count: u64, what: &str) -> Error {
        Error::IndexTooLarge(format!(
            "the {} atom of {} declares {count} {what} (at most {} allowed)",
            name(kind),
            self.where_(),
            self.max_samples
        ))
    }

    /// A full atom: version and flags, `fixed` more bytes, an entry count, then entries of
    /// `width` bytes, which must fit in the atom (FFmpeg would read on past its end).
    fn table(&self, kind: &FourCc, body: &[u8], fixed: usize, width: u64) -> Result<Table> {
        let count_at = 4 + fixed;
        let Some(entries) = be32(body, count_at) else {
            return Err(self.not_a_movie(kind, "is too short for its fields"));
        };
        let entries = u64::from(entries);
        let room = body.len().saturating_sub(count_at + 4) as u64;
        match entries.checked_mul(width) {
            Some(bytes) if bytes <= room => Ok(Table {
                entries,
                rows: count_at + 4,
            }),
            _ => Err(self.not_a_movie(
                kind,
                format_args!("declares {entries} entries of {width} bytes in {room} bytes"),
            )),
        }
    }

    fn leaf(&mut self, parent: FourCc, kind: FourCc, body: &[u8]) -> Result<()> {
        match &kind {
            b"stsz" => {
                let Some(sample_size) = be32(body, 4) else {
                    return Err(self.not_a_movie(&kind, "is too short for its fields"));
                };
                let samples = if sample_size == 0 {
                    self.table(&kind, body, 4, 4)?.entries
                } else {
                    let table = self.table(&kind, body, 4, 0)?;
                    self.fits_in_file(&kind, table.entries, u64::from(sample_size))?;
                    table.entries
                };
                self.note_samples(&kind, samples)?;
            }
            b"stz2" => {
                let field_bits = body.get(7).copied().unwrap_or(0);
                if ![4, 8, 16, 32].contains(&field_bits) {
                    return Err(
                        self.not_a_movie(&kind, format_args!("has {field_bits}-bit fields"))
                    );
                }
                let table = self.table(&kind, body, 4, 0)?;
                let room = body.len().saturating_sub(table.rows) as u64;
                let bytes = table
                    .entries
                    .checked_mul(u64::from(field_bits))
                    .and_then(|bits| bits.checked_add(4))
                    .map(|bits| bits / 8);
                if bytes.is_none_or(|b| b > room) {
                    return Err(self.not_a_movie(
                        &kind,
                        format_args!("declares {} samples in {room} bytes", table.entries),
                    ));
                }
                self.note_samples(&kind, table.entries)?;
            }
            b"stts" => {
                let table = self.table(&kind, body, 0, 8)?;
                let samples = self.sum_counts(body, &table, |_| true);
                let first_delta = be32(body, table.rows + 4).unwrap_or(0);
                if let Some(track) = self.track.as_mut() {
                    track.last_stts = Some((
                        u32::try_from(table.entries).unwrap_or(u32::MAX),
                        first_delta,
                    ));
                    track.stts_samples = track.stts_samples.max(samples);
                }
                if samples > self.file_size {
                    return Err(self.not_a_movie(
                        &kind,
                        format_args!(
                            "declares {samples} samples, more than the file's {} bytes",
                            self.file_size
                        ),
                    ));
                }
            }
            b"ctts" => {
                let table = self.table(&kind, body, 0, 8)?;
                // FFmpeg skips entries whose count is not positive as a signed number.
                let samples = self.sum_counts(body, &table, |count| (count as i32) > 0);
                if samples > self.max_samples {
                    return Err(self.too_many(&kind, samples, "samples"));
                }
            }
            b"stsc" => {
                let table = self.table(&kind, body, 0, 12)?;
                let mut previous = 0u32;
                let mut most = 0u64;
                for i in 0..table.entries {
                    let at = usize::try_from(i)
                        .ok()
                        .and_then(|i| i.checked_mul(12))
                        .and_then(|o| o.checked_add(table.rows));
                    let (Some(first), Some(per_chunk)) = (
                        at.and_then(|at| be32(body, at)),
                        at.and_then(|at| be32(body, at.checked_add(4)?)),
                    ) else {
                        break;
                    };
                    if first == 0 || first <= previous {
                        return Err(self.not_a_movie(
                            &kind,
                            format_args!(
                                "has chunk numbers out of order ({first} after {previous})"
                            ),
                        ));
                    }
                    previous = first;
                    most = most.max(u64::from(per_chunk));
                }
                if let Some(track) = self.track.as_mut()
                    && table.entries > 0
                    && track.samples_per_chunk.is_none()
                {
                    track.samples_per_chunk = Some(most);
                }
            }
            b"stco" | b"co64" => {
                let width = if &kind == b"stco" { 4 } else { 8 };
                let table = self.table(&kind, body, 0, width)?;
                if table.entries > self.max_samples {
                    return Err(self.too_many(&kind, table.entries, "chunks"));
                }
                if let Some(track) = self.track.as_mut()
                    && table.entries > 0
                    && track.chunks.is_none()
                {
                    track.chunks = Some(table.entries);
                }
            }
            b"stss" | b"stps" => {
                self.table(&kind, body, 0, 4)?;
            }
            b"sbgp" => {
                let grouping = fourcc(body, 4);
                let fixed = if body.first() == Some(&1) { 8 } else { 4 };
                let table = self.table(&kind, body, fixed, 8)?;
                if matches!(&grouping, Some(g) if g == b"sync" || g == b"rap ") {
                    let samples = self.sum_counts(body, &table, |_| true);
                    if samples > self.max_samples {
                        return Err(self.too_many(&kind, samples, "samples"));
                    }
                }
            }
            b"sgpd" => {
                let version = body.first().copied().unwrap_or(0);
                if fourcc(body, 4).as_ref() == Some(b"sync") {
                    let fixed =
                        4 + if version >= 1 { 4 } else { 0 } + if version >= 2 { 4 } else { 0 };
                    let default_length = if version >= 1 {
                        be32(body, 8).unwrap_or(0)
                    } else {
                        0
                    };
                    self.table(&kind, body, fixed, u64::from(default_length.max(1)))?;
                }
            }
            b"keys" => {
                // Each key is at least 8 bytes; FFmpeg zeroes a pointer per declared key first.
                self.table(&kind, body, 0, 8)?;
            }
            b"hdlr" => {
                let handler = fourcc(body, 8);
                if let Some(track) = self.track.as_mut() {
                    match handler.as_ref() {
                        Some(b"soun") => track.sound_handler |= &parent == b"mdia",
                        Some(b"vide") if &parent == b"mdia" => {
                            track.video_handler = true;
                            track.other_handler = true;
                        }
                        Some(b"vide" | b"subp" | b"clcp") | None => track.other_handler = true,
                        Some(_) => {}
                    }
                }
            }
            b"trex" => {
                if let (Some(track_id), Some(size)) = (be32(body, 4), be32(body, 16)) {
                    self.trex.entry(track_id).or_insert(TrackDefaults {
                        duration: be32(body, 12).unwrap_or(0),
                        size,
                        flags: be32(body, 20).unwrap_or(0),
                    });
                }
            }
            b"tkhd" => {
                let id_at = if body.first() == Some(&1) { 20 } else { 12 };
                if let (Some(track), Some(id)) = (self.track.as_mut(), be32(body, id_at)) {
                    track.id = id;
                }
            }
            b"elst" => self.edit_lists = true,
            b"sidx" => self.segment_index(&kind, body, &parent == b"root")?,
            b"mdhd" => {
                let at = if body.first() == Some(&1) { 20 } else { 12 };
                if let (Some(track), Some(scale)) = (self.track.as_mut(), be32(body, at)) {
                    track.timescale = scale;
                }
            }
            b"tfhd" => self.fragment_header(&kind, body)?,
            b"trun" => self.track_run(&kind, body)?,
            _ => {}
        }
        Ok(())
    }

    /// The sum of the first field of each 8-byte entry.
    fn sum_counts(&self, body: &[u8], table: &Table, counted: impl Fn(u32) -> bool) -> u64 {
        let rows = body.get(table.rows..).unwrap_or_default();
        rows.chunks_exact(8)
            .filter_map(|row| be32(row, 0))
            .filter(|&count| counted(count))
            .fold(0u64, |sum, count| sum.saturating_add(u64::from(count)))
    }

    fn fits_in_file(&self, kind: &FourCc, samples: u64, size: u64) -> Result<()> {
        if samples
            .checked_mul(size)
            .is_some_and(|bytes| bytes <= self.file_size)
        {
            return Ok(());
        }
        Err(self.not_a_movie(
            kind,
            format_args!(
                "declares {samples} samples of {size} bytes, more than the whole file ({} bytes)",
                self.file_size
            ),
        ))
    }

    fn note_samples(&mut self, kind: &FourCc, samples: u64) -> Result<()> {
        match self.track.as_mut() {
            Some(track) => track.stsz_samples = track.stsz_samples.max(samples),
            // Outside a trak FFmpeg builds no index from it, but still reads its table.
            None if samples > self.max_samples => {
                return Err(self.too_many(kind, samples, "samples"));
            }
            None => {}
        }
        Ok(())
    }

    /// FFmpeg indexes a track when its trak ends: by sample, or — for a sound track whose
    /// samples all last one tick (PCM) — by chunk, a run of samples per entry.
    fn end_track(&self, track: &Track) -> Result<()> {
        let by_chunk = track.sound_handler
            && !track.other_handler
            && matches!(track.last_stts, Some((1, d)) if d == 1 || d > STTS_DELTA_CLIP);
        let where_ = format!("track {}", track.number);
        if by_chunk {
            let per_chunk = track.samples_per_chunk.unwrap_or(0) / MIN_SAMPLES_PER_CHUNK_ENTRY + 1;
            let entries = track.chunks.unwrap_or(0).saturating_mul(per_chunk);
            if entries > self.max_samples {
                return Err(Error::IndexTooLarge(format!(
                    "{where_} needs {entries} index entries for its chunks (at most {} allowed)",
                    self.max_samples
                )));
            }
            return Ok(());
        }
        let samples = track.stsz_samples.max(track.stts_samples);
        if samples > self.max_samples {
            return Err(Error::IndexTooLarge(format!(
                "{where_} declares {samples} samples (at most {} allowed)",
                self.max_samples
            )));
        }
        Ok(())
    }

    fn fragment_header(&mut self, kind: &FourCc, body: &[u8]) -> Result<()> {
        let (Some(flags), Some(track_id)) = (be32(body, 0), be32(body, 4)) else {
            return Err(self.not_a_movie(kind, "is too short for its fields"));
        };
        let flags = flags & 0x00ff_ffff;
        let mut at = 8usize;
        let mut size = None;
        for (flag, width) in [(0x01, 8), (0x02, 4), (0x08, 4), (0x10, 4), (0x20, 4)] {
            if flags & flag != 0 {
                if flag == 0x10 {
                    size = be32(body, at);
                }
                at += width;
            }
        }
        if at > body.len() {
            return Err(self.not_a_movie(kind, "is too short for its fields"));
        }
        let default_size = size
            .or_else(|| self.trex.get(&track_id).map(|d| d.size))
            .unwrap_or(0);
        self.fragment = Some((track_id, default_size));
        Ok(())
    }

    fn track_run(&mut self, kind: &FourCc, body: &[u8]) -> Result<()> {
        let (Some(flags), Some(samples)) = (be32(body, 0), be32(body, 4)) else {
            return Err(self.not_a_movie(kind, "is too short for its fields"));
        };
        let samples = u64::from(samples);
        let optional = |flag: u32| if flags & flag != 0 { 4usize } else { 0 };
        let fixed = 8 + optional(0x1) + optional(0x4);
        let per_sample = [0x100, 0x200, 0x400, 0x800]
            .iter()
            .map(|&f| optional(f) as u64)
            .sum::<u64>();
        let room = body.len().saturating_sub(fixed) as u64;
        if fixed > body.len() || samples.checked_mul(per_sample).is_none_or(|b| b > room) {
            return Err(self.not_a_movie(
                kind,
                format_args!("declares {samples} samples of {per_sample} bytes in {room} bytes"),
            ));
        }
        let (track_id, default_size) = self.fragment.unwrap_or((0, 0));
        if flags & 0x200 == 0 {
            self.fits_in_file(kind, samples, u64::from(default_size.max(1)))?;
        }
        let total = self.fragment_samples.entry(track_id).or_insert(0);
        *total = total.saturating_add(samples);
        let total = *total;
        if total > self.max_samples {
            return Err(Error::IndexTooLarge(format!(
                "the fragments of track {track_id} declare {total} samples (at most {} allowed)",
                self.max_samples
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// An atom: size, kind, payload.
    fn atom(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut out = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(payload);
        out
    }

    /// A full atom's payload: version 0, no flags, then `fields` as big-endian u32s.
    fn full(fields: &[u32]) -> Vec<u8> {
        let mut out = vec![0u8; 4];
        for f in fields {
            out.extend_from_slice(&f.to_be_bytes());
        }
        out
    }

    fn checker() -> Checker {
        Checker::new(1_000_000, 10_000)
    }

    fn check(moov_payload: &[u8]) -> Result<()> {
        checker().visit(ROOT, *b"moov", moov_payload, 1)
    }

    fn stbl(tables: &[Vec<u8>]) -> Vec<u8> {
        atom(b"stbl", &tables.concat())
    }

    fn track(handler: &[u8; 4], tables: &[Vec<u8>]) -> Vec<u8> {
        let hdlr = atom(b"hdlr", &[&[0u8; 8][..], handler, &[0u8; 12]].concat());
        let minf = atom(b"minf", &stbl(tables));
        atom(b"trak", &atom(b"mdia", &[hdlr, minf].concat()))
    }

    /// A sane video track of `n` samples of `size` bytes in one chunk.
    fn video(n: u32, size: u32) -> Vec<u8> {
        track(
            b"vide",
            &[
                atom(b"stts", &full(&[1, n, 1000])),
                atom(b"stsc", &full(&[1, 1, n, 1])),
                atom(b"stsz", &full(&[size, n])),
                atom(b"stco", &full(&[1, 16])),
            ],
        )
    }

    #[test]
    fn headers_follow_ffmpeg() {
        let h = Header::parse(&[0, 0, 0, 16, b'f', b'r', b'e', b'e'], 100).unwrap();
        assert_eq!((h.header, h.payload), (8, 8));
        // Size 0: to the end of the parent.
        let h = Header::parse(&[0, 0, 0, 0, b'm', b'd', b'a', b't'], 100).unwrap();
        assert_eq!((h.header, h.payload), (8, 92));
        // 64-bit size, clamped to the parent.
        let mut b = vec![0, 0, 0, 1, b'm', b'd', b'a', b't'];
        b.extend_from_slice(&1000u64.to_be_bytes());
        let h = Header::parse(&b, 100).unwrap();
        assert_eq!((h.header, h.payload), (16, 84));
        // Bad sizes end the parent.
        assert!(Header::parse(&[0, 0, 0, 5, b'x', b'x', b'x', b'x'], 100).is_none());
        assert!(Header::parse(&[0, 0, 0, 1, b'x', b'x', b'x', b'x'], 12).is_none());
        let mut b = vec![0, 0, 0, 1, b'm', b'd', b'a', b't'];
        b.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(Header::parse(&b, 100).is_none());
        assert!(Header::parse(&[0, 0, 0, 8], 100).is_none());
        assert!(Header::parse(&[0; 8], 7).is_none());
    }

    #[test]
    fn children_stop_at_a_bad_size_and_clamp_to_the_parent() {
        let mut data = atom(b"aaaa", b"12345678");
        data.extend_from_slice(&[0, 0, 0, 3, b'b', b'b', b'b', b'b', 9, 9]);
        let kinds: Vec<FourCc> = children(&data).map(|a| a.header.kind).collect();
        assert_eq!(kinds, vec![*b"aaaa"]);
        let mut data = atom(b"aaaa", b"");
        data.extend_from_slice(&[0, 0, 1, 0, b'c', b'c', b'c', b'c', 1, 2, 3]);
        let all: Vec<Atom<'_>> = children(&data).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].body, &[1, 2, 3]);
    }

    #[test]
    fn a_sane_movie_passes() {
        check(&video(100, 1000)).unwrap();
    }

    #[test]
    fn a_constant_size_table_larger_than_the_file_is_not_a_movie() {
        let err = check(&video(5_000, 1000)).unwrap_err();
        assert!(
            matches!(err, Error::NotAMovie(ref m) if m.contains("stsz") && m.contains("5000")),
            "{err}"
        );
    }

    #[test]
    fn more_samples_than_the_cap_are_too_large() {
        let err = check(&video(20_000, 1)).unwrap_err();
        assert!(
            matches!(err, Error::IndexTooLarge(ref m) if m.contains("20000")),
            "{err}"
        );
    }

    #[test]
    fn tables_must_fit_in_their_atoms() {
        for (kind, fields) in [
            (b"stsz", vec![0, 3, 1, 2]),
            (b"stts", vec![2, 1, 1]),
            (b"ctts", vec![1]),
            (b"stsc", vec![1, 1, 1]),
            (b"stco", vec![3, 1, 2]),
            (b"co64", vec![1, 1]),
            (b"stss", vec![9]),
            (b"stps", vec![2, 1]),
            (b"keys", vec![1]),
        ] {
            let moov = track(b"vide", &[atom(kind, &full(&fields))]);
            let err = check(&moov).unwrap_err();
            assert!(matches!(err, Error::NotAMovie(_)), "{}: {err}", name(kind));
        }
        let short = track(b"vide", &[atom(b"stco", &[0, 0])]);
        assert!(matches!(check(&short), Err(Error::NotAMovie(m)) if m.contains("too short")));
    }

    #[test]
    fn declared_sums_are_capped() {
        let stts = track(b"vide", &[atom(b"stts", &full(&[2, 9_000, 1, 9_000, 1]))]);
        assert!(matches!(check(&stts), Err(Error::IndexTooLarge(_))));
        let ctts = track(b"vide", &[atom(b"ctts", &full(&[1, 20_000, 0]))]);
        assert!(matches!(check(&ctts), Err(Error::IndexTooLarge(_))));
        let mut sbgp = full(&[]);
        sbgp.extend_from_slice(b"sync");
        sbgp.extend_from_slice(&full(&[1, 20_000, 1])[4..]);
        let moov = track(b"vide", &[atom(b"sbgp", &sbgp)]);
        assert!(matches!(check(&moov), Err(Error::IndexTooLarge(_))));
    }

    #[test]
    fn stsc_chunk_numbers_must_increase_from_one() {
        for fields in [vec![1, 0, 5, 1], vec![2, 3, 5, 1, 2, 5, 1]] {
            let moov = track(b"vide", &[atom(b"stsc", &full(&fields))]);
            assert!(
                matches!(check(&moov), Err(Error::NotAMovie(m)) if m.contains("chunk numbers"))
            );
        }
    }

    #[test]
    fn pcm_sound_is_counted_by_chunk() {
        // 50 000 one-byte samples (more than the cap) in 10 chunks of 5000: FFmpeg makes
        // 10 × (5000/160 + 1) entries, fine.
        let pcm = |chunks: u32, per_chunk: u32, delta: u32| {
            track(
                b"soun",
                &[
                    atom(b"stts", &full(&[1, 50_000, delta])),
                    atom(b"stsc", &full(&[1, 1, per_chunk, 1])),
                    atom(b"stsz", &full(&[1, 50_000])),
                    atom(
                        b"stco",
                        &[full(&[chunks]), vec![0; 4 * chunks as usize]].concat(),
                    ),
                ],
            )
        };
        check(&pcm(10, 5000, 1)).unwrap();
        // Per sample when the durations are not one tick.
        assert!(matches!(
            check(&pcm(10, 5000, 2)),
            Err(Error::IndexTooLarge(_))
        ));
        // Huge chunks.
        assert!(matches!(
            check(&pcm(1000, 4_000_000, 1)),
            Err(Error::IndexTooLarge(_))
        ));
        // A video handler anywhere in the track makes it per sample.
        let mut mixed = pcm(10, 5000, 1);
        let hdlr = atom(b"hdlr", &[&[0u8; 8][..], b"vide", &[0u8; 12]].concat());
        let udta = atom(b"udta", &atom(b"meta", &[&[0u8; 4][..], &hdlr].concat()));
        // Put the udta inside the trak (patch its size).
        mixed.extend_from_slice(&udta);
        let len = mixed.len() as u32;
        mixed[..4].copy_from_slice(&len.to_be_bytes());
        assert!(matches!(check(&mixed), Err(Error::IndexTooLarge(_))));
    }

    #[test]
    fn tables_hidden_in_sample_descriptions_are_checked() {
        let bomb = atom(b"stsz", &full(&[7, 9_000_000]));
        let mut stsd = full(&[1]);
        stsd.extend_from_slice(&atom(b"avc1", &[vec![0u8; 78], bomb].concat()));
        let moov = track(b"vide", &[atom(b"stsd", &stsd)]);
        assert!(matches!(check(&moov), Err(Error::NotAMovie(m)) if m.contains("stsz")));
    }

    #[test]
    fn compressed_and_encrypted_movies_are_refused() {
        let moov = atom(b"cmov", &[0; 20]);
        assert!(matches!(check(&moov), Err(Error::NotAMovie(m)) if m.contains("cmov")));
        let moof = atom(b"traf", &atom(b"senc", &full(&[1])));
        assert!(checker().visit(ROOT, *b"moof", &moof, 1).is_err());
    }

    #[test]
    fn fragments_are_checked_against_trex_and_tfhd() {
        let mut c = checker();
        let trex = atom(b"trex", &full(&[1, 1, 0, 100, 0]));
        c.visit(ROOT, *b"moov", &atom(b"mvex", &trex), 1).unwrap();
        let moof = |count: u32, flags: u32| {
            let tfhd = atom(b"tfhd", &[0u32.to_be_bytes(), 1u32.to_be_bytes()].concat());
            let mut trun = (flags).to_be_bytes().to_vec();
            trun.extend_from_slice(&count.to_be_bytes());
            trun.extend_from_slice(&vec![
                0u8;
                if flags & 0x200 != 0 {
                    4 * count as usize
                } else {
                    0
                }
            ]);
            atom(b"traf", &[tfhd, atom(b"trun", &trun)].concat())
        };
        c.visit(ROOT, *b"moof", &moof(100, 0), 1).unwrap();
        // 100-byte samples from trex: 20 000 of them do not fit in a 1 MB file.
        assert!(matches!(
            c.visit(ROOT, *b"moof", &moof(20_000, 0), 1),
            Err(Error::NotAMovie(_))
        ));
        // Sizes in the run must fit in it.
        let mut truncated = moof(10, 0x200);
        truncated.truncate(truncated.len() - 8);
        let len = truncated.len() as u32;
        truncated[..4].copy_from_slice(&len.to_be_bytes());
        assert!(c.visit(ROOT, *b"moof", &truncated, 1).is_err());
        // The fragments' samples add up against the cap.
        for _ in 0..99 {
            c.visit(ROOT, *b"moof", &moof(100, 0x200), 1).unwrap();
        }
        assert!(matches!(
            c.visit(ROOT, *b"moof", &moof(100, 0x200), 1),
            Err(Error::IndexTooLarge(_))
        ));
    }

    #[test]
    fn sidx_references_are_bounded_and_recorded() {
        // A version-0 sidx for track 1 at 1/1000 s: first_offset 0, `count` references.
        let sidx = |count: u16, rows: &[(u32, u32)]| {
            let mut body = full(&[1, 1000, 0, 0]);
            body.extend_from_slice(&[0, 0]);
            body.extend_from_slice(&count.to_be_bytes());
            for &(size, duration) in rows {
                for v in [size, duration, 0x9000_0000] {
                    body.extend_from_slice(&v.to_be_bytes());
                }
            }
            atom(b"sidx", &body)
        };
        let walk = |c: &mut Checker, bytes: &[u8]| {
            let header = Header::parse(bytes, bytes.len() as u64).unwrap();
            c.walk_body(bytes, 100, &header, *b"sidx")
        };
        let mut c = checker();
        let good = sidx(2, &[(500, 40), (700, 40)]);
        walk(&mut c, &good).unwrap();
        let end = 100 + good.len() as u64;
        assert_eq!(
            c.sidx_refs.keys().copied().collect::<Vec<_>>(),
            [end, end + 500]
        );
        let (track, scale, listed, last) = &c.segment_indexes[0];
        assert_eq!((*track, *scale, *last), (1, 1000, Some(end + 1200)));
        assert_eq!(
            listed[1],
            FragmentEntry {
                time: 40,
                offset: end + 500
            }
        );
        // More references than the box holds; a reference past the end of the file.
        let err = walk(&mut checker(), &sidx(60_000, &[(500, 40)])).unwrap_err();
        assert!(
            matches!(err, Error::NotAMovie(ref m) if m.contains("references")),
            "{err}"
        );
        let err = walk(&mut checker(), &sidx(2, &[(2_000_000, 40), (1, 1)])).unwrap_err();
        assert!(
            matches!(err, Error::NotAMovie(ref m) if m.contains("past the end")),
            "{err}"
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let mut data = atom(b"stsz", &full(&[0, 0]));
        for _ in 0..20 {
            data = atom(b"udta", &data);
        }
        assert!(matches!(check(&data), Err(Error::NotAMovie(m)) if m.contains("nested")));
    }

    #[test]
    fn no_input_panics() {
        // Every prefix and many byte flips of a small movie: errors are fine, panics are not.
        let moov = [
            video(100, 1000),
            track(b"soun", &[atom(b"stts", &full(&[1, 5, 1]))]),
        ]
        .concat();
        for end in 0..moov.len() {
            let _ = check(&moov[..end]);
        }
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..5000 {
            let mut m = moov.clone();
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let i = (state % m.len() as u64) as usize;
                m[i] = (state >> 32) as u8;
            }
            let _ = check(&m);
            let _ = checker().visit(ROOT, *b"moof", &m, 1);
        }
    }
}
