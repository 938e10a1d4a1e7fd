//! Item 4: an origin that misbehaves on purpose (ignores Range, lies in Content-Range, sends
//! short or endless bodies, stalls, resets, answers 5xx or garbage) gets typed errors, bounded
//! retries and no multi-GB reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Reply, Request, TestOrigin, patterned, well_behaved};
use lazycache_origin::{
    HttpConfig, HttpOrigin, Mirror, MirrorSpec, Origin, OriginError, OriginFile, RangeCache,
    RangeCacheConfig, RelPath, RetryPolicy,
};
use url::Url;

const HUGE: u64 = 10 << 30;

fn config() -> HttpConfig {
    HttpConfig {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_millis(400),
        request_timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        },
        ..HttpConfig::default()
    }
}

fn origin_at(server: &TestOrigin) -> Arc<dyn Origin> {
    let base = Url::parse(&format!("{}/m/", server.url)).unwrap();
    Arc::new(HttpOrigin::new(&base, config()).unwrap())
}

async fn open(server: &TestOrigin) -> Result<OriginFile, OriginError> {
    OriginFile::open(
        origin_at(server),
        RelPath::parse("f.mov").unwrap(),
        RangeCache::new(RangeCacheConfig::default()),
    )
    .await
}

/// Every test is bounded: a hang is a failure, not a stuck suite.
async fn bounded<T>(work: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), work)
        .await
        .expect("test took over 30 s")
}

fn head_of_huge(request: &Request) -> Option<Reply> {
    (request.method == "HEAD").then(|| {
        Reply::Raw(
            format!("HTTP/1.1 200 OK\r\nContent-Length: {HUGE}\r\nETag: \"v1\"\r\nConnection: close\r\n\r\n")
                .into_bytes(),
        )
    })
}

#[tokio::test]
async fn a_whole_body_for_a_range_is_refused_without_reading_it() {
    bounded(async {
        let server = TestOrigin::start(|request| {
            head_of_huge(request).unwrap_or_else(|| {
                Reply::Endless(format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {HUGE}\r\nETag: \"v1\"\r\n\r\n"
                ))
            })
        })
        .await;
        let file = open(&server).await.unwrap();
        assert_eq!(file.size(), HUGE);
        let err = file.read(1000..2000).await.unwrap_err();
        assert!(matches!(err, OriginError::BadResponse { .. }), "{err}");
        assert!(err.to_string().contains("ignored the Range"), "{err}");
        assert_eq!(server.requests(), 2, "a 200 answer is not retried");
    })
    .await;
}

#[tokio::test]
async fn a_lying_content_range_is_a_bad_response() {
    bounded(async {
        let body = patterned(100_000);
        let server = TestOrigin::start(move |request| {
            if let Some((first, last)) = request.range() {
                // Shifted by one byte: the right length, the wrong bytes.
                let slice = &body[first as usize + 1..=last as usize + 1];
                return Reply::response(
                    "206 Partial Content",
                    &[(
                        "Content-Range",
                        format!("bytes {}-{}/{}", first + 1, last + 1, body.len()),
                    )],
                    slice,
                );
            }
            well_behaved(request, &body, "\"v1\"")
        })
        .await;
        let err = open(&server).await.unwrap().read(0..10).await.unwrap_err();
        assert!(matches!(err, OriginError::BadResponse { .. }), "{err}");
        assert!(err.to_string().contains("Content-Range"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn a_short_body_is_a_bad_response() {
    bounded(async {
        let body = patterned(100_000);
        let server = TestOrigin::start(move |request| {
            if let Some((first, last)) = request.range() {
                let len = last - first + 1;
                let mut raw = format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Length: {len}\r\nContent-Range: bytes {first}-{last}/{}\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                raw.extend_from_slice(&body[first as usize..first as usize + 100]);
                return Reply::Raw(raw);
            }
            well_behaved(request, &body, "\"v1\"")
        })
        .await;
        let err = open(&server).await.unwrap().read(0..1000).await.unwrap_err();
        assert!(matches!(err, OriginError::BadResponse { .. }), "{err}");
    })
    .await;
}

#[tokio::test]
async fn an_endless_body_for_a_range_is_cut_off() {
    bounded(async {
        let server = TestOrigin::start(|request| {
            head_of_huge(request).unwrap_or_else(|| {
                let (first, last) = request.range().unwrap();
                // Announces the right range, then sends far more, without a Content-Length.
                Reply::Endless(format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {first}-{last}/{HUGE}\r\nETag: \"v1\"\r\n\r\n"
                ))
            })
        })
        .await;
        let err = open(&server).await.unwrap().read(0..10).await.unwrap_err();
        assert!(matches!(err, OriginError::BadResponse { .. }), "{err}");
        assert!(err.to_string().contains("longer"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn a_different_size_or_etag_mid_read_is_a_change() {
    bounded(async {
        let body = patterned(100_000);
        let if_range_seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = if_range_seen.clone();
        let server = TestOrigin::start(move |request| {
            if request.method == "HEAD" {
                return well_behaved(request, &body, "\"v1\"");
            }
            seen.lock()
                .unwrap()
                .push(request.header("if-range").map(str::to_owned));
            // The file was replaced: a new ETag on a correct-looking range.
            well_behaved(request, &body, "\"v2\"")
        })
        .await;
        let err = open(&server).await.unwrap().read(0..10).await.unwrap_err();
        assert!(err.is_changed(), "{err}");
        assert_eq!(*if_range_seen.lock().unwrap(), [Some("\"v1\"".to_owned())]);

        let body = patterned(100_000);
        let grown = TestOrigin::start(move |request| {
            if let Some((first, last)) = request.range() {
                return Reply::response(
                    "206 Partial Content",
                    &[("Content-Range", format!("bytes {first}-{last}/200000"))],
                    &body[first as usize..=last as usize],
                );
            }
            well_behaved(request, &body, "\"v1\"")
        })
        .await;
        let err = open(&grown).await.unwrap().read(0..10).await.unwrap_err();
        assert!(err.is_changed(), "{err}");
    })
    .await;
}

#[tokio::test]
async fn a_failed_if_range_is_a_change_without_reading_the_new_file() {
    bounded(async {
        let server = TestOrigin::start(|request| {
            head_of_huge(request).unwrap_or_else(|| {
                // If-Range no longer matches: the server sends the whole new version.
                Reply::Endless(format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: \"v2\"\r\n\r\n",
                    HUGE + 1
                ))
            })
        })
        .await;
        let err = open(&server).await.unwrap().read(0..10).await.unwrap_err();
        assert!(err.is_changed(), "{err}");
    })
    .await;
}

#[tokio::test]
async fn stalls_time_out() {
    bounded(async {
        let body = patterned(1000);
        let server = TestOrigin::start(move |request| {
            if request.range().is_some() {
                Reply::Stall
            } else {
                well_behaved(request, &body, "\"v1\"")
            }
        })
        .await;
        let err = open(&server).await.unwrap().read(0..10).await.unwrap_err();
        assert!(err.is_timeout(), "{err}");
        assert_eq!(server.requests(), 2, "a timed-out exchange is not retried");

        let body = patterned(1000);
        let mid_body = TestOrigin::start(move |request| {
            if let Some((first, last)) = request.range() {
                Reply::StallAfterHead(format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {first}-{last}/{}\r\n\r\n",
                    last - first + 1,
                    body.len()
                ))
            } else {
                well_behaved(request, &body, "\"v1\"")
            }
        })
        .await;
        let err = open(&mid_body).await.unwrap().read(0..10).await.unwrap_err();
        assert!(err.is_timeout(), "{err}");
    })
    .await;
}

#[tokio::test]
async fn resets_are_retried_a_bounded_number_of_times() {
    bounded(async {
        let body = patterned(1000);
        let server = TestOrigin::start(move |request| match request.method.as_str() {
            "HEAD" => well_behaved(request, &body, "\"v1\""),
            _ => Reply::Reset,
        })
        .await;
        let err = open(&server).await.unwrap().read(0..10).await.unwrap_err();
        assert!(matches!(err, OriginError::Unavailable { .. }), "{err}");
        assert_eq!(server.requests(), 1 + 3, "one HEAD, then three tries");

        let body = patterned(1000);
        let resets = AtomicUsize::new(0);
        let flaky = TestOrigin::start(move |request| {
            if request.method == "GET" && resets.fetch_add(1, Ordering::SeqCst) == 0 {
                Reply::Reset
            } else {
                well_behaved(request, &body, "\"v1\"")
            }
        })
        .await;
        let bytes = open(&flaky).await.unwrap().read(10..20).await.unwrap();
        assert_eq!(&bytes[..], &patterned(1000)[10..20]);
    })
    .await;
}

#[tokio::test]
async fn service_unavailable_is_retried_then_reported() {
    bounded(async {
        let body = patterned(5000);
        let server = TestOrigin::start(move |request| {
            // The first two GETs (requests 1 and 2, after the HEAD) fail.
            if request.method == "GET" && request.number <= 2 {
                Reply::response("503 Service Unavailable", &[], b"busy")
            } else {
                well_behaved(request, &body, "\"v1\"")
            }
        })
        .await;
        let bytes = open(&server).await.unwrap().read(100..200).await.unwrap();
        assert_eq!(&bytes[..], &patterned(5000)[100..200]);
        assert_eq!(server.requests(), 4);

        let down =
            TestOrigin::start(|_| Reply::response("503 Service Unavailable", &[], b"down")).await;
        let err = open(&down).await.unwrap_err();
        assert!(matches!(err, OriginError::Unavailable { .. }), "{err}");
        assert_eq!(down.requests(), 3, "max_attempts tries, no more");
    })
    .await;
}

#[tokio::test]
async fn missing_files_are_not_found_and_not_retried() {
    bounded(async {
        let server = TestOrigin::start(|_| Reply::response("404 Not Found", &[], b"no")).await;
        let err = open(&server).await.unwrap_err();
        assert!(err.is_not_found(), "{err}");
        assert_eq!(server.requests(), 1);
    })
    .await;
}

#[tokio::test]
async fn garbage_is_an_origin_failure() {
    bounded(async {
        let server =
            TestOrigin::start(|_| Reply::Raw(b"SSH-2.0-OpenSSH_9.2\r\n\x00\x01garbage".to_vec()))
                .await;
        let err = open(&server).await.unwrap_err();
        assert!(
            matches!(
                err,
                OriginError::Unavailable { .. } | OriginError::BadResponse { .. }
            ),
            "{err}"
        );
        assert!(!err.is_timeout() && !err.is_not_found());
    })
    .await;
}

#[tokio::test]
async fn redirects_leave_neither_the_host_nor_the_mirror() {
    bounded(async {
        let elsewhere =
            TestOrigin::start(|request| well_behaved(request, b"elsewhere", "\"x\"")).await;
        let target = format!("{}/m/f.mov", elsewhere.url);
        let off_host = TestOrigin::start(move |_| {
            Reply::response("302 Found", &[("Location", target.clone())], b"")
        })
        .await;
        let err = open(&off_host).await.unwrap_err();
        assert!(matches!(err, OriginError::BadResponse { .. }), "{err}");
        assert_eq!(
            elsewhere.requests(),
            0,
            "no request to a host not configured"
        );

        let body = patterned(3000);
        let moved = TestOrigin::start(move |request| match request.path.as_str() {
            "/m/f.mov" => {
                Reply::response("301 Moved", &[("Location", "/m/new/f.mov".to_owned())], b"")
            }
            "/m/new/f.mov" => well_behaved(request, &body, "\"v1\""),
            _ => Reply::response(
                "302 Found",
                &[("Location", "/outside/f.mov".to_owned())],
                b"",
            ),
        })
        .await;
        let file = open(&moved).await.unwrap();
        assert_eq!(file.size(), 3000);
        assert_eq!(&file.read(5..9).await.unwrap()[..], &patterned(3000)[5..9]);

        let out_of_mirror = TestOrigin::start(|request| match request.path.as_str() {
            "/m/f.mov" => Reply::response(
                "302 Found",
                &[("Location", "/outside/f.mov".to_owned())],
                b"",
            ),
            _ => well_behaved(request, b"outside", "\"o\""),
        })
        .await;
        let err = open(&out_of_mirror).await.unwrap_err();
        assert!(matches!(err, OriginError::BadResponse { .. }), "{err}");
        assert_eq!(
            out_of_mirror.requests(),
            1,
            "the path outside the mirror is never asked for"
        );
    })
    .await;
}

#[tokio::test]
async fn listings_are_cached_for_the_listing_ttl() {
    bounded(async {
        let page = r#"<html><body><a href="a.mov">a.mov</a><a href="d/">d/</a></body></html>"#;
        let server = TestOrigin::start(move |_| {
            Reply::response(
                "200 OK",
                &[("Content-Type", "text/html".to_owned())],
                page.as_bytes(),
            )
        })
        .await;
        let spec: MirrorSpec = format!("{}/m/", server.url).parse().unwrap();
        let ranges = RangeCache::new(RangeCacheConfig::default());
        let ttl = Duration::from_millis(300);
        let mirror = Mirror::with_origin(spec, origin_at(&server), ranges.clone(), ttl);
        let root = RelPath::root();
        let readers: Vec<_> = (0..10).map(|_| mirror.list(&root)).collect();
        for listing in futures::future::join_all(readers).await {
            let listing = listing.unwrap();
            assert_eq!(listing.files, ["a.mov"]);
            assert_eq!(listing.directories, ["d"]);
        }
        assert_eq!(
            server.requests(),
            1,
            "concurrent and repeated listings share one request"
        );
        tokio::time::sleep(ttl * 3).await;
        mirror.list(&RelPath::root()).await.unwrap();
        assert_eq!(server.requests(), 2, "an expired listing is fetched again");
        assert_eq!(ranges.stats().list_requests, 2);
    })
    .await;
}

#[tokio::test]
async fn a_huge_listing_page_is_refused() {
    bounded(async {
        let server = TestOrigin::start(|_| {
            Reply::Endless("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n".to_owned())
        })
        .await;
        let origin = HttpOrigin::new(
            &Url::parse(&format!("{}/m/", server.url)).unwrap(),
            HttpConfig {
                max_listing_bytes: 1 << 20,
                ..config()
            },
        )
        .unwrap();
        let err = origin.list(&RelPath::root()).await.unwrap_err();
        assert!(matches!(err, OriginError::BadResponse { .. }), "{err}");
    })
    .await;
}

#[tokio::test]
async fn servers_refusing_head_are_statted_with_a_one_byte_range() {
    bounded(async {
        let body = patterned(70_000);
        let server = TestOrigin::start(move |request| match request.method.as_str() {
            "HEAD" => Reply::response("405 Method Not Allowed", &[], b""),
            _ => well_behaved(request, &body, "\"v1\""),
        })
        .await;
        let file = open(&server).await.unwrap();
        assert_eq!(file.size(), 70_000);
        assert_eq!(file.meta().etag.as_deref(), Some("\"v1\""));
        assert_eq!(
            &file.read(69_990..70_000).await.unwrap()[..],
            &patterned(70_000)[69_990..]
        );
    })
    .await;
}
