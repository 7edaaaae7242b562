"""The README's two commands on a clean copy of the tree, under a Python that the distribution
marks as externally managed (PEP 668, as Debian 12's own python3 is): they must set up a project
virtual environment and never touch the system Python."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT

SYSTEM_PYTHON = Path("/usr/bin/python3")

pytestmark = pytest.mark.slow


def _marked_python() -> Path:
    """Debian's own python3, which carries the EXTERNALLY-MANAGED marker."""
    probe = (
        subprocess.run(
            [str(SYSTEM_PYTHON), "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if SYSTEM_PYTHON.exists()
        else None
    )
    marker = (
        Path(probe.stdout.strip()) / "EXTERNALLY-MANAGED"
        if probe and probe.returncode == 0
        else None
    )
    if marker is None or not marker.exists():
        pytest.fail(
            f"{SYSTEM_PYTHON} is not a PEP 668-marked Python here "
            "(Debian's python3 is; scripts/install-deps expects a Debian machine)"
        )
    return SYSTEM_PYTHON


def _clean_copy(dest: Path) -> Path:
    """The tracked and new files of the working tree, as a fresh clone would have them."""
    names = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in filter(None, names):
        name = raw.decode()
        src = ROOT / name
        if not src.exists():  # deleted in the working tree
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    return dest


def _env(python: Path) -> dict[str, str]:
    """What a new user's shell has: the system Python first on PATH, no virtualenv, nothing of
    this test run's interpreter."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if k
        in (
            "HOME",
            "LANG",
            "LC_ALL",
            "TERM",
            "CI",
            "PIP_INDEX_URL",
            "PIP_CACHE_DIR",
            "http_proxy",
            "https_proxy",
            "no_proxy",
            "TMPDIR",
        )
    }
    return {**keep, "PATH": f"{python.parent}:/usr/sbin:/usr/bin:/sbin:/bin"}


def test_demo_and_test_commands_under_an_externally_managed_python(tmp_path: Path) -> None:
    python = _marked_python()
    stdlib_before = sorted(
        os.listdir(
            subprocess.run(
                [str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        or []
    )
    tree = _clean_copy(tmp_path / "imagewise")
    env = _env(python)

    demo = subprocess.run(
        ["scripts/demo"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert demo.returncode == 1, demo.stderr[-3000:]  # the sample image is deliberately bad
    assert "verdict: FAIL" in demo.stdout
    assert ".venv/bin/imagewise" in demo.stderr  # says how to run it afterwards
    assert (tree / ".venv" / "bin" / "imagewise").exists()

    # the test command sets up the test extras in the same .venv and runs pytest from it
    test = subprocess.run(
        ["scripts/test", "tests/test_reference.py", "-q", "-p", "no:cacheprovider"],
        cwd=tree,
        env={**env, "IMAGEWISE_TEST_WORKERS": "0"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert test.returncode == 0, (test.stdout[-3000:], test.stderr[-3000:])
    assert " passed" in test.stdout

    # the system Python is as it was: imagewise is not importable there, nothing was added
    r = subprocess.run(
        [str(python), "-c", "import imagewise"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode != 0
    stdlib_after = sorted(
        os.listdir(
            subprocess.run(
                [str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        or []
    )
    assert stdlib_after == stdlib_before
