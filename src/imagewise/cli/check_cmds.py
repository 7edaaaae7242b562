"""``imagewise check`` and ``imagewise policy``."""

from __future__ import annotations

import sys
from pathlib import Path

from imagewise.cli.args import argument, command, echo, group, option, path_type
from imagewise.cli.common import (
    RichReporter,
    format_option,
    insecure_option,
    platform_option,
)
from imagewise.cli.scan_cmds import db_update_options
from imagewise.encoders import CHECK


@command("check")
@argument("image")
@option(
    "--dockerfile",
    type=path_type(exists=True, dir_okay=False, as_path=True),
    help="Lint this Dockerfile too and link image findings to its lines.",
)
@option(
    "--policy",
    "policy_file",
    type=path_type(dir_okay=False, as_path=True),
    help="Policy YAML (default: the guide's baseline; see `imagewise policy init`).",
)
@option(
    "--db",
    type=path_type(dir_okay=False, as_path=True),
    help="OSV database (default: $IMAGEWISE_DB or the user cache dir, updated when stale).",
)
@format_option(CHECK, "--format", "-f")
@option(
    "-o",
    "--output",
    type=path_type(dir_okay=False, as_path=True),
    help="Write the report here instead of standard output.",
)
@option(
    "--ignore-file",
    type=path_type(exists=True, dir_okay=False, as_path=True),
    help=".imagewise-ignore.yaml, .trivyignore or .grype.yaml (default: found in cwd).",
)
@option(
    "--vex",
    "vex",
    multiple=True,
    type=path_type(exists=True, dir_okay=False, as_path=True),
    help="OpenVEX document (repeatable).",
)
@option("--no-cache", flag=True, help="Read every layer; don't use or fill the layer cache.")
@option(
    "--allow-incomplete",
    flag=True,
    help="Exit 0 when nothing is violated although a gate could not be judged (no database, "
    "no Dockerfile, no tag); the verdict still says INCOMPLETE.",
)
@db_update_options
@platform_option
@insecure_option
def check_cmd(
    image: str,
    dockerfile: Path | None,
    policy_file: Path | None,
    db: Path | None,
    fmt: str,
    output: Path | None,
    ignore_file: Path | None,
    vex: tuple[Path, ...],
    no_cache: bool,
    allow_incomplete: bool,
    offline: bool,
    skip_db_update: bool,
    update_db: bool,
    mirror: str | None,
    platform: str | None,
    insecure: bool,
) -> int:
    """Check IMAGE against the best-practice policy: one pass over each layer, one verdict.

    Runs together, reading each layer once:
      efficiency and waste (dive-exact, plus reclaimable bytes and fixes)
      SBOM catalogers and vulnerabilities from the offline OSV database
      secrets in every layer (deleted ones too), the config and the history
      CIS / dockle image audit (root user, setuid files, caches, empty passwords, ...)
      Dockerfile lint when --dockerfile is given, with image findings linked to its lines

    Exit codes: 0 the policy passed, 1 it failed or could not be fully judged (INCOMPLETE; see
    --allow-incomplete), 2 usage or input error. Warnings go to standard error.

    Examples:
      imagewise check docker-archive:app.tar --dockerfile Dockerfile
      imagewise check oci:build/app:1.2.0 --policy policy.yaml --format html -o report.html
    """
    from imagewise.check import CheckOptions, run_check
    from imagewise.cli.scan_cmds import auto_update
    from imagewise.policy.model import load_policy

    opts = CheckOptions(
        image=image,
        dockerfile=dockerfile,
        policy=load_policy(policy_file),
        db=db,
        platform=platform,
        insecure=insecure,
        use_cache=not no_cache,
        ignore_file=ignore_file,
        vex=vex,
        allow_incomplete=allow_incomplete,
    )
    with RichReporter() as reporter:
        opts = opts.replace(
            db_update=auto_update(db, offline, skip_db_update, update_db, mirror, reporter)
        )
        result = run_check(opts, reporter)
    for w in result.warnings:
        echo(f"imagewise: warning: {w}", err=True)
    text = CHECK.encode(fmt, result, color=output is None and sys.stdout.isatty())
    if output is not None:
        from imagewise.fileio import write_file

        write_file(str(output), text.encode("utf-8"))
        echo(f"wrote {output} ({result.verdict.status})", err=True)
    else:
        echo(text, nl=False)
    return 0 if result.verdict.passed else 1


@group("policy")
def policy_group() -> None:
    """Write and validate policy files (the guide's baselines as gates)."""


@policy_group.command("init")
@argument(
    "path", nargs="?", type=path_type(dir_okay=False, as_path=True), default="imagewise-policy.yaml"
)
@option("--force", flag=True, help="Overwrite an existing file.")
def policy_init(path: Path, force: bool) -> int:
    """Write the default policy (the guide's baselines) to PATH to edit.

    PATH defaults to imagewise-policy.yaml; `-` writes the policy to standard output.
    """
    from imagewise.errors import UsageError
    from imagewise.policy.model import default_text

    if str(path) == "-":
        echo(default_text(), nl=False)
        return 0
    if path.exists() and not force:
        raise UsageError(f"{path} exists; use --force to overwrite")
    from imagewise.fileio import write_file

    write_file(str(path), default_text().encode("utf-8"))
    echo(f"wrote {path}")
    return 0


@policy_group.command("validate")
@argument("path", type=path_type(dir_okay=False, as_path=True))
def policy_validate(path: Path) -> int:
    """Check a policy file: unknown keys and wrong types are reported with their key path."""
    from imagewise.policy.model import load_policy

    p = load_policy(path)
    echo(f"{path}: valid ({len(p.rules)} rule levels)")
    return 0
