//! The HTTP origin against a real nginx (autoindex on) serving the media fixtures; its access
//! log (`$http_range`, `$body_bytes_sent`) is the proof of what the origin was asked for.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use lazycache_origin::{
    HttpConfig, Mirror, MirrorSpec, OriginConfig, OriginError, RangeCache, RangeCacheConfig,
    RelPath,
};
use lazycache_testkit::fixtures;
use lazycache_testkit::nginx::{AccessLogEntry, Nginx};

const PRORES: &str = "prores_hq_1080p.mov";
const LONG_NAME: &str = "a very long file name that nginx truncates in the link text.mov";

/// A served folder: the ProRes fixture, odd names, a file the tests may replace.
struct Site {
    root: tempfile::TempDir,
    nginx: Nginx,
}

impl Site {
    fn start() -> Self {
        let root = tempfile::tempdir().unwrap();
        let movies = root.path().join("movies");
        std::fs::create_dir_all(movies.join("sub dir")).unwrap();
        std::os::unix::fs::symlink(fixtures::path(PRORES), movies.join(PRORES)).unwrap();
        for name in [
            "a b & c.mov",
            "ünïcödé 海.mov",
            "100%.mov",
            LONG_NAME,
            ".hidden.mov",
        ] {
            std::fs::write(movies.join(name), name.as_bytes()).unwrap();
        }
        std::fs::write(root.path().join("changing.bin"), vec![1u8; 200_000]).unwrap();
        let nginx = Nginx::serve(root.path());
        Self { root, nginx }
    }

    fn mirror(&self, ranges: &RangeCache) -> Mirror {
        let spec: MirrorSpec = format!("{}/", self.nginx.url).parse().unwrap();
        Mirror::open(spec, &OriginConfig::default(), ranges.clone()).unwrap()
    }

    /// GET requests for `uri` logged since the last clear.
    fn gets(&self, uri: &str) -> Vec<AccessLogEntry> {
        self.nginx
            .access_log()
            .into_iter()
            .filter(|entry| entry.method == "GET" && entry.uri == uri)
            .collect()
    }
}

fn cache() -> RangeCache {
    RangeCache::new(RangeCacheConfig::default())
}

async fn bounded<T>(work: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), work)
        .await
        .expect("test took over 60 s")
}

/// (offset, size) of every video sample, from ffprobe: the index the decoder would know.
fn video_samples(path: &Path) -> Vec<(u64, u64)> {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pos,size",
        ])
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    assert!(output.status.success(), "ffprobe failed");
    let text = String::from_utf8(output.stdout).unwrap();
    let field = |line: &str, key: &str| line.strip_prefix(key).map(|v| v.parse::<u64>().unwrap());
    let mut samples = Vec::new();
    let mut size = None;
    for line in text.lines() {
        if let Some(s) = field(line, "size=") {
            size = Some(s);
        } else if let Some(pos) = field(line, "pos=") {
            samples.push((pos, size.take().expect("size before pos")));
        }
    }
    assert!(
        samples.len() > 10,
        "ffprobe listed {} samples",
        samples.len()
    );
    samples
}

fn file_bytes(path: &Path, range: std::ops::Range<u64>) -> Vec<u8> {
    std::fs::read(path).unwrap()[range.start as usize..range.end as usize].to_vec()
}

fn body_bytes(entries: &[AccessLogEntry]) -> u64 {
    entries.iter().map(|e| e.body_bytes_sent).sum()
}

#[tokio::test]
async fn lists_nginx_autoindex_pages_with_odd_names() {
    let site = Site::start();
    bounded(async {
        let mirror = site.mirror(&cache());
        let root = mirror.list(&RelPath::root()).await.unwrap();
        assert_eq!(root.files, ["changing.bin"]);
        assert_eq!(root.directories, ["movies"]);
        let movies = mirror
            .list(&RelPath::parse("movies").unwrap())
            .await
            .unwrap();
        let mut expected = vec![
            "100%.mov",
            "a b & c.mov",
            LONG_NAME,
            PRORES,
            "ünïcödé 海.mov",
        ];
        expected.sort();
        assert_eq!(movies.files, expected);
        assert_eq!(movies.directories, ["sub dir"]);
        assert!(
            mirror
                .list(&RelPath::parse("movies/sub dir").unwrap())
                .await
                .unwrap()
                .files
                .is_empty()
        );
        let missing = mirror
            .list(&RelPath::parse("nope").unwrap())
            .await
            .unwrap_err();
        assert!(missing.is_not_found(), "{missing}");
    })
    .await;
}

#[tokio::test]
async fn stats_and_reads_match_the_files() {
    let site = Site::start();
    bounded(async {
        let mirror = site.mirror(&cache());
        for name in ["a b & c.mov", "ünïcödé 海.mov", "100%.mov", LONG_NAME] {
            let path = RelPath::parse(&format!("movies/{name}")).unwrap();
            let file = mirror.open_file(&path).await.unwrap();
            assert_eq!(file.size(), name.len() as u64);
            assert!(file.meta().etag.is_some() && file.meta().last_modified.is_some());
            assert_eq!(
                &file.read_at(0, 1 << 20).await.unwrap()[..],
                name.as_bytes(),
                "{name}"
            );
            assert!(
                file.read_at(name.len() as u64, 10)
                    .await
                    .unwrap()
                    .is_empty()
            );
        }
        let prores = fixtures::path(PRORES);
        let file = mirror
            .open_file(&RelPath::parse(&format!("movies/{PRORES}")).unwrap())
            .await
            .unwrap();
        assert_eq!(file.size(), std::fs::metadata(&prores).unwrap().len());
        for range in [0..16, 100_000..300_123, file.size() - 5000..file.size()] {
            let bytes = file.read(range.clone()).await.unwrap();
            assert_eq!(&bytes[..], &file_bytes(&prores, range)[..]);
        }
        for missing in ["movies/nope.mov", "movies/sub dir", "movies/.hidden.mov/x"] {
            let err = mirror
                .open_file(&RelPath::parse(missing).unwrap())
                .await
                .unwrap_err();
            assert!(err.is_not_found(), "{missing}: {err}");
        }
        let url = mirror
            .public_url(&RelPath::parse("movies/a b & c.mov").unwrap())
            .unwrap();
        assert_eq!(
            url.as_str(),
            format!("{}/movies/a%20b%20&%20c.mov", site.nginx.url)
        );
    })
    .await;
}

/// SPEC §4: once the index is known, a cold frame of an intra-only codec reads at most
/// 1.25 × its sample size + 64 KiB from the origin — whether the sample is read in one call
/// or, as FFmpeg's I/O buffer would, in 32 KiB pieces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_prores_frame_reads_at_most_a_quarter_more_than_its_sample() {
    let site = Site::start();
    bounded(async {
        let prores = fixtures::path(PRORES);
        let samples = video_samples(&prores);
        let uri = format!("/movies/{PRORES}");
        let path = RelPath::parse(&uri).unwrap();
        let picks = [0, samples.len() / 2, samples.len() - 1];
        for (pick, chunked) in picks.iter().flat_map(|&p| [(p, false), (p, true)]) {
            let (pos, size) = samples[pick];
            let mirror = site.mirror(&cache()); // cold: a fresh range cache
            let file = mirror.open_file(&path).await.unwrap();
            site.nginx.clear_access_log();
            let bytes = if chunked {
                let mut out = Vec::new();
                let mut offset = pos;
                while offset < pos + size {
                    let len = (pos + size - offset).min(32 << 10);
                    out.extend_from_slice(&file.read(offset..offset + len).await.unwrap());
                    offset += len;
                }
                out
            } else {
                file.read(pos..pos + size).await.unwrap().to_vec()
            };
            assert_eq!(bytes, file_bytes(&prores, pos..pos + size));
            let read = body_bytes(&site.gets(&uri));
            let bound = size + size / 4 + (64 << 10);
            eprintln!("sample {pick} ({size} bytes, chunked={chunked}): {read} origin bytes, bound {bound}");
            assert!(read >= size && read <= bound, "sample {pick}: {read} > {bound}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_readers_of_one_frame_share_one_origin_request() {
    let site = Site::start();
    bounded(async {
        let prores = fixtures::path(PRORES);
        let (pos, size) = video_samples(&prores)[10];
        let uri = format!("/movies/{PRORES}");
        let mirror = Arc::new(site.mirror(&cache()));
        site.nginx.clear_access_log();
        let start = Arc::new(tokio::sync::Barrier::new(50));
        let readers: Vec<_> = (0..50)
            .map(|_| {
                let (mirror, start, uri) = (mirror.clone(), start.clone(), uri.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    let file = mirror
                        .open_file(&RelPath::parse(&uri).unwrap())
                        .await
                        .unwrap();
                    file.read(pos..pos + size).await.unwrap()
                })
            })
            .collect();
        let expected = file_bytes(&prores, pos..pos + size);
        for reader in readers {
            assert_eq!(&reader.await.unwrap()[..], &expected[..]);
        }
        let log = site.nginx.access_log();
        let heads = log.iter().filter(|e| e.method == "HEAD").count();
        let gets = site.gets(&uri);
        eprintln!("50 readers: {heads} HEAD, {} GET {:?}", gets.len(), gets);
        assert_eq!(heads, 1, "one stat for all readers");
        assert_eq!(gets.len(), 1, "one range request for all readers");
        assert!(gets[0].range.is_some());
        assert_eq!(mirror.ranges().stats().range_requests, 1);
    })
    .await;
}

/// Reads a QuickTime file's top-level atoms the way a demuxer probes it: the 8–16 byte atom
/// headers, skipping over `mdat`, then the whole `moov`. Returns the moov's size.
async fn probe_moov(file: &lazycache_origin::OriginFile) -> u64 {
    let mut offset = 0;
    while offset < file.size() {
        let header = file.read_at(offset, 16).await.unwrap();
        let mut size = u64::from(u32::from_be_bytes(header[0..4].try_into().unwrap()));
        let kind = &header[4..8];
        if size == 1 {
            size = u64::from_be_bytes(header[8..16].try_into().unwrap());
        } else if size == 0 {
            size = file.size() - offset;
        }
        if kind == b"moov" {
            let moov = file.read_at(offset, size as usize).await.unwrap();
            assert_eq!(moov.len() as u64, size);
            return size;
        }
        offset += size;
    }
    panic!("no moov atom");
}

#[tokio::test]
async fn probing_a_moov_at_end_movie_reads_well_under_one_percent_of_it() {
    let site = Site::start();
    bounded(async {
        let uri = format!("/movies/{PRORES}");
        let mirror = site.mirror(&cache());
        let file = mirror
            .open_file(&RelPath::parse(&uri).unwrap())
            .await
            .unwrap();
        site.nginx.clear_access_log();
        let moov = probe_moov(&file).await;
        let gets = site.gets(&uri);
        let read = body_bytes(&gets);
        eprintln!(
            "probe: moov {moov} bytes, {read} origin bytes in {} requests = {:.3}% of {} bytes",
            gets.len(),
            read as f64 * 100.0 / file.size() as f64,
            file.size()
        );
        assert!(
            read * 100 < file.size(),
            "probe read {read} of {}",
            file.size()
        );
        assert!(
            read <= moov + 4 * (32 << 10),
            "probe read {read} for a {moov}-byte moov"
        );
    })
    .await;
}

#[tokio::test]
async fn a_file_replaced_at_the_origin_fails_as_changed_then_reopens() {
    let site = Site::start();
    bounded(async {
        let ranges = cache();
        let mirror = site.mirror(&ranges);
        let path = RelPath::parse("changing.bin").unwrap();
        let file = mirror.open_file(&path).await.unwrap();
        assert_eq!(&file.read(0..10).await.unwrap()[..], &[1u8; 10]);
        // Replace it: another size and another mtime, so nginx's ETag changes.
        let local: PathBuf = site.root.path().join("changing.bin");
        std::fs::write(&local, vec![2u8; 300_000]).unwrap();
        let later = std::time::SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&local)
            .unwrap()
            .set_modified(later)
            .unwrap();
        let err = file.read(100_000..100_010).await.unwrap_err();
        assert!(matches!(err, OriginError::Changed { .. }), "{err}");
        // The bytes already cached stay of the old version and are still consistent with it.
        assert_eq!(&file.read(0..10).await.unwrap()[..], &[1u8; 10]);
        // The changed read dropped the cached validator: a new open sees the new version.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let reopened = mirror.open_file(&path).await.unwrap();
        assert_eq!(reopened.size(), 300_000);
        assert_ne!(reopened.validator(), file.validator());
        assert_eq!(
            &reopened.read(100_000..100_010).await.unwrap()[..],
            &[2u8; 10]
        );
    })
    .await;
}

#[tokio::test]
async fn requests_never_leave_the_mirror() {
    let site = Site::start();
    bounded(async {
        let spec: MirrorSpec = format!("{}/movies/", site.nginx.url).parse().unwrap();
        let mirror = Mirror::open(
            spec,
            &OriginConfig {
                http: HttpConfig::default(),
                ..OriginConfig::default()
            },
            cache(),
        )
        .unwrap();
        for escape in [
            "../changing.bin",
            "sub dir/../../changing.bin",
            "%2e%2e/changing.bin",
        ] {
            let err = RelPath::from_url_path(escape).unwrap_err();
            assert!(err.is_not_found(), "{escape}");
        }
        site.nginx.clear_access_log();
        let err = mirror
            .open_file(&RelPath::parse("changing.bin").unwrap())
            .await
            .unwrap_err();
        assert!(err.is_not_found());
        assert!(
            site.nginx
                .access_log()
                .iter()
                .all(|e| e.uri.starts_with("/movies/"))
        );
    })
    .await;
}

#[tokio::test]
async fn overlay_copies_are_served_without_asking_the_origin() {
    let site = Site::start();
    bounded(async {
        let overlay = tempfile::tempdir().unwrap();
        std::fs::write(overlay.path().join("a b & c.mov"), b"local copy").unwrap();
        let config = OriginConfig {
            file_overlay: Some(overlay.path().to_path_buf()),
            file_overlay_flatten: true,
            ..OriginConfig::default()
        };
        let spec: MirrorSpec = format!("{}/", site.nginx.url).parse().unwrap();
        let mirror = Mirror::open(spec, &config, cache()).unwrap();
        site.nginx.clear_access_log();
        let file = mirror
            .open_file(&RelPath::parse("movies/a b & c.mov").unwrap())
            .await
            .unwrap();
        assert!(file.meta().from_overlay);
        assert_eq!(&file.read_at(0, 100).await.unwrap()[..], b"local copy");
        assert!(
            site.nginx.access_log().is_empty(),
            "the overlay copy took precedence"
        );
        let other = mirror
            .open_file(&RelPath::parse("movies/100%.mov").unwrap())
            .await
            .unwrap();
        assert!(!other.meta().from_overlay);
        assert_eq!(&other.read_at(0, 100).await.unwrap()[..], b"100%.mov");
    })
    .await;
}
