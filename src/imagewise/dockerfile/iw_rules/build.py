"""Build-order rules.

IW106 dependency manifests installed before the source, IW108 toolchains left in the final
stage where a multi-stage build would drop them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from imagewise.dockerfile.iw_rules._base import (
    IWContext,
    finding,
    is_windows,
    rule,
    runs,
    script_of,
    split_image,
    stage_chain,
)
from imagewise.dockerfile.iw_rules.layers import INSTALL_VERBS
from imagewise.dockerfile.model import Dockerfile, Instruction
from imagewise.dockerfile.shell import Command, Script
from imagewise.findings import Finding, Severity

# -- dependency order, toolchains -----------------------------------------------------------------


def _dependency_install(c: Command) -> str | None:
    """The dependency-install command ``c`` is (``npm ci``, ``pip install -r``...), or None."""
    name, sub = os.path.basename(c.name), c.subcommand
    if name in ("npm", "pnpm") and sub in ("install", "i", "ci") and len(c.args_no_flags) == 1:
        return f"{name} {sub}"
    if name == "yarn" and (sub in (None, "install")):
        return "yarn install"
    if name in ("pip", "pip3") and sub == "install" and c.has_flag("r", "requirement"):
        return "pip install -r"
    if name in ("poetry", "pipenv") and sub in ("install", "sync"):
        return f"{name} {sub}"
    if name == "uv" and sub == "sync":
        return "uv sync"
    if name == "bundle" and sub in (None, "install"):
        return "bundle install"
    if name == "composer" and sub == "install":
        return "composer install"
    if name == "go" and c.args_no_flags[:2] == ("mod", "download"):
        return "go mod download"
    if name == "mvn" and any(a.startswith("dependency:") for a in c.args):
        return "mvn dependency"
    return None


def _whole_context_copy(ins: Instruction) -> bool:
    if ins.keyword not in ("COPY", "ADD") or ins.flag("--from") is not None or ins.heredocs:
        return False
    words = list(ins.arguments) if ins.is_exec_form else ins.args.split()
    return any(w in (".", "./", "*", "./*", "./.") for w in words[:-1])


@rule(
    "IW106",
    Severity.WARNING,
    "Dependencies installed after copying the whole source",
    "performance",
    "When `COPY . .` comes before the dependency install, any source change invalidates the "
    "build cache and every dependency is downloaded and installed again. Copying only the "
    "manifests first keeps the install layer cached until the dependencies change.",
    "Copy only the dependency manifests (`package*.json`, `requirements*.txt`, "
    "`go.mod go.sum`, `Gemfile*`, `pom.xml`...) and install before copying the source, "
    "e.g. `COPY package*.json ./` → `RUN npm ci` → `COPY . .`.",
)
def _deps_before_source(df: Dockerfile, ctx: IWContext) -> Iterator[Finding]:
    for stage in df.stages:
        copied_at: Instruction | None = None
        done_before: set[str] = set()
        for ins in stage.instructions:
            if copied_at is None and _whole_context_copy(ins):
                copied_at = ins
                continue
            if ins.keyword != "RUN":
                continue
            for c in script_of(ins).commands:
                kind = _dependency_install(c)
                if kind is None:
                    continue
                if copied_at is None:
                    done_before.add(kind)
                elif kind not in done_before:
                    yield finding(
                        "IW106",
                        df,
                        ins,
                        f"`{kind}` runs after the whole source is copied (line "
                        f"{copied_at.start_line}); copy the dependency manifests and install "
                        "them before `COPY . .`",
                    )
                    done_before.add(kind)


_TOOLCHAIN_PACKAGES = re.compile(
    r"^(gcc|g\+\+|gcc-c\+\+|cpp|clang|llvm|build-essential|build-base|alpine-sdk|make|cmake|"
    r"ninja|ninja-build|autoconf|automake|libtool|golang|go|golang-go|rust|rustc|cargo|maven|"
    r"gradle|default-jdk|default-jdk-headless|openjdk-\d+-jdk(-headless)?|openjdk\d+(-jdk)?|"
    r"java-\d+-openjdk-devel|nodejs-dev|gfortran|g\+\+-\d+|gcc-\d+)(=.*|-\d.*)?$"
)
_TOOLCHAIN_IMAGES = re.compile(
    r"^(golang|rust|maven|gradle|gcc|clang|sbt|swift|haskell|"
    r"elixir|dotnet/sdk|eclipse-temurin:\S*jdk)"
)


def _removed_names(script: Script) -> set[str]:
    out: set[str] = set()
    for c in script.commands:
        if c.name == "apk" and c.subcommand == "del":
            out.update(c.args_no_flags[1:])
        elif c.name in ("apt-get", "apt", "yum", "dnf") and c.subcommand in (
            "purge",
            "remove",
            "erase",
        ):
            out.update(c.args_no_flags[1:])
            if c.has_flag("auto-remove", "autoremove"):
                out.add("*auto")
        elif c.name == "apt-mark" and c.subcommand == "auto":
            out.add("*auto")
    return out


def _toolchain_installs(script: Script) -> list[tuple[str, str]]:
    """``(package, virtual group)`` of toolchain packages a RUN installs."""
    out: list[tuple[str, str]] = []
    for c in script.commands:
        name = os.path.basename(c.name)
        if name not in INSTALL_VERBS or c.subcommand not in INSTALL_VERBS[name]:
            continue
        group = c.flag_value("virtual", "t") or ""
        for pkg in c.args_no_flags[1:]:
            if group and pkg == group:
                continue
            if _TOOLCHAIN_PACKAGES.match(pkg):
                out.append((pkg.split("=")[0], group))
    return out


@rule(
    "IW108",
    Severity.WARNING,
    "Build toolchain left in the final stage",
    "performance",
    "Compilers and build tools (gcc, make, the Go or Rust toolchain, Maven...) are needed to "
    "build, not to run. Left in the final image they add hundreds of megabytes and attack "
    "surface; a multi-stage build compiles in a builder stage and copies only the result.",
    "Build in a `FROM ... AS build` stage and `COPY --from=build` only the artefacts into a "
    "slim runtime stage (or remove the build dependencies in the same RUN that used them).",
)
def _toolchain(df: Dockerfile, ctx: IWContext) -> Iterator[Finding]:
    if not df.stages or is_windows(df):
        return
    final = df.stages[-1]
    if not any(i.keyword in ("CMD", "ENTRYPOINT") for i in final.instructions):
        return  # not an application image: a toolchain image keeps its tools on purpose
    chain = stage_chain(df, final)
    root_base = chain[-1].base_image
    _, repo, tag, _ = split_image(root_base)
    short = repo.removeprefix("library/")
    if _TOOLCHAIN_IMAGES.match(f"{short}:{tag}" if tag else short) and not re.search(
        r"jre|runtime", tag
    ):
        yield finding(
            "IW108",
            df,
            chain[-1].from_instruction,
            f"The final stage is built on the toolchain image `{root_base}`; build "
            "in a builder stage and run from a slim runtime image",
        )
        return
    stage_runs = list(runs(final))
    for pos, (ins, script) in enumerate(stage_runs):
        tools = _toolchain_installs(script)
        if not tools:
            continue
        removed: set[str] = set()
        for _, later in stage_runs[pos:]:
            removed |= _removed_names(later)
        left = sorted(
            {
                p
                for p, g in tools
                if p not in removed and (not g or g not in removed) and "*auto" not in removed
            }
        )
        if left:
            yield finding(
                "IW108",
                df,
                ins,
                f"The final stage installs {', '.join(left)} and keeps "
                f"{'them' if len(left) > 1 else 'it'}; a multi-stage build would "
                "leave the toolchain behind",
            )
