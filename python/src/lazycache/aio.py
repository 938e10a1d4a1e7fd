"""The asyncio client: :class:`AsyncClient`, the same calls as :class:`~lazycache.Client`.

Runs the plans of :mod:`lazycache.plans` over one pooled ``httpx.AsyncClient``; batches run as
concurrent tasks, at most ``concurrency`` requests in flight per client. Many calls can be
gathered at once (``asyncio.gather(*(lc.frame(m, 1) for m in movies))``).
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import httpx
import numpy as np

from .base import ClientBase
from .client import _transport_error
from .errors import LazycacheError, error_from_response
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

__all__ = ["AsyncClient"]


class AsyncClient(ClientBase):
    """A lazycache server, for asyncio. Same settings and calls as :class:`~lazycache.Client`.

    >>> async with AsyncClient("http://127.0.0.1:8080/v1/demo") as lc:
    ...     meta = await lc.metadata("prores_hq_1080p.mov")
    ...     frames = await asyncio.gather(*(lc.frame("prores_hq_1080p.mov", n) for n in (1, 2)))

    Its connection pool belongs to the event loop it was first used in.
    """

    _http: httpx.AsyncClient | None = None
    _slots: asyncio.Semaphore | None = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the pooled connections (a later call opens new ones)."""
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()

    def _client(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        if self._http is None or self._slots is None:
            self._http = httpx.AsyncClient(
                timeout=self.timeout, limits=self._limits(), headers=self._headers()
            )
            self._slots = asyncio.Semaphore(self.concurrency)
        return self._http, self._slots

    # -- running plans -----------------------------------------------------------------------

    async def _run(self, plan: Plan[T]) -> T:
        """Drives a plan to its result, doing the requests it yields."""
        try:
            step = next(plan)
            while True:
                try:
                    if isinstance(step, Batch):
                        result: Any = await self._batch(step)
                    else:
                        result = await self._send(step)
                except LazycacheError as error:
                    step = plan.throw(error)
                    continue
                step = plan.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    async def _batch(self, batch: Batch) -> builtins.list[Reply | LazycacheError]:
        requests = builtins.list(batch.requests)
        bar = make_bar(sum(r.frames for r in requests), batch.progress, True)

        async def one(request: Request) -> Reply | LazycacheError:
            try:
                return await self._send(request)
            except LazycacheError as error:
                return error
            finally:
                bar.update(request.frames)

        try:
            return await asyncio.gather(*(one(r) for r in requests))
        finally:
            bar.close()

    async def _send(self, request: Request) -> Reply:
        """One GET, retried on 429/502/503/504 and connection failures."""
        url = self._full_url(request.path)
        http, slots = self._client()
        attempt = 0
        while True:
            try:
                async with slots, http.stream("GET", url, params=dict(request.params)) as response:
                    status = response.status_code
                    if status < 400:
                        content = await _body(response, request.stream_to)
                        return Reply(status, response.headers, content, str(response.url))
                    content = await response.aread()
                    sent_url, headers = str(response.url), response.headers
            except httpx.TransportError as exc:
                if attempt >= self.retry.retries:
                    raise _transport_error(exc, url) from exc
                await asyncio.sleep(self.retry.delay(attempt))
                attempt += 1
                continue
            if status in RETRY_STATUSES and attempt < self.retry.retries:
                await asyncio.sleep(self.retry.delay(attempt, headers))
                attempt += 1
                continue
            raise error_from_response(status, sent_url, content)

    # -- the API (see Client for the full descriptions) --------------------------------------

    async def mirrors(self) -> dict[str, Any]:
        """The server's mirrors: ``{mirror URL: {"APIPath": {"V1": prefix}}}`` (``GET /``)."""
        return (await self._send(Request(self._root))).json()  # type: ignore[no-any-return]

    async def list(self, path: str = "") -> Listing:
        """A directory's files and subdirectories (``path`` relative to the client's URL)."""
        return await self._run(listing_plan(path))

    async def movies(
        self, directory: str = "", extensions: Sequence[str] = MOVIE_EXTENSIONS
    ) -> builtins.list[str]:
        """Paths of the movies in ``directory`` (not recursive), sorted by name."""
        return await self._run(movies_plan(directory, extensions))

    async def metadata(self, path: str) -> Metadata:
        """A movie's metadata: frame count, size, rate, codec, bit depth, start time."""
        return await self._run(metadata_plan(path))

    async def frame(
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
        """Frame ``number`` (from 1), or at ``time``; as :meth:`lazycache.Client.frame`."""
        options = self._options(width, height, fit, crop, depth, channels, quality, seek)
        result, info = await self._run(
            frame_plan(path, number, time, options, output, format, self._caps)
        )
        return (result, info) if with_info else result

    async def frame_info(self, path: str, number: int | None = None, **kwargs: Any) -> FrameInfo:
        """Only the :class:`~lazycache.FrameInfo` of a frame (its time, timestamp, number)."""
        _, info = await self.frame(path, number, output="bytes", with_info=True, **kwargs)
        return info  # type: ignore[no-any-return]

    async def frames(
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
        """Many frames of one movie as one array; as :meth:`lazycache.Client.frames`."""
        options = self._options(width, height, fit, crop, depth, channels, None, seek)
        return await self._run(
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

    async def across(
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
        """The same frame of each movie, stacked; as :meth:`lazycache.Client.across`."""
        options = self._options(width, height, fit, crop, depth, channels, None, seek)
        return await self._run(
            across_plan(
                builtins.list(paths),
                frame,
                options,
                self._caps,
                self._label(progress, f"frame {frame}"),
            )
        )

    async def sprite(
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
        """A contact sheet; as :meth:`lazycache.Client.sprite`."""
        params = sprite_params(count, every, cols, width, quality)
        return await self._run(sprite_plan(path, params, format, output))

    async def sprite_vtt(
        self,
        path: str,
        *,
        count: int | None = None,
        every: float | None = None,
        cols: int | None = None,
        width: int | None = None,
    ) -> str:
        """The WebVTT map of the sprite with the same parameters."""
        params = sprite_params(count, every, cols, width, None)
        return await self._run(sprite_plan(path, params, "vtt", "bytes"))  # type: ignore[no-any-return,unused-ignore]

    async def clip(self, path: str, first: int, last: int, dest: str | Path) -> Path:
        """Frames ``first..last`` as a movie file at ``dest``; as :meth:`lazycache.Client.clip`."""
        return await self._run(clip_plan(path, int(first), int(last), Path(dest)))


async def _body(response: httpx.Response, stream_to: Path | None) -> bytes:
    """The body in memory, or streamed into ``stream_to`` (then empty bytes)."""
    if stream_to is None:
        return await response.aread()
    with open(stream_to, "wb") as out:
        async for chunk in response.aiter_bytes():
            out.write(chunk)
    return b""
