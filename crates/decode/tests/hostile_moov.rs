//! Hostile MOV/MP4 indexes: memory bombs (a tiny moov declaring millions of samples) are refused
//! with a typed error, promptly and without the memory FFmpeg would spend on them; a movie whose
//! edit list shows nothing is refused at index time; bytes read to check a moov are not read
//! again.
//!
//! Each bomb is opened in a child process (this test binary run again, see [`CHILD`]) so its
//! peak RSS is its own, not that of the tests running beside it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Counting;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lazycache_decode::{ByteSource, Error, FileSource, Limits, Movie};
use lazycache_testkit::{fixtures, hostile, oracle};

/// Set to a movie's path, this test binary's [`child_opens_one_movie`] opens it and reports.
const CHILD: &str = "LAZYCACHE_HOSTILE_MOVIE";
/// What one movie may add to a process's peak RSS (issue 10: four bombs, 64 MiB).
const RSS_BUDGET: u64 = 64 << 20;
/// How long refusing one may take.
const TIME_BUDGET: Duration = Duration::from_secs(2);

/// The child's side: opens the movie named by [`CHILD`] (nothing when unset) and prints one
/// line: the outcome, milliseconds, peak RSS before and after, and the message.
#[test]
fn child_opens_one_movie() {
    let Some(path) = std::env::var_os(CHILD) else {
        return;
    };
    let before = hostile::peak_rss_bytes(None);
    let started = Instant::now();
    let source: Arc<dyn ByteSource> = Arc::new(FileSource::open(&path).unwrap());
    let result = Movie::open(source, Limits::default());
    let millis = started.elapsed().as_millis();
    let after = hostile::peak_rss_bytes(None);
    let (kind, message) = match &result {
        Ok(movie) => ("Ok", format!("{} frames", movie.frame_count())),
        Err(e @ Error::IndexTooLarge(_)) => ("IndexTooLarge", e.to_string()),
        Err(e @ Error::NotAMovie(_)) => ("NotAMovie", e.to_string()),
        Err(e) => ("Other", e.to_string()),
    };
    println!("HOSTILE {kind} {millis} {before} {after} {message}");
}

/// What a child reported about one movie.
#[derive(Debug)]
struct Outcome {
    kind: String,
    elapsed: Duration,
    rss_growth: u64,
    message: String,
}

/// Opens `path` in a child process and collects its report.
fn open_in_child(path: &Path) -> Outcome {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["child_opens_one_movie", "--exact", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(CHILD, path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("HOSTILE ").map(|(_, report)| report))
        .unwrap_or_else(|| {
            panic!(
                "the child opening {} reported nothing ({}):\n{stdout}\n{}",
                path.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
        });
    let mut fields = line.splitn(5, ' ');
    let mut next = || fields.next().unwrap_or_default().to_owned();
    let kind = next();
    let millis: u64 = next().parse().unwrap();
    let before: u64 = next().parse().unwrap();
    let after: u64 = next().parse().unwrap();
    Outcome {
        kind,
        elapsed: Duration::from_millis(millis),
        rss_growth: after.saturating_sub(before),
        message: next(),
    }
}

#[test]
fn index_bombs_are_refused_promptly_without_their_memory() {
    let dir = tempfile::tempdir().unwrap();
    for samples in hostile::BOMB_SAMPLES {
        for extension in ["mov", "mp4"] {
            let path =
                hostile::index_bomb(dir.path(), &format!("bomb_{samples}.{extension}"), samples);
            let size = std::fs::metadata(&path).unwrap().len();
            let outcome = open_in_child(&path);
            eprintln!(
                "{samples} samples in a {size}-byte .{extension}: {} in {:?}, peak RSS +{} KiB: {}",
                outcome.kind,
                outcome.elapsed,
                outcome.rss_growth >> 10,
                outcome.message
            );
            assert!(size < 16 << 10, "the bomb is {size} bytes");
            assert!(
                outcome.kind == "NotAMovie" || outcome.kind == "IndexTooLarge",
                "{samples}: {outcome:?}"
            );
            assert!(outcome.elapsed < TIME_BUDGET, "{samples}: {outcome:?}");
            assert!(outcome.rss_growth <= RSS_BUDGET, "{samples}: {outcome:?}");
        }
    }
}

#[test]
fn a_bomb_whose_samples_fit_in_its_file_meets_the_sample_cap() {
    let dir = tempfile::tempdir().unwrap();
    let samples = u32::try_from(Limits::default().max_samples).unwrap() * 2;
    let path = hostile::index_bomb_filling_its_file(dir.path(), "filled.mov", samples);
    let outcome = open_in_child(&path);
    eprintln!("{outcome:?}");
    assert_eq!(outcome.kind, "IndexTooLarge", "{outcome:?}");
    assert!(
        outcome.message.contains(&samples.to_string()),
        "{outcome:?}"
    );
    assert!(outcome.elapsed < TIME_BUDGET, "{outcome:?}");
    assert!(outcome.rss_growth <= RSS_BUDGET, "{outcome:?}");
    // Under the cap, the same construction is a movie.
    let small = hostile::index_bomb_filling_its_file(dir.path(), "small.mov", 5000);
    let source: Arc<dyn ByteSource> = Arc::new(FileSource::open(&small).unwrap());
    let movie = Movie::open(source, Limits::default()).unwrap();
    assert_eq!(movie.frame_count(), 5000);
}

#[test]
fn a_movie_that_shows_nothing_is_refused_at_index_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = hostile::nothing_shown(dir.path(), "hidden.mp4");
    let source: Arc<dyn ByteSource> = Arc::new(FileSource::open(&path).unwrap());
    match Movie::open(source, Limits::default()) {
        Err(Error::NotAMovie(message)) => {
            assert_eq!(message, "no frames are shown");
        }
        Err(other) => panic!("expected NotAMovie, got {other}"),
        Ok(movie) => {
            // The old failure: NumFrames 0, and a time lookup indexed out of bounds.
            let frames = movie.frame_count();
            let at_zero = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                movie.frame_at_time(0.0).ok()
            }));
            panic!("accepted with {frames} frames; frame_at_time(0) gave {at_zero:?}");
        }
    }
}

#[test]
fn a_cached_index_is_checked_like_a_fresh_one() {
    let source: Arc<dyn ByteSource> =
        Arc::new(FileSource::open(fixtures::path(hostile::SOURCE)).unwrap());
    let movie = Movie::open(Arc::clone(&source), Limits::default()).unwrap();
    let mut hidden = movie.index().clone();
    hidden.samples.iter_mut().for_each(|s| s.discard = true);
    assert!(matches!(
        Movie::with_index(Arc::clone(&source), hidden, Limits::default()),
        Err(Error::NotAMovie(_))
    ));
    let mut outside = movie.index().clone();
    outside.samples[3].pos = i64::MAX - 10;
    assert!(matches!(
        Movie::with_index(Arc::clone(&source), outside, Limits::default()),
        Err(Error::Truncated(_))
    ));
    let few = Limits {
        max_samples: 10,
        ..Limits::default()
    };
    assert!(matches!(
        Movie::with_index(source, movie.index().clone(), few),
        Err(Error::IndexTooLarge(_))
    ));
}

#[test]
fn the_extension_picks_the_demuxer_and_probing_must_agree() {
    let dir = tempfile::tempdir().unwrap();
    let open = |name: &str, from: &str| {
        let path = dir.path().join(name);
        std::fs::copy(fixtures::path(from), &path).unwrap();
        let source: Arc<dyn ByteSource> = Arc::new(FileSource::open(&path).unwrap());
        Movie::open(source, Limits::default())
    };
    // The same bytes under another movie extension, or upper case: still read.
    assert_eq!(
        open("copy.M4V", hostile::SOURCE).unwrap().frame_count(),
        150
    );
    assert_eq!(open("copy.WebM", "vp9.webm").unwrap().frame_count(), 120);
    // Unknown or missing extensions are refused, naming the extension.
    match open("movie.flv", hostile::SOURCE) {
        Err(Error::NotAMovie(message)) => assert!(message.contains("flv"), "{message}"),
        other => panic!("expected NotAMovie, got {:?}", other.err()),
    }
    assert!(matches!(
        open("movie", hostile::SOURCE),
        Err(Error::NotAMovie(_))
    ));
    // A Matroska file named .avi, an MP4 named .mkv: the probe disagrees, refused.
    assert!(matches!(
        open("mkv.avi", "vp9.webm"),
        Err(Error::NotAMovie(_))
    ));
    assert!(matches!(
        open("mp4.mkv", hostile::SOURCE),
        Err(Error::NotAMovie(_))
    ));
    assert!(matches!(
        open("avi.ts", "mjpeg.avi"),
        Err(Error::NotAMovie(_))
    ));
}

#[test]
fn atoms_read_for_the_check_are_not_read_again() {
    // The ProRes fixture: ftyp, wide, a 24 MB mdat, then a 2.9 KB moov. The check reads the
    // first 16 KiB, the moov and an atom header or two; FFmpeg then reads them from memory.
    for (name, budget) in [
        ("prores_hq_1080p.mov", 16 * 1024 + 4096),
        (hostile::SOURCE, 16 * 1024),
    ] {
        let source = Counting::fixture(name);
        let movie = Movie::open(source.clone(), Limits::default()).unwrap();
        assert!(movie.frame_count() > 0);
        let (read, _) = source.take();
        eprintln!("{name}: the index read {read} bytes");
        if movie.index().intra_only {
            assert!(read <= budget, "{name}: read {read} bytes");
        }
    }
}

#[test]
fn only_whitelisted_decoders_open() {
    let dir = tempfile::tempdir().unwrap();
    let make = |name: &str, codec: &[&str]| {
        let path = dir.path().join(name);
        let input = [
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=128x96:rate=10",
            "-t",
            "1",
        ];
        oracle::ffmpeg_write(&[&input[..], codec].concat(), &path);
        let source: Arc<dyn ByteSource> = Arc::new(FileSource::open(&path).unwrap());
        Movie::open(source, Limits::default())
    };
    // H.263 has a decoder in FFmpeg, but not one we open.
    match make("h263.mov", &["-c:v", "h263"]) {
        Err(Error::UnsupportedCodec(message)) => assert!(message.contains("h263"), "{message}"),
        other => panic!("expected UnsupportedCodec, got {:?}", other.err()),
    }
    // MPEG-4 part 2 in MP4 leaves its picture size to the decoder: learnt by stream analysis.
    let movie = make("mpeg4.mp4", &["-c:v", "mpeg4"]).unwrap();
    assert_eq!(movie.frame_count(), 10);
    let frame = movie.decode(10).unwrap();
    assert_eq!((frame.width(), frame.height()), (128, 96));
}
