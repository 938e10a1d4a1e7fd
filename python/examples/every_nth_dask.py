"""Every Nth frame of every movie of a directory, through Dask: motion per movie.

Builds one lazy Dask array per movie (its shape from the movie's metadata; a run of frames per
chunk, one request each), then computes on a ``dask.distributed`` cluster — a local one by
default, or an existing one (``--scheduler tcp://host:8786``; workers need ``pip install
'lazycache[dask]'``). Prints, per movie, the mean luma and the mean absolute change between
consecutive sampled frames (a crude motion measure, the start of an optical-flow survey).

    python every_nth_dask.py http://127.0.0.1:8080/v1/demo         # scripts/run's demo library
    python every_nth_dask.py URL DIRECTORY --step 10 --scheduler tcp://scheduler:8786
"""

from __future__ import annotations

import argparse

import dask
import dask.array as da
import distributed

import lazycache
import lazycache.dask as lcd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="server URL with the mirror prefix, e.g. .../v1/demo")
    parser.add_argument("directory", nargs="?", default="", help="directory of movies")
    parser.add_argument("--step", type=int, default=10, help="take every Nth frame")
    parser.add_argument("--width", type=int, default=320, help="analyse at this width")
    parser.add_argument("--scheduler", default=None, help="address of an existing cluster")
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args()

    if args.scheduler:
        cluster = distributed.Client(args.scheduler)
    else:
        cluster = distributed.Client(
            distributed.LocalCluster(n_workers=2, threads_per_worker=2, dashboard_address=None)
        )
    with cluster:
        lc = lazycache.Client(args.url, api_key=args.api_key, progress=False)
        per_movie = lcd.every_nth(lc, args.directory, args.step, width=args.width, channels="gray")
        stats = {}
        for movie, frames in per_movie.items():
            levels = frames.astype("float32")
            change = da.fabs(levels[1:] - levels[:-1]).mean() if len(frames) > 1 else da.zeros(())
            stats[movie] = (frames.shape, levels.mean(), change)
            print(f"{movie}: {frames.shape[0]} frames in {len(frames.chunks[0])} chunks, lazy")
        (computed,) = dask.compute(stats)
    for movie, (shape, mean, change) in computed.items():
        print(
            f"{movie}: {shape[0]} frames of {shape[2]}x{shape[1]}, "
            f"mean luma {mean:.1f}, mean change between samples {change:.2f}"
        )


if __name__ == "__main__":
    main()
