"""Vulnerabilities from an offline OSV database: import, per-ecosystem matching, ignores and VEX.

* ``match(packages, db) -> list[Vulnerability]`` with ``db`` an open :class:`VulnDB`;
* ``VulnDB(path)`` / ``default_path()`` the SQLite store (``db import`` / ``db status``);
* ``scan_image(image, db_path, ...)`` / ``scan_packages(...)`` the whole ``imagewise scan``;
* ``match_with_db(packages, db_path, max_age_days)`` -> ``DBMatch`` (vulnerabilities, status, note, warnings): matching
  that turns a missing or empty database into a "scan skipped" note instead of an error;
* ``load_decisions(ignore_files, vex_files)`` ignores and OpenVEX, applied by the scans.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagewise.lazy import exports

if TYPE_CHECKING:
    from imagewise.vulns.ignores import Decisions as Decisions, load_decisions as load_decisions
    from imagewise.vulns.matching import Vulnerability as Vulnerability, match as match
    from imagewise.vulns.scan import (
        ScanResult as ScanResult,
        match_with_db as match_with_db,
        scan_image as scan_image,
        scan_packages as scan_packages,
    )
    from imagewise.vulns.store import VulnDB as VulnDB, default_path as default_path

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "match": "imagewise.vulns.matching",
        "Vulnerability": "imagewise.vulns.matching",
        "VulnDB": "imagewise.vulns.store",
        "default_path": "imagewise.vulns.store",
        "scan_image": "imagewise.vulns.scan",
        "scan_packages": "imagewise.vulns.scan",
        "match_with_db": "imagewise.vulns.scan",
        "ScanResult": "imagewise.vulns.scan",
        "Decisions": "imagewise.vulns.ignores",
        "load_decisions": "imagewise.vulns.ignores",
    },
)
