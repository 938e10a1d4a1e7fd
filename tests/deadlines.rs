//! `--decode-timeout` holds whatever the origin does: an origin that answers its headers and
//! then sends a byte every 10 s gets the request a 504 at the deadline, frees its decode slot,
//! and never stops other mirrors from being served.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use support::{Server, client, fixtures_dir, local_mirror, metric, runtime};

const PRORES: &str = "prores_hq_1080p.mov";

/// An HTTP origin serving one file, `slow.mov`, whose ranges trickle: headers at once, then a
/// byte every 10 s. A stat (HEAD, or a GET of `bytes=0-0`) is answered at once.
fn trickling_origin(bytes: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let bytes = bytes.clone();
            std::thread::spawn(move || serve(stream, &bytes));
        }
    });
    port
}

fn serve(mut stream: TcpStream, bytes: &[u8]) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut range = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                let (from, to) = value.trim().split_once('-').unwrap();
                let from: usize = from.parse().unwrap();
                let to: usize = to.parse().unwrap_or(bytes.len() - 1).min(bytes.len() - 1);
                range = Some((from, to));
            }
        }
        let common = "ETag: \"v1\"\r\nLast-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\nAccept-Ranges: bytes\r\n";
        if request_line.starts_with("HEAD") {
            let head = format!(
                "HTTP/1.1 200 OK\r\n{common}Content-Length: {}\r\n\r\n",
                bytes.len()
            );
            let _ = stream.write_all(head.as_bytes());
            continue;
        }
        let (from, to) = range.unwrap_or((0, bytes.len() - 1));
        let head = format!(
            "HTTP/1.1 206 Partial Content\r\n{common}Content-Range: bytes {from}-{to}/{}\r\nContent-Length: {}\r\n\r\n",
            bytes.len(),
            to - from + 1
        );
        if stream.write_all(head.as_bytes()).is_err() {
            return;
        }
        if (from, to) == (0, 0) {
            let _ = stream.write_all(&bytes[..1]);
            continue;
        }
        for byte in &bytes[from..=to] {
            if stream.write_all(&[*byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_secs(10));
        }
    }
}

#[test]
fn a_trickling_origin_gets_504_at_the_deadline_and_frees_its_slot() {
    let movie = std::fs::read(fixtures_dir().join(PRORES)).unwrap();
    let port = trickling_origin(movie);
    let server = Server::start(
        &[
            "--mirror",
            &format!("slow=http://127.0.0.1:{port}/"),
            "--mirror",
            &local_mirror(),
            "--cache-dir",
            "",
            "--decode-timeout",
            "3s",
            "--max-concurrent-decodes",
            "2",
        ],
        &[],
    );
    let rt = runtime();
    let c = client();
    let get = |path: String| {
        let c = c.clone();
        let url = server.url(&path);
        async move {
            let asked = Instant::now();
            let response = c.get(url).send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            (status, text, asked.elapsed())
        }
    };
    rt.block_on(async {
        // Two slow requests hold both decode slots until their deadline ...
        let slow = futures::future::join_all([
            get("/v1/slow/slow.mov".into()),
            get("/v1/slow/slow.mov/frame/3.jpg".into()),
        ]);
        // ... while the local mirror's metadata is still answered (it needs no slot once known).
        let warm_up = get(format!("/v1/local/{PRORES}")).await;
        assert_eq!(warm_up.0, 200, "{}", warm_up.1);
        for (status, text, took) in slow.await {
            assert_eq!(status, 504, "{text}");
            assert!(
                text.contains("deadline") || text.contains("--decode-timeout"),
                "{text}"
            );
            assert!(took < Duration::from_secs(8), "took {took:?}");
        }
        // The slots are free again: a frame of the local mirror decodes at once.
        let frame = get(format!("/v1/local/{PRORES}/frame/4.jpg")).await;
        assert_eq!(frame.0, 200);
        assert!(frame.2 < Duration::from_secs(3), "{:?}", frame.2);
        let metrics = get("/metrics".into()).await.1;
        assert_eq!(metric(&metrics, "lazycache_decodes_in_flight"), 0.0);
        // A timeout is not remembered as "unservable": asking again tries again (and times out).
        let again = get("/v1/slow/slow.mov".into()).await;
        assert_eq!(again.0, 504, "{}", again.1);
    });
    assert!(server.terminate().success());
}
