//! One case: a movie over an in-memory source, opened and asked for frames under a short
//! deadline, with every invariant checked — no panic, no overrun, typed one-line errors.

use std::backtrace::Backtrace;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use bytes::Bytes;
use lazycache_decode::{
    ByteSource, Error, Format, Limits, Movie, MovieIndex, RenderOptions, SourceError,
};

use crate::memory;

/// Each index build and each frame decode gets this long (`Limits::decode_timeout`) …
pub const DECODE_TIMEOUT: Duration = Duration::from_secs(2);
/// … and may overrun it by this much (one FFmpeg call between checks, a busy 2-core machine).
pub const OVERRUN_MARGIN: Duration = Duration::from_secs(3);
/// One case — a tiny input — may raise the process's resident memory this much. Approximate when
/// cases run side by side: one running beside the culprit may be blamed too (replay it alone).
pub const CASE_RSS_BOUND: u64 = 256 << 20;
/// Words that only a panic or a Rust internal would put in a message.
const PANIC_WORDS: &[&str] = &[
    "panicked",
    "RUST_BACKTRACE",
    "index out of bounds",
    "unwrap()",
    "with overflow",
    "slice index",
];

/// A file's extension, lowercased: what the demuxer is chosen by.
pub fn extension_of(name: &str) -> Option<String> {
    Path::new(name)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
}

/// A whole movie in memory, named like the file it came from (the extension kept).
pub struct MemSource {
    name: String,
    bytes: Bytes,
    validator: String,
}

impl MemSource {
    pub fn new(name: &str, bytes: Bytes) -> Self {
        let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        Self {
            name: name.to_owned(),
            validator: format!("mem;fnv={hash:016x};size={}", bytes.len()),
            bytes,
        }
    }
}

impl ByteSource for MemSource {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn validator(&self) -> &str {
        &self.validator
    }
    fn read_at(&self, offset: u64, len: usize) -> Result<Bytes, SourceError> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        let end = start.saturating_add(len).min(self.bytes.len());
        Ok(self.bytes.slice(start..end))
    }
    fn describe(&self) -> String {
        self.name.clone()
    }
    fn extension(&self) -> Option<String> {
        extension_of(&self.name)
    }
}

fn limits() -> Limits {
    Limits {
        decode_timeout: DECODE_TIMEOUT,
        ..Limits::default()
    }
}

/// What a case came to, for the tallies.
#[derive(Debug, Default)]
pub struct Outcome {
    /// "opened" or the error variant that refused the movie.
    pub verdict: String,
    /// Frames asked for and frames delivered.
    pub frames_tried: usize,
    pub frames_ok: usize,
    /// Error variants met on the way (refusal included).
    pub errors: Vec<String>,
    /// The slowest step and its time.
    pub slowest: (String, Duration),
    /// How far resident memory rose above its level at the start of the case.
    pub rss_raise: u64,
}

/// Runs one case, catching panics and measuring memory; `Err` says which invariant broke.
pub fn run(name: &str, bytes: Bytes) -> Result<Outcome, String> {
    install_panic_hook();
    let ticket = memory::begin();
    CAPTURING.with(|c| c.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(|| exercise(name, bytes)));
    CAPTURING.with(|c| c.set(false));
    let rss_raise = memory::end(ticket);
    let mut outcome = result.unwrap_or_else(|_| {
        let report = LAST_PANIC.with(|p| p.borrow_mut().take());
        Err(format!(
            "panicked: {}",
            report.unwrap_or_else(|| "(no panic message captured)".into())
        ))
    })?;
    if rss_raise > CASE_RSS_BOUND {
        return Err(format!(
            "resident memory rose {} MiB during this case (bound {} MiB; {})",
            rss_raise >> 20,
            CASE_RSS_BOUND >> 20,
            outcome.verdict
        ));
    }
    outcome.rss_raise = rss_raise;
    Ok(outcome)
}

/// Open, describe, frames first/middle/last (the middle one as PNG), out of range, and the
/// index through its cached form; for containers other than MOV/MP4, and for fragmented MP4
/// (read by its `mfra`), once more through the lazy index (`Limits::scan_whole_up_to` 0), which
/// large files of those containers get.
fn exercise(name: &str, bytes: Bytes) -> Result<Outcome, String> {
    let source: Arc<dyn ByteSource> = Arc::new(MemSource::new(name, bytes));
    let mut steps = Steps::default();
    let opened = exercise_with(&mut steps, &source, "", limits())?;
    let is_mov = matches!(extension_of(name).as_deref(), Some("mov" | "mp4" | "m4v"));
    if !is_mov || name.contains("fragmented") {
        let lazy = Limits {
            scan_whole_up_to: 0,
            ..limits()
        };
        exercise_with(&mut steps, &source, "lazy ", lazy)?;
    }
    Ok(steps.finish(if opened { "opened" } else { "refused" }))
}

/// [`exercise`] under one set of limits; `Ok(false)` when the movie is refused.
fn exercise_with(
    steps: &mut Steps,
    source: &Arc<dyn ByteSource>,
    label: &str,
    limits: Limits,
) -> Result<bool, String> {
    let Some(movie) = steps.run(&format!("{label}open"), || {
        Movie::open(Arc::clone(source), limits.clone())
    })?
    else {
        return Ok(false);
    };
    let count = movie.frame_count();
    let metadata = movie.metadata();
    steps.run(&format!("{label}frame_at_time"), || {
        movie.frame_at_time(metadata.duration / 2.0)
    })?;
    let middle = count.div_ceil(2);
    for n in frames_to_try(count) {
        steps.outcome.frames_tried += 1;
        let decoded = if n == middle {
            steps.run(&format!("{label}frame {n} as PNG"), || {
                movie
                    .frame(n, &RenderOptions::default(), Format::Png, None)
                    .map(|f| check_png(&f.bytes))
            })?
        } else {
            steps.run(&format!("{label}decode {n}"), || {
                movie.decode(n).map(|_| Ok(()))
            })?
        };
        if let Some(checked) = decoded {
            checked?;
            steps.outcome.frames_ok += 1;
        }
    }
    check_out_of_range(&movie)?;
    let adopted = steps.run(&format!("{label}index round trip"), || {
        let stored = movie.index().to_bytes()?;
        Movie::with_index(
            Arc::clone(source),
            MovieIndex::from_bytes(&stored)?,
            limits.clone(),
        )
    })?;
    if let Some(adopted) = adopted
        && adopted.frame_count() != count
    {
        return Err(format!(
            "the stored index has {} frames, the built one {count}",
            adopted.frame_count()
        ));
    }
    Ok(true)
}

/// The first, middle and last frames (fewer when the movie is that short).
fn frames_to_try(count: u64) -> Vec<u64> {
    let mut frames = vec![1, count.div_ceil(2), count];
    frames.retain(|&n| n >= 1);
    frames.dedup();
    frames
}

fn check_out_of_range(movie: &Movie) -> Result<(), String> {
    let count = movie.frame_count();
    match movie.decode(count + 1) {
        Err(Error::FrameOutOfRange { frame, count: c }) if frame == count + 1 && c == count => {}
        other => {
            return Err(format!(
                "frame {} of {count}: expected FrameOutOfRange, got {:?}",
                count + 1,
                other.map(|_| "a frame")
            ));
        }
    }
    match movie.decode(0) {
        Err(Error::FrameZero) => Ok(()),
        other => Err(format!(
            "frame 0: expected FrameZero, got {:?}",
            other.map(|_| "a frame")
        )),
    }
}

fn check_png(bytes: &[u8]) -> Result<(), String> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Ok(())
    } else {
        Err(format!(
            "the PNG encoder gave {} bytes without a PNG signature",
            bytes.len()
        ))
    }
}

/// The steps of one case: each timed against the deadline, each error checked and counted.
#[derive(Default)]
struct Steps {
    outcome: Outcome,
}

impl Steps {
    /// Runs a step: `Ok(Some)` on success, `Ok(None)` on a clean typed error, `Err` when an
    /// invariant broke (too slow, or an error message that is not one clean line).
    fn run<T>(
        &mut self,
        step: &str,
        f: impl FnOnce() -> Result<T, Error>,
    ) -> Result<Option<T>, String> {
        let started = Instant::now();
        let result = f();
        let took = started.elapsed();
        if took > self.outcome.slowest.1 {
            self.outcome.slowest = (step.to_owned(), took);
        }
        if took > DECODE_TIMEOUT + OVERRUN_MARGIN {
            return Err(format!(
                "{step} took {took:.2?}, past its {DECODE_TIMEOUT:?} deadline by more than {OVERRUN_MARGIN:?}"
            ));
        }
        match result {
            Ok(value) => Ok(Some(value)),
            Err(error) => {
                check_message(step, &error)?;
                self.outcome.errors.push(variant(&error));
                Ok(None)
            }
        }
    }

    fn finish(mut self, verdict: &str) -> Outcome {
        self.outcome.verdict = match (verdict, self.outcome.errors.first()) {
            ("refused", Some(first)) => first.clone(),
            _ => verdict.to_owned(),
        };
        self.outcome
    }
}

/// The error's variant name, e.g. "NotAMovie".
pub fn variant(error: &Error) -> String {
    let debug = format!("{error:?}");
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A message a client may see: one non-empty line, no control characters, no panic text.
pub fn check_message(step: &str, error: &Error) -> Result<(), String> {
    let text = error.to_string();
    let problem = if text.trim().is_empty() {
        Some("is empty")
    } else if text.chars().any(char::is_control) {
        Some("is not one clean line")
    } else if PANIC_WORDS.iter().any(|w| text.contains(w)) {
        Some("carries panic text")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(format!(
            "{step}: the {} error's message {problem}: {text:?}",
            variant(error)
        )),
        None => Ok(()),
    }
}

thread_local! {
    /// While set, this thread's panics are recorded for the report instead of printed.
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Records a panicking case's message, location and stack for its failure report.
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CAPTURING.with(Cell::get) {
                let report = format!("{info}\n{}", Backtrace::force_capture());
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(report));
            } else {
                previous(info);
            }
        }));
    });
}
