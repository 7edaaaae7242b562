"""Digest checks in a forked process, beside the walk.

A pass that checks the digest of a layer it reads in place (``mapped.Verifier``) hashes it in a
background thread. ``hashlib`` lets go of the GIL while it hashes, but the thread needs it back
between steps, and a walker busy with Python code hands it over only at switch intervals: over
a 453 MB layer of 66,000 files the thread did almost nothing while the walk ran, and the pass
then waited 0.27 s for the hash (an ``sbom`` of 0.57 s, 0.29 s without the check). A process of
its own hashes at full speed on the second core: the same ``sbom`` takes 0.35 s, digests checked.

``HashProcess`` is forked when the pass starts, before it starts a thread (``archive.forking``
says when: the main thread, two cores, enough bytes). It reads requests (a file region and an
algorithm) from one pipe, hashes each region (``mapped.hash_region``: a thread reads it with
``preadv`` a few buffers ahead of the hash, so the copies and the hash use both cores once the
walk is done; faster than a map, with no pages to let go), and answers in order on another. It
is only an accelerator: when it cannot answer (an error there, its death, a garbled reply) the
caller hashes the region itself, so an error is raised the same way with or without it. The child touches nothing of the parent's
but the two pipes and ends with ``os._exit``.
"""

from __future__ import annotations

import os
import pickle
import threading

from imagewise.archive.forking import (
    FAILED,
    fork_child,
    frame,
    read_frame,
    reap,
    report,
    write_all,
)
from imagewise.archive.region import Region

#: how much the checking process yields the CPU to the pass and its partner (``os.nice``):
#: enough that they come first, not so much that the checks are left alone at the end on one
#: core (Node app check, six interleaved runs each: median 0.70 s at 3, 0.715 s at 10, 0.745 s
#: at 0; the 300k image alike at all three)
NICE = 3


class HashProcess:
    """A forked child hashing file regions in the order they are submitted.

    ``submit`` returns the request's number (``None`` once the child is gone); ``digest(number)``
    waits for its hex digest (``None``: the child could not give it; hash it yourself).
    Raises ``OSError`` when no process can be forked."""

    def __init__(self) -> None:
        import fcntl  # noqa: F401 - what the child's hashing imports, imported before the fork
        import hashlib  # noqa: F401
        import signal  # noqa: F401

        import imagewise.archive.mapped  # noqa: F401

        req_r, req_w = os.pipe()
        try:
            rep_r, rep_w = os.pipe()
        except OSError:
            os.close(req_r)
            os.close(req_w)
            raise
        try:
            pid = fork_child(lambda: _serve(req_r, rep_w), close=(req_w, rep_r))
        except OSError:
            for fd in (req_r, req_w, rep_r, rep_w):
                os.close(fd)
            raise
        os.close(req_r)
        os.close(rep_w)
        self._pid = pid
        self._requests, self._replies = req_w, rep_r
        self._sent = 0  # requests sent
        self._next = 0  # the number of the next reply to come
        self._replied: dict[int, str | None] = {}
        self._failed = False
        self._lock = threading.Lock()

    def submit(self, region: Region, algorithm: str) -> int | None:
        """Queue the hash of ``region``; its number, or ``None`` when the child is gone."""
        with self._lock:
            if self._failed:
                return None
            body = pickle.dumps((region.path, region.offset, region.length, algorithm))
            try:
                write_all(self._requests, frame(body))
            except OSError:
                self._fail()
                return None
            number = self._sent
            self._sent += 1
            return number

    def digest(self, number: int) -> str | None:
        """Request ``number``'s hex digest (waits for it); ``None`` when the child failed it."""
        with self._lock:
            while number >= self._next and not self._failed:
                intact, reply = self._reply()
                if not intact:
                    self._fail()
                    break
                self._replied[self._next] = reply
                self._next += 1
            return self._replied.pop(number, None)

    def _reply(self) -> tuple[bool, str | None]:
        """The next reply: ``(True, hex digest)``, ``(True, None)`` when the child failed this
        one, ``(False, None)`` when the pipe broke or carried something else (trust nothing
        further)."""
        intact, body = read_frame(self._replies, limit=1024)
        if body is None:
            return intact, None
        if not body or body.strip(b"0123456789abcdef"):
            return False, None
        return True, body.decode("ascii")

    def _fail(self) -> None:
        self._failed = True
        self._stop()

    def close(self) -> None:
        """Stop the child (whatever it is doing) and reap it."""
        with self._lock:
            self._failed = True
            self._stop()

    def _stop(self) -> None:
        for fd in (self._requests, self._replies):
            if fd >= 0:
                os.close(fd)
        self._requests = self._replies = -1
        if self._pid:
            reap(self._pid)
            self._pid = 0

    def __del__(self) -> None:  # an owner that never closed it
        if getattr(self, "_pid", 0):
            self._stop()


def _serve(requests: int, replies: int) -> int:
    """The child: hash each requested region, answer in order; 0 at the end of the requests."""
    from imagewise.archive.mapped import hash_region

    try:  # the pass and its partner first: the checks fill the time either leaves
        os.nice(NICE)
    except OSError:
        pass
    while True:
        _, body = read_frame(requests)
        if body is None:  # the end of the requests: the parent closed them
            return 0
        path, offset, size, algorithm = pickle.loads(body)  # noqa: S301 - our parent's pipe
        try:
            digest = hash_region(Region(path, offset, size), algorithm, read=True)
            answer = frame(digest.encode("ascii"))
        except BaseException:  # noqa: BLE001 - the parent hashes this one itself
            report("hasher")
            answer = FAILED
        write_all(replies, answer)
