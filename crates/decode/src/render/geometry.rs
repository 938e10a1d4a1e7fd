//! Pure geometry of a render: the requested output (`RenderOptions`, `Fit`, `Crop`), its bounds
//! (`check_output_size`) and the plan — which source rectangle is scaled to what size and where it
//! lands in the canvas (stretch / contain / cover). No FFI.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Largest output side and area (SPEC §3).
pub const MAX_OUTPUT_SIDE: u32 = 8192;
pub const MAX_OUTPUT_PIXELS: u64 = 40_000_000;

/// How a picture is fitted into a requested width × height.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Exactly W×H, aspect ratio ignored (go-lazycache's behaviour).
    #[default]
    Stretch,
    /// Scaled to fit inside, the rest black (letterbox).
    Contain,
    /// Scaled to fill, the overflow cropped from the centre.
    Cover,
}

impl std::str::FromStr for Fit {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "stretch" => Ok(Self::Stretch),
            "contain" => Ok(Self::Contain),
            "cover" => Ok(Self::Cover),
            other => Err(Error::InvalidRequest(format!(
                "fit must be stretch, contain or cover, not {other:?}"
            ))),
        }
    }
}

/// A rectangle of source pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Crop {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl std::str::FromStr for Crop {
    type Err = Error;
    /// `x,y,w,h`
    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<u32> = s
            .split(',')
            .map(|p| p.trim().parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|_| {
                Error::InvalidRequest(format!(
                    "crop must be x,y,width,height in whole pixels, not {s:?}"
                ))
            })?;
        match parts[..] {
            [x, y, width, height] => Ok(Self {
                x,
                y,
                width,
                height,
            }),
            _ => Err(Error::InvalidRequest(format!(
                "crop must be x,y,width,height, not {s:?}"
            ))),
        }
    }
}

/// Bits per output sample (`?depth=16`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Depth {
    #[default]
    Eight,
    Sixteen,
}

impl std::str::FromStr for Depth {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "8" => Ok(Self::Eight),
            "16" => Ok(Self::Sixteen),
            other => Err(Error::InvalidRequest(format!(
                "depth must be 8 or 16, not {other:?}"
            ))),
        }
    }
}

/// Colour, or luma only (`?channels=gray`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Channels {
    #[default]
    Rgb,
    Gray,
}

impl std::str::FromStr for Channels {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "rgb" => Ok(Self::Rgb),
            "gray" | "grey" => Ok(Self::Gray),
            other => Err(Error::InvalidRequest(format!(
                "channels must be rgb or gray, not {other:?}"
            ))),
        }
    }
}

/// What to make of a decoded picture.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RenderOptions {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fit: Fit,
    pub crop: Option<Crop>,
    #[serde(default)]
    pub depth: Depth,
    #[serde(default)]
    pub channels: Channels,
}

/// Where the scaled picture goes: the source rectangle, its scaled size, and its place in the
/// output canvas (different only for `Fit::Contain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Plan {
    pub(super) src: Crop,
    pub(super) scaled: (u32, u32),
    pub(super) canvas: (u32, u32),
    pub(super) offset: (u32, u32),
}

impl Plan {
    /// The source rectangle scaled to exactly the canvas.
    fn filling(src: Crop, size: (u32, u32)) -> Self {
        Self {
            src,
            scaled: size,
            canvas: size,
            offset: (0, 0),
        }
    }
}

/// Checks a requested output size against the SPEC's bounds.
pub fn check_output_size(width: Option<u32>, height: Option<u32>) -> Result<()> {
    for (name, v) in [("width", width), ("height", height)] {
        if let Some(v) = v
            && !(1..=MAX_OUTPUT_SIDE).contains(&v)
        {
            return Err(Error::InvalidRequest(format!(
                "{name} must be 1 to {MAX_OUTPUT_SIDE}, not {v}"
            )));
        }
    }
    Ok(())
}

/// The size of the image `options` make of a `source`-sized picture, without decoding it
/// (e.g. to describe many frames before the first is ready); the same bounds as a render.
pub fn output_size(source: (u32, u32), options: &RenderOptions) -> Result<(u32, u32)> {
    plan(source, options).map(|plan| plan.canvas)
}

/// Whether `options` leave a `source`-sized picture as it is: no crop, no resize, RGB at 8 bits.
pub fn keeps_picture(source: (u32, u32), options: &RenderOptions) -> bool {
    options.depth == Depth::Eight
        && options.channels == Channels::Rgb
        && plan(source, options).is_ok_and(|plan| {
            let whole = (plan.src.x, plan.src.y, plan.src.width, plan.src.height)
                == (0, 0, source.0, source.1);
            whole && plan.scaled == source && plan.canvas == source
        })
}

pub(super) fn plan(source: (u32, u32), options: &RenderOptions) -> Result<Plan> {
    check_output_size(options.width, options.height)?;
    let src = match options.crop {
        None => Crop {
            x: 0,
            y: 0,
            width: source.0,
            height: source.1,
        },
        Some(c) => {
            let fits = c.width > 0
                && c.height > 0
                && u64::from(c.x) + u64::from(c.width) <= u64::from(source.0)
                && u64::from(c.y) + u64::from(c.height) <= u64::from(source.1);
            if !fits {
                return Err(Error::InvalidRequest(format!(
                    "crop {},{},{},{} is not inside the {}×{} frame",
                    c.x, c.y, c.width, c.height, source.0, source.1
                )));
            }
            c
        }
    };
    let (sw, sh) = (f64::from(src.width), f64::from(src.height));
    let round = |v: f64| (v.round() as u32).max(1);
    let plan = match (options.width, options.height) {
        (None, None) => Plan::filling(src, (src.width, src.height)),
        (Some(w), None) => {
            let h = round(f64::from(w) * sh / sw);
            Plan::filling(src, (w, h))
        }
        (None, Some(h)) => {
            let w = round(f64::from(h) * sw / sh);
            Plan::filling(src, (w, h))
        }
        (Some(w), Some(h)) => match options.fit {
            Fit::Stretch => Plan::filling(src, (w, h)),
            Fit::Contain => {
                let scale = (f64::from(w) / sw).min(f64::from(h) / sh);
                let scaled = (round(sw * scale).min(w), round(sh * scale).min(h));
                Plan {
                    src,
                    scaled,
                    canvas: (w, h),
                    offset: ((w - scaled.0) / 2, (h - scaled.1) / 2),
                }
            }
            Fit::Cover => {
                let scale = (f64::from(w) / sw).max(f64::from(h) / sh);
                let keep_w = round(f64::from(w) / scale).min(src.width);
                let keep_h = round(f64::from(h) / scale).min(src.height);
                let cropped = Crop {
                    x: src.x + (src.width - keep_w) / 2,
                    y: src.y + (src.height - keep_h) / 2,
                    width: keep_w,
                    height: keep_h,
                };
                Plan {
                    src: cropped,
                    scaled: (w, h),
                    canvas: (w, h),
                    offset: (0, 0),
                }
            }
        },
    };
    let (cw, ch) = plan.canvas;
    check_output_size(Some(cw), Some(ch))?;
    if u64::from(cw) * u64::from(ch) > MAX_OUTPUT_PIXELS {
        return Err(Error::InvalidRequest(format!(
            "{cw}×{ch} is more than the {MAX_OUTPUT_PIXELS} pixels an image may have"
        )));
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(width: Option<u32>, height: Option<u32>, fit: Fit) -> RenderOptions {
        RenderOptions {
            width,
            height,
            fit,
            crop: None,
            ..RenderOptions::default()
        }
    }

    #[test]
    fn one_side_keeps_the_aspect_ratio() -> Result<()> {
        let p = plan((1920, 1080), &opts(Some(640), None, Fit::Stretch))?;
        assert_eq!(p.canvas, (640, 360));
        let p = plan((1920, 1080), &opts(None, Some(540), Fit::Stretch))?;
        assert_eq!(p.canvas, (960, 540));
        Ok(())
    }

    #[test]
    fn output_size_is_the_plans_canvas() -> Result<()> {
        assert_eq!(
            output_size((1920, 1080), &opts(Some(160), None, Fit::Stretch))?,
            (160, 90)
        );
        assert_eq!(
            output_size((1920, 1080), &opts(Some(400), Some(400), Fit::Contain))?,
            (400, 400)
        );
        assert_eq!(
            output_size((333, 197), &RenderOptions::default())?,
            (333, 197)
        );
        assert!(output_size((100, 100), &opts(Some(9000), None, Fit::Stretch)).is_err());
        Ok(())
    }

    #[test]
    fn contain_letterboxes_and_cover_crops() -> Result<()> {
        let p = plan((1920, 1080), &opts(Some(400), Some(400), Fit::Contain))?;
        assert_eq!(
            (p.canvas, p.scaled, p.offset),
            ((400, 400), (400, 225), (0, 87))
        );
        let p = plan((1920, 1080), &opts(Some(400), Some(400), Fit::Cover))?;
        assert_eq!(
            (p.canvas, p.src.width, p.src.height, p.src.x),
            ((400, 400), 1080, 1080, 420)
        );
        Ok(())
    }

    #[test]
    fn sizes_and_crops_are_bounded() {
        assert!(plan((100, 100), &opts(Some(0), None, Fit::Stretch)).is_err());
        assert!(plan((100, 100), &opts(Some(8193), None, Fit::Stretch)).is_err());
        assert!(plan((100, 100), &opts(Some(8000), Some(8000), Fit::Stretch)).is_err());
        let crop = RenderOptions {
            crop: Some(Crop {
                x: 50,
                y: 0,
                width: 51,
                height: 10,
            }),
            ..Default::default()
        };
        assert!(plan((100, 100), &crop).is_err());
        assert!("1,2,3".parse::<Crop>().is_err());
        assert_eq!(
            "1,2,3,4".parse::<Crop>().ok(),
            Some(Crop {
                x: 1,
                y: 2,
                width: 3,
                height: 4
            })
        );
    }
}
