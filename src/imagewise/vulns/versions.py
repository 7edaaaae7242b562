"""Version ordering per OSV ecosystem, each with a well-kept library where one exists.

``parse(ecosystem, text)`` returns an orderable key (``<``, ``==``) or ``None`` when the text is not
a version of that ecosystem. Keys of one ecosystem compare with each other only.

- PyPI: PEP 440 (``packaging``)
- npm, Go (incl. pseudo-versions and ``stdlib`` toolchain versions): SemVer 2.0 (``semver``)
- Maven: ``ComparableVersion`` order (``univers``)
- Debian/Ubuntu: dpkg order with epochs and ``~`` (``univers``, from deb-pkg-tools)
- RPM ecosystems: rpmvercmp with ``~`` and ``^`` (``univers``, from rpm_vercmp)
- Alpine/Wolfi/Chainguard: apk-tools' ``apk_version_compare`` (ported here; no maintained
  Python library implements apk's token rules exactly)
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

#: OSV ecosystems (base name, before any ``:release``) and the comparator family they use
FAMILY: dict[str, str] = {
    "PyPI": "pypi",
    "npm": "semver",
    "Go": "go",
    "crates.io": "semver",
    "Packagist": "semver",
    "NuGet": "semver",
    "Hex": "semver",
    "Pub": "semver",
    "Maven": "maven",
    "Debian": "dpkg",
    "Ubuntu": "dpkg",
    "Alpine": "apk",
    "Wolfi": "apk",
    "Chainguard": "apk",
    "Red Hat": "rpm",
    "Rocky Linux": "rpm",
    "AlmaLinux": "rpm",
    "openSUSE": "rpm",
    "SUSE": "rpm",
    "Mariner": "rpm",
    "Azure Linux": "rpm",
    "Photon OS": "rpm",
    "Fedora": "rpm",
    "Amazon Linux": "rpm",
    "Oracle Linux": "rpm",
}


def family(ecosystem: str) -> str:
    return FAMILY.get(ecosystem.split(":", 1)[0], "")


# --------------------------------------------------------------------------------------- PyPI
def _pypi(text: str) -> Any:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text)
    except InvalidVersion:
        return None


# ------------------------------------------------------------------------------ SemVer / Go
_SEMVER_LOOSE = re.compile(
    r"^[v=\s]*(?P<core>\d+(?:\.\d+){0,2})(?P<rest>(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)$"
)
_GO_TOOLCHAIN = re.compile(
    r"^(?:go)?(?P<core>\d+(?:\.\d+){0,2})(?:(?P<pre>rc|beta|alpha)(?P<n>\d+))?$"
)


def _semver(text: str) -> Any:
    import semver

    m = _SEMVER_LOOSE.match(text.strip())
    if not m:
        return None
    parts = m.group("core").split(".")
    core = ".".join(parts + ["0"] * (3 - len(parts)))
    try:
        return semver.Version.parse(core + m.group("rest"))
    except ValueError:
        return None


def _go(text: str) -> Any:
    """Go module versions (``v1.2.3``, pseudo-versions) and toolchain versions (``go1.21.5``)."""
    t = text.strip()
    m = _GO_TOOLCHAIN.match(t)
    if m and (t.startswith("go") or m.group("pre")):
        parts = m.group("core").split(".")
        core = ".".join(parts + ["0"] * (3 - len(parts)))
        if m.group("pre"):
            core += f"-{m.group('pre')}.{m.group('n')}"
        return _semver(core)
    return _semver(t)


# ------------------------------------------------------------------------- univers families
def _univers(cls_name: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        from univers import versions

        cls = getattr(versions, cls_name)
        try:
            return cls(text.strip())
        except Exception:  # noqa: BLE001 - univers raises several types for bad input
            return None

    return parse


# ----------------------------------------------------------------------------------- apk
# The algorithm of apk-tools' version.c (``digit{.digit}...{letter}{_suf{#}}...{~hash}{-r#}``),
# written here from its description: token kinds in this order, suffixes ordered
# alpha < beta < pre < rc < (none) < cvs < svn < git < hg < p.
_INITIAL, _DIGIT, _LETTER, _SUFFIX, _SUFFIX_NO, _HASH, _REV, _END, _INVALID = range(9)
_SUFFIXES = {
    "alpha": 1,
    "beta": 2,
    "pre": 3,
    "rc": 4,
    "cvs": 6,
    "svn": 7,
    "git": 8,
    "hg": 9,
    "p": 10,
}
_NO_SUFFIX = 5
_APK_TOKEN = re.compile(r"[a-z]|\.?\d+|_[a-z]*|~[0-9a-fA-F]+|-r\d+")


def _apk_tokens(text: str) -> tuple[tuple[int, int, str], ...]:
    """(kind, number-or-suffix, raw value) tokens; ends with an END or INVALID token."""
    m = re.match(r"\d+", text)
    if not m:
        return ((_INVALID, 0, ""),)
    out = [(_INITIAL, int(m.group()), m.group())]
    pos, prev = m.end(), _INITIAL
    while pos < len(text):
        m = _APK_TOKEN.match(text, pos)
        if not m:
            return (*out, (_INVALID, 0, ""))
        tok, pos = m.group(), m.end()
        c = tok[0]
        if c.isalpha():
            kind, num, val = _LETTER, ord(c), c
            ok = prev <= _DIGIT
        elif c == "." or c.isdigit():
            val = tok.lstrip(".")
            kind = _SUFFIX_NO if (prev == _SUFFIX and c != ".") else _DIGIT
            num = int(val)
            ok = prev <= _DIGIT or (kind == _SUFFIX_NO)
        elif c == "_":
            kind, val = _SUFFIX, tok[1:]
            num = _SUFFIXES.get(val, 0)
            ok = prev <= _SUFFIX_NO and num > 0
        elif c == "~":
            kind, num, val = _HASH, 0, tok[1:]
            ok = prev < _HASH
        else:
            kind, val = _REV, tok[2:]
            num = int(val)
            ok = prev < _REV
        if not ok:
            return (*out, (_INVALID, 0, ""))
        out.append((kind, num, val))
        prev = kind
    return (*out, (_END, 0, ""))


def _apk_token_cmp(a: tuple[int, int, str], b: tuple[int, int, str]) -> int:
    kind = a[0]
    if kind == _HASH or (kind == _DIGIT and (a[2].startswith("0") or b[2].startswith("0"))):
        x: object = a[2]
        y: object = b[2]
    else:
        x, y = a[1], b[1]
    return -1 if x < y else (1 if x > y else 0)  # type: ignore[operator]


def apk_compare(a: str, b: str) -> int:
    """-1, 0 or 1 as ``apk version -t`` orders the two versions."""
    return _apk_cmp_tokens(_apk_tokens(a), _apk_tokens(b))


def _apk_cmp_tokens(
    ta: tuple[tuple[int, int, str], ...], tb: tuple[tuple[int, int, str], ...]
) -> int:
    i = 0
    while ta[i][0] == tb[i][0] and ta[i][0] < _END:
        r = _apk_token_cmp(ta[i], tb[i])
        if r:
            return r
        i += 1
    ka, kb = ta[i], tb[i]
    if ka[0] == kb[0]:
        return 0
    if ka[0] == _SUFFIX and ka[1] < _NO_SUFFIX:
        return -1
    if kb[0] == _SUFFIX and kb[1] < _NO_SUFFIX:
        return 1
    return -1 if ka[0] > kb[0] else 1


@functools.total_ordering
class ApkVersion:
    __slots__ = ("text", "tokens")

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _apk_tokens(text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApkVersion) and _apk_cmp_tokens(self.tokens, other.tokens) == 0

    def __lt__(self, other: ApkVersion) -> bool:
        return _apk_cmp_tokens(self.tokens, other.tokens) < 0

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ApkVersion({self.text!r})"


def _apk(text: str) -> Any:
    v = ApkVersion(text.strip())
    return v if v.tokens[-1][0] == _END else None


_PARSERS: dict[str, Callable[[str], Any]] = {
    "pypi": _pypi,
    "semver": _semver,
    "go": _go,
    "maven": _univers("MavenVersion"),
    "dpkg": _univers("DebianVersion"),
    "rpm": _univers("RpmVersion"),
    "apk": _apk,
}


@functools.lru_cache(maxsize=262144)
def parse(ecosystem: str, text: str) -> Any:
    """An orderable key for ``text`` in ``ecosystem`` (``None``: not a version there)."""
    fn = _PARSERS.get(family(ecosystem))
    return fn(text) if fn and text else None


def compare(ecosystem: str, a: str, b: str) -> int:
    """-1/0/1, for tests and callers without keys. Raises ValueError on an invalid version."""
    ka, kb = parse(ecosystem, a), parse(ecosystem, b)
    if ka is None or kb is None:
        raise ValueError(f"not a {ecosystem} version: {a if ka is None else b!r}")
    return -1 if ka < kb else (1 if kb < ka else 0)
