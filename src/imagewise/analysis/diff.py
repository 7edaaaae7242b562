"""Compare two images: files added, removed and changed in the final filesystem, and the size of
each layer side by side (layers with the same diff_id are shared)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imagewise.analysis.dive import DiveEfficiency
from imagewise.analysis.overlay import Node, OverlayState
from imagewise.progress import NULL, Reporter
from imagewise.units import format_size

if TYPE_CHECKING:
    from imagewise.sources.base import Image


@dataclass(frozen=True, slots=True)
class FileState:
    kind: str
    size: int
    mode: int
    uid: int
    gid: int
    digest: str
    link: str
    layer: int

    @classmethod
    def of(cls, node: Node, size: int) -> FileState:
        return cls(
            node.kind.value,
            size,
            node.mode & 0o7777,
            node.uid,
            node.gid,
            node.digest.hex() if node.digest else "",
            node.link or "",
            node.layer,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "bytes": self.size,
            "mode": f"{self.mode:04o}",
            "uid": self.uid,
            "gid": self.gid,
            "layer_index": self.layer,
        }
        if self.digest:
            out["xxh3_128"] = self.digest
        if self.link:
            out["link"] = self.link
        return out


@dataclass(frozen=True, slots=True)
class FileChange:
    path: str
    a: FileState | None
    b: FileState | None

    @property
    def sign(self) -> str:
        return "+" if self.a is None else "-" if self.b is None else "~"

    @property
    def delta(self) -> int:
        return (self.b.size if self.b else 0) - (self.a.size if self.a else 0)

    def describe(self) -> str:
        if self.a is None and self.b is not None:
            return f"{self.b.kind} {format_size(self.b.size)} (layer {self.b.layer})"
        if self.b is None and self.a is not None:
            return f"{self.a.kind} {format_size(self.a.size)}"
        assert self.a is not None and self.b is not None
        what = []
        if self.a.kind != self.b.kind:
            what.append(f"{self.a.kind} -> {self.b.kind}")
        if self.a.size != self.b.size or self.a.digest != self.b.digest:
            what.append(f"content {format_size(self.a.size)} -> {format_size(self.b.size)}")
        if self.a.mode != self.b.mode:
            what.append(f"mode {self.a.mode:04o} -> {self.b.mode:04o}")
        if (self.a.uid, self.a.gid) != (self.b.uid, self.b.gid):
            what.append(f"owner {self.a.uid}:{self.a.gid} -> {self.b.uid}:{self.b.gid}")
        if self.a.link != self.b.link:
            what.append(f"link {self.a.link} -> {self.b.link}")
        return ", ".join(what)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": "/" + self.path,
            "change": {"+": "added", "-": "removed", "~": "changed"}[self.sign],
            "delta_bytes": self.delta,
            "a": self.a.to_json() if self.a else None,
            "b": self.b.to_json() if self.b else None,
        }


@dataclass(frozen=True, slots=True)
class LayerRow:
    index: int
    in_a: bool
    in_b: bool
    a_size: int
    b_size: int
    same: bool  # same diff_id at this position
    created_by: str

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "a_size_bytes": self.a_size if self.in_a else None,
            "b_size_bytes": self.b_size if self.in_b else None,
            "delta_bytes": self.b_size - self.a_size,
            "same": self.same,
            "created_by": self.created_by,
        }


@dataclass(frozen=True, slots=True)
class ImageDiff:
    a_reference: str
    b_reference: str
    a_bytes: int
    b_bytes: int
    layers: tuple[LayerRow, ...]
    added: tuple[FileChange, ...]
    removed: tuple[FileChange, ...]
    changed: tuple[FileChange, ...]

    @property
    def size_delta(self) -> int:
        return self.b_bytes - self.a_bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.a_reference,
            "b": self.b_reference,
            "a_bytes": self.a_bytes,
            "b_bytes": self.b_bytes,
            "delta_bytes": self.size_delta,
            "layers": [r.to_json() for r in self.layers],
            "added": [c.to_json() for c in self.added],
            "removed": [c.to_json() for c in self.removed],
            "changed": [c.to_json() for c in self.changed],
        }


def _states(overlay: OverlayState) -> dict[str, FileState]:
    return {path: FileState.of(node, size) for path, node, size in overlay.files()}


def _scan(image: Image, reporter: Reporter, verify: bool) -> tuple[DiveEfficiency, OverlayState]:
    from imagewise.layers.passes import run_pass

    dive, overlay = (
        DiveEfficiency(),
        OverlayState(hash_min_bytes=0, defer=False),
    )  # hash all, now: detect edits
    run_pass(image, [dive, overlay], reporter, verify=verify, diff_ids=verify)
    return dive, overlay


def diff_images(a: Image, b: Image, reporter: Reporter = NULL, verify: bool = True) -> ImageDiff:
    a_dive, a_over = _scan(a, reporter, verify)
    b_dive, b_over = _scan(b, reporter, verify)
    return compare(
        a.reference,
        b.reference,
        a_dive,
        a_over,
        b_dive,
        b_over,
        [str(x.diff_id or x.digest) for x in a.layers],
        [str(x.diff_id or x.digest) for x in b.layers],
        [x.created_by for x in b.layers] or [x.created_by for x in a.layers],
    )


def compare(
    a_ref: str,
    b_ref: str,
    a_dive: DiveEfficiency,
    a_over: OverlayState,
    b_dive: DiveEfficiency,
    b_over: OverlayState,
    a_ids: list[str],
    b_ids: list[str],
    created_by: list[str],
) -> ImageDiff:
    from imagewise.secrets.mask import redact, redact_path

    fa, fb = _states(a_over), _states(b_over)
    added = tuple(FileChange(redact_path(p), None, fb[p]) for p in sorted(fb.keys() - fa.keys()))
    removed = tuple(FileChange(redact_path(p), fa[p], None) for p in sorted(fa.keys() - fb.keys()))
    changed = tuple(
        FileChange(redact_path(p), fa[p], fb[p])
        for p in sorted(fa.keys() & fb.keys())
        if _differs(fa[p], fb[p])
    )
    sa = (a_dive.figures or a_dive.result()).layer_sizes
    sb = (b_dive.figures or b_dive.result()).layer_sizes
    n = max(len(sa), len(sb))
    rows = tuple(
        LayerRow(
            i,
            i < len(sa),
            i < len(sb),
            sa[i] if i < len(sa) else 0,
            sb[i] if i < len(sb) else 0,
            i < len(a_ids) and i < len(b_ids) and a_ids[i] == b_ids[i],
            redact(created_by[i]) if i < len(created_by) else "",
        )
        for i in range(n)
    )
    return ImageDiff(
        a_ref,
        b_ref,
        sum(s.size for s in fa.values()),
        sum(s.size for s in fb.values()),
        rows,
        added,
        removed,
        changed,
    )


def _differs(x: FileState, y: FileState) -> bool:
    return (x.kind, x.size, x.mode, x.uid, x.gid, x.digest, x.link) != (
        y.kind,
        y.size,
        y.mode,
        y.uid,
        y.gid,
        y.digest,
        y.link,
    )
