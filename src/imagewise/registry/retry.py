"""Retry policy: bounded attempts, exponential backoff with full jitter, ``Retry-After`` honoured."""

from __future__ import annotations

import random
import time

from imagewise.record import Record

#: statuses worth another attempt: rate limiting and server-side failures
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class RetryPolicy(Record):
    """``attempts`` is the total number of tries (1 = no retry)."""

    __slots__ = (
        "attempts",
        "base",
        "cap",
        # never wait longer than this for one Retry-After, however long the server asks
        "max_retry_after",
    )

    def __init__(
        self, attempts: int = 5, base: float = 0.5, cap: float = 30.0, max_retry_after: float = 60.0
    ) -> None:
        self.attempts = attempts
        self.base = base
        self.cap = cap
        self.max_retry_after = max_retry_after

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before try number ``attempt + 1`` (``attempt`` counts from 0)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return random.uniform(0, min(self.cap, self.base * (2**attempt)))

    def sleep(self, attempt: int, retry_after: float | None = None) -> None:
        time.sleep(self.delay(attempt, retry_after))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime  # the email package is slow to import

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


DEFAULT = RetryPolicy()
