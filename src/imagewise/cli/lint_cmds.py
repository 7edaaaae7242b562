"""``imagewise lint``, ``rules`` and ``explain``: flags -> lint/fix -> renderer -> exit code."""

from __future__ import annotations

import os
import sys

from imagewise.cli.args import argument, command, echo, option, path_type
from imagewise.cli.common import format_option
from imagewise.encoders import LINT, RULES
from imagewise.record import Record
from imagewise.textsafe import safe

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from imagewise.dockerfile.config import LintConfig
    from imagewise.findings import Finding

THRESHOLDS = ("error", "warning", "info", "style", "ignore", "none")


class _Input(Record):
    __slots__ = ("name", "data", "path")  # noqa: RUF023
    name: str  # as shown in reports ("-" for stdin)
    data: bytes  # as read (at most one byte over the size limit)
    path: str | None  # on disk, None for stdin

    def __init__(self, name: str, data: bytes, path: str | None) -> None:
        self.name = name
        self.data = data
        self.path = path

    @property
    def text(self) -> str:
        """What lint reads: bytes that are not UTF-8 replaced (fix keeps them: ``data``)."""
        return self.data.decode("utf-8", errors="replace")


def _read_inputs(files: tuple[str, ...]) -> list[_Input]:
    from imagewise.dockerfile.parser import MAX_DOCKERFILE_BYTES, read_limited
    from imagewise.errors import UsageError

    out: list[_Input] = []
    for name in files or ("Dockerfile",):
        if name == "-":
            stream = getattr(sys.stdin, "buffer", None)
            data = (
                read_limited(stream)
                if stream is not None
                else sys.stdin.read(MAX_DOCKERFILE_BYTES + 1).encode("utf-8", "surrogateescape")
            )
            out.append(_Input("-", data, None))
            continue
        try:
            with open(name, "rb") as fh:
                out.append(_Input(name, read_limited(fh), name))
        except FileNotFoundError:
            raise UsageError(f"{name}: no such file") from None
        except OSError as e:
            raise UsageError(f"{name}: cannot read: {e.strerror}") from e
    return out


def _write_out(data: bytes) -> None:
    """Bytes to standard output as they are (a fixed Dockerfile, a patch)."""
    stream = getattr(sys.stdout, "buffer", None)
    if stream is None:  # a text-only stdout (tests): the same bytes as text
        sys.stdout.write(data.decode("utf-8", "surrogateescape"))
        return
    sys.stdout.flush()
    stream.write(data)
    stream.flush()


def _config(
    config: str | None,
    threshold: str | None = None,
    no_fail: bool = False,
    ignore: tuple[str, ...] = (),
    rules_files: tuple[str, ...] = (),
    context: str | None = None,
) -> LintConfig:
    from imagewise.dockerfile.config import load_config
    from imagewise.dockerfile.custom import rules_from_files
    from imagewise.findings import Severity

    cfg = load_config(config)
    if rules_files:
        rules_from_files(rules_files)  # a broken file is a usage error now, before any lint
        cfg = cfg.replace(
            custom_rule_files=cfg.custom_rule_files + tuple(os.path.abspath(p) for p in rules_files)
        )
    if context is not None:
        cfg = cfg.replace(context_dir=os.path.abspath(context))
    if threshold is not None:
        cfg = cfg.replace(
            failure_threshold=None if threshold == "none" else Severity.parse(threshold)
        )
    if no_fail:
        cfg = cfg.replace(no_fail=True)
    if ignore:
        cfg = cfg.replace(ignored=cfg.ignored | {i.strip().upper() for i in ignore})
    return cfg


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
) -> int:
    """Lint Dockerfiles: hadolint's DL rules and the guide's IW rules. `-` reads stdin.

    Exit codes: 0 clean (or below the threshold), 1 findings at/over the failure threshold
    (or, with --diff, fixes pending), 2 usage, config or Dockerfile syntax errors.
    """
    from imagewise.dockerfile.parser import check_size
    from imagewise.errors import DockerfileSyntaxError, UsageError

    if fix and show_diff:
        raise UsageError("--fix and --diff are exclusive: --diff only shows what --fix writes")
    cfg = _config(config, threshold, no_fail, ignore, rules_files, context)
    inputs = _read_inputs(dockerfiles)
    if show_diff:
        return _diff(inputs, cfg.context_dir)
    findings: list[Finding] = []
    sources: dict[str, str] = {}
    broken = False
    for item in inputs:
        try:
            check_size(len(item.data), item.name)
            text = _fix_in_place(item, cfg.context_dir) if fix else item.text
            findings.extend(_lint_one(item, text, cfg))
        except DockerfileSyntaxError as e:
            echo(f"imagewise: error: {safe(str(e))}", err=True)
            broken = True
            continue
        sources[item.name] = text
    # with `--fix -`, stdout carries the fixed Dockerfile: the findings go to stderr
    _emit(findings, fmt, sources, color, err=fix and any(i.path is None for i in inputs), cfg=cfg)
    if broken:
        return 2
    return 1 if cfg.fails(findings) else 0


def _lint_one(item: _Input, text: str, cfg: LintConfig) -> list[Finding]:
    from imagewise.dockerfile.lint import lint

    return lint(text, item.name, cfg)


def _dockerfile_dir(item: _Input, context: str | None) -> str | None:
    return os.path.dirname(os.path.abspath(item.path)) if item.path else context


def _fix_in_place(item: _Input, context: str | None) -> str:
    """Fix one input: a file is replaced through the atomic write (mode kept), stdin's fixed
    text goes to stdout. Returns the text to lint."""
    from imagewise.dockerfile.fix import decode, encode, fix, fix_file

    if item.path is not None:
        result = fix_file(item.path, name=item.name, dockerfile_dir=_dockerfile_dir(item, context))
        if result.changed:
            rules = ", ".join(sorted(result.rules))
            echo(f"fixed {safe(item.name)}: {len(result.edits)} edit(s) ({rules})", err=True)
    else:
        result = fix(decode(item.data), item.name, dockerfile_dir=context)
        if result.changed:
            _write_out(encode(result.fixed))  # stdin: the fixed file goes to stdout
    return encode(result.fixed).decode("utf-8", errors="replace")


def _diff(inputs: list[_Input], context: str | None) -> int:
    from imagewise.dockerfile.fix import decode, encode, fix
    from imagewise.dockerfile.parser import check_size
    from imagewise.errors import DockerfileSyntaxError

    pending, broken = False, False
    for item in inputs:
        try:
            check_size(len(item.data), item.name)
            result = fix(
                decode(item.data), item.name, dockerfile_dir=_dockerfile_dir(item, context)
            )
        except DockerfileSyntaxError as e:
            echo(f"imagewise: error: {safe(str(e))}", err=True)
            broken = True
            continue
        if result.changed:
            pending = True
            _write_out(encode(result.diff()))  # a patch: the exact bytes, to apply
    return 2 if broken else 1 if pending else 0


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
