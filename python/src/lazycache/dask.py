"""Frames as Dask arrays, for archive-scale work on any ``dask.distributed`` cluster.

Three shapes of work, each a lazy array whose shape and dtype come from the movies' metadata
(no frame is fetched until you compute):

- :func:`movie` — frames of one movie, ``(n, h, w[, 3])``, a run of frames per chunk, each chunk
  one request to the many-frames route.
- :func:`across` — the same frame (or frames) of many movies, e.g. a time-lapse of a directory:
  ``(movies, h, w[, 3])`` or ``(movies, k, h, w[, 3])``.
- :func:`every_nth` — every Nth frame of each movie: one array per movie (movies differ in
  length), ``dask.array.concatenate`` them for statistics over all.

Tasks carry the client's settings, not its connections: each worker process re-creates one
client and reuses its pool for every task. Install with ``pip install 'lazycache[dask]'``.

>>> import distributed, lazycache, lazycache.dask as lcd
>>> cluster = distributed.Client("scheduler:8786")          # or distributed.LocalCluster()
>>> lc = lazycache.Client("http://lazycache:8080/v1/org/oceanobservatories/rawdata/files")
>>> movies = lc.movies("RS03ASHS/PN03B/06-CAMHDA301/2016/07/24")
>>> lapse = lcd.across(lc, movies, 5000, depth=16, channels="gray")   # (n, 1080, 1920) uint16
>>> mean = lapse.mean(axis=0).compute()
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

try:
    import dask.array as da
    from dask.delayed import delayed
except ImportError as missing:  # pragma: no cover - depends on the installation
    raise ImportError(
        "lazycache.dask needs dask and distributed: pip install 'lazycache[dask]'"
    ) from missing

from .client import Client
from .models import Metadata
from .options import FrameOptions, frame_bytes, output_shape, parse_selection

__all__ = ["across", "every_nth", "movie"]

#: Aim for chunks of about this many bytes (Dask's guidance is tens to hundreds of MB).
TARGET_CHUNK_BYTES = 64 << 20
#: And at most this many frames per chunk (one many-frames request each).
MAX_FRAMES_PER_CHUNK = 100

ClientLike = Client | str


def _client(client: ClientLike) -> Client:
    return client if isinstance(client, Client) else Client(client)


def _metadata_of(client: Client, paths: Sequence[str]) -> list[Metadata]:
    """Metadata of every movie, fetched concurrently (no frames)."""
    with ThreadPoolExecutor(client.concurrency) as pool:
        return list(pool.map(client.metadata, paths))


def _per_chunk(per_frame: int, frames_per_chunk: int | None) -> int:
    if frames_per_chunk is not None:
        if frames_per_chunk < 1:
            raise ValueError("frames_per_chunk must be at least 1")
        return frames_per_chunk
    return max(1, min(MAX_FRAMES_PER_CHUNK, TARGET_CHUNK_BYTES // max(1, per_frame)))


def _fetch_frames(
    client: Client, path: str, numbers: list[int], options: FrameOptions, meta: Metadata
) -> np.ndarray:
    """One chunk of one movie (runs on a worker)."""
    return client.frames(
        path,
        numbers,
        metadata=meta,
        progress=False,
        chunk_frames=len(numbers),
        **_kwargs(options),
    )


def _fetch_across(
    client: Client, paths: list[str], frame: int, options: FrameOptions
) -> np.ndarray:
    """Frame ``frame`` of each of ``paths``, stacked (runs on a worker)."""
    return client.across(paths, frame, progress=False, **_kwargs(options))


def _kwargs(options: FrameOptions) -> dict[str, Any]:
    return {
        "width": options.width,
        "height": options.height,
        "fit": options.fit,
        "crop": options.crop,
        "depth": options.depth,
        "channels": options.channels,
        "seek": options.seek,
    }


def _movie_array(
    client: Client,
    path: str,
    numbers: list[int],
    options: FrameOptions,
    meta: Metadata,
    frames_per_chunk: int | None,
) -> da.Array:
    shape = output_shape(meta, options)
    size = _per_chunk(frame_bytes(shape, options), frames_per_chunk)
    fetch = delayed(_fetch_frames, pure=True)
    blocks = [
        da.from_delayed(
            fetch(client, path, numbers[i : i + size], options, meta),
            shape=(len(numbers[i : i + size]), *shape),
            dtype=options.dtype,
        )
        for i in range(0, len(numbers), size)
    ]
    return da.concatenate(blocks, axis=0)


def movie(
    client: ClientLike,
    path: str,
    frames: str | int | Iterable[int] | None = None,
    *,
    frames_per_chunk: int | None = None,
    **options: Any,
) -> da.Array:
    """Frames of one movie as a Dask array ``(n, h, w, 3)`` (``(n, h, w)`` for gray).

    Args:
        client: a :class:`~lazycache.Client`, or the URL to make one.
        path: the movie, relative to the client's URL.
        frames: frame numbers from 1 (``range``, list, ``"1-9000:10"``); default all of them.
        frames_per_chunk: frames per chunk (default: about 64 MB, at most 100 frames).
        **options: frame options as for :meth:`lazycache.Client.frame` (``width``,
            ``height``, ``fit``, ``crop``, ``depth``, ``channels``, ``seek``).
    """
    lc = _client(client)
    opts = FrameOptions(**options)
    meta = lc.metadata(path)
    numbers = list(range(1, meta.num_frames + 1)) if frames is None else parse_selection(frames)
    if not numbers:
        raise ValueError("no frames selected")
    return _movie_array(lc, path, numbers, opts, meta, frames_per_chunk)


def _movie_paths(client: Client, movies: str | Sequence[str]) -> list[str]:
    paths = client.movies(movies) if isinstance(movies, str) else list(movies)
    if not paths:
        raise ValueError(f"no movies in {movies!r}")
    return paths


def across(
    client: ClientLike,
    movies: str | Sequence[str],
    frames: int | str | Iterable[int],
    *,
    movies_per_chunk: int | None = None,
    **options: Any,
) -> da.Array:
    """The same frame(s) of many movies as one Dask array.

    Args:
        client: a :class:`~lazycache.Client`, or the URL to make one.
        movies: movie paths, or a directory (a string) whose movies to take, sorted by name.
        frames: one frame number → ``(movies, h, w[, 3])`` (a time-lapse); several (a list,
            ``range`` or selection string) → ``(movies, k, h, w[, 3])``.
        movies_per_chunk: movies per chunk for a single frame (default: about 64 MB).
        **options: frame options as for :meth:`lazycache.Client.frame`.

    Every movie must give frames of one size (give ``width`` and ``height`` otherwise): the
    metadata of each is read (concurrently) to check that and to know the shape.
    """
    lc = _client(client)
    opts = FrameOptions(**options)
    paths = _movie_paths(lc, movies)
    metas = _metadata_of(lc, paths)
    shapes = {output_shape(m, opts) for m in metas}
    if len(shapes) > 1:
        sizes = sorted({(m.width, m.height) for m in metas})
        raise ValueError(
            f"the movies have frames of different sizes {sizes}: give width= and height= "
            "to render them all at one size"
        )
    (shape,) = shapes
    if isinstance(frames, (int, np.integer)):
        size = _per_chunk(frame_bytes(shape, opts), movies_per_chunk)
        fetch = delayed(_fetch_across, pure=True)
        blocks = [
            da.from_delayed(
                fetch(lc, paths[i : i + size], int(frames), opts),
                shape=(len(paths[i : i + size]), *shape),
                dtype=opts.dtype,
            )
            for i in range(0, len(paths), size)
        ]
        return da.concatenate(blocks, axis=0)
    numbers = parse_selection(frames)
    return da.stack(
        [_movie_array(lc, p, numbers, opts, m, None) for p, m in zip(paths, metas, strict=True)],
        axis=0,
    )


def every_nth(
    client: ClientLike,
    movies: str | Sequence[str],
    step: int,
    *,
    start: int = 1,
    frames_per_chunk: int | None = None,
    **options: Any,
) -> dict[str, da.Array]:
    """Every ``step``-th frame of each movie, from frame ``start``: ``{path: (n, h, w[, 3])}``.

    Movies differ in length (and may differ in size), so each gets its own array; for a
    statistic over all of them, ``dask.array.concatenate(list(result.values()))``.
    Frame ``start + i*step`` is row ``i`` of its movie's array. Options as for :func:`movie`.
    """
    if step < 1 or start < 1:
        raise ValueError("step and start must be at least 1")
    lc = _client(client)
    opts = FrameOptions(**options)
    paths = _movie_paths(lc, movies)
    metas = _metadata_of(lc, paths)
    arrays: dict[str, da.Array] = {}
    for path, meta in zip(paths, metas, strict=True):
        numbers = list(range(start, meta.num_frames + 1, step))
        if numbers:
            arrays[path] = _movie_array(lc, path, numbers, opts, meta, frames_per_chunk)
    return arrays
