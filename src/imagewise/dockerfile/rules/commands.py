"""hadolint rules about individual shell commands in RUN."""

from __future__ import annotations

from collections.abc import Iterator

from imagewise.dockerfile.context import LintContext
from imagewise.dockerfile.rules import Hit, hadolint
from imagewise.dockerfile.rules._util import commands_where
from imagewise.dockerfile.shell import Command
from imagewise.findings import Severity as S

_POINTLESS = frozenset({"free", "kill", "mount", "ps", "service", "shutdown", "ssh", "top", "vim"})


@hadolint(
    "DL3001",
    S.INFO,
    "For some bash commands it makes no sense running them in a Docker "
    "container like ssh, vim, shutdown, service, ps, free, top, kill, mount, ifconfig",
    rationale="Interactive or system-management tools do nothing useful during a build.",
    fix="Remove the command from the RUN instruction.",
)
def dl3001(ctx: LintContext) -> Iterator[Hit]:
    return commands_where(ctx, lambda c: c.name in _POINTLESS)


@hadolint(
    "DL3003",
    S.WARNING,
    "Use WORKDIR to switch to a directory",
    rationale="`cd` only lasts for one RUN; WORKDIR makes the directory explicit and persistent.",
    fix="Replace `cd DIR && ...` with `WORKDIR DIR`.",
    fixer="imagewise.dockerfile.fix:_cd_to_workdir",
)
def dl3003(ctx: LintContext) -> Iterator[Hit]:
    return commands_where(ctx, lambda c: c.name == "cd")


@hadolint(
    "DL3004",
    S.ERROR,
    "Do not use sudo as it leads to unpredictable behavior. Use a tool like gosu to enforce root",
    rationale="sudo has unpredictable TTY and signal-forwarding behaviour in containers.",
    fix="Run as root with USER root, or use gosu/su-exec to drop privileges.",
)
def dl3004(ctx: LintContext) -> Iterator[Hit]:
    return commands_where(ctx, lambda c: c.name == "sudo")


def _forgot_no_log_init(cmd: Command) -> bool:
    if cmd.name != "useradd" or cmd.has_flag("l", "no-log-init"):
        return False
    if not cmd.has_flag("u", "uid"):
        return False
    uid = cmd.flag_value("u", "uid")
    return uid is not None and len(uid) > 5


@hadolint(
    "DL3046",
    S.WARNING,
    "useradd without flag -l and high UID will result in excessively large Image",
    rationale="Without -l, useradd writes a sparse lastlog/faillog entry sized by the UID, "
    "which tar stores in full.",
    fix="Add `-l` (`--no-log-init`) to useradd.",
)
def dl3046(ctx: LintContext) -> Iterator[Hit]:
    return commands_where(ctx, _forgot_no_log_init)


def _wget_noisy(cmd: Command) -> bool:
    if cmd.name != "wget":
        return False
    quiet = (
        cmd.has_flag(
            "progress", "q", "quiet", "o", "output-file", "a", "append-output", "no-verbose"
        )
        or "-nv" in cmd.args
    )
    return not quiet


@hadolint(
    "DL3047",
    S.INFO,
    "wget without flag --progress will result in excessively bloated "
    "build logs when downloading larger files",
    rationale="wget's default progress bar writes a line per chunk in non-interactive logs.",
    fix="Use `wget --progress=dot:giga URL`, or `-q`/`-nv`.",
)
def dl3047(ctx: LintContext) -> Iterator[Hit]:
    return commands_where(ctx, _wget_noisy)


@hadolint(
    "DL4005",
    S.WARNING,
    "Use SHELL to change the default shell",
    rationale="Replacing /bin/sh with a symlink is invisible and fragile; SHELL is explicit.",
    fix='Use `SHELL ["/bin/bash", "-c"]` instead of `ln -s ... /bin/sh`.',
)
def dl4005(ctx: LintContext) -> Iterator[Hit]:
    return commands_where(ctx, lambda c: c.name == "ln" and "/bin/sh" in c.args)
