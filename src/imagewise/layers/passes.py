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
cached is not read: ``restore_layer`` hands each visitor its stored result, then the entries are
replayed without content. The cache is trusted only with what this code verified (``cache``): a
layer is looked up by the diff_id its blob digest was *verified* to decompress to in an earlier
run, never by the diff_id the config claims, and a layer read for real is stored only once its
blob digest has been checked and the sha256 of its uncompressed tar computed in this run, under
that computed diff_id. A config diff_id that differs from the content raises ``DigestMismatch``.

Diff_ids are checked (``diff_ids=True``, always with a cache): a compressed layer's tar is hashed
as it is decoded (in the decoding thread, see ``prefetch``); an uncompressed one's diff_id must
equal its verified blob digest.

A layer stored uncompressed in a local file (``docker save`` archives, some layouts) is not
streamed: it is walked through a memory map (``mapped``), so content nobody reads is never
touched, while its digest is checked in background threads. The pass waits for those checks
before it returns and before anything derived from the layer enters the cache.

Progress: one reporter task per layer, advanced by compressed bytes read (from the decoding
thread: layers are decompressed a few chunks ahead of the walk, see ``prefetch``).
"""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import IO, TYPE_CHECKING, Any

from imagewise import progress
from imagewise.archive.batch import EntryBatch
from imagewise.archive.walk import walk
from imagewise.fileio import Reader
from imagewise.gcpause import paused
from imagewise.layers.model import Entry, Kind, Visitor

if TYPE_CHECKING:
    from imagewise.archive.mapped import Check
    from imagewise.archive.region import Region
    from imagewise.cache import EntryList, LayerCache, PackedEntries
    from imagewise.errors import DigestMismatch
    from imagewise.layers.partner import Partner
    from imagewise.sources.base import Image, Layer

# Kind's members as plain module names: ``Kind.X`` is an enum descriptor call on every use
_FILE = Kind.FILE

#: files up to this size wanted by several visitors are shared as one in-memory bytes
SHARE_LIMIT = 16 * 1024 * 1024
_COPY = 1024 * 1024
#: decode each layer in a background thread, a few chunks ahead of the walk (see ``prefetch``)
PREFETCH = True
#: walk a layer stored uncompressed in a local file through a memory map (see ``mapped``)
MAP = True
#: walk a mapped layer in batches of plain entries (``archive.batch``): whole to the visitors
#: that take them, as entries made in one loop to the others
BATCHES = True


def _no_content() -> IO[bytes]:
    raise ValueError("content not requested: return True from wants_content() to read it")


class _Counting:
    """Passes reads through, counting compressed bytes; ``flush()`` reports them.

    Reads may happen in the decoding thread; ``flush`` is called from the walking thread, so the
    reporter only ever hears from one thread. ``eager`` reports on every read instead.
    """

    def __init__(
        self, raw: IO[bytes], reporter: progress.Reporter, key: str, eager: bool = False
    ) -> None:
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
        """The digest the wrapped stream guarantees at EOF (forwarded, see ``imagewise.streams``)."""
        from imagewise.streams import verified_digest

        return verified_digest(self._raw)

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
            import tempfile

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


class _PRead(Reader):
    """An independent reader over the first ``size`` bytes of a file descriptor."""

    __slots__ = ("_fd", "_pos", "_size")

    def __init__(self, fd: int, size: int) -> None:
        self._fd = fd
        self._size = size
        self._pos = 0

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


def _shared(data: bytes) -> Callable[[], IO[bytes]]:
    return lambda: io.BytesIO(data)


def visit_entries(
    entries: Iterable[Entry | EntryBatch],
    visitors: Sequence[Visitor],
    spool: _Spool | None = None,
    record: PackedEntries | None = None,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Feed an entry iterator to the visitors with the content-sharing rules above.

    ``record`` keeps every entry's record (``cache.PackedEntries``). A batch of entries
    (``archive.batch``) goes whole to the visitors that take batches and to ``record``, and
    entry by entry (``EntryBatch.entries``) to the others.
    ``progress`` is called with an entry's offset every 256 entries and after every batch (for
    a walk that reads no chunks to count, see ``_one_layer``)."""
    own_spool = spool is None
    spool = spool or _Spool()
    visits = [v.visit for v in visitors]
    batch_visits = [v.visit_batch for v in visitors if v.batches]
    singles = [v for v in visitors if not v.batches]
    # only visitors that override wants_content can ask (the base class never does)
    askers = [
        (i, v.wants_content)
        for i, v in enumerate(visitors)
        if getattr(v.wants_content, "__func__", None) is not Visitor.wants_content
    ]
    only, only_wants = askers[0] if len(askers) == 1 else (-1, None)
    file = _FILE
    try:
        for n, entry in enumerate(entries):
            if type(entry) is EntryBatch:  # a run of plain entries as columns
                for visit_batch in batch_visits:
                    visit_batch(entry)
                if record is not None:
                    record.add_batch(entry)
                if singles:
                    visit_entries(entry.entries(), singles, spool)
                if progress is not None:  # after the visits: the pages they read may go
                    progress(entry.offsets[-1])
                continue
            if record is not None:
                record.add(entry)
            if progress is not None and not n & 255:
                progress(entry.offset)
            live = entry._opener
            if live is None or entry.kind is not file:
                for visit in visits:
                    visit(entry)
                continue
            if only_wants is not None:  # one visitor may read content (the usual case)
                wanting = [only] if only_wants(entry) else ()
            else:
                wanting = [i for i, wants in askers if wants(entry)]
            if not wanting:
                entry._opener = _no_content
                for visit in visits:
                    visit(entry)
                continue
            if len(wanting) > 1:
                src = live()
                if entry.size <= SHARE_LIMIT:
                    live = _shared(src.read())
                else:
                    live = spool.fill(src, entry.size)
            for i, visit in enumerate(visits):
                entry._opener = live if i in wanting else _no_content
                visit(entry)
    finally:
        if own_spool:
            spool.close()


def run_pass(
    image: Image,
    visitors: Sequence[Visitor],
    reporter: progress.Reporter = progress.NULL,
    cache: LayerCache | None = None,
    verify: bool = True,
    diff_ids: bool = False,
    checked: LayerCache | None = None,
) -> None:
    """Walk every layer of ``image`` once, feeding all ``visitors``.

    ``verify=False`` skips the digest check of layers read in place from local files (see
    ``mapped``); streamed layers are always checked as they are read. ``diff_ids=True`` also
    checks every layer's uncompressed tar against the config's diff_id (``DigestMismatch``).
    With a ``cache`` every layer read is checked both ways whatever the flags say: the cache
    keeps only results of verified bytes (see the module docstring). ``checked`` (default: the
    ``cache``) remembers the local files whose blob digests were checked, so that an unchanged
    file is not hashed again (``LayerCache.checked_file``). The cyclic garbage collector is
    paused meanwhile (``gcpause``).
    """
    with paused():
        memo = checked if checked is not None else cache
        _run_pass(image, visitors, reporter, cache, verify, diff_ids, memo)


def _run_pass(
    image: Image,
    visitors: Sequence[Visitor],
    reporter: progress.Reporter,
    cache: LayerCache | None,
    verify: bool,
    diff_ids: bool,
    checked: LayerCache | None,
) -> None:
    for v in visitors:
        v.begin_image(image)
    spool = _Spool()
    checks = _Checks(
        verify or diff_ids or cache is not None, diff_ids or cache is not None, checked
    )
    total = len(image.layers)
    partner = _partner(image, visitors, cache, checks)  # forked before any thread starts
    checks.prepare(image.layers)  # the same: the digest checks' own process, when they pay
    whole = {id(v) for v in partner.whole} if partner is not None else set()
    here = [v for v in visitors if id(v) not in whole]  # the partner runs the others whole
    try:
        if cache is None:  # every layer will be read: start all checks now
            for layer in image.layers:
                checks.start(layer)
        for layer in image.layers:
            key = f"layer-{layer.index}"
            reporter.start(key, f"layer {layer.index + 1}/{total} {layer.digest.short}", layer.size)
            try:
                _one_layer(layer, here, reporter, key, spool, cache, checks, partner)
            finally:
                reporter.done(key)
        try:  # their last work overlaps the digest checks and the partner's
            for v in here:
                v.end_image(image)
        except BaseException:
            checks.settle()  # a wrong digest is the error to report, whatever it led to
            raise
        checks.settle()  # before anything derived from the layers leaves the pass
        if partner is not None and partner.whole:
            _whole_from_partner(image, partner, spool)
    finally:
        spool.close()
        checks.close()
        if partner is not None:
            partner.close()


class _Checks:
    """Digest checks of mapped layers running in the background, and what waits for them."""

    def __init__(
        self, verify: bool = True, diff_ids: bool = False, memo: LayerCache | None = None
    ) -> None:
        self._verify = verify
        self.diff_ids = diff_ids
        self._verifier: Any = None
        self._regions: dict[int, Region | None] = {}
        self._started: dict[int, Check] = {}
        self._pending: list[tuple[Check, Callable[[], None] | None]] = []
        # ``memo``: the layer cache, remembering which unchanged local files were checked
        # before (``LayerCache.checked_file``); ``_known``: its answer per layer
        self._memo = memo if memo is not None and memo.local else None
        self._known: dict[int, bool] = {}

    def prepare(self, layers: Sequence[Layer]) -> None:
        """Fork the process that will check the digests of the layers in local files, when there
        are enough of their bytes to pay for it (``archive.forking``; the threads otherwise)."""
        if not self._verify or self._verifier is not None:
            return
        local = sum(
            layer.size
            for layer in layers
            if (region := layer.region()) is not None and not self.known(layer, region)
        )
        from imagewise.archive import forking

        if local and forking.allowed(local):
            from imagewise.archive.mapped import Verifier

            self._verifier = Verifier(fork=True)

    def region(self, layer: Layer) -> Region | None:
        """The layer's byte range when it lies uncompressed in a local file (and ``MAP``)."""
        if layer.index not in self._regions:
            self._regions[layer.index] = _plain_region(layer) if MAP else None
        return self._regions[layer.index]

    def known(self, layer: Layer, region: Region) -> bool:
        """Whether the layer's blob in ``region`` was checked in an earlier run and its file is
        unchanged since (``LayerCache.checked_file``): then it is not hashed again."""
        if self._memo is None:
            return False
        if layer.index not in self._known:
            self._known[layer.index] = self._memo.checked_file(
                region.path, region.offset, region.length, str(layer.digest)
            )
        return self._known[layer.index]

    def start(self, layer: Layer, stored: bool = False) -> Check | None:
        """Start checking the layer's digest (once), when it is mapped; with ``stored``, whenever
        its blob lies in a local file, compressed or not (a layer served from the cache). None
        when there is nothing to check, or the unchanged file was checked before (``known``);
        a check that passes is remembered in the cache for the next run."""
        region = layer.region() if stored else self.region(layer)
        if region is None or not self._verify or self.known(layer, region):
            return None
        if layer.index not in self._started:
            if self._verifier is None:
                from imagewise.archive.mapped import Verifier

                self._verifier = Verifier()
            remember: Callable[[], None] | None = None
            if self._memo is not None:
                from functools import partial

                from imagewise.cache import file_identity

                remember = partial(
                    self._memo.remember_checked,
                    region.path,
                    region.offset,
                    region.length,
                    str(layer.digest),
                    file_identity(region.path),
                    time.time_ns(),
                )
            check: Check = self._verifier.submit(
                region, layer.digest, layer.size, f"{region.path}: layer {layer.index + 1}"
            )
            self._started[layer.index] = check
            self._pending.append((check, remember))
        return self._started[layer.index]

    def after(self, check: Check, action: Callable[[], None]) -> None:
        """Run ``action`` once ``check`` has passed (at ``settle``)."""
        self._pending.append((check, action))

    def settle(self) -> None:
        for check, action in self._pending:
            check.result()  # raises DigestMismatch
            if action is not None:
                action()
        self._pending.clear()

    def close(self) -> None:
        if self._verifier is not None:
            self._verifier.close()


def _plain_region(layer: Layer) -> Region | None:
    region = layer.region()
    if region is None or region.length < 8:
        return region
    from imagewise.archive.decompress import sniff

    with open(region.path, "rb") as f:
        head = os.pread(f.fileno(), 8, region.offset)
    return None if sniff(head) else region


class _Advance:
    """Progress of a mapped layer from the entries' offsets (its walk reads no chunks to count);
    each call also checks that the mapped file is still safe to read (``MappedRegion.check``)."""

    def __init__(
        self,
        reporter: progress.Reporter,
        key: str,
        check: Callable[[], None] | None = None,
        release: Callable[[int], None] | None = None,
    ) -> None:
        self.reporter, self.key, self.done = reporter, key, 0
        self.check = check
        self.release = release  # lets the map's pages behind the walk go (memory)

    def __call__(self, offset: int) -> None:
        if self.check is not None:
            self.check()
        if self.release is not None:
            self.release(offset)
        if offset > self.done:
            self.reporter.advance(self.key, offset - self.done)
            self.done = offset


class _HashingTar:
    """Passes a decoded tar stream's chunks on, hashing them: the layer's real diff_id.

    Runs in the decoding thread under ``prefetch``; ``hashlib`` releases the GIL on large
    chunks, so the hash mostly overlaps the walk."""

    def __init__(self, tar: Any) -> None:
        self._tar = tar
        self._next = getattr(tar, "read_chunk", None)
        import hashlib

        self._hash = hashlib.sha256()

    def read_chunk(self, hint: int | None = None) -> bytes:
        data: bytes = (
            self._next(hint) if self._next is not None else self._tar.read(max(hint or 0, 1 << 20))
        )
        if data:
            self._hash.update(data)
        return data

    def read(self, n: int = -1) -> bytes:
        data: bytes = self._tar.read(n)
        if data:
            self._hash.update(data)
        return data

    def rest(self) -> None:
        """Hash what the walk left unread (it stops at the end-of-archive blocks)."""
        while self.read_chunk(1 << 20):
            pass

    def diff_id(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def close(self) -> None:
        self._tar.close()


def _diff_mismatch(layer: Layer, actual: str) -> DigestMismatch:
    from imagewise.errors import DigestMismatch

    return DigestMismatch(
        str(layer.diff_id),
        actual,
        f"layer {layer.index + 1} ({layer.digest.short}): its uncompressed "
        "content is not the diff_id the image config gives",
    )


def _partner(
    image: Image, visitors: Sequence[Visitor], cache: LayerCache | None, checks: _Checks
) -> Partner | None:
    """A partner process for the offloadable visitors, when there are others to run here and
    the layers it would read qualify (``partner.usable``)."""
    each = [v for v in visitors if v.offload == "layer" and v.cacheable and _content_cached(v)]
    whole = [v for v in visitors if v.offload == "image"]
    if not (each or whole) or len(each) + len(whole) == len(visitors):
        return None
    from imagewise.layers import partner

    # the layers the pass will read for real: the cache serves the others to ``each`` here
    reads = [
        layer
        for layer in image.layers
        if cache is None or not cache_holds(str(layer.digest), layer.diff_id, visitors, cache)
    ]
    if not reads and not all(checks.region(layer) is not None for layer in image.layers):
        # the cache serves every layer and some are compressed: replaying their entries here
        # beats decompressing them there (a warm check of 5 gzip layers 0.30 -> 0.18 s); dive
        # over layers read in place stays there (the Node app 0.64 s vs 0.68 s, 300k files
        # 1.24 s vs 1.42 s when replayed)
        return None
    if not reads:
        each = []
    if each:  # one core's worth already (the content work): the others stay here
        whole = []
    layers = list(image.layers) if whole else reads
    if not (each or whole) or not partner.usable(layers):
        return None
    try:
        return partner.Partner(image, layers, each, reads, whole, _partner_read)
    except OSError:  # no process to be had (EAGAIN, ENOMEM): the pass does it all here
        return None


def _whole_from_partner(image: Image, partner: Partner, spool: _Spool) -> None:
    """The partner's image results for the visitors it ran whole, adopted by ours; should it
    have failed, those visitors read every layer here (and end the image)."""
    values = partner.image_results()
    if values is not None:
        for v, value in zip(partner.whole, values, strict=True):
            v.adopt_image_result(value)
        return
    for layer in image.layers:
        for v in partner.whole:
            v.begin_layer(layer.index, layer)
        _read_alone(layer, partner.whole, spool)
        for v in partner.whole:
            v.end_layer(layer.index, layer)
    for v in partner.whole:
        v.end_image(image)


def _partner_read(layer: Layer, visitors: Sequence[Visitor]) -> None:
    """How the partner reads a layer (a spool of its own)."""
    spool = _Spool()
    try:
        _read_alone(layer, visitors, spool)
    finally:
        spool.close()


def _read_alone(layer: Layer, visitors: Sequence[Visitor], spool: _Spool) -> None:
    """The layer read for ``visitors`` alone, as the pass reads it but with no progress, digest
    checks or cache: the partner's reads, and the pass's own when the partner failed."""
    _read_layer(layer, visitors, progress.NULL, "", spool, None, _Checks(verify=False))


def cache_holds(
    digest: str, diff_id: object, visitors: Sequence[Visitor], cache: LayerCache
) -> bool:
    """Whether a pass with ``visitors`` would take the layer blob ``digest`` from ``cache``
    without reading it: its verified diff_id is bound (written last, after its entries) and equal
    to the config's ``diff_id`` (when given), and every content visitor's result is stored (asked
    of the store, not read: a record found bad when it is loaded is a miss there, and the layer
    is then read for real)."""
    if any(not v.cacheable for v in visitors):
        return False
    key = cache.bound(digest)
    if key is None or (diff_id is not None and str(diff_id) != key):
        return False
    return all(cache.has_result(name, version, key) for name, version in cached_results(visitors))


def cached_results(visitors: Sequence[Visitor]) -> list[tuple[str, str]]:
    """(name, version) of each visitor whose per-layer result a cached layer must hold."""
    return [(v.name, v.version) for v in visitors if v.cacheable and _content_cached(v)]


def _content_cached(v: Visitor) -> bool:
    """Whether the visitor keeps something per layer in the cache (overrides ``layer_result``)."""
    return getattr(type(v).layer_result, "__code__", None) is not Visitor.layer_result.__code__


def _one_layer(
    layer: Layer,
    visitors: Sequence[Visitor],
    reporter: progress.Reporter,
    key: str,
    spool: _Spool,
    cache: LayerCache | None,
    checks: _Checks,
    partner: Partner | None = None,
) -> None:
    i = layer.index
    for v in visitors:
        v.begin_layer(i, layer)
    digest = str(layer.digest)
    if cache is not None and _replay(layer, visitors, cache, digest):
        # the blob bound to the cached diff_id must be the one stored here: a local file is
        # hashed (in the background, settled before the pass returns) unless the source named
        # it by hashing it in this run; a registry serves blobs by digest, so there the digest
        # is the content (see docs/architecture.md)
        if not layer.source.hashed_here(layer.digest):
            checks.start(layer, stored=True)
        reporter.advance(key, layer.size)
    else:
        # the partner's visitors take their results from it, the others read the layer here
        off = partner.each if partner is not None and partner.has(i) else []
        offloaded = {id(v) for v in off}
        here = [v for v in visitors if id(v) not in offloaded]
        packed: PackedEntries | None = None
        listed: EntryList | None = None
        if off:  # replayed to the partner's visitors: kept as tuples (the same payload)
            from imagewise.cache import EntryList

            packed = listed = EntryList()
        elif cache is not None:
            from imagewise.cache import PackedEntries

            packed = PackedEntries()  # compact: a layer's records wait for its digest check
        verified = checks.start(layer)
        actual = _read_layer(layer, here, reporter, key, spool, packed, checks)
        keep = cache is not None and actual is not None
        own: dict[int, object] = {}
        if keep:  # what the cache keeps of the pass's own work, while the partner still works
            assert packed is not None
            records = packed.compress()
            own = {
                id(v): v.layer_result(i, layer) for v in here if v.cacheable and _content_cached(v)
            }
        given: dict[int, object] = {}
        if off:
            assert partner is not None and listed is not None
            given = _from_partner(layer, off, partner, listed, spool)
        if keep:
            assert cache is not None and actual is not None
            results = [
                (v.name, v.version, given[id(v)] if id(v) in given else own[id(v)])
                for v in visitors
                if v.cacheable and _content_cached(v)
            ]
            diff_id = actual

            def store() -> None:
                cache.store_entries(diff_id, records)
                for name, version, value in results:
                    cache.store_result(name, version, diff_id, value)
                cache.bind(digest, diff_id)  # last: the layer is found only once all is there

            if verified is None:
                store()
            else:  # nothing derived from the layer is kept before its digest is known good
                checks.after(verified, store)
            cache.misses += 1
    for v in visitors:
        v.end_layer(i, layer)


def _from_partner(
    layer: Layer, off: Sequence[Visitor], partner: Partner, packed: EntryList, spool: _Spool
) -> dict[int, object]:
    """The partner's results for the visitors ``off`` of a layer walked here without them:
    restored as on a cache hit, the layer's entries replayed to them. Should the partner have
    failed, the layer is read here again for those visitors alone."""
    i = layer.index
    values = partner.results(i)
    if values is None:
        _read_alone(layer, off, spool)
        return {id(v): v.layer_result(i, layer) for v in off}
    for v, value in zip(off, values, strict=True):
        v.restore_layer(i, layer, value)
    replay_columns(packed.columns(), off)
    return {id(v): value for v, value in zip(off, values, strict=True)}


def _read_layer(
    layer: Layer,
    visitors: Sequence[Visitor],
    reporter: progress.Reporter,
    key: str,
    spool: _Spool,
    rec: PackedEntries | None,
    checks: _Checks,
) -> str | None:
    """Walk the layer for real, mapped or streamed; with ``checks.diff_ids`` returns the sha256
    of its uncompressed tar (checked against the config's diff_id), else ``None``."""
    region = checks.region(layer)
    if region is None:
        return _stream_layer(layer, visitors, reporter, key, spool, rec, checks.diff_ids)
    from imagewise.archive.mapped import MappedRegion
    from imagewise.archive.walk import walk_batches, walk_buffer

    digest = str(layer.digest)
    actual: str | None = None
    if checks.diff_ids:  # a plain tar is its own diff_id: that of the checked blob
        actual = digest
        if layer.diff_id is not None and str(layer.diff_id) != actual:
            raise _diff_mismatch(layer, actual)
    batches = BATCHES and bool(visitors)
    with MappedRegion(region) as m:
        advance = _Advance(reporter, key, m.check, m.release)
        visit_entries(
            walk_batches(m.buffer, m.start, digest, origin=region)
            if batches
            else walk_buffer(m.buffer, m.start, digest, origin=region),
            visitors,
            spool,
            rec,
            advance,
        )
        advance(layer.size)
    return actual


def _stream_layer(
    layer: Layer,
    visitors: Sequence[Visitor],
    reporter: progress.Reporter,
    key: str,
    spool: _Spool,
    rec: PackedEntries | None,
    diff_ids: bool = False,
) -> str | None:
    """Decompress and walk the layer stream (its blob digest verified as it is read).

    With ``diff_ids`` returns the sha256 of the uncompressed tar, checked against the config's
    diff_id; otherwise ``None``."""
    from imagewise.archive.decompress import open_decompressed

    digest = str(layer.digest)
    raw = _Counting(layer.open_compressed(), reporter, key, eager=not PREFETCH)
    actual: str | None = None
    with open_decompressed(raw, layer.media_type, digest) as tar:  # type: ignore[arg-type]
        hashing = None
        source: Any = tar
        if diff_ids and getattr(tar, "compression", "") != "":
            hashing = source = _HashingTar(tar)
        if PREFETCH:
            from imagewise.archive.prefetch import Prefetcher

            with Prefetcher(source, on_chunk=raw.flush) as ahead:
                visit_entries(walk(ahead, digest), visitors, spool, rec)  # type: ignore[arg-type]
                while ahead.read_chunk():  # normally nothing: the walk drains the stream
                    pass
        else:
            visit_entries(walk(source, digest), visitors, spool, rec)
            if hashing is not None:
                hashing.rest()
        if diff_ids:
            # a plain tar is its own diff_id, that of the blob just verified at its end
            actual = hashing.diff_id() if hashing is not None else digest
            if layer.diff_id is not None and str(layer.diff_id) != actual:
                raise _diff_mismatch(layer, actual)
    raw.flush()
    return actual


def _replay(layer: Layer, visitors: Sequence[Visitor], cache: LayerCache, digest: str) -> bool:
    """Serve a layer from the cache when every visitor can be; False means read it for real.

    The records are looked up under the diff_id that ``digest`` was verified to decompress to
    (``LayerCache.bound``); a config that claims another diff_id is read for real (and fails its
    check there)."""
    if any(not v.cacheable for v in visitors):
        return False
    ckey = cache.bound(digest)
    if ckey is None or (layer.diff_id is not None and str(layer.diff_id) != ckey):
        return False
    columns = cache.load_columns(ckey)
    if columns is None:
        return False
    results = []
    for v in visitors:
        if not _content_cached(v):
            continue
        hit, value = cache.load_result(v.name, v.version, ckey)
        if not hit:
            return False
        results.append((v, value))
    for v, value in results:
        try:
            v.restore_layer(layer.index, layer, value)
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
            from imagewise.errors import ImagewiseError

            raise ImagewiseError(
                f"layer cache record of {v.name} for {ckey} is unusable ({type(e).__name__}); "
                f"remove {cache.root} or run with --no-cache"
            ) from e
    replay_columns(columns, visitors)
    cache.hits += 1
    return True


#: entries a replayed batch holds at most (the columns are sliced: bounded extra memory)
REPLAY_BATCH = 4096


def replay_columns(columns: Sequence[Sequence[Any]], visitors: Sequence[Visitor]) -> None:
    """Visit a layer's cached entry records (``LayerCache.load_columns``) with no content, as
    the walk would have: runs of plain entries as batches with no buffer (``visit_batch``;
    ``EntryBatch.has_content`` is False), hard links and whiteouts one entry at a time."""
    from imagewise.cache import UNBATCHED_KINDS, LayerCache

    n = len(columns[0])
    # where the unbatched kinds are: one C-level search over the kind indexes as bytes
    special = [m.start() for m in re.finditer(UNBATCHED_KINDS, bytes(columns[1]))]
    batched = [v.visit_batch for v in visitors]
    visits = [v.visit for v in visitors]
    start = 0
    for stop in [*special, n]:
        for a in range(start, stop, REPLAY_BATCH):
            batch = LayerCache.batch(columns, a, min(stop, a + REPLAY_BATCH))
            for visit_batch in batched:
                visit_batch(batch)
        if stop < n:
            entry = LayerCache.replay(tuple(column[stop] for column in columns))
            for visit in visits:
                visit(entry)
        start = stop + 1
