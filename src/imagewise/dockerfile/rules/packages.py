"""hadolint rules about package managers: pinning, prompts, caches (apt, apk, pip, npm, gem,
yarn, go). The RPM family (yum, dnf, zypper) is in :mod:`.rpm`."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from imagewise.dockerfile.context import LintContext, Run
from imagewise.dockerfile.rules import Hit, hadolint
from imagewise.dockerfile.rules._util import (
    commands_where,
    has_args,
    installed_then_cleaned,
    runs_where,
)
from imagewise.dockerfile.shell import Command
from imagewise.findings import Severity as S

# --- apt -------------------------------------------------------------------------------------


def opaque(arg: str) -> bool:
    """An argument that is only a variable (``$PKGS``): its value is unknown, so it is not
    reported as unpinned (hadolint issue #363)."""
    return arg.startswith("$")


def apt_packages(cmd: Command) -> list[str]:
    """The package arguments of an ``apt-get install`` (``name`` or ``name=version``)."""
    if not has_args(cmd, "apt-get", "install"):
        return []
    return [
        a for a in cmd.without_flag_values("t", "target-release").args_no_flags if a != "install"
    ]


@hadolint(
    "DL3008",
    S.WARNING,
    "Pin versions in apt get install. Instead of `apt-get install "
    "<package>` use `apt-get install <package>=<version>`",
    rationale="Unpinned packages make builds unreproducible and can break them silently.",
    fix="Install `package=version`.",
)
def dl3008(ctx: LintContext) -> Iterator[Hit]:
    return commands_where(
        ctx,
        lambda c: (
            not all(
                "=" in p or "/" in p or p.endswith(".deb") or opaque(p) for p in apt_packages(c)
            )
        ),
    )


def _apt_lists_left(run: Run) -> bool:
    cmds = run.script.commands
    if not any(has_args(c, ("apt-get", "apt", "aptitude"), "update") for c in cmds):
        return False
    if any(has_args(c, "rm", "-rf", "/var/lib/apt/lists/*") for c in cmds):
        return False
    # apt >= 2.7 (Debian 13): `apt-get dist-clean` removes the lists too (hadolint 2.15 still
    # reports it; the files are gone, so we do not)
    if any(has_args(c, ("apt-get", "apt"), "dist-clean") for c in cmds):
        return False
    if run.has_cache_mount("/var/lib/apt/lists"):
        return False
    return not (run.has_cache_mount("/var/lib/apt") and run.has_cache_mount("/var/cache/apt"))


@hadolint(
    "DL3009",
    S.INFO,
    "Delete the apt-get lists after installing something",
    rationale="The apt lists stay in the layer (tens of MB) unless removed in the same RUN.",
    fix="End the RUN with `&& rm -rf /var/lib/apt/lists/*` (or `apt-get dist-clean`), "
    "or use a cache mount.",
    fixer="imagewise.dockerfile.fix:_apt_lists",
)
def dl3009(ctx: LintContext) -> Iterator[Hit]:
    return _in_kept_stages(ctx, _apt_lists_left)


def _in_kept_stages(ctx: LintContext, bad: Callable[[Run], bool]) -> Iterator[Hit]:
    """Hits for RUNs where ``bad`` holds, in stages whose layers end up in an image: the last
    stage and stages other stages are built FROM (not stages only copied from)."""
    stages = ctx.dockerfile.stages
    used_as_base = {s.base_image_raw.lower() for s in stages}
    last = len(stages) - 1
    for run in ctx.runs():
        if not bad(run):
            continue
        stage = ctx.stage(run.stage_index)
        if (
            run.outer.keyword == "ONBUILD"
            or run.stage_index == last
            or stage is None
            or (stage.alias is not None and stage.alias.lower() in used_as_base)
        ):
            yield Hit(run.line)


def _quiet_level(cmd: Command) -> int:
    level = 0
    for a in cmd.args:
        if a in ("-q=2", "--quiet=2"):
            level += 2
        elif a == "--quiet":
            level += 1
        elif a.startswith("-") and not a.startswith("--"):
            level += a.split("=", 1)[0].count("q")
    return level


@hadolint(
    "DL3014",
    S.WARNING,
    "Use the `-y` switch to avoid manual input `apt-get -y install <package>`",
    rationale="Without -y apt-get waits for confirmation and the build fails.",
    fix="Add `-y` to apt-get install.",
)
def dl3014(ctx: LintContext) -> Iterator[Hit]:
    return commands_where(
        ctx,
        lambda c: (
            has_args(c, "apt-get", "install")
            and not c.has_flag("y", "yes", "assume-yes")
            and _quiet_level(c) < 2
        ),
    )


@hadolint(
    "DL3015",
    S.INFO,
    "Avoid additional packages by specifying `--no-install-recommends`",
    rationale="Recommended packages are rarely needed and add size and attack surface.",
    fix="Add `--no-install-recommends` to apt-get install.",
    fixer="imagewise.dockerfile.fix:_apt_no_recommends",
)
def dl3015(ctx: LintContext) -> Iterator[Hit]:
    return commands_where(
        ctx,
        lambda c: (
            has_args(c, "apt-get", "install")
            and not (
                c.has_flag("no-install-recommends")
                or any("APT::Install-Recommends=false" in a for a in c.args)
            )
        ),
    )


@hadolint(
    "DL3027",
    S.WARNING,
    "Do not use apt as it is meant to be an end-user tool, use apt-get or apt-cache instead",
    rationale="apt's CLI is not stable for scripts and warns when used non-interactively.",
    fix="Use apt-get (or apt-cache).",
)
def dl3027(ctx: LintContext) -> Iterator[Hit]:
    return commands_where(ctx, lambda c: c.name == "apt")


# --- apk -------------------------------------------------------------------------------------


def apk_packages(cmd: Command) -> list[str]:
    """The package arguments of an ``apk add`` (``name`` or ``name=version``)."""
    if not has_args(cmd, "apk", "add"):
        return []
    dropped = cmd.without_flag_values("t", "virtual", "repository", "X")
    return [a for a in dropped.args_no_flags if a != "add"]


@hadolint(
    "DL3018",
    S.WARNING,
    "Pin versions in apk add. Instead of `apk add <package>` use `apk add <package>=<version>`",
    rationale="Unpinned packages make builds unreproducible.",
    fix="Use `package=version`.",
)
def dl3018(ctx: LintContext) -> Iterator[Hit]:
    return commands_where(
        ctx,
        lambda c: (
            not all(
                any(op in p for op in "=~<>") or p.endswith(".apk") or opaque(p)
                for p in apk_packages(c)
            )
        ),
    )


@hadolint(
    "DL3019",
    S.INFO,
    "Use the `--no-cache` switch to avoid the need to use `--update` and "
    "remove `/var/cache/apk/*` when done installing packages",
    rationale="apk's index cache otherwise stays in the layer.",
    fix="Use `apk add --no-cache`.",
    fixer="imagewise.dockerfile.fix:_apk_no_cache",
)
def dl3019(ctx: LintContext) -> Iterator[Hit]:
    return runs_where(
        ctx,
        lambda run: (
            not run.has_cache_mount("/var/cache/apk")
            and any(
                has_args(c, "apk", "add") and not c.has_flag("no-cache")
                for c in run.script.commands
            )
        ),
    )


# --- pip -------------------------------------------------------------------------------------

_PIP_VALUE_FLAGS = (
    "abi",
    "b",
    "build",
    "e",
    "editable",
    "extra-index-url",
    "f",
    "find-links",
    "i",
    "index-url",
    "implementation",
    "no-binary",
    "only-binary",
    "platform",
    "prefix",
    "progress-bar",
    "proxy",
    "python-version",
    "root",
    "root-user-action",
    "src",
    "t",
    "target",
    "trusted-host",
    "upgrade-strategy",
    "cache-dir",
    "log",
    "timeout",
    "retries",
    "python",
)
_VCS = (
    "git+file",
    "git+https",
    "git+ssh",
    "git+http",
    "git+git",
    "git",
    "hg+file",
    "hg+http",
    "hg+https",
    "hg+ssh",
    "hg+static-http",
    "svn",
    "svn+svn",
    "svn+http",
    "svn+https",
    "svn+ssh",
    "bzr+http",
    "bzr+https",
    "bzr+ssh",
    "bzr+sftp",
    "bzr+ftp",
    "bzr+lp",
)
_VERSION_OPS = ("==", ">=", "<=", ">", "<", "!=", "~=", "===")


def is_pip_install(cmd: Command) -> bool:
    if "install" not in cmd.args:
        return False
    base = cmd.name.rsplit("/", 1)[-1]
    if base.startswith("pipenv"):
        return False
    if base.startswith("pip"):
        return True
    if base.startswith("python"):
        args = list(cmd.args)
        return any(
            a == "-m" and i + 1 < len(args) and args[i + 1].startswith("pip")
            for i, a in enumerate(args)
        )
    return False


def _pip_pinned(pkg: str) -> bool:
    if opaque(pkg) or any(op in pkg for op in _VERSION_OPS):
        return True
    if pkg.startswith(_VCS):
        return "@" in pkg
    return pkg.endswith((".whl", ".tar.gz")) or "/" in pkg


def pip_packages(cmd: Command) -> list[str]:
    """The requirement arguments of a ``pip install`` (``name``, ``name==version``, a path or
    URL); none when it installs from a requirements or constraints file."""
    if not is_pip_install(cmd):
        return []
    if cmd.has_flag("constraint", "c"):
        return []
    if any(a in ("--requirement", "-r", ".") for a in cmd.args) or any(
        a.startswith("--requirement=") for a in cmd.args
    ):
        return []
    args = list(cmd.without_flag_values(*_PIP_VALUE_FLAGS).args_no_flags)
    if "install" in args:
        args = args[args.index("install") :]
    while args and args[0] == "install":
        args.pop(0)
    return args


def _pip_unpinned(cmd: Command) -> bool:
    return not all(_pip_pinned(p) for p in pip_packages(cmd))


@hadolint(
    "DL3013",
    S.WARNING,
    "Pin versions in pip. Instead of `pip install <package>` use `pip "
    "install <package>==<version>` or `pip install --requirement <requirements file>`",
    rationale="Unpinned packages make builds unreproducible.",
    fix="Pin `package==version` or install from a requirements/constraints file.",
)
def dl3013(ctx: LintContext) -> Iterator[Hit]:
    return commands_where(ctx, _pip_unpinned)


_TRUTHY = frozenset({"1", "true", "True", "TRUE", "on", "On", "ON", "yes", "Yes", "YES"})


def _pip_wrapper(cmd: Command) -> bool:
    for w in ("pipx", "pipenv"):
        if w in cmd.name:
            return True
        if cmd.name.startswith("python") and any(
            a == "-m" and i + 1 < len(cmd.args) and cmd.args[i + 1] == w
            for i, a in enumerate(cmd.args)
        ):
            return True
    return False


def _inline_no_cache(text: str) -> bool:
    idx = text.find("PIP_NO_CACHE_DIR=")
    if idx < 0:
        return False
    value = text[idx + len("PIP_NO_CACHE_DIR=") :].strip("\"'")
    return any(value.startswith(t) for t in _TRUTHY)


@hadolint(
    "DL3042",
    S.WARNING,
    "Avoid use of cache directory with pip. Use `pip install --no-cache-dir <package>`",
    rationale="pip's wheel cache is useless in an image and only adds size.",
    fix="Add `--no-cache-dir`, or set `ENV PIP_NO_CACHE_DIR=1`.",
    fixer="imagewise.dockerfile.fix:_pip_no_cache",
)
def dl3042(ctx: LintContext) -> Iterator[Hit]:
    for run in ctx.runs():
        bad = [
            c
            for c in run.script.commands
            if is_pip_install(c) and "--no-cache-dir" not in c.args and not _pip_wrapper(c)
        ]
        if not bad or _inline_no_cache(run.script.text):
            continue
        if run.has_cache_mount("/root/.cache/pip"):
            continue
        env = ctx.vars_at(run.outer)
        if (env.get("PIP_NO_CACHE_DIR") or "") in _TRUTHY:
            continue
        yield Hit(run.line)


# --- npm, yarn, gem, go ----------------------------------------------------------------------

_NPM_VALUE_FLAGS = (
    "loglevel",
    "registry",
    "prefix",
    "cache",
    "userconfig",
    "globalconfig",
    "workspace",
    "w",
    "omit",
    "include",
    "install-strategy",
)


def _npm_pinned(pkg: str) -> bool:
    if opaque(pkg):
        return True
    if pkg.startswith(("git://", "git+ssh://", "git+http://", "git+https://")):
        return "#" in pkg
    if pkg.endswith((".tar", ".tar.gz", ".tgz")):
        return True
    if pkg.startswith(("/", "./", "../", "~/")):
        return True
    if pkg.startswith("@"):
        pkg = pkg.split("/", 1)[1] if "/" in pkg else ""
    return "@" in pkg


def npm_packages(cmd: Command) -> list[str]:
    """The package arguments of an ``npm install`` (``name``, ``name@version``, ...)."""
    if not has_args(cmd, "npm", "install"):
        return []
    args = list(cmd.without_flag_values(*_NPM_VALUE_FLAGS).args_no_flags)
    if not args or args[0] != "install":
        return []
    while args and args[0] == "install":
        args.pop(0)
    return args


def _npm_unpinned(cmd: Command) -> bool:
    return not all(_npm_pinned(p) for p in npm_packages(cmd))


@hadolint(
    "DL3016",
    S.WARNING,
    "Pin versions in npm. Instead of `npm install <package>` use `npm install <package>@<version>`",
    rationale="Unpinned packages make builds unreproducible.",
    fix="Install `package@version`, or `npm ci` with a lockfile.",
)
def dl3016(ctx: LintContext) -> Iterator[Hit]:
    return commands_where(ctx, _npm_unpinned)


@hadolint(
    "DL3060",
    S.INFO,
    "`yarn cache clean` missing after `yarn install` was run",
    rationale="yarn's cache stays in the layer unless cleaned in the same RUN.",
    fix="Append `&& yarn cache clean`, or use a cache mount.",
)
def dl3060(ctx: LintContext) -> Iterator[Hit]:
    def bad(run: Run) -> bool:
        if run.has_cache_mount("/usr/local/share/.cache/yarn", "/root/.cache/yarn", "/root/.yarn"):
            return False
        return not installed_then_cleaned(
            run,
            lambda c: has_args(c, "yarn", "install"),
            lambda c: c.name == "yarn" and "cache" in c.args and "clean" in c.args,
        )

    return _in_kept_stages(ctx, bad)


def _gems_unpinned(cmd: Command) -> bool:
    if not has_args(cmd, "gem", "install", "i"):
        return False
    if (
        "-v" in cmd.args
        or "--version" in cmd.args
        or any(a.startswith("--version=") for a in cmd.args)
    ):
        return False
    gems: list[str] = []
    for a in cmd.args:
        if a == "--" or (a.startswith("-") and gems):
            break  # options after the gem names (and build args after --) are not gems
        if not a.startswith("-") and a not in ("install", "i"):
            gems.append(a)
    return not all(":" in g or opaque(g) for g in gems)


@hadolint(
    "DL3028",
    S.WARNING,
    "Pin versions in gem install. Instead of `gem install <gem>` use `gem install <gem>:<version>`",
    rationale="Unpinned gems make builds unreproducible.",
    fix="Use `gem install name:version` or `-v version`.",
)
def dl3028(ctx: LintContext) -> Iterator[Hit]:
    return commands_where(ctx, _gems_unpinned)


def _go_unpinned(cmd: Command) -> bool:
    if cmd.name != "go" or not cmd.args:
        return False
    rest = cmd.args_no_flags
    if not rest or rest[0] not in ("install", "get", "run"):
        return False
    pkgs = list(rest[1:])
    if rest[0] == "run":
        pkgs = pkgs[:1]
    for pkg in pkgs:
        if pkg.startswith((".", "/", "~")) or pkg.endswith(".go"):
            continue
        if "@" not in pkg or pkg.rsplit("@", 1)[1] in ("latest", ""):
            return True
    return False


@hadolint(
    "DL3062",
    S.WARNING,
    "Pin versions in go install. Instead of `go install <package>` use "
    "`go install <package>@<version>`",
    rationale="Without a version the module resolves to whatever is newest.",
    fix="Use `go install module/path@vX.Y.Z`.",
)
def dl3062(ctx: LintContext) -> Iterator[Hit]:
    return commands_where(ctx, _go_unpinned)
