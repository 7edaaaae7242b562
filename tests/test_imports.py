"""Dependencies run one way: the import contracts in pyproject.toml (import-linter) hold, and a
planted upward import breaks them (so the check can fail)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import imagewise

ROOT = Path(__file__).resolve().parents[1]
SRC = Path(imagewise.__file__).parent
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def _lint_imports(pythonpath: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def test_the_contracts_hold() -> None:
    run = _lint_imports(SRC.parent, ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 kept, 0 broken" in run.stdout


def test_an_upward_import_breaks_them(tmp_path: Path) -> None:
    tree = tmp_path / "src"
    shutil.copytree(SRC, tree / "imagewise", ignore=shutil.ignore_patterns("__pycache__"))
    region = tree / "imagewise" / "archive" / "region.py"
    region.write_text(region.read_text() + "\nimport imagewise.layers.passes  # planted\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    run = _lint_imports(tree, tmp_path)
    assert run.returncode != 0
    assert "archive is the bottom of the layer stack BROKEN" in run.stdout
    assert "layers run one way BROKEN" in run.stdout


def test_the_architecture_document_lists_the_contract_layers() -> None:
    import re
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (layers,) = [
        c["layers"] for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"
    ]
    doc = (ROOT / "docs" / "architecture.md").read_text()
    block = doc.split("<!-- layers -->")[1].split("<!-- /layers -->")[0]
    listed = re.findall(r"^\d+\. `([^`]+)`$", block, re.M)
    assert listed == layers
