//! The pooled reqwest client of one mirror: rustls, keep-alive, timeouts, redirects confined to
//! the mirror, retries, and reqwest errors turned into [`OriginError`]s.

use std::error::Error as _;

use reqwest::{Client, RequestBuilder, Response, StatusCode, redirect};
use url::Url;

use super::config::HttpConfig;
use crate::error::{OriginError, OriginResult};

/// Builds the client for the mirror at `base`: redirects are followed only while they stay
/// on the same scheme, host and port and under the mirror's path.
pub(crate) fn build_client(base: &Url, config: &HttpConfig) -> OriginResult<Client> {
    let allowed = base.clone();
    let max_redirects = config.max_redirects;
    let policy = redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > max_redirects {
            return attempt.error(format!("more than {max_redirects} redirects"));
        }
        if within_mirror(&allowed, attempt.url()) {
            attempt.follow()
        } else {
            let target = attempt.url().to_string();
            attempt.error(format!("refused redirect to {target}, outside the mirror"))
        }
    });
    Client::builder()
        .user_agent(concat!("lazycache/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(config.connect_timeout)
        .read_timeout(config.read_timeout)
        .timeout(config.request_timeout)
        .pool_max_idle_per_host(config.max_idle_per_host)
        .tcp_keepalive(std::time::Duration::from_secs(60))
        .redirect(policy)
        .build()
        .map_err(|e| OriginError::config(format!("cannot build the HTTP client: {e}")))
}

/// True when `url` is on the mirror's scheme, host and port, under its path.
pub(crate) fn within_mirror(base: &Url, url: &Url) -> bool {
    url.scheme() == base.scheme()
        && url.host_str() == base.host_str()
        && url.port_or_known_default() == base.port_or_known_default()
        && url.path().starts_with(base.path())
}

/// Sends the request `build` makes, again after a jittered pause when the connection failed or
/// the origin answered 5xx, up to the configured number of tries. The last 5xx answer is
/// returned as is for the caller to judge.
pub(crate) async fn send_with_retry(
    config: &HttpConfig,
    what: &str,
    build: impl Fn() -> RequestBuilder,
) -> OriginResult<Response> {
    let mut attempt = 1;
    loop {
        let retry_allowed = attempt < config.retry.max_attempts;
        match build().send().await {
            Ok(response) if response.status().is_server_error() && retry_allowed => {
                tracing::debug!(what, status = %response.status(), attempt, "origin 5xx, retrying");
            }
            Ok(response) => return Ok(response),
            Err(error) if is_retryable(&error) && retry_allowed => {
                tracing::debug!(what, error = %error_chain(&error), attempt, "origin request failed, retrying");
            }
            Err(error) => return Err(map_reqwest_error(what, &error)),
        }
        tokio::time::sleep(config.retry.backoff(attempt)).await;
        attempt += 1;
    }
}

/// Connection failures, and requests that died before an answer (a reset, a closed keep-alive
/// connection), are worth another try; timeouts of an established exchange and refused
/// redirects are not.
fn is_retryable(error: &reqwest::Error) -> bool {
    if error.is_redirect() || error.is_builder() {
        return false;
    }
    error.is_connect() || (error.is_request() && !error.is_timeout())
}

/// The typed error for a failed reqwest call on `what`.
pub(crate) fn map_reqwest_error(what: &str, error: &reqwest::Error) -> OriginError {
    let detail = error_chain(error);
    if error.is_timeout() {
        OriginError::timeout(what, detail)
    } else if error.is_redirect() || error.is_decode() {
        OriginError::bad_response(what, detail)
    } else {
        OriginError::unavailable(what, detail)
    }
}

/// The error and its causes in one line, without the URL (it may carry credentials).
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(&format!(" for url ({url})"), "");
    }
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The typed error for an unexpected status on `what`.
pub(crate) fn status_error(what: &str, status: StatusCode) -> OriginError {
    match status {
        StatusCode::NOT_FOUND | StatusCode::GONE => OriginError::not_found(what),
        status if status.is_server_error() => {
            OriginError::unavailable(what, format!("HTTP {status}"))
        }
        status => OriginError::bad_response(what, format!("unexpected HTTP {status}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed set-up should fail the test loudly
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_within_the_mirror() {
        let base = Url::parse("http://media.example.org/files/").unwrap();
        let ok = Url::parse("http://media.example.org/files/a/b.mov").unwrap();
        assert!(within_mirror(&base, &ok));
        for bad in [
            "http://evil.example.org/files/a.mov",
            "https://media.example.org/files/a.mov",
            "http://media.example.org:8080/files/a.mov",
            "http://media.example.org/other/a.mov",
        ] {
            assert!(!within_mirror(&base, &Url::parse(bad).unwrap()), "{bad}");
        }
    }
}
