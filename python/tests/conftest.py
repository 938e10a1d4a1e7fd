"""Fixtures: a real nginx origin and real lazycache servers on loopback, and the ffmpeg oracle.

Nothing is mocked: nginx (autoindex on, single process, its own config, pid and logs in a temp
dir, as crates/testkit/src/nginx.rs runs it) serves a library of fixture movies; lazycache
servers (the binary at $LAZYCACHE_BIN, default ${CARGO_TARGET_DIR:-target}/debug/lazycache)
mirror it with and without raw output and with an API key. The oracle is the ffmpeg CLI's
``select=eq(n\\,N-1)`` frame. A missing component (binary, nginx, ffmpeg, fixtures) fails the
tests that need it, with what to do: it never skips them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(
    os.environ.get(
        "LAZYCACHE_FIXTURES_DIR",
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lazycache-fixtures",
    )
)
API_KEY = "python-test-key"
MIRROR = "lib"

# Fixture movies served by nginx (scripts/fixtures makes them).
PRORES = "prores_hq_1080p.mov"  # 10-bit ProRes 422 HQ, 1920x1080, 75 frames
H264 = "h264_longgop_faststart.mp4"  # 640x360, 150 frames, GOP 60, B-frames
NOT_A_MOVIE = "bad_text.mov"
# Two movies made here, of one size, different content: a directory for time-lapses and Dask.
SERIES = ("series/a_20160724T000000Z.mp4", "series/b_20160724T030000Z.mp4")
SERIES_SOURCES = (
    "testsrc2=size=320x180:rate=25,scroll=h=0.013:v=0.007",
    "testsrc2=size=320x180:rate=25,hue=h=120,scroll=h=0.021",
)
SERIES_FRAMES = 40


def _require_tool(name: str, hint: str) -> str:
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
    )
    if path is None:
        pytest.fail(f"{name} is needed for these tests: {hint}", pytrace=False)
    return path


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited ({proc.returncode}):\n{log.read_text()}", pytrace=False)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"{what} did not listen on 127.0.0.1:{port} within 30 s", pytrace=False)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The origin's files: fixture movies (linked) and a ``series/`` of two made here."""
    ffmpeg = _require_tool("ffmpeg", "apt-get install ffmpeg (scripts/test installs it)")
    root = tmp_path_factory.mktemp("library")
    for name in (PRORES, H264, NOT_A_MOVIE):
        source = FIXTURES / name
        if not source.is_file():
            pytest.fail(f"fixture {source} is missing: run scripts/fixtures", pytrace=False)
        (root / name).symlink_to(source)
    (root / "series").mkdir()
    (root / "series" / "notes.txt").write_text("not a movie\n")
    for name, source in zip(SERIES, SERIES_SOURCES, strict=True):
        subprocess.run(
            [ffmpeg, "-v", "error", "-nostdin", "-f", "lavfi", "-i", source]
            + ["-frames:v", str(SERIES_FRAMES), "-c:v", "libx264", "-preset", "veryfast"]
            + ["-g", "12", "-bf", "2", "-pix_fmt", "yuv420p", "-movflags", "+faststart"]
            + [str(root / name)],
            check=True,
        )
    return root


@pytest.fixture(scope="session")
def origin(library: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """nginx serving the library with autoindex on loopback: its URL."""
    nginx = _require_tool("nginx", "apt-get install nginx-light (scripts/test installs it)")
    work = tmp_path_factory.mktemp("nginx")
    port = free_port()
    user = "user root;\n" if os.geteuid() == 0 else ""
    temps = "\n".join(
        f"    {k}_temp_path {work}/{k};"
        for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (work / "nginx.conf").write_text(
        f"""{user}daemon off;
master_process off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 512; }}
http {{
    types {{ video/quicktime mov; video/mp4 mp4; text/html html; }}
    default_type application/octet-stream;
    access_log {work}/access.log;
{temps}
    server {{
        listen 127.0.0.1:{port};
        root "{library}";
        autoindex on;
        location / {{ }}
    }}
}}
"""
    )
    log = work / "error.log"
    log.touch()
    proc = subprocess.Popen(
        [nginx, "-p", str(work), "-c", str(work / "nginx.conf"), "-e", str(log)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port, proc, "nginx", log)
        yield f"http://127.0.0.1:{port}/"
    finally:
        _stop(proc)


def lazycache_binary() -> Path:
    """$LAZYCACHE_BIN, else ${CARGO_TARGET_DIR:-target}/debug/lazycache of this repository."""
    given = os.environ.get("LAZYCACHE_BIN")
    if given:
        path = Path(given)
    else:
        target = Path(os.environ.get("CARGO_TARGET_DIR", "target"))
        path = (target if target.is_absolute() else REPO_ROOT / target) / "debug" / "lazycache"
    if not path.is_file():
        pytest.fail(
            f"lazycache binary {path} is missing: cargo build --bin lazycache "
            "(or set LAZYCACHE_BIN)",
            pytrace=False,
        )
    return path


@dataclass
class Servers:
    """Starts lazycache servers on demand (one per set of flags) and stops them all."""

    origin: str
    work: Path
    running: dict[tuple[str, ...], tuple[subprocess.Popen[bytes], str]] = field(
        default_factory=dict
    )

    def url(self, *flags: str) -> str:
        """``http://127.0.0.1:PORT`` of a server started with these extra flags (and, unless
        they name a ``--mirror``, the nginx origin as mirror ``MIRROR``)."""
        if flags not in self.running:
            mirror = () if "--mirror" in flags else ("--mirror", f"{MIRROR}={self.origin}")
            binary = lazycache_binary()
            port = free_port()
            log = self.work / f"lazycache-{len(self.running)}.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    [str(binary), "serve", "--bind", "127.0.0.1", "--port", str(port)]
                    + ["--config", "/dev/null", "--cache-dir", ""]
                    + [*mirror, *flags],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
                )
            _wait_listening(port, proc, f"lazycache {' '.join(flags)}", log)
            base = f"http://127.0.0.1:{port}"
            _wait_ready(base, proc, log)
            self.running[flags] = (proc, base)
        return self.running[flags][1]

    def stop(self) -> None:
        for proc, _ in self.running.values():
            _stop(proc)


def _wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    pytest.fail(f"lazycache at {base} never became ready:\n{log.read_text()}", pytrace=False)


@pytest.fixture(scope="session")
def servers(origin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """The lazycache servers of this session."""
    started = Servers(origin, tmp_path_factory.mktemp("lazycache"))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="session")
def raw_url(servers: Servers) -> str:
    """Mirror URL of a server with raw output (``.npy``) allowed."""
    return f"{servers.url('--allow-raw-output')}/v1/{MIRROR}"


@pytest.fixture(scope="session")
def png_url(servers: Servers) -> str:
    """Mirror URL of a server without raw output: ``.npy`` answers 501."""
    return f"{servers.url()}/v1/{MIRROR}"


@pytest.fixture(scope="session")
def key_url(servers: Servers) -> str:
    """Mirror URL of a server that needs ``X-Api-Key: API_KEY``."""
    return f"{servers.url('--allow-raw-output', '--api-key', API_KEY)}/v1/{MIRROR}"


# -- the ffmpeg oracle -------------------------------------------------------------------------

_PIX_FMTS = {
    "rgb24": (np.uint8, 3),
    "rgb48le": ("<u2", 3),
    "gray": (np.uint8, 1),
    "gray16le": ("<u2", 1),
}


@pytest.fixture(scope="session")
def oracle(library: Path) -> Callable[[str, list[int], str], np.ndarray]:
    """``oracle(movie, frames, pix_fmt)``: frames (1-based) as the ffmpeg CLI decodes them.

    One ffmpeg run per call, ``select=eq(n\\,N-1)+…`` in presentation order, converted by the
    CLI to ``pix_fmt`` (rgb24, rgb48le, gray, gray16le); shape ``(k, h, w[, 3])``.
    """
    cache: dict[tuple[str, tuple[int, ...], str], np.ndarray] = {}

    def frames(movie: str, numbers: list[int], pix_fmt: str = "rgb24") -> np.ndarray:
        key = (movie, tuple(numbers), pix_fmt)
        if key not in cache:
            cache[key] = _decode(library / movie, numbers, pix_fmt)
        return cache[key]

    return frames


def _decode(path: Path, numbers: list[int], pix_fmt: str) -> np.ndarray:
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries"]
        + ["stream=width,height", "-of", "json", str(path)],
        check=True,
        capture_output=True,
    )
    stream = json.loads(probe.stdout)["streams"][0]
    width, height = stream["width"], stream["height"]
    ordered = sorted(set(numbers))
    select = "+".join(f"eq(n\\,{n - 1})" for n in ordered)
    out = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(path)]
        + ["-map", "0:v:0", "-vf", f"select={select}", "-fps_mode", "passthrough"]
        + ["-f", "rawvideo", "-pix_fmt", pix_fmt, "-"],
        check=True,
        capture_output=True,
    )
    dtype, channels = _PIX_FMTS[pix_fmt]
    shape = (
        (len(ordered), height, width, channels) if channels == 3 else (len(ordered), height, width)
    )
    decoded = (
        np.frombuffer(out.stdout, dtype=dtype)
        .reshape(shape)
        .astype(np.dtype(dtype).newbyteorder("="))
    )
    return decoded[[ordered.index(n) for n in numbers]]


# -- a proxy in front of a server, to make it answer what a test needs ----------------------


@dataclass
class Proxy:
    """A local HTTP server that forwards to ``target``, but first answers the statuses queued
    (``fail_next``), holds the next answers back (``delay_next``), and 404s every ``frames/``
    request when ``no_frames_route``."""

    target: str
    url: str = ""
    seen: list[str] = field(default_factory=list)
    queued: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    no_frames_route: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, status: int, headers: dict[str, str] | None = None) -> None:
        """The next request is answered ``status`` (with lazycache's JSON error)."""
        with self.lock:
            self.queued.append((status, headers or {}))

    def delay_next(self, seconds: float) -> None:
        """The next request is answered only after ``seconds``."""
        with self.lock:
            self.delays.append(seconds)

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.seen.append(handler.path)
            failure = self.queued.pop(0) if self.queued else None
            delay = self.delays.pop(0) if self.delays else 0.0
        if delay:
            time.sleep(delay)
        if failure is None and self.no_frames_route and "/frames/" in handler.path:
            failure = (404, {})
        if failure is not None:
            status, headers = failure
            body = json.dumps({"URL": handler.path.split("?")[0], "Error": f"proxy says {status}"})
            handler.send_response(status)
            for k, v in headers.items():
                handler.send_header(k, v)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body.encode())
            return
        request = urllib.request.Request(self.target + handler.path)
        for name in ("X-Api-Key", "Authorization"):
            if handler.headers.get(name):
                request.add_header(name, handler.headers[name])
        try:
            with urllib.request.urlopen(request, timeout=120) as r:
                status, headers, body = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, headers, body = e.code, e.headers, e.read()
        handler.send_response(status)
        for name in ("Content-Type", "Retry-After", "X-Lazycache-Frame", "X-Lazycache-Frame-Time"):
            if headers.get(name):
                handler.send_header(name, headers[name])
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


@pytest.fixture
def proxy(servers: Servers) -> Iterator[Proxy]:
    """A :class:`Proxy` in front of the raw-output server."""
    state = Proxy(servers.url("--allow-raw-output"))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            # The client may have given up first (the timeout tests).
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                state.handle(self)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
