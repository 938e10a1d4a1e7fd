//! Sequential frames and keyframe mode end to end, against nginx: frames walked one after
//! another deep in a long GOP continue one warm decoder (few origin bytes each) and equal the
//! ffmpeg CLI's; `?seek=keyframe` answers the keyframe and names it in `X-Lazycache-Frame`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use lazycache_testkit::nginx::Nginx;
use lazycache_testkit::oracle;
use support::{
    Server, client, fixtures_dir, header, metric, nginx_mirror, nginx_prefix, over_nginx, runtime,
};

/// 60-frame GOPs with B-frames: keyframes are frames 1, 61, 121, …
const H264: &str = "h264_longgop_faststart.mp4";

/// Walks `frames` as `.rgba` one request at a time; returns each frame's pixels and the origin
/// bytes read for it.
fn walk(server: &Server, nginx: &Nginx, frames: &[u64]) -> Vec<(Vec<u8>, u64)> {
    let prefix = nginx_prefix(nginx);
    let c = client();
    let rt = runtime();
    let uri = format!("/{H264}");
    let metadata = rt.block_on(async {
        c.get(server.url(&format!("{prefix}{H264}")))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(metadata, 200);
    frames
        .iter()
        .map(|frame| {
            let before = nginx.gets_of(&uri).1;
            let response = rt.block_on(async {
                c.get(server.url(&format!("{prefix}{H264}/frame/{frame}.rgba")))
                    .send()
                    .await
                    .unwrap()
            });
            assert_eq!(response.status(), 200, "frame {frame}");
            assert_eq!(header(&response, "x-lazycache-frame"), frame.to_string());
            let body = rt.block_on(response.bytes()).unwrap().to_vec();
            (body, nginx.gets_of(&uri).1 - before)
        })
        .collect()
}

fn rgb(rgba: &[u8]) -> Vec<u8> {
    rgba.chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect()
}

#[test]
fn walking_frames_deep_in_a_gop_continues_one_decoder_and_stays_exact() {
    let nginx = Nginx::serve(&fixtures_dir());
    let frames: Vec<u64> = (100..=115).collect();
    let oracle = oracle::frames(&fixtures_dir().join(H264), &frames);
    let mut decodes = Vec::new();
    for state_memory in ["256MiB", "0"] {
        let server = over_nginx(&nginx, &["--decoder-state-memory", state_memory]);
        let walked = walk(&server, &nginx, &frames);
        for ((pixels, _), expected) in walked.iter().zip(&oracle) {
            assert_eq!(
                rgb(pixels),
                expected.data,
                "--decoder-state-memory {state_memory}"
            );
        }
        let metrics = rt_get(&server, "/metrics");
        decodes.push(["cold", "continued", "kept"].map(|path| {
            metric(
                &metrics,
                &format!("lazycache_decodes_total{{path=\"{path}\"}}"),
            ) as u64
        }));
        // Every frame read at most its GOP prefix (keyframe 61 to the frame) plus 1 MiB.
        for (frame, (_, bytes)) in frames.iter().zip(&walked) {
            assert!(
                *bytes <= gop_prefix_bytes(*frame) + (1 << 20),
                "frame {frame}: {bytes}"
            );
        }
        nginx.clear_access_log();
    }
    // Warm: one cold decode, then each next frame continued (or already produced); cold: 16.
    assert_eq!(decodes[0][0], 1, "{:?}", decodes[0]);
    assert_eq!(decodes[0][1] + decodes[0][2], 15, "{:?}", decodes[0]);
    assert_eq!(decodes[1], [16, 0, 0]);
}

/// Bytes of the samples from the keyframe before `frame` (61) through `frame`, by ffprobe.
fn gop_prefix_bytes(frame: u64) -> u64 {
    let output = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["packet=pts,size,flags", "-of", "csv=p=0"])
        .arg(fixtures_dir().join(H264))
        .output()
        .unwrap();
    let packets: Vec<(i64, u64)> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(',');
            Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
        })
        .collect();
    let mut by_pts: Vec<i64> = packets.iter().map(|(pts, _)| *pts).collect();
    by_pts.sort_unstable();
    let (key, target) = (by_pts[60], by_pts[frame as usize - 1]);
    // Decode order runs from the keyframe's packet through the target's.
    let from = packets.iter().position(|(pts, _)| *pts == key).unwrap();
    let to = packets.iter().position(|(pts, _)| *pts == target).unwrap();
    packets[from..=to.max(from)]
        .iter()
        .map(|(_, size)| size)
        .sum()
}

fn rt_get(server: &Server, path: &str) -> String {
    runtime().block_on(async {
        client()
            .get(server.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    })
}

#[test]
fn keyframe_mode_answers_and_names_the_keyframe() {
    let nginx = Nginx::serve(&fixtures_dir());
    let server = Server::start(&["--mirror", &nginx_mirror(&nginx), "--cache-dir", ""], &[]);
    let prefix = nginx_prefix(&nginx);
    let c = client();
    let rt = runtime();
    rt.block_on(async {
        let get = |route: &str| {
            let url = server.url(&format!("{prefix}{H264}/{route}"));
            let c = c.clone();
            async move { c.get(url).send().await.unwrap() }
        };
        let keyframe = get("frame/100.png?seek=keyframe").await;
        assert_eq!(keyframe.status(), 200);
        assert_eq!(header(&keyframe, "x-lazycache-frame"), "61");
        let keyframe_etag = header(&keyframe, "etag");
        let keyframe_body = keyframe.bytes().await.unwrap();
        let exact = get("frame/61.png").await;
        assert_eq!(header(&exact, "x-lazycache-frame"), "61");
        // Frame 61 decoded exactly, under frame 61's own key: the same bytes and version.
        assert_eq!(header(&exact, "etag"), keyframe_etag);
        assert_eq!(exact.bytes().await.unwrap(), keyframe_body);
        let frame = get("frame/100.png?seek=exact").await;
        assert_eq!(header(&frame, "x-lazycache-frame"), "100");
        assert_ne!(frame.bytes().await.unwrap(), keyframe_body);
        let by_time = get("time/2.5.png?seek=keyframe").await;
        assert_eq!(header(&by_time, "x-lazycache-frame"), "61");
        let bad = get("frame/100.png?seek=nearest").await;
        assert_eq!(bad.status(), 400);
        let error: serde_json::Value = serde_json::from_slice(&bad.bytes().await.unwrap()).unwrap();
        assert!(
            error["Error"]
                .as_str()
                .unwrap()
                .contains("seek must be exact or keyframe"),
            "{error}"
        );
    });
}
