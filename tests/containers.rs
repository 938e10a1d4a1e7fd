//! Every container at real size through the server, against nginx (SPEC §4): for each
//! ≥ 300 MiB movie of `scripts/fixtures --large` — Matroska, WebM, MPEG-TS, AVI, MXF, fragmented
//! MP4 — the metadata route answers ffprobe's frame count and reads at most 2% of the file or
//! 4 MiB from the origin in a handful of range requests, counted on nginx's access log (the
//! range cache's 32 KiB block alignment included); a cold frame in the middle reads at most its GOP span plus 1 MiB (1.25 ×
//! its sample plus 64 KiB for intra-only MJPEG) and is the frame the ffmpeg CLI's `select` gives
//! on the segment the movie repeats; keyframe mode names a listed keyframe.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use lazycache_testkit::nginx::Nginx;
use lazycache_testkit::{fixtures, oracle};
use support::{client, header, nginx_prefix, over_nginx, runtime};

const MIB: u64 = 1 << 20;
/// Fragmented MP4 metadata, from its `mfra`: the head, the tail (`mfro`, `mfra`), the last
/// `moof` and the first keyframe (for the pixel format) — 4 range requests on nginx's log for
/// the 64-fragment fixture, which the walk of every `moof` took 66 for.
const FRAGMENTED_METADATA_REQUESTS: usize = 6;
/// Metadata of the others in a handful of range requests (`ReadPlan::INDEX`): the head, stream
/// analysis in growing reads, the index or last timestamps at the end — 4 for Matroska, WebM
/// and AVI, 5 for MPEG-TS; MXF adds one per body partition its demuxer walks back through (9).
const METADATA_REQUESTS: usize = 5;
const MXF_METADATA_REQUESTS: usize = 10;

/// (movie, the segment it repeats)
const MOVIES: &[(&str, &str)] = &[
    ("large_h264.mkv", "segment_h264.mkv"),
    ("large_vp9.webm", "segment_vp9.webm"),
    ("large_h264.ts", "segment_h264.mkv"),
    ("large_mjpeg.avi", "segment_mjpeg.avi"),
    ("large_mpeg2.mxf", "segment_mpeg2.mxf"),
    ("large_h264_fragmented.mp4", "segment_h264.mkv"),
];

#[test]
fn every_container_at_real_size_reads_within_its_bounds_over_http() {
    let large = fixtures::large_dir();
    let nginx = Nginx::serve(&large);
    let server = over_nginx(&nginx, &[]);
    let prefix = nginx_prefix(&nginx);
    let rt = runtime();
    let c = client();
    let get = |path: String| {
        rt.block_on(async {
            let response = c.get(server.url(&path)).send().await.unwrap();
            let status = response.status();
            let frame = header(&response, "x-lazycache-frame");
            (status, frame, response.bytes().await.unwrap())
        })
    };
    for (movie, segment_name) in MOVIES {
        let uri = format!("/{movie}");
        let size = std::fs::metadata(large.join(movie)).unwrap().len();
        nginx.clear_access_log();
        let (status, _, body) = get(format!("{prefix}{movie}"));
        assert_eq!(status, 200, "{movie}");
        let metadata: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let (requests, bytes) = nginx.gets_of(&uri);
        let budget = (size / 50).max(4 * MIB);
        eprintln!("{movie}: metadata {requests} requests, {bytes} bytes of {size}");
        assert!(
            bytes <= budget,
            "{movie}: metadata read {bytes} (budget {budget})"
        );
        let (stream, _) = fixtures::large_probe(movie);
        let count = oracle::number(&stream["nb_read_packets"]) as u64;
        assert_eq!(metadata["NumFrames"], count, "{movie}: {metadata}");
        let fragmented = movie.ends_with(".mp4");
        let most_requests = match movie.rsplit_once('.').map(|(_, extension)| extension) {
            Some("mp4") => FRAGMENTED_METADATA_REQUESTS,
            Some("mxf") => MXF_METADATA_REQUESTS,
            _ => METADATA_REQUESTS,
        };
        assert!(
            requests <= most_requests,
            "{movie}: metadata took {requests} requests"
        );
        if fragmented {
            assert_eq!(metadata["FrameNumbers"], "constant-rate", "{movie}");
        }

        // A cold frame in the middle, deep in its GOP; for fragmented MP4 (its fragments read
        // one by one as frames need them) also the first frame and the last fragment's last.
        let segment_path = large.join(segment_name);
        let segment = oracle::packets(&segment_path);
        let per_copy = segment.len() as u64;
        let deepest = (1..=per_copy)
            .max_by_key(|&m| oracle::gop_span_and_sample(&segment, m).0)
            .unwrap();
        let middle = (count / 2 / per_copy) * per_copy + deepest;
        let frames = if fragmented {
            vec![1, middle, count]
        } else {
            vec![middle]
        };
        for n in frames {
            let m = (n - 1) % per_copy + 1;
            nginx.clear_access_log();
            let (status, frame, body) = get(format!("{prefix}{movie}/frame/{n}.rgba"));
            assert_eq!((status.as_u16(), frame), (200, n.to_string()), "{movie}");
            let (requests, bytes) = nginx.gets_of(&uri);
            let (span, sample) = oracle::gop_span_and_sample(&segment, m);
            let bound = if metadata["Codec"] == "mjpeg" {
                sample * 5 / 4 + 64 * 1024
            } else {
                span + MIB
            };
            eprintln!("{movie}: frame {n}: {requests} requests, {bytes} bytes (bound {bound})");
            assert!(
                bytes <= bound,
                "{movie} frame {n}: read {bytes} (bound {bound})"
            );
            let expected = &oracle::frames(&segment_path, &[m])[0];
            let rgb: Vec<u8> = body
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect();
            let psnr = oracle::psnr(&rgb, &expected.data);
            assert!(
                psnr >= 40.0,
                "{movie} frame {n}: {psnr:.1} dB against the CLI's"
            );
        }
    }

    // Keyframe mode over Matroska's Cues: 1-second GOPs at 25 fps, so frame 1000's keyframe is
    // frame 976 (keyframes at 1, 26, 51, …).
    let (status, frame, _) = get(format!(
        "{prefix}large_h264.mkv/frame/1000.jpg?seek=keyframe"
    ));
    assert_eq!((status.as_u16(), frame.as_str()), (200, "976"));
}
