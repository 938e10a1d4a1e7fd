//! Warm decoding and keyframe mode beyond MOV/MP4, end to end against nginx: frames walked one
//! after another deep in a 250-frame GOP of Matroska, WebM, MPEG-TS and MXF — large enough
//! (> 4 MiB) to be indexed by a timeline, plus a small Matroska read through the demuxer by its
//! samples — continue one kept decoder and demuxer after the first (`lazycache_decodes_total`)
//! and equal the ffmpeg CLI's `select` frames, and so do frames asked for out of order
//! afterwards; `?seek=keyframe` answers the keyframe at or before N, named in
//! `X-Lazycache-Frame` — read from the Cues for Matroska/WebM, found by reading packets for
//! MPEG-TS and MXF.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;

use lazycache_testkit::nginx::Nginx;
use lazycache_testkit::oracle;
use support::{Server, client, header, metric, nginx_mirror, nginx_prefix, over_nginx, runtime};

/// Frames walked: deep in the first GOP (keyframes are frames 1 and 251).
const WALK: std::ops::RangeInclusive<u64> = 201..=212;

/// Runs the ffmpeg CLI with `args` (split at white space: no argument here has any).
fn ff(args: &str) {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args.split_whitespace())
        .status()
        .expect("run the ffmpeg CLI");
    assert!(status.success(), "ffmpeg {args}");
}

/// Long-GOP H.264 options: 250-frame closed GOPs, B-frames.
const X264: &str = "-c:v libx264 -preset ultrafast -g 250 -keyint_min 250 -sc_threshold 0 \
    -x264-params bframes=2:b-adapt=0 -pix_fmt yuv420p";

/// Frames asked for after the walk, out of order: the end of the movie, the first GOP's start,
/// the second keyframe, back into the first GOP, the last frame, and right after the walk.
const RANDOM: [u64; 6] = [290, 7, 251, 150, 300, 213];

/// 300 frames of noisy 480×270 at 25 fps, 250-frame closed GOPs (B-frames where the codec has
/// them): H.264 in Matroska and MPEG-TS (the same stream), VP9 in WebM, MPEG-2 in MXF, each
/// over 4 MiB (so indexed by a timeline); and a small H.264 Matroska (under 4 MiB: indexed by
/// its samples).
fn make_fixtures(dir: &Path) {
    let noisy = "testsrc2=size=480x270:rate=25,noise=alls=10:allf=t";
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let h264 = path("long.mkv");
    ff(&format!(
        "-f lavfi -i {noisy} -frames:v 300 {X264} -crf 20 {h264}"
    ));
    ff(&format!("-i {h264} -c copy {}", path("long.ts")));
    ff(&format!(
        "-f lavfi -i {noisy} -frames:v 300 -c:v libvpx-vp9 -deadline realtime -cpu-used 8 \
         -g 250 -keyint_min 250 -crf 20 -b:v 0 -pix_fmt yuv420p {}",
        path("long.webm")
    ));
    ff(&format!(
        "-f lavfi -i {noisy} -frames:v 300 -c:v mpeg2video -q:v 3 -g 250 -bf 2 -flags +cgop \
         -sc_threshold 1000000000 -pix_fmt yuv420p {}",
        path("long.mxf")
    ));
    ff(&format!(
        "-f lavfi -i testsrc2=size=320x180:rate=25 -frames:v 300 {X264} {}",
        path("small.mkv")
    ));
    for (name, large) in [
        ("long.mkv", true),
        ("long.ts", true),
        ("long.webm", true),
        ("long.mxf", true),
        ("small.mkv", false),
    ] {
        let size = std::fs::metadata(dir.join(name)).unwrap().len();
        assert_eq!(size > 4 << 20, large, "{name}: {size} bytes");
    }
}

fn rgb(rgba: &[u8]) -> Vec<u8> {
    rgba.chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect()
}

fn decodes(server: &Server) -> [u64; 3] {
    let text = runtime().block_on(async {
        let url = server.url("/metrics");
        client()
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    ["cold", "continued", "kept"].map(|path| {
        metric(
            &text,
            &format!("lazycache_decodes_total{{path=\"{path}\"}}"),
        ) as u64
    })
}

/// The 1-based frame numbers of the keyframes, by ffprobe, in presentation order.
fn keyframe_numbers(path: &Path) -> Vec<u64> {
    let packets = oracle::packets(path);
    let mut shown: Vec<_> = packets.iter().collect();
    shown.sort_by_key(|p| p.pts);
    shown
        .iter()
        .enumerate()
        .filter(|(_, p)| p.keyframe)
        .map(|(i, _)| i as u64 + 1)
        .collect()
}

#[test]
fn walking_frames_deep_in_a_gop_continues_a_kept_demuxer_in_every_container() {
    let dir = tempfile::tempdir().unwrap();
    make_fixtures(dir.path());
    let nginx = Nginx::serve(dir.path());
    let server = over_nginx(&nginx, &["--decoder-state-memory", "256MiB"]);
    let prefix = nginx_prefix(&nginx);
    let c = client();
    let rt = runtime();
    let frames: Vec<u64> = WALK.collect();
    for movie in ["long.mkv", "long.webm", "long.ts", "long.mxf", "small.mkv"] {
        let expected = oracle::frames(&dir.path().join(movie), &frames);
        let before = decodes(&server);
        for (frame, expected) in frames.iter().zip(&expected) {
            let path = format!("{prefix}{movie}/frame/{frame}.rgba");
            let (status, number, body) = get(&rt, &c, &server, &path);
            assert_eq!(status, 200, "{movie} frame {frame}");
            assert_eq!(number, frame.to_string(), "{movie}");
            assert!(
                rgb(&body) == expected.data,
                "{movie} frame {frame} differs from the CLI's"
            );
        }
        let after = decodes(&server);
        let [cold, continued, kept] = [0, 1, 2].map(|i| after[i] - before[i]);
        // One cold decode, then every next frame continued (or already produced).
        assert_eq!(
            (cold, continued + kept),
            (1, frames.len() as u64 - 1),
            "{movie}: cold {cold}, continued {continued}, kept {kept}"
        );
        // Out of order, with kept states about: still exactly the CLI's frames.
        let expected = oracle::frames(&dir.path().join(movie), &RANDOM);
        for (frame, expected) in RANDOM.iter().zip(&expected) {
            let path = format!("{prefix}{movie}/frame/{frame}.rgba");
            let (status, number, body) = get(&rt, &c, &server, &path);
            assert_eq!(status, 200, "{movie} frame {frame}");
            assert_eq!(number, frame.to_string(), "{movie}");
            assert!(
                rgb(&body) == expected.data,
                "{movie} frame {frame} (out of order) differs from the CLI's"
            );
        }
    }
}

/// 1080p noise makes P pictures of ~500 KB: the decoder's delay (3 packets with B-frames and two
/// frame threads) is more than the 1 MiB a cold frame may read past its GOP span (SPEC §4). In a
/// movie large enough to be indexed by its Cues (ten copies of a 48-frame segment, 260 MB), the
/// first frame of a walk stays within that bound, flushed and not kept; the next, a step of the
/// walk, reads on as far as keeping its decoder needs — its GOP span is in the range cache, so it
/// stays within its own bound too — and the walk goes on warm.
#[test]
fn a_1080p_walk_keeps_its_cold_frames_within_their_bound_and_then_goes_warm() {
    const COPIES: u64 = 10;
    let dir = tempfile::tempdir().unwrap();
    let segment = dir.path().join("segment.mkv");
    ff(&format!(
        "-f lavfi -i testsrc2=size=1920x1080:rate=25,noise=alls=10:allf=t -frames:v 48 {X264} \
         -crf 21 {}",
        segment.to_str().unwrap()
    ));
    let list = dir.path().join("copies.txt");
    let line = format!("file '{}'\n", segment.to_str().unwrap());
    std::fs::write(&list, line.repeat(COPIES as usize)).unwrap();
    let movie = dir.path().join("noisy_1080p.mkv");
    ff(&format!(
        "-f concat -safe 0 -i {} -map 0:v -c copy {}",
        list.to_str().unwrap(),
        movie.to_str().unwrap()
    ));
    let packets = oracle::packets(&segment);
    let per_copy = packets.len() as u64;
    let largest = packets.iter().filter(|p| !p.keyframe).map(|p| p.size).max();
    assert!(largest > Some(300 << 10), "P pictures of {largest:?} bytes");
    let nginx = Nginx::serve(dir.path());
    let server = over_nginx(&nginx, &[]);
    let prefix = nginx_prefix(&nginx);
    let (c, rt) = (client(), runtime());
    let (status, _, body) = get(&rt, &c, &server, &format!("{prefix}noisy_1080p.mkv"));
    assert_eq!(status, 200);
    let metadata: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(metadata["NumFrames"], per_copy * COPIES);
    assert_eq!(
        metadata["FrameNumbers"], "constant-rate",
        "indexed by its Cues"
    );
    let in_segment: Vec<u64> = (30..=35).collect();
    let expected = oracle::frames(&segment, &in_segment);
    let before = decodes(&server);
    for (i, (m, expected)) in in_segment.iter().zip(&expected).enumerate() {
        let frame = 5 * per_copy + m;
        nginx.clear_access_log();
        let path = format!("{prefix}noisy_1080p.mkv/frame/{frame}.rgba");
        let (status, number, body) = get(&rt, &c, &server, &path);
        assert_eq!((status, number), (200, frame.to_string()));
        assert!(
            rgb(&body) == expected.data,
            "frame {frame} differs from the CLI's"
        );
        let (_, bytes) = nginx.gets_of("/noisy_1080p.mkv");
        let (span, _) = oracle::gop_span_and_sample(&packets, *m);
        let bound = span + (1 << 20);
        eprintln!("frame {frame}: {bytes} origin bytes (GOP span {span}, bound {bound})");
        if i < 2 {
            assert!(
                bytes <= bound,
                "frame {frame}: {bytes} bytes (bound {bound})"
            );
        }
    }
    let after = decodes(&server);
    let [cold, continued, kept] = [0, 1, 2].map(|i| after[i] - before[i]);
    assert_eq!(
        (cold, continued + kept),
        (2, in_segment.len() as u64 - 2),
        "cold {cold}, continued {continued}, kept {kept}"
    );
}

/// GETs `path`: the status, `X-Lazycache-Frame` and the body.
fn get(
    rt: &tokio::runtime::Runtime,
    c: &reqwest::Client,
    server: &Server,
    path: &str,
) -> (u16, String, Vec<u8>) {
    rt.block_on(async {
        let response = c.get(server.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        let number = header(&response, "x-lazycache-frame");
        (status, number, response.bytes().await.unwrap().to_vec())
    })
}

#[test]
fn keyframe_mode_answers_the_keyframe_at_or_before_in_every_container() {
    let dir = tempfile::tempdir().unwrap();
    make_fixtures(dir.path());
    let nginx = Nginx::serve(dir.path());
    let server = over_nginx(&nginx, &[]);
    let prefix = nginx_prefix(&nginx);
    let c = client();
    let rt = runtime();
    for movie in ["long.ts", "long.mxf", "long.mkv", "long.webm"] {
        let path = dir.path().join(movie);
        let keyframes = keyframe_numbers(&path);
        for n in [120, 251, 280] {
            let url = format!("{prefix}{movie}/frame/{n}.rgba?seek=keyframe");
            let (status, number, body) = get(&rt, &c, &server, &url);
            assert_eq!(status, 200, "{movie} frame {n}");
            let k: u64 = number.parse().unwrap();
            let nearest = keyframes.iter().copied().filter(|&f| f <= n).max();
            assert_eq!(
                Some(k),
                nearest,
                "{movie} frame {n}: keyframes {keyframes:?}"
            );
            let expected = &oracle::frames(&path, &[k])[0];
            assert!(
                rgb(&body) == expected.data,
                "{movie} keyframe {k} differs from the CLI's"
            );
        }
    }
}

/// Not a test: the figure for BENCHMARKS.md / the report. Frames 201–230 of a 720p 250-frame-GOP
/// H.264 in Matroska and MPEG-TS, as JPEG over HTTP from nginx, one request at a time, with warm
/// decoding off and on. Prints ms per frame; asserts nothing about time.
/// `cargo test --workspace --test warm_containers -- --ignored --nocapture`
#[test]
#[ignore = "a measurement, run by hand"]
fn measure_sequential_720p() {
    let dir = tempfile::tempdir().unwrap();
    let mkv = dir.path().join("seq720.mkv");
    let mkv = mkv.to_str().unwrap();
    ff(&format!(
        "-f lavfi -i testsrc2=size=1280x720:rate=25,noise=alls=10:allf=t -frames:v 300 \
         {X264} -crf 21 {mkv}"
    ));
    let ts = dir.path().join("seq720.ts");
    ff(&format!("-i {mkv} -c copy {}", ts.to_str().unwrap()));
    let nginx = Nginx::serve(dir.path());
    let prefix = nginx_prefix(&nginx);
    let c = client();
    let rt = runtime();
    for state_memory in ["0", "256MiB"] {
        let server = Server::start(
            &[
                "--mirror",
                &nginx_mirror(&nginx),
                "--cache-dir",
                "",
                "--decoder-state-memory",
                state_memory,
            ],
            &[],
        );
        for movie in ["seq720.mkv", "seq720.ts"] {
            // The metadata first, so that the walk times frames only.
            rt.block_on(async {
                let url = server.url(&format!("{prefix}{movie}"));
                assert_eq!(c.get(url).send().await.unwrap().status(), 200);
            });
            let started = std::time::Instant::now();
            for frame in 201..=230 {
                rt.block_on(async {
                    let url = server.url(&format!("{prefix}{movie}/frame/{frame}.jpg"));
                    let response = c.get(url).send().await.unwrap();
                    assert_eq!(response.status(), 200);
                    response.bytes().await.unwrap();
                });
            }
            let per_frame = started.elapsed().as_secs_f64() * 1000.0 / 30.0;
            eprintln!(
                "{movie}, --decoder-state-memory {state_memory}: {per_frame:.1} ms/frame, \
                 decodes (cold, continued, kept) {:?}",
                decodes(&server)
            );
        }
    }
}
