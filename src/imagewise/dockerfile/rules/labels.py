"""hadolint's label-schema rules (DL3049-DL3056, DL3058), driven by ``label-schema`` config."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from imagewise.dockerfile.context import LintContext
from imagewise.dockerfile.model import Stage
from imagewise.dockerfile.rules import Hit, hadolint
from imagewise.dockerfile.rules._util import each
from imagewise.findings import Severity as S

# patterns as text: compiled (and cached by re) when a label-schema rule first checks a label
_SEMVER = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
    r"(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_GIT_HASH = r"^[0-9a-fA-F]{7,40}$"
_EMAIL = (
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$"
)
# Common SPDX license identifiers (https://spdx.org/licenses/); exceptions after WITH.
SPDX_IDS = frozenset(
    [
        "0BSD",
        "AAL",
        "AFL-1.1",
        "AFL-1.2",
        "AFL-2.0",
        "AFL-2.1",
        "AFL-3.0",
        "AGPL-1.0",
        "AGPL-1.0-only",
        "AGPL-1.0-or-later",
        "AGPL-3.0",
        "AGPL-3.0-only",
        "AGPL-3.0-or-later",
        "Apache-1.0",
        "Apache-1.1",
        "Apache-2.0",
        "APSL-2.0",
        "Artistic-1.0",
        "Artistic-2.0",
        "Beerware",
        "BlueOak-1.0.0",
        "BSD-1-Clause",
        "BSD-2-Clause",
        "BSD-2-Clause-Patent",
        "BSD-3-Clause",
        "BSD-3-Clause-Clear",
        "BSD-4-Clause",
        "BSL-1.0",
        "bzip2-1.0.6",
        "CAL-1.0",
        "CC-BY-1.0",
        "CC-BY-2.0",
        "CC-BY-2.5",
        "CC-BY-3.0",
        "CC-BY-4.0",
        "CC-BY-SA-3.0",
        "CC-BY-SA-4.0",
        "CC-BY-NC-4.0",
        "CC-BY-ND-4.0",
        "CC-BY-NC-SA-4.0",
        "CC0-1.0",
        "CDDL-1.0",
        "CDDL-1.1",
        "CECILL-2.1",
        "CPAL-1.0",
        "CPL-1.0",
        "curl",
        "ECL-2.0",
        "EFL-2.0",
        "EPL-1.0",
        "EPL-2.0",
        "EUPL-1.1",
        "EUPL-1.2",
        "FSFAP",
        "GFDL-1.3",
        "GFDL-1.3-only",
        "GFDL-1.3-or-later",
        "GPL-1.0",
        "GPL-1.0-only",
        "GPL-1.0-or-later",
        "GPL-2.0",
        "GPL-2.0-only",
        "GPL-2.0-or-later",
        "GPL-3.0",
        "GPL-3.0-only",
        "GPL-3.0-or-later",
        "HPND",
        "ICU",
        "IJG",
        "IPA",
        "IPL-1.0",
        "ISC",
        "LGPL-2.0",
        "LGPL-2.0-only",
        "LGPL-2.0-or-later",
        "LGPL-2.1",
        "LGPL-2.1-only",
        "LGPL-2.1-or-later",
        "LGPL-3.0",
        "LGPL-3.0-only",
        "LGPL-3.0-or-later",
        "Libpng",
        "libtiff",
        "LPL-1.02",
        "LPPL-1.3c",
        "MIT",
        "MIT-0",
        "MIT-CMU",
        "MPL-1.0",
        "MPL-1.1",
        "MPL-2.0",
        "MPL-2.0-no-copyleft-exception",
        "MS-PL",
        "MS-RL",
        "MulanPSL-2.0",
        "NCSA",
        "Nokia",
        "OFL-1.1",
        "OpenSSL",
        "OSL-3.0",
        "PHP-3.0",
        "PHP-3.01",
        "PostgreSQL",
        "PSF-2.0",
        "Python-2.0",
        "Python-2.0.1",
        "QPL-1.0",
        "Ruby",
        "SGI-B-2.0",
        "SISSL",
        "Sleepycat",
        "SSPL-1.0",
        "UPL-1.0",
        "Unicode-DFS-2016",
        "Unicode-3.0",
        "Unlicense",
        "Vim",
        "W3C",
        "WTFPL",
        "X11",
        "Xnet",
        "Zend-2.0",
        "Zlib",
        "zlib-acknowledgement",
        "ZPL-2.0",
        "ZPL-2.1",
        "Classpath-exception-2.0",
        "GCC-exception-3.1",
        "LLVM-exception",
        "OpenJDK-assembly-exception-1.0",
    ]
)


def valid_spdx(value: str) -> bool:
    tokens = re.findall(r"[()]|[^\s()]+", value)
    if not tokens:
        return False
    for tok in tokens:
        if tok in ("(", ")", "AND", "OR", "WITH"):
            continue
        ident = tok.removesuffix("+")
        if ident not in SPDX_IDS and not ident.startswith(("LicenseRef-", "DocumentRef-")):
            return False
    return True


def valid_url(value: str) -> bool:
    from urllib.parse import urlparse  # only for a label this rule checks as a URL

    u = urlparse(value)
    return bool(u.scheme) and bool(u.netloc or u.path) and " " not in value


def valid_rfc3339(value: str) -> bool:
    from datetime import datetime  # only for a label this rule checks as a date

    if not re.match(
        r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", value
    ):
        return False
    text = re.sub(r"\.\d+", "", value).replace("z", "Z").replace("Z", "+00:00")
    try:
        datetime.fromisoformat(text.replace("t", "T"))
    except ValueError:
        return False
    return True


def _labels(ctx: LintContext) -> Iterator[tuple[int, str, str]]:
    for outer, ins in each(ctx, "LABEL"):
        for key, value in ins.pairs:
            yield outer.start_line, key, value or ""


def _stage_has(stage: Stage, key: str) -> bool:
    return any(
        i.keyword == "LABEL" and any(k == key for k, _ in i.pairs) for i in stage.instructions
    )


@hadolint(
    "DL3049",
    S.INFO,
    "Label `<label>` is missing",
    rationale="The label schema in the config requires this label.",
    fix="Add the label with LABEL.",
)
def dl3049(ctx: LintContext) -> Iterator[Hit]:
    schema = ctx.config.label_schema
    stages = ctx.dockerfile.stages
    if not schema or not stages:
        return
    copied_from = {
        (i.flag("--from") or "").lower()
        for i in ctx.effective()
        if i.keyword == "COPY" and i.flag("--from")
    }
    children: dict[int, list[Stage]] = {}
    for st in stages:
        parent = ctx.parent(st)
        if parent is not None:
            children.setdefault(parent.index, []).append(st)
    for st in stages:
        if st.alias and (st.alias.lower() in copied_from or str(st.index) in copied_from):
            continue
        for key in schema:
            if any(_stage_has(s, key) for s in ctx.lineage(st)):
                continue
            if any(_stage_has(c, key) for c in children.get(st.index, [])):
                continue
            yield Hit(st.from_line, f"Label `{key}` is missing.")


@hadolint(
    "DL3050",
    S.INFO,
    "Superfluous label(s) present",
    rationale="With strict-labels only the labels of the schema are allowed.",
    fix="Remove labels that are not in the schema.",
)
def dl3050(ctx: LintContext) -> Iterator[Hit]:
    if not ctx.config.strict_labels:
        return
    schema = ctx.config.label_schema
    for line, key, _ in _labels(ctx):
        if key not in schema:
            yield Hit(line, f"Superfluous label `{key}` present.")


@hadolint(
    "DL3051",
    S.WARNING,
    "Label `<label>` is empty",
    rationale="A schema label must carry a value.",
    fix="Give the label a value.",
)
def dl3051(ctx: LintContext) -> Iterator[Hit]:
    schema = ctx.config.label_schema
    for line, key, value in _labels(ctx):
        if key in schema and not value.strip():
            yield Hit(line, f"Label `{key}` is empty.")


def _typed(ctx: LintContext, kind: str, ok: Callable[[str], bool], what: str) -> Iterator[Hit]:
    schema = ctx.config.label_schema
    for line, key, value in _labels(ctx):
        if schema.get(key) == kind and value and not ok(value):
            yield Hit(line, f"Label `{key}` is not {what}.")


@hadolint(
    "DL3052",
    S.WARNING,
    "Label `<label>` is not a valid URL",
    rationale="The schema declares this label as a URL.",
    fix="Use an absolute URL.",
)
def dl3052(ctx: LintContext) -> Iterator[Hit]:
    return _typed(ctx, "url", valid_url, "a valid URL")


@hadolint(
    "DL3053",
    S.WARNING,
    "Label `<label>` is not a valid time format - must conform to RFC3339",
    rationale="The schema declares this label as an RFC 3339 time.",
    fix="Use e.g. `2024-01-31T12:00:00Z`.",
)
def dl3053(ctx: LintContext) -> Iterator[Hit]:
    return _typed(ctx, "rfc3339", valid_rfc3339, "a valid RFC 3339 time")


@hadolint(
    "DL3054",
    S.WARNING,
    "Label `<label>` is not a valid SPDX license identifier",
    rationale="The schema declares this label as an SPDX license expression.",
    fix="Use an SPDX identifier such as `Apache-2.0`.",
)
def dl3054(ctx: LintContext) -> Iterator[Hit]:
    return _typed(ctx, "spdx", valid_spdx, "a valid SPDX license identifier")


@hadolint(
    "DL3055",
    S.WARNING,
    "Label `<label>` is not a valid git hash",
    rationale="The schema declares this label as a git commit hash.",
    fix="Use the 7-40 hex digit commit id.",
)
def dl3055(ctx: LintContext) -> Iterator[Hit]:
    return _typed(ctx, "hash", lambda v: bool(re.match(_GIT_HASH, v)), "a valid git hash")


@hadolint(
    "DL3056",
    S.WARNING,
    "Label `<label>` does not conform to semantic versioning",
    rationale="The schema declares this label as a semantic version.",
    fix="Use e.g. `1.2.3`.",
)
def dl3056(ctx: LintContext) -> Iterator[Hit]:
    return _typed(ctx, "semver", lambda v: bool(re.match(_SEMVER, v)), "a semantic version")


@hadolint(
    "DL3058",
    S.WARNING,
    "Label `<label>` is not a valid email format - must conform to RFC5322",
    rationale="The schema declares this label as an email address.",
    fix="Use `name@example.com`.",
)
def dl3058(ctx: LintContext) -> Iterator[Hit]:
    return _typed(ctx, "email", lambda v: bool(re.match(_EMAIL, v)), "a valid email address")
