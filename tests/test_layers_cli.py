"""``imagewise files`` on every transport, both formats, and bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cli_runner import CliRunner
from conftest import corpus
from fixtures_registry import push_image, unique_repo
from layers_support import make_tar, member, oci_layout

from imagewise.cli.main import cli


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["files", *args])


def test_docker_archive_merged_and_per_layer() -> None:
    ref = f"docker-archive:{corpus('dive', 'test-docker-image.tar')}"
    r = run(ref, "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["schema"] == "imagewise/files/v1" and doc["layer"] is None
    paths = {f["path"]: f for f in doc["files"]}
    assert "root/example" not in paths and paths["root/saved.txt"]["mode"] == "0755"
    assert paths["root/saved.txt"]["layer"] == 13 and paths["somefile.txt"]["size"] == 6405

    r = run(ref, "--layer", "7", "--format", "json")
    doc = json.loads(r.output)
    assert doc["layer"]["index"] == 7 and doc["layer"]["created_by"]
    assert [(f["change"], f["path"]) for f in doc["files"]] == [
        ("deleted", "root/example/somefile3.txt"),
        ("added", "root/saved.txt"),
    ]

    r = run(ref, "--layer", "-1")
    assert r.exit_code == 0
    assert r.output.splitlines() == ["~ -rwxr-xr-x         0:0    6.4 kB  root/saved.txt"]


def test_table_shows_links(tmp_path: Path) -> None:
    layers = [
        make_tar(
            [
                member("bin", "dir", mode=0o755),
                member("bin/sh", data=b"#!", mode=0o755),
                member("bin/ash", "hardlink", link="bin/sh", mode=0o755),
                member("usr", "symlink", link="/", mode=0o777),
            ]
        )
    ]
    r = run(oci_layout(tmp_path / "l", layers, "zstd"))
    assert r.exit_code == 0, r.output
    assert r.output.splitlines() == [
        "drwxr-xr-x         0:0         -  bin",
        "-rwxr-xr-x         0:0         -  bin/ash link to bin/sh",
        "-rwxr-xr-x         0:0       2 B  bin/sh",
        "lrwxrwxrwx         0:0         -  usr -> /",
    ]


def test_oci_archives_each_compression() -> None:
    for name in ("uncompressed", "gzip", "zstd"):
        r = run(f"oci-archive:{corpus('dive', f'test-oci-{name}-image.tar')}", "--format", "json")
        assert r.exit_code == 0, r.output
        assert [f["path"] for f in json.loads(r.output)["files"]] == ["README.md"]


def test_registry_transport(registry: Any) -> None:
    repo = unique_repo("files")
    push_image(registry, repo, "v1")
    r = run(f"docker://{registry.host}/{repo}:v1", "--format", "json")
    assert r.exit_code == 0, r.output
    assert [f["path"] for f in json.loads(r.output)["files"]] == [
        "layer0",
        "layer0/data.bin",
        "layer1",
        "layer1/data.bin",
    ]


def test_bad_input_is_one_line() -> None:
    r = run(str(corpus("dive", "test-gzip-image.tar")))
    assert r.exit_code == 2 and "not an image" in r.output and "Traceback" not in r.output
    r = run(f"docker-archive:{corpus('dive', 'test-docker-image.tar')}", "--layer", "14")
    assert r.exit_code == 2 and "14 layers (0..13)" in r.output


def test_truncated_layer_is_one_line(tmp_path: Path) -> None:
    ref = oci_layout(tmp_path / "l", [make_tar([member("f", data=b"q" * 100_000)])], "")
    blobs = sorted((tmp_path / "l" / "blobs" / "sha256").iterdir(), key=lambda p: -p.stat().st_size)
    layer = blobs[0]
    layer.write_bytes(layer.read_bytes()[:50_000])
    r = run(ref)
    assert r.exit_code == 2, r.output
    lines = [x for x in r.output.splitlines() if x]
    assert len(lines) == 1 and lines[0].startswith("imagewise: error:")


def test_names_that_are_not_utf8(tmp_path: Path) -> None:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT, encoding="latin-1") as tf:
        ti = tarfile.TarInfo("caf\xe9.txt")
        ti.size = 1
        tf.addfile(ti, io.BytesIO(b"x"))
    ref = oci_layout(tmp_path / "l", [buf.getvalue()], "gzip")
    r = run(ref)
    assert r.exit_code == 0 and r.output.rstrip().endswith("caf\\xe9.txt")
    r = run(ref, "--format", "json")
    assert json.loads(r.output)["files"][0]["path"] == "caf\udce9.txt"


def test_platform_selection(tmp_path: Path) -> None:
    ref = oci_layout(
        tmp_path / "multi",
        [],
        "gzip",
        platforms={
            "linux/amd64": [make_tar([member("amd64-only", data=b"a")])],
            "linux/arm64": [make_tar([member("arm64-only", data=b"b")])],
        },
    )
    for plat in ("linux/amd64", "linux/arm64"):
        r = run(ref, "--platform", plat, "--format", "json")
        assert r.exit_code == 0, r.output
        doc = json.loads(r.output)
        assert doc["platform"] == plat
        assert [f["path"] for f in doc["files"]] == [f"{plat.split('/')[1]}-only"]
    r = run(ref, "--platform", "linux/s390x")
    assert r.exit_code == 2 and "linux/amd64" in r.output and "linux/arm64" in r.output
