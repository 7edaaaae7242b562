"""OSV records: reading them, normalising package names, and deciding whether a version is affected.

Semantics follow the OSV schema (ossf.github.io/osv-schema): an ``affected`` entry matches when the
version is listed in ``versions`` or falls in an ``ECOSYSTEM``/``SEMVER`` range. A range's events
are sorted by version and walked: ``introduced`` opens, ``fixed`` closes (the fixed version is not
affected), ``last_affected`` closes after that version, and ``limit`` caps the range. ``GIT`` ranges
(commit hashes) cannot be evaluated against package versions and are ignored.
"""

from __future__ import annotations

import re
from typing import Any

from imagewise.record import Record as RecordBase
from imagewise.vulns import versions
from imagewise.vulns.severity import Rating, rate

_PEP503 = re.compile(r"[-_.]+")


def normalize_name(ecosystem: str, name: str) -> str:
    """The name as matched: PEP 503 for PyPI, lower case where the ecosystem is case-insensitive."""
    base = ecosystem.split(":", 1)[0]
    if base == "PyPI":
        return _PEP503.sub("-", name).lower()
    if base in (
        "Maven",
        "npm",
        "NuGet",
        "Packagist",
        "Debian",
        "Ubuntu",
        "Alpine",
        "Wolfi",
        "Chainguard",
    ):
        return name.strip().lower()
    return name.strip()


def split_ecosystem(ecosystem: str) -> tuple[str, str]:
    """``"Debian:12"`` -> ``("Debian", "12")``; ``"Alpine:v3.19"`` -> ``("Alpine", "v3.19")``."""
    base, _, release = ecosystem.partition(":")
    return base, release


class Affected(RecordBase):
    """One ``affected`` entry, as stored: the matching key plus the evaluable ranges."""

    __slots__ = (  # noqa: RUF023 - in field order
        "ecosystem",  # base ecosystem, e.g. "Debian"
        "release",  # e.g. "12", "v3.19", "" when the record covers every release
        "name",  # normalised
        "ranges",  # per range: ((event kind, version), ...)
        "versions",
        "rating",
    )

    def __init__(
        self,
        ecosystem: str,
        release: str,
        name: str,
        ranges: tuple[tuple[tuple[str, str], ...], ...],
        versions: tuple[str, ...],
        rating: Rating | None = None,
    ) -> None:
        self.ecosystem = ecosystem
        self.release = release
        self.name = name
        self.ranges = ranges
        self.versions = versions
        self.rating = rating

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "r": [list(map(list, r)) for r in self.ranges],
            "v": list(self.versions),
        }
        if self.rating is not None:
            out["s"] = self.rating.to_json()
        return out

    @classmethod
    def from_json(cls, eco: str, release: str, name: str, data: dict[str, Any]) -> Affected:
        rating = Rating.from_json(data["s"]) if data.get("s") else None
        return cls(
            eco,
            release,
            name,
            tuple(tuple((k, v) for k, v in r) for r in data["r"]),
            tuple(data["v"]),
            rating,
        )


class Record(RecordBase):
    """The parts of an OSV record imagewise keeps."""

    __slots__ = (  # noqa: RUF023 - in field order
        "id",
        "modified",
        "published",
        "withdrawn",
        "aliases",
        "summary",
        "rating",
        "affected",
    )

    def __init__(
        self,
        id: str,
        modified: str,
        published: str,
        withdrawn: str,
        aliases: tuple[str, ...],
        summary: str,
        rating: Rating | None,
        affected: tuple[Affected, ...],
    ) -> None:
        self.id = id
        self.modified = modified
        self.published = published
        self.withdrawn = withdrawn
        self.aliases = aliases
        self.summary = summary
        self.rating = rating
        self.affected = affected


class InvalidRecord(ValueError):
    """A document that is not a valid OSV record; ``str()`` names the record and the field."""


_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})?$"
)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/+-]{0,199}$")
_MAX_TEXT = 1024  # names, versions, ecosystems
_EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")


def normalize_time(value: str) -> str:
    """An RFC 3339 time as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC), so strings order by time.
    Raises ValueError when it is not one (a month 99, a missing time, ...)."""
    from datetime import UTC, datetime, timedelta, timezone

    m = _TIMESTAMP.match(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise ValueError(f"{value!r} is not an RFC 3339 time")
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    micro = int((m.group(7) or "0")[:6].ljust(6, "0"))
    zone = m.group(8) or "Z"
    tz = UTC
    if zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    try:
        dt = datetime(year, month, day, hour, min(minute, 59), min(second, 59), micro, tz)
        if minute > 59 or second > 60 or zone[1:3] > "23":  # 60: a leap second, read as :59
            raise ValueError(value)
        dt = dt.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"{value!r} is not an RFC 3339 time") from None
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:"
        f"{dt.second:02d}.{dt.microsecond:06d}Z"
    )


def _text(
    doc: dict[str, Any], key: str, where: str, *, required: bool = False, limit: int | None = None
) -> str:
    value = doc.get(key)
    if value is None:
        if required:
            raise InvalidRecord(f"{where}: '{key}' is missing")
        return ""
    if not isinstance(value, str):
        raise InvalidRecord(f"{where}: '{key}' is {_kind(value)}, not a string")
    if limit is not None and len(value) > limit:
        raise InvalidRecord(f"{where}: '{key}' is longer than {limit} characters")
    return value


def _time(doc: dict[str, Any], key: str, where: str, *, required: bool = False) -> str:
    value = _text(doc, key, where, required=required)
    if not value and not required:
        return ""
    try:
        return normalize_time(value)
    except ValueError as e:
        raise InvalidRecord(f"{where}: '{key}' {e}") from None


def _list(doc: dict[str, Any], key: str, where: str) -> list[Any]:
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidRecord(f"{where}: '{key}' is {_kind(value)}, not a list")
    return value


def _object(value: Any, what: str, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRecord(f"{where}: {what} is {_kind(value)}, not an object")
    return value


def _strings(doc: dict[str, Any], key: str, where: str, limit: int = _MAX_TEXT) -> tuple[str, ...]:
    out = []
    for i, v in enumerate(_list(doc, key, where)):
        if not isinstance(v, str) or not v or len(v) > limit or "\x00" in v:
            raise InvalidRecord(f"{where}: {key}[{i}] is not a string of 1 to {limit} characters")
        out.append(v)
    return tuple(out)


def _kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "an object",
    }.get(type(value), "not text")


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0][:200] if lines else ""


def parse_record(doc: dict[str, Any]) -> Record:
    """An OSV record from its JSON/YAML document, every field imagewise reads validated
    against the OSV schema's types. Raises :class:`InvalidRecord` (a ValueError) naming the
    record and the field when it is not a valid record; nothing it returns can fail a later read."""
    if not isinstance(doc, dict):
        raise InvalidRecord(
            f"not an OSV record (a JSON/YAML {_kind(doc).split()[-1]}, not an object)"
        )
    rid = doc.get("id")
    if rid is None or rid == "":
        raise InvalidRecord("not an OSV record (no 'id')")
    if not isinstance(rid, str):
        raise InvalidRecord(f"not an OSV record: 'id' is {_kind(rid)}, not a string")
    if not _ID.match(rid):
        raise InvalidRecord(f"record {rid[:80]!r}: 'id' is not an OSV identifier")
    where = f"record {rid}"
    modified = _time(doc, "modified", where, required=True)
    published = _time(doc, "published", where)
    withdrawn = _time(doc, "withdrawn", where)
    aliases = _strings(doc, "aliases", where, 200)
    _strings(doc, "related", where, 200)
    summary = _text(doc, "summary", where) or _text(doc, "details", where)
    _text(doc, "details", where)
    _text(doc, "schema_version", where, limit=64)
    for key in ("references", "credits"):
        for i, item in enumerate(_list(doc, key, where)):
            _object(item, f"{key}[{i}]", where)
    severity = _severity(doc, where)
    affected: list[Affected] = []
    for i, raw in enumerate(_list(doc, "affected", where)):
        a = _object(raw, f"affected[{i}]", where)
        at = f"{where}: affected[{i}]"
        pkg = _object(a.get("package"), "'package'", at)
        eco = _text(pkg, "ecosystem", at, limit=_MAX_TEXT)
        name = _text(pkg, "name", at, limit=_MAX_TEXT)
        _text(pkg, "purl", at, limit=4 * _MAX_TEXT)
        versions_ = _strings(a, "versions", at)
        ranges = []
        for j, rraw in enumerate(_list(a, "ranges", at)):
            r = _object(rraw, f"ranges[{j}]", at)
            rtype = _text(r, "type", f"{at}: ranges[{j}]", required=True, limit=64)
            _text(r, "repo", f"{at}: ranges[{j}]")
            events = []
            for k, eraw in enumerate(_list(r, "events", f"{at}: ranges[{j}]")):
                e = _object(eraw, f"ranges[{j}].events[{k}]", at)
                for kind, v in e.items():
                    if kind in _EVENT_KINDS:
                        if not isinstance(v, str) or not v or len(v) > _MAX_TEXT or "\x00" in v:
                            raise InvalidRecord(
                                f"{at}: ranges[{j}].events[{k}].{kind} is not a version string"
                            )
                        events.append((kind, v))
            if rtype in ("ECOSYSTEM", "SEMVER") and events:
                ranges.append(tuple(events))
        eco_specific = _object(a.get("ecosystem_specific"), "'ecosystem_specific'", at)
        db_specific = _object(a.get("database_specific"), "'database_specific'", at)
        own = rate(_severity(a, at), eco_specific, db_specific)
        if not eco.strip() or not name.strip():
            continue  # an entry about a git repository only: nothing to match packages against
        base, release = split_ecosystem(eco)
        affected.append(
            Affected(base, release, normalize_name(base, name), tuple(ranges), versions_, own)
        )
    db_specific = _object(doc.get("database_specific"), "'database_specific'", where)
    return Record(
        id=rid,
        modified=modified,
        published=published,
        withdrawn=withdrawn,
        aliases=aliases,
        summary=_first_line(summary),
        rating=rate(severity, None, db_specific),
        affected=tuple(affected),
    )


def _severity(doc: dict[str, Any], where: str) -> list[dict[str, Any]]:
    out = []
    for i, raw in enumerate(_list(doc, "severity", where)):
        s = _object(raw, f"severity[{i}]", where)
        _text(s, "type", f"{where}: severity[{i}]", required=True, limit=64)
        _text(s, "score", f"{where}: severity[{i}]", required=True, limit=_MAX_TEXT)
        out.append(s)
    return out


_ORDER = {"introduced": 0, "last_affected": 1, "fixed": 2, "limit": 3}


def _sorted_events(
    ecosystem: str, events: tuple[tuple[str, str], ...]
) -> list[tuple[Any, str, str]] | None:
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
        while i > 0 and (
            e[0] < ordered[i - 1][0]
            or (not (ordered[i - 1][0] < e[0]) and _ORDER[e[1]] < _ORDER[ordered[i - 1][1]])
        ):
            i -= 1
        ordered.insert(i, e)
    return zero + ordered


Interval = tuple[Any, Any, bool, str]  # (low or None, high or None, high inclusive, fix text)


def compile_range(
    ecosystem: str, events: tuple[tuple[str, str], ...]
) -> tuple[tuple[Interval, ...], Any]:
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


class CompiledEntry(RecordBase):
    """An ``Affected`` entry ready for repeated evaluation: every range's intervals flattened."""

    __slots__ = (  # noqa: RUF023 - in field order
        "intervals",  # (low, high, inclusive, fix, limit)
        "versions",
        "listed_fix",  # the fix to show for a version matched by the list only
    )

    def __init__(
        self,
        intervals: tuple[tuple[Any, Any, bool, str, Any], ...],
        versions: frozenset[str],
        listed_fix: str,
    ) -> None:
        self.intervals = intervals
        self.versions = versions
        self.listed_fix = listed_fix

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
    return CompiledEntry(
        tuple(flat), frozenset(entry.versions), fixes[0] if len(fixes) == 1 else ""
    )
