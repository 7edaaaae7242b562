"""The CLI has one error boundary (``cli.main.error_status``) and commands return their exit
status: no per-command error decorator, no ``sys.exit`` inside a command."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import imagewise.cli
from imagewise.cli.main import error_status, run
from imagewise.errors import ConfigError, ImagewiseError

CLI = Path(imagewise.cli.__file__).parent
COMMAND_MODULES = sorted(CLI.glob("*_cmds.py"))


def _is_command(fn: ast.FunctionDef) -> bool:
    for d in fn.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name == "command":
            return True
    return False


def _commands() -> list[tuple[str, ast.FunctionDef]]:
    found = []
    for path in COMMAND_MODULES:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and _is_command(node):
                found.append((f"{path.name}:{node.name}", node))
    return found


def test_there_are_commands_to_check() -> None:
    assert len(_commands()) >= 20


@pytest.mark.parametrize("where,fn", _commands(), ids=[w for w, _ in _commands()])
def test_every_command_returns_an_exit_status(where: str, fn: ast.FunctionDef) -> None:
    assert fn.returns is not None and ast.unparse(fn.returns) == "int", where
    assert isinstance(fn.body[-1], (ast.Return, ast.Raise)), f"{where} may fall off its end"
    for node in ast.walk(fn):
        if isinstance(node, ast.Return) and node.value is None:
            raise AssertionError(f"{where}: a bare return gives no status")


@pytest.mark.parametrize("path", COMMAND_MODULES, ids=[p.name for p in COMMAND_MODULES])
def test_no_command_module_exits_or_translates_errors_itself(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) in ("sys.exit", "os._exit"):
            raise AssertionError(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            caught = ast.unparse(node.type)
            assert "ImagewiseError" not in caught, f"{path.name}:{node.lineno} catches {caught}"
    assert "handle_errors" not in path.read_text()


def test_the_boundary_gives_each_failure_its_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert error_status(ConfigError("bad policy")) == 2
    assert capsys.readouterr().err == "imagewise: error: bad policy\n"
    gate = ImagewiseError("a gate")
    gate.exit_code = 1
    assert error_status(gate) == 1
    assert error_status(FileNotFoundError(2, "No such file", "/nope")) == 2
    assert capsys.readouterr().err.endswith("/nope: no such file or directory\n")
    assert error_status(ValueError("oops")) == 2
    err = capsys.readouterr().err
    assert err.startswith("imagewise: internal error: ValueError: oops")
    assert "IMAGEWISE_DEBUG=1" in err


def test_a_failing_command_returns_its_status_through_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["lint", str(tmp_path / "missing")]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "policy.yaml"
    bad.write_text("version: [unclosed\n")
    assert run(["policy", "validate", str(bad)]) == 2
    assert capsys.readouterr().err.startswith("imagewise: error: ")


def test_policy_init_dash_writes_to_stdout_not_a_file_named_dash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from imagewise.policy.model import default_text

    monkeypatch.chdir(tmp_path)
    assert run(["policy", "init", "-"]) == 0
    assert capsys.readouterr().out == default_text()
    assert not (tmp_path / "-").exists()
