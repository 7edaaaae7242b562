"""Matching cataloged packages against the OSV database, one row per vulnerability per package.

OS packages match on their source package (dpkg ``Source:``, apk origin, rpm source) in the
distro's ecosystem and release (``Debian:12``, ``Alpine:v3.19``); language packages on their
ecosystem name (PEP 503-normalised for PyPI). Records that alias each other (PYSEC, GHSA, CVE) are
merged so one CVE is one row.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from imagewise.record import Record
from imagewise.sbom.model import Package
from imagewise.vulns import versions
from imagewise.vulns.osv import Affected, CompiledEntry, compile_entry, normalize_name
from imagewise.vulns.severity import LEVELS, Rating, level_rank

if TYPE_CHECKING:
    from imagewise.vulns.store import RecordInfo, VulnDB

_RPM_DISTROS = {
    "rhel": "Red Hat",
    "rocky": "Rocky Linux",
    "almalinux": "AlmaLinux",
    "opensuse": "openSUSE",
    "opensuse-leap": "openSUSE",
    "opensuse-tumbleweed": "openSUSE",
    "sles": "SUSE",
    "mariner": "Mariner",
    "azurelinux": "Azure Linux",
    "photon": "Photon OS",
    "fedora": "Fedora",
    "amzn": "Amazon Linux",
    "ol": "Oracle Linux",
}


class MatchKey(Record):
    __slots__ = (  # noqa: RUF023 - in field order
        "ecosystem",  # base OSV ecosystem
        "release",  # distro release as OSV writes it ("12", "v3.19"), "" when unknown / n.a.
        "name",  # normalised name as stored
        "version",
        "alt_name",  # also looked up (RPM distros name binary or source packages)
    )

    def __init__(
        self,
        ecosystem: str,
        release: str,
        name: str,
        version: str,
        alt_name: str = "",
    ) -> None:
        self.ecosystem = ecosystem
        self.release = release
        self.name = name
        self.version = version
        self.alt_name = alt_name


def _maven_name(p: Package) -> str:
    m = re.match(r"pkg:maven/([^/@?#]+)/([^/@?#]+)", p.purl or "")
    if m:
        return f"{m.group(1)}:{m.group(2)}"
    group = p.metadata.get("group") or p.metadata.get("group_id") or p.metadata.get("groupId") or ""
    return p.name if ":" in p.name or not group else f"{group}:{p.name}"


def match_key(p: Package) -> MatchKey | None:
    """How ``p`` is looked up in OSV, or ``None`` for a type OSV does not cover."""
    distro_id, _, distro_rel = (p.distro or "").partition(":")
    distro_id = distro_id.lower()
    if p.type == "pypi":
        return MatchKey("PyPI", "", normalize_name("PyPI", p.name), p.version)
    if p.type == "npm":
        return MatchKey("npm", "", normalize_name("npm", p.name), p.version)
    if p.type == "golang":
        return MatchKey("Go", "", p.name, p.version)
    if p.type == "maven":
        return MatchKey("Maven", "", normalize_name("Maven", _maven_name(p)), p.version)
    name = p.source_name or p.name
    version = p.source_version or p.version
    if p.type == "deb":
        eco = "Ubuntu" if distro_id == "ubuntu" else "Debian"
        rel = distro_rel if eco == "Ubuntu" else distro_rel.split(".")[0]
        return MatchKey(eco, rel, normalize_name(eco, name), version)
    if p.type == "apk":
        eco = {"wolfi": "Wolfi", "chainguard": "Chainguard"}.get(distro_id, "Alpine")
        m = re.match(r"(\d+)\.(\d+)", distro_rel)
        rel = f"v{m.group(1)}.{m.group(2)}" if eco == "Alpine" and m else ""
        # apk origin packages share the version of their subpackages
        return MatchKey(eco, rel, normalize_name(eco, name), p.version)
    if p.type == "rpm":
        eco = _RPM_DISTROS.get(distro_id, "")
        if not eco:
            return None
        alt = p.name if p.name != name else ""
        return MatchKey(eco, distro_rel.split(".")[0], name, p.version, alt)
    return None


def _release_ok(entry_release: str, key: MatchKey) -> bool:
    if not entry_release or not key.release:
        return True
    if entry_release == key.release:
        return True
    parts = entry_release.split(":")
    if key.ecosystem == "Ubuntu":
        return parts[0] == key.release
    return key.release in parts  # e.g. "Red Hat:enterprise_linux:9::appstream"


class Vulnerability(Record):
    __slots__ = (  # noqa: RUF023 - in field order
        "id",  # the CVE when the merged records name one, else the first record id
        "aliases",
        "package",
        "ecosystem",
        "severity",  # one of severity.LEVELS
        "score",
        "fixed_versions",
        "summary",
        "records",  # OSV record ids merged into this row
    )

    def __init__(
        self,
        id: str,
        aliases: tuple[str, ...],
        package: Package,
        ecosystem: str,
        severity: str,
        score: float | None,
        fixed_versions: tuple[str, ...],
        summary: str,
        records: tuple[str, ...],
    ) -> None:
        self.id = id
        self.aliases = aliases
        self.package = package
        self.ecosystem = ecosystem
        self.severity = severity
        self.score = score
        self.fixed_versions = fixed_versions
        self.summary = summary
        self.records = records

    @property
    def version(self) -> str:
        return self.package.version

    @property
    def layer(self) -> str:
        loc = self.package.introduced_by
        return loc.layer if loc else ""

    @property
    def path(self) -> str:
        loc = self.package.introduced_by
        return loc.path if loc else ""

    @property
    def from_base(self) -> bool | None:
        return self.package.from_base

    @property
    def ids(self) -> frozenset[str]:
        return frozenset((self.id, *self.aliases))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "aliases": list(self.aliases),
            "package": self.package.name,
            "version": self.package.version,
            "type": self.package.type,
            "fixed_versions": list(self.fixed_versions),
            "severity": self.severity,
            "score": self.score,
            "layer": self.layer,
            "layer_index": loc.layer_index if (loc := self.package.introduced_by) else None,
            "path": self.path,
            "from_base": self.from_base,
            "purl": self.package.purl,
            "summary": self.summary,
            "records": list(self.records),
        }


def _groups(ids: list[str], aliases: dict[str, tuple[str, ...]]) -> list[list[str]]:
    """Connected components of records that share an id or alias."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for vid in ids:
        for a in aliases.get(vid, ()):
            parent[find(a)] = find(vid)
    comps: dict[str, list[str]] = {}
    for vid in ids:
        comps.setdefault(find(vid), []).append(vid)
    return [sorted(v) for v in comps.values()]


def _primary(names: set[str]) -> str:
    cves = sorted(n for n in names if n.startswith("CVE-"))
    return cves[0] if cves else min(names)


def match(packages: list[Package] | tuple[Package, ...], db: VulnDB) -> list[Vulnerability]:
    """Every vulnerability affecting ``packages``, ordered by severity (worst first), then id."""
    keys = [match_key(p) for p in packages]
    wanted = {(k.ecosystem, k.name) for k in keys if k is not None}
    wanted |= {(k.ecosystem, k.alt_name) for k in keys if k is not None and k.alt_name}
    table = db.lookup(wanted)
    range_cache: dict[Any, Any] = {}
    # each looked-up name's entries, compiled once: (vid, entry, compiled, release)
    compiled: dict[tuple[str, str], list[tuple[str, Affected, CompiledEntry, str]]] = {
        name: [(vid, e, compile_entry(e, range_cache), e.release) for vid, e in rows]
        for name, rows in table.items()
    }
    hits: list[tuple[int, dict[str, list[tuple[str, Affected]]]]] = []
    for i, k in enumerate(keys):
        if k is None:
            continue
        rows = compiled.get((k.ecosystem, k.name))
        if k.alt_name and (k.ecosystem, k.alt_name) in compiled:
            rows = (rows or []) + compiled[(k.ecosystem, k.alt_name)]
        if not rows:
            continue
        key = versions.parse(k.ecosystem, k.version)
        version = k.version
        found: dict[str, list[tuple[str, Affected]]] = {}
        for vid, entry, ce, release in rows:
            if release and k.release and not _release_ok(release, k):
                continue
            hit, fix = ce.affects(key, version)
            if hit:
                if vid in found:
                    found[vid].append((fix, entry))
                else:
                    found[vid] = [(fix, entry)]
        if found:
            hits.append((i, found))
    infos = db.records({vid for _, found in hits for vid in found})
    component = _components({vid for _, found in hits for vid in found}, infos)
    sizes: dict[str, int] = {}
    for rep in component.values():
        sizes[rep] = sizes.get(rep, 0) + 1
    groups_of: dict[tuple[str, ...], _Group] = {}
    out: list[Vulnerability] = []
    for i, found in hits:
        pkg, eco = packages[i], keys[i].ecosystem  # type: ignore[union-attr]
        sigs: list[tuple[str, ...]] = []
        buckets: dict[str, list[str]] = {}
        for vid in found:
            rep = component[vid]
            if sizes[rep] == 1:  # the common case: a record nothing else aliases
                sigs.append((vid,))
            else:
                buckets.setdefault(rep, []).append(vid)
        sigs.extend(tuple(sorted(m)) for m in buckets.values())
        for sig in sigs:
            g = groups_of.get(sig)
            if g is None:
                g = groups_of[sig] = _make_group(sig, infos)
            best = g.rating
            fixes: set[str] = set()
            for vid in sig:
                for fix, entry in found[vid]:
                    if fix:
                        fixes.add(fix)
                    if entry.rating and (best is None or _rank(entry.rating) > _rank(best)):
                        best = entry.rating
            out.append(
                Vulnerability(
                    g.primary,
                    g.aliases,
                    pkg,
                    eco,
                    best.level if best else "unknown",
                    best.score if best else None,
                    tuple(sorted(fixes)) if len(fixes) > 1 else tuple(fixes),
                    g.summary,
                    g.records,
                )
            )
    rank = {level: n for n, level in enumerate(LEVELS)}
    out.sort(key=lambda v: (-rank.get(v.severity, 0), v.package.name, v.id))
    return out


def _components(vids: set[str], infos: dict[str, RecordInfo]) -> dict[str, str]:
    """Each record id -> a representative of the records it is merged with (shared aliases)."""
    ordered = sorted(vids)
    aliases = {vid: infos[vid].aliases if vid in infos else () for vid in ordered}
    rep: dict[str, str] = {}
    for group in _groups(ordered, aliases):
        for vid in group:
            rep[vid] = group[0]
    return rep


def _make_group(group: tuple[str, ...], infos: dict[str, RecordInfo]) -> _Group:
    names = set(group).union(*(infos[v].aliases for v in group if v in infos))
    primary = _primary(names)
    ratings = [r for r in (infos[v].rating for v in group if v in infos) if r is not None]
    best = max(ratings, key=_rank, default=None)
    summary = next((infos[v].summary for v in group if v in infos and infos[v].summary), "")
    return _Group(group, primary, tuple(sorted(names - {primary})), best, summary)


class _Group(Record):
    __slots__ = (  # noqa: RUF023 - in field order
        "records",
        "primary",
        "aliases",
        "rating",
        "summary",
    )

    def __init__(
        self,
        records: tuple[str, ...],
        primary: str,
        aliases: tuple[str, ...],
        rating: Rating | None,
        summary: str,
    ) -> None:
        self.records = records
        self.primary = primary
        self.aliases = aliases
        self.rating = rating
        self.summary = summary


def _rank(r: Rating) -> tuple[int, float]:
    return level_rank(r.level), r.score or 0.0
