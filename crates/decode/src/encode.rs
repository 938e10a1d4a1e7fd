//! Image encoders for every output format of SPEC §3.

use std::io::Cursor;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::render::{Channels, Depth, Image, PixelLayout, RenderOptions};

/// An output format, named by the URL extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Png,
    Jpeg,
    Bmp,
    Webp,
    /// Packed RGBA, width × height × 4 bytes.
    Rgba,
    /// NumPy array (height, width, 3) of uint8 — uint16 at 16 bits, (height, width) for gray.
    Npy,
}

impl Format {
    /// From a URL extension (`None`: no extension, PNG).
    pub fn from_extension(ext: Option<&str>) -> Result<Self> {
        match ext.map(str::to_ascii_lowercase).as_deref() {
            None | Some("png") => Ok(Self::Png),
            Some("jpg" | "jpeg") => Ok(Self::Jpeg),
            Some("bmp") => Ok(Self::Bmp),
            Some("webp") => Ok(Self::Webp),
            Some("rgba" | "raw") => Ok(Self::Rgba),
            Some("npy") => Ok(Self::Npy),
            Some(other) => Err(Error::InvalidRequest(format!(
                "unknown image format .{other} (png, jpg, jpeg, bmp, webp, rgba, raw, npy)"
            ))),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Bmp => "image/bmp",
            Self::Webp => "image/webp",
            Self::Rgba => "image/x-raw-rgba",
            Self::Npy => "application/x-npy",
        }
    }

    /// Raw pixel dumps, which the service only serves when allowed.
    pub fn is_raw(self) -> bool {
        matches!(self, Self::Rgba | Self::Npy)
    }

    /// The pixel layout the encoder wants from the renderer: 8-bit RGB unless `options` ask
    /// for 16 bits (PNG and NumPy only) or gray (every format but raw RGBA).
    pub fn layout(self, options: &RenderOptions) -> Result<PixelLayout> {
        let ext = self.extension();
        match (self, options.depth, options.channels) {
            (Self::Rgba, Depth::Eight, Channels::Rgb) => Ok(PixelLayout::Rgba32),
            (Self::Rgba, _, Channels::Gray) => Err(Error::InvalidRequest(
                "gray output has no .rgba form: ask for .png, .npy, .jpg, .bmp or .webp".into(),
            )),
            (_, Depth::Eight, Channels::Rgb) => Ok(PixelLayout::Rgb24),
            (_, Depth::Eight, Channels::Gray) => Ok(PixelLayout::Gray8),
            (Self::Png | Self::Npy, Depth::Sixteen, Channels::Rgb) => Ok(PixelLayout::Rgb48),
            (Self::Png | Self::Npy, Depth::Sixteen, Channels::Gray) => Ok(PixelLayout::Gray16),
            (_, Depth::Sixteen, _) => Err(Error::InvalidRequest(format!(
                "16-bit samples come as .png or .npy, not .{ext}"
            ))),
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Bmp => "bmp",
            Self::Webp => "webp",
            Self::Rgba => "rgba",
            Self::Npy => "npy",
        }
    }
}

/// Default JPEG quality (SPEC §3).
pub const DEFAULT_JPEG_QUALITY: u8 = 75;

/// Encodes `image` (in a layout `format.layout(..)` gives) as `format`; `quality` applies to
/// JPEG (1..=100).
pub fn encode(image: &Image, format: Format, quality: Option<u8>) -> Result<Bytes> {
    let mismatch = || {
        Err(Error::Encode(format!(
            "{format:?} cannot take {:?} pixels",
            image.layout
        )))
    };
    let eight_bit = match image.layout {
        PixelLayout::Rgb24 => Some(image::ExtendedColorType::Rgb8),
        PixelLayout::Gray8 => Some(image::ExtendedColorType::L8),
        _ => None,
    };
    match format {
        Format::Png => encode_png(image),
        Format::Jpeg => encode_jpeg(image, quality.unwrap_or(DEFAULT_JPEG_QUALITY)),
        Format::Bmp => match eight_bit {
            Some(colour) => encode_with_image(image, |out, img| {
                image::codecs::bmp::BmpEncoder::new(out)
                    .encode(&img.data, img.width, img.height, colour)
            }),
            None => mismatch(),
        },
        Format::Webp => match eight_bit {
            Some(colour) => encode_with_image(image, |out, img| {
                image::codecs::webp::WebPEncoder::new_lossless(out)
                    .encode(&img.data, img.width, img.height, colour)
            }),
            None => mismatch(),
        },
        Format::Rgba if image.layout == PixelLayout::Rgba32 => {
            Ok(Bytes::copy_from_slice(&image.data))
        }
        Format::Npy if image.layout != PixelLayout::Rgba32 => Ok(encode_npy(image)),
        Format::Rgba | Format::Npy => mismatch(),
    }
}

fn encode_with_image(
    image: &Image,
    write: impl FnOnce(&mut Cursor<Vec<u8>>, &Image) -> image::ImageResult<()>,
) -> Result<Bytes> {
    let mut out = Cursor::new(Vec::with_capacity(image.data.len() / 2));
    write(&mut out, image).map_err(|e| Error::Encode(e.to_string()))?;
    Ok(Bytes::from(out.into_inner()))
}

fn encode_png(image: &Image) -> Result<Bytes> {
    let (colour, depth) = match image.layout {
        PixelLayout::Rgb24 => (png::ColorType::Rgb, png::BitDepth::Eight),
        PixelLayout::Rgb48 => (png::ColorType::Rgb, png::BitDepth::Sixteen),
        PixelLayout::Gray8 => (png::ColorType::Grayscale, png::BitDepth::Eight),
        PixelLayout::Gray16 => (png::ColorType::Grayscale, png::BitDepth::Sixteen),
        PixelLayout::Rgba32 => (png::ColorType::Rgba, png::BitDepth::Eight),
    };
    // PNG stores 16-bit samples big-endian; the renderer's are little-endian.
    let swapped;
    let data = if depth == png::BitDepth::Sixteen {
        swapped = image
            .data
            .chunks_exact(2)
            .flat_map(|sample| [sample[1], sample[0]])
            .collect::<Vec<u8>>();
        &swapped
    } else {
        &image.data
    };
    let mut out = Vec::with_capacity(image.data.len() / 2);
    let mut encoder = png::Encoder::new(&mut out, image.width, image.height);
    encoder.set_color(colour);
    encoder.set_depth(depth);
    // Fast deflate with the Up filter: a 1080p frame in a few milliseconds, at a size close to
    // zlib's default for camera footage.
    encoder.set_compression(png::Compression::Fast);
    encoder.set_filter(png::Filter::Up);
    let mut writer = encoder
        .write_header()
        .map_err(|e| Error::Encode(e.to_string()))?;
    writer
        .write_image_data(data)
        .map_err(|e| Error::Encode(e.to_string()))?;
    writer.finish().map_err(|e| Error::Encode(e.to_string()))?;
    Ok(Bytes::from(out))
}

/// JPEG quality is 1 to 100 (SPEC §3), whichever path encodes it.
pub(crate) fn check_jpeg_quality(quality: u8) -> Result<()> {
    if (1..=100).contains(&quality) {
        Ok(())
    } else {
        Err(Error::InvalidRequest(format!(
            "quality must be 1 to 100, not {quality}"
        )))
    }
}

fn encode_jpeg(image: &Image, quality: u8) -> Result<Bytes> {
    check_jpeg_quality(quality)?;
    let (format, subsampling) = match image.layout {
        PixelLayout::Rgb24 => (turbojpeg::PixelFormat::RGB, turbojpeg::Subsamp::Sub2x2),
        PixelLayout::Gray8 => (turbojpeg::PixelFormat::GRAY, turbojpeg::Subsamp::Gray),
        other => {
            return Err(Error::Encode(format!("JPEG cannot take {other:?} pixels")));
        }
    };
    let pixels = turbojpeg::Image {
        pixels: image.data.as_slice(),
        width: image.width as usize,
        pitch: image.width as usize * image.layout.bytes_per_pixel(),
        height: image.height as usize,
        format,
    };
    let jpeg = turbojpeg::compress(pixels, i32::from(quality), subsampling)
        .map_err(|e| Error::Encode(e.to_string()))?;
    Ok(Bytes::copy_from_slice(&jpeg))
}

/// NumPy .npy version 1.0: magic, header dict padded to 64 bytes, then the pixels.
fn encode_npy(image: &Image) -> Bytes {
    let mut out = npy_header(image.layout, &[image.height as u64, image.width as u64]);
    out.reserve_exact(image.data.len());
    out.extend_from_slice(&image.data);
    Bytes::from(out)
}

/// The .npy header of an array of `layout` pixels whose leading dimensions are `dims` (e.g.
/// height and width, or frames, height and width); the channel axis is added unless gray.
pub fn npy_header(layout: PixelLayout, dims: &[u64]) -> Vec<u8> {
    let descr = if layout.is_16_bit() { "<u2" } else { "|u1" };
    let mut shape: Vec<String> = dims.iter().map(u64::to_string).collect();
    if layout.channels() > 1 {
        shape.push(layout.channels().to_string());
    }
    // As NumPy writes it: a trailing comma only in a one-element tuple.
    let shape = match shape.as_slice() {
        [one] => format!("({one},)"),
        many => format!("({})", many.join(", ")),
    };
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let unpadded = 10 + dict.len() + 1;
    let padding = (64 - unpadded % 64) % 64;
    let header_len = dict.len() + padding + 1;
    let mut out = Vec::with_capacity(10 + header_len);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header_len as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', padding));
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(width: u32, height: u32) -> Image {
        let data = (0..width * height * 3).map(|i| (i % 251) as u8).collect();
        Image {
            width,
            height,
            layout: PixelLayout::Rgb24,
            data,
        }
    }

    #[test]
    fn npy_header_is_aligned_and_describes_the_array() {
        let bytes = encode_npy(&gradient(5, 3));
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap_or_default();
        assert!(header.contains("'shape': (3, 5, 3)"), "{header}");
        assert_eq!(bytes.len(), 10 + header_len + 5 * 3 * 3);
    }

    #[test]
    fn png_round_trips_losslessly() -> Result<()> {
        let img = gradient(37, 11);
        let png = encode(&img, Format::Png, None)?;
        let back = image::load_from_memory(&png)
            .map_err(|e| Error::Encode(e.to_string()))?
            .to_rgb8();
        assert_eq!(back.as_raw(), &img.data);
        Ok(())
    }

    #[test]
    fn extensions_map_to_formats() {
        assert_eq!(Format::from_extension(None).ok(), Some(Format::Png));
        assert_eq!(Format::from_extension(Some("JPG")).ok(), Some(Format::Jpeg));
        assert_eq!(Format::from_extension(Some("raw")).ok(), Some(Format::Rgba));
        assert!(Format::from_extension(Some("gif")).is_err());
        assert!(encode_jpeg(&gradient(8, 8), 0).is_err());
    }
}
