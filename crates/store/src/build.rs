//! Building the client for a store URL: the GCS emulator, the Google and AWS environments, and
//! the caller's timeouts and retries.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::{ClientConfigKey, ObjectStore, RetryConfig};
use url::Url;

use crate::emulator::GcsEmulatorUploads;
use crate::error::StoreError;
use crate::location::{Scheme, StoreLocation};

/// The variable Google's client libraries read to talk to a GCS emulator: `http://host:port`
/// (a bare `host:port` means plain HTTP too), used without credentials.
pub const STORAGE_EMULATOR_HOST: &str = "STORAGE_EMULATOR_HOST";

/// How patient a client is. Everything else (credentials, endpoints, proxies, `AWS_ALLOW_HTTP`)
/// comes from the environment.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Longest wait for a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Longest one HTTP request may take, body included. Overrides `AWS_TIMEOUT` and the like.
    pub request_timeout: Duration,
    /// object_store's retries of connection errors, timeouts and 5xx answers.
    pub retry: RetryConfig,
    /// Base URL (`http://host:port`) of a GCS emulator that `gs://` URLs go to, without
    /// credentials. [`ClientSettings::new`] takes it from `STORAGE_EMULATOR_HOST`.
    pub gcs_emulator: Option<String>,
}

impl ClientSettings {
    /// These timeouts and retries, with the GCS emulator `STORAGE_EMULATOR_HOST` names, if any.
    pub fn new(connect_timeout: Duration, request_timeout: Duration, retry: RetryConfig) -> Self {
        Self {
            connect_timeout,
            request_timeout,
            retry,
            gcs_emulator: gcs_emulator_from_env(),
        }
    }

    /// The same settings with this GCS emulator instead (`http://host:port` or `host:port`;
    /// `None` or blank: real GCS), read as `STORAGE_EMULATOR_HOST` is.
    pub fn with_gcs_emulator(mut self, host: Option<&str>) -> Self {
        self.gcs_emulator = host.and_then(emulator_base_url);
        self
    }

    /// Timeouts as client configuration keys: set one by one, they leave whatever else the
    /// environment configured (`AWS_ALLOW_HTTP`, proxies, …) in place, where replacing the
    /// builder's `ClientOptions` would drop it.
    fn client_keys(&self) -> [(ClientConfigKey, String); 2] {
        let millis = |d: Duration| format!("{}ms", d.as_millis());
        [
            (
                ClientConfigKey::ConnectTimeout,
                millis(self.connect_timeout),
            ),
            (ClientConfigKey::Timeout, millis(self.request_timeout)),
        ]
    }
}

/// The GCS emulator `STORAGE_EMULATOR_HOST` names, as a base URL; `None` when unset or blank.
pub fn gcs_emulator_from_env() -> Option<String> {
    std::env::var(STORAGE_EMULATOR_HOST)
        .ok()
        .and_then(|host| emulator_base_url(&host))
}

/// `host:port` → `http://host:port`, as Google's client libraries read the variable; no
/// trailing slash, surrounding blanks ignored.
fn emulator_base_url(host: &str) -> Option<String> {
    let host = host.trim().trim_end_matches('/');
    if host.is_empty() {
        None
    } else if host.contains("://") {
        Some(host.to_owned())
    } else {
        Some(format!("http://{host}"))
    }
}

/// A client and where in it a URL's objects are.
#[derive(Debug, Clone)]
pub struct Store {
    pub store: Arc<dyn ObjectStore>,
    pub location: StoreLocation,
}

/// The client for `url` (`gs://BUCKET/PREFIX`, `s3://BUCKET/PREFIX` or `file:///DIR`). Does no
/// I/O: an unreachable store fails its first request, not this.
pub fn open(url: &Url, settings: &ClientSettings) -> Result<Store, StoreError> {
    let location = StoreLocation::parse(url)?;
    let store: Arc<dyn ObjectStore> = match (location.scheme(), location.bucket()) {
        (Scheme::Gcs, Some(bucket)) => match &settings.gcs_emulator {
            Some(emulator) => gcs_emulator(bucket, emulator, settings)?,
            None => gcs(bucket, settings)?,
        },
        (Scheme::S3, Some(bucket)) => s3(bucket, settings)?,
        // Paths are absolute: the prefix names the directory from `/`.
        (Scheme::File, _) => Arc::new(LocalFileSystem::new()),
        (scheme, None) => return Err(StoreError::NoBucket(scheme.as_str())),
    };
    Ok(Store { store, location })
}

/// Real GCS, with credentials from the usual Google sources.
fn gcs(bucket: &str, settings: &ClientSettings) -> Result<Arc<dyn ObjectStore>, StoreError> {
    let store = settings
        .client_keys()
        .into_iter()
        .fold(
            GoogleCloudStorageBuilder::from_env(),
            |builder, (key, value)| builder.with_config(GoogleConfigKey::Client(key), value),
        )
        .with_bucket_name(bucket)
        .with_retry(settings.retry.clone())
        .build()?;
    Ok(Arc::new(store))
}

/// A GCS emulator at `base_url`, over plain HTTP and without credentials; uploads through its
/// JSON API (see [`GcsEmulatorUploads`]).
fn gcs_emulator(
    bucket: &str,
    base_url: &str,
    settings: &ClientSettings,
) -> Result<Arc<dyn ObjectStore>, StoreError> {
    // object_store's way to an emulator: a service-account key that names the base URL and
    // turns OAuth off (as its own CI does with fake-gcs-server). `new`, not `from_env`: no
    // Google credentials are looked for.
    let key = serde_json::json!({
        "gcs_base_url": base_url,
        "disable_oauth": true,
        "client_email": "",
        "private_key": "",
        "private_key_id": "",
    });
    let inner = settings
        .client_keys()
        .into_iter()
        .chain([(ClientConfigKey::AllowHttp, "true".to_owned())])
        .fold(GoogleCloudStorageBuilder::new(), |builder, (key, value)| {
            builder.with_config(GoogleConfigKey::Client(key), value)
        })
        .with_service_account_key(key.to_string())
        .with_bucket_name(bucket)
        .with_retry(settings.retry.clone())
        .build()?;
    Ok(Arc::new(GcsEmulatorUploads::new(
        Arc::new(inner),
        base_url,
        bucket,
        settings,
    )?))
}

/// S3 or an S3-compatible endpoint, configured from the `AWS_*` variables.
fn s3(bucket: &str, settings: &ClientSettings) -> Result<Arc<dyn ObjectStore>, StoreError> {
    let store = settings
        .client_keys()
        .into_iter()
        .fold(AmazonS3Builder::from_env(), |builder, (key, value)| {
            builder.with_config(AmazonS3ConfigKey::Client(key), value)
        })
        .with_bucket_name(bucket)
        .with_retry(settings.retry.clone())
        .build()?;
    Ok(Arc::new(store))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed set-up should fail the test loudly
mod tests {
    use super::*;

    fn settings() -> ClientSettings {
        ClientSettings {
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(2),
            retry: RetryConfig::default(),
            gcs_emulator: None,
        }
    }

    #[test]
    fn emulator_hosts_read_as_google_libraries_do() {
        let base = |host: &str| settings().with_gcs_emulator(Some(host)).gcs_emulator;
        assert_eq!(
            base("localhost:4443").as_deref(),
            Some("http://localhost:4443")
        );
        assert_eq!(
            base(" http://127.0.0.1:9023/ ").as_deref(),
            Some("http://127.0.0.1:9023")
        );
        assert_eq!(
            base("https://gcs.test").as_deref(),
            Some("https://gcs.test")
        );
        assert_eq!(base("  "), None);
        assert_eq!(settings().with_gcs_emulator(None).gcs_emulator, None);
    }

    #[test]
    fn timeouts_are_keys_in_milliseconds() {
        let keys = settings().client_keys();
        assert_eq!(
            keys[0],
            (ClientConfigKey::ConnectTimeout, "1000ms".to_owned())
        );
        assert_eq!(keys[1], (ClientConfigKey::Timeout, "2000ms".to_owned()));
    }

    #[test]
    fn every_scheme_builds_without_io() {
        let emulated = settings().with_gcs_emulator(Some("127.0.0.1:1"));
        let gs = open(&Url::parse("gs://frames/lazycache").unwrap(), &emulated).unwrap();
        assert_eq!(gs.location.prefix().as_ref(), "lazycache");
        assert!(
            gs.store.to_string().starts_with("GcsEmulator("),
            "{}",
            gs.store
        );
        let file = open(&Url::parse("file:///tmp/lazycache").unwrap(), &settings()).unwrap();
        assert_eq!(file.location.scheme(), Scheme::File);
        assert!(matches!(
            open(&Url::parse("gs:///x").unwrap(), &emulated),
            Err(StoreError::NoBucket("gs"))
        ));
    }
}
