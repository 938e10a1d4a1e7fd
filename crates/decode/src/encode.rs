//! Image encoders for every output format of SPEC §3.

use std::io::Cursor;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::render::{Image, PixelLayout};

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
    /// NumPy array (height, width, 3) of uint8.
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

    /// The pixel layout the encoder wants from the renderer.
    pub fn layout(self) -> PixelLayout {
        match self {
            Self::Rgba => PixelLayout::Rgba32,
            _ => PixelLayout::Rgb24,
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

/// Encodes `image` (in `format.layout()`) as `format`; `quality` applies to JPEG (1..=100).
pub fn encode(image: &Image, format: Format, quality: Option<u8>) -> Result<Bytes> {
    if image.layout != format.layout() {
        return Err(Error::Encode(format!(
            "{format:?} needs {:?} pixels",
            format.layout()
        )));
    }
    match format {
        Format::Png => encode_png(image),
        Format::Jpeg => encode_jpeg(image, quality.unwrap_or(DEFAULT_JPEG_QUALITY)),
        Format::Bmp => encode_with_image(image, |out, img| {
            image::codecs::bmp::BmpEncoder::new(out).encode(
                &img.data,
                img.width,
                img.height,
                image::ExtendedColorType::Rgb8,
            )
        }),
        Format::Webp => encode_with_image(image, |out, img| {
            image::codecs::webp::WebPEncoder::new_lossless(out).encode(
                &img.data,
                img.width,
                img.height,
                image::ExtendedColorType::Rgb8,
            )
        }),
        Format::Rgba => Ok(Bytes::copy_from_slice(&image.data)),
        Format::Npy => Ok(encode_npy(image)),
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
    let mut out = Vec::with_capacity(image.data.len() / 2);
    let mut encoder = png::Encoder::new(&mut out, image.width, image.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // Fast deflate with the Up filter: a 1080p frame in a few milliseconds, at a size close to
    // zlib's default for camera footage.
    encoder.set_compression(png::Compression::Fast);
    encoder.set_filter(png::Filter::Up);
    let mut writer = encoder
        .write_header()
        .map_err(|e| Error::Encode(e.to_string()))?;
    writer
        .write_image_data(&image.data)
        .map_err(|e| Error::Encode(e.to_string()))?;
    writer.finish().map_err(|e| Error::Encode(e.to_string()))?;
    Ok(Bytes::from(out))
}

fn encode_jpeg(image: &Image, quality: u8) -> Result<Bytes> {
    if !(1..=100).contains(&quality) {
        return Err(Error::InvalidRequest(format!(
            "quality must be 1 to 100, not {quality}"
        )));
    }
    let pixels = turbojpeg::Image {
        pixels: image.data.as_slice(),
        width: image.width as usize,
        pitch: image.width as usize * 3,
        height: image.height as usize,
        format: turbojpeg::PixelFormat::RGB,
    };
    let jpeg = turbojpeg::compress(pixels, i32::from(quality), turbojpeg::Subsamp::Sub2x2)
        .map_err(|e| Error::Encode(e.to_string()))?;
    Ok(Bytes::copy_from_slice(&jpeg))
}

/// NumPy .npy version 1.0: magic, header dict padded to 64 bytes, then the uint8 pixels.
fn encode_npy(image: &Image) -> Bytes {
    let dict = format!(
        "{{'descr': '|u1', 'fortran_order': False, 'shape': ({}, {}, 3), }}",
        image.height, image.width
    );
    let unpadded = 10 + dict.len() + 1;
    let padding = (64 - unpadded % 64) % 64;
    let header_len = dict.len() + padding + 1;
    let mut out = Vec::with_capacity(10 + header_len + image.data.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header_len as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', padding));
    out.push(b'\n');
    out.extend_from_slice(&image.data);
    Bytes::from(out)
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
