"""Facts about the final filesystem, gathered in one walk of the merged tree after the pass:
leftover caches and toolchains per layer, duplicated content, largest files, a size tree."""

from __future__ import annotations

import heapq

from imagewise.analysis.categories import TOOLCHAIN, directory_answer, leftover_or_toolchain
from imagewise.analysis.model import FileStat, TreeNode
from imagewise.analysis.overlay import Bucket, Node, OverlayState
from imagewise.secrets.mask import may_hold_secret, redact_path

LARGEST = 20
TREE_DEPTH = 8
TREE_MIN_FRACTION = 0.002  # tree entries under 0.2 % of the image are folded together
TREE_MAX_CHILDREN = 60


class FinalFacts:
    __slots__ = ("duplicates", "files", "largest", "leftovers", "toolchain", "total_bytes")

    def __init__(
        self,
        total_bytes: int = 0,
        files: int = 0,
        leftovers: dict[tuple[str, int], Bucket] | None = None,
        toolchain: dict[int, Bucket] | None = None,
        duplicates: list[tuple[bytes, list[FileStat]]] | None = None,
        largest: list[FileStat] | None = None,
    ) -> None:
        self.total_bytes = total_bytes
        self.files = files
        # (category, layer) -> bucket
        self.leftovers: dict[tuple[str, int], Bucket] = {} if leftovers is None else leftovers
        # layer -> bucket
        self.toolchain: dict[int, Bucket] = {} if toolchain is None else toolchain
        self.duplicates: list[tuple[bytes, list[FileStat]]] = (
            [] if duplicates is None else duplicates
        )
        self.largest: list[FileStat] = [] if largest is None else largest


def final_facts(state: OverlayState) -> FinalFacts:
    """One walk of the final filesystem, in ``OverlayState.files()``'s order. A file's path is
    made only when something keeps it (a leftover or toolchain bucket, a content hash, the
    largest files); the category is asked once per directory unless the names matter there
    (``categories.directory_answer``)."""
    facts = FinalFacts()
    hashed: list[tuple[Node, FileStat]] = []  # files with a content hash, taken or deferred
    same_size: dict[int, int] = {}
    heap: list[tuple[int, str, int]] = []
    seen: set[int] = set()  # hard-linked content counted once, on the first name met
    files = total = 0
    stack: list[tuple[str, Node]] = [("", state.root)]
    while stack:
        prefix, directory = stack.pop()
        assert directory.children is not None
        answer = directory_answer(prefix)
        for name, node in directory.children.items():
            if node.children is not None:
                stack.append((_joined(prefix, name), node))
                continue
            files += 1
            size = node.size
            more = node.more  # None for nearly every file: no hard link, no content hash
            blob = None if more is None else more.blob
            if blob is not None:
                size = 0 if id(blob) in seen else blob[0]
                seen.add(id(blob))
            total += size
            if not size:
                continue
            layer = blob[2] if blob is not None else node.layer
            path = None
            cat = answer
            if cat is None:
                path = _joined(prefix, name)
                cat = leftover_or_toolchain(path)
            if cat:
                path = path or _joined(prefix, name)
                if cat == TOOLCHAIN:
                    bucket = facts.toolchain.get(layer)
                    if bucket is None:
                        bucket = facts.toolchain[layer] = Bucket()
                else:
                    bucket = facts.leftovers.get((cat, layer))
                    if bucket is None:
                        bucket = facts.leftovers[(cat, layer)] = Bucket()
                bucket.add(size, path)
            if more is not None and (more.digest is not None or more.where is not None):
                path = path or _joined(prefix, name)
                hashed.append((node, FileStat(path, size, layer)))
                same_size[size] = same_size.get(size, 0) + 1
            if len(heap) < LARGEST:
                heapq.heappush(heap, (size, path or _joined(prefix, name), layer))
            elif size > heap[0][0]:
                heapq.heapreplace(heap, (size, path or _joined(prefix, name), layer))
    facts.files, facts.total_bytes = files, total
    by_digest: dict[bytes, list[FileStat]] = {}
    for node, stat in hashed:  # only files of the same size can share content: hash just those
        if same_size[stat.size] > 1 and (digest := state.digest_of(node)) is not None:
            by_digest.setdefault(digest, []).append(stat)
    facts.largest = [
        FileStat(redact_path(p), s, layer) for s, p, layer in sorted(heap, reverse=True)
    ]
    facts.duplicates = sorted(
        (
            (d, sorted(copies, key=lambda f: (f.layer, f.path)))
            for d, copies in by_digest.items()
            if len(copies) > 1
        ),
        key=lambda item: -item[1][0].size * (len(item[1]) - 1),
    )
    return facts


def _joined(prefix: str, name: str) -> str:
    """The path of ``name`` in the directory ``prefix`` (``""``: the root)."""
    return f"{prefix}/{name}" if prefix else name


def size_tree(state: OverlayState, total: int) -> TreeNode:
    """The final filesystem as a bounded tree for a treemap: at most ``TREE_DEPTH`` levels,
    entries below ``TREE_MIN_FRACTION`` of the total folded into one ``(N more)`` node."""
    threshold = max(1, int(total * TREE_MIN_FRACTION))
    seen: set[int] = set()
    return _summarize("/", state.root, 0, threshold, seen)


def _file_size(node: Node, seen: set[int]) -> int:
    if node.blob is not None:
        if id(node.blob) in seen:
            return 0
        seen.add(id(node.blob))
        return node.blob[0]
    return node.size


def _measure(node: Node, seen: set[int]) -> tuple[int, int]:
    size = files = 0
    stack = [node]
    while stack:
        n = stack.pop()
        assert n.children is not None
        for child in n.children.values():
            if child.children is not None:
                stack.append(child)
            else:
                size += _file_size(child, seen)
                files += 1
    return size, files


def _summarize(name: str, node: Node, depth: int, threshold: int, seen: set[int]) -> TreeNode:
    assert node.children is not None
    if depth >= TREE_DEPTH:
        size, files = _measure(node, seen)
        return TreeNode(name, size, files)
    kids: list[TreeNode] = []
    for child_name, child in node.children.items():
        if child.children is not None:
            kids.append(_summarize(child_name, child, depth + 1, threshold, seen))
        else:
            kids.append(TreeNode(child_name, _file_size(child, seen), 1))
    size = sum(k.size for k in kids)
    files = sum(k.files for k in kids)
    kids.sort(key=lambda k: -k.size)
    keep = [k for k in kids[:TREE_MAX_CHILDREN] if k.size >= threshold]
    if any(may_hold_secret(k.name, False) for k in keep):  # shown in reports: mask secrets
        keep = [k.replace(name=redact_path(k.name)) for k in keep]
    rest = kids[len(keep) :]
    if rest:
        keep.append(
            TreeNode(f"({len(rest)} more)", sum(k.size for k in rest), sum(k.files for k in rest))
        )
    return TreeNode(name, size, files, tuple(keep))
