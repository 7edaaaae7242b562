"""Batches of plain entries (``archive/batch.py``, ``_tarhead.scan``) are the walk's entries.

Random tar streams (those of ``test_walk_native``: every header form, then corrupted) are walked
entry by entry and in batches of a few entries; expanded, the batches must give every entry
field, every content byte and the error, exactly. Then random multi-layer images (files over
directories and back, whiteouts, opaque markers, hard links, metadata rewrites, big files that
get content hashes) go through the overlay and dive visitors entry by entry and batch by batch:
every figure, hidden group, final-filesystem fact and tree node must agree.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from layers_support import make_tar, member
from secret_samples import GH
from tars_support import Chunked, tars

from imagewise.analysis import final as final_mod
from imagewise.analysis.dive import DiveEfficiency
from imagewise.analysis.final import final_facts
from imagewise.analysis.overlay import OverlayState
from imagewise.archive import walk as walk_mod
from imagewise.archive.batch import EntryBatch
from imagewise.archive.entry import Kind
from imagewise.archive.region import Region
from imagewise.archive.walk import walk, walk_batches, walk_buffer
from imagewise.audit.filesystem import AuditVisitor
from imagewise.errors import LayerReadError, UnsafePath
from imagewise.layers.model import Visitor
from imagewise.layers.passes import visit_entries
from imagewise.sbom.visitor import CatalogVisitor
from imagewise.secrets.visitor import SecretsVisitor

try:
    from imagewise.archive._tarhead import scan as native_scan
except ImportError:
    if os.environ.get("CI"):
        raise RuntimeError("CI must build imagewise.archive._tarhead (pip install -e . with gcc)")
    native_scan = None
needs_native = pytest.mark.skipif(native_scan is None, reason="no C compiler at install time")

FIELDS = ("path", "kind", "size", "mode", "uid", "gid", "linkname", "mtime", "raw_name")
FIELDS += ("offset", "data_offset")


def _expanded(items: Any) -> tuple[list[Any], int]:
    """Every entry's fields and content (batches expanded), then the error; and how many
    batches came."""
    out: list[Any] = []
    batches = 0
    try:
        for item in items:
            entries = [item]
            if type(item) is EntryBatch:
                batches += 1
                entries = item.entries()
                assert len(item) == len(entries) > 0
            for e in entries:
                out.append((*(getattr(e, f) for f in FIELDS), e.read()))
    except (LayerReadError, UnsafePath) as err:
        out.append((type(err).__name__, str(err)))
    return out, batches


@needs_native
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=tars(), size=st.integers(1, 4), cut=st.none() | st.integers(0, 5000))
def test_batches_are_the_walks_entries(data: bytes, size: int, cut: int | None) -> None:
    data = data if cut is None else data[:cut]  # cut anywhere: in a header, content, padding
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(walk_mod, "BATCH", size)
        mp.setattr(walk_mod, "NATIVE_SCAN", native_scan)
        one_by_one, none = _expanded(walk_buffer(data))
        batched, _ = _expanded(walk_batches(data))
        streamed, _ = _expanded(walk(Chunked(data)))  # no batches from a stream
    assert none == 0
    assert batched == one_by_one
    assert [e for e in streamed if len(e) > 2] == [e for e in one_by_one if len(e) > 2]


@needs_native
def test_a_cut_anywhere_gives_the_same_entries_and_error(monkeypatch: Any) -> None:
    """Every cut of a tar (in a header, in content, in padding, between entries) walks the same
    in batches as entry by entry."""
    data = make_tar(
        [member(f"d/f{i}", data=bytes([65 + i]) * (i * 300)) for i in range(5)]
        + [member("d/e", kind="dir"), member("d/l", kind="symlink", link="f1")]
    )
    monkeypatch.setattr(walk_mod, "NATIVE_SCAN", native_scan)
    end = data.index(bytes(1024), 512)  # the end-of-archive blocks
    for size in (1, 3, 64):
        monkeypatch.setattr(walk_mod, "BATCH", size)
        for cut in range(0, end + 1100, 31):
            assert _expanded(walk_batches(data[:cut]))[0] == _expanded(walk_buffer(data[:cut]))[0]


@needs_native
def test_batches_stop_where_the_walk_must_decide(monkeypatch: Any) -> None:
    """Hard links, whiteouts and PAX headers come one by one; plain runs as batches; a pure
    install (no scanner) gives no batches at all."""
    data = make_tar(
        [
            member("a", data=b"1"),
            member("b/", kind="dir"),
            member("b/c", data=b"22"),
            member("b/.wh.d"),
            member("h", kind="hardlink", link="a"),
            member("e" * 120, data=b"3"),  # PAX path
            member("f", kind="symlink", link="a"),
            member("g", kind="fifo"),
        ]
    )
    monkeypatch.setattr(walk_mod, "BATCH", 2)
    monkeypatch.setattr(walk_mod, "NATIVE_SCAN", native_scan)  # whatever IMAGEWISE_PURE says
    kinds = [
        [e.kind for e in item.entries()] if type(item) is EntryBatch else item.kind
        for item in walk_batches(data)
    ]
    assert kinds == [
        [Kind.FILE, Kind.DIR],
        [Kind.FILE],
        Kind.WHITEOUT,
        Kind.HARDLINK,
        Kind.FILE,
        [Kind.SYMLINK, Kind.FIFO],
    ]
    monkeypatch.setattr(walk_mod, "NATIVE_SCAN", None)
    assert not any(type(item) is EntryBatch for item in walk_batches(data))
    assert native_scan is not None
    assert native_scan(object(), 0, 0, 8, tuple([Kind.FILE] * 256), Kind.FILE, Kind.DIR) is None
    with pytest.raises(TypeError):
        native_scan(data, 0, 0, 8, (Kind.FILE,), Kind.FILE, Kind.DIR)


# -- the visitors: batch by batch as entry by entry ----------------------------------------------

NAMES = ("a", "b", "c")
PKG = "a/node_modules/p/package.json"  # evidence for the SBOM's catalogers
PATHS = [f"{x}/{y}" for x in NAMES for y in NAMES] + list(NAMES) + ["tmp/x", "a/b/c", PKG]
PATHS += ["a/node_modules", "a/node_modules/p", "etc/passwd", "var/cache/apt/x.deb", "a/id_rsa"]
OP = st.tuples(
    st.sampled_from(
        ["file", "big", "dir", "symlink", "hardlink", "whiteout", "opaque", "chmod", "secret"]
    ),
    st.sampled_from(PATHS),
    st.sampled_from(PATHS),
)
LAYERS = st.lists(st.lists(OP, max_size=8), min_size=1, max_size=4)


def _layer(ops: list[tuple[str, str, str]]) -> bytes:
    members = []
    for op, path, other in ops:
        if op == "secret":  # a token first thing or after 9 KB; a NUL first, last or none
            n = len(other)
            body = b"#\n" * 4500 * (n % 2) + f"{GH}\ntoken = {GH}".encode() * n
            body = b"\0" + body if n % 3 == 0 else body + b"\0" if n % 3 == 1 else body
            members.append(member(path, data=body))
        elif op == "file" and path.endswith(".json"):
            doc = f'{{"name": "p", "version": "1.0.{len(other)}"}}'
            members.append(member(path, data=doc.encode()))
        elif op == "file":
            members.append(member(path, data=b"x" * len(other)))
        elif op == "big":  # over the hash threshold, same size for every big file
            members.append(member(path, data=(path + "|").encode() * 40))
        elif op == "chmod":  # same size as "file", another mode: setuid, world-writable
            mode = 0o4755 if len(other) % 2 else 0o777
            members.append(member(path, data=b"x" * len(other), mode=mode))
        elif op in ("dir", "symlink", "hardlink"):
            members.append(member(path, kind=op, link=other))
        elif op == "whiteout":
            parent, _, name = path.rpartition("/")
            members.append(member(f"{parent}/.wh.{name}" if parent else f".wh.{name}"))
        else:
            members.append(member(f"{path}/.wh..wh..opq"))
    return make_tar(members)


def _facts_view(facts: Any) -> Any:
    def buckets(table: dict[Any, Any]) -> Any:
        return sorted((k, b.bytes, b.files, sorted(b.examples)) for k, b in table.items())

    return (
        facts.total_bytes,
        facts.files,
        buckets(facts.leftovers),
        buckets(facts.toolchain),
        sorted((d, sorted((f.path, f.size, f.layer) for f in fs)) for d, fs in facts.duplicates),
        [(f.path, f.size, f.layer) for f in facts.largest],
    )


def _naive_facts(o: OverlayState) -> Any:
    """``final_facts`` the plain way: every file of ``files()``, every path classified."""
    import heapq

    from imagewise.analysis.categories import TOOLCHAIN, leftover_or_toolchain
    from imagewise.analysis.final import LARGEST, FinalFacts
    from imagewise.analysis.model import FileStat
    from imagewise.analysis.overlay import Bucket

    facts = FinalFacts()
    heap: list[Any] = []
    by_size: dict[int, list[Any]] = {}
    for path, node, size in o.files():
        facts.files += 1
        facts.total_bytes += size
        if not size:
            continue
        layer = node.blob[2] if node.blob is not None else node.layer
        cat = leftover_or_toolchain(path)
        if cat == TOOLCHAIN:
            facts.toolchain.setdefault(layer, Bucket()).add(size, path)
        elif cat:
            facts.leftovers.setdefault((cat, layer), Bucket()).add(size, path)
        if node.digest is not None or node.where is not None:
            by_size.setdefault(size, []).append((node, FileStat(path, size, layer)))
        if len(heap) < LARGEST:
            heapq.heappush(heap, (size, path, layer))
        elif size > heap[0][0]:
            heapq.heapreplace(heap, (size, path, layer))
    by_digest: dict[bytes, list[Any]] = {}
    for group in by_size.values():
        for node, stat in group if len(group) > 1 else ():
            by_digest.setdefault(o.digest_of(node), []).append(stat)  # type: ignore[arg-type]
    facts.largest = [FileStat(p, s, layer) for s, p, layer in sorted(heap, reverse=True)]
    facts.duplicates = [(d, copies) for d, copies in by_digest.items() if len(copies) > 1]
    return facts  # (the view compares duplicates in any order)


def _overlay_figures(o: OverlayState) -> Any:
    facts = final_facts(o)
    assert _facts_view(facts) == _facts_view(_naive_facts(o))
    return (
        sorted((k, g.bytes, g.files, sorted(g.examples)) for k, g in o.groups.items()),
        o.layer_written,
        o.layer_files,
        o.layer_entries,
        o.missing_whiteouts,
        sorted((p, n.kind, n.layer, n.meta, s, n.link, o.digest_of(n)) for p, n, s in o.files()),
        sorted(o.index),
        (facts.total_bytes, facts.files, [(f.path, f.size) for f in facts.largest]),
        [(d, [(f.path, f.layer) for f in fs]) for d, fs in facts.duplicates],
    )


def _run(layers: list[bytes], tmp: Path, batched: bool) -> Any:
    overlay, dive = OverlayState(hash_min_bytes=100), DiveEfficiency()
    eager = OverlayState(hash_min_bytes=100, defer=False)  # hashes as it goes
    catalog, secrets, audit = CatalogVisitor(), SecretsVisitor(), AuditVisitor()
    visitors: list[Visitor] = [overlay, dive, eager, catalog, secrets, audit]
    stubs = [SimpleNamespace(diff_id=f"sha256:{i}", digest=f"sha256:{i}") for i in range(9)]
    image: Any = SimpleNamespace(layers=stubs[: len(layers)])
    for v in visitors:
        v.begin_image(image)
    for i, data in enumerate(layers):
        path = tmp / f"layer-{i}.tar"
        path.write_bytes(data)
        origin = Region(str(path), 0, len(data))
        for v in visitors:
            v.begin_layer(i, stubs[i])  # type: ignore[arg-type]
        entries = walk_batches(data, origin=origin) if batched else walk_buffer(data, origin=origin)
        visit_entries(entries, visitors)
        for v in visitors:
            v.end_layer(i, stubs[i])  # type: ignore[arg-type]
    for v in visitors:
        v.end_image(image)
    evidence = {
        p: [(v.layer, v.cataloger, v.parsed) for v in vs] for p, vs in catalog.evidence.items()
    }
    found = [(f.rule, f.location, f.message, f.extra) for f in secrets.findings]
    facts = [audit.setid, audit.world_writable, audit.unnecessary, audit.credentials]
    facts += [audit.caches, audit.accounts]
    return (
        _overlay_figures(overlay),
        _overlay_figures(eager),
        dive.figures,
        evidence,
        (found, secrets.files_read),
        facts,
    )


@needs_native
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layers=LAYERS, size=st.integers(1, 5))
def test_visitors_take_batches_as_entries(
    layers: list[list[tuple[str, str, str]]], size: int, tmp_path_factory: Any
) -> None:
    tars = [_layer(ops) for ops in layers]
    tmp = tmp_path_factory.mktemp("layers")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(walk_mod, "BATCH", size)
        mp.setattr(walk_mod, "NATIVE_SCAN", native_scan)
        mp.setattr(final_mod, "LARGEST", 3)  # a full heap, ties of size included
        assert _run(tars, tmp, batched=True) == _run(tars, tmp, batched=False)


def test_final_facts_count_hard_linked_content_once(tmp_path: Path) -> None:
    tars = [
        _layer([("big", "a/x", ""), ("hardlink", "a/y", "a/x"), ("hardlink", "b", "a/x")]),
        _layer([("file", "c", "abc"), ("hardlink", "a/z", "a/x"), ("whiteout", "a/x", "")]),
    ]
    overlay = _run(tars, tmp_path, batched=True)[0]
    assert overlay[7][:2] == (len("a/x|") * 40 + 3, 4)  # a/y, b, a/z share one copy; c


@needs_native
def test_the_default_visit_batch_visits_each_entry(monkeypatch: Any) -> None:
    monkeypatch.setattr(walk_mod, "NATIVE_SCAN", native_scan)
    seen: list[str] = []

    class Plain(Visitor):
        def visit(self, entry: Any) -> None:
            seen.append(entry.path)

    data = make_tar([member("a", data=b"1"), member("b", kind="dir"), member("b/c")])
    items = list(walk_batches(data))
    for item in items:
        if type(item) is EntryBatch:
            Plain().visit_batch(item)
        else:
            seen.append(item.path)
    assert seen == ["a", "b", "b/c"]
    assert any(type(item) is EntryBatch for item in items)


@needs_native
@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(0, 700),
    moves=st.lists(
        st.tuples(st.integers(-800, 800), st.sampled_from([0, 1, 2]), st.integers(-1, 300))
    ),
)
def test_a_batch_files_content_seeks_as_a_file(size: int, moves: list[Any]) -> None:
    """A file's content in a batch reads and seeks as the same bytes in a file (io.BytesIO):
    every position, read and error alike, whatever the other entries around it."""
    import io

    content = bytes(range(256)) * 3
    content = content[:size]
    data = make_tar([member("x", data=b"a" * 77), member("f", data=content), member("y")])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(walk_mod, "NATIVE_SCAN", native_scan)
        (batch,) = [i for i in walk_batches(data) if type(i) is EntryBatch]
    ours, theirs = batch.entry(1).open(), io.BytesIO(content)
    assert ours.seekable()
    for offset, whence, n in moves:
        results = []
        for f in (ours, theirs):
            try:
                results.append(("ok", f.seek(offset, whence), f.tell(), f.read(n)))
            except (ValueError, OSError) as e:
                results.append((type(e).__name__, f.tell()))
        assert results[0] == results[1]
