//! The object-store tier: values as objects in `gs://`, `s3://` or `file://` storage, shared by
//! every instance that points at the same place.
//!
//! Cloud objects are the value's bytes with its Content-Type and a CRC-32 in user metadata,
//! checked on read. object_store's local file store cannot keep a content type, so there each
//! object is the self-describing disk entry format instead. Every operation is bounded by a
//! timeout, so a stalled store costs at most that much before the tier is disabled.
//!
//! A shared bucket is not trusted blindly: a value's content type comes from its key (never from
//! the object), an object larger than its key's bound is ignored unread, an entry that fails its
//! check is a miss — counted, and never deleted, since another instance may see it differently —
//! and with a signing key every entry carries an HMAC-SHA256 over its key and bytes (object
//! metadata, or a trailer after a file entry) without which it is a miss.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use lazycache_store::{ClientSettings, Scheme};
use object_store::path::Path as StorePath;
use object_store::{
    Attribute, AttributeValue, Attributes, BackoffConfig, ObjectStore, PutOptions, PutPayload,
    RetryConfig,
};
use sha2::Sha256;
use url::Url;

use crate::envelope;
use crate::error::{CacheError, TierError};
use crate::key::{CacheKey, hex32, parse_hex32};
use crate::metrics::TierMetrics;
use crate::tier::{Tier, TierKind};
use crate::value::CachedValue;

/// User-metadata name of the value's CRC-32 on cloud objects.
const CHECKSUM_METADATA: &str = "lazycache-crc32";
/// User-metadata name of the entry's HMAC-SHA256 (hex) on cloud objects.
const SIGNATURE_METADATA: &str = "lazycache-hmac-sha256";
/// Content type of a value whose key does not say (no caller of the server does that).
const UNKNOWN_CONTENT_TYPE: &str = "application/octet-stream";
/// Bytes of an HMAC-SHA256.
const SIGNATURE_LEN: usize = 32;

/// `--cache-signing-key`: the secret that signs object-store entries. Never shown. It may hold
/// more than one secret (comma-separated, for a rotation without downtime): entries are signed
/// with the first and accepted when signed with any of them.
#[derive(Clone)]
pub struct SigningKey(Vec<Hmac<Sha256>>);

impl SigningKey {
    /// One secret; refuses an empty one.
    pub fn new(secret: &[u8]) -> Result<Self, CacheError> {
        Self::from_secrets(&[secret])
    }

    /// `new,old,…` as `--cache-signing-key` takes it: blank items are refused.
    pub fn from_list(list: &str) -> Result<Self, CacheError> {
        let secrets: Vec<&[u8]> = list.split(',').map(|s| s.trim().as_bytes()).collect();
        Self::from_secrets(&secrets)
    }

    fn from_secrets(secrets: &[&[u8]]) -> Result<Self, CacheError> {
        let macs = secrets
            .iter()
            .map(|secret| {
                if secret.is_empty() {
                    return Err(CacheError::InvalidSigningKey);
                }
                <Hmac<Sha256> as Mac>::new_from_slice(secret)
                    .map_err(|_| CacheError::InvalidSigningKey)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if macs.is_empty() {
            return Err(CacheError::InvalidSigningKey);
        }
        Ok(Self(macs))
    }

    /// HMAC-SHA256 with `mac`'s secret over the key's canonical form, a zero byte, and the
    /// stored bytes.
    fn mac(mac: &Hmac<Sha256>, key: &CacheKey, bytes: &[u8]) -> Hmac<Sha256> {
        let mut mac = mac.clone();
        mac.update(key.canonical().as_bytes());
        mac.update(&[0]);
        mac.update(bytes);
        mac
    }

    /// Signed with the first secret.
    fn sign(&self, key: &CacheKey, bytes: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut signature = [0; SIGNATURE_LEN];
        if let Some(first) = self.0.first() {
            signature = Self::mac(first, key, bytes).finalize().into_bytes().into();
        }
        signature
    }

    /// Whether any secret made `signature` (each compared in constant time).
    fn verify(&self, key: &CacheKey, bytes: &[u8], signature: &[u8]) -> bool {
        self.0
            .iter()
            .any(|mac| Self::mac(mac, key, bytes).verify_slice(signature).is_ok())
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

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
    /// Sign entries, and take only correctly signed ones.
    pub signing_key: Option<SigningKey>,
}

impl ObjectStoreOptions {
    /// Options for `url` with `STORAGE_EMULATOR_HOST` honoured and a 10-second timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            gcs_emulator_host: lazycache_store::gcs_emulator_from_env(),
            operation_timeout: Duration::from_secs(10),
            signing_key: None,
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
    signing_key: Option<SigningKey>,
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
            signing_key: options.signing_key.clone(),
            metrics,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn metrics(&self) -> &TierMetrics {
        &self.metrics
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

    /// The object at `path`, unless it is missing or larger than `max_bytes` (then not read).
    async fn fetch(&self, path: &StorePath, max_bytes: u64) -> Result<Fetched, TierError> {
        let fetched = self
            .bounded(async {
                let result = self.store.get(path).await?;
                if result.meta.size > max_bytes {
                    return Ok(Fetched::TooLarge(result.meta.size));
                }
                let attributes = result.attributes.clone();
                Ok(Fetched::Found(result.bytes().await?, attributes))
            })
            .await;
        match fetched {
            Err(TierError::ObjectStore(object_store::Error::NotFound { .. })) => {
                Ok(Fetched::Missing)
            }
            other => other,
        }
    }

    /// The value in an object, or why it is not taken.
    fn decode(
        &self,
        key: &CacheKey,
        body: Bytes,
        attributes: &Attributes,
    ) -> Result<CachedValue, String> {
        let content_type = key
            .expected()
            .map_or(UNKNOWN_CONTENT_TYPE, |expected| expected.content_type);
        match self.layout {
            ObjectLayout::Envelope => {
                let body = match &self.signing_key {
                    Some(signing) => {
                        let split = body
                            .len()
                            .checked_sub(SIGNATURE_LEN)
                            .ok_or("no signature")?;
                        let (entry, signature) = (body.slice(..split), body.slice(split..));
                        if !signing.verify(key, &entry, &signature) {
                            return Err("bad or missing signature".into());
                        }
                        entry
                    }
                    None => body,
                };
                let value = envelope::decode(body, key.canonical()).map_err(|e| e.to_string())?;
                Ok(CachedValue::new(content_type, value.bytes().clone()))
            }
            ObjectLayout::Attributes => {
                let checksum = attributes
                    .get(&Attribute::Metadata(CHECKSUM_METADATA.into()))
                    .ok_or("no checksum metadata")?;
                if checksum.as_ref() != crc32_hex(&body) {
                    return Err("checksum mismatch".into());
                }
                if let Some(signing) = &self.signing_key {
                    let signature = attributes
                        .get(&Attribute::Metadata(SIGNATURE_METADATA.into()))
                        .and_then(|hex| parse_hex32(hex.as_ref()))
                        .ok_or("no signature")?;
                    if !signing.verify(key, &body, &signature) {
                        return Err("bad signature".into());
                    }
                }
                Ok(CachedValue::new(content_type, body))
            }
        }
    }
}

/// What a lookup found in the store.
enum Fetched {
    Missing,
    TooLarge(u64),
    Found(Bytes, Attributes),
}

impl Tier for ObjectStoreTier {
    fn kind(&self) -> TierKind {
        TierKind::ObjectStore
    }

    async fn get(&self, key: &CacheKey) -> Result<Option<CachedValue>, TierError> {
        let path = self.object_path(key);
        let max_bytes = key
            .expected()
            .map_or(u64::MAX, |expected| expected.max_bytes);
        let (body, attributes) = match self.fetch(&path, max_bytes).await? {
            Fetched::Missing => return Ok(None),
            Fetched::TooLarge(size) => {
                tracing::warn!(object = %path, size, max_bytes, "ignoring an oversized object-store entry");
                self.metrics.oversized_entries.inc();
                return Ok(None);
            }
            Fetched::Found(body, attributes) => (body, attributes),
        };
        match self.decode(key, body, &attributes) {
            Ok(value) => Ok(Some(value)),
            Err(problem) => {
                // A miss, not a deletion: the entry is shared, and another instance (another
                // version, another signing key) may read it fine.
                tracing::warn!(object = %path, %problem, "ignoring an object-store entry that fails its check");
                self.metrics.corrupt_entries.inc();
                Ok(None)
            }
        }
    }

    async fn put(&self, key: &CacheKey, value: &CachedValue) -> Result<(), TierError> {
        let path = self.object_path(key);
        let (payload, attributes) = match self.layout {
            ObjectLayout::Envelope => {
                let mut entry = envelope::encode(key.canonical(), value);
                if let Some(signing) = &self.signing_key {
                    let signature = signing.sign(key, &entry);
                    entry = [entry, Bytes::copy_from_slice(&signature)].concat().into();
                }
                (entry, Attributes::new())
            }
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
                if let Some(signing) = &self.signing_key {
                    attributes.insert(
                        Attribute::Metadata(SIGNATURE_METADATA.into()),
                        AttributeValue::from(hex32(&signing.sign(key, value.bytes()))),
                    );
                }
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
