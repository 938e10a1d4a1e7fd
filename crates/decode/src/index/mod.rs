//! A movie's index: its video stream's codec parameters and every sample's place and time.
//! Built once by demuxing (cheaply: see `build`), then serialisable so other instances skip it.
//!
//! `model` is the persisted form and its checks; `build` makes one with FFmpeg.

mod build;
mod model;

pub use build::build;
pub(crate) use build::fill_codec_parameters;
pub use model::{CodecParams, INDEX_FORMAT_VERSION, MovieIndex, Sample};
