"""The result of analysing an image's layers: immutable values the renderers take."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from imagewise.analysis.dive import DiveFigures, InefficientFiles, _json_float
from imagewise.findings import Finding
from imagewise.record import Record


class LayerReport(Record):
    __slots__ = (  # noqa: RUF023 - in field order
        "index",
        "digest",
        "diff_id",
        "created_by",
        "media_type",
        "compressed_size",
        "size_bytes",  # as dive counts it: the sum of the tar header sizes
        "entries",  # tar entries
        "dive_files",  # nodes in dive's tree of this layer (the count dive shows)
        "files",  # regular files
        "reclaimable_bytes",  # bytes this layer holds that the final filesystem does not show
    )

    def __init__(
        self,
        index: int,
        digest: str,
        diff_id: str,
        created_by: str,
        media_type: str,
        compressed_size: int,
        size_bytes: int,
        entries: int,
        dive_files: int,
        files: int,
        reclaimable_bytes: int,
    ) -> None:
        self.index = index
        self.digest = digest
        self.diff_id = diff_id
        self.created_by = created_by
        self.media_type = media_type
        self.compressed_size = compressed_size
        self.size_bytes = size_bytes
        self.entries = entries
        self.dive_files = dive_files
        self.files = files
        self.reclaimable_bytes = reclaimable_bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "digest": self.digest,
            "diff_id": self.diff_id,
            "created_by": self.created_by,
            "media_type": self.media_type,
            "compressed_size": self.compressed_size,
            "size_bytes": self.size_bytes,
            "entries": self.entries,
            "dive_files": self.dive_files,
            "files": self.files,
            "reclaimable_bytes": self.reclaimable_bytes,
        }


class FileStat(Record):
    __slots__ = ("path", "size", "layer")  # noqa: RUF023

    def __init__(self, path: str, size: int, layer: int) -> None:
        self.path = path
        self.size = size
        self.layer = layer

    def to_json(self) -> dict[str, Any]:
        return {"path": "/" + self.path, "bytes": self.size, "layer_index": self.layer}


class TreeNode(Record):
    """A directory of the final filesystem, small entries folded into one ``(N more)`` node."""

    __slots__ = ("name", "size", "files", "children")  # noqa: RUF023

    def __init__(
        self, name: str, size: int, files: int, children: tuple[TreeNode, ...] = ()
    ) -> None:
        self.name = name
        self.size = size
        self.files = files
        self.children = children

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n": self.name, "s": self.size, "f": self.files}
        if self.children:
            out["c"] = [c.to_json() for c in self.children]
        return out


class ImageAnalysis(Record):
    __slots__ = (  # noqa: RUF023 - in field order
        "reference",
        "digest",
        "dive",
        "reclaimable_bytes",
        "final_bytes",  # bytes of file content in the final filesystem
        "final_files",
        "layers",
        "waste",  # sorted by bytes saved, largest first
        "largest_files",
        # builds the size tree of the final filesystem (only the HTML reports draw it); cached
        "tree_builder",
        "missing_whiteouts",
    )
    _uncompared = _unshown = ("tree_builder",)

    def __init__(
        self,
        reference: str,
        digest: str,
        dive: DiveFigures,
        reclaimable_bytes: int,
        final_bytes: int,
        final_files: int,
        layers: tuple[LayerReport, ...],
        waste: tuple[Finding, ...],
        largest_files: tuple[FileStat, ...],
        tree_builder: Callable[[], TreeNode],
        missing_whiteouts: int = 0,
    ) -> None:
        self.reference = reference
        self.digest = digest
        self.dive = dive
        self.reclaimable_bytes = reclaimable_bytes
        self.final_bytes = final_bytes
        self.final_files = final_files
        self.layers = layers
        self.waste = waste
        self.largest_files = largest_files
        self.tree_builder = tree_builder
        self.missing_whiteouts = missing_whiteouts

    @property
    def efficiency(self) -> float:
        return self.dive.efficiency

    @property
    def tree(self) -> TreeNode:
        return self.tree_builder()

    def to_json(self, lazy: bool = False) -> dict[str, Any]:
        """The JSON document; ``lazy``: its inefficient files as a ``jsonstream.Lazy`` (made
        while ``jsonstream.write`` writes them, for images with very many)."""
        d = self.dive
        rows = d.inefficient_files
        files: Any = (
            rows.json_items() if isinstance(rows, InefficientFiles) else (f.to_json() for f in rows)
        )
        if lazy:
            from imagewise.jsonstream import Lazy

            render = rows.json_render if isinstance(rows, InefficientFiles) else None
            files = Lazy(files, flat=True, render=render)  # FileStat.to_json: dicts of scalars
        else:
            files = list(files)
        return {
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
            "inefficient_files": files,
            "leftovers": [finding_json(f) for f in self.waste],
            "largest_files": [f.to_json() for f in self.largest_files],
        }


def finding_json(f: Finding) -> dict[str, Any]:
    out = f.to_json()
    for k, v in f.extra.items():
        out.setdefault(k, v)
    return out
