//! `s3://` stores take the AWS environment whole: `AWS_ENDPOINT_URL` and `AWS_ALLOW_HTTP` reach
//! the client next to our timeouts (a plain-HTTP local endpoint gets the request), and without
//! `AWS_ALLOW_HTTP` the same endpoint is refused. One test in this binary: it sets process
//! environment variables, which no other thread may read meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use lazycache_store::{ClientSettings, open};
use object_store::{ObjectStore, RetryConfig};
use url::Url;

/// An "S3 endpoint" that answers every request 404 and reports its request lines.
fn endpoint() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

fn serve_404s(listener: TcpListener) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut header = String::new();
            while reader.read_line(&mut header).unwrap() > 2 {
                header.clear();
            }
            let _ = sender.send(request_line.trim().to_owned());
            let _ = stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    receiver
}

fn head_missing(url: &str) -> object_store::Result<object_store::ObjectMeta> {
    let settings = ClientSettings::new(
        Duration::from_secs(2),
        Duration::from_secs(5),
        RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        },
    );
    let store = open(&Url::parse(url).unwrap(), &settings).unwrap();
    let path = store.location.prefix().child("missing.mov");
    // A runtime per call, dropped before the environment changes again.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), store.store.head(&path))
            .await
            .expect("head finished")
    })
}

#[test]
fn aws_environment_survives_our_timeouts() {
    let (listener, base) = endpoint();
    // SAFETY: the only test of this binary changes the environment while no other thread of
    // its own reads it (the endpoint thread does not; no runtime exists at these points).
    unsafe {
        std::env::set_var("AWS_ENDPOINT_URL", &base);
        std::env::set_var("AWS_ALLOW_HTTP", "true");
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
        std::env::set_var("AWS_REGION", "us-east-1");
    }
    let requests = serve_404s(listener);

    let found = head_missing("s3://bucket/movies");
    assert!(
        matches!(found, Err(object_store::Error::NotFound { .. })),
        "{found:?}"
    );
    let request = requests.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(request, "HEAD /bucket/movies/missing.mov HTTP/1.1");

    // SAFETY: as above.
    unsafe { std::env::remove_var("AWS_ALLOW_HTTP") };
    let refused = head_missing("s3://bucket/movies");
    let refusal = format!("{refused:?}");
    assert!(
        refused.is_err() && refusal.contains("BadScheme"),
        "refused as plain HTTP: {refusal}"
    );
    assert!(
        requests.recv_timeout(Duration::from_millis(500)).is_err(),
        "no plain-HTTP request without AWS_ALLOW_HTTP"
    );
}
