//! Typed requests, validated in one place for every front door: which frame (number or time) and
//! what image of it (format, size, fit, crop, quality, depth, channels), parsed from the words a
//! user typed.

use lazycache_decode::render::{MAX_OUTPUT_PIXELS, check_output_size};
use lazycache_decode::{
    Channels, Crop, DEFAULT_JPEG_QUALITY, Depth, Fit, Format, RenderOptions, parse_time,
};

use crate::error::{ServiceError, ServiceResult};

/// Which frame of a movie: by its number (from 1) or by presentation time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FrameSelector {
    Number(u64),
    /// Seconds from the first frame: the frame on screen then.
    Time(f64),
}

impl FrameSelector {
    /// A frame number as typed: a whole number from 1.
    pub fn number(text: &str) -> ServiceResult<Self> {
        let number = text.parse::<u64>().map_err(|_| {
            ServiceError::BadRequest(format!("frame must be a whole number, not {text:?}"))
        })?;
        if number == 0 {
            return Err(lazycache_decode::Error::FrameZero.into());
        }
        Ok(Self::Number(number))
    }

    /// A presentation time as typed: seconds (`12.5`) or `[HH:]MM:SS[.mmm]`.
    pub fn time(text: &str) -> ServiceResult<Self> {
        Ok(Self::Time(parse_time(text)?))
    }
}

/// The image wanted of a frame: format, size, fit, crop, quality, sample depth and channels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameOutput {
    pub format: Format,
    pub render: RenderOptions,
    /// JPEG quality (always set for JPEG, never for other formats).
    pub quality: Option<u8>,
}

/// The output options as a user typed them (a query string, command-line flags); `None` or an
/// empty text means "not given".
#[derive(Debug, Clone, Copy, Default)]
pub struct OutputParams<'a> {
    pub width: Option<&'a str>,
    pub height: Option<&'a str>,
    pub fit: Option<&'a str>,
    pub crop: Option<&'a str>,
    pub quality: Option<&'a str>,
    /// `8` or `16`.
    pub depth: Option<&'a str>,
    /// `rgb` or `gray`.
    pub channels: Option<&'a str>,
}

impl FrameOutput {
    /// Validates `params` for `format`: sizes 1…8192 and at most 40 megapixels, a known fit, a
    /// crop rectangle, JPEG quality 1 to 100 (default 75), 16-bit depth only for PNG and NumPy,
    /// gray for every format but raw RGBA.
    pub fn parse(format: Format, params: &OutputParams<'_>) -> ServiceResult<Self> {
        let width = pixels("width", params.width)?;
        let height = pixels("height", params.height)?;
        check_output_size(width, height)?;
        if let (Some(w), Some(h)) = (width, height)
            && u64::from(w) * u64::from(h) > MAX_OUTPUT_PIXELS
        {
            return Err(ServiceError::BadRequest(format!(
                "{w}x{h} is more than {MAX_OUTPUT_PIXELS} pixels"
            )));
        }
        let fit = match given(params.fit) {
            Some(fit) => fit.parse::<Fit>()?,
            None => Fit::default(),
        };
        let crop = given(params.crop).map(str::parse::<Crop>).transpose()?;
        let depth = given(params.depth)
            .map(str::parse::<Depth>)
            .transpose()?
            .unwrap_or_default();
        let channels = given(params.channels)
            .map(str::parse::<Channels>)
            .transpose()?
            .unwrap_or_default();
        let quality = match (format, given(params.quality)) {
            (Format::Jpeg, Some(text)) => Some(
                text.parse::<u8>()
                    .ok()
                    .filter(|q| (1..=100).contains(q))
                    .ok_or_else(|| {
                        ServiceError::BadRequest(format!("quality must be 1 to 100, not {text:?}"))
                    })?,
            ),
            (Format::Jpeg, None) => Some(DEFAULT_JPEG_QUALITY),
            _ => None,
        };
        let render = RenderOptions {
            width,
            height,
            fit,
            crop,
            depth,
            channels,
        };
        format.layout(&render)?;
        Ok(Self {
            format,
            render,
            quality,
        })
    }
}

/// How exactly the frame asked for must be the one answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Seek {
    /// Exactly frame N (the default).
    #[default]
    Exact,
    /// `?seek=keyframe`: the nearest shown keyframe at or before N, named in the answer —
    /// no decoding of the frames between, for speed over exactness.
    Keyframe,
}

impl Seek {
    /// `exact` or `keyframe`; none means exact.
    pub fn parse(text: Option<&str>) -> ServiceResult<Self> {
        match given(text) {
            None | Some("exact") => Ok(Self::Exact),
            Some("keyframe") => Ok(Self::Keyframe),
            Some(other) => Err(ServiceError::BadRequest(format!(
                "seek must be exact or keyframe, not {other:?}"
            ))),
        }
    }
}

/// One frame of one movie, as an image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameRequest {
    pub selector: FrameSelector,
    pub seek: Seek,
    pub output: FrameOutput,
}

/// Splits `12.jpg` / `12.5.png` / `00:01:02.5` into the frame or time and the format: a
/// trailing `.ext` counts as an extension only when it names a format; none means PNG.
pub fn split_extension(segment: &str) -> ServiceResult<(&str, Format)> {
    if let Some((stem, ext)) = segment.rsplit_once('.')
        && ext.chars().any(|c| c.is_ascii_alphabetic())
    {
        let format = Format::from_extension(Some(ext))?;
        return Ok((stem, format));
    }
    Ok((segment, Format::Png))
}

fn given(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|text| !text.is_empty())
}

fn pixels(name: &str, text: Option<&str>) -> ServiceResult<Option<u32>> {
    match given(text) {
        None => Ok(None),
        Some(text) => text.parse::<u32>().map(Some).map_err(|_| {
            ServiceError::BadRequest(format!(
                "{name} must be a whole number of pixels, not {text:?}"
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_are_split_only_when_they_name_a_format() {
        let cases = [
            ("12", "12", Format::Png),
            ("12.jpg", "12", Format::Jpeg),
            ("12.5", "12.5", Format::Png),
            ("12.5.webp", "12.5", Format::Webp),
            ("00:01:02.500", "00:01:02.500", Format::Png),
            ("7.NPY", "7", Format::Npy),
        ];
        for (segment, stem, format) in cases {
            let (got_stem, got_format) = split_extension(segment)
                .map_err(|e| e.to_string())
                .unwrap_or(("?", Format::Bmp));
            assert_eq!((got_stem, got_format), (stem, format), "{segment}");
        }
        assert!(split_extension("3.gif").is_err());
    }

    #[test]
    fn frame_zero_says_frames_count_from_one() {
        let error = FrameSelector::number("0").err().map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some("frames count from 1"));
        assert!(FrameSelector::number("x").is_err());
        assert_eq!(
            FrameSelector::number("42").ok(),
            Some(FrameSelector::Number(42))
        );
        assert_eq!(
            FrameSelector::time("1:30").ok(),
            Some(FrameSelector::Time(90.0))
        );
    }

    #[test]
    fn output_options_are_checked_once() {
        let ok = |format, params: OutputParams<'_>| FrameOutput::parse(format, &params);
        let jpeg = ok(Format::Jpeg, OutputParams::default()).ok();
        assert_eq!(jpeg.map(|o| o.quality), Some(Some(DEFAULT_JPEG_QUALITY)));
        let png = ok(
            Format::Png,
            OutputParams {
                quality: Some("20"),
                width: Some(" 640 "),
                ..OutputParams::default()
            },
        )
        .ok();
        assert_eq!(
            png.map(|o| (o.quality, o.render.width)),
            Some((None, Some(640)))
        );
        for bad in [
            OutputParams {
                quality: Some("0"),
                ..OutputParams::default()
            },
            OutputParams {
                width: Some("-3"),
                ..OutputParams::default()
            },
            OutputParams {
                width: Some("8193"),
                ..OutputParams::default()
            },
            OutputParams {
                width: Some("8000"),
                height: Some("8000"),
                ..OutputParams::default()
            },
            OutputParams {
                fit: Some("squash"),
                ..OutputParams::default()
            },
            OutputParams {
                crop: Some("1,2,3"),
                ..OutputParams::default()
            },
        ] {
            assert!(ok(Format::Jpeg, bad).is_err(), "{bad:?}");
        }
    }
}
