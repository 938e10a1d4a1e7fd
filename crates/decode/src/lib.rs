//! lazycache-decode: exact single frames of any movie FFmpeg can read, over a [`ByteSource`].
//!
//! Knows nothing of HTTP or caching: the service adapts its origins to [`ByteSource`], caches
//! [`MovieIndex`] and encoded frames itself, and calls the blocking [`Movie`] methods off its
//! async runtime. See ARCHITECTURE.md.

mod avio;
pub mod clip;
pub mod deadline;
mod decoder;
pub mod encode;
pub mod error;
mod ffmpeg_log;
mod fragments;
pub mod index;
mod jpeg_from_yuv;
pub mod limits;
pub mod movie;
mod mp4_boxes;
mod mpegts;
mod read_plan;
pub mod render;
pub mod source;

pub use clip::{ClipFormat, ClipPlan, ClipWritten, MAX_CLIP_BYTES, MAX_CLIP_SECONDS};
pub use decoder::warm_pool::{WarmPool, WarmSettings};
pub use decoder::{DecodePath, DecodedFrame};
pub use encode::{DEFAULT_JPEG_QUALITY, Format, encode, npy_header};
pub use error::{Error, Result};
pub use index::{INDEX_FORMAT_VERSION, MovieIndex};
pub use limits::Limits;
pub use movie::{EncodedFrame, Metadata, Movie, parse_time};
pub use render::{Channels, Crop, Depth, Fit, Image, PixelLayout, RenderOptions, render};
pub use source::{ByteSource, FileSource, SourceError, SourceErrorKind};

/// FFmpeg library versions linked into this build, e.g. `("libavcodec", "59.37.100")`.
pub fn ffmpeg_versions() -> Vec<(&'static str, String)> {
    fn v(n: u32) -> String {
        format!("{}.{}.{}", n >> 16, (n >> 8) & 0xff, n & 0xff)
    }
    // SAFETY: version queries have no preconditions.
    unsafe {
        vec![
            ("libavcodec", v(ffmpeg_next::ffi::avcodec_version())),
            ("libavformat", v(ffmpeg_next::ffi::avformat_version())),
            ("libavutil", v(ffmpeg_next::ffi::avutil_version())),
            ("libswscale", v(ffmpeg_next::ffi::swscale_version())),
        ]
    }
}
