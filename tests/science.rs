//! The outputs scientists measure on, end to end against nginx: `?depth=16` and `?channels=gray`
//! bit-exact against the ffmpeg CLI's `rgb48le` / `gray` / `gray16le` for 10-bit ProRes and 8-bit
//! H.264, crop and resize at 16 bits, `BitDepth` and `StartTime` in metadata, and the frame time
//! headers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;

use lazycache_testkit::nginx::Nginx;
use lazycache_testkit::oracle;
use support::{Server, client, fixtures_dir, nginx_mirror, nginx_prefix, runtime};

/// 1080p 10-bit 4:2:2 ProRes, 30000/1001 fps.
const PRORES: &str = "prores_hq_1080p.mov";
/// 8-bit 4:2:0 H.264 with B-frames.
const H264: &str = "tiny_h264_bframes.mp4";

struct Fetched {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

fn get(server: &Server, path: &str) -> Fetched {
    runtime().block_on(async {
        let response = client().get(server.url(path)).send().await.unwrap();
        Fetched {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.bytes().await.unwrap().to_vec(),
        }
    })
}

impl Fetched {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// The array of an .npy answer: its header text and its data.
fn npy(body: &[u8]) -> (String, &[u8]) {
    assert_eq!(&body[..8], b"\x93NUMPY\x01\x00", "npy magic");
    let header_len = u16::from_le_bytes([body[8], body[9]]) as usize;
    let header = String::from_utf8(body[10..10 + header_len].to_vec()).unwrap();
    (header, &body[10 + header_len..])
}

fn serve(nginx: &Nginx) -> Server {
    Server::start(
        &[
            "--mirror",
            &nginx_mirror(nginx),
            "--cache-dir",
            "",
            "--allow-raw-output",
        ],
        &[],
    )
}

#[test]
fn sixteen_bit_and_gray_frames_equal_the_ffmpeg_cli_bit_for_bit() {
    let nginx = Nginx::serve(&fixtures_dir());
    let server = serve(&nginx);
    let prefix = nginx_prefix(&nginx);
    let cases = [(PRORES, 40u64, 1920usize, 1080usize), (H264, 7, 64, 48)];
    for (movie, frame, width, height) in cases {
        let path = fixtures_dir().join(movie);
        for (query, pix_fmt, bytes_per_pixel, descr, shape) in [
            (
                "depth=16",
                "rgb48le",
                6,
                "<u2",
                format!("({height}, {width}, 3)"),
            ),
            (
                "channels=gray",
                "gray",
                1,
                "|u1",
                format!("({height}, {width})"),
            ),
            (
                "depth=16&channels=gray",
                "gray16le",
                2,
                "<u2",
                format!("({height}, {width})"),
            ),
        ] {
            let answer = get(
                &server,
                &format!("{prefix}{movie}/frame/{frame}.npy?{query}"),
            );
            assert_eq!(answer.status, 200, "{movie} {query}");
            let (npy_header, data) = npy(&answer.body);
            assert!(
                npy_header.contains(&format!("'descr': '{descr}'")),
                "{npy_header}"
            );
            assert!(
                npy_header.contains(&format!("'shape': {shape}")),
                "{npy_header}"
            );
            let expected = oracle::frames_as(&path, &[frame], pix_fmt, bytes_per_pixel);
            assert_eq!(data.len(), expected[0].data.len(), "{movie} {query}");
            assert!(
                data == expected[0].data.as_slice(),
                "{movie} {query}: differs from ffmpeg -pix_fmt {pix_fmt}"
            );
            // The same samples as PNG (16-bit PNGs are big-endian).
            let png = get(
                &server,
                &format!("{prefix}{movie}/frame/{frame}.png?{query}"),
            );
            assert_eq!(png.status, 200);
            assert_eq!(
                png_samples(&png.body),
                expected[0].data,
                "{movie} {query} png"
            );
        }
    }
    assert!(server.terminate().success());
}

/// A PNG's samples, 16-bit ones as little-endian bytes like the raw outputs.
fn png_samples(bytes: &[u8]) -> Vec<u8> {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut data = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut data).unwrap();
    data.truncate(info.buffer_size());
    if info.bit_depth == png::BitDepth::Sixteen {
        data.chunks_exact(2).flat_map(|s| [s[1], s[0]]).collect()
    } else {
        data
    }
}

#[test]
fn crop_and_resize_work_at_sixteen_bits() {
    let nginx = Nginx::serve(&fixtures_dir());
    let server = serve(&nginx);
    let prefix = nginx_prefix(&nginx);
    let base = format!("{prefix}{PRORES}/frame/12.npy?depth=16");
    let whole = get(&server, &base);
    assert_eq!(whole.status, 200);
    let (_, whole) = npy(&whole.body);
    // A crop without resizing is exactly the rectangle of the whole frame.
    let (x, y, w, h) = (101usize, 37usize, 320usize, 200usize);
    let crop = get(&server, &format!("{base}&crop={x},{y},{w},{h}"));
    assert_eq!(crop.status, 200);
    let (header, crop) = npy(&crop.body);
    assert!(
        header.contains(&format!("'shape': ({h}, {w}, 3)")),
        "{header}"
    );
    let row = 1920 * 6;
    let expected: Vec<u8> = (y..y + h)
        .flat_map(|r| {
            whole[r * row + x * 6..r * row + (x + w) * 6]
                .iter()
                .copied()
        })
        .collect();
    assert!(
        crop == expected.as_slice(),
        "a 16-bit crop is the frame's rectangle"
    );
    // Resized at 16 bits: the same picture as the 8-bit resize, with 8 more bits.
    let deep = get(&server, &format!("{base}&width=480"));
    let shallow = get(&server, &format!("{prefix}{PRORES}/frame/12.npy?width=480"));
    assert_eq!((deep.status, shallow.status), (200, 200));
    let ((deep_header, deep), (_, shallow)) = (npy(&deep.body), npy(&shallow.body));
    assert!(
        deep_header.contains("'shape': (270, 480, 3)"),
        "{deep_header}"
    );
    assert_eq!(deep.len(), shallow.len() * 2);
    let high_bytes: Vec<u8> = deep.chunks_exact(2).map(|s| s[1]).collect();
    let off = high_bytes
        .iter()
        .zip(shallow)
        .filter(|(a, b)| a.abs_diff(**b) > 2)
        .count();
    assert!(
        off * 100 < shallow.len(),
        "{off} of {} samples differ by more than 2 from the 8-bit resize",
        shallow.len()
    );
    // And the low bytes carry information: not an 8-bit picture shifted up.
    assert!(deep.chunks_exact(2).any(|s| s[0] != 0 && s[0] != s[1]));
    assert!(server.terminate().success());
}

#[test]
fn depth_and_channels_are_refused_where_they_cannot_apply() {
    let nginx = Nginx::serve(&fixtures_dir());
    let server = serve(&nginx);
    let prefix = nginx_prefix(&nginx);
    for (query, words) in [
        ("frame/3.jpg?depth=16", "16-bit"),
        ("frame/3.webp?depth=16", "16-bit"),
        ("frame/3.rgba?channels=gray", "gray"),
        ("frame/3.png?depth=12", "depth must be 8 or 16"),
        ("frame/3.png?channels=cmyk", "channels must be rgb or gray"),
    ] {
        let answer = get(&server, &format!("{prefix}{H264}/{query}"));
        assert_eq!(answer.status, 400, "{query}");
        let error: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        assert!(
            error["Error"].as_str().unwrap_or_default().contains(words),
            "{query}: {error}"
        );
    }
    // Gray works in the 8-bit image formats too: a one-component JPEG …
    let jpeg = get(
        &server,
        &format!("{prefix}{H264}/frame/3.jpg?channels=gray"),
    );
    assert_eq!(jpeg.status, 200);
    let sof = jpeg
        .body
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("a baseline JPEG frame header");
    assert_eq!(jpeg.body[sof + 9], 1, "one colour component");
    // … and gray BMP, WebP and PNG.
    for ext in ["bmp", "webp", "png"] {
        let answer = get(
            &server,
            &format!("{prefix}{H264}/frame/3.{ext}?channels=gray"),
        );
        assert_eq!(answer.status, 200, "{ext}");
        let image = image::load_from_memory(&answer.body).unwrap();
        assert_eq!((image.width(), image.height()), (64, 48), "{ext}");
        let gray = image
            .to_rgb8()
            .pixels()
            .all(|p| p.0[0] == p.0[1] && p.0[1] == p.0[2]);
        assert!(gray, "{ext} is gray");
    }
    assert!(server.terminate().success());
}

/// `dir/name` as a copy of `fixture` by stream copy, with `extra` ffmpeg output options.
fn remux(fixture: &str, dir: &Path, name: &str, extra: &[&str]) {
    let input = fixtures_dir().join(fixture);
    let input = input.to_str().unwrap_or_default();
    let copy = ["-i", input, "-map", "0:v:0", "-c", "copy"];
    oracle::ffmpeg_write(&[&copy[..], extra].concat(), &dir.join(name));
}

#[test]
fn start_times_come_from_the_container_else_the_camhd_name_and_stamp_each_frame() {
    let dir = tempfile::tempdir().unwrap();
    let camhd = "CAMHDA301-20160724T030000Z.mov";
    remux("tiny_prores.mov", dir.path(), camhd, &[]);
    remux(
        "tiny_prores.mov",
        dir.path(),
        "stamped-20160724T030000Z.mov",
        &["-metadata", "creation_time=2021-05-06T07:08:09Z"],
    );
    remux("tiny_prores.mov", dir.path(), "plain.mov", &[]);
    let nginx = Nginx::serve(dir.path());
    let server = serve(&nginx);
    let prefix = nginx_prefix(&nginx);
    let metadata = |name: &str| -> serde_json::Value {
        let answer = get(&server, &format!("{prefix}{name}"));
        assert_eq!(answer.status, 200, "{name}");
        serde_json::from_slice(&answer.body).unwrap()
    };
    let camhd_meta = metadata(camhd);
    assert_eq!(camhd_meta["StartTime"], "2016-07-24T03:00:00Z");
    assert_eq!(camhd_meta["BitDepth"], 10);
    assert_eq!(
        metadata("stamped-20160724T030000Z.mov")["StartTime"],
        "2021-05-06T07:08:09Z",
        "the container's creation time wins over the name"
    );
    let plain = metadata("plain.mov");
    assert!(plain.get("StartTime").is_none(), "{plain}");

    // 25 fps: frame 11 is shown 0.4 s after frame 1.
    for round in ["computed", "cached"] {
        let frame = get(&server, &format!("{prefix}{camhd}/frame/11.png"));
        assert_eq!(frame.status, 200);
        assert_eq!(frame.header("x-lazycache-frame"), "11", "{round}");
        assert_eq!(
            frame.header("x-lazycache-frame-time"),
            "0.400000",
            "{round}"
        );
        assert_eq!(
            frame.header("x-lazycache-frame-timestamp"),
            "2016-07-24T03:00:00.400000Z",
            "{round}"
        );
    }
    let by_time = get(&server, &format!("{prefix}{camhd}/time/0.2.jpg"));
    assert_eq!(by_time.header("x-lazycache-frame"), "6");
    assert_eq!(by_time.header("x-lazycache-frame-time"), "0.200000");
    let plain_frame = get(&server, &format!("{prefix}plain.mov/frame/2.png"));
    assert_eq!(plain_frame.header("x-lazycache-frame-time"), "0.040000");
    assert!(
        plain_frame
            .headers
            .get("x-lazycache-frame-timestamp")
            .is_none()
    );
    assert!(server.terminate().success());
}

#[test]
fn eight_bit_h264_says_so() {
    let nginx = Nginx::serve(&fixtures_dir());
    let server = serve(&nginx);
    let answer = get(&server, &format!("{}{H264}", nginx_prefix(&nginx)));
    let metadata: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(metadata["BitDepth"], 8);
    assert!(metadata.get("StartTime").is_none(), "{metadata}");
    assert!(server.terminate().success());
}
