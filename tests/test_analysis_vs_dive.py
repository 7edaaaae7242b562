"""Exact equality with dive 0.13.1 on images built with buildah and on hand-made archives.

buildah builds five small images from the busybox OCI archive in the corpus (overwrite, delete,
chmod-only, caches, directory re-creation with links and FIFOs); each is pushed to a
docker-archive and read by both dive (``--json`` and ``--ci``) and imagewise. Hand-made archives
cover what buildah does not write: opaque whiteouts, whiteouts of paths that never existed,
implicit parent directories, empty layers.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import corpus
from dive_reference import assert_same_as_dive, need_tool, ours
from fixtures_images import TarFile, build_image, tar_bytes, write_docker_archive

BASE = ("rootfs", "busybox", "latest-musl", "busybox-1.38.0-musl-amd64-oci.tar")

DOCKERFILES: dict[str, str] = {
    "overwrite": """
RUN dd if=/dev/urandom of=/big bs=1k count=80 2>/dev/null
RUN dd if=/dev/urandom of=/big bs=1k count=20 2>/dev/null && echo more >> /etc/motd
RUN dd if=/dev/urandom of=/big bs=1k count=90 2>/dev/null
""",
    "delete": """
RUN mkdir -p /d/sub/deeper && dd if=/dev/urandom of=/d/g bs=1k count=30 2>/dev/null && \
    dd if=/dev/urandom of=/d/sub/f bs=1k count=12 2>/dev/null && echo x > /d/sub/deeper/y && \
    dd if=/dev/urandom of=/keep bs=1k count=5 2>/dev/null
RUN rm /d/g
RUN rm -rf /d && rm -f /does-not-exist
""",
    "chmod": """
RUN chmod 700 /bin/busybox
RUN dd if=/dev/urandom of=/app.bin bs=1k count=40 2>/dev/null && chmod 644 /app.bin
RUN chmod +x /app.bin
RUN chown 1000:1000 /app.bin
""",
    "caches": """
RUN mkdir -p /var/lib/apt/lists /var/cache/apk /root/.cache/pip/http /tmp/build \
      /usr/lib/python3/site-packages/__pycache__ && \
    dd if=/dev/urandom of=/var/lib/apt/lists/deb_Packages bs=1k count=60 2>/dev/null && \
    dd if=/dev/urandom of=/var/cache/apk/APKINDEX.tar.gz bs=1k count=30 2>/dev/null && \
    dd if=/dev/urandom of=/root/.cache/pip/http/whl bs=1k count=25 2>/dev/null && \
    dd if=/dev/urandom of=/tmp/build/obj.o bs=1k count=15 2>/dev/null && \
    dd if=/dev/urandom of=/usr/lib/python3/site-packages/__pycache__/m.pyc bs=1k count=3 2>/dev/null
RUN rm -rf /var/cache/apk/* /tmp/build
""",
    "recreate": """
RUN mkdir -p /d/a && dd if=/dev/urandom of=/d/a/one bs=1k count=70 2>/dev/null && echo two > /d/two
RUN rm -rf /d && mkdir /d && echo new > /d/new && cp /bin/busybox /opt-bb && \
    ln -s /opt-bb /bb-link && ln /opt-bb /bb-hard && mkfifo /fifo
RUN cp /opt-bb /opt-bb2 && rm /bb-hard
""",
}


@pytest.fixture(scope="session")
def buildah_archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    buildah = need_tool("buildah")
    if os.geteuid() != 0:
        pytest.fail("buildah tests need root (chroot isolation, vfs storage)")
    base = corpus(*BASE)
    work = tmp_path_factory.mktemp("buildah")
    store = [
        "--storage-driver",
        "vfs",
        "--root",
        str(work / "root"),
        "--runroot",
        str(work / "run"),
    ]
    out: dict[str, Path] = {}
    for name, body in DOCKERFILES.items():
        ctx = work / name
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(f"FROM oci-archive:{base}\n{body}")
        subprocess.run(
            [
                buildah,
                *store,
                "build",
                "--quiet",
                "--layers",
                "--isolation",
                "chroot",
                "-t",
                f"iw-{name}",
                str(ctx),
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
        archive = work / f"{name}.tar"
        subprocess.run(
            [
                buildah,
                *store,
                "push",
                "--quiet",
                f"iw-{name}",
                f"docker-archive:{archive}:iw-{name}:latest",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        out[name] = archive
    return out


@pytest.mark.parametrize("name", list(DOCKERFILES))
def test_buildah_image_matches_dive(
    name: str, buildah_archives: dict[str, Path], tmp_path: Path
) -> None:
    a = assert_same_as_dive(buildah_archives[name], tmp_path)
    assert a.final_bytes + a.reclaimable_bytes == sum(
        layer_files_bytes for layer_files_bytes in _written(buildah_archives[name])
    )


def _written(archive: Path) -> list[int]:
    """File bytes per layer, read with Python's tarfile (independent of imagewise)."""
    import tarfile

    out = []
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        for name in manifest[0]["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(name)) as layer:
                out.append(sum(m.size for m in layer.getmembers() if m.isreg()))
    return out


def test_buildah_reclaimable_figures(buildah_archives: dict[str, Path]) -> None:
    over = ours(buildah_archives["overwrite"])
    big = [f for f in over.waste if f.location.path == "/big"]
    assert sum(f.bytes_saved for f in big) == 80 * 1024 + 20 * 1024
    assert over.dive.wasted_bytes > over.reclaimable_bytes  # dive counts the kept 90k too

    dele = ours(buildah_archives["delete"])
    assert dele.reclaimable_bytes == 30 * 1024 + 12 * 1024 + 2  # g, sub/f, deeper/y ("x\n")
    # dive never counts the directory delete
    assert {f.path for f in dele.dive.inefficient_files} == {"/d/g"}

    chm = ours(buildah_archives["chmod"])
    rules = {f.rule for f in chm.waste}
    assert "IW-WASTE-METADATA" in rules
    app = [f for f in chm.waste if f.location.path == "/app.bin"]
    assert sum(f.bytes_saved for f in app) == 2 * 40 * 1024
    # busybox is hard-linked ~400 times: its chmod copy costs its size once, not 400 times
    bb = [f for f in chm.waste if f.location.path.startswith("/bin/")]
    assert len(bb) == 1 and bb[0].extra["files"] == 1

    caches = ours(buildah_archives["caches"])
    by_rule = {f.rule: f for f in caches.waste}
    assert by_rule["IW-WASTE-APT-LISTS"].bytes_saved == 60 * 1024
    assert by_rule["IW-WASTE-APT-LISTS"].location.layer_index == 1
    assert "rm -rf /var/lib/apt/lists/*" in by_rule["IW-WASTE-APT-LISTS"].fix
    assert by_rule["IW-WASTE-APK-CACHE"].bytes_saved == 30 * 1024  # deleted later: still there
    assert by_rule["IW-WASTE-PIP-CACHE"].bytes_saved == 25 * 1024
    assert by_rule["IW-WASTE-PYCACHE"].bytes_saved == 3 * 1024
    assert "dd if=/dev/urandom" in by_rule["IW-WASTE-APT-LISTS"].extra["created_by"]

    rec = ours(buildah_archives["recreate"])
    dup = [f for f in rec.waste if f.rule == "IW-WASTE-DUPLICATE-CONTENT"]
    assert dup and dup[0].extra["files"] >= 2


# -- hand-made archives: cases buildah does not produce --------------------------------------


def _archive(tmp: Path, name: str, layers: list[dict[str, bytes | TarFile]]) -> Path:
    img = build_image([tar_bytes(layer) for layer in layers], compression="", fmt="docker")
    path = tmp / f"{name}.tar"
    write_docker_archive(img, path)
    return path


DIR = TarFile(kind="dir")
WH = TarFile(b"")

EDGE_CASES: dict[str, list[dict[str, bytes | TarFile]]] = {
    "opaque": [
        {"d/": DIR, "d/old": b"o" * 4000, "d/keep": b"k" * 10},
        {"d/": DIR, "d/.wh..wh..opq": WH, "d/new": b"n" * 100},
    ],
    "missing-whiteout": [
        {"a": b"a" * 10, "c": b"c" * 20, "-c": b"x" * 5},
        {".wh.b": WH, "c": b"C" * 30, "-c": b"y" * 6},
        {"z/.wh.nothing": WH},
    ],
    "implicit-parents": [
        {"a/": DIR, "a/x": b"x" * 100},
        {"a/f": b"f" * 5},
        {".wh.a": WH},
    ],
    "whiteout-in-first-layer": [
        {".wh.zzz": WH, "a": b"a" * 10, "b/": DIR, "b/c": b"c" * 5},
        {"a": b"A" * 3, "b/": DIR, "b/c": b"C" * 7},
    ],
    "whiteout-and-same-name-in-one-layer": [
        {"x/": DIR, "x/in": b"i" * 50, "y": b"y" * 20},
        {".wh.x": WH, "x": b"now a file", ".wh.y": WH, "y/": DIR, "y/z": b"z" * 4},
    ],
    "entries-under-a-symlink": [
        {
            "usr/": DIR,
            "usr/lib/": DIR,
            "usr/lib/a.so": b"s" * 64,
            "lib": TarFile(kind="symlink", linkname="usr/lib"),
        },
        {"lib/b.so": b"b" * 32},
        {"lib/.wh.b.so": WH},
    ],
    "links-and-empty-layers": [
        {
            "bin/": DIR,
            "bin/busybox": b"b" * 3000,
            "bin/sh": TarFile(kind="hardlink", linkname="bin/busybox"),
            "bin/ls": TarFile(kind="symlink", linkname="busybox"),
        },
        {},
        {
            "bin/": DIR,
            "bin/busybox": TarFile(b"b" * 3000, mode=0o700),
            "bin/sh": TarFile(kind="hardlink", linkname="bin/busybox"),
        },
        {"bin/.wh.ls": WH, "empty/": DIR},
    ],
}


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_edge_case_archive_matches_dive(name: str, tmp_path: Path) -> None:
    archive = _archive(tmp_path, name, EDGE_CASES[name])
    a = assert_same_as_dive(archive, tmp_path)
    assert a.final_bytes + a.reclaimable_bytes == sum(_written(archive))
    if name == "opaque":
        assert a.reclaimable_bytes == 4010 and a.dive.wasted_bytes == 0
    if name == "missing-whiteout":
        assert a.missing_whiteouts == 2


def test_dive_corpus_matches_running_dive(tmp_path: Path) -> None:
    assert_same_as_dive(corpus("dive", "test-docker-image.tar"), tmp_path)


def test_docker_25_oci_style_save_matches_dive(tmp_path: Path) -> None:
    layers: list[dict[str, bytes | TarFile]] = [
        {"a/": DIR, "a/x": b"x" * 100, "a/y": b"y" * 7},
        {"a/x": b"X" * 50, "a/.wh.y": WH},
    ]
    img = build_image([tar_bytes(x) for x in layers], compression="", fmt="oci")
    path = tmp_path / "oci-save.tar"
    write_docker_archive(img, path, style="oci")
    a = assert_same_as_dive(path, tmp_path)
    assert a.reclaimable_bytes == 107
