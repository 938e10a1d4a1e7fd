//! Deterministic damage: a seeded generator and the mutation operators (bit flips, overwritten
//! runs, truncations, sizes/counts/values changed, bytes spliced in, chunks deleted or duplicated).

use super::landmarks::{Encoding, Field, Kind, Landmarks};

/// SplitMix64: small, fast, and the same sequence on every machine for a seed.
pub struct Rng(u64);

impl Rng {
    /// The generator of one case: independent of which thread runs it or in what order.
    pub fn for_case(seed: u64, fixture: &str, case: u64) -> Self {
        let name = fixture.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let mut rng = Self(seed ^ name.rotate_left(17) ^ case.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        rng.next_u64();
        rng
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// Uniform in `low..=high`.
    pub fn between(&mut self, low: usize, high: usize) -> usize {
        low + self.below(high.saturating_sub(low) + 1)
    }

    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// A damaged copy of a file and what was done to it, in words.
pub struct Mutant {
    pub bytes: Vec<u8>,
    pub description: String,
}

/// One to four mutations of `original`, aimed with its landmarks.
pub fn mutate(original: &[u8], marks: &Landmarks, rng: &mut Rng) -> Mutant {
    let mut bytes = original.to_vec();
    let rounds = if rng.one_in(5) { rng.between(2, 4) } else { 1 };
    let steps: Vec<String> = (0..rounds)
        .map(|_| mutate_once(&mut bytes, marks, rng))
        .collect();
    Mutant {
        bytes,
        description: steps.join("; "),
    }
}

#[derive(Clone, Copy)]
enum Op {
    FlipBits,
    OverwriteRun,
    Truncate,
    SetField(Kind),
    InterestingInt,
    Splice,
    DeleteChunk,
    DuplicateChunk,
}

/// Relative weights: structure-aware changes and truncations get the most cases.
const OPS: &[(usize, Op)] = &[
    (12, Op::FlipBits),
    (9, Op::OverwriteRun),
    (12, Op::Truncate),
    (14, Op::SetField(Kind::Size)),
    (12, Op::SetField(Kind::Count)),
    (10, Op::SetField(Kind::Value)),
    (7, Op::InterestingInt),
    (8, Op::Splice),
    (8, Op::DeleteChunk),
    (8, Op::DuplicateChunk),
];

fn pick_op(rng: &mut Rng) -> Op {
    let total: usize = OPS.iter().map(|(w, _)| w).sum();
    let mut roll = rng.below(total);
    for &(weight, op) in OPS {
        if roll < weight {
            return op;
        }
        roll -= weight;
    }
    Op::FlipBits
}

fn mutate_once(bytes: &mut Vec<u8>, marks: &Landmarks, rng: &mut Rng) -> String {
    if bytes.is_empty() {
        return splice(bytes, marks, rng);
    }
    match pick_op(rng) {
        Op::FlipBits => flip_bits(bytes, marks, rng),
        Op::OverwriteRun => overwrite_run(bytes, marks, rng),
        Op::Truncate => truncate(bytes, marks, rng),
        Op::SetField(kind) => set_field(bytes, marks, kind, rng),
        Op::InterestingInt => interesting_int(bytes, marks, rng),
        Op::Splice => splice(bytes, marks, rng),
        Op::DeleteChunk => delete_chunk(bytes, marks, rng),
        Op::DuplicateChunk => duplicate_chunk(bytes, marks, rng),
    }
}

/// A byte offset below `len`: half the time anywhere, half the time inside headers/metadata.
fn spot(len: usize, marks: &Landmarks, rng: &mut Rng) -> usize {
    if rng.one_in(2)
        && let Some(range) = rng.pick(&marks.metadata)
    {
        let at = range.start + rng.below(range.len());
        if at < len {
            return at;
        }
    }
    rng.below(len)
}

/// An offset at or near a unit boundary (or anywhere, if the file has none).
fn near_boundary(len: usize, marks: &Landmarks, rng: &mut Rng) -> usize {
    let Some(&boundary) = rng.pick(&marks.boundaries) else {
        return rng.below(len + 1);
    };
    let at = match rng.below(4) {
        0 => boundary,
        1 => boundary.saturating_sub(rng.between(1, 16)),
        _ => boundary + rng.between(1, 16),
    };
    at.min(len)
}

fn flip_bits(bytes: &mut [u8], marks: &Landmarks, rng: &mut Rng) -> String {
    let flips = rng.between(1, 8);
    let mut at = Vec::with_capacity(flips);
    for _ in 0..flips {
        let offset = spot(bytes.len(), marks, rng);
        bytes[offset] ^= 1 << rng.below(8);
        at.push(format!("{offset:#x}"));
    }
    format!("flipped bits at {}", at.join(","))
}

fn overwrite_run(bytes: &mut [u8], marks: &Landmarks, rng: &mut Rng) -> String {
    let at = spot(bytes.len(), marks, rng);
    let len = rng.between(1, 64).min(bytes.len() - at);
    let (fill, what) = match rng.below(4) {
        0 => (vec![0; len], "zeros"),
        1 => (vec![0xff; len], "0xff"),
        _ => (rng.bytes(len), "random bytes"),
    };
    bytes[at..at + len].copy_from_slice(&fill);
    format!("overwrote {len} bytes at {at:#x} with {what}")
}

fn truncate(bytes: &mut Vec<u8>, marks: &Landmarks, rng: &mut Rng) -> String {
    let len = bytes.len();
    let at = match rng.below(3) {
        0 => rng.below(len),
        _ => near_boundary(len, marks, rng),
    };
    bytes.truncate(at);
    format!("truncated to {at} of {len} bytes")
}

/// The values worth trying in a field: edges, off-by-ones, huge counts, the file's own size.
fn interesting_values(field: &Field, file_len: usize, rng: &mut Rng) -> Vec<u64> {
    let v = field.value;
    let max = field.encoding.max();
    let mut values = vec![
        0,
        1,
        v.saturating_sub(1),
        v.saturating_add(1),
        v.saturating_mul(2),
        v / 2,
        max,
        max - 1,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
        10_000_000,
        60_000_000,
        file_len as u64,
        (file_len - field.at.min(file_len)) as u64,
        rng.next_u64() & max,
    ];
    if field.kind == Kind::Count {
        values.extend([1 << 20, 1 << 24, 1 << 28, 0x4000_0000]);
    }
    values.retain(|&x| x <= max && x != v);
    values
}

fn set_field(bytes: &mut [u8], marks: &Landmarks, kind: Kind, rng: &mut Rng) -> String {
    let fields = marks.of_kind(kind);
    let Some(&field) = rng.pick(&fields) else {
        return flip_bits(bytes, marks, rng);
    };
    if matches!(field.encoding, Encoding::Vint(_)) && rng.one_in(6) {
        field.encoding.write_unknown_size(bytes, field.at);
        return format!("made {} at {:#x} unknown", field.name, field.at);
    }
    let values = interesting_values(field, bytes.len(), rng);
    let Some(&value) = rng.pick(&values) else {
        return flip_bits(bytes, marks, rng);
    };
    if !field.encoding.write(bytes, field.at, value) {
        return flip_bits(bytes, marks, rng);
    }
    format!(
        "set {} at {:#x} from {} to {value}",
        field.name, field.at, field.value
    )
}

fn interesting_int(bytes: &mut [u8], marks: &Landmarks, rng: &mut Rng) -> String {
    const VALUES: &[u32] = &[
        0,
        1,
        0x7f,
        0x80,
        0xff,
        0xffff,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
    ];
    let at = spot(bytes.len(), marks, rng).min(bytes.len().saturating_sub(4));
    let value = *rng.pick(VALUES).unwrap_or(&0);
    let encoded = if rng.one_in(2) {
        value.to_be_bytes()
    } else {
        value.to_le_bytes()
    };
    let n = encoded.len().min(bytes.len() - at);
    bytes[at..at + n].copy_from_slice(&encoded[..n]);
    format!("wrote {value:#x} at {at:#x}")
}

fn splice(bytes: &mut Vec<u8>, marks: &Landmarks, rng: &mut Rng) -> String {
    let at = if rng.one_in(2) {
        near_boundary(bytes.len(), marks, rng)
    } else {
        rng.below(bytes.len() + 1)
    };
    let n = rng.between(1, 512);
    let junk = rng.bytes(n);
    bytes.splice(at..at, junk);
    format!("spliced {n} random bytes in at {at:#x}")
}

/// A chunk to delete or duplicate: starting at a boundary or anywhere, up to 4 KiB.
fn chunk(len: usize, marks: &Landmarks, rng: &mut Rng) -> std::ops::Range<usize> {
    let start = if rng.one_in(2) {
        near_boundary(len, marks, rng).min(len - 1)
    } else {
        rng.below(len)
    };
    let size = rng.between(1, 4096).min(len - start);
    start..start + size
}

fn delete_chunk(bytes: &mut Vec<u8>, marks: &Landmarks, rng: &mut Rng) -> String {
    let range = chunk(bytes.len(), marks, rng);
    let description = format!("deleted bytes {:#x}..{:#x}", range.start, range.end);
    bytes.drain(range);
    description
}

fn duplicate_chunk(bytes: &mut Vec<u8>, marks: &Landmarks, rng: &mut Rng) -> String {
    let range = chunk(bytes.len(), marks, rng);
    let copy = bytes[range.clone()].to_vec();
    let to = if rng.one_in(2) {
        range.end
    } else {
        near_boundary(bytes.len(), marks, rng)
    };
    bytes.splice(to..to, copy);
    format!(
        "copied bytes {:#x}..{:#x} to {to:#x}",
        range.start, range.end
    )
}
