"""Hardening of the layer walk and mapped access: archives cut on a block boundary, archives
truncated while they are read in place, sparse tar members."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from fixtures_images import random_image, write_docker_archive

from imagewise.errors import ImagewiseError, NotAnImage
from imagewise.layers.model import Visitor
from imagewise.layers.passes import run_pass
from imagewise.sources import open_source


class _Reads(Visitor):
    name = "reads"

    def wants_content(self, entry: Any) -> bool:
        return True

    def visit(self, entry: Any) -> None:
        entry.read()


@pytest.mark.parametrize("style", ["legacy", "oci"])
def test_docker_archive_cut_on_a_block_boundary_says_truncated(tmp_path: Path, style: str) -> None:
    """Every cut at a multiple of 512 bytes: the image either still opens whole (only trailing
    members such as ``repositories`` were lost) or the error says the archive looks truncated,
    never that it is a plain tar made with tar."""
    img = random_image(seed=3, layers=2, compression="")
    full = tmp_path / "full.tar"
    write_docker_archive(img, full, style=style)
    data = full.read_bytes()
    cut = tmp_path / "cut.tar"
    refused = 0
    for n in range(512, len(data), 512):
        cut.write_bytes(data[:n])
        try:
            with open_source(f"docker-archive:{cut}") as src:
                run_pass(src.image(), [_Reads()])
        except NotAnImage as e:
            raise AssertionError(f"cut at {n}: {e}") from e
        except ImagewiseError as e:
            assert "truncated" in str(e), (n, str(e))
            assert "plain tar" not in str(e) and "\n" not in str(e)
            refused += 1
    assert refused > len(data) // 512 // 2


# --- archives truncated while they are read in place ------------------------------------------


def _big_archive(path: Path, mb: int = 48, small: int = 0) -> None:
    """An uncompressed docker-archive of three layers, ``mb`` MB of files of mixed sizes, then
    ``small`` tiny files in each layer (entries keep a header-only walk busy long enough to be
    cut while it runs: the C header parser lists 48 MB of big files in about a millisecond)."""
    import random

    from fixtures_images import build_image, tar_bytes

    rng = random.Random(5)
    layers = []
    for i in range(3):
        files: dict[str, Any] = {}
        left = mb * (1 << 20) // 3
        n = 0
        while left > 0:
            size = min(left, rng.choice([300, 4000, 30_000, 200_000, 1_500_000]))
            files[f"l{i}/d{n % 17}/f{n}.bin"] = rng.randbytes(size)
            left -= size
            n += 1
        for k in range(small):
            files[f"l{i}/s{k % 97}/t{k}.txt"] = b"x" * (k % 50)
        layers.append(tar_bytes(files))
    write_docker_archive(build_image(layers, compression=""), path)


def _opened_by(pid: int, path: Path) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                return True
        except OSError:
            continue
    return False


def _truncate_while_reading(
    tmp_path: Path, command: list[str], runs: int, writer: bool, small: int = 0
) -> list[tuple[int, str, bool]]:
    """Run ``imagewise COMMAND docker-archive:FILE`` ``runs`` times, cutting FILE short from this
    process as soon as the child has it open (after a varying number of looks).
    ``writer``: hold FILE open for writing from the start (no lease can be had: the child reads
    with pread) and cut it with ftruncate; else cut it with truncate(2), which waits for the
    child's lease. Returns (exit status, stderr, whether the cut came while the child ran)."""
    import random
    import shutil

    rng = random.Random(11)
    master = tmp_path / "master.tar"
    _big_archive(master, small=small)
    victim = tmp_path / "victim.tar"
    out = []
    for i in range(runs):
        shutil.copyfile(master, victim)
        wfd = os.open(victim, os.O_WRONLY) if writer else -1
        try:
            proc = subprocess.Popen(
                ["imagewise", *command, f"docker-archive:{victim}"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            looks, want = 0, 1 + i % 4
            deadline = time.monotonic() + 20
            while proc.poll() is None and time.monotonic() < deadline:
                if _opened_by(proc.pid, victim):
                    looks += 1
                    if looks >= want:
                        break
                time.sleep(0.003 * rng.random())
            during = proc.poll() is None
            size = victim.stat().st_size
            cut = rng.randrange(size // 8, size * 7 // 8)
            if writer:
                os.ftruncate(wfd, cut)
            else:
                os.truncate(victim, cut)
            _, err = proc.communicate(timeout=120)
        finally:
            if wfd >= 0:
                os.close(wfd)
        out.append((proc.returncode, err, during))
    return out


def _one_clear_line(results: list[tuple[int, str, bool]]) -> None:
    for code, err, _during in results:
        assert code in (0, 2), (code, err)  # never killed by a signal (SIGBUS: -7, shell 135)
        if code == 2:
            lines = err.strip().splitlines()
            assert len(lines) == 1 and "Traceback" not in err, err
            assert "truncated" in lines[0] or "being changed" in lines[0], lines[0]
    assert any(code == 2 for code, _, during in results if during), results


@pytest.mark.parametrize("writer", [False, True], ids=["leased-map", "pread"])
def test_archive_truncated_while_analyzed_is_one_line(tmp_path: Path, writer: bool) -> None:
    _one_clear_line(
        _truncate_while_reading(
            tmp_path, ["analyze", "--format", "json", "-o", os.devnull], 8, writer
        )
    )


@pytest.mark.parametrize("command", [["files", "--format", "json"], ["sbom", "-o", os.devnull]])
def test_archive_truncated_while_listed_is_one_line(tmp_path: Path, command: list[str]) -> None:
    _one_clear_line(
        _truncate_while_reading(tmp_path, command, 4, False, small=20_000)
        + _truncate_while_reading(tmp_path, command, 3, True, small=20_000)
    )


def test_mapped_region_reads_or_stops_safely(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a lease the region is read with pread and a cut file is "truncated"; under a lease
    a process that wants to cut the file waits, and ``check`` says the archive is changing."""
    import sys

    from imagewise.archive import mapped
    from imagewise.archive.region import Region
    from imagewise.errors import ImageFormatError

    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(256)) * 4096)
    region = Region(str(path), 4096, 512 * 1024)
    with mapped.MappedRegion(region) as m:
        assert m.mapped and m.buffer[m.start : m.start + 4] == bytes(range(4))
        cutter = subprocess.Popen(
            [sys.executable, "-c", f"import os; os.truncate({str(path)!r}, 100)"]
        )
        deadline = time.monotonic() + 20
        with pytest.raises(ImageFormatError, match="being changed"):
            while time.monotonic() < deadline:
                m.check()
                assert len(m.buffer[m.start : m.start + 65536]) == 65536  # still safe to read
                time.sleep(0.005)
    assert cutter.wait(timeout=30) == 0 and path.stat().st_size == 100

    path.write_bytes(bytes(range(256)) * 4096)
    monkeypatch.setattr(mapped, "LEASE", False)
    with mapped.MappedRegion(region) as m:
        assert not m.mapped and m.buffer[0:4] == bytes(range(4))
        os.truncate(path, 8192)
        m.check()  # nothing to stop: pread cannot fault
        with pytest.raises(ImageFormatError, match="truncated"):
            m.buffer[0:65536]
    maps = mapped.FileMaps()
    with pytest.raises(ImageFormatError, match="truncated"):
        maps.feed(region, lambda part: None)
    maps.close()


# --- sparse members, as GNU tar writes them ---------------------------------------------------

SPARSE_FORMATS = {
    "gnu": ["--format=gnu", "--sparse"],
    "pax-0.0": ["--format=posix", "--sparse-version=0.0"],
    "pax-0.1": ["--format=posix", "--sparse-version=0.1"],
    "pax-1.0": ["--format=posix", "--sparse-version=1.0"],
}


def _sparse_files(root: Path) -> dict[str, bytes]:
    """Files with holes: a few data runs in 5 MB, 30 runs in 4 MB (GNU extension headers), one
    all hole, and a plain small file. Returns their expected content by path."""
    d = root / "dir"
    d.mkdir(parents=True)
    layout = {
        "dir/big": (
            5 * 1024 * 1024 + 123,
            [(1000, b"A" * 5000), (2 << 20, b"B" * 70000), (5 * 1024 * 1024 + 100, b"C" * 23)],
        ),
        "dir/many": (4 << 20, [(i * 131072, bytes([65 + i % 26]) * 600) for i in range(30)]),
        "dir/hole": (3 << 20, []),
    }
    out: dict[str, bytes] = {}
    for name, (size, runs) in layout.items():
        content = bytearray(size)
        with open(root / name, "wb") as f:
            f.truncate(size)
            for at, data in runs:
                f.seek(at)
                f.write(data)
                content[at : at + len(data)] = data
        out[name] = bytes(content)
    (d / "small").write_bytes(b"hello\n")
    out["dir/small"] = b"hello\n"
    return out


@pytest.fixture(scope="module")
def sparse_tars(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[bytes, dict[str, bytes]]]:
    import shutil
    import tarfile

    tar = shutil.which("tar")
    assert tar, "GNU tar is required"
    root = tmp_path_factory.mktemp("sparse")
    expected = _sparse_files(root / "src")
    out = {}
    for name, flags in SPARSE_FORMATS.items():
        dest = root / f"{name}.tar"
        subprocess.run(
            [
                tar,
                *flags,
                "--owner=0",
                "--group=0",
                "--mtime=@1700000000",
                "-C",
                str(root / "src"),
                "-cf",
                str(dest),
                "dir",
            ],
            check=True,
        )
        with tarfile.open(dest) as tf:  # the reference reader agrees these are sparse members
            assert tf.getmember("dir/big").issparse() and tf.getmember("dir/many").issparse()
        out[name] = (dest.read_bytes(), expected)
    return out


class _Trickle:
    """A stream that hands out a few hundred bytes at a time (chunk boundaries everywhere)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int = -1) -> bytes:
        n = 700 if n is None or n < 0 else min(n, 700)
        out = self.data[self.pos : self.pos + n]
        self.pos += len(out)
        return out


def _seen(entries: Any, via_feed: bool = False) -> list[tuple[str, str, int, str]]:
    import hashlib

    out = []
    for e in entries:
        digest = ""
        if e.is_file:
            h = hashlib.sha256()
            if via_feed:
                e.feed(h.update)
            else:
                while chunk := e.open().read(300_000):
                    h.update(chunk)
            digest = h.hexdigest()
            assert e.located() is None or e.path == "dir/small"
        out.append((e.path, e.kind.value, e.size, digest))
    return out


@pytest.mark.parametrize("fmt", list(SPARSE_FORMATS))
def test_sparse_members_have_real_names_sizes_and_content(sparse_tars: Any, fmt: str) -> None:
    import hashlib
    import io

    from imagewise.archive.region import Region
    from imagewise.archive.walk import walk, walk_buffer

    data, expected = sparse_tars[fmt]
    want = [(p, "file", len(c), hashlib.sha256(c).hexdigest()) for p, c in sorted(expected.items())]
    streamed = _seen(walk(io.BytesIO(data)))
    assert sorted(x for x in streamed if x[1] == "file") == want
    assert ("dir", "dir", 0, "") in streamed
    assert _seen(walk(_Trickle(data))) == streamed  # chunk boundaries anywhere
    # the mapped walk (a buffer with an origin) agrees, read or fed
    origin = Region("/nonexistent", 0, len(data))
    assert _seen(walk_buffer(data, 0, origin=origin)) == streamed
    assert _seen(walk_buffer(data, 0, origin=origin), via_feed=True) == streamed
    # and what the walk yields with nobody reading content is the same list, ending cleanly
    assert [(e.path, e.size) for e in walk(io.BytesIO(data))] == [(p, s) for p, _, s, _ in streamed]


@pytest.mark.parametrize("fmt", list(SPARSE_FORMATS))
def test_sparse_layers_match_dive(sparse_tars: Any, fmt: str, tmp_path: Path) -> None:
    """dive (Go's archive/tar expands sparse members) counts real sizes; so do we, on the
    mapped walk (docker-archive) and the streamed one (gzip layers in a layout)."""
    from dive_reference import assert_same_as_dive
    from fixtures_images import build_image, tar_bytes, write_oci_layout

    from imagewise.analysis import analyze

    data, _ = sparse_tars[fmt]
    over = tar_bytes({"dir/big": b"smaller now\n", "dir/many": b"x"})
    archive = tmp_path / "sparse.tar"
    write_docker_archive(build_image([data, over], compression=""), archive)
    mapped = assert_same_as_dive(archive, tmp_path)
    assert mapped.dive.size_bytes > 12 << 20
    layout = write_oci_layout(build_image([data, over], compression="gzip"), tmp_path / "l")
    with open_source(layout) as src:
        streamed = analyze(src.image())
    assert streamed.dive.size_bytes == mapped.dive.size_bytes
    assert streamed.dive.wasted_bytes == mapped.dive.wasted_bytes
    assert streamed.reclaimable_bytes == mapped.reclaimable_bytes


def test_corrupt_sparse_maps_are_layer_errors() -> None:
    import io

    from imagewise.archive.walk import walk
    from imagewise.errors import LayerReadError

    def pax_member(records: dict[str, str], payload: bytes) -> bytes:
        import tarfile

        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
            ti = tarfile.TarInfo("GNUSparseFile.0/f")
            ti.size = len(payload)
            ti.pax_headers = records
            tf.addfile(ti, io.BytesIO(payload))
        return buf.getvalue()

    bad = [
        # segments overlap
        (
            {"GNU.sparse.size": "100", "GNU.sparse.map": "0,10,5,10", "GNU.sparse.name": "f"},
            b"x" * 20,
        ),
        # a segment past the real size
        ({"GNU.sparse.size": "10", "GNU.sparse.map": "5,10", "GNU.sparse.name": "f"}, b"x" * 10),
        # segments holding more than is stored
        ({"GNU.sparse.size": "100", "GNU.sparse.map": "0,50", "GNU.sparse.name": "f"}, b"x" * 10),
        # an odd map
        ({"GNU.sparse.size": "100", "GNU.sparse.map": "0,5,9", "GNU.sparse.name": "f"}, b"x" * 5),
        # 1.0 without a map at the start of the data
        (
            {
                "GNU.sparse.major": "1",
                "GNU.sparse.minor": "0",
                "GNU.sparse.name": "f",
                "GNU.sparse.realsize": "100",
            },
            b"not numbers\n" * 50,
        ),
    ]
    for records, payload in bad:
        with pytest.raises(LayerReadError, match="sparse"):
            list(walk(io.BytesIO(pax_member(records, payload))))


def test_region_cut_inside_an_entry_read_with_pread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pread view (no lease) reports a layer region that ends inside a file like the map."""
    from fixtures_images import tar_bytes

    from imagewise.archive import mapped
    from imagewise.archive.region import Region
    from imagewise.archive.walk import walk_buffer
    from imagewise.errors import LayerReadError

    path = tmp_path / "layer.tar"
    path.write_bytes(tar_bytes({"a": b"x" * 3000, "b": b"y" * 3000}))
    monkeypatch.setattr(mapped, "LEASE", False)
    for cut in (1024 + 512, 1024 + 700):
        with (
            mapped.MappedRegion(Region(str(path), 0, cut)) as m,
            pytest.raises(LayerReadError, match="ends early"),
        ):
            assert not m.mapped
            for e in walk_buffer(m.buffer, m.start, "sha256:x"):
                e.read()
