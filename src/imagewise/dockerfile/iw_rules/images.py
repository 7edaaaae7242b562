"""Base image, user and health rules.

IW101 pinned base, IW102 allowed registry, IW103 non-root final stage, IW104 HEALTHCHECK on
service images.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from imagewise.dockerfile.iw_rules._base import (
    DEFAULT_REGISTRIES,
    IWContext,
    finding,
    is_windows,
    rule,
    runs,
    split_image,
    stage_chain,
)
from imagewise.dockerfile.model import Dockerfile, Instruction, Stage
from imagewise.findings import Finding, Severity

# -- base image -----------------------------------------------------------------------------------

_CODENAMES = frozenset(
    {
        "buster",
        "bullseye",
        "bookworm",
        "trixie",
        "forky",
        "duke",
        "stretch",
        "jessie",
        "xenial",
        "bionic",
        "focal",
        "jammy",
        "noble",
        "plucky",
        "questing",
        "oracular",
        "ltsc2019",
        "ltsc2022",
        "ltsc2025",
    }
)
_FLOATING = frozenset(
    {
        "latest",
        "stable",
        "lts",
        "current",
        "edge",
        "mainline",
        "rolling",
        "testing",
        "unstable",
        "sid",
        "nightly",
        "devel",
        "dev",
        "master",
        "main",
        "next",
        "canary",
        "beta",
        "alpha",
        "rc",
        "release",
    }
)


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
        if base.lower() != "scratch" and base.lower() not in names and "$" not in base and base:
            yield stage, base
        if stage.alias:
            names.add(stage.alias.lower())


@rule(
    "IW101",
    Severity.WARNING,
    "Base image is not pinned to a version tag or digest",
    "build",
    "A floating tag such as `alpine`, `lts`, `stable`, `mainline` or `slim` moves to a new "
    "release without notice, so the same Dockerfile builds a different image tomorrow. "
    "(A missing tag and `latest` are reported by DL3006/DL3007.)",
    "Use a version tag (`python:3.12-slim`, `debian:bookworm-slim`) or a digest "
    "(`image@sha256:...`).",
)
def _base_pinned(df: Dockerfile, ctx: IWContext) -> Iterator[Finding]:
    for stage, base in _external_bases(df):
        _, _, tag, digest = split_image(base)
        if digest or not tag or tag == "latest" or tag_is_pinned(tag):
            continue
        yield finding(
            "IW101",
            df,
            stage.from_instruction,
            f"Base image `{base}` uses the floating tag `{tag}`; pin a version tag or a digest",
        )


@rule(
    "IW102",
    Severity.WARNING,
    "Base image comes from a registry that is not allowed",
    "security",
    "Base images are code you run: they should come only from registries you trust and "
    "mirror. The allow-list is `allowed-registries` in `[tool.imagewise]` (or hadolint's "
    "`trustedRegistries`); without one, well-known public registries are allowed, and "
    "`imagewise check` uses its policy's `allowed_registries`.",
    "Pull the base image from an allowed registry (or mirror it there), or add the registry "
    "to `allowed-registries`.",
    # a configured allow-list is DL3026's to enforce under lint; IW102 is the default one
    lint_when=lambda ctx: not ctx.allowed_registries,
)
def _base_registry(df: Dockerfile, ctx: IWContext) -> Iterator[Finding]:
    from imagewise.registries import registry_allowed

    allowed = ctx.allowed_registries or (
        DEFAULT_REGISTRIES if ctx.default_registries is None else ctx.default_registries
    )
    if not allowed:
        return  # the policy allows every registry
    for stage, base in _external_bases(df):
        registry = split_image(base)[0].lower()
        if not registry_allowed(registry, allowed):
            yield finding(
                "IW102",
                df,
                stage.from_instruction,
                f"Base image `{base}` comes from `{registry}`, which is not in the "
                f"allowed registries ({', '.join(allowed)})",
            )


# -- user and health ------------------------------------------------------------------------------

_PRIV_DROP = ("gosu", "su-exec", "setpriv", "chroot", "runuser", "s6-setuidgid", "setuser")
_TOOL_DIRS = (
    "/usr/local/bin",
    "/usr/bin",
    "/bin",
    "/usr/sbin",
    "/sbin",
    "/",
    "/docker-entrypoint.d",
    "/usr/local/sbin",
)


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


@rule(
    "IW103",
    Severity.WARNING,
    "Final stage runs as root",
    "security",
    "A process running as root in the container is root on the host's kernel: a container "
    "escape or a writable host mount becomes a host compromise. The image should choose an "
    "unprivileged user itself. (An explicit `USER root` is reported by DL3002.)",
    "Create a user (`RUN useradd -r -u 10001 app`) and end the final stage with `USER app` "
    "(or a numeric `USER 10001`).",
)
def _non_root(df: Dockerfile, ctx: IWContext) -> Iterator[Finding]:
    if not df.stages or is_windows(df):
        return
    final = df.stages[-1]
    if _last_user(df, final) is not None:
        return  # a non-root USER is the fix; an explicit `USER root` is DL3002's to report
    base = stage_chain(df, final)[-1].base_image.lower()
    if "nonroot" in base or "rootless" in base:
        return
    drop = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, _PRIV_DROP)) + r")(?![\w-])")
    scripts = [s.text for st in stage_chain(df, final) for _, s in runs(st)]
    scripts += [
        " ".join(i.arguments) if i.is_exec_form else i.args
        for i in final.instructions
        if i.keyword in ("CMD", "ENTRYPOINT")
    ]
    if any(drop.search(text) for text in scripts):
        return  # the entrypoint drops privileges (gosu and friends are installed for it)
    has_cmd = any(i.keyword in ("CMD", "ENTRYPOINT") for i in final.instructions)
    if not (has_cmd and any(_app_content(i) for i in final.instructions)):
        return  # a base image for others to build on: they choose the user
    anchor = next(i for i in reversed(final.instructions) if i.keyword in ("CMD", "ENTRYPOINT"))
    yield finding(
        "IW103", df, anchor, "The final stage sets no USER, so the application runs as root"
    )


@rule(
    "IW104",
    Severity.INFO,
    "Service image without HEALTHCHECK",
    "operations",
    "An image that exposes a port is a service; without a HEALTHCHECK the runtime only knows "
    "the process is alive, not that it answers, so a hung service is never restarted or "
    "taken out of rotation.",
    "Add `HEALTHCHECK CMD <probe>` (e.g. `HEALTHCHECK --interval=30s CMD wget -qO- "
    "http://localhost:8080/health || exit 1`), or `HEALTHCHECK NONE` to opt out explicitly.",
)
def _healthcheck(df: Dockerfile, ctx: IWContext) -> Iterator[Finding]:
    if not df.stages:
        return
    final = df.stages[-1]
    chain = stage_chain(df, final)
    if any(i.keyword == "HEALTHCHECK" for st in chain for i in st.instructions):
        return
    expose = [i for i in final.instructions if i.keyword == "EXPOSE"]
    if expose:
        yield finding(
            "IW104",
            df,
            expose[-1],
            f"The final stage exposes {expose[-1].args.strip()} but has no HEALTHCHECK",
        )


@rule(
    "IW113",
    Severity.WARNING,
    "FROM names a deprecated base image",
    "operations",
    "The base image's owners marked it deprecated (`imagewise deprecate`): it gets no more "
    "fixes, and past its sunset it may be deleted and fail the build. Reported by "
    "`lint --check-bases`, which asks the base images' registries; plain `lint` stays offline.",
    "Move to the replacement the record names (`imagewise outdated Dockerfile` shows it).",
    lint_when=lambda ctx: bool(ctx.deprecated_bases),
)
def _deprecated_base(df: Dockerfile, ctx: IWContext) -> Iterator[Finding]:
    found = dict(ctx.deprecated_bases)
    for stage in df.stages:
        summary = found.get(stage.base_image)
        if summary is not None:
            yield finding(
                "IW113",
                df,
                stage.from_instruction,
                f"{stage.base_image} is deprecated: {summary}",
            )
