"""Time-lapse: the same frame of every movie of a directory, side by side in one image.

CamHD records one movie every three hours; frame N of each, in file-name order, is a
time-lapse of the scene. Fetches them concurrently (one request per movie), at one size so
that movies of different sizes stack, prints when each was shown, and writes a montage.

    python timelapse.py http://127.0.0.1:8080/v1/demo            # scripts/run's demo library
    python timelapse.py URL DIRECTORY --frame 5000 --width 480 --out lapse.jpg
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

import lazycache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="server URL with the mirror prefix, e.g. .../v1/demo")
    parser.add_argument("directory", nargs="?", default="", help="directory of movies")
    parser.add_argument("--frame", type=int, default=1, help="frame number (from 1)")
    parser.add_argument("--width", type=int, default=320, help="width of each picture")
    parser.add_argument("--height", type=int, default=180, help="height of each picture")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--out", default="timelapse.png", help="montage image to write")
    args = parser.parse_args()

    with lazycache.Client(args.url, api_key=args.api_key) as lc:
        movies = lc.movies(args.directory)
        print(f"{len(movies)} movies in {args.directory or '/'}")
        lapse = lc.across(movies, args.frame, width=args.width, height=args.height)
        for movie, picture in zip(movies, lapse, strict=True):
            info = lc.frame_info(movie, args.frame, width=16)
            when = info.timestamp.isoformat() if info.timestamp else f"{info.time:.3f} s in"
            print(f"{movie}: frame {info.frame} ({when}), mean level {picture.mean():.1f}")
    Image.fromarray(np.concatenate(list(lapse), axis=1)).save(args.out)
    print(f"wrote {args.out}: {lapse.shape[0]} pictures of {args.width}x{args.height}")


if __name__ == "__main__":
    main()
