//! Why a URL names no store we can build.

/// A store URL refused, or a client object_store could not build. Messages never repeat the
/// URL (callers name it, redacted as they see fit).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not a URL: {0}")]
    NotAUrl(#[from] url::ParseError),
    #[error("unsupported scheme `{0}` (use gs://, s3:// or file://)")]
    UnsupportedScheme(String),
    #[error("no bucket name (use {0}://BUCKET/PREFIX)")]
    NoBucket(&'static str),
    #[error("file:// URLs name a local directory (file:///DIR), not one on host `{0}`")]
    RemoteFile(String),
    #[error("bad prefix: {0}")]
    BadPrefix(#[from] object_store::path::Error),
    #[error("cannot build the client: {0}")]
    Build(#[from] object_store::Error),
    #[error("cannot build the GCS emulator upload client: {0}")]
    UploadClient(#[source] reqwest::Error),
}
