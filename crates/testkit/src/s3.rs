//! moto's S3 (`moto_server`, from PyPI's `moto[server]`) on a free loopback port, in memory.
//!
//! moto's server runs in its default mode: requests need no valid signature. The set-up chores
//! here (buckets, uploads, listings, reads) are therefore plain HTTP/1.1 requests; lazycache
//! itself talks to it with object_store's signed S3 client, configured by [`S3::env`].

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::procs::{ChildGuard, free_port, require_tool, wait_for_port};

/// The region the clients are told; moto accepts any.
pub const REGION: &str = "us-east-1";

/// A running moto S3 server; killed when dropped.
pub struct S3 {
    /// `http://127.0.0.1:PORT`, the value for `AWS_ENDPOINT`.
    pub url: String,
    pub addr: SocketAddr,
    /// The process, e.g. to [`ChildGuard::pause`] it and see how its clients cope.
    pub child: ChildGuard,
    log: tempfile::NamedTempFile,
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
}

impl S3 {
    /// Starts a fresh, empty server.
    pub fn start() -> Self {
        let bin = require_tool(
            "moto_server",
            "run scripts/test (it pip-installs moto[server] into .venv from scripts/requirements-test.txt)",
        );
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        // moto logs every request; kept in a file for the failure messages below.
        let log = tempfile::NamedTempFile::new().expect("moto log file");
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.reopen().expect("moto log"))
            .stderr(log.reopen().expect("moto log"))
            .spawn()
            .expect("spawn moto_server");
        let guard = ChildGuard::new("moto_server", child);
        wait_for_port(addr, Duration::from_secs(30), "moto_server");
        Self {
            url: format!("http://127.0.0.1:{port}"),
            addr,
            child: guard,
            log,
        }
    }

    /// What moto logged so far (its request log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// The environment an object_store S3 client (lazycache's `s3://` mirrors and object-store
    /// tier) needs to use this server: path-style requests over plain HTTP, dummy credentials.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", self.url.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_DEFAULT_REGION", REGION.into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "false".into()),
        ]
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, name: &str) {
        let (status, body) = self.request("PUT", &format!("/{name}"), &[], b"");
        assert!(
            status == 200,
            "moto refused to create bucket {name}: HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }

    /// Uploads `bytes` as `bucket/key` (one PUT).
    pub fn put_object(&self, bucket: &str, key: &str, bytes: &[u8]) {
        // moto reads a form-encoded body (curl's default type) as a form: say what it is.
        let (status, body) = self.request(
            "PUT",
            &object_path(bucket, key),
            &[("Content-Type", "application/octet-stream")],
            bytes,
        );
        assert!(
            status == 200,
            "moto refused to store {bucket}/{key}: HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        );
        let listed = self.list(bucket, key);
        assert!(
            listed
                .iter()
                .any(|o| o.key == key && o.size == bytes.len() as u64),
            "{bucket}/{key} is not stored whole: {listed:?}"
        );
    }

    /// Uploads a local file as `bucket/key`.
    pub fn put_file(&self, bucket: &str, key: &str, file: &Path) {
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        self.put_object(bucket, key, &bytes);
    }

    /// The bytes of `bucket/key`, or `None` when there is no such object.
    pub fn get_object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        // moto refuses anonymous reads of private objects (403); any signed-looking request is
        // taken, the signature is not checked in its default mode.
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20200101/{REGION}/s3/aws4_request, \
             SignedHeaders=host, Signature=0000"
        );
        let (status, body) = self.request(
            "GET",
            &object_path(bucket, key),
            &[("Authorization", &authorization)],
            b"",
        );
        match status {
            200 => Some(body),
            404 => None,
            _ => panic!(
                "moto answered HTTP {status} for {bucket}/{key}: {}",
                String::from_utf8_lossy(&body)
            ),
        }
    }

    /// Every object of `bucket` whose key starts with `prefix`, in key order.
    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<ListedObject> {
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = format!("list-type=2&prefix={}", encode(prefix, false));
            if let Some(token) = &token {
                query.push_str(&format!("&continuation-token={}", encode(token, false)));
            }
            let (status, body) = self.request("GET", &format!("/{bucket}?{query}"), &[], b"");
            let xml = String::from_utf8_lossy(&body);
            assert!(
                status == 200,
                "moto refused to list {bucket}: HTTP {status}: {xml}"
            );
            for contents in elements(&xml, "Contents") {
                let key = elements(contents, "Key").next().expect("a listed key");
                let size = elements(contents, "Size").next().expect("a listed size");
                objects.push(ListedObject {
                    key: unescape_xml(key),
                    size: size.parse().expect("a listed size is a number"),
                });
            }
            token = elements(&xml, "NextContinuationToken")
                .next()
                .map(unescape_xml);
            if token.is_none() {
                return objects;
            }
        }
    }

    /// One HTTP/1.1 request (`Connection: close`); the status and the body.
    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))
            .expect("connect to moto");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.addr,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).expect("write request");
        stream.write_all(body).expect("write body");
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .unwrap_or_else(|e| panic!("{method} {path} to moto: {e}\n{}", self.log()));
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| {
                panic!(
                    "no HTTP head in moto's answer to {method} {path}: {:?}",
                    String::from_utf8_lossy(&response)
                )
            });
        let head = String::from_utf8_lossy(&response[..split]);
        assert!(
            !head
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked"),
            "moto answered {method} {path} chunked, which this helper does not read"
        );
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP status in moto's answer to {method} {path}"));
        (status, response[split + 4..].to_vec())
    }
}

/// `/bucket/key` with the key percent-encoded, its slashes kept.
fn object_path(bucket: &str, key: &str) -> String {
    format!("/{bucket}/{}", encode(key, true))
}

/// Percent-encoding of everything but RFC 3986's unreserved characters (and `/` if asked).
fn encode(text: &str, keep_slashes: bool) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b'/' if keep_slashes => "/".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The texts of the `<name>…</name>` elements of `xml` (not nested in themselves).
fn elements<'a>(xml: &'a str, name: &str) -> impl Iterator<Item = &'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut rest = xml;
    std::iter::from_fn(move || {
        let start = rest.find(&open)? + open.len();
        let end = start + rest[start..].find(&close)?;
        let text = &rest[start..end];
        rest = &rest[end + close.len()..];
        Some(text)
    })
}

fn unescape_xml(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}
