"""``imagewise outdated`` against a local registry seeded with a realistic tag set: python-style
flavours, semver, pre-releases, date tags; ``--fix`` within the policy, idempotent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import CliRunner
from fixtures_registry import RegistryServer, build_image, push_image, unique_repo

from imagewise.cli.main import cli
from imagewise.oci.model import parse_manifest
from imagewise.registry.client import RegistryClient
from imagewise.tagversion import newer_tags, parse_constraint, parse_tag, satisfies

OLD_TAGS = [
    "3.11-slim-bookworm",
    "3.11.9-slim-bookworm",
    "3.12-slim-bookworm",
    "3.11",
    "3.12",
    "3.12-alpine",
    "latest",
    "bookworm",
    "20240101",
    "20240301",
    "v1.2.3",
    "v1.2.10",
    "v1.3.0-rc.1",
]
NEW_TAGS = [
    "3.13-slim-bookworm",
    "3.13-alpine",
    "3.14.0a1-slim-bookworm",
    "3.14-rc-slim-bookworm",
    "4.0-slim-bookworm",
]


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def seeded(registry: RegistryServer) -> dict[str, str]:
    """A repository with the tag set; returns the digests: old (most tags), new, other."""
    repo = unique_repo("python")
    old = push_image(registry, repo, OLD_TAGS[0], build_image((5,), seed=5801))
    new = push_image(registry, repo, NEW_TAGS[0], build_image((5,), seed=5802))
    other = push_image(registry, repo, "unrelated", build_image((5,), seed=5803))
    client = RegistryClient(registry.host, registry.url, insecure=True)
    for tags, img in ((OLD_TAGS[1:], old), (NEW_TAGS[1:], new)):
        m = parse_manifest(img.manifest_raw)
        for tag in tags:
            client.put_manifest(repo, tag, img.manifest_raw, m.media_type)
    return {
        "repo": f"{registry.host}/{repo}",
        "old": old.manifest_digest,
        "new": new.manifest_digest,
        "other": other.manifest_digest,
    }


def test_tag_versions_and_constraints() -> None:
    every = OLD_TAGS + NEW_TAGS
    assert newer_tags("3.11-slim-bookworm", every) == {
        "patch": [],
        "minor": ["3.13-slim-bookworm", "3.12-slim-bookworm"],
        "major": ["4.0-slim-bookworm"],
    }
    assert newer_tags("v1.2.3", every) == {"patch": ["v1.2.10"], "minor": [], "major": []}
    assert newer_tags("20240101", every)["major"] == ["20240301"]
    assert newer_tags("latest", every) == {"patch": [], "minor": [], "major": []}
    assert parse_tag("3.14.0a1-slim-bookworm").pre  # type: ignore[union-attr]
    assert satisfies((3, 11, 7), parse_constraint("~3.11"))
    assert not satisfies((3, 12), parse_constraint("~3.11"))
    assert satisfies((3, 12), parse_constraint(">=3.11 <3.13"))


def test_outdated_dockerfile_then_fix_is_idempotent(seeded: dict[str, str], tmp_path: Path) -> None:
    repo = seeded["repo"]
    df = tmp_path / "Dockerfile"
    text = (
        "ARG PY=3.11\n"
        f"FROM {repo}:${{PY}}-slim-bookworm AS build\n"
        "RUN true\n"
        f"FROM {repo}:3.11-slim-bookworm@{seeded['other']}\n"
        "COPY --from=build /x /x\n"
        f"FROM {repo}:v1.2.3 AS tools\n"
    )
    df.write_text(text)
    code, out = _run("outdated", str(df), "--format", "json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["schema"] == "imagewise/outdated/v1"
    first, pinned, tools = doc["images"]
    assert first["line"] == 2 and first["image"] == f"{repo}:3.11-slim-bookworm"
    assert first["newer"]["minor"] == ["3.13-slim-bookworm", "3.12-slim-bookworm"]
    assert first["fix_to"] == "3.13-slim-bookworm"  # max: minor (default) leaves 4.0 alone
    assert pinned["pin_stale"] and pinned["tag_digest"] == seeded["old"]
    assert tools["newer"]["patch"] == ["v1.2.10"]  # v1.3.0-rc.1 is a pre-release
    assert df.read_text() == text  # no --fix: nothing written
    code, out = _run("outdated", str(df), "--fix")
    assert code == 0, out
    fixed = df.read_text()
    assert f"FROM {repo}:3.13-slim-bookworm@{seeded['new']}\n" in fixed
    assert f"FROM {repo}:v1.2.10 AS tools\n" in fixed
    assert f"FROM {repo}:${{PY}}-slim-bookworm AS build\n" in fixed  # a build-arg FROM stays
    assert "FROM uses build args: not rewritten" in out
    code, out = _run("outdated", str(df), "--fix", "--format", "json")
    assert code == 0 and json.loads(out)["fixed"] == [] and df.read_text() == fixed


def test_constraints_in_the_policy_decide_the_fix(seeded: dict[str, str], tmp_path: Path) -> None:
    repo = seeded["repo"]
    short = repo.rsplit("/", 1)[-1]
    policy = tmp_path / "policy.yaml"
    policy.write_text(f'version_management:\n  updates:\n    allow:\n      {short}: "~3.11"\n')
    df = tmp_path / "Dockerfile"
    df.write_text(f"FROM {repo}:3.11@{seeded['other']}\n")
    code, out = _run("outdated", str(df), "--fix", "--policy", str(policy))
    assert code == 0, out
    # ~3.11 allows no newer two-part tag: the tag stays, the stale pin is refreshed
    assert df.read_text() == f"FROM {repo}:3.11@{seeded['old']}\n"
    policy.write_text("version_management:\n  updates:\n    max: major\n")
    df.write_text(f"FROM {repo}:3.12-slim-bookworm\n")
    code, out = _run("outdated", str(df), "--fix", "--policy", str(policy))
    assert code == 0 and df.read_text() == f"FROM {repo}:4.0-slim-bookworm\n", out


def test_build_args_resolve_from_lines(seeded: dict[str, str], tmp_path: Path) -> None:
    df = tmp_path / "Dockerfile"
    df.write_text(f"ARG PY\nFROM {seeded['repo']}:${{PY}}-alpine\n")
    code, out = _run("outdated", str(df))
    assert code == 2 and "--build-arg" in out and out.count("\n") == 1, out
    code, out = _run("outdated", str(df), "--build-arg", "PY=3.12", "--format", "json")
    assert code == 0, out
    assert json.loads(out)["images"][0]["newer"]["minor"] == ["3.13-alpine"]


def test_an_image_tag_and_a_deprecated_base(seeded: dict[str, str]) -> None:
    repo = seeded["repo"]
    code, out = _run("outdated", f"{repo}:20240101")
    assert code == 0 and "major 20240301" in out, out
    code, out = _run("deprecate", f"{repo}:3.12-alpine", "--reason", "alpine line ends")
    assert code == 0, out
    code, out = _run("outdated", f"{repo}:3.12-alpine")
    assert code == 0 and "DEPRECATED: alpine line ends" in out and "minor 3.13-alpine" in out


def test_bad_input_is_one_line_exit_2(seeded: dict[str, str], tmp_path: Path) -> None:
    df = tmp_path / "Dockerfile"
    cases = [
        (f"FROM {seeded['repo']}:bad!tag\n", "invalid"),
        ("FROM 127.0.0.1:1/x/y:3.11\n", "127.0.0.1:1"),
        (f"FROM {seeded['repo']}-none:3.11\n", "NAME_UNKNOWN"),
    ]
    for text, message in cases:
        df.write_text(text)
        code, out = _run("outdated", str(df))
        assert code == 2 and message in out and out.count("\n") == 1, (text, out)
    code, out = _run("outdated", "oci:/nowhere:1")
    assert code == 2 and "not a Dockerfile and not a registry image" in out, out
    code, out = _run("outdated", f"{seeded['repo']}:3.11", "--fix")
    assert code == 2 and "--fix rewrites a Dockerfile" in out, out
