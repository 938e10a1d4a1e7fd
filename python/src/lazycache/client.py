"""The synchronous client: :class:`Client`.

Runs the plans of :mod:`lazycache.plans` over one pooled ``httpx.Client``: single requests in
the caller's thread, batches on a thread pool of ``concurrency`` threads, each request retried
per the client's :class:`~lazycache.retry.RetryPolicy`. Thread-safe: one client can serve many
threads (and the Dask tasks of one worker process).
"""

from __future__ import annotations

import builtins
import time as _time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Literal

import httpx
import numpy as np

from .base import ClientBase
from .errors import (
    IncompleteResponse,
    LazycacheError,
    RequestTimeout,
    TransportError,
    error_from_response,
)
from .models import FrameInfo, Listing, Metadata
from .options import Crop, TimeLike, parse_selection
from .plans import (
    MOVIE_EXTENSIONS,
    Batch,
    Output,
    Plan,
    Reply,
    Request,
    T,
    across_plan,
    clip_plan,
    frame_plan,
    frames_plan,
    listing_plan,
    metadata_plan,
    movies_plan,
    sprite_params,
    sprite_plan,
)
from .progress import make_bar
from .retry import RETRY_STATUSES

__all__ = ["Client"]


class Client(ClientBase):
    """A lazycache server, synchronously.

    >>> lc = Client("http://127.0.0.1:8080/v1/demo")
    >>> lc.metadata("prores_hq_1080p.mov").num_frames
    >>> frame = lc.frame("prores_hq_1080p.mov", 42)                  # (1080, 1920, 3) uint8
    >>> luma = lc.frame("prores_hq_1080p.mov", 42, depth=16, channels="gray")  # uint16
    >>> run = lc.frames("prores_hq_1080p.mov", range(1, 51))         # (50, 1080, 1920, 3)

    Paths are relative to ``url`` (see :class:`~lazycache.base.ClientBase` for the settings).
    Use it as a context manager, or call :meth:`close`, to close its connections.
    """

    _share_when_unpickled = True
    _http: httpx.Client | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the pooled connections (a later call opens new ones)."""
        with self._lock:
            http, self._http = self._http, None
        if http is not None:
            http.close()

    def _client(self) -> httpx.Client:
        with self._lock:
            if self._http is None:
                self._http = httpx.Client(
                    timeout=self.timeout, limits=self._limits(), headers=self._headers()
                )
            return self._http

    # -- running plans -----------------------------------------------------------------------

    def _run(self, plan: Plan[T]) -> T:
        """Drives a plan to its result, doing the requests it yields."""
        try:
            step = next(plan)
            while True:
                try:
                    result: Any = self._batch(step) if isinstance(step, Batch) else self._send(step)
                except LazycacheError as error:
                    step = plan.throw(error)
                    continue
                step = plan.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    def _batch(self, batch: Batch) -> builtins.list[Reply | LazycacheError]:
        requests = builtins.list(batch.requests)
        results: builtins.list[Reply | LazycacheError] = [
            LazycacheError("not done") for _ in requests
        ]
        bar = make_bar(sum(r.frames for r in requests), batch.progress, True)
        try:
            if len(requests) == 1:
                results[0] = self._send_or_error(requests[0])
                bar.update(requests[0].frames)
                return results
            with ThreadPoolExecutor(min(self.concurrency, len(requests))) as pool:
                futures = {pool.submit(self._send_or_error, r): i for i, r in enumerate(requests)}
                for future in as_completed(futures):
                    i = futures[future]
                    results[i] = future.result()
                    bar.update(requests[i].frames)
        finally:
            bar.close()
        return results

    def _send_or_error(self, request: Request) -> Reply | LazycacheError:
        try:
            return self._send(request)
        except LazycacheError as error:
            return error

    def _send(self, request: Request) -> Reply:
        """One GET, retried on 429/502/503/504 and connection failures."""
        url = self._full_url(request.path)
        http = self._client()
        attempt = 0
        while True:
            try:
                with http.stream("GET", url, params=dict(request.params)) as response:
                    status = response.status_code
                    if status < 400:
                        content = _body(response, request.stream_to)
                        return Reply(status, response.headers, content, str(response.url))
                    content = response.read()
                    sent_url, headers = str(response.url), response.headers
            except httpx.TransportError as exc:
                if attempt >= self.retry.retries:
                    raise _transport_error(exc, url) from exc
                _time.sleep(self.retry.delay(attempt))
                attempt += 1
                continue
            if status in RETRY_STATUSES and attempt < self.retry.retries:
                _time.sleep(self.retry.delay(attempt, headers))
                attempt += 1
                continue
            raise error_from_response(status, sent_url, content)

    # -- the API -----------------------------------------------------------------------------

    def mirrors(self) -> dict[str, Any]:
        """The server's mirrors: ``{mirror URL: {"APIPath": {"V1": prefix}}}`` (``GET /``)."""
        return self._send(Request(self._root)).json()  # type: ignore[no-any-return]

    def list(self, path: str = "") -> Listing:
        """A directory's files and subdirectories (``path`` relative to the client's URL)."""
        return self._run(listing_plan(path))

    def movies(
        self, directory: str = "", extensions: Sequence[str] = MOVIE_EXTENSIONS
    ) -> builtins.list[str]:
        """Paths of the movies in ``directory`` (not recursive), sorted by name."""
        return self._run(movies_plan(directory, extensions))

    def metadata(self, path: str) -> Metadata:
        """A movie's metadata: frame count, size, rate, codec, bit depth, start time."""
        return self._run(metadata_plan(path))

    def frame(
        self,
        path: str,
        number: int | None = None,
        *,
        time: TimeLike | None = None,
        width: int | None = None,
        height: int | None = None,
        fit: Literal["stretch", "contain", "cover"] | None = None,
        crop: Crop | None = None,
        depth: Literal[8, 16] | None = None,
        channels: Literal["rgb", "gray"] | None = None,
        quality: int | None = None,
        seek: Literal["exact", "keyframe"] | None = None,
        output: Output = "array",
        format: str | None = None,
        with_info: bool = False,
    ) -> Any:
        """Frame ``number`` (from 1) of a movie, or the frame shown at ``time``.

        Args:
            path: the movie, relative to the client's URL.
            number: the frame number, counting from 1 (or give ``time``).
            time: seconds from the start (float), ``"HH:MM:SS.mmm"`` or a ``timedelta``.
            width: output width in pixels (alone: the height keeps the aspect ratio).
            height: output height in pixels (alone: the width keeps the aspect ratio).
            fit: with both sizes, ``"stretch"`` (default), ``"contain"`` (letterbox) or
                ``"cover"`` (fill and crop).
            crop: ``(x, y, w, h)`` in source pixels (or ``"x,y,w,h"``), cut before resizing.
            depth: 16 for 16-bit samples (uint16), equal to ffmpeg's ``rgb48le``/``gray16le``.
            channels: ``"gray"`` for luma only (a 2-D array).
            quality: JPEG quality 1..100.
            seek: ``"keyframe"`` for the nearest keyframe at or before ``number`` (faster).
            output: ``"array"`` (NumPy, the default), ``"image"`` (PIL) or ``"bytes"``.
            format: the wire format: for arrays ``npy`` (default; PNG is used instead when the
                server does not allow raw output), for images and bytes ``png`` (default),
                ``jpg``, ``bmp``, ``webp``, and for bytes also ``npy`` and ``rgba``.
            with_info: also return a :class:`~lazycache.FrameInfo` (frame number answered,
                its time and timestamp).

        Returns:
            the frame (``(h, w, 3)`` or ``(h, w)``, uint8 or uint16 for arrays), or
            ``(frame, info)`` with ``with_info``.
        """
        options = self._options(width, height, fit, crop, depth, channels, quality, seek)
        result, info = self._run(
            frame_plan(path, number, time, options, output, format, self._caps)
        )
        return (result, info) if with_info else result

    def frame_info(self, path: str, number: int | None = None, **kwargs: Any) -> FrameInfo:
        """Only the :class:`~lazycache.FrameInfo` of a frame (its time, timestamp, number)."""
        _, info = self.frame(path, number, output="bytes", with_info=True, **kwargs)
        return info  # type: ignore[no-any-return]

    def frames(
        self,
        path: str,
        frames: str | int | Iterable[int],
        *,
        width: int | None = None,
        height: int | None = None,
        fit: Literal["stretch", "contain", "cover"] | None = None,
        crop: Crop | None = None,
        depth: Literal[8, 16] | None = None,
        channels: Literal["rgb", "gray"] | None = None,
        seek: Literal["exact", "keyframe"] | None = None,
        metadata: Metadata | None = None,
        chunk_frames: int = 100,
        progress: bool | None = None,
    ) -> np.ndarray:
        """Many frames of one movie as one array ``(n, h, w, 3)`` (or ``(n, h, w)`` for gray).

        Args:
            path: the movie.
            frames: frame numbers from 1: ``range(1, 101)``, a list, or ``"1-100"``,
                ``"1-9000:300"``, ``"5,17,42"`` (order kept; repeats allowed).
            width: as for :meth:`frame`.
            height: as for :meth:`frame`.
            fit: as for :meth:`frame`.
            crop: as for :meth:`frame`.
            depth: as for :meth:`frame` (16: uint16).
            channels: as for :meth:`frame` (``"gray"``: no channel axis).
            seek: as for :meth:`frame` (``"keyframe"`` fetches frames one by one).
            metadata: the movie's metadata if already at hand (saves one request).
            chunk_frames: most frames per request to the ``frames/<selection>.npy`` route;
                chunks are fetched concurrently.
            progress: show a progress bar (default: the client's setting).

        Without raw output (501), or against a server without the many-frames route (e.g.
        go-lazycache), the frames are fetched one by one, concurrently, as PNG where needed:
        the array is the same.
        """
        options = self._options(width, height, fit, crop, depth, channels, None, seek)
        return self._run(
            frames_plan(
                path,
                parse_selection(frames),
                options,
                self._caps,
                metadata=metadata,
                chunk_frames_max=chunk_frames,
                progress=self._label(progress, path),
            )
        )

    def across(
        self,
        paths: Sequence[str],
        frame: int,
        *,
        width: int | None = None,
        height: int | None = None,
        fit: Literal["stretch", "contain", "cover"] | None = None,
        crop: Crop | None = None,
        depth: Literal[8, 16] | None = None,
        channels: Literal["rgb", "gray"] | None = None,
        seek: Literal["exact", "keyframe"] | None = None,
        progress: bool | None = None,
    ) -> np.ndarray:
        """The same frame of each movie, stacked ``(len(paths), h, w[, 3])``: a time-lapse.

        Fetched concurrently; the movies must give frames of one size (pass ``width`` and
        ``height`` otherwise). Options as for :meth:`frame`.
        """
        options = self._options(width, height, fit, crop, depth, channels, None, seek)
        return self._run(
            across_plan(
                builtins.list(paths),
                frame,
                options,
                self._caps,
                self._label(progress, f"frame {frame}"),
            )
        )

    def sprite(
        self,
        path: str,
        *,
        count: int | None = None,
        every: float | None = None,
        cols: int | None = None,
        width: int | None = None,
        quality: int | None = None,
        format: Literal["jpg", "png", "webp"] = "jpg",
        output: Output = "image",
    ) -> Any:
        """A contact sheet: ``count`` tiles (default 16) at even times, or one ``every`` seconds.

        ``cols`` tiles to a row (default 4), each ``width`` pixels wide (default 160). Returns
        a PIL image (``output="image"``), an array or bytes.
        """
        params = sprite_params(count, every, cols, width, quality)
        return self._run(sprite_plan(path, params, format, output))

    def sprite_vtt(
        self,
        path: str,
        *,
        count: int | None = None,
        every: float | None = None,
        cols: int | None = None,
        width: int | None = None,
    ) -> str:
        """The WebVTT map of the sprite with the same parameters (cue → tile rectangle)."""
        params = sprite_params(count, every, cols, width, None)
        return self._run(sprite_plan(path, params, "vtt", "bytes"))  # type: ignore[no-any-return]

    def clip(self, path: str, first: int, last: int, dest: str | Path) -> Path:
        """Frames ``first..last`` as a movie file at ``dest`` (``.mov``, ``.mp4`` or ``.mkv``).

        Stream copy: no re-encoding (ProRes stays ProRes). The body streams to disk; ``dest``
        appears only once complete.
        """
        return self._run(clip_plan(path, int(first), int(last), Path(dest)))


def _body(response: httpx.Response, stream_to: Path | None) -> bytes:
    """The body in memory, or streamed into ``stream_to`` (then empty bytes)."""
    if stream_to is None:
        return response.read()
    with open(stream_to, "wb") as out:
        for chunk in response.iter_bytes():
            out.write(chunk)
    return b""


def _transport_error(exc: httpx.TransportError, url: str) -> TransportError:
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeout(f"{url}: no answer within the timeout ({type(exc).__name__})")
    if isinstance(exc, httpx.RemoteProtocolError):
        return IncompleteResponse(f"{url}: the answer was cut short ({exc})")
    return TransportError(f"{url}: {type(exc).__name__}: {exc}")
