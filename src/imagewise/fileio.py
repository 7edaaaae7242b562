"""Small pieces every file-handling module shares.

* :func:`atomic_write`: a file appears whole or not at all (written beside its destination under
  a ``.tmp-`` name, renamed over it on success, removed on any failure);
* :func:`write_file`: every file a user asks imagewise to write goes through it (atomic, keeps
  the mode of the file it replaces, one-line error);
* :class:`Reader`: the read-side boilerplate of the project's minimal binary streams
  (``readinto``, ``readall``, ``readable``, context manager) around one ``read(n)``; slotted and
  not an ``io`` class, because some are made once per tar entry.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO, Any, Self

#: prefix of temporary files; readers of a directory skip names starting with it
TMP_PREFIX = ".tmp-"


@contextmanager
def atomic_write(
    dest: str,
    mode: int | None = 0o644,
    *,
    sync: bool = False,
    owner: tuple[int, int] | None = None,
    tmp_dir: str | None = None,
) -> Iterator[IO[bytes]]:
    """Yield a binary file that becomes ``dest`` when the block ends without an error.

    ``mode`` is applied before the rename (``None`` keeps ``mkstemp``'s private 0600); ``owner``
    (uid, gid) too, when the process may give it. ``sync`` flushes the data to disk before the
    rename and the directory after it, so not even a crash of the machine leaves a short file.
    ``tmp_dir``: where the temporary file is made (default: beside ``dest``; it must be on the
    same filesystem).
    """
    import tempfile  # not at the top: most commands never write a file

    directory = os.path.dirname(os.path.abspath(dest))
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=tmp_dir or directory)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            if sync:
                f.flush()
                os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        if owner is not None:
            with suppress(PermissionError):
                os.chown(tmp, *owner)
        os.replace(tmp, dest)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if sync:
        with suppress(OSError):
            dfd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)


def write_file(dest: str, data: bytes) -> None:
    """Write ``data`` as the file ``dest``, whole or not at all: the one way imagewise writes a
    file a user asked for (``lint --fix``, ``policy init``, ``-o`` reports).

    A rewrite keeps the file's permission bits (and owner, when allowed) and replaces the file a
    symbolic link points to, not the link; a new file gets 0666 less the umask, as ``open``
    would. Raises :class:`~imagewise.errors.ImagewiseError` (one line) when the file cannot be
    written (full disk, no permission, ...): then ``dest`` is as it was."""
    import stat

    from imagewise.errors import ImagewiseError

    path = os.path.realpath(dest) if os.path.islink(dest) else dest
    owner: tuple[int, int] | None
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):  # /dev/null, a pipe, a terminal: written as it is,
            _write_through(dest, path, data)  # never replaced by a regular file
            return
        mode, owner = stat.S_IMODE(st.st_mode), (st.st_uid, st.st_gid)
        if (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid()):
            owner = None
    except FileNotFoundError:
        mode, owner = 0o666 & ~_umask(), None
    except OSError as e:
        raise ImagewiseError(f"{dest}: cannot write: {e.strerror or e}") from None
    try:
        with atomic_write(path, mode, sync=True, owner=owner) as f:
            f.write(data)
    except OSError as e:
        raise ImagewiseError(
            f"{dest}: cannot write: {e.strerror or e}; the file is as it was"
        ) from None


def _write_through(dest: str, path: str, data: bytes) -> None:
    from imagewise.errors import ImagewiseError

    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as e:
        raise ImagewiseError(f"{dest}: cannot write: {e.strerror or e}") from None


def _umask() -> int:
    """The process's umask, read without changing it (``os.umask`` can only read it by setting
    it, which would race with files other threads create meanwhile)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no /proc (not Linux): the only portable way
    os.umask(mask)
    return mask


def readinto(stream: Any, view: memoryview) -> int:
    """``stream.readinto(view)``, or ``read`` and a copy for a stream that has only ``read``."""
    into = getattr(stream, "readinto", None)
    if into is not None:
        return int(into(view))
    data = stream.read(len(view))
    view[: len(data)] = data
    return len(data)


def fill(stream: Any, view: memoryview) -> int:
    """Read from ``stream`` into ``view`` until it is full or the stream ends (:func:`readinto`
    gave 0); the bytes read, fewer than ``len(view)`` only at the end."""
    got = 0
    size = len(view)
    while got < size:
        n = readinto(stream, view[got:] if got else view)
        if not n:
            break
        got += n
    return got


class Reader:
    """Base of a minimal binary reader: subclasses define ``read(n=-1)`` (and ``close``)."""

    __slots__ = ()

    def read(self, n: int | None = -1) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        return self.read(-1)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
