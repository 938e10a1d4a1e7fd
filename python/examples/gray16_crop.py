"""Measure on exact 16-bit luma: a crop of many frames of one movie, thresholded.

Asks for ``depth=16, channels="gray"`` (ffmpeg's ``gray16le``, bit for bit: ProRes holds 10
bits, scaled to the 16-bit range) of a crop of the frame, for a run of frames in one request
(``frames/<selection>.npy``, or PNG one by one when the server does not allow raw output), and
prints per frame the mean, the 99th percentile and the area above a threshold.

    python gray16_crop.py http://127.0.0.1:8080/v1/demo            # scripts/run's demo library
    python gray16_crop.py URL MOVIE --crop 600,300,640,360 --frames 1-75:5 --threshold 40000
"""

from __future__ import annotations

import argparse

import numpy as np

import lazycache
from lazycache.options import parse_selection


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="server URL with the mirror prefix, e.g. .../v1/demo")
    parser.add_argument("movie", nargs="?", default="prores_hq_1080p.mov")
    parser.add_argument("--crop", default="640,360,640,360", help="x,y,width,height (pixels)")
    parser.add_argument("--frames", default="1-75:5", help="A-B, A-B:S or N,M,K")
    parser.add_argument("--threshold", type=int, default=40000, help="16-bit level")
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args()

    with lazycache.Client(args.url, api_key=args.api_key) as lc:
        meta = lc.metadata(args.movie)
        print(
            f"{args.movie}: {meta.num_frames} frames {meta.width}x{meta.height} "
            f"{meta.codec} {meta.bit_depth}-bit"
        )
        numbers = parse_selection(args.frames)
        luma = lc.frames(args.movie, numbers, depth=16, channels="gray", crop=args.crop)
    print(
        f"luma {luma.dtype} {luma.shape}; distinct levels in frame {numbers[0]}: "
        f"{np.unique(luma[0]).size}"
    )
    print("frame      mean       p99   above")
    for number, picture in zip(numbers, luma, strict=True):
        above = (picture > args.threshold).mean()
        print(f"{number:5d} {picture.mean():9.1f} {np.percentile(picture, 99):9.0f} {above:7.2%}")


if __name__ == "__main__":
    main()
