"""hadolint rules that look at one instruction at a time."""

from __future__ import annotations

import re
from collections.abc import Iterator

from imagewise.dockerfile.context import LintContext
from imagewise.dockerfile.pragmas import parse_ignore
from imagewise.dockerfile.rules import Hit, hadolint
from imagewise.dockerfile.rules._util import (
    ARCHIVE_EXTENSIONS,
    copy_paths,
    dequote,
    each,
)
from imagewise.dockerfile.words import split_words, unquote
from imagewise.findings import Severity as S


@hadolint(
    "DL1001",
    S.IGNORE,
    "Please refrain from using inline ignore pragmas `# hadolint ignore=DLxxxx`",
    rationale="Inline pragmas hide problems from reviewers; fix or configure instead.",
    fix="Remove the pragma and fix the finding, or ignore the rule in the config file.",
)
def dl1001(ctx: LintContext) -> Iterator[Hit]:
    for line, text in ctx.dockerfile.comments:
        parsed = parse_ignore(text)
        if parsed is not None and parsed[0] == "":
            yield Hit(line)


@hadolint(
    "DL3000",
    S.ERROR,
    "Use absolute WORKDIR",
    rationale="A relative WORKDIR depends on the previous one and is easy to get wrong.",
    fix="Use an absolute path, e.g. `WORKDIR /app`.",
)
def dl3000(ctx: LintContext) -> Iterator[Hit]:
    for outer, ins in each(ctx, "WORKDIR"):
        path = dequote(ins.args.strip())
        if not path or path.startswith(("/", "$")):
            continue
        if re.match(r"^[A-Za-z]:[\\/]", path):
            continue
        yield Hit(outer.start_line)


def _bad_port(token: str) -> bool:
    port = token.split("/", 1)[0]
    for part in port.split("-"):
        if "$" in part or not part.isdigit():
            continue
        if int(part) > 65535:
            return True
    return False


@hadolint(
    "DL3011",
    S.ERROR,
    "Valid UNIX ports range from 0 to 65535",
    rationale="EXPOSE with an impossible port is a typo.",
    fix="Use a port in 0-65535.",
)
def dl3011(ctx: LintContext) -> Iterator[Hit]:
    for outer, ins in each(ctx, "EXPOSE"):
        if any(_bad_port(unquote(t)) for t in split_words(ins.args)):
            yield Hit(outer.start_line)


def _is_archive(path: str) -> bool:
    return dequote(path).endswith(ARCHIVE_EXTENSIONS)


@hadolint(
    "DL3020",
    S.ERROR,
    "Use `COPY` instead of `ADD` for files and folders",
    rationale="ADD also fetches URLs and unpacks archives; COPY says only what it does.",
    fix="Replace ADD with COPY for local files and directories.",
    fixer="imagewise.dockerfile.fix:_add_to_copy",
)
def dl3020(ctx: LintContext) -> Iterator[Hit]:
    for outer, ins in each(ctx, "ADD"):
        sources, _ = copy_paths(ins, ctx.dockerfile.escape)
        if ins.heredocs and not sources:
            continue
        if not all(
            _is_archive(s) or dequote(s).startswith(("http://", "https://", "git@"))
            for s in sources
        ):
            yield Hit(outer.start_line)


@hadolint(
    "DL3021",
    S.ERROR,
    "`COPY` with more than 2 arguments requires the last argument to end with `/`",
    rationale="Several sources can only be copied into a directory.",
    fix="End the destination with `/`.",
)
def dl3021(ctx: LintContext) -> Iterator[Hit]:
    for outer, ins in each(ctx, "COPY"):
        sources, dest = copy_paths(ins, ctx.dockerfile.escape)
        if len(sources) > 1 and not dequote(dest).endswith("/"):
            yield Hit(outer.start_line)


@hadolint(
    "DL3025",
    S.WARNING,
    "Use arguments JSON notation for CMD and ENTRYPOINT arguments",
    rationale="The shell form runs under /bin/sh -c, so signals do not reach the process.",
    fix='Use the exec form: `CMD ["executable", "arg"]`.',
    fixer="imagewise.dockerfile.fix:_exec_form",
)
def dl3025(ctx: LintContext) -> Iterator[Hit]:
    for outer, ins in each(ctx, "CMD", "ENTRYPOINT", "HEALTHCHECK"):
        if ins.keyword == "HEALTHCHECK":
            head = ins.args.split(None, 1)
            if not head or head[0].upper() != "CMD":
                continue
        if not ins.is_exec_form and ins.args.strip():
            yield Hit(outer.start_line)


@hadolint(
    "DL3029",
    S.WARNING,
    "Do not use --platform flag with FROM",
    rationale="A fixed platform breaks multi-platform builds.",
    fix="Drop --platform, or use `--platform=$BUILDPLATFORM` for build stages.",
)
def dl3029(ctx: LintContext) -> Iterator[Hit]:
    for stage in ctx.dockerfile.stages:
        if stage.platform is not None and "$" not in stage.platform:
            yield Hit(stage.from_line)


@hadolint(
    "DL3043",
    S.ERROR,
    "`ONBUILD`, `FROM` or `MAINTAINER` triggered from within `ONBUILD` instruction",
    rationale="These instructions are not allowed as ONBUILD triggers.",
    fix="Remove the instruction from ONBUILD.",
)
def dl3043(ctx: LintContext) -> Iterator[Hit]:
    for ins in ctx.dockerfile.instructions:
        if ins.inner is not None and ins.inner.keyword in ("ONBUILD", "FROM", "MAINTAINER"):
            yield Hit(ins.start_line)


def _references(name: str, value: str) -> bool:
    if "${" + name + "}" in value:
        return True
    pieces = value.split("$" + name)
    if len(pieces) < 2:
        return False
    return any(not p[:1] or not (p[0].isalnum() or p[0] == "_") for p in pieces[1:])


@hadolint(
    "DL3044",
    S.ERROR,
    "Do not refer to an environment variable within the same `ENV` statement where it is defined",
    rationale="Within one ENV, references see the value from before the statement.",
    fix="Split the ENV into two instructions.",
)
def dl3044(ctx: LintContext) -> Iterator[Hit]:
    defined: set[str] = set()
    for outer, ins in each(ctx, "ENV", "ARG"):
        if ins.keyword == "ARG":
            defined.update(k for k, _ in ins.pairs)
            continue
        pairs = list(ins.pairs)
        bad = False
        for idx, (name, _) in enumerate(pairs):
            others = [v or "" for j, (_, v) in enumerate(pairs) if j != idx]
            if name not in defined and any(_references(name, v) for v in others):
                bad = True
        defined.update(k for k, _ in pairs)
        if bad:
            yield Hit(outer.start_line)


_LABEL_OK = re.compile(r"^[a-z][a-z0-9.-]*[a-z0-9]$|^[a-z]$")


def _bad_label_key(key: str) -> bool:
    return (
        not _LABEL_OK.match(key)
        or key.startswith(("com.docker.", "io.docker.", "org.dockerproject."))
        or ".." in key
        or "--" in key
    )


@hadolint(
    "DL3048",
    S.STYLE,
    "Invalid Label Key",
    rationale="Label keys should be lower-case reverse-DNS names (OCI convention).",
    fix="Use keys like `org.example.component`.",
)
def dl3048(ctx: LintContext) -> Iterator[Hit]:
    for outer, ins in each(ctx, "LABEL"):
        if any(_bad_label_key(k) for k, _ in ins.pairs):
            yield Hit(outer.start_line)


@hadolint(
    "DL3061",
    S.ERROR,
    "Invalid instruction order. Dockerfile must begin with `FROM`, `ARG` or comment",
    rationale="Only ARG may come before the first FROM.",
    fix="Move the instruction after FROM.",
)
def dl3061(ctx: LintContext) -> Iterator[Hit]:
    for ins in ctx.dockerfile.preamble:
        if ins.keyword not in ("ARG", "FROM"):
            yield Hit(ins.start_line)


_RESERVED_STAGE_NAMES = frozenset({"context", "scratch"})


@hadolint(
    "DL3063",
    S.WARNING,
    "Stage name should not be a reserved word",
    rationale="`scratch` and `context` have special meaning to the builder.",
    fix="Rename the stage.",
)
def dl3063(ctx: LintContext) -> Iterator[Hit]:
    for stage in ctx.dockerfile.stages:
        if stage.alias is not None and stage.alias.lower() in _RESERVED_STAGE_NAMES:
            yield Hit(stage.from_line)


_SENSITIVE_NAMES = frozenset(
    [
        "ACCESS_TOKEN",
        "APPLICATION_KEY",
        "APP_SECRET",
        "AUTH_TOKEN",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "BITTREX_API_KEY",
        "BITTREX_API_SECRET",
        "CF_PASSWORD",
        "CF_USERNAME",
        "CIRCLE_TOKEN",
        "CI_DEPLOY_PASSWORD",
        "CI_DEPLOY_USER",
        "DOCKERHUB_PASSWORD",
        "DOCKER_EMAIL",
        "DOCKER_PASSWORD",
        "DOCKER_USERNAME",
        "FACEBOOK_ACCESS_TOKEN",
        "FACEBOOK_APP_ID",
        "FACEBOOK_APP_SECRET",
        "FIREBASE_API_TOKEN",
        "FIREBASE_TOKEN",
        "FOSSA_API_KEY",
        "GH_ENTERPRISE_TOKEN",
        "GH_TOKEN",
        "GITHUB_ENTERPRISE_TOKEN",
        "GITHUB_TOKEN",
        "HEROKU_API_KEY",
        "HEROKU_API_USER",
        "NPM_AUTH_TOKEN",
        "NPM_TOKEN",
        "OKTA_AUTHN_GROUPID",
        "OKTA_CLIENT_ORGURL",
        "OKTA_CLIENT_TOKEN",
        "OKTA_OAUTH2_CLIENTID",
        "OKTA_OAUTH2_CLIENTSECRET",
        "OPENAI_API_KEY",
        "OS_PASSWORD",
        "OS_USERNAME",
        "POSTGRES_PASSWORD",
        "SLACK_TOKEN",
        "STRIPE_API_KEY",
        "STRIPE_DEVICE_NAME",
        "TRAVIS_OS_NAME",
        "TRAVIS_SECURE_ENV_VARS",
        "TRAVIS_SUDO",
        "VAULT_CLIENT_KEY",
        "VAULT_TOKEN",
    ]
)
_SUSPICIOUS = ("api_key", "client_key", "password", "private", "secret", "token", "username")


def sensitive_name(name: str) -> bool:
    return name.upper() in _SENSITIVE_NAMES or any(s in name.lower() for s in _SUSPICIOUS)


@hadolint(
    "DL3064",
    S.WARNING,
    "Potentially sensitive data should not be used in the `ARG` or `ENV` commands",
    area="security",
    rationale="ARG and ENV values are stored in the image history and config.",
    fix="Use `RUN --mount=type=secret` to pass secrets to the build.",
)
def dl3064(ctx: LintContext) -> Iterator[Hit]:
    for outer, ins in each(ctx, "ARG", "ENV"):
        if any(sensitive_name(k) for k, _ in ins.pairs):
            yield Hit(outer.start_line)


@hadolint(
    "DL3065",
    S.WARNING,
    "Setting FROM --platform to predefined $TARGETPLATFORM in is "
    "redundant as this is the default behavior",
    rationale="Stages already build for the target platform.",
    fix="Drop the flag.",
)
def dl3065(ctx: LintContext) -> Iterator[Hit]:
    for stage in ctx.dockerfile.stages:
        if stage.platform and dequote(stage.platform) in ("$TARGETPLATFORM", "${TARGETPLATFORM}"):
            yield Hit(stage.from_line)


@hadolint(
    "DL3066",
    S.INFO,
    "Non-numeric user-id may not be resolvable by host system",
    rationale="Kubernetes runAsNonRoot and host tools can only check numeric ids.",
    fix="Use a numeric UID (and GID), e.g. `USER 10001:10001`.",
)
def dl3066(ctx: LintContext) -> Iterator[Hit]:
    for outer, ins in each(ctx, "USER"):
        uid = dequote(ins.args.strip()).split(":", 1)[0]
        if not uid.isdigit():
            yield Hit(outer.start_line)


@hadolint(
    "DL3067",
    S.WARNING,
    "Do not copy an entire filesystem from another stage",
    rationale="Copying / drags every file of the other stage into this one.",
    fix="Copy only the paths you need.",
)
def dl3067(ctx: LintContext) -> Iterator[Hit]:
    for outer, ins in each(ctx, "COPY"):
        if ins.flag("--from") is None:
            continue
        sources, dest = copy_paths(ins, ctx.dockerfile.escape)
        if dequote(dest) == "/" and any(dequote(s) == "/" for s in sources):
            yield Hit(outer.start_line)


@hadolint(
    "DL4000",
    S.ERROR,
    "MAINTAINER is deprecated",
    rationale="MAINTAINER is deprecated in favour of a label.",
    fix='Use `LABEL org.opencontainers.image.authors="..."`.',
)
def dl4000(ctx: LintContext) -> Iterator[Hit]:
    for outer, _ in each(ctx, "MAINTAINER"):
        yield Hit(outer.start_line)
