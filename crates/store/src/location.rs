//! What a store URL names: a scheme, a bucket and a key prefix.

use object_store::path::Path;
use url::Url;

use crate::error::StoreError;

/// The kinds of store a URL can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `gs://BUCKET/PREFIX`: Google Cloud Storage (or its emulator).
    Gcs,
    /// `s3://BUCKET/PREFIX`: Amazon S3 or an S3-compatible endpoint.
    S3,
    /// `file:///DIR`: object_store's local file store.
    File,
}

impl Scheme {
    /// The URL scheme: `gs`, `s3` or `file`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Gcs => "gs",
            Scheme::S3 => "s3",
            Scheme::File => "file",
        }
    }
}

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreLocation {
    scheme: Scheme,
    bucket: Option<String>,
    prefix: Path,
}

impl StoreLocation {
    /// `gs://BUCKET/PREFIX`, `s3://BUCKET/PREFIX` or `file:///DIR`. The prefix is the URL's
    /// path, percent-decoded, without leading or trailing slashes (for `file://`, the directory
    /// relative to `/`, which is how object_store's local store names it). Query and fragment
    /// are ignored.
    pub fn parse(url: &Url) -> Result<Self, StoreError> {
        let scheme = match url.scheme() {
            "gs" => Scheme::Gcs,
            "s3" => Scheme::S3,
            "file" => Scheme::File,
            other => return Err(StoreError::UnsupportedScheme(other.to_owned())),
        };
        let host = url.host_str().unwrap_or_default();
        let bucket = match scheme {
            Scheme::File if host.is_empty() || host == "localhost" => None,
            Scheme::File => return Err(StoreError::RemoteFile(host.to_owned())),
            _ if host.is_empty() => return Err(StoreError::NoBucket(scheme.as_str())),
            _ => Some(host.to_owned()),
        };
        let prefix = Path::from_url_path(url.path())?;
        Ok(Self {
            scheme,
            bucket,
            prefix,
        })
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The bucket; `None` for `file://`.
    pub fn bucket(&self) -> Option<&str> {
        self.bucket.as_deref()
    }

    /// Where the URL's objects live in the store (empty for a whole bucket).
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed set-up should fail the test loudly
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<StoreLocation, StoreError> {
        StoreLocation::parse(&Url::parse(text).unwrap())
    }

    #[test]
    fn buckets_and_prefixes() {
        let gs = parse("gs://frames/lazycache").unwrap();
        assert_eq!(gs.scheme(), Scheme::Gcs);
        assert_eq!(gs.bucket(), Some("frames"));
        assert_eq!(gs.prefix().as_ref(), "lazycache");

        let s3 = parse("s3://bucket/a/b/").unwrap();
        assert_eq!(s3.scheme(), Scheme::S3);
        assert_eq!(s3.bucket(), Some("bucket"));
        assert_eq!(s3.prefix().as_ref(), "a/b", "trailing slash dropped");

        for whole_bucket in ["gs://b", "gs://b/", "s3://b"] {
            assert_eq!(parse(whole_bucket).unwrap().prefix().as_ref(), "");
        }
    }

    #[test]
    fn prefixes_are_percent_decoded() {
        let gs = parse("gs://b/camhd/a%20b%26c/%C3%BC").unwrap();
        assert_eq!(gs.prefix().as_ref(), "camhd/a b&c/ü");
        assert_eq!(gs.prefix().parts().count(), 3);
    }

    #[test]
    fn file_urls_name_a_local_directory() {
        let file = parse("file:///var/cache/lazycache/").unwrap();
        assert_eq!(file.scheme(), Scheme::File);
        assert_eq!(file.bucket(), None);
        assert_eq!(file.prefix().as_ref(), "var/cache/lazycache");
        assert_eq!(
            parse("file://localhost/tmp/x").unwrap().prefix().as_ref(),
            "tmp/x"
        );
        assert!(matches!(
            parse("file://elsewhere/tmp/x"),
            Err(StoreError::RemoteFile(host)) if host == "elsewhere"
        ));
    }

    #[test]
    fn refused_urls() {
        assert!(matches!(parse("gs:///x"), Err(StoreError::NoBucket("gs"))));
        assert!(matches!(parse("s3://"), Err(StoreError::NoBucket("s3"))));
        assert!(matches!(
            parse("ftp://bucket/x"),
            Err(StoreError::UnsupportedScheme(s)) if s == "ftp"
        ));
        assert!(matches!(
            parse("https://storage.googleapis.com/b"),
            Err(StoreError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            parse("gs://b/a//c"),
            Err(StoreError::BadPrefix(_))
        ));
    }
}
