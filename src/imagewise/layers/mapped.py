"""Uncompressed layers that lie as plain bytes in a local file: walked in place, verified alongside.

A ``docker save`` / buildah archive keeps each layer as an uncompressed tar member; an OCI layout
may too. Streaming such a layer copies every byte through Python and hashes it on the walking
path. Instead the pass (``passes``) maps the layer's byte range (:class:`MappedRegion`) and walks
the map: headers are sliced out, content is copied only when a visitor reads it, and unread
content is skipped by arithmetic, never touched.

The digest is still checked, off the walking path: :class:`Verifier` hashes each region in a
small thread pool (``hashlib`` releases the GIL on large buffers), so on a machine with a spare
core the check costs little wall time. The pass waits for a layer's verdict before it trusts
anything derived from that layer (the layer cache) and before it returns; a mismatch raises
:class:`~imagewise.errors.DigestMismatch`, exactly as a streamed read would.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import threading
from collections.abc import Callable
from typing import Any, Self

from imagewise.errors import DigestMismatch, ImageFormatError
from imagewise.oci.digest import Digest
from imagewise.sources.blobio import Region

#: bytes hashed per step: each step releases the GIL, and taking it back can wait a whole
#: switch interval (5 ms) behind the walking thread, so steps are large; cancellation is checked
#: between steps
HASH_STEP = 64 << 20
#: background hashing threads
WORKERS = max(1, min(2, os.cpu_count() or 1))


class MappedRegion:
    """A read-only memory map of ``region``; ``buffer[start:]`` is the region's bytes."""

    def __init__(self, region: Region) -> None:
        self.region = region
        self.start = 0
        self.buffer: Any = b""
        self._map: mmap.mmap | None = None
        size = os.path.getsize(region.path)
        if region.offset + region.length > size:
            raise ImageFormatError(f"{region.path}: archive is truncated")
        if region.length == 0:
            return
        aligned = region.offset - region.offset % mmap.ALLOCATIONGRANULARITY
        with open(region.path, "rb") as f:
            self._map = mmap.mmap(f.fileno(), region.offset - aligned + region.length,
                                  access=mmap.ACCESS_READ, offset=aligned)
        self.buffer = self._map
        self.start = region.offset - aligned

    def close(self) -> None:
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:  # a view is still referenced (an error's traceback): GC closes it
                pass
            self._map = None
            self.buffer = b""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def feed_region(region: Region, update: Callable[[Any], object],
                cancel: threading.Event | None = None) -> bool:
    """Pass the region's bytes to ``update`` (a hash's) as views of a map, ``HASH_STEP`` at a
    time; False when cancelled between steps."""
    with MappedRegion(region) as m:
        if m.buffer:
            with memoryview(m.buffer) as view:
                end = m.start + region.length
                for pos in range(m.start, end, HASH_STEP):
                    if cancel is not None and cancel.is_set():
                        return False
                    with view[pos: min(pos + HASH_STEP, end)] as part:
                        update(part)
    return True


class FileMaps:
    """Many small regions of the same few files: one read-only map per file, made on first use
    and kept while this object lives (a map per region would cost a few system calls each)."""

    def __init__(self) -> None:
        self._maps: dict[str, MappedRegion] = {}

    def feed(self, region: Region, update: Callable[[Any], object]) -> None:
        """Pass the region's bytes to ``update`` as one view of the file's map."""
        if region.length == 0:
            return
        m = self._maps.get(region.path)
        if m is None:
            whole = Region(region.path, 0, os.path.getsize(region.path))
            m = self._maps[region.path] = MappedRegion(whole)
        if region.offset + region.length > m.region.length:
            raise ImageFormatError(f"{region.path}: archive is truncated")
        with memoryview(m.buffer) as view, view[region.offset: region.offset + region.length] as part:
            update(part)


def hash_region(region: Region, algorithm: str = "sha256",
                cancel: threading.Event | None = None) -> str:
    """Hex digest of the region's bytes (``""`` when cancelled)."""
    h = hashlib.new(algorithm)
    return h.hexdigest() if feed_region(region, h.update, cancel) else ""


class Check:
    """One digest check, done by a ``Verifier`` worker; ``result()`` waits and re-raises."""

    def __init__(self, region: Region, digest: Digest, size: int | None, where: str) -> None:
        self.region, self.digest, self.size, self.where = region, digest, size, where
        self._done = threading.Event()
        self._error: BaseException | None = None

    def run(self, cancel: threading.Event) -> None:
        try:
            if self.size is not None and self.size >= 0 and self.region.length != self.size:
                raise DigestMismatch(str(self.digest),
                                     f"{self.region.length} bytes instead of {self.size}",
                                     self.where)
            got = hash_region(self.region, self.digest.algorithm, cancel)
            if not cancel.is_set() and got != self.digest.hex:
                raise DigestMismatch(str(self.digest), f"{self.digest.algorithm}:{got}",
                                     self.where)
        except BaseException as e:  # noqa: BLE001 - re-raised by result()
            self._error = e
        finally:
            self._done.set()

    def result(self) -> None:
        self._done.wait()
        if self._error is not None:
            raise self._error


class Verifier:
    """Checks blob digests of local regions in up to ``workers`` background threads, in the
    order submitted.

    ``submit`` queues a check; its ``result()`` waits and raises ``DigestMismatch`` on a wrong
    digest or size. ``close`` cancels what has not finished and waits for the threads.
    """

    def __init__(self, workers: int | None = None) -> None:
        self._workers = workers or WORKERS
        import queue  # here: a pass that verifies nothing never starts a Verifier

        self._queue: queue.SimpleQueue[Check | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._cancel = threading.Event()

    def submit(self, region: Region, digest: Digest, size: int | None, where: str) -> Check:
        check = Check(region, digest, size, where)
        self._queue.put(check)
        if len(self._threads) < self._workers:
            t = threading.Thread(target=self._work, name="imagewise-verify", daemon=True)
            t.start()
            self._threads.append(t)
        return check

    def _work(self) -> None:
        while (check := self._queue.get()) is not None:
            check.run(self._cancel)

    def close(self) -> None:
        self._cancel.set()  # queued checks still run, but return at once
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join()
        self._threads.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
