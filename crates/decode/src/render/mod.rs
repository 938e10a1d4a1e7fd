//! From a decoded picture to RGB, 16-bit RGB or gray pixels: colour conversion honouring range and matrix, crop,
//! and resize (Lanczos3) with stretch / contain / cover fits — all in swscale.
//!
//! `geometry` is the pure arithmetic (options, bounds, the plan); `swscale` is the FFI that
//! carries a plan out.

mod geometry;
mod swscale;

pub use geometry::{
    Channels, Crop, Depth, Fit, MAX_OUTPUT_PIXELS, MAX_OUTPUT_SIDE, RenderOptions,
    check_output_size, keeps_picture, output_size,
};
pub use swscale::{Image, PixelLayout, render};
