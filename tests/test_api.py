"""The public library: what ``imagewise`` exports (pinned, as httpx pins its ``__all__``), that
every package facade works one way and lazily, and that entry points give the same results from
several threads at once as one at a time."""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, corpus

import imagewise

PUBLIC = [
    "AuthError",
    "Catalog",
    "CheckOptions",
    "CheckResult",
    "ConfigError",
    "CopyResult",
    "Descriptor",
    "Digest",
    "DigestMismatch",
    "DockerfileSyntaxError",
    "Finding",
    "Image",
    "ImageAnalysis",
    "ImageConfig",
    "ImageFormatError",
    "ImagewiseError",
    "Index",
    "InvalidReference",
    "Layer",
    "LayerReadError",
    "LintConfig",
    "Location",
    "Manifest",
    "NotAnImage",
    "NotFound",
    "Package",
    "Platform",
    "PlatformNotFound",
    "Policy",
    "RegistryError",
    "Reporter",
    "RuleInfo",
    "rule_catalog",
    "ScanResult",
    "Severity",
    "Sink",
    "Source",
    "UsageError",
    "VulnDBError",
    "Vulnerability",
    "__version__",
    "analyze",
    "catalog",
    "copy_image",
    "lint",
    "lint_file",
    "load_policy",
    "open_sink",
    "open_source",
    "run_check",
    "scan_image",
    "scan_packages",
]

FACADES = [
    "imagewise",
    "imagewise.analysis",
    "imagewise.audit",
    "imagewise.check",
    "imagewise.dockerfile",
    "imagewise.oci",
    "imagewise.sbom",
    "imagewise.secrets",
    "imagewise.vulns",
]


def test_all_is_pinned() -> None:
    assert sorted(imagewise.__all__) == sorted(PUBLIC)


@pytest.mark.parametrize("name", FACADES)
def test_every_exported_name_resolves_to_imagewise_code(name: str) -> None:
    module = importlib.import_module(name)
    for attr in module.__all__:
        if attr == "__version__":
            continue
        value = getattr(module, attr)
        owner = getattr(value, "__module__", None) or name  # constants have no __module__
        assert owner.startswith("imagewise"), (name, attr, owner)
        assert attr in dir(module)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        module.nope  # noqa: B018


@pytest.mark.parametrize("name", FACADES)
def test_one_facade_mechanism_and_typed_names_match_it(name: str) -> None:
    """Each facade is a table read by ``imagewise.lazy.exports``; its ``TYPE_CHECKING`` imports
    (what type checkers see) name exactly the exported names, and no exported name is also a
    submodule (importing that submodule would replace the name with the module)."""
    module = importlib.import_module(name)
    path = Path(module.__file__ or "")
    tree = ast.parse(path.read_text())
    assert any(
        isinstance(n, ast.Call)
        and getattr(n.func, "id", "") == "exports"
        and getattr(n.args[0], "id", "") == "__name__"
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and n.args
    )
    typed: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom)
                typed |= {a.asname or a.name for a in imp.names}
    exported = set(module.__all__) - {"__version__"}
    assert typed == exported, (name, typed ^ exported)
    submodules = {m.name for m in pkgutil.iter_modules(module.__path__)}
    assert not exported & submodules, exported & submodules


def test_importing_the_library_loads_nothing_else() -> None:
    code = (
        "import sys, imagewise\nprint(sorted(m for m in sys.modules if m.startswith('imagewise')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out.replace("'", '"')) == ["imagewise", "imagewise.lazy"]


# -- several threads at once give what one thread gives ------------------------------------------


def _lint_all(files: list[Path]) -> list[list[dict[str, Any]]]:
    return [[f.to_json() for f in imagewise.lint_file(p)] for p in files]


def _analysis(ref: str) -> dict[str, Any]:
    with imagewise.open_source(ref) as src:
        return imagewise.analyze(src.image()).to_json()  # type: ignore[no-any-return]


def _check(ref: str, dockerfile: Path, cache_dir: Path) -> dict[str, Any]:
    from imagewise.check.render import to_json

    result = imagewise.run_check(
        imagewise.CheckOptions(image=ref, dockerfile=dockerfile, cache_dir=cache_dir)
    )
    doc = to_json(result)
    doc.pop("timing")  # seconds and cache hits differ from run to run
    return doc  # type: ignore[no-any-return]


def test_lint_analyze_and_check_from_threads_match_serial_results(tmp_path: Path) -> None:
    files = sorted(corpus("dockerfiles").glob("*_Dockerfile"))[:40]
    image = f"docker-archive:{corpus('dive', 'test-docker-image.tar')}"
    kaniko = f"docker-archive:{corpus('dive', 'test-kaniko-image.tar')}"
    dockerfile = corpus("dive", "Dockerfile.test-image")

    serial = {
        "lint": _lint_all(files),
        "analyze": _analysis(image),
        "analyze-kaniko": _analysis(kaniko),
        "check": _check(image, dockerfile, tmp_path / "serial-cache"),
    }
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = {
            "lint": [pool.submit(_lint_all, files) for _ in range(3)],
            "analyze": [pool.submit(_analysis, image) for _ in range(3)],
            "analyze-kaniko": [pool.submit(_analysis, kaniko) for _ in range(2)],
            "check": [
                pool.submit(_check, image, dockerfile, tmp_path / f"cache-{i}") for i in range(2)
            ]
            + [pool.submit(_check, image, dockerfile, tmp_path / "shared-cache") for _ in range(2)],
        }
        for key, runs in futures.items():
            for fut in runs:
                assert fut.result(timeout=600) == serial[key], key


def test_the_program_in_docs_api_runs(capsys: pytest.CaptureFixture[str]) -> None:
    text = (ROOT / "docs" / "api.md").read_text()
    program = text.split("```python\n", 1)[1].split("```", 1)[0]
    corpus("dive", "test-docker-image.tar")
    import os

    cwd = os.getcwd()
    os.chdir(ROOT)  # the program names the corpus relative to the checkout
    try:
        exec(compile(program, "docs/api.md", "exec"), {})  # noqa: S102 - our own documentation
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    assert "efficiency 98.44%, wasted 32025 bytes" in out
    assert "14 layers" in out and "DL3008" in out and "error:" in out
