"""The layer cache's packed entry records read back exactly as the records themselves."""

from __future__ import annotations

import marshal
import zlib
from pathlib import Path

from imagewise.cache import LayerCache, PackedEntries
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


def test_empty_layer(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path)
    key = "sha256:" + "b" * 64
    cache.store_entries(key, PackedEntries().compress())
    assert cache.load_entries(key) == []
