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
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

from imagewise.layers.model import Entry, Kind, Visitor
from imagewise.record import Record

if TYPE_CHECKING:
    from imagewise.archive.batch import EntryBatch
    from imagewise.sources.base import Image, Layer

# Kind's members as plain module names: ``Kind.X`` is an enum descriptor call on every use
_DIR, _OPAQUE, _WHITEOUT = Kind.DIR, Kind.OPAQUE, Kind.WHITEOUT

WH = ".wh."
_intern = sys.intern  # names repeat across directories and visitors (index.js, __init__.py)

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


class InefficientFiles(Sequence[InefficientFile]):
    """dive's inefficient files, largest first, made one at a time when read: an image with a
    million rewritten files keeps a compact tuple per path, not a record and its path string.
    Compares equal to any sequence of the same :class:`InefficientFile` values."""

    __slots__ = ("_rows",)

    def __init__(self, rows: list[tuple[int, int, str, str, int]]) -> None:
        self._rows = rows  # (-cumulative, -order, directory, name, count), sorted

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, i: int) -> InefficientFile: ...

    @overload
    def __getitem__(self, i: slice) -> tuple[InefficientFile, ...]: ...

    def __getitem__(self, i: int | slice) -> InefficientFile | tuple[InefficientFile, ...]:
        if isinstance(i, slice):
            return tuple(_inefficient(row) for row in self._rows[i])
        return _inefficient(self._rows[i])

    def __iter__(self) -> Iterator[InefficientFile]:
        for path, row in _shown_paths(self._rows):
            yield InefficientFile(path, row[4], -row[0])

    def json_items(self) -> Iterator[dict[str, Any]]:
        """``InefficientFile.to_json()`` of each, made straight from the rows."""
        for path, row in _shown_paths(self._rows):
            yield {"path": path, "count": row[4], "wasted_bytes": -row[0]}

    def json_render(self, pad: str, inner: str, esc: Callable[[str], str]) -> Iterator[str]:
        """The text of each of :meth:`json_items` as ``json.dumps(item, indent=...)`` gives it
        with its keys at ``inner`` and its closing brace at ``pad`` (``jsonstream.Lazy``)."""
        template = (
            f'{{\n{inner}"path": %s,\n{inner}"count": %d,\n{inner}"wasted_bytes": %d\n{pad}}}'
        )
        for path, row in _shown_paths(self._rows):
            yield template % (esc(path), row[4], -row[0])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, InefficientFiles):
            return self._rows == other._rows
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"InefficientFiles({len(self)} paths)"


def _shown_paths(
    rows: list[tuple[int, int, str, str, int]],
) -> Iterator[tuple[str, tuple[int, int, str, str, int]]]:
    """Each row's path as dive prints it, any secret in it masked (``redact_path``), with the
    row. The quick pre-check is asked once per directory and once per name: a secret can only
    span the ``/`` that joins them through ``://`` (the one detector pattern with a slash), and
    a normalised directory never ends with ``:/`` nor a name starts with ``/``; so when neither
    half may hold one, the path holds none."""
    from imagewise.secrets.mask import may_hold_secret, redact_path

    clean: dict[str, bool] = {}
    for row in rows:
        d, n = row[2], row[3]
        path = f"{d}/{n}"
        ok = clean.get(d)
        if ok is None:
            ok = clean[d] = not may_hold_secret(d, False)
        if ok:
            ok = clean.get(n)
            if ok is None:
                ok = clean[n] = not may_hold_secret(n, False)
        yield (path if ok else redact_path(path)), row


def _inefficient(row: tuple[int, int, str, str, int]) -> InefficientFile:
    from imagewise.secrets.mask import redact_path

    return InefficientFile(redact_path(f"{row[2]}/{row[3]}"), row[4], -row[0])


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

    def __init__(
        self,
        efficiency: float,
        wasted_bytes: int,
        user_wasted_percent: float,
        size_bytes: int,
        user_size_bytes: int,
        layer_sizes: tuple[int, ...],
        layer_files: tuple[int, ...],
        inefficient_files: Sequence[InefficientFile],
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
    offload = "image"  # may run whole in the pass's partner process: its figures cross

    def __init__(self) -> None:
        self._stack: list[Any] = [0, True, {}]
        # directory ("" or "/usr/lib") -> name -> int (seen once: cumulative == minimum == that
        # size) | None (minimum -1, nothing else: dive's aborted whiteout) | [cumulative, minimum,
        # count, order] (seen in several layers; order: when it was first seen twice). Keyed by
        # directory then name, the names are the very strings the layer trees hold: a million
        # paths cost no path strings.
        self._paths: dict[str, dict[str, Any]] = {}
        self._matches = 0
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
        name = _intern(name)
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
        name = _intern(name)
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

    batches = True

    def visit_batch(self, batch: EntryBatch) -> None:
        """:meth:`visit` over a run of plain entries (no whiteouts or opaque markers)."""
        dirs = self._dirs
        new_dir = self._dir
        is_list = isinstance
        dir_kind = _DIR
        total = nodes = 0
        for path, kind, size in zip(batch.paths, batch.kinds, batch.sizes):
            if not path:
                continue  # the root itself
            total += size
            parent_path, _, name = path.rpartition("/")
            name = _intern(name)
            parent = dirs.get(parent_path) or new_dir(parent_path)
            is_dir = kind is dir_kind
            children = parent[2]
            child = children.get(name)
            if is_list(child, list):
                child[0] = size
                child[1] = is_dir
                continue
            if child is None:
                nodes += 1
            if is_dir:
                child = [size, True, {}]
                dirs[path] = child
            else:
                child = size
            children[name] = child
        self._layer_size += total
        self._layer_nodes += nodes

    def end_layer(self, index: int, layer: Layer | None) -> None:
        self._sizes.append(self._layer_size)
        self._counts.append(self._layer_nodes)
        tree = self._tree
        self._score_layer(tree, tree if len(self._sizes) == 1 else self._stack)
        self._merge(tree)
        self._new_layer()

    def end_image(self, image: Image | None) -> None:
        self.figures = self.result()
        # the figures are all that is read from here on: let the trees and records go
        self._stack = [0, True, {}]
        self._paths = {}
        self._new_layer()

    def image_result(self) -> object:
        return self.figures

    def adopt_image_result(self, value: object) -> None:
        if not isinstance(value, DiveFigures):
            raise TypeError(f"not dive's figures: {type(value).__name__}")
        self.figures = value

    # -- dive's Efficiency(): leaves in sorted depth-first order --------------------------------
    def _score_layer(self, tree: list[Any], lower: list[Any]) -> None:
        paths = self._paths
        recs = paths.setdefault("", {})
        stack: list[tuple[Any, dict[str, Node], str, dict[str, Any]]] = [
            (iter(sorted(tree[2])), tree[2], "", recs)
        ]
        while stack:
            names, children, prefix, recs = stack[-1]
            for name in names:
                node = children[name]
                if isinstance(node, list) and node[2]:
                    sub = f"{prefix}/{name}"
                    sub_recs = paths.get(sub)
                    if sub_recs is None:
                        sub_recs = paths[sub] = {}
                    stack.append((iter(sorted(node[2])), node[2], sub, sub_recs))
                    break
                if name.startswith(WH):
                    name = _intern(name[4:])
                    if name not in recs:
                        recs[name] = None
                    below = _lookup(lower, f"{prefix}/{name}"[1:].split("/"))
                    if below is None:
                        return  # dive: "path does not exist" stops this layer's visit
                    size = _subtree_size(below) if isinstance(below, list) and below[1] else 0
                else:
                    size = node[0] if isinstance(node, list) else node
                rec = recs.get(name)
                if rec is None:  # first sighting (or after an aborted-whiteout record)
                    recs[name] = size
                elif isinstance(rec, int):
                    recs[name] = [rec + size, min(rec, size), 2, self._matches]
                    self._matches += 1
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
                        low[name] = (
                            child
                            if not child[2] or child_path not in wh_dirs
                            else [child[0], child[1], {}]
                        )
                    continue
                if not isinstance(cur, list):
                    cur = [child[0], child[1], {}] if cur is None else [cur, False, {}]
                    low[name] = cur
                cur[0], cur[1] = child[0], child[1]
                work.append((cur, child, child_path))

    def result(self) -> DiveFigures:
        if self.figures is not None:
            return self.figures  # the image has ended (its records are gone)
        minimum = 0
        cumulative = 0
        # (-cumulative, -order, directory, name, count) of every path seen in several layers
        matches: list[tuple[int, int, str, str, int]] = []
        for prefix, recs in self._paths.items():
            for name, rec in recs.items():
                if rec is None:
                    minimum -= 1
                elif isinstance(rec, int):
                    minimum += rec
                    cumulative += rec
                else:
                    cumulative += rec[0]
                    minimum += rec[1]
                    matches.append((-rec[0], -rec[3], prefix, name, rec[2]))
        efficiency = 1.0 if cumulative == 0 else minimum / cumulative
        # dive sorts ascending by cumulative size and prints from the end; for ties, the reverse
        # order of discovery (what dive's sort gives for short lists)
        matches.sort()
        files = InefficientFiles(matches)
        wasted = -sum(m[0] for m in matches)
        size = sum(self._sizes)
        user = size - (self._sizes[0] if self._sizes else 0)
        if user:
            pct = wasted / user
        else:
            pct = math.nan if wasted == 0 else math.inf
        return DiveFigures(
            efficiency, wasted, pct, size, user, tuple(self._sizes), tuple(self._counts), files
        )
