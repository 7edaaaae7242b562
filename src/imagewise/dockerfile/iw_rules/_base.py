"""Shared parts of the IW rules: the rule declaration, the context, Dockerfile helpers and the
registration into the lint engine's rule table.
"""

from __future__ import annotations

import bisect
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence

from imagewise.dockerfile.model import Dockerfile, Instruction, Stage
from imagewise.dockerfile.shell import Script, parse_shell, script_from_argv
from imagewise.findings import Finding, Location, RuleInfo, Severity
from imagewise.record import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from imagewise.dockerfile.context import LintContext
    from imagewise.dockerfile.rules import Hit

#: registries trusted when no allow-list is configured (public, vendor-run registries)
DEFAULT_REGISTRIES = (
    "docker.io",
    "ghcr.io",
    "quay.io",
    "gcr.io",
    "mcr.microsoft.com",
    "registry.k8s.io",
    "public.ecr.aws",
    "registry.access.redhat.com",
    "registry.redhat.io",
    "cgr.dev",
    "docker.elastic.co",
    "nvcr.io",
    "registry.gitlab.com",
    "*.pkg.dev",
    "*.gcr.io",
)


class IWContext(Record):
    """What the IW rules may know besides the Dockerfile.

    ``context_dir`` is the build context (usually the Dockerfile's directory); None for stdin or
    when the context is unknown, which turns off the rules that look at files.
    ``allowed_registries`` are glob patterns; empty means ``default_registries`` (a policy's
    ``allowed_registries`` under ``imagewise check``; empty there allows every registry), and
    None there means :data:`DEFAULT_REGISTRIES`.
    """

    __slots__ = (
        "context_dir",
        "dockerfile_dir",
        "allowed_registries",  # noqa: RUF023
        "default_registries",
        "deprecated_bases",
    )
    context_dir: str | None
    dockerfile_dir: str | None
    allowed_registries: tuple[str, ...]
    default_registries: tuple[str, ...] | None
    deprecated_bases: tuple[tuple[str, str], ...]  # (image, summary), see LintConfig

    def __init__(
        self,
        context_dir: str | None = None,
        dockerfile_dir: str | None = None,
        allowed_registries: tuple[str, ...] = (),
        default_registries: tuple[str, ...] | None = None,
        deprecated_bases: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.context_dir = context_dir
        self.dockerfile_dir = dockerfile_dir
        self.allowed_registries = allowed_registries
        self.default_registries = default_registries
        self.deprecated_bases = deprecated_bases


Check = Callable[[Dockerfile, IWContext], Iterable[Finding]]


class IWRule(Record):
    """``lint_when(ctx)``, when declared, says whether ``imagewise lint`` runs the rule in that
    context (IW102 leaves a configured allow-list to DL3026); :func:`check` always runs it."""

    __slots__ = ("info", "check", "lint_when")  # noqa: RUF023
    _uncompared = ("check", "lint_when")
    info: RuleInfo
    check: Check
    lint_when: Callable[[IWContext], bool] | None

    def __init__(
        self, info: RuleInfo, check: Check, lint_when: Callable[[IWContext], bool] | None = None
    ) -> None:
        self.info = info
        self.check = check
        self.lint_when = lint_when

    @property
    def id(self) -> str:
        return self.info.id


IW_RULES: dict[str, IWRule] = {}


def rule(
    id: str,
    severity: Severity,
    title: str,
    area: str,
    rationale: str,
    fix: str,
    *,
    fixer: str = "",
    lint_when: Callable[[IWContext], bool] | None = None,
) -> Callable[[Check], Check]:
    """Declare an IW rule. ``fixer`` names its autofix (``"module:function"``, see
    :mod:`imagewise.dockerfile.fix`); ``lint_when`` see :class:`IWRule`."""

    def register(fn: Check) -> Check:
        info = RuleInfo(id, severity, title, rationale, fix, area, "imagewise", "dockerfile", fixer)
        IW_RULES[id] = IWRule(info, fn, lint_when)
        return fn

    return register


def check(
    df: Dockerfile, ctx: IWContext | None = None, only: Sequence[str] | None = None
) -> list[Finding]:
    """Run every IW rule (or those in ``only``) over ``df``."""
    ctx = ctx or IWContext()
    out: list[Finding] = []
    for rid, r in IW_RULES.items():
        if only is None or rid in only:
            out.extend(r.check(df, ctx))
    return out


# -- helpers --------------------------------------------------------------------------------------


def finding(
    rid: str, df: Dockerfile, ins: Instruction | None, message: str, fix: str = ""
) -> Finding:
    info = IW_RULES[rid].info
    if ins is None:
        loc = Location(file=df.filename, line=1, column=1, end_line=1)
    else:
        loc = Location(file=df.filename, line=ins.start_line, column=1, end_line=ins.end_line)
    return Finding(rid, info.severity, info.title, message, loc, fix or info.fix)


def script_of(ins: Instruction) -> Script:
    """The shell commands a RUN runs (exec form: its argv as one command)."""
    ins = ins.effective
    script: Script | None = ins.script_memo
    if script is None:
        if ins.is_exec_form:  # no shell: the argv is the command (the parser is not even loaded)
            script = script_from_argv(tuple(ins.arguments))
        else:
            script = parse_shell(ins.shell_script)
        ins.script_memo = script  # a cache on the instruction, not part of its value
    return script


def runs(stage: Stage) -> Iterator[tuple[Instruction, Script]]:
    for ins in stage.instructions:
        if ins.keyword == "RUN":
            yield ins, script_of(ins)


_WINDOWS_SHELLS = ("powershell", "pwsh", "cmd")


def is_windows(df: Dockerfile) -> bool:
    if df.escape == "`":
        return True
    for ins in df.instructions:
        if (
            ins.keyword == "SHELL"
            and ins.is_exec_form
            and ins.arguments
            and os.path.basename(ins.arguments[0]).lower().split(".")[0] in _WINDOWS_SHELLS
        ):
            return True
    return any(
        re.search(r"windows|nanoserver|servercore", s.base_image, re.IGNORECASE) for s in df.stages
    )


POSIX_SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh", "mksh", "busybox"})


def posix_shell_at(df: Dockerfile, stage: Stage, line: int) -> bool:
    """Whether RUNs at ``line`` of ``stage`` run in a POSIX shell (no SHELL to pwsh/cmd)."""
    table = _stage_shells(df)
    for st in stage_chain(df, stage):
        shells = table.get(st.index, [])
        if st is stage:
            shells = shells[: bisect.bisect_left(shells, line, key=lambda i: i.start_line)]
        if shells:
            argv = shells[-1].arguments
            if not isinstance(argv, tuple) or not argv:
                return False
            return os.path.basename(argv[0]).lower() in POSIX_SHELLS
    return True


_shells_of: tuple[Dockerfile | None, dict[int, list[Instruction]]] = (None, {})


def _stage_shells(df: Dockerfile) -> dict[int, list[Instruction]]:
    """The SHELL instructions of each stage of ``df`` (by index, in order), found once per
    Dockerfile: rules ask for every RUN, and a scan each time made lint quadratic."""
    global _shells_of
    known, table = _shells_of
    if known is not df:
        table = {}
        for st in df.stages:
            table[st.index] = [i for i in st.instructions if i.keyword == "SHELL"]
        _shells_of = (df, table)
    return table


def stage_chain(df: Dockerfile, stage: Stage) -> list[Stage]:
    """``stage`` and the earlier stages it is built FROM (nearest first)."""
    chain = [stage]
    seen = {stage.index}
    cur = stage
    while True:
        parent = df.stage_by_name(cur.base_image)
        if parent is None or parent.index in seen or parent.index >= cur.index:
            return chain
        chain.append(parent)
        seen.add(parent.index)
        cur = parent


def split_image(ref: str) -> tuple[str, str, str, str]:
    """``registry, repository, tag, digest`` of an image reference (docker.io when implicit)."""
    digest = ""
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    first, _, rest = ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = "docker.io", ref
    tag = ""
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path, tag = path.rsplit(":", 1)
    return registry, path, tag, digest


# -- registration into the lint rule table --------------------------------------------------------


def context_from_lint(lint_ctx: LintContext) -> IWContext:
    """An :class:`IWContext` for the lint engine's context (config + Dockerfile path)."""
    df = lint_ctx.dockerfile
    cfg = lint_ctx.config
    dockerfile_dir = None
    if df.filename not in ("", "-") and os.path.isfile(df.filename):
        dockerfile_dir = os.path.dirname(os.path.abspath(df.filename))
    context_dir = cfg.context_dir or dockerfile_dir
    return IWContext(
        context_dir=context_dir,
        dockerfile_dir=dockerfile_dir,
        allowed_registries=tuple(cfg.trusted_registries),
        default_registries=cfg.default_registries,
        deprecated_bases=cfg.deprecated_bases,
    )


def _adapter(r: IWRule) -> Callable[[LintContext], Iterator[Hit]]:
    from imagewise.dockerfile.rules import Hit

    def run(lint_ctx: LintContext) -> Iterator[Hit]:
        ctx = context_from_lint(lint_ctx)
        if r.lint_when is not None and not r.lint_when(ctx):
            return
        for f in r.check(lint_ctx.dockerfile, ctx):
            yield Hit(f.location.line, f.message, f.location.column or 1, f.location.end_line)

    return run


def register_all() -> None:
    """Register every IW rule into the lint rule table (once)."""
    try:
        from imagewise.dockerfile.rules import REGISTRY, Rule, register
    except ModuleNotFoundError as e:  # the table is optional for the IW rules themselves
        if e.name != "imagewise.dockerfile.rules":
            raise
        return

    for r in IW_RULES.values():
        if r.id not in REGISTRY:
            register(Rule(r.info, _adapter(r)))
