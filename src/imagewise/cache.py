"""The layer result cache: per-layer pass results keyed by diff_id and analyzer version.

A layer's analysis depends only on its bytes (diff_id) and the analyzer's version, so an image
that shares base layers with one already checked reuses them. Two kinds of records are stored
under ``platformdirs.user_cache_dir("imagewise")/layers``:

* ``entries/<diff_id>``: every entry's header fields, so metadata-only visitors can be replayed;
* ``results/<visitor>-<version>/<diff_id>``: what a content-reading visitor derived
  (``Visitor.layer_result``), handed back through ``Visitor.restore_layer``.

Writes go to a temporary file and are renamed into place, so concurrent runs never see a torn
record; a record that fails to load is treated as a miss and rewritten.
"""

from __future__ import annotations

import json
import marshal
import os
import sys
import zlib
from pathlib import Path
from typing import Any

from imagewise.fileio import atomic_write
from imagewise.layers.model import Entry, Kind

FORMAT = f"1-py{sys.version_info[0]}{sys.version_info[1]}"
_KINDS = list(Kind)
_KIND_INDEX = {k: i for i, k in enumerate(_KINDS)}


def default_dir() -> Path:
    env = os.environ.get("IMAGEWISE_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("imagewise")) / "layers"


class LayerCache:
    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or default_dir()) / FORMAT
        self.hits = 0
        self.misses = 0

    # --- entries ---------------------------------------------------------------------------
    @staticmethod
    def record(e: Entry) -> tuple[Any, ...]:
        return (e.path, _KIND_INDEX[e.kind], e.size, e.mode, e.uid, e.gid, e.linkname, e.mtime,
                e.raw_name, e.offset)

    @staticmethod
    def replay(rec: tuple[Any, ...]) -> Entry:
        return Entry(rec[0], _KINDS[rec[1]], rec[2], rec[3], rec[4], rec[5], rec[6], rec[7], rec[8],
                     rec[9])

    def _path(self, *parts: str) -> Path:
        return self.root.joinpath(*[p.replace(":", "_").replace("/", "_") for p in parts])

    def load_entries(self, key: str) -> list[tuple[Any, ...]] | None:
        try:
            data = self._path("entries", key).read_bytes()
            out = marshal.loads(zlib.decompress(data))
            return out if isinstance(out, list) else None
        except (OSError, ValueError, EOFError, TypeError, zlib.error):
            return None

    def store_entries(self, key: str, records: list[tuple[Any, ...]]) -> None:
        self._write(self._path("entries", key), zlib.compress(marshal.dumps(records), 1))

    # --- visitor results -------------------------------------------------------------------
    def load_result(self, visitor: str, version: str, key: str) -> tuple[bool, Any]:
        try:
            return True, json.loads(self._path("results", f"{visitor}-{version}", key).read_bytes())
        except (OSError, ValueError):
            return False, None

    def store_result(self, visitor: str, version: str, key: str, value: Any) -> None:
        try:
            data = json.dumps(value, separators=(",", ":")).encode()
        except (TypeError, ValueError):
            return  # not JSON-able: not cacheable, not an error
        self._write(self._path("results", f"{visitor}-{version}", key), data)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(str(path), mode=None) as f:
                f.write(data)
        except OSError:
            pass  # a cache that cannot be written only costs time
