"""What the server's JSON answers and frame headers hold, as small typed objects.

:class:`Metadata` (a movie: frame count, size, rate, codec, bit depth, start time),
:class:`Listing` (a directory) and :class:`FrameInfo` (which frame an answer holds, and when it
was shown). Each keeps the server's original JSON in ``raw`` and can be indexed by its keys, so
code written against go-lazycache's dicts (``meta["NumFrames"]``) keeps working.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FrameInfo", "Listing", "Metadata"]


def _parse_rfc3339(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


class _RawMapping(Mapping[str, Any]):
    """Read-only dict access to the server's JSON (``raw``)."""

    raw: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)


@dataclass(frozen=True, eq=False)
class Metadata(_RawMapping):
    """A movie's metadata (the ``GET <movie>`` route).

    Attributes:
        path: the movie's path within its mirror, as the server names it (``URL``).
        num_frames: frames, numbered 1..num_frames.
        width, height: decoded frame size in pixels (None if the server does not say, as
            go-lazycache may not).
        frame_rate: frames per second.
        duration: seconds.
        file_size: bytes.
        codec: FFmpeg's codec name (``"prores"``, ``"h264"``, …), if given.
        bit_depth: bits per sample the movie holds (10 for ProRes), if given.
        start_time: when the movie began (from the container or a ``YYYYMMDDTHHMMSSZ`` file
            name), if known.
        raw: the server's JSON, whole.
    """

    path: str
    num_frames: int
    width: int | None
    height: int | None
    frame_rate: float
    duration: float
    file_size: int
    codec: str | None
    bit_depth: int | None
    start_time: datetime.datetime | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Metadata:
        """From the server's JSON object."""
        return cls(
            path=str(data.get("URL", "")),
            num_frames=int(data["NumFrames"]),
            width=int(data["Width"]) if data.get("Width") else None,
            height=int(data["Height"]) if data.get("Height") else None,
            frame_rate=float(data.get("FrameRate") or 0.0),
            duration=float(data.get("Duration") or 0.0),
            file_size=int(data.get("FileSize") or 0),
            codec=data.get("Codec"),
            bit_depth=int(data["BitDepth"]) if data.get("BitDepth") is not None else None,
            start_time=_parse_rfc3339(data.get("StartTime")),
            raw=dict(data),
        )


@dataclass(frozen=True, eq=False)
class Listing(_RawMapping):
    """A directory (the ``GET <dir>/`` route).

    Attributes:
        path: the directory's path within its mirror (``"/"`` for the root).
        files: names of its files.
        directories: names of its subdirectories (without a trailing slash).
        raw: the server's JSON, whole.
    """

    path: str
    files: list[str]
    directories: list[str]
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Listing:
        """From the server's JSON object."""
        return cls(
            path=str(data.get("Path", "/")),
            files=[str(f) for f in data.get("Files") or []],
            directories=[str(d) for d in data.get("Directories") or []],
            raw=dict(data),
        )


@dataclass(frozen=True)
class FrameInfo:
    """Which frame an answer holds, from its ``X-Lazycache-Frame*`` headers.

    Attributes:
        frame: the frame number answered (with ``seek="keyframe"``, the keyframe's).
        time: seconds from the movie's first frame.
        timestamp: when it was shown, when the movie has a start time.
        cache: which tier the bytes came from (``memory``, ``disk``, ``object-store``, ``miss``).
    """

    frame: int | None
    time: float | None
    timestamp: datetime.datetime | None
    cache: str | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> FrameInfo:
        """From a frame answer's headers (missing ones, e.g. from go-lazycache, are None)."""
        lower = {k.lower(): v for k, v in headers.items()}
        frame = lower.get("x-lazycache-frame")
        time = lower.get("x-lazycache-frame-time")
        return cls(
            frame=int(frame) if frame and frame.isdigit() else None,
            time=float(time) if time else None,
            timestamp=_parse_rfc3339(lower.get("x-lazycache-frame-timestamp")),
            cache=lower.get("x-lazycache-cache"),
        )
