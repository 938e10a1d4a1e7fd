//! Cache keys: what a cached value was made from, rendered to a stable, versioned form and hash.
//!
//! A key names everything that determines the bytes: the mirror, the file's path, the origin's
//! validator (so a changed file never answers from old frames), and, for frames, every rendering
//! parameter. [`CacheKey::canonical`] is an unambiguous text rendering (length-prefixed fields) that
//! starts with [`KEY_FORMAT_VERSION`]; its BLAKE3 hash ([`CacheKey::digest`]) names disk files and
//! objects, so user input never becomes a path and a change of rendering never misreads old entries.

use std::fmt::{self, Write as _};

/// Version of the canonical key rendering. Bump it whenever [`CacheKey::canonical`] changes: every
/// digest changes with it, so entries written under the old rendering are simply never found.
/// v2: mirrors are named by their URL without credentials (v1 keys could carry a password).
pub const KEY_FORMAT_VERSION: u32 = 2;

/// The movie (or other origin file) a value was derived from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourceId {
    /// The mirror's name or URL, as configured but never with credentials.
    pub mirror: String,
    /// The file's path inside the mirror.
    pub path: String,
    /// The origin's validator: its ETag, else last-modified and size.
    pub validator: String,
}

/// A source rectangle `x, y, width, height` in source pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CropRect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// One encoded frame of a movie, as requested.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FrameKey {
    pub source: SourceId,
    /// Frame number as the API counts it (from 1).
    pub frame: u64,
    /// Output format name, e.g. `png`, `jpeg`, `npy`.
    pub format: String,
    /// Requested output width, if any.
    pub width: Option<u32>,
    /// Requested output height, if any.
    pub height: Option<u32>,
    /// Fit mode name, e.g. `stretch`, `contain`, `cover`.
    pub fit: String,
    pub crop: Option<CropRect>,
    /// Encoder quality, for formats that have one.
    pub quality: Option<u8>,
    /// The caller's version of how frames are rendered; bump it when the same request would now
    /// produce different bytes (a decoder or encoder fix), so old frames are not served.
    pub revision: u32,
}

/// A movie's metadata and parsed index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MetadataKey {
    pub source: SourceId,
    /// The caller's version of the metadata serialisation; bump it when that form changes.
    pub revision: u32,
}

/// What a cached value is, with everything that determines its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CacheKey {
    Frame(FrameKey),
    Metadata(MetadataKey),
}

/// BLAKE3 hash of a key's canonical rendering: the name of its disk file and object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyDigest(pub [u8; 32]);

impl CacheKey {
    /// A short name of the key's kind, also the object-store folder of its values.
    pub fn kind(&self) -> &'static str {
        match self {
            CacheKey::Frame(_) => "frame",
            CacheKey::Metadata(_) => "metadata",
        }
    }

    /// The origin file this key's value was derived from.
    pub fn source(&self) -> &SourceId {
        match self {
            CacheKey::Frame(frame) => &frame.source,
            CacheKey::Metadata(metadata) => &metadata.source,
        }
    }

    /// The stable, unambiguous text form: `lazycache-key/v2 kind` then `name=len:value` fields.
    pub fn canonical(&self) -> String {
        let mut out = String::with_capacity(160);
        let _ = write!(out, "lazycache-key/v{KEY_FORMAT_VERSION} {}", self.kind());
        let source = self.source();
        push_field(&mut out, "mirror", &source.mirror);
        push_field(&mut out, "path", &source.path);
        push_field(&mut out, "validator", &source.validator);
        match self {
            CacheKey::Frame(frame) => {
                push_field(&mut out, "frame", &frame.frame.to_string());
                push_field(&mut out, "format", &frame.format);
                push_field(&mut out, "width", &optional(frame.width));
                push_field(&mut out, "height", &optional(frame.height));
                push_field(&mut out, "fit", &frame.fit);
                let crop = frame.crop.map_or_else(String::new, |c| {
                    format!("{},{},{},{}", c.x, c.y, c.width, c.height)
                });
                push_field(&mut out, "crop", &crop);
                push_field(&mut out, "quality", &optional(frame.quality));
                push_field(&mut out, "revision", &frame.revision.to_string());
            }
            CacheKey::Metadata(metadata) => {
                push_field(&mut out, "revision", &metadata.revision.to_string());
            }
        }
        out
    }

    /// The hash that names this key's disk file and object.
    pub fn digest(&self) -> KeyDigest {
        KeyDigest::of_canonical(&self.canonical())
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl KeyDigest {
    /// The digest of a key's canonical form (see [`CacheKey::canonical`]).
    pub fn of_canonical(canonical: &str) -> Self {
        Self(*blake3::hash(canonical.as_bytes()).as_bytes())
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        let mut hex = String::with_capacity(64);
        for byte in self.0 {
            let _ = write!(hex, "{byte:02x}");
        }
        hex
    }

    /// Parses the 64-character lower-case hex form written by [`KeyDigest::to_hex`].
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (index, byte) in bytes.iter_mut().enumerate() {
            let pair = hex.get(index * 2..index * 2 + 2)?;
            if pair.bytes().any(|b| b.is_ascii_uppercase()) {
                return None;
            }
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Self(bytes))
    }
}

impl fmt::Display for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

fn push_field(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, " {name}={}:{value}", value.len());
}

fn optional<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(String::new, |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_key() -> FrameKey {
        FrameKey {
            source: SourceId {
                mirror: "camhd".into(),
                path: "RS03ASHS/2016/CAMHDA301-20160101T000000Z.mov".into(),
                validator: "\"5e8f-1a2b\"".into(),
            },
            frame: 42,
            format: "jpeg".into(),
            width: Some(640),
            height: None,
            fit: "stretch".into(),
            crop: Some(CropRect {
                x: 1,
                y: 2,
                width: 3,
                height: 4,
            }),
            quality: Some(75),
            revision: 1,
        }
    }

    #[test]
    fn canonical_form_is_stable() {
        // This exact string is a compatibility promise: entries on disk and in buckets are named
        // by its hash. Changing it requires bumping KEY_FORMAT_VERSION.
        assert_eq!(
            CacheKey::Frame(frame_key()).canonical(),
            "lazycache-key/v2 frame mirror=5:camhd \
             path=44:RS03ASHS/2016/CAMHDA301-20160101T000000Z.mov validator=11:\"5e8f-1a2b\" \
             frame=2:42 format=4:jpeg width=3:640 height=0: fit=7:stretch crop=7:1,2,3,4 \
             quality=2:75 revision=1:1"
        );
        assert_eq!(
            CacheKey::Frame(frame_key()).digest().to_hex(),
            blake3::hash(CacheKey::Frame(frame_key()).canonical().as_bytes())
                .to_hex()
                .as_str()
        );
    }

    #[test]
    fn every_field_changes_the_digest() {
        let base = frame_key();
        let mut variants = vec![base.clone()];
        let mut push = |change: fn(&mut FrameKey)| {
            let mut key = base.clone();
            change(&mut key);
            variants.push(key);
        };
        push(|k| k.source.mirror.push('x'));
        push(|k| k.source.path.push('x'));
        push(|k| k.source.validator.push('x'));
        push(|k| k.frame += 1);
        push(|k| k.format = "png".into());
        push(|k| k.width = None);
        push(|k| k.height = Some(640));
        push(|k| k.fit = "cover".into());
        push(|k| k.crop = None);
        push(|k| k.quality = Some(76));
        push(|k| k.revision = 2);
        let mut digests: Vec<KeyDigest> = variants
            .into_iter()
            .map(|k| CacheKey::Frame(k).digest())
            .collect();
        let metadata = CacheKey::Metadata(MetadataKey {
            source: base.source.clone(),
            revision: 1,
        });
        digests.push(metadata.digest());
        let count = digests.len();
        digests.sort();
        digests.dedup();
        assert_eq!(digests.len(), count, "two different keys share a digest");
    }

    #[test]
    fn field_boundaries_cannot_be_forged() {
        // Without length prefixes these two would render alike.
        let mut a = frame_key();
        a.source.mirror = "a path=1:b".into();
        a.source.path = "c".into();
        let mut b = frame_key();
        b.source.mirror = "a".into();
        b.source.path = "b path=1:c".into();
        assert_ne!(
            CacheKey::Frame(a).canonical(),
            CacheKey::Frame(b).canonical()
        );
    }

    #[test]
    fn digest_hex_round_trips() {
        let digest = CacheKey::Frame(frame_key()).digest();
        assert_eq!(KeyDigest::from_hex(&digest.to_hex()), Some(digest));
        assert_eq!(KeyDigest::from_hex("abc"), None);
        assert_eq!(KeyDigest::from_hex(&"G".repeat(64)), None);
        assert_eq!(KeyDigest::from_hex(&"AB".repeat(32)), None);
    }
}
