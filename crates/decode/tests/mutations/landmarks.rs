//! Just enough of each container's structure (MP4 atoms, Matroska EBML elements, AVI RIFF chunks,
//! MXF KLV packets, MPEG-TS packets) to aim mutations at sizes, counts and values.

use std::ops::Range;

/// How a numeric field is stored in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    U8,
    Be16,
    Be32,
    Be64,
    Le32,
    /// An EBML variable-length integer of this many bytes (length marker included).
    Vint(usize),
    /// A big-endian unsigned integer of this many bytes (EBML uints, BER long-form lengths).
    BeN(usize),
}

impl Encoding {
    pub fn width(self) -> usize {
        match self {
            Self::U8 => 1,
            Self::Be16 => 2,
            Self::Be32 | Self::Le32 => 4,
            Self::Be64 => 8,
            Self::Vint(n) | Self::BeN(n) => n,
        }
    }

    /// The largest value the field can hold (an EBML size of all ones means "unknown" instead).
    pub fn max(self) -> u64 {
        match self {
            Self::Vint(n) => (1u64 << (7 * n.min(8))) - 2,
            other => match other.width() {
                8.. => u64::MAX,
                n => (1u64 << (8 * n)) - 1,
            },
        }
    }

    /// Writes `value` (clamped to the field's range) at `at`; false when the field lies outside.
    pub fn write(self, data: &mut [u8], at: usize, value: u64) -> bool {
        let width = self.width();
        let Some(field) = data.get_mut(at..at + width) else {
            return false;
        };
        let value = value.min(self.max());
        match self {
            Self::Le32 => field.copy_from_slice(&(value as u32).to_le_bytes()),
            Self::Vint(n) => {
                put_be(field, value);
                field[0] |= 0x80 >> (n - 1);
            }
            _ => put_be(field, value),
        }
        true
    }

    /// An EBML size of all ones: "unknown", read to the end of the parent.
    pub fn write_unknown_size(self, data: &mut [u8], at: usize) -> bool {
        let Self::Vint(n) = self else { return false };
        let Some(field) = data.get_mut(at..at + n) else {
            return false;
        };
        field.fill(0xff);
        field[0] = 0xff >> (n - 1);
        true
    }
}

fn put_be(field: &mut [u8], value: u64) {
    let bytes = value.to_be_bytes();
    let n = field.len().min(8);
    let start = field.len() - n;
    field[start..].copy_from_slice(&bytes[8 - n..]);
    field[..start].fill(0);
}

/// What a field means, which decides the values a mutation tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The length of an atom, element, chunk or packet part.
    Size,
    /// How many entries or samples follow.
    Count,
    /// Any other number: offsets, durations, time scales, dimensions, flags.
    Value,
}

/// One numeric field of the original file.
#[derive(Debug, Clone)]
pub struct Field {
    pub at: usize,
    pub encoding: Encoding,
    pub value: u64,
    pub kind: Kind,
    pub name: String,
}

/// The structure found in one file.
#[derive(Debug, Default)]
pub struct Landmarks {
    pub fields: Vec<Field>,
    /// Offsets where a unit (atom, element, chunk, packet) starts.
    pub boundaries: Vec<usize>,
    /// Headers and metadata (not media payload): where damage reaches the parsers.
    pub metadata: Vec<Range<usize>>,
}

impl Landmarks {
    fn field(&mut self, data: &[u8], at: usize, encoding: Encoding, kind: Kind, name: &str) {
        if let Some(value) = read(data, at, encoding) {
            self.fields.push(Field {
                at,
                encoding,
                value,
                kind,
                name: name.to_owned(),
            });
        }
    }

    fn metadata(&mut self, range: Range<usize>) {
        if range.start < range.end {
            self.metadata.push(range);
        }
    }

    pub fn of_kind(&self, kind: Kind) -> Vec<&Field> {
        self.fields.iter().filter(|f| f.kind == kind).collect()
    }
}

/// Finds the landmarks of `data`, a file called `name` (its extension says the container).
pub fn find(name: &str, data: &[u8]) -> Landmarks {
    let mut marks = Landmarks::default();
    match super::case::extension_of(name).unwrap_or_default().as_str() {
        "mov" | "mp4" | "m4v" => mp4::walk(data, 0..data.len(), &mut marks, 0),
        "mkv" | "webm" => ebml::walk(data, 0..data.len(), &mut marks, 0),
        "avi" => riff::walk(data, 0..data.len(), &mut marks, 0),
        "mxf" => mxf::walk(data, &mut marks),
        "ts" => ts::walk(data, &mut marks),
        _ => {}
    }
    marks
}

fn read(data: &[u8], at: usize, encoding: Encoding) -> Option<u64> {
    let bytes = data.get(at..at.checked_add(encoding.width())?)?;
    Some(match encoding {
        Encoding::Le32 => u64::from(u32::from_le_bytes(bytes.try_into().ok()?)),
        Encoding::Vint(n) => be(bytes) & ((1u64 << (7 * n.min(8))) - 1),
        _ => be(bytes),
    })
}

fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b))
}

fn be32(data: &[u8], at: usize) -> Option<u64> {
    read(data, at, Encoding::Be32)
}

/// Records fields of the first, middle and last entries of a table.
fn table_entries(
    marks: &mut Landmarks,
    data: &[u8],
    table: Range<usize>,
    count: u64,
    entry_size: usize,
    layout: &[(usize, Encoding, Kind, &str)],
) {
    let count = count.min(((table.end - table.start) / entry_size.max(1)) as u64);
    let mut picks = vec![0, count / 2, count.saturating_sub(1)];
    picks.dedup();
    for i in picks.into_iter().filter(|&i| i < count) {
        let entry = table.start + i as usize * entry_size;
        for &(offset, encoding, kind, name) in layout {
            marks.field(data, entry + offset, encoding, kind, name);
        }
    }
}

/// ISO BMFF / QuickTime atoms.
mod mp4 {
    use super::{Encoding, Kind, Landmarks, Range, be32, read, table_entries};
    use Encoding::{Be16, Be32, Be64, U8};
    use Kind::{Count, Size, Value};

    const CONTAINERS: &[&[u8; 4]] = &[
        b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf", b"mvex", b"moof", b"traf",
        b"mfra", b"udta", b"tref",
    ];
    /// Visual sample entry fields before its child atoms (ISO 14496-12 §12.1.3).
    const VISUAL_ENTRY_FIELDS: usize = 78;

    pub fn walk(data: &[u8], range: Range<usize>, marks: &mut Landmarks, depth: usize) {
        each_atom(data, range, marks, depth, |kind, body, marks| {
            if CONTAINERS.contains(&kind) {
                walk(data, body, marks, depth + 1);
            } else if kind == b"meta" {
                walk(data, body.start + 4..body.end, marks, depth + 1);
            } else if kind == b"stsd" {
                marks.field(data, body.start + 4, Be32, Count, "stsd.entry_count");
                sample_entries(data, body.start + 8..body.end, marks, depth + 1);
            } else {
                leaf(data, kind, body, marks);
            }
        });
    }

    /// Walks the atoms in `range`, recording each one's size field and header, and hands each
    /// one's type and body to `visit`. Stops at the first atom that does not fit.
    fn each_atom(
        data: &[u8],
        range: Range<usize>,
        marks: &mut Landmarks,
        depth: usize,
        mut visit: impl FnMut(&[u8; 4], Range<usize>, &mut Landmarks),
    ) {
        let mut pos = range.start;
        while depth < 16 && pos + 8 <= range.end {
            let Some(size32) = be32(data, pos) else {
                return;
            };
            let Ok(kind) = <&[u8; 4]>::try_from(&data[pos + 4..pos + 8]) else {
                return;
            };
            let (size, header, field) = match size32 {
                0 => ((range.end - pos) as u64, 8, None),
                1 => match read(data, pos + 8, Be64) {
                    Some(size) => (size, 16, Some((pos + 8, Be64))),
                    None => return,
                },
                size => (size, 8, Some((pos, Be32))),
            };
            let Some(end) = usize::try_from(size).ok().and_then(|s| pos.checked_add(s)) else {
                return;
            };
            if size < header || end > range.end {
                return;
            }
            let name = format!("{} size", String::from_utf8_lossy(kind));
            if let Some((at, encoding)) = field {
                marks.field(data, at, encoding, Size, &name);
            }
            marks.boundaries.push(pos);
            let body = pos + header as usize..end;
            if kind == b"mdat" {
                marks.metadata(pos..body.start);
            } else {
                marks.metadata(pos..end);
            }
            visit(kind, body, marks);
            pos = end;
        }
    }

    fn sample_entries(data: &[u8], range: Range<usize>, marks: &mut Landmarks, depth: usize) {
        each_atom(data, range, marks, depth, |_, body, marks| {
            marks.field(data, body.start + 24, Be16, Value, "sample entry width");
            marks.field(data, body.start + 26, Be16, Value, "sample entry height");
            if body.start + VISUAL_ENTRY_FIELDS <= body.end {
                walk(
                    data,
                    body.start + VISUAL_ENTRY_FIELDS..body.end,
                    marks,
                    depth + 1,
                );
            }
        });
    }

    /// Counts, table entries and other numbers inside the leaf atoms FFmpeg's mov demuxer reads.
    fn leaf(data: &[u8], kind: &[u8; 4], body: Range<usize>, marks: &mut Landmarks) {
        let at = body.start;
        let version = data.get(at).copied().unwrap_or(0);
        let count = |offset: usize| be32(data, at + offset).unwrap_or(0);
        match kind {
            b"stts" | b"ctts" => {
                marks.field(data, at + 4, Be32, Count, "stts/ctts.entry_count");
                let layout = [
                    (0, Be32, Count, "stts/ctts.sample_count"),
                    (4, Be32, Value, "stts/ctts.delta"),
                ];
                table_entries(marks, data, at + 8..body.end, count(4), 8, &layout);
            }
            b"stss" => {
                marks.field(data, at + 4, Be32, Count, "stss.entry_count");
                let layout = [(0, Be32, Value, "stss.sample_number")];
                table_entries(marks, data, at + 8..body.end, count(4), 4, &layout);
            }
            b"stsz" => {
                marks.field(data, at + 4, Be32, Size, "stsz.sample_size");
                marks.field(data, at + 8, Be32, Count, "stsz.sample_count");
                let layout = [(0, Be32, Size, "stsz.entry_size")];
                table_entries(marks, data, at + 12..body.end, count(8), 4, &layout);
            }
            b"stsc" => {
                marks.field(data, at + 4, Be32, Count, "stsc.entry_count");
                let layout = [
                    (0, Be32, Value, "stsc.first_chunk"),
                    (4, Be32, Count, "stsc.samples_per_chunk"),
                    (8, Be32, Value, "stsc.description_index"),
                ];
                table_entries(marks, data, at + 8..body.end, count(4), 12, &layout);
            }
            b"stco" => {
                marks.field(data, at + 4, Be32, Count, "stco.entry_count");
                let layout = [(0, Be32, Value, "stco.chunk_offset")];
                table_entries(marks, data, at + 8..body.end, count(4), 4, &layout);
            }
            b"co64" => {
                marks.field(data, at + 4, Be32, Count, "co64.entry_count");
                let layout = [(0, Be64, Value, "co64.chunk_offset")];
                table_entries(marks, data, at + 8..body.end, count(4), 8, &layout);
            }
            b"elst" => {
                marks.field(data, at + 4, Be32, Count, "elst.entry_count");
                let (wide, size) = if version == 1 { (Be64, 20) } else { (Be32, 12) };
                let layout = [
                    (0, wide, Value, "elst.segment_duration"),
                    (wide.width(), wide, Value, "elst.media_time"),
                    (2 * wide.width(), Be32, Value, "elst.media_rate"),
                ];
                table_entries(marks, data, at + 8..body.end, count(4), size, &layout);
            }
            b"mdhd" | b"mvhd" => {
                let (scale, wide) = if version == 1 { (20, Be64) } else { (12, Be32) };
                marks.field(data, at + scale, Be32, Value, "mdhd/mvhd.timescale");
                marks.field(data, at + scale + 4, wide, Value, "mdhd/mvhd.duration");
            }
            b"tkhd" => {
                marks.field(data, body.end - 8, Be32, Value, "tkhd.width");
                marks.field(data, body.end - 4, Be32, Value, "tkhd.height");
            }
            b"trun" => {
                marks.field(data, at + 4, Be32, Count, "trun.sample_count");
                if data.get(at + 3).is_some_and(|flags| flags & 1 != 0) {
                    marks.field(data, at + 8, Be32, Value, "trun.data_offset");
                }
            }
            b"tfhd" => marks.field(data, at + 4, Be32, Value, "tfhd.track_id"),
            b"tfra" => {
                marks.field(data, at + 4, Be32, Value, "tfra.track_id");
                marks.field(data, at + 8, Be32, Value, "tfra.length_size_of_numbers");
                marks.field(data, at + 12, Be32, Count, "tfra.number_of_entries");
                let sizes = be32(data, at + 8).unwrap_or(0) as usize;
                let numbers = ((sizes >> 4) & 3) + ((sizes >> 2) & 3) + (sizes & 3) + 3;
                let (wide, size) = if version == 1 { (Be64, 16) } else { (Be32, 8) };
                let layout = [
                    (0, wide, Value, "tfra.time"),
                    (wide.width(), wide, Value, "tfra.moof_offset"),
                ];
                table_entries(
                    marks,
                    data,
                    at + 16..body.end,
                    count(12),
                    size + numbers,
                    &layout,
                );
            }
            b"mfro" => marks.field(data, at + 4, Be32, Size, "mfro.mfra_size"),
            b"tfdt" => {
                let wide = if version == 1 { Be64 } else { Be32 };
                marks.field(data, at + 4, wide, Value, "tfdt.base_media_decode_time");
            }
            b"trex" => {
                marks.field(data, at + 12, Be32, Value, "trex.default_sample_duration");
                marks.field(data, at + 16, Be32, Size, "trex.default_sample_size");
            }
            b"avcC" => {
                marks.field(data, at + 5, U8, Count, "avcC.sps_count");
                marks.field(data, at + 6, Be16, Size, "avcC.sps_length");
            }
            b"hvcC" => {
                marks.field(data, at + 22, U8, Count, "hvcC.array_count");
                marks.field(data, at + 24, Be16, Count, "hvcC.nalu_count");
                marks.field(data, at + 26, Be16, Size, "hvcC.nalu_length");
            }
            _ => {}
        }
    }
}

/// Matroska / WebM EBML elements.
mod ebml {
    use super::{Encoding, Kind, Landmarks, Range, read};

    const MASTERS: &[u32] = &[
        0x1A45_DFA3, // EBML
        0x1853_8067, // Segment
        0x114D_9B74, // SeekHead
        0x4DBB,      // Seek
        0x1549_A966, // Info
        0x1654_AE6B, // Tracks
        0xAE,        // TrackEntry
        0xE0,        // Video
        0x55B0,      // Colour
        0x1F43_B675, // Cluster
        0xA0,        // BlockGroup
        0x1C53_BB6B, // Cues
        0xBB,        // CuePoint
        0xB7,        // CueTrackPositions
        0x1254_C367, // Tags
        0x7373,      // Tag
        0x63C0,      // Targets
        0x67C8,      // SimpleTag
        0x6D80,      // ContentEncodings
        0x6240,      // ContentEncoding
    ];
    const UINTS: &[(u32, &str)] = &[
        (0x42F7, "EBMLReadVersion"),
        (0x42F2, "EBMLMaxIDLength"),
        (0x42F3, "EBMLMaxSizeLength"),
        (0x4285, "DocTypeReadVersion"),
        (0x2A_D7B1, "TimestampScale"),
        (0xD7, "TrackNumber"),
        (0x83, "TrackType"),
        (0x23_E383, "DefaultDuration"),
        (0xB0, "PixelWidth"),
        (0xBA, "PixelHeight"),
        (0x54B0, "DisplayWidth"),
        (0x54BA, "DisplayHeight"),
        (0x53AC, "SeekPosition"),
        (0xB3, "CueTime"),
        (0xF7, "CueTrack"),
        (0xF1, "CueClusterPosition"),
        (0xF0, "CueRelativePosition"),
        (0xE7, "Timestamp"),
        (0x9B, "BlockDuration"),
        (0xFB, "ReferenceBlock"),
        (0x9C, "FlagLacing"),
    ];
    const SIMPLE_BLOCK: u32 = 0xA3;
    const BLOCK: u32 = 0xA1;

    /// An element ID (1–4 bytes, marker kept) at `at`.
    fn element_id(data: &[u8], at: usize) -> Option<(u32, usize)> {
        let len = data.get(at)?.leading_zeros() as usize + 1;
        if len > 4 {
            return None;
        }
        Some((read(data, at, Encoding::BeN(len))? as u32, len))
    }

    /// A size or number (1–8 bytes, marker removed) at `at`; None for a malformed one.
    fn vint(data: &[u8], at: usize) -> Option<(u64, usize)> {
        let len = data.get(at)?.leading_zeros() as usize + 1;
        if len > 8 {
            return None;
        }
        Some((read(data, at, Encoding::Vint(len))?, len))
    }

    pub fn walk(data: &[u8], range: Range<usize>, marks: &mut Landmarks, depth: usize) {
        let mut pos = range.start;
        while depth < 16 && pos < range.end {
            let Some((id, id_len)) = element_id(data, pos) else {
                return;
            };
            let Some((size, size_len)) = vint(data, pos + id_len) else {
                return;
            };
            let body_start = pos + id_len + size_len;
            let unknown = size == Encoding::Vint(size_len).max() + 1;
            let body_end = if unknown {
                range.end
            } else {
                match usize::try_from(size)
                    .ok()
                    .and_then(|s| body_start.checked_add(s))
                {
                    Some(end) if end <= range.end => end,
                    _ => return,
                }
            };
            let name = format!("EBML {id:X} size");
            marks.field(
                data,
                pos + id_len,
                Encoding::Vint(size_len),
                Kind::Size,
                &name,
            );
            marks.boundaries.push(pos);
            marks.metadata(pos..body_start);
            let body = body_start..body_end;
            if MASTERS.contains(&id) {
                walk(data, body, marks, depth + 1);
            } else if id == SIMPLE_BLOCK || id == BLOCK {
                block(data, body, marks);
            } else {
                marks.metadata(body.clone());
                if let Some(&(_, name)) = UINTS.iter().find(|(uint, _)| *uint == id)
                    && (1..=8).contains(&body.len())
                {
                    marks.field(
                        data,
                        body.start,
                        Encoding::BeN(body.len()),
                        Kind::Value,
                        name,
                    );
                }
            }
            pos = body_end;
        }
    }

    /// A block's header: track number, relative timestamp and flags (lacing lives there).
    fn block(data: &[u8], body: Range<usize>, marks: &mut Landmarks) {
        let Some((_, track_len)) = vint(data, body.start) else {
            return;
        };
        let header_end = (body.start + track_len + 3).min(body.end);
        marks.metadata(body.start..header_end);
        let (track, timestamp) = (body.start, body.start + track_len);
        marks.field(
            data,
            track,
            Encoding::Vint(track_len),
            Kind::Value,
            "block track",
        );
        marks.field(
            data,
            timestamp,
            Encoding::Be16,
            Kind::Value,
            "block timestamp",
        );
        marks.field(
            data,
            timestamp + 2,
            Encoding::U8,
            Kind::Value,
            "block flags",
        );
    }
}

/// AVI's RIFF chunks and lists.
mod riff {
    use super::{Encoding, Kind, Landmarks, Range, read, table_entries};
    use Encoding::Le32;
    use Kind::{Count, Size, Value};

    pub fn walk(data: &[u8], range: Range<usize>, marks: &mut Landmarks, depth: usize) {
        let mut pos = range.start;
        while depth < 16 && pos + 8 <= range.end {
            let fourcc = &data[pos..pos + 4];
            let Some(size) = read(data, pos + 4, Le32) else {
                return;
            };
            let body = pos + 8..pos + 8 + size as usize;
            if body.end > range.end {
                return;
            }
            let name = format!("{} size", String::from_utf8_lossy(fourcc));
            marks.field(data, pos + 4, Le32, Size, &name);
            marks.boundaries.push(pos);
            if fourcc == b"RIFF" || fourcc == b"LIST" {
                marks.metadata(pos..(pos + 12).min(body.end));
                if body.len() >= 4 {
                    walk(data, body.start + 4..body.end, marks, depth + 1);
                }
            } else {
                let is_media = fourcc[..2].iter().all(u8::is_ascii_digit);
                marks.metadata(if is_media {
                    pos..body.start
                } else {
                    pos..body.end
                });
                chunk_fields(data, fourcc, body.clone(), marks);
            }
            pos = body.end + (size as usize & 1);
        }
    }

    fn chunk_fields(data: &[u8], fourcc: &[u8], body: Range<usize>, marks: &mut Landmarks) {
        let at = body.start;
        let layout: &[(usize, Kind, &str)] = match fourcc {
            b"avih" => &[
                (0, Value, "avih.microseconds_per_frame"),
                (16, Count, "avih.total_frames"),
                (24, Count, "avih.streams"),
                (28, Size, "avih.suggested_buffer_size"),
                (32, Value, "avih.width"),
                (36, Value, "avih.height"),
            ],
            b"strh" => &[
                (20, Value, "strh.scale"),
                (24, Value, "strh.rate"),
                (28, Value, "strh.start"),
                (32, Count, "strh.length"),
                (36, Size, "strh.suggested_buffer_size"),
            ],
            b"strf" => &[
                (0, Size, "strf.header_size"),
                (4, Value, "strf.width"),
                (8, Value, "strf.height"),
                (20, Size, "strf.image_size"),
            ],
            b"indx" => &[(4, Count, "indx.entries_in_use")],
            b"idx1" => {
                let layout = [
                    (8, Le32, Value, "idx1.offset"),
                    (12, Le32, Size, "idx1.size"),
                ];
                let count = (body.len() / 16) as u64;
                table_entries(marks, data, body, count, 16, &layout);
                return;
            }
            _ => &[],
        };
        for &(offset, kind, name) in layout {
            if at + offset + 4 <= body.end {
                marks.field(data, at + offset, Le32, kind, name);
            }
        }
    }
}

/// MXF's KLV packets, with the local sets and packs inside the metadata ones.
mod mxf {
    use super::{Encoding, Kind, Landmarks, Range, be32, read};
    use Encoding::{Be16, Be32, Be64, BeN, U8};
    use Kind::{Count, Size, Value};

    const KEY_PREFIX: [u8; 4] = [0x06, 0x0E, 0x2B, 0x34];
    /// Partition pack fields: offsets inside the pack.
    const PARTITION: &[(usize, Encoding, Kind, &str)] = &[
        (4, Be32, Size, "partition.kag_size"),
        (8, Be64, Value, "partition.this_partition"),
        (16, Be64, Value, "partition.previous_partition"),
        (24, Be64, Value, "partition.footer_partition"),
        (32, Be64, Size, "partition.header_byte_count"),
        (40, Be64, Size, "partition.index_byte_count"),
        (48, Be32, Value, "partition.index_sid"),
        (52, Be64, Value, "partition.body_offset"),
        (60, Be32, Value, "partition.body_sid"),
        (80, Be32, Count, "partition.essence_container_count"),
    ];

    pub fn walk(data: &[u8], marks: &mut Landmarks) {
        let mut pos = 0;
        while pos + 17 <= data.len() && data[pos..pos + 4] == KEY_PREFIX {
            let Some((length, length_field)) = ber_length(data, pos + 16) else {
                return;
            };
            let value_start = pos + 17 + length_field.map_or(0, |(_, e)| e.width());
            let Some(end) = usize::try_from(length)
                .ok()
                .and_then(|l| value_start.checked_add(l))
            else {
                return;
            };
            if end > data.len() {
                return;
            }
            let (at, encoding) = length_field.unwrap_or((pos + 16, U8));
            marks.field(data, at, encoding, Size, "KLV length");
            marks.boundaries.push(pos);
            marks.metadata(pos..value_start);
            let key = &data[pos..pos + 16];
            let body = value_start..end;
            if key[4] == 0x02 {
                marks.metadata(body.clone());
                if is_partition_pack(key) {
                    partition_pack(data, body, marks);
                } else if key[5] == 0x53 {
                    local_set(data, body, marks);
                } else {
                    batch(data, body.start, body.len(), marks);
                }
            }
            pos = end;
        }
    }

    /// Header, body and footer partition packs: 06.0E.2B.34.02.05.01.01.0D.01.02.01.01.0x.…
    fn is_partition_pack(key: &[u8]) -> bool {
        key[5] == 0x05 && key[8..13] == [0x0D, 0x01, 0x02, 0x01, 0x01] && (2..=4).contains(&key[13])
    }

    /// A BER length at `at`: its value, and for the long form where its bytes are.
    fn ber_length(data: &[u8], at: usize) -> Option<(u64, Option<(usize, Encoding)>)> {
        let first = *data.get(at)?;
        if first < 0x80 {
            return Some((u64::from(first), None));
        }
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 8 {
            return None;
        }
        Some((read(data, at + 1, BeN(n))?, Some((at + 1, BeN(n)))))
    }

    fn partition_pack(data: &[u8], body: Range<usize>, marks: &mut Landmarks) {
        for &(offset, encoding, kind, name) in PARTITION {
            if body.start + offset + encoding.width() <= body.end {
                marks.field(data, body.start + offset, encoding, kind, name);
            }
        }
    }

    /// Items of 2-byte tags and 2-byte lengths; 4- and 8-byte items are numbers worth aiming at.
    fn local_set(data: &[u8], body: Range<usize>, marks: &mut Landmarks) {
        let mut pos = body.start;
        while pos + 4 <= body.end {
            let Some(len) = read(data, pos + 2, Be16) else {
                return;
            };
            let item = pos + 4..pos + 4 + len as usize;
            if item.end > body.end {
                return;
            }
            marks.field(data, pos + 2, Be16, Size, "local item length");
            match item.len() {
                4 => marks.field(data, item.start, Be32, Value, "local item u32"),
                8 => marks.field(data, item.start, Be64, Value, "local item u64"),
                _ => batch(data, item.start, item.len(), marks),
            }
            pos = item.end;
        }
    }

    /// An array or batch: a count and an item size, then the items.
    fn batch(data: &[u8], at: usize, len: usize, marks: &mut Landmarks) {
        let (Some(count), Some(item)) = (be32(data, at), be32(data, at + 4)) else {
            return;
        };
        if len >= 8 && count.checked_mul(item).and_then(|n| n.checked_add(8)) == Some(len as u64) {
            marks.field(data, at, Be32, Count, "batch count");
            marks.field(data, at + 4, Be32, Size, "batch item size");
        }
    }
}

/// MPEG-TS packets, with their adaptation fields, PES headers and PSI sections.
mod ts {
    use super::{Encoding, Kind, Landmarks};
    use Encoding::{Be16, BeN, U8};
    use Kind::{Size, Value};

    const PACKET: usize = 188;

    pub fn walk(data: &[u8], marks: &mut Landmarks) {
        for pos in (0..data.len().saturating_sub(PACKET - 1)).step_by(PACKET) {
            if data[pos] != 0x47 {
                return;
            }
            packet(data, pos, marks);
        }
    }

    fn packet(data: &[u8], pos: usize, marks: &mut Landmarks) {
        let end = pos + PACKET;
        marks.boundaries.push(pos);
        marks.field(data, pos + 1, Be16, Value, "TS flags and PID");
        marks.metadata(pos..pos + 4);
        let unit_start = data[pos + 1] & 0x40 != 0;
        let control = data[pos + 3] >> 4;
        let mut at = pos + 4;
        if control & 2 != 0 {
            marks.field(data, at, U8, Size, "adaptation_field_length");
            let skip = 1 + usize::from(data[at]);
            marks.metadata(at..(at + skip).min(end));
            at += skip;
        }
        if control & 1 == 0 || !unit_start || at + 9 > end {
            return;
        }
        if data[at..at + 3] == [0, 0, 1] {
            marks.field(data, at + 4, Be16, Size, "PES_packet_length");
            marks.field(data, at + 8, U8, Size, "PES_header_data_length");
            marks.field(data, at + 9, BeN(5), Value, "PES PTS");
            let header_end = (at + 9 + usize::from(data[at + 8])).min(end);
            marks.metadata(at..header_end);
        } else {
            marks.field(data, at, U8, Size, "PSI pointer_field");
            let table = at + 1 + usize::from(data[at]);
            marks.field(data, table + 1, Be16, Size, "PSI section_length");
            marks.metadata(at..end);
        }
    }
}
