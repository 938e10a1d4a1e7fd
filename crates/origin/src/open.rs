//! Building an origin from a URL, and opening one file given as a path or URL (the CLI's
//! `SOURCE`).

use std::path::Path;
use std::sync::Arc;

use percent_encoding::percent_decode_str;
use url::Url;

use crate::error::{OriginError, OriginResult};
use crate::file::FileOrigin;
use crate::http::{HttpConfig, HttpOrigin};
use crate::object::ObjectStoreOrigin;
use crate::origin::Origin;
use crate::pinned::OriginFile;
use crate::range_cache::RangeCache;
use crate::relpath::RelPath;
use crate::spec::{MIRROR_SCHEMES, MirrorSpec, redact_url_text};

/// The origin rooted at `url`: `http(s)://`, `file://`, `gs://` or `s3://`.
pub fn origin_for_url(url: &Url, http: &HttpConfig) -> OriginResult<Arc<dyn Origin>> {
    Ok(match url.scheme() {
        "http" | "https" => Arc::new(HttpOrigin::new(url, http.clone())?),
        "file" => {
            let path = url
                .to_file_path()
                .map_err(|()| OriginError::config(format!("{url} is not a local path")))?;
            Arc::new(FileOrigin::new(path)?)
        }
        "gs" => Arc::new(ObjectStoreOrigin::gcs(url, http)?),
        "s3" => Arc::new(ObjectStoreOrigin::s3(url, http)?),
        scheme => {
            return Err(OriginError::config(format!(
                "{scheme}:// is not a supported origin (http, https, file, gs, s3)"
            )));
        }
    })
}

/// Opens one file named by a local path or an `http(s)://`, `file://`, `gs://` or `s3://`
/// URL: its directory becomes the origin, so nothing outside it is ever requested.
pub async fn open_location(
    location: &str,
    http: &HttpConfig,
    ranges: RangeCache,
) -> OriginResult<OriginFile> {
    let (spec, name) = locate(location)?;
    let origin = origin_for_url(&spec.origin_url(), http)?;
    OriginFile::open(origin, name, ranges).await
}

/// The mirror a local path or URL lies in — its directory — and its name there, so one file
/// can be served like any mirror's (the CLI's `SOURCE`).
pub fn locate(location: &str) -> OriginResult<(MirrorSpec, RelPath)> {
    if location.contains("://") {
        let url = Url::parse(location)
            .map_err(|e| OriginError::config(format!("{:?}: {e}", redact_url_text(location))))?;
        split_url(&url)
    } else {
        split_path(Path::new(location))
    }
}

fn split_url(url: &Url) -> OriginResult<(MirrorSpec, RelPath)> {
    let shown = redact_url_text(url.as_str());
    if url.query().is_some() || url.fragment().is_some() {
        return Err(OriginError::config(format!(
            "{shown}: a query or fragment cannot name a file"
        )));
    }
    let path = url.path();
    let (dir, encoded_name) = path.rsplit_once('/').unwrap_or(("", path));
    let name = percent_decode_str(encoded_name)
        .decode_utf8()
        .map_err(|_| OriginError::config(format!("{shown}: file name is not UTF-8")))?;
    if name.is_empty() {
        return Err(OriginError::config(format!(
            "{shown} names a directory, not a file"
        )));
    }
    let mut parent = url.clone();
    parent.set_path(&format!("{dir}/"));
    let spec = MirrorSpec::new(None, parent.as_str()).map_err(|e| match e {
        OriginError::Config { .. } if !MIRROR_SCHEMES.contains(&url.scheme()) => {
            OriginError::config(format!(
                "{}:// is not a supported origin (http, https, file, gs, s3)",
                url.scheme()
            ))
        }
        other => other,
    })?;
    Ok((spec, RelPath::root().join(&name)?))
}

fn split_path(path: &Path) -> OriginResult<(MirrorSpec, RelPath)> {
    let missing = || OriginError::not_found(path.display().to_string());
    let absolute = std::fs::canonicalize(path).map_err(|_| missing())?;
    let name = absolute
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(missing)?;
    let dir = absolute.parent().ok_or_else(missing)?;
    let url = Url::from_directory_path(dir).map_err(|()| missing())?;
    Ok((
        MirrorSpec::new(None, url.as_str())?,
        RelPath::root().join(name)?,
    ))
}
