"""Where bytes lie in a local file: ``Region`` (path, offset, length) and ``FileRegion``, a
read-only stream over one."""

from __future__ import annotations

from typing import Any

from imagewise.errors import ImageFormatError
from imagewise.fileio import Reader
from imagewise.record import Record


class FileRegion(Reader):
    """A read-only stream over ``length`` bytes of a file starting at ``offset``."""

    def __init__(self, path: str, offset: int, length: int) -> None:
        self._f = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._f.seek(offset)
        self._left = length

    def read(self, n: int | None = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if n is None or n < 0 else min(n, self._left)
        data = self._f.read(want)
        if not data:
            raise ImageFormatError(f"{self._f.name}: archive is truncated")
        self._left -= len(data)
        return data

    def readinto(self, b: Any) -> int:
        if self._left <= 0:
            return 0
        view = memoryview(b).cast("B")
        n = self._f.readinto(view[: self._left] if len(view) > self._left else view)
        if not n and len(view):
            raise ImageFormatError(f"{self._f.name}: archive is truncated")
        self._left -= n
        return n

    def close(self) -> None:
        self._f.close()

    @property
    def closed(self) -> bool:
        return self._f.closed


class Region(Record):
    """``length`` bytes of the local file ``path`` from ``offset``: where a blob is stored as is."""

    __slots__ = ("path", "offset", "length")  # noqa: RUF023

    def __init__(self, path: str, offset: int, length: int) -> None:
        self.path = path
        self.offset = offset
        self.length = length
