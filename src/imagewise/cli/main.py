"""Entry point. Commands are loaded lazily so ``imagewise --version`` stays fast."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from imagewise import __version__

#: command name -> "module:attribute" of a click command; modules import heavy libraries lazily
COMMANDS: dict[str, str] = {
    "inspect": "imagewise.cli.image_cmds:inspect_cmd",
    "copy": "imagewise.cli.image_cmds:copy_cmd",
    "tags": "imagewise.cli.registry_cmds:tags_cmd",
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


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        cmd = getattr(importlib.import_module(module), attr, None)
        return cmd if isinstance(cmd, click.Command) else None


CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=LazyGroup, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="imagewise")
def cli() -> None:
    """imagewise makes container images good and keeps them good.

    \b
    Image references accept the transports you know from skopeo and podman:
      docker://REGISTRY/REPO[:TAG][@DIGEST]   (or a bare reference)
      oci:DIR[:TAG]   oci-archive:FILE[:TAG]   docker-archive:FILE[:REF]

    \b
    Start with:
      imagewise check IMAGE          one pass, one verdict
      imagewise lint Dockerfile      hadolint-compatible lint with autofix
      imagewise analyze IMAGE        dive-exact efficiency and reclaimable bytes
    """


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


def main(argv: list[str] | None = None) -> Any:
    from imagewise.errors import ImagewiseError

    _skip_httpx_cli()
    try:
        return cli.main(args=argv, prog_name="imagewise", standalone_mode=True)
    except ImagewiseError as e:  # pragma: no cover - click handles most exits itself
        click.echo(f"imagewise: error: {e}", err=True)
        sys.exit(e.exit_code)
