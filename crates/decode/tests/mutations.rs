//! The mutation suite (issue 10, item 8): every tiny fixture, damaged thousands of ways from one
//! seed, must open or fail with a clean typed error — promptly, without a panic, in bounded memory.
//! Inputs that ever broke a rule live in tests/regressions/ and are replayed on every run.
//!
//! `LAZYCACHE_MUTATION_SEED` (a number, or `random`), `LAZYCACHE_MUTATION_CASES` and
//! `LAZYCACHE_MUTATION_THREADS` override the defaults (the seed in use is printed);
//! `LAZYCACHE_MUTATION_FIXTURES=mkv,ts` keeps only the fixtures whose names contain a part;
//! `LAZYCACHE_MUTATION_REPLAY=PATH` replays a kept input (or a folder of them) instead of
//! tests/regressions/.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "mutations/case.rs"]
mod case;
#[path = "mutations/landmarks.rs"]
mod landmarks;
#[path = "mutations/memory.rs"]
mod memory;
#[path = "mutations/mutate.rs"]
mod mutate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use lazycache_testkit::fixtures;

use case::{CASE_RSS_BOUND, DECODE_TIMEOUT, OVERRUN_MARGIN, Outcome};
use landmarks::Landmarks;
use memory::{Memory, memory};
use mutate::{Rng, mutate};

/// One tiny movie (64×48, 12 frames) per container/codec the service serves (scripts/fixtures).
const FIXTURES: &[&str] = &[
    "tiny_prores.mov",
    "tiny_h264_bframes.mp4",
    "tiny_h264_moov_end.mp4",
    "tiny_h264_fragmented.mp4",
    "tiny_h264_open_gop.mkv",
    "tiny_hevc.mkv",
    "tiny_vp9.webm",
    "tiny_mjpeg.avi",
    "tiny_mpeg2.mxf",
    "tiny_h264.ts",
];
const DEFAULT_SEED: u64 = 0x6c61_7a79_6361_6368;
const DEFAULT_CASES: usize = 6000;
const DEFAULT_THREADS: usize = 2;
/// Peak resident memory may grow this much over the whole run.
const RSS_GROWTH_BOUND: u64 = 1 << 30;
/// A case still running after this long is a hang: the process stops, naming its saved input.
const HANG_LIMIT: Duration = Duration::from_secs(60);
const MIB: u64 = 1 << 20;

#[test]
fn mutated_movies_fail_cleanly() {
    let config = Config::from_env();
    let fixtures = load_fixtures();
    for fixture in &fixtures {
        check_original(fixture);
    }
    let scratch = Scratch::create();
    eprintln!(
        "mutation suite: seed {:#x} (LAZYCACHE_MUTATION_SEED), {} cases (LAZYCACHE_MUTATION_CASES) \
         on {} threads; inputs in flight are written to {} (kept after a crash)",
        config.seed,
        config.cases,
        config.threads,
        scratch.dir.display()
    );
    let before = memory();
    let started = Instant::now();
    let results = run_cases(&fixtures, &config, &scratch);
    let elapsed = started.elapsed();
    let after = Memory {
        rss: memory().rss,
        peak: memory::overall_peak(),
    };
    report(&config, &results, elapsed, before, after);

    let failures = &results.failures;
    assert!(
        failures.is_empty(),
        "{} of {} mutated inputs broke a rule (seed {:#x}); each input is saved at the path given — \
         copy it into crates/decode/tests/regressions/ once fixed:\n{}",
        failures.len(),
        config.cases,
        config.seed,
        failures
            .iter()
            .take(20)
            .map(Failure::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let growth = after.peak.saturating_sub(before.rss);
    assert!(
        growth <= RSS_GROWTH_BOUND,
        "peak RSS grew {} MiB (bound {} MiB); largest raises: {:?}",
        growth / MIB,
        RSS_GROWTH_BOUND / MIB,
        results.raises
    );
    results.check_both_paths_taken(&config);
    scratch.remove();
}

/// Opening movies and decoding their frames again and again must not grow memory: every packet
/// FFmpeg hands over must be released (a packet leak costs about the movie's size per index).
/// Measured in a child process of its own, so no other test's memory moves the figures.
#[test]
fn reopening_movies_leaks_no_memory() {
    if std::env::var_os(LEAK_CHILD).is_some() {
        measure_reopening_leak();
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "reopening_movies_leaks_no_memory", "--nocapture"])
        .env(LEAK_CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprint!("{stderr}");
    assert!(
        output.status.success(),
        "the measuring child failed: {stderr}"
    );
}

const LEAK_CHILD: &str = "LAZYCACHE_MUTATION_LEAK_CHILD";
/// Movies read through each path: demuxed packet scans (MKV, AVI) and a zero-filled MP4 scan.
const LEAK_MOVIES: &[&str] = &[
    "h264_open_gop.mkv",
    "mjpeg.avi",
    "h264_longgop_faststart.mp4",
];
const LEAK_ROUNDS: usize = 20;
const LEAK_BOUND: u64 = 16 * MIB;

fn measure_reopening_leak() {
    let movies: Vec<(&str, Bytes)> = LEAK_MOVIES
        .iter()
        .map(|&name| {
            (
                name,
                Bytes::from(std::fs::read(fixtures::path(name)).unwrap()),
            )
        })
        .collect();
    let round = || {
        for (name, bytes) in &movies {
            let outcome = case::run(name, bytes.clone()).unwrap();
            assert_eq!(outcome.verdict, "opened", "{name}");
        }
    };
    round();
    round();
    let before = memory().rss;
    for _ in 0..LEAK_ROUNDS {
        round();
    }
    let growth = memory().rss.saturating_sub(before);
    let opens = (LEAK_ROUNDS * movies.len()) as u64;
    let total: usize = movies.iter().map(|(_, b)| b.len()).sum();
    eprintln!(
        "{opens} opens of {} KiB of movies: RSS grew {} KiB ({} KiB per open)",
        total >> 10,
        growth >> 10,
        (growth / opens) >> 10
    );
    assert!(
        growth <= LEAK_BOUND,
        "RSS grew {} MiB over {opens} opens and decodes of {LEAK_MOVIES:?} (bound {} MiB)",
        growth / MIB,
        LEAK_BOUND / MIB
    );
}

/// Replays tests/regressions/ (or the file or folder `LAZYCACHE_MUTATION_REPLAY` names).
#[test]
fn regression_inputs_fail_cleanly() {
    let inputs = replay_inputs();
    assert!(!inputs.is_empty(), "no inputs to replay");
    let mut problems = Vec::new();
    for path in &inputs {
        let name = path.file_name().unwrap().to_string_lossy();
        let bytes = Bytes::from(std::fs::read(path).unwrap());
        match case::run(&name, bytes) {
            Ok(outcome) => eprintln!("{name}: {}", outcome.verdict),
            Err(problem) => problems.push(format!("{name}: {problem}")),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn replay_inputs() -> Vec<PathBuf> {
    let path = std::env::var_os("LAZYCACHE_MUTATION_REPLAY").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions"),
        PathBuf::from,
    );
    if path.is_file() {
        return vec![path];
    }
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e != "md" && e != "txt"))
        .collect();
    inputs.sort();
    inputs
}

#[test]
fn landmarks_find_the_fields_the_mutations_aim_at() {
    let expected: &[(&str, &str, u64)] = &[
        ("tiny_prores.mov", "stsz.sample_count", 12),
        ("tiny_h264_bframes.mp4", "stsz.sample_count", 12),
        ("tiny_h264_moov_end.mp4", "stsz.sample_count", 12),
        ("tiny_h264_fragmented.mp4", "trun.sample_count", 6),
        ("tiny_h264_open_gop.mkv", "PixelWidth", 64),
        ("tiny_hevc.mkv", "PixelHeight", 48),
        ("tiny_vp9.webm", "PixelWidth", 64),
        ("tiny_mjpeg.avi", "avih.total_frames", 12),
        ("tiny_mpeg2.mxf", "partition.kag_size", 512),
        ("tiny_h264.ts", "PSI pointer_field", 0),
    ];
    for fixture in load_fixtures() {
        let marks = &fixture.marks;
        assert!(
            marks.boundaries.len() >= 4 && !marks.metadata.is_empty(),
            "{}: {} boundaries, {} metadata ranges",
            fixture.name,
            marks.boundaries.len(),
            marks.metadata.len()
        );
        let (_, field, value) = expected
            .iter()
            .find(|(name, _, _)| *name == fixture.name)
            .unwrap();
        assert!(
            marks
                .fields
                .iter()
                .any(|f| f.name == *field && f.value == *value),
            "{}: no {field} = {value} among {:?}",
            fixture.name,
            marks.fields.iter().map(|f| &f.name).collect::<Vec<_>>()
        );
        for kind in [landmarks::Kind::Size, landmarks::Kind::Value] {
            assert!(
                !marks.of_kind(kind).is_empty(),
                "{}: no {kind:?} fields",
                fixture.name
            );
        }
    }
}

#[test]
fn mutants_are_reproducible_from_the_seed() {
    let fixture = &load_fixtures()[0];
    let make = |seed, case| {
        let mut rng = Rng::for_case(seed, fixture.name, case);
        mutate(&fixture.bytes, &fixture.marks, &mut rng)
    };
    let (a, again) = (make(7, 3), make(7, 3));
    assert_eq!(a.bytes, again.bytes);
    assert_eq!(a.description, again.description);
    let others: Vec<Vec<u8>> = (4..12).map(|case| make(7, case).bytes).collect();
    assert!(
        others.iter().any(|b| *b != a.bytes),
        "cases 3–11 made identical mutants"
    );
    assert!(
        others.iter().all(|b| *b != fixture.bytes),
        "a mutant equal to its original"
    );
}

/// The run's knobs, from the environment or the defaults.
struct Config {
    seed: u64,
    cases: usize,
    threads: usize,
}

impl Config {
    fn from_env() -> Self {
        let seed = match std::env::var("LAZYCACHE_MUTATION_SEED").ok().as_deref() {
            None | Some("") => DEFAULT_SEED,
            Some("random") => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64),
            Some(text) => parse_number(text)
                .unwrap_or_else(|| panic!("LAZYCACHE_MUTATION_SEED={text:?}: not a number")),
        };
        Self {
            seed,
            cases: env_count("LAZYCACHE_MUTATION_CASES").unwrap_or(DEFAULT_CASES),
            threads: env_count("LAZYCACHE_MUTATION_THREADS")
                .unwrap_or(DEFAULT_THREADS)
                .max(1),
        }
    }
}

/// Decimal or 0x-prefixed hexadecimal.
fn parse_number(text: &str) -> Option<u64> {
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

fn env_count(name: &str) -> Option<usize> {
    let text = std::env::var(name).ok()?;
    let n = parse_number(&text).unwrap_or_else(|| panic!("{name}={text:?}: not a number"));
    Some(n as usize)
}

/// A fixture's bytes and the landmarks its mutations aim at.
struct Fixture {
    name: &'static str,
    bytes: Vec<u8>,
    marks: Landmarks,
}

fn load_fixtures() -> Vec<Fixture> {
    let only = std::env::var("LAZYCACHE_MUTATION_FIXTURES").unwrap_or_default();
    FIXTURES
        .iter()
        .filter(|name| only.is_empty() || only.split(',').any(|part| name.contains(part)))
        .map(|&name| {
            let bytes = std::fs::read(fixtures::path(name)).unwrap();
            let marks = landmarks::find(name, &bytes);
            Fixture { name, bytes, marks }
        })
        .collect()
}

/// An undamaged fixture opens and gives every frame asked for: else its mutants prove little.
fn check_original(fixture: &Fixture) {
    let outcome = case::run(fixture.name, Bytes::from(fixture.bytes.clone()))
        .unwrap_or_else(|problem| panic!("{} (undamaged): {problem}", fixture.name));
    assert!(
        outcome.verdict == "opened" && outcome.frames_ok == outcome.frames_tried,
        "{} (undamaged) should open and decode: {outcome:?}",
        fixture.name
    );
}

/// A folder for the inputs in flight (one file per worker) and the failing ones.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn create() -> Self {
        let dir = std::env::temp_dir().join(format!("lazycache-mutations-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    /// Writes the input a worker is about to run (and what it is), so a crash leaves it behind.
    fn in_flight(&self, worker: usize, name: &str, bytes: &[u8], what: &str) -> PathBuf {
        let path = self.dir.join(format!("worker-{worker}-{name}"));
        std::fs::write(&path, bytes).unwrap();
        std::fs::write(self.dir.join(format!("worker-{worker}.txt")), what).unwrap();
        path
    }

    /// Keeps a failing input under a name of its own (the extension kept).
    fn keep(&self, in_flight: &Path, name: &str, case: u64) -> PathBuf {
        let path = self.dir.join(format!("failure-{case}-{name}"));
        std::fs::copy(in_flight, &path).unwrap();
        path
    }

    /// Removes the folder unless a failure was kept in it.
    fn remove(self) {
        let kept = std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .any(|e| e.file_name().to_string_lossy().starts_with("failure-"))
            })
            .unwrap_or(false);
        if !kept {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// What each worker is running, so a watchdog can name a hung case.
struct Watch {
    slots: Mutex<Vec<Option<(Instant, String, PathBuf)>>>,
    done: AtomicBool,
}

impl Watch {
    fn new(workers: usize) -> Self {
        Self {
            slots: Mutex::new(vec![None; workers]),
            done: AtomicBool::new(false),
        }
    }

    fn set(&self, worker: usize, running: Option<(Instant, String, PathBuf)>) {
        self.slots.lock().unwrap()[worker] = running;
    }

    /// Ends the process when a case runs past `HANG_LIMIT`: its thread cannot be stopped.
    fn watch(&self) {
        while !self.done.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(200));
            for (since, what, input) in self.slots.lock().unwrap().iter().flatten() {
                if since.elapsed() > HANG_LIMIT {
                    eprintln!(
                        "HANG: {what} still running after {HANG_LIMIT:?}; input: {}",
                        input.display()
                    );
                    std::process::exit(101);
                }
            }
        }
    }
}

/// A broken rule: which input, what broke, where the input is.
struct Failure {
    what: String,
    problem: String,
    input: PathBuf,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "- {}\n  {}\n  input: {}",
            self.what,
            self.problem.replace('\n', "\n    "),
            self.input.display()
        )
    }
}

/// Per-fixture tallies.
#[derive(Default)]
struct Tally {
    cases: usize,
    opened: usize,
    frames_tried: usize,
    frames_ok: usize,
    verdicts: BTreeMap<String, usize>,
    slowest: (Duration, String),
}

#[derive(Default)]
struct Results {
    tallies: BTreeMap<&'static str, Tally>,
    failures: Vec<Failure>,
    /// The cases during which resident memory rose the most, in MiB (approximate with several
    /// workers).
    raises: Vec<(u64, String)>,
}

impl Results {
    fn record(&mut self, fixture: &'static str, what: &str, outcome: Outcome) {
        let raise = outcome.rss_raise;
        let tally = self.tallies.entry(fixture).or_default();
        tally.cases += 1;
        tally.opened += usize::from(outcome.verdict == "opened");
        tally.frames_tried += outcome.frames_tried;
        tally.frames_ok += outcome.frames_ok;
        *tally.verdicts.entry(outcome.verdict).or_default() += 1;
        if outcome.slowest.1 > tally.slowest.0 {
            tally.slowest = (outcome.slowest.1, outcome.slowest.0);
        }
        if raise > 0 {
            self.raises.push((raise / MIB, what.to_owned()));
            self.raises.sort_by_key(|r| std::cmp::Reverse(r.0));
            self.raises.truncate(3);
        }
    }

    /// With enough cases, each fixture's mutants must both open and be refused sometimes:
    /// else the mutations are too weak or too strong to test anything.
    fn check_both_paths_taken(&self, config: &Config) {
        if config.cases < 50 * FIXTURES.len() {
            return;
        }
        for (name, tally) in &self.tallies {
            assert!(
                tally.opened > 0 && tally.opened < tally.cases,
                "{name}: {} of {} mutants opened",
                tally.opened,
                tally.cases
            );
        }
    }
}

/// Runs the configured number of cases on `config.threads` workers, fixtures interleaved.
fn run_cases(fixtures: &[Fixture], config: &Config, scratch: &Scratch) -> Results {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Results::default());
    let watch = Watch::new(config.threads);
    std::thread::scope(|scope| {
        let watchdog = scope.spawn(|| watch.watch());
        let workers: Vec<_> = (0..config.threads)
            .map(|worker| {
                let (next, results, watch) = (&next, &results, &watch);
                scope.spawn(move || {
                    while let Some(job) = claim(next, config.cases) {
                        run_job(job, worker, fixtures, config, scratch, watch, results);
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        watch.done.store(true, Ordering::SeqCst);
        watchdog.join().unwrap();
    });
    results.into_inner().unwrap()
}

fn claim(next: &AtomicUsize, total: usize) -> Option<usize> {
    let job = next.fetch_add(1, Ordering::SeqCst);
    (job < total).then_some(job)
}

/// Job `job` is case `job / fixtures` of fixture `job % fixtures`.
fn run_job(
    job: usize,
    worker: usize,
    fixtures: &[Fixture],
    config: &Config,
    scratch: &Scratch,
    watch: &Watch,
    results: &Mutex<Results>,
) {
    let fixture = &fixtures[job % fixtures.len()];
    let case = (job / fixtures.len()) as u64;
    let mut rng = Rng::for_case(config.seed, fixture.name, case);
    let mutant = mutate(&fixture.bytes, &fixture.marks, &mut rng);
    let what = format!("{} #{case}: {}", fixture.name, mutant.description);
    let input = scratch.in_flight(worker, fixture.name, &mutant.bytes, &what);
    watch.set(worker, Some((Instant::now(), what.clone(), input.clone())));
    let result = case::run(fixture.name, Bytes::from(mutant.bytes));
    watch.set(worker, None);
    let mut results = results.lock().unwrap();
    match result {
        Ok(outcome) => results.record(fixture.name, &what, outcome),
        Err(problem) => {
            let input = scratch.keep(&input, fixture.name, case);
            eprintln!("FAILED {what}: {problem}\n  input: {}", input.display());
            results.failures.push(Failure {
                what,
                problem,
                input,
            });
        }
    }
}

fn report(config: &Config, results: &Results, elapsed: Duration, before: Memory, after: Memory) {
    let secs = elapsed.as_secs_f64();
    eprintln!(
        "mutation suite: seed {:#x}, {} cases in {secs:.1} s ({:.0} cases/s) on {} threads; \
         each step's deadline {DECODE_TIMEOUT:?} + {OVERRUN_MARGIN:?}",
        config.seed,
        config.cases,
        config.cases as f64 / secs.max(1e-9),
        config.threads
    );
    for (name, t) in &results.tallies {
        let verdicts: Vec<String> = t.verdicts.iter().map(|(v, n)| format!("{v} {n}")).collect();
        eprintln!(
            "  {name:26} {:5} cases, {:5} opened ({}/{} frames); {}; slowest step {:.2?} ({})",
            t.cases,
            t.opened,
            t.frames_ok,
            t.frames_tried,
            verdicts.join(", "),
            t.slowest.0,
            t.slowest.1
        );
    }
    eprintln!(
        "memory: RSS {} MiB before, {} MiB after; peak {} MiB (+{} MiB, bound +{} MiB); \
         largest rises in one case (bound {} MiB): {:?}",
        before.rss / MIB,
        after.rss / MIB,
        after.peak / MIB,
        after.peak.saturating_sub(before.rss) / MIB,
        RSS_GROWTH_BOUND / MIB,
        CASE_RSS_BOUND / MIB,
        results.raises
    );
}
