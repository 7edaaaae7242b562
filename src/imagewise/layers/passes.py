"""The single pass: every layer decompressed and walked once, every visitor fed from that walk.

``run_pass(image, visitors)`` calls, in order: ``begin_image``; per layer ``begin_layer``, then
``visit`` of every visitor for every entry, ``layer_result`` (when a cache is given), then
``end_layer``; finally ``end_image``.

Content is read once from the layer stream, never by decompressing a layer twice:

* nobody wants it (``wants_content`` false everywhere): it is skipped; ``open()`` raises;
* one visitor wants it: that visitor reads straight from the layer stream;
* several want it: files up to ``SHARE_LIMIT`` are read into one ``bytes`` shared by all (each
  ``open()`` is a fresh reader over it); bigger files are spooled once to a temporary file and
  each ``open()`` is an independent reader over that file.

A visitor that did not ask for content gets an entry whose ``open()`` raises ``ValueError``.

With a :class:`~imagewise.cache.LayerCache`, a layer whose entries and every visitor's result are
cached (keyed by diff_id, else digest, and visitor version) is not read: ``restore_layer`` hands
each visitor its stored result, then the entries are replayed without content.

Progress: one reporter task per layer, advanced by compressed bytes read (from the decoding
thread: layers are decompressed a few chunks ahead of the walk, see ``prefetch``).
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from typing import IO, TYPE_CHECKING, Any

from imagewise import progress
from imagewise.layers.model import Entry, Kind, Visitor
from imagewise.layers.walk import walk

if TYPE_CHECKING:
    from imagewise.cache import LayerCache
    from imagewise.sources.base import Image, Layer

#: files up to this size wanted by several visitors are shared as one in-memory bytes
SHARE_LIMIT = 16 * 1024 * 1024
_COPY = 1024 * 1024
#: decode each layer in a background thread, a few chunks ahead of the walk (see ``prefetch``)
PREFETCH = True


def _no_content() -> IO[bytes]:
    raise ValueError("content not requested: return True from wants_content() to read it")


class _Counting:
    """Passes reads through, counting compressed bytes; ``flush()`` reports them.

    Reads may happen in the decoding thread; ``flush`` is called from the walking thread, so the
    reporter only ever hears from one thread. ``eager`` reports on every read instead.
    """

    def __init__(self, raw: IO[bytes], reporter: progress.Reporter, key: str,
                 eager: bool = False) -> None:
        self._raw = raw
        self._reporter = reporter
        self._key = key
        self._eager = eager
        self.count = 0
        self._reported = 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        if data:
            self.count += len(data)
            if self._eager:
                self.flush()
        return data

    def flush(self) -> None:
        count = self.count
        if count > self._reported:
            self._reporter.advance(self._key, count - self._reported)
            self._reported = count

    @property
    def verifies(self) -> object:
        """The digest the wrapped stream guarantees at EOF (forwarded, see ``VerifyingReader``)."""
        return getattr(self._raw, "verifies", None)

    def check(self) -> object:
        check: Callable[[], object] | None = getattr(self._raw, "check", None)
        return check() if check is not None else None

    def close(self) -> None:
        close = getattr(self._raw, "close", None)
        if close is not None:
            close()


class _Spool:
    """One temporary file reused for big files several visitors read; readers use ``pread``."""

    def __init__(self) -> None:
        self._file: IO[bytes] | None = None

    def fill(self, src: IO[bytes], size: int) -> Callable[[], IO[bytes]]:
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="imagewise-spool-")  # noqa: SIM115
        f = self._file
        f.seek(0)
        f.truncate()
        while chunk := src.read(_COPY):
            f.write(chunk)
        f.flush()
        fd = f.fileno()
        return lambda: _PRead(fd, size)  # type: ignore[return-value]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class _PRead(io.RawIOBase):
    """An independent reader over the first ``size`` bytes of a file descriptor."""

    def __init__(self, fd: int, size: int) -> None:
        super().__init__()
        self._fd = fd
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        left = self._size - self._pos
        if n is None or n < 0 or n > left:
            n = left
        parts = []
        while n > 0:
            data = os.pread(self._fd, min(n, 1 << 24), self._pos)
            if not data:
                break
            parts.append(data)
            self._pos += len(data)
            n -= len(data)
        return b"".join(parts)

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def _shared(data: bytes) -> Callable[[], IO[bytes]]:
    return lambda: io.BytesIO(data)


def visit_entries(entries: Iterable[Entry], visitors: Sequence[Visitor], spool: _Spool | None = None,
                  record: Callable[[Entry], None] | None = None) -> None:
    """Feed an entry iterator to the visitors with the content-sharing rules above."""
    own_spool = spool is None
    spool = spool or _Spool()
    try:
        for entry in entries:
            if record is not None:
                record(entry)
            live = entry._opener
            if live is None or entry.kind is not Kind.FILE:
                for v in visitors:
                    v.visit(entry)
                continue
            wanting = [v for v in visitors if v.wants_content(entry)]
            if len(wanting) > 1:
                src = live()
                if entry.size <= SHARE_LIMIT:
                    live = _shared(src.read())
                else:
                    live = spool.fill(src, entry.size)
            for v in visitors:
                entry._opener = live if v in wanting else _no_content
                v.visit(entry)
    finally:
        if own_spool:
            spool.close()


def run_pass(image: Image, visitors: Sequence[Visitor],
             reporter: progress.Reporter = progress.NULL,
             cache: LayerCache | None = None) -> None:
    """Walk every layer of ``image`` once, feeding all ``visitors``."""
    for v in visitors:
        v.begin_image(image)
    spool = _Spool()
    total = len(image.layers)
    try:
        for layer in image.layers:
            key = f"layer-{layer.index}"
            reporter.start(key, f"layer {layer.index + 1}/{total} {layer.digest.short}",
                           layer.size)
            try:
                _one_layer(layer, visitors, reporter, key, spool, cache)
            finally:
                reporter.done(key)
    finally:
        spool.close()
    for v in visitors:
        v.end_image(image)


def _one_layer(layer: Layer, visitors: Sequence[Visitor], reporter: progress.Reporter, key: str,
               spool: _Spool, cache: LayerCache | None) -> None:
    i = layer.index
    for v in visitors:
        v.begin_layer(i, layer)
    ckey = str(layer.diff_id or layer.digest)
    if cache is not None and _replay(layer, visitors, cache, ckey):
        reporter.advance(key, layer.size)
    else:
        from imagewise.layers.decompress import open_decompressed

        records: list[Any] = []
        rec: Callable[[Entry], None] | None = None
        if cache is not None:
            from imagewise.cache import LayerCache as _LC

            def rec(e: Entry) -> None:
                records.append(_LC.record(e))

        digest = str(layer.digest)
        raw = _Counting(layer.open_compressed(), reporter, key, eager=not PREFETCH)
        with open_decompressed(raw, layer.media_type, digest) as tar:  # type: ignore[arg-type]
            if PREFETCH:
                from imagewise.layers.prefetch import Prefetcher

                with Prefetcher(tar, on_chunk=raw.flush) as ahead:
                    visit_entries(walk(ahead, digest), visitors, spool, rec)  # type: ignore[arg-type]
            else:
                visit_entries(walk(tar, digest), visitors, spool, rec)
        raw.flush()
        if cache is not None:
            cache.store_entries(ckey, records)
            for v in visitors:
                if v.cacheable:
                    cache.store_result(v.name, v.version, ckey, v.layer_result(i, layer))
            cache.misses += 1
    for v in visitors:
        v.end_layer(i, layer)


def _replay(layer: Layer, visitors: Sequence[Visitor], cache: LayerCache, ckey: str) -> bool:
    """Serve a layer from the cache when every visitor can be; False means read it for real."""
    if any(not v.cacheable for v in visitors):
        return False
    records = cache.load_entries(ckey)
    if records is None:
        return False
    results = []
    for v in visitors:
        hit, value = cache.load_result(v.name, v.version, ckey)
        if not hit:
            return False
        results.append(value)
    for v, value in zip(visitors, results):
        v.restore_layer(layer.index, layer, value)
    for r in records:
        entry = cache.replay(r)
        for v in visitors:
            v.visit(entry)
    cache.hits += 1
    return True
