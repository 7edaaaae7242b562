"""``scan``: packages and secrets of an image (or the packages of an SBOM) against the offline
database, with ignores and VEX applied. One pass over the layers feeds the catalogers and the
secrets visitor together.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from imagewise import progress
from imagewise.findings import Finding
from imagewise.record import Record
from imagewise.sbom.model import Package
from imagewise.vulns.ignores import Decisions, Suppressed
from imagewise.vulns.matching import Vulnerability, match
from imagewise.vulns.severity import level_rank

if TYPE_CHECKING:
    from imagewise.cache import LayerCache
    from imagewise.sources.base import Image
    from imagewise.vulns.store import DBStatus
    from imagewise.vulns.update import AutoUpdate

#: warn when the newest record in the database is older than this many days
DEFAULT_MAX_AGE_DAYS = 7.0


class ScanResult(Record):
    __slots__ = (  # noqa: RUF023 - in field order
        "source",
        "packages",
        "vulnerabilities",
        "secrets",
        "suppressed",
        "db",  # None: the vulnerability scan was skipped (see db_note)
        "db_note",
        "warnings",
        "distro",
        "secrets_scanned",
        "metadata",
    )
    _uncompared = ("metadata",)

    def __init__(
        self,
        source: str,
        packages: tuple[Package, ...],
        vulnerabilities: tuple[Vulnerability, ...],
        secrets: tuple[Finding, ...] = (),
        suppressed: tuple[Suppressed, ...] = (),
        db: DBStatus | None = None,
        db_note: str = "",
        warnings: tuple[str, ...] = (),
        distro: str = "",
        secrets_scanned: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.source = source
        self.packages = packages
        self.vulnerabilities = vulnerabilities
        self.secrets = secrets
        self.suppressed = suppressed
        self.db = db
        self.db_note = db_note
        self.warnings = warnings
        self.distro = distro
        self.secrets_scanned = secrets_scanned
        self.metadata = {} if metadata is None else metadata

    @property
    def vulns_scanned(self) -> bool:
        return self.db is not None

    def fails(self, fail_on: str | None) -> bool:
        """The ``--fail-on`` gate: a vulnerability at or above the level, or any secret."""
        if not fail_on:
            return False
        limit = level_rank(fail_on)
        return any(level_rank(v.severity) >= limit for v in self.vulnerabilities) or any(
            level_rank(secret_level(f)) >= limit for f in self.secrets
        )


def secret_level(f: Finding) -> str:
    """Secrets on the vulnerability scale: keys and tokens are high, the rest medium."""
    from imagewise.findings import Severity

    return "high" if f.severity >= Severity.ERROR else "medium"


class DBMatch(NamedTuple):
    """What matching packages against the database gave (unpacks as the 4-tuple it was)."""

    vulnerabilities: list[Vulnerability]
    status: DBStatus | None  # None: no usable database (``note`` says why)
    note: str  # why the vulnerability scan was skipped; "" when it ran
    warnings: list[str]


def match_with_db(
    packages: list[Package] | tuple[Package, ...],
    db_path: Path,
    max_age_days: float | None = DEFAULT_MAX_AGE_DAYS,
    update: AutoUpdate | None = None,
) -> DBMatch:
    """The vulnerabilities, database status, note and warnings of a match. A missing database is not an error here:
    the note says the vulnerability scan was skipped, and the status is ``None``. With
    ``update``, the ecosystems the packages need are updated first when missing or stale
    (failures to reach the mirror become warnings)."""
    from imagewise.vulns.store import VulnDB

    warnings: list[str] = []
    if update is not None:
        warnings += update.run(Path(db_path), packages)
    if not Path(db_path).is_file():
        return DBMatch(
            [],
            None,
            (
                f"vulnerability scan skipped: no database at {db_path} "
                f"(run 'imagewise db update', or 'imagewise db import PATH' with OSV "
                f"data)"
            ),
            warnings,
        )
    with VulnDB(Path(db_path)) as db:
        status = db.status()
        if status.records == 0:
            return DBMatch(
                [],
                None,
                f"vulnerability scan skipped: the database at {db_path} is empty",
                warnings,
            )
        age = status.age_days()
        if max_age_days is not None and age is not None and age > max_age_days:
            warnings.append(
                f"vulnerability data is {age:.0f} days old (newest record modified "
                f"{status.newest_modified[:10]}; limit {max_age_days:g} days): "
                f"run 'imagewise db update' or import fresh OSV data"
            )
        vulns = match(packages, db)
    return DBMatch(vulns, status, "", warnings)


def _finish(
    source: str,
    packages: tuple[Package, ...],
    vulns: list[Vulnerability],
    secrets: list[Finding],
    status: DBStatus | None,
    note: str,
    warnings: list[str],
    decisions: Decisions | None,
    today: date | None,
    distro: str,
    secrets_scanned: bool,
) -> ScanResult:
    today = today or datetime.now(UTC).date()
    suppressed: list[Suppressed] = []
    if decisions is not None:
        warnings = warnings + decisions.warnings(today)
        vulns, gone = decisions.apply_vulns(vulns, today)
        suppressed += gone
        secrets, gone = decisions.apply_findings(secrets, today)
        suppressed += gone
    return ScanResult(
        source,
        packages,
        tuple(vulns),
        tuple(secrets),
        tuple(suppressed),
        status,
        note,
        tuple(warnings),
        distro,
        secrets_scanned,
    )


def scan_image(
    image: Image,
    db_path: Path,
    *,
    decisions: Decisions | None = None,
    secrets: bool = True,
    max_age_days: float | None = DEFAULT_MAX_AGE_DAYS,
    reporter: progress.Reporter = progress.NULL,
    today: date | None = None,
    update: AutoUpdate | None = None,
    checked: LayerCache | None = None,
) -> ScanResult:
    """Catalog ``image`` and look for secrets in one pass, then match against the database.
    ``checked``: where local layers checked before are remembered (``run_pass``)."""
    from imagewise.layers.passes import run_pass
    from imagewise.sbom.catalog import catalog_from_visitor
    from imagewise.sbom.visitor import CatalogVisitor
    from imagewise.secrets.visitor import SecretsVisitor, scan_config

    cat_v = CatalogVisitor()
    visitors: list[Any] = [cat_v]
    sec_v = SecretsVisitor() if secrets else None
    if sec_v is not None:
        visitors.append(sec_v)
    run_pass(image, visitors, reporter, checked=checked)
    cat = catalog_from_visitor(cat_v, image)
    found: list[Finding] = []
    if sec_v is not None:
        found = scan_config(image.config, image) + sec_v.findings
    vulns, status, note, warnings = match_with_db(cat.packages, db_path, max_age_days, update)
    return _finish(
        image.reference,
        cat.packages,
        vulns,
        found,
        status,
        note,
        warnings,
        decisions,
        today,
        cat.distro.label if cat.distro else "",
        secrets,
    )


def scan_packages(
    packages: list[Package] | tuple[Package, ...],
    db_path: Path,
    *,
    source: str = "",
    decisions: Decisions | None = None,
    max_age_days: float | None = DEFAULT_MAX_AGE_DAYS,
    today: date | None = None,
    update: AutoUpdate | None = None,
) -> ScanResult:
    """Match already-known packages (an SBOM file's) against the database."""
    vulns, status, note, warnings = match_with_db(packages, db_path, max_age_days, update)
    distro = next((p.distro for p in packages if p.distro), "")
    return _finish(
        source, tuple(packages), vulns, [], status, note, warnings, decisions, today, distro, False
    )
