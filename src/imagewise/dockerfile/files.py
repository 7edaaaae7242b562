"""Linting and fixing Dockerfiles as files: reading them (or stdin) within the size limit, the
lint configuration a command line asks for, and one result per file -- findings, the text that
was linted, a fix written through the atomic write, a patch. ``imagewise lint`` is a loop over
:func:`lint_input` / :func:`preview_fix`; the service and workers call the same functions."""

from __future__ import annotations

import os

from imagewise.record import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import IO

    from imagewise.dockerfile.config import LintConfig
    from imagewise.dockerfile.fix import FixResult
    from imagewise.findings import Finding


class DockerfileInput(Record):
    """One Dockerfile as read: its name in reports (``-`` for stdin), bytes, path on disk."""

    __slots__ = ("name", "data", "path")  # noqa: RUF023
    name: str
    data: bytes  # as read (at most one byte over the size limit)
    path: str | None  # None for stdin

    def __init__(self, name: str, data: bytes, path: str | None) -> None:
        self.name = name
        self.data = data
        self.path = path

    @property
    def text(self) -> str:
        """What lint reads: bytes that are not UTF-8 replaced (fix keeps them: ``data``)."""
        return self.data.decode("utf-8", errors="replace")


class DockerfileResult(Record):
    """What linting or fixing one input gave. ``error`` is the syntax error of a Dockerfile
    that could not be read (no findings then); ``fix`` is the fix applied or previewed."""

    __slots__ = ("input", "findings", "text", "error", "fix", "warnings")  # noqa: RUF023
    _unshown = ("text",)

    def __init__(
        self,
        input: DockerfileInput,
        findings: list[Finding],
        text: str | None,
        error: str | None = None,
        fix: FixResult | None = None,
        warnings: tuple[str, ...] = (),
    ) -> None:
        self.input = input
        self.findings = findings
        self.text = text  # the text that was linted (after a fix)
        self.error = error
        self.fix = fix
        self.warnings = warnings  # e.g. a base image's registry that could not be asked


def read_dockerfiles(
    files: tuple[str, ...] | list[str], stdin: IO[bytes] | None = None
) -> list[DockerfileInput]:
    """Read each file (``-``: ``stdin``; none given: ``Dockerfile``), at most one byte past the
    size limit. A missing or unreadable file is a UsageError naming it."""
    from imagewise.dockerfile.parser import read_limited
    from imagewise.errors import UsageError

    out: list[DockerfileInput] = []
    for name in files or ("Dockerfile",):
        if name == "-":
            if stdin is None:
                raise UsageError("-: no standard input to read")
            out.append(DockerfileInput("-", read_limited(stdin), None))
            continue
        try:
            with open(name, "rb") as fh:
                out.append(DockerfileInput(name, read_limited(fh), name))
        except FileNotFoundError:
            raise UsageError(f"{name}: no such file") from None
        except OSError as e:
            raise UsageError(f"{name}: cannot read: {e.strerror}") from e
    return out


def lint_config(
    config: str | None = None,
    threshold: str | None = None,
    no_fail: bool = False,
    ignore: tuple[str, ...] = (),
    rules_files: tuple[str, ...] = (),
    context: str | None = None,
) -> LintConfig:
    """The config file (found as hadolint finds it when ``config`` is None) with a command
    line's overrides: custom rules files (checked now), build context, failure threshold
    (``none``: never fail), no-fail, ignored rules."""
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


def dockerfile_dir(item: DockerfileInput, context: str | None) -> str | None:
    """Where COPY sources of ``item`` are looked up: its directory, or the build context."""
    return os.path.dirname(os.path.abspath(item.path)) if item.path else context


def lint_input(
    item: DockerfileInput,
    cfg: LintConfig,
    *,
    fix: bool = False,
    check_bases: bool = False,
    insecure: bool = False,
) -> DockerfileResult:
    """Lint one input; with ``fix`` first apply the safe fixes: a file is rewritten through the
    atomic write (mode kept), stdin's fixed text is in ``result.fix.fixed`` for the caller.
    ``check_bases`` asks the base images' registries for deprecation records (IW113)."""
    from imagewise.dockerfile.lint import lint_dockerfile
    from imagewise.dockerfile.parser import check_size, parse
    from imagewise.errors import DockerfileSyntaxError

    applied = None
    warnings: list[str] = []
    try:
        check_size(len(item.data), item.name)
        if fix:
            applied = _fix(item, cfg.context_dir)
            from imagewise.dockerfile.fix import encode

            text = encode(applied.fixed).decode("utf-8", errors="replace")
        else:
            text = item.text
        df = parse(text, item.name)
        if check_bases:
            from imagewise.dockerfile.bases import deprecated_bases

            cfg = cfg.replace(deprecated_bases=deprecated_bases(df, insecure, warnings))
        findings = lint_dockerfile(df, cfg)
        return DockerfileResult(item, findings, text, fix=applied, warnings=tuple(warnings))
    except DockerfileSyntaxError as e:
        return DockerfileResult(item, [], None, error=str(e), fix=applied)


def _fix(item: DockerfileInput, context: str | None) -> FixResult:
    from imagewise.dockerfile.fix import decode, fix, fix_file

    if item.path is not None:
        return fix_file(item.path, name=item.name, dockerfile_dir=dockerfile_dir(item, context))
    return fix(decode(item.data), item.name, dockerfile_dir=context)


def preview_fix(item: DockerfileInput, context: str | None) -> DockerfileResult:
    """The fixes of one input without writing them (``result.fix.diff()`` is the patch)."""
    from imagewise.dockerfile.fix import decode, fix
    from imagewise.dockerfile.parser import check_size
    from imagewise.errors import DockerfileSyntaxError

    try:
        check_size(len(item.data), item.name)
        result = fix(decode(item.data), item.name, dockerfile_dir=dockerfile_dir(item, context))
    except DockerfileSyntaxError as e:
        return DockerfileResult(item, [], None, error=str(e))
    return DockerfileResult(item, [], None, fix=result)


def lint_files(
    files: tuple[str, ...] | list[str], cfg: LintConfig, *, fix: bool = False
) -> list[DockerfileResult]:
    """Lint (and with ``fix`` fix in place) each Dockerfile: one result per file."""
    return [lint_input(item, cfg, fix=fix) for item in read_dockerfiles(files)]
