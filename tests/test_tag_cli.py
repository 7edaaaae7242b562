"""``imagewise tag`` against the real registry: conventional tags by manifest PUT only."""

from __future__ import annotations

import json
from pathlib import Path

from cli_runner import CliRunner
from fixtures_registry import RegistryServer, build_image, push_image, unique_repo

from imagewise.cli.main import cli
from imagewise.registry.client import RegistryClient


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def _client(registry: RegistryServer) -> RegistryClient:
    return RegistryClient(registry.host, registry.url, insecure=True)


def test_tag_applies_the_convention_and_moves_only_forward(
    registry: RegistryServer, tmp_path: Path
) -> None:
    repo = unique_repo("tagcli")
    old = push_image(registry, repo, "b1", build_image((10,), seed=5201))
    new = push_image(registry, repo, "b2", build_image((11,), seed=5202))
    git = tmp_path / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "refs" / "heads" / "main").write_text("0123456789abcdef0123456789abcdef01234567\n")
    image = f"{registry.host}/{repo}:b2"
    code, out = _run(
        "tag",
        image,
        "--semver",
        "1.4.2",
        "--env",
        "staging",
        "--git-sha",
        "--git-dir",
        str(git),
        "--format",
        "json",
    )
    assert code == 0, out
    doc = json.loads(out)
    assert doc["schema"] == "imagewise/tag/v1"
    assert [t["tag"] for t in doc["tags"]] == ["1.4.2", "1.4", "1", "staging", "sha-0123456"]
    client = _client(registry)
    for tag in ("1.4.2", "1.4", "1", "staging", "sha-0123456"):
        assert str(client.head_manifest(repo, tag).digest) == new.manifest_digest
    # an older release afterwards takes its own tag but moves neither 1.4 nor 1 back
    code, out = _run("tag", f"{registry.host}/{repo}:b1", "--semver", "1.4.1")
    assert code == 0, out
    assert "1.4.1" in out and "new ->" in out
    assert str(client.head_manifest(repo, "1.4.1").digest) == old.manifest_digest
    assert str(client.head_manifest(repo, "1.4").digest) == new.manifest_digest
    # again: nothing moves
    code, out = _run("tag", image, "--semver", "1.4.2")
    assert code == 0 and out.count("unchanged") == 3, out


def test_dry_run_writes_nothing(registry: RegistryServer) -> None:
    repo = unique_repo("tagcli")
    push_image(registry, repo, "b1", build_image((10,), seed=5203))
    code, out = _run(
        "tag", f"{registry.host}/{repo}:b1", "--env", "prod", "--timestamp", "--dry-run"
    )
    assert code == 0 and "dry run" in out, out
    assert _client(registry).list_tags(repo) == ["b1"]


def test_bad_input_is_one_line_and_exit_2(registry: RegistryServer, tmp_path: Path) -> None:
    repo = unique_repo("tagcli")
    push_image(registry, repo, "b1", build_image((10,), seed=5204))
    image = f"{registry.host}/{repo}:b1"
    for args, words in (
        ((image, "--semver", "1.4"), "not a semantic version"),
        ((image, "--tag", "bad:tag"), "not a valid tag"),
        ((image,), "nothing to tag"),
        ((f"oci:{tmp_path}/x", "--env", "dev"), "needs a registry image"),
        (("localhost:1/app:1", "--env", "dev"), "cannot connect"),
    ):
        code, out = _run("tag", *args)
        lines = out.strip().splitlines()
        assert code == 2 and len(lines) == 1 and words in lines[0], (args, out)
        assert lines[0].startswith("imagewise: error: ")


def test_an_immutable_release_tag_is_never_moved(registry: RegistryServer, tmp_path: Path) -> None:
    repo = unique_repo("tagcli")
    first = push_image(registry, repo, "b1", build_image((10,), seed=5203))
    push_image(registry, repo, "b2", build_image((11,), seed=5204))
    code, out = _run("tag", f"{registry.host}/{repo}:b1", "--semver", "2.0.0")
    assert code == 0, out
    # 2.0.0 again on another digest: refused as a whole, nothing written (not even the env tag)
    code, out = _run("tag", f"{registry.host}/{repo}:b2", "--semver", "2.0.0", "--env", "dev")
    assert code == 1 and "2.0.0 is immutable" in out and out.count("\n") == 1, out
    client = _client(registry)
    assert str(client.head_manifest(repo, "2.0.0").digest) == first.manifest_digest
    assert "dev" not in client.list_tags(repo)
    # the policy decides: no immutable patterns, and its own timestamp format
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version_management:\n  tagging:\n    immutable: []\n    timestamp_format: 'build-%Y%m%d'\n"
    )
    code, out = _run(
        "tag",
        f"{registry.host}/{repo}:b2",
        "--semver",
        "2.0.0",
        "--timestamp",
        "--policy",
        str(policy),
        "--format",
        "json",
    )
    assert code == 0, out
    tags = [t["tag"] for t in json.loads(out)["tags"]]
    assert tags[0] == "2.0.0" and tags[-1].startswith("build-20") and len(tags[-1]) == 14
    policy.write_text("version_management:\n  tagging:\n    timestamp_format: 'a b'\n")
    code, out = _run("tag", f"{registry.host}/{repo}:b2", "--timestamp", "--policy", str(policy))
    assert code == 2 and "timestamp_format" in out, out
