//! The sprite use case (SPEC §3): a contact sheet of tiles — the exact frame on screen at each
//! chosen time (`?count=N` evenly over the movie, or `?every=SECONDS`), `cols` to a row, each
//! `width` pixels wide with its height from the aspect ratio — and `sprite.vtt`, the WebVTT map
//! from each tile's time range to its rectangle of `sprite.jpg` with the same parameters.
//!
//! Tiles come through the single-frame path (each cached as the PNG `frame/N.png?width=W`
//! would be), so the sheet holds exactly those pixels; the sheet is cached under its own key.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use lazycache_cache::{CachedValue, ServedFrom};
use lazycache_decode::render::{MAX_OUTPUT_PIXELS, MAX_OUTPUT_SIDE, output_size};
use lazycache_decode::{Format, Image, PixelLayout, encode};
use lazycache_origin::{Mirror, RelPath};

use crate::error::{ServiceError, ServiceResult};
use crate::keys::{MovieVersion, frame_key, sprite_key};
use crate::request::{FrameOutput, FrameRequest, FrameSelector, OutputParams, Seek};
use crate::service::{Conditional, Service, retry_if_changed};
use crate::slots::blocking;

/// Most tiles in one sprite: a bound on its work (one frame each).
pub const MAX_TILES: u64 = 400;
/// Tiles when neither `count` nor `every` is given.
pub const DEFAULT_COUNT: u32 = 16;
/// Tiles to a row when `cols` is not given.
pub const DEFAULT_COLS: u32 = 4;
/// Tile width when `width` is not given.
pub const DEFAULT_WIDTH: u32 = 160;
/// What `sprite.vtt` is.
pub const VTT_CONTENT_TYPE: &str = "text/vtt; charset=utf-8";

/// How the tiles' times are chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SpriteSpacing {
    /// N tiles at 0, D/N, 2D/N, … of a movie lasting D seconds.
    Count(u32),
    /// A tile every S seconds from 0.
    Every(f64),
}

impl fmt::Display for SpriteSpacing {
    /// As a query parameter: `count=16`, `every=2.5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Count(count) => write!(f, "count={count}"),
            Self::Every(seconds) => write!(f, "every={seconds}"),
        }
    }
}

/// The sheet as an image, or its WebVTT map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpriteFormat {
    Image(Format),
    Vtt,
}

impl SpriteFormat {
    pub fn extension(self) -> &'static str {
        match self {
            Self::Image(format) => format.extension(),
            Self::Vtt => "vtt",
        }
    }
}

/// A sprite's parameters as a user typed them; `None` or empty means "not given".
#[derive(Debug, Clone, Copy, Default)]
pub struct SpriteParams<'a> {
    pub count: Option<&'a str>,
    pub every: Option<&'a str>,
    pub cols: Option<&'a str>,
    pub width: Option<&'a str>,
    pub quality: Option<&'a str>,
}

/// A sprite of one movie, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpriteRequest {
    pub spacing: SpriteSpacing,
    pub cols: u32,
    /// Tile width in pixels.
    pub width: u32,
    pub format: SpriteFormat,
    /// JPEG quality as given (the image's default is 75; the map's link carries it if given).
    pub quality: Option<u8>,
    /// What each tile is asked for through the frame path: PNG, `width` wide.
    pub tile: FrameOutput,
}

impl SpriteRequest {
    /// `extension` is the route's (`jpg`, `jpeg`, `png`, `webp`, `vtt`; none: png).
    pub fn parse(extension: Option<&str>, params: &SpriteParams<'_>) -> ServiceResult<Self> {
        let format = match extension.map(str::to_ascii_lowercase).as_deref() {
            None | Some("png") => SpriteFormat::Image(Format::Png),
            Some("jpg" | "jpeg") => SpriteFormat::Image(Format::Jpeg),
            Some("webp") => SpriteFormat::Image(Format::Webp),
            Some("vtt") => SpriteFormat::Vtt,
            Some(other) => {
                return Err(ServiceError::BadRequest(format!(
                    "a sprite is .jpg, .png, .webp or .vtt, not .{other}"
                )));
            }
        };
        let spacing = match (given(params.count), given(params.every)) {
            (Some(_), Some(_)) => {
                return Err(ServiceError::BadRequest(
                    "give count or every, not both".into(),
                ));
            }
            (Some(text), None) => SpriteSpacing::Count(whole("count", text, MAX_TILES as u32)?),
            (None, Some(text)) => SpriteSpacing::Every(
                text.parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| {
                        ServiceError::BadRequest(format!(
                            "every must be a number of seconds above 0, not {text:?}"
                        ))
                    })?,
            ),
            (None, None) => SpriteSpacing::Count(DEFAULT_COUNT),
        };
        let cols = match given(params.cols) {
            Some(text) => whole("cols", text, MAX_TILES as u32)?,
            None => DEFAULT_COLS,
        };
        let width = match given(params.width) {
            Some(text) => whole("width", text, MAX_OUTPUT_SIDE)?,
            None => DEFAULT_WIDTH,
        };
        let width_text = width.to_string();
        let tile = FrameOutput::parse(
            Format::Png,
            &OutputParams {
                width: Some(&width_text),
                ..OutputParams::default()
            },
        )?;
        let quality = match given(params.quality) {
            Some(text) => {
                let jpeg = FrameOutput::parse(
                    Format::Jpeg,
                    &OutputParams {
                        quality: Some(text),
                        ..OutputParams::default()
                    },
                )?;
                jpeg.quality
            }
            None => None,
        };
        Ok(Self {
            spacing,
            cols,
            width,
            format,
            quality,
            tile,
        })
    }

    /// The quality the sheet is encoded with (JPEG), or its map links to.
    pub fn image_quality(&self) -> Option<u8> {
        match self.format {
            SpriteFormat::Image(Format::Jpeg) => Some(
                self.quality
                    .unwrap_or(lazycache_decode::DEFAULT_JPEG_QUALITY),
            ),
            SpriteFormat::Image(_) => None,
            SpriteFormat::Vtt => self.quality,
        }
    }

    /// The query of the sheet's URL with these parameters (the WebVTT map's link).
    fn query(&self) -> String {
        let mut query = format!("{}&cols={}&width={}", self.spacing, self.cols, self.width);
        if let Some(quality) = self.quality {
            query.push_str(&format!("&quality={quality}"));
        }
        query
    }
}

fn given(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|text| !text.is_empty())
}

fn whole(name: &str, text: &str, max: u32) -> ServiceResult<u32> {
    text.parse::<u32>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| ServiceError::BadRequest(format!("{name} must be 1 to {max}, not {text:?}")))
}

/// Where the tiles go: each tile's start time, the grid and the tile size.
#[derive(Debug, Clone, PartialEq)]
struct Layout {
    starts: Vec<f64>,
    duration: f64,
    cols: u32,
    rows: u32,
    tile: (u32, u32),
}

impl Layout {
    fn of(request: &SpriteRequest, duration: f64, source: (u32, u32)) -> ServiceResult<Self> {
        if !(duration.is_finite() && duration > 0.0) {
            return Err(ServiceError::BadRequest(
                "the movie has no duration to place tiles over".into(),
            ));
        }
        let starts: Vec<f64> = match request.spacing {
            SpriteSpacing::Count(count) => (0..count)
                .map(|i| f64::from(i) * duration / f64::from(count))
                .collect(),
            SpriteSpacing::Every(seconds) => {
                let count = (duration / seconds).ceil();
                if count > MAX_TILES as f64 {
                    return Err(too_many_tiles(count));
                }
                (0..count as u32)
                    .map(|i| f64::from(i) * seconds)
                    .filter(|&start| start < duration)
                    .collect()
            }
        };
        let count = starts.len().max(1) as u32;
        let cols = request.cols.min(count);
        let rows = count.div_ceil(cols);
        let tile = output_size(source, &request.tile.render)?;
        let (width, height) = (
            u64::from(cols) * u64::from(tile.0),
            u64::from(rows) * u64::from(tile.1),
        );
        let side = u64::from(MAX_OUTPUT_SIDE);
        if width > side || height > side || width * height > MAX_OUTPUT_PIXELS {
            return Err(ServiceError::BadRequest(format!(
                "{count} tiles of {}×{} in {cols} columns make a {width}×{height} sprite; at most \
                 {side} pixels a side and {MAX_OUTPUT_PIXELS} pixels in all",
                tile.0, tile.1
            )));
        }
        Ok(Self {
            starts,
            duration,
            cols,
            rows,
            tile,
        })
    }

    fn canvas(&self) -> (u32, u32) {
        (self.cols * self.tile.0, self.rows * self.tile.1)
    }

    /// Tile `index`'s top-left corner.
    fn place(&self, index: usize) -> (u32, u32) {
        let index = index as u32;
        (
            (index % self.cols) * self.tile.0,
            (index / self.cols) * self.tile.1,
        )
    }

    /// The WebVTT map: one cue per tile, from its time to the next tile's (the last to the end).
    fn vtt(&self, request: &SpriteRequest) -> String {
        let link = format!("sprite.jpg?{}", request.query());
        let mut text = String::from("WEBVTT\n");
        for (index, &start) in self.starts.iter().enumerate() {
            let end = self.starts.get(index + 1).copied().unwrap_or(self.duration);
            let (x, y) = self.place(index);
            text.push_str(&format!(
                "\n{} --> {}\n{link}#xywh={x},{y},{},{}\n",
                timestamp(start),
                timestamp(end),
                self.tile.0,
                self.tile.1
            ));
        }
        text
    }
}

fn too_many_tiles(count: f64) -> ServiceError {
    ServiceError::BadRequest(format!(
        "that is {count} tiles; a sprite has at most {MAX_TILES}: raise every or lower count"
    ))
}

/// `HH:MM:SS.mmm`, as WebVTT writes times.
fn timestamp(seconds: f64) -> String {
    let millis = (seconds * 1000.0).round().max(0.0) as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        millis / 3_600_000,
        millis / 60_000 % 60,
        millis / 1000 % 60,
        millis % 1000
    )
}

/// A sprite, or its map, and where it came from.
pub struct SpriteAnswer {
    pub value: CachedValue,
    /// Changes whenever the bytes would (movie version, every parameter).
    pub version_tag: String,
    pub served_from: ServedFrom,
    pub tiles: usize,
}

/// What composing a sheet needs, moved into its (shared, detached) computation.
struct Sheet {
    service: Service,
    mirror: Arc<Mirror>,
    path: RelPath,
    version: MovieVersion,
    frames: Vec<u64>,
    layout: Layout,
    tile: FrameOutput,
    format: Format,
    quality: Option<u8>,
}

impl Service {
    /// The sprite `request` of the movie at `path` of `mirror`: the sheet from the cache tiers,
    /// else composed once (concurrent requests share it) from its tiles; or its WebVTT map,
    /// which needs only the movie's metadata. `holds(tag)` as for [`Service::frame`].
    pub async fn sprite(
        &self,
        mirror: &Arc<Mirror>,
        path: &RelPath,
        request: &SpriteRequest,
        holds: &(dyn Fn(&str) -> bool + Sync),
    ) -> ServiceResult<Conditional<SpriteAnswer>> {
        retry_if_changed(mirror, path, || async {
            let loaded = self.movie(mirror, path).await?;
            let metadata = loaded.movie.metadata();
            let layout = Layout::of(
                request,
                metadata.duration,
                (metadata.width, metadata.height),
            )?;
            let key = sprite_key(&loaded.version, request);
            let version_tag = key.canonical().to_owned();
            if holds(&version_tag) {
                return Ok(Conditional::Held(version_tag));
            }
            let tiles = layout.starts.len();
            let format = match request.format {
                SpriteFormat::Vtt => {
                    return Ok(Conditional::Fresh(SpriteAnswer {
                        value: CachedValue::new(VTT_CONTENT_TYPE, layout.vtt(request)),
                        version_tag,
                        served_from: ServedFrom::Computed,
                        tiles,
                    }));
                }
                SpriteFormat::Image(format) => format,
            };
            let frames = layout
                .starts
                .iter()
                .map(|&start| loaded.movie.frame_at_time(start))
                .collect::<Result<Vec<u64>, _>>()?;
            let sheet = Sheet {
                service: self.clone(),
                mirror: Arc::clone(mirror),
                path: path.clone(),
                version: loaded.version,
                frames,
                layout,
                tile: request.tile,
                format,
                quality: request.image_quality(),
            };
            let lookup = self
                .open_cache()?
                .get_or_compute(&key, move || sheet.compose())
                .await
                .map_err(ServiceError::from)?;
            Ok(Conditional::Fresh(SpriteAnswer {
                value: lookup.value,
                version_tag,
                served_from: lookup.served_from,
                tiles,
            }))
        })
        .await
    }
}

impl Sheet {
    /// Fetches the tiles one after another (a run in one GOP continues one decoder), places
    /// each, and encodes the sheet in a decode slot.
    async fn compose(self) -> ServiceResult<CachedValue> {
        let (width, height) = self.layout.canvas();
        let mut canvas = vec![0u8; width as usize * height as usize * 3];
        for (index, &frame) in self.frames.iter().enumerate() {
            let png = self.tile(frame).await?;
            let at = self.layout.place(index);
            let tile = self.layout.tile;
            canvas = tokio::task::spawn_blocking(move || place(canvas, width, &png, at, tile))
                .await
                .map_err(|join| ServiceError::Internal(format!("sprite task failed: {join}")))??;
        }
        let image = Image {
            width,
            height,
            layout: PixelLayout::Rgb24,
            data: canvas,
        };
        let inner = &self.service.inner;
        let slot = inner.slots.acquire(&inner.metrics).await?;
        let (format, quality) = (self.format, self.quality);
        let bytes = blocking(slot, move || encode(&image, format, quality)).await?;
        Ok(CachedValue::new(format.content_type(), bytes))
    }

    /// Tile `frame` as the frame route gives it, of the version the sprite began with.
    async fn tile(&self, frame: u64) -> ServiceResult<Bytes> {
        let request = FrameRequest {
            selector: FrameSelector::Number(frame),
            seek: Seek::Exact,
            output: self.tile,
        };
        let answer = match self
            .service
            .frame(&self.mirror, &self.path, &request, &|_| false)
            .await?
        {
            Conditional::Fresh(answer) => answer,
            Conditional::Held(_) => {
                return Err(ServiceError::Internal(
                    "a tile was answered 'not modified' without being asked".into(),
                ));
            }
        };
        if answer.version_tag != frame_key(&self.version, frame, &self.tile).canonical() {
            return Err(
                lazycache_decode::Error::Source(lazycache_decode::SourceError::new(
                    lazycache_decode::SourceErrorKind::Changed,
                    format!("/{} changed at the origin during the sprite", self.path),
                ))
                .into(),
            );
        }
        Ok(answer.value.bytes().clone())
    }
}

/// Decodes one PNG tile into the RGB canvas `width` pixels wide, at `at`.
fn place(
    mut canvas: Vec<u8>,
    width: u32,
    png: &[u8],
    at: (u32, u32),
    tile: (u32, u32),
) -> ServiceResult<Vec<u8>> {
    let decoded = image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .map_err(|e| ServiceError::Internal(format!("a sprite tile is not a PNG: {e}")))?
        .to_rgb8();
    if decoded.dimensions() != tile {
        return Err(ServiceError::Internal(format!(
            "a sprite tile is {:?}, not {tile:?}",
            decoded.dimensions()
        )));
    }
    let row = tile.0 as usize * 3;
    let stride = width as usize * 3;
    for (y, pixels) in decoded.as_raw().chunks_exact(row).enumerate() {
        let start = (at.1 as usize + y) * stride + at.0 as usize * 3;
        if let Some(target) = canvas.get_mut(start..start + row) {
            target.copy_from_slice(pixels);
        }
    }
    Ok(canvas)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(ext: Option<&str>, params: SpriteParams<'_>) -> Result<SpriteRequest, String> {
        SpriteRequest::parse(ext, &params).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_bounds() {
        let default = request(Some("jpg"), SpriteParams::default()).ok();
        assert_eq!(
            default.map(|r| (r.spacing, r.cols, r.width, r.image_quality())),
            Some((SpriteSpacing::Count(16), 4, 160, Some(75)))
        );
        let every = request(
            Some("vtt"),
            SpriteParams {
                every: Some("2.5"),
                quality: Some("60"),
                ..SpriteParams::default()
            },
        )
        .ok();
        assert_eq!(
            every.map(|r| r.query()).as_deref(),
            Some("every=2.5&cols=4&width=160&quality=60")
        );
        let bad = |params| request(Some("png"), params);
        for params in [
            SpriteParams {
                count: Some("0"),
                ..SpriteParams::default()
            },
            SpriteParams {
                count: Some("401"),
                ..SpriteParams::default()
            },
            SpriteParams {
                count: Some("4"),
                every: Some("1"),
                ..SpriteParams::default()
            },
            SpriteParams {
                every: Some("-1"),
                ..SpriteParams::default()
            },
            SpriteParams {
                every: Some("NaN"),
                ..SpriteParams::default()
            },
            SpriteParams {
                width: Some("8193"),
                ..SpriteParams::default()
            },
            SpriteParams {
                quality: Some("0"),
                ..SpriteParams::default()
            },
        ] {
            assert!(bad(params).is_err(), "{params:?}");
        }
        assert!(request(Some("bmp"), SpriteParams::default()).is_err());
    }

    #[test]
    fn layout_and_map() -> ServiceResult<()> {
        let sprite = SpriteRequest::parse(
            Some("vtt"),
            &SpriteParams {
                count: Some("6"),
                ..SpriteParams::default()
            },
        )?;
        let layout = Layout::of(&sprite, 3.0, (1920, 1080))?;
        assert_eq!(layout.starts, vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5]);
        assert_eq!((layout.cols, layout.rows, layout.tile), (4, 2, (160, 90)));
        assert_eq!(layout.canvas(), (640, 180));
        let vtt = layout.vtt(&sprite);
        assert!(vtt.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:00.500\n"));
        assert!(vtt.contains(
            "00:00:02.500 --> 00:00:03.000\nsprite.jpg?count=6&cols=4&width=160#xywh=160,90,160,90\n"
        ));
        let every = SpriteRequest::parse(
            None,
            &SpriteParams {
                every: Some("1"),
                cols: Some("10"),
                ..SpriteParams::default()
            },
        )?;
        let layout = Layout::of(&every, 2.5, (64, 48))?;
        assert_eq!(layout.starts, vec![0.0, 1.0, 2.0]);
        assert_eq!((layout.cols, layout.rows), (3, 1));
        let many = SpriteRequest::parse(
            None,
            &SpriteParams {
                every: Some("0.01"),
                ..SpriteParams::default()
            },
        )?;
        assert!(Layout::of(&many, 60.0, (64, 48)).is_err());
        let wide = SpriteRequest::parse(
            None,
            &SpriteParams {
                count: Some("400"),
                cols: Some("400"),
                ..SpriteParams::default()
            },
        )?;
        assert!(Layout::of(&wide, 60.0, (1920, 1080)).is_err());
        assert_eq!(timestamp(3723.0456), "01:02:03.046");
        Ok(())
    }
}
