//! lazycache-store: the one way to build an object_store client from a `gs://`, `s3://` or
//! `file://` URL, shared by the origin's bucket mirrors and the cache's object-store tier.
//!
//! It knows no frames, caches or origins. [`open`] turns a URL and [`ClientSettings`] into a
//! [`Store`]: the client and the key prefix the URL names. Where credentials and endpoints come
//! from:
//!
//! - `gs://` — with a GCS emulator configured ([`ClientSettings::gcs_emulator`], filled from
//!   `STORAGE_EMULATOR_HOST` by [`ClientSettings::new`]) that emulator over plain HTTP without
//!   credentials, uploads going through its JSON API (fake-gcs-server refuses object_store's);
//!   otherwise the usual Google sources (`GOOGLE_*`, `SERVICE_ACCOUNT`, application default
//!   credentials, the metadata server).
//! - `s3://` — the AWS environment (`AWS_ENDPOINT` / `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`,
//!   `AWS_REGION`, keys, …).
//! - `file:///dir` — object_store's local file store; the directory is the prefix.
//!
//! Timeouts and retries are the caller's ([`ClientSettings`]); they are applied as client
//! configuration keys on top of the environment, never by replacing the client options the
//! environment set.

mod build;
mod emulator;
mod error;
mod location;

pub use build::{ClientSettings, STORAGE_EMULATOR_HOST, Store, gcs_emulator_from_env, open};
pub use error::StoreError;
pub use location::{Scheme, StoreLocation};
