"""The result of analysing an image's layers: frozen values the renderers take."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from imagewise.analysis.dive import DiveFigures, _json_float
from imagewise.findings import Finding

SCHEMA = "imagewise/analysis/v1"


@dataclass(frozen=True, slots=True)
class LayerReport:
    index: int
    digest: str
    diff_id: str
    created_by: str
    media_type: str
    compressed_size: int
    size_bytes: int  # as dive counts it: the sum of the tar header sizes
    entries: int  # tar entries
    dive_files: int  # nodes in dive's tree of this layer (the count dive shows)
    files: int  # regular files
    reclaimable_bytes: int  # bytes this layer holds that the final filesystem does not show

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index, "digest": self.digest, "diff_id": self.diff_id,
            "created_by": self.created_by, "media_type": self.media_type,
            "compressed_size": self.compressed_size, "size_bytes": self.size_bytes,
            "entries": self.entries, "dive_files": self.dive_files, "files": self.files,
            "reclaimable_bytes": self.reclaimable_bytes,
        }


@dataclass(frozen=True, slots=True)
class FileStat:
    path: str
    size: int
    layer: int

    def to_json(self) -> dict[str, Any]:
        return {"path": "/" + self.path, "bytes": self.size, "layer_index": self.layer}


@dataclass(frozen=True, slots=True)
class TreeNode:
    """A directory of the final filesystem, small entries folded into one ``(N more)`` node."""

    name: str
    size: int
    files: int
    children: tuple[TreeNode, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n": self.name, "s": self.size, "f": self.files}
        if self.children:
            out["c"] = [c.to_json() for c in self.children]
        return out


@dataclass(frozen=True, slots=True)
class ImageAnalysis:
    reference: str
    digest: str
    dive: DiveFigures
    reclaimable_bytes: int
    final_bytes: int  # bytes of file content in the final filesystem
    final_files: int
    layers: tuple[LayerReport, ...]
    waste: tuple[Finding, ...]  # sorted by bytes saved, largest first
    largest_files: tuple[FileStat, ...]
    #: builds the size tree of the final filesystem (only the HTML reports draw it); cached
    tree_builder: Callable[[], TreeNode] = field(repr=False, compare=False)
    missing_whiteouts: int = 0

    @property
    def efficiency(self) -> float:
        return self.dive.efficiency

    @property
    def tree(self) -> TreeNode:
        return self.tree_builder()

    def to_json(self) -> dict[str, Any]:
        d = self.dive
        return {
            "schema": SCHEMA,
            "image": self.reference,
            "digest": self.digest,
            "efficiency": d.efficiency,
            "wasted_bytes": d.wasted_bytes,
            "user_wasted_percent": _json_float(d.user_wasted_percent),
            "size_bytes": d.size_bytes,
            "user_size_bytes": d.user_size_bytes,
            "reclaimable_bytes": self.reclaimable_bytes,
            "final_bytes": self.final_bytes,
            "final_files": self.final_files,
            "layers": [layer.to_json() for layer in self.layers],
            "inefficient_files": [f.to_json() for f in d.inefficient_files],
            "leftovers": [finding_json(f) for f in self.waste],
            "largest_files": [f.to_json() for f in self.largest_files],
        }


def finding_json(f: Finding) -> dict[str, Any]:
    out = f.to_json()
    for k, v in f.extra.items():
        out.setdefault(k, v)
    return out
