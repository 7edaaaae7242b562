"""``imagewise build`` with the real engine (buildah, chroot isolation, vfs storage): timings
and cache hits from its output, pushes, the lint and check gates, and failure diagnoses."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from cli_runner import CliRunner

from imagewise.cli.main import cli


@pytest.fixture(autouse=True)
def _buildah() -> None:
    if shutil.which("buildah") is None or os.geteuid() != 0:
        pytest.fail(
            "these tests build with buildah as root (scripts/install-deps installs it; CI runs as root)"
        )


def _run(*args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = CliRunner().invoke(cli, [*args, "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def _context(tmp_path: Path, dockerfile: str, files: dict[str, bytes] | None = None) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, data in (files or {}).items():
        (ctx / name).parent.mkdir(parents=True, exist_ok=True)
        (ctx / name).write_bytes(data)
    return ctx


def test_build_push_cache_and_check(tmp_path: Path) -> None:
    ctx = _context(
        tmp_path,
        'FROM scratch\nLABEL org.opencontainers.image.version="1.0"\nCOPY app.txt /app.txt\nCMD ["/app"]\n',
        {"app.txt": b"hello\n", "big.bin": b"0" * 300_000, ".dockerignore": b"big.bin\n"},
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text("extends: none\n")
    out = f"oci:{tmp_path / 'out'}:1.0"
    tag = f"localhost/iw-test-{os.getpid()}:1"
    code, doc = _run(
        "build", str(ctx), "-t", tag, "--push", out, "--check", "--policy", str(policy)
    )
    assert code == 0 and doc["ok"], doc
    assert doc["schema"] == "imagewise/build/v1" and [s["step"] for s in doc["steps"]] == [
        1,
        2,
        3,
        4,
    ]
    assert doc["steps"][2]["instruction"] == "COPY app.txt /app.txt"
    assert doc["pushed"] == [out] and doc["check"]["status"] == "PASS"
    assert doc["dockerignore_excluded_bytes"] == 300_000 and doc["context_bytes"] < 1000
    code, again = _run("build", str(ctx), "-t", tag)
    assert code == 0 and again["cache_hits"] >= 2, (
        again
    )  # the layer cache, seen in the engine's output


@pytest.mark.parametrize(
    ("dockerfile", "cause", "where"),
    [
        ("FROM scratch\nCOPY missing.txt /x\n", "copy-source-missing", "COPY missing.txt"),
        ("FROM localhost:1/no/such:tag\n", "network", ""),
    ],
)
def test_failures_are_diagnosed(tmp_path: Path, dockerfile: str, cause: str, where: str) -> None:
    ctx = _context(tmp_path, dockerfile)
    code, doc = _run("build", str(ctx), "--lint-fail-on", "none")
    assert code == 1 and not doc["ok"], doc
    assert doc["diagnosis"]["cause"] == cause, doc["diagnosis"]
    assert where in (doc["failed_step"] or ""), doc
    assert doc["log_tail"] and doc["diagnosis"]["fix"]


def test_the_lint_gate_stops_before_the_engine(tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM scratch\nWORKDIR relative/dir\n")
    code, doc = _run("build", str(ctx))
    assert code == 1 and doc["steps"] == [] and doc["diagnosis"]["cause"] == "lint-gate", doc
    assert "DL3000" in doc["diagnosis"]["evidence"]
