"""What the synchronous and the asyncio clients share: settings, URLs, headers and pickling.

A client is its settings (URL, API key, timeout, retry policy, concurrency, progress) plus a
connection pool created on first use. Pickling keeps the settings only, so a client can be
shipped to Dask workers (or any process) and re-creates its pool there; unpickled synchronous
clients with the same settings share one instance per process, and so one pool.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from .errors import LazycacheError
from .options import FrameOptions
from .plans import Capabilities, Output
from .retry import RetryPolicy

__all__ = ["DEFAULT_TIMEOUT", "ClientBase", "Timeout"]

Timeout = float | httpx.Timeout | None

#: Connect within 10 s; a frame may take a while when the server's queue or origin is slow
#: (its own decode timeout is 60 s, and a many-frames answer streams for longer).
DEFAULT_TIMEOUT = httpx.Timeout(300.0, connect=10.0)

_SHARED: dict[tuple[Any, ...], ClientBase] = {}
_SHARED_LOCK = threading.Lock()


def _rebuild(cls: type[ClientBase], config: tuple[Any, ...], share: bool) -> ClientBase:
    """Unpickles a client: the process's shared one with these settings, or a new one."""
    if not share:
        return cls._from_config(config)
    key = (cls, config)
    with _SHARED_LOCK:
        client = _SHARED.get(key)
        if client is None:
            client = _SHARED[key] = cls._from_config(config)
        return client


class ClientBase:
    """Settings and helpers of :class:`~lazycache.Client` and :class:`~lazycache.AsyncClient`.

    Args:
        url: the server URL with the mirror prefix that paths are relative to, e.g.
            ``"http://127.0.0.1:8080/v1/demo"``; or the server's root, with paths starting
            ``"v1/..."``.
        api_key: sent as ``X-Api-Key`` (servers started with ``--api-key``).
        timeout: seconds (or an ``httpx.Timeout``) to connect and to wait for each part of an
            answer; a request that exceeds it raises :class:`~lazycache.RequestTimeout` once
            the retries are spent. None waits for ever.
        retries: extra tries on 429/502/503/504 and connection failures (0: none).
        max_retry_wait: longest wait between tries, ``Retry-After`` included (seconds).
        concurrency: most requests in flight at once for batches.
        progress: show progress bars on long batches (each call can override it).
        headers: extra headers sent with every request.
    """

    _share_when_unpickled = False

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: Timeout = DEFAULT_TIMEOUT,
        retries: int = 4,
        max_retry_wait: float = 30.0,
        concurrency: int = 8,
        progress: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"url must be http(s)://host[:port][/v1/prefix], not {url!r}")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.retry = RetryPolicy(retries=retries, max_wait=max_retry_wait)
        self.concurrency = concurrency
        self.progress = progress
        self.extra_headers = dict(headers or {})
        self._root = urlunsplit((parts.scheme, parts.netloc, "/", "", ""))
        self._caps = Capabilities()
        self._lock = threading.Lock()

    # -- settings, pickling ------------------------------------------------------------------

    def _config(self) -> tuple[Any, ...]:
        timeout: Any = self.timeout
        if isinstance(timeout, httpx.Timeout):
            timeout = ("httpx", timeout.connect, timeout.read, timeout.write, timeout.pool)
        return (
            self.url,
            self.api_key,
            timeout,
            self.retry.retries,
            self.retry.max_wait,
            self.concurrency,
            self.progress,
            tuple(sorted(self.extra_headers.items())),
        )

    @classmethod
    def _from_config(cls, config: tuple[Any, ...]) -> ClientBase:
        url, api_key, timeout, retries, max_wait, concurrency, progress, headers = config
        if isinstance(timeout, tuple):
            _, connect, read, write, pool = timeout
            timeout = httpx.Timeout(connect=connect, read=read, write=write, pool=pool)
        return cls(
            url,
            api_key,
            timeout=timeout,
            retries=retries,
            max_retry_wait=max_wait,
            concurrency=concurrency,
            progress=progress,
            headers=dict(headers),
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self._config(), self._share_when_unpickled))

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        return (type(self).__name__, self._config())

    def __repr__(self) -> str:
        key = ", api_key=…" if self.api_key else ""
        return f"{type(self).__name__}({self.url!r}{key})"

    # -- helpers -----------------------------------------------------------------------------

    def _full_url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.url}/{path}" if path else self.url + "/"

    def _headers(self) -> dict[str, str]:
        headers = {"User-Agent": "lazycache-python", **self.extra_headers}
        if self.api_key:
            headers["X-Api-Key"] = self.api_key
        return headers

    def _limits(self) -> httpx.Limits:
        return httpx.Limits(
            max_connections=max(10, 2 * self.concurrency),
            max_keepalive_connections=max(10, self.concurrency),
        )

    def _label(self, progress: bool | None, text: str) -> str | None:
        """A progress bar's name, or None when this call shows none."""
        return text if (self.progress if progress is None else progress) else None

    @staticmethod
    def _options(
        width: int | None,
        height: int | None,
        fit: str | None,
        crop: Any,
        depth: int | None,
        channels: str | None,
        quality: int | None,
        seek: str | None,
    ) -> FrameOptions:
        return FrameOptions(
            width=width,
            height=height,
            fit=fit,  # type: ignore[arg-type]
            crop=crop,
            depth=depth,
            channels=channels,  # type: ignore[arg-type]
            quality=quality,
            seek=seek,  # type: ignore[arg-type]
        )

    @staticmethod
    def _check_output(output: Output) -> None:
        if output not in ("array", "image", "bytes"):
            raise LazycacheError(f"output must be 'array', 'image' or 'bytes', not {output!r}")
