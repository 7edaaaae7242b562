"""What a cataloger is: a declared object naming the files it reads and a parser of their content.

A cataloger never walks a tar or opens an archive of layers: the single pass hands it the content
of the files it asked for (by path predicate) and it turns those bytes into packages. Parsers are
plain functions of ``(path, stream)`` so they are testable on files from disk.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import IO

from imagewise.record import Record
from imagewise.sbom.model import Package


class Distro(Record):
    """The distribution of an image, from ``etc/os-release`` and friends."""

    __slots__ = (  # noqa: RUF023 - in field order
        "id",  # "alpine", "debian", "fedora", "rhel", "amzn", "rocky", "ubuntu" ...
        "version_id",  # "3.19.4", "12", "40"
        "name",
        "pretty_name",
        "version_codename",
        "id_like",
    )

    def __init__(
        self,
        id: str,
        version_id: str = "",
        name: str = "",
        pretty_name: str = "",
        version_codename: str = "",
        id_like: tuple[str, ...] = (),
    ) -> None:
        self.id = id
        self.version_id = version_id
        self.name = name
        self.pretty_name = pretty_name
        self.version_codename = version_codename
        self.id_like = id_like

    @property
    def label(self) -> str:
        """``alpine:3.19.4`` style, as stored in ``Package.distro``."""
        return f"{self.id}:{self.version_id}" if self.version_id else self.id

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "version_id": self.version_id,
            "name": self.name,
            "pretty_name": self.pretty_name,
        }


class Parsed(Record):
    """What one evidence file yields: packages, a distro (release files), or a reason it was skipped."""

    __slots__ = (  # noqa: RUF023 - in field order
        "packages",
        "distro",
        "distro_rank",  # higher wins when several release files are present
        "skipped",  # non-empty: the file was recognised but could not be (fully) read
    )

    def __init__(
        self,
        packages: tuple[Package, ...] = (),
        distro: Distro | None = None,
        distro_rank: int = 0,
        skipped: str = "",
    ) -> None:
        self.packages = packages
        self.distro = distro
        self.distro_rank = distro_rank
        self.skipped = skipped


class FileInfo(Record):
    """The header facts of a tar entry a cataloger may select on (copied, never the Entry)."""

    __slots__ = ("path", "size", "mode")  # noqa: RUF023 - in field order

    def __init__(self, path: str, size: int, mode: int = 0) -> None:
        self.path = path
        self.size = size
        self.mode = mode


Parser = Callable[[FileInfo, IO[bytes]], Parsed]


class Cataloger(Record):
    """One declared cataloger: id, the files it reads, a parser, and a content size bound."""

    __slots__ = (  # noqa: RUF023 - in field order
        "id",  # e.g. "apk-db"
        "types",  # package types it produces
        "description",
        "selects",
        "parse",
        "max_size",  # files over this are skipped with a reason, not read
        "needs_content",  # False: the parser is called with an empty stream (presence only)
        "endings",
        "prefixes",
        "executables",
    )
    _unshown = ("selects", "parse")

    def __init__(
        self,
        id: str,
        types: tuple[str, ...],
        description: str,
        selects: Callable[[FileInfo], bool],
        parse: Parser,
        max_size: int = 256 << 20,
        needs_content: bool = True,
        endings: tuple[str, ...] = (),
        prefixes: tuple[str, ...] = (),
        executables: bool = False,
    ) -> None:
        self.id = id
        self.types = types
        self.description = description
        self.selects = selects
        self.parse = parse
        self.max_size = max_size
        self.needs_content = needs_content
        self.endings = endings
        self.prefixes = prefixes
        self.executables = executables

    def wants(self, info: FileInfo) -> bool:
        return self.selects(info)


def suffix(*suffixes: str) -> Callable[[FileInfo], bool]:
    """Select by path suffix (``"/METADATA"``, ``".jar"``); case-sensitive."""
    return lambda info: info.path.endswith(suffixes)


def exact(*paths: str) -> Callable[[FileInfo], bool]:
    wanted = frozenset(paths)
    return lambda info: info.path in wanted


def glob(*patterns: str) -> Callable[[FileInfo], bool]:
    """Select by fnmatch glob on the whole path (``*`` crosses ``/``)."""
    return lambda info: any(fnmatch.fnmatchcase(info.path, p) for p in patterns)


def seekable(stream: IO[bytes]) -> bool:
    """Whether a parser may seek ``stream`` (a file, a layer's content read in place), so read
    only the parts it needs where they lie instead of copying the whole file first."""
    check = getattr(stream, "seekable", None)
    return bool(check is not None and check())


def read_bounded(stream: IO[bytes], limit: int) -> bytes:
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"over the {limit >> 20} MiB limit for this kind of file")
    return data


def split_licenses(text: str) -> tuple[str, ...]:
    """A license field as a tuple: an SPDX expression stays whole; a plain list is split on spaces
    and commas (``"MIT BSD GPL2+"`` -> three)."""
    text = " ".join(text.split())
    if not text:
        return ()
    if any(op in f" {text} " for op in (" AND ", " OR ", " WITH ", " and ", " or ")) or "(" in text:
        return (text,)
    parts = [p for p in text.replace(",", " ").split(" ") if p]
    return tuple(dict.fromkeys(parts))
