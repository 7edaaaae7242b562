"""Terminal escape sequences planted in an image and a Dockerfile never reach the terminal raw.

A hostile image (file names, a package name, a history line and its own path carrying
``ESC ] 0 ; ... BEL``, ``ESC [ 2 J``, a C1 CSI and a byte that is not UTF-8) and a hostile
Dockerfile go through every command's human output; no control character may come out except
newline and tab, and the escaped form must be there (so the test sees the planted text at all).
JSON keeps the exact text.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from cli_runner import CliRunner
from fixtures_images import (
    CREATED,
    TarFile,
    alpine_rootfs,
    build_image,
    tar_bytes,
    write_oci_layout,
)

from imagewise.cli.main import cli
from imagewise.textsafe import safe

TITLE = "\x1b]0;pwned\x07"  # sets the terminal window title
CLEAR = "\x1b[2J"  # clears the screen
CSI = "\u009b"  # C1 control: ESC [ in one character
RAW = "\udc9b"  # the byte 0x9b (not UTF-8), as surrogateescape keeps it
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
SITE = "usr/lib/python3.11/site-packages"


def test_safe_escapes_control_characters_and_keeps_the_rest() -> None:
    assert safe(f"a{TITLE}b") == "a\\x1b]0;pwned\\x07b"
    assert safe(f"{CLEAR}{CSI}2J{RAW}\x7f") == "\\x1b[2J\\u009b2J\\x9b\\x7f"
    assert safe("tab\there\nnext\r") == "tab\\x09here\\x0anext\\x0d"
    assert safe("tab\there\nnext\r", lines=True) == "tab\there\nnext\\x0d"
    printable = "Grüße, 日本語, emoji 🐳, [bold] \\x1b"
    assert safe(printable) is printable


def _hostile_layer() -> bytes:
    token = "glpat" + "-" + "Vb7qX2mNw9Lk4Rt8Yp3Z"
    dist = f"{SITE}/evil-1.0.dist-info"
    files: dict[str, bytes | TarFile] = {
        "usr/lib/python3.11": TarFile(kind="dir"),
        SITE: TarFile(kind="dir"),
        dist: TarFile(kind="dir"),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: evil{CLEAR}pkg\nVersion: 1.0\n\n".encode(),
        "app": TarFile(kind="dir"),
        f"app/{TITLE}.env": f"GITLAB_TOKEN={token}\n".encode(),
        f"app/c1{CSI}2J": b"x" * 5000,
        f"app/raw{RAW}name": b"y" * 6000,
        f"app/link{CLEAR}": TarFile(kind="symlink", linkname=f"target{TITLE}"),
    }
    return tar_bytes(files)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    base = gzip.decompress(alpine_rootfs("3.19.4").read_bytes())
    history = [
        {"created": CREATED, "created_by": "/bin/sh -c #(nop) ADD file:rootfs in / "},
        {"created": CREATED, "created_by": f"/bin/sh -c echo {TITLE}{CLEAR} > /x"},
    ]
    hostile = build_image([base, _hostile_layer()], history=history)
    plain = build_image([base], history=history[:1])
    root = tmp_path_factory.mktemp("img")
    where = root / f"lay{CLEAR}out"  # the reference itself is shown by most commands
    return (
        write_oci_layout(hostile, where, "app"),
        write_oci_layout(plain, root / "plain", "base"),
    )


@pytest.fixture(scope="module")
def dockerfile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("df") / f"Dockerfile{TITLE}"
    path.write_text(
        f"FROM alpine:latest\nRUN apt-get install -y curl{CLEAR} {CSI}x\nADD app{TITLE}.py /app/\n",
        encoding="utf-8",
    )
    return path


def _human(args: list[str]) -> str:
    r = CliRunner().invoke(cli, args)
    assert r.exit_code in (0, 1, 2), r.output
    return r.output


def _assert_escaped(out: str, *planted: str) -> None:
    bad = sorted({f"U+{ord(c):04X}" for c in UNSAFE.findall(out)})
    assert not bad, f"raw control characters {bad} in:\n{safe(out, lines=True)}"
    for text in planted:
        assert safe(text) in out, f"{safe(text)!r} not shown in:\n{safe(out, lines=True)}"


def test_files(images: tuple[str, str]) -> None:
    ref, _ = images
    _assert_escaped(_human(["files", ref]), TITLE, CLEAR, CSI, RAW)
    _assert_escaped(_human(["files", ref, "--layer", "1"]), TITLE, CLEAR, CSI, RAW)


def test_analyze_and_diff(images: tuple[str, str]) -> None:
    ref, plain = images
    _assert_escaped(_human(["analyze", ref]), CLEAR, TITLE)
    _assert_escaped(_human(["diff", plain, ref]), CLEAR, TITLE, CSI, RAW)


def test_inspect(images: tuple[str, str]) -> None:
    ref, _ = images
    _assert_escaped(_human(["inspect", ref]), CLEAR, TITLE)


def test_sbom_and_scan(images: tuple[str, str], tmp_path: Path) -> None:
    ref, _ = images
    _assert_escaped(_human(["sbom", ref]), "evil\x1b")  # the name is normalised to lower case
    _assert_escaped(_human(["scan", ref, "--db", str(tmp_path / "none.sqlite")]), CLEAR, TITLE)


def test_check(images: tuple[str, str], dockerfile: Path, tmp_path: Path) -> None:
    ref, _ = images
    out = _human(
        [
            "check",
            ref,
            "--dockerfile",
            str(dockerfile),
            "--no-cache",
            "--db",
            str(tmp_path / "none.sqlite"),
        ]
    )
    _assert_escaped(out, CLEAR, TITLE)


def test_lint(dockerfile: Path) -> None:
    out = _human(["lint", str(dockerfile)])
    _assert_escaped(out, TITLE, CLEAR, CSI)


def test_error_messages(tmp_path: Path) -> None:
    missing = str(tmp_path / f"no{TITLE}such")
    _assert_escaped(_human(["lint", missing]), TITLE)
    _assert_escaped(_human(["files", f"oci:{missing}"]), TITLE)
    broken = tmp_path / f"bad{CLEAR}"
    broken.write_text(f"FROM alpine\nFROOM {TITLE}\n", encoding="utf-8")
    _assert_escaped(_human(["lint", str(broken)]), CLEAR)


def test_machine_formats_keep_the_exact_text(images: tuple[str, str], dockerfile: Path) -> None:
    ref, _ = images
    r = CliRunner().invoke(cli, ["files", ref, "--format", "json"])
    assert r.exit_code == 0, r.output
    paths = {f["path"] for f in json.loads(r.stdout)["files"]}
    assert {f"app/{TITLE}.env", f"app/c1{CSI}2J", f"app/raw{RAW}name"} <= paths, paths
    r = CliRunner().invoke(cli, ["lint", "-f", "json", str(dockerfile)])
    doc = json.loads(r.stdout)
    assert {f["file"] for f in doc["findings"]} == {str(dockerfile)}


def test_printable_text_is_returned_without_the_patterns() -> None:
    """``safe`` answers printable text (``str.isprintable``) without compiling its patterns; for
    every character the answer is the patterns' own."""
    from imagewise import textsafe

    chars = (
        [chr(c) for c in range(0x3000)]
        + [chr(c) for c in range(0xD7F0, 0xE010)]
        + ["\u2028", "\u2029", "\ufeff", "\U0001f600", "\U000e0001", "\U0010ffff"]
    )
    for lines in (False, True):
        pattern = re.compile(textsafe._UNSAFE_IN_LINES if lines else textsafe._UNSAFE)
        for c in chars:
            for text in (c, f"a{c}b\n" if lines else f"a{c}b"):
                assert safe(text, lines=lines) == pattern.sub(textsafe._escape, text), repr(text)
    code = (
        "import imagewise.textsafe as t\n"
        "assert t.safe('plain \u00e9 text') == 'plain \u00e9 text' and not t._COMPILED\n"
        "assert t.safe('a\\x1bb') == 'a\\\\x1bb' and t._COMPILED\n"
    )
    import os
    import subprocess
    import sys

    src = str(Path(__file__).resolve().parents[1] / "src")
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": src},
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
