"""The guide's own Dockerfile practices that hadolint lacks, as declared ``IW`` rules.

Each rule is an :class:`IWRule`: a :class:`~imagewise.findings.RuleInfo` (id, severity, title,
rationale, fix, area) and a check function ``(Dockerfile, IWContext) -> Iterable[Finding]``.
``IW_RULES`` is the table; :func:`check` runs them all. Shell facts come from
:mod:`imagewise.dockerfile.shell` (bashlex), facts about the build context (``.dockerignore``,
lockfiles) from the directory in :class:`IWContext`; no context, no context rules.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from imagewise.dockerfile.model import Dockerfile, Instruction, Stage
from imagewise.dockerfile.shell import Command, Script, parse_shell
from imagewise.findings import Finding, Location, RuleInfo, Severity

#: registries trusted when no allow-list is configured (public, vendor-run registries)
DEFAULT_REGISTRIES = ("docker.io", "ghcr.io", "quay.io", "gcr.io", "mcr.microsoft.com",
                      "registry.k8s.io", "public.ecr.aws", "registry.access.redhat.com",
                      "registry.redhat.io", "cgr.dev", "docker.elastic.co", "nvcr.io",
                      "registry.gitlab.com", "*.pkg.dev", "*.gcr.io")


@dataclass(frozen=True, slots=True)
class IWContext:
    """What the IW rules may know besides the Dockerfile.

    ``context_dir`` is the build context (usually the Dockerfile's directory); None for stdin or
    when the context is unknown, which turns off the rules that look at files.
    ``allowed_registries`` are glob patterns; empty means :data:`DEFAULT_REGISTRIES`.
    """

    context_dir: str | None = None
    dockerfile_dir: str | None = None
    allowed_registries: tuple[str, ...] = ()


Check = Callable[[Dockerfile, IWContext], Iterable[Finding]]


@dataclass(frozen=True, slots=True)
class IWRule:
    info: RuleInfo
    check: Check = field(compare=False)

    @property
    def id(self) -> str:
        return self.info.id


IW_RULES: dict[str, IWRule] = {}


def rule(id: str, severity: Severity, title: str, area: str, rationale: str,
         fix: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        IW_RULES[id] = IWRule(RuleInfo(id, severity, title, rationale, fix, area, "imagewise"), fn)
        return fn

    return register


def check(df: Dockerfile, ctx: IWContext | None = None,
          only: Sequence[str] | None = None) -> list[Finding]:
    """Run every IW rule (or those in ``only``) over ``df``."""
    ctx = ctx or IWContext()
    out: list[Finding] = []
    for rid, r in IW_RULES.items():
        if only is None or rid in only:
            out.extend(r.check(df, ctx))
    return out


# -- helpers --------------------------------------------------------------------------------------

def _finding(rid: str, df: Dockerfile, ins: Instruction | None, message: str,
             fix: str = "") -> Finding:
    info = IW_RULES[rid].info
    if ins is None:
        loc = Location(file=df.filename, line=1, column=1, end_line=1)
    else:
        loc = Location(file=df.filename, line=ins.start_line, column=1, end_line=ins.end_line)
    return Finding(rid, info.severity, info.title, message, loc, fix or info.fix)


def script_of(ins: Instruction) -> Script:
    """The shell commands a RUN runs (exec form: its argv as one command)."""
    ins = ins.effective
    if ins.is_exec_form:
        import shlex

        return parse_shell(" ".join(shlex.quote(a) for a in ins.arguments))
    return parse_shell(ins.shell_script)


def _runs(stage: Stage) -> Iterator[tuple[Instruction, Script]]:
    for ins in stage.instructions:
        if ins.keyword == "RUN":
            yield ins, script_of(ins)


def is_windows(df: Dockerfile) -> bool:
    if df.escape == "`":
        return True
    for ins in df.instructions:
        if ins.keyword == "SHELL" and ins.is_exec_form and ins.arguments:
            if os.path.basename(ins.arguments[0]).lower().split(".")[0] in ("powershell", "pwsh",
                                                                             "cmd"):
                return True
    return any(re.search(r"windows|nanoserver|servercore", s.base_image, re.I) for s in df.stages)


_POSIX_SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh", "mksh", "busybox"})


def posix_shell_at(df: Dockerfile, stage: Stage, line: int) -> bool:
    """Whether RUNs at ``line`` of ``stage`` run in a POSIX shell (no SHELL to pwsh/cmd)."""
    for st in stage_chain(df, stage):
        shells = [i for i in st.instructions if i.keyword == "SHELL"
                  and (st is not stage or i.start_line < line)]
        if shells:
            argv = shells[-1].arguments
            if not isinstance(argv, tuple) or not argv:
                return False
            return os.path.basename(argv[0]).lower() in _POSIX_SHELLS
    return True


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


# -- base image -----------------------------------------------------------------------------------

_CODENAMES = frozenset({
    "buster", "bullseye", "bookworm", "trixie", "forky", "duke", "stretch", "jessie",
    "xenial", "bionic", "focal", "jammy", "noble", "plucky", "questing", "oracular",
    "ltsc2019", "ltsc2022", "ltsc2025",
})
_FLOATING = frozenset({"latest", "stable", "lts", "current", "edge", "mainline", "rolling",
                       "testing", "unstable", "sid", "nightly", "devel", "dev", "master", "main",
                       "next", "canary", "beta", "alpha", "rc", "release"})


def tag_is_pinned(tag: str) -> bool:
    """A version tag has a digit in it or names a distribution release (``bookworm-slim``)."""
    parts = [p for p in re.split(r"[-_.]", tag.lower()) if p]
    if any(p in _FLOATING for p in parts):
        return False
    return any(any(c.isdigit() for c in p) or p in _CODENAMES for p in parts)


def _external_bases(df: Dockerfile) -> Iterator[tuple[Stage, str]]:
    names: set[str] = set()
    for stage in df.stages:
        base = stage.base_image.strip()
        if (base.lower() != "scratch" and base.lower() not in names and "$" not in base
                and base):
            yield stage, base
        if stage.alias:
            names.add(stage.alias.lower())


@rule("IW101", Severity.WARNING, "Base image is not pinned to a version tag or digest", "build",
      "A floating tag such as `alpine`, `lts`, `stable`, `mainline` or `slim` moves to a new "
      "release without notice, so the same Dockerfile builds a different image tomorrow. "
      "(A missing tag and `latest` are reported by DL3006/DL3007.)",
      "Use a version tag (`python:3.12-slim`, `debian:bookworm-slim`) or a digest "
      "(`image@sha256:...`).")
def _base_pinned(df: Dockerfile, ctx: IWContext) -> Iterator[Finding]:
    for stage, base in _external_bases(df):
        _, repo, tag, digest = split_image(base)
        if digest or not tag or tag == "latest" or tag_is_pinned(tag):
            continue
        yield _finding("IW101", df, stage.from_instruction,
                       f"Base image `{base}` uses the floating tag `{tag}`; pin a version tag "
                       "or a digest")


@rule("IW102", Severity.WARNING, "Base image comes from a registry that is not allowed", "security",
      "Base images are code you run: they should come only from registries you trust and "
      "mirror. The allow-list is `allowed-registries` in `[tool.imagewise]` (or hadolint's "
      "`trustedRegistries`); without one, well-known public registries are allowed.",
      "Pull the base image from an allowed registry (or mirror it there), or add the registry "
      "to `allowed-registries`.")
def _base_registry(df: Dockerfile, ctx: IWContext) -> Iterator[Finding]:
    allowed = ctx.allowed_registries or DEFAULT_REGISTRIES
    for stage, base in _external_bases(df):
        registry = split_image(base)[0].lower()
        hub = {"docker.io", "index.docker.io", "registry-1.docker.io"}
        candidates = {registry} | (hub if registry in hub else set())
        if not any(fnmatch.fnmatch(c, pat.lower()) for c in candidates for pat in allowed):
            yield _finding("IW102", df, stage.from_instruction,
                           f"Base image `{base}` comes from `{registry}`, which is not in the "
                           f"allowed registries ({', '.join(allowed)})")


# -- user and health ------------------------------------------------------------------------------

_PRIV_DROP = ("gosu", "su-exec", "setpriv", "chroot", "runuser", "s6-setuidgid", "setuser")
_TOOL_DIRS = ("/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin", "/",
              "/docker-entrypoint.d", "/usr/local/sbin")


def _last_user(df: Dockerfile, stage: Stage) -> str | None:
    for st in stage_chain(df, stage):
        users = [i for i in st.instructions if i.keyword == "USER"]
        if users:
            return users[-1].args.strip()
    return None


def _app_content(ins: Instruction) -> bool:
    """A COPY/ADD that brings application content, not only helper scripts into bin dirs."""
    if ins.keyword not in ("COPY", "ADD") or ins.heredocs:
        return False
    words = list(ins.arguments) if ins.is_exec_form else ins.args.split()
    if len(words) < 2:
        return False
    dest = words[-1].rstrip("/") or "/"
    return not (dest in _TOOL_DIRS and ins.flag("--from") is None)


@rule("IW103", Severity.WARNING, "Final stage runs as root", "security",
      "A process running as root in the container is root on the host's kernel: a container "
      "escape or a writable host mount becomes a host compromise. The image should choose an "
      "unprivileged user itself.",
      "Create a user (`RUN useradd -r -u 10001 app`) and end the final stage with `USER app` "
      "(or a numeric `USER 10001`).")
def _non_root(df: Dockerfile, ctx: IWContext) -> Iterator[Finding]:
    if not df.stages or is_windows(df):
        return
    final = df.stages[-1]
    user = _last_user(df, final)
    root = user is not None and user.split(":")[0] in ("root", "0")
    if user is not None and not root:
        return
    if user is None:
        base = stage_chain(df, final)[-1].base_image.lower()
        if "nonroot" in base or "rootless" in base or base == "scratch":
            return
        drop = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, _PRIV_DROP)) + r")(?![\w-])")
        scripts = [s.text for st in stage_chain(df, final) for _, s in _runs(st)]
        scripts += [" ".join(i.arguments) if i.is_exec_form else i.args
                    for i in final.instructions if i.keyword in ("CMD", "ENTRYPOINT")]
        if any(drop.search(text) for text in scripts):
            return  # the entrypoint drops privileges (gosu and friends are installed for it)
        has_cmd = any(i.keyword in ("CMD", "ENTRYPOINT") for i in final.instructions)
        if not (has_cmd and any(_app_content(i) for i in final.instructions)):
            return  # a base image for others to build on: they choose the user
        anchor = next(i for i in reversed(final.instructions)
                      if i.keyword in ("CMD", "ENTRYPOINT"))
        yield _finding("IW103", df, anchor,
                       "The final stage sets no USER, so the application runs as root")
        return
    anchor = [i for i in final.instructions if i.keyword == "USER"]
    yield _finding("IW103", df, anchor[-1] if anchor else final.from_instruction,
                   f"The final stage runs as `{user}`")


@rule("IW104", Severity.INFO, "Service image without HEALTHCHECK", "operations",
      "An image that exposes a port is a service; without a HEALTHCHECK the runtime only knows "
      "the process is alive, not that it answers, so a hung service is never restarted or "
      "taken out of rotation.",
      "Add `HEALTHCHECK CMD <probe>` (e.g. `HEALTHCHECK --interval=30s CMD wget -qO- "
      "http://localhost:8080/health || exit 1`), or `HEALTHCHECK NONE` to opt out explicitly.")
def _healthcheck(df: Dockerfile, ctx: IWContext) -> Iterator[Finding]:
    if not df.stages:
        return
    final = df.stages[-1]
    chain = stage_chain(df, final)
    if any(i.keyword == "HEALTHCHECK" for st in chain for i in st.instructions):
        return
    expose = [i for i in final.instructions if i.keyword == "EXPOSE"]
    if expose:
        yield _finding("IW104", df, expose[-1],
                       f"The final stage exposes {expose[-1].args.strip()} but has no HEALTHCHECK")


# -- layers and caches ----------------------------------------------------------------------------

_INSTALL = {"apt-get": ("install",), "apt": ("install",), "apk": ("add",),
            "yum": ("install",), "dnf": ("install",), "microdnf": ("install",),
            "zypper": ("install", "in")}
_UPDATE = {"apt-get": ("update",), "apt": ("update",), "apk": ("update",),
           "yum": ("makecache",), "dnf": ("makecache",), "zypper": ("refresh", "ref")}
_STATE_CHANGING = frozenset({"cd", "pushd", "popd", "set", "export", "exit", "source", ".",
                             "umask", "alias", "trap", "shopt", "ulimit", "exec", "unset",
                             "declare", "typeset", "readonly", "local", "eval", "return"})
_SHELL_META = re.compile(r"(?<![&|])&(?![&>])|^\s*[A-Za-z_][A-Za-z0-9_]*=\S*\s*$", re.M)

#: what a cache cleanup removes, per package manager
_CACHE_PATHS = {
    "apt-get": ("/var/lib/apt/lists", "/var/cache/apt"),
    "apk": ("/var/cache/apk",),
    "yum": ("/var/cache/yum",), "dnf": ("/var/cache/dnf",),
    "pip": ("/root/.cache/pip", "/root/.cache", "~/.cache/pip", "~/.cache"),
    "npm": ("/root/.npm", "~/.npm"),
}


def installs(script: Script) -> set[str]:
    """Package managers that install packages in ``script`` (apt is counted as apt-get)."""
    out: set[str] = set()
    for c in script.commands:
        name = os.path.basename(c.name)
        if name in _INSTALL and c.subcommand in _INSTALL[name]:
            out.add("apt-get" if name == "apt" else name)
        elif name in ("pip", "pip3") and c.subcommand == "install":
            out.add("pip")
        elif name.startswith("python") and "pip" in c.args and "install" in c.args:
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
    return bool(cmds) and all(os.path.basename(c.name) in _UPDATE
                              and c.subcommand in _UPDATE[os.path.basename(c.name)]
                              for c in cmds)


def _is_removal_only(script: Script) -> bool:
    cmds = [c for c in script.commands if c.name != "set"]
    return bool(cmds) and all(c.name in ("rm", "apk", "apt-get", "yum", "dnf") and
                              (c.name == "rm" or c.subcommand in ("del", "purge", "remove",
                                                                  "autoremove", "clean"))
                              for c in cmds)


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
    return not _SHELL_META.search(a.shell_script)


def _consecutive_runs(stage: Stage) -> Iterator[tuple[Instruction, Instruction]]:
    prev: Instruction | None = None
    for ins in stage.instructions:
        if ins.keyword == "RUN" and prev is not None and prev.keyword == "RUN":
            yield prev, ins
        prev = ins


def merge_reason(a: Instruction, b: Instruction) -> str | None:
    """Why the RUN ``b`` belongs in the layer of the RUN ``a`` before it, or None."""
    if not mergeable(a, b):
        return None
    sa, sb = script_of(a), script_of(b)
    ia, ib = installs(sa), installs(sb)
    if _is_update_only(sa) and ib:
        return "updates the package index alone; the install in the next RUN may use a stale " \
               "cached index"
    if ia and ia == ib and ia <= set(_INSTALL) | {"apt-get"}:
        return f"installs packages with {'/'.join(sorted(ia))} like the RUN before it"
    if _is_removal_only(sb) and not cache_cleanups(sb):
        return "only removes files; deleting in a later layer does not make the image smaller"
    if cache_cleanups(sb) and (ia & cache_cleanups(sb)) and not ib:
        return "cleans the package cache of the RUN before it in a separate layer"
    return None


@rule("IW105", Severity.INFO, "Consecutive RUNs that should be one layer", "performance",
      "Each RUN is a layer. An index update alone, installs split over several RUNs, or a "
      "cleanup in its own RUN leave stale caches and deleted files in earlier layers, where "
      "they still take space and cache stale package indexes.",
      "Join the RUNs with `&&` (`imagewise lint --fix` does it when it is safe).")
def _merge_runs(df: Dockerfile, ctx: IWContext) -> Iterator[Finding]:
    if is_windows(df):
        return
    for stage in df.stages:
        for a, b in _consecutive_runs(stage):
            why = merge_reason(a, b) if posix_shell_at(df, stage, b.start_line) else None
            if why:
                yield _finding("IW105", df, b,
                               f"This RUN {why} (line {a.start_line}); merge it into that RUN")


@rule("IW111", Severity.WARNING, "Package cache removed in a later RUN than the install",
      "performance",
      "Files removed in a later layer still ship in the layer that created them. A package "
      "cache only stays out of the image when it is removed in the same RUN as the install "
      "(or never written: `apk add --no-cache`, `pip --no-cache-dir`, a cache mount).",
      "Move the cleanup into the RUN that installs (`apt-get install ... && rm -rf "
      "/var/lib/apt/lists/*`), or use a `RUN --mount=type=cache` for the cache directory.")
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
                yield _finding("IW111", df, ins,
                               f"This RUN removes the {'/'.join(late)} cache filled by the RUN "
                               f"at line {filled[late[0]]}; the files stay in that layer")
            for pm in installs(s):
                filled[pm] = ins.start_line
            prev_run = ins


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


@rule("IW106", Severity.WARNING, "Dependencies installed after copying the whole source",
      "performance",
      "When `COPY . .` comes before the dependency install, any source change invalidates the "
      "build cache and every dependency is downloaded and installed again. Copying only the "
      "manifests first keeps the install layer cached until the dependencies change.",
      "Copy only the dependency manifests (`package*.json`, `requirements*.txt`, "
      "`go.mod go.sum`, `Gemfile*`, `pom.xml`...) and install before copying the source, "
      "e.g. `COPY package*.json ./` → `RUN npm ci` → `COPY . .`.")
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
                    yield _finding(
                        "IW106", df, ins,
                        f"`{kind}` runs after the whole source is copied (line "
                        f"{copied_at.start_line}); copy the dependency manifests and install "
                        "them before `COPY . .`")
                    done_before.add(kind)


_TOOLCHAIN_PACKAGES = re.compile(
    r"^(gcc|g\+\+|gcc-c\+\+|cpp|clang|llvm|build-essential|build-base|alpine-sdk|make|cmake|"
    r"ninja|ninja-build|autoconf|automake|libtool|golang|go|golang-go|rust|rustc|cargo|maven|"
    r"gradle|default-jdk|default-jdk-headless|openjdk-\d+-jdk(-headless)?|openjdk\d+(-jdk)?|"
    r"java-\d+-openjdk-devel|nodejs-dev|gfortran|g\+\+-\d+|gcc-\d+)(=.*|-\d.*)?$")
_TOOLCHAIN_IMAGES = re.compile(r"^(golang|rust|maven|gradle|gcc|clang|sbt|swift|haskell|"
                               r"elixir|dotnet/sdk|eclipse-temurin:\S*jdk)")


def _removed_names(script: Script) -> set[str]:
    out: set[str] = set()
    for c in script.commands:
        if c.name == "apk" and c.subcommand == "del":
            out.update(c.args_no_flags[1:])
        elif c.name in ("apt-get", "apt", "yum", "dnf") and c.subcommand in ("purge", "remove",
                                                                               "erase"):
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
        if name not in _INSTALL or c.subcommand not in _INSTALL[name]:
            continue
        group = c.flag_value("virtual", "t") or ""
        for pkg in c.args_no_flags[1:]:
            if group and pkg == group:
                continue
            if _TOOLCHAIN_PACKAGES.match(pkg):
                out.append((pkg.split("=")[0], group))
    return out


@rule("IW108", Severity.WARNING, "Build toolchain left in the final stage", "performance",
      "Compilers and build tools (gcc, make, the Go or Rust toolchain, Maven...) are needed to "
      "build, not to run. Left in the final image they add hundreds of megabytes and attack "
      "surface; a multi-stage build compiles in a builder stage and copies only the result.",
      "Build in a `FROM ... AS build` stage and `COPY --from=build` only the artefacts into a "
      "slim runtime stage (or remove the build dependencies in the same RUN that used them).")
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
    if _TOOLCHAIN_IMAGES.match(f"{short}:{tag}" if tag else short) and \
            not re.search(r"jre|runtime", tag):
        yield _finding("IW108", df, chain[-1].from_instruction,
                       f"The final stage is built on the toolchain image `{root_base}`; build "
                       "in a builder stage and run from a slim runtime image")
        return
    runs = list(_runs(final))
    for pos, (ins, script) in enumerate(runs):
        tools = _toolchain_installs(script)
        if not tools:
            continue
        removed: set[str] = set()
        for _, later in runs[pos:]:
            removed |= _removed_names(later)
        left = sorted({p for p, g in tools if p not in removed and (not g or g not in removed)
                       and "*auto" not in removed})
        if left:
            yield _finding("IW108", df, ins,
                           f"The final stage installs {', '.join(left)} and keeps "
                           f"{'them' if len(left) > 1 else 'it'}; a multi-stage build would "
                           "leave the toolchain behind")


# -- secrets and remote sources -------------------------------------------------------------------

_SECRET_WORDS = frozenset({"password", "passwd", "pass", "pwd", "secret", "secrets", "token",
                           "apikey", "credential", "credentials", "passphrase", "auth"})
_SECRET_PAIRS = {("api", "key"), ("access", "key"), ("private", "key"), ("secret", "key"),
                 ("auth", "key"), ("signing", "key"), ("encryption", "key"), ("master", "key"),
                 ("client", "secret"), ("license", "key"), ("account", "key"), ("ssh", "key")}
_NOT_SECRET_SUFFIX = ("file", "path", "dir", "filename", "location", "length", "enabled",
                      "version", "url", "id", "name", "type", "header", "endpoint", "user")
_SECRET_VALUES = (
    ("an AWS access key", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a GitHub token", re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})")),
    ("a GitLab token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("a Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("an npm token", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b")),
    ("a Stripe key", re.compile(r"\b[sr]k_live_[A-Za-z0-9]{16,}")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("a private key", re.compile(r"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----")),
    ("a JSON web token", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.")),
    ("credentials in a URL", re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@$]+:[^/\s@$]+@")),
)


def _name_tokens(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [t for t in re.split(r"[_\-.]+", spaced.lower()) if t]


def secret_name(name: str) -> bool:
    tokens = _name_tokens(name)
    if not tokens or tokens[-1] in _NOT_SECRET_SUFFIX:
        return False
    if name.upper() in ("PWD", "OLDPWD"):
        return False
    if any(t in _SECRET_WORDS for t in tokens):
        return True
    return any(pair in _SECRET_PAIRS for pair in zip(tokens, tokens[1:]))


def secret_value(value: str) -> str | None:
    for what, pattern in _SECRET_VALUES:
        if pattern.search(value):
            return what
    return None


def mask(value: str) -> str:
    return value[:3] + "*" * min(max(len(value) - 3, 3), 12) if len(value) > 6 else "******"


@rule("IW109", Severity.ERROR, "Secret in ARG or ENV", "security",
      "ENV values are stored in the image config and ARG values in the build history and "
      "provenance: anyone who can pull the image can read them. Secrets must never pass "
      "through ARG or ENV, not even as a build argument without a default.",
      "Use a build secret: `RUN --mount=type=secret,id=npm_token NPM_TOKEN=$(cat "
      "/run/secrets/npm_token) npm ci`, and pass runtime secrets when the container starts.")
def _secrets(df: Dockerfile, ctx: IWContext) -> Iterator[Finding]:
    for ins in df.instructions:
        eff = ins.effective
        if eff.keyword not in ("ARG", "ENV"):
            continue
        for name, value in eff.pairs:
            what = secret_value(value or "")
            if what:
                yield _finding("IW109", df, ins,
                               f"{eff.keyword} {name} holds what looks like {what} "
                               f"(`{mask(value or '')}`)")
            elif secret_name(name) and not (eff.keyword == "ENV" and not value):
                shown = f" = `{mask(value)}`" if value and "$" not in value else ""
                yield _finding("IW109", df, ins,
                               f"{eff.keyword} {name}{shown} passes a secret through the "
                               "image metadata")


@rule("IW110", Severity.WARNING, "ADD of a remote URL without --checksum", "security",
      "`ADD https://...` downloads whatever the server returns at build time; without a "
      "checksum a compromised or changed file goes into the image unnoticed.",
      "Add `--checksum=sha256:<digest>` to the ADD (BuildKit Dockerfile 1.6+), or download with "
      "curl and verify with `sha256sum -c` in the same RUN.")
def _add_checksum(df: Dockerfile, ctx: IWContext) -> Iterator[Finding]:
    for ins in df.instructions:
        eff = ins.effective
        if eff.keyword != "ADD" or eff.has_flag("--checksum"):
            continue
        words = list(eff.arguments) if eff.is_exec_form else eff.args.split()
        urls = [w for w in words[:-1] if re.match(r"^https?://", w, re.I)]
        for url in urls:
            yield _finding("IW110", df, ins, f"ADD downloads {url} without --checksum")


# -- build context --------------------------------------------------------------------------------

_SECRET_FILES = (".env", ".env.*", "*.pem", "*.key", "id_rsa*", "id_ed25519*", "id_ecdsa*",
                 ".npmrc", ".pypirc", ".netrc", "credentials*.json", "*.p12", "*.pfx", ".aws",
                 ".ssh", "secrets", "secrets.*", "*.kdbx", ".git-credentials", ".dockercfg",
                 "*.jks", "*.keystore")


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
            out.append(p[i:j + 1] if j > i else re.escape(p[i]))
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


def _uses_context(df: Dockerfile) -> bool:
    return any(i.effective.keyword in ("COPY", "ADD") and i.effective.flag("--from") is None
               and not (i.effective.heredocs and len(i.effective.args.split()) <= 2)
               for i in df.instructions)


def _is_js(df: Dockerfile, context: str) -> bool:
    if os.path.exists(os.path.join(context, "package.json")):
        return True
    return any(script_of(i).uses("npm", "yarn", "pnpm") for i in df.instructions
               if i.effective.keyword == "RUN")


@rule("IW107", Severity.WARNING, ".dockerignore missing or incomplete", "security",
      "Without a .dockerignore the whole directory is sent as the build context: `.git`, "
      "`node_modules`, `.env` files and keys slow every build, bust the cache and end up in the "
      "image through `COPY . .`.",
      "Add a `.dockerignore` beside the build context listing at least `.git`, `node_modules` "
      "and secret files (`.env`, `*.pem`, `*.key`).")
def _dockerignore(df: Dockerfile, ctx: IWContext) -> Iterator[Finding]:
    if ctx.context_dir is None or not _uses_context(df):
        return
    context = ctx.context_dir
    candidates = []
    if ctx.dockerfile_dir is not None:
        base = os.path.basename(df.filename)
        candidates.append(os.path.join(ctx.dockerfile_dir, base + ".dockerignore"))
    candidates.append(os.path.join(context, ".dockerignore"))
    path = next((c for c in candidates if os.path.isfile(c)), None)
    if path is None:
        yield _finding("IW107", df, None,
                       f"No .dockerignore in the build context {context!r}: .git, node_modules "
                       "and secrets are sent to the builder and can be copied into the image")
        return
    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = fh.read().splitlines()
    wanted = [".git"] + (["node_modules"] if _is_js(df, context) else [])
    try:
        present = sorted(os.listdir(context))
    except OSError:
        present = []
    wanted += [n for n in present
               if any(fnmatch.fnmatch(n, pat) for pat in _SECRET_FILES) and n not in wanted]
    missing = [w for w in wanted if not dockerignore_excludes(lines, w)]
    if missing:
        yield _finding("IW107", df, None,
                       f"{os.path.basename(path)} does not exclude {', '.join(missing)}")


@rule("IW112", Severity.WARNING, "`npm install` although a lockfile is present", "build",
      "`npm install` may resolve newer versions than the lockfile and rewrites it; `npm ci` "
      "installs exactly what the lockfile says, fails when it is out of date and is faster.",
      "Use `npm ci` (with `--omit=dev` for production images).")
def _npm_ci(df: Dockerfile, ctx: IWContext) -> Iterator[Finding]:
    if ctx.dockerfile_dir is None:
        return
    dirs = {ctx.dockerfile_dir, ctx.context_dir or ctx.dockerfile_dir}
    if not any(os.path.isfile(os.path.join(d, lock)) for d in dirs
               for lock in ("package-lock.json", "npm-shrinkwrap.json")):
        return
    for ins in df.instructions:
        if ins.effective.keyword == "RUN" and npm_installs(script_of(ins)):
            yield _finding("IW112", df, ins,
                           "`npm install` with a package-lock.json beside the Dockerfile; use "
                           "`npm ci`")


def npm_installs(script: Script) -> list[Command]:
    """``npm install``/``npm i`` commands that install from the manifest (no package names)."""
    return [c for c in script.commands if os.path.basename(c.name) == "npm"
            and c.subcommand in ("install", "i", "isntall") and len(c.args_no_flags) == 1]


# -- registration into the lint rule table --------------------------------------------------------

def context_from_lint(lint_ctx: object) -> IWContext:
    """An :class:`IWContext` for the lint engine's context (config + Dockerfile path)."""
    df: Dockerfile = getattr(lint_ctx, "dockerfile")
    cfg = getattr(lint_ctx, "config", None)
    dockerfile_dir = None
    if df.filename not in ("", "-") and os.path.isfile(df.filename):
        dockerfile_dir = os.path.dirname(os.path.abspath(df.filename))
    context_dir = getattr(cfg, "context_dir", None) or dockerfile_dir
    trusted = tuple(getattr(cfg, "trusted_registries", ()) or ())
    return IWContext(context_dir=context_dir, dockerfile_dir=dockerfile_dir,
                     allowed_registries=trusted)


def _adapter(r: IWRule) -> Callable[[object], Iterator[object]]:
    from imagewise.dockerfile.rules import Hit

    def run(lint_ctx: object) -> Iterator[object]:
        ctx = context_from_lint(lint_ctx)
        if r.id == "IW102" and ctx.allowed_registries:
            return  # a configured allow-list is DL3026's to enforce; IW102 is the default one
        for f in r.check(getattr(lint_ctx, "dockerfile"), ctx):
            yield Hit(f.location.line, f.message, f.location.column or 1, f.location.end_line)

    return run


def _register() -> None:
    try:
        from imagewise.dockerfile.rules import REGISTRY, Rule, register
    except ModuleNotFoundError as e:  # the table is optional for the IW rules themselves
        if e.name != "imagewise.dockerfile.rules":
            raise
        return

    for r in IW_RULES.values():
        if r.id not in REGISTRY:
            register(Rule(r.info, _adapter(r)))  # type: ignore[arg-type]


_register()
