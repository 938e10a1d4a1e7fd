//! The swscale FFI of a render: colour conversion honouring range and matrix, crop, and resize
//! (Lanczos3) of a decoded picture into packed RGB(A), 16-bit RGB or gray pixels, following a
//! geometry `Plan`.

use std::ffi::{CString, c_void};
use std::ptr;

use ffmpeg_next::ffi;

use super::geometry::{Crop, RenderOptions, plan};
use crate::decoder::DecodedFrame;
use crate::error::{Error, Result, av_error_string};

/// Packed pixels, row-major, no padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub layout: PixelLayout,
    pub data: Vec<u8>,
}

/// Packed pixel layouts; 16-bit samples are little-endian (FFmpeg's `rgb48le`, `gray16le`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelLayout {
    Rgb24,
    Rgba32,
    Rgb48,
    Gray8,
    Gray16,
}

impl PixelLayout {
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            Self::Gray8 => 1,
            Self::Gray16 => 2,
            Self::Rgb24 => 3,
            Self::Rgba32 => 4,
            Self::Rgb48 => 6,
        }
    }

    /// Samples per pixel: 1 (gray), 3 or 4.
    pub fn channels(self) -> usize {
        match self {
            Self::Gray8 | Self::Gray16 => 1,
            Self::Rgb24 | Self::Rgb48 => 3,
            Self::Rgba32 => 4,
        }
    }

    /// Whether each sample takes two bytes.
    pub fn is_16_bit(self) -> bool {
        matches!(self, Self::Rgb48 | Self::Gray16)
    }

    fn av_format(self) -> ffi::AVPixelFormat {
        match self {
            Self::Rgb24 => ffi::AVPixelFormat::AV_PIX_FMT_RGB24,
            Self::Rgba32 => ffi::AVPixelFormat::AV_PIX_FMT_RGBA,
            Self::Rgb48 => ffi::AVPixelFormat::AV_PIX_FMT_RGB48LE,
            Self::Gray8 => ffi::AVPixelFormat::AV_PIX_FMT_GRAY8,
            Self::Gray16 => ffi::AVPixelFormat::AV_PIX_FMT_GRAY16LE,
        }
    }

    /// The layout a crop is cut from: this one, except RGBA (cut from RGB, alpha added after).
    fn uncropped(self) -> Self {
        match self {
            Self::Rgba32 => Self::Rgb24,
            other => other,
        }
    }
}

/// Renders a decoded frame as packed RGB(A) pixels per `options`.
pub fn render(
    frame: &DecodedFrame,
    options: &RenderOptions,
    layout: PixelLayout,
    threads: usize,
) -> Result<Image> {
    let source = (frame.width(), frame.height());
    let plan = plan(source, options)?;
    let full = Crop {
        x: 0,
        y: 0,
        width: source.0,
        height: source.1,
    };
    let (cw, ch) = plan.canvas;
    let bpp = layout.bytes_per_pixel();
    let mut data = vec![0u8; cw as usize * ch as usize * bpp];
    if layout == PixelLayout::Rgba32 {
        data.chunks_exact_mut(4).for_each(|px| px[3] = 255);
    }
    let dst = Target {
        data: &mut data,
        stride: cw as usize * bpp,
        offset: plan.offset,
        size: plan.scaled,
        layout,
    };
    if plan.src == full {
        scale_frame(frame.frame_ptr(), dst, threads)?;
    } else {
        // Crop in packed pixels: exact for any x/y, whatever the chroma subsampling.
        let whole = render(
            frame,
            &RenderOptions::default(),
            layout.uncropped(),
            threads,
        )?;
        let src = PackedView {
            image: &whole,
            rect: plan.src,
        };
        scale_packed(src, dst, threads)?;
    }
    Ok(Image {
        width: cw,
        height: ch,
        layout,
        data,
    })
}

struct Target<'a> {
    data: &'a mut [u8],
    stride: usize,
    offset: (u32, u32),
    size: (u32, u32),
    layout: PixelLayout,
}

struct PackedView<'a> {
    image: &'a Image,
    rect: Crop,
}

fn scale_flags(same_size: bool) -> i64 {
    let base = if same_size {
        ffi::SWS_BICUBIC
    } else {
        ffi::SWS_LANCZOS
    };
    i64::from(base)
}

/// An swscale context configured by options (the only API that offers threads), freed on drop.
struct Scaler(*mut ffi::SwsContext);

/// Everything a [`Scaler`] is configured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ScalerKey {
    src: (u32, u32, ffi::AVPixelFormat),
    dst: (u32, u32, ffi::AVPixelFormat),
    flags: i64,
    threads: usize,
    colour: Option<(i32, bool)>,
}

/// Contexts kept per thread, most recent first: making one (filters, slice threads) costs more
/// than the conversion of a 1080p frame, and a decode thread mostly converts one movie's size.
const KEPT_SCALERS: usize = 4;

thread_local! {
    static SCALERS: std::cell::RefCell<Vec<(ScalerKey, Scaler)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `convert` with a context for `key`, kept from an earlier call on this thread or made.
fn with_scaler<R>(key: ScalerKey, convert: impl FnOnce(&Scaler) -> R) -> Result<R> {
    SCALERS.with(|kept| {
        let taken = kept.try_borrow_mut().ok().and_then(|mut kept| {
            let at = kept.iter().position(|(k, _)| *k == key)?;
            Some(kept.remove(at).1)
        });
        let scaler = match taken {
            Some(scaler) => scaler,
            None => Scaler::new(key.src, key.dst, key.flags, key.threads, key.colour)?,
        };
        let result = convert(&scaler);
        if let Ok(mut kept) = kept.try_borrow_mut() {
            kept.insert(0, (key, scaler));
            kept.truncate(KEPT_SCALERS);
        }
        Ok(result)
    })
}

impl Scaler {
    #[allow(clippy::too_many_arguments)]
    fn new(
        src: (u32, u32, ffi::AVPixelFormat),
        dst: (u32, u32, ffi::AVPixelFormat),
        flags: i64,
        threads: usize,
        colour: Option<(i32, bool)>,
    ) -> Result<Self> {
        // SAFETY: allocation and option setting on a context we own; freed in Drop.
        unsafe {
            let ctx = ffi::sws_alloc_context();
            if ctx.is_null() {
                return Err(Error::Decode("out of memory for the scaler".into()));
            }
            let scaler = Scaler(ctx);
            let set = |name: &str, value: i64| -> Result<()> {
                let key = CString::new(name).map_err(|_| Error::Decode("option name".into()))?;
                let ret = ffi::av_opt_set_int(ctx as *mut c_void, key.as_ptr(), value, 0);
                if ret < 0 {
                    Err(Error::Decode(format!(
                        "swscale option {name}: {}",
                        av_error_string(ret)
                    )))
                } else {
                    Ok(())
                }
            };
            set("srcw", i64::from(src.0))?;
            set("srch", i64::from(src.1))?;
            set("src_format", src.2 as i64)?;
            set("dstw", i64::from(dst.0))?;
            set("dsth", i64::from(dst.1))?;
            set("dst_format", dst.2 as i64)?;
            set("sws_flags", flags)?;
            set("threads", threads.clamp(1, 16) as i64)?;
            let ret = ffi::sws_init_context(ctx, ptr::null_mut(), ptr::null_mut());
            if ret < 0 {
                return Err(Error::Decode(format!(
                    "cannot convert this picture: {}",
                    av_error_string(ret)
                )));
            }
            if let Some((colorspace, full_range_in)) = colour {
                let mut inv_table: *mut i32 = ptr::null_mut();
                let mut table: *mut i32 = ptr::null_mut();
                let (mut src_range, mut dst_range, mut brightness, mut contrast, mut saturation) =
                    (0, 0, 0, 0, 0);
                let ret = ffi::sws_getColorspaceDetails(
                    ctx,
                    &mut inv_table,
                    &mut src_range,
                    &mut table,
                    &mut dst_range,
                    &mut brightness,
                    &mut contrast,
                    &mut saturation,
                );
                // A negative answer means RGB input or output without YUV details to set. The
                // output range stays swscale's own choice for the output format, as the ffmpeg
                // CLI's scale filter leaves it (full for RGB and gray).
                if ret >= 0 {
                    ffi::sws_setColorspaceDetails(
                        ctx,
                        ffi::sws_getCoefficients(colorspace),
                        i32::from(full_range_in || src_range != 0),
                        table,
                        dst_range,
                        brightness,
                        contrast,
                        saturation,
                    );
                }
            }
            Ok(scaler)
        }
    }
}

impl Drop for Scaler {
    fn drop(&mut self) {
        // SAFETY: the context was allocated by sws_alloc_context and is freed once.
        unsafe { ffi::sws_freeContext(self.0) };
    }
}

/// An AVFrame header over memory we own, for swscale's frame API (no copy, no ownership).
struct BorrowedFrame(*mut ffi::AVFrame);

impl BorrowedFrame {
    fn over(
        data: *mut u8,
        len: usize,
        stride: usize,
        size: (u32, u32),
        format: ffi::AVPixelFormat,
    ) -> Result<Self> {
        unsafe extern "C" fn keep(_opaque: *mut c_void, _data: *mut u8) {}
        // SAFETY: the frame points into `data`, which the caller keeps alive and unaliased for
        // the frame's lifetime; the buffer's free callback does nothing.
        unsafe {
            let frame = ffi::av_frame_alloc();
            if frame.is_null() {
                return Err(Error::Decode("out of memory for a frame".into()));
            }
            let borrowed = BorrowedFrame(frame);
            let buf = ffi::av_buffer_create(data, len, Some(keep), ptr::null_mut(), 0);
            if buf.is_null() {
                return Err(Error::Decode("out of memory for a frame buffer".into()));
            }
            (*frame).buf[0] = buf;
            (*frame).data[0] = data;
            (*frame).linesize[0] = stride as i32;
            (*frame).width = size.0 as i32;
            (*frame).height = size.1 as i32;
            (*frame).format = format as i32;
            Ok(borrowed)
        }
    }
}

impl Drop for BorrowedFrame {
    fn drop(&mut self) {
        // SAFETY: frees the header and unrefs our no-op buffer.
        unsafe { ffi::av_frame_free(&mut self.0) };
    }
}

fn target_frame(dst: &mut Target<'_>) -> Result<BorrowedFrame> {
    let bpp = dst.layout.bytes_per_pixel();
    let start = dst.offset.1 as usize * dst.stride + dst.offset.0 as usize * bpp;
    let len = dst.data.len() - start;
    let ptr = dst.data[start..].as_mut_ptr();
    BorrowedFrame::over(ptr, len, dst.stride, dst.size, dst.layout.av_format())
}

fn scale_frame(src: *const ffi::AVFrame, mut dst: Target<'_>, threads: usize) -> Result<()> {
    // SAFETY: src is a decoded frame kept alive by the caller.
    let (w, h, format, colorspace, range) = unsafe {
        let f = &*src;
        (
            f.width as u32,
            f.height as u32,
            f.format,
            f.colorspace as i32,
            f.color_range,
        )
    };
    // SAFETY: the format value came from FFmpeg for this ABI.
    let format: ffi::AVPixelFormat =
        unsafe { std::mem::transmute::<i32, ffi::AVPixelFormat>(format) };
    let same_size = (w, h) == dst.size;
    let full_range = range == ffi::AVColorRange::AVCOL_RANGE_JPEG;
    let key = ScalerKey {
        src: (w, h, format),
        dst: (dst.size.0, dst.size.1, dst.layout.av_format()),
        flags: scale_flags(same_size),
        threads,
        colour: Some((colorspace, full_range)),
    };
    let out = target_frame(&mut dst)?;
    // SAFETY: both frames describe valid memory of the configured sizes and formats.
    let ret = with_scaler(key, |scaler| unsafe {
        ffi::sws_scale_frame(scaler.0, out.0, src)
    })?;
    if ret < 0 {
        return Err(Error::Decode(format!(
            "colour conversion failed: {}",
            av_error_string(ret)
        )));
    }
    Ok(())
}

fn scale_packed(src: PackedView<'_>, mut dst: Target<'_>, threads: usize) -> Result<()> {
    let image = src.image;
    let bpp = image.layout.bytes_per_pixel();
    let stride = image.width as usize * bpp;
    let start = src.rect.y as usize * stride + src.rect.x as usize * bpp;
    let mut pixels = image.data[start..].to_vec();
    let format = image.layout.av_format();
    let input = BorrowedFrame::over(
        pixels.as_mut_ptr(),
        pixels.len(),
        stride,
        (src.rect.width, src.rect.height),
        format,
    )?;
    let same_size = (src.rect.width, src.rect.height) == dst.size;
    let key = ScalerKey {
        src: (src.rect.width, src.rect.height, format),
        dst: (dst.size.0, dst.size.1, dst.layout.av_format()),
        flags: scale_flags(same_size),
        threads,
        colour: None,
    };
    let out = target_frame(&mut dst)?;
    // SAFETY: both frames describe valid memory of the configured sizes and formats.
    let ret = with_scaler(key, |scaler| unsafe {
        ffi::sws_scale_frame(scaler.0, out.0, input.0)
    })?;
    if ret < 0 {
        return Err(Error::Decode(format!(
            "resizing failed: {}",
            av_error_string(ret)
        )));
    }
    Ok(())
}
