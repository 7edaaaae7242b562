"""`imagewise deps check`: packages and base images of a Dockerfile looked up where a build
would get them. PyPI, npm and the Debian archive are the real ones (these machines reach them);
base images come from the docker-registry the tests start; Alpine's index (unreachable from
here) from a local static mirror holding the real package records of Alpine 3.19."""

from __future__ import annotations

import gzip
import http.server
import io
import json
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import corpus
from fixtures_registry import RegistryServer, build_image, push_image, unique_repo

from imagewise.deps import DepsIndexes, deps_check, requirements


def _write(tmp: Path, text: str) -> Path:
    path = tmp / "Dockerfile"
    path.write_text(text)
    return path


def test_requirements_read_every_installer_and_the_release_of_each_stage(tmp_path: Path) -> None:
    df = _write(
        tmp_path,
        "ARG PY=3.12\n"
        "FROM python:${PY}-slim-bookworm AS base\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends -t bookworm-backports"
        " curl=7.88.1-10 ca-certificates ./local.deb $EXTRA\n"
        "RUN pip install --no-cache-dir -i https://mirror/simple 'requests[socks]==2.31.0' flask"
        " git+https://github.com/x/y.git ./wheel.whl && pip install -r requirements.txt\n"
        "FROM base AS app\n"
        "RUN apt-get install -y jq && npm install -g @angular/core@17.0.0 lodash react@^18"
        " user/repo ./pkg.tgz\n"
        "FROM ubuntu:24.04\nRUN apt-get install -y git\n"
        "FROM debian:12\nRUN apt-get install -y less\n"
        "FROM registry.example.com/team/alpine:3.19.4\nRUN apk add --no-cache --virtual .b curl=8.5.0-r0\n"
        "FROM scratch\nCOPY --from=app / /\n",
    )
    got = [(d.kind, d.name, d.version, d.line, d.release) for d in requirements(df)]
    assert got == [
        ("image", "python:3.12-slim-bookworm", "3.12-slim-bookworm", 2, ""),
        ("apt", "curl", "7.88.1-10", 3, "debian/bookworm"),
        ("apt", "ca-certificates", "", 3, "debian/bookworm"),
        ("pip", "requests", "2.31.0", 4, ""),
        ("pip", "flask", "", 4, ""),
        ("apt", "jq", "", 6, "debian/bookworm"),  # stage app is built FROM base
        ("npm", "@angular/core", "17.0.0", 6, ""),
        ("npm", "lodash", "", 6, ""),
        ("npm", "react", "^18", 6, ""),
        ("image", "ubuntu:24.04", "24.04", 7, ""),
        ("apt", "git", "", 8, "ubuntu/noble"),
        ("image", "debian:12", "12", 9, ""),
        ("apt", "less", "", 10, "debian/bookworm"),
        ("image", "registry.example.com/team/alpine:3.19.4", "3.19.4", 11, ""),
        ("apk", "curl", "8.5.0-r0", 12, "alpine/v3.19"),
    ]


def test_pypi_npm_and_debian_answers(tmp_path: Path) -> None:
    df = _write(
        tmp_path,
        "FROM python:3.12-slim-bookworm\n"
        "RUN apt-get install -y ca-certificates libimagewise-no-such-pkg=1.0 bash=0.0-imagewise\n"
        "RUN pip install requests==2.31.0 flask==0.0.999 imagewise-no-such-package-xyz==1.0"
        " django\n"
        "RUN npm install lodash@4.17.21 left-pad@9.9.9 @angular/core@17.0.0 react@^18"
        " react@^99.0.0 imagewise-no-such-package-xyz@1.0.0\n",
    )
    result = deps_check(df, cache_dir=tmp_path / "cache", jobs=8)
    deps = result.dependencies
    status = [(d.kind, d.name, d.version, d.status) for d in deps if d.kind != "image"]
    assert status == [
        ("apt", "ca-certificates", "", "unpinned"),
        ("apt", "libimagewise-no-such-pkg", "1.0", "missing"),
        ("apt", "bash", "0.0-imagewise", "gone"),
        ("pip", "requests", "2.31.0", "ok"),
        ("pip", "flask", "0.0.999", "gone"),
        ("pip", "imagewise-no-such-package-xyz", "1.0", "missing"),
        ("pip", "django", "", "unpinned"),
        ("npm", "lodash", "4.17.21", "ok"),
        ("npm", "left-pad", "9.9.9", "gone"),
        ("npm", "@angular/core", "17.0.0", "ok"),
        ("npm", "react", "^18", "ok"),
        ("npm", "react", "^99.0.0", "gone"),
        ("npm", "imagewise-no-such-package-xyz", "1.0.0", "missing"),
    ]
    by = {(d.kind, d.name, d.version): d for d in deps}
    for key in [
        ("apt", "bash", "0.0-imagewise"),
        ("pip", "flask", "0.0.999"),
        ("npm", "left-pad", "9.9.9"),
        ("apt", "ca-certificates", ""),
    ]:
        assert by[key].newest, key  # what to pin instead
    # the newest apt version, pinned, is found: the index and the lookup agree
    bash = by[("apt", "bash", "0.0-imagewise")].newest
    again = _write(tmp_path, f"FROM debian:bookworm\nRUN apt-get install -y bash={bash}\n")
    (pinned,) = [
        d for d in deps_check(again, cache_dir=tmp_path / "cache").dependencies if d.kind == "apt"
    ]
    assert pinned.status == "ok", pinned
    assert {d.name for d in result.failed} == {
        "libimagewise-no-such-pkg",
        "bash",
        "flask",
        "imagewise-no-such-package-xyz",
        "left-pad",
        "react",
    }


def test_base_images_in_a_real_registry(tmp_path: Path, registry: RegistryServer) -> None:
    repo = unique_repo("deps")
    push_image(registry, repo, "1.4.2", build_image((10,), seed=3))
    push_image(registry, repo, "1.5.0", build_image((10,), seed=4))
    base = f"{registry.host}/{repo}"
    df = _write(
        tmp_path,
        f"FROM {base}:1.4.2 AS a\nFROM {base}:9.9 AS b\nFROM {registry.host}/nosuch-{repo}:1\n"
        f"FROM {base}\n",
    )
    deps = deps_check(df, cache_dir=tmp_path / "cache").dependencies
    assert [(d.line, d.status, d.newest) for d in deps] == [
        (1, "ok", "1.5.0"),
        (2, "gone", "1.5.0"),
        (3, "missing", ""),
        (4, "gone", "1.5.0"),  # no tag: latest, which this repository lacks
    ]


@pytest.fixture()
def alpine_mirror(tmp_path: Path) -> Iterator[str]:
    """A static Alpine mirror (v3.19, x86_64) whose main index holds the package records of
    the real Alpine 3.19.4 minirootfs."""
    rootfs = corpus("rootfs", "alpine", "alpine-minirootfs-3.19.4-x86_64.tar.gz")
    with tarfile.open(rootfs) as tar:
        member = tar.extractfile("./lib/apk/db/installed") or tar.extractfile(
            "lib/apk/db/installed"
        )
        assert member is not None
        installed = member.read()
    root = tmp_path / "mirror"
    for repo, index in (("main", installed), ("community", b"")):
        out = root / "v3.19" / repo / "x86_64"
        out.mkdir(parents=True)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("APKINDEX")
            info.size = len(index)
            tar.addfile(info, io.BytesIO(index))
        (out / "APKINDEX.tar.gz").write_bytes(gzip.compress(buf.getvalue()))

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **k: object) -> None:
            super().__init__(*a, directory=str(root), **k)  # type: ignore[arg-type]

        def log_message(self, *a: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_alpine_packages_from_a_mirror_and_unreachable_indexes(
    tmp_path: Path, alpine_mirror: str, registry: RegistryServer
) -> None:
    repo = unique_repo("alpine")
    push_image(registry, f"{repo}/alpine", "3.19", build_image((10,), seed=5))
    df = _write(
        tmp_path,
        f"FROM {registry.host}/{repo}/alpine:3.19\n"
        "RUN apk add --no-cache busybox musl=0.0-r0 imagewise-nosuch alpine-baselayout=3.4*\n",
    )
    indexes = DepsIndexes(alpine=alpine_mirror)
    deps = [
        d
        for d in deps_check(df, indexes=indexes, cache_dir=tmp_path / "c").dependencies
        if d.kind == "apk"
    ]
    assert [(d.name, d.status) for d in deps] == [
        ("busybox", "unpinned"),
        ("musl", "gone"),
        ("imagewise-nosuch", "missing"),
        ("alpine-baselayout", "ok"),
    ]
    assert all(d.release == "alpine/v3.19" for d in deps) and deps[1].newest.startswith("1.2")
    # an index that cannot be reached: unknown, with the reason, and not a failure
    closed = DepsIndexes(alpine="http://127.0.0.1:9")
    result = deps_check(df, indexes=closed, cache_dir=tmp_path / "other")
    apk = [d for d in result.dependencies if d.kind == "apk"]
    assert {d.status for d in apk} == {"unknown"} and "unreachable" in apk[0].note
    assert not result.failed


def test_cli_exit_codes_and_json(tmp_path: Path, registry: RegistryServer) -> None:
    repo = unique_repo("depscli")
    push_image(registry, repo, "1.0", build_image((10,), seed=6))
    good = _write(tmp_path, f"FROM {registry.host}/{repo}:1.0\n")
    proc = subprocess.run(
        ["imagewise", "deps", "check", str(good), "--format", "json"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "imagewise/deps/v1" and doc["counts"] == {"ok": 1}
    bad = tmp_path / "bad" / "Dockerfile"
    bad.parent.mkdir()
    bad.write_text(f"FROM {registry.host}/{repo}:2.0\n")
    proc = subprocess.run(["imagewise", "deps", "check", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 1 and "gone" in proc.stdout and "1 missing or gone" in proc.stdout
    for args in (["nope/Dockerfile"], [str(good), "--build-arg", "X"]):
        proc = subprocess.run(["imagewise", "deps", "check", *args], capture_output=True, text=True)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
