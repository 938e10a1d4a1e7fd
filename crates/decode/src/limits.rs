//! Bounds on what one movie or one request may cost: index bytes, samples, decode work, pixels.

use std::time::Duration;

/// Caps that keep hostile or huge media from costing unbounded memory or time.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Bytes the decoder may read from the origin to build a movie's index (the moov atom, or a
    /// full scan of a container without one).
    pub max_index_bytes: u64,
    /// Video samples (frames) one movie may have.
    pub max_samples: usize,
    /// Packets one frame request may feed to the decoder (bounds GOP length).
    pub max_decode_packets: usize,
    /// Wall-clock cap on one index build or one frame decode.
    pub decode_timeout: Duration,
    /// Largest coded picture accepted (width × height).
    pub max_source_pixels: u64,
    /// Decoder threads per decode.
    pub decoder_threads: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_index_bytes: 256 * 1024 * 1024,
            max_samples: 10_000_000,
            max_decode_packets: 4096,
            decode_timeout: Duration::from_secs(60),
            max_source_pixels: 8192 * 8192,
            decoder_threads: 2,
        }
    }
}
