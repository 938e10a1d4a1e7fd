//! The domain's cache keys: what a movie index or an encoded frame was made from — the mirror,
//! the file's path, the origin's validator and, for frames, every output option — as fields of
//! the cache's opaque [`CacheKey`].

use lazycache_cache::CacheKey;
use lazycache_decode::{Channels, Depth};
use lazycache_origin::OriginFile;

use crate::request::FrameOutput;
use crate::selection::FrameSelection;
use crate::sprite::{SpriteFormat, SpriteRequest};

/// Bump when the cached index bytes change form (with `lazycache_decode::INDEX_FORMAT_VERSION`).
const METADATA_REVISION: u32 = 4;
/// Bump when the same frame request would now give other bytes.
const FRAME_REVISION: u32 = 1;
/// Bump when the same sprite request would now give other bytes (tiles, layout, encoding).
const SPRITE_REVISION: u32 = 1;

/// The content type of a cached movie index.
pub(crate) const INDEX_CONTENT_TYPE: &str = "application/x-lazycache-movie-index";
/// The largest index a shared tier may hand over: a million samples (`Limits::max_samples`) at
/// well under 64 bytes each in postcard, plus codec parameters.
const INDEX_MAX_BYTES: u64 = 64 << 20;
/// The largest frame a shared tier may hand over: an 8192×8192 picture (the largest source) as
/// RGBA, plus the little PNG, BMP or `.npy` framing adds.
const FRAME_MAX_BYTES: u64 = 8192 * 8192 * 4 + (4 << 20);
/// The largest sprite a shared tier may hand over: its pixel bound as RGB, plus the framing.
const SPRITE_MAX_BYTES: u64 = lazycache_decode::render::MAX_OUTPUT_PIXELS * 3 + (4 << 20);

/// One version of one movie: the mirror (its URL without credentials, or its name), the path
/// inside it, and the origin's validator, so a changed file never answers from old entries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MovieVersion {
    pub mirror: String,
    pub path: String,
    pub validator: String,
}

impl MovieVersion {
    pub fn of(mirror: &str, file: &OriginFile) -> Self {
        Self {
            mirror: mirror.to_owned(),
            path: file.path().to_string(),
            validator: file.validator().to_owned(),
        }
    }

    fn fields(&self) -> [(&'static str, &str); 3] {
        [
            ("mirror", &self.mirror),
            ("path", &self.path),
            ("validator", &self.validator),
        ]
    }
}

/// The key of a movie version's parsed index.
pub fn metadata_key(movie: &MovieVersion) -> CacheKey {
    let revision = METADATA_REVISION.to_string();
    let mut fields = movie.fields().to_vec();
    fields.push(("revision", &revision));
    CacheKey::new("metadata", &fields).expecting(INDEX_CONTENT_TYPE, INDEX_MAX_BYTES)
}

/// The key (and so the ETag) of a clip of a movie version: frames `A-B` in a container.
pub fn clip_key(movie: &MovieVersion, frames: &str, container: &str) -> CacheKey {
    let mut fields = movie.fields().to_vec();
    fields.extend([("frames", frames), ("container", container)]);
    CacheKey::new("clip", &fields)
}

/// The key of one encoded frame of a movie version.
pub fn frame_key(movie: &MovieVersion, frame: u64, output: &FrameOutput) -> CacheKey {
    let optional = |value: Option<u32>| value.map_or_else(String::new, |v| v.to_string());
    let frame = frame.to_string();
    let width = optional(output.render.width);
    let height = optional(output.render.height);
    let fit = format!("{:?}", output.render.fit).to_ascii_lowercase();
    let crop = output.render.crop.map_or_else(String::new, |c| {
        format!("{},{},{},{}", c.x, c.y, c.width, c.height)
    });
    let quality = optional(output.quality.map(u32::from));
    let revision = FRAME_REVISION.to_string();
    let mut fields = movie.fields().to_vec();
    fields.extend([
        ("frame", frame.as_str()),
        ("format", output.format.extension()),
        ("width", &width),
        ("height", &height),
        ("fit", &fit),
        ("crop", &crop),
        ("quality", &quality),
    ]);
    // Named only when not the default, so that the keys of 8-bit RGB frames cached before
    // depth and channels existed stay valid.
    if output.render.depth == Depth::Sixteen {
        fields.push(("depth", "16"));
    }
    if output.render.channels == Channels::Gray {
        fields.push(("channels", "gray"));
    }
    fields.push(("revision", &revision));
    CacheKey::new("frame", &fields).expecting(output.format.content_type(), FRAME_MAX_BYTES)
}

/// The version tag of many frames in one answer (never stored: each frame is, under its own
/// [`frame_key`]): the movie version, the selection, the container, and every output option
/// exactly as the frames' own keys name them.
pub fn frames_key(
    movie: &MovieVersion,
    selection: &FrameSelection,
    container: &str,
    output: &FrameOutput,
) -> CacheKey {
    let each = frame_key(movie, 0, output);
    let mut fields = movie.fields().to_vec();
    fields.extend([
        ("frames", selection.canonical()),
        ("container", container),
        ("each", each.canonical()),
    ]);
    CacheKey::new("frames", &fields)
}

/// The key of a sprite (contact sheet) of a movie version, or the tag of its WebVTT map: how
/// tiles are spaced, columns, tile size, format and quality, and the tiles' own frame key (their
/// output and revision).
pub fn sprite_key(movie: &MovieVersion, sprite: &SpriteRequest) -> CacheKey {
    let spacing = sprite.spacing.to_string();
    let cols = sprite.cols.to_string();
    let width = sprite.width.to_string();
    let quality = sprite
        .image_quality()
        .map_or_else(String::new, |q| q.to_string());
    let tile = frame_key(movie, 0, &sprite.tile);
    let revision = SPRITE_REVISION.to_string();
    let mut fields = movie.fields().to_vec();
    fields.extend([
        ("spacing", spacing.as_str()),
        ("cols", &cols),
        ("width", &width),
        ("format", sprite.format.extension()),
        ("quality", &quality),
        ("tile", tile.canonical()),
        ("revision", &revision),
    ]);
    let key = CacheKey::new("sprite", &fields);
    match sprite.format {
        SpriteFormat::Image(format) => key.expecting(format.content_type(), SPRITE_MAX_BYTES),
        SpriteFormat::Vtt => key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{FrameOutput, OutputParams};
    use lazycache_decode::Format;

    fn movie() -> MovieVersion {
        MovieVersion {
            mirror: "camhd".into(),
            path: "RS03ASHS/2016/CAMHDA301-20160101T000000Z.mov".into(),
            validator: "\"5e8f-1a2b\"".into(),
        }
    }

    #[test]
    fn frame_keys_name_every_output_option() {
        let output = FrameOutput::parse(
            Format::Jpeg,
            &OutputParams {
                width: Some("640"),
                crop: Some("1,2,3,4"),
                ..OutputParams::default()
            },
        )
        .ok();
        let key = output.map(|output| frame_key(&movie(), 42, &output));
        assert_eq!(
            key.as_ref().map(CacheKey::canonical),
            Some(
                "lazycache-key/v2 frame mirror=5:camhd \
                 path=44:RS03ASHS/2016/CAMHDA301-20160101T000000Z.mov validator=11:\"5e8f-1a2b\" \
                 frame=2:42 format=3:jpg width=3:640 height=0: fit=7:stretch crop=7:1,2,3,4 \
                 quality=2:75 revision=1:1"
            )
        );
        let metadata = metadata_key(&movie());
        assert_eq!(metadata.kind(), "metadata");
        assert!(
            metadata
                .canonical()
                .ends_with(&format!("revision=1:{METADATA_REVISION}"))
        );
        assert_eq!(
            key.and_then(|key| key.expected()).map(|e| e.content_type),
            Some("image/jpeg")
        );
    }
}
