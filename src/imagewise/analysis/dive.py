"""dive 0.13 compatible efficiency figures, computed the way dive computes them.

dive builds one file tree per layer (every tar entry, parents created implicitly with empty
metadata, ``.wh..wh..*`` markers dropped), then walks each layer tree depth first, children
before parents, names sorted, visiting *leaves* only, and keeps per path:

* ``cumulative``: the sum of the sizes seen at that path across layers;
* ``minimum``: the smallest size seen there.

A leaf's size is its tar header size, except for a whiteout (``.wh.NAME``): it looks ``NAME`` up
in the layers below stacked together; a directory counts the sum of every node under it, a file
counts 0. A whiteout of a path that does not exist below makes dive stop visiting the rest of
that layer (the error is only logged) and leaves a path record with minimum -1 and nothing
else, which lowers the score's numerator by one byte. Those quirks are reproduced on purpose.

``efficiency = sum(minimum) / sum(cumulative)`` (1.0 when nothing was seen);
``wasted_bytes`` = the cumulative size of every path seen in two or more layers;
``size_bytes`` = the sum of every layer's header sizes; ``user_size_bytes`` the same without
layer 0; ``user_wasted_percent = wasted_bytes / user_size_bytes``.
See ``docs/analysis.md`` for why this over-counts and what ``reclaimable_bytes`` fixes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from imagewise.layers.model import Entry, Kind, Visitor
from imagewise.record import Record

if TYPE_CHECKING:
    from imagewise.sources.base import Image, Layer

# Kind's members as plain module names: ``Kind.X`` is an enum descriptor call on every use
_DIR, _OPAQUE, _WHITEOUT = Kind.DIR, Kind.OPAQUE, Kind.WHITEOUT

WH = ".wh."

# A tree node is either an ``int`` (a childless, non-directory node of that size) or a list
# ``[size, is_dir, children]`` where ``children`` is a dict name -> node (possibly empty).
Node = Any


class InefficientFile(Record):
    __slots__ = (  # noqa: RUF023 - in field order
        "path",  # absolute, as dive prints it: "/root/saved.txt"
        "count",  # how many layers hold a leaf at this path
        "wasted_bytes",  # dive's cumulative size over those layers
    )

    def __init__(self, path: str, count: int, wasted_bytes: int) -> None:
        self.path = path
        self.count = count
        self.wasted_bytes = wasted_bytes

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "count": self.count, "wasted_bytes": self.wasted_bytes}


class DiveFigures(Record):
    __slots__ = (  # noqa: RUF023 - in field order
        "efficiency",
        "wasted_bytes",
        "user_wasted_percent",
        "size_bytes",
        "user_size_bytes",
        "layer_sizes",
        "layer_files",  # nodes in dive's layer tree (its per-layer file count)
        "inefficient_files",
    )

    def __init__(self, efficiency: float, wasted_bytes: int, user_wasted_percent: float,
                 size_bytes: int, user_size_bytes: int, layer_sizes: tuple[int, ...],
                 layer_files: tuple[int, ...], inefficient_files: tuple[InefficientFile, ...]
                 ) -> None:
        self.efficiency = efficiency
        self.wasted_bytes = wasted_bytes
        self.user_wasted_percent = user_wasted_percent
        self.size_bytes = size_bytes
        self.user_size_bytes = user_size_bytes
        self.layer_sizes = layer_sizes
        self.layer_files = layer_files
        self.inefficient_files = inefficient_files

    def to_json(self) -> dict[str, Any]:
        return {
            "efficiency": self.efficiency,
            "wasted_bytes": self.wasted_bytes,
            "user_wasted_percent": _json_float(self.user_wasted_percent),
            "size_bytes": self.size_bytes,
            "user_size_bytes": self.user_size_bytes,
        }


def _json_float(x: float) -> float | None:
    return None if math.isnan(x) or math.isinf(x) else x


def _lookup(root: list[Any], parts: list[str]) -> Node:
    node: Node = root
    for name in parts:
        if not isinstance(node, list):
            return None
        node = node[2].get(name)
        if node is None:
            return None
    return node


def _subtree_size(node: Node) -> int:
    if not isinstance(node, list):
        return int(node)
    total = node[0]
    stack = [node]
    while stack:
        for child in stack.pop()[2].values():
            if isinstance(child, list):
                total += child[0]
                if child[2]:
                    stack.append(child)
            else:
                total += child
    return int(total)


class DiveEfficiency(Visitor):
    """Single-pass visitor producing :class:`DiveFigures` (metadata only, never reads content)."""

    name = "dive-efficiency"
    version = "1"

    def __init__(self) -> None:
        self._stack: list[Any] = [0, True, {}]
        # path -> int (seen once: cumulative == minimum == that size) | None (minimum -1,
        # nothing else: dive's aborted whiteout) | [cumulative, minimum, count]
        self._paths: dict[str, Any] = {}
        self._matches: list[str] = []
        self._sizes: list[int] = []
        self._counts: list[int] = []
        self.figures: DiveFigures | None = None
        self._new_layer()

    def _new_layer(self) -> None:
        self._tree: list[Any] = [0, True, {}]
        self._dirs: dict[str, list[Any]] = {"": self._tree}  # parent path -> node, this layer
        self._wh_dirs: set[str] = set()  # directories with a whiteout somewhere below
        self._layer_size = 0
        self._layer_nodes = 0

    # -- the pass -------------------------------------------------------------------------
    def begin_image(self, image: Image) -> None:
        self.__init__()  # type: ignore[misc]

    def begin_layer(self, index: int, layer: Layer | None) -> None:
        self._new_layer()

    def _dir(self, path: str) -> list[Any]:
        """The node at ``path`` in this layer's tree, made a container (dive's AddPath parents)."""
        node = self._dirs.get(path)
        if node is not None:
            return node
        parent_path, _, name = path.rpartition("/")
        parent = self._dir(parent_path) if parent_path else self._tree
        children = parent[2]
        child = children.get(name)
        if child is None:
            child = [0, False, {}]
            children[name] = child
            self._layer_nodes += 1
        elif not isinstance(child, list):
            child = [child, False, {}]
            children[name] = child
        self._dirs[path] = child
        return child

    def visit(self, entry: Entry) -> None:
        path = entry.path
        kind = entry.kind
        if not path and kind is not _OPAQUE:
            return  # the root itself ("./"): dive skips "."
        self._layer_size += entry.size
        if kind is _OPAQUE:
            # the marker itself is dropped, but its directory is created if missing
            if path:
                self._dir(path)
            return
        parent_path, _, name = path.rpartition("/")
        parent = self._dirs.get(parent_path) or self._dir(parent_path)
        is_dir = kind is _DIR
        if kind is _WHITEOUT:
            name = WH + name
            p = parent_path
            while p not in self._wh_dirs:
                self._wh_dirs.add(p)
                if not p:
                    break
                p = p.rpartition("/")[0]
        children = parent[2]
        child = children.get(name)
        if isinstance(child, list):
            child[0] = entry.size
            child[1] = is_dir
            return
        if child is None:
            self._layer_nodes += 1
        if is_dir:
            child = [entry.size, True, {}]
            self._dirs[path] = child
        else:
            child = entry.size
        children[name] = child

    def end_layer(self, index: int, layer: Layer | None) -> None:
        self._sizes.append(self._layer_size)
        self._counts.append(self._layer_nodes)
        tree = self._tree
        self._score_layer(tree, tree if len(self._sizes) == 1 else self._stack)
        self._merge(tree)
        self._new_layer()

    def end_image(self, image: Image | None) -> None:
        self.figures = self.result()

    # -- dive's Efficiency(): leaves in sorted depth-first order --------------------------------
    def _score_layer(self, tree: list[Any], lower: list[Any]) -> None:
        paths = self._paths
        matches = self._matches
        stack: list[tuple[Any, dict[str, Node], str]] = [(iter(sorted(tree[2])), tree[2], "")]
        while stack:
            names, children, prefix = stack[-1]
            for name in names:
                node = children[name]
                if isinstance(node, list) and node[2]:
                    stack.append((iter(sorted(node[2])), node[2], f"{prefix}/{name}"))
                    break
                if name.startswith(WH):
                    key = f"{prefix}/{name[4:]}"
                    if key not in paths:
                        paths[key] = None
                    below = _lookup(lower, key[1:].split("/"))
                    if below is None:
                        return  # dive: "path does not exist" stops this layer's visit
                    size = _subtree_size(below) if isinstance(below, list) and below[1] else 0
                else:
                    key = f"{prefix}/{name}"
                    size = node[0] if isinstance(node, list) else node
                rec = paths.get(key)
                if rec is None:  # first sighting (or after an aborted-whiteout record)
                    paths[key] = size
                elif isinstance(rec, int):
                    paths[key] = [rec + size, min(rec, size), 2]
                    matches.append(key)
                else:
                    rec[0] += size
                    rec[1] = min(rec[1], size)
                    rec[2] += 1
            else:
                stack.pop()

    # -- dive's Stack(): this layer on top of the lower ones ------------------------------------
    def _merge(self, tree: list[Any]) -> None:
        """Same result as dive grafting every node children-first in name order: a whiteout
        removes its sibling, other nodes replace the metadata and keep the children. Subtrees
        new to the stack and free of whiteouts are adopted whole."""
        wh_dirs = self._wh_dirs
        work: list[tuple[list[Any], list[Any], str]] = [(self._stack, tree, "")]
        while work:
            lower, upper, path = work.pop()
            low = lower[2]
            for name in sorted(upper[2]):
                child = upper[2][name]
                if name.startswith(WH):
                    low.pop(name[4:], None)
                    continue
                cur = low.get(name)
                if not isinstance(child, list):
                    if isinstance(cur, list):
                        cur[0], cur[1] = child, False
                    else:
                        low[name] = child
                    continue
                child_path = f"{path}/{name}" if path else name
                if not child[2] or (cur is None and child_path not in wh_dirs):
                    if isinstance(cur, list):
                        cur[0], cur[1] = child[0], child[1]
                        if child[2]:
                            work.append((cur, child, child_path))
                    else:
                        low[name] = child if not child[2] or child_path not in wh_dirs else \
                            [child[0], child[1], {}]
                    continue
                if not isinstance(cur, list):
                    cur = [child[0], child[1], {}] if cur is None else [cur, False, {}]
                    low[name] = cur
                cur[0], cur[1] = child[0], child[1]
                work.append((cur, child, child_path))

    def result(self) -> DiveFigures:
        minimum = 0
        cumulative = 0
        for rec in self._paths.values():
            if rec is None:
                minimum -= 1
            elif isinstance(rec, int):
                minimum += rec
                cumulative += rec
            else:
                cumulative += rec[0]
                minimum += rec[1]
        efficiency = 1.0 if cumulative == 0 else minimum / cumulative
        records = [(key, self._paths[key]) for key in self._matches]
        # dive sorts ascending by cumulative size and prints from the end; for ties, the reverse
        # order of discovery (what dive's sort gives for short lists)
        order = sorted(range(len(records)), key=lambda i: (-records[i][1][0], -i))
        from imagewise.secrets.mask import redact_path

        files = tuple(InefficientFile(redact_path(records[i][0]), records[i][1][2],
                                      records[i][1][0]) for i in order)
        wasted = sum(f.wasted_bytes for f in files)
        size = sum(self._sizes)
        user = size - (self._sizes[0] if self._sizes else 0)
        if user:
            pct = wasted / user
        else:
            pct = math.nan if wasted == 0 else math.inf
        return DiveFigures(efficiency, wasted, pct, size, user, tuple(self._sizes),
                           tuple(self._counts), files)
