"""Safe extraction: hostile archives never write outside the destination."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest
from conftest import corpus
from layers_support import make_tar, member, oci_layout

from imagewise.errors import UnsafePath
from imagewise.layers.extract import extract_image, extract_layer


def _outside_untouched(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def box(tmp_path: Path) -> Path:
    """tmp/box/dest is the destination; tmp/box/outside must stay as it is."""
    (tmp_path / "box" / "outside").mkdir(parents=True)
    (tmp_path / "box" / "outside" / "victim").write_text("original")
    return tmp_path / "box"


def _extract(box: Path, *layers: bytes, on_unsafe: str = "raise") -> object:
    result = None
    for tar in layers:
        result = extract_layer(
            io.BytesIO(tar),
            box / "dest",
            on_unsafe=on_unsafe,  # type: ignore[arg-type]
            result=result,
        )  # type: ignore[arg-type]
    return result


def test_dotdot_entry(box: Path) -> None:
    tar = make_tar(
        [
            member("ok", data=b"1"),
            member("../../etc/passwd", data=b"root::0:0:x"),
            member("../outside/victim", data=b"pwned"),
        ]
    )
    with pytest.raises(UnsafePath):
        _extract(box, tar)
    result = _extract(box, tar, on_unsafe="skip")
    assert (box / "outside" / "victim").read_text() == "original"
    assert (box / "dest" / "ok").read_bytes() == b"1"
    assert not (box.parent / "etc").exists()
    assert [name for name, _ in result.skipped] == [
        "../../etc/passwd",  # type: ignore[attr-defined]
        "../outside/victim",
    ]


def test_absolute_entry_lands_inside(box: Path) -> None:
    _extract(box, make_tar([member(f"{box}/outside/victim", data=b"inside")]))
    assert (box / "outside" / "victim").read_text() == "original"
    assert (box / "dest" / str(box).lstrip("/") / "outside" / "victim").read_bytes() == b"inside"


def test_symlink_pointing_outside_then_file_written_through_it(box: Path) -> None:
    tar = make_tar(
        [member("evil", "symlink", link="../outside"), member("evil/victim", data=b"pwned")]
    )
    with pytest.raises(UnsafePath, match="evil/victim"):
        _extract(box, tar)
    assert (box / "outside" / "victim").read_text() == "original"
    assert os.readlink(box / "dest" / "evil") == "../outside"  # the link itself is data


def test_symlink_escape_created_by_an_earlier_layer(box: Path) -> None:
    first = make_tar([member("a", "dir"), member("a/up", "symlink", link="../../outside")])
    second = make_tar([member("a/up/victim", data=b"pwned"), member("a/up/new", data=b"x")])
    result = _extract(box, first, second, on_unsafe="skip")
    assert (box / "outside" / "victim").read_text() == "original"
    assert _outside_untouched(box / "outside") == ["victim"]
    assert len(result.skipped) == 2  # type: ignore[attr-defined]


def test_absolute_symlink_resolves_inside_the_root(box: Path) -> None:
    tar = make_tar(
        [
            member("etc", "dir"),
            member("link", "symlink", link=f"{box}/outside"),
            member("link/victim", data=b"inside"),
        ]
    )
    _extract(box, tar)
    assert (box / "outside" / "victim").read_text() == "original"
    assert (box / "dest" / str(box).lstrip("/") / "outside" / "victim").read_bytes() == b"inside"


def test_file_replaces_a_symlink_instead_of_writing_through_it(box: Path) -> None:
    first = make_tar([member("x", "symlink", link="../outside/victim")])
    second = make_tar([member("x", data=b"replacement")])
    _extract(box, first, second)
    assert (box / "outside" / "victim").read_text() == "original"
    assert not (box / "dest" / "x").is_symlink()
    assert (box / "dest" / "x").read_bytes() == b"replacement"


def test_hardlinks_inside_only(box: Path) -> None:
    tar = make_tar(
        [member("s", "symlink", link="../outside"), member("h", "hardlink", link="s/victim")]
    )
    with pytest.raises(UnsafePath):
        _extract(box, tar)
    assert (box / "outside" / "victim").stat().st_nlink == 1
    good = make_tar([member("f", data=b"data"), member("g", "hardlink", link="f")])
    _extract(box, good)
    assert os.path.samefile(box / "dest" / "f", box / "dest" / "g")


def test_whiteouts_and_opaque_directories(box: Path) -> None:
    base = make_tar(
        [
            member("d", "dir"),
            member("d/old", data=b"1"),
            member("gone", data=b"2"),
            member("keep", data=b"3"),
        ]
    )
    upper = make_tar([member("d/new", data=b"4"), member("d/.wh..wh..opq"), member(".wh.gone")])
    _extract(box, base, upper)
    assert sorted(os.listdir(box / "dest")) == ["d", "keep"]
    assert os.listdir(box / "dest" / "d") == ["new"]


def test_modes_fifo_and_devices(box: Path) -> None:
    tar = make_tar(
        [
            member("bin", "dir", mode=0o755),
            member("bin/tool", data=b"#!", mode=0o4755),
            member("run", "dir"),
            member("run/pipe", "fifo"),
            member("dev/null", "char"),
        ]
    )
    result = _extract(box, tar)
    assert (box / "dest" / "bin" / "tool").stat().st_mode & 0o7777 == 0o755  # no set-id
    import stat

    assert stat.S_ISFIFO((box / "dest" / "run" / "pipe").lstat().st_mode)
    assert not (box / "dest" / "dev" / "null").exists()
    assert result.skipped == [("dev/null", "device nodes are not created")]  # type: ignore[attr-defined]


def test_extract_busybox_image_matches_rootfs(tmp_path: Path) -> None:
    from imagewise.sources import open_source

    oci = corpus("rootfs", "busybox", "latest-musl", "busybox-1.38.0-musl-amd64-oci.tar")
    with open_source(f"oci-archive:{oci}") as src:
        result = extract_image(src.image(), tmp_path / "root")
    with tarfile.open(corpus("rootfs", "busybox", "latest-musl", "rootfs.tar.gz")) as tf:
        names = {m.name.strip("./").rstrip("/") for m in tf.getmembers()} - {""}
        busybox = tf.extractfile("bin/busybox") if "bin/busybox" in tf.getnames() else None
        want = hashlib.sha256(busybox.read()).hexdigest() if busybox else None
    got = {str(p.relative_to(tmp_path / "root")) for p in (tmp_path / "root").rglob("*")}
    assert got == names
    if want:
        assert (
            hashlib.sha256((tmp_path / "root" / "bin" / "busybox").read_bytes()).hexdigest() == want
        )
    assert result.files > 0 and result.links > 300


def test_extract_image_of_built_layers(tmp_path: Path) -> None:
    from imagewise.sources import open_source

    layers = [
        make_tar([member("app", "dir"), member("app/a", data=b"A"), member("tmp/x", data=b"X")]),
        make_tar([member("tmp/.wh.x"), member("app/b", "symlink", link="a")]),
    ]
    ref = oci_layout(tmp_path / "layout", layers, "zstd")
    with open_source(ref) as src:
        extract_image(src.image(), tmp_path / "root")
    root = tmp_path / "root"
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == [
        "app",
        "app/a",
        "app/b",
        "tmp",
    ]
    assert (root / "app" / "b").read_bytes() == b"A"


def test_same_owner_applies_owners_and_setid_only_as_root(box: Path) -> None:
    tar = make_tar([member("tool", data=b"#!", mode=0o4755, uid=1234, gid=2345)])
    extract_layer(io.BytesIO(tar), box / "dest", same_owner=True)
    st = (box / "dest" / "tool").stat()
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1234, 2345, 0o4755)
    else:  # without privileges owners cannot be set; set-id bits are dropped
        assert (st.st_uid, st.st_mode & 0o7777) == (os.geteuid(), 0o755)
