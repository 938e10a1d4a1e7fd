//! Turning a failing tier off and on again: after a failure that says the tier is unusable (disk
//! full, read-only, unreachable store), the tier is skipped and, once per retry interval, one
//! operation is let through to probe it. The change each way is logged in one line that names
//! the option configuring the tier, and shown by the `tier_available` metric.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::TierError;
use crate::metrics::TierMetrics;
use crate::tier::TierKind;

/// Availability of one tier.
pub(crate) struct TierGate {
    kind: TierKind,
    /// The name of the setting that configures the tier (the caller's), for log lines.
    setting: &'static str,
    /// The configured location (directory or URL), for log lines.
    location: String,
    retry_interval: Duration,
    metrics: TierMetrics,
    /// Mirrors `state` being `Available`, so the common case takes no lock.
    available: AtomicBool,
    state: Mutex<State>,
}

#[derive(Clone, Copy)]
enum State {
    Available,
    Disabled { next_probe: Instant },
}

impl TierGate {
    pub(crate) fn new(
        kind: TierKind,
        setting: &'static str,
        location: String,
        retry_interval: Duration,
        metrics: TierMetrics,
    ) -> Self {
        metrics.available.set(1);
        Self {
            kind,
            setting,
            location,
            retry_interval,
            metrics,
            available: AtomicBool::new(true),
            state: Mutex::new(State::Available),
        }
    }

    /// Whether to use the tier now: always while it is available; while disabled, true for one
    /// caller per retry interval (the probe).
    pub(crate) fn admit(&self) -> bool {
        if self.available.load(Ordering::Acquire) {
            return true;
        }
        let mut state = self.lock();
        match *state {
            State::Available => true,
            State::Disabled { next_probe } => {
                let now = Instant::now();
                if now < next_probe {
                    return false;
                }
                *state = State::Disabled {
                    next_probe: now + self.retry_interval,
                };
                true
            }
        }
    }

    pub(crate) fn is_available(&self) -> bool {
        self.available.load(Ordering::Acquire)
    }

    /// An operation worked: a disabled tier is back.
    pub(crate) fn record_success(&self) {
        if self.available.load(Ordering::Acquire) {
            return;
        }
        let mut state = self.lock();
        if matches!(*state, State::Disabled { .. }) {
            *state = State::Available;
            self.available.store(true, Ordering::Release);
            self.metrics.available.set(1);
            tracing::info!(
                tier = self.kind.label(),
                "{} tier is back: {} {} works again",
                self.kind.label(),
                self.setting,
                self.location
            );
        }
    }

    /// An operation failed: count it, log it, and disable the tier if the failure says so.
    pub(crate) fn record_failure(&self, operation: &str, error: &TierError) {
        self.metrics.errors.inc();
        let mut state = self.lock();
        if !error.disables_tier() {
            tracing::warn!(tier = self.kind.label(), operation, %error, "cache tier operation failed");
            return;
        }
        let next_probe = Instant::now() + self.retry_interval;
        let was_available = matches!(*state, State::Available);
        *state = State::Disabled { next_probe };
        self.available.store(false, Ordering::Release);
        if was_available {
            self.metrics.available.set(0);
            self.metrics.disabled.inc();
            tracing::warn!(
                tier = self.kind.label(),
                "{} {} is not usable ({operation}: {error}); {} tier disabled, serving from the \
                 other tiers, retrying every {:?}",
                self.setting,
                self.location,
                self.kind.label(),
                self.retry_interval
            );
        } else {
            tracing::debug!(tier = self.kind.label(), operation, %error, "cache tier still unusable");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // State is a plain value replaced whole; a poisoned lock still holds a valid one.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::CacheMetrics;

    fn gate(retry: Duration) -> (TierGate, TierMetrics) {
        let metrics = CacheMetrics::register(&prometheus::Registry::new())
            .unwrap()
            .disk
            .clone();
        (
            TierGate::new(
                TierKind::Disk,
                "disk setting",
                "/x".into(),
                retry,
                metrics.clone(),
            ),
            metrics,
        )
    }

    fn outage() -> TierError {
        TierError::io(
            "write",
            "/x",
            std::io::Error::from(std::io::ErrorKind::StorageFull),
        )
    }

    #[test]
    fn outage_disables_until_a_probe_succeeds() {
        let (gate, metrics) = gate(Duration::ZERO);
        assert!(gate.admit());
        gate.record_failure("put", &outage());
        gate.record_failure("put", &outage());
        assert!(!gate.is_available());
        assert_eq!(metrics.available.get(), 0);
        assert_eq!(metrics.disabled.get(), 1, "one outage, one transition");
        assert_eq!(metrics.errors.get(), 2);
        assert!(gate.admit(), "retry interval of zero: the next call probes");
        gate.record_success();
        assert!(gate.is_available());
        assert_eq!(metrics.available.get(), 1);
    }

    #[test]
    fn disabled_tier_admits_nobody_before_the_interval() {
        let (gate, _) = gate(Duration::from_secs(3600));
        gate.record_failure("get", &outage());
        assert!(!gate.admit());
    }

    #[test]
    fn entry_level_failure_keeps_the_tier() {
        let (gate, metrics) = gate(Duration::from_secs(3600));
        gate.record_failure("get", &TierError::Task("boom".into()));
        assert!(gate.is_available());
        assert_eq!(metrics.errors.get(), 1);
    }
}
