"""The layer result cache: per-layer pass results keyed by a *verified* diff_id and analyzer version.

A layer's analysis depends only on its uncompressed bytes (diff_id) and the analyzer's version,
so an image that shares base layers with one already checked reuses them. Three kinds of records
are stored under ``platformdirs.user_cache_dir("imagewise")/layers/<FORMAT>``:

* ``blobs/<digest>``: a binding from a layer blob's digest (as the manifest names it) to the
  diff_id its bytes were seen to decompress to;
* ``entries/<diff_id>``: every entry's header fields, so metadata-only visitors can be replayed;
* ``results/<visitor>-<version>/<diff_id>``: what a content-reading visitor derived
  (``Visitor.layer_result``), handed back through ``Visitor.restore_layer``;
* ``files/<key>``: that the bytes at an offset of a local file were checked to have a blob
  digest, keyed by the file's identity (device, inode, size, mtime and ctime in ns), so a later
  pass over the same unchanged archive need not hash it again (see ``checked_file``).

Trust rule (see docs/architecture.md, "The layer cache trusts only what it verified"): the pass
stores a layer's records only after, in the same run, the blob's digest was checked and the
sha256 of its uncompressed tar was computed; the records go under that computed diff_id, never
under the one the image config claims. A later image finds them only through the binding of
*its* layer digest: a blob digest names exactly one byte string, so what it decompresses to was
settled when the binding was written. A config that lies about a diff_id can therefore neither
fill the cache for another layer nor read another layer's results.

Every record starts with one line naming the format, its kind, its key and the sha256 of the
payload that follows; a record that is torn, edited, copied under another key, of another
shape, or holds no result is a miss (and is rewritten), never an error. Writes go to a
temporary file and are renamed into place, so concurrent runs never see a torn record.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import re
import sys
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagewise.archive.decompress import zlib_codec
from imagewise.fileio import atomic_write
from imagewise.layers.model import Entry, Kind

if TYPE_CHECKING:
    from collections.abc import Sequence

    from imagewise.archive.batch import EntryBatch

FORMAT = f"3-py{sys.version_info[0]}{sys.version_info[1]}"
_MAGIC = b"imagewise-layer-cache 3"
_KINDS = list(Kind)
_KIND_INDEX = {k: i for i, k in enumerate(_KINDS)}
#: a bytes pattern matching the kind index of a record no batch holds (``archive.batch``: hard
#: links and whiteouts), searched in a records' kind column turned to bytes
UNBATCHED_KINDS = re.compile(
    b"[" + bytes(sorted(_KIND_INDEX[k] for k in (Kind.HARDLINK, Kind.WHITEOUT, Kind.OPAQUE))) + b"]"
)
#: the type of each field of an entry record (see ``record``)
_FIELDS = (str, int, int, int, int, int, str, int, str, int)


def default_dir() -> Path:
    env = os.environ.get("IMAGEWISE_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("imagewise")) / "layers"


def _valid_digest(text: object) -> bool:
    if not isinstance(text, str):
        return False
    algo, colon, hexpart = text.partition(":")
    return (
        bool(colon)
        and algo in ("sha256", "sha512")
        and len(hexpart) in (64, 128)
        and all(c in "0123456789abcdef" for c in hexpart)
    )


class PackedEntries:
    """One layer's entry records as the walk meets them, column by column: the ten fields of
    :meth:`LayerCache.record`, each column's values marshalled (version 2, which has no
    back-references, so the pieces concatenate) every :data:`FLUSH` entries, ~130 bytes an
    entry for a short path instead of ~330 for a tuple and its objects. The payload is
    ``zlib(marshal(tuple of ten lists))``, which :meth:`LayerCache.load_columns` reads back as
    columns without a tuple made per entry."""

    __slots__ = ("_done", "_pending", "count")

    #: entries gathered as Python lists before they are marshalled onto their columns
    FLUSH = 512

    def __init__(self) -> None:
        self._done = [bytearray() for _ in _FIELDS]
        self._pending: list[list[Any]] = [[] for _ in _FIELDS]
        self.count = 0

    def add(self, e: Entry) -> None:
        any(map(list.append, self._pending, LayerCache.record(e)))  # append returns None
        self.count += 1
        if len(self._pending[0]) >= self.FLUSH:
            self._flush()

    def add_batch(self, batch: EntryBatch) -> None:
        """:meth:`add` of each entry of ``batch``, from its columns."""
        any(map(list.extend, self._pending, LayerCache.columns(batch)))
        self.count += len(batch)
        if len(self._pending[0]) >= self.FLUSH:
            self._flush()

    def _flush(self) -> None:
        for done, values in zip(self._done, self._pending, strict=True):
            done += memoryview(marshal.dumps(values, 2))[5:]  # past "[" and the count
        self._pending = [[] for _ in _FIELDS]

    def payload(self) -> bytes:
        self._flush()
        return _deflate(self.count, self._done)

    def compress(self) -> PackedEntries:
        """Keep only the compressed payload (the layer is walked; it waits for its check)."""
        done = _Compressed(self.payload())
        self._done = []
        self._pending = []
        return done


#: marshal's head of a tuple of ten items (version 2)
_TUPLE_HEAD = b"(" + len(_FIELDS).to_bytes(4, "little", signed=True)


def _deflate(count: int, columns: Sequence[bytes | bytearray | memoryview]) -> bytes:
    """The entries payload: a marshalled tuple of the ten columns, each ``count`` values given
    marshalled without their list's head, deflated in the same pieces (the tuple's head, then
    each list's head and values) whichever way they were gathered, so that the compressed bytes
    are the same too."""
    head = b"[" + count.to_bytes(4, "little", signed=True)
    z = zlib_codec().compressobj(1)  # isal: 4x zlib's level 1, the same format
    parts = [z.compress(_TUPLE_HEAD)]
    for values in columns:
        parts += (z.compress(head), z.compress(values))
    return bytes(b"".join(parts) + z.flush())


class EntryList(PackedEntries):
    """The same records kept as Python lists, one a column, for a layer whose entries are
    replayed within the run (to the partner's visitors, ``layers/partner``) and so needed as
    columns anyway; its payload is byte for byte that of :class:`PackedEntries`."""

    __slots__ = ("lists",)

    def __init__(self) -> None:
        PackedEntries.__init__(self)
        self.lists: list[list[Any]] = [[] for _ in _FIELDS]

    def add(self, e: Entry) -> None:
        any(map(list.append, self.lists, LayerCache.record(e)))
        self.count += 1

    def add_batch(self, batch: EntryBatch) -> None:
        any(map(list.extend, self.lists, LayerCache.columns(batch)))
        self.count += len(batch)

    def payload(self) -> bytes:
        # each list marshalled past its head ("[" and the count)
        return _deflate(self.count, [memoryview(marshal.dumps(v, 2))[5:] for v in self.lists])

    def columns(self) -> list[list[Any]]:
        return self.lists

    def compress(self) -> PackedEntries:
        """The compressed payload; the lists stay (the layer's replay may still need them)."""
        return _Compressed(self.payload())


class _Compressed(PackedEntries):
    __slots__ = ("_payload",)

    def __init__(self, payload: bytes) -> None:
        PackedEntries.__init__(self)
        self._payload = payload

    def payload(self) -> bytes:
        return self._payload


class DirStore:
    """Records as files under a directory (the default: this machine's user cache)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, parts: tuple[str, ...]) -> Path:
        return self.root.joinpath(*[p.replace(":", "_").replace("/", "_") for p in parts])

    def read(self, parts: tuple[str, ...]) -> bytes | None:
        try:
            return self._path(parts).read_bytes()
        except OSError:
            return None

    def exists(self, parts: tuple[str, ...]) -> bool:
        return self._path(parts).is_file()

    def write(self, parts: tuple[str, ...], data: bytes) -> None:
        path = self._path(parts)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(str(path), mode=None) as f:
                f.write(data)
        except OSError:
            pass  # a cache that cannot be written only costs time


#: a file whose status changed less than this before its check began is not remembered as
#: checked: on a file system with coarse timestamps, a later write could leave them unchanged
SETTLE_NS = 2_000_000_000


def file_identity(path: str) -> tuple[int, int, int, int, int] | None:
    """(device, inode, size, mtime ns, ctime ns) of ``path``; None when it cannot be read.
    Any write to the file, a rename or a chmod changes its ctime, which no user can set."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _file_key(identity: tuple[int, ...], offset: int, length: int) -> str:
    text = ":".join(map(str, (*identity, offset, length)))
    return hashlib.sha256(text.encode()).hexdigest()


_FORMAT_DIR = re.compile(r"(\d+)-py(\d+)")


def _drop_older_formats(parent: Path) -> None:
    """Remove the record directories an older format of this cache left under ``parent`` for
    this Python: records are only ever read in their own format, so those would never be read
    again (an upgrade would otherwise leave a whole cache behind). Another Python's directory
    is its own cache, and anything else under ``parent`` is not ours: both stay."""
    mine = _FORMAT_DIR.fullmatch(FORMAT)
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        m = _FORMAT_DIR.fullmatch(name)
        if m and mine and m.group(2) == mine.group(2) and int(m.group(1)) < int(mine.group(1)):
            import shutil

            shutil.rmtree(parent / name, ignore_errors=True)


class LayerCache:
    """``store``: where the records live, anything with ``read(parts) -> bytes | None`` and
    ``write(parts, data)``, and optionally ``exists(parts) -> bool`` (default: a ``DirStore``
    under ``root``); the service gives one in its database, so every worker of a fleet shares
    what any of them analysed. Records carry their own framing and checksum, so a store needs
    no trust of its own."""

    def __init__(self, root: Path | None = None, store: Any = None) -> None:
        parent = root or default_dir()
        self.root = parent / FORMAT
        if store is None:
            _drop_older_formats(parent)
        self.store = store if store is not None else DirStore(self.root)
        self.hits = 0
        self.misses = 0

    # --- entries ---------------------------------------------------------------------------
    @staticmethod
    def record(e: Entry) -> tuple[Any, ...]:
        return (
            e.path,
            _KIND_INDEX[e.kind],
            e.size,
            e.mode,
            e.uid,
            e.gid,
            e.linkname,
            e.mtime,
            e.raw_name,
            e.offset,
        )

    @staticmethod
    def columns(batch: EntryBatch) -> tuple[Sequence[Any], ...]:
        """The ten columns of :meth:`record` for the entries of ``batch``."""
        return (
            batch.paths,
            list(map(_KIND_INDEX.__getitem__, batch.kinds)),
            batch.sizes,
            batch.modes,
            batch.uids,
            batch.gids,
            batch.links,
            batch.mtimes,
            batch.names,
            batch.offsets,
        )

    @staticmethod
    def batch(columns: Sequence[Sequence[Any]], start: int, stop: int) -> EntryBatch:
        """Entries ``start:stop`` of a layer's columns (:meth:`load_columns`) as a batch with no
        content (no buffer: ``EntryBatch.has_content`` is False), the inverse of
        :meth:`columns`."""
        from imagewise.archive.batch import EntryBatch

        path, kind, size, mode, uid, gid, link, mtime, name, offset = (
            column[start:stop] for column in columns
        )
        batch_columns = (name, path, LayerCache.kinds(kind), size, mode, uid, gid, link, mtime)
        return EntryBatch((*batch_columns, offset), None, 0, None)

    @staticmethod
    def replay(rec: tuple[Any, ...]) -> Entry:
        return Entry(
            rec[0], _KINDS[rec[1]], rec[2], rec[3], rec[4], rec[5], rec[6], rec[7], rec[8], rec[9]
        )

    @staticmethod
    def _path(*parts: str) -> tuple[str, ...]:
        return parts

    # --- framing ---------------------------------------------------------------------------
    def _load(self, path: tuple[str, ...], kind: str, key: str) -> bytes | None:
        """The payload of the record at ``path`` when it is exactly a record of ``kind`` for
        ``key`` with an intact payload; ``None`` otherwise."""
        data = self.store.read(path)
        if data is None:
            return None
        head, nl, payload = data.partition(b"\n")
        if not nl or head != self._head(kind, key, payload):
            return None
        return payload

    @staticmethod
    def _head(kind: str, key: str, payload: bytes) -> bytes:
        return b" ".join(
            (_MAGIC, kind.encode(), key.encode(), hashlib.sha256(payload).hexdigest().encode())
        )

    def _store(self, path: tuple[str, ...], kind: str, key: str, payload: bytes) -> None:
        self.store.write(path, self._head(kind, key, payload) + b"\n" + payload)

    # --- blob digest -> verified diff_id ---------------------------------------------------
    def bound(self, digest: str) -> str | None:
        """The diff_id that the blob ``digest`` was verified to decompress to, if recorded."""
        payload = self._load(self._path("blobs", digest), "blob", digest)
        if payload is None:
            return None
        try:
            diff_id = payload.decode("ascii")
        except UnicodeDecodeError:
            return None
        return diff_id if _valid_digest(diff_id) else None

    def bind(self, digest: str, diff_id: str) -> None:
        """Record that the blob ``digest`` decompresses to ``diff_id``: call only once both were
        checked against the bytes in this run."""
        self._store(self._path("blobs", digest), "blob", digest, diff_id.encode("ascii"))

    # --- local files checked before ------------------------------------------------------
    @property
    def local(self) -> bool:
        """Whether the records are this machine's own (a ``DirStore``): only then can a file's
        identity (device and inode numbers) mean the same file in a later run."""
        return isinstance(self.store, DirStore)

    def checked_file(self, path: str, offset: int, length: int, digest: str) -> bool:
        """Whether the ``length`` bytes at ``offset`` of ``path`` were checked to have the blob
        ``digest`` in an earlier run and the file is unchanged since (the same identity, see
        :func:`file_identity`)."""
        if not self.local:
            return False
        identity = file_identity(path)
        if identity is None:
            return False
        key = _file_key(identity, offset, length)
        return self._load(self._path("files", key), "file", key) == digest.encode("ascii")

    def remember_checked(
        self,
        path: str,
        offset: int,
        length: int,
        digest: str,
        before: tuple[int, int, int, int, int] | None,
        started_ns: int,
    ) -> None:
        """Record that the bytes at ``offset`` of ``path`` have the blob ``digest``: call only
        once they were checked, with the file's identity taken and the clock read (``time_ns``)
        before the check began. The record is keyed by that identity: a file changed since
        (during the check too) has a later ctime and never finds it. Nothing is recorded when
        the file's status changed less than :data:`SETTLE_NS` before the check: a write in the
        same tick of a coarse clock could leave the ctime as it was."""
        if not self.local or before is None or before[4] > started_ns - SETTLE_NS:
            return
        key = _file_key(before, offset, length)
        self._store(self._path("files", key), "file", key, digest.encode("ascii"))

    # --- entries ---------------------------------------------------------------------------
    def load_entries(self, key: str) -> list[tuple[Any, ...]] | None:
        """The layer's entry records (:meth:`record`), or None when absent or damaged."""
        columns = self.load_columns(key)
        return None if columns is None else list(zip(*columns, strict=True))

    def load_columns(self, key: str) -> list[list[Any]] | None:
        """The layer's entry records as the ten columns of :meth:`record` (path, kind index,
        size, mode, uid, gid, link, mtime, name, offset), each checked to hold only its field's
        exact type and every kind index in range; None when absent or damaged."""
        payload = self._load(self._path("entries", key), "entries", key)
        if payload is None:
            return None
        codec = zlib_codec()
        try:
            out = marshal.loads(codec.decompress(payload))
        except (ValueError, EOFError, TypeError, zlib.error, codec.error):
            return None
        if type(out) is not tuple or len(out) != len(_FIELDS):
            return None
        columns: list[Any] = list(out)
        n = len(columns[0]) if type(columns[0]) is list else -1
        for column, field in zip(columns, _FIELDS, strict=True):
            if type(column) is not list or len(column) != n:
                return None
            if n and set(map(type, column)) != {field}:  # one C-level pass a column
                return None
        if not n:
            return columns
        kinds = columns[1]
        if min(kinds) < 0 or max(kinds) >= len(_KINDS):
            return None
        return columns

    @staticmethod
    def kinds(indexes: Sequence[int]) -> list[Kind]:
        """The :class:`Kind` of each kind index of a records' column."""
        return list(map(_KINDS.__getitem__, indexes))

    def store_entries(self, key: str, entries: PackedEntries | object) -> None:
        """Store a layer's entry records: a :class:`PackedEntries`, or any other object
        marshalled as it is (the loader checks its shape: tests store damaged ones)."""
        payload = (
            entries.payload()
            if isinstance(entries, PackedEntries)
            else zlib_codec().compress(marshal.dumps(entries, 2), 1)  # type: ignore[arg-type]
        )
        self._store(self._path("entries", key), "entries", key, payload)

    # --- visitor results -------------------------------------------------------------------
    def load_result(self, visitor: str, version: str, key: str) -> tuple[bool, Any]:
        """``(True, value)`` for an intact record holding a value; ``(False, None)`` otherwise
        (a stored ``null`` is a miss: a content-reading visitor always derives something)."""
        kind = f"result:{visitor}-{version}"
        payload = self._load(self._path("results", f"{visitor}-{version}", key), kind, key)
        if payload is None:
            return False, None
        try:
            value = json.loads(payload)
        except ValueError:
            return False, None
        return (False, None) if value is None else (True, value)

    def has_result(self, visitor: str, version: str, key: str) -> bool:
        """Whether a result record is stored, without reading it when the store can say so
        (``exists``): its framing and checksum are checked when it is loaded, and a record
        found bad then is a miss (the layer is read for real)."""
        parts = self._path("results", f"{visitor}-{version}", key)
        exists = getattr(self.store, "exists", None)
        if exists is None:
            return self.load_result(visitor, version, key)[0]
        return bool(exists(parts))

    def store_result(self, visitor: str, version: str, key: str, value: Any) -> None:
        if value is None:
            return  # nothing to keep: a later run reads the layer
        try:
            data = json.dumps(value, separators=(",", ":")).encode()
        except (TypeError, ValueError):
            return  # not JSON-able: not cacheable, not an error
        self._store(
            self._path("results", f"{visitor}-{version}", key),
            f"result:{visitor}-{version}",
            key,
            data,
        )
