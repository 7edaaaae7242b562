"""``imagewise measure pull`` against the real registry."""

from __future__ import annotations

import json

from cli_runner import CliRunner
from fixtures_registry import RegistryServer, build_image, push_image, unique_repo

from imagewise.cli.main import cli


def test_measure_pull(registry: RegistryServer) -> None:
    repo = unique_repo("pull")
    img = push_image(registry, repo, "1.0", build_image((50_000, 20_000), seed=9801))
    result = CliRunner().invoke(
        cli, ["measure", "pull", f"{registry.host}/{repo}:1.0", "--runs", "2", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["schema"] == "imagewise/pull/v1" and len(doc["runs"]) == 2
    assert [x["digest"] for x in doc["layers"]] == [str(d.digest) for d in img.layers]
    assert doc["bytes"] == img.config.size + sum(d.size for d in img.layers)
    assert all(x["uncompressed_bytes"] > x["compressed_bytes"] * 0.9 for x in doc["layers"])
    bad = CliRunner().invoke(cli, ["measure", "pull", "oci:/x:1"])
    assert bad.exit_code == 2 and "needs a registry image" in bad.output
