//! The ffmpeg CLI as the independent oracle: ffprobe's metadata and `select=eq(n\,N-1)` frames.

use std::path::Path;
use std::process::Command;

/// An RGB24 picture as the ffmpeg CLI decodes it.
#[derive(Debug, Clone)]
pub struct RgbFrame {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

/// Makes `output` with the ffmpeg CLI from `args` (inputs, filters, codec options), quietly,
/// overwriting it; panics with ffmpeg's own words when it fails.
pub fn ffmpeg_write(args: &[&str], output: &Path) {
    let result = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .arg(output)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ffmpeg: {e}"));
    assert!(
        result.status.success(),
        "ffmpeg {args:?} {}: {}",
        output.display(),
        String::from_utf8_lossy(&result.stderr)
    );
}

/// ffprobe's view of the first video stream: `(stream, format)` JSON objects, with
/// `nb_read_frames` counted by decoding every frame.
pub fn probe(path: &Path) -> (serde_json::Value, serde_json::Value) {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args(["-show_streams", "-show_format", "-of", "json"])
        .arg(path)
        .output()
        .expect("run ffprobe (Debian package ffmpeg)");
    assert!(
        output.status.success(),
        "ffprobe failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let mut json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("ffprobe JSON");
    let stream = json["streams"][0].take();
    let format = json["format"].take();
    (stream, format)
}

/// A numeric ffprobe field (they come as strings), or a ratio like "30000/1001".
pub fn number(value: &serde_json::Value) -> f64 {
    let text = value
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| value.to_string());
    match text.split_once('/') {
        Some((n, d)) => {
            n.parse::<f64>().expect("numerator") / d.parse::<f64>().expect("denominator")
        }
        None => text
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {text}")),
    }
}

/// Frames `numbers` (1-based, any order) exactly as `ffmpeg -i MOVIE -vf select=eq(n\,N-1)`
/// yields them, converted to rgb24 by the CLI. One ffmpeg run for all of them.
pub fn frames(path: &Path, numbers: &[u64]) -> Vec<RgbFrame> {
    frames_as(path, numbers, "rgb24", 3)
}

/// [`frames`] converted by the CLI to `pix_fmt` (a packed format of `bytes_per_pixel`, e.g.
/// `rgb48le` 6, `gray` 1, `gray16le` 2); `data` holds the raw pixels.
pub fn frames_as(
    path: &Path,
    numbers: &[u64],
    pix_fmt: &str,
    bytes_per_pixel: usize,
) -> Vec<RgbFrame> {
    let (stream, _) = probe(path);
    let (width, height) = (
        stream["width"].as_u64().expect("width") as u32,
        stream["height"].as_u64().expect("height") as u32,
    );
    let mut sorted: Vec<u64> = numbers.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let select = sorted
        .iter()
        .map(|n| format!("eq(n\\,{})", n - 1))
        .collect::<Vec<_>>()
        .join("+");
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-i"])
        .arg(path)
        .args([
            "-map",
            "0:v:0",
            "-vf",
            &format!("select={select}"),
            "-fps_mode",
            "passthrough",
        ])
        .args(["-f", "rawvideo", "-pix_fmt", pix_fmt, "-"])
        .output()
        .expect("run the ffmpeg CLI");
    assert!(
        output.status.success(),
        "ffmpeg failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let frame_len = width as usize * height as usize * bytes_per_pixel;
    assert_eq!(
        output.stdout.len(),
        frame_len * sorted.len(),
        "ffmpeg returned a different number of frames than selected"
    );
    let by_number: Vec<(u64, RgbFrame)> = sorted
        .iter()
        .zip(output.stdout.chunks_exact(frame_len))
        .map(|(&n, data)| {
            (
                n,
                RgbFrame {
                    width,
                    height,
                    data: data.to_vec(),
                },
            )
        })
        .collect();
    numbers
        .iter()
        .map(|n| {
            by_number
                .iter()
                .find(|(m, _)| m == n)
                .expect("selected frame")
                .1
                .clone()
        })
        .collect()
}

/// Peak signal-to-noise ratio of two same-sized 8-bit pictures, in dB (∞ when identical).
pub fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "pictures of different sizes");
    let squared: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    let mse = squared / a.len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0 * 255.0 / mse).log10()
    }
}

/// One video packet as ffprobe lists it, in decode (file) order.
#[derive(Debug, Clone, Copy)]
pub struct PacketInfo {
    pub pts: i64,
    pub size: u64,
    pub keyframe: bool,
}

/// The video packets of `path` in decode order (ffprobe `-show_packets`).
pub fn packets(path: &Path) -> Vec<PacketInfo> {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_packets"])
        .args(["-show_entries", "packet=pts,dts,size,flags", "-of", "json"])
        .arg(path)
        .output()
        .expect("run ffprobe (Debian package ffmpeg)");
    assert!(
        output.status.success(),
        "ffprobe failed on {}",
        path.display()
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("ffprobe JSON");
    json["packets"]
        .as_array()
        .expect("packets")
        .iter()
        .map(|p| PacketInfo {
            pts: p["pts"]
                .as_i64()
                .or_else(|| p["dts"].as_i64())
                .expect("pts or dts"),
            size: number(&p["size"]) as u64,
            keyframe: p["flags"].as_str().unwrap_or_default().starts_with('K'),
        })
        .collect()
}

/// Bytes from the keyframe a decode of frame `m` (1-based, presentation order) of `packets`
/// (decode order) starts at through its packet, and the frame's own packet size.
pub fn gop_span_and_sample(packets: &[PacketInfo], m: u64) -> (u64, u64) {
    let mut shown: Vec<usize> = (0..packets.len()).collect();
    shown.sort_by_key(|&i| (packets[i].pts, i));
    let target = shown[(m - 1) as usize];
    let pts = packets[target].pts;
    let key = packets[..=target]
        .iter()
        .rposition(|p| p.keyframe && p.pts <= pts)
        .expect("a keyframe at or before the frame");
    let span = packets[key..=target].iter().map(|p| p.size).sum();
    (span, packets[target].size)
}
