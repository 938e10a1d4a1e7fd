//! Directory listings from autoindex HTML (nginx, Apache, lighttpd), read with a real HTML parser.
//!
//! Rather than knowing each server's markup, every link is resolved against the page's URL and
//! kept only if it names a direct child of the page: `name` is a file, `name/` a directory.
//! Sort links (`?C=N;O=D`), parent links (`../`, `/parent/`) and links elsewhere fall away.

use percent_encoding::percent_decode_str;
use scraper::{Html, Selector};
use url::Url;

use crate::origin::Listing;

/// The files and directories an autoindex page at `page_url` links to.
pub(crate) fn parse_autoindex(html: &str, page_url: &Url) -> Listing {
    let document = Html::parse_document(html);
    let base = base_url(&document, page_url);
    let mut listing = Listing::default();
    let Ok(anchors) = Selector::parse("a[href]") else {
        return listing;
    };
    for anchor in document.select(&anchors) {
        let Some(href) = anchor.value().attr("href") else {
            continue;
        };
        match child_entry(&base, page_url, href.trim()) {
            Some(Entry::File(name)) => listing.files.push(name),
            Some(Entry::Directory(name)) => listing.directories.push(name),
            None => {}
        }
    }
    listing.normalised()
}

/// The page's `<base href>`, when it has one inside the page's own origin; else the page URL.
fn base_url(document: &Html, page_url: &Url) -> Url {
    Selector::parse("base[href]")
        .ok()
        .and_then(|selector| document.select(&selector).next())
        .and_then(|base| base.value().attr("href"))
        .and_then(|href| page_url.join(href.trim()).ok())
        .filter(|url| url.origin() == page_url.origin())
        .unwrap_or_else(|| page_url.clone())
}

enum Entry {
    File(String),
    Directory(String),
}

/// The entry `href` names when it is a direct child of the page's directory.
fn child_entry(base: &Url, page_url: &Url, href: &str) -> Option<Entry> {
    if href.is_empty() || href.starts_with('?') || href.starts_with('#') {
        return None;
    }
    let target = base.join(href).ok()?;
    if target.origin() != page_url.origin() || target.query().is_some() {
        return None;
    }
    let rest = target.path().strip_prefix(page_url.path())?;
    let (encoded, is_dir) = match rest.strip_suffix('/') {
        Some(name) => (name, true),
        None => (rest, false),
    };
    if encoded.is_empty() || encoded.contains('/') {
        return None;
    }
    let name = percent_decode_str(encoded).decode_utf8().ok()?.into_owned();
    if name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return None;
    }
    Some(if is_dir {
        Entry::Directory(name)
    } else {
        Entry::File(name)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed set-up should fail the test loudly
mod tests {
    use super::*;

    fn page(url: &str) -> Url {
        Url::parse(url).unwrap()
    }

    #[test]
    fn ignores_links_outside_the_directory() {
        let html = r##"<html><body>
            <a href="?C=N;O=D">Name</a> <a href="#top">top</a> <a href="../">up</a>
            <a href="/files/">parent</a> <a href="http://other.example/x.mov">elsewhere</a>
            <a href="sub/deeper/x.mov">deep</a> <a href="./">self</a> <a href="mailto:a@b">mail</a>
            <a href="a.mov">a.mov</a> <a href="http://h.example/files/dir/b.mov">abs</a>
            <a href="/files/dir/c/">abs dir</a> <a href="a.mov?download">dl</a>
        </body></html>"##;
        let listing = parse_autoindex(html, &page("http://h.example/files/dir/"));
        assert_eq!(listing.files, ["a.mov", "b.mov"]);
        assert_eq!(listing.directories, ["c"]);
    }

    #[test]
    fn honours_base_href_in_the_same_origin_only() {
        let html = r#"<html><head><base href="/files/dir/"></head>
            <body><a href="x.mov">x</a></body></html>"#;
        let listing = parse_autoindex(html, &page("http://h.example/files/dir/"));
        assert_eq!(listing.files, ["x.mov"]);
        let hostile = r#"<html><head><base href="http://evil.example/files/dir/"></head>
            <body><a href="x.mov">x</a></body></html>"#;
        let listing = parse_autoindex(hostile, &page("http://h.example/files/dir/"));
        assert_eq!(listing.files, ["x.mov"]);
    }

    #[test]
    fn garbage_is_an_empty_listing_not_a_panic() {
        let listing = parse_autoindex("\u{0}<<a href=>>></a", &page("http://h.example/"));
        assert_eq!(listing, Listing::default());
    }
}
