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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from imagewise.layers.model import Entry, Kind, Visitor

if TYPE_CHECKING:
    from imagewise.sources.base import Image, Layer

WH = ".wh."

# A tree node is either an ``int`` (a childless, non-directory node of that size) or a list
# ``[size, is_dir, children]`` where ``children`` is a dict name -> node (possibly empty).
Node = Any


@dataclass(frozen=True, slots=True)
class InefficientFile:
    path: str  # absolute, as dive prints it: "/root/saved.txt"
    count: int  # how many layers hold a leaf at this path
    wasted_bytes: int  # dive's cumulative size over those layers

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "count": self.count, "wasted_bytes": self.wasted_bytes}


@dataclass(frozen=True, slots=True)
class DiveFigures:
    efficiency: float
    wasted_bytes: int
    user_wasted_percent: float
    size_bytes: int
    user_size_bytes: int
    layer_sizes: tuple[int, ...]
    layer_files: tuple[int, ...]  # nodes in dive's layer tree (its per-layer file count)
    inefficient_files: tuple[InefficientFile, ...]

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


def _get(children: dict[str, Node], name: str) -> Node:
    return children.get(name)


def _add_path(root: list[Any], parts: list[str], size: int, is_dir: bool) -> None:
    """dive's AddPath: create missing parents with empty metadata, set the last node's info."""
    node = root
    last = len(parts) - 1
    for i, name in enumerate(parts):
        children = node[2]
        child = children.get(name)
        if i == last:
            if isinstance(child, list):
                child[0] = size
                child[1] = is_dir
            else:
                children[name] = [size, True, {}] if is_dir else size
            return
        if child is None:
            child = [0, False, {}]
            children[name] = child
        elif not isinstance(child, list):
            child = [child, False, {}]
            children[name] = child
        node = child


def _lookup(root: list[Any], parts: list[str]) -> Node:
    node: Node = root
    for name in parts:
        if not isinstance(node, list):
            return None
        node = node[2].get(name)
        if node is None:
            return None
    return node


def _remove(root: list[Any], parts: list[str]) -> None:
    parent = _lookup(root, parts[:-1])
    if isinstance(parent, list):
        parent[2].pop(parts[-1], None)


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
    return total


def _walk_child_first(node: list[Any], prefix: list[str],
                      fn: Callable[[list[str], str, Node], bool]) -> bool:
    """Visit every node under ``node`` children first, names sorted; stop when fn returns False."""
    children = node[2]
    for name in sorted(children):
        child = children[name]
        prefix.append(name)
        if isinstance(child, list) and child[2]:
            if not _walk_child_first(child, prefix, fn):
                prefix.pop()
                return False
        ok = fn(prefix, name, child)
        prefix.pop()
        if not ok:
            return False
    return True


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
        self._tree: list[Any] = [0, True, {}]
        self._layer_size = 0
        self.figures: DiveFigures | None = None

    # -- the pass -------------------------------------------------------------------------
    def begin_image(self, image: Image) -> None:
        self.__init__()  # type: ignore[misc]

    def begin_layer(self, index: int, layer: Layer | None) -> None:
        self._tree = [0, True, {}]
        self._layer_size = 0

    def visit(self, entry: Entry) -> None:
        path = entry.path
        if not path and entry.kind is not Kind.OPAQUE:
            return  # the root itself ("./"): dive skips "."
        self._layer_size += entry.size
        if not path:
            return  # an opaque marker at the root: counted, but adds no node
        parts = path.split("/")
        kind = entry.kind
        if kind is Kind.OPAQUE:
            # the marker itself is dropped, but its parent directory is created if missing
            node = self._tree
            for name in parts:
                child = node[2].get(name)
                if child is None:
                    child = [0, False, {}]
                    node[2][name] = child
                elif not isinstance(child, list):
                    child = [child, False, {}]
                    node[2][name] = child
                node = child
            return
        if kind is Kind.WHITEOUT:
            parts[-1] = WH + parts[-1]
            _add_path(self._tree, parts, entry.size, False)
            return
        _add_path(self._tree, parts, entry.size, kind is Kind.DIR)

    def end_layer(self, index: int, layer: Layer | None) -> None:
        self._sizes.append(self._layer_size)
        tree = self._tree
        lower = tree if len(self._sizes) == 1 else self._stack
        self._score_layer(tree, lower)
        self._counts.append(self._stack_layer(tree))
        self._tree = [0, True, {}]

    def end_image(self, image: Image | None) -> None:
        self.figures = self.result()

    # -- dive's Efficiency() ----------------------------------------------------------------
    def _score_layer(self, tree: list[Any], lower: list[Any]) -> None:
        paths = self._paths
        matches = self._matches

        def leaf(prefix: list[str], name: str, node: Node) -> bool:
            if isinstance(node, list) and node[2]:
                return True  # not a leaf
            whiteout = name.startswith(WH)
            if whiteout:
                parts = prefix[:-1] + [name[len(WH):]]
                key = "/" + "/".join(parts)
                if key not in paths:
                    paths[key] = None
                below = _lookup(lower, parts)
                if below is None:
                    return False  # dive: "path does not exist" aborts this layer's visit
                size = _subtree_size(below) if isinstance(below, list) and below[1] else 0
            else:
                key = "/" + "/".join(prefix)
                size = node[0] if isinstance(node, list) else node
            rec = paths.get(key)
            if rec is None:  # first sighting (or after an aborted-whiteout record)
                paths[key] = size
                return True
            if isinstance(rec, int):
                paths[key] = [rec + size, min(rec, size), 2]
                matches.append(key)
                return True
            rec[0] += size
            if size < rec[1]:
                rec[1] = size
            rec[2] += 1
            return True

        _walk_child_first(tree, [], leaf)

    def _stack_layer(self, tree: list[Any]) -> int:
        """Stack the layer onto the lower ones; returns its node count (dive's file count)."""
        stack = self._stack
        count = 0

        def graft(prefix: list[str], name: str, node: Node) -> bool:
            nonlocal count
            count += 1
            if name.startswith(WH):
                _remove(stack, prefix[:-1] + [name[len(WH):]])
            elif isinstance(node, list):
                _add_path(stack, prefix, node[0], node[1])
            else:
                _add_path(stack, prefix, node, False)
            return True

        _walk_child_first(tree, [], graft)
        return count

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
        files = tuple(InefficientFile(records[i][0], records[i][1][2], records[i][1][0])
                      for i in order)
        wasted = sum(f.wasted_bytes for f in files)
        size = sum(self._sizes)
        user = size - (self._sizes[0] if self._sizes else 0)
        if user:
            pct = wasted / user
        else:
            pct = math.nan if wasted == 0 else math.inf
        return DiveFigures(efficiency, wasted, pct, size, user, tuple(self._sizes),
                           tuple(self._counts), files)
