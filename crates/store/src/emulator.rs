//! A GCS emulator's store: everything through object_store, except uploads, which go through
//! the JSON API's multipart upload.
//!
//! object_store's GCS client writes objects with the XML API (`PUT /bucket/object`), which
//! fake-gcs-server (what `STORAGE_EMULATOR_HOST` points at in development and tests) refuses with
//! "invalid uploadType"; it reads, heads, lists and deletes through the XML API fine. Real GCS
//! accepts both forms, so this wrapper is only put in front of an emulator.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

use crate::build::ClientSettings;
use crate::error::StoreError;

/// The name object_store errors from the upload carry.
const STORE: &str = "GCS emulator";

/// `inner` (object_store's GCS client pointed at the emulator) with `put`/`put_opts` through
/// the JSON API. Multipart uploads still go to `inner`; nothing in lazycache makes them.
#[derive(Debug)]
pub(crate) struct GcsEmulatorUploads {
    inner: Arc<dyn ObjectStore>,
    client: reqwest::Client,
    upload_url: String,
    bucket: String,
}

/// Why an upload failed, as the source of an object_store error.
#[derive(Debug, thiserror::Error)]
enum UploadError {
    #[error("upload request failed: {0}")]
    Request(#[from] reqwest::Error),
    #[error("upload refused: HTTP {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("unreadable upload answer: {0}")]
    Answer(#[from] serde_json::Error),
    #[error("an update needs the object's generation (its version)")]
    NoGeneration,
}

impl GcsEmulatorUploads {
    /// Uploads into `bucket` of the emulator at `base_url` (`http://host:port`), bounded by the
    /// settings' timeouts (not retried: callers are caches, and a lost write is a later miss).
    pub(crate) fn new(
        inner: Arc<dyn ObjectStore>,
        base_url: &str,
        bucket: &str,
        settings: &ClientSettings,
    ) -> Result<Self, StoreError> {
        let client = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(settings.connect_timeout)
            .build()
            .map_err(StoreError::UploadClient)?;
        let encoded: String = url::form_urlencoded::byte_serialize(bucket.as_bytes()).collect();
        Ok(Self {
            inner,
            client,
            upload_url: format!(
                "{}/upload/storage/v1/b/{encoded}/o?uploadType=multipart",
                base_url.trim_end_matches('/')
            ),
            bucket: bucket.to_owned(),
        })
    }

    async fn upload(
        &self,
        location: &Path,
        payload: PutPayload,
        options: PutOptions,
    ) -> object_store::Result<PutResult> {
        let mut url = self.upload_url.clone();
        match &options.mode {
            PutMode::Overwrite => {}
            PutMode::Create => url.push_str("&ifGenerationMatch=0"),
            PutMode::Update(version) => {
                let generation = version
                    .version
                    .as_deref()
                    .ok_or_else(|| generic(UploadError::NoGeneration))?;
                let generation: String =
                    url::form_urlencoded::byte_serialize(generation.as_bytes()).collect();
                url.push_str(&format!("&ifGenerationMatch={generation}"));
            }
        }
        let (description, content_type) = describe(location, &options.attributes);
        let body = Bytes::from(payload);
        let boundary = format!("lazycache-{:032x}", rand::random::<u128>());
        let mut request = BytesMut::with_capacity(body.len() + 512);
        request.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{description}\r\n\
                 --{boundary}\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        request.extend_from_slice(&body);
        request.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let response = self
            .client
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/related; boundary={boundary}"),
            )
            .body(request.freeze())
            .send()
            .await
            .map_err(|e| generic(e.into()))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let refused = Box::new(UploadError::Refused {
                status: status.as_u16(),
                body: text.chars().take(300).collect(),
            });
            let path = location.to_string();
            return Err(match (status.as_u16(), &options.mode) {
                (412, PutMode::Create) => object_store::Error::AlreadyExists {
                    path,
                    source: refused,
                },
                (412, _) => object_store::Error::Precondition {
                    path,
                    source: refused,
                },
                (404, _) => object_store::Error::NotFound {
                    path,
                    source: refused,
                },
                _ => object_store::Error::Generic {
                    store: STORE,
                    source: refused,
                },
            });
        }
        let answer = response.bytes().await.map_err(|e| generic(e.into()))?;
        let resource: serde_json::Value =
            serde_json::from_slice(&answer).map_err(|e| generic(e.into()))?;
        let field = |name: &str| resource.get(name).and_then(|v| v.as_str());
        Ok(PutResult {
            // The XML API (and so object_store's head and get) quotes the same value.
            e_tag: field("etag").map(|etag| format!("\"{etag}\"")),
            version: field("generation").map(str::to_owned),
        })
    }
}

/// The JSON API's object resource for `location` with `attributes`, and the content type.
fn describe(location: &Path, attributes: &Attributes) -> (serde_json::Value, String) {
    let mut description = serde_json::Map::new();
    description.insert("name".into(), location.as_ref().into());
    let mut metadata = serde_json::Map::new();
    let mut content_type = "application/octet-stream".to_owned();
    for (attribute, value) in attributes {
        let field = match attribute {
            Attribute::ContentType => {
                content_type = value.to_string();
                "contentType"
            }
            Attribute::ContentDisposition => "contentDisposition",
            Attribute::ContentEncoding => "contentEncoding",
            Attribute::ContentLanguage => "contentLanguage",
            Attribute::CacheControl => "cacheControl",
            Attribute::StorageClass => "storageClass",
            Attribute::Metadata(name) => {
                metadata.insert(name.to_string(), value.to_string().into());
                continue;
            }
            _ => continue,
        };
        description.insert(field.into(), value.to_string().into());
    }
    description.insert("contentType".into(), content_type.clone().into());
    description.insert("metadata".into(), metadata.into());
    (description.into(), content_type)
}

fn generic(error: UploadError) -> object_store::Error {
    object_store::Error::Generic {
        store: STORE,
        source: Box::new(error),
    }
}

impl fmt::Display for GcsEmulatorUploads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GcsEmulator({}, {})", self.bucket, self.inner)
    }
}

#[async_trait]
impl ObjectStore for GcsEmulatorUploads {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.upload(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_range(&self, location: &Path, range: Range<u64>) -> object_store::Result<Bytes> {
        self.inner.get_range(location, range).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    async fn head(&self, location: &Path) -> object_store::Result<ObjectMeta> {
        self.inner.head(location).await
    }

    async fn delete(&self, location: &Path) -> object_store::Result<()> {
        self.inner.delete(location).await
    }

    fn delete_stream<'a>(
        &'a self,
        locations: BoxStream<'a, object_store::Result<Path>>,
    ) -> BoxStream<'a, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.inner.copy(from, to).await
    }

    async fn rename(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.inner.rename(from, to).await
    }

    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.inner.copy_if_not_exists(from, to).await
    }

    async fn rename_if_not_exists(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.inner.rename_if_not_exists(from, to).await
    }
}

#[cfg(test)]
mod tests {
    use object_store::AttributeValue;

    use super::*;

    #[test]
    fn attributes_become_the_object_resource() {
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, AttributeValue::from("image/png"));
        attributes.insert(Attribute::CacheControl, AttributeValue::from("no-store"));
        attributes.insert(
            Attribute::Metadata("lazycache-crc32".into()),
            AttributeValue::from("0badf00d"),
        );
        let (description, content_type) = describe(&Path::from("a/b c"), &attributes);
        assert_eq!(content_type, "image/png");
        assert_eq!(
            description,
            serde_json::json!({
                "name": "a/b c",
                "contentType": "image/png",
                "cacheControl": "no-store",
                "metadata": {"lazycache-crc32": "0badf00d"},
            })
        );
        let (plain, content_type) = describe(&Path::from("x"), &Attributes::new());
        assert_eq!(content_type, "application/octet-stream");
        assert_eq!(plain["metadata"], serde_json::json!({}));
    }
}
