"""What a path is, for waste purposes: package-manager caches, temp files, compiler toolchains.

One declared table, matched with a single compiled regular expression per path. Each category
carries the fix a person would apply in the Dockerfile.
"""

from __future__ import annotations

import functools
import re

from imagewise.record import Record


class Category(Record):
    __slots__ = (  # noqa: RUF023 - in field order
        "id",  # finding rule id
        "key",  # short name used in JSON ("apt-lists")
        "title",
        "fix",  # what to do, phrased for the layer that wrote the bytes
    )

    def __init__(self, id: str, key: str, title: str, fix: str) -> None:
        self.id = id
        self.key = key
        self.title = title
        self.fix = fix


CATEGORIES: tuple[Category, ...] = (
    Category(
        "IW-WASTE-APT-LISTS",
        "apt-lists",
        "apt package lists left in the image",
        "add `&& rm -rf /var/lib/apt/lists/*` to the same RUN as `apt-get install`",
    ),
    Category(
        "IW-WASTE-APT-ARCHIVES",
        "apt-archives",
        "apt package cache (.deb files) left in the image",
        "run `apt-get clean` (or `rm -rf /var/cache/apt/*`) in the same RUN as `apt-get install`",
    ),
    Category(
        "IW-WASTE-APK-CACHE",
        "apk-cache",
        "apk package cache left in the image",
        "use `apk add --no-cache` (or `rm -rf /var/cache/apk/*` in the same RUN)",
    ),
    Category(
        "IW-WASTE-YUM-CACHE",
        "yum-cache",
        "yum/dnf package cache left in the image",
        "run `dnf clean all` / `yum clean all` (and `rm -rf /var/cache/dnf /var/cache/yum`) "
        "in the same RUN as the install",
    ),
    Category(
        "IW-WASTE-PIP-CACHE",
        "pip-cache",
        "pip download cache left in the image",
        "use `pip install --no-cache-dir` (or set PIP_NO_CACHE_DIR=1)",
    ),
    Category(
        "IW-WASTE-NPM-CACHE",
        "npm-cache",
        "npm cache left in the image",
        "run `npm cache clean --force` in the same RUN as `npm install`/`npm ci`",
    ),
    Category(
        "IW-WASTE-YARN-CACHE",
        "yarn-cache",
        "yarn cache left in the image",
        "run `yarn cache clean` in the same RUN as `yarn install`",
    ),
    Category(
        "IW-WASTE-GO-CACHE",
        "go-cache",
        "Go build and module caches left in the image",
        "run `go clean -cache -modcache` in the same RUN, or build in a separate stage",
    ),
    Category(
        "IW-WASTE-PYCACHE",
        "pycache",
        "Python bytecode caches (__pycache__) in the image",
        "set `PYTHONDONTWRITEBYTECODE=1` for build steps, or delete `__pycache__` "
        "directories in the same RUN that creates them",
    ),
    Category(
        "IW-WASTE-TEMP",
        "temp",
        "files left in temporary directories",
        "delete `/tmp/*` and `/var/tmp/*` in the same RUN that writes them",
    ),
)

BY_KEY = {c.key: c for c in CATEGORIES}

_PATTERNS: tuple[tuple[str, str], ...] = (
    ("apt-lists", r"var/lib/apt/lists/(?!lock$|partial$)"),
    ("apt-archives", r"var/cache/apt/(?:archives/.*\.deb$|[^/]*\.bin$)"),
    ("apk-cache", r"(?:var/cache/apk|etc/apk/cache)/"),
    ("yum-cache", r"var/cache/(?:yum|dnf|libdnf5?)/"),
    ("pip-cache", r"(?:root|home/[^/]+)/\.cache/pip/"),
    ("npm-cache", r"(?:root|home/[^/]+)/\.npm/"),
    (
        "yarn-cache",
        (
            r"(?:usr/local/share/\.cache/yarn/|(?:root|home/[^/]+)/\.cache/yarn/"
            r"|(?:root|home/[^/]+)/\.yarn/berry/cache/)"
        ),
    ),
    (
        "go-cache",
        (
            r"(?:(?:root|home/[^/]+)/\.cache/go-build/|(?:root|home/[^/]+|go)/go/pkg/mod/"
            r"cache/|go/pkg/mod/cache/)"
        ),
    ),
    ("temp", r"(?:tmp|var/tmp)/"),
)
_RE = re.compile("|".join(f"(?P<g{i}>{pat})" for i, (_, pat) in enumerate(_PATTERNS)))
#: a regex group's name -> the category it stands for
_GROUPS: dict[str, str] = {f"g{i}": key for i, (key, _) in enumerate(_PATTERNS)}


def classify(path: str) -> str:
    """The category key of a root-relative file path, or ``""``."""
    return _category(path, _RE)


def _category(path: str, pattern: re.Pattern[str]) -> str:
    """What ``pattern`` (the categories' alternation, first) says of ``path``: a category key,
    the name of a later group (``toolchain``), or ``""``."""
    if "__pycache__/" in path and ("/__pycache__/" in path or path.startswith("__pycache__/")):
        return "pycache"
    m = pattern.match(path)
    return "" if m is None or m.lastgroup is None else _GROUPS[m.lastgroup]


# -- compiler toolchains: the reason to use a multi-stage build ----------------------------

_TOOLCHAIN = re.compile(
    r"(?:usr/(?:local/)?lib/gcc/|usr/libexec/gcc/|usr/lib/gcc-cross/|usr/(?:local/)?include/"
    r"|usr/lib/llvm-[^/]+/|usr/lib/llvm/|usr/local/go/|usr/lib/go(?:-[^/]+)?/|usr/lib/jvm/[^/]*jdk[^/]*/"
    r"|(?:root|usr/local)/\.?rustup/|usr/local/cargo/registry/|(?:root|home/[^/]+)/\.cargo/registry/"
    r"|usr/bin/(?:x86_64-linux-gnu-|aarch64-linux-gnu-)?(?:gcc|g\+\+|cc1|cpp|c\+\+|ld(?:\.bfd|\.gold)?"
    r"|as|clang[^/]*|lto-dump)(?:-[0-9.]+)?$"
    r"|usr/lib/x86_64-linux-gnu/libLLVM|usr/lib/x86_64-linux-gnu/(?:libgfortran|libasan|libtsan"
    r"|libubsan|liblsan))"
)


def is_toolchain(path: str) -> bool:
    return _TOOLCHAIN.match(path) is not None


#: what ``leftover_or_toolchain`` gives for a toolchain file (no category key is named so)
TOOLCHAIN = "toolchain"
_GROUPS[TOOLCHAIN] = TOOLCHAIN  # the combined regex's last group


@functools.cache
def _either() -> re.Pattern[str]:
    """The categories' alternation, then the toolchain's: the first that matches wins, so one
    match answers ``classify`` and, failing it, ``is_toolchain`` (compiled at first use: only
    the final filesystem's walk asks)."""
    return re.compile(_RE.pattern + "|(?P<toolchain>" + _TOOLCHAIN.pattern + ")")


def leftover_or_toolchain(path: str) -> str:
    """``classify(path)`` when it is not ``""``, else ``TOOLCHAIN`` when ``is_toolchain(path)``,
    else ``""``: the final filesystem's walk asks both of every file, in one regex match."""
    return _category(path, _either())


#: the directories whose files' answers depend on the file's name (``lock``, ``*.deb``, ``gcc``,
#: ``libLLVM*``), and a prefix under which they do too (``archives/.*\.deb$`` spans
#: directories); every other directory's files all get the answer of a name that no pattern
#: singles out (a test holds the patterns to this)
NAMED_DIRS = frozenset(
    {"var/lib/apt/lists", "var/cache/apt", "usr/bin", "usr/lib/x86_64-linux-gnu"}
)
NAMED_UNDER = "var/cache/apt/"
#: a file name no pattern singles out
ANY_NAME = "\x01"


def directory_answer(directory: str) -> str | None:
    """``leftover_or_toolchain`` of every file directly in ``directory`` (``""`` for the root),
    when it is the same whatever the file's name; ``None`` when it depends on the name."""
    if directory in NAMED_DIRS or directory.startswith(NAMED_UNDER):
        return None
    return leftover_or_toolchain(f"{directory}/{ANY_NAME}" if directory else ANY_NAME)


def directory_category(directory: str) -> str | None:
    """``classify`` of every file directly in ``directory``, when the same for all of them
    (``directory_answer``, a toolchain being no category); ``None`` when names decide."""
    answer = directory_answer(directory)
    return None if answer is None else "" if answer == TOOLCHAIN else answer
