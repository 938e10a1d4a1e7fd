//! A path inside a mirror, validated once so no origin can be walked out of.

use std::fmt;

use percent_encoding::percent_decode_str;

use crate::error::{OriginError, OriginResult};

/// A relative path inside a mirror: decoded segments, none empty, `.` or `..`, none holding `/`
/// or NUL. The root is the empty path. Every origin joins these segments under its own root, so
/// a `RelPath` cannot name anything outside the mirror.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelPath {
    segments: Vec<String>,
}

impl RelPath {
    /// The mirror's root directory.
    pub fn root() -> Self {
        Self::default()
    }

    /// Parses a decoded `/`-separated path (`a/b c/d.mov`, a leading or trailing `/` and repeated
    /// slashes are ignored). `.` and `..` segments and NUL bytes are refused.
    pub fn parse(path: &str) -> OriginResult<Self> {
        let mut segments = Vec::new();
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            Self::check_segment(path, segment)?;
            segments.push(segment.to_owned());
        }
        Ok(Self { segments })
    }

    /// Parses a percent-encoded URL path, decoding each segment after splitting, so an encoded
    /// `%2F` can never smuggle a separator and an encoded `%2E%2E` is still refused.
    pub fn from_url_path(encoded: &str) -> OriginResult<Self> {
        let mut segments = Vec::new();
        for raw in encoded.split('/').filter(|s| !s.is_empty()) {
            let segment =
                percent_decode_str(raw)
                    .decode_utf8()
                    .map_err(|_| OriginError::OutsideMirror {
                        path: encoded.to_owned(),
                        reason: "not UTF-8",
                    })?;
            Self::check_segment(encoded, &segment)?;
            segments.push(segment.into_owned());
        }
        Ok(Self { segments })
    }

    fn check_segment(path: &str, segment: &str) -> OriginResult<()> {
        let reason = if segment == "." || segment == ".." {
            "dot segment"
        } else if segment.contains('/') {
            "encoded slash"
        } else if segment.contains('\0') {
            "NUL byte"
        } else {
            return Ok(());
        };
        Err(OriginError::OutsideMirror {
            path: path.to_owned(),
            reason,
        })
    }

    /// The decoded segments, outermost first.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// True for the mirror's root.
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// True when a segment names a hidden file or directory (`.env`, `.git/…`): such paths are
    /// neither listed nor served (SPEC §3).
    pub fn is_hidden(&self) -> bool {
        self.segments.iter().any(|segment| is_hidden_name(segment))
    }

    /// The last segment (the file's base name); `None` for the root.
    pub fn file_name(&self) -> Option<&str> {
        self.segments.last().map(String::as_str)
    }

    /// The enclosing directory; `None` for the root.
    pub fn parent(&self) -> Option<Self> {
        let (_, init) = self.segments.split_last()?;
        Some(Self {
            segments: init.to_vec(),
        })
    }

    /// This path with one more segment.
    pub fn join(&self, name: &str) -> OriginResult<Self> {
        Self::check_segment(name, name)?;
        if name.is_empty() {
            return Err(OriginError::OutsideMirror {
                path: name.to_owned(),
                reason: "empty name",
            });
        }
        let mut segments = self.segments.clone();
        segments.push(name.to_owned());
        Ok(Self { segments })
    }
}

/// Whether a file or directory name is hidden (begins with `.`).
pub fn is_hidden_name(name: &str) -> bool {
    name.starts_with('.')
}

impl fmt::Display for RelPath {
    /// `a/b/c.mov`, without a leading slash; the root is empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.segments.join("/"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed set-up should fail the test loudly
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises_slashes() {
        let path = RelPath::parse("/a//b c/ü.mov/").unwrap();
        assert_eq!(path.segments(), ["a", "b c", "ü.mov"]);
        assert_eq!(path.to_string(), "a/b c/ü.mov");
        assert_eq!(path.file_name(), Some("ü.mov"));
        assert_eq!(path.parent().unwrap().to_string(), "a/b c");
        assert!(RelPath::parse("/").unwrap().is_root());
        assert!(RelPath::root().parent().is_none());
    }

    #[test]
    fn refuses_dot_segments_and_nul() {
        for bad in ["..", "a/../../etc/passwd", "./a", "a/\0b"] {
            let err = RelPath::parse(bad).unwrap_err();
            assert!(err.is_not_found(), "{bad}: {err}");
        }
    }

    #[test]
    fn decodes_url_paths_segment_by_segment() {
        let path = RelPath::from_url_path("/dir/a%20b%26c.mov").unwrap();
        assert_eq!(path.segments(), ["dir", "a b&c.mov"]);
        for bad in ["/a/%2e%2E/b", "/a%2Fb", "/%00", "/%FF"] {
            assert!(
                RelPath::from_url_path(bad).unwrap_err().is_not_found(),
                "{bad}"
            );
        }
    }

    #[test]
    fn hidden_names_are_recognised_anywhere_in_a_path() {
        for hidden in [".env", "a/.git/config", ".hidden/x.mov"] {
            assert!(RelPath::parse(hidden).unwrap().is_hidden(), "{hidden}");
        }
        assert!(!RelPath::parse("a.b/c.mov").unwrap().is_hidden());
    }

    #[test]
    fn join_refuses_separators() {
        let dir = RelPath::parse("x").unwrap();
        assert_eq!(dir.join("y.mov").unwrap().to_string(), "x/y.mov");
        assert!(dir.join("../y").is_err());
        assert!(dir.join("a/b").is_err());
        assert!(dir.join("").is_err());
    }
}
