"""``imagewise deprecate`` against the real registry (no referrers API in distribution 2.8: the
``sha256-<hex>`` fallback tag), and ``check`` reporting a deprecated image or base."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from cli_runner import CliRunner
from fixtures_registry import RegistryServer, build_image, push_image, unique_repo

from imagewise.check import CheckOptions, run_check
from imagewise.cli.main import cli
from imagewise.oci import media
from imagewise.oci.digest import Digest
from imagewise.policy.model import parse_policy
from imagewise.registry.client import RegistryClient
from imagewise.registry.referrers import ARTIFACT_TYPE, fallback_tag, lookup

#: no gates: only findings at error level are violations
ONLY_DEPRECATION = parse_policy("extends: none\n")


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def _client(registry: RegistryServer) -> RegistryClient:
    return RegistryClient(registry.host, registry.url, insecure=True)


def test_deprecate_writes_a_record_the_lookup_finds(registry: RegistryServer) -> None:
    repo = unique_repo("deprecate")
    img = push_image(registry, repo, "3.18", build_image((6,), seed=5701))
    code, out = _run(
        "deprecate",
        f"{registry.host}/{repo}:3.18",
        "--reason",
        "EOL: no more fixes",
        "--sunset",
        "2027-06-30",
        "--replacement",
        f"{registry.host}/{repo}:3.20",
        "--format",
        "json",
    )
    assert code == 0, out
    doc = json.loads(out)
    assert doc["schema"] == "imagewise/deprecation/v1"
    assert doc["digest"] == img.manifest_digest and doc["sunset"] == "2027-06-30"
    tag = fallback_tag(img.manifest_digest)
    assert doc["listed_as"] == tag  # distribution 2.8 has no referrers API
    client = _client(registry)
    index = json.loads(client.get_manifest(repo, tag).raw)
    assert index["mediaType"] == media.OCI_INDEX
    assert [m["artifactType"] for m in index["manifests"]] == [ARTIFACT_TYPE]
    record = json.loads(client.get_manifest(repo, doc["record"]).raw)
    assert record["subject"]["digest"] == img.manifest_digest
    dep = lookup(client, repo, Digest.parse(img.manifest_digest))
    assert dep is not None and dep.reason == "EOL: no more fixes"
    assert dep.sunset == date(2027, 6, 30) and dep.replacement.endswith(":3.20")
    # a second record is added to the same fallback index; the newest wins
    code, out = _run("deprecate", f"{registry.host}/{repo}:3.18", "--reason", "really EOL")
    assert code == 0, out
    assert len(json.loads(client.get_manifest(repo, tag).raw)["manifests"]) == 2
    dep = lookup(client, repo, Digest.parse(img.manifest_digest))
    assert dep is not None and dep.reason == "really EOL"
    # bookkeeping tags are not release tags
    code, out = _run("tags", f"{registry.host}/{repo}")
    assert out == "3.18\n", out


def test_check_reports_a_deprecated_image_and_fails_past_its_sunset(
    registry: RegistryServer,
) -> None:
    repo = unique_repo("deprecate")
    push_image(registry, repo, "old", build_image((6,), seed=5702))
    image = f"docker://{registry.host}/{repo}:old"
    _run("deprecate", image, "--reason", "superseded", "--sunset", "2027-01-01")
    before = run_check(
        CheckOptions(image, policy=ONLY_DEPRECATION, today=date(2026, 12, 31), use_cache=False)
    )
    found = [f for f in before.audit if f.rule == "IW-IMG-005"]
    assert len(found) == 1 and "superseded; sunset 2027-01-01" in found[0].message, found
    assert found[0].severity.name == "WARNING"
    assert "IW-IMG-005" not in {v.rule for v in before.verdict.violations}
    after = run_check(
        CheckOptions(image, policy=ONLY_DEPRECATION, today=date(2027, 1, 1), use_cache=False)
    )
    found = [f for f in after.audit if f.rule == "IW-IMG-005"]
    assert found and found[0].severity.name == "ERROR" and "past its sunset" in found[0].message
    assert "IW-IMG-005" in {v.rule for v in after.verdict.violations}
    assert not after.verdict.passed


def test_check_reports_a_deprecated_base_on_the_same_registry(registry: RegistryServer) -> None:
    repo_base, repo_app = unique_repo("deprecate-base"), unique_repo("deprecate-app")
    push_image(registry, repo_base, "3.18", build_image((6,), seed=5703))
    _run(
        "deprecate",
        f"{registry.host}/{repo_base}:3.18",
        "--reason",
        "EOL",
        "--replacement",
        "3.20",
    )
    app = push_image(registry, repo_app, "tmp", build_image((6, 2), seed=5704))
    manifest = json.loads(app.manifest_raw)
    manifest["annotations"] = {
        "org.opencontainers.image.base.name": f"{registry.host}/{repo_base}:3.18"
    }
    client = _client(registry)
    client.put_manifest(repo_app, "1.0", json.dumps(manifest).encode(), manifest["mediaType"])
    result = run_check(
        CheckOptions(
            f"docker://{registry.host}/{repo_app}:1.0", policy=ONLY_DEPRECATION, use_cache=False
        )
    )
    found = [f for f in result.audit if f.rule == "IW-IMG-005"]
    assert len(found) == 1 and found[0].message.startswith("base image "), found
    assert "EOL; use 3.20" in found[0].message and found[0].fix == "move to 3.20"


def test_deprecate_bad_input_is_one_line(registry: RegistryServer) -> None:
    repo = unique_repo("deprecate")
    push_image(registry, repo, "v1", build_image((5,), seed=5705))
    for args, message in (
        (["deprecate", f"{registry.host}/{repo}:v1"], "needs --reason"),
        (
            ["deprecate", f"{registry.host}/{repo}:v1", "--reason", "x", "--sunset", "soon"],
            "bad --sunset",
        ),
        (["deprecate", "oci:/x:1", "--reason", "x"], "needs a registry image"),
        (["deprecate", f"{registry.host}/{repo}:nope", "--reason", "x"], "not found"),
    ):
        code, out = _run(*args)
        assert code == 2 and message in out and out.count("\n") == 1, (args, out)


def test_lint_check_bases_reports_a_deprecated_from(
    registry: RegistryServer, tmp_path: Path
) -> None:
    repo = unique_repo("deprecate-lint")
    push_image(registry, repo, "3.18", build_image((5,), seed=5706))
    _run("deprecate", f"{registry.host}/{repo}:3.18", "--reason", "EOL", "--sunset", "2020-01-01")
    df = tmp_path / "Dockerfile"
    df.write_text(
        f"FROM {registry.host}/{repo}:3.18 AS base\n"
        "FROM base\n"
        "FROM 127.0.0.1:1/unreachable/x:1.0\n"
        "USER nobody\n"
    )
    code, out = _run("lint", str(df), "--format", "json", "--no-fail")
    assert code == 0 and "IW113" not in out, out  # plain lint stays offline
    result = CliRunner().invoke(
        cli, ["lint", str(df), "--check-bases", "--format", "json", "--no-fail"]
    )
    doc = json.loads(result.stdout)
    hits = [f for f in doc["findings"] if f["rule"] == "IW113"]
    assert len(hits) == 1 and hits[0]["line"] == 1, hits
    assert "EOL; sunset 2020-01-01 (past its sunset)" in hits[0]["message"]
    assert "127.0.0.1:1/unreachable/x:1.0 not checked for deprecation" in result.stderr
