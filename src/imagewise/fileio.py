"""Two small pieces every file-handling module shares.

* :func:`atomic_write`: a file appears whole or not at all (written beside its destination under
  a ``.tmp-`` name, renamed over it on success, removed on any failure);
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
def atomic_write(dest: str, mode: int | None = 0o644, *,
                 tmp_dir: str | None = None) -> Iterator[IO[bytes]]:
    """Yield a binary file that becomes ``dest`` when the block ends without an error.

    ``mode`` is applied before the rename (``None`` keeps ``mkstemp``'s private 0600).
    ``tmp_dir``: where the temporary file is made (default: beside ``dest``; it must be on the
    same filesystem).
    """
    import tempfile  # not at the top: most commands never write a file

    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX,
                               dir=tmp_dir or os.path.dirname(os.path.abspath(dest)))
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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
