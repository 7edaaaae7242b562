"""Guards on the tree itself: no dead code (vulture, with the small allow-list in
tests/vulture_allowlist.py and the functions the library names in ``"module:function"`` strings),
no test module importing another test module (shared helpers live in helper modules such as
analysis_support.py, or in fixture plugins listed in conftest), and ``ruff check`` and
``ruff format --check`` clean on src and tests with pyproject.toml's settings."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
ALLOWLIST = TESTS / "vulture_allowlist.py"


def vulture(*args: str) -> subprocess.CompletedProcess[str]:
    """vulture with the settings of pyproject.toml's ``[tool.vulture]`` (run from the root)."""
    return subprocess.run(
        [sys.executable, "-m", "vulture", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def reported_names(output: str) -> set[str]:
    return set(re.findall(r"unused \w+ '([^']+)'", output))


#: ``"module:function"`` strings: functions the library imports by name when needed (the
#: encoders of ``imagewise.encoders``, lazy package exports)
TARGET = re.compile(r"imagewise(?:\.\w+)*:(\w+)")


def declared_targets() -> set[str]:
    names = set()
    for path in (ROOT / "src" / "imagewise").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                m = TARGET.fullmatch(node.value)
                if m:
                    names.add(m.group(1))
    return names


def test_declared_targets_include_the_encoders() -> None:
    names = declared_targets()
    assert {"analysis_table", "analysis_json", "render_cyclonedx", "as_is"} <= names
    assert "ALL" in names  # a lazy export (imagewise.sbom.catalogers:ALL)


def test_no_dead_code(tmp_path: Path) -> None:
    used = tmp_path / "declared_targets.py"
    used.write_text("".join(f"{name}\n" for name in sorted(declared_targets())))
    proc = vulture("src/imagewise", "tests", str(used))
    assert proc.stderr == ""
    assert proc.stdout == "", (
        "vulture finds unused code: delete it (or, if the standard library or pytest uses it, add "
        f"it to {ALLOWLIST.relative_to(ROOT)}):\n{proc.stdout}"
    )
    assert proc.returncode == 0


def test_vulture_reports_an_unused_function(tmp_path: Path) -> None:
    """The guard can fail: the configured run reports dead code it is given."""
    module = tmp_path / "dead.py"
    module.write_text(
        "def used() -> int:\n    return 1\n\n\ndef forgotten() -> int:\n"
        "    return used()\n\n\nprint(used())\n"
    )
    proc = vulture(str(module), str(ALLOWLIST))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert reported_names(proc.stdout) == {"forgotten"}


def test_allowlist_is_small_and_every_entry_is_needed() -> None:
    tree = ast.parse(ALLOWLIST.read_text(encoding="utf-8"))
    entries = [ast.unparse(n.value) for n in tree.body[1:] if isinstance(n, ast.Expr)]
    assert len(entries) == len(tree.body) - 1  # names and _.attributes, nothing else
    names = {entry.removeprefix("_.") for entry in entries}
    assert all(n.isidentifier() for n in names) and len(names) == len(entries) <= 30
    without = vulture("src/imagewise", "tests", "--exclude", ALLOWLIST.name)
    stale = names - reported_names(without.stdout)
    assert not stale, f"allow-list entries nothing needs any more: {sorted(stale)}"


def imported_test_modules(source: str, local: set[str]) -> list[str]:
    """The modules named in ``local`` that start with ``test_`` and ``source`` imports (at any
    depth: module level, in functions, ``import x`` or ``from x import y``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        else:
            continue
        found += [n for n in names if n.split(".")[0] in local and n.startswith("test_")]
    return found


def test_imported_test_modules_finds_every_form() -> None:
    local = {"test_a", "helpers"}
    source = (
        "import test_a\nfrom helpers import x\nimport os\n"
        "def f():\n    from test_a import y\n    import test_b\n"
    )
    assert imported_test_modules(source, local) == ["test_a", "test_a"]


def test_no_test_module_imports_another() -> None:
    local = {p.stem for p in TESTS.glob("*.py")}
    offenders = {}
    for path in [*sorted(TESTS.glob("*.py")), *sorted((ROOT / "benchmarks").glob("*.py"))]:
        bad = imported_test_modules(path.read_text(encoding="utf-8"), local)
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(set(bad))
    assert offenders == {}, (
        "move shared helpers into a helper module (no test_ prefix) or a "
        f"fixture plugin listed in conftest: {offenders}"
    )


def ruff(*args: str) -> subprocess.CompletedProcess[str]:
    """ruff with the rules and format of pyproject.toml (run from the root)."""
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_ruff_check_is_clean() -> None:
    proc = ruff("check", "--no-cache", "--output-format", "concise", "src", "tests")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_tree_is_formatted() -> None:
    proc = ruff("format", "--no-cache", "--check", "src", "tests")
    assert proc.returncode == 0, (
        "run `ruff format src tests` (the format is pyproject.toml's [tool.ruff.format]):\n"
        + proc.stdout
        + proc.stderr
    )


def test_ruff_guards_can_fail(tmp_path: Path) -> None:
    """Both ruff runs use the project settings and report a badly formatted, unused import."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nx = {'a':1}\n")
    settings = ["--config", str(ROOT / "pyproject.toml"), "--no-cache"]
    check = ruff("check", *settings, "--output-format", "concise", str(bad))
    assert check.returncode == 1 and "F401" in check.stdout, check.stdout + check.stderr
    fmt = ruff("format", *settings, "--diff", str(bad))
    assert fmt.returncode == 1 and '+x = {"a": 1}' in fmt.stdout, fmt.stdout + fmt.stderr
