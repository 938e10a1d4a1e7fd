//! Real-size movies (≥ 300 MiB) in Matroska, WebM, MPEG-TS, AVI, MXF and fragmented MP4: the
//! metadata equals ffprobe's (NumFrames = `-count_packets`) and reads at most 2% of the file or
//! 4 MiB, whichever is larger, in a handful of reads; cold frames at the start, in the middle (the
//! last of a GOP, the deepest) and the last frame equal the ffmpeg CLI's and read at most their
//! GOP span (keyframe to frame) plus 1 MiB — 1.25 × the sample + 64 KiB for intra-only codecs.
//!
//! The oracle is the CLI's `select=eq(n\,N-1)` on the short segment each movie repeats
//! (`scripts/fixtures --large`): frame N of the movie is frame ((N-1) mod F)+1 of the F-frame
//! segment, because the copies are bit-identical closed-GOP streams (each starts with a keyframe
//! that refers to nothing before it, and decoders output the same pictures from it). Decoding a
//! whole 300 MiB movie with the CLI for each check would take minutes on the 2-core CI machine;
//! the segment takes seconds. The GOP spans come from ffprobe's packet list of the segment.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Counting, png};

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use lazycache_decode::{ByteSource, FileSource, Limits, Movie, PixelLayout, RenderOptions, render};
use lazycache_testkit::{fixtures, oracle};

const MIB: u64 = 1 << 20;
/// "A handful of range requests" for metadata: the head, stream analysis in growing reads (64 KiB,
/// 256 KiB, 1 MiB …), and the index or the last timestamps at the end (`ReadPlan::INDEX`).
/// Measured: Matroska, WebM and AVI 4, MPEG-TS 5.
const MAX_METADATA_READS: u64 = 5;
/// MXF: FFmpeg's demuxer also walks back from the footer through every body partition, one
/// read each: 9 for this fixture's 4.
const MXF_METADATA_READS: u64 = 10;

/// The segment's packets in decode order, and for each presentation position the packet index.
struct Segment {
    packets: Vec<oracle::PacketInfo>,
    shown: Vec<usize>,
}

impl Segment {
    fn of(path: &Path) -> Self {
        let packets = oracle::packets(path);
        let mut shown: Vec<usize> = (0..packets.len()).collect();
        shown.sort_by_key(|&i| (packets[i].pts, i));
        Self { packets, shown }
    }

    /// Bytes from the keyframe a decode starts at (the last one in decode order at or before
    /// the frame and shown no later than it) through the frame's own packet.
    fn gop_span(&self, position: usize) -> u64 {
        let target = self.shown[position];
        let pts = self.packets[target].pts;
        let key = self.packets[..=target]
            .iter()
            .rposition(|p| p.keyframe && p.pts <= pts)
            .unwrap();
        self.packets[key..=target].iter().map(|p| p.size).sum()
    }

    fn sample_size(&self, position: usize) -> u64 {
        self.packets[self.shown[position]].size
    }
}

fn check(movie_name: &str, segment_name: &str) {
    check_with(movie_name, segment_name, MAX_METADATA_READS);
}

fn check_with(movie_name: &str, segment_name: &str, max_metadata_reads: u64) {
    let path = fixtures::large_path(movie_name);
    let source = Counting::open(&path);
    let size = source.len();
    assert!(size >= 300 * MIB, "{movie_name} is only {size} bytes");

    // Metadata: within the index budget, in a handful of reads, equal to ffprobe's.
    let started = Instant::now();
    let movie = Movie::open(source.clone(), Limits::default())
        .unwrap_or_else(|e| panic!("{movie_name}: {e}"));
    let elapsed = started.elapsed();
    let (bytes, reads) = source.take();
    let budget = (size / 50).max(4 * MIB);
    eprintln!(
        "{movie_name}: metadata read {bytes} bytes ({:.2}% of {size}) in {reads} reads, {elapsed:?}",
        bytes as f64 * 100.0 / size as f64
    );
    assert!(
        bytes <= budget,
        "{movie_name}: metadata read {bytes} bytes (budget {budget})"
    );
    assert!(
        reads <= max_metadata_reads,
        "{movie_name}: metadata took {reads} reads"
    );
    let meta = movie.metadata();
    let (stream, format) = fixtures::large_probe(movie_name);
    let count = oracle::number(&stream["nb_read_packets"]) as u64;
    assert_eq!(meta.num_frames, count, "{movie_name}: NumFrames");
    assert_eq!(movie.frame_count(), count);
    assert_eq!(meta.width, stream["width"].as_u64().unwrap() as u32);
    assert_eq!(meta.height, stream["height"].as_u64().unwrap() as u32);
    assert_eq!(meta.codec, stream["codec_name"].as_str().unwrap());
    assert_eq!(meta.file_size, oracle::number(&format["size"]) as u64);
    let fps = oracle::number(&stream["avg_frame_rate"]);
    assert!(
        (meta.frame_rate - fps).abs() < 0.01,
        "{movie_name}: FrameRate"
    );
    let duration = oracle::number(if stream["duration"].is_null() {
        &format["duration"]
    } else {
        &stream["duration"]
    });
    assert!(
        (meta.duration - duration).abs() < 1.0 / fps + 1e-3,
        "{movie_name}: Duration {} vs ffprobe {duration}",
        meta.duration
    );
    assert!(
        meta.frame_numbers == "samples" || meta.frame_numbers == "constant-rate",
        "{movie_name}: {}",
        meta.frame_numbers
    );

    // Frames: the first, the deepest of a GOP in the middle, the last.
    let segment_path = fixtures::large_path(segment_name);
    let segment = Segment::of(&segment_path);
    let per_copy = segment.packets.len() as u64;
    assert_eq!(
        count % per_copy,
        0,
        "{movie_name}: whole copies of the segment"
    );
    let deepest = (0..per_copy as usize)
        .max_by_key(|&p| segment.gop_span(p))
        .unwrap() as u64;
    let deepest_in_gop = (count / 2 / per_copy) * per_copy + deepest + 1;
    let frames = [1, deepest_in_gop, count];
    let positions: Vec<u64> = frames.iter().map(|n| (n - 1) % per_copy + 1).collect();
    let mut wanted: Vec<u64> = positions
        .iter()
        .flat_map(|&m| [m.saturating_sub(1), m, m + 1])
        .filter(|&m| m >= 1 && m <= per_copy)
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let reference = oracle::frames(&segment_path, &wanted);
    let oracle_frame = |m: u64| &reference[wanted.iter().position(|&w| w == m).unwrap()];
    let intra = meta.codec == "mjpeg";
    for (&n, &m) in frames.iter().zip(&positions) {
        let started = Instant::now();
        let decoded = movie
            .decode(n)
            .unwrap_or_else(|e| panic!("{movie_name} frame {n}: {e}"));
        let elapsed = started.elapsed();
        let (bytes, reads) = source.take();
        let position = (m - 1) as usize;
        let bound = if intra {
            segment.sample_size(position) * 5 / 4 + 64 * 1024
        } else {
            segment.gop_span(position) + MIB
        };
        eprintln!(
            "{movie_name}: frame {n} read {bytes} bytes in {reads} reads (bound {bound}: {}), {elapsed:?}",
            if intra {
                format!("sample {}", segment.sample_size(position))
            } else {
                format!("GOP span {}", segment.gop_span(position))
            }
        );
        assert!(
            bytes <= bound,
            "{movie_name} frame {n}: read {bytes} bytes (bound {bound})"
        );
        // Few, large reads: at most one per 128 KiB of the bound, plus a few for the container.
        assert!(
            reads <= bound / (128 * 1024) + 16,
            "{movie_name} frame {n}: {reads} reads"
        );
        let image = render(&decoded, &RenderOptions::default(), PixelLayout::Rgb24, 2).unwrap();
        let expected = oracle_frame(m);
        assert_eq!(
            (image.width, image.height),
            (expected.width, expected.height)
        );
        let same = oracle::psnr(&image.data, &expected.data);
        assert!(
            same >= 40.0,
            "{movie_name} frame {n}: PSNR {same:.1} dB against the CLI's frame {m} of the segment"
        );
        for neighbour in [m - 1, m + 1] {
            if neighbour >= 1 && neighbour <= per_copy {
                let other = oracle::psnr(&image.data, &oracle_frame(neighbour).data);
                assert!(
                    other < 35.0 && other + 5.0 < same,
                    "{movie_name} frame {n}: too close to the segment's frame {neighbour} ({other:.1} dB)"
                );
            }
        }
    }
}

#[test]
fn matroska_h264() {
    check("large_h264.mkv", "segment_h264.mkv");
}

#[test]
fn webm_vp9() {
    check("large_vp9.webm", "segment_vp9.webm");
}

#[test]
fn mpegts_h264() {
    check("large_h264.ts", "segment_h264.mkv");
}

#[test]
fn avi_mjpeg() {
    check("large_mjpeg.avi", "segment_mjpeg.avi");
}

#[test]
fn mxf_mpeg2() {
    check_with("large_mpeg2.mxf", "segment_mpeg2.mxf", MXF_METADATA_READS);
}

/// Metadata of a fragmented MP4 that lists its fragments in an `mfra`: the head, the tail (the
/// `mfro` and the `mfra`) and the last `moof`, however many fragments; frames by constant rate.
const FRAGMENTED_METADATA_READS: u64 = 6;

#[test]
fn fragmented_mp4_h264() {
    let path = fixtures::large_path("large_h264_fragmented.mp4");
    assert_eq!(top_level_atoms(&path, b"moof"), 64);
    assert_eq!(top_level_atoms(&path, b"mfra"), 1);
    check_with(
        "large_h264_fragmented.mp4",
        "segment_h264.mkv",
        FRAGMENTED_METADATA_READS,
    );
    let movie = Movie::open(
        Arc::new(FileSource::open(&path).unwrap()),
        Limits::default(),
    )
    .unwrap();
    assert_eq!(movie.metadata().frame_numbers, "constant-rate");
}

/// The small fixtures (scanned whole by default) through the lazy index instead: the same frame
/// count and, frame by frame, the same pictures as their full per-sample index gives (which
/// `exact_frames.rs` holds to the ffmpeg CLI) — open GOPs, HEVC's leading pictures, VP9's hidden
/// frames and MPEG-2's B-frames included.
#[test]
fn small_fixtures_give_the_same_frames_through_the_lazy_index() {
    let lazy = Limits {
        scan_whole_up_to: 0,
        ..Limits::default()
    };
    for name in [
        "h264_open_gop.mkv",
        "hevc.mkv",
        "vp9.webm",
        "mjpeg.avi",
        "tiny_h264_open_gop.mkv",
        "tiny_hevc.mkv",
        "tiny_vp9.webm",
        "tiny_mjpeg.avi",
        "tiny_mpeg2.mxf",
        "tiny_h264.ts",
        "tiny_h264_fragmented.mp4",
    ] {
        let path = fixtures::path(name);
        let full = Movie::open(
            Arc::new(FileSource::open(&path).unwrap()),
            Limits::default(),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let source = Counting::open(&path);
        let movie =
            Movie::open(source.clone(), lazy.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let count = full.frame_count();
        assert_eq!(movie.frame_count(), count, "{name}: frame count");
        let expected_numbering = if name.ends_with(".avi") {
            "samples"
        } else {
            "constant-rate"
        };
        assert_eq!(movie.metadata().frame_numbers, expected_numbering, "{name}");
        assert_eq!(full.metadata().frame_numbers, "samples", "{name}");
        let stored = movie.index().to_bytes().unwrap();
        let adopted = Movie::with_index(
            source.clone(),
            lazycache_decode::MovieIndex::from_bytes(&stored).unwrap(),
            lazy.clone(),
        )
        .unwrap();
        assert_eq!(adopted.metadata(), movie.metadata(), "{name}");
        let step = if count > 40 { 7 } else { 1 };
        let mut frames: Vec<u64> = (1..=count).step_by(step).collect();
        frames.extend([count - 1, count]);
        for n in frames {
            let a = adopted
                .frame(
                    n,
                    &RenderOptions::default(),
                    lazycache_decode::Format::Png,
                    None,
                )
                .unwrap_or_else(|e| panic!("{name} frame {n}: {e}"));
            let b = full
                .frame(
                    n,
                    &RenderOptions::default(),
                    lazycache_decode::Format::Png,
                    None,
                )
                .unwrap();
            assert!(a.bytes == b.bytes, "{name} frame {n} differs");
        }
        for seconds in [
            0.0,
            full.metadata().duration / 3.0,
            full.metadata().duration - 0.001,
        ] {
            assert_eq!(
                movie.frame_at_time(seconds).unwrap(),
                full.frame_at_time(seconds).unwrap(),
                "{name} at {seconds}s"
            );
        }
    }
}

/// The long-GOP fixture (150 frames) as a fragmented MP4 by stream copy — three fragments, one
/// per GOP, listed in an `mfra` — with fragment `off_grid`'s sample duration one tick longer.
fn fragmented_long_gop(dir: &Path, off_grid: Option<usize>) -> std::path::PathBuf {
    let path = dir.join(format!("fragmented-{off_grid:?}.mp4"));
    long_gop_remuxed(&path, "+frag_keyframe+empty_moov+default_base_moof");
    assert_eq!(top_level_atoms(&path, b"moof"), 3);
    if let Some(k) = off_grid {
        let mut bytes = std::fs::read(&path).unwrap();
        let moof = atom_offsets(&bytes, b"moof")[k];
        let tfhd = moof + find(&bytes[moof..], b"tfhd").unwrap() + 4;
        let flags = u32::from_be_bytes(bytes[tfhd..tfhd + 4].try_into().unwrap());
        assert_eq!(
            flags & 0x0b,
            0x08,
            "a default sample duration right after the track id"
        );
        let at = tfhd + 8;
        let duration = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        bytes[at..at + 4].copy_from_slice(&(duration + 1).to_be_bytes());
        std::fs::write(&path, bytes).unwrap();
    }
    path
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The offsets of the top-level atoms of `kind` (32-bit sizes).
fn atom_offsets(bytes: &[u8], kind: &[u8; 4]) -> Vec<usize> {
    let (mut pos, mut found) = (0usize, Vec::new());
    while pos + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        if &bytes[pos + 4..pos + 8] == kind {
            found.push(pos);
        }
        assert!(size >= 8);
        pos += size;
    }
    found
}

fn png_of(movie: &Movie, n: u64) -> Result<bytes::Bytes, lazycache_decode::Error> {
    movie
        .frame(
            n,
            &RenderOptions::default(),
            lazycache_decode::Format::Png,
            None,
        )
        .map(|f| f.bytes)
}

/// Limits that index a fragmented MP4 by its `mfra`/`sidx` however small the file.
fn by_fragment_index() -> Limits {
    Limits {
        scan_whole_up_to: 0,
        ..Limits::default()
    }
}

fn open_file(path: &Path, limits: &Limits) -> Movie {
    Movie::open(Arc::new(FileSource::open(path).unwrap()), limits.clone()).unwrap()
}

/// The long-GOP fixture's video (150 frames) remuxed by stream copy with `movflags`.
fn long_gop_remuxed(path: &Path, movflags: &str) {
    let input = fixtures::path("h264_longgop_faststart.mp4");
    oracle::ffmpeg_write(
        &[
            "-i",
            input.to_str().unwrap(),
            "-map",
            "0:v",
            "-c",
            "copy",
            "-movflags",
            movflags,
        ],
        path,
    );
}

fn assert_same_frames(movie: &Movie, full: &Movie, frames: &[u64]) {
    for &n in frames {
        assert!(
            png_of(movie, n).unwrap() == png_of(full, n).unwrap(),
            "frame {n} differs"
        );
    }
}

/// Fragmented MP4 read by its `mfra` where it holds at a constant frame rate, the exact walk of
/// every `moof` where the fragments read first say otherwise, and a clear refusal of the frames
/// of a fragment read later that breaks the numbering already given.
#[test]
fn fragmented_mp4_numbered_by_its_mfra_only_at_a_constant_rate() {
    let dir = tempfile::tempdir().unwrap();
    let by_mfra = by_fragment_index();
    let open = open_file;

    // On the grid: by the mfra, the same frames as the full walk, and ffprobe's count.
    let path = fragmented_long_gop(dir.path(), None);
    let source = Counting::open(&path);
    let movie = Movie::open(source.clone(), by_mfra.clone()).unwrap();
    let (_, reads) = source.take();
    let full = open(&path, &Limits::default());
    assert_eq!(movie.metadata().frame_numbers, "constant-rate");
    assert_eq!(full.metadata().frame_numbers, "samples");
    assert_eq!(movie.frame_count(), 150);
    assert_eq!(full.frame_count(), 150);
    assert!(reads <= 4, "{reads} reads");
    let frames: Vec<u64> = (1..=150)
        .step_by(13)
        .chain([60, 61, 120, 121, 150])
        .collect();
    assert_same_frames(&movie, &full, &frames);

    // The last fragment, read for the frame count, is off the grid: every moof is walked.
    let path = fragmented_long_gop(dir.path(), Some(2));
    let movie = open(&path, &by_mfra);
    assert_eq!(movie.metadata().frame_numbers, "samples");
    assert_eq!(movie.frame_count(), 150);
    assert!(png_of(&movie, 140).unwrap() == png_of(&open(&path, &Limits::default()), 140).unwrap());

    // A middle fragment, read only for its frames, is off the grid: its frames are refused in
    // words, the others still served exactly.
    let path = fragmented_long_gop(dir.path(), Some(1));
    let movie = open(&path, &by_mfra);
    let full = open(&path, &Limits::default());
    assert_eq!(movie.metadata().frame_numbers, "constant-rate");
    match png_of(&movie, 75) {
        Err(lazycache_decode::Error::Decode(m)) => {
            assert!(m.contains("cannot be served exactly"), "{m}")
        }
        other => panic!("frame 75: {:?}", other.map(|b| b.len())),
    }
    assert_same_frames(&movie, &full, &[1, 30, 140, 150]);
}

/// Without an `mfra`, a `sidx` that lists the fragments to the end of the file (FFmpeg's
/// `global_sidx` without its trailer) indexes them the same way: FFmpeg takes its times for
/// each fragment's first decode time, so the first shown frame is a composition offset later.
#[test]
fn fragmented_mp4_indexed_by_a_sidx_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sidx-only.mp4");
    long_gop_remuxed(
        &path,
        "+frag_keyframe+empty_moov+default_base_moof+global_sidx+skip_trailer",
    );
    assert_eq!(top_level_atoms(&path, b"mfra"), 0);
    assert_eq!(top_level_atoms(&path, b"sidx"), 1);
    let source = Counting::open(&path);
    let by_index = by_fragment_index();
    let movie = Movie::open(source.clone(), by_index).unwrap();
    let (_, reads) = source.take();
    assert!(reads <= 4, "{reads} reads");
    assert_eq!(movie.metadata().frame_numbers, "constant-rate");
    let full = Movie::open(
        Arc::new(FileSource::open(&path).unwrap()),
        Limits::default(),
    )
    .unwrap();
    assert_eq!(full.metadata().frame_numbers, "samples");
    assert_eq!((movie.frame_count(), full.frame_count()), (150, 150));
    assert_same_frames(&movie, &full, &[1, 2, 59, 60, 61, 100, 121, 149, 150]);
}

/// A hostile `mfra` is refused before FFmpeg reads it, in a few reads.
#[test]
fn hostile_mfra_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let by_mfra = by_fragment_index();
    let good = std::fs::read(fragmented_long_gop(dir.path(), None)).unwrap();
    let mfra = atom_offsets(&good, b"mfra")[0];
    let tfra = mfra + 8;
    let entries = tfra + 8 + 16;
    let patches: [(&str, usize, Vec<u8>); 4] = [
        (
            "an entry count past the box",
            tfra + 20,
            0x7fff_ffffu32.to_be_bytes().to_vec(),
        ),
        (
            "an offset past the end",
            entries + 19 + 8,
            u64::MAX.to_be_bytes().to_vec(),
        ),
        (
            "offsets going back",
            entries + 2 * 19 + 8,
            800u64.to_be_bytes().to_vec(),
        ),
        ("a tfra of size 0", tfra, 0u32.to_be_bytes().to_vec()),
    ];
    for (what, at, patch) in patches {
        let mut bytes = good.clone();
        bytes[at..at + patch.len()].copy_from_slice(&patch);
        let path = dir.path().join("hostile.mp4");
        std::fs::write(&path, &bytes).unwrap();
        let source = Counting::open(&path);
        match Movie::open(source.clone(), by_mfra.clone()) {
            Err(lazycache_decode::Error::NotAMovie(m)) => {
                assert!(m.contains("mfra"), "{what}: {m}")
            }
            Err(e) => panic!("{what}: {e}"),
            Ok(_) => panic!("{what}: opened"),
        }
        let (_, reads) = source.take();
        assert!(reads <= 3, "{what}: {reads} reads");
    }
    // An atom the mfra does not list right after the first fragment's mdat (here an 8-byte
    // free atom; the listed offsets after it moved along): FFmpeg would go on parsing there
    // after the first fragment, unchecked, so every moof is walked instead.
    let moof2 = atom_offsets(&good, b"moof")[1];
    let mut bytes = good[..moof2].to_vec();
    bytes.extend_from_slice(&[0, 0, 0, 8, b'f', b'r', b'e', b'e']);
    bytes.extend_from_slice(&good[moof2..]);
    for row in 1..3 {
        // The mfra moved 8 bytes along too; each offset follows its 8-byte time.
        let at = entries + 8 + row * 19 + 8;
        let offset = u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap());
        bytes[at..at + 8].copy_from_slice(&(offset + 8).to_be_bytes());
    }
    let path = dir.path().join("unlisted.mp4");
    std::fs::write(&path, &bytes).unwrap();
    let movie = open_file(&path, &by_mfra);
    assert_eq!(movie.metadata().frame_numbers, "samples");
    assert_eq!(movie.frame_count(), 150);
    // The same after the second fragment, which only a frame reads: its frames are refused,
    // FFmpeg never goes past its moof, the other fragments' frames are served.
    let moof3 = atom_offsets(&good, b"moof")[2];
    let mut bytes = good[..moof3].to_vec();
    bytes.extend_from_slice(&[0, 0, 0, 8, b'f', b'r', b'e', b'e']);
    bytes.extend_from_slice(&good[moof3..]);
    let at = entries + 8 + 2 * 19 + 8;
    let offset = u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap());
    bytes[at..at + 8].copy_from_slice(&(offset + 8).to_be_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let movie = open_file(&path, &by_mfra);
    assert_eq!(movie.metadata().frame_numbers, "constant-rate");
    match png_of(&movie, 75) {
        Err(lazycache_decode::Error::Decode(m)) => assert!(m.contains("does not list"), "{m}"),
        other => panic!("frame 75: {:?}", other.map(|b| b.len())),
    }
    let full = Movie::open(
        Arc::new(FileSource::open(&path).unwrap()),
        Limits::default(),
    )
    .unwrap();
    assert_same_frames(&movie, &full, &[1, 140]);
    // The last entry pointing at an mdat instead of its moof.
    let mut bytes = good.clone();
    let mdat = atom_offsets(&good, b"mdat")[2] as u64;
    bytes[entries + 2 * 19 + 8..entries + 2 * 19 + 16].copy_from_slice(&mdat.to_be_bytes());
    let path = dir.path().join("hostile.mp4");
    std::fs::write(&path, &bytes).unwrap();
    match Movie::open(Arc::new(FileSource::open(&path).unwrap()), by_mfra.clone()) {
        Err(lazycache_decode::Error::NotAMovie(m)) => assert!(m.contains("not a moof"), "{m}"),
        other => panic!("{:?}", other.map(|m| m.frame_count())),
    }
}

/// Fragments listed by `sidx` boxes too — one for the whole file (`global_sidx`), or one before
/// each fragment (`dash`) —: FFmpeg seeks to what they list and parses atoms there, so each
/// must be where an atom starts (a fragment the walk or the `mfra` check covers).
#[test]
fn sidx_references_must_start_atoms() {
    let dir = tempfile::tempdir().unwrap();
    let by_mfra = by_fragment_index();
    for flags in [
        "+frag_keyframe+empty_moov+default_base_moof+global_sidx",
        "+dash",
    ] {
        let path = dir.path().join("sidx.mp4");
        long_gop_remuxed(&path, flags);
        let good = std::fs::read(&path).unwrap();
        assert!(!atom_offsets(&good, b"sidx").is_empty(), "{flags}");
        for limits in [&Limits::default(), &by_mfra] {
            let movie = Movie::open(Arc::new(FileSource::open(&path).unwrap()), limits.clone())
                .unwrap_or_else(|e| panic!("{flags}: {e}"));
            assert_eq!(movie.frame_count(), 150, "{flags}");
            png_of(&movie, 100).unwrap();
        }
        // The first sidx's first_offset moved into the mdat.
        let sidx = atom_offsets(&good, b"sidx")[0];
        let mut bytes = good.clone();
        let first_offset = if bytes[sidx + 8] == 0 {
            sidx + 24
        } else {
            sidx + 32
        };
        let width = if bytes[sidx + 8] == 0 { 4 } else { 8 };
        let moved = &mut bytes[first_offset..first_offset + width];
        moved[width - 2] = moved[width - 2].wrapping_add(1);
        let hostile = dir.path().join("hostile-sidx.mp4");
        std::fs::write(&hostile, &bytes).unwrap();
        for limits in [&Limits::default(), &by_mfra] {
            match Movie::open(
                Arc::new(FileSource::open(&hostile).unwrap()),
                limits.clone(),
            ) {
                Err(lazycache_decode::Error::NotAMovie(m)) => assert!(m.contains("sidx"), "{m}"),
                other => panic!("{flags}: {:?}", other.map(|m| m.frame_count())),
            }
        }
    }
}

/// How many top-level atoms of `kind` a MOV/MP4 has.
fn top_level_atoms(path: &Path, kind: &[u8; 4]) -> u64 {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).unwrap();
    let size = file.metadata().unwrap().len();
    let (mut pos, mut count) = (0u64, 0u64);
    while pos + 8 <= size {
        let mut head = [0u8; 16];
        file.seek(SeekFrom::Start(pos)).unwrap();
        file.read_exact(&mut head[..8]).unwrap();
        let mut total = u64::from(u32::from_be_bytes(head[..4].try_into().unwrap()));
        if total == 1 {
            file.read_exact(&mut head[8..16]).unwrap();
            total = u64::from_be_bytes(head[8..16].try_into().unwrap());
        }
        assert!(total >= 8, "atom at {pos}");
        count += u64::from(&head[4..8] == kind);
        pos += total;
    }
    count
}

/// A Matroska file without Cues (written to a pipe, as live recordings are) has no index to use:
/// it is scanned as a small file is, within `max_index_bytes` — and refused at once, without
/// reading it, when it is larger than that.
#[test]
fn matroska_without_cues_is_scanned_within_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let piped = dir.path().join("cueless.mkv");
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ffmpeg -hide_banner -loglevel error -nostdin -i '{}' -map 0:v -c copy -f matroska - > '{}'",
            fixtures::large_path("segment_h264.mkv").display(),
            piped.display()
        ))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    // The segment has Cues: its frames come through the lazy index.
    let full = Movie::open(
        Arc::new(FileSource::open(fixtures::large_path("segment_h264.mkv")).unwrap()),
        Limits::default(),
    )
    .unwrap();
    assert_eq!(full.metadata().frame_numbers, "constant-rate");
    let source = Counting::open(&piped);
    let movie = Movie::open(source.clone(), Limits::default()).unwrap();
    assert_eq!(movie.metadata().frame_numbers, "samples");
    assert_eq!(movie.frame_count(), full.frame_count());
    for n in [1, 61, 100, full.frame_count()] {
        assert!(png(&movie, n) == png(&full, n), "frame {n} differs");
    }
    source.take();
    let small_cap = Limits {
        max_index_bytes: source.len() - 1,
        ..Limits::default()
    };
    match Movie::open(source.clone(), small_cap) {
        Err(lazycache_decode::Error::IndexTooLarge(message)) => {
            assert!(message.contains("bytes"), "{message}")
        }
        other => panic!("expected IndexTooLarge, got {:?}", other.err()),
    }
    let (bytes, _) = source.take();
    assert!(bytes <= 4 * MIB, "read {bytes} of {}", source.len());
}

/// A stream whose frames leave the frame rate's grid part-way (here by half a frame after frame
/// 61: the rates FFmpeg states, from the first frames, still agree) is labelled
/// "constant-rate-assumed": its keyframes listed in the Cues are off the grid.
#[test]
fn a_stream_off_its_frame_grid_is_labelled_constant_rate_assumed() {
    let dir = tempfile::tempdir().unwrap();
    let shifted = dir.path().join("shifted.mkv");
    oracle::ffmpeg_write(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-t",
            "6",
            "-vf",
            "settb=1/1000,setpts='if(gt(N\\,60)\\,PTS+20\\,PTS)'",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-g",
            "30",
            "-enc_time_base:v",
            "1/1000",
            "-fps_mode",
            "passthrough",
        ],
        &shifted,
    );
    let lazy = Limits {
        scan_whole_up_to: 0,
        ..Limits::default()
    };
    let movie = Movie::open(Counting::open(&shifted), lazy).unwrap();
    assert_eq!(movie.metadata().frame_numbers, "constant-rate-assumed");
    // Frames before the shift are still exact.
    let full = Movie::open(Counting::open(&shifted), Limits::default()).unwrap();
    assert_eq!(full.metadata().frame_numbers, "samples");
    for n in [1, 30, 61] {
        assert!(png(&movie, n) == png(&full, n), "frame {n} differs");
    }
}

/// An AVI of 60 frames of moving test pattern, encoded by the ffmpeg CLI with these codec options.
fn long_gop_avi(dir: &Path, name: &str, codec: &[&str]) -> std::path::PathBuf {
    let path = dir.join(name);
    let input = [
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=25,scroll=h=0.013:v=0.007",
        "-frames:v",
        "60",
        "-g",
        "24",
    ];
    oracle::ffmpeg_write(&[&input[..], codec].concat(), &path);
    path
}

/// Long-GOP AVI through its `idx1` (no scan): with a codec that does not reorder pictures (MPEG-4
/// part 2 without B-frames), chunk order is presentation order, so every frame is read by range
/// and equals the ffmpeg CLI's. With B-frames the presentation times are only in the packets and
/// the file is scanned (here, small, within the budget), still exact: MPEG-4 part 2 (packed
/// B-frames) and MPEG-2 (whose reference pictures FFmpeg leaves without a time in AVI).
#[test]
fn long_gop_avi_is_indexed_from_idx1_when_the_codec_does_not_reorder() {
    let dir = tempfile::tempdir().unwrap();
    let lazy = Limits {
        scan_whole_up_to: 0,
        ..Limits::default()
    };
    let mpeg4 = ["-c:v", "mpeg4", "-q:v", "4"];
    for (name, codec) in [
        ("p_only.avi", [&mpeg4[..], &["-bf", "0"]].concat()),
        ("b_frames.avi", [&mpeg4[..], &["-bf", "2"]].concat()),
        (
            "mpeg2_b_frames.avi",
            vec!["-c:v", "mpeg2video", "-q:v", "4", "-bf", "2"],
        ),
    ] {
        let path = long_gop_avi(dir.path(), name, &codec);
        let source = Counting::open(&path);
        let movie =
            Movie::open(source.clone(), lazy.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(movie.frame_count(), 60, "{name}");
        assert_eq!(movie.metadata().frame_numbers, "samples", "{name}");
        let numbers: Vec<u64> = (1..=60).collect();
        let expected = oracle::frames(&path, &numbers);
        let _ = source.take();
        for n in [1, 2, 23, 24, 25, 26, 47, 48, 49, 60] {
            let decoded = movie
                .decode(n)
                .unwrap_or_else(|e| panic!("{name} frame {n}: {e}"));
            let image = render(&decoded, &RenderOptions::default(), PixelLayout::Rgb24, 2).unwrap();
            assert!(
                image.data == expected[(n - 1) as usize].data,
                "{name} frame {n} differs from the ffmpeg CLI's"
            );
        }
        if name == "p_only.avi" {
            // Frame 48 (the 24th of its GOP) cold, through the index: its GOP's chunks and
            // little else.
            let cold = Movie::open(source.clone(), lazy.clone()).unwrap();
            let _ = source.take();
            cold.decode(48).unwrap();
            let (bytes, _) = source.take();
            let gop: u64 = oracle::packets(&path)[24..48].iter().map(|p| p.size).sum();
            assert!(
                bytes <= gop + MIB,
                "{name}: frame 48 read {bytes} bytes, its GOP span is {gop}"
            );
        }
    }
}

/// H.264 with B-frames in AVI: FFmpeg gives none of its packets a presentation time, so the
/// order the ffmpeg CLI shows them in cannot be known from the file: refused as unsupported,
/// rather than numbered in decode order.
#[test]
fn h264_with_b_frames_in_avi_is_refused_not_misnumbered() {
    let dir = tempfile::tempdir().unwrap();
    let path = long_gop_avi(
        dir.path(),
        "h264_b_frames.avi",
        &["-c:v", "libx264", "-bf", "2"],
    );
    match Movie::open(
        Arc::new(FileSource::open(&path).unwrap()),
        Limits::default(),
    ) {
        Err(lazycache_decode::Error::UnsupportedCodec(message)) => {
            assert!(message.contains("B-frames"), "{message}");
        }
        Ok(_) => panic!("an H.264 AVI with B-frames was numbered"),
        Err(other) => panic!("expected UnsupportedCodec, got {other}"),
    }
}
