"""Helpers for the analysis tests: entry kinds, an entry builder and a one-call analysis."""

from __future__ import annotations

import io

from imagewise.analysis.attribution import LayerRef
from imagewise.analysis.dive import DiveEfficiency
from imagewise.analysis.model import ImageAnalysis
from imagewise.analysis.overlay import OverlayState
from imagewise.analysis.run import build_analysis
from imagewise.layers.model import Entry, Kind

F, D, W, O, L, S = Kind.FILE, Kind.DIR, Kind.WHITEOUT, Kind.OPAQUE, Kind.HARDLINK, Kind.SYMLINK


def e(path: str, kind: Kind = F, size: int = 0, data: bytes | None = None, **kw: object) -> Entry:
    if data is not None:
        size = len(data)
        return Entry(path, kind, size, _opener=lambda: io.BytesIO(data), **kw)  # type: ignore[arg-type]
    return Entry(path, kind, size, **kw)  # type: ignore[arg-type]


def analyse(
    layers: list[list[Entry]], commands: list[str] | None = None, hash_min_bytes: int = 64 * 1024
) -> ImageAnalysis:
    dive, over = DiveEfficiency(), OverlayState(hash_min_bytes)
    for i, entries in enumerate(layers):
        for v in (dive, over):
            v.begin_layer(i, None)
        for entry in entries:
            for v in (dive, over):
                v.visit(entry)
        for v in (dive, over):
            v.end_layer(i, None)
    commands = commands or [f"/bin/sh -c step {i}" for i in range(len(layers))]
    refs = [LayerRef(i, f"sha256:{i:064x}", c) for i, c in enumerate(commands)]
    a = build_analysis("test", "sha256:" + "0" * 64, dive, over, refs)
    written = sum(x.size for layer in layers for x in layer if x.kind is Kind.FILE)
    assert a.final_bytes + a.reclaimable_bytes == written  # the invariant, on every case
    return a
