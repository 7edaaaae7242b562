"""``imagewise tags lint`` against the real registry, and its judgement on its own."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from cli_runner import CliRunner
from fixtures_registry import RegistryServer, build_image, push_image, unique_repo

from imagewise.cli.main import cli
from imagewise.policy.model import default_policy, parse_policy
from imagewise.registry.client import RegistryClient
from imagewise.release.promote import promote
from imagewise.release.tags_lint import judge

A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def _rules(findings: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return sorted((f.rule, f.location.path[4:]) for f in findings)


def test_judge_each_rule() -> None:
    tags: dict[str, str | None] = {
        "1.4.2": A,
        "1.4": A,
        "20261204-045126": A,
        "sha-0123456": A,
        "latest": B,
        "staging": B,
        "prod": A,
        "my-feature": A,
        "gone": None,
    }
    findings = judge(tags, {"1.4.2": B}, default_policy())
    assert _rules(findings) == [
        ("IW-TAG-001", "my-feature"),
        ("IW-TAG-002", "latest"),
        ("IW-TAG-003", "1.4.2"),
        ("IW-TAG-004", "staging"),
        ("IW-TAG-005", "gone"),
    ]
    latest = next(f for f in findings if f.rule == "IW-TAG-002")
    assert "no version tag carries" in latest.message


def test_judge_follows_the_policy() -> None:
    policy = parse_policy(
        "tags: {allowed_patterns: ['^rel-']}\n"
        "version_management: {tagging: {required: [], env_tags: [live], immutable: ['^rel-']}}\n"
    )
    tags: dict[str, str | None] = {"rel-1": A, "live": B, "1.0.0": A}
    assert _rules(judge(tags, {"rel-1": A}, policy)) == [("IW-TAG-001", "1.0.0")]
    assert _rules(judge(tags, {"rel-1": B}, policy)) == [
        ("IW-TAG-001", "1.0.0"),
        ("IW-TAG-003", "rel-1"),
    ]


def test_tags_lint_on_a_real_repository(registry: RegistryServer, tmp_path: Path) -> None:
    repo = unique_repo("tagslint")
    one = push_image(registry, repo, "1.0.0", build_image((6,), seed=5601))
    two = push_image(registry, repo, "scratch", build_image((6,), seed=5602))
    push_image(registry, repo, "latest", two)
    push_image(registry, repo, "dev", two)
    push_image(registry, repo, "doomed", build_image((6,), seed=5603))
    promote(f"{registry.host}/{repo}:1.0.0", "qa", policy=default_policy(), by="t")
    state = tmp_path / "seen.json"
    image = f"{registry.host}/{repo}"
    code, out = _run("tags", "lint", image, "--state", str(state), "--format", "json")
    assert code == 0, out  # warnings only
    doc = json.loads(out)
    assert doc["schema"] == "imagewise/tag-lint/v1"
    assert "qa" in doc["tags"] and not any(t.startswith("imagewise-history") for t in doc["tags"])
    got = sorted((f["rule"], f["tag"]) for f in doc["findings"])
    assert got == [
        ("IW-TAG-001", "tag:doomed"),
        ("IW-TAG-001", "tag:scratch"),
        ("IW-TAG-002", "tag:latest"),
        ("IW-TAG-004", "tag:dev"),
    ]
    assert json.loads(state.read_text())["first_seen"] == {"1.0.0": one.manifest_digest}
    # a re-pushed release and a tag whose manifest is gone are errors: exit 1
    push_image(registry, repo, "1.0.0", two)
    client = RegistryClient(registry.host, registry.url, insecure=True)
    doomed = str(client.head_manifest(repo, "doomed").digest)
    revisions = registry.storage_dir / "docker/registry/v2/repositories" / repo / "_manifests"
    shutil.rmtree(revisions / "revisions" / "sha256" / doomed.split(":")[1])
    code, out = _run("tags", "lint", image, "--state", str(state))
    assert code == 1, out
    assert "IW-TAG-003" in out and "IW-TAG-005" in out and "doomed" in out
    assert out.rstrip().endswith("2 error(s)"), out
    # the first-seen digest stays the first one
    assert json.loads(state.read_text())["first_seen"] == {"1.0.0": one.manifest_digest}


def test_tags_list_is_still_the_default(registry: RegistryServer) -> None:
    repo = unique_repo("tagslint")
    push_image(registry, repo, "1.0.0", build_image((5,), seed=5604))
    code, out = _run("tags", f"{registry.host}/{repo}")
    assert code == 0 and out == "1.0.0\n", out
    code, out = _run("tags", "list", f"{registry.host}/{repo}")
    assert code == 0 and out == "1.0.0\n", out


def test_a_broken_state_file_is_one_line(registry: RegistryServer, tmp_path: Path) -> None:
    repo = unique_repo("tagslint")
    push_image(registry, repo, "1.0.0", build_image((5,), seed=5605))
    state = tmp_path / "seen.json"
    state.write_text("[1, 2]")
    code, out = _run("tags", "lint", f"{registry.host}/{repo}", "--state", str(state))
    assert code == 2 and "not an imagewise tag state file" in out and out.count("\n") == 1, out
