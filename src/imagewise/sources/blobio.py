"""Blob streams shared by the file-based sources and sinks.

* :class:`VerifyingReader` hashes what is read and raises :class:`DigestMismatch` at EOF (or
  when more bytes than the descriptor's size arrive). A sink that receives one may skip its own
  hashing: the reader already guarantees the bytes.
* :class:`FileRegion` reads one member of an uncompressed tar in place (no extraction).
* :class:`TarIndex` lists an archive's members with their data offsets, reading only headers.
* :class:`Region` names where a blob lies as plain bytes in a local file (an archive member or a
  layout's blob file), so a reader can map it instead of streaming it.
"""

from __future__ import annotations

import os
import posixpath
from typing import IO, Any, Protocol

from imagewise.archive.region import FileRegion, Region
from imagewise.errors import DigestMismatch, ImageFormatError, LayerReadError, NotAnImage
from imagewise.fileio import readinto
from imagewise.oci.digest import SMALL, Digest, DigestingReader
from imagewise.record import Record

CHUNK = 1 << 20


class Readable(Protocol):
    """The part of a binary file object the blob code uses."""

    def read(self, n: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class VerifyingReader(DigestingReader):
    """Wraps a binary stream; checks the digest (and size, when known) when EOF is reached.

    ``hashed=True``: ``digest`` was just computed from these same bytes (a source that had to
    hash a file to name it), so only the size is checked, not the digest a second time.
    """

    def __init__(
        self,
        raw: Readable,
        digest: Digest,
        size: int | None = None,
        where: str = "",
        *,
        hashed: bool = False,
    ) -> None:
        small = size is not None and 0 <= size <= SMALL
        super().__init__(raw, digest, where or f"blob {digest}", small=small)
        self.expected = digest
        #: the digest this stream guarantees (raises at EOF otherwise); wrappers forward it
        self.verifies: Digest | None = digest
        self._size = size if size is not None and size >= 0 else None
        self._hashed = hashed
        self.verified = False

    def read(self, n: int | None = -1) -> bytes:
        whole = n is None or n < 0
        if self._hashed:
            data: bytes = self._raw.read(-1 if whole else n)
            self.count += len(data)
        else:
            data = super().read(-1 if whole else n)
        self._counted(end=not data or whole)
        return data

    def readinto(self, b: Any) -> int:
        if self._hashed:
            n = readinto(self._raw, memoryview(b).cast("B"))
            self.count += n
        else:
            n = super().readinto(b)
        self._counted(end=not n and len(b) > 0)
        return n

    def _counted(self, end: bool) -> None:
        """After a read: more bytes than the size is a mismatch at once; at the end of the
        stream, the digest and size are checked."""
        if self._size is not None and self.count > self._size:
            raise DigestMismatch(str(self.expected), f"more than {self._size} bytes", self._where)
        if end:
            self._finish()

    def check(self) -> Digest:
        return self.expected if self._hashed else super().check()

    def _finish(self) -> None:
        if self.verified:
            return
        self.check()
        if self._size is not None and self.count != self._size:
            raise DigestMismatch(
                str(self.expected), f"{self.count} bytes instead of {self._size}", self._where
            )
        self.verified = True

    @property
    def closed(self) -> bool:
        return bool(getattr(self._raw, "closed", False))


class Member(Record):
    __slots__ = ("name", "offset", "size")

    def __init__(self, name: str, offset: int, size: int) -> None:
        self.name = name
        self.offset = offset  # offset of the data in the archive file
        self.size = size


def _norm(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


class TarIndex:
    """The regular-file members of an uncompressed tar archive, by normalised name.

    Only headers are read (the layer walker over a memory map steps over the data), so indexing
    a multi-GB archive is cheap.
    A compressed archive is refused with ``compressed=True`` so callers can fall back.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.members: dict[str, Member] = {}
        self.names: list[str] = []
        #: the archive ended with tar's end-of-archive block; False: it stops between two
        #: members, as a file cut on a 512-byte boundary does (``docker save`` never omits it)
        self.complete = True
        if not os.path.exists(path):
            raise FileNotFoundError(2, "No such file or directory", path)
        if os.path.isdir(path):
            raise NotAnImage(f"{path} is a directory, not an archive (use oci:{path} for a layout)")
        with open(path, "rb") as f:
            head = f.read(512)
        self.compression = _sniff(head)
        if self.compression:
            return
        links: dict[str, str] = {}
        try:
            self._scan(path, links)
        except LayerReadError as e:
            if not self.names:
                raise NotAnImage(f"{path} is not a tar archive") from e
            raise ImageFormatError(f"{path}: archive is truncated or corrupt: {e}") from e
        self._resolve_links(links)

    def _scan(self, path: str, links: dict[str, str]) -> None:
        """Read the headers with the layer walker over a map of the file: data is never read."""
        from imagewise.archive.entry import Kind
        from imagewise.archive.mapped import MappedRegion
        from imagewise.archive.walk import walk_buffer

        size = os.path.getsize(path)
        if size == 0:
            raise LayerReadError("empty file")
        with MappedRegion(Region(path, 0, size)) as m:
            # names leaving the archive root are skipped: nothing can ask for them; content cut
            # short by a truncated archive raises here
            def ended(marked: bool) -> None:
                self.complete = marked

            for n, e in enumerate(
                walk_buffer(m.buffer, m.start, on_unsafe=lambda name, offset: None, on_end=ended)
            ):
                if not n & 1023:
                    m.check()  # another process wants to change the file: stop while it is safe
                name = e.path
                self.names.append(name)
                if e.kind is Kind.FILE:
                    self.members[name] = Member(name, e.data_offset, e.size)
                elif e.kind is Kind.SYMLINK:  # docker save links a shared layer: <id>/layer.tar
                    links[name] = posixpath.normpath(
                        posixpath.join(posixpath.dirname(name), e.linkname)
                    )
                elif e.kind is Kind.HARDLINK:
                    links[name] = e.linkname

    def _resolve_links(self, links: dict[str, str]) -> None:
        """Make links to regular members readable under their own names (never outside)."""
        for name, target in links.items():
            for _hop in range(8):
                if target == ".." or target.startswith(("../", "/")):
                    break
                if target in self.members:
                    m = self.members[target]
                    self.members[name] = Member(name, m.offset, m.size)
                    break
                if target not in links:
                    break
                target = links[target]

    def has(self, name: str) -> bool:
        return _norm(name) in self.members

    def member(self, name: str) -> Member:
        m = self.members.get(_norm(name))
        if m is None:
            raise ImageFormatError(f"{self.path}: archive has no {name!r}")
        return m

    def open(self, name: str) -> FileRegion:
        m = self.member(name)
        return FileRegion(self.path, m.offset, m.size)

    def region(self, name: str) -> Region:
        m = self.member(name)
        return Region(self.path, m.offset, m.size)

    def read(self, name: str, limit: int) -> bytes:
        m = self.member(name)
        if m.size > limit:
            from imagewise.errors import TooLarge

            raise TooLarge(
                f"{self.path}: {name} is {m.size} bytes; refusing documents over {limit}"
            )
        with self.open(name) as f:
            return f.read()

    def head(self, name: str, n: int = 8) -> bytes:
        with self.open(name) as f:
            return f.read(n)

    def size(self, name: str) -> int:
        return self.member(name).size

    def close(self) -> None:
        pass


class DirView:
    """The same read interface as :class:`TarIndex` over a directory (a layout or an extraction)."""

    def __init__(self, root: str, cleanup: bool = False) -> None:
        self.path = root
        self._cleanup = cleanup

    def _p(self, name: str) -> str:
        name = _norm(name)
        if name.startswith("../") or "/../" in name or name == "..":
            raise ImageFormatError(f"{self.path}: refusing path {name!r} outside the image")
        return os.path.join(self.path, name)

    def has(self, name: str) -> bool:
        return os.path.isfile(self._p(name))

    def open(self, name: str) -> IO[bytes]:
        try:
            return open(self._p(name), "rb")
        except FileNotFoundError as e:
            raise ImageFormatError(f"{self.path}: missing {name!r}") from e

    def region(self, name: str) -> Region:
        return Region(self._p(name), 0, self.size(name))

    def size(self, name: str) -> int:
        try:
            return os.path.getsize(self._p(name))
        except FileNotFoundError as e:
            raise ImageFormatError(f"{self.path}: missing {name!r}") from e

    def read(self, name: str, limit: int) -> bytes:
        if self.size(name) > limit:
            from imagewise.errors import TooLarge

            raise TooLarge(f"{self.path}: {name} is over {limit} bytes; refusing it")
        with self.open(name) as f:
            return f.read()

    def head(self, name: str, n: int = 8) -> bytes:
        with self.open(name) as f:
            return f.read(n)

    @property
    def names(self) -> list[str]:
        out = []
        for d, _, files in os.walk(self.path):
            rel = os.path.relpath(d, self.path)
            out += [f if rel == "." else f"{rel}/{f}" for f in files]
        return out

    def close(self) -> None:
        if self._cleanup:
            import shutil

            shutil.rmtree(self.path, ignore_errors=True)
            self._cleanup = False


def open_archive(path: str) -> TarIndex | DirView:
    """Index an archive in place; a compressed one (``docker save | gzip``) is extracted to a
    temporary directory first (removed again by ``close()``)."""
    idx = TarIndex(path)
    if not idx.compression:
        return idx
    import tarfile
    import tempfile

    tmp = tempfile.mkdtemp(prefix="imagewise-archive-")
    mode = {"gzip": "r:gz", "bzip2": "r:bz2", "xz": "r:xz"}.get(idx.compression)
    try:
        if mode is None:
            raise NotAnImage(f"{path}: {idx.compression}-compressed archives are not supported")
        with tarfile.open(path, mode=mode) as tf:  # type: ignore[call-overload]
            tf.extractall(tmp, filter="data")
    except (tarfile.TarError, OSError, EOFError) as e:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise NotAnImage(f"{path} is not a readable tar archive: {e}") from e
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return DirView(tmp, cleanup=True)


def _sniff(head: bytes) -> str:
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    if head[:3] == b"BZh":
        return "bzip2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    return ""


def sniff_compression(head: bytes) -> str:
    """'gzip', 'zstd', 'bzip2', 'xz' or '' (none / tar) from the first bytes of a stream."""
    return _sniff(head)


def hash_stream(f: Readable, algorithm: str = "sha256") -> tuple[Digest, int]:
    """Digest and length of everything ``f`` yields, read in 1 MiB chunks."""
    import hashlib

    h = hashlib.new(algorithm)
    n = 0
    while True:
        chunk = f.read(CHUNK)
        if not chunk:
            break
        h.update(chunk)
        n += len(chunk)
    return Digest(algorithm, h.hexdigest()), n
