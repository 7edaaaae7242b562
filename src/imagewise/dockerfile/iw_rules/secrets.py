"""Secret and download rules.

IW109 secrets in ARG/ENV names and values, IW110 ADD of a remote URL without --checksum.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

from imagewise.dockerfile.iw_rules._base import IWContext, finding, rule
from imagewise.dockerfile.model import Dockerfile
from imagewise.findings import Finding, Severity
from imagewise.secrets.mask import mask

# -- secrets and remote sources -------------------------------------------------------------------

_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "secrets",
        "token",
        "apikey",
        "credential",
        "credentials",
        "passphrase",
    }
)
#: words that name a secret only as the last part of a name (DB_PASS, but not PASS_MAX_DAYS)
_SECRET_LAST = frozenset({"pass", "pwd", "auth", "pw"})
_SECRET_PAIRS = {
    ("api", "key"),
    ("access", "key"),
    ("private", "key"),
    ("secret", "key"),
    ("auth", "key"),
    ("signing", "key"),
    ("encryption", "key"),
    ("master", "key"),
    ("client", "secret"),
    ("license", "key"),
    ("account", "key"),
    ("ssh", "key"),
}
_NOT_SECRET_SUFFIX = (
    "file",
    "path",
    "dir",
    "filename",
    "location",
    "length",
    "enabled",
    "version",
    "url",
    "id",
    "name",
    "type",
    "header",
    "endpoint",
    "user",
)
#: (what, literals one of which the pattern needs, pattern): a pattern is compiled the first
#: time a value holds one of its literals (most Dockerfiles' values hold none)
_SECRET_VALUES = (
    ("an AWS access key", ("AKIA", "ASIA"), r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("a GitHub token", ("_",), r"\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})"),
    ("a GitLab token", ("glpat-",), r"\bglpat-[A-Za-z0-9_-]{20,}"),
    ("a Slack token", ("xox",), r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    ("an npm token", ("npm_",), r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("a Stripe key", ("k_live_",), r"\b[sr]k_live_[A-Za-z0-9]{16,}"),
    ("a Google API key", ("AIza",), r"\bAIza[0-9A-Za-z_-]{35}\b"),
    ("a private key", ("-----BEGIN ",), r"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----"),
    ("a JSON web token", ("eyJ",), r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\."),
    ("credentials in a URL", ("://",), r"[a-z][a-z0-9+.-]*://[^/\s:@$]+:[^/\s@$]+@"),
)
_COMPILED: dict[str, re.Pattern[str]] = {}


def _name_tokens(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [t for t in re.split(r"[_\-.]+", spaced.lower()) if t]


def secret_name(name: str) -> bool:
    tokens = _name_tokens(name)
    if not tokens or tokens[-1] in _NOT_SECRET_SUFFIX:
        return False
    if name.upper() in ("PWD", "OLDPWD"):
        return False
    if any(t in _SECRET_WORDS for t in tokens) or tokens[-1] in _SECRET_LAST:
        return True
    return any(pair in _SECRET_PAIRS for pair in itertools.pairwise(tokens))


def secret_value(value: str) -> str | None:
    for what, needles, pattern in _SECRET_VALUES:
        if not any(n in value for n in needles):
            continue  # the pattern cannot match
        compiled = _COMPILED.get(pattern)
        if compiled is None:
            compiled = _COMPILED[pattern] = re.compile(pattern)
        if compiled.search(value):
            return what
    return None


def _harmless(keyword: str, value: str | None) -> bool:
    """Values that cannot be a secret: an empty ENV, a number, a boolean (``TOKEN_TTL=3600``)."""
    if value is None:
        return False  # `ARG NPM_TOKEN`: the value arrives as a build argument
    v = value.strip().lower()
    return (
        (keyword == "ENV" and not v)
        or v.isdigit()
        or v in ("true", "false", "yes", "no", "on", "off")
    )


@rule(
    "IW109",
    Severity.ERROR,
    "Secret in ARG or ENV",
    "security",
    "ENV values are stored in the image config and ARG values in the build history and "
    "provenance: anyone who can pull the image can read them. Secrets must never pass "
    "through ARG or ENV, not even as a build argument without a default.",
    "Use a build secret: `RUN --mount=type=secret,id=npm_token NPM_TOKEN=$(cat "
    "/run/secrets/npm_token) npm ci`, and pass runtime secrets when the container starts.",
)
def _secrets(df: Dockerfile, ctx: IWContext) -> Iterator[Finding]:
    for ins in df.instructions:
        eff = ins.effective
        if eff.keyword not in ("ARG", "ENV"):
            continue
        for name, value in eff.pairs:
            what = secret_value(value or "")
            if what:
                yield finding(
                    "IW109",
                    df,
                    ins,
                    f"{eff.keyword} {name} holds what looks like {what} (`{mask(value or '')}`)",
                )
            elif secret_name(name) and not _harmless(eff.keyword, value):
                shown = f" = `{mask(value)}`" if value and "$" not in value else ""
                yield finding(
                    "IW109",
                    df,
                    ins,
                    f"{eff.keyword} {name}{shown} passes a secret through the image metadata",
                )


@rule(
    "IW110",
    Severity.WARNING,
    "ADD of a remote URL without --checksum",
    "security",
    "`ADD https://...` downloads whatever the server returns at build time; without a "
    "checksum a compromised or changed file goes into the image unnoticed.",
    "Add `--checksum=sha256:<digest>` to the ADD (BuildKit Dockerfile 1.6+), or download with "
    "curl and verify with `sha256sum -c` in the same RUN.",
)
def _add_checksum(df: Dockerfile, ctx: IWContext) -> Iterator[Finding]:
    for ins in df.instructions:
        eff = ins.effective
        if eff.keyword != "ADD" or eff.has_flag("--checksum"):
            continue
        words = list(eff.arguments) if eff.is_exec_form else eff.args.split()
        urls = [w for w in words[:-1] if re.match(r"^https?://", w, re.IGNORECASE)]
        for url in urls:
            yield finding("IW110", df, ins, f"ADD downloads {url} without --checksum")
