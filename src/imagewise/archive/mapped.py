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

A map is only safe while nobody shrinks the file: touching a mapped page past a new end of file
raises SIGBUS, which kills the process (Python cannot catch it). So a file is mapped only while
it is *known to be stable*: :class:`MappedRegion` first takes a read lease on it (Linux
``F_SETLEASE``; granted only when no one has it open for writing, and then any open for writing
or truncation by another process waits until the lease is released, up to
``/proc/sys/fs/lease-break-time``). Readers poll ``check()`` (every few hundred entries, between
hash steps): once another process asks to change the file, the read stops with "archive is being
changed" and the lease is released, long before the kernel would take it back. Where no lease can
be had (another writer has the file open, a file of another user, a file system without leases,
another OS) the region is read with ``pread`` into buffers instead: a file cut short then gives a
short read, reported as "archive is truncated". A lease break is signalled with SIGURG, whose
default action is to do nothing, rather than SIGIO, which would end the process.
"""

from __future__ import annotations

import mmap
import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self

from imagewise.archive.region import Region
from imagewise.errors import DigestMismatch, ImageFormatError
from imagewise.oci.digest import Digest

if TYPE_CHECKING:
    from imagewise.archive.hasher import HashProcess

#: bytes hashed per step: each step releases the GIL, and taking it back can wait a whole
#: switch interval (5 ms) behind the walking thread, so steps are large; cancellation is checked
#: between steps, and the pages of a step are let go after it (``release``): a hashing thread
#: keeps at most one step of the archive resident (16 MiB: 64 cost a warm ``check`` of a 300k-file
#: image 35 MB more peak memory and measured no faster)
HASH_STEP = 16 << 20
#: a walk or a hash lets go of the mapped pages behind it in steps of this many bytes (2 MiB:
#: 8 kept 4 MB more of a 453 MB layer resident in ``analyze``, a tenth of its peak, and the
#: ~230 ``madvise`` calls of the smaller step cost nothing measurable)
RELEASE_STEP = 2 << 20
_DONTNEED: int | None = getattr(mmap, "MADV_DONTNEED", None)
#: background hashing threads
WORKERS = max(1, min(2, os.cpu_count() or 1))


#: Linux fcntl commands (not all exposed by the fcntl module)
_F_SETLEASE, _F_GETLEASE, _F_SETSIG = 1024, 1025, 10
#: bytes read per ``pread`` when a region cannot be mapped and is hashed or copied
READ_STEP = 4 << 20


def _lease(fd: int) -> bool:
    """Take a read lease on ``fd`` (the file then cannot be written or truncated by another
    process until it is released or broken); False where none can be had."""
    if not sys.platform.startswith("linux") or not LEASE:
        return False
    import fcntl
    import signal

    try:
        fcntl.fcntl(fd, _F_SETSIG, signal.SIGURG)  # a break must not end us (SIGIO would)
        fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_RDLCK)
    except OSError:
        return False
    return True


#: map files under a read lease when one can be had (else read them with pread)
LEASE = True


def _truncated(path: str) -> ImageFormatError:
    return ImageFormatError(f"{path}: archive is truncated")


class _PReadBuffer:
    """What the walk needs of a map (``len`` and slicing to ``bytes``), read with ``pread``
    from an open file: a file cut short while it is read raises "archive is truncated"."""

    __slots__ = ("_fd", "_length", "_offset", "_path")

    def __init__(self, fd: int, offset: int, length: int, path: str) -> None:
        self._fd, self._offset, self._length, self._path = fd, offset, length, path

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, key: slice) -> bytes:
        start, stop, _ = key.indices(self._length)
        n = stop - start
        if n <= 0:
            return b""
        data = os.pread(self._fd, n, self._offset + start)
        if len(data) < n:
            while len(data) < n:  # a short read can be legal; an empty one is the end of file
                more = os.pread(self._fd, n - len(data), self._offset + start + len(data))
                if not more:
                    raise _truncated(self._path)
                data += more
        return data


class MappedRegion:
    """Read-only access to ``region``: ``buffer[start:]`` is the region's bytes.

    ``buffer`` is a memory map of the file while a read lease keeps it stable (``mapped``),
    else a ``pread`` view (see the module docstring). ``check()`` raises once another process
    wants to change a mapped file; call it every so often while reading."""

    def __init__(self, region: Region) -> None:
        self.region = region
        self.start = 0
        self.buffer: Any = b""
        self.mapped = False
        self._map: mmap.mmap | None = None
        self._released = 0  # pages of the map before this offset were let go (``release``)
        self._fd = os.open(region.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            self._open(region)
        except BaseException:
            os.close(self._fd)
            self._fd = -1
            raise

    def _open(self, region: Region) -> None:
        leased = _lease(self._fd)
        size = os.fstat(self._fd).st_size  # after the lease: from here on it cannot shrink
        if region.offset + region.length > size:
            raise _truncated(region.path)
        if region.length == 0:
            return
        if not leased:
            self.buffer = _PReadBuffer(self._fd, region.offset, region.length, region.path)
            return
        aligned = region.offset - region.offset % mmap.ALLOCATIONGRANULARITY
        self._map = mmap.mmap(
            self._fd,
            region.offset - aligned + region.length,
            access=mmap.ACCESS_READ,
            offset=aligned,
        )
        self.buffer = self._map
        self.start = region.offset - aligned
        self.mapped = True

    def check(self) -> None:
        """Raise while the map is still safe when another process wants to change the file."""
        if self.mapped:
            import fcntl

            if fcntl.fcntl(self._fd, _F_GETLEASE) != fcntl.F_RDLCK:
                self.close()
                raise ImageFormatError(
                    f"{self.region.path}: archive is being changed by "
                    "another process while it is read"
                )

    def release(self, offset: int) -> None:
        """The reader has passed ``offset`` (of the region): drop the map's pages before it from
        this process's resident set, ``RELEASE_STEP`` at a time. The page cache keeps them and a
        later read faults them back in, so this is always safe; without it, walking a layer of
        a million small files would keep every page of headers it touched resident."""
        m = self._map
        if m is None or _DONTNEED is None:
            return
        end = self.start + offset
        end -= end % mmap.PAGESIZE
        if end - self._released >= RELEASE_STEP:
            m.madvise(_DONTNEED, self._released, end - self._released)
            self._released = end

    def close(self) -> None:
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:  # a view is still referenced (an error's traceback): GC closes it
                pass
            self._map = None
        self.buffer = b""
        self.mapped = False
        if self._fd >= 0:
            os.close(self._fd)  # releases the lease (a map left to the GC keeps it until then)
            self._fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def feed_region(
    region: Region, update: Callable[[Any], object], cancel: threading.Event | None = None
) -> bool:
    """Pass the region's bytes to ``update`` (a hash's) as views of a map, ``HASH_STEP`` at a
    time (``read_region`` in ``READ_STEP`` reads where the file is not mapped); False when
    cancelled between steps."""
    with MappedRegion(region) as m:
        if not m.buffer:
            return True
        if not m.mapped:
            return read_region(region, update, cancel, READ_STEP)
        end = m.start + region.length
        with memoryview(m.buffer) as view:
            for pos in range(m.start, end, HASH_STEP):
                if cancel is not None and cancel.is_set():
                    return False
                m.check()
                with view[pos : min(pos + HASH_STEP, end)] as part:
                    update(part)
                m.release(min(pos + HASH_STEP, end) - m.start)
    return True


class FileMaps:
    """Many small regions of the same few files, read after the walk (deferred hashes): one open
    file per path, kept while this object lives, read with ``pread`` (no map: a map kept this
    long could not stay under a lease, see the module docstring)."""

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}

    def feed(self, region: Region, update: Callable[[Any], object]) -> None:
        """Pass the region's bytes to ``update``; "archive is truncated" if the file is shorter."""
        if region.length == 0:
            return
        fd = self._fds.get(region.path)
        if fd is None:
            fd = self._fds[region.path] = os.open(
                region.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
            )
        view = _PReadBuffer(fd, region.offset, region.length, region.path)
        for pos in range(0, region.length, READ_STEP):
            update(view[pos : min(pos + READ_STEP, region.length)])

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def __del__(self) -> None:
        self.close()


#: bytes read per ``preadv`` by :func:`read_region` (one buffer, reused)
READ_INTO = 1 << 20


def read_region(
    region: Region,
    update: Callable[[Any], object],
    cancel: threading.Event | None = None,
    step: int = 0,
) -> bool:
    """Pass the region's bytes to ``update`` as views of one buffer, filled by ``preadv``
    ``step`` (default ``READ_INTO``) bytes at a time; False when cancelled between steps. For a
    region of a file that is not mapped, hashed by a thread beside the walk (``feed_region``,
    with big steps: each hands the GIL over); a process of its own reads ahead instead
    (:func:`read_ahead`). A file shorter than the region: "archive is truncated"."""
    if region.length == 0:
        return True
    fd = os.open(region.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        with memoryview(bytearray(min(step or READ_INTO, region.length))) as view:
            pos, end = region.offset, region.offset + region.length
            while pos < end:
                if cancel is not None and cancel.is_set():
                    return False
                n = _read_at(fd, view[: min(len(view), end - pos)], pos, region.path)
                with view[:n] as part:
                    update(part)
                pos += n
    finally:
        os.close(fd)
    return True


def _read_at(fd: int, view: memoryview, pos: int, path: str) -> int:
    """Bytes read from ``pos`` of ``fd`` into ``view`` (``preadv``: no new bytes object); none
    before the region's end: "archive is truncated"."""
    if hasattr(os, "preadv"):
        n = os.preadv(fd, [view], pos)
    else:  # pragma: no cover - macOS before 11
        data = os.pread(fd, len(view), pos)
        n = len(data)
        view[:n] = data
    if n <= 0:
        raise _truncated(path)
    return n


def read_ahead(
    region: Region, update: Callable[[Any], object], buffers: int = 3, step: int = 0
) -> None:
    """Pass the region's bytes to ``update`` in order, as :func:`read_region` does, with the
    reads made by a thread of their own into ``buffers`` buffers of ``step`` bytes (default
    ``READ_INTO``), ahead of ``update``: the
    ``preadv`` copies and a hash that lets go of the GIL run on two cores at once (the checking
    process's 453 MB: 0.23 s instead of 0.26-0.29 s). A file shorter than the region: "archive
    is truncated", raised here."""
    import queue

    if region.length == 0:
        return
    fd = os.open(region.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    free: queue.SimpleQueue[memoryview | None] = queue.SimpleQueue()
    full: queue.SimpleQueue[tuple[memoryview, int] | BaseException | None] = queue.SimpleQueue()
    for _ in range(buffers):
        free.put(memoryview(bytearray(min(step or READ_INTO, region.length))))

    def reads() -> None:
        pos, end = region.offset, region.offset + region.length
        try:
            while pos < end:
                view = free.get()
                if view is None:  # the consumer stopped
                    return
                n = _read_at(fd, view[: min(len(view), end - pos)], pos, region.path)
                pos += n
                full.put((view, n))
            full.put(None)
        except BaseException as e:  # noqa: BLE001 - raised by the consumer
            full.put(e)

    reader = threading.Thread(target=reads, name="imagewise-read-ahead", daemon=True)
    reader.start()
    try:
        while (item := full.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            view, n = item
            with view[:n] as part:
                update(part)
            free.put(view)
    finally:
        free.put(None)
        reader.join()
        os.close(fd)


def hash_region(
    region: Region,
    algorithm: str = "sha256",
    cancel: threading.Event | None = None,
    read: bool = False,
) -> str:
    """Hex digest of the region's bytes (``""`` when cancelled); ``read``: with
    :func:`read_ahead` (a process of its own, where nothing else wants the second core's GIL,
    and nothing to cancel), else through a map (``feed_region``)."""
    import hashlib

    h = hashlib.new(algorithm)
    if read:
        read_ahead(region, h.update)
        return h.hexdigest()
    return h.hexdigest() if feed_region(region, h.update, cancel) else ""


class Check:
    """One digest check, done by a ``Verifier`` worker; ``result()`` waits and re-raises."""

    def __init__(self, region: Region, digest: Digest, size: int | None, where: str) -> None:
        self.region, self.digest, self.size, self.where = region, digest, size, where
        self._done = threading.Event()
        self._error: BaseException | None = None

    def run(self, cancel: threading.Event) -> None:
        try:
            self._check_size()
            got = hash_region(self.region, self.digest.algorithm, cancel)
            if not cancel.is_set():
                self._compare(got)
        except BaseException as e:  # noqa: BLE001 - re-raised by result()
            self._error = e
        finally:
            self._done.set()

    def _check_size(self) -> None:
        if self.size is not None and self.size >= 0 and self.region.length != self.size:
            raise DigestMismatch(
                str(self.digest), f"{self.region.length} bytes instead of {self.size}", self.where
            )

    def _compare(self, got: str) -> None:
        if got != self.digest.hex:
            raise DigestMismatch(str(self.digest), f"{self.digest.algorithm}:{got}", self.where)

    def result(self) -> None:
        self._done.wait()
        if self._error is not None:
            raise self._error


class _ForkedCheck(Check):
    """A check whose hash the ``HashProcess`` takes; should it fail, ``result()`` hashes here."""

    def __init__(
        self,
        region: Region,
        digest: Digest,
        size: int | None,
        where: str,
        hasher: HashProcess,
        number: int,
        cancel: threading.Event,
    ) -> None:
        super().__init__(region, digest, size, where)
        self._hasher, self._number, self._cancel = hasher, number, cancel
        self._lock = threading.Lock()

    def result(self) -> None:
        with self._lock:
            if not self._done.is_set():
                got = self._hasher.digest(self._number)
                if got is None:  # the process could not: the same work here, the same errors
                    self.run(self._cancel)
                else:
                    try:
                        self._check_size()
                        self._compare(got)
                    except DigestMismatch as e:
                        self._error = e
                    self._done.set()
        super().result()


class Verifier:
    """Checks blob digests of local regions in up to ``workers`` background threads, in the
    order submitted; with ``fork``, in a forked process (``archive.hasher``: it hashes beside a
    walk that keeps the GIL busy), falling back to the threads should the fork fail.

    ``submit`` queues a check; its ``result()`` waits and raises ``DigestMismatch`` on a wrong
    digest or size. ``close`` cancels what has not finished and waits for the threads.
    """

    def __init__(self, workers: int | None = None, fork: bool = False) -> None:
        self._workers = workers or WORKERS
        import queue  # here: a pass that verifies nothing never starts a Verifier

        self._queue: queue.SimpleQueue[Check | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._cancel = threading.Event()
        self._hasher: HashProcess | None = None
        if fork:  # now: before the caller starts a thread
            from imagewise.archive.hasher import HashProcess

            try:
                self._hasher = HashProcess()
            except OSError:
                pass

    @property
    def forked(self) -> bool:
        """Whether the checks run in a forked process."""
        return self._hasher is not None

    def submit(self, region: Region, digest: Digest, size: int | None, where: str) -> Check:
        if self._hasher is not None:
            number = self._hasher.submit(region, digest.algorithm)
            if number is not None:
                return _ForkedCheck(region, digest, size, where, self._hasher, number, self._cancel)
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
        if self._hasher is not None:
            self._hasher.close()
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join()
        self._threads.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
