//! Writes to a GCS emulator through the JSON API's multipart upload.
//!
//! object_store's GCS client writes objects with the XML API (`PUT /bucket/object`), which
//! fake-gcs-server (what `STORAGE_EMULATOR_HOST` points at in development and tests) refuses with
//! "invalid uploadType"; it reads, heads and deletes through the XML API fine. So with an emulator
//! configured, the object-store tier uploads through here and does everything else through
//! object_store. Real GCS accepts both forms; without an emulator object_store does all of it.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use object_store::path::Path as StorePath;
use object_store::{Attribute, Attributes};

/// Uploads objects into one bucket of a GCS emulator.
#[derive(Debug, Clone)]
pub(crate) struct GcsJsonUpload {
    client: reqwest::Client,
    upload_url: String,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum UploadError {
    #[error("cannot build HTTP client: {0}")]
    Client(reqwest::Error),
    #[error("upload request failed: {0}")]
    Request(#[from] reqwest::Error),
    #[error("upload refused: HTTP {status}: {body}")]
    Refused { status: u16, body: String },
}

impl GcsJsonUpload {
    /// An uploader for `bucket` at the emulator's base URL (`http://host:port`).
    pub(crate) fn new(
        emulator: &str,
        bucket: &str,
        timeout: Duration,
    ) -> Result<Self, UploadError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .build()
            .map_err(UploadError::Client)?;
        let bucket: String = url::form_urlencoded::byte_serialize(bucket.as_bytes()).collect();
        Ok(Self {
            client,
            upload_url: format!(
                "{}/upload/storage/v1/b/{bucket}/o?uploadType=multipart",
                emulator.trim_end_matches('/')
            ),
        })
    }

    /// Stores `body` at `location` with the content type and user metadata in `attributes`.
    pub(crate) async fn upload(
        &self,
        location: &StorePath,
        body: Bytes,
        attributes: &Attributes,
    ) -> Result<(), UploadError> {
        let content_type = attributes
            .get(&Attribute::ContentType)
            .map_or("application/octet-stream", |v| v.as_ref());
        let metadata: serde_json::Map<String, serde_json::Value> = attributes
            .iter()
            .filter_map(|(attribute, value)| match attribute {
                Attribute::Metadata(name) => Some((
                    name.to_string(),
                    serde_json::Value::String(value.to_string()),
                )),
                _ => None,
            })
            .collect();
        let description = serde_json::json!({
            "name": location.as_ref(),
            "contentType": content_type,
            "metadata": metadata,
        });
        // A boundary derived from the body's hash cannot occur inside the body in practice.
        let boundary = format!("lazycache-{}", &blake3::hash(&body).to_hex()[..32]);
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
            .post(&self.upload_url)
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/related; boundary={boundary}"),
            )
            .body(request.freeze())
            .send()
            .await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        Err(UploadError::Refused {
            status: status.as_u16(),
            body: body.chars().take(300).collect(),
        })
    }
}
