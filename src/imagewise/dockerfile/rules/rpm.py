"""hadolint rules for the RPM-family package managers: yum, dnf/microdnf and zypper."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from imagewise.dockerfile.context import LintContext, Run
from imagewise.dockerfile.expand import expand
from imagewise.dockerfile.rules import Hit, hadolint
from imagewise.dockerfile.rules._util import (
    commands_where,
    has_args,
    installed_then_cleaned,
    runs_where,
)
from imagewise.dockerfile.shell import Command
from imagewise.findings import Severity as S

# --- yum, dnf, zypper ------------------------------------------------------------------------

_DNF = ("dnf", "microdnf")
_DNF_INSTALLS = (
    "install",
    "in",
    "reinstall",
    "rei",
    "upgrade",
    "up",
    "update",
    "upgrade-minimal",
    "up-min",
    "update-minimal",
    "groupinstall",
    "localinstall",
    "distro-sync",
    "downgrade",
)
_VERSION_CHAR = re.compile(r"^[0-9A-Za-z.~^_:+]*$")


def _rpm_version_like(pkg: str) -> bool:
    parts = pkg.split("-")
    if len(parts) <= 1:
        return False
    if pkg.endswith(".rpm"):
        return True
    rest = parts[1:]
    return all(_VERSION_CHAR.match(p) for p in rest) and any(p[:1].isdigit() for p in rest)


def _rpm_unpinned(cmd: Command, names: tuple[str, ...], env: Mapping[str, str | None]) -> bool:
    if cmd.name not in names or "install" not in cmd.args:
        return False
    if "group" in cmd.args or "groupinstall" in cmd.args:
        return False
    module = "module" in cmd.args
    for arg in cmd.args_no_flags:
        if arg in ("install", "module"):
            continue
        value = expand(arg, env) if "$" in arg else arg
        if module and ":" not in value:
            return True
        if not module and not _rpm_version_like(value):
            return True
    return False


def _rpm_rule(ctx: LintContext, names: tuple[str, ...]) -> Iterator[Hit]:
    for run in ctx.runs():
        cmds = [c for c in run.script.commands if c.name in names and "install" in c.args]
        if not cmds:
            continue
        env = ctx.vars_at(run.outer) if any("$" in a for c in cmds for a in c.args) else {}
        if any(_rpm_unpinned(c, names, env) for c in cmds):
            yield Hit(run.line)


@hadolint(
    "DL3030",
    S.WARNING,
    "Use the -y switch to avoid manual input `yum install -y <package>`",
    rationale="yum waits for confirmation otherwise and the build fails.",
    fix="Add `-y`.",
)
def dl3030(ctx: LintContext) -> Iterator[Hit]:
    return commands_where(
        ctx,
        lambda c: (
            has_args(c, "yum", "install", "groupinstall", "localinstall")
            and not c.has_flag("y", "assumeyes")
        ),
    )


def _yum_clean(c: Command) -> bool:
    return (c.name == "yum" and "clean" in c.args) or (
        c.name == "rm" and any(a.startswith("/var/cache/yum") for a in c.args)
    )


@hadolint(
    "DL3032",
    S.WARNING,
    "`yum clean all` missing after yum command",
    rationale="yum's metadata and package cache stay in the layer otherwise.",
    fix="Append `&& yum clean all` to the same RUN.",
)
def dl3032(ctx: LintContext) -> Iterator[Hit]:
    return runs_where(
        ctx,
        lambda run: (
            not run.has_cache_mount("/var/cache/yum")
            and not installed_then_cleaned(run, lambda c: has_args(c, "yum", "install"), _yum_clean)
        ),
    )


@hadolint(
    "DL3033",
    S.WARNING,
    "Specify version with `yum install -y <package>-<version>`",
    rationale="Unpinned packages make builds unreproducible.",
    fix="Install `package-version` (modules: `module:stream`).",
)
def dl3033(ctx: LintContext) -> Iterator[Hit]:
    return _rpm_rule(ctx, ("yum",))


@hadolint(
    "DL3038",
    S.WARNING,
    "Use the -y switch to avoid manual input `dnf install -y <package>`",
    rationale="dnf waits for confirmation otherwise and the build fails.",
    fix="Add `-y`.",
)
def dl3038(ctx: LintContext) -> Iterator[Hit]:
    return commands_where(
        ctx,
        lambda c: (
            has_args(c, _DNF, "install", "groupinstall", "localinstall")
            and not c.has_flag("y", "assumeyes")
        ),
    )


def _dnf_clean(c: Command, name: str) -> bool:
    if c.name == name and "clean" in c.args:
        return True
    return c.name == "rm" and any(
        a.startswith(("/var/cache/yum", "/var/cache/dnf", "/var/cache/libdnf5")) for a in c.args
    )


def _dnf_cleaned(run: Run, name: str) -> bool:
    return installed_then_cleaned(
        run,
        lambda c: c.name == name and c.subcommand in _DNF_INSTALLS,
        lambda c: _dnf_clean(c, name),
    )


@hadolint(
    "DL3040",
    S.WARNING,
    "`dnf clean all` missing after dnf command",
    rationale="dnf's metadata and package cache stay in the layer otherwise.",
    fix="Append `&& dnf clean all` to the same RUN.",
)
def dl3040(ctx: LintContext) -> Iterator[Hit]:
    def bad(run: Run) -> bool:
        if run.has_cache_mount("/var/cache/libdnf5", "/var/cache/dnf", "/var/cache/yum"):
            return False
        return not all(_dnf_cleaned(run, name) for name in _DNF)

    return runs_where(ctx, bad)


@hadolint(
    "DL3041",
    S.WARNING,
    "Specify version with `dnf install -y <package>-<version>`",
    rationale="Unpinned packages make builds unreproducible.",
    fix="Install `package-version` (modules: `module:stream`).",
)
def dl3041(ctx: LintContext) -> Iterator[Hit]:
    return _rpm_rule(ctx, _DNF)


_ZYPPER_INSTALLS = ("install", "in", "remove", "rm", "source-install", "si", "patch")


@hadolint(
    "DL3034",
    S.WARNING,
    "Non-interactive switch missing from `zypper` command: `zypper install -y`",
    rationale="zypper prompts otherwise and the build fails.",
    fix="Add `-n`/`--non-interactive` (or `-y`).",
)
def dl3034(ctx: LintContext) -> Iterator[Hit]:
    return commands_where(
        ctx,
        lambda c: (
            has_args(c, "zypper", *_ZYPPER_INSTALLS)
            and not c.has_flag("non-interactive", "n", "no-confirm", "y")
        ),
    )


@hadolint(
    "DL3035",
    S.WARNING,
    "Do not use `zypper dist-upgrade`",
    rationale="A distribution upgrade inside an image build is not reproducible.",
    fix="Use a newer base image instead.",
)
def dl3035(ctx: LintContext) -> Iterator[Hit]:
    return commands_where(ctx, lambda c: has_args(c, "zypper", "dist-upgrade", "dup"))


@hadolint(
    "DL3036",
    S.WARNING,
    "`zypper clean` missing after zypper use",
    rationale="zypper's cache stays in the layer otherwise.",
    fix="Append `&& zypper clean` to the same RUN.",
)
def dl3036(ctx: LintContext) -> Iterator[Hit]:
    return runs_where(
        ctx,
        lambda run: (
            not run.has_cache_mount("/var/cache/zypp")
            and not installed_then_cleaned(
                run,
                lambda c: has_args(c, "zypper", "install", "in"),
                lambda c: has_args(c, "zypper", "clean", "cc"),
            )
        ),
    )


def _zypper_unpinned(cmd: Command) -> bool:
    if not has_args(cmd, "zypper", "install", "in"):
        return False
    pkgs = [a for a in cmd.args_no_flags if a not in ("install", "in")]
    return not all(any(op in p for op in ("=", ">", "<")) or p.endswith(".rpm") for p in pkgs)


@hadolint(
    "DL3037",
    S.WARNING,
    "Specify version with `zypper install -y <package>[=]<version>`",
    rationale="Unpinned packages make builds unreproducible.",
    fix="Install `package=version`.",
)
def dl3037(ctx: LintContext) -> Iterator[Hit]:
    return commands_where(ctx, _zypper_unpinned)
