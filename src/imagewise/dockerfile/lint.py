"""The lint engine: Dockerfile text -> findings, through the rule table.

``lint(text, filename, config) -> list[Finding]`` parses (raising ``DockerfileSyntaxError`` for
bad input), runs every registered rule (:mod:`imagewise.dockerfile.rules`) that the config does
not ignore, applies severity overrides and the ignore pragmas (:mod:`.pragmas`), drops findings
whose severity is ``ignore`` (unless ``keep_ignored``), and returns them sorted by line.
"""

from __future__ import annotations

from collections.abc import Iterable

from imagewise.dockerfile.config import LintConfig
from imagewise.dockerfile.context import LintContext
from imagewise.dockerfile.model import Dockerfile
from imagewise.dockerfile.parser import parse
from imagewise.dockerfile.pragmas import parse_pragmas
from imagewise.dockerfile.rules import Rule, all_rules
from imagewise.findings import Finding, Location, Severity

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from pathlib import Path


def lint(
    text: str,
    filename: str = "Dockerfile",
    config: LintConfig | None = None,
    *,
    keep_ignored: bool = False,
    only: Iterable[str] | None = None,
) -> list[Finding]:
    """Lint Dockerfile ``text``. ``only`` restricts the run to the given rule ids."""
    return lint_dockerfile(parse(text, filename), config, keep_ignored=keep_ignored, only=only)


def lint_file(path: str | Path, config: LintConfig | None = None) -> list[Finding]:
    from pathlib import Path

    from imagewise.errors import UsageError

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise UsageError(f"{p}: cannot read: {e.strerror}") from e
    return lint(text, str(path), config)


def lint_dockerfile(
    df: Dockerfile,
    config: LintConfig | None = None,
    *,
    keep_ignored: bool = False,
    only: Iterable[str] | None = None,
) -> list[Finding]:
    cfg = config if config is not None else LintConfig()
    wanted = {r.upper() for r in only} if only is not None else None
    ctx = LintContext(df, cfg)
    pragmas = parse_pragmas(df) if not cfg.disable_ignore_pragma else None
    out: list[Finding] = []
    seen: set[tuple[str, int, str]] = set()
    builtin = all_rules()
    ends = {i.start_line: i.end_line for i in df.instructions}  # one look-up per finding
    clash = {r.id for r in builtin} & {r.id for r in cfg.custom_rules}
    if clash:
        from imagewise.errors import ConfigError

        raise ConfigError(f"custom rule id(s) {', '.join(sorted(clash))} clash with built-in rules")
    for rule in [*builtin, *cfg.custom_rules]:
        if rule.id in cfg.ignored or (wanted is not None and rule.id not in wanted):
            continue
        severity = cfg.severity_for(rule.id, rule.info.severity)
        if severity == Severity.IGNORE and not keep_ignored:
            continue
        for hit in rule.check(ctx):
            if pragmas is not None and pragmas.ignores(rule.id, hit.line):
                continue
            key = (rule.id, hit.line, hit.message)
            if key in seen:
                continue
            seen.add(key)
            out.append(
                _finding(
                    rule,
                    severity,
                    hit.line,
                    hit.message,
                    hit.column,
                    hit.end_line or ends.get(hit.line, hit.line),
                    df,
                )
            )
    out.sort(key=lambda f: (f.location.line, f.rule))
    return out


def _finding(
    rule: Rule,
    severity: Severity,
    line: int,
    message: str,
    column: int,
    end_line: int,
    df: Dockerfile,
) -> Finding:
    return Finding(
        rule=rule.id,
        severity=severity,
        title=rule.info.title,
        message=message or rule.info.title,
        location=Location(file=df.filename, line=line, column=column, end_line=end_line),
        fix=rule.info.fix,
    )
