"""``imagewise lint``, ``rules`` and ``explain``: flags -> lint/fix -> renderer -> exit code."""

from __future__ import annotations

import os
import sys

from imagewise.cli.args import argument, command, echo, option, path_type
from imagewise.cli.common import format_option, insecure_option
from imagewise.encoders import LINT, RULES
from imagewise.textsafe import safe

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import IO, Any

    from imagewise.dockerfile.config import LintConfig
    from imagewise.findings import Finding

THRESHOLDS = ("error", "warning", "info", "style", "ignore", "none")


def _stdin() -> IO[bytes]:
    """Standard input as bytes (a text-only stdin, in tests: its text, encoded back)."""
    stream = getattr(sys.stdin, "buffer", None)
    if stream is not None:
        return stream  # type: ignore[no-any-return]
    import io

    from imagewise.dockerfile.parser import MAX_DOCKERFILE_BYTES

    return io.BytesIO(sys.stdin.read(MAX_DOCKERFILE_BYTES + 1).encode("utf-8", "surrogateescape"))


def _write_out(data: bytes) -> None:
    """Bytes to standard output as they are (a fixed Dockerfile, a patch)."""
    stream = getattr(sys.stdout, "buffer", None)
    if stream is None:  # a text-only stdout (tests): the same bytes as text
        sys.stdout.write(data.decode("utf-8", "surrogateescape"))
        return
    sys.stdout.flush()
    stream.write(data)
    stream.flush()


def _config(config: str | None, rules_files: tuple[str, ...] = ()) -> LintConfig:
    from imagewise.dockerfile.files import lint_config

    return lint_config(config, rules_files=rules_files)


def _use_color(fmt: str, color: bool | None) -> bool:
    if fmt != "table":
        return False
    if color is not None:
        return color
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


@command("lint")
@argument("dockerfiles", nargs="*", metavar="DOCKERFILE")
@format_option(LINT, "-f", "--format")
@option(
    "-t",
    "--failure-threshold",
    "threshold",
    choices=THRESHOLDS,
    default=None,
    help="Exit 1 when a finding is at or above this severity (default from config, else info).",
)
@option("--no-fail", flag=True, help="Always exit 0 when linting succeeded.")
@option(
    "-c",
    "--config",
    type=path_type(dir_okay=False),
    default=None,
    help="Config file (.hadolint.yaml style YAML, or imagewise.toml).",
)
@option("--ignore", multiple=True, metavar="RULE", help="Ignore a rule (repeatable).")
@option(
    "--rules",
    "rules_files",
    multiple=True,
    type=path_type(dir_okay=False),
    metavar="FILE",
    help="Custom rules file (YAML/TOML, repeatable).",
)
@option(
    "--context",
    type=path_type(file_okay=False, exists=True),
    default=None,
    help="Build context directory (default: each Dockerfile's directory).",
)
@option("--fix", flag=True, help="Rewrite the files in place with the safe fixes.")
@option(
    "--diff",
    "show_diff",
    flag=True,
    help="Only print the fixes as a unified diff (exit 1 when there are any).",
)
@option(
    "--color/--no-color", default=None, help="Colour the table output (default: on a terminal)."
)
@option(
    "--check-bases",
    flag=True,
    help="Ask the base images' registries for deprecation records (IW113; needs the network).",
)
@insecure_option
def lint_cmd(
    dockerfiles: tuple[str, ...],
    fmt: str,
    threshold: str | None,
    no_fail: bool,
    config: str | None,
    ignore: tuple[str, ...],
    rules_files: tuple[str, ...],
    context: str | None,
    fix: bool,
    show_diff: bool,
    color: bool | None,
    check_bases: bool,
    insecure: bool,
) -> int:
    """Lint Dockerfiles: hadolint's DL rules and the guide's IW rules. `-` reads stdin.

    Exit codes: 0 clean (or below the threshold), 1 findings at/over the failure threshold
    (or, with --diff, fixes pending), 2 usage, config or Dockerfile syntax errors.
    """
    from imagewise.dockerfile.files import lint_config, lint_input, preview_fix, read_dockerfiles
    from imagewise.errors import UsageError

    if fix and show_diff:
        raise UsageError("--fix and --diff are exclusive: --diff only shows what --fix writes")
    cfg = lint_config(config, threshold, no_fail, ignore, rules_files, context)
    inputs = read_dockerfiles(dockerfiles, _stdin() if "-" in dockerfiles else None)
    broken = False
    if show_diff:
        pending = False
        for item in inputs:
            result = preview_fix(item, cfg.context_dir)
            if result.error is not None:
                echo(f"imagewise: error: {safe(result.error)}", err=True)
                broken = True
            elif result.fix is not None and result.fix.changed:
                pending = True
                _write_out(_encode(result.fix.diff()))  # a patch: the exact bytes, to apply
        return 2 if broken else 1 if pending else 0
    findings: list[Finding] = []
    sources: dict[str, str] = {}
    for item in inputs:
        result = lint_input(item, cfg, fix=fix, check_bases=check_bases, insecure=insecure)
        for line in result.warnings:
            echo(f"imagewise: warning: {safe(line)}", err=True)
        done = result.fix
        if done is not None and done.changed:
            if item.path is not None:
                rules = ", ".join(sorted(done.rules))
                echo(f"fixed {safe(item.name)}: {len(done.edits)} edit(s) ({rules})", err=True)
            else:
                _write_out(_encode(done.fixed))  # stdin: the fixed file goes to stdout
        if result.error is not None:
            echo(f"imagewise: error: {safe(result.error)}", err=True)
            broken = True
            continue
        findings.extend(result.findings)
        sources[item.name] = result.text or ""
    # with `--fix -`, stdout carries the fixed Dockerfile: the findings go to stderr
    _emit(findings, fmt, sources, color, err=fix and any(i.path is None for i in inputs), cfg=cfg)
    if broken:
        return 2
    return 1 if cfg.fails(findings) else 0


def _encode(text: str) -> bytes:
    from imagewise.dockerfile.fix import encode

    return encode(text)


def _emit(
    findings: list[Finding],
    fmt: str,
    sources: dict[str, str],
    color: bool | None,
    err: bool = False,
    cfg: LintConfig | None = None,
) -> None:
    from imagewise.rules import LINT_KINDS, rule_table

    rules = rule_table(cfg, LINT_KINDS) if fmt == "sarif" else {}
    paint = _use_color(fmt, color) and not err
    out = LINT.encode(fmt, findings, rules=rules, sources=sources, color=paint)
    echo(out, nl=False, err=err)


def _custom_options(fn: Any) -> Any:
    fn = option(
        "--rules",
        "rules_files",
        multiple=True,
        metavar="FILE",
        type=path_type(dir_okay=False),
        help="Custom rules file (repeatable).",
    )(fn)
    return option(
        "-c",
        "--config",
        type=path_type(dir_okay=False),
        default=None,
        help="Lint config whose custom-rules to include.",
    )(fn)


@command("rules")
@format_option(RULES)
@option(
    "--source",
    "source",
    default=None,
    metavar="NAME",
    help="Only rules from this source (hadolint, imagewise, dockle, ...).",
)
@_custom_options
def rules_cmd(
    fmt: str, source: str | None, config: str | None, rules_files: tuple[str, ...]
) -> int:
    """List every declared rule and check: Dockerfile (DL, IW, custom) and image checks."""
    from imagewise.rules import catalog

    infos = catalog(_config(config, rules_files=rules_files))
    if source:
        infos = [i for i in infos if i.source == source]
    echo(RULES.encode(fmt, infos), nl=False)
    return 0


@command("explain")
@argument("rule_id", metavar="ID")
@_custom_options
def explain_cmd(rule_id: str, config: str | None, rules_files: tuple[str, ...]) -> int:
    """Explain a rule or check: why it matters and how to fix it."""
    from imagewise.rules import explain_text, find_rule

    echo(explain_text(find_rule(rule_id, _config(config, rules_files=rules_files))), nl=False)
    return 0
