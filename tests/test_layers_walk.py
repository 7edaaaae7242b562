"""Decompression and the tar walk on real archives and on hostile or broken input."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile

import pytest
import zstandard
from conftest import corpus
from layers_support import compress, make_tar, member, random_files

from imagewise.archive.decompress import open_decompressed, sniff
from imagewise.archive.walk import normalize, walk, walk_layer
from imagewise.errors import DigestMismatch, LayerReadError, UnsafePath
from imagewise.layers.model import Kind
from imagewise.oci.digest import Digest, DigestingReader


def _layers_of_docker_save() -> list[tuple[str, bytes]]:
    out = []
    with tarfile.open(corpus("dive", "test-docker-image.tar")) as tf:
        for m in tf.getmembers():
            if m.name.endswith("/layer.tar"):
                f = tf.extractfile(m)
                assert f is not None
                out.append((m.name, f.read()))
    return out


def _reference(data: bytes) -> list[tuple[str, str, int, str]]:
    """What the standard library's tarfile reads from the same bytes."""
    kinds = {
        tarfile.REGTYPE: "file",
        tarfile.AREGTYPE: "file",
        tarfile.DIRTYPE: "dir",
        tarfile.SYMTYPE: "symlink",
        tarfile.LNKTYPE: "hardlink",
        tarfile.CHRTYPE: "char",
        tarfile.BLKTYPE: "block",
        tarfile.FIFOTYPE: "fifo",
    }
    out = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for m in tf.getmembers():
            name = m.name.strip("/")
            while name.startswith("./"):
                name = name[2:]
            kind = kinds[m.type]
            if kind == "hardlink":
                link = normalize(m.linkname)
            else:
                link = m.linkname
            out.append(
                (
                    name.rstrip("/") if name != "." else "",
                    kind,
                    m.size if kind == "file" else 0,
                    link,
                )
            )
    return out


def _ours(data: bytes) -> list[tuple[str, str, int, str]]:
    out = []
    for e in walk(io.BytesIO(data)):
        base = e.raw_name.rstrip("/").rsplit("/", 1)[-1]
        if e.kind in (Kind.WHITEOUT, Kind.OPAQUE):  # compare under the stored name
            out.append((normalize(e.raw_name) or "", "file", 0, e.linkname))
        else:
            assert not base.startswith(".wh.")
            out.append((e.path, e.kind.value, e.size, e.linkname))
    return out


def test_docker_save_layers_match_tarfile() -> None:
    layers = _layers_of_docker_save()
    assert len(layers) == 14
    whiteouts = []
    for _, data in layers:
        assert _ours(data) == _reference(data)
        whiteouts += [e.path for e in walk(io.BytesIO(data)) if e.kind is Kind.WHITEOUT]
    # dive's test image deletes a file and then a whole directory
    assert sorted(whiteouts) == ["root/example", "root/example/somefile3.txt"]


def test_docker_save_content_is_the_member_bytes() -> None:
    for _, data in _layers_of_docker_save():
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            want = {
                m.name.strip("./"): tf.extractfile(m).read()  # type: ignore[union-attr]
                for m in tf.getmembers()
                if m.isfile() and "/.wh." not in "/" + m.name
            }
        got = {e.path: e.read() for e in walk(io.BytesIO(data)) if e.is_file}
        assert {k.lstrip("/"): v for k, v in want.items()} == got


@pytest.mark.parametrize("variant", ["latest-glibc", "latest-musl", "latest-1-uclibc"])
def test_busybox_rootfs_gzip(variant: str) -> None:
    path = corpus("rootfs", "busybox", variant, "rootfs.tar.gz")
    raw = gzip.decompress(path.read_bytes())
    with path.open("rb") as f:
        entries = [
            (
                e.path,
                e.kind.value,
                e.size,
                e.linkname,
                hashlib.sha256(e.read()).hexdigest() if e.is_file else "",
            )
            for e in walk_layer(f, "", "sha256:test")
        ]
    assert [x[:4] for x in entries] == _reference(raw)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        m = tf.getmember("bin/busybox") if "bin/busybox" in tf.getnames() else None
        if m is not None and m.isfile():
            want = hashlib.sha256(tf.extractfile(m).read()).hexdigest()  # type: ignore[union-attr]
            assert ("bin/busybox", "file", m.size, "", want) in entries
    kinds = {k for _, k, *_ in entries}
    assert {"dir", "file", "hardlink"} <= kinds or {"dir", "file", "symlink"} <= kinds


@pytest.mark.parametrize("how", ["", "gzip", "zstd"])
def test_oci_archives_uncompressed_gzip_zstd(how: str) -> None:
    from imagewise.sources import open_source

    name = {"": "uncompressed", "gzip": "gzip", "zstd": "zstd"}[how]
    with open_source(f"oci-archive:{corpus('dive', f'test-oci-{name}-image.tar')}") as src:
        img = src.image()
        layer = img.layers[0]
        with layer.open_compressed() as f:
            assert sniff(f.read(4)) == how
        with layer.open() as tar:
            entries = [
                (e.path, e.kind, hashlib.sha256(e.read()).hexdigest())
                for e in walk(tar, str(layer.digest))
            ]
    assert [p for p, _, _ in entries] == ["README.md"]
    # the same README in all three encodings, equal to the one in the plain tar
    assert entries[0][2] == _readme_digest()


def _readme_digest() -> str:
    with tarfile.open(corpus("dive", "test-uncompressed-image.tar")) as tf:
        return hashlib.sha256(tf.extractfile("README.md").read()).hexdigest()  # type: ignore[union-attr]


def test_long_names_pax_and_gnu() -> None:
    long_dir = "d" * 90 + "/" + "e" * 90
    name = f"{long_dir}/ünïcode-{'x' * 150}.txt"
    target = "/" + "t" * 200
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        data = make_tar(
            [
                member(name, data=b"hello"),
                member(f"{long_dir}/link", "symlink", link=target),
                member(f"{long_dir}/hard", "hardlink", link=name),
                member("big-ids", uid=3_000_000, gid=4_000_000, data=b"x"),
            ],
            fmt,
        )
        got = []
        for e in walk(io.BytesIO(data)):
            got.append(e)
            if e.is_file:
                assert e.read() == (b"hello" if e.path == name else b"x")
        assert got[0].path == name
        assert got[1].kind is Kind.SYMLINK and got[1].linkname == target
        assert got[2].kind is Kind.HARDLINK and got[2].linkname == name
        assert (got[3].uid, got[3].gid) == (3_000_000, 4_000_000)


def test_ustar_prefix_and_kinds() -> None:
    name = "p" * 120 + "/file"
    data = make_tar(
        [
            member(name, data=b"abc"),
            member("dev/null", "char", mode=0o666),
            member("dev/sda", "block"),
            member("run/fifo", "fifo"),
            member("./etc/", "dir", mode=0o755),
            member("/abs/path", data=b"z"),
        ],
        tarfile.USTAR_FORMAT,
    )
    got = [(e.path, e.kind, e.mode) for e in walk(io.BytesIO(data))]
    assert got == [
        (name, Kind.FILE, 0o644),
        ("dev/null", Kind.CHAR, 0o666),
        ("dev/sda", Kind.BLOCK, 0o644),
        ("run/fifo", Kind.FIFO, 0o644),
        ("etc", Kind.DIR, 0o755),
        ("abs/path", Kind.FILE, 0o644),
    ]


def test_whiteouts_and_opaque() -> None:
    data = make_tar(
        [
            member("etc/.wh.passwd"),
            member("var/cache/.wh..wh..opq"),
            member(".wh..wh..opq"),
            member(".wh..wh.plnk/123"),
            member(".wh..wh.aufs"),
            member("x/.wh.y z"),
        ]
    )
    got = [(e.path, e.kind) for e in walk(io.BytesIO(data))]
    assert got == [
        ("etc/passwd", Kind.WHITEOUT),
        ("var/cache", Kind.OPAQUE),
        ("", Kind.OPAQUE),
        ("x/y z", Kind.WHITEOUT),
    ]


def test_unread_and_partly_read_content_is_skipped() -> None:
    files = random_files(300)
    data = make_tar(files)
    want = {ti.name: body for ti, body in files if ti.isfile()}
    seen = 0
    for i, e in enumerate(walk(open_decompressed(io.BytesIO(compress(data, "gzip"))))):
        seen += 1
        if not e.is_file:
            continue
        if i % 3 == 0:
            assert e.read() == want[e.path]
        elif i % 3 == 1:
            assert e.read(7) == want[e.path][:7]
        # else: not read at all
    assert seen == len(files)


def test_content_read_after_the_walk_moved_on_fails() -> None:
    data = make_tar([member("a", data=b"1" * 1000), member("b", data=b"2")])
    it = walk(io.BytesIO(data))
    first = next(it)
    stream = first.open()
    next(it)
    with pytest.raises(ValueError):
        stream.read()


def test_hundred_thousand_entries_fast() -> None:
    # one tar of 100k small files, built quickly by repeating one pre-rendered member block
    block = make_tar([member("f", data=b"x" * 10)])[:1024]
    header = bytearray(block[:512])
    parts = []
    for i in range(100_000):
        name = f"d{i // 1000:03d}/f{i:06d}".encode()
        h = bytearray(header)
        h[0:100] = name.ljust(100, b"\0")
        h[148:156] = b" " * 8
        h[148:156] = b"%06o\0 " % sum(h)
        parts.append(bytes(h) + block[512:1024])
    data = gzip.compress(b"".join(parts) + bytes(1024), 1)
    n = size = 0
    dirs = set()
    for e in walk_layer(io.BytesIO(data)):
        n += 1
        size += len(e.read())
        dirs.add(e.path.split("/")[0])
    assert (n, size, len(dirs)) == (100_000, 1_000_000, 100)
    # throughput is measured by benchmarks/layer_walk.py, not asserted here


# -- bad input ----------------------------------------------------------------------------

DIGEST = "sha256:" + "ab" * 32


def _drain(blob: bytes) -> None:
    for e in walk_layer(io.BytesIO(blob), "", DIGEST):
        e.read()


def test_truncated_archive_mid_content_and_mid_header() -> None:
    tar = make_tar(random_files(50))
    for cut in (len(tar) // 2 + 100, 512 * 3 + 17):
        with pytest.raises(LayerReadError) as ei:
            _drain(tar[:cut])
        assert ei.value.digest == DIGEST and ei.value.offset is not None
        assert DIGEST in str(ei.value) and "offset" in str(ei.value)


@pytest.mark.parametrize("how", ["gzip", "zstd"])
def test_truncated_compressed_stream(how: str) -> None:
    blob = compress(make_tar(random_files(50)), how)
    with pytest.raises(LayerReadError) as ei:
        _drain(blob[: len(blob) * 2 // 3])
    assert ei.value.digest == DIGEST and f"truncated {how}" in str(ei.value)


@pytest.fixture(params=["isal", "zlib"])
def gzip_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a gzip test through isal and through the standard-library fallback."""
    import zlib

    from imagewise.archive import decompress

    if request.param == "zlib":
        monkeypatch.setattr(decompress, "_gzip_class", lambda: decompress._Gzip)
        monkeypatch.setattr(decompress, "zlib_codec", lambda: zlib)
    return str(request.param)


def test_gzip_engines(gzip_engine: str) -> None:
    tar = make_tar(random_files(40))
    gz = gzip.compress(tar[:7000]) + gzip.compress(tar[7000:]) + bytes(64)
    stream = open_decompressed(io.BytesIO(gz))
    assert type(stream).__name__ == ("_IsalGzip" if gzip_engine == "isal" else "_Gzip")
    assert stream.read() == tar
    for bad, what in (
        (gz[: len(gz) // 2], "truncated gzip"),
        (gz + b"junk", "garbage after"),
        (gz[:-72] + bytes(a ^ 0xFF for a in gz[-72:-68]) + gz[-68:], "corrupt gzip"),
    ):
        with pytest.raises(LayerReadError, match=what):
            open_decompressed(io.BytesIO(bad), "", DIGEST).read()


def test_corrupt_gzip() -> None:
    blob = bytearray(compress(make_tar(random_files(50)), "gzip"))
    blob[len(blob) // 2 : len(blob) // 2 + 64] = b"\xff" * 64
    with pytest.raises(LayerReadError) as ei:
        _drain(bytes(blob))
    assert "corrupt gzip" in str(ei.value) and ei.value.offset is not None
    assert 0 <= ei.value.offset <= len(blob)


def test_corrupt_zstd() -> None:
    blob = bytearray(compress(make_tar(random_files(50)), "zstd"))
    blob[len(blob) // 2 : len(blob) // 2 + 64] = b"\xff" * 64
    with pytest.raises(LayerReadError) as ei:
        _drain(bytes(blob))
    assert "corrupt zstd" in str(ei.value) and ei.value.digest == DIGEST


def test_not_a_tar() -> None:
    with pytest.raises(LayerReadError) as ei:
        _drain(gzip.compress(b"this is not a tar archive\n" * 100))
    assert "not a tar archive" in str(ei.value) and ei.value.offset == 0


def test_multi_member_gzip_and_multi_frame_zstd() -> None:
    tar = make_tar(random_files(40))
    half = len(tar) // 2
    gz = gzip.compress(tar[:half]) + gzip.compress(tar[half:]) + bytes(64)
    zs = zstandard.ZstdCompressor().compress(tar[:half]) + zstandard.ZstdCompressor().compress(
        tar[half:]
    )
    for blob in (gz, zs):
        assert open_decompressed(io.BytesIO(blob)).read() == tar
        assert _ours_blob(blob) == _reference(tar)


def _ours_blob(blob: bytes) -> list[tuple[str, str, int, str]]:
    return [(e.path, e.kind.value, e.size, e.linkname) for e in walk_layer(io.BytesIO(blob))]


def test_dotdot_entry_is_refused_or_skipped() -> None:
    tar = make_tar(
        [
            member("ok", data=b"1"),
            member("../../etc/passwd", data=b"root::0:0"),
            member("a/../../b", data=b"2"),
            member("last", data=b"3"),
        ]
    )
    with pytest.raises(UnsafePath, match=r"\.\./\.\./etc/passwd"):
        list(walk(io.BytesIO(tar), DIGEST))
    seen: list[tuple[str, int]] = []
    got = [
        e.path for e in walk(io.BytesIO(tar), DIGEST, on_unsafe=lambda n, o: seen.append((n, o)))
    ]
    assert got == ["ok", "last"]
    assert [n for n, _ in seen] == ["../../etc/passwd", "a/../../b"]


def test_hardlink_out_of_root_refused() -> None:
    tar = make_tar([member("h", "hardlink", link="../../etc/shadow")])
    with pytest.raises(UnsafePath):
        list(walk(io.BytesIO(tar)))


def test_digest_mismatch_surfaces_at_end_of_layer() -> None:
    blob = compress(make_tar(random_files(5)), "gzip")
    wrong = Digest.of(b"something else")
    reader = DigestingReader(io.BytesIO(blob), wrong, "layer")
    with pytest.raises(DigestMismatch):
        for e in walk_layer(reader, "", str(wrong)):  # type: ignore[arg-type]
            e.read()
    ok = DigestingReader(io.BytesIO(blob), Digest.of(blob), "layer")
    assert len(list(walk_layer(ok))) == 6  # type: ignore[arg-type]


def test_normalize() -> None:
    assert normalize("./usr//bin/./x/") == "usr/bin/x"
    assert normalize("/etc/passwd") == "etc/passwd"
    assert normalize("a/b/../c") == "a/c"
    assert normalize("./") == "" and normalize(".") == ""
    assert normalize("../x") is None and normalize("a/../../x") is None
    assert normalize(".bashrc") == ".bashrc" and normalize("a/..b") == "a/..b"


def test_empty_layers_and_empty_files() -> None:
    for blob in (b"", gzip.compress(b""), bytes(10240), compress(bytes(1024), "zstd")):
        assert list(walk_layer(io.BytesIO(blob))) == []
    (e,) = [(x.path, x.open().read(), x.read()) for x in walk(io.BytesIO(make_tar([member("e")])))]
    assert e == ("e", b"", b"")


_FUZZ_TAR = make_tar(
    [
        member("d", "dir"),
        member("d/" + "n" * 120, data=b"abc" * 300),
        member("d/l", "symlink", link="x" * 150),
        member("d/.wh.z"),
        member("d/h", "hardlink", link="d/" + "n" * 120),
    ],
    tarfile.PAX_FORMAT,
)


def test_fuzzed_archives_fail_cleanly() -> None:
    """Damage to the tar or to its compressed form yields entries or LayerReadError, never
    another exception (unsafe names are reported to on_unsafe)."""
    from hypothesis import HealthCheck, given, settings, strategies as st

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        st.lists(
            st.tuples(st.integers(0, len(_FUZZ_TAR) - 1), st.integers(0, 255)),
            min_size=1,
            max_size=8,
        ),
        st.integers(0, len(_FUZZ_TAR)),
        st.sampled_from(["", "gzip", "zstd"]),
        st.booleans(),
    )
    def check(edits: list[tuple[int, int]], cut: int, how: str, compressed: bool) -> None:
        data = bytearray(_FUZZ_TAR if not compressed else compress(_FUZZ_TAR, how))
        for pos, value in edits:
            data[pos % len(data)] = value
        blob = bytes(data[:cut]) if compressed else compress(bytes(data[:cut]), how)
        try:
            for e in walk_layer(io.BytesIO(blob), "", DIGEST, on_unsafe=lambda n, o: None):
                e.read()
        except LayerReadError as err:
            assert err.digest == DIGEST and err.offset is not None

    check()


def test_pax_global_header_applies_to_following_entries() -> None:
    buf = io.BytesIO()
    with tarfile.open(
        fileobj=buf,
        mode="w",
        format=tarfile.PAX_FORMAT,
        pax_headers={"uid": "4242", "comment": "global"},
    ) as tf:
        for ti, data in (member("a", data=b"1"), member("b", data=b"2", uid=0)):
            tf.addfile(ti, io.BytesIO(data))
    got = [(e.path, e.uid, e.read()) for e in walk(io.BytesIO(buf.getvalue()))]
    assert got == [("a", 4242, b"1"), ("b", 4242, b"2")]


def test_prefetch_and_inline_walks_agree_and_fail_alike() -> None:
    tar = make_tar(random_files(200))
    for how in ("", "gzip", "zstd"):
        blob = compress(tar, how)
        runs = []
        for prefetch in (True, False):
            runs.append(
                [
                    (e.path, e.kind, e.offset, hashlib.sha256(e.read()).hexdigest())
                    for e in walk_layer(io.BytesIO(blob), prefetch=prefetch)
                ]
            )
        assert runs[0] == runs[1] and len(runs[0]) == 201
        for prefetch in (True, False):
            with pytest.raises(LayerReadError) as ei:
                for e in walk_layer(
                    io.BytesIO(blob[: len(blob) // 2]), "", DIGEST, prefetch=prefetch
                ):
                    e.read()
            assert ei.value.digest == DIGEST


def test_abandoned_walk_stops_its_thread() -> None:
    import threading

    def decoders() -> int:
        return sum(1 for t in threading.enumerate() if t.name == "imagewise-decompress")

    before = decoders()
    blob = compress(make_tar(random_files(2000)), "gzip")
    for _ in range(3):
        it = walk_layer(io.BytesIO(blob))
        next(it)
        assert decoders() == before + 1
        it.close()  # the consumer stops early
    assert decoders() == before


def test_header_checksum_is_exact_for_any_bytes() -> None:
    """The fast checksum (Adler-32's low word) accepts exactly the headers whose byte sum, with
    the checksum field as spaces, equals the stored value: ASCII or not, off by one or not."""
    from hypothesis import given, settings, strategies as st

    from imagewise.archive.walk import walk_buffer

    base = bytearray(make_tar([member("a/é-ü", data=b"x" * 10)])[:512])

    def block(edits: list[tuple[int, int]], delta: int) -> bytes:
        hdr = bytearray(base)
        for pos, value in edits:
            if not 148 <= pos < 156 and pos != 156:  # keep the type flag a plain file
                hdr[pos] = value
        hdr[148:156] = b" " * 8
        total = sum(hdr) + delta
        hdr[148:156] = b"%06o\0 " % (total % 8**6)
        return bytes(hdr) + bytes(512) * 3

    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(st.tuples(st.integers(0, 511), st.integers(0, 255)), max_size=40),
        st.sampled_from([0, 1, -1, 65521, -65521]),
    )
    def check(edits: list[tuple[int, int]], delta: int) -> None:
        data = block(edits, delta)
        try:
            list(walk_buffer(data, 0, "", on_unsafe=lambda name, offset: None))
            accepted = True
        except LayerReadError as e:
            accepted = "checksum" not in str(e)  # other damage (sizes) is not this test's
        assert accepted == (delta == 0)

    check()
