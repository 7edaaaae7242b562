"""``imagewise copy --compress``: layers recompressed, diff_ids and config kept, manifests and
indexes rewritten, read back by imagewise, skopeo and the registry."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_runner import CliRunner
from fixtures_images import build_image, build_index, random_layer, write_oci_layout
from fixtures_registry import RegistryServer, unique_repo

from imagewise.cli.main import cli
from imagewise.oci import media
from imagewise.sources import open_source


def _run(*args: str) -> tuple[int, str]:
    """(exit status, stdout; stdout and stderr when it failed)."""
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout if result.exit_code == 0 else result.output


def _layers(seed: int, n: int = 2) -> list[bytes]:
    import random

    rng = random.Random(seed)
    return [random_layer(rng, files=3, size=20_000, prefix=f"d{i}") for i in range(n)]


def _image_of(ref: str) -> tuple[dict, list[str], str]:  # type: ignore[type-arg]
    with open_source(ref) as src:
        img = src.image()
        return (
            json.loads(img.manifest.raw),
            [str(d) for d in img.config.diff_ids],
            str(img.manifest.config.digest),
        )


def test_zstd_into_a_registry_then_back_to_gzip(registry: RegistryServer, tmp_path: Path) -> None:
    img = build_image(_layers(8101), compression="gzip", fmt="docker")
    src = write_oci_layout(img, tmp_path / "src", "1.0")
    repo = unique_repo("compress")
    dst = f"docker://{registry.host}/{repo}:zstd"
    code, out = _run("copy", src, dst, "--compress", "zstd", "--level", "9", "--format", "json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["compression"] == "zstd" and doc["layer_bytes_before"] > 0
    assert doc["layer_bytes_after"] == sum(entry["size"] for entry in _image_of(dst)[0]["layers"])
    manifest, diff_ids, config = _image_of(dst)
    assert manifest["mediaType"] == media.OCI_MANIFEST  # zstd needs OCI media types
    assert {entry["mediaType"] for entry in manifest["layers"]} == {media.OCI_LAYER_ZSTD}
    assert diff_ids == img.diff_ids  # the uncompressed layers are the same
    assert config == img.config_digest  # and so is the config
    # imagewise reads it back layer by layer
    code, out = _run("files", dst, "--format", "json")
    assert code == 0 and "d0/0.bin" in out, out
    # skopeo reads it too (decompresses every layer into a dir: transport)
    if shutil.which("skopeo"):
        subprocess.run(
            [
                "skopeo",
                "--insecure-policy",
                "copy",
                "--src-tls-verify=false",
                dst,
                f"dir:{tmp_path / 'sk'}",
            ],
            check=True,
            capture_output=True,
        )
    back = f"oci:{tmp_path / 'back'}:1.0"
    code, out = _run("copy", dst, back, "--compress", "gzip", "--format", "json")
    assert code == 0, out
    manifest, diff_ids, _ = _image_of(back)
    assert {entry["mediaType"] for entry in manifest["layers"]} == {media.OCI_LAYER_GZIP}
    assert diff_ids == img.diff_ids


def test_an_index_converts_every_platform(tmp_path: Path) -> None:
    amd = build_image(_layers(8201), platform=("linux", "amd64", ""))
    arm = build_image(_layers(8202), platform=("linux", "arm64", "v8"))
    index = build_index([amd, arm])
    src = write_oci_layout(index, tmp_path / "src", "multi", nested_index=True)
    dst = f"oci:{tmp_path / 'dst'}:multi"
    code, out = _run("copy", src, dst, "--compress", "zstd", "--format", "json")
    assert code == 0, out
    with open_source(dst) as s:
        top = s.top()
        assert top.media_type == media.OCI_INDEX
        children = [s.fetch_manifest(d) for d in top.manifests]  # type: ignore[union-attr]
    assert len(children) == 2
    for child in children:
        assert {d.media_type for d in child.layers} == {media.OCI_LAYER_ZSTD}  # type: ignore[union-attr]
    for plat, built in (("linux/amd64", amd), ("linux/arm64/v8", arm)):
        code, out = _run("files", dst, "--platform", plat, "--format", "json")
        assert code == 0, out
    with open_source(dst) as s:
        assert [str(d) for d in s.image().config.diff_ids] == amd.diff_ids


def test_already_compressed_layers_are_kept_unless_a_level_is_given(tmp_path: Path) -> None:
    img = build_image(_layers(8301), compression="zstd")
    src = write_oci_layout(img, tmp_path / "src", "1.0")
    code, out = _run(
        "copy", src, f"oci:{tmp_path / 'a'}:1.0", "--compress", "zstd", "--format", "json"
    )
    assert code == 0, out
    doc = json.loads(out)
    assert doc["layer_bytes_before"] == doc["layer_bytes_after"] and doc["digest"] == img.digest
    code, out = _run(
        "copy",
        src,
        f"oci:{tmp_path / 'b'}:1.0",
        "--compress",
        "zstd",
        "--level",
        "19",
        "--format",
        "json",
    )
    assert code == 0 and json.loads(out)["digest"] != img.digest, out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--compress", "brotli"], "invalid choice"),
        (["--compress", "gzip", "--level", "12"], "gzip levels are 1 to 9"),
    ],
)
def test_bad_compress_options(tmp_path: Path, args: list[str], message: str) -> None:
    img = build_image(_layers(8401, 1))
    src = write_oci_layout(img, tmp_path / "src", "1.0")
    code, out = _run("copy", src, f"oci:{tmp_path / 'x'}:1.0", *args)
    assert code == 2 and message in out, out


def test_a_corrupt_layer_is_not_recompressed(tmp_path: Path) -> None:
    img = build_image(_layers(8501, 1))
    src = write_oci_layout(img, tmp_path / "src", "1.0")
    config = json.loads(img.config)
    config["rootfs"]["diff_ids"] = ["sha256:" + "1" * 64]  # lies about the layer
    raw = json.dumps(config).encode()
    import hashlib

    cdig = hashlib.sha256(raw).hexdigest()
    (tmp_path / "src" / "blobs" / "sha256" / cdig).write_bytes(raw)
    manifest = json.loads(img.manifest)
    manifest["config"]["digest"], manifest["config"]["size"] = f"sha256:{cdig}", len(raw)
    mraw = json.dumps(manifest).encode()
    mdig = hashlib.sha256(mraw).hexdigest()
    (tmp_path / "src" / "blobs" / "sha256" / mdig).write_bytes(mraw)
    index = json.loads((tmp_path / "src" / "index.json").read_text())
    index["manifests"][0]["digest"], index["manifests"][0]["size"] = f"sha256:{mdig}", len(mraw)
    (tmp_path / "src" / "index.json").write_text(json.dumps(index))
    code, out = _run("copy", src, f"oci:{tmp_path / 'x'}:1.0", "--compress", "zstd")
    assert code != 0 and "sha256:1111" in out, out
    assert not (tmp_path / "x" / "index.json").exists()
