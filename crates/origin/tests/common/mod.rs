//! A small HTTP/1.1 origin for tests that misbehaves on purpose: each request is answered by a
//! closure that may send anything (lies, garbage, stalls, resets), over a real loopback socket.
#![allow(dead_code)] // each test binary uses part of it

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A parsed request line and headers.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    /// 0 for the first request the server saw, then 1, 2, …
    pub number: usize,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// `(first, last)` of a `bytes=FIRST-LAST` Range header.
    pub fn range(&self) -> Option<(u64, u64)> {
        let spec = self.header("range")?.strip_prefix("bytes=")?;
        let (first, last) = spec.split_once('-')?;
        Some((first.parse().ok()?, last.parse().ok()?))
    }
}

/// What the server does with one request.
pub enum Reply {
    /// Writes these bytes, then closes the connection.
    Raw(Vec<u8>),
    /// Writes the head, then zeros forever (until the client hangs up).
    Endless(String),
    /// Writes the head, then never anything more.
    StallAfterHead(String),
    /// Never answers.
    Stall,
    /// Closes the connection with a TCP reset.
    Reset,
}

impl Reply {
    /// A complete response with `Content-Length` and `Connection: close`.
    pub fn response(status: &str, headers: &[(&str, String)], body: &[u8]) -> Self {
        let mut head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        Self::Raw(bytes)
    }
}

/// The running server; stops when dropped.
pub struct TestOrigin {
    pub url: String,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl TestOrigin {
    /// Serves on a free loopback port, answering each request with `answer`.
    pub async fn start(answer: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let answer = Arc::new(answer);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let answer = answer.clone();
                let counter = counter.clone();
                tokio::spawn(async move { serve(stream, &*answer, &counter).await });
            }
        });
        Self {
            url,
            requests,
            task,
        }
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for TestOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: TcpStream,
    answer: &(dyn Fn(&Request) -> Reply + Send + Sync),
    counter: &AtomicUsize,
) {
    let Some(request) = read_request(&mut stream, counter).await else {
        return;
    };
    match answer(&request) {
        Reply::Raw(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
        Reply::Endless(head) => {
            if stream.write_all(head.as_bytes()).await.is_ok() {
                let zeros = vec![0u8; 64 << 10];
                while stream.write_all(&zeros).await.is_ok() {}
            }
        }
        Reply::StallAfterHead(head) => {
            let _ = stream.write_all(head.as_bytes()).await;
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        Reply::Stall => tokio::time::sleep(Duration::from_secs(60)).await,
        Reply::Reset => {
            let _ = stream.set_zero_linger();
        }
    }
}

async fn read_request(stream: &mut TcpStream, counter: &AtomicUsize) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 64 << 10 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let headers = lines
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let number = counter.fetch_add(1, Ordering::SeqCst);
    Some(Request {
        method,
        path,
        headers,
        number,
    })
}

/// Answers like a correct server holding `body` at every path: HEAD, ranges, ETag.
pub fn well_behaved(request: &Request, body: &[u8], etag: &str) -> Reply {
    let etag_header = ("ETag", etag.to_owned());
    if request.method == "HEAD" {
        let mut head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: {etag}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        head.shrink_to_fit();
        return Reply::Raw(head.into_bytes());
    }
    match request.range() {
        Some((first, last)) => {
            let last = last.min(body.len() as u64 - 1);
            let slice = &body[first as usize..=last as usize];
            Reply::response(
                "206 Partial Content",
                &[
                    etag_header,
                    (
                        "Content-Range",
                        format!("bytes {first}-{last}/{}", body.len()),
                    ),
                ],
                slice,
            )
        }
        None => Reply::response("200 OK", &[etag_header], body),
    }
}

/// A test body whose every byte depends on its offset.
pub fn patterned(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}
