#!/usr/bin/env python3
"""The measuring half of scripts/bench: cold frames, first requests and warm hits, each beside
what users run otherwise, printed as Markdown tables (the setup is in scripts/bench)."""

import argparse
import http.client
import io
import os
import random
import re
import statistics
import subprocess
import tempfile
import time
import urllib.parse

FPS = 30000 / 1001


class Client:
    """One keep-alive connection, as a notebook's requests.Session or the Python client holds."""

    def __init__(self, base):
        url = urllib.parse.urlsplit(base)
        self.prefix = url.path.rstrip("/")
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)

    def get(self, path):
        started = time.perf_counter()
        self.conn.request("GET", f"{self.prefix}/{path}")
        response = self.conn.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise SystemExit(f"GET {path}: {response.status} {body[:200]!r}")
        return elapsed, body, response


def ms(seconds):
    return f"{1000 * seconds:.1f} ms"


def p50(values):
    return statistics.median(values)


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cold_frames(client, movie, frames, ext):
    """Seconds per request for each frame of `frames`, none asked before (index known)."""
    return [client.get(f"{movie}/frame/{n}.{ext}")[0] for n in frames]


def ffmpeg_cli(url, frames, out_dir):
    times = []
    for n in frames:
        started = time.perf_counter()
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-nostdin",
                "-ss",
                f"{(n - 1) / FPS:.4f}",
                "-i",
                url,
                "-frames:v",
                "1",
                "-y",
                os.path.join(out_dir, "cli.jpg"),
            ],
            check=True,
        )
        times.append(time.perf_counter() - started)
    return times


def pyav(url, frames, warmup):
    """Per random frame: seek, decode to it, Pillow JPEG q75; the container opened once."""
    import av

    container = av.open(url)
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    times = []
    for i, n in enumerate(warmup + frames):
        started = time.perf_counter()
        target = int((n - 1) / FPS / stream.time_base)
        container.seek(target, stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            if frame.pts >= target - 1:
                frame.to_image().save(io.BytesIO(), "JPEG", quality=75)
                break
        if i >= len(warmup):
            times.append(time.perf_counter() - started)
    container.close()
    return times


def origin_requests(log_path, uri):
    with open(log_path) as log:
        lines = [line.split() for line in log]
    mine = [fields for fields in lines if len(fields) >= 5 and fields[1] == uri]
    heads = sum(1 for fields in mine if fields[0] == "HEAD")
    ranges = [fields[2].strip('"') for fields in mine if fields[0] == "GET"]
    sent = sum(int(fields[-1]) for fields in mine)
    return heads, ranges, sent


def first_requests(client, log_path, count):
    rows = []
    for k in range(1, count + 1):
        with open(log_path, "w"):
            pass
        elapsed, body, _ = client.get(f"camhd_{k}.mov/frame/1.jpg")
        time.sleep(0.2)  # nginx writes its log line after the response
        heads, ranges, sent = origin_requests(log_path, f"/camhd_{k}.mov")
        rows.append((elapsed, heads, ranges, sent, len(body)))
    return rows


def wrk(url, duration):
    out = subprocess.run(
        ["wrk", "-t2", "-c64", f"-d{duration}", "--latency", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, float(p99.group(1)) * scale, int(errors.group(1)) if errors else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    for name in (
        "lazycache",
        "origin",
        "origin-log",
        "static",
        "static-root",
        "movie",
        "duration",
    ):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold", type=int, default=40)
    parser.add_argument("--firsts", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(15)
    lazycache = Client(args.lazycache)
    print(f"# scripts/bench, {os.cpu_count()} cores, load at the start {load()}")

    # First requests of unseen movies come first, while nothing of the 16 GB file is indexed.
    rows = first_requests(lazycache, args.origin_log, args.firsts)
    print(
        "\n## First request of an unseen 16 GB, 25,200-frame ProRes movie (moov at the end):"
        " metadata + frame 1 as JPEG\n"
    )
    print("| run | time | origin requests | range GETs | bytes from origin |")
    print("|---|---|---|---|---|")
    for k, (elapsed, heads, ranges, sent, _) in enumerate(rows, 1):
        print(
            f"| {k} | {ms(elapsed)} | HEAD ×{heads}, GET ×{len(ranges)} | {' '.join(ranges)} |"
            f" {sent:,} |"
        )
    print(f"\np50 {ms(p50([r[0] for r in rows]))}")

    numbers = rng.sample(range(1, 151), 150)
    _, metadata, _ = lazycache.get(args.movie)  # the index is known before timing
    assert b'"NumFrames":150' in metadata.replace(b" ", b""), metadata[:200]
    cold_runs = []
    for run in range(args.runs):
        cold_runs.append(
            cold_frames(
                lazycache,
                args.movie,
                numbers[run * args.cold : (run + 1) * args.cold],
                "jpg",
            )
        )
    huge = "camhd_1.mov"  # indexed above; its frames repeat the 150 but are new to the cache
    other_frames = rng.sample(range(151, 25201), 40)
    png = cold_frames(lazycache, huge, other_frames[:20], "png")
    npy = cold_frames(lazycache, huge, other_frames[20:], "npy")
    with tempfile.TemporaryDirectory() as scratch:
        cli = ffmpeg_cli(
            f"{args.origin}/{args.movie}", rng.sample(range(1, 151), 10), scratch
        )
    av_times = pyav(
        f"{args.origin}/{args.movie}",
        rng.sample(range(1, 151), 20),
        rng.sample(range(1, 151), 3),
    )

    print(
        f"\n## Cold frame, index known: {args.movie} (noisy 1080p ProRes 422 HQ, ~1 MB/frame),"
        " distinct random frames, one request at a time\n"
    )
    print("| what | p50 | p90 | frames |")
    print("|---|---|---|---|")
    for run, times in enumerate(cold_runs, 1):
        print(
            f"| lazycache JPEG q75, run {run} | {ms(p50(times))} |"
            f" {ms(statistics.quantiles(times, n=10)[-1])} | {len(times)} |"
        )
    for name, times in (("lazycache PNG", png), ("lazycache .npy", npy)):
        print(
            f"| {name} | {ms(p50(times))} | {ms(statistics.quantiles(times, n=10)[-1])} |"
            f" {len(times)} |"
        )
    print(
        f"| ffmpeg -ss T -i URL -frames:v 1 out.jpg | {ms(p50(cli))} |"
        f" {ms(statistics.quantiles(cli, n=10)[-1])} | {len(cli)} |"
    )
    print(
        f"| PyAV, opened once, seek + decode + Pillow JPEG q75 | {ms(p50(av_times))} |"
        f" {ms(statistics.quantiles(av_times, n=10)[-1])} | {len(av_times)} |"
    )
    ours = statistics.median([p50(times) for times in cold_runs])
    print(
        f"\nlazycache JPEG p50 (median of runs) {ms(ours)}: {p50(cli) / ours:.1f}× faster than the"
        f" ffmpeg CLI, {p50(av_times) / ours:.2f}× faster than warm PyAV"
    )

    # Warm hits: one frame cached in memory, and the same bytes as a static file.
    path = f"{args.movie}/frame/{numbers[0]}.jpg"
    _, body, response = lazycache.get(path)
    with open(os.path.join(args.static_root, "frame.jpg"), "wb") as f:
        f.write(body)
    hit_url = f"{args.lazycache}/{path}"
    static_url = f"{args.static}/frame.jpg"
    print(
        f"\n## Warm hits: {len(body):,}-byte JPEG, `wrk -t2 -c64 -d{args.duration} --latency`"
        f" (cache: {response.getheader('X-Lazycache-Cache')})\n"
    )
    print("| server | req/s | p99 | non-2xx |")
    print("|---|---|---|---|")
    results = {"lazycache": [], "nginx": []}
    for _ in range(2):
        for name, url in (("lazycache", hit_url), ("nginx", static_url)):
            rate, p99, errors = wrk(url, args.duration)
            results[name].append(rate)
            print(f"| {name} | {rate:,.0f} | {ms(p99)} | {errors} |")
    ratio = statistics.mean(results["lazycache"]) / statistics.mean(results["nginx"])
    print(f"\nlazycache / nginx static: {100 * ratio:.0f} %")
    print(f"\n# load at the end {load()}")


if __name__ == "__main__":
    main()
