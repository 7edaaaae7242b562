"""One tar entry of one layer, as the walk yields it.

Paths are normalised: relative to the image root, no leading ``/`` or ``./``, no trailing ``/``,
``..`` resolved (an entry that would leave the root is rejected by the walker), e.g. ``etc/passwd``.
The root directory itself is ``""``. Whiteouts arrive as their own kinds: ``WHITEOUT`` (the path a
layer deletes) and ``OPAQUE`` (a directory whose lower contents it hides).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from imagewise.record import Record

if TYPE_CHECKING:
    from imagewise.archive.region import Region


class Kind(enum.Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    CHAR = "char"
    BLOCK = "block"
    FIFO = "fifo"
    WHITEOUT = "whiteout"  # path = the path this layer deletes (``.wh.`` prefix removed)
    OPAQUE = "opaque"  # path = the directory whose lower-layer contents this layer hides


class Entry(Record):
    """One tar entry of one layer. ``read``/``open`` are valid only while the visitor runs.

    Mutable, unlike other records (so not hashable): the walker normalises ``path`` and sets
    ``_opener``/``_origin`` after construction.
    """

    __slots__ = (
        "path",
        "kind",
        "size",
        "mode",
        "uid",
        "gid",
        "linkname",
        "mtime",  # noqa: RUF023
        "raw_name",
        "offset",
        "_opener",
        "data_offset",
        "_origin",
    )  # in field order
    __hash__ = None  # type: ignore[assignment]

    def __init__(
        self,
        path: str,
        kind: Kind,
        size: int = 0,
        mode: int = 0,
        uid: int = 0,
        gid: int = 0,
        linkname: str = "",
        mtime: int = 0,
        raw_name: str = "",  # the name as stored in the tar (before normalisation)
        offset: int = 0,  # offset of the header in the decompressed tar stream
        _opener: Callable[[], IO[bytes]] | None = None,
        data_offset: int = 0,  # offset of the content in the decompressed tar stream
        # the local file region holding the layer tar verbatim, when the pass reads it
        # in place
        _origin: Region | None = None,
    ) -> None:
        self.path = path
        self.kind = kind
        self.size = size
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.linkname = linkname
        self.mtime = mtime
        self.raw_name = raw_name
        self.offset = offset
        self._opener = _opener
        self.data_offset = data_offset
        self._origin = _origin

    def open(self) -> IO[bytes]:
        """A stream over this entry's content (files only). Read it before the next entry."""
        if self._opener is None:
            raise ValueError(f"{self.path}: no content")
        return self._opener()

    def read(self, limit: int | None = None) -> bytes:
        """The content, at most ``limit`` bytes (``None`` = all of it; callers bound it)."""
        if self.kind is not Kind.FILE or self._opener is None:
            return b""
        f = self._opener()
        return f.read() if limit is None else f.read(limit)

    def feed(self, update: Callable[[Any], object]) -> None:
        """Pass the content to ``update`` (e.g. a hash's) in pieces, bytes or memoryviews: the
        cheapest way to digest a file, with no copy when the layer is read in place."""
        if self.kind is not Kind.FILE or self._opener is None:
            return
        f = self._opener()
        feed = getattr(f, "feed", None)
        if feed is not None:
            feed(update)
            return
        while chunk := f.read(1 << 20):
            update(chunk)

    def located(self) -> Region | None:
        """Where this file's content lies verbatim in a local file, readable after the walk has
        moved on (layers read in place, see ``archive.mapped``); ``None`` for streamed layers."""
        origin = self._origin
        if origin is None or self.kind is not Kind.FILE:
            return None
        from imagewise.archive.region import Region

        return Region(origin.path, origin.offset + self.data_offset, self.size)

    @property
    def in_place(self) -> bool:
        """Whether :meth:`located` can answer (a file of a layer read in place)."""
        return self._origin is not None

    @property
    def has_content(self) -> bool:
        """False for entries replayed from the layer cache (and non-file entries with no data)."""
        return self._opener is not None

    @property
    def is_file(self) -> bool:
        return self.kind is Kind.FILE

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


def no_bytes() -> IO[bytes]:
    """The opener of an empty file's content (the walk's and its batches')."""
    import io

    return io.BytesIO()
