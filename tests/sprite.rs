//! Sprites and their WebVTT maps (SPEC §3) end to end against nginx: each tile is exactly the
//! frame on screen at its time as the frame route gives it at that width (the frame named by
//! ffprobe's timestamps), the map's cues cover the movie and point into the image of the same
//! parameters, bounds are 400 JSON, sheets are cached, and `lazycache sprite` writes the
//! route's bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;

use lazycache_testkit::nginx::Nginx;
use support::{Server, client, fixtures_dir, nginx_mirror, nginx_prefix, runtime};

/// 640×360 at 25 fps, 150 frames (6 s).
const H264: &str = "h264_longgop_faststart.mp4";

struct Got {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

fn get(server: &Server, path: &str) -> Got {
    runtime().block_on(async {
        let response = client().get(server.url(path)).send().await.unwrap();
        Got {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.bytes().await.unwrap().to_vec(),
        }
    })
}

fn rgb(bytes: &[u8]) -> image::RgbImage {
    image::load_from_memory(bytes).unwrap().to_rgb8()
}

/// ffprobe's presentation times of every frame, in order: the oracle of "on screen at T".
fn frame_times() -> Vec<f64> {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["frame=pts_time", "-of", "csv=p=0"])
        .arg(fixtures_dir().join(H264))
        .output()
        .unwrap();
    let mut times: Vec<f64> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.trim().trim_end_matches(',').parse().ok())
        .collect();
    times.sort_by(f64::total_cmp);
    times
}

/// The frame number (from 1) on screen `seconds` after the first frame.
fn on_screen(times: &[f64], seconds: f64) -> usize {
    times
        .iter()
        .filter(|&&t| t - times[0] <= seconds + 1e-9)
        .count()
}

fn server(nginx: &Nginx) -> Server {
    Server::start(&["--mirror", &nginx_mirror(nginx), "--cache-dir", ""], &[])
}

#[test]
fn tiles_are_the_frames_on_screen_at_their_times() {
    let nginx = Nginx::serve(&fixtures_dir());
    let server = server(&nginx);
    let movie = format!("{}{H264}", nginx_prefix(&nginx));
    let times = frame_times();
    assert_eq!(times.len(), 150);
    for (query, starts, cols) in [
        (
            "count=6&cols=3&width=160",
            vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
            3u32,
        ),
        ("every=2.2&width=96", vec![0.0, 2.2, 4.4], 3),
        ("count=5", vec![0.0, 1.2, 2.4, 3.6, 4.8], 4),
    ] {
        let width: u32 = query
            .split('&')
            .find_map(|p| p.strip_prefix("width="))
            .map_or(160, |w| w.parse().unwrap());
        let height = width * 360 / 640;
        let got = get(&server, &format!("{movie}/sprite.png?{query}"));
        assert_eq!(
            got.status,
            200,
            "{query}: {}",
            String::from_utf8_lossy(&got.body)
        );
        assert_eq!(got.header("content-type"), "image/png");
        assert_eq!(
            got.header("x-lazycache-sprite-tiles"),
            starts.len().to_string()
        );
        let sheet = rgb(&got.body);
        let rows = (starts.len() as u32).div_ceil(cols);
        assert_eq!(sheet.dimensions(), (cols * width, rows * height), "{query}");
        for (index, start) in starts.iter().enumerate() {
            let frame = on_screen(&times, *start);
            let single = get(&server, &format!("{movie}/frame/{frame}.png?width={width}"));
            assert_eq!(single.status, 200);
            let tile = rgb(&single.body);
            assert_eq!(tile.dimensions(), (width, height));
            let (x0, y0) = (
                (index as u32 % cols) * width,
                (index as u32 / cols) * height,
            );
            for (x, y, pixel) in tile.enumerate_pixels() {
                assert_eq!(
                    sheet.get_pixel(x0 + x, y0 + y),
                    pixel,
                    "{query}: tile {index} (frame {frame}) at {x},{y}"
                );
            }
        }
        // Trailing cells of the last row stay black.
        let used = starts.len() as u32;
        if !used.is_multiple_of(cols) {
            let (x, y) = ((used % cols) * width + 1, (rows - 1) * height + 1);
            assert_eq!(sheet.get_pixel(x, y).0, [0, 0, 0]);
        }
    }
}

/// A JPEG's size from its start-of-frame segment (the image crate here reads no JPEG).
fn jpeg_size(jpeg: &[u8]) -> (u32, u32) {
    let mut at = 2;
    while at + 9 < jpeg.len() {
        assert_eq!(jpeg[at], 0xFF, "not a JPEG segment at {at}");
        let marker = jpeg[at + 1];
        let length = u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]) as usize;
        if (0xC0..=0xC2).contains(&marker) {
            let height = u16::from_be_bytes([jpeg[at + 5], jpeg[at + 6]]);
            let width = u16::from_be_bytes([jpeg[at + 7], jpeg[at + 8]]);
            return (u32::from(width), u32::from(height));
        }
        at += 2 + length;
    }
    panic!("no start-of-frame in the JPEG");
}

/// WebVTT cues: (start, end, link).
fn cues(vtt: &str) -> Vec<(f64, f64, String)> {
    let seconds = |text: &str| -> f64 {
        let parts: Vec<f64> = text.split(':').map(|p| p.parse().unwrap()).collect();
        parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
    };
    assert!(vtt.starts_with("WEBVTT\n\n"), "{vtt}");
    vtt.split("\n\n")
        .skip(1)
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut lines = block.lines();
            let timing = lines.next().unwrap();
            let (start, end) = timing.split_once(" --> ").unwrap();
            (
                seconds(start),
                seconds(end),
                lines.next().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_map_covers_the_movie_and_points_into_the_image() {
    let nginx = Nginx::serve(&fixtures_dir());
    let server = server(&nginx);
    let movie = format!("{}{H264}", nginx_prefix(&nginx));
    // (query, the image's query in the map, tiles, columns in the image)
    for (query, link, tiles, cols) in [
        (
            "count=7&cols=3&width=120",
            "count=7&cols=3&width=120",
            7u32,
            3u32,
        ),
        ("every=0.5", "every=0.5&cols=4&width=160", 12, 4),
        (
            "width=100&quality=50&count=1",
            "count=1&cols=4&width=100&quality=50",
            1,
            1,
        ),
    ] {
        let got = get(&server, &format!("{movie}/sprite.vtt?{query}"));
        assert_eq!(got.status, 200, "{query}");
        assert!(got.header("content-type").starts_with("text/vtt"));
        let vtt = String::from_utf8(got.body).unwrap();
        let cues = cues(&vtt);
        assert_eq!(cues[0].0, 0.0);
        assert!((cues.last().unwrap().1 - 6.0).abs() < 1e-3, "{vtt}");
        for pair in cues.windows(2) {
            assert_eq!(pair[0].1, pair[1].0, "gap or overlap: {vtt}");
        }
        let (image_url, _) = cues[0].2.split_once('#').unwrap();
        assert_eq!(image_url, format!("sprite.jpg?{link}"));
        let image = get(&server, &format!("{movie}/{image_url}"));
        assert_eq!(image.status, 200);
        assert_eq!(image.header("content-type"), "image/jpeg");
        let (width, height) = jpeg_size(&image.body);
        let tile = cues[0].2.split("#xywh=").nth(1).unwrap().to_owned();
        let tile: Vec<u32> = tile.split(',').map(|v| v.parse().unwrap()).collect();
        assert_eq!(cues.len() as u32, tiles, "{query}");
        assert_eq!(width, cols * tile[2], "{query}");
        assert_eq!(height, tiles.div_ceil(cols) * tile[3], "{query}");
        for (_, _, link) in &cues {
            let (url, fragment) = link.split_once("#xywh=").unwrap();
            assert_eq!(url, image_url);
            let xywh: Vec<u32> = fragment.split(',').map(|v| v.parse().unwrap()).collect();
            assert!(
                xywh[0] + xywh[2] <= width && xywh[1] + xywh[3] <= height,
                "{link}"
            );
        }
    }
}

#[test]
fn bounds_are_400_and_sheets_are_cached() {
    let nginx = Nginx::serve(&fixtures_dir());
    let server = server(&nginx);
    let movie = format!("{}{H264}", nginx_prefix(&nginx));
    for (path, words) in [
        ("sprite.jpg?count=401", "count must be 1 to 400"),
        ("sprite.jpg?count=0", "count must be 1 to 400"),
        ("sprite.jpg?every=0.001", "at most 400"),
        ("sprite.vtt?every=0", "every must be"),
        ("sprite.jpg?count=3&every=1", "not both"),
        ("sprite.jpg?width=8193", "width must be 1 to 8192"),
        (
            "sprite.jpg?count=400&cols=400",
            "at most 8192 pixels a side",
        ),
        (
            "sprite.jpg?count=120&cols=10&width=800",
            "40000000 pixels in all",
        ),
        ("sprite.bmp", "not .bmp"),
        ("sprite.jpg?quality=0", "quality must be 1 to 100"),
    ] {
        let got = get(&server, &format!("{movie}/{path}"));
        assert_eq!(got.status, 400, "{path}");
        let json: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
        assert!(
            json["Error"].as_str().unwrap().contains(words),
            "{path}: {json}"
        );
    }
    let first = get(&server, &format!("{movie}/sprite.webp?count=4"));
    assert_eq!(
        (first.status, first.header("x-lazycache-cache")),
        (200, "miss")
    );
    let again = get(&server, &format!("{movie}/sprite.webp?count=4"));
    assert_eq!(again.header("x-lazycache-cache"), "memory");
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("etag"), first.header("etag"));
    let held = runtime().block_on(async {
        client()
            .get(server.url(&format!("{movie}/sprite.webp?count=4")))
            .header("if-none-match", first.header("etag"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(held, 304);
    let other = get(&server, &format!("{movie}/sprite.webp?count=5"));
    assert_ne!(other.header("etag"), first.header("etag"));
}

#[test]
fn the_cli_writes_the_routes_bytes() {
    let nginx = Nginx::serve(&fixtures_dir());
    let server = server(&nginx);
    let movie = format!("{}{H264}", nginx_prefix(&nginx));
    let source = format!("{}/{H264}", nginx.url);
    let dir = tempfile::tempdir().unwrap();
    for (route, args, file) in [
        (
            "sprite.jpg?count=6&cols=3",
            &["--count", "6", "--cols", "3"][..],
            "s.jpg",
        ),
        (
            "sprite.png?every=1.5&width=80",
            &["--every", "1.5", "--width", "80"][..],
            "s.png",
        ),
        (
            "sprite.vtt?count=6&cols=3",
            &["--count", "6", "--cols", "3"][..],
            "s.vtt",
        ),
    ] {
        let out = dir.path().join(file);
        let status = Command::new(env!("CARGO_BIN_EXE_lazycache"))
            .args(["sprite", &source, "-o", out.to_str().unwrap()])
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "{route}");
        let got = get(&server, &format!("{movie}/{route}"));
        assert_eq!(got.status, 200);
        assert!(
            std::fs::read(&out).unwrap() == got.body,
            "{route}: CLI and HTTP bytes differ"
        );
    }
    let output = Command::new(env!("CARGO_BIN_EXE_lazycache"))
        .args(["sprite", &source, "-o", "x.jpg", "--count", "401"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    let got = get(&server, &format!("{movie}/sprite.jpg?count=401"));
    let json: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(
        stderr.trim_end().trim_start_matches("lazycache: "),
        json["Error"].as_str().unwrap()
    );
}
