//! Bounds on what one movie or one request may cost: index bytes, samples, decode work, pixels,
//! and the explicit settings that bound FFmpeg's own probing and stream analysis.

use std::time::Duration;

/// Caps that keep hostile or huge media from costing unbounded memory or time.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Bytes the decoder may read from the origin to build a movie's index (the moov atom, or a
    /// full scan of a container without one); other containers read at most
    /// [`Limits::index_budget`], which this caps too.
    pub max_index_bytes: u64,
    /// Movies in containers without a sample table (Matroska/WebM, AVI, MXF, MPEG-TS) no larger
    /// than this are indexed by one packet scan (every sample, read within the index budget);
    /// larger ones from the container's own index structures (see `index/lazy.rs`).
    pub scan_whole_up_to: u64,
    /// Video samples (frames) one movie may have, and — because memory follows them — the most
    /// samples any one track of a MOV/MP4 may declare before FFmpeg builds its table for it.
    ///
    /// An index costs about 100 bytes per sample while it is built (FFmpeg's table of 24-byte
    /// entries plus its composition-offset table, then our 32-byte samples) and 36 bytes per
    /// sample once parsed, so the default (a million: 9¼ hours at 29.97 fps) bounds one index
    /// build to about 100 MB. Declared counts are checked against this before FFmpeg sees the
    /// movie (see `mp4_boxes`).
    pub max_samples: usize,
    /// Largest sample (coded frame) a movie may have: a bigger one makes the movie unservable
    /// (415) at index time, so one frame can neither fill memory nor fan out into hundreds of
    /// range requests. 64 MiB is well above any camera codec's frame (a ProRes 4444 XQ 8K frame
    /// is about 20 MB).
    pub max_sample_bytes: u64,
    /// Packets one frame request may feed to the decoder (bounds GOP length).
    pub max_decode_packets: usize,
    /// Wall-clock cap on one index build or one frame decode.
    pub decode_timeout: Duration,
    /// Largest coded picture accepted (width × height); also the decoder's `max_pixels`, so a
    /// stream that changes size mid-way cannot make it allocate larger pictures.
    pub max_source_pixels: u64,
    /// Decoder threads per decode.
    pub decoder_threads: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_index_bytes: 256 * 1024 * 1024,
            scan_whole_up_to: INDEX_FLOOR_BYTES,
            max_samples: 1_000_000,
            max_sample_bytes: 64 * 1024 * 1024,
            max_decode_packets: 4096,
            decode_timeout: Duration::from_secs(60),
            max_source_pixels: 8192 * 8192,
            decoder_threads: 2,
        }
    }
}

impl Limits {
    /// Bytes a movie's metadata may read outside MOV/MP4: 2% of the file or
    /// [`INDEX_FLOOR_BYTES`], whichever is larger (SPEC §4, Index reads), within
    /// `max_index_bytes`.
    pub fn index_budget(&self, file_size: u64) -> u64 {
        (file_size / INDEX_SHARE_DIVISOR)
            .max(INDEX_FLOOR_BYTES)
            .min(self.max_index_bytes)
    }
}

/// The index budget's floor: small files may read this much (SPEC §4).
pub const INDEX_FLOOR_BYTES: u64 = 4 * 1024 * 1024;

/// The index budget's share of a large file: one fiftieth, 2% (SPEC §4).
pub const INDEX_SHARE_DIVISOR: u64 = 50;

/// Bytes FFmpeg may look at to confirm the container the file's extension names
/// (`format_probesize`). Every container we open announces itself in its first kilobytes; this
/// is FFmpeg's own default, stated here so an upgrade cannot widen it.
pub const FORMAT_PROBE_BYTES: i32 = 1 << 20;

/// Bytes of packets `avformat_find_stream_info` may read to learn the video stream's
/// parameters in containers without a sample table (`probesize`; FFmpeg's default). Only
/// the video stream is analysed: every other stream is discarded first.
pub const STREAM_PROBE_BYTES: i64 = 5_000_000;

/// Presentation time, in microseconds, stream analysis may cover (`analyzeduration`): five
/// seconds, FFmpeg's default for most containers, so a stream whose parameters never appear
/// cannot make it read on.
pub const ANALYZE_DURATION_US: i64 = 5_000_000;

/// Streams a container may declare (`max_streams`; FFmpeg allows 1000). Each costs FFmpeg
/// memory and, in stream analysis, a decoder context; real movies have a video stream, some
/// audio and perhaps timecode or subtitles, MXF and broadcast TS a dozen or two.
pub const MAX_STREAMS: i32 = 64;

/// Bytes of a MOV/MP4's atoms (the moov, movie fragments, atom headers) kept in memory after
/// they are checked, so that FFmpeg's own reading of them does not ask the origin again. Atoms
/// past this budget are checked and dropped, and FFmpeg reads those from the source again.
pub const KEPT_INDEX_BYTES: u64 = 32 * 1024 * 1024;
