"""Digest checks in a forked process (archive/hasher.py): the same answers and the same errors
as the checks in threads, whatever happens to the process."""

from __future__ import annotations

import hashlib
import os
import random
import signal
from pathlib import Path

import pytest

from imagewise.archive import forking, hasher
from imagewise.archive.hasher import HashProcess
from imagewise.archive.mapped import Verifier
from imagewise.archive.region import Region
from imagewise.errors import DigestMismatch, ImageFormatError
from imagewise.oci.digest import Digest


def _blob(tmp_path: Path, name: str = "blob", n: int = 300_000) -> tuple[Region, bytes]:
    data = random.Random(f"{name}{n}").randbytes(n)  # the same bytes each time it is written
    f = tmp_path / name
    f.write_bytes(b"x" * 333 + data + b"y" * 7)
    return Region(str(f), 333, len(data)), data


def _outcomes(verifier: Verifier, checks: list[tuple[Region, Digest, int | None, str]]) -> list:
    """What each check's result() gives: None, or the error's type and text."""
    submitted = [verifier.submit(*c) for c in checks]
    out = []
    for check in reversed(submitted):  # waited for out of order too
        try:
            check.result()
            out.append(None)
        except Exception as e:  # noqa: BLE001 - compared between the two kinds
            out.append((type(e), str(e)))
    return out[::-1]


def _cases(tmp_path: Path) -> list[tuple[Region, Digest, int | None, str]]:
    region, data = _blob(tmp_path)
    good = Digest("sha256", hashlib.sha256(data).hexdigest())
    other, data2 = _blob(tmp_path, "other", 5000)
    good512 = Digest("sha512", hashlib.sha512(data2).hexdigest())
    cut = Region(region.path, region.offset, region.length + 10**6)  # past the end of the file
    return [
        (region, good, len(data), "good"),
        (region, Digest("sha256", "0" * 64), len(data), "wrong digest"),
        (region, good, len(data) + 1, "wrong size"),
        (other, good512, None, "sha512"),
        (Region(region.path, 0, 0), Digest("sha256", hashlib.sha256(b"").hexdigest()), 0, "empty"),
        (cut, good, None, "truncated"),
        (Region(str(tmp_path / "gone"), 0, 10), good, None, "missing file"),
    ]


def _expected(tmp_path: Path) -> list:
    with Verifier() as threads:
        assert not threads.forked
        return _outcomes(threads, _cases(tmp_path))


def test_forked_checks_answer_as_the_threads_do(tmp_path: Path) -> None:
    want = _expected(tmp_path)
    assert want[0] is None and want[3] is None and want[4] is None
    assert want[1][0] is DigestMismatch and "wrong digest" in want[1][1]
    assert want[2][0] is DigestMismatch and "bytes instead of" in want[2][1]
    assert want[5][0] is ImageFormatError and "truncated" in want[5][1]
    assert want[6][0] is FileNotFoundError
    with Verifier(fork=True) as forked:
        assert forked.forked
        assert _outcomes(forked, _cases(tmp_path)) == want


def test_hash_process_digests_in_any_order(tmp_path: Path) -> None:
    regions = [_blob(tmp_path, f"b{i}", 1000 * (i + 1)) for i in range(5)]
    p = HashProcess()
    try:
        numbers = [p.submit(r, "sha256") for r, _ in regions]
        assert numbers == [0, 1, 2, 3, 4]
        assert p.digest(3) == hashlib.sha256(regions[3][1]).hexdigest()
        for i in (0, 4, 1, 2):
            assert p.digest(i) == hashlib.sha256(regions[i][1]).hexdigest()
    finally:
        p.close()
    assert p.submit(regions[0][0], "sha256") is None  # closed: callers hash themselves


def _garbled(requests: int, replies: int) -> int:
    os.write(replies, b"\x05\x00\x00\x00\x00\x00\x00\x00NOHEX")
    return 0


def _silent(requests: int, replies: int) -> int:
    return 3


def _killed(requests: int, replies: int) -> int:
    os.kill(os.getpid(), signal.SIGKILL)
    return 0


@pytest.mark.parametrize("serve", [_garbled, _silent, _killed])
def test_a_failing_hash_process_leaves_the_checks_to_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serve
) -> None:
    want = _expected(tmp_path)
    monkeypatch.setattr(hasher, "_serve", serve)  # what the forked child runs
    with Verifier(fork=True) as forked:
        assert forked.forked
        assert _outcomes(forked, _cases(tmp_path)) == want


def test_a_hash_process_killed_midway(tmp_path: Path) -> None:
    want = _expected(tmp_path)
    with Verifier(fork=True) as forked:
        first = forked.submit(*_cases(tmp_path)[0])
        first.result()
        os.kill(forked._hasher._pid, signal.SIGKILL)  # type: ignore[union-attr]
        assert _outcomes(forked, _cases(tmp_path)) == want


def test_closing_reaps_the_process(tmp_path: Path) -> None:
    region, data = _blob(tmp_path)
    v = Verifier(fork=True)
    pid = v._hasher._pid  # type: ignore[union-attr]
    v.submit(region, Digest("sha256", hashlib.sha256(data).hexdigest()), None, "x")
    v.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_a_pass_forks_the_checks_only_when_it_verifies_enough_local_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fixtures_images import build_image, tar_bytes, write_docker_archive

    from imagewise.layers.passes import run_pass
    from imagewise.sources import open_source

    layers = [tar_bytes({"big": os.urandom(200_000)}), tar_bytes({"more": b"x" * 5000})]
    ref = write_docker_archive(
        build_image(layers, compression="", fmt="docker"), tmp_path / "i.tar"
    )
    forks: list[int] = []
    real = HashProcess.__init__

    def counted(self: HashProcess) -> None:
        forks.append(1)
        real(self)

    monkeypatch.setattr(HashProcess, "__init__", counted)
    monkeypatch.setattr(forking, "cores", lambda: 2)
    monkeypatch.delenv("IMAGEWISE_PARTNER", raising=False)
    with open_source(ref) as src:
        img = src.image()
        run_pass(img, [])
        assert forks == []  # too small to pay for the fork: threads
        monkeypatch.setattr(forking, "MIN_BYTES", 1)
        run_pass(img, [], verify=False)
        assert forks == []  # nothing to check
        run_pass(img, [])
        assert forks == [1]
        monkeypatch.setenv("IMAGEWISE_PARTNER", "0")
        run_pass(img, [])
        assert forks == [1]


def test_the_checking_process_yields_the_cpu_to_the_pass(tmp_path: Path) -> None:
    """The child runs at a lower priority (``hasher.NICE``): on two cores the pass and its
    partner come first and the checks fill what time they leave (the Node app's check cold
    0.94 s -> 0.86 s, the checks still done before the pass ends)."""
    region, data = _blob(tmp_path)
    proc = HashProcess()
    try:
        number = proc.submit(region, "sha256")
        assert number is not None
        assert proc.digest(number) == hashlib.sha256(data).hexdigest()  # it is running by now
        with open(f"/proc/{proc._pid}/stat") as f:
            child_nice = int(f.read().rpartition(")")[2].split()[16])
        parent = os.nice(0)
        assert hasher.NICE > 0 and parent < 19
        assert child_nice == min(19, parent + hasher.NICE)
    finally:
        proc.close()
