"""Malformed metadata is refused in words, by every command: JSON nested too deep, descriptors
with negative sizes, configs and ``manifest.json`` entries of the wrong shape."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cli_runner import CliRunner
from fixtures_images import TarFile, random_image, tar_bytes, write_oci_layout

from imagewise.cli.main import cli
from imagewise.errors import ImageFormatError
from imagewise.oci import media
from imagewise.oci.model import ImageConfig, json_depth_exceeds, load_json, parse_manifest
from imagewise.sources import open_source

DEEP = b"[" * 100_000


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layout_with_top(root: Path, top: bytes, extra: dict[str, bytes] | None = None) -> str:
    """An OCI layout whose only index.json entry points at the bytes ``top``."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for data in [top, *(extra or {}).values()]:
        (blobs / sha(data)[7:]).write_bytes(data)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (root / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {"mediaType": media.OCI_MANIFEST, "digest": sha(top), "size": len(top)}
                ],
            }
        )
    )
    return f"oci:{root}"


def run(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, list(args))
    return r.exit_code, r.output


# ------------------------------------------------------------------ depth and size


def test_deeply_nested_manifest_is_refused_in_words_by_every_command(tmp_path: Path) -> None:
    ref = layout_with_top(tmp_path / "deep", DEEP)
    for args in (
        ["inspect", ref],
        ["analyze", ref],
        ["files", ref],
        ["sbom", ref],
        ["copy", ref, f"oci:{tmp_path / 'out'}"],
    ):
        code, out = run(*args)
        assert code == 2, (args, out)
        assert "nests arrays or objects more than 64 levels deep" in out, (args, out)
        assert "internal error" not in out and "Recursion" not in out


@pytest.mark.parametrize("what", ["config", "manifest.json", "index.json"])
def test_deep_json_anywhere_is_an_input_error(tmp_path: Path, what: str) -> None:
    if what == "config":
        with pytest.raises(ImageFormatError, match="image config nests"):
            ImageConfig.parse(b'{"config": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001)
    elif what == "manifest.json":
        path = tmp_path / "deep.tar"
        path.write_bytes(tar_bytes({"manifest.json": DEEP}))
        with pytest.raises(ImageFormatError, match="manifest.json nests"):
            open_source(f"docker-archive:{path}")
    else:
        (tmp_path / "lay").mkdir()
        (tmp_path / "lay" / "index.json").write_bytes(b'{"manifests": ' + DEEP)
        with pytest.raises(ImageFormatError, match="nests arrays"):
            open_source(f"oci:{tmp_path / 'lay'}")


def test_depth_bound_counts_structure_not_strings() -> None:
    # brackets inside strings (and escaped quotes) are text, not nesting
    text = json.dumps({"history": [{"created_by": "RUN echo '" + "[" * 500 + '\\"' + "'"}] * 200})
    assert not json_depth_exceeds(text.encode())
    assert load_json(text.encode(), "config")["history"][0]["created_by"].count("[") == 500
    assert not json_depth_exceeds(b"[" * 64 + b"]" * 64)
    assert json_depth_exceeds(b"[" * 65 + b"]" * 65)
    assert json_depth_exceeds(b'{"a":' * 65 + b"1" + b"}" * 65)


def test_malformed_json_is_described_in_words() -> None:
    with pytest.raises(
        ImageFormatError, match=r"manifest is not valid JSON: Expecting .* at line 1 column"
    ):
        parse_manifest(b'{"schemaVersion": 2,')
    with pytest.raises(ImageFormatError, match="manifest is not UTF-8 text"):
        parse_manifest(b'{"a": "\xff"}')
    with pytest.raises(ImageFormatError, match="manifest must be an object, not a list"):
        parse_manifest(b"[]")


# ------------------------------------------------------------------ descriptors


def _manifest(config: dict[str, Any], layers: Any) -> bytes:
    return json.dumps(
        {"schemaVersion": 2, "mediaType": media.OCI_MANIFEST, "config": config, "layers": layers}
    ).encode()


def test_negative_sizes_are_refused() -> None:
    d = "sha256:" + "a" * 64
    with pytest.raises(ImageFormatError, match=r"manifest: layers\[1\]\.size is negative \(-5\)"):
        parse_manifest(
            _manifest(
                {"digest": d, "size": 3}, [{"digest": d, "size": 1}, {"digest": d, "size": -5}]
            )
        )
    with pytest.raises(ImageFormatError, match=r"manifest: config\.size is negative"):
        parse_manifest(_manifest({"digest": d, "size": -1}, []))
    index = {
        "schemaVersion": 2,
        "mediaType": media.OCI_INDEX,
        "manifests": [{"mediaType": media.OCI_MANIFEST, "digest": d, "size": -1}],
    }
    with pytest.raises(ImageFormatError, match=r"index: manifests\[0\]\.size is negative"):
        parse_manifest(json.dumps(index).encode())


def test_negative_size_in_a_layout_fails_the_command(tmp_path: Path) -> None:
    img = random_image(seed=4)
    doc = img.manifest_doc
    doc["layers"][0]["size"] = -1
    top = json.dumps(doc).encode()
    code, out = run("inspect", layout_with_top(tmp_path / "neg", top, img.blobs))
    assert code == 2 and "layers[0].size is negative (-1)" in out


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("size", "12", "manifest: layers[0].size must be an integer, not a string"),
        ("size", 1.5, "manifest: layers[0].size must be an integer, not a number"),
        ("size", True, "manifest: layers[0].size must be an integer, not true or false"),
        ("digest", 7, "manifest: layers[0].digest must be a string, not a number"),
        ("annotations", ["a"], "manifest: layers[0].annotations must be an object, not a list"),
        ("platform", "linux", "manifest: layers[0].platform must be an object, not a string"),
        ("urls", "http://x", "manifest: layers[0].urls must be a list, not a string"),
        ("mediaType", 3, "manifest: layers[0].mediaType must be a string, not a number"),
    ],
)
def test_descriptor_fields_are_typed(field: str, value: Any, message: str) -> None:
    d = "sha256:" + "a" * 64
    layer = {"mediaType": media.OCI_LAYER_GZIP, "digest": d, "size": 1, field: value}
    with pytest.raises(ImageFormatError) as e:
        parse_manifest(_manifest({"digest": d, "size": 3}, [layer]))
    assert str(e.value) == message


# ------------------------------------------------------------------ config and manifest.json shapes


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"config": "x"}, "image config: config must be an object, not a string"),
        ({"rootfs": "layers"}, "image config: rootfs must be an object, not a string"),
        (
            {"rootfs": {"diff_ids": "sha256:x"}},
            "image config: rootfs.diff_ids must be a list, not a string",
        ),
        (
            {"rootfs": {"diff_ids": [3]}},
            "image config: rootfs.diff_ids[0] must be a string, not a number",
        ),
        ({"history": ["RUN x"]}, "image config: history[0] must be an object, not a string"),
        (
            {"history": [{"created_by": 1}]},
            "image config: history[0].created_by must be a string, not a number",
        ),
        (
            {"config": {"Labels": ["a=b"]}},
            "image config: config.Labels must be an object, not a list",
        ),
        (
            {"config": {"Labels": {"a": 1}}},
            "image config: config.Labels['a'] must be a string, not a number",
        ),
        ({"config": {"Env": "A=1"}}, "image config: config.Env must be a list, not a string"),
        ({"config": {"Cmd": [1]}}, "image config: config.Cmd[0] must be a string, not a number"),
        (
            {"config": {"ExposedPorts": ["80/tcp"]}},
            "image config: config.ExposedPorts must be an object, not a list",
        ),
        ({"config": {"User": 0}}, "image config: config.User must be a string, not a number"),
        ({"os": ["linux"]}, "image config: os must be a string, not a list"),
    ],
)
def test_config_shapes_name_the_field_and_type(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ImageFormatError) as e:
        ImageConfig.parse(json.dumps(config).encode())
    assert str(e.value) == message


def test_config_of_the_wrong_shape_fails_the_command_in_words(tmp_path: Path) -> None:
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": "x"}).encode()
    top = _manifest({"mediaType": media.OCI_CONFIG, "digest": sha(cfg), "size": len(cfg)}, [])
    code, out = run("inspect", layout_with_top(tmp_path / "cfg", top, {"cfg": cfg}))
    assert code == 2
    assert "image config: rootfs must be an object, not a string" in out
    assert "attribute" not in out


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"Config": 5, "Layers": []}, "manifest.json[0].Config must be a string, not a number"),
        (
            {"Config": "c.json", "Layers": "l.tar"},
            "manifest.json[0].Layers must be a list, not a string",
        ),
        (
            {"Config": "c.json", "Layers": [1]},
            "manifest.json[0].Layers[0] must be a string, not a number",
        ),
        (
            {"Config": "c.json", "Layers": [], "RepoTags": "a:1"},
            "manifest.json[0].RepoTags must be a list",
        ),
        ("image", "manifest.json[0] must be an object, not a string"),
    ],
)
def test_manifest_json_shapes(tmp_path: Path, entry: Any, message: str) -> None:
    path = tmp_path / "a.tar"
    path.write_bytes(
        tar_bytes(
            {
                "manifest.json": json.dumps([entry]).encode(),
                "c.json": b"{}",
                "d": TarFile(kind="dir"),
            }
        )
    )
    code, out = run("inspect", f"docker-archive:{path}")
    assert code == 2 and message in out, out


def test_manifest_json_not_a_list(tmp_path: Path) -> None:
    path = tmp_path / "a.tar"
    path.write_bytes(tar_bytes({"manifest.json": b'{"Config": "c"}'}))
    with pytest.raises(ImageFormatError, match="manifest.json must be a list, not an object"):
        open_source(f"docker-archive:{path}")


def test_existing_index_json_of_the_wrong_shape_is_reported(tmp_path: Path) -> None:
    src = write_oci_layout(random_image(seed=2), tmp_path / "src")
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.json").write_text('{"schemaVersion": 2, "manifests": ["x"]}')
    code, text = run("copy", src, f"oci:{out}:t")
    assert code == 2 and "index.json: manifests[0] must be an object, not a string" in text
