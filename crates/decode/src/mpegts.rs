//! MPEG-TS without a demuxer: the PES headers of one stream (its PID) in a run of bytes — their
//! byte positions, times and random-access flags. MPEG-TS has no index, so the index builder
//! reads the stream's last time from the file's tail (`last_pts`), and the decoder finds the
//! keyframe before a frame by reading the bytes before it (`decoder/ts_seek.rs`).

use crate::error::Result;
use crate::source::ByteSource;

/// The first tail read; doubled while it holds too few PES headers of the stream. The last
/// `delay + 2` pictures of a noisy 720p H.264 stream take about 1 MB: one read, not three.
const FIRST_TAIL: u64 = 1 << 20;
/// Packet sizes: plain TS, M2TS (4-byte time code first), and with Reed-Solomon parity.
const PACKET_SIZES: [usize; 3] = [188, 192, 204];
/// Sync bytes in a row that identify the packet size and alignment.
const SYNC_RUN: usize = 8;
/// PTS values wrap at 2^33.
const PTS_WRAP: i64 = 1 << 33;

/// One PES header of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PesStart {
    /// Byte offset of the TS packet it starts in (of its sync byte's packet, M2TS time code
    /// included).
    pub pos: u64,
    pub pts: i64,
    /// The decode time (the PTS when the header has no DTS).
    pub dts: i64,
    /// The packet's random-access indicator: a keyframe starts here.
    pub random_access: bool,
}

/// The largest PTS among the stream's last PES headers: enough of them are read to cover `delay`
/// frames of reordering. `None` when the tail does not show them within `budget` bytes.
pub(crate) fn last_pts(
    source: &dyn ByteSource,
    pid: i32,
    delay: usize,
    budget: u64,
) -> Result<Option<i64>> {
    let len = source.len();
    let wanted = delay + 2;
    let mut tail = FIRST_TAIL;
    loop {
        let size = tail.min(len).min(budget);
        if size == 0 {
            return Ok(None);
        }
        let bytes = source.read_at(len - size, usize::try_from(size).unwrap_or(usize::MAX))?;
        let found = pes_starts(&bytes, len - size, pid);
        if found.len() >= wanted || size == len {
            return Ok(found.iter().map(|p| p.pts).max());
        }
        if size >= budget / 2 {
            // Another, doubled read would leave the budget.
            return Ok(None);
        }
        tail = size * 2;
    }
}

/// `pts` moved past `first` by whole wraps of the 33-bit clock.
pub(crate) fn unwrap_after(pts: i64, first: i64) -> i64 {
    let mut pts = pts;
    while pts < first {
        pts += PTS_WRAP;
    }
    pts
}

/// Every PES header of `pid` that starts in `bytes` (which begin at byte `base` of the file).
pub(crate) fn pes_starts(bytes: &[u8], base: u64, pid: i32) -> Vec<PesStart> {
    let Some((start, size)) = alignment(bytes) else {
        return Vec::new();
    };
    let sync_at = size - 188; // M2TS puts a time code before the sync byte
    let mut found = Vec::new();
    let mut at = start;
    while let Some(packet) = at
        .checked_add(size)
        .and_then(|end| bytes.get(at + sync_at..end))
    {
        if let Some((pts, dts, random_access)) = packet_times(packet, pid) {
            found.push(PesStart {
                pos: base + at as u64,
                pts,
                dts,
                random_access,
            });
        }
        at += size;
    }
    found
}

/// The times of the PES header starting in this 188-byte packet, if it is `pid`'s and has a
/// PTS, and the packet's random-access indicator.
fn packet_times(packet: &[u8], pid: i32) -> Option<(i64, i64, bool)> {
    let header = packet.get(..4)?;
    if header[0] != 0x47 || header[1] & 0x40 == 0 {
        return None; // no sync, or no payload unit starts here
    }
    let packet_pid = i32::from(header[1] & 0x1f) << 8 | i32::from(header[2]);
    if packet_pid != pid {
        return None;
    }
    let adaptation = (header[3] >> 4) & 0x3;
    let mut payload = 4;
    let mut random_access = false;
    if adaptation & 0x2 != 0 {
        let length = usize::from(*packet.get(4)?);
        random_access = length > 0 && packet.get(5).is_some_and(|flags| flags & 0x40 != 0);
        payload += 1 + length;
    }
    if adaptation & 0x1 == 0 {
        return None;
    }
    let pes = packet.get(payload..)?;
    if pes.get(..3)? != [0, 0, 1] {
        return None;
    }
    let flags = *pes.get(7)?;
    if flags & 0x80 == 0 {
        return None;
    }
    let pts = timestamp(pes.get(9..14)?);
    let dts = if flags & 0x40 != 0 {
        timestamp(pes.get(14..19)?)
    } else {
        pts
    };
    Some((pts, dts, random_access))
}

/// A 33-bit PES timestamp from its five bytes.
fn timestamp(p: &[u8]) -> i64 {
    let byte = |i: usize| i64::from(p.get(i).copied().unwrap_or(0));
    ((byte(0) >> 1) & 0x7) << 30
        | byte(1) << 22
        | (byte(2) >> 1) << 15
        | byte(3) << 7
        | byte(4) >> 1
}

/// Where the first packet starts and the packet size: the first offset from which `SYNC_RUN`
/// sync bytes follow at one of the packet sizes.
fn alignment(bytes: &[u8]) -> Option<(usize, usize)> {
    for size in PACKET_SIZES {
        let sync_at = size - 188;
        for start in 0..size {
            let synced =
                (0..SYNC_RUN).all(|k| bytes.get(start + sync_at + k * size) == Some(&0x47));
            if synced {
                return Some((start, size));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(pid: i32, pts: Option<i64>, random_access: bool) -> Vec<u8> {
        let mut p = vec![0xffu8; 188];
        p[0] = 0x47;
        p[1] = (if pts.is_some() { 0x40 } else { 0 }) | ((pid >> 8) as u8 & 0x1f);
        p[2] = pid as u8;
        let mut at = 4;
        if random_access {
            p[3] = 0x30;
            p[4] = 1;
            p[5] = 0x40;
            at = 6;
        } else {
            p[3] = 0x10;
        }
        if let Some(pts) = pts {
            p[at..at + 9].copy_from_slice(&[0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5]);
            p[at + 9] = 0x21 | ((pts >> 29) as u8 & 0x0e);
            p[at + 10] = (pts >> 22) as u8;
            p[at + 11] = ((pts >> 14) as u8 & 0xfe) | 1;
            p[at + 12] = (pts >> 7) as u8;
            p[at + 13] = ((pts << 1) as u8 & 0xfe) | 1;
        }
        p
    }

    #[test]
    fn pes_headers_are_read_from_any_alignment() {
        let mut bytes = vec![0u8; 57]; // a partial packet first
        for (pts, key) in [
            (90_000, true),
            (93_600, false),
            (97_200, false),
            ((1 << 33) - 1, true),
        ] {
            bytes.extend(packet(0x100, Some(pts), key));
            bytes.extend(packet(0x101, Some(5), false));
            bytes.extend(packet(0x100, None, false));
        }
        bytes.extend(packet(0x100, None, false));
        bytes.extend(packet(0x100, None, false));
        let found = pes_starts(&bytes, 1000, 0x100);
        let times: Vec<(i64, bool)> = found.iter().map(|p| (p.pts, p.random_access)).collect();
        assert_eq!(
            times,
            vec![
                (90_000, true),
                (93_600, false),
                (97_200, false),
                ((1 << 33) - 1, true)
            ]
        );
        assert_eq!(found[1].pos, 1000 + 57 + 3 * 188);
        assert!(found.iter().all(|p| p.dts == p.pts));
        assert_eq!(pes_starts(&bytes, 0, 0x101).len(), 4);
        assert!(pes_starts(&bytes[..300], 0, 0x100).is_empty());
        assert_eq!(unwrap_after(10, (1 << 33) - 100), (1 << 33) + 10);
    }
}
