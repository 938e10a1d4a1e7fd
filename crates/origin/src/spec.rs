//! `--mirror [NAME=]URL` and the go-lazycache URL prefix each mirror is served under (SPEC §3).

use std::fmt;
use std::str::FromStr;

use percent_encoding::percent_decode_str;
use url::{Host, Url};

use crate::error::{OriginError, OriginResult};
use crate::relpath::RelPath;

/// The URL schemes a mirror may have.
pub const MIRROR_SCHEMES: &[&str] = &["http", "https", "file", "gs", "s3"];

/// One `--mirror [NAME=]URL`: a tree to serve and the `/v1/` prefix it is served under.
///
/// A user name and password in the URL are kept apart from it: [`MirrorSpec::url`] (shown in
/// `GET /`, logs, errors and cache keys) never carries them; only [`MirrorSpec::origin_url`],
/// which builds the origin's client, does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorSpec {
    /// `NAME` of `NAME=URL`, when given.
    pub name: Option<String>,
    /// The mirror's root without credentials, always ending in `/`.
    pub url: Url,
    credentials: Option<Credentials>,
}

/// A mirror URL's user name and password; its `Debug` shows neither.
#[derive(Clone, PartialEq, Eq)]
struct Credentials {
    username: String,
    password: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(<redacted>)")
    }
}

impl MirrorSpec {
    /// A mirror of `url`, served under `name` if given.
    pub fn new(name: Option<&str>, url: &str) -> OriginResult<Self> {
        if let Some(name) = name {
            check_name(name)?;
        }
        let mut url = parse_mirror_url(url)?;
        let credentials =
            (!url.username().is_empty() || url.password().is_some()).then(|| Credentials {
                username: url.username().to_owned(),
                password: url.password().map(str::to_owned),
            });
        strip_credentials(&mut url);
        Ok(Self {
            name: name.map(str::to_owned),
            url,
            credentials,
        })
    }

    /// The URL the origin's client connects to: [`MirrorSpec::url`] with its credentials.
    /// Never show it.
    pub fn origin_url(&self) -> Url {
        let mut url = self.url.clone();
        if let Some(credentials) = &self.credentials {
            let _ = url.set_username(&credentials.username);
            let _ = url.set_password(credentials.password.as_deref());
        }
        url
    }

    /// Whether the mirror URL carried a user name or password.
    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    /// The prefix after `/v1/` (SPEC §3), ending in `/`: `NAME/` for named mirrors, else
    /// [`url_prefix`] of the URL.
    pub fn prefix(&self) -> String {
        match &self.name {
            Some(name) => format!("{name}/"),
            None => url_prefix(&self.url),
        }
    }

    /// The path inside this mirror that `path_after_v1` (a request path after `/v1/`, still
    /// percent-encoded) names: `None` when it is not under this mirror's prefix, an error when
    /// it is but tries to leave the mirror. Segments are compared decoded, so `%7E` and `~`
    /// match alike.
    pub fn relative_path(&self, path_after_v1: &str) -> Option<OriginResult<RelPath>> {
        let prefix = decoded_segments(&self.prefix());
        let mut rest = path_after_v1.trim_start_matches('/');
        for expected in &prefix {
            let (segment, tail) = rest.split_once('/').unwrap_or((rest, ""));
            if percent_decode_str(segment).decode_utf8().ok()?.as_ref() != expected {
                return None;
            }
            rest = tail.trim_start_matches('/');
        }
        Some(RelPath::from_url_path(rest).and_then(|path| {
            if path.is_hidden() {
                Err(OriginError::OutsideMirror {
                    path: path.to_string(),
                    reason: "hidden name",
                })
            } else {
                Ok(path)
            }
        }))
    }
}

impl FromStr for MirrorSpec {
    type Err = OriginError;

    /// `URL` or `NAME=URL`. An `=` after the URL's `://` belongs to the URL.
    fn from_str(text: &str) -> OriginResult<Self> {
        let text = text.trim();
        match text.split_once('=') {
            Some((name, url)) if !name.contains("://") => Self::new(Some(name.trim()), url.trim()),
            _ => Self::new(None, text),
        }
    }
}

impl fmt::Display for MirrorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name}={}", self.url),
            None => write!(f, "{}", self.url),
        }
    }
}

/// `url` without its user name and password.
fn strip_credentials(url: &mut Url) {
    let _ = url.set_username("");
    let _ = url.set_password(None);
}

/// `text` with the user name and password of a URL in it replaced by `***`, for messages about
/// a URL that may not parse.
pub fn redact_url_text(text: &str) -> String {
    if let Ok(mut url) = Url::parse(text.trim()) {
        if !url.username().is_empty() || url.password().is_some() {
            strip_credentials(&mut url);
            return url.to_string().replacen("://", "://***@", 1);
        }
        return text.to_owned();
    }
    match text.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
                None => text.to_owned(),
            }
        }
        None => text.to_owned(),
    }
}

/// Parses the comma-separated mirror list of `LAZYCACHE_MIRROR`.
pub fn parse_mirror_list(text: &str) -> OriginResult<Vec<MirrorSpec>> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::parse)
        .collect()
}

/// go-lazycache's prefix for a mirror URL, ending in `/`. For http(s): the host's labels
/// reversed, then the path (`https://rawdata.oceanobservatories.org/files/` →
/// `org/oceanobservatories/rawdata/files/`); an IP address stays whole and an explicit port
/// follows the host as `:PORT` (`http://127.0.0.1:8080/m/` → `127.0.0.1:8080/m/`). Other
/// schemes: `<scheme>/<authority>/<path>/` (`gs://bucket/a/` → `gs/bucket/a/`,
/// `file:///data/` → `file/data/`).
pub fn url_prefix(url: &Url) -> String {
    let mut segments: Vec<String> = Vec::new();
    let port = url
        .port()
        .map(|port| format!(":{port}"))
        .unwrap_or_default();
    match url.scheme() {
        "http" | "https" => match url.host() {
            Some(Host::Domain(domain)) => {
                segments.extend(
                    domain
                        .split('.')
                        .rev()
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned),
                );
                if let Some(last) = segments.last_mut() {
                    last.push_str(&port);
                }
            }
            Some(host) => segments.push(format!("{host}{port}")),
            None => {}
        },
        scheme => {
            segments.push(scheme.to_owned());
            if let Some(host) = url.host_str().filter(|h| !h.is_empty()) {
                segments.push(format!("{host}{port}"));
            }
        }
    }
    segments.extend(
        url.path()
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
    );
    let mut prefix = segments.join("/");
    prefix.push('/');
    prefix
}

fn decoded_segments(prefix: &str) -> Vec<String> {
    prefix
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect()
}

fn check_name(name: &str) -> OriginResult<()> {
    let valid = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(OriginError::config(format!(
            "mirror name {name:?} must be letters, digits, '-', '_' or '.'"
        )))
    }
}

/// Checks a mirror URL and gives its path a trailing `/`.
fn parse_mirror_url(text: &str) -> OriginResult<Url> {
    let shown = redact_url_text(text);
    let mut url =
        Url::parse(text).map_err(|e| OriginError::config(format!("mirror URL {shown:?}: {e}")))?;
    let scheme = url.scheme().to_owned();
    if !MIRROR_SCHEMES.contains(&scheme.as_str()) {
        return Err(OriginError::config(format!(
            "mirror URL {shown:?}: scheme must be one of {}",
            MIRROR_SCHEMES.join(", ")
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(OriginError::config(format!(
            "mirror URL {shown:?} must not have a query or fragment"
        )));
    }
    let needs_host = scheme != "file";
    if needs_host && url.host_str().is_none_or(str::is_empty) {
        return Err(OriginError::config(format!(
            "mirror URL {shown:?} needs a host (or bucket)"
        )));
    }
    if scheme == "file"
        && url
            .host_str()
            .is_some_and(|h| !h.is_empty() && h != "localhost")
    {
        return Err(OriginError::config(format!(
            "mirror URL {shown:?}: file URLs name a local path (file:///path)"
        )));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed set-up should fail the test loudly
mod tests {
    use super::*;

    fn prefix(text: &str) -> String {
        text.parse::<MirrorSpec>().unwrap().prefix()
    }

    #[test]
    fn http_hosts_are_reversed_then_the_path() {
        assert_eq!(
            prefix("https://rawdata.oceanobservatories.org/files/"),
            "org/oceanobservatories/rawdata/files/"
        );
        assert_eq!(
            prefix("http://rawdata.oceanobservatories.org/files"),
            "org/oceanobservatories/rawdata/files/"
        );
        assert_eq!(prefix("http://example.org"), "org/example/");
        assert_eq!(
            prefix("http://media.example.org:8080/a/b/"),
            "org/example/media:8080/a/b/"
        );
        assert_eq!(prefix("http://127.0.0.1:8080/m/"), "127.0.0.1:8080/m/");
        assert_eq!(prefix("http://[::1]:81/m/"), "[::1]:81/m/");
    }

    #[test]
    fn other_schemes_keep_scheme_and_authority() {
        assert_eq!(prefix("gs://my-bucket/camhd/"), "gs/my-bucket/camhd/");
        assert_eq!(prefix("s3://bucket"), "s3/bucket/");
        assert_eq!(prefix("file:///data/movies"), "file/data/movies/");
    }

    #[test]
    fn names_replace_the_prefix() {
        let spec: MirrorSpec = "camhd=https://rawdata.oceanobservatories.org/files/"
            .parse()
            .unwrap();
        assert_eq!(spec.name.as_deref(), Some("camhd"));
        assert_eq!(spec.prefix(), "camhd/");
        assert_eq!(
            spec.url.as_str(),
            "https://rawdata.oceanobservatories.org/files/"
        );
        assert_eq!(
            spec.to_string(),
            "camhd=https://rawdata.oceanobservatories.org/files/"
        );
    }

    #[test]
    fn credentials_are_kept_apart_from_the_shown_url() {
        let spec: MirrorSpec = "archive=https://alice:s3cret@h.example/files/"
            .parse()
            .unwrap();
        assert_eq!(spec.url.as_str(), "https://h.example/files/");
        assert!(spec.has_credentials());
        assert_eq!(
            spec.origin_url().as_str(),
            "https://alice:s3cret@h.example/files/"
        );
        for shown in [
            spec.to_string(),
            format!("{spec:?}"),
            spec.prefix(),
            spec.url.to_string(),
        ] {
            assert!(
                !shown.contains("s3cret") && !shown.contains("alice"),
                "{shown}"
            );
        }
        let bad = "http://alice:s3cret@h.example/?q=1"
            .parse::<MirrorSpec>()
            .unwrap_err()
            .to_string();
        assert!(!bad.contains("s3cret"), "{bad}");
        assert_eq!(
            redact_url_text("http://u:p@[bad/x"),
            "http://***@[bad/x".to_owned()
        );
        assert_eq!(redact_url_text("file:///a@b/"), "file:///a@b/");
    }

    #[test]
    fn an_equals_sign_inside_the_url_is_not_a_name() {
        let spec: MirrorSpec = "https://h.example/a=b/".parse().unwrap();
        assert_eq!(spec.name, None);
        assert_eq!(spec.url.path(), "/a=b/");
    }

    #[test]
    fn bad_mirrors_are_refused_with_a_reason() {
        for bad in [
            "ftp://h.example/",
            "not a url",
            "bad name=http://h.example/",
            "..=http://h.example/",
            "=http://h.example/",
            "http://h.example/?q=1",
            "gs:///nobucket",
            "file://remotehost/data",
        ] {
            let err = bad.parse::<MirrorSpec>().unwrap_err();
            assert!(matches!(err, OriginError::Config { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn mirror_lists_split_on_commas() {
        let specs = parse_mirror_list("a=file:///x/, https://h.example/y/ ,").unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[1].prefix(), "example/h/y/");
    }

    #[test]
    fn request_paths_resolve_inside_the_mirror() {
        let spec: MirrorSpec = "https://rawdata.oceanobservatories.org/files/"
            .parse()
            .unwrap();
        let path = spec
            .relative_path("org/oceanobservatories/rawdata/files/RS03/a%20b.mov")
            .unwrap()
            .unwrap();
        assert_eq!(path.segments(), ["RS03", "a b.mov"]);
        assert!(
            spec.relative_path("org/oceanobservatories/rawdata/files")
                .unwrap()
                .unwrap()
                .is_root()
        );
        assert!(
            spec.relative_path("org/oceanobservatories/other/x.mov")
                .is_none()
        );
        assert!(
            spec.relative_path("org/oceanobservatories/rawdata/filesX/x")
                .is_none()
        );
        let escape = spec
            .relative_path("org/oceanobservatories/rawdata/files/../x")
            .unwrap();
        assert!(escape.unwrap_err().is_not_found());
        for hidden in ["files/.env", "files/.git/config", "files/a/%2Essh/id"] {
            let path = format!("org/oceanobservatories/rawdata/{hidden}");
            let refused = spec.relative_path(&path).unwrap();
            assert!(refused.unwrap_err().is_not_found(), "{hidden}");
        }
    }
}
