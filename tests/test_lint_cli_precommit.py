"""The pre-commit hook manifest: valid for pre-commit, matches Dockerfiles, runs our CLI."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from identify.identify import tags_from_filename
from pre_commit.clientlib import load_manifest

ROOT = Path(__file__).resolve().parents[1]


def hooks() -> dict[str, dict]:
    return {h["id"]: h for h in load_manifest(str(ROOT / ".pre-commit-hooks.yaml"))}


def test_manifest_is_valid_for_pre_commit() -> None:
    h = hooks()
    assert set(h) == {"imagewise-lint", "imagewise-lint-fix", "imagewise-lint-files"}
    assert h["imagewise-lint"]["entry"] == "imagewise lint"
    assert h["imagewise-lint"]["types"] == ["dockerfile"]
    assert h["imagewise-lint"]["language"] == "python"


def test_file_selection() -> None:
    for name in ("Dockerfile", "Dockerfile.prod", "Containerfile"):
        assert "dockerfile" in tags_from_filename(name), name
    pattern = re.compile(hooks()["imagewise-lint-files"]["files"])
    for path in ("Dockerfile", "a/b/Dockerfile.dev", "Containerfile", "svc/api.dockerfile"):
        assert pattern.search(path), path
    for path in ("README.md", "docker-compose.yml", "src/Dockerfile_helper.py"):
        assert not pattern.search(path), path


def test_entry_runs_on_files_like_pre_commit(tmp_path: Path) -> None:
    """pre-commit appends the staged file names to the entry; bad files fail the hook."""
    good = tmp_path / "Dockerfile"
    good.write_text('FROM alpine:3.20\nUSER 1000\nCMD ["true"]\n')
    bad = tmp_path / "Dockerfile.dev"
    bad.write_text("FROM alpine:3.20\nADD a.txt /a.txt\n")
    entry = shlex.split(hooks()["imagewise-lint"]["entry"])
    cmd = [sys.executable, "-m", "imagewise", *entry[1:]]
    ok = subprocess.run([*cmd, good.name], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    fail = subprocess.run(
        [*cmd, good.name, bad.name], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert fail.returncode == 1 and "Dockerfile.dev:2:1: error DL3020" in fail.stdout
    fix_entry = shlex.split(hooks()["imagewise-lint-fix"]["entry"])
    subprocess.run(
        [sys.executable, "-m", "imagewise", *fix_entry[1:], bad.name],
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
    )
    assert bad.read_text() == "FROM alpine:3.20\nCOPY a.txt /a.txt\n"
