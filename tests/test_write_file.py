"""Every file imagewise writes for the user (`-o` reports, `policy init`) goes through the one
atomic write: a kill or a full disk in the middle of it leaves the previous file as it was, and
the file keeps its mode."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cli_child import imagewise
from fixtures_images import random_image, write_oci_layout

from imagewise.errors import ImagewiseError
from imagewise.fileio import TMP_PREFIX, write_file

PREVIOUS = b"the previous report\n" * 10


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_oci_layout(
        random_image(seed=3), tmp_path_factory.mktemp("img") / "layout", "latest"
    )


COMMANDS = {
    "policy init": lambda img, out, db: ["policy", "init", "--force", out],
    "analyze -o": lambda img, out, db: ["analyze", img, "-o", out],
    "analyze html": lambda img, out, db: ["analyze", img, "--format", "html", "-o", out],
    "diff -o": lambda img, out, db: ["diff", img, img, "--format", "json", "-o", out],
    "sbom -o": lambda img, out, db: ["sbom", img, "--format", "cyclonedx-json", "-o", out],
    "scan -o": lambda img, out, db: ["scan", img, "--db", db, "--format", "json", "-o", out],
    "check -o": lambda img, out, db: ["check", img, "--no-cache", "--db", db, "-o", out],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_kill_while_writing_an_output_leaves_the_previous_file(
    command: str, image: str, tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "report"
    out.write_bytes(PREVIOUS)
    out.chmod(0o600)
    args = COMMANDS[command](image, str(out), str(tmp_path / "no-db.sqlite"))
    r = imagewise(*args, die_writing_in=out_dir)
    assert r.returncode == -9, r.stderr  # killed while writing the report
    assert out.read_bytes() == PREVIOUS
    r = imagewise(*args)  # and without the kill: the new report, the mode kept
    assert r.returncode in (0, 1), r.stderr
    assert out.read_bytes() != PREVIOUS and out.stat().st_size > 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    # only the killed run's temporary file is left beside it (nothing could remove it)
    assert sorted(p.name.startswith(TMP_PREFIX) for p in out_dir.iterdir()) == [False, True]


def test_write_file_modes_and_errors(tmp_path: Path) -> None:
    new = tmp_path / "new"
    mask = os.umask(0o027)
    try:
        write_file(str(new), b"x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(new.stat().st_mode) == 0o640  # as open() would create it
    new.chmod(0o751)
    write_file(str(new), b"y")
    assert new.read_bytes() == b"y" and stat.S_IMODE(new.stat().st_mode) == 0o751
    with pytest.raises(ImagewiseError, match="cannot write"):
        write_file(str(tmp_path / "missing-dir" / "f"), b"z")
    (tmp_path / "dir").mkdir()
    with pytest.raises(ImagewiseError, match="cannot write"):
        write_file(str(tmp_path / "dir"), b"z")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TMP_PREFIX)]


def test_a_device_or_pipe_is_written_through_not_replaced(tmp_path: Path) -> None:
    """``-o /dev/null`` (or a named pipe) is written into: the atomic rename would put a regular
    file in place of the device for every later user of the machine."""
    import threading

    write_file("/dev/null", b"discarded\n")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_file(str(fifo), b"through the pipe\n")
    reader.join(timeout=10)
    assert got == [b"through the pipe\n"] and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_the_umask_is_read_without_being_changed() -> None:
    from imagewise.fileio import _umask

    old = os.umask(0o027)
    try:
        assert _umask() == 0o027
    finally:
        os.umask(old)
