"""Progress bars for long batches (tqdm: a notebook widget in Jupyter, text in a terminal).

A batch gets a bar only when progress is on (the default; ``Client(progress=False)`` or a
call's ``progress=False`` turns it off) and it carries at least :data:`MIN_FRAMES` frames.
"""

from __future__ import annotations

from tqdm.auto import tqdm

__all__ = ["MIN_FRAMES", "Bar", "make_bar"]

#: Batches smaller than this show no bar: they finish before one would help.
MIN_FRAMES = 20


class Bar:
    """A progress bar counting frames; a no-op when disabled."""

    def __init__(self, total: int, description: str | None) -> None:
        self._bar: tqdm | None = None
        if description is not None and total >= MIN_FRAMES:
            self._bar = tqdm(total=total, desc=description, unit="frame", leave=False)

    def update(self, frames: int) -> None:
        """Counts ``frames`` more as done."""
        if self._bar is not None:
            self._bar.update(frames)

    def close(self) -> None:
        """Removes the bar."""
        if self._bar is not None:
            self._bar.close()


def make_bar(total: int, description: str | None, enabled: bool) -> Bar:
    """A bar for ``total`` frames named ``description``, or a no-op one."""
    return Bar(total, description if enabled else None)
