"""A streaming tar walk: one forward pass, lazily read content, whiteouts recognised.

``walk(stream, digest)`` yields :class:`~imagewise.archive.entry.Entry` values in archive order.
The parser is hand-written over the decoded chunks (no ``tarfile``: it is several times slower
and seeks). It understands ustar/POSIX, old v7, GNU (``L``/``K`` long names and links) and PAX
(local ``x`` and global ``g`` headers: ``path``, ``linkpath``, ``size``, ``uid``, ``gid``,
``mtime``), base-256 numbers, regular files, hard links, symlinks, devices, FIFOs, directories.

Layer conventions:

* ``.wh.NAME`` -> ``_WHITEOUT`` whose ``path`` is the deleted path;
* ``.wh..wh..opq`` -> ``_OPAQUE`` whose ``path`` is the directory (``""`` for the root);
* other ``.wh..wh.*`` names, and everything under a root ``.wh..wh.*`` directory (aufs
  bookkeeping such as ``.wh..wh.plnk/``), are not yielded.

Paths are normalised (see ``model``); absolute names become root-relative. A name whose ``..``
would leave the root raises :class:`~imagewise.errors.UnsafePath`, or, when ``on_unsafe`` is
given, is reported to it and skipped. Hard-link targets are normalised the same way; symlink
targets are kept verbatim.

Content: ``entry.open()`` / ``entry.read()`` stream the entry's bytes from the layer, bounded to
the entry; valid only until the walk moves on. Unread content is skipped without copying.
Sparse files (GNU ``--sparse``: old GNU ``S`` headers with their extension blocks, PAX 0.0
(``GNU.sparse.offset``/``numbytes`` records), 0.1 (``GNU.sparse.map``) and 1.0 (the map at the
start of the data, the real name in ``GNU.sparse.name``)) are yielded under their real name with
their real (expanded) ``size``, as GNU tar would extract them; their content reads expanded,
holes as zeros. Such a file's content is not verbatim in the layer, so ``located()`` is ``None``.
Truncated or corrupt archives raise :class:`~imagewise.errors.LayerReadError` with the digest
and the offset in the decompressed tar stream.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any

from imagewise.archive.batch import EntryBatch
from imagewise.archive.entry import Entry, Kind, no_bytes
from imagewise.archive.native import batch_scanner, header_parser
from imagewise.errors import LayerReadError, UnsafePath
from imagewise.fileio import Reader

if TYPE_CHECKING:
    from imagewise.archive.region import Region

# Kind's members as plain module names: ``Kind.X`` is an enum descriptor call on every use
(_BLOCK, _CHAR, _DIR, _FIFO, _FILE, _HARDLINK, _OPAQUE, _SYMLINK, _WHITEOUT) = (
    Kind.BLOCK,
    Kind.CHAR,
    Kind.DIR,
    Kind.FIFO,
    Kind.FILE,
    Kind.HARDLINK,
    Kind.OPAQUE,
    Kind.SYMLINK,
    Kind.WHITEOUT,
)

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
READ_SIZE = 256 * 1024
#: largest PAX / GNU long-name payload accepted (bounds memory on hostile input)
MAX_META = 1024 * 1024

_KINDS: dict[int, Kind] = {
    ord("0"): _FILE,
    0: _FILE,
    ord("7"): _FILE,
    ord("S"): _FILE,
    ord("1"): _HARDLINK,
    ord("2"): _SYMLINK,
    ord("3"): _CHAR,
    ord("4"): _BLOCK,
    ord("5"): _DIR,
    ord("D"): _DIR,
    ord("6"): _FIFO,
}
_META = frozenset(b"xgLK")
_HEADER_ONLY = frozenset(b"123456")  # no content follows these, whatever the size field says
_SKIP = frozenset(b"VM")  # volume header, multi-volume continuation: not filesystem entries

OnUnsafe = Callable[[str, int], None]
_NO_PAX: dict[str, str] = {}  # shared, never written: most entries have no PAX header
#: parses the common tar header in C (``archive.native``); ``None``: Python parses every header
NATIVE_HEADER = header_parser()
#: runs of common headers as columns, in C (``EntryBatch``); ``None``: no batches
NATIVE_SCAN = batch_scanner()
#: entries per batch: the pass checks the file's lease between batches (``mapped``)
BATCH = 64


def normalize(name: str) -> str | None:
    """Root-relative path without ``.``/``..``/duplicate slashes; ``None`` if it leaves the root."""
    name = name.removeprefix("./")
    if "//" not in name and "/." not in name and not name.startswith("."):
        return name.strip("/")  # no "." or ".." component possible: the common case
    parts: list[str] = []
    for p in name.split("/"):
        if p == "" or p == ".":
            continue
        if p == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(p)
    return "/".join(parts)


def _num(field: bytes, what: str, offset: int, digest: str) -> int:
    if field[0] & 0x80:  # base-256 (GNU / star): big-endian two's complement
        value = int.from_bytes(field[1:], "big")
        if field[0] == 0xFF:
            return value - (1 << (8 * (len(field) - 1)))
        return value | ((field[0] & 0x7F) << (8 * (len(field) - 1)))
    text = field.rstrip(b"\0 ")
    try:
        return int(text, 8) if text else 0
    except ValueError:
        pass
    text = field.split(b"\0", 1)[0].strip(b" ")  # NUL-terminated with junk after it
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise LayerReadError(
            f"corrupt tar header: bad {what} field {field!r}", digest, offset
        ) from None


def _parse_pax(data: bytes, offset: int, digest: str) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    n = len(data)
    while pos < n:
        if data[pos] == 0:  # NUL padding at the end of some writers' records
            break
        sp = data.find(b" ", pos)
        try:
            length = int(data[pos:sp]) if sp > pos else -1
        except ValueError:
            length = -1
        if length <= 0 or pos + length > n or data[pos + length - 1] != 0x0A:
            raise LayerReadError("corrupt PAX header record", digest, offset)
        record = data[sp + 1 : pos + length - 1]
        key, eq, value = record.partition(b"=")
        if not eq:
            raise LayerReadError("corrupt PAX header record (no '=')", digest, offset)
        name = key.decode("utf-8", "surrogateescape")
        text = value.decode("utf-8", "surrogateescape")
        if name == "GNU.sparse.offset" or name == "GNU.sparse.numbytes":
            # PAX sparse 0.0 repeats these two keys, one pair per data segment: keep them all,
            # in order, as a 0.1 map
            prev = out.get("GNU.sparse.map")
            out["GNU.sparse.map"] = text if prev is None else prev + "," + text
        out[name] = text
        pos += length
    return out


class _Chunks:
    """Forward-only buffer over a decoded stream, tracking the absolute offset."""

    __slots__ = ("_next", "base", "buf", "digest", "origin", "pos", "whole")

    def __init__(self, stream: IO[bytes] | None, digest: str) -> None:
        read_chunk = getattr(stream, "read_chunk", None)
        self._next: Callable[[int | None], bytes] = read_chunk or (
            lambda hint: stream.read(max(hint or 0, READ_SIZE))  # type: ignore[union-attr]
        )
        self.buf: bytes = b""  # or a memory map (``over``): slicing gives bytes either way
        self.pos = 0
        self.base = 0  # absolute offset of buf[0]
        self.digest = digest
        self.whole = False  # buf holds the whole tar (a memory map): views are safe to hand out
        self.origin: Region | None = None  # the file region the tar lies in, verbatim

    @classmethod
    def over(cls, buf: Any, start: int, digest: str, origin: Region | None = None) -> _Chunks:
        """One buffer holding the whole tar from ``start`` (a memory map): nothing to refill."""
        chunks = cls(None, digest)
        chunks._next = lambda hint: b""
        chunks.buf, chunks.pos, chunks.base = buf, start, -start
        try:  # a map or bytes; not a pread view (``mapped``), which only slices
            memoryview(buf).release()
            chunks.whole = True
        except TypeError:
            pass
        chunks.origin = origin
        return chunks

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def _refill(self, hint: int | None = None) -> bool:
        data = self._next(hint)
        self.base += len(self.buf)
        self.buf = data
        self.pos = 0
        return bool(data)

    def take(self, n: int) -> bytes:
        """Exactly n bytes, or fewer only at the end of the stream."""
        buf, pos = self.buf, self.pos
        if len(buf) - pos >= n:
            self.pos = pos + n
            return buf[pos : pos + n]
        parts = [buf[pos:]]
        have = len(buf) - pos
        self.pos = len(buf)
        while have < n and self._refill():
            part = self.take_upto(n - have)
            parts.append(part)
            have += len(part)
        return b"".join(parts)

    def take_upto(self, n: int) -> bytes:
        """Up to n bytes from what is buffered (refilling once when empty); b"" at the end."""
        if self.pos >= len(self.buf) and not self._refill():
            return b""
        buf, pos = self.buf, self.pos
        if pos == 0 and n >= len(buf):
            self.pos = len(buf)
            return buf
        end = min(len(buf), pos + n)
        self.pos = end
        return buf[pos:end]

    def skip(self, n: int) -> int:
        """Skip n bytes; returns how many could be skipped (less only at the end)."""
        left = n
        while left:
            avail = len(self.buf) - self.pos
            if avail >= left:
                self.pos += left
                return n
            left -= avail
            self.pos = len(self.buf)
            if not self._refill(left):
                return n - left
        return n

    def drain(self) -> None:
        self.pos = len(self.buf)
        while self._refill():
            self.pos = len(self.buf)


class _Content(Reader):
    """The bytes of one entry, read straight from the layer stream; valid until the walk moves.

    A slotted :class:`~imagewise.fileio.Reader`, because one is made per file and
    ``io.RawIOBase`` costs more.
    """

    __slots__ = ("_chunks", "_path", "closed", "remaining")

    def __init__(self, chunks: _Chunks, size: int, path: str) -> None:
        self._chunks = chunks
        self.remaining = size
        self._path = path
        self.closed = False

    def read(self, n: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError(f"{self._path}: content read after the walk moved on")
        if n is None or n < 0 or n > self.remaining:
            n = self.remaining
        if n == 0:
            return b""
        ch = self._chunks
        buf, pos = ch.buf, ch.pos
        avail = len(buf) - pos
        if avail >= n:  # within the current chunk: one slice (none for a whole chunk)
            ch.pos = pos + n
            self.remaining -= n
            return buf if pos == 0 and n == len(buf) else buf[pos : pos + n]
        # spans chunks: gather views and copy once
        parts: list[bytes | memoryview] = (
            []
            if avail <= 0
            else [memoryview(buf)[pos:] if type(buf) is bytes or ch.whole else buf[pos:]]
        )  # pread view
        have = max(avail, 0)
        ch.pos = len(buf)
        while have < n and ch._refill(n - have):
            b = ch.buf
            take = min(len(b), n - have)
            parts.append(b if take == len(b) else memoryview(b)[:take])
            ch.pos = take
            have += take
        data = b"".join(parts)
        self.remaining -= len(data)
        if len(data) < n:
            raise LayerReadError(
                f"truncated tar: content of {self._path} ends early", ch.digest, ch.offset
            )
        return data

    def read1(self, n: int = -1) -> bytes:
        return self.read(n)

    def feed(self, update: Callable[[Any], object]) -> None:
        """Pass the rest of the content to ``update`` in pieces; without copying when the layer
        is a memory map (each piece is a view, released once ``update`` returns)."""
        ch = self._chunks
        n = self.remaining
        if ch.whole and not self.closed and len(ch.buf) - ch.pos >= n:
            with memoryview(ch.buf) as whole, whole[ch.pos : ch.pos + n] as part:
                update(part)
            ch.pos += n
            self.remaining = 0
            return
        while chunk := self.read(1 << 20):
            update(chunk)

    def close(self) -> None:
        self.closed = True

    def __exit__(self, *exc: object) -> None:
        pass  # the walk owns the stream; closing early would lose the position

    def opener(self) -> IO[bytes]:
        return self  # type: ignore[return-value]


class _SparseMap:
    """A sparse file's data segments ``(offset, length)`` in the expanded file, its real size,
    the bytes its segments hold (``packed``) and the bytes of a 1.0 map read from the data."""

    __slots__ = ("map_len", "packed", "segments", "size")

    def __init__(
        self,
        segments: list[tuple[int, int]],
        size: int,
        map_len: int,
        where: str,
        digest: str,
        offset: int,
    ) -> None:
        segs = [(o, n) for o, n in segments if n]
        end = 0
        for o, n in segs:
            if o < end or n < 0 or o + n > size:
                raise LayerReadError(f"corrupt sparse map of {where!r}", digest, offset)
            end = o + n
        self.segments = segs
        self.size = size
        self.packed = sum(n for _, n in segs)
        self.map_len = map_len

    @classmethod
    def from_gnu(
        cls, hdr: bytes, packed: int, chunks: _Chunks, digest: str, offset: int
    ) -> _SparseMap:
        """Old GNU ``S``: 4 entries in the header, 21 in each extension block that follows."""
        segs: list[tuple[int, int]] = []

        def entries(block: bytes, at: int, count: int) -> None:
            for k in range(count):
                field = block[at + 24 * k : at + 24 * k + 24]
                if not field[0]:
                    break
                segs.append(
                    (
                        _num(field[:12], "sparse offset", offset, digest),
                        _num(field[12:], "sparse length", offset, digest),
                    )
                )

        entries(hdr, 386, 4)
        size = _num(hdr[483:495], "sparse real size", offset, digest)
        extended = hdr[482]
        blocks = 0
        while extended:
            blocks += 1
            if blocks * BLOCK > MAX_META:
                raise LayerReadError("sparse map too large", digest, offset)
            block = chunks.take(BLOCK)
            if len(block) < BLOCK:
                raise LayerReadError("truncated sparse header", digest, chunks.offset)
            entries(block, 0, 21)
            extended = block[504]
        name = hdr[:100].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        return cls(segs, size, 0, name, digest, offset)

    @classmethod
    def from_pax(
        cls, pax: dict[str, str], stored: int, chunks: _Chunks, digest: str, offset: int
    ) -> _SparseMap:
        """PAX 0.0 / 0.1 (map in the headers) or 1.0 (map at the start of the data)."""
        where = pax.get("GNU.sparse.name", pax.get("path", ""))
        try:
            if pax.get("GNU.sparse.major") == "1":
                size = int(pax["GNU.sparse.realsize"])
                numbers, map_len = _data_map(chunks, stored, digest, offset)
            else:
                size = int(pax.get("GNU.sparse.size", pax.get("GNU.sparse.realsize", "")))
                text = pax.get("GNU.sparse.map", "")
                numbers, map_len = ([int(x) for x in text.split(",")] if text else []), 0
        except (KeyError, ValueError) as e:
            raise LayerReadError(
                f"corrupt sparse header of {where!r}: {e}", digest, offset
            ) from None
        if len(numbers) % 2:
            raise LayerReadError(f"corrupt sparse map of {where!r}", digest, offset)
        segs = list(zip(numbers[0::2], numbers[1::2]))
        return cls(segs, size, map_len, where, digest, offset)


def _data_map(chunks: _Chunks, stored: int, digest: str, offset: int) -> tuple[list[int], int]:
    """The PAX 1.0 sparse map: decimal lines (count, then offset and length per segment) at the
    start of the data, padded to whole blocks. Returns the numbers and the bytes it took."""
    text = b""
    taken = 0
    numbers: list[int] = []
    want: int | None = None
    while want is None or len(numbers) < want:
        if taken + BLOCK > min(stored, MAX_META):
            raise LayerReadError("corrupt sparse map (PAX 1.0)", digest, offset)
        block = chunks.take(BLOCK)
        if len(block) < BLOCK:
            raise LayerReadError("truncated sparse map", digest, chunks.offset)
        taken += BLOCK
        text += block
        *lines, text = text.split(b"\n")
        for line in lines:
            if want is not None and len(numbers) >= want:
                break
            try:
                value = int(line)
            except ValueError:
                raise LayerReadError("corrupt sparse map (PAX 1.0)", digest, offset) from None
            if want is None:
                want = 1 + 2 * value
            numbers.append(value)
    return numbers[1:], taken


#: zeros handed out for holes (views of it, never copied when fed to a hash)
_ZEROS = bytes(1 << 20)


class _Expanded(Reader):
    """A sparse file's content as extracted: its segments from the packed data, zeros between."""

    __slots__ = ("_i", "_packed", "_path", "_pos", "_segs", "_size")

    def __init__(self, packed: _Content, sparse: _SparseMap, path: str) -> None:
        self._packed, self._segs, self._size, self._path = (
            packed,
            sparse.segments,
            sparse.size,
            path,
        )
        self._pos = 0
        self._i = 0

    def _pieces(self, n: int) -> Iterator[Any]:
        """Up to ``n`` more bytes, as pieces (packed data, or views of ``_ZEROS`` for holes)."""
        n = min(n, self._size - self._pos)
        segs = self._segs
        while n > 0:
            seg = segs[self._i] if self._i < len(segs) else None
            if seg is None or self._pos < seg[0]:  # in a hole
                k = min(n, (seg[0] if seg else self._size) - self._pos, len(_ZEROS))
                piece: Any = memoryview(_ZEROS)[:k]
            else:
                k = min(n, seg[0] + seg[1] - self._pos, 1 << 20)
                piece = self._packed.read(k)
                if self._pos + k == seg[0] + seg[1]:
                    self._i += 1
            self._pos += k
            n -= k
            yield piece

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            n = self._size - self._pos
        return b"".join(self._pieces(n))

    def read1(self, n: int = -1) -> bytes:
        return self.read(n)

    def feed(self, update: Callable[[Any], object]) -> None:
        for piece in self._pieces(self._size - self._pos):
            update(piece)

    def opener(self) -> IO[bytes]:
        return self  # type: ignore[return-value]


def walk(stream: IO[bytes], digest: str = "", on_unsafe: OnUnsafe | None = None) -> Iterator[Entry]:
    """Yield the entries of a tar stream (already decompressed, see ``open_decompressed``)."""
    return _walk(_Chunks(stream, digest), digest, on_unsafe)


def walk_buffer(
    buf: Any,
    start: int = 0,
    digest: str = "",
    on_unsafe: OnUnsafe | None = None,
    origin: Region | None = None,
    on_end: Callable[[bool], None] | None = None,
) -> Iterator[Entry]:
    """Yield the entries of a tar held whole in ``buf`` from ``start`` to its end: a memory map
    of an uncompressed layer (``archive.mapped``) or ``bytes``. Slicing ``buf`` must give ``bytes``.
    Content nobody reads is never touched; offsets count from ``start``. ``origin``: the file
    region ``buf[start:]`` was mapped from; files then answer ``Entry.located()``. ``on_end``
    is told, at a clean end, whether the tar ended with its end-of-archive block (``True``) or
    just stopped between two entries (``False``: what a file cut on a block boundary looks like)."""
    return _walk(_Chunks.over(buf, start, digest, origin), digest, on_unsafe, on_end)


def walk_batches(
    buf: Any,
    start: int = 0,
    digest: str = "",
    on_unsafe: OnUnsafe | None = None,
    origin: Region | None = None,
) -> Iterator[Entry | EntryBatch]:
    """:func:`walk_buffer`, with runs of plain entries as :class:`~imagewise.archive.batch.
    EntryBatch`\\ es of up to ``BATCH`` entries (where the C scanner is built and ``buf`` is a
    readable buffer) between the entries the walk parses itself: the same entries in the same
    order (``EntryBatch.entries``), errors at the same place."""
    chunks = _Chunks.over(buf, start, digest, origin)
    return _walk(chunks, digest, on_unsafe, None, BATCH if chunks.whole else 0)


def _walk(
    chunks: _Chunks,
    digest: str,
    on_unsafe: OnUnsafe | None,
    on_end: Callable[[bool], None] | None = None,
    batch: int = 0,
) -> Iterator[Any]:
    # One loop with the common case written out (plain ustar/GNU header, ordinary path): this
    # runs once per file of every layer, and each call it saves is a few percent of the pass.
    gpax: dict[str, str] = {}
    first = True
    origin = chunks.origin
    unpack = _HDR.unpack
    adler = zlib.adler32
    file = _FILE  # a local: the loop below is the hottest code there is
    native = NATIVE_HEADER
    scan = NATIVE_SCAN if batch else None
    if scan is not None:
        kinds = tuple(_KINDS.get(flag, file) for flag in range(256))
    while True:
        buf, pos = chunks.buf, chunks.pos
        if scan is not None and not gpax:
            got = scan(buf, pos, chunks.base, batch, kinds, file, _DIR)
            if got is not None and got[0] != pos:
                chunks.pos = got[0]
                first = False
                yield EntryBatch(got[1:], buf, -chunks.base, origin)
                continue
        start = chunks.base + pos
        common = native(buf, pos) if native is not None and not gpax else None
        if common is not None:  # the C parser read a plain header (see _tarhead.c)
            chunks.pos = pos + BLOCK
            first = False
            name, path, flag, size, mode, uid, gid, mtime, linkname = common
            entry_start = start
            sparse: _SparseMap | None = None
        else:  # everything else: parsed here (PAX, long names, sparse, odd numbers, errors)
            if len(buf) - pos >= BLOCK:  # fast path: the header is in the current chunk
                chunks.pos = pos + BLOCK
                hdr = buf[pos : pos + BLOCK]
            else:
                hdr = chunks.take(BLOCK)
            if len(hdr) < BLOCK:
                if not hdr:  # clean end without end-of-archive blocks: accepted like GNU tar does
                    if on_end is not None:
                        on_end(False)
                    return
                raise LayerReadError("truncated tar header", digest, start)
            if hdr == ZERO_BLOCK:
                chunks.drain()  # the rest is padding; reading it lets the digest check run
                if on_end is not None:
                    on_end(True)
                return
            pax: dict[str, str] = gpax.copy() if gpax else _NO_PAX
            longname = longlink = None
            entry_start = start
            # metadata headers (PAX, GNU long names) precede the entry they describe
            while True:
                (
                    rname,
                    rmode,
                    ruid,
                    rgid,
                    rsize,
                    rmtime,
                    stored,
                    flag,
                    rlink,
                    magic,
                    _v,
                    _u,
                    _g,
                    _ma,
                    _mi,
                    prefix,
                ) = unpack(hdr)
                # the checksum: the header's byte sum with its own field counted as 8 spaces. Adler-32's
                # low word is 1 + the byte sum modulo 65521: exact when the sum stays below that, as
                # it does for an ASCII header (512 * 127) and for each half of any header (256 * 255).
                if hdr.isascii():
                    total = (adler(hdr) & 0xFFFF) - (adler(stored) & 0xFFFF) + 256
                else:
                    total = (
                        (adler(hdr[:256]) & 0xFFFF)
                        + (adler(hdr[256:]) & 0xFFFF)
                        + 254
                        - sum(stored)
                    )
                try:
                    ok = int(stored.rstrip(b"\0 ") or b"-1", 8) == total
                except ValueError:
                    ok = False
                if not ok:
                    _check(hdr, start, digest, first)  # other spellings, or raise
                first = False
                if flag not in _META:
                    break
                size = _num(rsize, "size", start, digest)
                if size > MAX_META:
                    raise LayerReadError(f"tar metadata header of {size} bytes", digest, start)
                data = chunks.take(size)
                if len(data) < size:
                    raise LayerReadError("truncated tar metadata", digest, chunks.offset)
                chunks.skip(-size % BLOCK)
                if pax is _NO_PAX:
                    pax = {}
                if flag == 0x78:  # 'x'
                    pax.update(_parse_pax(data, start, digest))
                elif flag == 0x67:  # 'g'
                    gpax.update(_parse_pax(data, start, digest))
                    pax.update(gpax)
                elif flag == 0x4C:  # 'L'
                    longname = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                else:  # 'K'
                    longlink = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                start = chunks.offset
                hdr = chunks.take(BLOCK)
                if len(hdr) < BLOCK or hdr == ZERO_BLOCK:
                    raise LayerReadError("tar metadata header without an entry", digest, start)
            # -- its name and link target
            if longname is not None:
                name = longname
            else:
                name = rname.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                if magic == b"ustar\x00" and prefix[0]:  # POSIX prefix (GNU "ustar  " has none)
                    name = prefix.split(b"\0", 1)[0].decode("utf-8", "surrogateescape") + "/" + name
            if longlink is not None:
                linkname = longlink
            elif rlink[0]:
                linkname = rlink.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            else:
                linkname = ""
            try:  # fast path: plain octal, NUL/space terminated (nearly every header)
                size = int(rsize.rstrip(b"\0 ") or b"0", 8)
                uid = int(ruid.rstrip(b"\0 ") or b"0", 8)
                gid = int(rgid.rstrip(b"\0 ") or b"0", 8)
                mtime = int(rmtime.rstrip(b"\0 ") or b"0", 8)
                mode = int(rmode.rstrip(b"\0 ") or b"0", 8) & 0o7777
            except ValueError:  # base-256, junk after a NUL, or corrupt
                size = _num(rsize, "size", start, digest)
                uid = _num(ruid, "uid", start, digest)
                gid = _num(rgid, "gid", start, digest)
                mtime = _num(rmtime, "mtime", start, digest)
                mode = _num(rmode, "mode", start, digest) & 0o7777
            sparse = None
            if pax:
                name = pax.get("path", name)
                linkname = pax.get("linkpath", linkname)
                try:
                    size = int(pax.get("size", size))
                    uid = int(pax.get("uid", uid))
                    gid = int(pax.get("gid", gid))
                    mtime = int(float(pax.get("mtime", mtime)))
                except ValueError as e:
                    raise LayerReadError(f"corrupt PAX value: {e}", digest, start) from e
                if (
                    "GNU.sparse.name" in pax
                    or "GNU.sparse.map" in pax
                    or ("GNU.sparse.major" in pax)
                ):
                    name = pax.get("GNU.sparse.name", name)
                    sparse = _SparseMap.from_pax(pax, size, chunks, digest, start)
            if flag == 0x53 and sparse is None:  # 'S': old GNU sparse file
                sparse = _SparseMap.from_gnu(hdr, size, chunks, digest, start)
            if size < 0:
                raise LayerReadError(f"negative size in tar header for {name!r}", digest, start)
            path = name.removeprefix("./")
            if (
                ".wh." in path
                or flag == 0x31  # '1': a hard link, whose target is vetted too
                or "//" in path
                or "/." in path
                or path.startswith(".")
            ):
                path = None  # normalised by _finish
            else:  # no "." or ".." component, no whiteout: the common case
                path = path.strip("/")
        # -- the entry the header describes
        kind = _KINDS.get(flag, file)  # unknown types read as files, as GNU tar does
        if kind is file and (flag == 0x30 or flag == 0) and name.endswith("/"):
            kind = _DIR  # old v7 tars mark directories with a trailing slash only
        data_len = 0 if flag in _HEADER_ONLY else size
        entry = Entry(
            name,
            kind,
            size if kind is file else 0,
            mode,
            uid,
            gid,
            linkname,
            mtime,
            name,
            entry_start,
            None,
            start + BLOCK,
        )
        if sparse is not None:
            if sparse.packed + sparse.map_len != data_len:
                raise LayerReadError(
                    f"corrupt sparse map of {name!r}: its segments hold "
                    f"{sparse.packed} bytes, the entry {data_len - sparse.map_len}",
                    digest,
                    start,
                )
            entry.size = sparse.size if kind is file else 0
            entry.data_offset = chunks.offset
            data_len -= sparse.map_len  # a 1.0 map (whole blocks) was read already
        # -- its path: normalised, whiteouts recognised, hard-link targets vetted
        found: Entry | None
        if flag in _SKIP:
            found = None
        elif path is None:
            found = _finish(entry, start, digest, on_unsafe)
        else:
            entry.path = path
            found = entry
        content: _Content | None = None
        if found is not None:
            if found.kind is file:
                if sparse is not None:  # expanded on read; not verbatim in the file
                    content = _Content(chunks, data_len, found.path)
                    found._opener = _Expanded(content, sparse, found.path).opener
                elif data_len:
                    content = _Content(chunks, data_len, found.path)
                    found._opener = content.opener
                    found._origin = origin
                else:
                    found._opener = no_bytes
            yield found
        # skip what the consumer did not read, then the padding to the block boundary
        left = content.remaining if content is not None else data_len
        if content is not None:
            content.close()
        want = left + (-data_len % BLOCK)
        if not want:
            continue
        if len(chunks.buf) - chunks.pos >= want:  # fast path: within the current chunk
            chunks.pos += want
        elif chunks.skip(want) < left:
            raise LayerReadError(
                f"truncated tar: content of {name!r} ends early", digest, chunks.offset
            )


def _check(hdr: bytes, offset: int, digest: str, first: bool) -> None:
    """The header checksum the slow way: other spellings of the field, signed sums; raises."""
    stored = hdr[148:156]
    # the checksum field counts as 8 spaces; NULs add nothing, so drop them before summing
    total = sum(hdr.translate(None, b"\0")) - sum(stored) + 256
    try:
        want = int(stored.rstrip(b"\0 ") or b"-1", 8)
    except ValueError:
        want = _num(stored, "checksum", offset, digest) if stored[0] & 0x80 else -1
    if want == total:
        return
    # some old writers summed signed chars
    signed = total - 256 * sum(1 for b in hdr if b > 127) + 256 * sum(1 for b in stored if b > 127)
    if want == signed:
        return
    what = "not a tar archive" if first else "corrupt tar header"
    raise LayerReadError(f"{what} (bad header checksum)", digest, offset)


_HDR = struct.Struct("100s8s8s8s12s12s8sB100s6s2s32s32s8s8s155s12x")


def _finish(entry: Entry, offset: int, digest: str, on_unsafe: OnUnsafe | None) -> Entry | None:
    """Normalise the path, turn whiteout names into WHITEOUT/OPAQUE, vet hard-link targets."""
    path = normalize(entry.raw_name)
    if path is not None and entry.kind is _HARDLINK:
        target = normalize(entry.linkname)
        if target is None:
            _unsafe(
                entry,
                f"hard link {entry.raw_name!r} -> {entry.linkname!r} leaves the root",
                offset,
                digest,
                on_unsafe,
            )
            return None
        entry.linkname = target
    if path is None:
        _unsafe(entry, f"tar entry {entry.raw_name!r} leaves the root", offset, digest, on_unsafe)
        return None
    if path.startswith(".wh..wh.") and path != ".wh..wh..opq":
        return None  # aufs bookkeeping at the layer root (.wh..wh.plnk/, .wh..wh.aufs)
    base = path.rpartition("/")[2]
    if base.startswith(".wh."):
        parent = path[: len(path) - len(base)].rstrip("/")
        if base == ".wh..wh..opq":
            entry.kind, entry.path = _OPAQUE, parent
        elif base.startswith(".wh..wh."):
            return None  # aufs bookkeeping, not part of the filesystem
        else:
            entry.kind = _WHITEOUT
            entry.path = f"{parent}/{base[4:]}" if parent else base[4:]
        entry.size = 0
        return entry
    entry.path = path
    return entry


def _unsafe(
    entry: Entry, message: str, offset: int, digest: str, on_unsafe: OnUnsafe | None
) -> None:
    """Raise UnsafePath, or report the entry to ``on_unsafe`` (the caller then skips it)."""
    where = f" (layer {digest}, offset {offset})" if digest else f" (offset {offset})"
    if on_unsafe is None:
        raise UnsafePath(message + where)
    on_unsafe(entry.raw_name, offset)


def walk_layer(
    stream: IO[bytes],
    media_type: str = "",
    digest: str = "",
    on_unsafe: OnUnsafe | None = None,
    prefetch: bool = True,
) -> Iterator[Entry]:
    """Decompress (sniffed) and walk a compressed layer blob in one go.

    With ``prefetch`` (default) decoding runs in a background thread, a few chunks ahead.
    """
    from imagewise.archive.decompress import open_decompressed

    with open_decompressed(stream, media_type, digest) as tar:
        if not prefetch:
            yield from walk(tar, digest, on_unsafe)
            return
        from imagewise.archive.prefetch import Prefetcher

        with Prefetcher(tar) as ahead:
            yield from walk(ahead, digest, on_unsafe)  # type: ignore[arg-type]
