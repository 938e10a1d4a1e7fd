//! A tier behind its availability gate, as the read-through chain uses it: operations on a
//! disabled tier are skipped, failures are counted, logged and swallowed, and hits, misses and
//! bytes are counted.

use crate::error::TierError;
use crate::gate::TierGate;
use crate::key::CacheKey;
use crate::metrics::TierMetrics;
use crate::tier::Tier;
use crate::value::CachedValue;

pub(crate) struct Guarded<T> {
    pub(crate) tier: T,
    pub(crate) gate: TierGate,
    metrics: TierMetrics,
}

impl<T: Tier> Guarded<T> {
    pub(crate) fn new(tier: T, gate: TierGate, metrics: TierMetrics) -> Self {
        Self {
            tier,
            gate,
            metrics,
        }
    }

    /// The value, or `None` on a miss, a failure, or while the tier is disabled.
    pub(crate) async fn get(&self, key: &CacheKey) -> Option<CachedValue> {
        if !self.gate.admit() {
            return None;
        }
        match self.tier.get(key).await {
            Ok(Some(value)) => {
                self.gate.record_success();
                self.metrics.hits.inc();
                self.metrics.read_bytes.inc_by(value.len() as u64);
                Some(value)
            }
            Ok(None) => {
                self.gate.record_success();
                self.metrics.misses.inc();
                None
            }
            Err(error) => {
                self.metrics.misses.inc();
                self.gate.record_failure("get", &error);
                None
            }
        }
    }

    /// Stores the value unless the tier is disabled; failures are recorded, never returned.
    pub(crate) async fn put(&self, key: &CacheKey, value: &CachedValue) {
        if !self.gate.admit() {
            self.metrics.dropped_unavailable.inc();
            return;
        }
        match self.tier.put(key, value).await {
            Ok(()) => {
                self.gate.record_success();
                self.metrics.written_bytes.inc_by(value.len() as u64);
            }
            Err(error) => self.gate.record_failure("put", &error),
        }
    }

    /// Records the outcome of a start-up check (which logs the one line if the tier is unusable).
    pub(crate) fn record_check(&self, operation: &str, outcome: Result<(), TierError>) {
        match outcome {
            Ok(()) => self.gate.record_success(),
            Err(error) => self.gate.record_failure(operation, &error),
        }
    }
}
