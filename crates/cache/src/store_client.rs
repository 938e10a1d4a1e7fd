//! Building the object_store client for an object-store URL (`gs://`, `s3://`, `file://`),
//! with short timeouts and few retries: the tier is a cache, and a miss is cheap.

use std::sync::Arc;
use std::time::Duration;

use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};
use url::Url;

use crate::object_tier::ObjectStoreOptions;

/// The client for `url`, or why the URL names no store we support.
pub(crate) fn build(
    url: &Url,
    options: &ObjectStoreOptions,
) -> Result<Arc<dyn ObjectStore>, String> {
    let timeout = options.operation_timeout;
    if url.scheme() != "file" && url.host_str().is_none_or(str::is_empty) {
        return Err("no bucket name".into());
    }
    match url.scheme() {
        "gs" => Ok(Arc::new(
            gcs_builder(url, options)
                .build()
                .map_err(|e| e.to_string())?,
        )),
        "s3" => Ok(Arc::new(
            object_store::aws::AmazonS3Builder::from_env()
                .with_url(url.as_str())
                .with_client_options(client_options(timeout))
                .with_retry(retry_config(timeout))
                .build()
                .map_err(|e| e.to_string())?,
        )),
        // Paths are absolute: the URL's path names the directory.
        "file" => Ok(Arc::new(LocalFileSystem::new())),
        other => Err(format!(
            "unsupported scheme `{other}` (use gs://, s3:// or file://)"
        )),
    }
}

fn gcs_builder(url: &Url, options: &ObjectStoreOptions) -> GoogleCloudStorageBuilder {
    let timeout = options.operation_timeout;
    let builder = match &options.gcs_emulator_host {
        // object_store's documented way to reach fake-gcs-server: a service-account key that
        // names the base URL and turns OAuth off, so no credentials are looked for.
        Some(host) => {
            let key = serde_json::json!({
                "gcs_base_url": host.trim_end_matches('/'),
                "disable_oauth": true,
                "client_email": "",
                "private_key": "",
                "private_key_id": "",
            });
            GoogleCloudStorageBuilder::new()
                .with_bucket_name(url.host_str().unwrap_or_default())
                .with_service_account_key(key.to_string())
                .with_client_options(client_options(timeout).with_allow_http(true))
        }
        None => GoogleCloudStorageBuilder::from_env()
            .with_url(url.as_str())
            .with_client_options(client_options(timeout)),
    };
    builder.with_retry(retry_config(timeout))
}

fn client_options(timeout: Duration) -> ClientOptions {
    ClientOptions::new()
        .with_timeout(timeout)
        .with_connect_timeout(timeout.min(Duration::from_secs(3)))
}

/// Few, quick retries inside the operation timeout.
fn retry_config(timeout: Duration) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
            base: 2.0,
        },
        max_retries: 2,
        retry_timeout: timeout,
    }
}
