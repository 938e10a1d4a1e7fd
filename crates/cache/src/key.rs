//! Cache keys: what a cached value was made from, as the caller names it, in a stable, versioned
//! form and its hash.
//!
//! The cache knows no video: a key is a *kind* (a short name such as `frame`, also the object-store
//! folder of its values) and the caller's named fields — everything that determines the bytes.
//! [`CacheKey::canonical`] renders them unambiguously (length-prefixed fields) behind
//! [`KEY_FORMAT_VERSION`]; its BLAKE3 hash ([`CacheKey::digest`]) names disk files and objects, so
//! user input never becomes a path and a change of rendering never misreads old entries.

use std::fmt::{self, Write as _};

/// Version of the canonical key rendering. Bump it whenever [`CacheKey::canonical`] changes: every
/// digest changes with it, so entries written under the old rendering are simply never found.
/// v2: mirrors are named by their URL without credentials (v1 keys could carry a password).
pub const KEY_FORMAT_VERSION: u32 = 2;

/// What a cached value is: its kind and the canonical rendering of its fields, and what its
/// value must look like (see [`CacheKey::expecting`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    kind: &'static str,
    canonical: String,
    expected: Option<Expected>,
}

/// What the caller knows of a key's value before reading it: its content type and a bound on
/// its size. A shared tier is not trusted to say either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Expected {
    pub content_type: &'static str,
    pub max_bytes: u64,
}

impl CacheKey {
    /// A key of `kind` (lower-case letters and `-`; the object-store folder of its values) made
    /// of `fields`, in the caller's order: `(name, value)` pairs that together determine the
    /// value's bytes.
    pub fn new(kind: &'static str, fields: &[(&str, &str)]) -> Self {
        let mut canonical = String::with_capacity(160);
        let _ = write!(canonical, "lazycache-key/v{KEY_FORMAT_VERSION} {kind}");
        for (name, value) in fields {
            let _ = write!(canonical, " {name}={}:{value}", value.len());
        }
        Self {
            kind,
            canonical,
            expected: None,
        }
    }

    /// The same key, saying that its value is `content_type` and at most `max_bytes` long: the
    /// object-store tier then answers that content type whatever the object's metadata says,
    /// and ignores, unread, an object larger than the bound. Not part of the canonical form.
    pub fn expecting(mut self, content_type: &'static str, max_bytes: u64) -> Self {
        self.expected = Some(Expected {
            content_type,
            max_bytes,
        });
        self
    }

    pub fn expected(&self) -> Option<Expected> {
        self.expected
    }

    /// The key's kind, also the object-store folder of its values.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The stable, unambiguous text form: `lazycache-key/v2 kind` then `name=len:value` fields.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The hash that names this key's disk file and object.
    pub fn digest(&self) -> KeyDigest {
        KeyDigest::of_canonical(&self.canonical)
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

/// BLAKE3 hash of a key's canonical rendering: the name of its disk file and object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyDigest(pub [u8; 32]);

impl KeyDigest {
    /// The digest of a key's canonical form (see [`CacheKey::canonical`]).
    pub fn of_canonical(canonical: &str) -> Self {
        Self(*blake3::hash(canonical.as_bytes()).as_bytes())
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex32(&self.0)
    }

    /// Parses the 64-character lower-case hex form written by [`KeyDigest::to_hex`].
    pub fn from_hex(hex: &str) -> Option<Self> {
        parse_hex32(hex).map(Self)
    }
}

/// 32 bytes (a digest, a signature) as 64 lower-case hex characters.
pub(crate) fn hex32(bytes: &[u8; 32]) -> String {
    let mut hex = String::with_capacity(64);
    for byte in bytes {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// The 32 bytes [`hex32`] wrote; anything else (length, upper case, non-hex) is `None`.
pub(crate) fn parse_hex32(hex: &str) -> Option<[u8; 32]> {
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
    Some(bytes)
}

impl fmt::Display for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[(&str, &str)] = &[
        ("mirror", "camhd"),
        ("path", "RS03ASHS/2016/CAMHDA301-20160101T000000Z.mov"),
        ("frame", "42"),
    ];

    #[test]
    fn canonical_form_is_stable() {
        // This exact string is a compatibility promise: entries on disk and in buckets are named
        // by its hash. Changing it requires bumping KEY_FORMAT_VERSION.
        let key = CacheKey::new("frame", FIELDS);
        assert_eq!(
            key.canonical(),
            "lazycache-key/v2 frame mirror=5:camhd \
             path=44:RS03ASHS/2016/CAMHDA301-20160101T000000Z.mov frame=2:42"
        );
        assert_eq!(key.kind(), "frame");
        assert_eq!(
            key.digest().to_hex(),
            blake3::hash(key.canonical().as_bytes()).to_hex().as_str()
        );
    }

    #[test]
    fn every_field_and_the_kind_change_the_digest() {
        let mut digests = vec![
            CacheKey::new("frame", FIELDS).digest(),
            CacheKey::new("metadata", FIELDS).digest(),
        ];
        for changed in 0..FIELDS.len() {
            let mut fields = FIELDS.to_vec();
            let value = format!("{}x", fields[changed].1);
            fields[changed].1 = &value;
            digests.push(CacheKey::new("frame", &fields).digest());
        }
        digests.push(CacheKey::new("frame", &FIELDS[..2]).digest());
        let count = digests.len();
        digests.sort();
        digests.dedup();
        assert_eq!(digests.len(), count, "two different keys share a digest");
    }

    #[test]
    fn field_boundaries_cannot_be_forged() {
        // Without length prefixes these two would render alike.
        let a = CacheKey::new("frame", &[("mirror", "a path=1:b"), ("path", "c")]);
        let b = CacheKey::new("frame", &[("mirror", "a"), ("path", "b path=1:c")]);
        assert_ne!(a.canonical(), b.canonical());
    }

    #[test]
    fn digest_hex_round_trips() {
        let digest = CacheKey::new("frame", FIELDS).digest();
        assert_eq!(KeyDigest::from_hex(&digest.to_hex()), Some(digest));
        assert_eq!(KeyDigest::from_hex("abc"), None);
        assert_eq!(KeyDigest::from_hex(&"G".repeat(64)), None);
        assert_eq!(KeyDigest::from_hex(&"AB".repeat(32)), None);
    }
}
