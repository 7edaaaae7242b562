"""The layer cache remembers which unchanged local files were checked: a second pass over the
same archive does not hash its layers again, and any change to the file (rewritten in place,
replaced, touched) brings the check back. Checks run for real (``mapped.Verifier``); the spy
only counts what is submitted to it."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from fixtures_images import build_image, write_docker_archive
from layers_support import make_tar, member

from imagewise import cache as cache_mod
from imagewise.archive import mapped
from imagewise.cache import LayerCache, file_identity
from imagewise.errors import DigestMismatch
from imagewise.layers.model import Entry, Visitor
from imagewise.layers.passes import run_pass
from imagewise.sources import open_source

LAYERS = [
    make_tar([member("etc", "dir"), member("etc/a", data=b"a" * 3000)]),
    make_tar([member("etc/b", data=b"b" * 70_000), member("big", data=bytes(range(256)) * 400)]),
]


class Names(Visitor):
    """Metadata only: replayed from the cache on a second pass."""

    name = "names"
    version = "1"

    def __init__(self) -> None:
        self.paths: list[str] = []

    def visit(self, entry: Entry) -> None:
        self.paths.append(entry.path)


class Reader(Visitor):
    """Reads content and keeps nothing in the cache: its layers are always read for real."""

    cacheable = False

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def wants_content(self, entry: Entry) -> bool:
        return True

    def visit(self, entry: Entry) -> None:
        self.sizes.append(len(entry.read()))


@pytest.fixture
def submitted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The regions handed to the digest checks (which still run), as ``path@offset``."""
    seen: list[str] = []
    real = mapped.Verifier.submit

    def spy(self: mapped.Verifier, region: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(f"{region.path}@{region.offset}")
        return real(self, region, *args, **kwargs)

    monkeypatch.setattr(mapped.Verifier, "submit", spy)
    return seen


def _archive(path: Path) -> Path:
    img = build_image(LAYERS, compression="", fmt="docker")
    return Path(write_docker_archive(img, path).split(":", 1)[1])


def _pass(path: Path, cache: LayerCache, visitor: Visitor) -> None:
    with open_source(f"docker-archive:{path}") as src:
        run_pass(src.image(), [visitor], cache=cache)


def _checked_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, LayerCache]:
    """An archive (its check remembered at once: no settling time) after one pass with a cache."""
    monkeypatch.setattr(cache_mod, "SETTLE_NS", 0)
    path = _archive(tmp_path / "img.tar")
    cache = LayerCache(tmp_path / "cache")
    _pass(path, cache, Names())
    return path, cache


def _changed(path: Path, before: Any) -> None:
    """Wait until the file's identity differs from ``before`` (a coarse clock may need a tick)."""
    deadline = time.monotonic() + 5
    while file_identity(str(path)) == before:
        assert time.monotonic() < deadline, "the file's ctime never moved"
        time.sleep(0.01)
        os.utime(path)


def test_an_unchanged_settled_archive_is_hashed_once(
    tmp_path: Path, submitted: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, cache = _checked_once(tmp_path, monkeypatch)
    assert len(submitted) == 2  # both layers checked, then remembered
    first = Names()
    _pass(path, cache, first)  # replayed from the cache: no hashing
    assert len(submitted) == 2 and "etc/b" in first.paths
    reader = Reader()
    _pass(path, cache, reader)  # read for real, still not hashed again
    assert len(submitted) == 2 and 70_000 in reader.sizes


def test_a_pass_without_a_layer_cache_remembers_its_checks(
    tmp_path: Path, submitted: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``checked`` alone (what ``sbom`` gives): no layer results are kept, every layer is read,
    only the digest checks of unchanged files are skipped."""
    monkeypatch.setattr(cache_mod, "SETTLE_NS", 0)
    path = _archive(tmp_path / "img.tar")
    checked = LayerCache(tmp_path / "cache")
    for _ in range(2):
        reader = Reader()
        with open_source(f"docker-archive:{path}") as src:
            run_pass(src.image(), [reader], checked=checked)
        assert 70_000 in reader.sizes
    assert len(submitted) == 2
    assert not (checked.root / "entries").exists() and not (checked.root / "blobs").exists()


def test_a_file_rewritten_in_place_is_checked_again(
    tmp_path: Path, submitted: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, cache = _checked_once(tmp_path, monkeypatch)
    before = file_identity(str(path))
    data = bytearray(path.read_bytes())
    at = data.find(b"b" * 70_000)
    data[at + 7] = ord("B")  # same size, one byte of the second layer
    with open(path, "r+b") as f:
        f.write(data)
    _changed(path, before)
    with pytest.raises(DigestMismatch):
        _pass(path, cache, Names())
    assert len(submitted) == 4


def test_a_file_replaced_by_another_is_checked_again(
    tmp_path: Path, submitted: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, cache = _checked_once(tmp_path, monkeypatch)
    other = _archive(tmp_path / "other.tar")  # the same bytes, another file
    os.replace(other, path)
    _pass(path, cache, Names())
    assert len(submitted) == 4
    _pass(path, cache, Names())
    assert len(submitted) == 4  # and that one is remembered in turn


def test_a_recently_changed_file_is_not_remembered(tmp_path: Path, submitted: list[str]) -> None:
    """Written just now (less than SETTLE_NS before its check): a later write might leave a
    coarse timestamp as it was, so every pass checks it."""
    path = _archive(tmp_path / "img.tar")
    cache = LayerCache(tmp_path / "cache")
    _pass(path, cache, Names())
    _pass(path, cache, Names())
    assert len(submitted) == 4
    files = cache.root / "files"
    assert not files.exists() or not any(files.iterdir())


def test_remember_checked_needs_an_unchanged_settled_file(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"x" * 100)
    digest = "sha256:" + "ab" * 32
    cache = LayerCache(tmp_path / "cache")
    ident = file_identity(str(path))
    assert ident is not None
    late = ident[4] + cache_mod.SETTLE_NS  # the check started SETTLE_NS after the last change
    cache.remember_checked(str(path), 0, 100, digest, ident, late - 1)  # one ns too early
    assert not cache.checked_file(str(path), 0, 100, digest)
    cache.remember_checked(str(path), 0, 100, digest, None, late)  # no identity taken
    assert not cache.checked_file(str(path), 0, 100, digest)
    changed = (*ident[:4], ident[4] - 1)  # the file changed while it was checked
    cache.remember_checked(str(path), 0, 100, digest, changed, late)  # type: ignore[arg-type]
    assert not cache.checked_file(str(path), 0, 100, digest)  # kept under the old identity
    cache.remember_checked(str(path), 0, 100, digest, ident, late)
    assert cache.checked_file(str(path), 0, 100, digest)
    # the record names one region and one digest
    assert not cache.checked_file(str(path), 0, 99, digest)
    assert not cache.checked_file(str(path), 1, 100, digest)
    assert not cache.checked_file(str(path), 0, 100, "sha256:" + "cd" * 32)
    assert not cache.checked_file(str(tmp_path / "gone"), 0, 100, digest)


def test_a_shared_store_never_remembers_files(tmp_path: Path) -> None:
    """Device and inode numbers mean nothing on another machine: a store that is not this
    machine's own directory (the service's database) keeps no such record."""

    class Store:
        def __init__(self) -> None:
            self.data: dict[tuple[str, ...], bytes] = {}

        def read(self, parts: tuple[str, ...]) -> bytes | None:
            return self.data.get(parts)

        def write(self, parts: tuple[str, ...], data: bytes) -> None:
            self.data[parts] = data

    path = tmp_path / "blob"
    path.write_bytes(b"x" * 100)
    ident = file_identity(str(path))
    assert ident is not None
    store = Store()
    cache = LayerCache(tmp_path / "cache", store=store)
    digest = "sha256:" + "ab" * 32
    cache.remember_checked(str(path), 0, 100, digest, ident, ident[4] + cache_mod.SETTLE_NS)
    assert store.data == {} and not cache.checked_file(str(path), 0, 100, digest)
