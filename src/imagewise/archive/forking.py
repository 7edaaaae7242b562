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
import struct
import threading
from collections.abc import Callable, Iterable

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


def fork_child(run: Callable[[], int], close: Iterable[int] = ()) -> int:
    """Fork a child that closes ``close`` (the parent's ends of its pipes), runs ``run`` and
    ends with its status through ``os._exit`` (no ``atexit`` handler, no ``finally`` of the
    caller); the child's pid here. ``OSError`` when no process can be forked."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for fd in close:
                os.close(fd)
            code = run()
        finally:
            os._exit(code)
    return pid


def report(who: str) -> None:
    """In a child, with ``IMAGEWISE_DEBUG``: the exception being handled, on standard error
    (the parent then does the work itself, so nothing else says what went wrong)."""
    if os.environ.get("IMAGEWISE_DEBUG"):
        import traceback

        os.write(2, f"imagewise {who}: {traceback.format_exc()}".encode("utf-8", "replace"))


#: a frame on a pipe: its length, then its bytes; a negative length is a failure, no bytes
_FRAME = struct.Struct("<q")
FAILED = _FRAME.pack(-1)


def frame(body: bytes) -> bytes:
    return _FRAME.pack(len(body)) + body


def read_frame(fd: int, limit: int | None = None) -> tuple[bool, bytes | None]:
    """The next frame: ``(True, body)``; ``(True, None)`` for a failure frame; ``(False,
    None)`` when the pipe ended, broke or announced more than ``limit`` bytes."""
    head = read_exactly(fd, _FRAME.size)
    if head is None:
        return False, None
    (length,) = _FRAME.unpack(head)
    if length < 0:
        return True, None
    if limit is not None and length > limit:
        return False, None
    body = read_exactly(fd, length) if length else b""
    return (False, None) if body is None else (True, body)


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
