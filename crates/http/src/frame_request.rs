//! A frame request's wishes from its URL and headers: format (extension), size (`width`/
//! `height` query or `X-lazycache-output-*` headers), `fit`, `crop`, `quality`.

use std::collections::HashMap;

use actix_web::HttpRequest;
use lazycache_decode::render::{MAX_OUTPUT_PIXELS, check_output_size};
use lazycache_decode::{Crop, DEFAULT_JPEG_QUALITY, Fit, Format, RenderOptions};

use crate::error::ApiError;

/// Everything but the frame number.
#[derive(Debug, Clone)]
pub struct FrameWishes {
    pub format: Format,
    pub options: RenderOptions,
    pub quality: Option<u8>,
}

/// Splits `12.jpg` / `12.5.png` / `00:01:02.5` into the frame or time and the format: a
/// trailing `.ext` counts as an extension only when it names a format.
pub fn split_extension(segment: &str) -> Result<(&str, Format), ApiError> {
    if let Some((stem, ext)) = segment.rsplit_once('.')
        && ext.chars().any(|c| c.is_ascii_alphabetic())
    {
        let format = Format::from_extension(Some(ext))?;
        return Ok((stem, format));
    }
    Ok((segment, Format::Png))
}

/// Parses the request's size, fit, crop and quality for `format`.
pub fn wishes(request: &HttpRequest, format: Format) -> Result<FrameWishes, ApiError> {
    let query: HashMap<String, String> =
        actix_web::web::Query::<HashMap<String, String>>::from_query(request.query_string())
            .map(|query| query.into_inner())
            .map_err(|e| ApiError::BadRequest(format!("bad query string: {e}")))?;
    let width = size(request, &query, "width")?;
    let height = size(request, &query, "height")?;
    check_output_size(width, height)?;
    if let (Some(w), Some(h)) = (width, height)
        && u64::from(w) * u64::from(h) > MAX_OUTPUT_PIXELS
    {
        return Err(ApiError::BadRequest(format!(
            "{w}x{h} is more than {MAX_OUTPUT_PIXELS} pixels"
        )));
    }
    let fit = match query.get("fit") {
        Some(fit) => fit.parse::<Fit>()?,
        None => Fit::default(),
    };
    let crop = query.get("crop").map(|c| c.parse::<Crop>()).transpose()?;
    let quality = match (format, query.get("quality")) {
        (Format::Jpeg, Some(text)) => Some(
            text.parse::<u8>()
                .ok()
                .filter(|q| (1..=100).contains(q))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!("quality must be 1 to 100, not {text:?}"))
                })?,
        ),
        (Format::Jpeg, None) => Some(DEFAULT_JPEG_QUALITY),
        _ => None,
    };
    Ok(FrameWishes {
        format,
        options: RenderOptions {
            width,
            height,
            fit,
            crop,
        },
        quality,
    })
}

/// `?name=` wins over the `X-lazycache-output-<name>` header.
fn size(
    request: &HttpRequest,
    query: &HashMap<String, String>,
    name: &str,
) -> Result<Option<u32>, ApiError> {
    let header = format!("x-lazycache-output-{name}");
    let text = match query.get(name) {
        Some(text) => Some(text.clone()),
        None => request
            .headers()
            .get(header.as_str())
            .map(|value| value.to_str().unwrap_or_default().to_owned()),
    };
    match text.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text.parse::<u32>().map(Some).map_err(|_| {
            ApiError::BadRequest(format!(
                "{name} must be a whole number of pixels, not {text:?}"
            ))
        }),
    }
}

/// Parses a frame number (counting from 1).
pub fn frame_number(text: &str) -> Result<u64, ApiError> {
    let number = text
        .parse::<u64>()
        .map_err(|_| ApiError::BadRequest(format!("frame must be a whole number, not {text:?}")))?;
    if number == 0 {
        return Err(lazycache_decode::Error::FrameZero.into());
    }
    Ok(number)
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
        assert_eq!(
            split_extension("3.gif")
                .map(|_| ())
                .map_err(|e| e.status().as_u16()),
            Err(400)
        );
    }

    #[test]
    fn frame_zero_says_frames_count_from_one() {
        let error = frame_number("0").map(|_| ()).err().map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some("frames count from 1"));
        assert!(frame_number("x").is_err());
        assert_eq!(frame_number("42").ok(), Some(42));
    }
}
