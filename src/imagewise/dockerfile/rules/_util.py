"""Small helpers shared by the rule modules."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from imagewise.dockerfile.context import LintContext, Run
from imagewise.dockerfile.model import Instruction
from imagewise.dockerfile.rules import Hit
from imagewise.dockerfile.shell import Command
from imagewise.dockerfile.words import split_words, unquote
from imagewise.record import Record

ARCHIVE_EXTENSIONS = (
    ".tar",
    ".Z",
    ".bz2",
    ".gz",
    ".lz",
    ".lzma",
    ".tZ",
    ".tb2",
    ".tbz",
    ".tbz2",
    ".tgz",
    ".tlz",
    ".tpz",
    ".txz",
    ".xz",
)


def runs_where(ctx: LintContext, bad: Callable[[Run], bool]) -> Iterator[Hit]:
    """One hit per RUN (ONBUILD RUN included) for which ``bad(run)`` holds."""
    for run in ctx.runs():
        if bad(run):
            yield Hit(run.line)


def commands_where(ctx: LintContext, bad: Callable[[Command], bool]) -> Iterator[Hit]:
    """One hit per RUN having at least one command for which ``bad(cmd)`` holds."""
    return runs_where(ctx, lambda run: any(bad(c) for c in run.script.commands))


def each(ctx: LintContext, *keywords: str) -> Iterator[tuple[Instruction, Instruction]]:
    """``(outer, effective)`` for every instruction (ONBUILD unwrapped) with one of ``keywords``."""
    for ins in ctx.dockerfile.instructions:
        eff = ins.effective
        if eff.keyword in keywords:
            yield ins, eff


def dequote(text: str) -> str:
    """Strip surrounding quotes like hadolint's ``dropQuotes``."""
    return text.strip("\"'")


def has_args(cmd: Command, name: str | tuple[str, ...], *args: str) -> bool:
    """hadolint's ``cmdHasArgs``: the command is ``name`` and any of ``args`` is an argument."""
    names = (name,) if isinstance(name, str) else name
    return cmd.name in names and any(a in cmd.args for a in args)


def first_index(cmds: tuple[Command, ...], pred: Callable[[Command], bool]) -> int | None:
    return next((i for i, c in enumerate(cmds) if pred(c)), None)


def installed_then_cleaned(
    run: Run, install: Callable[[Command], bool], clean: Callable[[Command], bool]
) -> bool:
    """False when an install command is not followed by a clean command in the same RUN."""
    cmds = run.script.commands
    i = first_index(cmds, install)
    if i is None:
        return True
    return any(clean(c) for c in cmds[i + 1 :])


def copy_paths(ins: Instruction, escape: str = "\\") -> tuple[list[str], str]:
    """``(sources, destination)`` of a COPY/ADD, quotes removed; heredoc sources dropped."""
    if isinstance(ins.arguments, tuple):
        parts = list(ins.arguments)
    else:  # quotes removed, backslashes kept (Windows paths), as hadolint sees them
        parts = [unquote(w, "\0") for w in split_words(ins.args, "\0")]
    if not parts:
        return [], ""
    sources = [p for p in parts[:-1] if not p.startswith("<<")]
    return sources, parts[-1]


class ImageRef(Record):
    __slots__ = ("registry", "name", "tag", "digest")  # noqa: RUF023
    registry: str | None  # None: implicit Docker Hub
    name: str  # repository path without registry
    tag: str | None
    digest: str | None

    def __init__(
        self, registry: str | None, name: str, tag: str | None, digest: str | None
    ) -> None:
        self.registry = registry
        self.name = name
        self.tag = tag
        self.digest = digest


def parse_image(ref: str) -> ImageRef:
    """Split ``[registry/]name[:tag][@digest]`` the way the Docker reference grammar does."""
    ref = dequote(ref)
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    registry = None
    first, sep, rest = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, ref = first, rest
    tag = None
    last_slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > last_slash:
        ref, tag = ref[:colon], ref[colon + 1 :]
    return ImageRef(registry, ref, tag, digest)
