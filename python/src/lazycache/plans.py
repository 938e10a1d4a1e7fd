"""What each client call asks the server, and what it makes of the answers — without doing I/O.

Every operation (list, metadata, frame, frames, sprite, clip) is a generator, a *plan*: it yields
a :class:`Request` (one GET) or a :class:`Batch` (GETs that may run concurrently) and is sent
back the :class:`Reply` (or, for a batch, each reply or error), until it returns its result.
The synchronous :class:`~lazycache.Client` runs plans with a thread pool, the
:class:`~lazycache.AsyncClient` with asyncio, so both behave the same by construction: the same
URLs, the same fallbacks (PNG when raw output is off, single frames when the server has no
many-frames route), the same checks.
"""

from __future__ import annotations

import io
import json
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import numpy as np
from PIL import Image

from .decode import array_from_image, array_from_npy, array_from_png
from .errors import BadRequest, LazycacheError, NotFound, RawOutputDisabled
from .models import FrameInfo, Listing, Metadata
from .options import (
    MAX_FRAMES_PER_REQUEST,
    FrameOptions,
    TimeLike,
    encode_selection,
    format_time,
    frame_bytes,
    output_shape,
)

__all__ = [
    "MOVIE_EXTENSIONS",
    "Batch",
    "Capabilities",
    "Output",
    "Plan",
    "Reply",
    "Request",
    "across_plan",
    "clip_plan",
    "frame_plan",
    "frames_plan",
    "listing_plan",
    "metadata_plan",
    "movies_plan",
    "singles_plan",
    "sprite_plan",
]

T = TypeVar("T")
Output = Literal["array", "image", "bytes"]

#: Largest answer the client asks of the many-frames route at once (the server allows 2 GiB):
#: keeps memory bounded while a chunk streams in, and lets chunks of one batch run in parallel.
DEFAULT_CHUNK_BYTES = 256 << 20
#: Most frames per many-frames request by default: a progress step, and a unit of parallelism.
DEFAULT_CHUNK_FRAMES = 100

_CLIP_CONTAINERS = ("mov", "mp4", "mkv")


@dataclass(frozen=True)
class Request:
    """One GET: ``path`` relative to the client's URL (already URL-quoted) and its query.

    ``stream_to`` streams the body into that file instead of memory; ``frames`` is how many
    frames it carries (a progress bar's step).
    """

    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    stream_to: Path | None = None
    frames: int = 1


@dataclass(frozen=True)
class Batch:
    """Requests that may run concurrently; the plan is sent a list of replies or errors.

    ``progress`` names the progress bar (None: never show one).
    """

    requests: Sequence[Request]
    progress: str | None = None


@dataclass(frozen=True)
class Reply:
    """A successful answer: status, headers, body (empty when streamed to a file), URL."""

    status: int
    headers: Mapping[str, str]
    content: bytes
    url: str

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.content.decode("utf-8"))


@dataclass
class Capabilities:
    """What the client has learnt about the server, so it stops asking what it cannot give.

    ``raw``: whether ``.npy`` answers are allowed (False after a 501). ``frames_route``: whether
    the many-frames route exists (False once it answered 404/400 while single frames worked,
    as go-lazycache does). None: not known yet.
    """

    raw: bool | None = None
    frames_route: bool | None = None


Plan = Generator[Request | Batch, Any, T]


def quote_path(path: str) -> str:
    """A movie or directory path (relative to the client's URL) quoted for a URL."""
    if ".." in path.split("/"):
        raise ValueError(f"path {path!r} may not contain '..'")
    return quote(path.lstrip("/"), safe="/:@!$&'()*+,;=~")


def listing_plan(directory: str) -> Plan[Listing]:
    """A directory listing."""
    path = quote_path(directory)
    if path and not path.endswith("/"):
        path += "/"
    reply = yield Request(path)
    return Listing.from_json(reply.json())


def metadata_plan(movie: str) -> Plan[Metadata]:
    """A movie's metadata."""
    reply = yield Request(quote_path(movie))
    return Metadata.from_json(reply.json())


def frame_route(movie: str, number: int | None, time: TimeLike | None) -> str:
    """``<movie>/frame/<N>`` or ``<movie>/time/<T>`` (without extension)."""
    if (number is None) == (time is None):
        raise ValueError("give a frame number or time=, not both or neither")
    if number is not None:
        return f"{quote_path(movie)}/frame/{int(number)}"
    assert time is not None
    return f"{quote_path(movie)}/time/{quote(format_time(time), safe='')}"


def _decode(content: bytes, ext: str) -> np.ndarray:
    if ext == "npy":
        return array_from_npy(content)
    if ext == "png":
        return array_from_png(content)
    return array_from_image(content)


def frame_plan(
    movie: str,
    number: int | None,
    time: TimeLike | None,
    options: FrameOptions,
    output: Output,
    fmt: str | None,
    caps: Capabilities,
) -> Plan[tuple[Any, FrameInfo]]:
    """One frame, as an array (``.npy``, or PNG after a 501), a PIL image or bytes."""
    route = frame_route(movie, number, time)
    params = options.params()
    ext = (fmt or ("npy" if output == "array" else "png")).lower().lstrip(".")
    if output not in ("array", "image", "bytes"):
        raise ValueError(f"output must be 'array', 'image' or 'bytes', not {output!r}")
    if output != "bytes" and ext in ("rgba", "raw"):
        raise ValueError("raw RGBA comes as bytes only: use output='bytes', or format='npy'")
    if output == "image" and ext == "npy":
        raise ValueError("an image cannot come as .npy: use format='png' (or output='array')")
    if output == "array" and ext == "npy":
        if caps.raw is not False:
            try:
                reply = yield Request(f"{route}.npy", params)
                caps.raw = True
                return array_from_npy(reply.content), FrameInfo.from_headers(reply.headers)
            except RawOutputDisabled:
                caps.raw = False
        ext = "png"  # 16-bit where depth=16: the same samples
    reply = yield Request(f"{route}.{ext}", params)
    info = FrameInfo.from_headers(reply.headers)
    if output == "bytes":
        return reply.content, info
    if output == "image":
        image = Image.open(io.BytesIO(reply.content))
        image.load()
        return image, info
    return _decode(reply.content, ext), info


def chunk_frames(
    frames: Sequence[int], per_frame: int, max_frames: int, max_bytes: int
) -> list[list[int]]:
    """Consecutive runs of ``frames`` for one many-frames request each, bounded both ways."""
    size = max(1, min(max_frames, MAX_FRAMES_PER_REQUEST, max_bytes // max(1, per_frame)))
    return [list(frames[i : i + size]) for i in range(0, len(frames), size)]


def frames_plan(
    movie: str,
    frames: Sequence[int],
    options: FrameOptions,
    caps: Capabilities,
    *,
    metadata: Metadata | None = None,
    chunk_frames_max: int = DEFAULT_CHUNK_FRAMES,
    chunk_bytes_max: int = DEFAULT_CHUNK_BYTES,
    progress: str | None = None,
) -> Plan[np.ndarray]:
    """Many frames of one movie stacked into one array ``(n, h, w[, 3])``, in the order asked.

    Uses the ``frames/<selection>.npy`` route in chunks; falls back to single frames (PNG where
    raw output is off) when the server answers 501, or has no such route (404/400 while a
    single frame works). Frames named twice are fetched once.
    """
    numbers = [int(n) for n in frames]
    if not numbers:
        raise ValueError("no frames selected")
    if min(numbers) < 1:
        raise ValueError("frames count from 1")
    unique = list(dict.fromkeys(numbers))
    if metadata is None:
        metadata = yield from metadata_plan(movie)
    if metadata.width and metadata.height:
        shape = output_shape(metadata, options)
    else:  # a server whose metadata has no size (go-lazycache): the first frame tells
        first_frame, _ = yield from frame_plan(movie, unique[0], None, options, "array", None, caps)
        shape = first_frame.shape
    out = np.empty((len(unique), *shape), dtype=options.dtype)
    chunks = chunk_frames(unique, frame_bytes(shape, options), chunk_frames_max, chunk_bytes_max)
    starts = np.cumsum([0] + [len(c) for c in chunks[:-1]]).tolist()
    params = options.params(with_seek=False)
    # The route always answers exact frames; seek=keyframe is a single-frame option.
    use_route = caps.frames_route is not False and caps.raw is not False and options.seek is None
    singles: list[int] = []  # indices into `unique`
    route_refused = False
    if use_route:
        requests = [
            Request(f"{quote_path(movie)}/frames/{encode_selection(c)}.npy", params, frames=len(c))
            for c in chunks
        ]
        results = yield Batch(requests, progress)
        for start, chunk, result in zip(starts, chunks, results, strict=True):
            span = range(start, start + len(chunk))
            if isinstance(result, Reply):
                caps.raw = True
                caps.frames_route = True
                out[start : start + len(chunk)] = _checked(
                    array_from_npy(result.content), (len(chunk), *shape), options, result.url
                )
            elif isinstance(result, RawOutputDisabled):
                caps.raw = False
                singles.extend(span)
            elif isinstance(result, (NotFound, BadRequest)) and caps.frames_route is not True:
                route_refused = True
                singles.extend(span)
            else:
                raise result
    else:
        singles = list(range(len(unique)))
    if singles and route_refused:
        # go-lazycache has no frames route; but the 400/404 may be this request's fault: one
        # single frame tells which (and raises the server's words if it fails too).
        first = singles.pop(0)
        array, _ = yield from frame_plan(movie, unique[first], None, options, "array", None, caps)
        out[first] = _checked(array, shape, options, movie)
        caps.frames_route = False
    if singles:
        arrays = yield from singles_plan(
            [(movie, unique[i]) for i in singles], options, caps, progress
        )
        for i, array in zip(singles, arrays, strict=True):
            out[i] = _checked(array, shape, options, movie)
    if len(unique) != len(numbers):
        index = {n: i for i, n in enumerate(unique)}
        return out[[index[n] for n in numbers]]
    return out


def singles_plan(
    items: Sequence[tuple[str, int]],
    options: FrameOptions,
    caps: Capabilities,
    progress: str | None,
) -> Plan[list[np.ndarray]]:
    """Frame N of movie M for each ``(M, N)``, concurrently, as arrays (``.npy``, else PNG)."""
    ext = "png" if caps.raw is False else "npy"
    results = yield Batch(_single_requests(items, options, ext), progress)
    refused = [i for i, r in enumerate(results) if isinstance(r, RawOutputDisabled)]
    if refused:  # no raw output: those again, as PNG
        caps.raw = False
        again = yield Batch(_single_requests([items[i] for i in refused], options, "png"), progress)
        for i, result in zip(refused, again, strict=True):
            results[i] = result
    as_png = set(refused)
    arrays: list[np.ndarray] = []
    for i, result in enumerate(results):
        if not isinstance(result, Reply):
            raise result
        arrays.append(_decode(result.content, "png" if i in as_png else ext))
    return arrays


def _single_requests(
    items: Sequence[tuple[str, int]], options: FrameOptions, ext: str
) -> list[Request]:
    return [
        Request(f"{frame_route(movie, number, None)}.{ext}", options.params())
        for movie, number in items
    ]


def across_plan(
    movies: Sequence[str],
    frame: int,
    options: FrameOptions,
    caps: Capabilities,
    progress: str | None,
) -> Plan[np.ndarray]:
    """The same frame of each movie, stacked ``(len(movies), h, w[, 3])`` (same sizes only)."""
    if not movies:
        raise ValueError("no movies given")
    arrays = yield from singles_plan([(m, int(frame)) for m in movies], options, caps, progress)
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise LazycacheError(
            f"frames of different sizes {sorted(shapes)} cannot be stacked: "
            "give width= and height= to render them all at one size"
        )
    return np.stack(arrays)


#: Extensions the server treats as movies by default (SPEC §3).
MOVIE_EXTENSIONS = ("mov", "mp4", "m4v", "mkv", "webm", "avi", "mxf", "ts")


def movies_plan(directory: str, extensions: Sequence[str] = MOVIE_EXTENSIONS) -> Plan[list[str]]:
    """Paths of the movies in a directory (not its subdirectories), sorted by name."""
    listing = yield from listing_plan(directory)
    base = directory.strip("/")
    suffixes = tuple("." + e.lower().lstrip(".") for e in extensions)
    names = sorted(f for f in listing.files if f.lower().endswith(suffixes))
    return [f"{base}/{name}" if base else name for name in names]


def _checked(
    array: np.ndarray, shape: Sequence[int], options: FrameOptions, where: str
) -> np.ndarray:
    if tuple(array.shape) != tuple(shape) or array.dtype != options.dtype:
        raise LazycacheError(
            f"{where}: the server answered {array.dtype}{list(array.shape)}, "
            f"expected {options.dtype}{list(shape)}"
        )
    return array


def sprite_params(
    count: int | None,
    every: float | None,
    cols: int | None,
    width: int | None,
    quality: int | None,
) -> dict[str, str]:
    """The sprite route's query (only what is set)."""
    given = {"count": count, "every": every, "cols": cols, "width": width, "quality": quality}
    return {k: str(v) for k, v in given.items() if v is not None}


def sprite_plan(movie: str, params: Mapping[str, str], fmt: str, output: Output) -> Plan[Any]:
    """A contact sheet as a PIL image, an array or bytes; ``fmt="vtt"`` gives its WebVTT text."""
    ext = fmt.lower().lstrip(".")
    reply = yield Request(f"{quote_path(movie)}/sprite.{ext}", params)
    if ext == "vtt":
        return reply.content.decode("utf-8")
    if output == "bytes":
        return reply.content
    if output == "array":
        return _decode(reply.content, ext)
    image = Image.open(io.BytesIO(reply.content))
    image.load()
    return image


def clip_plan(movie: str, first: int, last: int, dest: Path) -> Plan[Path]:
    """Frames ``first..last`` copied into a movie file at ``dest`` (container from its suffix).

    The body streams into ``dest`` with a ``.part`` suffix, renamed when complete, so an
    interrupted download never leaves a file that looks whole.
    """
    container = dest.suffix.lower().lstrip(".")
    if container not in _CLIP_CONTAINERS:
        raise ValueError(f"a clip is .mov, .mp4 or .mkv, not {dest.name!r}")
    if not 1 <= first <= last:
        raise ValueError(f"clip frames must be 1 <= first <= last, not {first}-{last}")
    partial = dest.with_name(dest.name + ".part")
    try:
        yield Request(
            f"{quote_path(movie)}/clip/{first}-{last}.{container}",
            stream_to=partial,
            frames=last - first + 1,
        )
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(dest)
    return dest
