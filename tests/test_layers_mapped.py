"""Layers read in place: the mapped walk agrees with the streamed one, digests are still checked
(in the background, before anything reaches the cache), and damage is reported the same way."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import corpus
from fixtures_images import build_image, write_docker_archive, write_oci_layout
from layers_support import make_tar, member, random_files

from imagewise import progress
from imagewise.archive.mapped import MappedRegion, Verifier, hash_region
from imagewise.archive.region import Region
from imagewise.archive.walk import walk, walk_buffer
from imagewise.errors import DigestMismatch, ImageFormatError, LayerReadError
from imagewise.layers import passes
from imagewise.layers.model import Entry, Visitor
from imagewise.layers.passes import run_pass
from imagewise.sources import open_source

DIGEST = "sha256:" + "ab" * 32


def _rows(entries: Any) -> list[tuple[Any, ...]]:
    return [
        (
            e.path,
            e.kind,
            e.size,
            e.mode,
            e.uid,
            e.linkname,
            e.offset,
            hashlib.sha256(e.read()).hexdigest(),
        )
        for e in entries
    ]


def test_buffer_walk_equals_stream_walk() -> None:
    tar = make_tar(
        random_files(300)
        + [
            member("l/" + "n" * 150, data=b"long"),
            member("l/s", "symlink", link="x" * 120),
            member("l/.wh.gone"),
            member("l/.wh..wh..opq"),
            member("l/h", "hardlink", link="data/f00001"),
        ],
        tarfile.PAX_FORMAT,
    )
    assert _rows(walk_buffer(tar)) == _rows(walk(io.BytesIO(tar)))
    # from an offset inside a bigger buffer: offsets still count from the tar's start
    padded = b"\xff" * 1536 + tar
    assert _rows(walk_buffer(padded, 1536)) == _rows(walk(io.BytesIO(tar)))


def test_buffer_walk_fails_like_the_stream_walk_on_damage() -> None:
    from hypothesis import HealthCheck, given, settings, strategies as st

    tar = make_tar(random_files(40, seed=3))

    def outcome(fn: Any) -> tuple[Any, ...]:
        rows: list[tuple[Any, ...]] = []
        try:
            for e in fn():
                rows.append((e.path, e.kind, e.offset, e.read()))
        except LayerReadError as err:
            return tuple(rows), "error", err.offset
        return tuple(rows), "ok", None

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        st.lists(st.tuples(st.integers(0, len(tar) - 1), st.integers(0, 255)), max_size=6),
        st.integers(0, len(tar)),
    )
    def check(edits: list[tuple[int, int]], cut: int) -> None:
        data = bytearray(tar)
        for pos, value in edits:
            data[pos] = value
        blob = bytes(data[:cut])

        def on_unsafe(name: str, offset: int) -> None:
            pass

        assert outcome(lambda: walk_buffer(blob, 0, DIGEST, on_unsafe)) == outcome(
            lambda: walk(io.BytesIO(blob), DIGEST, on_unsafe)
        )

    check()


def _archive(tmp_path: Path, layers: list[bytes], style: str = "legacy") -> str:
    img = build_image(layers, compression="", fmt="docker")
    return write_docker_archive(img, tmp_path / "img.tar", style=style)


LAYERS = [
    make_tar(
        [
            member("etc", "dir"),
            member("etc/a", data=b"a" * 3000),
            member("big", data=bytes(range(256)) * 600),
        ]
    ),
    make_tar(
        [member("etc/.wh.a"), member("etc/b", data=b"b" * 70_000), member("big", data=b"changed")]
    ),
]


class Paths(Visitor):
    def __init__(self) -> None:
        self.rows: list[tuple[str, str]] = []

    def wants_content(self, entry: Entry) -> bool:
        return True

    def visit(self, entry: Entry) -> None:
        self.rows.append((entry.path, hashlib.sha256(entry.read()).hexdigest()))


@pytest.mark.parametrize("style", ["legacy", "oci"])
def test_docker_archive_layers_are_mapped_at_unaligned_offsets(
    tmp_path: Path, style: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = _archive(tmp_path, LAYERS, style)
    with open_source(ref) as src:
        img = src.image()
        regions = [layer.region() for layer in img.layers]
        assert all(r is not None for r in regions)
        assert any(r.offset % 4096 for r in regions if r)  # maps must start before the member
        opened: list[str] = []
        monkeypatch.setattr(src, "open_blob", lambda d: opened.append(str(d)))
        mapped = Paths()
        run_pass(img, [mapped])
        assert opened == []  # nothing streamed
        monkeypatch.undo()
        monkeypatch.setattr(passes, "MAP", False)
        streamed = Paths()
        run_pass(img, [streamed])
    assert mapped.rows == streamed.rows and len(mapped.rows) == 6


def test_dive_corpus_image_same_analysis_mapped_and_streamed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from imagewise.analysis import analyze

    path = corpus("dive", "test-docker-image.tar")
    with open_source(f"docker-archive:{path}") as src:
        img = src.image()
        assert all(layer.region() is not None for layer in img.layers)
        mapped = analyze(img).to_json()
        monkeypatch.setattr(passes, "MAP", False)
        streamed = analyze(img).to_json()
    assert json.dumps(mapped, sort_keys=True) == json.dumps(streamed, sort_keys=True)


def _tamper(tmp_path: Path) -> str:
    """An archive whose second layer has one byte changed in a file's content."""
    ref = _archive(tmp_path, LAYERS)
    path = Path(ref.split(":", 1)[1])
    data = bytearray(path.read_bytes())
    at = data.find(b"b" * 70_000)
    data[at + 100] = ord("B")
    path.write_bytes(bytes(data))
    return ref


def test_tampered_layer_fails_the_pass_when_verifying(tmp_path: Path) -> None:
    ref = _tamper(tmp_path)
    with open_source(ref) as src:
        img = src.image()
        with pytest.raises(DigestMismatch) as ei:
            run_pass(img, [Paths()])
        assert str(img.layers[1].digest) in str(ei.value) and "layer 2" in str(ei.value)
        run_pass(img, [Paths()], verify=False)  # trusted: read as it is


def test_a_wrong_digest_outranks_a_visitor_error_at_the_end(tmp_path: Path) -> None:
    """Visitors end the image while the digest checks may still run; should one fail there, the
    wrong digest is still the error reported (what it read was not the image's)."""

    class Failing(Paths):
        def end_image(self, image: Any) -> None:
            raise ValueError("a visitor's own failure")

    ref = _tamper(tmp_path)
    with open_source(ref) as src:
        img = src.image()
        with pytest.raises(DigestMismatch):
            run_pass(img, [Failing()])
        with pytest.raises(ValueError, match="own failure"):
            run_pass(img, [Failing()], verify=False)  # trusted: nothing else to report


def test_tampered_layer_never_reaches_the_cache(tmp_path: Path) -> None:
    from imagewise.cache import LayerCache

    ref = _tamper(tmp_path)
    cache = LayerCache(tmp_path / "cache")
    with open_source(ref) as src:
        img = src.image()
        with pytest.raises(DigestMismatch):
            run_pass(img, [Paths()], cache=cache, verify=False)  # the cache insists on checks
        assert cache.load_entries(str(img.layers[1].diff_id)) is None
        assert cache.load_entries(str(img.layers[0].diff_id)) is not None  # a good layer is kept


def test_analyze_cli_verify_flag(tmp_path: Path) -> None:
    from cli_runner import CliRunner

    from imagewise.cli.main import cli

    ref = _tamper(tmp_path)
    ok = CliRunner().invoke(cli, ["analyze", ref, "--format", "json"])
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(cli, ["analyze", ref, "--verify"])
    assert bad.exit_code == 2 and "digest mismatch" in bad.output
    assert "layer 2" in bad.output


def test_truncated_archive_is_reported(tmp_path: Path) -> None:
    ref = _archive(tmp_path, LAYERS)
    with open_source(ref) as src:
        region = src.image().layers[1].region()
    assert region is not None
    with pytest.raises(ImageFormatError, match="truncated"):
        MappedRegion(Region(region.path, region.offset, region.length + 10**9))
    # a region cut inside an entry: the walk names the layer and offset, the map still closes
    with (
        MappedRegion(Region(region.path, region.offset, 1024 + 512)) as m,
        pytest.raises(LayerReadError) as ei,
    ):
        for e in walk_buffer(m.buffer, m.start, DIGEST):
            e.read()
    assert ei.value.digest == DIGEST


def test_hash_region_and_verifier(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000
    f = tmp_path / "blob"
    f.write_bytes(b"x" * 777 + data + b"y" * 10)
    region = Region(str(f), 777, len(data))
    want = hashlib.sha256(data).hexdigest()
    assert hash_region(region) == want
    from imagewise.oci.digest import Digest

    with Verifier() as v:
        good = v.submit(region, Digest("sha256", want), len(data), "good")
        wrong = v.submit(region, Digest("sha256", "0" * 64), len(data), "wrong")
        short = v.submit(region, Digest("sha256", want), len(data) + 1, "short")
        good.result()
        with pytest.raises(DigestMismatch, match="wrong"):
            wrong.result()
        with pytest.raises(DigestMismatch, match="bytes instead of"):
            short.result()
    assert hash_region(Region(str(f), 0, 0)) == hashlib.sha256(b"").hexdigest()


def test_progress_of_a_mapped_layer_reaches_its_size(tmp_path: Path) -> None:
    class Rep(progress.Reporter):
        def __init__(self) -> None:
            self.advanced: dict[str, int] = {}

        def advance(self, key: str, amount: int) -> None:
            assert amount >= 0
            self.advanced[key] = self.advanced.get(key, 0) + amount

    layers = [make_tar(random_files(600))]
    ref = _archive(tmp_path, layers)
    rep = Rep()
    with open_source(ref) as src:
        img = src.image()
        run_pass(img, [Paths()], rep)
    assert rep.advanced == {"layer-0": img.layers[0].size}


def test_layout_with_uncompressed_layers_is_mapped(tmp_path: Path) -> None:
    img = build_image(LAYERS, compression="", fmt="oci")
    write_oci_layout(img, tmp_path / "l")
    with open_source(f"oci:{tmp_path / 'l'}") as src:
        image = src.image()
        assert [layer.region().offset for layer in image.layers] == [0, 0]  # type: ignore[union-attr]
        v = Paths()
        run_pass(image, [v])
    assert len(v.rows) == 6
    gz = build_image(LAYERS, compression="gzip", fmt="oci")
    write_oci_layout(gz, tmp_path / "g")
    with open_source(f"oci:{tmp_path / 'g'}") as src:
        image = src.image()
        checks = passes._Checks()
        assert checks.region(image.layers[0]) is None  # compressed: streamed, not mapped


def test_big_files_of_a_mapped_layer_are_hashed_only_when_their_size_repeats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Duplicates, chmod-only rewrites and cached hashes come out as with eager hashing, but a
    big file whose size no other file has is never read."""
    from imagewise.analysis import analyze, overlay
    from imagewise.cache import LayerCache

    same = bytes(range(256)) * 400  # 102,400 bytes, twice: duplicated content
    other = bytes(reversed(range(256))) * 400  # same size, other content: hashed, not a duplicate
    lone = b"x" * 90_000  # the only file of its size: never hashed
    layers = [
        make_tar(
            [
                member("a", data=same),
                member("b", data=other),
                member("lone", data=lone),
                member("m", data=b"m" * 80_000),
            ]
        ),
        make_tar([member("copy", data=same), member("m", data=b"m" * 80_000, mode=0o755)]),
    ]
    ref = _archive(tmp_path, layers)
    hashed: list[int] = []
    real = overlay._hash_region
    monkeypatch.setattr(
        overlay, "_hash_region", lambda r, maps: hashed.append(r.length) or real(r, maps)
    )
    with open_source(ref) as src:
        img = src.image()
        lazy = analyze(img).to_json()
        assert sorted(hashed) == [80_000, 80_000, 102_400, 102_400, 102_400]
        monkeypatch.setattr(passes, "MAP", False)
        eager = analyze(img).to_json()
        monkeypatch.setattr(passes, "MAP", True)
        hashed.clear()
        cache = LayerCache(tmp_path / "cache")
        run_pass(img, [overlay.OverlayState()], cache=cache)
        assert sorted(hashed) == [80_000, 80_000, 90_000, 102_400, 102_400, 102_400]
    assert json.dumps(lazy, sort_keys=True) == json.dumps(eager, sort_keys=True)
    rules = {f["rule"]: f for f in lazy["leftovers"]}
    assert [e["path"] for e in rules["IW-WASTE-DUPLICATE-CONTENT"]["examples"]] == ["/a", "/copy"]
    assert rules["IW-WASTE-METADATA"]["path"] == "/m"  # same size, same content: only the mode


def _rss_file_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssFile:"):
                return int(line.split()[1])
    raise AssertionError("no RssFile in /proc/self/status")


@pytest.mark.parametrize("batches", [True, False])
def test_a_mapped_layer_read_whole_stays_out_of_the_resident_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batches: bool
) -> None:
    """Pages of the map behind the walk are let go (``MappedRegion.release``), also those a
    visitor read the content of after a batch was scanned: reading every byte of a 48 MiB layer
    keeps a few MiB of it resident, not the layer."""
    monkeypatch.setattr(passes, "BATCHES", batches)
    monkeypatch.setenv("IMAGEWISE_PARTNER", "0")
    layer = make_tar(member(f"d/f{i}", data=bytes([i % 251]) * 16384) for i in range(3072))
    ref = _archive(tmp_path, [layer])
    peak = [0]

    class Reader(Visitor):
        def wants_content(self, entry: Entry) -> bool:
            return True

        def visit(self, entry: Entry) -> None:
            assert len(entry.read()) == entry.size
            peak[0] = max(peak[0], _rss_file_kb() - base)

    with open_source(ref) as src:
        image = src.image()
        base = _rss_file_kb()
        run_pass(image, [Reader()], verify=False)
    assert 0 < peak[0] < 12 * 1024, f"{peak[0]} KiB of the layer stayed resident"


@pytest.mark.parametrize("step", [1, 7, 4096, 1 << 20])
def test_read_region_hashes_what_the_map_hashes(
    tmp_path: Path, step: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hashing process reads regions with ``preadv`` into one buffer: the same digest as
    the map at any buffer size (a region's end inside, at and past a buffer's), the empty
    region too, and a file shorter than the region is "archive is truncated"."""
    from imagewise.archive import mapped

    monkeypatch.setattr(mapped, "READ_INTO", step)
    data = os.urandom(3 * 4096 + 5)
    f = tmp_path / "blob"
    f.write_bytes(b"x" * 777 + data + b"y" * 10)
    for offset, length in (
        (777, len(data)),
        (0, 777),
        (778, 4096),
        (777, 0),
        (0, 777 + len(data) + 10),
    ):
        region = Region(str(f), offset, length)
        assert hash_region(region, read=True) == hash_region(region)
    with pytest.raises(ImageFormatError, match="truncated"):
        hash_region(Region(str(f), 777, len(data) + 11), read=True)
    assert not [t for t in threading.enumerate() if t.name == "imagewise-read-ahead"]


def test_read_ahead_stops_its_reader_when_the_consumer_fails(tmp_path: Path) -> None:
    """The reads run a few buffers ahead in a thread: an error of the consumer reaches the
    caller, and the reader is gone and the file closed when it does."""
    from imagewise.archive.mapped import read_ahead

    f = tmp_path / "blob"
    f.write_bytes(os.urandom(64 * 1024))
    seen: list[bytes] = []

    def update(part: memoryview) -> None:
        seen.append(bytes(part))
        if len(seen) == 3:
            raise RuntimeError("the hash gave up")

    fds = len(os.listdir("/proc/self/fd"))
    with pytest.raises(RuntimeError, match="gave up"):
        read_ahead(Region(str(f), 0, 64 * 1024), update, buffers=2, step=4096)
    assert b"".join(seen) == f.read_bytes()[: 3 * 4096]  # in order, nothing skipped
    assert not [t for t in threading.enumerate() if t.name == "imagewise-read-ahead"]
    assert len(os.listdir("/proc/self/fd")) == fds
