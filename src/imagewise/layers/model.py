"""The contract of the single pass over each layer: tar entries and the visitors that read them.

Paths are normalised: relative to the image root, no leading ``/`` or ``./``, no trailing ``/``,
``..`` resolved (an entry that would leave the root is rejected by the walker), e.g. ``etc/passwd``.
The root directory itself is ``""``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from imagewise.record import Record

if TYPE_CHECKING:
    from imagewise.sources.base import Image, Layer
    from imagewise.sources.blobio import Region


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
        moved on (layers read in place, see ``layers.mapped``); ``None`` for streamed layers."""
        origin = self._origin
        if origin is None or self.kind is not Kind.FILE:
            return None
        from imagewise.sources.blobio import Region

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


def removed_by(path: str, marker: str, opaque: bool) -> bool:
    """Whether a whiteout of ``marker`` (``opaque=False``: the path and all under it) or an
    opaque whiteout (``opaque=True``: all under it, the directory stays) removes ``path`` of a
    lower layer. ``marker == ""`` is the root."""
    if not opaque and path == marker:
        return True
    return path.startswith(marker + "/") if marker else True


class Visitor:
    """An analyzer that subscribes to the single pass. Subclass and override what you need.

    ``wants_content(entry)`` says whether the visitor will read the entry's content, so the walker
    can skip content nobody needs. A visitor must not keep an ``Entry`` past ``visit``; copy the
    fields it needs.
    """

    #: bump when results for the same layer bytes would change; part of the layer cache key
    version: str = "1"
    name: str = "visitor"

    def begin_image(self, image: Image) -> None:
        pass

    def begin_layer(self, index: int, layer: Layer) -> None:
        pass

    def wants_content(self, entry: Entry) -> bool:
        return False

    def visit(self, entry: Entry) -> None:
        pass

    def end_layer(self, index: int, layer: Layer) -> None:
        pass

    def end_image(self, image: Image) -> None:
        pass

    # --- layer result cache (optional) -------------------------------------------------------
    # A visitor that reads content can make its per-layer work cacheable: ``layer_result`` returns
    # a JSON-able value holding everything it derived from this layer's *content*; on a cache hit
    # the pass calls ``restore_layer`` with that value instead, then replays the layer's entries
    # with no content (``Entry.open`` raises, ``Entry.read`` returns b""). Metadata-only visitors
    # need nothing: replayed entries carry every header field. ``cacheable = False`` opts out
    # (the pass then reads the layer for real).
    # Order per layer: begin_layer, [restore_layer on a hit], visit..., layer_result (on a miss,
    # to store), end_layer. So per-layer state must still be held when layer_result is called.
    # The value may be stored only at the end of the pass (once the layer's digest check has
    # passed): return a fresh object, never one the visitor keeps mutating. ``None`` means
    # nothing to keep: the layer is then read again next time (a visitor that does not override
    # ``layer_result`` stores nothing and needs nothing to be replayed). ``restore_layer`` gets
    # exactly what this version of the visitor returned for a layer with the same content.
    cacheable: bool = True

    def layer_result(self, index: int, layer: Layer) -> object:
        return None

    def restore_layer(self, index: int, layer: Layer, result: object) -> None:
        pass
