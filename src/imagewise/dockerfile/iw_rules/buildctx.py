"""Build-context rules (they need the context directory).

IW107 .dockerignore present and excluding .git, node_modules and secrets; IW112 `npm ci` when a
lockfile is beside the Dockerfile.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Iterator

from imagewise.dockerfile.iw_rules._base import IWContext, finding, rule, script_of
from imagewise.dockerfile.model import Dockerfile, Instruction
from imagewise.dockerfile.shell import Command, Script
from imagewise.findings import Finding, Severity

# -- build context --------------------------------------------------------------------------------

_SECRET_FILES = (
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "id_rsa*",
    "id_ed25519*",
    "id_ecdsa*",
    ".npmrc",
    ".pypirc",
    ".netrc",
    "credentials*.json",
    "*.p12",
    "*.pfx",
    ".aws",
    ".ssh",
    "secrets",
    "secrets.*",
    "*.kdbx",
    ".git-credentials",
    ".dockercfg",
    "*.jks",
    "*.keystore",
)


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    p = pattern.strip().lstrip("/")
    p = os.path.normpath(p).replace(os.sep, "/") if p else p
    out, i = [], 0
    while i < len(p):
        if p.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif p.startswith("**", i):
            out.append(".*")
            i += 2
        elif p[i] == "*":
            out.append("[^/]*")
            i += 1
        elif p[i] == "?":
            out.append("[^/]")
            i += 1
        elif p[i] == "[":
            j = p.find("]", i)
            out.append(p[i : j + 1] if j > i else re.escape(p[i]))
            i = j + 1 if j > i else i + 1
        else:
            out.append(re.escape(p[i]))
            i += 1
    try:
        return re.compile("".join(out) + "(?:/.*)?$")
    except re.error:
        return re.compile(re.escape(p) + "(?:/.*)?$")


def dockerignore_excludes(lines: Iterable[str], path: str) -> bool:
    """Whether ``path`` (relative to the context) is excluded by .dockerignore ``lines``."""
    excluded = False
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        if negate:
            line = line[1:].strip()
        if _ignore_regex(line).match(path):
            excluded = not negate
    return excluded


def _wholesale_copy(df: Dockerfile, context: str) -> Instruction | None:
    """The first COPY/ADD that takes a directory or a glob from the context (BuildKit only
    sends what the sources name, so single files need no .dockerignore)."""
    for ins in df.instructions:
        eff = ins.effective
        if eff.keyword not in ("COPY", "ADD") or eff.flag("--from") is not None:
            continue
        words = list(eff.arguments) if eff.is_exec_form else eff.args.split()
        for src in words[:-1]:
            if src.startswith("<<") or re.match(r"^[a-z][a-z0-9+.-]*://", src, re.IGNORECASE):
                continue
            if (
                any(c in src for c in "*?[")
                or "$" in src
                or os.path.isdir(os.path.join(context, src))
                or src.rstrip("/") in (".", "")
            ):
                return ins
    return None


def _is_js(df: Dockerfile, context: str) -> bool:
    if os.path.exists(os.path.join(context, "package.json")):
        return True
    return any(
        script_of(i).uses("npm", "yarn", "pnpm")
        for i in df.instructions
        if i.effective.keyword == "RUN"
    )


@rule(
    "IW107",
    Severity.WARNING,
    ".dockerignore missing or incomplete",
    "security",
    "Without a .dockerignore the whole directory is sent as the build context: `.git`, "
    "`node_modules`, `.env` files and keys slow every build, bust the cache and end up in the "
    "image through `COPY . .`.",
    "Add a `.dockerignore` beside the build context listing at least `.git`, `node_modules` "
    "and secret files (`.env`, `*.pem`, `*.key`).",
)
def _dockerignore(df: Dockerfile, ctx: IWContext) -> Iterator[Finding]:
    if ctx.context_dir is None:
        return
    context = ctx.context_dir
    if _wholesale_copy(df, context) is None:
        return
    shown = os.path.relpath(context)
    shown = context if shown.startswith("..") else shown
    candidates = []
    if ctx.dockerfile_dir is not None:
        base = os.path.basename(df.filename)
        candidates.append(os.path.join(ctx.dockerfile_dir, base + ".dockerignore"))
    candidates.append(os.path.join(context, ".dockerignore"))
    path = next((c for c in candidates if os.path.isfile(c)), None)
    if path is None:
        yield finding(
            "IW107",
            df,
            None,
            f"No .dockerignore in the build context {shown!r}: .git, node_modules "
            "and secrets are sent to the builder and can be copied into the image",
        )
        return
    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = fh.read().splitlines()
    wanted = [".git"] + (["node_modules"] if _is_js(df, context) else [])
    try:
        present = sorted(os.listdir(context))
    except OSError:
        present = []
    wanted += [
        n
        for n in present
        if any(fnmatch.fnmatch(n, pat) for pat in _SECRET_FILES) and n not in wanted
    ]
    missing = [w for w in wanted if not dockerignore_excludes(lines, w)]
    if missing:
        yield finding(
            "IW107", df, None, f"{os.path.basename(path)} does not exclude {', '.join(missing)}"
        )


@rule(
    "IW112",
    Severity.WARNING,
    "`npm install` although a lockfile is present",
    "build",
    "`npm install` may resolve newer versions than the lockfile and rewrites it; `npm ci` "
    "installs exactly what the lockfile says, fails when it is out of date and is faster.",
    "Use `npm ci` (with `--omit=dev` for production images).",
    fixer="imagewise.dockerfile.fix:_npm_ci",
)
def _npm_ci(df: Dockerfile, ctx: IWContext) -> Iterator[Finding]:
    dirs = {d for d in (ctx.dockerfile_dir, ctx.context_dir) if d is not None}
    if not any(
        os.path.isfile(os.path.join(d, lock))
        for d in dirs
        for lock in ("package-lock.json", "npm-shrinkwrap.json")
    ):
        return
    for ins in df.instructions:
        if ins.effective.keyword == "RUN" and npm_installs(script_of(ins)):
            yield finding(
                "IW112",
                df,
                ins,
                "`npm install` with a package-lock.json beside the Dockerfile; use `npm ci`",
            )


def npm_installs(script: Script) -> list[Command]:
    """``npm install``/``npm i`` commands that install from the manifest (no package names)."""
    return [
        c
        for c in script.commands
        if os.path.basename(c.name) == "npm"
        and c.subcommand in ("install", "i", "isntall")
        and len(c.args_no_flags) == 1
    ]
