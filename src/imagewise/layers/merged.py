"""The OCI layer rules, in one place: the merged tree every whiteout-aware visitor builds on.

A layer's entries change the filesystem of the layers below it:

* an ordinary entry replaces whatever was at its path, except that a directory over a directory
  keeps the lower directory's children (only its metadata changes); a non-directory over a
  directory removes the whole subtree; missing parents are created as directories, and a
  non-directory parent is replaced by one;
* a whiteout (``.wh.NAME``) removes what lower layers put at the path, a directory recursively;
* an opaque whiteout (``.wh..wh..opq``) removes what lower layers put under the directory (the
  directory stays, and so does what the same layer already put there).

Whiteouts only ever hide lower layers: each node remembers the layer that last wrote it, and a
directory that a whiteout empties goes only if a lower layer made it.

``MergedTree`` applies those rules to nodes of the owner's choosing (anything with ``children``
- a dict for directories, ``None`` otherwise - and ``layer``) and calls :meth:`MergedTree.hidden`
for every node a later entry hides, with the reason. The owners:

* ``analysis.overlay.OverlayState`` - every path of the image (dense), hidden bytes accounted;
* ``layers.tree.FileTree`` - every path, for listings and per-layer changes;
* ``PathTable`` below - only the paths one visitor keeps facts about (sparse): the audit's file
  facts, the SBOM's evidence files and the secret findings. Every other entry of the layer is
  passed to :meth:`MergedTree.overwritten`, which costs one dict lookup, so a whiteout, opaque
  directory or overwrite removes a kept fact exactly when it would remove the file.

Directories are indexed by path (``index``); a sparse tree (``track_leaves=True``) indexes every
node, so looking up a path it does not hold is one dict miss (and, once per directory of
entries, a walk up the directory's path until the first path the table does not hold).
"""

from __future__ import annotations

import sys
from typing import Any, Generic, Protocol, TypeVar

from imagewise.archive.entry import Kind

__all__ = [
    "DELETED",
    "DIR_DELETED",
    "DUPLICATE_ENTRY",
    "OPAQUE",
    "OVERWRITTEN",
    "REPLACED",
    "MergedTree",
    "PathNode",
    "PathTable",
]

# why a node was hidden
OVERWRITTEN = "overwritten"
DELETED = "deleted"
DIR_DELETED = "dir-deleted"
OPAQUE = "opaque"
REPLACED = "replaced"  # a directory replaced by a non-directory or the other way round
DUPLICATE_ENTRY = "duplicate-entry"  # the same path twice in one layer tar

_DIR, _OPAQUE, _WHITEOUT = Kind.DIR, Kind.OPAQUE, Kind.WHITEOUT
_intern = sys.intern  # one string per name, shared by every directory that holds it


class TreeNode(Protocol):
    children: Any  # dict[str, TreeNode] for a directory, None otherwise
    layer: int


N = TypeVar("N", bound=TreeNode)


class MergedTree(Generic[N]):
    """Nodes at paths, changed by layers in order under the OCI rules (module docstring).

    Paths are ``Entry.path``'s normal form; the root is ``""``. Subclasses say how a directory
    is made (:meth:`new_dir`) and may hook :meth:`hidden`, :meth:`reason` and :meth:`merge_dir`.
    """

    def __init__(self, root: N, *, track_leaves: bool = False) -> None:
        self.root = root
        self.track_leaves = track_leaves
        #: path -> node of every directory (and, when ``track_leaves``, every node)
        self.index: dict[str, N] = {"": root}

    # -- hooks ---------------------------------------------------------------------------------
    def new_dir(self, layer: int) -> N:
        """A directory node made for a missing parent."""
        raise NotImplementedError

    def hidden(self, node: N, path: str, layer: int, reason: str) -> None:
        """``node`` (written by ``node.layer``) at ``path`` is hidden by layer ``layer``.

        Called for every hidden node, parents before children; a directory a whiteout empties
        is reported after its children, when it goes itself."""

    def reason(self, old: N, new: N, layer: int) -> str:
        """Why ``new`` written by ``layer`` hides ``old`` at the same path."""
        if old.layer == layer:
            return DUPLICATE_ENTRY
        if old.children is not None or new.children is not None:
            return REPLACED
        return OVERWRITTEN

    def merge_dir(self, old: N, new: N, layer: int) -> None:
        """A directory written over a directory: the old node stays (with its children)."""
        old.layer = layer

    # -- lookup --------------------------------------------------------------------------------
    def lookup(self, path: str) -> N | None:
        node = self.index.get(path)
        if node is not None or self.track_leaves:
            return node
        parent_path, _, name = path.rpartition("/")
        parent = self.index.get(parent_path)
        if parent is None:
            return None
        child: N | None = parent.children.get(name)
        return child

    def __contains__(self, path: str) -> bool:
        return self.lookup(path) is not None

    # -- changes -------------------------------------------------------------------------------
    def put(self, path: str, node: N, layer: int) -> N:
        """Write ``node`` at ``path`` (not the root) in layer ``layer``; returns the node now
        there: ``node``, or the old directory when a directory is written over a directory."""
        parent_path, _, name = path.rpartition("/")
        parent = self.index.get(parent_path)
        if parent is None or parent.children is None:
            parent = self._parents(parent_path, layer)
        children = parent.children
        old: N | None = children.get(name)
        if old is not None:
            if node.children is not None and old.children is not None:
                self.merge_dir(old, node, layer)
                return old
            self._hide(old, path, layer, self.reason(old, node, layer))
        else:
            name = _intern(name)
        children[name] = node
        if node.children is not None or self.track_leaves:
            self.index[path] = node
        return node

    def overwritten(self, path: str, is_dir: bool, layer: int) -> None:
        """An entry the tree does not keep was written at ``path``: hide what it replaces (a
        directory over a directory replaces nothing). For sparse trees, called with every entry
        the owner does not :meth:`put`."""
        old = self.index.get(path) if self.track_leaves else self.lookup(path)
        if old is None or not path:
            return
        if is_dir and old.children is not None:
            old.layer = layer
            return
        if old.layer == layer:
            reason = DUPLICATE_ENTRY
        else:
            reason = REPLACED if is_dir or old.children is not None else OVERWRITTEN
        self._hide(old, path, layer, reason)
        self._unlink(path)

    def whiteout(self, path: str, layer: int) -> bool:
        """Apply a whiteout of ``path``; False when nothing was there to hide."""
        node = self.lookup(path)
        if node is None or not path:
            return False
        reason = DIR_DELETED if node.children is not None else DELETED
        if self._prune(node, path, layer, reason):
            self._unlink(path)
        return True

    def opaque(self, path: str, layer: int) -> None:
        """Apply an opaque whiteout of the directory ``path``."""
        node = self.lookup(path)
        if node is None or node.children is None:
            return
        prefix = f"{path}/" if path else ""
        for name, child in list(node.children.items()):
            if self._prune(child, prefix + name, layer, OPAQUE):
                del node.children[name]

    # -- internals -----------------------------------------------------------------------------
    def _parents(self, parent_path: str, layer: int) -> N:
        """The directory at ``parent_path``, made (with its missing parents) when missing; a
        non-directory in the way is hidden and replaced."""
        node = self.root
        path = ""
        for name in parent_path.split("/") if parent_path else ():
            path = f"{path}/{name}" if path else name
            children = node.children
            child = children.get(name)
            if child is None or child.children is None:
                if child is not None:
                    self._hide(child, path, layer, REPLACED)
                child = self.new_dir(layer)
                children[_intern(name)] = child
                self.index[path] = child
            node = child
        return node

    def _unlink(self, path: str) -> None:
        parent_path, _, name = path.rpartition("/")
        parent = self.index.get(parent_path)
        if parent is not None and parent.children is not None:
            parent.children.pop(name, None)

    def _hide(self, node: N, path: str, layer: int, reason: str) -> None:
        """``node`` and everything under it are hidden (the caller unlinks ``node``)."""
        self.hidden(node, path, layer, reason)
        children = node.children
        if children is not None:
            self.index.pop(path, None)
            for name, child in children.items():
                self._hide(child, f"{path}/{name}", layer, reason)
        elif self.track_leaves:
            self.index.pop(path, None)

    def _prune(self, node: N, path: str, layer: int, reason: str) -> bool:
        """Hide what lower layers put at/under ``node``; True when the node itself goes."""
        children = node.children
        if children is None:
            if node.layer < layer:
                self.hidden(node, path, layer, reason)
                if self.track_leaves:
                    self.index.pop(path, None)
                return True
            return False
        for name, child in list(children.items()):
            if self._prune(child, f"{path}/{name}", layer, reason):
                del children[name]
        if node.layer < layer and not children:
            self.hidden(node, path, layer, reason)
            self.index.pop(path, None)
            return True
        return False


class PathNode:
    """A node of a :class:`PathTable`: the layer that wrote it and, for directories, children."""

    __slots__ = ("children", "layer")

    def __init__(self, layer: int, is_dir: bool = False) -> None:
        self.layer = layer
        self.children: dict[str, PathNode] | None = {} if is_dir else None


class PathTable(MergedTree[PathNode]):
    """A sparse merged tree of the paths a visitor keeps facts about.

    The owner keeps its facts in its own tables keyed by path, :meth:`keep`\\ s each path here,
    and feeds every entry through :meth:`apply`; ``on_hidden(path, layer)`` is called for every
    kept path a later layer hides, so the owner drops (or marks) the facts of exactly the files
    a container would no longer see.
    """

    def __init__(self, on_hidden: Any) -> None:
        super().__init__(PathNode(-1, True), track_leaves=True)
        self.on_hidden = on_hidden
        self._last_parent: str | None = None

    def new_dir(self, layer: int) -> PathNode:
        return PathNode(layer, True)

    def hidden(self, node: PathNode, path: str, layer: int, reason: str) -> None:
        self.on_hidden(path, layer)

    def keep(self, path: str, is_dir: bool, layer: int) -> None:
        """Keep ``path``, written by ``layer`` (an existing kept file there is hidden first)."""
        self._last_parent = None
        if path:
            self.put(path, PathNode(layer, is_dir), layer)

    def apply(self, path: str, kind: object, layer: int) -> bool:
        """Apply an entry the owner does not keep (whiteouts included); True for a whiteout or
        opaque marker, which the owner then has nothing more to do with."""
        if kind is _WHITEOUT:
            self.whiteout(path, layer)
            return True
        if kind is _OPAQUE:
            self.opaque(path, layer)
            return True
        if path in self.index:
            self.overwritten(path, kind is _DIR, layer)
        else:  # a kept file where this entry needs a parent directory is replaced by one
            parent = path.rpartition("/")[0]
            if parent != self._last_parent:  # entries come grouped by directory
                self._last_parent = parent
                self._parent_needed(parent, layer)
        return False

    def _parent_needed(self, parent: str, layer: int) -> None:
        index = self.index
        end = 0
        while parent:
            end = parent.find("/", end + 1)
            prefix = parent if end < 0 else parent[:end]
            node = index.get(prefix)
            if node is None:
                return  # nothing kept at or under it
            if node.children is None:
                self.overwritten(prefix, True, layer)
                return
            if end < 0:
                return
