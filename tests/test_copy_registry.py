"""Acceptance: copy through a real registry (CNCF distribution, started by the fixture).

docker-archive -> registry -> OCI layout -> registry keeps the manifest digest between the
registry and OCI copies, and ``skopeo inspect`` agrees with ``imagewise inspect``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import corpus
from fixtures_images import build_index, random_image, write_oci_layout
from fixtures_registry import RegistryServer, unique_repo

from imagewise.copy import copy
from imagewise.inspection import inspect_image
from imagewise.sources import open_source


def skopeo_inspect(ref: str) -> dict[str, Any]:
    out = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", ref],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_round_trip_docker_archive_registry_oci_registry(
    registry: RegistryServer, tmp_path: Path
) -> None:
    archive = corpus("dive", "test-docker-image.tar")
    first = f"docker://{registry.host}/{unique_repo('accept')}:v1"
    layout = f"oci:{tmp_path / 'layout'}:v1"
    second = f"docker://{registry.host}/{unique_repo('accept')}:v1"

    r1 = copy(f"docker-archive:{archive}", first)
    assert r1.blobs_copied == 15
    r2 = copy(first, layout)
    r3 = copy(layout, second)
    # the archive's Docker v2 manifest keeps its digest in the registry; the OCI layout gets it
    # with OCI media types (a new digest, reported), which the second registry then keeps
    assert r2.source_digest == r1.digest != r2.digest == r3.digest
    assert r1.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    assert r2.media_type == "application/vnd.oci.image.manifest.v1+json"
    raw = (tmp_path / "layout" / "blobs" / "sha256" / r2.digest[7:]).read_bytes()
    with open_source(first) as src:
        original = json.loads(src.top().raw)
    converted = json.loads(raw)
    assert [x["digest"] for x in converted["layers"]] == [x["digest"] for x in original["layers"]]
    assert converted["config"]["digest"] == original["config"]["digest"]
    assert (
        json.loads((tmp_path / "layout" / "index.json").read_text())["manifests"][0]["digest"]
        == r2.digest
    )
    for ref, digest in ((first, r1.digest), (second, r2.digest)):
        ours = inspect_image(ref)
        theirs = skopeo_inspect(ref)
        assert ours["digest"] == theirs["Digest"] == digest
        assert [x["digest"] for x in ours["layers"]] == theirs["Layers"]
        assert len(theirs["Layers"]) == 14
        assert ours["platform"] == f"{theirs['Os']}/{theirs['Architecture']}"


def test_registry_to_registry_mounts_and_skips(registry: RegistryServer, tmp_path: Path) -> None:
    img = random_image(seed=21, layers=3)
    src = write_oci_layout(img, tmp_path / "lay")
    a = f"docker://{registry.host}/{unique_repo('mount')}:1"
    b = f"docker://{registry.host}/{unique_repo('mount')}:1"
    assert copy(src, a).blobs_copied == 4
    again = copy(src, a)
    assert (again.blobs_copied, again.blobs_skipped) == (0, 4)
    mounted = copy(a, b)
    assert mounted.blobs_mounted == 4 and mounted.blobs_copied == 0
    assert mounted.digest == img.digest
    assert skopeo_inspect(b)["Digest"] == img.digest


def test_multi_platform_index_through_registry(registry: RegistryServer, tmp_path: Path) -> None:
    amd = random_image(seed=31, platform=("linux", "amd64", ""))
    arm = random_image(seed=32, platform=("linux", "arm64", "v8"))
    index = build_index([amd, arm])
    src = write_oci_layout(index, tmp_path / "lay", "m", nested_index=True)
    dst = f"docker://{registry.host}/{unique_repo('multi')}:m"
    r = copy(src, dst)
    assert r.digest == index.digest and r.manifests == 3
    back = copy(dst, f"oci:{tmp_path / 'back'}:m")
    assert back.digest == index.digest
    assert inspect_image(dst, platform="linux/arm64")["digest"] == arm.digest
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", dst],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    assert raw == index.raw


def test_digest_destination_and_bare_references(registry: RegistryServer, tmp_path: Path) -> None:
    from cli_runner import CliRunner

    from imagewise.cli.main import cli
    from imagewise.errors import DigestMismatch

    img = random_image(seed=41)
    src = write_oci_layout(img, tmp_path / "lay")
    repo = unique_repo("bydigest")
    r = copy(src, f"docker://{registry.host}/{repo}@{img.digest}")
    assert r.digest == img.digest
    out = CliRunner().invoke(
        cli, ["inspect", "--format", "json", f"{registry.host}/{repo}@{img.digest}"]
    )
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["digest"] == img.digest and [x["digest"] for x in doc["layers"]] == img.layer_digests
    other = random_image(seed=42)
    with pytest.raises(DigestMismatch):
        copy(
            write_oci_layout(other, tmp_path / "other"),
            f"docker://{registry.host}/{repo}@{img.digest}",
        )
