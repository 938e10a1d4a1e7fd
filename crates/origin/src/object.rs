//! `gs://` and `s3://` mirrors (and any other object_store backend): list with a delimiter,
//! head, and pinned ranged gets.

use std::error::Error as _;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use lazycache_store::{ClientSettings, Scheme};
use object_store::client::{HttpError, HttpErrorKind};
use object_store::path::{Path as ObjectPath, PathPart};
use object_store::{BackoffConfig, GetOptions, GetRange, ObjectMeta, ObjectStore, RetryConfig};
use url::Url;

use crate::error::{OriginError, OriginResult};
use crate::http::HttpConfig;
use crate::origin::{FileMeta, Listing, Origin};
use crate::relpath::RelPath;

/// A "folder" (key prefix) of an object store.
pub struct ObjectStoreOrigin {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    label: String,
}

impl ObjectStoreOrigin {
    /// The objects under `prefix` (`a/b`, no leading slash needed) of `store`; `label` names it in
    /// messages (a URL, never credentials).
    pub fn new(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        label: impl Into<String>,
    ) -> OriginResult<Self> {
        let prefix = ObjectPath::parse(prefix)
            .map_err(|e| OriginError::config(format!("bad object prefix {prefix:?}: {e}")))?;
        Ok(Self {
            store,
            prefix,
            label: label.into(),
        })
    }

    /// `gs://BUCKET/PREFIX`. Credentials come from the usual Google sources; with
    /// `STORAGE_EMULATOR_HOST` set, the emulator there is used without credentials.
    pub fn gcs(url: &Url, config: &HttpConfig) -> OriginResult<Self> {
        Self::bucket(url, Scheme::Gcs, config)
    }

    /// `s3://BUCKET/PREFIX`, configured from the usual `AWS_*` variables.
    pub fn s3(url: &Url, config: &HttpConfig) -> OriginResult<Self> {
        Self::bucket(url, Scheme::S3, config)
    }

    /// A bucket URL of `scheme`, through lazycache-store's builder with the origin's timeouts
    /// and retries.
    fn bucket(url: &Url, scheme: Scheme, config: &HttpConfig) -> OriginResult<Self> {
        let not_a_bucket = || {
            OriginError::config(format!(
                "{url} is not a {}://BUCKET/PREFIX URL",
                scheme.as_str()
            ))
        };
        if url.scheme() != scheme.as_str() {
            return Err(not_a_bucket());
        }
        let opened = lazycache_store::open(url, &client_settings(config)).map_err(|e| match e {
            lazycache_store::StoreError::NoBucket(_) => not_a_bucket(),
            other => OriginError::config(format!("{}: {other}", display_url(url))),
        })?;
        Ok(Self {
            store: opened.store,
            prefix: opened.location.prefix().clone(),
            label: display_url(url),
        })
    }

    fn key_of(&self, path: &RelPath) -> OriginResult<ObjectPath> {
        let mut key = self.prefix.clone();
        for segment in path.segments() {
            let part = PathPart::parse(segment).map_err(|_| OriginError::OutsideMirror {
                path: path.to_string(),
                reason: "a name no object can have",
            })?;
            key = key.child(part);
        }
        Ok(key)
    }

    fn what(&self, path: &RelPath) -> String {
        format!("{}{path}", self.label)
    }
}

fn display_url(url: &Url) -> String {
    let text = format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.path()
    );
    if text.ends_with('/') {
        text
    } else {
        format!("{text}/")
    }
}

/// The origin's patience: its HTTP timeouts, and its retry policy in object_store's terms.
fn client_settings(config: &HttpConfig) -> ClientSettings {
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: config.retry.base_delay,
            max_backoff: config.retry.max_delay,
            base: 2.0,
        },
        max_retries: config.retry.max_attempts.saturating_sub(1) as usize,
        retry_timeout: config.request_timeout,
    };
    ClientSettings::new(config.connect_timeout, config.request_timeout, retry)
}

fn file_meta(meta: &ObjectMeta) -> FileMeta {
    FileMeta {
        size: meta.size,
        etag: meta.e_tag.clone(),
        last_modified: Some(meta.last_modified.to_rfc3339()),
        from_overlay: false,
    }
}

fn map_error(what: &str, error: object_store::Error) -> OriginError {
    match error {
        object_store::Error::NotFound { .. } => OriginError::not_found(what),
        object_store::Error::Precondition { .. } | object_store::Error::NotModified { .. } => {
            OriginError::changed(what, error.to_string())
        }
        other => {
            let timed_out = std::iter::successors(other.source(), |e| (*e).source())
                .filter_map(|e| e.downcast_ref::<HttpError>())
                .any(|e| e.kind() == HttpErrorKind::Timeout);
            if timed_out {
                OriginError::timeout(what, other.to_string())
            } else {
                OriginError::unavailable(what, other.to_string())
            }
        }
    }
}

#[async_trait]
impl Origin for ObjectStoreOrigin {
    fn describe(&self) -> String {
        self.label.clone()
    }

    async fn list(&self, dir: &RelPath) -> OriginResult<Listing> {
        let what = if dir.is_root() {
            self.label.clone()
        } else {
            format!("{}/", self.what(dir))
        };
        let key = self.key_of(dir)?;
        let prefix = (!key.as_ref().is_empty()).then_some(&key);
        let result = self
            .store
            .list_with_delimiter(prefix)
            .await
            .map_err(|e| map_error(&what, e))?;
        let listing = Listing {
            files: result
                .objects
                .iter()
                .filter_map(|object| object.location.filename().map(str::to_owned))
                .collect(),
            directories: result
                .common_prefixes
                .iter()
                .filter_map(|prefix| prefix.filename().map(str::to_owned))
                .collect(),
        }
        .normalised();
        // Object stores have no directories, only prefixes: an empty one does not exist.
        if !dir.is_root() && listing == Listing::default() {
            return Err(OriginError::not_found(what));
        }
        Ok(listing)
    }

    async fn stat(&self, path: &RelPath) -> OriginResult<FileMeta> {
        let what = self.what(path);
        if path.is_root() {
            return Err(OriginError::not_found(what));
        }
        let meta = self
            .store
            .head(&self.key_of(path)?)
            .await
            .map_err(|e| map_error(&what, e))?;
        Ok(file_meta(&meta))
    }

    async fn read(
        &self,
        path: &RelPath,
        pinned: &FileMeta,
        range: Range<u64>,
    ) -> OriginResult<Bytes> {
        let what = self.what(path);
        let expected = usize::try_from(range.end - range.start)
            .map_err(|_| OriginError::bad_response(&what, "range too large for memory"))?;
        let options = GetOptions {
            range: Some(GetRange::Bounded(range.clone())),
            if_match: pinned.etag.clone(),
            ..GetOptions::default()
        };
        let result = self
            .store
            .get_opts(&self.key_of(path)?, options)
            .await
            .map_err(|e| map_error(&what, e))?;
        let served = file_meta(&result.meta);
        let same_version = served.size == pinned.size
            && match (&pinned.etag, &served.etag) {
                (Some(pinned), Some(served)) => pinned == served,
                _ => served.last_modified == pinned.last_modified,
            };
        if !same_version {
            return Err(OriginError::changed(
                &what,
                format!("{} became {}", pinned.validator(), served.validator()),
            ));
        }
        if result.range != range {
            return Err(OriginError::bad_response(
                &what,
                format!("asked for bytes {range:?}, got {:?}", result.range),
            ));
        }
        let mut body = BytesMut::with_capacity(expected);
        let mut stream = result.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| map_error(&what, e))?;
            if body.len() + chunk.len() > expected {
                return Err(OriginError::bad_response(
                    &what,
                    "body longer than asked for",
                ));
            }
            body.extend_from_slice(&chunk);
        }
        if body.len() != expected {
            return Err(OriginError::bad_response(
                &what,
                format!("short body: {} of {expected} bytes", body.len()),
            ));
        }
        Ok(body.freeze())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed set-up should fail the test loudly
mod tests {
    use super::*;
    use object_store::PutPayload;
    use object_store::memory::InMemory;

    async fn bucket() -> (Arc<InMemory>, ObjectStoreOrigin) {
        let store = Arc::new(InMemory::new());
        for (key, body) in [
            ("root/a.mov", &b"0123456789"[..]),
            ("root/dir/b c & d.mov", b"xy"),
            ("root/dir/deeper/e.mov", b"z"),
            ("rootless.mov", b"outside the prefix"),
        ] {
            store
                .put(
                    &ObjectPath::parse(key).unwrap(),
                    PutPayload::from_static(body),
                )
                .await
                .unwrap();
        }
        let origin = ObjectStoreOrigin::new(store.clone(), "root", "mem://root/").unwrap();
        (store, origin)
    }

    #[tokio::test]
    async fn lists_with_a_delimiter_under_the_prefix() {
        let (_store, origin) = bucket().await;
        let root = origin.list(&RelPath::root()).await.unwrap();
        assert_eq!(root.files, ["a.mov"]);
        assert_eq!(root.directories, ["dir"]);
        let dir = origin.list(&RelPath::parse("dir").unwrap()).await.unwrap();
        assert_eq!(dir.files, ["b c & d.mov"]);
        assert_eq!(dir.directories, ["deeper"]);
        let missing = origin
            .list(&RelPath::parse("nope").unwrap())
            .await
            .unwrap_err();
        assert!(missing.is_not_found());
    }

    #[tokio::test]
    async fn reads_ranges_pinned_to_the_etag() {
        let (store, origin) = bucket().await;
        let path = RelPath::parse("a.mov").unwrap();
        let meta = origin.stat(&path).await.unwrap();
        assert_eq!(meta.size, 10);
        assert!(meta.etag.is_some());
        assert_eq!(&origin.read(&path, &meta, 3..7).await.unwrap()[..], b"3456");
        store
            .put(
                &ObjectPath::parse("root/a.mov").unwrap(),
                PutPayload::from_static(b"9876543210"),
            )
            .await
            .unwrap();
        let err = origin.read(&path, &meta, 3..7).await.unwrap_err();
        assert!(err.is_changed(), "{err}");
        let gone = origin
            .stat(&RelPath::parse("b.mov").unwrap())
            .await
            .unwrap_err();
        assert!(gone.is_not_found());
    }

    #[tokio::test]
    async fn local_file_system_store_works_too() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("m")).unwrap();
        std::fs::write(dir.path().join("m/x.mov"), b"hello world").unwrap();
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let origin = ObjectStoreOrigin::new(Arc::new(store), "", "local:///").unwrap();
        assert_eq!(
            origin.list(&RelPath::root()).await.unwrap().directories,
            ["m"]
        );
        let path = RelPath::parse("m/x.mov").unwrap();
        let meta = origin.stat(&path).await.unwrap();
        assert_eq!(
            &origin.read(&path, &meta, 6..11).await.unwrap()[..],
            b"world"
        );
    }

    #[test]
    fn urls_must_name_a_bucket() {
        let config = HttpConfig::default();
        assert!(ObjectStoreOrigin::s3(&Url::parse("gs://b/x").unwrap(), &config).is_err());
        assert!(ObjectStoreOrigin::gcs(&Url::parse("gs:///x").unwrap(), &config).is_err());
    }
}
