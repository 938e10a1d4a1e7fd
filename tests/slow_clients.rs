//! Slow clients cannot hold the server (slowloris): a request head that trickles in, or a
//! connection that never sends one, is closed within the 5 s request-head bound, while other
//! clients are answered at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{Server, local_mirror, raw_get_status};

/// Reads until the server closes the connection (or `limit` passes); when it closed.
fn closed_within(mut stream: TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buffer = [0u8; 1024];
    while started.elapsed() < limit {
        match stream.read(&mut buffer) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(started.elapsed());
            }
            Err(_) => {}
        }
    }
    None
}

#[test]
fn trickling_and_silent_connections_are_closed_and_others_are_served() {
    let server = Server::start(&["--mirror", &local_mirror(), "--cache-dir", ""], &[]);
    // 200 connections that never send a byte.
    let silent: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    // One that sends its request head a byte every 300 ms, never finishing it.
    let trickle = TcpStream::connect(server.addr).unwrap();
    let mut writer = trickle.try_clone().unwrap();
    let trickler = std::thread::spawn(move || {
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
            .iter()
            .cycle()
            .take(60)
        {
            if writer.write_all(&[*byte]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    // Everyone else is served at once.
    for _ in 0..5 {
        let asked = Instant::now();
        assert_eq!(raw_get_status(server.addr, "/healthz"), 200);
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "{:?}",
            asked.elapsed()
        );
    }
    let trickle_closed = closed_within(trickle, Duration::from_secs(10));
    assert!(
        trickle_closed.is_some(),
        "a head trickling in for 10 s was not cut off"
    );
    let still_open = silent
        .into_iter()
        .take(10)
        .filter(|stream| {
            closed_within(stream.try_clone().unwrap(), Duration::from_secs(8)).is_none()
        })
        .count();
    assert_eq!(
        still_open, 0,
        "silent connections outlived the request-head bound"
    );
    trickler.join().unwrap();
    assert_eq!(raw_get_status(server.addr, "/healthz"), 200);
    assert!(server.terminate().success());
}
