"""Finding secrets in bytes: which files are worth reading, the rules, allowlists and masking.

Only plausible files are read: regular files up to ``MAX_FILE_BYTES``, not under documentation,
locale or test-fixture directories, not of a binary type by extension, and not binary by content
(a NUL byte in the first 8 KiB). Values are never kept unmasked outside this module.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator

from imagewise.record import Record
from imagewise.secrets.mask import mask
from imagewise.secrets.native import literal_finder
from imagewise.secrets.rules import RULES, SECRET_NAME, SecretRule

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

MAX_FILE_BYTES = 1024 * 1024
SNIFF_BYTES = 8192

#: directories whose content is documentation, data or tests, never configuration in use
ALLOW_DIRS = (
    "usr/share/doc/",
    "usr/share/man/",
    "usr/share/info/",
    "usr/share/locale/",
    "usr/share/i18n/",
    "usr/share/zoneinfo/",
    "usr/share/common-licenses/",
    "usr/share/licenses/",
    "usr/include/",
    "usr/lib/locale/",
    "usr/share/mime/",
    "usr/share/X11/",
    "usr/share/terminfo/",
    "etc/ssl/certs/",
    "proc/",
    "sys/",
    "dev/",
)
#: any path segment equal to one of these marks test fixtures and examples
ALLOW_SEGMENTS = frozenset(
    {
        "test",
        "tests",
        "testdata",
        "testing",
        "fixtures",
        "__tests__",
        "example",
        "examples",
        "docs",
        "doc",
        "spec",
        "specs",
        "samples",
        "__pycache__",
        "man",
    }
)
SKIP_EXT = frozenset(
    [
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".ico",
        ".bmp",
        ".webp",
        ".svg",
        ".woff",
        ".woff2",
        ".ttf",
        ".otf",
        ".eot",
        ".pdf",
        ".gz",
        ".bz2",
        ".xz",
        ".zst",
        ".lz4",
        ".zip",
        ".jar",
        ".war",
        ".ear",
        ".whl",
        ".egg",
        ".tar",
        ".tgz",
        ".7z",
        ".rar",
        ".so",
        ".a",
        ".o",
        ".ko",
        ".pyc",
        ".pyo",
        ".class",
        ".dll",
        ".exe",
        ".bin",
        ".mo",
        ".db",
        ".sqlite",
        ".mp3",
        ".mp4",
        ".wav",
        ".ogg",
        ".wasm",
        ".node",
        ".map",
        ".pack",
        ".idx",
        ".deb",
        ".rpm",
        ".apk",
        ".gem",
        ".dat",
        ".md",
        ".rst",
        ".html",
        ".htm",
        ".css",
        ".h",
        ".hpp",
    ]
)
#: file names (or suffixes) where ``name = value`` is configuration
CONFIG_NAMES = frozenset(
    {
        ".env",
        ".npmrc",
        ".pypirc",
        ".netrc",
        ".git-credentials",
        ".pgpass",
        "credentials",
        "config",
        "dockerfile",
        "containerfile",
        ".htpasswd",
        "settings.py",
        "local_settings.py",
        "wp-config.php",
        ".my.cnf",
    }
)
CONFIG_EXT = frozenset(
    [
        ".env",
        ".conf",
        ".cfg",
        ".cnf",
        ".ini",
        ".properties",
        ".yaml",
        ".yml",
        ".toml",
        ".json",
        ".xml",
        ".tfvars",
        ".sh",
        ".envrc",
    ]
)
PLACEHOLDERS = frozenset(
    {
        "changeme",
        "change_me",
        "changeit",
        "password",
        "passwd",
        "secret",
        "example",
        "xxxxxx",
        "xxxxxxxx",
        "placeholder",
        "redacted",
        "dummy",
        "sample",
        "test",
        "testing",
        "default",
        "none",
        "null",
        "true",
        "false",
        "undefined",
        "notset",
        "your_password",
        "yourpassword",
        "mypassword",
        "pass",
        "admin",
        "root",
        "user",
        "username",
        "foobar",
        "foo",
        "bar",
        "token",
        "apikey",
        "api_key",
        "secretkey",
        "secret_key",
        "password123",
        "required",
        "optional",
        "string",
    }
)
_REF = re.compile(
    r"^(?:\$|%\(|%s|\{|<|\[|\(|@|&|\*+$|\.\.\.|[A-Z_]+$)|\$\{|\$\(|\{\{|os\.|env\.|"
    r"process\.env|getenv|\.\.\.$"
)
_NAME_NOT_SECRET = re.compile(
    r"(?i)(?:file|path|dir|url|uri|length|len|min|max|hash|policy|prompt|"
    r"field|type|label|name|id|env|var|header|param|regex|pattern|"
    r"format|mode|count|expiry|ttl|timeout|method|algorithm|size)$"
)


def entropy(s: str) -> float:
    """Shannon entropy in bits per character."""
    if not s:
        return 0.0
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def is_placeholder(value: str) -> bool:
    v = value.strip().strip("'\"")
    low = v.lower()
    if low in PLACEHOLDERS or _REF.search(v):
        return True
    if len(set(low)) <= 2:  # "xxxxxxxx", "********", "00000000"
        return True
    return any(
        w in low
        for w in (
            "example",
            "changeme",
            "placeholder",
            "your-",
            "your_",
            "dummy",
            "redacted",
            "xxxx",
            "fake",
            "sample",
            "<",
            "lorem",
            "pass",
            "secret",
            "xyzzy",
            "foobar",
        )
    )


def allowlisted_directory(directory: str) -> bool:
    """Whether the files of ``directory`` (root-relative, ``""`` for the root) are allowlisted:
    under one of ``ALLOW_DIRS`` (each ends with a slash, so the directory decides) or in a
    tests/docs/fixtures directory."""
    return (directory + "/").startswith(ALLOW_DIRS) or _allowlisted_dir(directory)


@functools.lru_cache(maxsize=1 << 16)
def _allowlisted_dir(directory: str) -> bool:
    """Whether a directory segment marks tests, docs or fixtures (asked once per directory:
    an image's files share few directories)."""
    return any(
        s in ALLOW_SEGMENTS
        or s.startswith(("dummy", "mock", "fake", "test_"))
        or s.endswith(("_test", "_tests", "-test", "-tests"))
        for s in directory.lower().split("/")
    )


def is_config_like(path: str) -> bool:
    return config_name(path.rsplit("/", 1)[-1].lower())


def config_name(name: str) -> bool:
    """``is_config_like`` of a file by its lower-cased name."""
    if name in CONFIG_NAMES or name.startswith((".env", "dockerfile")):
        return True
    dot = name.rfind(".")
    return dot >= 0 and name[dot:] in CONFIG_EXT


#: package metadata and documentation files (README text, examples) by name
DOC_NAMES = (
    "pkg-info",
    "metadata",
    "readme",
    "changelog",
    "changes",
    "news",
    "history",
    "license",
    "copying",
    "authors",
    "contributing",
)


def plausible(path: str, size: int) -> bool:
    """Worth reading at all (decided from the header, before any content): by its size, its
    directory (``allowlisted_directory``) and its lower-cased name (``plausible_name``)."""
    if size <= 0 or size > MAX_FILE_BYTES:
        return False
    directory, _, name = path.lstrip("/").rpartition("/")
    return not allowlisted_directory(directory) and plausible_name(name.lower())


def plausible_name(name: str) -> bool:
    """Whether a file of this lower-cased name may hold a secret (not documentation, a shared
    library or a file type that holds none)."""
    if name.startswith(DOC_NAMES) or ".so." in name:
        return False
    dot = name.rfind(".")
    return not (dot > 0 and name[dot:] in SKIP_EXT)


class Hit(Record):
    __slots__ = ("rule", "line", "masked", "context", "start", "end")  # noqa: RUF023

    def __init__(
        self,
        rule: SecretRule,
        line: int,
        masked: str,
        context: str = "",
        start: int = -1,
        end: int = -1,
    ) -> None:
        self.rule = rule
        self.line = line
        self.masked = masked
        self.context = context  # e.g. the variable name of an assignment
        self.start = start  # where the secret value is in the text (``text[start:end]``)
        self.end = end


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


class _Plan(Record):
    """The rules that apply to a text (config-like or not), and a prefilter: one regex, the
    alternation of every such rule's pattern that has no back-reference. When it finds nothing
    in a text, none of those rules can match there (each match of a rule is a match of the
    alternation), so only the others (``rest``) are tried. Most files of an image hold no
    secret, and this turns a dozen searches of each into one."""

    __slots__ = ("rules", "prefilter", "rest", "literals", "always", "_subsets")  # noqa: RUF023

    def __init__(self, config_like: bool) -> None:
        self.rules = tuple(r for r in RULES if config_like or not r.config_like)
        # the native prefilter (``_literals``): rule i is bit i; rules without literals always run
        native = literal_finder()
        self.literals: Any = None
        self.always = 0
        self._subsets: dict[int, tuple[SecretRule, ...]] = {}
        if native is not None:
            self.literals = native.compile(
                [(x.encode("latin-1"), i) for i, r in enumerate(self.rules) for x in r.literals]
            )
            self.always = sum(1 << i for i, r in enumerate(self.rules) if not r.literals)
        alternatives, rest = [], []
        for r in self.rules:
            if _BACKREF.search(r.pattern.pattern):
                rest.append(r)
                continue
            flags = "".join(
                c
                for f, c in ((re.I, "i"), (re.M, "m"), (re.S, "s"), (re.X, "x"))
                if r.pattern.flags & f
            )
            body = _GLOBAL_FLAGS.sub("", r.pattern.pattern)
            alternatives.append(f"(?{flags}:{body})" if flags else f"(?:{body})")
        self.prefilter = re.compile("|".join(alternatives)) if alternatives else None
        self.rest = tuple(rest)

    def candidates(self, data: bytes) -> tuple[SecretRule, ...] | None:
        """The rules that may match in ``data`` (its latin-1 text): those with one of their
        literals in it, and those without literals; ``None`` without the native prefilter."""
        if self.literals is None:
            return None
        from imagewise.secrets._literals import find

        return self.rules_for(find(self.literals, data))

    def rules_for(self, mask: int) -> tuple[SecretRule, ...]:
        """The rules whose literals are in ``mask`` (bit i: rule i), and those without."""
        mask |= self.always
        rules = self._subsets.get(mask)
        if rules is None:
            rules = self._subsets[mask] = tuple(
                r for i, r in enumerate(self.rules) if mask >> i & 1
            )
        return rules


_BACKREF = re.compile(r"\\[1-9]|\(\?P=")
_GLOBAL_FLAGS = re.compile(r"^\(\?[aiLmsux]+\)")
#: texts longer than this skip the prefilter: an alternation loses the regex engine's literal
#: search, which makes single patterns fast over long texts (measured on the 234 MB of text in
#: a real node_modules: 2.1 s without it, 7.3 s with it up to 64 KiB; on 100,000 files of a few
#: dozen bytes it saves a third)
PREFILTER_MAX = 256


@functools.cache
def _plan(config_like: bool) -> _Plan:
    return _Plan(config_like)


def scan_text(
    text: str, *, config_like: bool, lowered: str | None = None, latin1: bool = False
) -> list[Hit]:
    """Hits of every rule in ``text`` (one per rule and line); ``latin1``: see ``_hits``."""
    plan = _plan(config_like)
    rules = plan.rules
    if plan.prefilter is not None and len(text) <= PREFILTER_MAX:
        if plan.prefilter.search(text) is None:
            rules = plan.rest
            if not rules:
                return []
    return _hits(text, rules, lowered, latin1)


def _hits(
    text: str, rules: tuple[SecretRule, ...], lowered: str | None = None, latin1: bool = False
) -> list[Hit]:
    """Hits of ``rules`` (in the plan's order) in ``text``. ``latin1``: the text is a file's
    bytes decoded as Latin-1, where a rule's ``reach`` may be used (see ``_anchored``)."""
    low = lowered  # made at the first rule that needs it
    hits: list[Hit] = []
    seen: set[tuple[str, int]] = set()
    for rule in rules:
        if rule.keywords:
            if low is None:
                low = text.lower()
            if not any(k in low for k in rule.keywords):
                continue
        if latin1 and rule.reach is not None:
            if low is None:
                low = text.lower()
            matches: Iterator[re.Match[str]] = _anchored(rule, text, low)
        else:
            matches = rule.pattern.finditer(text)
        for m in matches:
            if (
                rule.boundary
                and m.start() > 0
                and (text[m.start() - 1].isalnum() or text[m.start() - 1] == "_")
            ):
                continue
            value = m.group(rule.group)
            if rule.id == "private-key":
                value = re.sub(r"\s+", "", value)
            if is_placeholder(value) or (rule.entropy and entropy(value) < rule.entropy):
                continue
            if rule.check is not None and not rule.check(m, text):
                continue
            name = ""
            if rule.id == "password-assignment":
                name = m.group(1)
                if _NAME_NOT_SECRET.search(name) or not _mixed(value):
                    continue
            if rule.id == "password-in-url" and value == m.group(1):
                continue  # "postgres:postgres@" is a default, not a secret
            line = _line_of(text, m.start(0 if rule.id == "private-key" else rule.group))
            if (rule.id, line) in seen or (rule.config_like and any(k[1] == line for k in seen)):
                continue
            seen.add((rule.id, line))
            shown = mask(value)
            if rule.id == "private-key":
                shown = m.group(0).split("\n", 1)[0].strip() + " " + mask(value)
            hits.append(Hit(rule, line, shown, name, m.start(rule.group), m.end(rule.group)))
    return hits


def _anchored(rule: SecretRule, text: str, low: str) -> Iterator[re.Match[str]]:
    """``rule.pattern.finditer(text)``, found by trying only the starts the rule's ``reach``
    allows before each occurrence of its ``anchors``: ``match`` at a start is the search's own attempt
    there (a lookbehind still sees the text before it), and the leftmost start that matches,
    past the previous match, is the one the search would find. Only for Latin-1 text, where
    lowering keeps every position and no other character matches an ASCII letter under
    IGNORECASE (U+017F, U+212A and the dotted/dotless i lie beyond it)."""
    reach = rule.reach or 0
    starts: set[int] = set()
    for anchor in rule.anchors:
        k = low.find(anchor)
        while k >= 0:
            starts.update(range(max(0, k - reach), k + 1))
            k = low.find(anchor, k + 1)
    match = rule.pattern.match
    end = 0
    for start in sorted(starts):
        if start >= end and (m := match(text, start)) is not None:
            yield m
            end = m.end()


def _mixed(value: str) -> bool:
    """At least two character classes (letters, digits, symbols): words are not passwords."""
    classes = (
        any(c.isalpha() for c in value),
        any(c.isdigit() for c in value),
        any(not c.isalnum() for c in value),
    )
    return sum(classes) >= 2


def scan_bytes(data: bytes, path: str) -> list[Hit]:
    """Hits in a file's content; binary content (a NUL in the first 8 KiB) gives none."""
    if b"\0" in data[:SNIFF_BYTES]:
        return []
    return scan_content(data, is_config_like(path))


def scan_content(data: bytes, config_like: bool) -> list[Hit]:
    """:func:`scan_bytes` of content known to be text (no NUL in its first 8 KiB), of a file
    that is configuration or not (``is_config_like``)."""
    rules = _plan(config_like).candidates(data)
    if rules is None:
        return scan_text(data.decode("latin-1"), config_like=config_like, latin1=True)
    return _hits(data.decode("latin-1"), rules, latin1=True) if rules else []


def in_place_scanner() -> Callable[[Any, int, int, bool], list[Hit] | None] | None:
    """With the native prefilter: ``scan(buffer, start, size, config_like)``, the hits of the
    file whose content is ``buffer[start:start + size]`` (an object with the buffer protocol: a
    layer read in place), ``None`` for a binary one; as :func:`scan_bytes` gives, but the
    content is searched for the rules' literals where it lies and copied only when some rule
    may match (most files: none). ``None`` without the native prefilter."""
    plans = (_plan(False), _plan(True))
    if plans[0].literals is None:
        return None
    from imagewise.secrets._literals import probe

    def scan(buffer: Any, start: int, size: int, config_like: bool) -> list[Hit] | None:
        plan = plans[config_like]
        mask = probe(plan.literals, buffer, start, size, SNIFF_BYTES)
        if mask < 0:
            return None
        rules = plan.rules_for(mask)
        if not rules:
            return []
        return _hits(bytes(buffer[start : start + size]).decode("latin-1"), rules, latin1=True)

    return scan


# ------------------------------------------------------------- NAME=value in config and history
_ENV_NAME = re.compile(r"(?i)(?:^|_)(?:" + SECRET_NAME + r"|token)(?:$|_)")
_ENV_NOT = re.compile(r"(?i)_(?:FILE|PATH|DIR|URL|VERSION|SHA256|SHA512|MD5|ID|NAME|USER|HOST)$")
_ARG = re.compile(r"(?<![A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|'[^']*'|[^\s]+)")


def named_value(name: str, value: str) -> bool:
    """``NAME=value`` where the name says secret and the value looks like one."""
    v = value.strip().strip("'\"")
    return (
        bool(_ENV_NAME.search(name))
        and not _ENV_NOT.search(name)
        and len(v) >= 6
        and not is_placeholder(v)
        and entropy(v) >= 2.5
        and "/" not in v[:1]
    )


def named_values(text: str) -> list[tuple[str, str, int, int]]:
    """``(name, value, start, end)`` of each secret-looking ``NAME=value`` in ``text`` (quotes
    around the value are not part of it) that no rule of its own matches."""
    out = []
    for m in _ARG.finditer(text):
        name, value = m.group(1), m.group(2)
        if named_value(name, value) and not scan_text(value, config_like=False):
            start, end = m.span(2)
            if value[:1] in "'\"" and len(value) >= 2:
                start, end = start + 1, end - 1
            out.append((name, text[start:end], start, end))
    return out


def secret_spans(text: str, *, assignments: bool = True) -> list[tuple[int, int]]:
    """Sorted, non-overlapping ``(start, end)`` of every detected secret value in ``text``:
    the rules that apply outside configuration files, and with ``assignments`` the
    ``NAME=value`` secrets of the image config and history."""
    spans = [(h.start, h.end) for h in scan_text(text, config_like=False) if h.start >= 0]
    if assignments:
        spans += [(s, e) for _, _, s, e in named_values(text)]
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
