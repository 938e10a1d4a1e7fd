//! The object-store tier: values as objects in `gs://`, `s3://` or `file://` storage, shared by
//! every instance that points at the same place.
//!
//! Cloud objects are the value's bytes with its Content-Type and a CRC-32 in user metadata,
//! checked on read. object_store's local file store cannot keep a content type, so there each
//! object is the self-describing disk entry format instead. Every operation is bounded by a
//! timeout, so a stalled store costs at most that much before the tier is disabled.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use lazycache_store::{ClientSettings, Scheme};
use object_store::path::Path as StorePath;
use object_store::{
    Attribute, AttributeValue, Attributes, BackoffConfig, ObjectStore, PutOptions, PutPayload,
    RetryConfig,
};
use url::Url;

use crate::envelope;
use crate::error::{CacheError, TierError};
use crate::key::CacheKey;
use crate::metrics::TierMetrics;
use crate::tier::{Tier, TierKind};
use crate::value::CachedValue;

/// User-metadata name of the value's CRC-32 on cloud objects.
const CHECKSUM_METADATA: &str = "lazycache-crc32";

/// How to reach the object store.
#[derive(Debug, Clone)]
pub struct ObjectStoreOptions {
    /// `gs://bucket/prefix`, `s3://bucket/prefix` or `file:///dir`.
    pub url: String,
    /// `http://host:port` (or `host:port`) of a GCS emulator (fake-gcs-server), used without
    /// credentials for `gs://` URLs; [`ObjectStoreOptions::new`] takes it from
    /// `STORAGE_EMULATOR_HOST`.
    pub gcs_emulator_host: Option<String>,
    /// Upper bound of one operation, retries included.
    pub operation_timeout: Duration,
}

impl ObjectStoreOptions {
    /// Options for `url` with `STORAGE_EMULATOR_HOST` honoured and a 10-second timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            gcs_emulator_host: lazycache_store::gcs_emulator_from_env(),
            operation_timeout: Duration::from_secs(10),
        }
    }
}

/// How values are laid out in objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ObjectLayout {
    /// Raw bytes, Content-Type and checksum as object attributes.
    Attributes,
    /// The disk entry envelope (key, content type and checksum inside the object).
    Envelope,
}

/// The object-store tier. Cloning shares the same client.
#[derive(Clone)]
pub struct ObjectStoreTier {
    store: Arc<dyn ObjectStore>,
    prefix: StorePath,
    layout: ObjectLayout,
    url: String,
    timeout: Duration,
    metrics: TierMetrics,
}

impl ObjectStoreTier {
    /// Builds the client; does no I/O (see [`ObjectStoreTier::probe`]). Fails only for a URL
    /// that cannot name a store.
    /// `setting` names the option that gave the URL, for the error.
    pub fn connect(
        options: &ObjectStoreOptions,
        setting: &'static str,
        metrics: TierMetrics,
    ) -> Result<Self, CacheError> {
        let invalid = |reason: String| CacheError::InvalidObjectStore {
            setting,
            url: options.url.clone(),
            reason,
        };
        let url = Url::parse(&options.url).map_err(|e| invalid(e.to_string()))?;
        let timeout = options.operation_timeout;
        let opened = lazycache_store::open(&url, &client_settings(options))
            .map_err(|e| invalid(e.to_string()))?;
        let layout = match opened.location.scheme() {
            Scheme::File => ObjectLayout::Envelope,
            Scheme::Gcs | Scheme::S3 => ObjectLayout::Attributes,
        };
        metrics.available.set(1);
        Ok(Self {
            store: opened.store,
            prefix: opened.location.prefix().clone(),
            layout,
            url: options.url.clone(),
            timeout,
            metrics,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Checks that the store answers (a lookup of an object that does not exist).
    pub async fn probe(&self) -> Result<(), TierError> {
        let path = self.prefix.child("lazycache-probe");
        match self.bounded(self.store.head(&path)).await {
            Ok(_) | Err(TierError::ObjectStore(object_store::Error::NotFound { .. })) => Ok(()),
            Err(error) => Err(error),
        }
    }

    fn object_path(&self, key: &CacheKey) -> StorePath {
        self.prefix.child(key.kind()).child(key.digest().to_hex())
    }

    async fn bounded<T>(
        &self,
        operation: impl Future<Output = object_store::Result<T>>,
    ) -> Result<T, TierError> {
        match tokio::time::timeout(self.timeout, operation).await {
            Ok(result) => result.map_err(TierError::from),
            Err(_) => Err(TierError::TimedOut(self.timeout)),
        }
    }

    async fn fetch(&self, path: &StorePath) -> Result<Option<(Bytes, Attributes)>, TierError> {
        let fetched = self
            .bounded(async {
                let result = self.store.get(path).await?;
                let attributes = result.attributes.clone();
                Ok((result.bytes().await?, attributes))
            })
            .await;
        match fetched {
            Ok(found) => Ok(Some(found)),
            Err(TierError::ObjectStore(object_store::Error::NotFound { .. })) => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn decode(
        &self,
        key: &CacheKey,
        body: Bytes,
        attributes: &Attributes,
    ) -> Result<CachedValue, String> {
        match self.layout {
            ObjectLayout::Envelope => {
                envelope::decode(body, key.canonical()).map_err(|e| e.to_string())
            }
            ObjectLayout::Attributes => {
                let checksum = attributes
                    .get(&Attribute::Metadata(CHECKSUM_METADATA.into()))
                    .ok_or("no checksum metadata")?;
                if checksum.as_ref() != crc32_hex(&body) {
                    return Err("checksum mismatch".into());
                }
                let content_type = attributes
                    .get(&Attribute::ContentType)
                    .ok_or("no content type")?;
                Ok(CachedValue::new(content_type.as_ref(), body))
            }
        }
    }
}

impl Tier for ObjectStoreTier {
    fn kind(&self) -> TierKind {
        TierKind::ObjectStore
    }

    async fn get(&self, key: &CacheKey) -> Result<Option<CachedValue>, TierError> {
        let path = self.object_path(key);
        let Some((body, attributes)) = self.fetch(&path).await? else {
            return Ok(None);
        };
        match self.decode(key, body, &attributes) {
            Ok(value) => Ok(Some(value)),
            Err(problem) => {
                tracing::warn!(object = %path, %problem, "discarding damaged object-store entry");
                self.metrics.corrupt_entries.inc();
                self.remove(key).await?;
                Ok(None)
            }
        }
    }

    async fn put(&self, key: &CacheKey, value: &CachedValue) -> Result<(), TierError> {
        let path = self.object_path(key);
        let (payload, attributes) = match self.layout {
            ObjectLayout::Envelope => (envelope::encode(key.canonical(), value), Attributes::new()),
            ObjectLayout::Attributes => {
                let mut attributes = Attributes::new();
                attributes.insert(
                    Attribute::ContentType,
                    AttributeValue::from(value.content_type().to_owned()),
                );
                attributes.insert(
                    Attribute::Metadata(CHECKSUM_METADATA.into()),
                    AttributeValue::from(crc32_hex(value.bytes())),
                );
                (value.bytes().clone(), attributes)
            }
        };
        let options = PutOptions {
            attributes,
            ..PutOptions::default()
        };
        let put = self
            .store
            .put_opts(&path, PutPayload::from(payload), options);
        self.bounded(put).await.map(|_| ())
    }

    async fn remove(&self, key: &CacheKey) -> Result<(), TierError> {
        match self
            .bounded(self.store.delete(&self.object_path(key)))
            .await
        {
            Ok(()) | Err(TierError::ObjectStore(object_store::Error::NotFound { .. })) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// Short timeouts and few, quick retries inside the operation timeout: the tier is a cache,
/// and a miss is cheap.
fn client_settings(options: &ObjectStoreOptions) -> ClientSettings {
    let timeout = options.operation_timeout;
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
            base: 2.0,
        },
        max_retries: 2,
        retry_timeout: timeout,
    };
    ClientSettings {
        connect_timeout: timeout.min(Duration::from_secs(3)),
        request_timeout: timeout,
        retry,
        gcs_emulator: None,
    }
    .with_gcs_emulator(options.gcs_emulator_host.as_deref())
}

fn crc32_hex(bytes: &[u8]) -> String {
    format!("{:08x}", crc32fast::hash(bytes))
}
