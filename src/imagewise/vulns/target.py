"""What ``imagewise scan`` scans: an SBOM file or an image, with the database update policy a
scan runs under. The CLI, the service and workers call :func:`scan_target`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from imagewise.progress import NULL, Reporter
from imagewise.vulns.scan import DEFAULT_MAX_AGE_DAYS


def is_sbom_file(target: str) -> bool:
    """True when TARGET is a JSON file (an SBOM): an image archive never starts with ``{``."""
    p = Path(target)
    if not p.is_file():
        return False
    with p.open("rb") as f:
        return f.read(512).lstrip()[:1] == b"{"


def db_update_for(
    db: Path | None,
    *,
    offline: bool = False,
    skip_db_update: bool = False,
    update_db: bool = False,
    mirror: str | None = None,
    say: Callable[[str], None] | None = None,
    reporter: Reporter | None = None,
) -> Any:
    """The ``vulns.update.AutoUpdate`` a scan runs with, or None: the default database updates
    itself unless ``offline`` / ``skip_db_update`` / ``IMAGEWISE_OFFLINE``; one named with
    ``db`` only with ``update_db``."""
    from imagewise.vulns.update import AutoUpdate, offline as offline_env

    if offline or skip_db_update or (offline_env() and not update_db):
        return None
    if db is not None and not update_db:
        return None
    return AutoUpdate(mirror, say=say or (lambda _text: None), reporter=reporter or NULL)


def scan_target(
    target: str,
    db_path: Path,
    *,
    decisions: Any = None,
    platform: str | None = None,
    insecure: bool = False,
    secrets: bool = True,
    max_age_days: float | None = DEFAULT_MAX_AGE_DAYS,
    update: Callable[[Reporter], Any] | None = None,
    reporter: Reporter = NULL,
    warn: Callable[[str], None] | None = None,
    checked: Any = None,
) -> Any:
    """Scan TARGET, an SBOM file (SPDX or CycloneDX JSON) or an image reference, against the
    database at ``db_path``: a ``vulns.scan.ScanResult``. ``update(reporter)`` gives the
    database update to run first (see :func:`db_update_for`); ``warn`` hears SBOM components
    that were skipped; ``checked``: see :func:`~imagewise.vulns.scan.scan_image`."""
    from imagewise.vulns.scan import scan_image, scan_packages

    if is_sbom_file(target):
        from imagewise.sbom.read import read_sbom

        cat = read_sbom(Path(target))
        for s in cat.skipped[:10]:
            if warn is not None:
                warn(f"SBOM component skipped: {s.path}: {s.reason}")
        return scan_packages(
            cat.packages,
            db_path,
            source=target,
            decisions=decisions,
            max_age_days=max_age_days,
            update=update(NULL) if update is not None else None,
        )
    from imagewise.oci.model import Platform
    from imagewise.sources import open_source

    plat = Platform.parse(platform) if platform else None
    with open_source(target, insecure=insecure) as src:
        image = src.image(plat)
        return scan_image(
            image,
            db_path,
            decisions=decisions,
            secrets=secrets,
            max_age_days=max_age_days,
            reporter=reporter,
            update=update(reporter) if update is not None else None,
            checked=checked,
        )
