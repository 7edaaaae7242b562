"""Ignore lists and VEX: what the user has decided does not apply, with a reason and an expiry.

Read: ``.imagewise-ignore.yaml`` (``ignore: [{id, package, version, path, reason, expires}]``),
``.trivyignore`` (one id per line, optional ``exp:YYYY-MM-DD``), ``.grype.yaml`` (``ignore:`` with
``vulnerability`` and ``package.{name,version,type,location}``) and OpenVEX documents (statements
with status ``not_affected`` or ``fixed`` suppress; the newest statement per product wins).
Expired entries stop suppressing and produce a warning.
"""

from __future__ import annotations

import fnmatch
import json
import re
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagewise.errors import ConfigError
from imagewise.record import Record

if TYPE_CHECKING:
    from imagewise.findings import Finding
    from imagewise.sbom.model import Package
    from imagewise.vulns.matching import Vulnerability

DEFAULT_FILES = (".imagewise-ignore.yaml", ".imagewise-ignore.yml", ".trivyignore", ".grype.yaml")
_NORM = re.compile(r"[-_.]+")


def _norm(name: str) -> str:
    return _NORM.sub("-", name).lower()


def _date(value: Any, where: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise ConfigError(f"{where}: expires {value!r} is not a date (YYYY-MM-DD)") from None


class IgnoreRule(Record):
    __slots__ = (  # noqa: RUF023 - in field order
        "id",  # vulnerability id or alias, or a secrets rule id
        "package",  # package name or purl ("" = any)
        "version",
        "type",
        "path",  # glob over the package location / secret path ("" = any)
        "reason",
        "expires",
        "source",  # file:line it came from
    )

    def __init__(
        self,
        id: str,
        package: str = "",
        version: str = "",
        type: str = "",
        path: str = "",
        reason: str = "",
        expires: date | None = None,
        source: str = "",
    ) -> None:
        self.id = id
        self.package = package
        self.version = version
        self.type = type
        self.path = path
        self.reason = reason
        self.expires = expires
        self.source = source

    def expired(self, today: date) -> bool:
        return self.expires is not None and today > self.expires

    def _path_ok(self, path: str) -> bool:
        if not self.path:
            return True
        pat = self.path.lstrip("/")
        p = path.lstrip("/")
        return fnmatch.fnmatchcase(p, pat) or fnmatch.fnmatchcase(p, pat.rstrip("/") + "/*")

    def _package_ok(self, pkg: Package) -> bool:
        if self.package:
            if self.package.startswith("pkg:"):
                if not _purl_match(self.package, pkg.purl):
                    return False
            elif _norm(self.package) not in (_norm(pkg.name), _norm(pkg.source_name or pkg.name)):
                return False
        if self.version and self.version != pkg.version:
            return False
        return not (self.type and self.type != pkg.type)

    def matches_vuln(self, v: Vulnerability) -> bool:
        if self.id not in v.ids:
            return False
        return self._package_ok(v.package) and self._path_ok(v.path)

    def matches_finding(self, f: Finding) -> bool:
        rule = f.rule
        if self.id not in (rule, rule.split("/", 1)[-1]):
            return False
        return self._path_ok(f.location.path)


def _purl_parts(purl: str) -> tuple[str, str]:
    """(purl without version/qualifiers, version)."""
    base = purl.split("?", 1)[0].split("#", 1)[0]
    name, _, version = base.partition("@")
    return name.lower(), version


def _purl_match(pattern: str, purl: str) -> bool:
    if not purl:
        return False
    pn, pv = _purl_parts(pattern)
    n, v = _purl_parts(purl)
    return pn == n and (not pv or pv == v)


def _read_imagewise(path: Path, doc: Any) -> list[IgnoreRule]:
    if isinstance(doc, dict) and "ignore" not in doc and doc:
        raise ConfigError(f"{path}: not an ignore file (expected an 'ignore:' list)")
    entries = doc.get("ignore", []) if isinstance(doc, dict) else doc
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: expected a list under 'ignore:'")
    rules = []
    for i, e in enumerate(entries):
        where = f"{path}: entry {i + 1}"
        if not isinstance(e, dict) or not e.get("id"):
            raise ConfigError(f"{where}: each entry needs an 'id'")
        rules.append(
            IgnoreRule(
                id=str(e["id"]),
                package=str(e.get("package") or ""),
                version=str(e.get("version") or ""),
                type=str(e.get("type") or ""),
                path=str(e.get("path") or ""),
                reason=str(e.get("reason") or ""),
                expires=_date(e.get("expires"), where),
                source=where,
            )
        )
    return rules


def _read_grype(path: Path, doc: dict[str, Any]) -> list[IgnoreRule]:
    rules = []
    for i, e in enumerate(doc.get("ignore") or []):
        if not isinstance(e, dict) or not e.get("vulnerability"):
            continue  # grype also allows package-only rules; imagewise needs an id
        pkg = e.get("package") or {}
        rules.append(
            IgnoreRule(
                id=str(e["vulnerability"]),
                package=str(pkg.get("name") or ""),
                version=str(pkg.get("version") or ""),
                type={"python": "pypi", "go-module": "golang", "java-archive": "maven"}.get(
                    str(pkg.get("type") or ""), str(pkg.get("type") or "")
                ),
                path=str(pkg.get("location") or ""),
                reason=str(e.get("reason") or ""),
                source=f"{path}: ignore {i + 1}",
            )
        )
    return rules


def _read_trivy(path: Path, text: str) -> list[IgnoreRule]:
    rules = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        exp = next((p[4:] for p in parts[1:] if p.startswith("exp:")), None)
        where = f"{path}:{n}"
        rules.append(IgnoreRule(id=parts[0], expires=_date(exp, where), source=where))
    return rules


def load_ignore_file(path: Path) -> list[IgnoreRule]:
    """Rules from one ignore file; the format is told by name (``.trivyignore``) or content."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ignore file: {e.strerror or e}") from e
    if path.name.endswith("trivyignore") or path.suffix in (".txt", ""):
        return _read_trivy(path, text)
    import yaml

    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from e
    if isinstance(doc, dict) and any(
        isinstance(e, dict) and "vulnerability" in e for e in doc.get("ignore") or []
    ):
        return _read_grype(path, doc)
    return _read_imagewise(path, doc)


# ------------------------------------------------------------------------------------ OpenVEX
class VexStatement(Record):
    __slots__ = (  # noqa: RUF023 - in field order
        "vulnerability",
        "aliases",
        "products",  # purls or image ids the statement is about
        "subcomponents",  # package purls inside the products ("" = whole product)
        "status",
        "justification",
        "timestamp",
        "source",
    )

    def __init__(
        self,
        vulnerability: str,
        aliases: tuple[str, ...],
        products: tuple[str, ...],
        subcomponents: tuple[str, ...],
        status: str,
        justification: str,
        timestamp: str,
        source: str,
    ) -> None:
        self.vulnerability = vulnerability
        self.aliases = aliases
        self.products = products
        self.subcomponents = subcomponents
        self.status = status
        self.justification = justification
        self.timestamp = timestamp
        self.source = source

    def applies(self, v: Vulnerability) -> bool:
        if not ({self.vulnerability, *self.aliases} & v.ids):
            return False
        purl = v.package.purl
        if self.subcomponents:
            return any(_purl_match(s, purl) for s in self.subcomponents)
        # a product that is the package itself, or the whole image (not a package purl)
        return any(
            _purl_match(p, purl)
            or not p.startswith("pkg:")
            or p.startswith(("pkg:oci/", "pkg:docker/"))
            for p in self.products
        )


def _ids(items: Any) -> tuple[str, ...]:
    out = []
    for it in items or ():
        if isinstance(it, str):
            out.append(it)
        elif isinstance(it, dict) and it.get("@id"):
            out.append(str(it["@id"]))
    return tuple(out)


def load_vex(path: Path) -> list[VexStatement]:
    """Statements from an OpenVEX document (v0.0.x and v0.2.x shapes)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: not a readable OpenVEX JSON document: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("statements"), list):
        raise ConfigError(f"{path}: not an OpenVEX document (no 'statements')")
    doc_ts = str(doc.get("timestamp") or "")
    out = []
    for i, s in enumerate(doc["statements"]):
        vuln = s.get("vulnerability")
        if isinstance(vuln, dict):
            name, aliases = (
                str(vuln.get("name") or vuln.get("@id") or ""),
                tuple(vuln.get("aliases") or ()),
            )
        else:
            name, aliases = str(vuln or ""), ()
        if not name or not s.get("status"):
            raise ConfigError(f"{path}: statement {i + 1} needs a vulnerability and a status")
        products = _ids(s.get("products"))
        subs = list(_ids(s.get("subcomponents")))
        for p in s.get("products") or ():
            if isinstance(p, dict):
                subs.extend(_ids(p.get("subcomponents")))
        out.append(
            VexStatement(
                name,
                aliases,
                products,
                tuple(subs),
                str(s["status"]),
                str(s.get("justification") or ""),
                str(s.get("timestamp") or doc_ts),
                f"{path}: statement {i + 1}",
            )
        )
    return out


# ------------------------------------------------------------------------------------ applying
class Suppressed(Record):
    """A vulnerability or a secret finding an ignore rule or a VEX statement took out, and why."""

    __slots__ = (  # noqa: RUF023 - in field order
        "item",
        "by",  # where the decision came from
        "reason",
    )

    def __init__(self, item: Vulnerability | Finding, by: str, reason: str) -> None:
        self.item = item
        self.by = by
        self.reason = reason

    @property
    def id(self) -> str:
        """The vulnerability id, or the finding's rule."""
        from imagewise.findings import Finding

        return self.item.rule if isinstance(self.item, Finding) else self.item.id

    @property
    def package(self) -> str:
        """The vulnerable package's name ("" for a finding)."""
        from imagewise.findings import Finding

        return "" if isinstance(self.item, Finding) else self.item.package.name

    @property
    def path(self) -> str:
        """Where in the image: the finding's path, or where the package was found."""
        from imagewise.findings import Finding

        return self.item.location.path if isinstance(self.item, Finding) else self.item.path


class Decisions(Record):
    __slots__ = ("rules", "vex")  # noqa: RUF023 - in field order

    def __init__(
        self,
        rules: list[IgnoreRule] | None = None,
        vex: list[VexStatement] | None = None,
    ) -> None:
        self.rules = [] if rules is None else rules
        self.vex = [] if vex is None else vex

    def warnings(self, today: date) -> list[str]:
        return [
            f"{r.source}: ignore of {r.id} expired on {r.expires}; it no longer suppresses"
            for r in self.rules
            if r.expired(today)
        ]

    def apply_vulns(
        self, vulns: list[Vulnerability], today: date
    ) -> tuple[list[Vulnerability], list[Suppressed]]:
        live = [r for r in self.rules if not r.expired(today)]
        vex = sorted(self.vex, key=lambda s: s.timestamp)
        kept, gone = [], []
        for v in vulns:
            rule = next((r for r in live if r.matches_vuln(v)), None)
            if rule is not None:
                gone.append(Suppressed(v, rule.source, rule.reason or "ignored"))
                continue
            stmt = None
            for s in vex:  # the newest applicable statement decides
                if s.applies(v):
                    stmt = s
            if stmt is not None and stmt.status in ("not_affected", "fixed"):
                why = stmt.status + (f": {stmt.justification}" if stmt.justification else "")
                gone.append(Suppressed(v, stmt.source, why))
                continue
            kept.append(v)
        return kept, gone

    def apply_findings(
        self, findings: list[Finding], today: date
    ) -> tuple[list[Finding], list[Suppressed]]:
        live = [r for r in self.rules if not r.expired(today)]
        kept, gone = [], []
        for f in findings:
            rule = next((r for r in live if r.matches_finding(f)), None)
            if rule is None:
                kept.append(f)
            else:
                gone.append(Suppressed(f, rule.source, rule.reason or "ignored"))
        return kept, gone


def load_decisions(ignore_files: list[Path], vex_files: list[Path]) -> Decisions:
    d = Decisions()
    for p in ignore_files:
        d.rules.extend(load_ignore_file(p))
    for p in vex_files:
        d.vex.extend(load_vex(p))
    return d


def discover(directory: Path) -> list[Path]:
    """The default ignore files present in ``directory``."""
    return [directory / n for n in DEFAULT_FILES if (directory / n).is_file()]
