"""The layer cache's packed entry records read back exactly as the records themselves."""

from __future__ import annotations

import marshal
import zlib
from pathlib import Path

from imagewise.cache import EntryList, LayerCache, PackedEntries
from imagewise.layers.model import Entry, Kind

ENTRIES = [
    Entry("etc/passwd", Kind.FILE, 1234, 0o644, 0, 0, "", 1_700_000_000, "./etc/passwd", 512),
    Entry("usr/bin", Kind.DIR, 0, 0o755, 0, 0, "", 0, "usr/bin/", 2048),
    Entry("big", Kind.FILE, 5 << 33, 0o600, 2**40, 7, "", -5, "big", 10**12),  # past 32 bits
    Entry("caf\u00e9/\udcff", Kind.SYMLINK, 0, 0o777, 1, 1, "\u00e9t\u00e9", 3, "x", 4),
    Entry("gone", Kind.WHITEOUT, 0, 0, 0, 0, "", 0, ".wh.gone", 99),
]


def _columns(entries: list[Entry]) -> tuple[list[object], ...]:
    return tuple(list(column) for column in zip(*map(LayerCache.record, entries), strict=True))


def test_packed_payload_loads_as_the_records(tmp_path: Path) -> None:
    many = ENTRIES * 300  # past a flush of the pending columns (FLUSH entries)
    assert len(many) > 2 * PackedEntries.FLUSH
    packed = PackedEntries()
    for e in many[:700]:
        packed.add(e)
    packed.add_batch(_Batch(many[700:1100]))  # a batch between single entries
    for e in many[1100:]:
        packed.add(e)
    assert packed.count == len(many)
    assert marshal.loads(zlib.decompress(packed.payload())) == _columns(many)
    cache = LayerCache(tmp_path)
    key = "sha256:" + "a" * 64
    cache.store_entries(key, packed.compress())
    assert cache.load_entries(key) == [LayerCache.record(e) for e in many]
    assert cache.load_columns(key) == list(_columns(many))


class _Batch:
    """The columns of an ``EntryBatch`` (what ``LayerCache.columns`` reads) from entries."""

    def __init__(self, entries: list[Entry]) -> None:
        self.paths = [e.path for e in entries]
        self.kinds = [e.kind for e in entries]
        self.sizes = [e.size for e in entries]
        self.modes = [e.mode for e in entries]
        self.uids = [e.uid for e in entries]
        self.gids = [e.gid for e in entries]
        self.links = [e.linkname for e in entries]
        self.mtimes = [e.mtime for e in entries]
        self.names = [e.raw_name for e in entries]
        self.offsets = [e.offset for e in entries]

    def __len__(self) -> int:
        return len(self.paths)


def test_entry_list_payload_is_the_packed_one_byte_for_byte() -> None:
    packed, listed = PackedEntries(), EntryList()
    entries = ENTRIES * 300
    for e in entries[:800]:
        packed.add(e)
        listed.add(e)
    packed.add_batch(_Batch(entries[800:]))  # type: ignore[arg-type]
    listed.add_batch(_Batch(entries[800:]))  # type: ignore[arg-type]
    assert listed.columns() == list(_columns(entries))
    assert listed.payload() == packed.payload()
    assert listed.compress().payload() == packed.compress().payload()
    assert EntryList().payload() == PackedEntries().payload()


def test_empty_layer(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path)
    key = "sha256:" + "b" * 64
    cache.store_entries(key, PackedEntries().compress())
    assert cache.load_entries(key) == []
    assert cache.load_columns(key) == [[] for _ in range(10)]


def test_well_framed_columns_of_the_wrong_shape_are_misses(tmp_path: Path) -> None:
    # each shape sits in a properly framed payload (its checksum matches): only the shape
    # check stands between it and the visitors
    cache = LayerCache(tmp_path)
    good = _columns(ENTRIES[:1] * 2)

    def but(i: int, column: object) -> tuple[object, ...]:
        return (*good[:i], column, *good[i + 1 :])

    bad = [
        good[:9],  # a column short
        (*good, [0, 0]),  # a column more
        but(2, ["1234", 1234]),  # a size as text
        but(2, [True, 1234]),  # a bool is not an int here
        but(1, [0, 99]),  # no such kind
        but(1, [0, -1]),
        but(5, [0]),  # a column shorter than the others
        but(0, tuple(good[0])),  # a column not a list
        list(good),  # not a tuple
        [LayerCache.record(ENTRIES[0])],  # the records of the format before
    ]
    key = "sha256:" + "c" * 64
    cache.store_entries(key, good)
    assert cache.load_entries(key) == [LayerCache.record(ENTRIES[0])] * 2
    for shape in bad:
        cache.store_entries(key, shape)
        assert cache.load_entries(key) is None, shape


class _Counting:
    """A store without ``exists``: every question is a read."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, ...], bytes] = {}
        self.reads: list[tuple[str, ...]] = []

    def read(self, parts: tuple[str, ...]) -> bytes | None:
        self.reads.append(parts)
        return self.data.get(parts)

    def write(self, parts: tuple[str, ...], data: bytes) -> None:
        self.data[parts] = data


def test_has_result_asks_the_store_without_reading_the_record(tmp_path: Path) -> None:
    key = "sha256:" + "d" * 64
    cache = LayerCache(tmp_path)
    assert not cache.has_result("sbom", "1", key)
    cache.store_result("sbom", "1", key, {"packages": ["x"] * 1000})
    reads: list[tuple[str, ...]] = []
    real_read = cache.store.read
    cache.store.read = lambda parts: reads.append(parts) or real_read(parts)  # type: ignore[method-assign]
    assert cache.has_result("sbom", "1", key) and not cache.has_result("sbom", "2", key)
    assert reads == []  # a directory store answers from the file's presence
    # a store that can only read: the record is loaded and checked (a bad one is no result)
    plain = LayerCache(tmp_path / "plain", store=_Counting())
    plain.store_result("sbom", "1", key, {"packages": []})
    assert plain.has_result("sbom", "1", key) and plain.store.reads
    only = next(iter(plain.store.data))
    plain.store.data[only] = plain.store.data[only][:-3]  # torn
    assert not plain.has_result("sbom", "1", key)


def test_an_older_format_left_behind_is_removed(tmp_path: Path) -> None:
    """Records are read only in their own format: an upgrade's old directory for this Python
    goes; another Python's cache and anything else stay."""
    import re

    from imagewise.cache import FORMAT

    number, python = re.fullmatch(r"(\d+)-py(\d+)", FORMAT).groups()  # type: ignore[union-attr]
    older = tmp_path / f"{int(number) - 1}-py{python}"
    other_python = tmp_path / f"{int(number) - 1}-py{int(python) + 1}"
    newer = tmp_path / f"{int(number) + 1}-py{python}"
    mine = tmp_path / "notes"
    for d in (older, other_python, newer, mine):
        (d / "entries").mkdir(parents=True)
        (d / "entries" / "x").write_bytes(b"record")
    LayerCache(tmp_path)
    assert not older.exists()
    assert other_python.exists() and newer.exists() and mine.exists()
    LayerCache(tmp_path / "absent")  # no directory yet: nothing to do, no error
    shop = tmp_path / "shop"
    (shop / older.name).mkdir(parents=True)
    LayerCache(shop, store=_Counting())  # a store of its own: the directory is not looked at
    assert (shop / older.name).exists()
