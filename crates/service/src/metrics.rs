//! The service's Prometheus metrics, next to the cache's: decode, encode and index latency,
//! decodes in flight and waiting, queue rejections, origin traffic.

use lazycache_origin::OriginStats;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Metrics registered by the service.
#[derive(Clone)]
pub struct ServiceMetrics {
    pub decode_seconds: Histogram,
    pub encode_seconds: Histogram,
    pub index_seconds: Histogram,
    pub decodes_in_flight: IntGauge,
    pub decodes_waiting: IntGauge,
    pub decode_queue_rejections: IntCounter,
    /// Frames decoded, by how: `cold` (from the keyframe), `continued` (a kept long-GOP
    /// decoder went on), `kept` (a kept decoder had produced the picture already).
    pub decodes: IntCounterVec,
    decoder_state_bytes: IntGauge,
    origin_range_requests: IntGauge,
    origin_range_bytes: IntGauge,
    origin_list_requests: IntGauge,
    origin_stat_requests: IntGauge,
    origin_block_hits: IntGauge,
    origin_block_misses: IntGauge,
}

/// Latency buckets from 1 ms to 30 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

impl ServiceMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let histogram = |name: &str, help: &str| -> Result<Histogram, prometheus::Error> {
            let histogram = Histogram::with_opts(
                HistogramOpts::new(name, help)
                    .namespace("lazycache")
                    .buckets(SECONDS_BUCKETS.to_vec()),
            )?;
            registry.register(Box::new(histogram.clone()))?;
            Ok(histogram)
        };
        let gauge = |name: &str, help: &str| -> Result<IntGauge, prometheus::Error> {
            let gauge = IntGauge::with_opts(Opts::new(name, help).namespace("lazycache"))?;
            registry.register(Box::new(gauge.clone()))?;
            Ok(gauge)
        };
        let rejections = IntCounter::with_opts(
            Opts::new(
                "decode_queue_rejections_total",
                "Requests answered 503 because no decode slot freed in time",
            )
            .namespace("lazycache"),
        )?;
        registry.register(Box::new(rejections.clone()))?;
        let decodes = IntCounterVec::new(
            Opts::new(
                "decodes_total",
                "Frames decoded: cold from the keyframe, continued from a kept decoder, or kept",
            )
            .namespace("lazycache"),
            &["path"],
        )?;
        registry.register(Box::new(decodes.clone()))?;
        Ok(Self {
            decode_seconds: histogram("decode_seconds", "Time to decode one frame")?,
            encode_seconds: histogram("encode_seconds", "Time to render and encode one frame")?,
            index_seconds: histogram("index_seconds", "Time to read one movie's index")?,
            decodes_in_flight: gauge("decodes_in_flight", "Decodes running now")?,
            decodes_waiting: gauge("decodes_waiting", "Requests waiting for a decode slot")?,
            decode_queue_rejections: rejections,
            decodes,
            decoder_state_bytes: gauge(
                "decoder_state_bytes",
                "Estimated bytes of the long-GOP decoder states kept now",
            )?,
            origin_range_requests: gauge(
                "origin_range_requests",
                "Range requests sent to origins since start",
            )?,
            origin_range_bytes: gauge("origin_range_bytes", "Bytes read from origins since start")?,
            origin_list_requests: gauge(
                "origin_list_requests",
                "Directory listings fetched from origins since start",
            )?,
            origin_stat_requests: gauge(
                "origin_stat_requests",
                "File stats fetched from origins since start",
            )?,
            origin_block_hits: gauge(
                "origin_block_hits",
                "Origin blocks served from the range cache since start",
            )?,
            origin_block_misses: gauge(
                "origin_block_misses",
                "Origin blocks fetched or awaited since start",
            )?,
        })
    }

    /// Copies the origin counters and the kept decoder states' size into their gauges (done at
    /// each scrape).
    pub fn observe(&self, stats: OriginStats, decoder_state_bytes: u64) {
        self.decoder_state_bytes
            .set(i64::try_from(decoder_state_bytes).unwrap_or(i64::MAX));
        let set =
            |gauge: &IntGauge, value: u64| gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
        set(&self.origin_range_requests, stats.range_requests);
        set(&self.origin_range_bytes, stats.range_bytes);
        set(&self.origin_list_requests, stats.list_requests);
        set(&self.origin_stat_requests, stats.stat_requests);
        set(&self.origin_block_hits, stats.block_hits);
        set(&self.origin_block_misses, stats.block_misses);
    }
}

/// Counts one unit in a gauge until dropped, so the gauge stays right when a future holding it
/// is cancelled (a client gone, a time limit hit) or a blocking thread outlives its request.
pub struct Counted(IntGauge);

impl Counted {
    pub fn enter(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.dec();
    }
}
