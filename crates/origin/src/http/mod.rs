//! `http(s)://` mirrors: autoindex listings, HEAD for stat, validated range GETs.

mod body;
mod client;
mod config;
mod listing;
mod validate;

use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, IF_RANGE, RANGE};
use reqwest::{Client, Response, StatusCode};
use url::Url;

pub use config::HttpConfig;

use crate::error::{OriginError, OriginResult};
use crate::origin::{FileMeta, Listing, Origin};
use crate::relpath::RelPath;
use client::{build_client, send_with_retry, status_error};
use validate::{
    check_content_range, check_same_version, content_range_total, header_text, response_meta,
};

/// A tree of files on a plain web server, listed from its autoindex pages.
pub struct HttpOrigin {
    base: Url,
    client: Client,
    config: HttpConfig,
}

impl HttpOrigin {
    /// The mirror rooted at `base` (an `http` or `https` URL of a directory; a missing trailing
    /// slash is added). Requests only ever go to this scheme, host and port, under this path.
    pub fn new(base: &Url, config: HttpConfig) -> OriginResult<Self> {
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(OriginError::config(format!(
                "{} is not an http(s) URL with a host",
                redacted(base)
            )));
        }
        let mut base = base.clone();
        base.set_query(None);
        base.set_fragment(None);
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let client = build_client(&base, &config)?;
        Ok(Self {
            base,
            client,
            config,
        })
    }

    /// The URL of `path` under the mirror, each segment percent-encoded; directories end in `/`.
    fn url_of(&self, path: &RelPath, directory: bool) -> Url {
        let mut url = self.base.clone();
        if path.is_root() {
            return url;
        }
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(path.segments());
            if directory {
                segments.push("");
            }
        }
        url
    }

    fn what(&self, path: &RelPath) -> String {
        format!("{}{path}", redacted(&self.base))
    }

    async fn stat_with_range_get(&self, url: &Url, what: &str) -> OriginResult<FileMeta> {
        let response = send_with_retry(&self.config, what, || {
            self.client.get(url.clone()).header(RANGE, "bytes=0-0")
        })
        .await?;
        match response.status() {
            StatusCode::PARTIAL_CONTENT => {
                let size = content_range_total(response.headers()).ok_or_else(|| {
                    OriginError::bad_response(what, "206 without a total size in Content-Range")
                })?;
                Ok(response_meta(response.headers(), size))
            }
            // An empty file has no byte 0 to send.
            StatusCode::RANGE_NOT_SATISFIABLE => Ok(response_meta(response.headers(), 0)),
            status => Err(status_error(what, status)),
        }
    }

    async fn read_whole_file_answer(
        &self,
        response: Response,
        pinned: &FileMeta,
        range: &Range<u64>,
        what: &str,
    ) -> OriginResult<Bytes> {
        check_same_version(pinned, response.headers(), what)?;
        if let Some(size) = response.content_length()
            && size != pinned.size
        {
            return Err(OriginError::changed(
                what,
                format!("size {} became {size}", pinned.size),
            ));
        }
        // A 200 is fine only when the whole file was asked for anyway.
        if range.start != 0 || range.end != pinned.size {
            return Err(OriginError::bad_response(
                what,
                "the origin ignored the Range request and sent the whole file",
            ));
        }
        let expected = usize::try_from(pinned.size)
            .map_err(|_| OriginError::bad_response(what, "file too large for memory"))?;
        body::read_exact(response, expected, what).await
    }
}

fn redacted(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

#[async_trait]
impl Origin for HttpOrigin {
    fn describe(&self) -> String {
        redacted(&self.base)
    }

    async fn list(&self, dir: &RelPath) -> OriginResult<Listing> {
        let url = self.url_of(dir, true);
        let what = redacted(&url);
        let response =
            send_with_retry(&self.config, &what, || self.client.get(url.clone())).await?;
        if response.status() != StatusCode::OK {
            return Err(status_error(&what, response.status()));
        }
        let is_html = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_none_or(|value| value.to_ascii_lowercase().contains("html"));
        if !is_html {
            return Err(OriginError::bad_response(
                &what,
                "directory index is not HTML",
            ));
        }
        let page_url = response.url().clone();
        let html = body::read_bounded(response, self.config.max_listing_bytes, &what).await?;
        Ok(listing::parse_autoindex(
            &String::from_utf8_lossy(&html),
            &page_url,
        ))
    }

    async fn stat(&self, path: &RelPath) -> OriginResult<FileMeta> {
        let what = self.what(path);
        if path.is_root() {
            return Err(OriginError::not_found(what));
        }
        let url = self.url_of(path, false);
        let response =
            send_with_retry(&self.config, &what, || self.client.head(url.clone())).await?;
        if response.url().path().ends_with('/') {
            // Redirected to a directory index: not a file.
            return Err(OriginError::not_found(what));
        }
        match response.status() {
            // From the header: reqwest's content_length() is the (empty) body's for HEAD.
            StatusCode::OK => match header_text(response.headers(), CONTENT_LENGTH)
                .and_then(|text| text.parse().ok())
            {
                Some(size) => Ok(response_meta(response.headers(), size)),
                None => self.stat_with_range_get(&url, &what).await,
            },
            StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED => {
                self.stat_with_range_get(&url, &what).await
            }
            status => Err(status_error(&what, status)),
        }
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
        let url = self.url_of(path, false);
        let range_header = format!("bytes={}-{}", range.start, range.end - 1);
        // If-Range takes a strong ETag or a date; either makes a changed file answer 200 (whole
        // new file), which is recognised below before any of its body is read.
        let if_range = pinned
            .strong_etag()
            .map(str::to_owned)
            .or_else(|| pinned.last_modified.clone());
        let response = send_with_retry(&self.config, &what, || {
            let request = self.client.get(url.clone()).header(RANGE, &range_header);
            match &if_range {
                Some(validator) => request.header(IF_RANGE, validator),
                None => request,
            }
        })
        .await?;
        match response.status() {
            StatusCode::PARTIAL_CONTENT => {
                check_same_version(pinned, response.headers(), &what)?;
                check_content_range(response.headers(), &range, pinned.size, &what)?;
                body::read_exact(response, expected, &what).await
            }
            StatusCode::OK => {
                self.read_whole_file_answer(response, pinned, &range, &what)
                    .await
            }
            StatusCode::PRECONDITION_FAILED | StatusCode::RANGE_NOT_SATISFIABLE => Err(
                OriginError::changed(&what, format!("HTTP {}", response.status())),
            ),
            status => Err(status_error(&what, status)),
        }
    }

    /// `None` for a mirror reached with credentials: clients must not be sent them.
    fn public_url(&self, path: &RelPath) -> Option<Url> {
        let has_credentials = !self.base.username().is_empty() || self.base.password().is_some();
        (!has_credentials).then(|| self.url_of(path, false))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed set-up should fail the test loudly
mod tests {
    use super::*;

    #[test]
    fn urls_encode_each_segment_under_the_base() {
        let origin = HttpOrigin::new(
            &Url::parse("https://h.example/files").unwrap(),
            HttpConfig::default(),
        )
        .unwrap();
        let path = RelPath::parse("a b/c&d%e?#.mov").unwrap();
        assert_eq!(
            origin.url_of(&path, false).as_str(),
            "https://h.example/files/a%20b/c&d%25e%3F%23.mov"
        );
        assert_eq!(
            origin.url_of(&RelPath::parse("x").unwrap(), true).as_str(),
            "https://h.example/files/x/"
        );
        assert_eq!(
            origin.url_of(&RelPath::root(), true).as_str(),
            "https://h.example/files/"
        );
    }

    #[test]
    fn refuses_other_schemes() {
        let err = HttpOrigin::new(
            &Url::parse("ftp://h.example/").unwrap(),
            HttpConfig::default(),
        );
        assert!(matches!(err, Err(OriginError::Config { .. })));
    }

    #[test]
    fn describe_hides_credentials() {
        let url = Url::parse("https://user:secret@h.example/files/").unwrap();
        let origin = HttpOrigin::new(&url, HttpConfig::default()).unwrap();
        assert!(!origin.describe().contains("secret"));
        assert!(
            origin
                .public_url(&RelPath::parse("a.mov").unwrap())
                .is_none()
        );
    }
}
