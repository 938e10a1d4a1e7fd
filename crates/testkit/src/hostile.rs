//! Hostile movies made in code from a real fixture: index memory bombs (a tiny moov that
//! declares millions of samples) and a movie whose edit list shows nothing; and the peak RSS
//! (VmHWM) of a process, to see what they cost.

use std::path::{Path, PathBuf};

use crate::fixtures;

/// The real movie the hostile ones are made from: H.264, moov before mdat, an edit list.
pub const SOURCE: &str = "h264_longgop_faststart.mp4";

/// The sample counts of the bombs in issue 10: 10 million costs FFmpeg half a gigabyte before
/// any check of its own, 60 million over two.
pub const BOMB_SAMPLES: [u32; 2] = [10_000_000, 60_000_000];

/// An atom as read from a file: its kind and payload.
#[derive(Debug, Clone)]
struct Atom {
    kind: [u8; 4],
    payload: Vec<u8>,
}

/// The atoms of `data` (32- and 64-bit sizes, size 0 to the end).
fn atoms(data: &[u8]) -> Vec<Atom> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + 8 <= data.len() {
        let size32 = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap());
        let kind: [u8; 4] = data[pos + 4..pos + 8].try_into().unwrap();
        let (header, size) = match size32 {
            0 => (8, data.len() - pos),
            1 => (
                16,
                u64::from_be_bytes(data[pos + 8..pos + 16].try_into().unwrap()) as usize,
            ),
            n => (8, n as usize),
        };
        assert!(
            size >= header && pos + size <= data.len(),
            "bad atom at {pos}"
        );
        out.push(Atom {
            kind,
            payload: data[pos + header..pos + size].to_vec(),
        });
        pos += size;
    }
    out
}

fn find<'a>(atoms: &'a [Atom], kind: &[u8; 4]) -> &'a Atom {
    atoms
        .iter()
        .find(|a| &a.kind == kind)
        .unwrap_or_else(|| panic!("no {} atom", String::from_utf8_lossy(kind)))
}

fn child(parent: &Atom, kind: &[u8; 4]) -> Atom {
    find(&atoms(&parent.payload), kind).clone()
}

/// Serialises an atom with a 32-bit size.
fn atom(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(payload.len() + 8)
        .unwrap()
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(payload);
    out
}

fn raw(a: &Atom) -> Vec<u8> {
    atom(&a.kind, &a.payload)
}

/// A full atom's payload: version 0, no flags, then big-endian u32 fields.
fn full(fields: &[u32]) -> Vec<u8> {
    let mut out = vec![0u8; 4];
    for f in fields {
        out.extend_from_slice(&f.to_be_bytes());
    }
    out
}

fn be32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap())
}

/// The source fixture's video track pieces and its first sample.
struct Parts {
    ftyp: Atom,
    mvhd: Atom,
    tkhd: Atom,
    mdhd: Atom,
    hdlr: Atom,
    vmhd: Atom,
    dinf: Atom,
    stsd: Atom,
    /// The first sample's duration (stts).
    delta: u32,
    first_sample: Vec<u8>,
}

fn parts() -> Parts {
    let file = std::fs::read(fixtures::path(SOURCE)).unwrap();
    let top = atoms(&file);
    let moov = find(&top, b"moov");
    let trak = child(moov, b"trak");
    let mdia = child(&trak, b"mdia");
    let minf = child(&mdia, b"minf");
    let stbl = child(&minf, b"stbl");
    let stts = child(&stbl, b"stts");
    let stsz = child(&stbl, b"stsz");
    let stco = child(&stbl, b"stco");
    let size = match be32(&stsz.payload, 4) {
        0 => be32(&stsz.payload, 12),
        constant => constant,
    } as usize;
    let offset = be32(&stco.payload, 8) as usize;
    Parts {
        ftyp: find(&top, b"ftyp").clone(),
        mvhd: child(moov, b"mvhd"),
        tkhd: child(&trak, b"tkhd"),
        mdhd: child(&mdia, b"mdhd"),
        hdlr: child(&mdia, b"hdlr"),
        vmhd: child(&minf, b"vmhd"),
        dinf: child(&minf, b"dinf"),
        stsd: child(&stbl, b"stsd"),
        delta: be32(&stts.payload, 12),
        first_sample: file[offset..offset + size].to_vec(),
    }
}

/// ftyp, a moov whose one video track declares `samples` samples of `sample_size` bytes in
/// one chunk — the stsd, handler and headers of the real fixture, with stts, stsc, stsz and
/// stco saying the same so FFmpeg accepts it — and an mdat of `mdat` bytes.
fn movie(parts: &Parts, samples: u32, sample_size: u32, mdat: &[u8]) -> Vec<u8> {
    let moov_with = |chunk_offset: u32| {
        let stbl = [
            raw(&parts.stsd),
            atom(b"stts", &full(&[1, samples, parts.delta])),
            atom(b"stsc", &full(&[1, 1, samples, 1])),
            atom(b"stsz", &full(&[sample_size, samples])),
            atom(b"stco", &full(&[1, chunk_offset])),
        ]
        .concat();
        let minf = [raw(&parts.vmhd), raw(&parts.dinf), atom(b"stbl", &stbl)].concat();
        let mdia = [raw(&parts.mdhd), raw(&parts.hdlr), atom(b"minf", &minf)].concat();
        let trak = [raw(&parts.tkhd), atom(b"mdia", &mdia)].concat();
        atom(b"moov", &[raw(&parts.mvhd), atom(b"trak", &trak)].concat())
    };
    let ftyp = raw(&parts.ftyp);
    // The chunk offset does not change the moov's size: the first pass measures it.
    let before_mdat = ftyp.len() + moov_with(0).len() + 8;
    let moov = moov_with(u32::try_from(before_mdat).unwrap());
    [ftyp, moov, atom(b"mdat", mdat)].concat()
}

/// Writes `dir/name`: a movie of a few kilobytes whose moov declares `samples` samples, all the
/// size of the fixture's first sample (which the mdat holds), in one chunk. Far more than the
/// file holds: FFmpeg would still build a table of `samples` entries for it.
pub fn index_bomb(dir: &Path, name: &str, samples: u32) -> PathBuf {
    let parts = parts();
    let size = u32::try_from(parts.first_sample.len()).unwrap();
    let bytes = movie(&parts, samples, size, &parts.first_sample);
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Writes `dir/name`: like [`index_bomb`], but every sample is one byte and the mdat holds them
/// all (the fixture's first sample, then zeros), so only the sample cap can refuse it.
pub fn index_bomb_filling_its_file(dir: &Path, name: &str, samples: u32) -> PathBuf {
    let parts = parts();
    let mut mdat = parts.first_sample.clone();
    mdat.resize(mdat.len().max(samples as usize), 0);
    let bytes = movie(&parts, samples, 1, &mdat);
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Writes `dir/name`: the fixture unchanged but for its edit list, which now starts far past
/// the last sample, so no frame is ever shown (FFmpeg marks every sample discarded).
pub fn nothing_shown(dir: &Path, name: &str) -> PathBuf {
    let mut file = std::fs::read(fixtures::path(SOURCE)).unwrap();
    let at = file
        .windows(4)
        .position(|w| w == b"elst")
        .expect("the fixture has an edit list");
    // elst v0: version/flags, entry count, then segment duration and media time.
    assert_eq!(file[at + 4], 0, "a version 0 elst");
    assert_eq!(be32(&file, at + 8), 1, "one edit");
    file[at + 16..at + 20].copy_from_slice(&0x7fff_0000u32.to_be_bytes());
    let path = dir.join(name);
    std::fs::write(&path, file).unwrap();
    path
}

/// Peak resident set size (VmHWM) of process `pid`, or of this one, in bytes.
pub fn peak_rss_bytes(pid: Option<u32>) -> u64 {
    let status = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".into(),
    };
    let text = std::fs::read_to_string(&status).unwrap_or_else(|e| panic!("{status}: {e}"));
    let kib: u64 = text
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {status}"));
    kib * 1024
}
