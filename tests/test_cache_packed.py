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


def test_packed_payload_loads_as_the_records(tmp_path: Path) -> None:
    packed = PackedEntries()
    for e in ENTRIES:
        packed.add(e)
    expected = [LayerCache.record(e) for e in ENTRIES]
    assert marshal.loads(zlib.decompress(packed.payload())) == expected
    cache = LayerCache(tmp_path)
    key = "sha256:" + "a" * 64
    cache.store_entries(key, packed.compress())
    assert cache.load_entries(key) == expected


def test_entry_list_payload_is_the_packed_one_byte_for_byte() -> None:
    packed, listed = PackedEntries(), EntryList()
    for e in ENTRIES * 3:
        packed.add(e)
        listed.add(e)
    assert listed.records() == [LayerCache.record(e) for e in ENTRIES * 3]
    assert listed.payload() == packed.payload()
    assert listed.compress().payload() == packed.compress().payload()
    assert EntryList().payload() == PackedEntries().payload()


def test_empty_layer(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path)
    key = "sha256:" + "b" * 64
    cache.store_entries(key, PackedEntries().compress())
    assert cache.load_entries(key) == []


def test_well_framed_records_of_the_wrong_shape_are_misses(tmp_path: Path) -> None:
    # each record sits in a properly framed payload (its checksum matches): only the shape
    # check stands between it and the visitors
    cache = LayerCache(tmp_path)
    good = LayerCache.record(ENTRIES[0])
    bad = [
        good[:9],  # a field short
        (*good, 0),  # a field more
        (good[0], good[1], "1234", *good[3:]),  # a size as text
        (good[0], good[1], True, *good[3:]),  # a bool is not an int here
        (good[0], 99, *good[2:]),  # no such kind
        list(good),  # not a tuple
    ]
    key = "sha256:" + "c" * 64
    cache.store_entries(key, [good, good])
    assert cache.load_entries(key) == [good, good]
    for rec in bad:
        cache.store_entries(key, [good, rec])
        assert cache.load_entries(key) is None, rec


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
