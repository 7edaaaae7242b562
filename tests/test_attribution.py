"""Attribution advice names only instructions that made the layer: a RUN is combined only with a
RUN, COPY waste is fixed in the COPY, and bytes from the base image are said to come from it.

Checked on images built the way users build them: buildah from a real base (busybox) with
COPY and RUN mixed, the bundled sample image (BuildKit history over a Debian-like base), and a
classic-builder image whose base is ``ADD file:<hash> in /``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import corpus
from fixtures_images import CREATED, TarFile, build_image, tar_bytes, write_oci_layout

from imagewise.analysis import analyze
from imagewise.analysis.attribution import short_instruction
from imagewise.analysis.model import ImageAnalysis
from imagewise.sources import open_source

BUSYBOX = ("rootfs", "busybox", "latest-musl", "busybox-1.38.0-musl-amd64-oci.tar")

DOCKERFILE = """\
FROM oci-archive:{base}
COPY app/ /app/
COPY settings.prod.json /app/settings.json
RUN mkdir -p /var/cache/apk && head -c 300000 /dev/urandom > /var/cache/apk/APKINDEX.tar.gz && head -c 200000 /dev/urandom > /tmp/build.o
RUN rm -f /tmp/build.o && chmod 600 /etc/group && rm /bin/getconf
RUN sed -i s/debug/info/ /app/config.txt
RUN rm -rf /app/data.bin
"""


def _analysis(ref: str) -> ImageAnalysis:
    with open_source(ref) as src:
        return analyze(src.image())


def _kinds(a: ImageAnalysis) -> list[str]:
    return [short_instruction(layer.created_by, 10**6).split(" ", 1)[0] for layer in a.layers]


def _assert_fixes_name_the_right_instructions(a: ImageAnalysis, base: int) -> None:
    """Every `RUN N` a fix names is a RUN of the user's own layers; every `COPY of layer N` a
    COPY; a finding about a base layer says so and suggests another base image."""
    kinds = _kinds(a)
    for f in a.waste:
        text = f"{f.title} {f.fix}"
        for n in re.findall(
            r"\bRUN (\d+)\b|RUN of layer (\d+)|same RUN [^(]*\(layer (\d+)\)", text
        ):
            k = int(next(x for x in n if x))
            assert k >= base and kinds[k] == "RUN", (k, kinds, text)
        for word, n in re.findall(r"the (COPY|ADD) of layer (\d+)", text):
            assert int(n) >= base and kinds[int(n)] == word, (n, kinds, text)
        if f.rule != "IW-WASTE-DUPLICATE-CONTENT" and (f.location.layer_index or 0) < base:
            assert "base image" in f.title and "base image" in f.fix, text
            assert "slimmer" in f.fix or "newer base image" in f.fix, text


@pytest.fixture(scope="module")
def buildah_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    exe = shutil.which("buildah")
    if not exe:
        pytest.fail("buildah is required (scripts/install-deps installs it)")
    ctx = tmp_path_factory.mktemp("attr-ctx")
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=corpus(*BUSYBOX)))
    (ctx / "app").mkdir()
    (ctx / "app" / "data.bin").write_bytes(bytes(range(256)) * 1200)
    (ctx / "app" / "config.txt").write_text("level=debug\n" * 400)
    (ctx / "app" / "settings.json").write_text('{"env": "dev"}\n' * 100)
    (ctx / "settings.prod.json").write_text('{"env": "prod"}\n' * 100)
    out = ctx / "image.tar"
    name = f"localhost/iw-attr-{ctx.name.lower()}:1"
    own = tmp_path_factory.mktemp("attr-store")
    store = [
        "--storage-driver",
        "vfs",
        "--root",
        str(own / "root"),
        "--runroot",
        str(own / "runroot"),
    ]
    subprocess.run(
        [exe, "bud", *store, "--isolation", "chroot", "--layers", "-q", "-t", name, str(ctx)],
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            [exe, "push", *store, name, f"docker-archive:{out}:{name}"],
            check=True,
            capture_output=True,
        )
    finally:
        subprocess.run([exe, "rmi", *store, name], capture_output=True)
    return f"docker-archive:{out}"


def test_buildah_image_base_copy_run_mix(buildah_image: str) -> None:
    a = _analysis(buildah_image)
    assert _kinds(a)[1:] == ["COPY", "COPY", "RUN", "RUN", "RUN", "RUN"]
    _assert_fixes_name_the_right_instructions(a, base=1)
    at = {(f.rule, f.location.path): f"{f.title} | {f.fix}" for f in a.waste}
    # COPY then COPY of the same file: fixed in the first COPY, no RUN named
    copy_copy = at["IW-WASTE-OVERWRITTEN", "/app/settings.json"]
    assert "leave the files the COPY of layer 2 replaces out of the COPY of layer 1" in copy_copy
    assert "RUN" not in copy_copy
    # a RUN edits a file a COPY brought: change it before copying, nothing to combine
    copy_run = at["IW-WASTE-OVERWRITTEN", "/app/config.txt"]
    assert "before they are copied" in copy_run and "combine" not in copy_run
    # a RUN chmods and deletes files of the base image: nothing to put in a RUN of layer 0
    chmod = at["IW-WASTE-METADATA", "/etc/group"]
    assert "from the base image (layer 0)" in chmod and "same RUN" not in chmod
    deleted_base = at["IW-WASTE-DELETED", "/bin/getconf"]
    assert "layer 0 (from the base image)" in deleted_base
    assert "does not shrink the image" in deleted_base and "combine" not in deleted_base
    # a COPY'd file deleted later: .dockerignore, no RUN to combine
    copy_del = at["IW-WASTE-DELETED", "/app/data.bin"]
    assert ".dockerignore" in copy_del and "combine" not in copy_del
    # RUN-written cache and temp files: fixed in that RUN
    assert "(layer 3)" in at["IW-WASTE-APK-CACHE", "/var/cache/apk/APKINDEX.tar.gz"]
    assert "in the same RUN that writes them in layer 3" in at["IW-WASTE-TEMP", "/tmp/build.o"]


def test_sample_image_advice(tmp_path: Path) -> None:
    from imagewise.sample import build_sample

    ref = build_sample(tmp_path / "sample").reference
    a = _analysis(ref)
    _assert_fixes_name_the_right_instructions(a, base=1)
    fixes = " ".join(f.fix for f in a.waste)
    # both are COPY; layer 0 is the base image
    assert "combine RUN 2 and RUN 6" not in fixes and "combine RUN 0 and RUN 1" not in fixes
    [settings] = [f for f in a.waste if f.location.path == "/app/settings.json"]
    assert settings.fix.startswith(
        "copy each file once: leave the files the COPY of layer 6 "
        "replaces out of the COPY of layer 2"
    )
    [dpkg] = [f for f in a.waste if f.location.path == "/var/lib/dpkg/status"]
    assert "written by the base image (layer 0)" in dpkg.title
    assert "newer base image" in dpkg.fix


def test_leftovers_of_a_classic_base_rootfs_are_from_the_base_image(tmp_path: Path) -> None:
    lists = {f"var/lib/apt/lists/deb_{i}_Packages": b"p" * 200_000 for i in range(3)}
    base = tar_bytes(
        {
            "etc": TarFile(kind="dir"),
            "etc/os-release": b"ID=debian\n",
            "var/lib/apt/lists": TarFile(kind="dir"),
            **lists,
        }
    )
    app = tar_bytes(
        {
            "app": TarFile(kind="dir"),
            "app/main.py": b"print(1)\n",
            "var/cache/apt/archives/curl_8.0_amd64.deb": b"d" * 300_000,
        }
    )
    history = [
        {"created": CREATED, "created_by": "/bin/sh -c #(nop) ADD file:5d6b639e8b6bcc01 in / "},
        {"created": CREATED, "created_by": "/bin/sh -c #(nop) COPY dir:77aa01 in /app "},
        {
            "created": CREATED,
            "created_by": '/bin/sh -c #(nop)  CMD ["python3"]',
            "empty_layer": True,
        },
    ]
    ref = write_oci_layout(build_image([base, app], history=history), tmp_path / "img", "1")
    a = _analysis(ref)
    _assert_fixes_name_the_right_instructions(a, base=1)
    [apt] = [f for f in a.waste if f.rule == "IW-WASTE-APT-LISTS"]
    assert "from layer 0 (from the base image)" in apt.title
    assert "same RUN" not in apt.fix and "slimmer or newer base image" in apt.fix
    [deb] = [f for f in a.waste if f.rule == "IW-WASTE-APT-ARCHIVES"]
    assert deb.fix.startswith(
        "do not copy them into the image: exclude them from the COPY of layer 1"
    )
