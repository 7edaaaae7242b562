"""One implementation of the OCI layer rules (``layers.merged``): checked against a naive model
written from the rules' text, dense and sparse trees agreeing, and every whiteout-aware visitor
(overlay accounting, audit, SBOM, secrets) seeing the same final filesystem on a real image."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from fixtures_images import TarFile, build_image, tar_bytes, write_docker_archive
from hypothesis import given, settings, strategies as st
from secret_samples import AWS_ID, AWS_SECRET

from imagewise.analysis.overlay import OverlayState
from imagewise.audit.filesystem import AuditVisitor
from imagewise.layers import merged
from imagewise.layers.merged import MergedTree, PathNode, PathTable
from imagewise.layers.model import Kind
from imagewise.layers.passes import run_pass
from imagewise.layers.tree import FileTree, Node
from imagewise.sbom.visitor import CatalogVisitor
from imagewise.secrets.visitor import SecretsVisitor
from imagewise.sources import open_source


class Recording(MergedTree[PathNode]):
    def __init__(self) -> None:
        super().__init__(PathNode(-1, True))
        self.log: list[tuple[str, int, int, str]] = []

    def new_dir(self, layer: int) -> PathNode:
        return PathNode(layer, True)

    def hidden(self, node: PathNode, path: str, layer: int, reason: str) -> None:
        self.log.append((path, node.layer, layer, reason))


def test_whiteouts_hide_lower_layers_only() -> None:
    t = Recording()
    t.put("a/x", PathNode(0), 0)
    t.put("a/y", PathNode(1), 1)
    assert t.whiteout("a", 1) is True
    # a/x went (layer 0); a/y and the directory stay: layer 1 wrote a/y
    assert "a/x" not in t and "a/y" in t and "a" in t
    assert t.log == [("a/x", 0, 1, merged.DIR_DELETED)]
    assert t.whiteout("nothing/here", 1) is False


def test_opaque_keeps_the_directory_and_the_same_layer() -> None:
    t = Recording()
    t.put("d/old", PathNode(0), 0)
    t.put("d/sub/deep", PathNode(0), 0)
    t.put("d/new", PathNode(1), 1)
    t.opaque("d", 1)
    assert "d" in t and "d/new" in t
    assert "d/old" not in t and "d/sub" not in t and "d/sub/deep" not in t
    assert {(p, r) for p, _, _, r in t.log} == {
        ("d/old", merged.OPAQUE),
        ("d/sub/deep", merged.OPAQUE),
        ("d/sub", merged.OPAQUE),
    }


def test_replacement_reasons_and_directory_merge() -> None:
    t = Recording()
    t.put("etc/conf", PathNode(0), 0)
    t.put("etc/conf", PathNode(1), 1)  # overwritten
    t.put("etc/conf", PathNode(1), 1)  # the same path twice in one layer
    t.put("etc/conf", PathNode(2, True), 2)  # a directory replaces the file
    t.put("etc/conf/inner", PathNode(2), 2)
    kept = t.put("etc", PathNode(3, True), 3)  # a directory over a directory keeps children
    assert kept is t.lookup("etc") and "etc/conf/inner" in t and kept.layer == 3
    t.put("etc/conf", PathNode(4), 4)  # a file replaces the directory and what it holds
    assert "etc/conf/inner" not in t
    reasons = [(p, r) for p, _, _, r in t.log]
    assert reasons == [
        ("etc/conf", merged.OVERWRITTEN),
        ("etc/conf", merged.DUPLICATE_ENTRY),
        ("etc/conf", merged.REPLACED),
        ("etc/conf", merged.REPLACED),
        ("etc/conf/inner", merged.REPLACED),
    ]


def test_a_file_parent_is_replaced_by_a_directory() -> None:
    t = Recording()
    t.put("bin", PathNode(0), 0)  # a file where a directory will be needed
    t.put("bin/sh", PathNode(1), 1)
    bin_dir = t.lookup("bin")
    assert bin_dir is not None and bin_dir.children is not None and "bin/sh" in t
    assert t.log == [("bin", 0, 1, merged.REPLACED)]


# -- a naive model of the rules, from their text, against both trees ---------------------------

NAMES = ("a", "b", "c")
PATHS = ["/".join(p) for n in (1, 2, 3) for p in itertools.product(NAMES, repeat=n)]
OPS = st.lists(
    st.lists(
        st.tuples(st.sampled_from(["file", "dir", "whiteout", "opaque"]), st.sampled_from(PATHS)),
        max_size=6,
    ),
    min_size=1,
    max_size=5,
)


def _under(q: str, p: str) -> bool:
    return q.startswith(p + "/")


def naive(layers: list[list[tuple[str, str]]]) -> dict[str, tuple[str, int]]:
    """path -> (kind, layer that last wrote it), by scanning every path for every change."""
    state: dict[str, tuple[str, int]] = {}

    def drop(p: str) -> None:
        for q in [q for q in state if q == p or _under(q, p)]:
            del state[q]

    def hide_lower(p: str, i: int, keep_self: bool) -> None:
        for q in [q for q in state if (q == p and not keep_self) or _under(q, p)]:
            if state[q][0] != "dir" and state[q][1] < i:
                del state[q]
        dirs = [q for q in state if state[q][0] == "dir" and (_under(q, p) or q == p)]
        for q in sorted(dirs, key=lambda q: -q.count("/")):  # deepest first
            if keep_self and q == p:
                continue
            empty = not any(_under(r, q) for r in state)
            if state[q][1] < i and empty:
                del state[q]

    for i, ops in enumerate(layers):
        for op, p in ops:
            if op == "whiteout":
                if p in state:
                    hide_lower(p, i, keep_self=False)
            elif op == "opaque":
                if p in state and state[p][0] == "dir":
                    hide_lower(p, i, keep_self=True)
            else:
                parts = p.split("/")
                for n in range(1, len(parts)):
                    a = "/".join(parts[:n])
                    if a in state and state[a][0] != "dir":
                        drop(a)
                    if a not in state:
                        state[a] = ("dir", i)
                old = state.get(p)
                if old is not None and old[0] == "dir" and op == "dir":
                    state[p] = ("dir", i)
                    continue
                drop(p)
                state[p] = (op, i)
    return state


def _apply_dense(layers: list[list[tuple[str, str]]]) -> dict[str, tuple[str, int]]:
    from imagewise.archive.entry import Entry

    tree = FileTree()
    kinds = {"file": Kind.FILE, "dir": Kind.DIR, "whiteout": Kind.WHITEOUT, "opaque": Kind.OPAQUE}
    for i, ops in enumerate(layers):
        for op, p in ops:
            tree.apply(Entry(p, kinds[op], 0, 0o644), i)
    return {p: ("dir" if n.kind is Kind.DIR else "file", n.layer) for p, n in tree.walk()}


@settings(max_examples=400, deadline=None)
@given(OPS)
def test_dense_tree_equals_the_naive_model(layers: list[list[tuple[str, str]]]) -> None:
    assert _apply_dense(layers) == naive(layers)


@settings(max_examples=400, deadline=None)
@given(OPS)
def test_sparse_table_keeps_exactly_the_surviving_kept_paths(
    layers: list[list[tuple[str, str]]],
) -> None:
    """An owner keeping only files whose name ends in 'c' (the rest passed to ``apply``) ends
    with exactly those of them the final filesystem holds."""
    owned: set[str] = set()
    table = PathTable(lambda path, layer: owned.discard(path))
    kinds = {"file": Kind.FILE, "dir": Kind.DIR, "whiteout": Kind.WHITEOUT, "opaque": Kind.OPAQUE}
    for i, ops in enumerate(layers):
        for op, p in ops:
            if op == "file" and p.endswith("c"):
                table.apply(p, Kind.FILE, i)
                table.keep(p, False, i)
                owned.add(p)
            else:
                table.apply(p, kinds[op], i)
    final = naive(layers)
    assert owned == {p for p, (k, _) in final.items() if k == "file" and p.endswith("c")}


def test_filetree_nodes_are_the_merged_tree() -> None:
    assert issubclass(FileTree, MergedTree) and issubclass(OverlayState, MergedTree)
    assert Node.__slots__  # FileTree keeps its compact node


# -- every whiteout-aware visitor sees the same final filesystem -------------------------------

SECRET = f"aws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\n".encode()
META = "opt/app/tool-1.0.dist-info/METADATA"


CONF = "opt/app/tool-1.0.dist-info/deploy.conf"
BIG = b"#" * 70_000


def _wh(path: str) -> str:
    parent, _, name = path.rpartition("/")
    return f"{parent}/.wh.{name}"


def _written() -> dict[str, bytes | TarFile]:
    """Files every visitor keeps a fact about: a Python distribution's METADATA (SBOM) and a
    file with a secret (secrets), both setuid (audit) and 64 KiB+ (overlay hashes them)."""
    meta = b"Metadata-Version: 2.1\nName: tool\nVersion: 1.0\n\n" + BIG
    return {META: TarFile(meta, mode=0o4755), CONF: TarFile(SECRET + BIG, mode=0o4755)}


SCENARIOS: dict[str, tuple[list[dict[str, bytes | TarFile]], bool]] = {
    "kept": ([_written(), {"other": b"x"}], True),
    "whiteout": ([_written(), {_wh(META): b"", _wh(CONF): b""}], False),
    "parent-whiteout": ([_written(), {"opt/.wh.app": b""}], False),
    "opaque-later": ([_written(), {"opt/app/.wh..wh..opq": b""}], False),
    "opaque-same-layer": ([{"opt/app/.wh..wh..opq": b"", **_written()}], True),
    "dir-replaces-file": (
        [_written(), {META: TarFile(kind="dir"), CONF: TarFile(kind="dir"), META + "/x": b"y"}],
        False,
    ),
    "file-replaces-parent": ([_written(), {"opt/app": b"not a dir"}], False),
    "parent-relisted": ([_written(), {"opt/app": TarFile(kind="dir")}], True),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_visitors_agree_on_what_survives(tmp_path: Path, name: str) -> None:
    layers, survives = SCENARIOS[name]
    img = build_image([tar_bytes(files) for files in layers])
    archive = tmp_path / "img.tar"
    write_docker_archive(img, archive)
    overlay, audit, sbom, secrets = (
        OverlayState(),
        AuditVisitor(),
        CatalogVisitor(),
        SecretsVisitor(),
    )
    with open_source(f"docker-archive:{archive}") as src:
        run_pass(src.image(), [overlay, audit, sbom, secrets])
    seen = {
        "overlay": all(
            (n := overlay.lookup(p)) is not None and n.kind is Kind.FILE for p in (META, CONF)
        ),
        "audit": META in audit.setid and CONF in audit.setid,
        "sbom": META in sbom.evidence,
        "secrets": any(not f.extra.get("removed_later") for f in secrets.findings),
    }
    assert secrets.findings, "the secret was found in the layer that wrote it"
    assert seen == dict.fromkeys(seen, survives)
