//! Starting the real `lazycache` binary on a free loopback port, and talking to it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lazycache_testkit::procs::{ChildGuard, free_port, wait_for_port};

/// A running `lazycache serve`; killed when dropped unless stopped with [`Server::terminate`].
pub struct Server {
    pub base: String,
    pub addr: SocketAddr,
    guard: Option<ChildGuard>,
    log: tempfile::NamedTempFile,
    _cwd: tempfile::TempDir,
}

impl Server {
    /// `lazycache serve --bind 127.0.0.1 --port P --config /dev/null ARGS` with `envs`, once
    /// `/readyz` says it is serving.
    pub fn start(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let server = Self::spawn(args, envs);
        server.wait_ready(Duration::from_secs(30));
        server
    }

    /// Like [`Server::start`], but returns as soon as the port accepts connections (the
    /// server may still be starting).
    pub fn spawn(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let port = free_port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let cwd = tempfile::tempdir().unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_lazycache"));
        command
            .args(["serve", "--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--config", "/dev/null"])
            .args(args)
            .current_dir(cwd.path())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap());
        for (name, _) in std::env::vars()
            .filter(|(n, _)| n.starts_with("LAZYCACHE_") && n != "LAZYCACHE_FIXTURES_DIR")
        {
            command.env_remove(name);
        }
        command.envs(envs.iter().copied());
        let child = command.spawn().expect("spawn lazycache serve");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let server = Self {
            base: format!("http://{addr}"),
            addr,
            guard: Some(ChildGuard::new("lazycache", child)),
            log,
            _cwd: cwd,
        };
        wait_for_port(addr, Duration::from_secs(30), "lazycache serve");
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The server's process id (e.g. to read its memory from /proc).
    pub fn pid(&self) -> u32 {
        self.guard.as_ref().map_or(0, |guard| guard.child.id())
    }

    /// What the server wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Waits until `/readyz` answers 200, or panics after `timeout`.
    pub fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while raw_get_status(self.addr, "/readyz") != 200 {
            assert!(
                Instant::now() < deadline,
                "lazycache was not ready within {timeout:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and returns at once.
    pub fn send_sigterm(&self) {
        let guard = self.guard.as_ref().unwrap();
        let pid = guard.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then the exit status (within 40 s).
    pub fn terminate(self) -> std::process::ExitStatus {
        self.send_sigterm();
        self.wait_exit()
    }

    /// The exit status, once the process ends (within 40 s).
    pub fn wait_exit(mut self) -> std::process::ExitStatus {
        let mut guard = self.guard.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = guard.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "lazycache did not exit after SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// An HTTP client that does not follow redirects, with a bounded timeout.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256)
        .build()
        .unwrap()
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A header's value as text ("" when absent).
pub fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// A raw HTTP/1.1 GET with the path sent verbatim (clients normalise `..` away); the status.
pub fn raw_get_status(addr: SocketAddr, path: &str) -> u16 {
    lazycache_testkit::procs::http_request(addr, "GET", path, None)
}

/// The value of one metric line (`name{labels} value`), summed over matching lines.
pub fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub fn fixtures_dir() -> PathBuf {
    lazycache_testkit::fixtures::dir()
}

/// `--mirror` for the fixtures folder as the file:// mirror named `local`.
pub fn local_mirror() -> String {
    format!("local=file://{}/", fixtures_dir().display())
}

/// `--mirror` for an nginx origin.
pub fn nginx_mirror(nginx: &lazycache_testkit::nginx::Nginx) -> String {
    format!("{}/", nginx.url)
}

/// A server over an nginx origin with the memory tier only and raw output allowed (what the
/// exactness and byte-count tests need), plus `extra` flags.
pub fn over_nginx(nginx: &lazycache_testkit::nginx::Nginx, extra: &[&str]) -> Server {
    let mirror = nginx_mirror(nginx);
    let mut args = vec!["--mirror", &mirror, "--cache-dir", "", "--allow-raw-output"];
    args.extend_from_slice(extra);
    Server::start(&args, &[])
}

/// The go-lazycache prefix of an nginx origin on loopback.
pub fn nginx_prefix(nginx: &lazycache_testkit::nginx::Nginx) -> String {
    format!("/v1/127.0.0.1:{}/", nginx.addr.port())
}
