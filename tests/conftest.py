"""Shared fixtures. Corpora come from ../shared/corpora; in CI their absence is a failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Tests never reach the public internet (CI has none): scans and checks don't update the
# vulnerability database by themselves unless a test unsets this (and points
# IMAGEWISE_OSV_MIRROR at a server of its own). Subprocesses inherit it.
os.environ.setdefault("IMAGEWISE_OFFLINE", "1")
# Commands that keep a layer cache (check, sbom) keep it in a directory of this test process,
# not in the user's cache; tests that need a cold cache give their own.
if "IMAGEWISE_CACHE_DIR" not in os.environ:
    import atexit
    import shutil
    import tempfile

    _cache = tempfile.mkdtemp(prefix="imagewise-test-cache-")
    os.environ["IMAGEWISE_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
CORPORA = (ROOT.parent / "shared" / "corpora").resolve()


def corpus(*parts: str) -> Path:
    """Path inside ../shared/corpora; fails loudly in CI when missing, skips only outside CI."""
    p = CORPORA.joinpath(*parts)
    if not p.exists():
        if os.environ.get("CI"):
            pytest.fail(f"corpus missing: {p}")
        pytest.skip(f"corpus missing (outside CI): {p}")
    return p


@pytest.fixture(scope="session")
def corpora() -> Path:
    return corpus()


# Fixture plugins, one module per area (registry servers, test images). Each owns its fixtures.
pytest_plugins = [
    "fixtures_registry",
    "fixtures_images",
    "fixtures_webhook",
    "fixtures_redis",
    "browser",
]


def pytest_configure(config: pytest.Config) -> None:
    # Each run gets its own base temp dir: pytest's default numbered dirs are pruned to the
    # newest three, which deletes the files of another pytest run going on at the same time.
    if not config.option.basetemp and not hasattr(config, "workerinput"):
        import tempfile

        config.option.basetemp = tempfile.mkdtemp(prefix="imagewise-pytest-")
        config.stash[_OWN_BASETEMP] = config.option.basetemp


#: the base temp dir this run made (removed when the run passes: a full run leaves ~2 GB)
_OWN_BASETEMP = pytest.StashKey[str]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A passing run removes its base temp dir; a failing one keeps it for a look."""
    own = session.config.stash.get(_OWN_BASETEMP, None)
    if own is None or hasattr(session.config, "workerinput"):
        return
    if exitstatus == 0:
        import shutil

        shutil.rmtree(own, ignore_errors=True)
    else:
        print(f"\nthis run's files are kept in {own}")
