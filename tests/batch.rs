//! Many frames per request (SPEC §3, Many frames) end to end against nginx: `.npy` arrays equal
//! the ffmpeg CLI's frames and select what `A-B`, `A-B:S` and `N,M,K` name; a run in one GOP
//! continues one warm decoder; zip entries are named per frame and equal the single-frame
//! answers, which are then served from memory; bounds and bad selections are 400 JSON, raw output
//! off is 501; a failure after the status cuts the body short; `lazycache frames` writes the
//! route's bytes and says the route's error words.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use lazycache_testkit::nginx::Nginx;
use lazycache_testkit::oracle;
use support::{Server, client, fixtures_dir, header, metric, nginx_mirror, nginx_prefix, runtime};

/// 640×360, 150 frames, 60-frame GOPs with B-frames (keyframes 1, 61, 121).
const H264: &str = "h264_longgop_faststart.mp4";

struct Got {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
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

fn header_of(got: &Got, name: &str) -> String {
    got.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// A `.npy` file's dtype, shape and data.
fn npy(bytes: &[u8]) -> (String, Vec<usize>, &[u8]) {
    assert_eq!(&bytes[..6], b"\x93NUMPY", "not a .npy");
    assert_eq!(bytes[6], 1);
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + len) % 64, 0, "data not aligned");
    let dict = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
    let descr = dict.split("'descr': '").nth(1).unwrap();
    let descr = descr[..descr.find('\'').unwrap()].to_owned();
    assert!(dict.contains("'fortran_order': False"), "{dict}");
    let shape = dict.split("'shape': (").nth(1).unwrap();
    let shape = shape[..shape.find(')').unwrap()]
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    (descr, shape, &bytes[10 + len..])
}

fn prefix_movie(nginx: &Nginx) -> String {
    format!("{}{H264}", nginx_prefix(nginx))
}

fn raw_server(nginx: &Nginx) -> Server {
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

/// The frames of the array, each compared with the ffmpeg CLI's.
fn assert_frames_equal_oracle(bytes: &[u8], frames: &[u64]) {
    let (descr, shape, data) = npy(bytes);
    assert_eq!(descr, "|u1");
    assert_eq!(shape, vec![frames.len(), 360, 640, 3]);
    let oracle = oracle::frames(&fixtures_dir().join(H264), frames);
    for ((pixels, expected), number) in data.chunks_exact(360 * 640 * 3).zip(&oracle).zip(frames) {
        assert!(pixels == expected.data.as_slice(), "frame {number} differs");
    }
}

#[test]
fn a_range_as_npy_equals_the_oracle_and_continues_one_decoder() {
    let nginx = Nginx::serve(&fixtures_dir());
    let server = raw_server(&nginx);
    let movie = prefix_movie(&nginx);
    let frames: Vec<u64> = (100..=115).collect();
    let got = get(&server, &format!("{movie}/frames/100-115.npy"));
    assert_eq!(got.status, 200, "{}", String::from_utf8_lossy(&got.body));
    assert_eq!(header_of(&got, "content-type"), "application/x-npy");
    assert_eq!(
        header_of(&got, "content-length"),
        got.body.len().to_string()
    );
    assert_eq!(header_of(&got, "x-lazycache-frames"), "16");
    assert_frames_equal_oracle(&got.body, &frames);
    // One cold decode from keyframe 61, then every next frame continued (or already produced).
    let metrics = String::from_utf8(get(&server, "/metrics").body).unwrap();
    let decodes = ["cold", "continued", "kept"].map(|path| {
        metric(
            &metrics,
            &format!("lazycache_decodes_total{{path=\"{path}\"}}"),
        ) as u64
    });
    assert_eq!(decodes[0], 1, "{decodes:?}");
    assert_eq!(decodes[1] + decodes[2], 15, "{decodes:?}");
    assert!(decodes[1] >= 1, "{decodes:?}");
    // Each frame was cached as its own `.npy` frame: served from memory, the same pixels.
    let (_, _, data) = npy(&got.body);
    for (index, number) in [(0usize, 100u64), (9, 109), (15, 115)] {
        let one = get(&server, &format!("{movie}/frame/{number}.npy"));
        assert_eq!(
            header_of(&one, "x-lazycache-cache"),
            "memory",
            "frame {number}"
        );
        let frame_len = 360 * 640 * 3;
        assert!(npy(&one.body).2 == &data[index * frame_len..(index + 1) * frame_len]);
    }
    // The same answer again: same version, and 304 for a client that holds it.
    let etag = header_of(&got, "etag");
    assert!(etag.starts_with('"'));
    let held = runtime().block_on(async {
        client()
            .get(server.url(&format!("{movie}/frames/100-115.npy")))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(held, 304);
}

#[test]
fn steps_and_lists_select_the_frames_they_name() {
    let nginx = Nginx::serve(&fixtures_dir());
    let server = raw_server(&nginx);
    let movie = prefix_movie(&nginx);
    for (selection, frames) in [
        ("1-20:5", vec![1u64, 6, 11, 16]),
        ("140-150:4", vec![140, 144, 148]),
        ("30,3,150,61", vec![30, 3, 150, 61]),
        ("7", vec![7]),
    ] {
        let got = get(&server, &format!("{movie}/frames/{selection}.npy"));
        assert_eq!(got.status, 200, "{selection}");
        assert_frames_equal_oracle(&got.body, &frames);
    }
    // Frame options apply to every frame: the array is of the resized frames.
    let got = get(
        &server,
        &format!("{movie}/frames/1-3.npy?width=64&height=48&fit=cover"),
    );
    let (_, shape, data) = npy(&got.body);
    assert_eq!(shape, vec![3, 48, 64, 3]);
    let one = get(
        &server,
        &format!("{movie}/frame/2.npy?width=64&height=48&fit=cover"),
    );
    assert!(npy(&one.body).2 == &data[64 * 48 * 3..2 * 64 * 48 * 3]);
}

/// Python's zipfile (an independent reader): the names in order, after checking every CRC.
fn zip_names(zip: &[u8]) -> Vec<String> {
    let script = "import sys, io, zipfile\n\
        z = zipfile.ZipFile(io.BytesIO(sys.stdin.buffer.read()))\n\
        assert z.testzip() is None\n\
        assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())\n\
        print('\\n'.join(z.namelist()))\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(zip).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A stored zip's entries, by walking its local headers (sizes are in them: no descriptors).
fn zip_entries(zip: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut entries = Vec::new();
    let mut at = 0;
    while zip[at..at + 4] == [0x50, 0x4b, 0x03, 0x04] {
        let u16_at = |i: usize| u16::from_le_bytes([zip[at + i], zip[at + i + 1]]) as usize;
        let size = u32::from_le_bytes(zip[at + 18..at + 22].try_into().unwrap()) as usize;
        let (name_len, extra_len) = (u16_at(26), u16_at(28));
        assert_eq!(u16_at(6) & 8, 0, "a data descriptor");
        let name = String::from_utf8(zip[at + 30..at + 30 + name_len].to_vec()).unwrap();
        let start = at + 30 + name_len + extra_len;
        entries.push((name, zip[start..start + size].to_vec()));
        at = start + size;
    }
    entries
}

#[test]
fn zips_hold_each_frame_as_the_frame_route_gives_it() {
    let nginx = Nginx::serve(&fixtures_dir());
    // Raw output is off: images in a zip are fine, .npy alone or inside a zip is not.
    let server = Server::start(&["--mirror", &nginx_mirror(&nginx), "--cache-dir", ""], &[]);
    let movie = prefix_movie(&nginx);
    for (query, frames, ext) in [
        ("", vec![60u64, 61, 62], "png"),
        ("?format=jpg&quality=40&width=320", vec![5, 100], "jpg"),
        ("?format=webp&crop=10,10,200,100", vec![150], "webp"),
        ("?format=bmp", vec![1], "bmp"),
    ] {
        let selection = frames
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let got = get(&server, &format!("{movie}/frames/{selection}.zip{query}"));
        assert_eq!(
            got.status,
            200,
            "{query}: {}",
            String::from_utf8_lossy(&got.body)
        );
        assert_eq!(header_of(&got, "content-type"), "application/zip");
        let names: Vec<String> = frames.iter().map(|n| format!("frame-{n}.{ext}")).collect();
        assert_eq!(zip_names(&got.body), names);
        let entries = zip_entries(&got.body);
        assert_eq!(entries.len(), frames.len());
        for ((name, data), number) in entries.iter().zip(&frames) {
            // Each frame was cached under its own key by the zip: now served from memory.
            let one = get(&server, &format!("{movie}/frame/{number}.{ext}{query}"));
            assert_eq!(one.status, 200);
            assert_eq!(header_of(&one, "x-lazycache-cache"), "memory", "{name}");
            assert!(&one.body == data, "{name} differs from the frame route's");
        }
    }
    for path in ["frames/1-3.npy", "frames/1-3.zip?format=npy"] {
        let got = get(&server, &format!("{movie}/{path}"));
        assert_eq!(got.status, 501, "{path}");
        let json: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
        assert!(
            json["Error"]
                .as_str()
                .unwrap()
                .contains("--allow-raw-output"),
            "{json}"
        );
    }
}

#[test]
fn bad_selections_and_bounds_are_refused_before_any_frame() {
    let nginx = Nginx::serve(&fixtures_dir());
    let server = raw_server(&nginx);
    let movie = prefix_movie(&nginx);
    for (path, words) in [
        ("frames/0-3.npy", "frames count from 1"),
        ("frames/1-1001.npy", "at most 1000 frames, not 1001"),
        ("frames/1-3000:2.zip", "at most 1000 frames, not 1500"),
        (
            "frames/140-151.npy",
            "frame 151 is past the last frame (150)",
        ),
        ("frames/1,151.zip", "frame 151 is past the last frame (150)"),
        ("frames/7-3.npy", "must not come after"),
        ("frames/a-b.npy", "A-B, A-B:S or N,M,K"),
        ("frames/2,5,2.zip", "named twice"),
        ("frames/1-3:0.npy", "step"),
        ("frames/1-3.png", ".npy or .zip"),
        ("frames/1-3.zip?format=gif", "format must be"),
        ("frames/1-3.zip?width=9000", "width must be 1 to 8192"),
        ("frames/1-3.npy?crop=600,0,100,100", "not inside"),
        // 150 frames of 4000×4000 RGB: about 6.7 GiB.
        ("frames/1-150.npy?width=4000&height=4000", "at most 2 GiB"),
        ("frames/1-150.zip?width=4000&height=4000", "at most 2 GiB"),
    ] {
        let got = get(&server, &format!("{movie}/{path}"));
        assert_eq!(got.status, 400, "{path}");
        let json: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
        let error = json["Error"].as_str().unwrap();
        assert!(error.contains(words), "{path}: {error}");
        assert_eq!(
            json["URL"],
            format!("{movie}/{path}").split('?').next().unwrap()
        );
    }
    // Nothing was decoded for any of them.
    let metrics = String::from_utf8(get(&server, "/metrics").body).unwrap();
    assert_eq!(metric(&metrics, "lazycache_decodes_total"), 0.0);
}

#[test]
fn a_failure_after_the_status_cuts_the_body_short() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures_dir().join(H264), dir.path().join(H264)).unwrap();
    let nginx = Nginx::serve(dir.path());
    let server = raw_server(&nginx);
    let movie = prefix_movie(&nginx);
    // 150 frames of 640×360 (99 MB): far more than the chunks in flight and socket buffers.
    let outcome = runtime().block_on(async {
        let response = client()
            .get(server.url(&format!("{movie}/frames/1-150.npy")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let length: usize = header(&response, "content-length").parse().unwrap();
        // The movie goes away at the origin while its frames are being sent.
        std::fs::remove_file(dir.path().join(H264)).unwrap();
        let body = response.bytes().await;
        (length, body.map(|b| b.len()))
    });
    match outcome {
        (length, Ok(received)) => assert!(received < length, "{received} of {length}"),
        (_, Err(error)) => assert!(error.is_body() || error.is_decode(), "{error}"),
    }
    assert!(
        server.log().contains("the answer ends early"),
        "{}",
        server.log()
    );
}

/// `lazycache frames ARGS`: Ok(file bytes) or Err(its one-line error without the prefix).
fn cli_frames(args: &[&str], out: &std::path::Path) -> Result<Vec<u8>, String> {
    let output = Command::new(env!("CARGO_BIN_EXE_lazycache"))
        .arg("frames")
        .args(args)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap();
    if output.status.success() {
        return Ok(std::fs::read(out).unwrap());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(!out.exists(), "a failed command left {}", out.display());
    Err(stderr
        .trim_end()
        .trim_start_matches("lazycache: ")
        .to_owned())
}

#[test]
fn the_cli_writes_the_routes_bytes_and_says_its_errors() {
    let nginx = Nginx::serve(&fixtures_dir());
    let server = raw_server(&nginx);
    let movie = prefix_movie(&nginx);
    let source = format!("{}/{H264}", nginx.url);
    let dir = tempfile::tempdir().unwrap();
    for (route, args, file) in [
        (
            "frames/10-14:2.npy?width=100",
            &["10-14:2", "--width", "100"][..],
            "a.npy",
        ),
        ("frames/3,1,2.zip", &["3,1,2"][..], "b.zip"),
        (
            "frames/60-62.zip?format=jpg&quality=30&crop=0,0,320,180",
            &[
                "60-62",
                "--format",
                "jpg",
                "--quality",
                "30",
                "--crop",
                "0,0,320,180",
            ][..],
            "c.zip",
        ),
    ] {
        let mut cli_args = vec![source.as_str()];
        cli_args.extend(args);
        let from_cli = cli_frames(&cli_args, &dir.path().join(file)).unwrap();
        let from_http = get(&server, &format!("{movie}/{route}"));
        assert_eq!(from_http.status, 200, "{route}");
        assert!(
            from_cli == from_http.body,
            "{route}: CLI and HTTP bytes differ"
        );
    }
    for (route, selection, extra) in [
        ("frames/0-3.npy", "0-3", &[][..]),
        ("frames/1-1001.npy", "1-1001", &[][..]),
        ("frames/149-152.npy", "149-152", &[][..]),
        ("frames/1-3.zip?format=gif", "1-3", &["--format", "gif"][..]),
        (
            "frames/1-150.npy?width=4000&height=4000",
            "1-150",
            &["--width", "4000", "--height", "4000"][..],
        ),
    ] {
        let ext = route.split('?').next().unwrap().rsplit('.').next().unwrap();
        let mut cli_args = vec![source.as_str(), selection];
        cli_args.extend(extra);
        let from_cli =
            cli_frames(&cli_args, &dir.path().join(format!("bad.{ext}"))).expect_err(route);
        let got = get(&server, &format!("{movie}/{route}"));
        let json: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
        assert_eq!(from_cli, json["Error"].as_str().unwrap(), "{route}");
    }
}
