//! The decode crate's one error type: each variant says whose fault a failure is.

use crate::source::SourceError;

/// Everything that can go wrong between a byte source and an encoded image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the movie's bytes failed (not found, timeout, changed, bad origin answer).
    #[error("reading the movie failed: {0}")]
    Source(#[from] SourceError),
    /// The bytes are not a movie FFmpeg can read (text, an unsupported container, no moov atom …).
    #[error("not a readable movie: {0}")]
    NotAMovie(String),
    /// A readable container without a decodable video stream.
    #[error("the file has no video stream")]
    NoVideoStream,
    /// The file ends before the data its index points at (an incomplete copy).
    #[error("the movie is truncated: {0}")]
    Truncated(String),
    /// The container index is larger than the configured cap.
    #[error("the movie's index is too large: {0}")]
    IndexTooLarge(String),
    /// Frame numbers count from 1 to NumFrames.
    #[error("frames count from 1")]
    FrameZero,
    #[error("frame {frame} is past the last frame ({count})")]
    FrameOutOfRange { frame: u64, count: u64 },
    #[error("time {time}s is outside the movie (0 to {duration}s)")]
    TimeOutOfRange { time: f64, duration: f64 },
    /// A request that cannot be satisfied as asked (size, crop, quality …).
    #[error("{0}")]
    InvalidRequest(String),
    /// The codec is not one this FFmpeg build can decode.
    #[error("unsupported codec: {0}")]
    UnsupportedCodec(String),
    /// FFmpeg failed to decode data the index promised (corrupt or hostile media).
    #[error("decoding failed: {0}")]
    Decode(String),
    /// Decoding took longer than the configured time cap.
    #[error("decoding took longer than {0:?}")]
    DecodeTimeout(std::time::Duration),
    /// A cached index that does not deserialize (an older format or damage).
    #[error("stored movie index is unreadable: {0}")]
    BadIndex(String),
    /// Encoding the image failed.
    #[error("encoding the image failed: {0}")]
    Encode(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Renders an FFmpeg error code as words.
pub(crate) fn av_error_string(code: i32) -> String {
    ffmpeg_next::Error::from(code).to_string()
}
