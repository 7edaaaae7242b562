"""When a pass may hand work to a forked process, and how the two talk: the partner
(``layers/partner.py``) and the digest checker (``archive/hasher.py``) share both.

A second process pays for itself only with a second core to run on and enough bytes to read
(``MIN_BYTES``); it is forked only from a process's main thread (the service's worker threads
never fork). ``IMAGEWISE_PARTNER=0`` turns every second process off, ``=1`` on whatever the
size and the number of cores (the test suite's second run does, to hold every pass to the same
results both ways).
"""

from __future__ import annotations

import os
import threading

#: work on fewer bytes than this stays in one process (the fork costs more than it saves)
MIN_BYTES = 32 * 1024 * 1024


def setting() -> bool | None:
    """``IMAGEWISE_PARTNER``: False (never), True (always), None (when it pays)."""
    value = os.environ.get("IMAGEWISE_PARTNER", "").strip().lower()
    if value in ("0", "off", "no", "false"):
        return False
    if value in ("1", "on", "yes", "true"):
        return True
    return None


def allowed(nbytes: int) -> bool:
    """Whether work over ``nbytes`` may go to a forked process now."""
    chosen = setting()
    if chosen is False or not hasattr(os, "fork"):
        return False
    if threading.current_thread() is not threading.main_thread():
        return False
    return chosen is True or (cores() >= 2 and nbytes >= MIN_BYTES)


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def read_exactly(fd: int, n: int) -> bytes | None:
    """Exactly ``n`` bytes from a pipe, or ``None`` at its end or on an error."""
    parts = []
    while n > 0:
        try:
            data = os.read(fd, min(n, 1 << 20))
        except OSError:
            return None
        if not data:
            return None
        parts.append(data)
        n -= len(data)
    return b"".join(parts)


def write_all(fd: int, data: bytes) -> None:
    """All of ``data`` to a pipe (``OSError`` when the reader is gone)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def reap(pid: int) -> None:
    """End a forked child (whatever it is doing) and collect it; nothing if it is gone."""
    import signal

    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
