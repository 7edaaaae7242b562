"""What a cataloger is: a declared object naming the files it reads and a parser of their content.

A cataloger never walks a tar or opens an archive of layers: the single pass hands it the content
of the files it asked for (by path predicate) and it turns those bytes into packages. Parsers are
plain functions of ``(path, stream)`` so they are testable on files from disk.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from imagewise.sbom.model import Package


@dataclass(frozen=True, slots=True)
class Distro:
    """The distribution of an image, from ``etc/os-release`` and friends."""

    id: str  # "alpine", "debian", "fedora", "rhel", "amzn", "rocky", "ubuntu" ...
    version_id: str = ""  # "3.19.4", "12", "40"
    name: str = ""
    pretty_name: str = ""
    version_codename: str = ""
    id_like: tuple[str, ...] = ()

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


@dataclass(frozen=True, slots=True)
class Parsed:
    """What one evidence file yields: packages, a distro (release files), or a reason it was skipped."""

    packages: tuple[Package, ...] = ()
    distro: Distro | None = None
    distro_rank: int = 0  # higher wins when several release files are present
    skipped: str = ""  # non-empty: the file was recognised but could not be (fully) read


@dataclass(frozen=True, slots=True)
class FileInfo:
    """The header facts of a tar entry a cataloger may select on (copied, never the Entry)."""

    path: str
    size: int
    mode: int = 0


Parser = Callable[[FileInfo, IO[bytes]], Parsed]


@dataclass(frozen=True, slots=True)
class Cataloger:
    """One declared cataloger: id, the files it reads, a parser, and a content size bound."""

    id: str  # e.g. "apk-db"
    types: tuple[str, ...]  # package types it produces
    description: str
    selects: Callable[[FileInfo], bool] = field(repr=False)
    parse: Parser = field(repr=False)
    max_size: int = 256 << 20  # files over this are skipped with a reason, not read
    needs_content: bool = True  # False: the parser is called with an empty stream (presence only)
    #: a cheap pre-filter the pass applies before ``selects``: lower-cased path endings, path
    #: prefixes, and/or "any executable file over 4 KiB". A path none of them admit is never
    #: offered to ``selects``. All empty/False: ``selects`` sees every file.
    endings: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    executables: bool = False

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
