"""The bundled sample image: deterministic, matching its Dockerfile, carrying its planted flaws."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from cli_runner import CliRunner

from imagewise.cli.main import cli
from imagewise.sample import build_sample, default_source
from imagewise.sources import open_source


def layer_members(layer) -> dict[str, tarfile.TarInfo]:  # type: ignore[no-untyped-def]
    with layer.open() as f, tarfile.open(fileobj=f, mode="r|") as tf:
        return {m.name: m for m in tf}


def test_sample_is_deterministic(tmp_path: Path) -> None:
    a = build_sample(tmp_path / "a")
    b = build_sample(tmp_path / "b", tag="other")
    assert a.digest == b.digest
    assert a.reference == f"oci:{tmp_path / 'a'}:latest"
    with open_source(a.reference) as src:
        img = src.image()
    # the uncompressed layers are fully pinned by the files in examples/sample
    with open_source(b.reference) as src:
        assert src.image().config.diff_ids == img.config.diff_ids
    assert a.size < 64 * 1024


def test_sample_history_matches_dockerfile(tmp_path: Path) -> None:
    res = build_sample(tmp_path / "s")
    with open_source(res.reference) as src:
        img = src.image()
    dockerfile = (default_source() / "Dockerfile").read_text().splitlines()
    instructions = [line for line in dockerfile if line and not line.startswith(("#", "FROM"))]
    own = [h.created_by for h in img.config.history][2:]  # the first two come from the base image
    assert len(own) == len(instructions)
    for line, created_by in zip(instructions, own):
        keyword, _, rest = line.partition(" ")
        assert created_by.startswith(keyword)
        if keyword in ("RUN", "COPY"):
            assert rest.split(" ", 1)[0].lstrip("-").split("=")[0] in created_by
    assert len(img.layers) == sum(1 for h in img.config.history if not h.empty_layer) == 7


def test_sample_plants_what_check_reports(tmp_path: Path) -> None:
    res = build_sample(tmp_path / "s")
    with open_source(res.reference) as src:
        img = src.image()
        layers = [layer_members(x) for x in img.layers]
    cfg = img.config
    assert cfg.user == ""  # root
    assert "DB_PASSWORD=sample-password-123" in cfg.env
    assert cfg.exposed_ports == ("8080/tcp",)
    all_members = {name: m for lay in layers for name, m in lay.items()}
    assert all_members["usr/local/bin/helper"].mode & 0o4000
    assert "root/.ssh/id_rsa" in layers[3] and "root/.ssh/.wh.id_rsa" in layers[4]
    assert any(n.startswith("var/lib/apt/lists/") for n in layers[1])
    assert "usr/local/lib/python3.11/site-packages/PyYAML-5.3.1.dist-info/METADATA" in layers[4]
    assert "app/settings.json" in layers[2] and "app/settings.json" in layers[6]
    assert layers[2]["app/settings.json"].size > layers[6]["app/settings.json"].size
    assert "var/lib/dpkg/status" in layers[0] and "var/lib/dpkg/status" in layers[1]
    assert all(
        m.mtime == layers[0]["etc/passwd"].mtime and m.uid == 0 for m in all_members.values()
    )


def test_sample_cli(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["sample", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    ref, digest = r.output.split()[:2]
    assert ref == f"oci:{tmp_path / 'out'}:latest" and digest.startswith("sha256:")
    idx = json.loads((tmp_path / "out" / "index.json").read_text())
    assert idx["manifests"][0]["digest"] == digest
