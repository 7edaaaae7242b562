"""``archive/`` is the bottom of the layer stack: it imports nothing of imagewise above it, and
``sources/`` does not import ``layers/`` (layers names sources' types for the type checker only)."""

from __future__ import annotations

import ast
from pathlib import Path

import imagewise

SRC = Path(imagewise.__file__).parent
ALLOWED_BELOW = (
    "imagewise.archive",
    "imagewise.errors",
    "imagewise.fileio",
    "imagewise.record",
    "imagewise.oci.digest",
)


def _imports(path: Path, *, runtime_only: bool) -> list[str]:
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skip.update(id(n) for n in ast.walk(node))
    names = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
    return [n for n in names if n == "imagewise" or n.startswith("imagewise.")]


def test_archive_imports_only_the_bottom() -> None:
    files = sorted((SRC / "archive").glob("*.py"))
    assert {f.stem for f in files} >= {
        "entry",
        "walk",
        "mapped",
        "decompress",
        "prefetch",
        "region",
    }
    bad = [
        (f.name, name)
        for f in files
        for name in _imports(f, runtime_only=False)
        if not name.startswith(ALLOWED_BELOW)
    ]
    assert bad == []


def test_sources_and_registry_do_not_import_layers() -> None:
    bad = [
        (str(f.relative_to(SRC)), name)
        for pkg in ("sources", "registry")
        for f in sorted((SRC / pkg).glob("*.py"))
        for name in _imports(f, runtime_only=False)
        if name.startswith(("imagewise.layers", "imagewise.copy", "imagewise.analysis"))
    ]
    assert bad == []
    registry_up = [
        (f.name, name)
        for f in sorted((SRC / "registry").glob("*.py"))
        for name in _imports(f, runtime_only=False)
        if name.startswith("imagewise.sources")
    ]
    assert registry_up == []


def test_layers_use_sources_only_for_types() -> None:
    bad = [
        (f.name, name)
        for f in sorted((SRC / "layers").glob("*.py"))
        for name in _imports(f, runtime_only=True)
        if name.startswith("imagewise.sources")
    ]
    assert bad == []
