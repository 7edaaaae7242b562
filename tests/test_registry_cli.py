"""``imagewise tags`` against the real registry."""

from __future__ import annotations

import json

from cli_runner import CliRunner
from fixtures_registry import RegistryServer, build_image, push_image, unique_repo

from imagewise.cli.main import cli
from imagewise.oci.model import parse_manifest
from imagewise.reference import ImageReference
from imagewise.sources.registry import RegistrySink


def _tagged(registry: RegistryServer, tags: list[str]) -> str:
    repo = unique_repo("cli")
    built = push_image(registry, repo, tags[0], build_image((10,), seed=21))
    for tag in tags[1:]:
        RegistrySink(ImageReference.parse(f"{registry.host}/{repo}:{tag}")).put_manifest(
            parse_manifest(built.manifest_raw), top=True
        )
    return repo


def test_tags_table(registry: RegistryServer) -> None:
    repo = _tagged(registry, ["1.0", "1.1", "latest"])
    result = CliRunner().invoke(cli, ["tags", f"{registry.host}/{repo}"])
    assert result.exit_code == 0, result.output
    assert sorted(result.output.split()) == ["1.0", "1.1", "latest"]


def test_tags_json_envelope(registry: RegistryServer) -> None:
    repo = _tagged(registry, ["a", "b"])
    result = CliRunner().invoke(
        cli, ["tags", "--format", "json", f"docker://{registry.host}/{repo}"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["schema"] == "imagewise/tags/v1"
    assert doc["repository"] == f"{registry.host}/{repo}"
    assert sorted(doc["tags"]) == ["a", "b"]


def test_tags_unknown_repository_is_one_line_error(registry: RegistryServer) -> None:
    result = CliRunner().invoke(cli, ["tags", f"{registry.host}/{unique_repo('nope')}"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "NAME_UNKNOWN" in lines[0] and "Traceback" not in result.output


def test_tags_malformed_reference(registry: RegistryServer) -> None:
    result = CliRunner().invoke(cli, ["tags", "Not A Repo!!"])
    assert result.exit_code == 2
    assert result.output.startswith("imagewise: error:")
