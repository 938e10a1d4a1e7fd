//! JPEG straight from a decoded picture's YUV planes, skipping the RGB round trip.
//!
//! A JPEG stores full-range BT.601 YCbCr. The general path converts the decoder's YUV to RGB
//! (swscale) and libjpeg-turbo converts it back; for a picture whose matrix already is BT.601
//! (or unspecified, which swscale and the ffmpeg CLI read as BT.601) the two matrices cancel and
//! only the range and the bit depth change. This does that in one pass per plane, averages the
//! chroma down to 4:2:0 (what the general path's JPEGs use), and hands the planes to
//! libjpeg-turbo's planar compressor. Pictures it cannot take (other matrices, packed or
//! exotic layouts, alpha) return `None` and take the general path.

use std::ffi::{CStr, c_int, c_uchar, c_ulong};
use std::ops::Range;
use std::ptr;

use bytes::Bytes;
use ffmpeg_next::ffi;
use turbojpeg::raw;

use crate::decoder::DecodedFrame;
use crate::encode::check_jpeg_quality;
use crate::error::{Error, Result};

/// Fixed-point precision of the range mapping.
const SHIFT: u32 = 16;

/// `out = clamp(((v - offset) * scale + round) >> SHIFT + bias)`: a range and depth change.
#[derive(Debug, Clone, Copy)]
struct RangeMap {
    offset: i32,
    scale: i32,
    /// Luma is truncated, chroma rounded: measured against swscale's RGB (the ffmpeg CLI's
    /// colours), this leaves the decoded JPEG's mean within a quarter level of the general path.
    round: i32,
    bias: i32,
}

impl RangeMap {
    /// Luma or chroma samples of `depth` bits, limited (`full == false`) or full range, to
    /// full-range 8-bit.
    fn new(depth: u32, full: bool, chroma: bool) -> Self {
        let unit = 1i64 << (depth - 8);
        let (offset, span) = match (full, chroma) {
            (false, false) => (16 * unit, 219 * unit),
            (false, true) => (128 * unit, 224 * unit),
            (true, false) => (0, (1i64 << depth) - 1),
            (true, true) => (128 * unit, 255 * unit),
        };
        // Rounded up, so that the top of the range reaches 255 when truncated.
        let scale = ((255i64 << SHIFT) + span - 1) / span;
        Self {
            offset: offset as i32,
            scale: scale as i32,
            round: if chroma { 1 << (SHIFT - 1) } else { 0 },
            bias: if chroma { 128 } else { 0 },
        }
    }

    #[inline(always)]
    fn apply(self, value: i32) -> u8 {
        let mapped = (((value - self.offset) * self.scale + self.round) >> SHIFT) + self.bias;
        mapped.clamp(0, 255) as u8
    }
}

/// A plane of samples as FFmpeg laid it out.
#[derive(Clone, Copy)]
struct Plane<'a, S> {
    data: &'a [S],
    /// Samples (not bytes) from one row to the next.
    stride: usize,
    width: usize,
    height: usize,
}

impl<'a, S: Copy> Plane<'a, S> {
    fn row(&self, y: usize) -> &'a [S] {
        let start = y * self.stride;
        &self.data[start..start + self.width]
    }
}

/// The picture's planar YUV layout, when this module can take it.
struct Layout {
    depth: u32,
    /// log2 of the chroma subsampling, horizontally and vertically (0 or 1).
    chroma_shift: (u32, u32),
    full_range: bool,
}

/// The JPEG (quality 1..=100) of `frame` at its own size, or `None` when the picture's matrix
/// or pixel layout needs the general RGB path. With `threads` ≥ 2, the top and bottom halves
/// are converted and compressed at once and joined at a restart marker.
pub fn encode(frame: &DecodedFrame, quality: u8, threads: usize) -> Result<Option<Bytes>> {
    let picture = Picture(frame.frame_ptr());
    // SAFETY: the decoded frame is alive for this call and owns its planes.
    let Some(layout) = (unsafe { layout_of(picture.0) }) else {
        return Ok(None);
    };
    // SAFETY: as above.
    let (width, height) = unsafe { ((*picture.0).width as usize, (*picture.0).height as usize) };
    if width == 0 || height == 0 {
        return Ok(None);
    }
    let strip = |rows: Range<usize>| -> Result<Option<Vec<u8>>> {
        let planes = if layout.depth == 8 {
            // SAFETY: 8-bit planes of the picture's size (checked in `plane`).
            unsafe { convert::<u8>(&picture, &layout, (width, height), rows.clone()) }
        } else {
            // SAFETY: 16-bit little-endian samples (checked in `layout_of`).
            unsafe { convert::<u16>(&picture, &layout, (width, height), rows.clone()) }
        };
        match planes {
            Some(planes) => compress(&planes, (width, rows.len()), quality).map(Some),
            None => Ok(None),
        }
    };
    let Some(split) = split_rows(width, height).filter(|_| threads >= 2) else {
        return Ok(strip(0..height)?.map(Bytes::from));
    };
    let (top, bottom) = std::thread::scope(|scope| {
        let bottom = scope.spawn(|| strip(split.top_rows..height));
        (strip(0..split.top_rows), bottom.join())
    });
    let bottom = bottom.map_err(|_| Error::Encode("the JPEG strip thread panicked".into()))?;
    match (top?, bottom?) {
        (Some(top), Some(bottom)) => stitch(&top, &bottom, height, split.restart_interval)
            .map(|jpeg| Some(Bytes::from(jpeg))),
        _ => Ok(None),
    }
}

/// A decoded picture shared, read-only, by the two strip threads.
struct Picture(*const ffi::AVFrame);

// SAFETY: the strips only read the frame's planes and fields while `encode` holds the frame.
unsafe impl Sync for Picture {}

/// Where a picture is cut in two for the strip threads.
struct Split {
    /// Rows of the top strip: whole 16-row MCU rows of a 4:2:0 JPEG.
    top_rows: usize,
    /// MCUs of the top strip: the JPEG's restart interval, so the bottom begins at a restart.
    restart_interval: u16,
}

/// Pictures smaller than this are compressed in one piece (the thread would cost more).
const MIN_SPLIT_PIXELS: usize = 256 * 256;

fn split_rows(width: usize, height: usize) -> Option<Split> {
    const MCU: usize = 16;
    let top_rows = height.div_ceil(2).div_ceil(MCU) * MCU;
    if width * height < MIN_SPLIT_PIXELS || top_rows >= height {
        return None;
    }
    let restart_interval = width.div_ceil(MCU).checked_mul(top_rows / MCU)?;
    Some(Split {
        top_rows,
        restart_interval: u16::try_from(restart_interval).ok()?,
    })
}

/// One JPEG of `height` rows from two made by the same compressor and settings: the top's
/// headers (its frame height patched, a restart interval of its MCU count added), its scan, a
/// restart marker, the bottom's scan. Restarts reset the DC predictors and align to a byte,
/// which is how each half was coded, so the pixels decode exactly as a one-piece encode's.
fn stitch(top: &[u8], bottom: &[u8], height: usize, restart_interval: u16) -> Result<Vec<u8>> {
    let broken = || Error::Encode("libjpeg-turbo wrote an unexpected JPEG layout".into());
    let top_layout = markers(top).ok_or_else(broken)?;
    let bottom_layout = markers(bottom).ok_or_else(broken)?;
    let height = u16::try_from(height).map_err(|_| broken())?;
    let mut out = Vec::with_capacity(top.len() + bottom.len() + 8);
    out.extend_from_slice(&top[..top_layout.scan_header]);
    let frame_height = top_layout.frame_header + 5;
    out[frame_height..frame_height + 2].copy_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&[0xFF, 0xDD, 0x00, 0x04]);
    out.extend_from_slice(&restart_interval.to_be_bytes());
    out.extend_from_slice(&top[top_layout.scan_header..top.len() - 2]);
    out.extend_from_slice(&[0xFF, 0xD0]);
    out.extend_from_slice(&bottom[bottom_layout.scan_data..bottom.len() - 2]);
    out.extend_from_slice(&[0xFF, 0xD9]);
    Ok(out)
}

/// Offsets in a baseline JPEG as libjpeg-turbo writes it (one scan, no restarts, EOI last).
struct Markers {
    /// The SOF0 segment's marker.
    frame_header: usize,
    /// The SOS segment's marker.
    scan_header: usize,
    /// The entropy-coded data after the SOS segment.
    scan_data: usize,
}

fn markers(jpeg: &[u8]) -> Option<Markers> {
    if !jpeg.starts_with(&[0xFF, 0xD8]) || !jpeg.ends_with(&[0xFF, 0xD9]) {
        return None;
    }
    let mut at = 2;
    let mut frame_header = None;
    loop {
        let (&[0xFF, kind], length) = (
            jpeg.get(at..at + 2)?.first_chunk::<2>()?,
            jpeg.get(at + 2..at + 4)?,
        ) else {
            return None;
        };
        let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
        match kind {
            0xC0 => frame_header = Some(at),
            // Anything but baseline, or a restart interval already set, is not what we join.
            0xC1..=0xCF | 0xDD if kind != 0xC4 && kind != 0xC8 && kind != 0xCC => return None,
            0xDA => {
                return Some(Markers {
                    frame_header: frame_header?,
                    scan_header: at,
                    scan_data: at + 2 + length,
                });
            }
            _ => {}
        }
        at += 2 + length;
    }
}

/// 8-bit full-range planes for a 4:2:0 JPEG: Y at the strip's size rounded up to even (the
/// last column and row repeated: libjpeg-turbo reads 4:2:0 luma planes in pairs of samples and
/// rows, `tjPlaneWidth`/`tjPlaneHeight`), Cb and Cr halved.
struct JpegPlanes {
    y: Vec<u8>,
    y_stride: usize,
    cb: Vec<u8>,
    cr: Vec<u8>,
    chroma_width: usize,
}

/// Whether `frame` is planar YUV (3 planes, 8 to 16 bits, little-endian, chroma subsampled by
/// at most 2 each way) with a BT.601 matrix as swscale reads it.
unsafe fn layout_of(frame: *const ffi::AVFrame) -> Option<Layout> {
    use ffi::AVColorSpace as Space;
    use ffi::AVPixelFormat as Format;
    let f = unsafe { &*frame };
    // The matrices `sws_getCoefficients` maps to BT.601; anything else converts through RGB.
    let bt601 = [
        Space::AVCOL_SPC_UNSPECIFIED,
        Space::AVCOL_SPC_RESERVED,
        Space::AVCOL_SPC_BT470BG,
        Space::AVCOL_SPC_SMPTE170M,
    ];
    if !bt601.contains(&f.colorspace) || f.format < 0 {
        return None;
    }
    // SAFETY: the format value came from FFmpeg for this ABI.
    let format: Format = unsafe { std::mem::transmute::<i32, Format>(f.format) };
    let desc = unsafe { ffi::av_pix_fmt_desc_get(format) };
    if desc.is_null() {
        return None;
    }
    let desc = unsafe { &*desc };
    let refused = flag(
        ffi::AV_PIX_FMT_FLAG_BE
            | ffi::AV_PIX_FMT_FLAG_PAL
            | ffi::AV_PIX_FMT_FLAG_BITSTREAM
            | ffi::AV_PIX_FMT_FLAG_HWACCEL
            | ffi::AV_PIX_FMT_FLAG_RGB
            | ffi::AV_PIX_FMT_FLAG_ALPHA
            | ffi::AV_PIX_FMT_FLAG_FLOAT,
    );
    let planar = flag(ffi::AV_PIX_FMT_FLAG_PLANAR);
    if desc.flags & refused != 0 || desc.flags & planar == 0 || desc.nb_components != 3 {
        return None;
    }
    let depth = desc.comp[0].depth as u32;
    let bytes = if depth == 8 { 1 } else { 2 };
    let plain = desc.comp.iter().take(3).enumerate().all(|(i, c)| {
        c.plane == i as i32
            && c.shift == 0
            && c.offset == 0
            && c.step == bytes
            && c.depth as u32 == depth
    });
    if !plain || !(8..=16).contains(&depth) || desc.log2_chroma_w > 1 || desc.log2_chroma_h > 1 {
        return None;
    }
    let yuvj = [
        Format::AV_PIX_FMT_YUVJ420P,
        Format::AV_PIX_FMT_YUVJ422P,
        Format::AV_PIX_FMT_YUVJ444P,
        Format::AV_PIX_FMT_YUVJ440P,
    ];
    Some(Layout {
        depth,
        chroma_shift: (u32::from(desc.log2_chroma_w), u32::from(desc.log2_chroma_h)),
        full_range: f.color_range == ffi::AVColorRange::AVCOL_RANGE_JPEG || yuvj.contains(&format),
    })
}

/// A pixel format flag (bindgen's `i32`) as the descriptor's `u64` field holds it.
fn flag(bits: i32) -> u64 {
    u64::from(bits.unsigned_abs())
}

/// A decoded plane viewed as samples of type `S`; `None` if its memory is not laid out so.
unsafe fn plane<'a, S>(
    frame: *const ffi::AVFrame,
    index: usize,
    (width, height): (usize, usize),
) -> Option<Plane<'a, S>> {
    let f = unsafe { &*frame };
    let data = f.data[index];
    let linesize = usize::try_from(f.linesize[index]).ok()?;
    let size = std::mem::size_of::<S>();
    if data.is_null()
        || !(data as usize).is_multiple_of(std::mem::align_of::<S>())
        || !linesize.is_multiple_of(size)
    {
        return None;
    }
    let stride = linesize / size;
    if stride < width {
        return None;
    }
    let len = stride * (height - 1) + width;
    // SAFETY: FFmpeg allocated `height` rows of `linesize` bytes for this plane.
    let data = unsafe { std::slice::from_raw_parts(data as *const S, len) };
    Some(Plane {
        data,
        stride,
        width,
        height,
    })
}

/// Samples the mapping reads: 8-bit, or 9- to 16-bit in two bytes.
trait Sample: Copy {
    fn value(self) -> i32;
}

impl Sample for u8 {
    #[inline(always)]
    fn value(self) -> i32 {
        i32::from(self)
    }
}

impl Sample for u16 {
    #[inline(always)]
    fn value(self) -> i32 {
        i32::from(self)
    }
}

/// The 4:2:0 planes of rows `rows` of the picture (`rows.start` even).
unsafe fn convert<S: Sample>(
    picture: &Picture,
    layout: &Layout,
    (width, height): (usize, usize),
    rows: Range<usize>,
) -> Option<JpegPlanes> {
    let chroma_size = (
        (width + (1 << layout.chroma_shift.0) - 1) >> layout.chroma_shift.0,
        (height + (1 << layout.chroma_shift.1) - 1) >> layout.chroma_shift.1,
    );
    let luma: Plane<'_, S> = unsafe { plane(picture.0, 0, (width, height))? };
    let cb: Plane<'_, S> = unsafe { plane(picture.0, 1, chroma_size)? };
    let cr: Plane<'_, S> = unsafe { plane(picture.0, 2, chroma_size)? };
    let luma_map = RangeMap::new(layout.depth, layout.full_range, false);
    let chroma_map = RangeMap::new(layout.depth, layout.full_range, true);

    let y_stride = width.next_multiple_of(2);
    let mut y = Vec::with_capacity(y_stride * rows.len().next_multiple_of(2));
    for row in rows.clone() {
        y.extend(luma.row(row).iter().map(|s| luma_map.apply(s.value())));
        pad_luma(&mut y, width, y_stride, rows.len());
    }
    pad_luma(&mut y, width, y_stride, rows.len());
    let chroma_width = width.div_ceil(2);
    let chroma_rows = rows.start / 2..rows.end.div_ceil(2);
    let halve = (layout.chroma_shift.0 == 0, layout.chroma_shift.1 == 0);
    Some(JpegPlanes {
        y,
        y_stride,
        cb: to_420(cb, chroma_width, chroma_rows.clone(), halve, chroma_map),
        cr: to_420(cr, chroma_width, chroma_rows, halve, chroma_map),
        chroma_width,
    })
}

/// Repeats the last sample of the row just written up to `stride`; once all `rows` rows are
/// written, repeats the last row when their count is odd.
fn pad_luma(y: &mut Vec<u8>, width: usize, stride: usize, rows: usize) {
    if !y.len().is_multiple_of(stride) {
        let last = y.last().copied().unwrap_or(0);
        y.resize(y.len() + stride - width, last);
    } else if y.len() == stride * rows && !rows.is_multiple_of(2) {
        let start = y.len() - stride;
        y.extend_from_within(start..);
    }
}

/// A chroma plane at 4:2:0 size: `halve` says which directions still need averaging by two
/// (the source's own subsampling already did the others).
fn to_420<S: Sample>(
    plane: Plane<'_, S>,
    width: usize,
    rows: Range<usize>,
    halve: (bool, bool),
    map: RangeMap,
) -> Vec<u8> {
    let mut out = vec![0u8; width * rows.len()];
    for (line, row) in out.chunks_exact_mut(width).zip(rows) {
        let (top, bottom) = if halve.1 {
            let top = (2 * row).min(plane.height - 1);
            (plane.row(top), plane.row((top + 1).min(plane.height - 1)))
        } else {
            let only = plane.row(row.min(plane.height - 1));
            (only, only)
        };
        if halve.0 {
            for (x, o) in line.iter_mut().enumerate() {
                let left = (2 * x).min(plane.width - 1);
                let right = (left + 1).min(plane.width - 1);
                let sum = top[left].value()
                    + top[right].value()
                    + bottom[left].value()
                    + bottom[right].value();
                *o = map.apply((sum + 2) >> 2);
            }
        } else {
            for ((o, a), b) in line.iter_mut().zip(top).zip(bottom) {
                *o = map.apply((a.value() + b.value() + 1) >> 1);
            }
        }
    }
    out
}

/// libjpeg-turbo's planar compressor over the three planes, 4:2:0, with the same defaults as
/// the general path (`turbojpeg::compress`: no flags).
fn compress(planes: &JpegPlanes, (width, height): (usize, usize), quality: u8) -> Result<Vec<u8>> {
    check_jpeg_quality(quality)?;
    let too_big = || Error::Encode(format!("{width}x{height} is too large for a JPEG"));
    let (w, h) = (
        c_int::try_from(width).map_err(|_| too_big())?,
        c_int::try_from(height).map_err(|_| too_big())?,
    );
    let chroma_stride = c_int::try_from(planes.chroma_width).map_err(|_| too_big())?;
    let mut sources: [*const c_uchar; 3] =
        [planes.y.as_ptr(), planes.cb.as_ptr(), planes.cr.as_ptr()];
    let y_stride = c_int::try_from(planes.y_stride).map_err(|_| too_big())?;
    let strides: [c_int; 3] = [y_stride, chroma_stride, chroma_stride];
    // SAFETY: a handle we destroy below; the planes hold the sizes libjpeg-turbo derives from
    // width, height and 4:2:0 with these strides; the output buffer is libjpeg-turbo's own,
    // copied and freed before returning.
    unsafe {
        let handle = raw::tjInitCompress();
        if handle.is_null() {
            return Err(Error::Encode(
                "libjpeg-turbo: cannot start a compressor".into(),
            ));
        }
        let mut out: *mut c_uchar = ptr::null_mut();
        let mut out_len: c_ulong = 0;
        let ret = raw::tjCompressFromYUVPlanes(
            handle,
            sources.as_mut_ptr(),
            w,
            strides.as_ptr(),
            h,
            raw::TJSAMP_TJSAMP_420 as c_int,
            &mut out,
            &mut out_len,
            c_int::from(quality),
            0,
        );
        let result = if ret == 0 && !out.is_null() {
            let len = usize::try_from(out_len).unwrap_or(0);
            Ok(std::slice::from_raw_parts(out, len).to_vec())
        } else {
            let message = raw::tjGetErrorStr2(handle);
            Err(Error::Encode(if message.is_null() {
                "libjpeg-turbo failed".into()
            } else {
                format!(
                    "libjpeg-turbo: {}",
                    CStr::from_ptr(message).to_string_lossy()
                )
            }))
        };
        if !out.is_null() {
            raw::tjFree(out);
        }
        raw::tjDestroy(handle);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limited_range_maps_onto_full_range() {
        let luma = RangeMap::new(8, false, false);
        assert_eq!(
            (
                luma.apply(16),
                luma.apply(235),
                luma.apply(0),
                luma.apply(255)
            ),
            (0, 255, 0, 255)
        );
        let chroma = RangeMap::new(8, false, true);
        assert_eq!(
            (chroma.apply(16), chroma.apply(128), chroma.apply(240)),
            (0, 128, 255)
        );
        let luma10 = RangeMap::new(10, false, false);
        assert_eq!(
            (luma10.apply(64), luma10.apply(940), luma10.apply(503)),
            (0, 255, 127)
        );
        let chroma10 = RangeMap::new(10, false, true);
        assert_eq!(
            (chroma10.apply(64), chroma10.apply(512), chroma10.apply(960)),
            (0, 128, 255)
        );
    }

    #[test]
    fn full_range_keeps_eight_bits_and_scales_more() {
        let luma = RangeMap::new(8, true, false);
        assert!((0..=255).all(|v| luma.apply(v) == v as u8));
        let chroma = RangeMap::new(8, true, true);
        assert!((0..=255).all(|v| chroma.apply(v) == v as u8));
        assert_eq!(RangeMap::new(10, true, false).apply(1023), 255);
        assert_eq!(RangeMap::new(16, true, false).apply(65535), 255);
    }

    #[test]
    fn chroma_is_averaged_to_half_size_with_odd_edges() {
        // 3x3 samples (4:4:4, odd size) to 2x2.
        let data = [10u8, 20, 30, 40, 50, 60, 70, 80, 90];
        let plane = Plane {
            data: &data,
            stride: 3,
            width: 3,
            height: 3,
        };
        let out = to_420(plane, 2, 0..2, (true, true), RangeMap::new(8, true, true));
        assert_eq!(out, vec![30, 45, 75, 90]);
        // 4:2:2: only rows are averaged.
        let out = to_420(plane, 3, 0..2, (false, true), RangeMap::new(8, true, true));
        assert_eq!(out, vec![25, 35, 45, 70, 80, 90]);
        // A strip's rows.
        let out = to_420(plane, 3, 1..2, (false, true), RangeMap::new(8, true, true));
        assert_eq!(out, vec![70, 80, 90]);
    }

    /// Planes of a noisy gradient, `rows` of a `width`-wide picture.
    fn planes(width: usize, rows: Range<usize>) -> JpegPlanes {
        let sample = |x: usize, y: usize| ((x * 7 + y * 13 + (x * y) % 31) % 256) as u8;
        let chroma_width = width.div_ceil(2);
        let y_stride = width.next_multiple_of(2);
        let mut y = Vec::new();
        for r in rows.clone() {
            y.extend((0..width).map(|x| sample(x, r)));
            pad_luma(&mut y, width, y_stride, rows.len());
        }
        pad_luma(&mut y, width, y_stride, rows.len());
        let chroma_rows = rows.start / 2..rows.end.div_ceil(2);
        let chroma = |dx: usize, dy: usize| -> Vec<u8> {
            chroma_rows
                .clone()
                .flat_map(|r| (0..chroma_width).map(move |x| sample(x + dx, r + dy)))
                .collect()
        };
        JpegPlanes {
            y,
            y_stride,
            cb: chroma(3, 0),
            cr: chroma(0, 5),
            chroma_width,
        }
    }

    #[test]
    fn two_strips_joined_at_a_restart_decode_as_one_piece() -> Result<()> {
        for (width, height) in [
            (640, 480),
            (333, 301),
            (333, 302),
            (334, 301),
            (1920, 1080),
            (1280, 720),
            (1921, 1081),
        ] {
            let Some(split) = split_rows(width, height) else {
                panic!("{width}x{height} is split");
            };
            let whole = compress(&planes(width, 0..height), (width, height), 75)?;
            let top = compress(
                &planes(width, 0..split.top_rows),
                (width, split.top_rows),
                75,
            )?;
            let bottom_rows = split.top_rows..height;
            let bottom = compress(
                &planes(width, bottom_rows.clone()),
                (width, bottom_rows.len()),
                75,
            )?;
            let joined = stitch(&top, &bottom, height, split.restart_interval)?;
            let decode = |jpeg: &[u8]| {
                turbojpeg::decompress(jpeg, turbojpeg::PixelFormat::RGB)
                    .map_err(|e| Error::Encode(e.to_string()))
            };
            let (a, b) = (decode(&whole)?, decode(&joined)?);
            assert!(
                a.pixels == b.pixels,
                "{width}x{height}: the joined JPEG decodes differently"
            );
        }
        assert!(split_rows(100, 100).is_none(), "small pictures stay whole");
        Ok(())
    }
}
