//! Prometheus metrics per tier (hits, misses, bytes, evictions, errors, queue depth, availability)
//! and for the computations behind the cache.

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use crate::tier::TierKind;

/// Every cache metric, registered in one [`Registry`]; the `tier` label is `memory`, `disk` or
/// `object-store`.
#[derive(Clone)]
pub struct CacheMetrics {
    pub memory: TierMetrics,
    pub disk: TierMetrics,
    pub object_store: TierMetrics,
    /// Computations started (after a miss in every tier).
    pub computations: IntCounter,
    /// Computations that failed, timed out or panicked.
    pub computation_failures: IntCounter,
    /// Calls that found a computation already running for their key and waited on it.
    pub coalesced_waits: IntCounter,
}

/// The metrics of one tier, resolved once so the hot path does no label lookups.
#[derive(Clone)]
pub struct TierMetrics {
    pub hits: IntCounter,
    pub misses: IntCounter,
    /// Bytes served from this tier.
    pub read_bytes: IntCounter,
    /// Bytes written into this tier.
    pub written_bytes: IntCounter,
    /// Bytes currently held (memory and disk; the object store's size is not known).
    pub stored_bytes: IntGauge,
    pub evictions: IntCounter,
    pub errors: IntCounter,
    /// Entries that failed their integrity check (or signature) and were discarded or ignored.
    pub corrupt_entries: IntCounter,
    /// Object-store entries ignored, unread, for being larger than their key's bound.
    pub oversized_entries: IntCounter,
    /// Writes waiting in (or being done by) the write-behind queue.
    pub queue_depth: IntGauge,
    /// Writes dropped because the write-behind queue was full.
    pub dropped_queue_full: IntCounter,
    /// Writes dropped because the tier was disabled.
    pub dropped_unavailable: IntCounter,
    /// 1 while the tier is in use, 0 while it is disabled (or not configured).
    pub available: IntGauge,
    /// How many times the tier was disabled after a failure.
    pub disabled: IntCounter,
}

struct Families {
    hits: IntCounterVec,
    misses: IntCounterVec,
    read_bytes: IntCounterVec,
    written_bytes: IntCounterVec,
    stored_bytes: IntGaugeVec,
    evictions: IntCounterVec,
    errors: IntCounterVec,
    corrupt_entries: IntCounterVec,
    oversized_entries: IntCounterVec,
    queue_depth: IntGaugeVec,
    dropped_writes: IntCounterVec,
    available: IntGaugeVec,
    disabled: IntCounterVec,
}

impl CacheMetrics {
    /// Creates the metrics and registers them in `registry` (render it for `/metrics`).
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let tier = &["tier"];
        let families = Families {
            hits: counters(registry, "hits_total", "Lookups answered by the tier", tier)?,
            misses: counters(
                registry,
                "misses_total",
                "Lookups the tier could not answer",
                tier,
            )?,
            read_bytes: counters(
                registry,
                "read_bytes_total",
                "Bytes served by the tier",
                tier,
            )?,
            written_bytes: counters(
                registry,
                "written_bytes_total",
                "Bytes written into the tier",
                tier,
            )?,
            stored_bytes: gauges(registry, "stored_bytes", "Bytes held by the tier", tier)?,
            evictions: counters(
                registry,
                "evictions_total",
                "Entries evicted to keep the bound",
                tier,
            )?,
            errors: counters(registry, "errors_total", "Failed tier operations", tier)?,
            corrupt_entries: counters(
                registry,
                "corrupt_entries_total",
                "Entries that failed their integrity check or signature and were not used",
                tier,
            )?,
            oversized_entries: counters(
                registry,
                "oversized_entries_total",
                "Entries ignored unread for being larger than their kind's bound",
                tier,
            )?,
            queue_depth: gauges(
                registry,
                "write_queue_depth",
                "Writes pending in the write-behind queue",
                tier,
            )?,
            dropped_writes: counters(
                registry,
                "dropped_writes_total",
                "Writes dropped (reason: queue_full or unavailable)",
                &["tier", "reason"],
            )?,
            available: gauges(
                registry,
                "tier_available",
                "1 while the tier is in use, 0 while disabled",
                tier,
            )?,
            disabled: counters(
                registry,
                "tier_disabled_total",
                "Times the tier was disabled after a failure",
                tier,
            )?,
        };
        let computations = IntCounter::with_opts(opts(
            "computations_total",
            "Values computed after a miss in every tier",
        ))?;
        let computation_failures = IntCounter::with_opts(opts(
            "computation_failures_total",
            "Computations that failed, timed out or panicked",
        ))?;
        let coalesced_waits = IntCounter::with_opts(opts(
            "coalesced_waits_total",
            "Lookups that waited on a computation already running for their key",
        ))?;
        for counter in [&computations, &computation_failures, &coalesced_waits] {
            registry.register(Box::new(counter.clone()))?;
        }
        Ok(Self {
            memory: families.tier(TierKind::Memory),
            disk: families.tier(TierKind::Disk),
            object_store: families.tier(TierKind::ObjectStore),
            computations,
            computation_failures,
            coalesced_waits,
        })
    }

    pub fn tier(&self, kind: TierKind) -> &TierMetrics {
        match kind {
            TierKind::Memory => &self.memory,
            TierKind::Disk => &self.disk,
            TierKind::ObjectStore => &self.object_store,
        }
    }
}

impl Families {
    fn tier(&self, kind: TierKind) -> TierMetrics {
        let label = [kind.label()];
        TierMetrics {
            hits: self.hits.with_label_values(&label),
            misses: self.misses.with_label_values(&label),
            read_bytes: self.read_bytes.with_label_values(&label),
            written_bytes: self.written_bytes.with_label_values(&label),
            stored_bytes: self.stored_bytes.with_label_values(&label),
            evictions: self.evictions.with_label_values(&label),
            errors: self.errors.with_label_values(&label),
            corrupt_entries: self.corrupt_entries.with_label_values(&label),
            oversized_entries: self.oversized_entries.with_label_values(&label),
            queue_depth: self.queue_depth.with_label_values(&label),
            dropped_queue_full: self
                .dropped_writes
                .with_label_values(&[kind.label(), "queue_full"]),
            dropped_unavailable: self
                .dropped_writes
                .with_label_values(&[kind.label(), "unavailable"]),
            available: self.available.with_label_values(&label),
            disabled: self.disabled.with_label_values(&label),
        }
    }
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help)
        .namespace("lazycache")
        .subsystem("cache")
}

fn counters(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    let family = IntCounterVec::new(opts(name, help), labels)?;
    registry.register(Box::new(family.clone()))?;
    Ok(family)
}

fn gauges(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntGaugeVec, prometheus::Error> {
    let family = IntGaugeVec::new(opts(name, help), labels)?;
    registry.register(Box::new(family.clone()))?;
    Ok(family)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::Encoder as _;

    #[test]
    fn renders_per_tier_families() {
        let registry = Registry::new();
        let metrics = CacheMetrics::register(&registry).unwrap();
        metrics.disk.hits.inc();
        metrics.object_store.dropped_queue_full.inc();
        let mut text = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&registry.gather(), &mut text)
            .unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("lazycache_cache_hits_total{tier=\"disk\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "lazycache_cache_dropped_writes_total{reason=\"queue_full\",tier=\"object-store\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("lazycache_cache_write_queue_depth{tier=\"memory\"} 0"));
    }
}
