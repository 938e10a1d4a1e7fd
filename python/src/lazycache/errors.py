"""Exceptions of the lazycache client: one class per status of the server's contract.

The server answers errors as JSON ``{"URL": "<path>", "Error": "<what went wrong>"}`` with a
status that says whose fault it is (400 the request, 404 no such file, 415 not a movie, 501 raw
output not enabled, 502/504 the origin, 503 busy). Every :class:`HTTPError` carries that status,
the server's words and the URL path it names, so ``str(error)`` reads like the server's answer.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "BadRequest",
    "HTTPError",
    "IncompleteResponse",
    "LazycacheError",
    "NotFound",
    "OriginError",
    "OriginTimeout",
    "RawOutputDisabled",
    "RequestTimeout",
    "ServerError",
    "ServiceUnavailable",
    "TooManyRequests",
    "TransportError",
    "Unauthorized",
    "UnsupportedMedia",
    "error_from_response",
]


class LazycacheError(Exception):
    """Base class of every error this package raises."""


class TransportError(LazycacheError):
    """The server could not be reached, or the connection failed (after the retries)."""


class RequestTimeout(TransportError):
    """A request took longer than the client's ``timeout`` (after the retries)."""


class IncompleteResponse(TransportError):
    """A response body ended early (the server gave up part-way through a streamed answer)."""


class HTTPError(LazycacheError):
    """The server answered an error status.

    Attributes:
        status: the HTTP status code.
        message: the server's ``Error`` text (or the body, if it was not lazycache's JSON).
        url: the request URL as sent.
        path: the ``URL`` the server's JSON names (the path it was asked for), if any.
        body: the parsed JSON body, if it was JSON.
    """

    status: int = 0

    def __init__(
        self,
        status: int,
        message: str,
        url: str,
        path: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(status, message, url)
        self.status = status
        self.message = message
        self.url = url
        self.path = path
        self.body = body

    def __str__(self) -> str:
        where = self.path or self.url
        return f"{self.status}: {self.message} ({where})"


class BadRequest(HTTPError):
    """400: a bad frame number, extension, size or option (e.g. frame 0)."""


class Unauthorized(HTTPError):
    """401: the server needs an API key (``Client(api_key=...)``) or refused the one given."""


class NotFound(HTTPError):
    """404: no such mirror, file or directory (or a route the server does not have)."""


class UnsupportedMedia(HTTPError):
    """415: a file FFmpeg cannot read as video."""


class TooManyRequests(HTTPError):
    """429: a proxy in front of the server asks to slow down (retried)."""


class RawOutputDisabled(HTTPError):
    """501: ``.npy``/``.rgba`` output needs the server's ``--allow-raw-output``."""


class OriginError(HTTPError):
    """502: the origin failed or answered garbage (retried)."""


class ServiceUnavailable(HTTPError):
    """503: the decode queue is full or the server is shutting down (retried)."""


class OriginTimeout(HTTPError):
    """504: the origin timed out (retried)."""


class ServerError(HTTPError):
    """Any other error status (a 500 names a request id that the server's log carries)."""


_BY_STATUS: dict[int, type[HTTPError]] = {
    400: BadRequest,
    401: Unauthorized,
    404: NotFound,
    415: UnsupportedMedia,
    429: TooManyRequests,
    501: RawOutputDisabled,
    502: OriginError,
    503: ServiceUnavailable,
    504: OriginTimeout,
}


def error_from_response(status: int, url: str, content: bytes) -> HTTPError:
    """The exception for an error answer: its class from the status, its words from the JSON."""
    body: Any = None
    message = ""
    path: str | None = None
    try:
        body = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        body = None
    if isinstance(body, dict):
        message = str(body.get("Error", "")) or json.dumps(body)
        path = body.get("URL") if isinstance(body.get("URL"), str) else None
    else:
        message = content[:500].decode("utf-8", "replace").strip()
    if not message:
        message = f"HTTP {status}"
    cls = _BY_STATUS.get(status, ServerError)
    return cls(status, message, url, path=path, body=body)
