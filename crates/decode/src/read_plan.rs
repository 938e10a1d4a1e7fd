//! How large the source reads behind FFmpeg's are, and the few recent ones an index build keeps
//! so the demuxer's seeks back and forth (header, index at the end, header again, first
//! packets) cost no second origin request.

use std::collections::VecDeque;

use bytes::Bytes;

/// FFmpeg's I/O buffer: the most one of its reads asks for.
pub(crate) const AVIO_BUFFER_SIZE: usize = 256 * 1024;

/// A first read at a new position, growing while reads stay sequential, up to a largest one; and
/// how many of the last reads are kept. A read may fetch more than FFmpeg asked for only when
/// reads are kept (the rest answers its next reads).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadPlan {
    pub first: usize,
    /// Each sequential read is the previous one shifted left by this.
    pub growth_shift: u32,
    pub largest: usize,
    /// Reads kept for FFmpeg to read again; 0: none, and nothing read ahead of it.
    pub keep: usize,
}

impl ReadPlan {
    /// Frames and everything read lazily: 16 KiB first (a probe of a moov-at-end file reads the
    /// atom headers, not the mdat), doubling to FFmpeg's buffer. What a frame reads is bounded
    /// by SPEC §4 (1.25 × a sample plus 64 KiB), so nothing is read ahead of FFmpeg, and a kept
    /// demuxer holds no bytes but its buffer.
    pub const FRAMES: Self = Self {
        first: 16 * 1024,
        growth_shift: 1,
        largest: AVIO_BUFFER_SIZE,
        keep: 0,
    };

    /// The index of a Matroska, AVI, MXF or MPEG-TS movie, within its budget (2% or 4 MiB):
    /// stream analysis reads 1.5–3 MB from the start, and the demuxers seek to the end and back
    /// (Cues, Tags, idx1, the RIP and footer) and re-read what they read before. 64 KiB first,
    /// ×4 to 1 MiB, a read near the end takes the file's last 64 KiB, and the last 8 reads are
    /// kept (MXF's walk back through its partitions reads 4 or more places before the packets
    /// at the start): a handful of origin requests instead of a dozen or more of 16–320 KiB.
    pub const INDEX: Self = Self {
        first: 64 * 1024,
        growth_shift: 2,
        largest: 1 << 20,
        keep: 8,
    };

    /// The read after one of `previous` bytes that ended where this one starts.
    pub fn after(&self, previous: usize) -> usize {
        previous
            .checked_shl(self.growth_shift)
            .unwrap_or(usize::MAX)
            .clamp(self.first, self.largest)
    }

    /// Where a read at a new position `pos` of a `len`-byte file starts: at `pos`, or, when
    /// reads are kept and `pos` is within the last `first` bytes, that far from the end (a
    /// demuxer's reads there — trailer, footer, index — come in several small ones).
    pub fn start_of(&self, pos: u64, len: u64) -> u64 {
        let tail = u64::try_from(self.first).unwrap_or(u64::MAX);
        if self.keep > 0 && len.saturating_sub(pos) < tail {
            len.saturating_sub(tail).min(pos)
        } else {
            pos
        }
    }
}

/// The last few reads of a source, newest first, each with the size planned for it (a read that
/// continues one grows from there).
#[derive(Debug, Default)]
pub(crate) struct RecentReads {
    pieces: VecDeque<Piece>,
}

#[derive(Debug)]
struct Piece {
    start: u64,
    bytes: Bytes,
    planned: usize,
}

impl RecentReads {
    /// The bytes from `pos` to the end of a kept read holding it.
    pub fn at(&self, pos: u64) -> Option<Bytes> {
        self.pieces.iter().find_map(|p| {
            let from = usize::try_from(pos.checked_sub(p.start)?).ok()?;
            (from < p.bytes.len()).then(|| p.bytes.slice(from..))
        })
    }

    /// The planned size of a kept read that ends at `pos`: a read there continues it.
    pub fn continuing(&self, pos: u64) -> Option<usize> {
        self.pieces
            .iter()
            .find(|p| p.start.saturating_add(p.bytes.len() as u64) == pos)
            .map(|p| p.planned)
    }

    /// Keeps a read, dropping the oldest beyond `keep`.
    pub fn push(&mut self, start: u64, bytes: Bytes, planned: usize, keep: usize) {
        if keep == 0 || bytes.is_empty() {
            return;
        }
        self.pieces.push_front(Piece {
            start,
            bytes,
            planned,
        });
        self.pieces.truncate(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_grow_within_the_plan() {
        let plan = ReadPlan::INDEX;
        assert_eq!(plan.after(64 << 10), 256 << 10);
        assert_eq!(plan.after(256 << 10), 1 << 20);
        assert_eq!(plan.after(1 << 20), 1 << 20);
        assert_eq!(plan.after(usize::MAX), 1 << 20);
        assert_eq!(plan.after(10), 64 << 10);
        assert_eq!(ReadPlan::FRAMES.after(128 << 10), AVIO_BUFFER_SIZE);
        assert_eq!(ReadPlan::FRAMES.after(16 << 10), 32 << 10);
    }

    #[test]
    fn a_read_near_the_end_takes_the_tail() {
        let len = 10 << 20;
        assert_eq!(ReadPlan::INDEX.start_of(len - 4, len), len - (64 << 10));
        assert_eq!(
            ReadPlan::INDEX.start_of(len - (65 << 10), len),
            len - (65 << 10)
        );
        assert_eq!(ReadPlan::INDEX.start_of(100, 1000), 0);
        assert_eq!(ReadPlan::FRAMES.start_of(len - 4, len), len - 4);
    }

    #[test]
    fn recent_reads_answer_again_and_continue() {
        let mut recent = RecentReads::default();
        recent.push(100, Bytes::from_static(b"abcdef"), 64, 2);
        recent.push(1000, Bytes::from_static(b"xyz"), 16, 2);
        assert_eq!(recent.at(102).as_deref(), Some(&b"cdef"[..]));
        assert_eq!(recent.at(1002).as_deref(), Some(&b"z"[..]));
        assert!(recent.at(106).is_none());
        assert_eq!(recent.continuing(106), Some(64));
        assert_eq!(recent.continuing(1003), Some(16));
        recent.push(5000, Bytes::from_static(b"q"), 8, 2);
        assert!(recent.at(100).is_none(), "the oldest is dropped");
        let mut none = RecentReads::default();
        none.push(0, Bytes::from_static(b"a"), 1, 0);
        assert!(none.at(0).is_none());
    }
}
