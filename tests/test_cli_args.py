"""The command declarations (cli/args.py) and the entry point, through the real parser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cli_runner import CliRunner

from imagewise.cli.args import Group, argument, command, group, int_range, option, path_type
from imagewise.cli.main import COMMANDS, cli, load

seen: dict[str, Any] = {}


@command("demo")
@argument("things", nargs="*", metavar="THING")
@option("--format", "fmt", choices=("a", "b"), default="a", show_default=True, help="Format.")
@option("--tag", multiple=True, metavar="T", help="Repeatable; 100% of them kept.")
@option("--color/--no-color", help="Colour.")
@option("--jobs", "-j", type=int_range(1, 4), default=2)
@option("--db", type=path_type(dir_okay=False, as_path=True), envvar="DEMO_DB")
@option("--src", type=path_type(exists=True, file_okay=False))
@option("--dry-run", flag=True)
def demo(
    things: tuple[str, ...],
    fmt: str,
    tag: tuple[str, ...],
    color: bool | None,
    jobs: int,
    db: Path | None,
    src: str | None,
    dry_run: bool,
) -> int:
    """Demonstrate the declarations.

    Second paragraph, printed as written:
      indented example
    """
    seen.clear()
    seen.update(
        things=things, fmt=fmt, tag=tag, color=color, jobs=jobs, db=db, src=src, dry_run=dry_run
    )
    return 3 if dry_run else 0


@group("grp")
def grp() -> None:
    """A group."""


@grp.command("sub")
@argument("name", nargs="?", default="x")
def sub(name: str) -> None:
    """A subcommand."""
    print(f"sub {name}")


def _run(cmd: Any, *args: str, env: dict[str, str | None] | None = None) -> Any:
    return CliRunner().invoke(lambda argv: cmd.main(argv, "imagewise demo"), list(args), env=env)


def test_defaults_and_values_reach_the_function(tmp_path: Path) -> None:
    r = _run(demo, env={"DEMO_DB": None})
    assert r.exit_code == 0, r.output
    assert seen == {
        "things": (),
        "fmt": "a",
        "tag": (),
        "color": None,
        "jobs": 2,
        "db": None,
        "src": None,
        "dry_run": False,
    }
    r = _run(
        demo,
        "x",
        "y",
        "--format",
        "b",
        "--tag",
        "1",
        "--tag",
        "2",
        "--no-color",
        "-j",
        "4",
        "--src",
        str(tmp_path),
        "--dry-run",
        env={"DEMO_DB": str(tmp_path / "db.sqlite")},
    )
    assert r.exit_code == 3
    assert seen == {
        "things": ("x", "y"),
        "fmt": "b",
        "tag": ("1", "2"),
        "color": False,
        "jobs": 4,
        "db": tmp_path / "db.sqlite",
        "src": str(tmp_path),
        "dry_run": True,
    }


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "c"], "invalid choice: 'c'"),
        (["-j", "9"], "9 is not in the range 1..4"),
        (["-j", "two"], "'two' is not an integer"),
        (["--src", "/no/such/dir"], "does not exist"),
        (["--db", "/"], "is a directory"),
        (["--nope"], "unrecognized arguments: --nope"),
        (["--form", "a"], "unrecognized arguments: --form"),  # no abbreviations
    ],
)
def test_bad_input_is_a_usage_error(args: list[str], message: str) -> None:
    r = _run(demo, *args)
    assert r.exit_code == 2
    assert message in r.stderr and "usage: imagewise demo" in r.stderr


def test_help_prints_the_docstring_as_written_and_the_defaults() -> None:
    r = _run(demo, "--help")
    assert r.exit_code == 0
    assert "Second paragraph, printed as written:\n  indented example" in r.stdout
    assert "[default: a]" in r.stdout and "100% of them kept" in r.stdout
    assert "--color, --no-color" in r.stdout
    assert demo.summary == "Demonstrate the declarations."


def test_group_dispatches_and_lists_its_commands() -> None:
    r = CliRunner().invoke(lambda argv: grp.main(argv, "imagewise grp"), ["sub", "y"])
    assert (r.exit_code, r.stdout) == (0, "sub y\n")
    r = CliRunner().invoke(lambda argv: grp.main(argv, "imagewise grp"), ["sub"])
    assert r.stdout == "sub x\n"
    r = CliRunner().invoke(lambda argv: grp.main(argv, "imagewise grp"), ["nope"])
    assert r.exit_code == 2 and "no such command 'nope'" in r.stderr and "sub" in r.stderr
    r = CliRunner().invoke(lambda argv: grp.main(argv, "imagewise grp"), ["sbu"])
    assert "did you mean sub?" in r.stderr


def test_entry_point_help_version_and_unknown_commands() -> None:
    r = CliRunner().invoke(cli, ["--help"])
    assert r.exit_code == 0
    for name in COMMANDS:  # each listed with its docstring's first line
        assert f"  {name} " in r.stdout
        cmd = load(name)
        assert cmd.summary and cmd.summary in r.stdout
        assert isinstance(cmd, Group) or cmd.fn.__doc__
    assert CliRunner().invoke(cli, []).exit_code == 2
    r = CliRunner().invoke(cli, ["--version"])
    assert r.exit_code == 0 and r.stdout.startswith("imagewise, version ")
    r = CliRunner().invoke(cli, ["analyse"])
    assert r.exit_code == 2 and "did you mean analyze?" in r.stderr


def test_console_script_exit_status_and_a_closed_pipe() -> None:
    """The real process: statuses survive the fast exit, output is complete, and a reader that
    stops early (`| head -1`) ends the command quietly."""
    import subprocess
    import sys

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "imagewise", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    r = run("rules", "--format", "json")
    assert r.returncode == 0 and r.stdout.rstrip().endswith("}")  # flushed in full
    assert run("analyze", "docker-archive:/no/such.tar").returncode == 2
    p = subprocess.Popen(
        f"{sys.executable} -m imagewise rules | head -1",
        shell=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        executable="/bin/bash",
    )
    out, err = p.communicate(timeout=60)
    assert len(out.splitlines()) == 1 and "error" not in err
    script = f"{sys.executable} -m imagewise rules | head -1 >/dev/null; echo ${{PIPESTATUS[0]}}"
    r2 = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert r2.stdout.strip() in ("0", "141")  # 0 when everything fit in the pipe first


def _all_commands() -> list[list[str]]:
    out = []
    for name in sorted(COMMANDS):
        cmd = load(name)
        out.append([name])
        if isinstance(cmd, Group):
            out += [[name, sub] for sub in sorted(cmd.commands)]
    return out


@pytest.mark.parametrize("words", _all_commands(), ids=" ".join)
def test_every_command_has_working_help(words: list[str]) -> None:
    r = CliRunner().invoke(cli, [*words, "--help"])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"usage: imagewise {' '.join(words)}")
    cmd = load(words[0])
    if len(words) > 1:
        cmd = cmd.commands[words[1]]
    assert cmd.summary and cmd.summary.rstrip(".")[:40] in r.stdout  # the docstring describes it


def test_a_mistyped_option_gets_a_suggestion() -> None:
    r = CliRunner().invoke(cli, ["analyze", "--fromat", "json", "x.tar"])
    assert r.exit_code == 2 and "did you mean --format" in r.stderr


def test_an_internal_error_is_status_2_with_or_without_the_traceback() -> None:
    """A bug is never reported with 1, the status of a failed gate; IMAGEWISE_DEBUG=1 adds the
    traceback but keeps the status."""
    import os
    import subprocess
    import sys

    prog = (
        "import imagewise.sources as s\n"
        "def boom(*a, **k): raise ZeroDivisionError('planted bug')\n"
        "s.open_source = boom\n"
        "from imagewise.cli.main import main\n"
        "main(['inspect', 'oci:/nonexistent-dir'])\n"
    )
    for debug in ("", "1"):
        env = {**os.environ, "IMAGEWISE_DEBUG": debug}
        r = subprocess.run(
            [sys.executable, "-c", prog],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )
        assert r.returncode == 2, (debug, r.stderr)
        assert "ZeroDivisionError" in r.stderr
        assert ("Traceback" in r.stderr) == bool(debug)


def _both(cmd: Any, args: list[str]) -> tuple[dict[str, Any] | None, dict[str, Any] | str]:
    """(the plain reader's namespace or None, argparse's namespace or its error status)."""
    from imagewise.cli.args import _plain_parse

    plain = _plain_parse(cmd.params, list(args))
    try:
        full: dict[str, Any] | str = vars(cmd.parser("imagewise x").parse_args(list(args)))
    except SystemExit as e:
        full = f"exit {e.code}"
    return plain, full


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["x"],
        ["x", "y", "--format", "b"],
        ["--format=b", "x"],
        ["--format", "b", "x", "y"],
        ["--tag", "1", "--tag=2", "-", "x"],
        ["--color"],
        ["--no-color", "--color"],
        ["-j", "3", "--jobs", "4"],
        ["--dry-run", "--dry-run", "x"],
        ["--tag", "-"],
        ["--src", "."],
        ["--db", "some.db"],
        ["--format", "a", "--format", "b"],
    ],
)
def test_plain_reader_gives_argparses_namespace(args: list[str], monkeypatch: Any) -> None:
    """`Command.main` reads a plain command line without argparse (start-up time): the result
    must be argparse's own, value for value (types, defaults, environment defaults)."""
    monkeypatch.setenv("DEMO_DB", "env.db")
    plain, full = _both(demo, args)
    assert plain is not None, args
    assert plain == full


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["-h"],
        ["--"],
        ["--", "x"],
        ["-j4"],
        ["-j=4"],
        ["--format", "c"],
        ["--format=c"],
        ["--format"],
        ["--format", "--dry-run"],
        ["--tag", "-x"],
        ["-j", "9"],
        ["-j", "two"],
        ["--src", "/no/such/dir"],
        ["--db", "/"],
        ["--nope"],
        ["--form", "a"],
        ["x", "--dry-run", "y"],
        ["--dry-run=1"],
        ["--color=yes"],
        ["-1"],
        ["-x y"],
    ],
)
def test_plain_reader_leaves_the_rest_to_argparse(args: list[str]) -> None:
    """Help, errors and unusual spellings go to argparse (its messages, its exit status)."""
    plain, _ = _both(demo, args)
    assert plain is None, args


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_plain_reader_matches_argparse_on_every_command(name: str, tmp_path: Path) -> None:
    cmd = load(name)
    commands = cmd.commands.values() if isinstance(cmd, Group) else [cmd]
    (tmp_path / "f").write_text("x")
    samples = [[], ["a"], ["a", "b"], ["a", "b", "c"], [str(tmp_path / "f")], [str(tmp_path)]]
    for sub in commands:
        lines = [list(s) for s in samples]
        for p in sub.params:
            if not p.is_option:
                continue
            flag = p.flags[-1]
            if p.negatable or p.kwargs.get("action") == "store_true":
                lines += [[flag, *s] for s in samples[:3]]
                if p.negatable:
                    lines.append(["--no-" + flag[2:], "a"])
                continue
            values = list(p.kwargs.get("choices") or ()) + [
                "1",
                str(tmp_path / "f"),
                str(tmp_path),
                "-",
            ]
            for v in values:
                lines += [["a", flag, v], [flag, v, "a", "b"], [f"{flag}={v}"]]
        read = 0
        for args in lines:
            plain, full = _both(sub, args)
            if plain is not None:
                read += 1
                assert plain == full, (name, sub.name, args)
            else:  # left to argparse: an error there, or `-x=VALUE` (a short option with =)
                assert isinstance(full, str) or any(
                    a[:1] == "-" and a[1:2] != "-" and "=" in a for a in args
                ), (sub.name, args)
        assert read, (name, sub.name)


def test_one_shot_commands_run_without_the_cyclic_collector() -> None:
    """The console script turns the collector off for the commands that do one bounded piece
    of work and exit (their trees live until ``_exit``), and leaves it on for the others."""
    import subprocess
    import sys

    prog = (
        "import gc, sys\n"
        "import imagewise.cli.main as m\n"
        "m.run = lambda argv: sys.stdout.write(f'{argv[0]} {gc.isenabled()}\\n') and 0\n"
        "m.main([sys.argv[1], 'x'])\n"
    )
    seen = {}
    for name in ("analyze", "check", "sbom", "copy", "serve", "worker", "tags", "backup"):
        r = subprocess.run(
            [sys.executable, "-c", prog, name],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert r.returncode == 0, r.stderr
        cmd, enabled = r.stdout.split()
        seen[cmd] = enabled == "True"
    assert seen == {
        "analyze": False,
        "check": False,
        "sbom": False,
        "copy": False,
        "serve": True,
        "worker": True,
        "tags": True,
        "backup": True,
    }


@pytest.mark.parametrize("name", ["analyze", "check", "scan", "sbom", "lint"])
def test_the_image_and_lint_commands_take_f_for_format(name: str) -> None:
    """``-f FORMAT`` is ``--format FORMAT`` wherever users run several of these in a row (sbom
    and lint had it, as syft-like and hadolint-like tools do; check, scan and analyze too)."""
    from imagewise.cli.main import load

    cmd = load(name)
    short = vars(cmd.parser(f"imagewise {name}").parse_args(["x", "-f", "json"]))  # type: ignore[attr-defined]
    assert short["fmt"] == "json"
