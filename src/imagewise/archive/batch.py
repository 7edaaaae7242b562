"""A run of plain tar entries as columns: what the walk of a layer read in place hands to
visitors that take whole batches, with no object per entry.

The C scanner (``_tarhead.scan``) parses the common headers of a mapped layer one after another
and returns their fields as lists; the walk yields them as an :class:`EntryBatch` between the
entries it parses itself (whiteouts, hard links, PAX, long names: ``walk._walk``). Column ``k``
of every list is one entry, exactly the :class:`~imagewise.archive.entry.Entry` the walk would
have yielded (``entries()`` makes those, for tests and for visitors that take entries). Every
entry of a batch has a normalised path with no whiteout; none is a hard link.
"""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any, final

from imagewise.archive.entry import Entry, Kind, no_bytes
from imagewise.fileio import Reader

if TYPE_CHECKING:
    from collections.abc import Callable

    from imagewise.archive.region import Region

BLOCK = 512


@final
class EntryBatch:
    """Entries ``0 .. len-1`` of one layer, column by column (see the module docstring).

    ``offsets`` are the headers' offsets in the layer's tar; an entry's content starts one block
    later. ``buf`` holds the tar (a memory map or bytes), the tar's offset ``o`` at ``buf[o +
    shift]``; ``origin`` is the file region the tar lies in verbatim (``Entry.located``). A
    batch replayed from the layer cache has no ``buf`` (``has_content`` False): its files read
    as empty and its entries have no content.
    """

    __slots__ = (
        "buf",
        "gids",
        "kinds",
        "links",
        "modes",
        "mtimes",
        "names",
        "offsets",
        "origin",
        "paths",
        "shift",
        "sizes",
        "uids",
    )

    def __init__(self, columns: tuple[Any, ...], buf: Any, shift: int, origin: Region | None):
        (
            self.names,
            self.paths,
            self.kinds,
            self.sizes,
            self.modes,
            self.uids,
            self.gids,
            self.links,
            self.mtimes,
            self.offsets,
        ) = columns
        self.buf = buf
        self.shift = shift
        self.origin = origin

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def has_content(self) -> bool:
        """False for a batch replayed from the layer cache (no ``buf``): entries with no
        content, as ``Entry.has_content`` says of a replayed entry."""
        return self.buf is not None

    def content(self, k: int, limit: int | None = None, skip: int = 0) -> bytes:
        """The content of entry ``k`` (a file; ``b""`` for any other kind): from byte ``skip``,
        at most ``limit`` bytes."""
        if self.kinds[k] is not Kind.FILE or self.buf is None:
            return b""
        size = self.sizes[k]
        start = self.offsets[k] + BLOCK + self.shift
        end = start + (size if limit is None else min(size, skip + limit))
        return bytes(self.buf[start + min(skip, size) : end])

    def starts(self) -> list[int]:
        """Where each entry's content begins in ``buf`` (what :meth:`content` reads from)."""
        at = BLOCK + self.shift
        return [offset + at for offset in self.offsets]

    def located(self, k: int) -> Region | None:
        """Where file ``k``'s content lies in a local file (``None`` without an origin)."""
        origin = self.origin
        if origin is None or self.kinds[k] is not Kind.FILE:
            return None
        from imagewise.archive.region import Region

        return Region(origin.path, origin.offset + self.offsets[k] + BLOCK, self.sizes[k])

    def entry(self, k: int) -> Entry:
        """Entry ``k`` as the walk yields it; its content stays readable while ``buf`` is open."""
        kind, size, offset = self.kinds[k], self.sizes[k], self.offsets[k]
        entry = Entry(
            self.paths[k],
            kind,
            size,
            self.modes[k],
            self.uids[k],
            self.gids[k],
            self.links[k],
            self.mtimes[k],
            self.names[k],
            offset,
            None,
            offset + BLOCK,
        )
        if kind is Kind.FILE and self.buf is not None:
            if size:
                entry._opener = _Slice(self, k).opener
                entry._origin = self.origin
            else:
                entry._opener = no_bytes
        return entry

    def entries(self) -> list[Entry]:
        """The batch as the entries the walk yields one by one (:meth:`entry`)."""
        return [self.entry(k) for k in range(len(self.paths))]


class _Slice(Reader):
    """One file's content in the batch's buffer (position-independent, unlike the walk's)."""

    __slots__ = ("_buf", "_end", "_pos", "_size")
    _end: int
    _pos: int
    _size: int

    def __init__(self, batch: EntryBatch, k: int) -> None:
        self._buf = batch.buf
        self._size = batch.sizes[k]
        self._pos = batch.offsets[k] + BLOCK + batch.shift
        self._end = self._pos + self._size

    def read(self, n: int | None = -1) -> bytes:
        left = max(0, self._end - self._pos)
        if n is None or n < 0 or n > left:
            n = left
        data = bytes(self._buf[self._pos : self._pos + n])
        self._pos += n
        return data

    def read1(self, n: int = -1) -> bytes:
        return self.read(n)

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        """As ``io.BytesIO`` over the content: a negative absolute position is an error, one
        relative to here or the end stops at 0; past the end reads give ``b""``."""
        start = self._end - self._size
        if whence == 0:
            if offset < 0:
                raise ValueError(f"negative seek value {offset}")
            base = start
        elif whence in (1, 2):
            base = self._pos if whence == 1 else self._end
        else:
            raise ValueError(f"invalid whence ({whence}, should be 0, 1 or 2)")
        self._pos = max(start, base + offset)
        return self._pos - start

    def tell(self) -> int:
        return self._pos - (self._end - self._size)

    def feed(self, update: Callable[[Any], object]) -> None:
        update(self.read())

    def opener(self) -> IO[bytes]:
        return self  # type: ignore[return-value]
