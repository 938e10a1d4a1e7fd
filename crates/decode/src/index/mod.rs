//! A movie's index: its video stream's codec parameters and every sample's place and time, or a
//! sparse timeline where the container has no cheap sample table. Built once (cheaply: see
//! `build` and `lazy`), then serialisable so other instances skip it.
//!
//! `model` is the persisted form and its checks; `build` makes one with FFmpeg; `lazy` reads
//! large Matroska/WebM, AVI, MXF and MPEG-TS files' own index structures instead of their
//! packets.

mod build;
mod lazy;
mod model;

pub use build::build;
pub(crate) use build::fill_codec_parameters;
pub use model::{CodecParams, INDEX_FORMAT_VERSION, Keyframe, MovieIndex, Sample, Timeline};
