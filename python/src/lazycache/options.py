"""Frame options, frame selections and the shape of what they produce, without asking the server.

:class:`FrameOptions` holds the options every frame route shares (size, fit, crop, depth,
channels, quality, seek) and turns them into query parameters. :func:`output_shape` computes the
array shape a frame will have from the movie's metadata alone, exactly as the server's renderer
plans it (crop first, then resize, rounding half away from zero), so that Dask arrays know their
shape and dtype without fetching a frame. :func:`encode_selection` and :func:`parse_selection`
convert between frame-number lists and the ``A-B``, ``A-B:S``, ``N,M,K`` selections of the
many-frames route.
"""

from __future__ import annotations

import datetime
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from .models import Metadata

__all__ = [
    "MAX_FRAMES_PER_REQUEST",
    "Crop",
    "FrameOptions",
    "TimeLike",
    "encode_selection",
    "format_time",
    "output_shape",
    "parse_selection",
]

#: The many-frames route names at most this many frames per request (SPEC §3).
MAX_FRAMES_PER_REQUEST = 1000

Fit = Literal["stretch", "contain", "cover"]
Channels = Literal["rgb", "gray"]
Seek = Literal["exact", "keyframe"]
Crop = str | Sequence[int]
TimeLike = float | int | str | datetime.timedelta


@dataclass(frozen=True)
class FrameOptions:
    """The options of a frame request (SPEC §3); ``None`` leaves the server's default.

    Attributes:
        width, height: output size in pixels (one alone keeps the aspect ratio).
        fit: ``"stretch"`` (default), ``"contain"`` (letterbox) or ``"cover"`` (fill and crop).
        crop: ``(x, y, w, h)`` in source pixels, or ``"x,y,w,h"``; applied before resizing.
        depth: 8 (default) or 16 bits per sample (16 only as ``.npy`` or ``.png``).
        channels: ``"rgb"`` (default) or ``"gray"`` (luma only: no channel axis).
        quality: JPEG quality 1..100.
        seek: ``"exact"`` (default) or ``"keyframe"`` (nearest keyframe at or before N: faster).
    """

    width: int | None = None
    height: int | None = None
    fit: Fit | None = None
    crop: Crop | None = None
    depth: int | None = None
    channels: Channels | None = None
    quality: int | None = None
    seek: Seek | None = None

    def __post_init__(self) -> None:
        if self.depth not in (None, 8, 16):
            raise ValueError(f"depth must be 8 or 16, not {self.depth!r}")
        if self.channels not in (None, "rgb", "gray", "grey"):
            raise ValueError(f"channels must be 'rgb' or 'gray', not {self.channels!r}")
        if self.fit not in (None, "stretch", "contain", "cover"):
            raise ValueError(f"fit must be 'stretch', 'contain' or 'cover', not {self.fit!r}")
        if self.seek not in (None, "exact", "keyframe"):
            raise ValueError(f"seek must be 'exact' or 'keyframe', not {self.seek!r}")
        if self.crop is not None:
            self.crop_box()  # validates its form

    def crop_box(self) -> tuple[int, int, int, int] | None:
        """The crop as ``(x, y, w, h)`` integers, or ``None``."""
        if self.crop is None:
            return None
        parts: Sequence[object] = (
            self.crop.split(",") if isinstance(self.crop, str) else list(self.crop)
        )
        if len(parts) != 4:
            raise ValueError(f"crop must be (x, y, width, height), not {self.crop!r}")
        x, y, w, h = (int(str(p).strip()) for p in parts)
        return x, y, w, h

    @property
    def gray(self) -> bool:
        """Whether frames come as luma only (2-D arrays)."""
        return self.channels in ("gray", "grey")

    @property
    def dtype(self) -> np.dtype:
        """The NumPy dtype of frames with these options: uint8, or uint16 at depth 16."""
        return np.dtype(np.uint16 if self.depth == 16 else np.uint8)

    def params(self, *, with_seek: bool = True) -> dict[str, str]:
        """The options as query parameters (only those set)."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or (f.name == "seek" and not with_seek):
                continue
            if f.name == "crop":
                value = ",".join(str(v) for v in self.crop_box() or ())
            out[f.name] = str(value)
        return out


def _round(value: float) -> int:
    """Rounds half away from zero, at least 1 (as the server's renderer does)."""
    return max(1, math.floor(value + 0.5))


def output_shape(meta: Metadata, options: FrameOptions) -> tuple[int, ...]:
    """The shape of one frame of a movie with ``meta`` rendered with ``options``.

    ``(height, width, 3)``, or ``(height, width)`` for ``channels="gray"``. Mirrors the
    server's plan: the crop (checked to lie inside the frame) is the source, then ``width``
    alone or ``height`` alone keeps its aspect ratio, and both give exactly ``width x height``
    whatever the fit.
    """
    if not meta.width or not meta.height:
        raise ValueError(f"the metadata of {meta.path or 'this movie'} gives no frame size")
    src_w, src_h = meta.width, meta.height
    box = options.crop_box()
    if box is not None:
        x, y, w, h = box
        if w <= 0 or h <= 0 or x + w > src_w or y + h > src_h:
            raise ValueError(f"crop {x},{y},{w},{h} is not inside the {src_w}x{src_h} frame")
        src_w, src_h = w, h
    width, height = options.width, options.height
    if width is None and height is None:
        out_w, out_h = src_w, src_h
    elif height is None:
        assert width is not None
        out_w, out_h = width, _round(width * src_h / src_w)
    elif width is None:
        out_w, out_h = _round(height * src_w / src_h), height
    else:
        out_w, out_h = width, height
    return (out_h, out_w) if options.gray else (out_h, out_w, 3)


def frame_bytes(shape: Sequence[int], options: FrameOptions) -> int:
    """Bytes one frame of ``shape`` takes as an array."""
    return int(np.prod(shape)) * options.dtype.itemsize


def encode_selection(frames: Sequence[int]) -> str:
    """The shortest selection naming ``frames`` in order: ``A-B``, ``A-B:S`` or ``N,M,K``."""
    if not frames:
        raise ValueError("no frames selected")
    if len(frames) == 1:
        return str(frames[0])
    step = frames[1] - frames[0]
    if step > 0 and all(b - a == step for a, b in itertools.pairwise(frames)):
        last = frames[-1]
        return f"{frames[0]}-{last}" if step == 1 else f"{frames[0]}-{last}:{step}"
    return ",".join(str(n) for n in frames)


def parse_selection(selection: str | Iterable[int] | int) -> list[int]:
    """Frame numbers (from 1) of a selection: an int, an iterable of ints (e.g. ``range``),
    or a string ``A-B``, ``A-B:S`` or ``N,M,K``.
    """  # noqa: D205
    if isinstance(selection, (int, np.integer)):
        return [int(selection)]
    if isinstance(selection, str):
        text = selection.strip()
        if "," in text or "-" not in text:
            return [int(part) for part in text.split(",")]
        span, _, step_text = text.partition(":")
        first, _, last = span.partition("-")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"step must be at least 1 in {selection!r}")
        return list(range(int(first), int(last) + 1, step))
    return [int(n) for n in selection]


def format_time(time: TimeLike) -> str:
    """A presentation time as the ``time/<T>`` route takes it (seconds, or ``HH:MM:SS.mmm``)."""
    if isinstance(time, datetime.timedelta):
        time = time.total_seconds()
    if isinstance(time, str):
        return time.strip()
    if time < 0 or not math.isfinite(time):
        raise ValueError(f"time must be a finite number of seconds from 0, not {time!r}")
    text = f"{float(time):.6f}".rstrip("0").rstrip(".")
    return text or "0"
