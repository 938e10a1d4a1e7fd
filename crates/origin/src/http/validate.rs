//! Checking that a response belongs to the pinned version and to the range asked for.

use std::ops::Range;

use reqwest::header::{CONTENT_RANGE, ETAG, HeaderMap, LAST_MODIFIED};

use crate::error::{OriginError, OriginResult};
use crate::origin::FileMeta;

/// The validators a response carries.
pub(crate) fn response_meta(headers: &HeaderMap, size: u64) -> FileMeta {
    FileMeta {
        size,
        etag: header_text(headers, ETAG),
        last_modified: header_text(headers, LAST_MODIFIED),
        from_overlay: false,
    }
}

pub(crate) fn header_text(
    headers: &HeaderMap,
    name: reqwest::header::HeaderName,
) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
}

/// Fails `Changed` when a validator the response carries differs from the pinned one.
pub(crate) fn check_same_version(
    pinned: &FileMeta,
    headers: &HeaderMap,
    what: &str,
) -> OriginResult<()> {
    let differs = |name, pinned: &Option<String>| match (pinned, header_text(headers, name)) {
        (Some(pinned), Some(seen)) if *pinned != seen => Some(format!("{pinned} became {seen}")),
        _ => None,
    };
    let change =
        differs(ETAG, &pinned.etag).or_else(|| differs(LAST_MODIFIED, &pinned.last_modified));
    match change {
        Some(detail) => Err(OriginError::changed(what, detail)),
        None => Ok(()),
    }
}

/// Checks a 206 answer's `Content-Range` against the range asked for and the pinned size.
pub(crate) fn check_content_range(
    headers: &HeaderMap,
    asked: &Range<u64>,
    pinned_size: u64,
    what: &str,
) -> OriginResult<()> {
    let text = header_text(headers, CONTENT_RANGE)
        .ok_or_else(|| OriginError::bad_response(what, "206 without Content-Range"))?;
    let (first, last, total) = parse_content_range(&text).ok_or_else(|| {
        OriginError::bad_response(what, format!("unparseable Content-Range {text:?}"))
    })?;
    if let Some(total) = total
        && total != pinned_size
    {
        return Err(OriginError::changed(
            what,
            format!("size {pinned_size} became {total}"),
        ));
    }
    if first != asked.start || last.checked_add(1) != Some(asked.end) {
        return Err(OriginError::bad_response(
            what,
            format!(
                "Content-Range {text:?} for bytes {}-{}",
                asked.start,
                asked.end - 1
            ),
        ));
    }
    Ok(())
}

/// `bytes FIRST-LAST/TOTAL` (TOTAL may be `*`).
fn parse_content_range(text: &str) -> Option<(u64, u64, Option<u64>)> {
    let spec = text.strip_prefix("bytes")?.trim_start();
    let (span, total) = spec.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let first: u64 = first.trim().parse().ok()?;
    let last: u64 = last.trim().parse().ok()?;
    let total = match total.trim() {
        "*" => None,
        digits => Some(digits.parse().ok()?),
    };
    (first <= last).then_some((first, last, total))
}

/// The file size a `Content-Range` announces (`bytes 0-0/12345` → 12345).
pub(crate) fn content_range_total(headers: &HeaderMap) -> Option<u64> {
    parse_content_range(&header_text(headers, CONTENT_RANGE)?)?.2
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed set-up should fail the test loudly
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(reqwest::header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn parses_content_ranges() {
        assert_eq!(
            parse_content_range("bytes 0-99/1000"),
            Some((0, 99, Some(1000)))
        );
        assert_eq!(parse_content_range("bytes 5-5/*"), Some((5, 5, None)));
        for bad in [
            "bytes 9-5/10",
            "items 0-1/2",
            "bytes 0-/10",
            "bytes x-1/2",
            "",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn content_range_must_match_the_request_and_size() {
        let ok = headers(&[(CONTENT_RANGE, "bytes 10-19/100")]);
        assert!(check_content_range(&ok, &(10..20), 100, "f").is_ok());
        let shifted = headers(&[(CONTENT_RANGE, "bytes 0-9/100")]);
        let err = check_content_range(&shifted, &(10..20), 100, "f").unwrap_err();
        assert!(matches!(err, OriginError::BadResponse { .. }), "{err}");
        let resized = headers(&[(CONTENT_RANGE, "bytes 10-19/101")]);
        assert!(
            check_content_range(&resized, &(10..20), 100, "f")
                .unwrap_err()
                .is_changed()
        );
        assert!(check_content_range(&HeaderMap::new(), &(10..20), 100, "f").is_err());
    }

    #[test]
    fn a_different_validator_is_a_change() {
        let pinned = FileMeta {
            size: 5,
            etag: Some("\"a\"".into()),
            last_modified: None,
            from_overlay: false,
        };
        assert!(check_same_version(&pinned, &headers(&[(ETAG, "\"a\"")]), "f").is_ok());
        assert!(check_same_version(&pinned, &HeaderMap::new(), "f").is_ok());
        let err = check_same_version(&pinned, &headers(&[(ETAG, "\"b\"")]), "f").unwrap_err();
        assert!(err.is_changed());
    }
}
