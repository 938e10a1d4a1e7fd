//! Apache and lighttpd directory listings, in those servers' real markup (Apache 2.4
//! mod_autoindex with FancyIndexing, lighttpd 1.4 mod_dirlisting), served over HTTP and read
//! through the HTTP origin. nginx's own pages are covered against a real nginx in nginx.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Reply, TestOrigin};
use lazycache_origin::{HttpConfig, HttpOrigin, Listing, Origin, RelPath};
use url::Url;

/// What Apache 2.4 (Debian, `IndexOptions FancyIndexing HTMLTable`) sends for
/// `/files/RS03ASHS/PN03B/06-CAMHDA301/2016/01/01/`: sort links, an absolute parent link,
/// escaped hrefs (`%20`, `&amp;`, percent-encoded UTF-8), names truncated in the link text.
const APACHE: &str = r#"<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">
<html>
 <head>
  <title>Index of /files/RS03ASHS/PN03B/06-CAMHDA301/2016/01/01</title>
 </head>
 <body>
<h1>Index of /files/RS03ASHS/PN03B/06-CAMHDA301/2016/01/01</h1>
  <table>
   <tr><th valign="top"><img src="/icons/blank.gif" alt="[ICO]"></th><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th><th><a href="?C=S;O=A">Size</a></th><th><a href="?C=D;O=A">Description</a></th></tr>
   <tr><th colspan="5"><hr></th></tr>
<tr><td valign="top"><img src="/icons/back.gif" alt="[PARENTDIR]"></td><td><a href="/files/RS03ASHS/PN03B/06-CAMHDA301/2016/01/">Parent Directory</a></td><td>&nbsp;</td><td align="right">  - </td><td>&nbsp;</td></tr>
<tr><td valign="top"><img src="/icons/movie.gif" alt="[VID]"></td><td><a href="CAMHDA301-20160101T000000Z.mov">CAMHDA301-20160101T000000Z.mov</a></td><td align="right">2016-01-01 00:14  </td><td align="right"> 13G</td><td>&nbsp;</td></tr>
<tr><td valign="top"><img src="/icons/movie.gif" alt="[VID]"></td><td><a href="CAMHDA301-20160101T030000Z.mov">CAMHDA301-20160101T030000Z.mov</a></td><td align="right">2016-01-01 03:14  </td><td align="right"> 13G</td><td>&nbsp;</td></tr>
<tr><td valign="top"><img src="/icons/movie.gif" alt="[VID]"></td><td><a href="deck%20camera%20&amp;%20lights.mov">deck camera &amp; lights.mov</a></td><td align="right">2016-01-01 04:00  </td><td align="right">1.2G</td><td>&nbsp;</td></tr>
<tr><td valign="top"><img src="/icons/movie.gif" alt="[VID]"></td><td><a href="%c3%a9t%c3%a9%20%e6%b5%b7.mov">&eacute;t&eacute; &#28023;.mov</a></td><td align="right">2016-01-01 05:00  </td><td align="right">2.0G</td><td>&nbsp;</td></tr>
<tr><td valign="top"><img src="/icons/movie.gif" alt="[VID]"></td><td><a href="CAMHDA301-20160101T060000Z-with-a-very-long-descriptive-suffix.mov">CAMHDA301-20160101T060000Z-with-a-very-long-..&gt;</a></td><td align="right">2016-01-01 06:14  </td><td align="right"> 13G</td><td>&nbsp;</td></tr>
<tr><td valign="top"><img src="/icons/folder.gif" alt="[DIR]"></td><td><a href="logs/">logs/</a></td><td align="right">2016-01-02 00:00  </td><td align="right">  - </td><td>&nbsp;</td></tr>
<tr><td valign="top"><img src="/icons/folder.gif" alt="[DIR]"></td><td><a href="raw%20frames/">raw frames/</a></td><td align="right">2016-01-02 00:00  </td><td align="right">  - </td><td>&nbsp;</td></tr>
   <tr><th colspan="5"><hr></th></tr>
</table>
<address>Apache/2.4.62 (Debian) Server at rawdata.example.org Port 80</address>
</body></html>
"#;

/// What lighttpd 1.4 mod_dirlisting sends for `/files/`: a table with a `../` row and a
/// trailing `/` after directory links.
const LIGHTTPD: &str = r#"<!DOCTYPE html>
<html>
<head>
<meta charset="UTF-8">
<title>Index of /files/</title>
<style type="text/css">
a, a:active {text-decoration: none; color: blue;}
a:visited {color: #48468F;}
table {margin-left: 12px;}
td.n {text-align: left;} td.m {text-align: left;} td.s {text-align: right;}
</style>
</head>
<body>
<h2>Index of /files/</h2>
<div class="list">
<table summary="Directory Listing" cellpadding="0" cellspacing="0">
<thead><tr><th class="n">Name</th><th class="m">Last Modified</th><th class="s">Size</th><th class="t">Type</th></tr></thead>
<tbody>
<tr class="d"><td class="n"><a href="../">..</a>/</td><td class="m">&nbsp;</td><td class="s">- &nbsp;</td><td class="t">Directory</td></tr>
<tr class="d"><td class="n"><a href="2016/">2016</a>/</td><td class="m">2016-Jan-01 00:00:00</td><td class="s">- &nbsp;</td><td class="t">Directory</td></tr>
<tr class="d"><td class="n"><a href="sp%C3%A4ter%20%26%20mehr/">später &amp; mehr</a>/</td><td class="m">2016-Jan-02 00:00:00</td><td class="s">- &nbsp;</td><td class="t">Directory</td></tr>
<tr><td class="n"><a href="a%20b%20c.mov">a b c.mov</a></td><td class="m">2016-Jan-01 00:14:00</td><td class="s">12.9G</td><td class="t">video/quicktime</td></tr>
<tr><td class="n"><a href="R%26D.mp4">R&amp;D.mp4</a></td><td class="m">2016-Jan-01 00:15:00</td><td class="s">1.1G</td><td class="t">video/mp4</td></tr>
<tr><td class="n"><a href="%E2%98%83.mkv">&#9731;.mkv</a></td><td class="m">2016-Jan-01 00:16:00</td><td class="s">10.0M</td><td class="t">video/x-matroska</td></tr>
</tbody>
</table>
</div>
<div class="foot">lighttpd/1.4.76</div>
</body>
</html>
"#;

async fn list(page: &'static str, dir: &str) -> Listing {
    let server = TestOrigin::start(move |_| {
        Reply::response(
            "200 OK",
            &[("Content-Type", "text/html; charset=utf-8".to_owned())],
            page.as_bytes(),
        )
    })
    .await;
    let base = Url::parse(&format!("{}/files/", server.url)).unwrap();
    let origin = HttpOrigin::new(&base, HttpConfig::default()).unwrap();
    tokio::time::timeout(
        Duration::from_secs(20),
        origin.list(&RelPath::parse(dir).unwrap()),
    )
    .await
    .expect("listing took over 20 s")
    .unwrap()
}

#[tokio::test]
async fn apache_fancy_index() {
    let listing = list(APACHE, "RS03ASHS/PN03B/06-CAMHDA301/2016/01/01").await;
    assert_eq!(
        listing.files,
        [
            "CAMHDA301-20160101T000000Z.mov",
            "CAMHDA301-20160101T030000Z.mov",
            "CAMHDA301-20160101T060000Z-with-a-very-long-descriptive-suffix.mov",
            "deck camera & lights.mov",
            "été 海.mov",
        ]
    );
    assert_eq!(listing.directories, ["logs", "raw frames"]);
}

#[tokio::test]
async fn lighttpd_dirlisting() {
    let listing = list(LIGHTTPD, "").await;
    assert_eq!(listing.files, ["R&D.mp4", "a b c.mov", "☃.mkv"]);
    assert_eq!(listing.directories, ["2016", "später & mehr"]);
}
