"""How long one operation's registry calls may take, and where their retries are reported.

A :class:`Transfer` is given to a registry source or sink for one operation (``copy`` makes
one from ``--stall-timeout`` and ``--timeout``):

* ``stall``: seconds a request may go without a byte moving either way (no answer, no body
  bytes, the registry not reading what we send) before it counts as stalled; a stalled request
  is tried again, at most :data:`STALL_ATTEMPTS` times in all. The default is
  :data:`DEFAULT_STALL`, or ``IMAGEWISE_STALL_TIMEOUT`` (seconds) from the environment.
* ``timeout``: seconds the whole operation may take (None: no limit). Every request's waits
  are cut to the time left, and retries and waits past it are not started.
* ``reporter``: a :class:`~imagewise.progress.Reporter` told in words about every retry and
  backoff (``Reporter.message``), so a slow registry is never silent.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from imagewise.progress import NULL, Reporter
from imagewise.record import Record

if TYPE_CHECKING:
    from imagewise.registry.errors import OutOfTime

#: seconds without a byte before a request counts as stalled
DEFAULT_STALL = 60.0
#: environment variable overriding :data:`DEFAULT_STALL` (seconds)
STALL_ENV = "IMAGEWISE_STALL_TIMEOUT"
#: tries of one request that keeps stalling, the first included
STALL_ATTEMPTS = 3
#: seconds to wait for a TCP (and TLS) connection
CONNECT_TIMEOUT = 20.0


def stall_from_env() -> float:
    """``IMAGEWISE_STALL_TIMEOUT`` when it holds a positive number of seconds, else the default."""
    text = os.environ.get(STALL_ENV, "").strip()
    try:
        value = float(text) if text else DEFAULT_STALL
    except ValueError:
        return DEFAULT_STALL
    return value if value > 0 else DEFAULT_STALL


def seconds(value: float) -> str:
    """``3 s``, ``0.5 s``: a duration for a message."""
    return f"{value:.0f} s" if value >= 10 or value == int(value) else f"{value:.1f} s"


class Transfer(Record):
    """Stall threshold, overall time limit and progress reporter of one operation."""

    __slots__ = ("stall", "timeout", "reporter", "started")  # noqa: RUF023 - in field order
    _uncompared = ("reporter", "started")

    def __init__(
        self,
        stall: float | None = None,
        timeout: float | None = None,
        reporter: Reporter | None = None,
        started: float | None = None,
    ) -> None:
        self.stall = float(stall) if stall else stall_from_env()
        self.timeout = float(timeout) if timeout else None
        self.reporter = reporter if reporter is not None else NULL
        self.started = time.monotonic() if started is None else started

    def remaining(self) -> float | None:
        """Seconds left before the overall timeout (None: no limit)."""
        if self.timeout is None:
            return None
        return self.timeout - (time.monotonic() - self.started)

    def expired(self) -> bool:
        left = self.remaining()
        return left is not None and left <= 0.01  # a socket timeout may end a hair early

    def out_of_time(self, what: str) -> OutOfTime:
        from imagewise.registry.errors import OutOfTime

        assert self.timeout is not None
        return OutOfTime(
            f"{what}: not finished within the overall timeout of {seconds(self.timeout)}"
        )

    def check(self, what: str) -> None:
        """Raise :class:`~imagewise.registry.errors.OutOfTime` once the time is up."""
        if self.timeout is not None and self.expired():
            raise self.out_of_time(what)

    def timeouts(self) -> tuple[float, float, float | None]:
        """(connect, read/write, pool) seconds for the next request, cut to the time left."""
        left = self.remaining()
        if left is None:
            return CONNECT_TIMEOUT, self.stall, None
        left = max(left, 0.001)
        return min(CONNECT_TIMEOUT, left), min(self.stall, left), left

    def wait(
        self, delay: float, why: str, what: str, nth: int, tries: int, action: str = "retrying"
    ) -> None:
        """Say ``why`` and that try ``nth`` of ``tries`` starts in ``delay`` seconds, then sleep
        (unless the overall timeout would pass first: then raise OutOfTime)."""
        left = self.remaining()
        if left is not None and delay >= left:
            raise self.out_of_time(f"{what} ({why}; no time left to retry)")
        self.reporter.message(f"{why}; {action} in {seconds(delay)} (try {nth} of {tries})")
        if delay > 0:
            time.sleep(delay)
