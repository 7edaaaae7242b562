"""Image audit checks (CIS Docker Benchmark and dockle parity, plus our own), declared in one table.

Each check is a ``Check``: a ``RuleInfo`` (id, severity, title, rationale, fix, area) and a function
from an :class:`AuditContext` to findings. dockle's ids are kept where one exists; ours are
``IW-IMG-*``. Filesystem checks read the *final* filesystem (facts gathered by
:class:`~imagewise.audit.filesystem.AuditVisitor`), not history strings alone.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import date
from typing import TYPE_CHECKING

from imagewise.audit.filesystem import AuditVisitor, FileFact
from imagewise.findings import Finding, Location, RuleInfo, Severity
from imagewise.oci.model import ImageConfig
from imagewise.record import Record
from imagewise.secrets.mask import mask, redact, redact_path

if TYPE_CHECKING:
    from imagewise.registry.referrers import Deprecation

E, W, I = Severity.ERROR, Severity.WARNING, Severity.INFO


class AuditContext(Record):
    __slots__ = (  # noqa: RUF023 - in field order
        "config",
        "facts",
        "tag",  # the tag the image was referenced by, if any
        "annotations",
        "layer_ids",  # diff_id (or digest) per layer index
        "deprecations",
        "today",
    )

    def __init__(
        self,
        config: ImageConfig,
        facts: AuditVisitor,
        tag: str | None = None,
        annotations: dict[str, str] | None = None,
        layer_ids: tuple[str, ...] = (),
        deprecations: tuple[tuple[str, Deprecation], ...] = (),
        today: date | None = None,
    ) -> None:
        self.config = config
        self.facts = facts
        self.tag = tag
        self.annotations = {} if annotations is None else annotations
        self.layer_ids = layer_ids
        self.deprecations = deprecations
        self.today = today

    def layer_of(self, index: int | None) -> str:
        if index is None or index >= len(self.layer_ids):
            return ""
        return self.layer_ids[index]

    def at(self, fact: FileFact) -> Location:
        return Location(
            layer=self.layer_of(fact.layer_index),
            layer_index=fact.layer_index,
            path="/" + redact_path(fact.path),
        )

    def history(self) -> Iterable[tuple[int | None, str]]:
        """(layer index or None for empty layers, created_by) in order."""
        idx = 0
        for h in self.config.history:
            if h.empty_layer:
                yield None, h.created_by
            else:
                yield idx, h.created_by
                idx += 1


class Check(Record):
    __slots__ = ("info", "run")  # noqa: RUF023 - in field order

    def __init__(self, info: RuleInfo, run: Callable[[AuditContext], list[Finding]]) -> None:
        self.info = info
        self.run = run


CHECKS: dict[str, Check] = {}


def check(
    id: str,
    severity: Severity,
    title: str,
    area: str,
    rationale: str,
    fix: str,
    source: str = "dockle",
) -> Callable[[Callable[[AuditContext], Iterable[Finding]]], Check]:
    info = RuleInfo(id, severity, title, rationale, fix, area, source, "audit")

    def deco(fn: Callable[[AuditContext], Iterable[Finding]]) -> Check:
        c = Check(info, lambda ctx: list(fn(ctx)))
        CHECKS[id] = c
        return c

    return deco


def finding(
    info: RuleInfo, message: str, loc: Location | None = None, fix: str = "", bytes_saved: int = 0
) -> Finding:
    return Finding(
        info.id, info.severity, info.title, message, loc or Location(), fix or info.fix, bytes_saved
    )


def _inf(id: str) -> RuleInfo:
    return CHECKS[id].info


def _mib(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def _history_hits(ctx: AuditContext, pattern: re.Pattern[str]) -> Iterable[tuple[int | None, str]]:
    for idx, cmd in ctx.history():
        if pattern.search(cmd):
            yield idx, cmd


def _short(cmd: str, n: int = 100) -> str:
    """A history line for a message: secrets masked, then shortened."""
    cmd = re.sub(r"^/bin/sh -c (#\(nop\)\s*)?", "", redact(cmd)).strip()
    return cmd if len(cmd) <= n else cmd[: n - 1] + "…"


# --- user and runtime ------------------------------------------------------------------------


@check(
    "CIS-DI-0001",
    W,
    "Create a user for the container",
    "security",
    "A container that runs as root turns any escape or file-write bug into root on the host's "
    "view of the container filesystem.",
    "Add `RUN useradd -r app` and `USER app` in the final stage.",
)
def _root_user(ctx: AuditContext) -> Iterable[Finding]:
    user = ctx.config.user.strip()
    if user in ("", "root", "0") or user.startswith(("root:", "0:")):
        shown = user or "unset (root)"
        yield finding(
            _inf("CIS-DI-0001"), f"image runs as user {shown}", Location(path="config.User")
        )


@check(
    "CIS-DI-0006",
    I,
    "Add HEALTHCHECK instruction to the container image",
    "operations",
    "Without a health check an orchestrator cannot tell a hung process from a healthy one.",
    "Add `HEALTHCHECK CMD <probe>` to the final stage.",
)
def _healthcheck(ctx: AuditContext) -> Iterable[Finding]:
    hc = ctx.config.healthcheck or {}
    test = hc.get("Test") if isinstance(hc, dict) else None
    if not test or test == ["NONE"]:
        yield finding(
            _inf("CIS-DI-0006"), "image has no HEALTHCHECK", Location(path="config.Healthcheck")
        )


_UPDATE = re.compile(r"\b(apt-get|apt|apk|yum|dnf|zypper|microdnf)\s+(-\S+\s+)*update\b")
_INSTALL = re.compile(r"\b(install|add|upgrade)\b")


@check(
    "CIS-DI-0007",
    E,
    "Do not use update instructions alone in the Dockerfile",
    "build",
    "An `update` in its own layer is cached forever; later installs use a stale index.",
    "Run `update` and `install` in the same RUN.",
)
def _update_alone(ctx: AuditContext) -> Iterable[Finding]:
    for idx, cmd in _history_hits(ctx, _UPDATE):
        if not _INSTALL.search(_UPDATE.sub("", cmd)):
            yield finding(
                _inf("CIS-DI-0007"),
                f"update alone: {_short(cmd)}",
                Location(layer=ctx.layer_of(idx), layer_index=idx),
            )


@check(
    "CIS-DI-0008",
    I,
    "Confirm safety of setuid and setgid files",
    "security",
    "setuid/setgid binaries are the usual privilege-escalation path inside a container.",
    "Remove the bits: `RUN find / -xdev -perm /6000 -type f -exec chmod a-s {} +`.",
)
def _setid(ctx: AuditContext) -> Iterable[Finding]:
    for fact in sorted(ctx.facts.setid.values(), key=lambda f: f.path):
        bits = ("setuid" if fact.mode & 0o4000 else "") + (
            ("+" if fact.mode & 0o4000 else "") + "setgid" if fact.mode & 0o2000 else ""
        )
        yield finding(
            _inf("CIS-DI-0008"),
            f"{bits} file /{redact_path(fact.path)} (mode {fact.mode & 0o7777:04o})",
            ctx.at(fact),
        )


@check(
    "CIS-DI-0009",
    E,
    "Use COPY instead of ADD in Dockerfile",
    "build",
    "ADD fetches URLs and unpacks archives implicitly; COPY does only what it says.",
    "Use COPY for local files; fetch remote files in RUN with a checksum, or `ADD --checksum`.",
)
def _add(ctx: AuditContext) -> Iterable[Finding]:
    for idx, cmd in ctx.history():
        text = _short(cmd, 400)
        if re.match(r"^(ADD|add)\s", text):
            # the base image's own rootfs (`ADD file:<hash> in /` on layer 0) is how official
            # images are made, not a choice of this Dockerfile
            if idx == 0 and re.match(r"^ADD file:[0-9a-f]+ in /\s*$", text):
                continue
            yield finding(
                _inf("CIS-DI-0009"),
                f"ADD in history: {_short(cmd)}",
                Location(layer=ctx.layer_of(idx), layer_index=idx),
            )


_SECRET_WORDS = re.compile(
    r"(?i)(passw(or)?d|passwd|secret|token|api[_-]?key|private[_-]?key|"
    r"access[_-]?key|credential|auth)"
)
_ACCEPT_KEYS = re.compile(
    r"(?i)^(GPG_KEY|.*_SHA256|.*_CHECKSUM|.*_KEYRING|.*_KEY_?ID|PYTHON_GET_PIP_SHA256)$"
)


@check(
    "CIS-DI-0010",
    E,
    "Do not store secrets in Dockerfiles",
    "security",
    "Anything in ENV, a layer or the history ships to everyone who can pull the image, even if "
    "a later layer deletes it.",
    "Pass secrets at run time, or use `RUN --mount=type=secret`; never bake them into layers.",
)
def _secrets(ctx: AuditContext) -> Iterable[Finding]:
    info = _inf("CIS-DI-0010")
    for env in ctx.config.env:
        key, _, value = env.partition("=")
        if _SECRET_WORDS.search(key) and not _ACCEPT_KEYS.match(key) and value.strip():
            yield finding(
                info,
                f"ENV {key}={mask(value)} looks like a secret",
                Location(path=f"config.Env.{key}"),
            )
    for fact in sorted(ctx.facts.credentials.values(), key=lambda f: f.path):
        yield finding(info, f"credential-like file /{redact_path(fact.path)}", ctx.at(fact))


_SUDO = re.compile(r"(^|[\s;&|(])sudo\s")


@check(
    "DKL-DI-0001",
    E,
    "Avoid sudo command",
    "security",
    "sudo in a container hides who runs what and needs a setuid binary.",
    "Run the step as root before `USER`, or use `gosu`/`su-exec` in an entrypoint.",
)
def _sudo(ctx: AuditContext) -> Iterable[Finding]:
    for idx, cmd in _history_hits(ctx, _SUDO):
        yield finding(
            _inf("DKL-DI-0001"),
            f"sudo in history: {_short(cmd)}",
            Location(layer=ctx.layer_of(idx), layer_index=idx),
        )


@check(
    "DKL-DI-0002",
    E,
    "Avoid sensitive directory mounting",
    "security",
    "A VOLUME over /dev, /proc or /sys exposes the host's kernel interfaces.",
    "Remove the VOLUME; mount what the container needs at run time, read-only.",
)
def _volumes(ctx: AuditContext) -> Iterable[Finding]:
    for vol in ctx.config.volumes:
        v = "/" + vol.strip("/")
        if v in ("/dev", "/proc", "/sys") or v.startswith(("/dev/", "/proc/", "/sys/")):
            yield finding(_inf("DKL-DI-0002"), f"VOLUME {vol}", Location(path="config.Volumes"))


@check(
    "DKL-DI-0003",
    W,
    "Avoid apt-get dist-upgrade",
    "build",
    "dist-upgrade can change the distribution under the base image's feet; rebuild on a newer base.",
    "Use a newer base image tag instead of `dist-upgrade`.",
)
def _dist_upgrade(ctx: AuditContext) -> Iterable[Finding]:
    for idx, cmd in _history_hits(ctx, re.compile(r"\bapt(-get)?\s+(-\S+\s+)*dist-upgrade\b")):
        yield finding(
            _inf("DKL-DI-0003"),
            f"dist-upgrade: {_short(cmd)}",
            Location(layer=ctx.layer_of(idx), layer_index=idx),
        )


def _cache_facts(ctx: AuditContext, kinds: tuple[str, ...]) -> list[FileFact]:
    from imagewise.audit.filesystem import CACHE_PREFIXES

    prefixes = tuple(p for p, k in CACHE_PREFIXES.items() if k in kinds)
    return sorted(
        (f for f in ctx.facts.caches.values() if f.path.startswith(prefixes)), key=lambda f: f.path
    )


def _cache_findings(
    ctx: AuditContext, id: str, kinds: tuple[str, ...], what: str
) -> Iterable[Finding]:
    facts = _cache_facts(ctx, kinds)
    if not facts:
        return
    by_layer = Counter(f.layer_index for f in facts)
    size_by_layer: Counter[int] = Counter()
    for f in facts:
        size_by_layer[f.layer_index] += f.size
    for idx, count in sorted(by_layer.items()):
        sample = next(f for f in facts if f.layer_index == idx)
        yield finding(
            _inf(id),
            f"{what}: {count} files, {_mib(size_by_layer[idx])} left in the image "
            f"(e.g. /{redact_path(sample.path)})",
            Location(layer=ctx.layer_of(idx), layer_index=idx, path="/" + sample.path),
            bytes_saved=size_by_layer[idx],
        )


@check(
    "DKL-DI-0004",
    E,
    "Use apk add with --no-cache",
    "performance",
    "The apk index cache is dead weight in the image.",
    "Use `apk add --no-cache ...`.",
)
def _apk_cache(ctx: AuditContext) -> Iterable[Finding]:
    yield from _cache_findings(ctx, "DKL-DI-0004", ("apk-cache",), "apk cache")


@check(
    "DKL-DI-0005",
    E,
    "Clear apt-get caches",
    "performance",
    "apt package lists and downloaded .debs are dead weight in the image.",
    "End the install RUN with `&& rm -rf /var/lib/apt/lists/*` (or `apt-get dist-clean`).",
)
def _apt_cache(ctx: AuditContext) -> Iterable[Finding]:
    yield from _cache_findings(ctx, "DKL-DI-0005", ("apt-lists", "apt-archives"), "apt cache")


@check(
    "DKL-DI-0006",
    W,
    "Avoid latest tag",
    "operations",
    "`latest` moves; deployments and rollbacks need a tag that names one build.",
    "Tag images with a version (semver), an environment and a timestamp or git revision.",
)
def _latest(ctx: AuditContext) -> Iterable[Finding]:
    if ctx.tag == "latest":
        yield finding(_inf("DKL-DI-0006"), "image is referenced by the `latest` tag")


def _accounts(ctx: AuditContext, path: str) -> tuple[int | None, list[list[str]]]:
    got = ctx.facts.accounts.get(path)
    if not got:
        return None, []
    idx, text = got
    rows = [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]
    return idx, rows


@check(
    "DKL-LI-0001",
    E,
    "Avoid empty password",
    "security",
    "An account with an empty password lets anyone log in as it (CVE-2019-5021).",
    "Lock the account: `passwd -l USER` (or `*`/`!` in the shadow password field).",
)
def _empty_password(ctx: AuditContext) -> Iterable[Finding]:
    for path in ("etc/shadow", "etc/master.passwd"):
        idx, rows = _accounts(ctx, path)
        for row in rows:
            if len(row) > 1 and row[1] == "":
                yield finding(
                    _inf("DKL-LI-0001"),
                    f"user {row[0]} has an empty password in /{path}",
                    Location(layer=ctx.layer_of(idx), layer_index=idx, path="/" + path),
                )


@check(
    "DKL-LI-0002",
    E,
    "Be unique UID/GROUPs",
    "security",
    "Two accounts sharing an id share every file and permission.",
    "Give each user and group its own id.",
)
def _duplicate_ids(ctx: AuditContext) -> Iterable[Finding]:
    for path, what in (("etc/passwd", "UID"), ("etc/group", "GID")):
        idx, rows = _accounts(ctx, path)
        seen: dict[str, str] = {}
        for row in rows:
            if len(row) > 2 and row[2]:
                if row[2] in seen:
                    yield finding(
                        _inf("DKL-LI-0002"),
                        f"duplicate {what} {row[2]}: {seen[row[2]]} and {row[0]} in /{path}",
                        Location(layer=ctx.layer_of(idx), layer_index=idx, path="/" + path),
                    )
                else:
                    seen[row[2]] = row[0]


@check(
    "DKL-LI-0003",
    I,
    "Only put necessary files",
    "performance",
    "Build context leftovers (VCS metadata, editor files, cloud credentials dirs) add bytes and "
    "can leak history or secrets.",
    "Exclude them in `.dockerignore`.",
)
def _unnecessary(ctx: AuditContext) -> Iterable[Finding]:
    for fact in sorted(ctx.facts.unnecessary.values(), key=lambda f: f.path):
        yield finding(
            _inf("DKL-LI-0003"), f"unnecessary file /{redact_path(fact.path)}", ctx.at(fact)
        )


# --- imagewise's own image checks ------------------------------------------------------------


@check(
    "IW-IMG-001",
    W,
    "World-writable files outside temporary directories",
    "security",
    "Any process in the container can rewrite a world-writable file, e.g. a script run as root.",
    "`chmod o-w` them in the RUN that creates them.",
    source="imagewise",
)
def _world_writable(ctx: AuditContext) -> Iterable[Finding]:
    facts = sorted(ctx.facts.world_writable.values(), key=lambda f: f.path)
    for fact in facts[:50]:
        yield finding(
            _inf("IW-IMG-001"),
            f"world-writable /{redact_path(fact.path)} (mode {fact.mode & 0o7777:04o})",
            ctx.at(fact),
        )
    if len(facts) > 50:
        yield finding(_inf("IW-IMG-001"), f"... and {len(facts) - 50} more world-writable paths")


@check(
    "IW-IMG-002",
    W,
    "Privileged port exposed",
    "security",
    "Ports below 1024 need root or CAP_NET_BIND_SERVICE inside the container.",
    "Listen on a port >= 1024 and map it at run time.",
    source="imagewise",
)
def _privileged_ports(ctx: AuditContext) -> Iterable[Finding]:
    for port in ctx.config.exposed_ports:
        num = port.split("/")[0]
        if num.isdigit() and 0 < int(num) < 1024:
            yield finding(
                _inf("IW-IMG-002"),
                f"EXPOSE {port} is a privileged port",
                Location(path="config.ExposedPorts"),
            )


REQUIRED_LABELS = (
    "org.opencontainers.image.source",
    "org.opencontainers.image.version",
    "org.opencontainers.image.revision",
    "org.opencontainers.image.created",
)


@check(
    "IW-IMG-003",
    I,
    "Missing OCI labels",
    "operations",
    "Source, version, revision and creation time let anyone trace an image back to its build.",
    "Add `LABEL org.opencontainers.image.source=... version=... revision=... created=...` "
    "(or `--annotation` at build time).",
    source="imagewise",
)
def _labels(ctx: AuditContext) -> Iterable[Finding]:
    have = {**ctx.annotations, **ctx.config.labels}
    missing = [k for k in REQUIRED_LABELS if not have.get(k)]
    if missing:
        yield finding(
            _inf("IW-IMG-003"),
            "missing labels: " + ", ".join(missing),
            Location(path="config.Labels"),
        )


@check(
    "IW-IMG-004",
    W,
    "Base image not pinned by digest",
    "security",
    "A base image named only by tag can change under a rebuild; a digest names exact bytes.",
    "Write `FROM image:tag@sha256:...` (and let a bot update the digest).",
    source="imagewise",
)
def _base_digest(ctx: AuditContext) -> Iterable[Finding]:
    have = {**ctx.config.labels, **ctx.annotations}
    name = have.get("org.opencontainers.image.base.name", "")
    digest = have.get("org.opencontainers.image.base.digest", "")
    if "@sha256:" in name or digest.startswith("sha256:"):
        return
    what = f"base image {name}" if name else "base image"
    yield finding(
        _inf("IW-IMG-004"),
        f"{what} is not pinned by digest (no base digest recorded)",
        Location(path="annotations"),
    )


@check(
    "IW-IMG-005",
    W,
    "Deprecated image or base image",
    "operations",
    "Its owners marked the image (or the image it is built on) deprecated with `imagewise "
    "deprecate`: it gets no fixes, and past its sunset date it may be deleted. Past the sunset "
    "the finding is an error, so the default policy fails.",
    "Move to the replacement the record names, and rebuild.",
    source="imagewise",
)
def _deprecated(ctx: AuditContext) -> Iterable[Finding]:
    for what, dep in ctx.deprecations:
        past = dep.past_sunset(ctx.today)
        f = finding(
            _inf("IW-IMG-005"),
            f"{what} is deprecated: {dep.summary()}" + (" (past its sunset)" if past else ""),
            Location(path="deprecation"),
            fix=f"move to {dep.replacement}" if dep.replacement else "",
        )
        yield f.replace(severity=Severity.ERROR) if past else f


def run_checks(ctx: AuditContext, disabled: Iterable[str] = ()) -> list[Finding]:
    off = set(disabled)
    out: list[Finding] = []
    for cid, c in CHECKS.items():
        if cid not in off:
            out.extend(c.run(ctx))
    return out


def rule_infos() -> list[RuleInfo]:
    return [c.info for c in CHECKS.values()]
