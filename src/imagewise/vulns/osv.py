"""OSV records: reading them, normalising package names, and deciding whether a version is affected.

Semantics follow the OSV schema (ossf.github.io/osv-schema): an ``affected`` entry matches when the
version is listed in ``versions`` or falls in an ``ECOSYSTEM``/``SEMVER`` range. A range's events
are sorted by version and walked: ``introduced`` opens, ``fixed`` closes (the fixed version is not
affected), ``last_affected`` closes after that version, and ``limit`` caps the range. ``GIT`` ranges
(commit hashes) cannot be evaluated against package versions and are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from imagewise.vulns import versions
from imagewise.vulns.severity import Rating, rate

_PEP503 = re.compile(r"[-_.]+")


def normalize_name(ecosystem: str, name: str) -> str:
    """The name as matched: PEP 503 for PyPI, lower case where the ecosystem is case-insensitive."""
    base = ecosystem.split(":", 1)[0]
    if base == "PyPI":
        return _PEP503.sub("-", name).lower()
    if base in ("Maven", "npm", "NuGet", "Packagist", "Debian", "Ubuntu", "Alpine", "Wolfi",
                "Chainguard"):
        return name.strip().lower()
    return name.strip()


def split_ecosystem(ecosystem: str) -> tuple[str, str]:
    """``"Debian:12"`` -> ``("Debian", "12")``; ``"Alpine:v3.19"`` -> ``("Alpine", "v3.19")``."""
    base, _, release = ecosystem.partition(":")
    return base, release


@dataclass(frozen=True, slots=True)
class Affected:
    """One ``affected`` entry, as stored: the matching key plus the evaluable ranges."""

    ecosystem: str  # base ecosystem, e.g. "Debian"
    release: str  # e.g. "12", "v3.19", "" when the record covers every release
    name: str  # normalised
    ranges: tuple[tuple[tuple[str, str], ...], ...]  # per range: ((event kind, version), ...)
    versions: tuple[str, ...]
    rating: Rating | None = None  # a per-package severity (affected[].severity / ecosystem_specific)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"r": [list(map(list, r)) for r in self.ranges], "v": list(self.versions)}
        if self.rating is not None:
            out["s"] = self.rating.to_json()
        return out

    @classmethod
    def from_json(cls, eco: str, release: str, name: str, data: dict[str, Any]) -> Affected:
        rating = Rating.from_json(data["s"]) if data.get("s") else None
        return cls(eco, release, name, tuple(tuple((k, v) for k, v in r) for r in data["r"]),
                   tuple(data["v"]), rating)


@dataclass(frozen=True, slots=True)
class Record:
    """The parts of an OSV record imagewise keeps."""

    id: str
    modified: str
    published: str
    withdrawn: str
    aliases: tuple[str, ...]
    summary: str
    rating: Rating | None
    affected: tuple[Affected, ...]


def parse_record(doc: dict[str, Any]) -> Record:
    """An OSV record from its JSON/YAML document. Raises ValueError when it is not one."""
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
        raise ValueError("not an OSV record (no 'id')")  # noqa: TRY004 - bad input data
    affected: list[Affected] = []
    for a in doc.get("affected") or ():
        pkg = a.get("package") or {}
        eco, name = str(pkg.get("ecosystem") or ""), str(pkg.get("name") or "")
        if not eco or not name:
            continue
        base, release = split_ecosystem(eco)
        ranges = []
        for r in a.get("ranges") or ():
            if r.get("type") not in ("ECOSYSTEM", "SEMVER"):
                continue
            events = tuple(
                (k, str(v)) for e in r.get("events") or () for k, v in e.items()
                if k in ("introduced", "fixed", "last_affected", "limit")
            )
            if events:
                ranges.append(events)
        vers = tuple(str(v) for v in a.get("versions") or ())
        own = rate(a.get("severity") or (), a.get("ecosystem_specific"), a.get("database_specific"))
        affected.append(Affected(base, release, normalize_name(base, name), tuple(ranges), vers,
                                 own))
    return Record(
        id=doc["id"], modified=str(doc.get("modified") or ""),
        published=str(doc.get("published") or ""), withdrawn=str(doc.get("withdrawn") or ""),
        aliases=tuple(str(x) for x in doc.get("aliases") or ()),
        summary=str(doc.get("summary") or doc.get("details") or "").strip().splitlines()[0][:200]
        if (doc.get("summary") or doc.get("details")) else "",
        rating=rate(doc.get("severity") or (), None, doc.get("database_specific")),
        affected=tuple(affected),
    )


_ORDER = {"introduced": 0, "last_affected": 1, "fixed": 2, "limit": 3}


def _sorted_events(ecosystem: str, events: tuple[tuple[str, str], ...]) -> list[tuple[Any, str, str]] | None:
    """Events as (key, kind, text) in version order; ``None`` when a version does not parse."""
    out: list[tuple[Any, str, str]] = []
    for kind, text in events:
        if kind == "introduced" and text == "0":
            out.append((None, kind, text))
            continue
        key = versions.parse(ecosystem, text)
        if key is None:
            return None
        out.append((key, kind, text))
    zero = [e for e in out if e[0] is None]
    rest = [e for e in out if e[0] is not None]
    # a stable insertion sort by version (keys are only partially orderable objects)
    ordered: list[tuple[Any, str, str]] = []
    for e in rest:
        i = len(ordered)
        while i > 0 and (e[0] < ordered[i - 1][0] or (
                not (ordered[i - 1][0] < e[0]) and _ORDER[e[1]] < _ORDER[ordered[i - 1][1]])):
            i -= 1
        ordered.insert(i, e)
    return zero + ordered


Interval = tuple[Any, Any, bool, str]  # (low or None, high or None, high inclusive, fix text)


def compile_range(ecosystem: str, events: tuple[tuple[str, str], ...]) -> tuple[tuple[Interval, ...], Any]:
    """The sorted-event walk of the OSV spec turned into intervals once: ``introduced`` opens an
    interval, ``fixed`` closes it (exclusive, and names the fix), ``last_affected`` closes it
    (inclusive); repeated opens or closes change nothing. ``limit`` caps everything below it.
    Returns (intervals, limit key or None); no intervals when a version does not parse."""
    ordered = _sorted_events(ecosystem, events)
    if ordered is None:
        return (), None
    out: list[Interval] = []
    open_at: Any = None
    is_open = False
    limit: Any = None
    for key, kind, text in ordered:
        if kind == "introduced" and not is_open:
            open_at, is_open = key, True
        elif kind == "fixed" and is_open:
            out.append((open_at, key, False, text))
            is_open = False
        elif kind == "last_affected" and is_open:
            out.append((open_at, key, True, ""))
            is_open = False
        elif kind == "limit" and (limit is None or key < limit):
            limit = key
    if is_open:
        out.append((open_at, None, False, ""))
    return tuple(out), limit


@dataclass(frozen=True, slots=True)
class CompiledEntry:
    """An ``Affected`` entry ready for repeated evaluation: every range's intervals flattened."""

    intervals: tuple[tuple[Any, Any, bool, str, Any], ...]  # (low, high, inclusive, fix, limit)
    versions: frozenset[str]
    listed_fix: str  # the fix to show for a version matched by the list only

    def affects(self, key: Any, version: str) -> tuple[bool, str]:
        if key is not None:
            for low, high, inclusive, fix, limit in self.intervals:
                if low is not None and key < low:
                    continue
                if limit is not None and not (key < limit):
                    continue
                if high is None or key < high or (inclusive and not (high < key)):
                    return True, fix
        if version in self.versions:
            return True, self.listed_fix
        return False, ""


def compile_entry(entry: Affected, cache: dict[Any, Any] | None = None) -> CompiledEntry:
    flat: list[tuple[Any, Any, bool, str, Any]] = []
    for events in entry.ranges:
        ck = (entry.ecosystem, events)
        compiled = cache.get(ck) if cache is not None else None
        if compiled is None:
            compiled = compile_range(entry.ecosystem, events)
            if cache is not None:
                cache[ck] = compiled
        intervals, limit = compiled
        flat.extend((lo, hi, inc, fix, limit) for lo, hi, inc, fix in intervals)
    fixes = [t for r in entry.ranges for k, t in r if k == "fixed"]
    return CompiledEntry(tuple(flat), frozenset(entry.versions), fixes[0] if len(fixes) == 1 else "")
