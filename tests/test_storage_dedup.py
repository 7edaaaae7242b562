"""``imagewise dedup`` on the real registry: a layer stored in two compressions, and two bases
with the same files under different digests (one base pulled on two dates)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from cli_runner import CliRunner
from fixtures_images import build_image, tar_bytes, write_oci_layout
from fixtures_registry import RegistryServer, unique_repo

from imagewise.cli.main import cli
from imagewise.copy import copy


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout if result.exit_code == 0 else result.output


def _base(mtime: int, extra: dict[str, bytes] | None = None) -> bytes:
    rng = random.Random(9001)
    files = {f"usr/lib/lib{i}.so": rng.randbytes(4000) for i in range(40)}
    return tar_bytes({**files, **(extra or {})}, mtime=mtime)


def _push(
    tmp: Path,
    registry: RegistryServer,
    repo: str,
    tag: str,
    layers: list[bytes],
    compression: str = "gzip",
) -> None:
    img = build_image(layers, compression=compression)
    src = write_oci_layout(img, tmp / f"{repo.replace('/', '_')}-{tag}", tag)
    copy(src, f"docker://{registry.host}/{repo}:{tag}")


def test_dedup_finds_compression_duplicates_and_near_identical_bases(
    registry: RegistryServer, tmp_path: Path
) -> None:
    app, web, old = unique_repo("dd-app"), unique_repo("dd-web"), unique_repo("dd-old")
    top = tar_bytes({"app/main.py": b"print('hi')\n" * 50})
    _push(tmp_path, registry, app, "1.0", [_base(1_700_000_000), top])
    _push(tmp_path, registry, web, "1.0", [_base(1_700_000_000), top], compression="zstd")
    # the same base files, pulled on another date: new mtimes, a changed file, another digest
    _push(tmp_path, registry, old, "1.0", [_base(1_710_000_000, {"etc/os-release": b"v2\n"}), top])
    refs = [f"{registry.host}/{r}" for r in (app, web, old)]
    code, out = _run("dedup", *refs, "--format", "json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["schema"] == "imagewise/dedup/v1"
    dups = doc["compression_duplicates"]
    # the base layer and the top layer are each stored gzip (app) and zstd (web)
    assert len(dups) == 2 and all(len(d["blobs"]) == 2 for d in dups)
    assert doc["compression_waste_bytes"] == sum(max(b["bytes"] for b in d["blobs"]) for d in dups)
    bases = doc["near_identical_bases"]
    assert len(bases) == 1
    group = bases[0]
    near = {img for o in group["near_identical"] for img in o["images"]}
    everyone = set(group["base"]["images"]) | near
    assert everyone == {f"{app}:1.0", f"{web}:1.0", f"{old}:1.0"}
    assert all(o["similarity"] >= 0.8 for o in group["near_identical"])
    assert any(o["similarity"] < 1 for o in group["near_identical"])  # the re-pulled base
    assert group["saving_bytes"] == sum(o["bytes"] for o in group["near_identical"])
    assert "pin that base by digest" in group["suggestion"]
    code, out = _run("dedup", *refs)
    assert code == 0 and "rebasing would save" in out, out
    # a high threshold: the changed base is no longer "the same"
    code, out = _run("dedup", *refs, "--threshold", "1", "--format", "json")
    doc = json.loads(out)
    assert all(
        o["similarity"] == 1 for b in doc["near_identical_bases"] for o in b["near_identical"]
    )


def test_dedup_bad_threshold(registry: RegistryServer) -> None:
    code, out = _run("dedup", f"{registry.host}/x", "--threshold", "0")
    assert code == 2 and "--threshold" in out, out
