"""File listings of an image: the merged filesystem, or what one layer changes.

The library side of ``imagewise files``: the CLI renders ``FileListing``; the web service can too.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imagewise import progress
from imagewise.errors import UsageError
from imagewise.layers.model import Kind

if TYPE_CHECKING:
    from imagewise.sources.base import Image

_TYPE_BITS = {
    Kind.FILE: stat.S_IFREG,
    Kind.HARDLINK: stat.S_IFREG,
    Kind.DIR: stat.S_IFDIR,
    Kind.SYMLINK: stat.S_IFLNK,
    Kind.CHAR: stat.S_IFCHR,
    Kind.BLOCK: stat.S_IFBLK,
    Kind.FIFO: stat.S_IFIFO,
}


@dataclass(frozen=True)
class FileRow:
    path: str
    kind: Kind
    size: int
    mode: int
    uid: int
    gid: int
    linkname: str = ""
    layer: int | None = None  # the layer that last set this path (merged listing)
    change: str = ""  # added / modified / deleted (single-layer listing)

    @property
    def permissions(self) -> str:
        """``ls -l`` style, e.g. ``drwxr-xr-x``."""
        return stat.filemode(_TYPE_BITS.get(self.kind, 0) | self.mode)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "path": self.path,
            "kind": self.kind.value,
            "size": self.size,
            "mode": f"{self.mode:04o}",
            "uid": self.uid,
            "gid": self.gid,
            "linkname": self.linkname or None,
        }
        if self.change:
            doc["change"] = self.change
        else:
            doc["layer"] = self.layer
        return doc


@dataclass(frozen=True)
class FileListing:
    reference: str
    digest: str
    platform: str
    layer: int | None  # None: the merged filesystem
    rows: tuple[FileRow, ...]

    def to_json(self, image: Image | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "reference": self.reference,
            "digest": self.digest,
            "platform": self.platform,
            "layer": None,
            "files": [r.to_json() for r in self.rows],
        }
        if self.layer is not None and image is not None:
            from imagewise.secrets.mask import redact

            lay = image.layers[self.layer]
            doc["layer"] = {
                "index": self.layer,
                "digest": str(lay.digest),
                "diff_id": str(lay.diff_id) if lay.diff_id else None,
                "created_by": redact(lay.created_by),
            }
        return doc


def layer_index(image: Image, n: int) -> int:
    """A layer number as given by a user (negative counts from the top), checked."""
    count = len(image.layers)
    i = n + count if n < 0 else n
    if not 0 <= i < count:
        raise UsageError(f"--layer {n}: the image has {count} layers (0..{count - 1})")
    return i


def list_files(
    image: Image,
    layer: int | None = None,
    reporter: progress.Reporter = progress.NULL,
    verify: bool = True,
) -> FileListing:
    """The merged filesystem (``layer=None``), or what layer ``layer`` adds/modifies/deletes."""
    from imagewise.layers.tree import TreeVisitor, layer_changes
    from imagewise.secrets.mask import redact_path as shown

    if layer is None:
        from imagewise.layers.passes import run_pass

        visitor = TreeVisitor()
        run_pass(image, [visitor], reporter, verify=verify, diff_ids=verify)
        rows = tuple(
            FileRow(shown(p), n.kind, n.size, n.mode, n.uid, n.gid, shown(n.linkname), n.layer)
            for p, n in visitor.tree.walk()
        )
        index = None
    else:
        index = layer_index(image, layer)
        changes = sorted(layer_changes(image, index), key=lambda c: c.path)
        rows = tuple(
            FileRow(
                shown(c.path),
                c.kind,
                c.size,
                c.mode,
                c.uid,
                c.gid,
                shown(c.linkname),
                change=c.change,
            )
            for c in changes
        )
    return FileListing(image.reference, str(image.digest), str(image.platform), index, rows)


_MARK = {"added": "+", "modified": "~", "deleted": "-"}


def _show(name: str) -> str:
    """A tar name for a terminal: control characters and bytes that are not UTF-8 escaped."""
    from imagewise.textsafe import safe

    return safe(name)


def render_table(listing: FileListing) -> str:
    """``ls -l``-like lines; a layer's changes are marked ``+`` added, ``~`` modified, ``-``
    deleted."""
    from imagewise.units import format_size

    lines = []
    for r in listing.rows:
        name = _show(r.path)
        if r.kind.value == "symlink":
            name = f"{name} -> {_show(r.linkname)}"
        elif r.kind.value == "hardlink":
            name = f"{name} link to {_show(r.linkname)}"
        owner = f"{r.uid}:{r.gid}"
        size = format_size(r.size) if r.kind.value == "file" else "-"
        mark = f"{_MARK.get(r.change, ' ')} " if listing.layer is not None else ""
        lines.append(f"{mark}{r.permissions} {owner:>11} {size:>9}  {name}")
    return "\n".join(lines)
