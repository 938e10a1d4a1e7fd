//! Resident memory per case: /proc/self/status (VmRSS, VmHWM), with the high-water mark reset
//! between readings so each case's own peak shows even after an earlier, larger one.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// The process's resident and peak resident memory, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub rss: u64,
    pub peak: u64,
}

pub fn memory() -> Memory {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kb| kb * 1024)
    };
    Memory {
        rss: kib("VmRSS:"),
        peak: kib("VmHWM:"),
    }
}

/// Cases being measured, shared by every test thread of the process: whoever reads the peak
/// credits it to every open case before resetting it, so no case's peak is lost.
struct Tracker {
    open: BTreeMap<u64, Measure>,
    next: u64,
    /// The highest peak seen since the process started.
    overall_peak: u64,
    /// False where /proc/self/clear_refs cannot reset the peak (then raises are only counted
    /// above the peak so far).
    resets: bool,
}

struct Measure {
    rss_before: u64,
    peak_before: u64,
    peak_seen: u64,
}

static TRACKER: Mutex<Tracker> = Mutex::new(Tracker {
    open: BTreeMap::new(),
    next: 0,
    overall_peak: 0,
    resets: true,
});

impl Tracker {
    /// Credits the peak since the last reset to every open case, then resets it.
    fn fold(&mut self) -> Memory {
        let now = memory();
        for measure in self.open.values_mut() {
            measure.peak_seen = measure.peak_seen.max(now.peak);
        }
        self.overall_peak = self.overall_peak.max(now.peak);
        self.resets = self.resets && std::fs::write("/proc/self/clear_refs", "5").is_ok();
        now
    }
}

fn tracker() -> std::sync::MutexGuard<'static, Tracker> {
    TRACKER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A case whose memory is being measured.
pub struct Ticket(u64);

pub fn begin() -> Ticket {
    let mut tracker = tracker();
    let now = tracker.fold();
    let id = tracker.next;
    tracker.next += 1;
    tracker.open.insert(
        id,
        Measure {
            rss_before: now.rss,
            peak_before: now.peak,
            peak_seen: 0,
        },
    );
    Ticket(id)
}

/// How far the process's resident memory rose above its level at `begin` while the case ran
/// (other threads' work included: approximate with several at once).
pub fn end(ticket: Ticket) -> u64 {
    let mut tracker = tracker();
    tracker.fold();
    let Some(measure) = tracker.open.remove(&ticket.0) else {
        return 0;
    };
    let floor = if tracker.resets {
        measure.rss_before
    } else {
        measure.rss_before.max(measure.peak_before)
    };
    measure.peak_seen.saturating_sub(floor)
}

/// The highest resident memory the process has had (as far as the tracker has looked).
pub fn overall_peak() -> u64 {
    let mut tracker = tracker();
    tracker.fold();
    tracker.overall_peak
}
