"""hadolint rules that follow state across instructions and stages."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator

from imagewise.dockerfile.context import LintContext
from imagewise.dockerfile.rules import Hit, hadolint
from imagewise.dockerfile.rules._util import (
    ARCHIVE_EXTENSIONS,
    copy_paths,
    dequote,
    each,
    parse_image,
)
from imagewise.dockerfile.shell import Command
from imagewise.findings import Severity as S


def _is_root(user: str) -> bool:
    user = dequote(user.strip())
    return user in ("root", "0") or user.startswith(("root:", "0:"))


@hadolint(
    "DL3002",
    S.WARNING,
    "Last USER should not be root",
    area="security",
    rationale="A container running as root turns any escape into a host root compromise.",
    fix="Add `USER <non-root uid>` at the end of the stage.",
)
def dl3002(ctx: LintContext) -> Iterator[Hit]:
    last_root: dict[int, int] = {}
    for outer, ins in each(ctx, "USER"):
        if _is_root(ins.args):
            last_root[outer.stage_index] = outer.start_line
        else:
            last_root.pop(outer.stage_index, None)
    for line in sorted(last_root.values()):
        yield Hit(line)


@hadolint(
    "DL3006",
    S.WARNING,
    "Always tag the version of an image explicitly",
    rationale="An untagged image means `latest`, which changes under you.",
    fix="Use `image:tag` (better: `image:tag@sha256:...`).",
)
def dl3006(ctx: LintContext) -> Iterator[Hit]:
    aliases: set[str] = set()
    for stage in ctx.dockerfile.stages:
        raw = dequote(stage.base_image_raw)
        ref = parse_image(raw)
        if not (
            raw.lower() == "scratch"
            or ref.digest
            or ref.tag
            or "$" in raw
            or raw.lower() in aliases
        ):
            yield Hit(stage.from_line)
        if stage.alias:
            aliases.add(stage.alias.lower())


@hadolint(
    "DL3007",
    S.WARNING,
    "Using latest is prone to errors if the image will ever update. "
    "Pin the version explicitly to a release tag",
    rationale="`latest` moves; builds stop being reproducible.",
    fix="Use a release tag, and a digest.",
)
def dl3007(ctx: LintContext) -> Iterator[Hit]:
    for stage in ctx.dockerfile.stages:
        ref = parse_image(stage.base_image_raw)
        if ref.tag == "latest" and not ref.digest:
            yield Hit(stage.from_line)


def _basename(path: str) -> str:
    return dequote(path).replace("\\", "/").rsplit("/", 1)[-1]


def _extracts(cmd: Command, archive: str) -> bool:
    is_tar = cmd.name == "tar" and any(
        a in ("--extract", "--get") or (a.startswith("-") and not a.startswith("--") and "x" in a)
        for a in cmd.args
    )
    unzip = cmd.name in (
        "unzip",
        "gunzip",
        "bunzip2",
        "unlzma",
        "unxz",
        "zgz",
        "uncompress",
        "zcat",
        "gzcat",
    )
    return (is_tar or unzip) and archive in [_basename(a) for a in cmd.args_no_flags]


@hadolint(
    "DL3010",
    S.INFO,
    "Use ADD for extracting archives into an image",
    rationale="COPY then extract keeps the archive in a layer; ADD extracts in one step.",
    fix="Use `ADD archive.tar.gz /dest/`.",
)
def dl3010(ctx: LintContext) -> Iterator[Hit]:
    copied: list[tuple[int, str, int]] = []  # (line, basename, stage)
    flagged: set[int] = set()
    runs = {r.outer.start_line: r for r in ctx.runs()}
    for ins in ctx.dockerfile.instructions:
        eff = ins.effective
        if eff.keyword == "COPY" and eff.flag("--from") is None:
            sources, dest = copy_paths(eff, ctx.dockerfile.escape)
            if dequote(dest).endswith(ARCHIVE_EXTENSIONS):
                copied.append((ins.start_line, _basename(dest), ins.stage_index))
            else:
                copied += [
                    (ins.start_line, _basename(s), ins.stage_index)
                    for s in sources
                    if dequote(s).endswith(ARCHIVE_EXTENSIONS)
                ]
        elif eff.keyword == "RUN" and ins.start_line in runs:
            cmds = runs[ins.start_line].script.commands
            for line, name, stage in copied:
                if stage == ins.stage_index and any(_extracts(c, name) for c in cmds):
                    flagged.add(line)
    for line in sorted(flagged):
        yield Hit(line)


def _repeated(ctx: LintContext, keyword: str) -> Iterator[Hit]:
    seen: set[int] = set()
    for outer, _ in each(ctx, keyword):
        if outer.keyword == "ONBUILD":
            continue
        if outer.stage_index in seen:
            yield Hit(outer.start_line)
        seen.add(outer.stage_index)


@hadolint(
    "DL3012",
    S.ERROR,
    "Multiple `HEALTHCHECK` instructions",
    rationale="Only the last HEALTHCHECK takes effect.",
    fix="Keep one HEALTHCHECK.",
)
def dl3012(ctx: LintContext) -> Iterator[Hit]:
    return _repeated(ctx, "HEALTHCHECK")


@hadolint(
    "DL4003",
    S.WARNING,
    "Multiple `CMD` instructions found",
    rationale="Only the last CMD takes effect.",
    fix="Keep one CMD per stage.",
)
def dl4003(ctx: LintContext) -> Iterator[Hit]:
    return _repeated(ctx, "CMD")


@hadolint(
    "DL4004",
    S.ERROR,
    "Multiple `ENTRYPOINT` instructions found",
    rationale="Only the last ENTRYPOINT takes effect.",
    fix="Keep one ENTRYPOINT per stage.",
)
def dl4004(ctx: LintContext) -> Iterator[Hit]:
    return _repeated(ctx, "ENTRYPOINT")


def _is_stage_ref(ctx: LintContext, value: str, before: int) -> bool:
    """``--from`` names a stage defined before stage index ``before`` (alias or number)."""
    if value.isdigit():
        return int(value) < before
    return any(s.alias and s.alias.lower() == value.lower() for s in ctx.dockerfile.stages[:before])


@hadolint(
    "DL3022",
    S.WARNING,
    "`COPY --from` should reference a previously defined `FROM` alias",
    rationale="A --from that is not an earlier stage is pulled as an image.",
    fix="Define the stage before copying from it.",
)
def dl3022(ctx: LintContext) -> Iterator[Hit]:
    for outer, ins in each(ctx, "COPY"):
        src = ins.flag("--from")
        if src is None or "$" in src or any(c in src for c in ":/@."):
            continue
        if not _is_stage_ref(ctx, src, max(outer.stage_index, 0)):
            yield Hit(outer.start_line)


@hadolint(
    "DL3023",
    S.ERROR,
    "`COPY --from` cannot reference its own `FROM` alias",
    rationale="A stage cannot copy from itself.",
    fix="Copy from another stage.",
)
def dl3023(ctx: LintContext) -> Iterator[Hit]:
    for outer, ins in each(ctx, "COPY"):
        src = ins.flag("--from")
        stage = ctx.stage(outer.stage_index)
        if src and stage is not None and stage.alias and src.lower() == stage.alias.lower():
            yield Hit(outer.start_line)


@hadolint(
    "DL3024",
    S.ERROR,
    "`FROM` aliases (stage names) must be unique",
    rationale="A duplicate stage name makes references ambiguous.",
    fix="Rename one of the stages.",
)
def dl3024(ctx: LintContext) -> Iterator[Hit]:
    seen: set[str] = set()
    for stage in ctx.dockerfile.stages:
        if stage.alias is None:
            continue
        if stage.alias.lower() in seen:
            yield Hit(stage.from_line)
        seen.add(stage.alias.lower())


def _registry_allowed(ref: str, allowed: tuple[str, ...]) -> bool:
    image = parse_image(ref)
    if image.registry is None:
        if image.name == "scratch":
            return True
        return "docker.io" in allowed or "hub.docker.com" in allowed
    return any(fnmatch.fnmatchcase(image.registry, pattern) for pattern in allowed)


@hadolint(
    "DL3026",
    S.ERROR,
    "Use only an allowed registry in the `FROM image`",
    area="security",
    rationale="Images from unvetted registries are a supply-chain risk.",
    fix="Pull the base image from a trusted registry (configure trustedRegistries).",
)
def dl3026(ctx: LintContext) -> Iterator[Hit]:
    allowed = ctx.config.trusted_registries
    if not allowed:
        return
    for stage in ctx.dockerfile.stages:
        raw = dequote(stage.base_image_raw)
        if _is_stage_ref(ctx, raw, stage.index) or "$" in raw:
            continue
        if not _registry_allowed(stage.base_image, allowed):
            yield Hit(stage.from_line)
    for run in ctx.runs():
        for mount in run.mounts():
            src = mount.get("from")
            if (
                src
                and not _is_stage_ref(ctx, src, len(ctx.dockerfile.stages))
                and "$" not in src
                and not _registry_allowed(src, allowed)
            ):
                yield Hit(run.line)
    for outer, ins in each(ctx, "COPY"):
        src = ins.flag("--from")
        if (
            src
            and not src.isdigit()
            and "$" not in src
            and src.lower() not in ctx.aliases
            and not _registry_allowed(src, allowed)
        ):
            yield Hit(outer.start_line)


def _relative(dest: str) -> bool:
    d = dequote(dest)
    if d.startswith(("/", "$")):
        return False
    return not (d[1:].startswith(":\\") or d[1:].startswith(":/"))


@hadolint(
    "DL3045",
    S.WARNING,
    "`COPY` to a relative destination without `WORKDIR` set",
    rationale="The destination then depends on the base image's WORKDIR.",
    fix="Set WORKDIR first, or use an absolute destination.",
)
def dl3045(ctx: LintContext) -> Iterator[Hit]:
    has_workdir: dict[int, bool] = {}
    for ins in ctx.dockerfile.instructions:
        eff = ins.effective
        if ins.keyword == "FROM":
            stage = ctx.stage(ins.stage_index)
            parent = ctx.parent(stage) if stage is not None else None
            has_workdir[ins.stage_index] = parent is not None and has_workdir.get(
                parent.index, False
            )
        elif eff.keyword == "WORKDIR":
            has_workdir[ins.stage_index] = True
        elif eff.keyword == "COPY" and not has_workdir.get(ins.stage_index, False):
            _, dest = copy_paths(eff, ctx.dockerfile.escape)
            if dest and _relative(dest):
                yield Hit(ins.start_line)


@hadolint(
    "DL3057",
    S.IGNORE,
    "`HEALTHCHECK` instruction missing",
    rationale="Without a health check orchestrators cannot tell a hung container.",
    fix="Add `HEALTHCHECK CMD ...` (or `HEALTHCHECK NONE` to opt out explicitly).",
)
def dl3057(ctx: LintContext) -> Iterator[Hit]:
    stages = ctx.dockerfile.stages
    if not stages:
        return
    final = stages[-1]
    for stage in ctx.lineage(final):
        if any(
            i.effective.keyword == "HEALTHCHECK" and i.keyword != "ONBUILD"
            for i in stage.instructions
        ):
            return
    yield Hit(final.from_line)


@hadolint(
    "DL3059",
    S.INFO,
    "Multiple consecutive `RUN` instructions. Consider consolidation",
    area="performance",
    rationale="Every RUN is a layer; related single commands belong in one RUN.",
    fix="Join the commands with `&&` in one RUN.",
)
def dl3059(ctx: LintContext) -> Iterator[Hit]:
    runs = {r.outer.start_line: r for r in ctx.runs() if r.outer.keyword == "RUN"}
    prev: tuple[tuple[tuple[str, str], ...], int] | None = None
    for ins in ctx.dockerfile.instructions:
        run = runs.get(ins.start_line)
        if run is None or ins.keyword != "RUN":
            prev = None
            continue
        # a heredoc RUN is a script on purpose: never suggest merging it (hadolint issue #805)
        count = 99 if ins.heredocs else len(run.script.commands)
        flags = tuple(sorted(ins.flag_list))
        if prev is not None and prev[0] == flags and count <= 1 and prev[1] <= 1:
            yield Hit(ins.start_line)
        prev = (flags, count)


@hadolint(
    "DL4001",
    S.WARNING,
    "Either use Wget or Curl but not both",
    rationale="Two download tools in one image is redundant weight.",
    fix="Pick one of curl or wget.",
)
def dl4001(ctx: LintContext) -> Iterator[Hit]:
    used: dict[int, set[str]] = {}
    for run in ctx.runs():
        names = {c.name for c in run.script.commands} & {"curl", "wget"}
        if not names:
            continue
        seen = used.setdefault(run.stage_index, set())
        seen |= names
        if len(seen) >= 2:
            yield Hit(run.line)


def _has_pipefail(shell: tuple[str, ...]) -> bool:
    name = shell[0].rsplit("/", 1)[-1] if shell else ""
    if name not in ("bash", "zsh", "ash"):
        return False
    args = list(shell[1:])
    has_o = any(a.startswith("-") and not a.startswith("--") and "o" in a for a in args)
    return has_o and "pipefail" in args


def _script_sets_pipefail(script: str) -> bool:
    return bool(re.search(r"set\s+(-\w*o\s+|-o\s+)pipefail|set\s+-\w*o\s*pipefail", script))


@hadolint(
    "DL4006",
    S.WARNING,
    "Set the SHELL option -o pipefail before RUN with a pipe in it",
    rationale="Without pipefail, `a | b` succeeds when a fails, hiding build errors.",
    fix='Add `SHELL ["/bin/bash", "-o", "pipefail", "-c"]` before the RUN.',
)
def dl4006(ctx: LintContext) -> Iterator[Hit]:
    for run in ctx.runs():
        if not run.script.has_pipe or run.ins.is_exec_form:
            continue
        if ctx.is_non_posix(run.outer):
            continue
        if run.ins.heredocs and _script_sets_pipefail(run.script.text):
            continue  # the heredoc script sets pipefail itself (hadolint issue #806)
        if not _has_pipefail(ctx.shell_at(run.outer)):
            yield Hit(run.line)
