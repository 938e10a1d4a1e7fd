"""A soak of `lazycache serve` (run by scripts/soak; not in CI).

Loopback only, bounded in time and requests. Mixed traffic at CONNECTIONS concurrent clients for
DURATION seconds against the release binary, with nginx as the origin and fake-gcs-server as the
object-store tier, which is stopped a third of the way in and started again (on the same port,
empty) at two thirds:
  memory hits (a few hot frames), disk hits (frames pushed out of a small memory tier), cold
  frames (random frame and size), listings, metadata, bad requests (400/404), and clients that
  disconnect mid-response.
It samples the server's RSS and open file descriptors every SAMPLE seconds and reports the
requests served by kind and status, any 5xx (503 is the only one allowed, and is counted), RSS
and fds after the warm-up (flat: the peak of the last third within 5 % of the first third's),
and the write-behind drops from /metrics.
Exits 1 if a 5xx other than 503 was seen or RSS/fds grew past the bound.
"""

import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections import Counter

BIN, FIXTURES, GCS_BIN, WORK = sys.argv[1:5]
DURATION = float(os.environ.get("DURATION", "600"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "64"))
SAMPLE = float(os.environ.get("SAMPLE", "10"))
WARMUP = float(os.environ.get("WARMUP", str(DURATION / 5)))
MOVIE = "prores_hq_1080p.mov"
LONG_GOP = "h264_longgop_faststart.mp4"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, limit=20):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"soak: nothing listens on {port}")


def start_nginx():
    port = free_port()
    conf = os.path.join(WORK, "nginx.conf")
    user = "user root;\n" if os.getuid() == 0 else ""
    with open(conf, "w") as f:
        f.write(
            f"{user}daemon off; master_process off; worker_processes 1; pid {WORK}/nginx.pid;\n"
            f"error_log {WORK}/nginx-error.log; events {{}}\n"
            f"http {{ access_log off; client_body_temp_path {WORK}; proxy_temp_path {WORK};\n"
            f"fastcgi_temp_path {WORK}; uwsgi_temp_path {WORK}; scgi_temp_path {WORK};\n"
            f"server {{ listen 127.0.0.1:{port}; root {FIXTURES}; autoindex on; }} }}\n"
        )
    proc = subprocess.Popen(["nginx", "-c", conf])
    wait_port(port)
    return proc, port


def start_gcs(port):
    proc = subprocess.Popen(
        [GCS_BIN, "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1"]
        + [
            "-port",
            str(port),
            "-public-host",
            f"127.0.0.1:{port}",
            "-log-level",
            "error",
        ],
        stdout=subprocess.DEVNULL,
    )
    wait_port(port)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request(
        "POST",
        "/storage/v1/b",
        body=b'{"name":"soak"}',
        headers={"Content-Type": "application/json"},
    )
    conn.getresponse().read()
    conn.close()
    return proc


ACCOUNTED = (
    'lazycache_cache_stored_bytes{tier="memory"}',
    "lazycache_decoder_state_bytes",
)


def accounted_bytes(port):
    """Bytes the server says its bounded in-memory holders keep: the memory tier and the kept
    decoder states (what RSS should follow while they fill, and not grow past)."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
    except (OSError, http.client.HTTPException):
        return -1
    total = 0
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name in ACCOUNTED:
            total += int(float(value))
    return total


def proc_sample(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss * 1024, fds


def main():
    nginx, nginx_port = start_nginx()
    gcs_port = free_port()
    gcs = start_gcs(gcs_port)
    port = free_port()
    log = open(os.path.join(WORK, "server.log"), "w")  # noqa: SIM115 (open for the whole run)
    env = dict(
        os.environ,
        STORAGE_EMULATOR_HOST=f"http://127.0.0.1:{gcs_port}",
        RUST_LOG="warn",
    )
    server = subprocess.Popen(
        [
            BIN,
            "serve",
            "--config",
            "/dev/null",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        + ["--mirror", f"soak=http://127.0.0.1:{nginx_port}/"]
        + ["--cache-dir", os.path.join(WORK, "cache"), "--disk-cache-size", "256MiB"]
        + ["--memory-cache-size", "48MiB", "--object-store", "gs://soak/lazycache"]
        + ["--decode-queue-timeout", "5s"],
        env=env,
        stderr=log,
    )
    wait_port(port)
    base = "/v1/soak/"
    for _ in range(200):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                break
        except OSError:
            pass
        time.sleep(0.1)

    counts = Counter()
    bad = Counter()
    lock = threading.Lock()
    stop = time.time() + DURATION

    def one(rng, conn):
        kind = rng.choices(
            ["memory", "disk", "cold", "listing", "metadata", "bad", "disconnect"],
            weights=[50, 15, 10, 8, 7, 6, 4],
        )[0]
        if kind == "memory":
            path = f"{base}{MOVIE}/frame/{rng.randint(1, 3)}.jpg?width=640"
        elif kind == "disk":
            # 300 variants of 40-300 kB each outgrow the 48 MiB memory tier: many come from disk.
            path = f"{base}{MOVIE}/frame/{rng.randint(1, 75)}.jpg?width={rng.choice([320, 480, 800, 1280])}"
        elif kind == "cold":
            movie = rng.choice([MOVIE, LONG_GOP])
            frame = rng.randint(1, 75 if movie == MOVIE else 150)
            path = f"{base}{movie}/frame/{frame}.png?width={rng.randint(16, 1900)}"
        elif kind == "listing":
            path = base
        elif kind == "metadata":
            path = f"{base}{rng.choice([MOVIE, LONG_GOP])}"
        elif kind == "bad":
            path = rng.choice(
                [
                    f"{base}{MOVIE}/frame/0.jpg",
                    f"{base}{MOVIE}/frame/x.jpg",
                    f"{base}nope.mov",
                    f"{base}{MOVIE}/frame/3.jpg?quality=900",
                ]
            )
        else:
            path = f"{base}{MOVIE}/frame/{rng.randint(1, 75)}.png"
        conn.request("GET", path)
        response = conn.getresponse()
        if kind == "disconnect":
            response.read(1000)
            conn.close()
            status = response.status
            conn = None
        else:
            response.read()
            status = response.status
        with lock:
            counts[(kind, status)] += 1
            if status >= 500 and status != 503:
                bad[(kind, status, path)] += 1
        return conn

    def client(seed):
        rng = random.Random(seed)
        conn = None
        while time.time() < stop:
            try:
                conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn = one(rng, conn)
            except (OSError, http.client.HTTPException) as e:
                with lock:
                    counts[("client-error", type(e).__name__)] += 1
                if conn:
                    conn.close()
                conn = None

    samples = []

    def sampler():
        started = time.time()
        while time.time() < stop:
            samples.append(
                (
                    time.time() - started,
                    *proc_sample(server.pid),
                    accounted_bytes(port),
                )
            )
            time.sleep(SAMPLE)

    def store_outage():
        nonlocal gcs
        time.sleep(DURATION / 3)
        gcs.terminate()
        gcs.wait()
        print(f"soak: object store stopped at {DURATION / 3:.0f} s", flush=True)
        time.sleep(DURATION / 3)
        gcs = start_gcs(gcs_port)
        print(
            f"soak: object store started again at {2 * DURATION / 3:.0f} s", flush=True
        )

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CONNECTIONS)]
    threads += [threading.Thread(target=sampler), threading.Thread(target=store_outage)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    metrics = conn.getresponse().read().decode()
    drops = [
        line
        for line in metrics.splitlines()
        if line.startswith("lazycache_cache_dropped_writes_total")
    ]
    server.terminate()
    server.wait(timeout=60)
    log.close()
    gcs.terminate()
    nginx.terminate()

    total = sum(v for (k, _), v in counts.items() if k != "client-error")
    print(
        f"\nsoak: {DURATION:.0f} s, {CONNECTIONS} connections, load {os.getloadavg()}"
    )
    print(f"requests answered: {total} ({total / DURATION:.0f}/s)")
    for key, value in sorted(counts.items(), key=str):
        print(f"  {key}: {value}")
    print(f"5xx other than 503: {sum(bad.values())}")
    for key, value in list(bad.items())[:10]:
        print(f"  {key}: {value}")
    after = [s for s in samples if s[0] >= WARMUP]
    print("samples (s, RSS MiB, fds, memory tier + decoder states MiB):")
    for t, rss, fds, accounted in samples:
        print(f"  {t:6.0f} {rss / 2**20:8.1f} {fds:6d} {accounted / 2**20:8.1f}")
    ok = not bad
    # Flat: the peak of the last third after the warm-up is within 5 % of the first third's
    # (what a leak breaks; client connections coming and going move both alike).
    third = max(len(after) // 3, 1)
    for name, index in (("RSS", 1), ("fds", 2)):
        values = [s[index] for s in after]
        if len(values) >= 2:
            early, late = max(values[:third]), max(values[-third:])
            growth = (late - early) / max(early, 1)
            print(
                f"{name} after the {WARMUP:.0f} s warm-up: min {min(values)}, max {max(values)}, "
                f"peak of the first third {early}, of the last third {late}: {growth:+.1%}"
            )
            ok = ok and growth <= 0.05
    print("write-behind drops:", *drops, sep="\n  ")
    print(json.dumps({"ok": ok}))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
