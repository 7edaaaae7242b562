"""Layer rules and the package-manager facts they share.

IW105 consecutive RUNs that belong in one layer, IW111 package caches removed in a later RUN.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from imagewise.dockerfile.iw_rules._base import (
    IWContext,
    finding,
    is_windows,
    posix_shell_at,
    rule,
    script_of,
)
from imagewise.dockerfile.model import Dockerfile, Instruction, Stage
from imagewise.dockerfile.shell import Script
from imagewise.findings import Finding, Severity

# -- layers and caches ----------------------------------------------------------------------------

INSTALL_VERBS = {
    "apt-get": ("install",),
    "apt": ("install",),
    "apk": ("add",),
    "yum": ("install",),
    "dnf": ("install",),
    "microdnf": ("install",),
    "zypper": ("install", "in"),
}
_UPDATE = {
    "apt-get": ("update",),
    "apt": ("update",),
    "apk": ("update",),
    "yum": ("makecache",),
    "dnf": ("makecache",),
    "zypper": ("refresh", "ref"),
}
_STATE_CHANGING = frozenset(
    {
        "cd",
        "pushd",
        "popd",
        "set",
        "export",
        "exit",
        "source",
        ".",
        "umask",
        "alias",
        "trap",
        "shopt",
        "ulimit",
        "exec",
        "unset",
        "declare",
        "typeset",
        "readonly",
        "local",
        "eval",
        "return",
    }
)
_SHELL_META = re.compile(r"(?<![&|])&(?![&>])|^\s*[A-Za-z_][A-Za-z0-9_]*=\S*\s*$", re.MULTILINE)

#: what a cache cleanup removes, per package manager
_CACHE_PATHS = {
    "apt-get": ("/var/lib/apt/lists", "/var/cache/apt"),
    "apk": ("/var/cache/apk",),
    "yum": ("/var/cache/yum",),
    "dnf": ("/var/cache/dnf",),
    "pip": ("/root/.cache/pip", "/root/.cache", "~/.cache/pip", "~/.cache"),
    "npm": ("/root/.npm", "~/.npm"),
}


def installs(script: Script) -> set[str]:
    """Package managers that install packages in ``script`` (apt is counted as apt-get)."""
    out: set[str] = set()
    for c in script.commands:
        name = os.path.basename(c.name)
        if name in INSTALL_VERBS and c.subcommand in INSTALL_VERBS[name]:
            out.add("apt-get" if name == "apt" else name)
        elif (
            name in ("pip", "pip3")
            and c.subcommand == "install"
            or name.startswith("python")
            and "pip" in c.args
            and "install" in c.args
        ):
            out.add("pip")
        elif name == "npm" and c.subcommand in ("install", "i", "ci"):
            out.add("npm")
    return out


def cache_cleanups(script: Script) -> set[str]:
    """Package managers whose download cache ``script`` removes."""
    out: set[str] = set()
    for c in script.commands:
        name = os.path.basename(c.name)
        if name in ("apt-get", "apt") and c.subcommand in ("clean", "distclean", "dist-clean"):
            out.add("apt-get")
        elif name in ("yum", "dnf") and c.subcommand == "clean":
            out.add(name)
        elif name == "npm" and c.subcommand == "cache":
            out.add("npm")
        elif name in ("pip", "pip3") and c.subcommand == "cache":
            out.add("pip")
        elif name == "rm":
            for target in c.args_no_flags:
                for pm, paths in _CACHE_PATHS.items():
                    if any(target.rstrip("/*") == p or target.startswith(p + "/") for p in paths):
                        out.add(pm)
    return out


def _is_update_only(script: Script) -> bool:
    cmds = [c for c in script.commands if c.name != "set"]
    return bool(cmds) and all(
        os.path.basename(c.name) in _UPDATE and c.subcommand in _UPDATE[os.path.basename(c.name)]
        for c in cmds
    )


def _is_package_only(script: Script) -> bool:
    """Only package-manager steps: index updates, installs, cache cleanups (and ``set``)."""
    for c in script.commands:
        name = os.path.basename(c.name)
        if name == "set" or (
            name in INSTALL_VERBS
            and (c.subcommand in INSTALL_VERBS[name] + _UPDATE.get(name, ()) + ("clean",))
        ):
            continue
        if name == "rm" and cache_cleanups(Script(c.name, (c,), False, True)):
            continue
        return False
    return bool(script.commands)


def _is_removal_only(script: Script) -> bool:
    cmds = [c for c in script.commands if c.name != "set"]
    return bool(cmds) and all(
        c.name in ("rm", "apk", "apt-get", "yum", "dnf")
        and (c.name == "rm" or c.subcommand in ("del", "purge", "remove", "autoremove", "clean"))
        for c in cmds
    )


def mergeable(a: Instruction, b: Instruction) -> bool:
    """Whether two RUNs can be joined with ``&&`` without changing what they do."""
    if a.keyword != "RUN" or b.keyword != "RUN" or a.inner or b.inner:
        return False
    if a.is_exec_form or b.is_exec_form or a.heredocs or b.heredocs:
        return False
    if a.flag_list != b.flag_list:
        return False
    if re.search(r"(^|\s)#", a.original.splitlines()[-1]):
        return False  # a trailing comment: nothing can be appended to that line
    sa = script_of(a)
    if not sa.parsed or not script_of(b).parsed:
        return False
    if any(c.name in _STATE_CHANGING and not c.nested for c in sa.commands):
        return False
    if _SHELL_META.search(a.shell_script) or _SHELL_META.search(b.shell_script):
        return False
    # `A && B1 || B2` would swallow a failure of A: B must be one &&-chain
    return not _list_operators(b.shell_script) & {"||", ";", "\n"}


def _list_operators(script: str) -> set[str]:
    """The list operators (``||``, ``;``, newline) used outside quotes and substitutions."""
    ops: set[str] = set()
    quote, depth, i = "", 0, 0
    text = script.replace("\\\n", " ")
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = ""
        elif c == "\\":
            i += 1
        elif c in "'\"`":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth = max(depth - 1, 0)
        elif depth == 0 and text.startswith("||", i):
            ops.add("||")
            i += 1
        elif depth == 0 and c in ";\n" and text[i + 1 : i + 2] != ";":
            ops.add("\n" if c == "\n" else ";")
        i += 1
    return ops


def consecutive_runs(stage: Stage) -> Iterator[tuple[Instruction, Instruction]]:
    prev: Instruction | None = None
    for ins in stage.instructions:
        if ins.keyword == "RUN" and prev is not None and prev.keyword == "RUN":
            yield prev, ins
        prev = ins


def joinable(a: Instruction, b: Instruction) -> bool:
    """Two plain shell-form RUNs with the same flags (what IW105 looks at)."""
    if a.keyword != "RUN" or b.keyword != "RUN" or a.inner or b.inner:
        return False
    if a.is_exec_form or b.is_exec_form or a.heredocs or b.heredocs:
        return False
    return a.flag_list == b.flag_list


def merge_reason(a: Instruction, b: Instruction) -> str | None:
    """Why the RUN ``b`` belongs in the layer of the RUN ``a`` right before it, or None.
    (Whether a fixer may join them without changing behaviour is :func:`mergeable`.)"""
    if not joinable(a, b):
        return None
    sa, sb = script_of(a), script_of(b)
    ia, ib = installs(sa), installs(sb)
    at = f"line {a.start_line}"
    if _is_update_only(sa) and ib:
        return (
            f"installs from the package index that the RUN at {at} updates alone; in "
            "separate layers the cached update goes stale"
        )
    if (
        ia
        and ia == ib
        and ia <= set(INSTALL_VERBS) | {"apt-get"}
        and _is_package_only(sa)
        and _is_package_only(sb)
    ):
        return f"installs packages with {'/'.join(sorted(ia))} like the RUN at {at}"
    if _is_removal_only(sb) and not cache_cleanups(sb):
        return (
            f"only removes files; deleting in a later layer than the RUN at {at} does not "
            "make the image smaller"
        )
    if cache_cleanups(sb) and (ia & cache_cleanups(sb)) and not ib:
        return f"cleans the package cache of the RUN at {at} in a separate layer"
    return None


@rule(
    "IW105",
    Severity.INFO,
    "Consecutive RUNs that should be one layer",
    "performance",
    "Each RUN is a layer. An index update alone, installs split over several RUNs, or a "
    "cleanup in its own RUN leave stale caches and deleted files in earlier layers, where "
    "they still take space and cache stale package indexes.",
    "Join the RUNs with `&&` (`imagewise lint --fix` does it when it is safe).",
    fixer="imagewise.dockerfile.fix:_merges",
)
def _merge_runs(df: Dockerfile, ctx: IWContext) -> Iterator[Finding]:
    if is_windows(df):
        return
    for stage in df.stages:
        for a, b in consecutive_runs(stage):
            why = merge_reason(a, b) if posix_shell_at(df, stage, b.start_line) else None
            if why:
                yield finding("IW105", df, b, f"This RUN {why}; merge the two")


@rule(
    "IW111",
    Severity.WARNING,
    "Package cache removed in a later RUN than the install",
    "performance",
    "Files removed in a later layer still ship in the layer that created them. A package "
    "cache only stays out of the image when it is removed in the same RUN as the install "
    "(or never written: `apk add --no-cache`, `pip --no-cache-dir`, a cache mount).",
    "Move the cleanup into the RUN that installs (`apt-get install ... && rm -rf "
    "/var/lib/apt/lists/*`), or use a `RUN --mount=type=cache` for the cache directory.",
)
def _cache_cleanup(df: Dockerfile, ctx: IWContext) -> Iterator[Finding]:
    for stage in df.stages:
        filled: dict[str, int] = {}
        prev_run: Instruction | None = None
        for ins in stage.instructions:
            if ins.keyword != "RUN":
                prev_run = None
                continue
            s = script_of(ins)
            late = sorted(pm for pm in cache_cleanups(s) - installs(s) if pm in filled)
            merge_fixes = prev_run is not None and merge_reason(prev_run, ins) is not None
            if late and not merge_fixes:
                yield finding(
                    "IW111",
                    df,
                    ins,
                    f"This RUN removes the {'/'.join(late)} cache filled by the RUN "
                    f"at line {filled[late[0]]}; the files stay in that layer",
                )
            for pm in installs(s):
                filled[pm] = ins.start_line
            prev_run = ins
