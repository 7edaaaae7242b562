"""The single pass: hook order, content shared between visitors, one read per layer, progress,
the layer cache, and errors naming the layer."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from layers_support import make_tar, member, oci_layout

from imagewise import progress
from imagewise.errors import DigestMismatch, LayerReadError
from imagewise.layers import passes
from imagewise.layers.model import Entry, Visitor
from imagewise.layers.passes import run_pass

BIG = bytes(range(256)) * 4096  # 1 MiB


class Recorder(Visitor):
    def __init__(self, name: str, wants: bool, chunked: bool = False) -> None:
        self.name = name
        self.wants = wants
        self.chunked = chunked
        self.events: list[str] = []
        self.digests: dict[str, str] = {}
        self.errors: list[str] = []

    def begin_image(self, image: Any) -> None:
        self.events.append("begin_image")

    def begin_layer(self, index: int, layer: Any) -> None:
        self.events.append(f"begin_layer {index}")

    def wants_content(self, entry: Entry) -> bool:
        return self.wants

    def visit(self, entry: Entry) -> None:
        self.events.append(f"visit {entry.path}")
        if not entry.is_file:
            return
        try:
            if self.chunked:
                h = hashlib.sha256()
                f = entry.open()
                while chunk := f.read(4096):
                    h.update(chunk)
                self.digests[entry.path] = h.hexdigest()
            else:
                self.digests[entry.path] = hashlib.sha256(entry.read()).hexdigest()
        except ValueError as e:
            self.errors.append(str(e))

    def end_layer(self, index: int, layer: Any) -> None:
        self.events.append(f"end_layer {index}")

    def end_image(self, image: Any) -> None:
        self.events.append("end_image")


@pytest.fixture(autouse=True, params=[True, False], ids=["prefetch", "inline"])
def decode_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Every pass test runs with decoding in a background thread and inline."""
    monkeypatch.setattr(passes, "PREFETCH", request.param)
    return bool(request.param)


@pytest.fixture
def image(tmp_path: Path) -> Any:
    from imagewise.sources import open_source

    layers = [
        make_tar(
            [member("etc", "dir"), member("etc/small", data=b"hello"), member("big.bin", data=BIG)]
        ),
        make_tar([member("etc/.wh.small"), member("more", data=b"x" * 70_000)]),
    ]
    src = open_source(oci_layout(tmp_path / "layout", layers, "gzip"))
    yield src.image()
    src.close()


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


WANT = {"etc/small": _sha(b"hello"), "big.bin": _sha(BIG), "more": _sha(b"x" * 70_000)}


def test_hook_order(image: Any) -> None:
    v = Recorder("a", wants=False)
    run_pass(image, [v])
    assert v.events == [
        "begin_image",
        "begin_layer 0",
        "visit etc",
        "visit etc/small",
        "visit big.bin",
        "end_layer 0",
        "begin_layer 1",
        "visit etc/small",
        "visit more",
        "end_layer 1",
        "end_image",
    ]


def test_the_collector_is_paused_for_the_pass_and_back_after(image: Any) -> None:
    """Cyclic garbage collection is off while the pass runs (every hook) and back on after,
    also when a visitor fails; a collector the caller had turned off stays off."""
    import gc

    class Seen(Recorder):
        def visit(self, entry: Entry) -> None:
            self.events.append(f"gc {gc.isenabled()}")

        def end_image(self, image: Any) -> None:
            self.events.append(f"gc {gc.isenabled()}")
            if self.name == "fails":
                raise RuntimeError("boom")

    assert gc.isenabled()
    v = Seen("a", wants=False)
    run_pass(image, [v])
    assert [e for e in v.events if e.startswith("gc")] == ["gc False"] * 6
    assert gc.isenabled()
    with pytest.raises(RuntimeError, match="boom"):
        run_pass(image, [Seen("fails", wants=False)])
    assert gc.isenabled()
    gc.disable()
    try:
        run_pass(image, [Seen("b", wants=False)])
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_several_visitors_share_content(image: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passes, "SHARE_LIMIT", 100_000)  # big.bin goes through the spool file
    a, b, c = Recorder("a", True), Recorder("b", True, chunked=True), Recorder("c", True)
    run_pass(image, [a, b, c])
    for v in (a, b, c):
        assert v.digests == WANT and not v.errors


def test_single_reader_streams_and_others_may_not_read(image: Any) -> None:
    reader, bystander = Recorder("r", True, chunked=True), Recorder("b", False)
    run_pass(image, [bystander, reader])
    assert reader.digests == WANT
    assert bystander.digests == {} and len(bystander.errors) == 3
    assert "wants_content" in bystander.errors[0]


def test_each_layer_blob_is_read_once(image: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    real = image.source.open_blob

    def counting(desc: Any) -> Any:
        opened.append(str(desc.digest))
        return real(desc)

    monkeypatch.setattr(image.source, "open_blob", counting)
    run_pass(image, [Recorder("a", True), Recorder("b", True), Recorder("c", False)])
    assert opened == [str(layer.digest) for layer in image.layers]


class Progress(progress.Reporter):
    def __init__(self) -> None:
        self.threads: set[int] = set()
        self.totals: dict[str, int | None] = {}
        self.advanced: dict[str, int] = {}
        self.done_keys: list[str] = []

    def start(self, key: str, description: str, total: int | None = None) -> None:
        self.totals[key] = total

    def advance(self, key: str, amount: int) -> None:
        import threading

        self.threads.add(threading.get_ident())
        self.advanced[key] = self.advanced.get(key, 0) + amount

    def done(self, key: str) -> None:
        self.done_keys.append(key)


def test_progress_counts_compressed_bytes(image: Any) -> None:
    rep = Progress()
    run_pass(image, [Recorder("a", False)], rep)
    sizes = [layer.size for layer in image.layers]
    assert list(rep.totals.values()) == sizes
    assert list(rep.advanced.values()) == sizes
    assert rep.done_keys == list(rep.totals)
    import threading

    assert rep.threads == {threading.get_ident()}  # never called from the decoding thread


class Counter(Visitor):
    name = "counter"
    version = "1"

    def __init__(self) -> None:
        self.per_layer: dict[int, int] = {}
        self.restored: list[int] = []
        self._n = 0

    def begin_layer(self, index: int, layer: Any) -> None:
        self._n = 0

    def wants_content(self, entry: Entry) -> bool:
        return True

    def visit(self, entry: Entry) -> None:
        self._n += len(entry.read())

    def layer_result(self, index: int, layer: Any) -> object:
        return self._n

    def restore_layer(self, index: int, layer: Any, result: object) -> None:
        self.restored.append(index)
        self._n = int(result)  # type: ignore[call-overload]

    def end_layer(self, index: int, layer: Any) -> None:
        self.per_layer[index] = self._n


def test_layer_cache_replays_without_reading(
    image: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imagewise.cache import LayerCache

    cache = LayerCache(tmp_path / "cache")
    first, paths1 = Counter(), Recorder("paths", False)
    run_pass(image, [first, paths1], cache=cache)
    assert cache.misses == 2 and cache.hits == 0

    def no_read(desc: Any) -> Any:
        raise AssertionError("a cached layer was read")

    monkeypatch.setattr(image.source, "open_blob", no_read)
    second, paths2 = Counter(), Recorder("paths", False)
    run_pass(image, [second, paths2], cache=cache)
    assert cache.hits == 2
    assert second.restored == [0, 1] and second.per_layer == first.per_layer
    assert paths2.events == paths1.events


def test_corrupt_layer_names_the_layer(tmp_path: Path) -> None:
    from imagewise.sources import open_source

    ref = oci_layout(tmp_path / "l", [make_tar([member("f", data=b"z" * 5000)])], "gzip")
    with open_source(ref) as src:
        img = src.image()
        blob = tmp_path / "l" / "blobs" / "sha256" / img.layers[0].digest.hex
        data = bytearray(blob.read_bytes())
        data[30:60] = b"\x00" * 30
        blob.write_bytes(bytes(data))
        with pytest.raises((DigestMismatch, LayerReadError)) as ei:
            run_pass(img, [Recorder("a", True)])
    assert img.layers[0].digest.hex in str(ei.value)


class Columns(Visitor):
    """Records every entry's header fields, taking batches when ``batches`` (and noting whether
    a batch had content and what its files read as)."""

    name = "columns"

    def __init__(self, batches: bool) -> None:
        self.batches = batches
        self.rows: list[tuple[Any, ...]] = []
        self.singles: list[str] = []  # entries visited one by one
        self.contentful: list[bool] = []
        self.read: list[bytes] = []

    def visit(self, entry: Entry) -> None:
        self.singles.append(entry.path)
        self.rows.append(
            (
                entry.path,
                entry.kind,
                entry.size,
                entry.mode,
                entry.uid,
                entry.gid,
                entry.linkname,
                entry.mtime,
                entry.raw_name,
            )
        )

    def visit_batch(self, batch: Any) -> None:
        self.contentful.append(batch.has_content)
        for k in range(len(batch)):
            self.rows.append(
                (
                    batch.paths[k],
                    batch.kinds[k],
                    batch.sizes[k],
                    batch.modes[k],
                    batch.uids[k],
                    batch.gids[k],
                    batch.links[k],
                    batch.mtimes[k],
                    batch.names[k],
                )
            )
            if batch.sizes[k] and not batch.has_content:
                self.read.append(batch.content(k) + batch.entry(k).read())


def test_a_replayed_layer_comes_in_batches_with_every_field(tmp_path: Path) -> None:
    """Enough entries for several replay batches, with hard links, whiteouts and an opaque
    marker between them (visited one by one): every visitor sees the same entries in the same
    order with every header field as the walk gave them, and no content."""
    from imagewise.archive.entry import Kind
    from imagewise.cache import LayerCache
    from imagewise.sources import open_source

    n = passes.REPLAY_BATCH + 100
    files = [
        member(
            f"d{i % 7}/f{i}",
            data=b"x" * (i % 5),
            mode=0o600 + i % 64,
            uid=i % 3,
            gid=i % 4,
            mtime=1_700_000_000 + i,
        )
        for i in range(n)
    ]
    files[10:10] = [member("d0/hard", "hardlink", link="d0/f0")]
    files[20:20] = [member("d1/.wh.gone"), member("d2/.wh..wh..opq")]
    files[n // 2 : n // 2] = [member("s", "symlink", link="d0/f1"), member("d9", "dir")]
    tars = [make_tar([member("gone", data=b"old")]), make_tar(files)]
    ref = oci_layout(tmp_path / "layout", tars, "gzip")
    cache = LayerCache(tmp_path / "cache")
    for batches in (True, False):
        with open_source(ref) as src:
            cold = Columns(batches)
            run_pass(src.image(), [cold], cache=cache)
        with open_source(ref) as src:
            warm = Columns(batches)
            before = cache.hits
            run_pass(src.image(), [warm], cache=cache)
        assert cache.hits == before + 2
        assert warm.rows == cold.rows and len(warm.rows) == n + 6
        assert not any(warm.contentful) and set(warm.read) <= {b""}
        unbatched = {Kind.HARDLINK, Kind.WHITEOUT, Kind.OPAQUE}
        specials = [(r[0], r[1]) for r in warm.rows if r[1] in unbatched]
        assert specials == [
            ("d0/hard", Kind.HARDLINK),
            ("d1/gone", Kind.WHITEOUT),
            ("d2", Kind.OPAQUE),
        ]
        if batches:
            assert set(warm.singles) == {r[0] for r in warm.rows if r[1] in unbatched}
            assert len(warm.contentful) >= 3  # the run past REPLAY_BATCH is cut
