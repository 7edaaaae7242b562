"""Entry point: ``imagewise COMMAND ...``. Only the module of the command asked for is imported,
so every command starts as fast as its own work allows (see ``cli.args``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from imagewise import __version__

#: command name -> "module:attribute" of its Command or Group; modules import heavy libraries lazily
COMMANDS: dict[str, str] = {
    "inspect": "imagewise.cli.image_cmds:inspect_cmd",
    "copy": "imagewise.cli.image_cmds:copy_cmd",
    "tags": "imagewise.cli.registry_cmds:tags_group",
    "tag": "imagewise.cli.release_cmds:tag_cmd",
    "promote": "imagewise.cli.release_cmds:promote_cmd",
    "history": "imagewise.cli.release_cmds:history_cmd",
    "rollback": "imagewise.cli.release_cmds:rollback_cmd",
    "deprecate": "imagewise.cli.release_cmds:deprecate_cmd",
    "outdated": "imagewise.cli.release_cmds:outdated_cmd",
    "du": "imagewise.cli.storage_cmds:du_cmd",
    "dedup": "imagewise.cli.storage_cmds:dedup_cmd",
    "sync": "imagewise.cli.storage_cmds:sync_cmd",
    "backup": "imagewise.cli.backup_cmds:backup_group",
    "restore": "imagewise.cli.backup_cmds:restore_cmd",
    "drill": "imagewise.cli.backup_cmds:drill_cmd",
    "serve": "imagewise.cli.serve_cmds:serve_group",
    "worker": "imagewise.cli.serve_cmds:worker_cmd",
    "alert": "imagewise.cli.alert_cmds:alert_group",
    "test": "imagewise.cli.test_cmds:test_cmd",
    "build": "imagewise.cli.build_cmds:build_cmd",
    "ci": "imagewise.cli.ci_cmds:ci_group",
    "deps": "imagewise.cli.deps_cmds:deps_group",
    "measure": "imagewise.cli.measure_cmds:measure_group",
    "retention": "imagewise.cli.storage_cmds:retention_group",
    "files": "imagewise.cli.files_cmds:files_cmd",
    "analyze": "imagewise.cli.analyze_cmds:analyze_cmd",
    "diff": "imagewise.cli.analyze_cmds:diff_cmd",
    "lint": "imagewise.cli.lint_cmds:lint_cmd",
    "rules": "imagewise.cli.lint_cmds:rules_cmd",
    "explain": "imagewise.cli.lint_cmds:explain_cmd",
    "sbom": "imagewise.cli.sbom_cmds:sbom_cmd",
    "scan": "imagewise.cli.scan_cmds:scan_cmd",
    "db": "imagewise.cli.scan_cmds:db_group",
    "check": "imagewise.cli.check_cmds:check_cmd",
    "policy": "imagewise.cli.check_cmds:policy_group",
    "sample": "imagewise.cli.sample_cmds:sample_cmd",
}

HELP = """\
usage: imagewise COMMAND [ARGS]...

imagewise makes container images good and keeps them good.

Image references accept the transports you know from skopeo and podman:
  docker://REGISTRY/REPO[:TAG][@DIGEST]   (or a bare reference)
  oci:DIR[:TAG]   oci-archive:FILE[:TAG]   docker-archive:FILE[:REF]

Start with:
  imagewise check IMAGE          one pass, one verdict
  imagewise lint Dockerfile      hadolint-compatible lint with autofix
  imagewise analyze IMAGE        dive-exact efficiency and reclaimable bytes

options:
  -h, --help     show this message and exit
  -V, --version  show the version and exit

commands:
{commands}

`imagewise COMMAND --help` explains each command.
"""


#: commands that do one bounded piece of work and exit: their process runs without the cyclic
#: garbage collector (see ``main``); the long-lived ones (serve, worker, ...) keep it
ONE_SHOT = frozenset(
    {"analyze", "check", "copy", "diff", "files", "inspect", "lint", "sbom", "scan"}
)


def load(name: str) -> object:
    """The Command or Group registered as ``name`` (its module imported now)."""
    import importlib

    module, attr = COMMANDS[name].split(":")
    return getattr(importlib.import_module(module), attr)


def help_text() -> str:
    """The top-level help; each command's line is the first line of its docstring."""
    width = max(len(n) for n in COMMANDS)
    rows = "\n".join(
        f"  {n:<{width}}  {load(n).summary}"  # type: ignore[attr-defined]
        for n in sorted(COMMANDS)
    )
    return HELP.format(commands=rows)


def _skip_httpx_cli() -> None:
    """httpx imports its own command-line client (rich, pygments, click) when imported; this
    process never runs it, so a stand-in keeps ~0.15 s out of every registry command's start-up."""
    import types

    if "httpx" not in sys.modules and "httpx._main" not in sys.modules:

        def main() -> None:  # pragma: no cover - never called
            raise SystemExit("httpx's command-line client is not available inside imagewise")

        stub = types.ModuleType("httpx._main")
        stub.main = main  # type: ignore[attr-defined]
        sys.modules["httpx._main"] = stub


def run(argv: Sequence[str]) -> int:
    """Run one command line (without the program name); returns the exit status."""
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(help_text())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from imagewise.archive.native import describe
        from imagewise.secrets.native import describe as describe_literals

        sys.stdout.write(
            f"imagewise, version {__version__}\ntar walk: {describe()}\n"
            f"secret scan: {describe_literals()}\n"
        )
        return 0
    name = argv[0]
    if name not in COMMANDS:
        import difflib

        close = difflib.get_close_matches(name, list(COMMANDS), n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        sys.stderr.write(
            f"usage: imagewise COMMAND [ARGS]...\nimagewise: error: no such "
            f"command {name!r}{hint} (`imagewise --help` lists them)\n"
        )
        return 2
    _skip_httpx_cli()
    cmd = load(name)
    try:
        return cmd.main(argv[1:], f"imagewise {name}")  # type: ignore[attr-defined,no-any-return]
    except Exception as e:  # noqa: BLE001 - the one error boundary: every failure is one line
        return error_status(e)
    except KeyboardInterrupt:
        sys.stderr.write("imagewise: interrupted\n")
        return 130


def error_status(e: Exception) -> int:
    """The one error boundary of the CLI: write one line on stderr for ``e`` and return the exit
    status. Bad input or a bad remote (``ImagewiseError``) gives its own status (2; 1 for a
    failed gate); a file that is not there, 2; a reader that went away (``imagewise ... | head``)
    141, as a process ended by SIGPIPE; anything else is a bug: one line (the traceback with
    ``IMAGEWISE_DEBUG=1``) and 2, since 1 would read as a failed gate."""
    from imagewise.errors import ImagewiseError
    from imagewise.textsafe import safe

    if isinstance(e, ImagewiseError):
        sys.stderr.write(f"imagewise: error: {safe(str(e))}\n")
        return e.exit_code
    if isinstance(e, FileNotFoundError):
        sys.stderr.write(
            f"imagewise: error: {safe(str(e.filename or e))}: no such file or directory\n"
        )
        return 2
    if isinstance(e, BrokenPipeError):
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no 2nd error at exit
        return 141
    import os

    if os.environ.get("IMAGEWISE_DEBUG"):
        import traceback

        traceback.print_exception(e)
        return 2
    sys.stderr.write(
        f"imagewise: internal error: {type(e).__name__}: {safe(str(e))} "
        "(set IMAGEWISE_DEBUG=1 for the traceback, and please report it)\n"
    )
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: exits with the command's status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ONE_SHOT:
        # what these commands build (a pass's trees and records) lives until the process ends
        # (``_exit``, nothing torn down): the collector would only rescan it, through every
        # import and once more after each pass (``gcpause``). Reference counting still frees
        # everything not in a cycle; a cycle costs at most what this one command made.
        import gc

        gc.disable()
    try:
        code = run(args)
    except SystemExit as e:
        if e.code is not None and not isinstance(e.code, int):
            raise
        code = e.code or 0
    _exit(code)
    return code  # pragma: no cover - _exit does not return


def _exit(code: int) -> None:
    """End the process without freeing every object the command built, as mypy does: tearing
    down the trees of a large analysis costs more than some whole commands. Output is flushed
    first; every file, temporary directory and thread was closed by the command itself.
    ``IMAGEWISE_DEBUG=1`` keeps the interpreter's normal shutdown."""
    import os

    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader went away (``imagewise ... | head``): not an error
        pass
    except OSError:
        code = code or 1
    if os.environ.get("IMAGEWISE_DEBUG"):
        sys.exit(code)
    os._exit(code)


#: what tests and docs call: ``cli(["analyze", ...])`` returns the exit status
cli = run
