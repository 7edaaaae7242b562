"""The merged filesystem with OCI semantics, and every copy of a file that it hides.

Unlike dive's model, this one applies whiteouts and opaque whiteouts the way a container runtime
does (only to lower layers; a directory whiteout hides everything under it; an opaque whiteout
hides the directory's lower contents), replaces a directory by a file and a file by a directory,
and follows hard links: content shared by several names is hidden only when its last name is.

``reclaimable_bytes`` is the sum of the hidden copies: bytes that are in some layer but not in
the final filesystem, each copy counted once, the surviving copy never. By construction
``bytes written by all layers == final filesystem bytes + reclaimable_bytes``.

Hidden copies are not kept one by one (a deleted tree may hold 100k files): they are grouped by
(layer that wrote them, layer that hid them, reason, category) with the largest paths kept as
examples.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Any

from imagewise.analysis.categories import classify, directory_category
from imagewise.layers.merged import (
    DUPLICATE_ENTRY,
    OVERWRITTEN,
    REPLACED,
    MergedTree,
    _intern,
)
from imagewise.layers.model import Entry, Kind, Visitor

if TYPE_CHECKING:
    from imagewise.archive.batch import EntryBatch
    from imagewise.archive.region import Region
    from imagewise.sources.base import Image, Layer

# Kind's members as plain module names: ``Kind.X`` is an enum descriptor call on every use
(_DIR, _FILE, _HARDLINK, _OPAQUE, _SYMLINK, _WHITEOUT) = (
    Kind.DIR,
    Kind.FILE,
    Kind.HARDLINK,
    Kind.OPAQUE,
    Kind.SYMLINK,
    Kind.WHITEOUT,
)

#: files at least this big are hashed (once, while streamed) to find duplicated content
HASH_MIN_BYTES = 64 * 1024
EXAMPLES = 5

#: a directory whose files' names decide their category (``categories.directory_answer``)
_PER_FILE = "\0per-file"

# reasons a copy is hidden: layers.merged's, and one of ours
METADATA = "metadata"  # rewritten with the same size, only mode/owner changed


class Node:
    """One path of the merged tree: ~80 bytes for a file. Mode, owner and group are one tuple
    shared by every node with the same three (``meta``); the fields few nodes need (hard-link
    blob, content hash or its deferred region, symlink target) live in ``more``."""

    __slots__ = ("children", "kind", "layer", "meta", "more", "size")

    def __init__(
        self, layer: int, kind: Kind, size: int = 0, mode: int = 0, uid: int = 0, gid: int = 0
    ) -> None:
        self.layer = layer
        self.kind = kind
        self.size = size
        meta = (mode, uid, gid)
        self.meta: tuple[int, int, int] = _METAS.get(meta) or _meta(meta)
        self.children: dict[str, Node] | None = {} if kind is _DIR else None
        self.more: _More | None = None

    @property
    def mode(self) -> int:
        return self.meta[0]

    @property
    def uid(self) -> int:
        return self.meta[1]

    @property
    def gid(self) -> int:
        return self.meta[2]

    def _more(self) -> _More:
        more = self.more
        if more is None:
            more = self.more = _More()
        return more

    @property
    def blob(self) -> list[int] | None:
        """[size, live names, layer] when hard-linked."""
        return None if self.more is None else self.more.blob

    @blob.setter
    def blob(self, value: list[int] | None) -> None:
        self._more().blob = value

    @property
    def digest(self) -> bytes | None:
        return None if self.more is None else self.more.digest

    @digest.setter
    def digest(self, value: bytes | None) -> None:
        self._more().digest = value

    @property
    def where(self) -> Region | None:
        """Content not hashed yet: see OverlayState.digest_of."""
        return None if self.more is None else self.more.where

    @where.setter
    def where(self, value: Region | None) -> None:
        self._more().where = value

    @property
    def link(self) -> str | None:
        """Symlink target."""
        return None if self.more is None else self.more.link

    @link.setter
    def link(self, value: str | None) -> None:
        self._more().link = value


class _More:
    __slots__ = ("blob", "digest", "link", "where")

    def __init__(self) -> None:
        self.blob: list[int] | None = None
        self.digest: bytes | None = None
        self.where: Region | None = None
        self.link: str | None = None


#: (mode, uid, gid) -> the one tuple every node with them shares (bounded: a crafted image may
#: give every file its own owner; past the bound nodes keep their own tuple)
_METAS: dict[tuple[int, int, int], tuple[int, int, int]] = {}
_METAS_MAX = 4096


def _meta(meta: tuple[int, int, int]) -> tuple[int, int, int]:
    if len(_METAS) < _METAS_MAX:
        _METAS[meta] = meta
    return meta


class Bucket:
    """Surviving bytes of one kind written by one layer."""

    __slots__ = ("bytes", "examples", "files")

    def __init__(
        self, bytes: int = 0, files: int = 0, examples: list[tuple[int, str]] | None = None
    ) -> None:
        self.bytes = bytes
        self.files = files
        self.examples: list[tuple[int, str]] = [] if examples is None else examples

    def add(self, size: int, path: str) -> None:
        self.bytes += size
        self.files += 1
        if len(self.examples) < EXAMPLES:
            heapq.heappush(self.examples, (size, path))
        elif size > self.examples[0][0]:
            heapq.heapreplace(self.examples, (size, path))

    def top(self) -> list[tuple[str, int]]:
        return [(p, s) for s, p in sorted(self.examples, reverse=True)]


class HiddenGroup(Bucket):
    """Copies written by ``layer`` and hidden by ``by_layer`` for one reason."""

    __slots__ = ("by_layer", "category", "layer", "reason")

    def __init__(
        self,
        bytes: int = 0,
        files: int = 0,
        examples: list[tuple[int, str]] | None = None,
        layer: int = 0,
        by_layer: int = 0,
        reason: str = "",
        category: str = "",
    ) -> None:
        Bucket.__init__(self, bytes, files, examples)
        self.layer = layer
        self.by_layer = by_layer
        self.reason = reason
        self.category = category


class OverlayState(MergedTree[Node], Visitor):
    """Single-pass visitor: the correct merged tree, hidden copies, content hashes of big files.

    Files of at least ``hash_min_bytes`` get a content hash. When a layer is read in place
    (``Entry.located()``) and ``defer`` is on, the hash is taken only when something asks for it
    (:meth:`digest_of`): two files can only have the same content if they have the same size, so
    most big files are never read at all. Streamed layers are hashed while they pass.
    """

    name = "overlay-state"
    version = "2"  # content hashes are xxh3-128

    def __init__(
        self, hash_min_bytes: int = HASH_MIN_BYTES, defer: bool = True, facts_at_end: bool = False
    ) -> None:
        self.hash_min_bytes = hash_min_bytes
        self.defer = defer
        #: take ``final.final_facts`` of the image at ``end_image`` (into ``final``): the analysis
        #: does, as the pass ends this visitor before it waits for its partner
        self.facts_at_end = facts_at_end
        MergedTree.__init__(self, Node(-1, _DIR))
        self.groups: dict[tuple[int, int, str, str], HiddenGroup] = {}
        self.layer_written: list[int] = []  # file bytes each layer's tar holds
        self.layer_files: list[int] = []
        self.layer_entries: list[int] = []
        self.missing_whiteouts = 0
        self._i = 0
        self._hashes: dict[str, str] = {}  # this layer's content hashes (the cacheable part)
        self._deferred: list[tuple[str, Node]] = []  # this layer's files not hashed yet
        self._restored: dict[str, str] = {}
        self._maps: Any = None  # archive.mapped.FileMaps, once a deferred hash is taken
        #: directory -> the category of every file in it (``classify``), or _PER_FILE
        self._categories: dict[str, str] = {}
        self.final: Any = None

    # -- the pass -------------------------------------------------------------------------
    def begin_image(self, image: Image) -> None:
        self.__init__(self.hash_min_bytes, self.defer, self.facts_at_end)  # type: ignore[misc]

    def end_image(self, image: Image | None) -> None:
        if self.facts_at_end:
            from imagewise.analysis.final import final_facts

            self.final = final_facts(self)

    def begin_layer(self, index: int, layer: Layer | None) -> None:
        self._i = index
        self._hashes = {}
        self._deferred = []
        self._restored = {}
        self.layer_written.append(0)
        self.layer_files.append(0)
        self.layer_entries.append(0)

    def layer_result(self, index: int, layer: Layer) -> object:
        for path, node in self._deferred:  # the cached record holds every hash of the layer
            digest = self.digest_of(node)
            if digest is not None:
                self._hashes[path] = digest.hex()
        self._deferred = []
        return {"hash_min_bytes": self.hash_min_bytes, "xxh3_128": dict(self._hashes)}

    def restore_layer(self, index: int, layer: Layer, result: object) -> None:
        if isinstance(result, dict) and result.get("hash_min_bytes") == self.hash_min_bytes:
            self._restored = dict(result.get("xxh3_128") or {})

    def wants_content(self, entry: Entry) -> bool:
        return (
            entry.kind is _FILE
            and entry.size >= self.hash_min_bytes
            and not (self.defer and entry.in_place)
        )

    def digest_of(self, node: Node) -> bytes | None:
        """The node's content hash, taken now from its file region if it was deferred."""
        if node.digest is None and node.where is not None:
            if self._maps is None:
                from imagewise.archive.mapped import FileMaps

                self._maps = FileMaps()
            node.digest = _hash_region(node.where, self._maps)
            node.where = None
        return node.digest

    def visit(self, entry: Entry) -> None:
        i = self._i
        self.layer_entries[i] += 1
        kind = entry.kind
        if kind is _WHITEOUT:
            if not self.whiteout(entry.path, i):
                self.missing_whiteouts += 1
            return
        if kind is _OPAQUE:
            self.opaque(entry.path, i)
            return
        if not entry.path:
            return  # the root itself
        node = Node(i, kind, entry.size if kind is _FILE else 0, entry.mode, entry.uid, entry.gid)
        if kind is _SYMLINK:
            node.link = entry.linkname
        elif kind is _FILE:
            self.layer_written[i] += entry.size
            self.layer_files[i] += 1
            if entry.size >= self.hash_min_bytes:
                known = self._restored.get(entry.path) if self._restored else None
                if known:
                    node.digest = bytes.fromhex(known)
                elif self.defer and (where := entry.located()) is not None:
                    node.where = where
                    self._deferred.append((entry.path, node))
                else:
                    node.digest = _hash(entry)
                if node.digest is not None:
                    self._hashes[entry.path] = node.digest.hex()
        self.put(entry.path, node, i)
        if kind is _HARDLINK:
            target = self.lookup(entry.linkname)
            if target is not None and target.kind in (_FILE, _HARDLINK):
                blob = target.blob
                if blob is None and target.kind is _FILE:
                    blob = target.blob = [target.size, 1, target.layer]
                if blob is not None:
                    blob[1] += 1
                    node.blob = blob
                    node.digest, node.where = target.digest, target.where

    batches = True

    def visit_batch(self, batch: EntryBatch) -> None:
        """:meth:`visit` over a run of plain entries (no whiteouts, no hard links), with the
        merged tree's common case (a new name in a known directory) written out."""
        i = self._i
        self.layer_entries[i] += len(batch)
        index = self.index
        put, hidden, reason = self.put, self.hidden, self.reason
        hash_min = self.hash_min_bytes
        file, symlink = _FILE, _SYMLINK
        written = files = 0
        for k, (path, kind, size, mode, uid, gid) in enumerate(
            zip(batch.paths, batch.kinds, batch.sizes, batch.modes, batch.uids, batch.gids)
        ):
            if not path:
                continue  # the root itself
            node = Node(i, kind, size, mode, uid, gid)  # a batch's sizes are 0 but for files
            if kind is file:
                written += size
                files += 1
                if size >= hash_min:
                    self._big_file(node, path, batch, k)
            elif kind is symlink:
                node.link = batch.links[k]
            parent_path, _, name = path.rpartition("/")
            parent = index.get(parent_path)
            children = parent.children if parent is not None else None
            if children is None:
                put(path, node, i)  # a missing parent: the full rules
                continue
            old = children.get(name)
            if old is None:
                children[_intern(name)] = node
                if node.children is not None:
                    index[path] = node
            elif old.children is None and node.children is None:
                # a non-directory over a non-directory: what put does, written out
                hidden(old, path, i, reason(old, node, i))
                children[name] = node
            else:
                put(path, node, i)  # a directory on either side: the full rules
        self.layer_written[i] += written
        self.layer_files[i] += files

    def _big_file(self, node: Node, path: str, batch: EntryBatch, k: int) -> None:
        """A file of at least ``hash_min_bytes`` in a batch: its content hash, as :meth:`visit`
        takes it (restored, deferred to its region, or now)."""
        known = self._restored.get(path) if self._restored else None
        if known:
            node.digest = bytes.fromhex(known)
        elif self.defer and (where := batch.located(k)) is not None:
            node.where = where
            self._deferred.append((path, node))
        else:
            import xxhash

            node.digest = xxhash.xxh3_128(batch.content(k)).digest()
        if node.digest is not None:
            self._hashes[path] = node.digest.hex()

    # -- the merged tree's hooks (layers.merged applies the OCI rules) -----------------------
    def new_dir(self, layer: int) -> Node:
        return Node(layer, _DIR)

    def merge_dir(self, old: Node, new: Node, layer: int) -> None:
        old.layer, old.meta = layer, new.meta

    def hidden(self, node: Node, path: str, i: int, reason: str) -> None:
        kind = node.kind
        if kind is not _FILE and kind is not _HARDLINK:
            return
        blob = node.blob
        if blob is not None:
            blob[1] -= 1
            if blob[1] > 0:
                return  # another name still holds the content
            size, layer = blob[0], blob[2]
        elif kind is _FILE:
            size, layer = node.size, node.layer
        else:
            return
        directory = path.rpartition("/")[0]
        category = self._categories.get(directory)
        if category is None:  # the directory's answer for all its files, when it has one
            answer = directory_category(directory)
            category = self._categories[directory] = _PER_FILE if answer is None else answer
        if category is _PER_FILE:
            category = classify(path)
        key = (layer, i, reason, category)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = HiddenGroup(
                layer=layer, by_layer=i, reason=reason, category=category
            )
        group.add(size, path)

    def reason(self, old: Node, new: Node, i: int) -> str:
        if old.layer == i:
            return DUPLICATE_ENTRY
        if old.children is not None or new.kind is _DIR:
            return REPLACED
        if (
            old.kind is _FILE
            and new.kind is _FILE
            and old.size == new.size
            and old.meta != new.meta
        ):
            before = self.digest_of(old)
            if before is None or before == self.digest_of(new):
                return METADATA
        return OVERWRITTEN

    # -- results ----------------------------------------------------------------------------
    @property
    def reclaimable_bytes(self) -> int:
        return sum(g.bytes for g in self.groups.values())

    def reclaimable_by_layer(self, n_layers: int) -> list[int]:
        out = [0] * n_layers
        for g in self.groups.values():
            if 0 <= g.layer < n_layers:
                out[g.layer] += g.bytes
        return out

    def files(self) -> Any:
        """Yield ``(path, node, size)`` for every non-directory in the final filesystem; the
        size of hard-linked content is given once (on the first name met)."""
        seen: set[int] = set()
        stack: list[tuple[str, Node]] = [("", self.root)]
        while stack:
            prefix, node = stack.pop()
            assert node.children is not None
            for name, child in node.children.items():
                path = f"{prefix}/{name}" if prefix else name
                if child.children is not None:
                    stack.append((path, child))
                    continue
                size = child.size
                if child.blob is not None:
                    size = 0 if id(child.blob) in seen else child.blob[0]
                    seen.add(id(child.blob))
                yield path, child, size


def _hash_region(region: Region, maps: Any) -> bytes:
    import xxhash

    h = xxhash.xxh3_128()
    maps.feed(region, h.update)
    return h.digest()


def _hash(entry: Entry) -> bytes | None:
    """xxh3-128 of the content (fast: duplicates are a size hint, not a security claim);
    None when the pass has no content for the entry."""
    import xxhash

    h = xxhash.xxh3_128()
    try:
        entry.feed(h.update)
    except ValueError:
        return None
    return h.digest()
