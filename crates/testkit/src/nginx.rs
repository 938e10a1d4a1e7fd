//! nginx with autoindex on loopback, serving a folder, with an access log that records each
//! request's Range header and body bytes sent — the ground truth of what an origin was asked.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::procs::{ChildGuard, free_port, http_request, require_tool};

/// Path of the sentinel requests that flush the access log; never a file.
const SYNC_PREFIX: &str = "/__lazycache_log_sync/";

/// A running nginx (single process, no daemon, everything in a temp dir); killed when dropped.
pub struct Nginx {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    /// The process, e.g. to [`ChildGuard::pause`] it and see how its clients cope.
    pub child: ChildGuard,
}

/// One line of the access log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessLogEntry {
    pub method: String,
    /// The decoded URI path, as nginx logs `$uri`.
    pub uri: String,
    pub status: u16,
    /// The request's Range header, if any.
    pub range: Option<String>,
    /// `$body_bytes_sent`: body bytes nginx sent (headers excluded).
    pub body_bytes_sent: u64,
    /// `$connection`: the serial number of the client connection the request came on.
    pub connection: u64,
    /// When nginx started and finished serving the request, in milliseconds since the epoch
    /// (`$msec` − `$request_time`, and `$msec`: millisecond resolution).
    pub started_ms: u64,
    pub finished_ms: u64,
}

impl Nginx {
    /// Serves `root` with `autoindex on` on a free loopback port.
    pub fn serve(root: &Path) -> Self {
        Self::serve_with(root, "")
    }

    /// Serves `root` sending each response at most `bytes_per_second` (nginx's `limit_rate`), so
    /// that requests last long enough for their overlap to be read off the access log.
    pub fn serve_throttled(root: &Path, bytes_per_second: u64) -> Self {
        Self::serve_with(root, &format!("limit_rate {bytes_per_second};"))
    }

    fn serve_with(root: &Path, server_directives: &str) -> Self {
        let bin = require_tool(
            "nginx",
            "apt-get install nginx-light (scripts/test installs it)",
        );
        let dir = tempfile::tempdir().expect("nginx temp dir");
        let root = root.canonicalize().expect("nginx root");
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config(dir.path(), &root, port, server_directives))
            .expect("write nginx.conf");
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn nginx");
        let mut guard = ChildGuard::new("nginx", child);
        wait_until_listening(&mut guard, addr, dir.path());
        Self {
            url: format!("http://127.0.0.1:{port}"),
            addr,
            dir,
            child: guard,
        }
    }

    /// Every request served so far, oldest first.
    ///
    /// nginx logs a request just after sending its last byte, so a client can hold a whole
    /// response before its line is written. A sentinel request, served by the same single
    /// event loop after it, is awaited first: once it is logged, so is everything before it.
    pub fn access_log(&self) -> Vec<AccessLogEntry> {
        self.sync_log();
        self.read_log()
            .into_iter()
            .filter(|entry| !entry.uri.starts_with(SYNC_PREFIX))
            .collect()
    }

    /// GETs of `uri` logged so far, and the body bytes they sent.
    pub fn gets_of(&self, uri: &str) -> (usize, u64) {
        let gets: Vec<_> = self
            .access_log()
            .into_iter()
            .filter(|e| e.method == "GET" && e.uri == uri)
            .collect();
        (gets.len(), gets.iter().map(|e| e.body_bytes_sent).sum())
    }

    /// Forgets the requests logged so far (nginx appends, so truncating is safe).
    pub fn clear_access_log(&self) {
        self.sync_log();
        std::fs::write(self.access_log_path(), b"").expect("truncate access log");
    }

    fn sync_log(&self) {
        static SEQUENCE: AtomicU64 = AtomicU64::new(0);
        let uri = format!("{SYNC_PREFIX}{}", SEQUENCE.fetch_add(1, Ordering::Relaxed));
        http_request(self.addr, "GET", &uri, None);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.read_log().iter().any(|entry| entry.uri == uri) {
            assert!(Instant::now() < deadline, "nginx never logged {uri}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn read_log(&self) -> Vec<AccessLogEntry> {
        let text = std::fs::read_to_string(self.access_log_path()).unwrap_or_default();
        text.lines().filter_map(parse_line).collect()
    }

    fn access_log_path(&self) -> PathBuf {
        self.dir.path().join("access.log")
    }
}

fn config(dir: &Path, root: &Path, port: u16, server_directives: &str) -> String {
    let d = dir.display();
    let mut conf = String::new();
    // As root, nginx would switch to `nobody`, who cannot read a tester's home.
    if running_as_root() {
        conf.push_str("user root;\n");
    }
    write!(
        conf,
        r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 512; }}
http {{
    types {{ video/quicktime mov; video/mp4 mp4; text/html html; }}
    default_type application/octet-stream;
    log_format ranges "$request_method\t$uri\t$status\t$http_range\t$body_bytes_sent\t$connection\t$msec\t$request_time";
    access_log {d}/access.log ranges;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 10000;
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        root "{root}";
        autoindex on;
        {server_directives}
        location / {{ }}
    }}
}}
"#,
        root = root.display()
    )
    .expect("format nginx.conf");
    conf
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .map(|line| line.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

fn wait_until_listening(guard: &mut ChildGuard, addr: SocketAddr, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = guard.child.try_wait() {
            let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            panic!("nginx exited with {status} before listening on {addr}:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("nginx did not listen on {addr} within 20 s");
}

fn parse_line(line: &str) -> Option<AccessLogEntry> {
    let mut fields = line.split('\t');
    let method = fields.next()?.to_owned();
    let uri = fields.next()?.to_owned();
    let status = fields.next()?.parse().ok()?;
    let range = fields.next().filter(|r| *r != "-").map(str::to_owned);
    let body_bytes_sent = fields.next()?.trim().parse().ok()?;
    let connection = fields.next()?.trim().parse().ok()?;
    let finished_ms = seconds_to_ms(fields.next()?)?;
    let started_ms = finished_ms.saturating_sub(seconds_to_ms(fields.next()?)?);
    Some(AccessLogEntry {
        method,
        uri,
        status,
        range,
        body_bytes_sent,
        connection,
        started_ms,
        finished_ms,
    })
}

/// nginx's "1733140000.123" (seconds, three decimals) in milliseconds.
fn seconds_to_ms(text: &str) -> Option<u64> {
    let (seconds, millis) = text.trim().split_once('.')?;
    Some(seconds.parse::<u64>().ok()? * 1000 + millis.parse::<u64>().ok()?)
}
