"""When to try a request again, and how long to wait first.

Retried: 429, 502, 503 and 504 answers (a busy server or a failing origin), connection failures
and bodies cut short. The wait is the answer's ``Retry-After`` (seconds or an HTTP date) when it
has one, else an exponential backoff with jitter; either way at most ``max_wait`` seconds, and
at most ``retries`` times, so a call never hangs on a server that stays unavailable.
"""

from __future__ import annotations

import datetime
import email.utils
import random
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["RETRY_STATUSES", "RetryPolicy"]

#: Statuses worth another try: they describe a transient state of the server or its origin.
RETRY_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to retry, and how long to wait between tries.

    Attributes:
        retries: extra tries after the first (0 turns retrying off).
        backoff: first wait without ``Retry-After``, in seconds; doubles each try.
        max_wait: longest single wait, ``Retry-After`` included.
    """

    retries: int = 4
    backoff: float = 0.5
    max_wait: float = 30.0

    def delay(self, attempt: int, headers: Mapping[str, str] | None = None) -> float:
        """Seconds to wait before try ``attempt + 1`` (``attempt`` counts from 0)."""
        after = retry_after(headers) if headers is not None else None
        if after is None:
            after = self.backoff * (2**attempt) * (0.5 + random.random())
        return max(0.0, min(after, self.max_wait))


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The ``Retry-After`` header in seconds from now, or None when absent or unreadable."""
    value = None
    for key, text in headers.items():
        if key.lower() == "retry-after":
            value = text.strip()
            break
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds())
