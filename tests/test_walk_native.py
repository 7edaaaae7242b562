"""The C header parser (``archive/_tarhead.c``) and the pure-Python walk give the same entries.

Random tar streams (ordinary, POSIX-prefixed, GNU long names, PAX, base-256 numbers, odd
checksum spellings, whiteouts, ``..`` names, hard links, v7 directories, then random bytes
corrupted) are walked twice, with and without the C parser, and every entry field, every content
byte and every error must agree. CI builds the extension; the test fails if it is missing there,
so the native path cannot go untested by accident.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from tars_support import Chunked, tars

from imagewise.archive import walk as walk_mod
from imagewise.archive.walk import walk, walk_buffer
from imagewise.errors import LayerReadError, UnsafePath

try:  # imported directly: these tests compare both paths whatever IMAGEWISE_PURE says
    from imagewise.archive._tarhead import header as native
except ImportError:
    if os.environ.get("CI"):
        raise RuntimeError("CI must build imagewise.archive._tarhead (pip install -e . with gcc)")
    native = None
needs_native = pytest.mark.skipif(native is None, reason="no C compiler at install time")


def _outcome(data: bytes, native_on: bool, in_place: bool) -> list[Any]:
    """Every entry's fields and content, then the error (type, text) if the walk failed."""
    saved = walk_mod.NATIVE_HEADER
    walk_mod.NATIVE_HEADER = native if native_on else None
    out: list[Any] = []
    skipped: list[tuple[str, int]] = []

    def unsafe(name: str, offset: int) -> None:
        skipped.append((name, offset))

    try:
        entries: Iterator[Any] = (
            walk_buffer(data, on_unsafe=unsafe)
            if in_place
            else walk(Chunked(data), "sha256:x", on_unsafe=unsafe)
        )
        for i, e in enumerate(entries):
            content = e.read() if i % 2 == 0 else b""  # every other file's content unread
            out.append(
                (
                    e.path,
                    e.kind,
                    e.size,
                    e.mode,
                    e.uid,
                    e.gid,
                    e.linkname,
                    e.mtime,
                    e.raw_name,
                    e.offset,
                    e.data_offset,
                    content,
                )
            )
    except (LayerReadError, UnsafePath) as err:
        out.append((type(err).__name__, str(err)))
    finally:
        walk_mod.NATIVE_HEADER = saved
    out.append(skipped)
    return out


@needs_native
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=tars(), in_place=st.booleans())
def test_native_and_pure_walks_agree(data: bytes, in_place: bool) -> None:
    assert _outcome(data, True, in_place) == _outcome(data, False, in_place)


@needs_native
def test_native_parser_takes_the_common_header_and_leaves_the_rest() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("usr/bin/app")
        info.size, info.mode, info.uid, info.mtime = 3, 0o100755, 1000, 1_700_000_000
        tar.addfile(info, io.BytesIO(b"abc"))
        tar.addfile(tarfile.TarInfo("l" * 150))  # a GNU long name: the 'L' header
    data = buf.getvalue()
    assert native is not None
    assert native(data, 0) == (
        "usr/bin/app",
        "usr/bin/app",
        ord("0"),
        3,
        0o755,
        1000,
        0,
        1_700_000_000,
        "",
    )
    assert native(data, 1024) is None  # 'L' metadata: the Python walk reads it
    assert native(data, len(data) - 512) is None  # an end-of-archive block
    assert native(data, len(data) - 100) is None  # fewer than 512 bytes left
    assert native(memoryview(data), 0) == native(data, 0)  # any readable buffer
    assert native(object(), 0) is None
    bad = bytearray(data)
    bad[0] ^= 1  # the checksum no longer matches: the Python walk decides (and raises)
    assert native(bytes(bad), 0) is None


def test_version_says_which_walk_runs() -> None:
    from imagewise.cli.main import run

    out = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(out):
        assert run(["--version"]) == 0
    text = out.getvalue()
    assert ("tar walk: native (C tar headers)" in text) == (walk_mod.NATIVE_HEADER is not None)
    assert ("tar walk: pure Python" in text) == (walk_mod.NATIVE_HEADER is None)


def test_install_without_a_compiler_falls_back_to_pure_python(tmp_path: Path) -> None:
    """``pip install`` with a C compiler that always fails still installs imagewise (the
    extension is optional) and the install says it runs the pure-Python walk."""
    import shutil
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    src = tmp_path / "src"
    shutil.copytree(
        root,
        src,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "benchmarks", "build", "*.so", "__pycache__"
        ),
    )
    target = tmp_path / "target"
    env = dict(os.environ, CC="/bin/false", PIP_DISABLE_PIP_VERSION_CHECK="1")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(src),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not list((target / "imagewise" / "archive").glob("_tarhead*.so"))
    assert not list((target / "imagewise" / "secrets").glob("_literals*.so"))
    probe = subprocess.run(  # -S: not the checkout's editable install, only the target
        [
            sys.executable,
            "-S",
            "-c",
            "from imagewise.archive.native import describe; print(describe())\n"
            "from imagewise.secrets.native import describe; print(describe())",
        ],
        env={
            **{k: v for k, v in os.environ.items() if k != "IMAGEWISE_PURE"},
            "PYTHONPATH": str(target),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        probe.stdout.splitlines()
        == ["pure Python (the C extension was not built: no C compiler at install time)"] * 2
    ), probe.stderr


@needs_native
@settings(max_examples=400, deadline=None)
@given(
    body=st.binary(min_size=512, max_size=512),
    delta=st.sampled_from([0, 0, 1, -1, 256, 8]),
    spelling=st.sampled_from(["%06o\0 ", "%07o\0", "%06o  ", "%o\0"]),
)
def test_native_checksum_is_the_unsigned_byte_sum(body: bytes, delta: int, spelling: str) -> None:
    """Any header bytes (high bytes too, where a signed sum would differ): the C parser takes a
    header only when its checksum field holds the unsigned byte sum with the field counted as
    eight spaces; a regular file entry with a plain name, so only the checksum can decline it."""
    h = bytearray(body)
    h[0:100] = b"f" * 99 + b"\0"  # a plain name
    h[100:108] = b"0000644\0"
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = b"00000000000\0"  # no content
    h[136:148] = b"00000000000\0"
    h[156] = ord("0")
    h[157] = 0  # no link name
    h[257:263] = b"ustar\0"
    h[345] = 0  # no prefix
    total = sum(h[:148]) + 8 * 32 + sum(h[156:])
    field = (spelling % (total + delta)).encode()
    h[148:156] = field[:8].ljust(8, b"\0")
    agrees = int(field[:8].split(b"\0")[0].strip() or b"0", 8) == total
    assert (native(bytes(h) + bytes(512), 0) is not None) == agrees
