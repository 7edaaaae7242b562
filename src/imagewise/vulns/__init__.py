"""Vulnerabilities from an offline OSV database: import, per-ecosystem matching, ignores and VEX.

Library entry points (imported lazily so ``import imagewise.vulns`` stays cheap):

* ``match(packages, db) -> list[Vulnerability]`` with ``db`` an open :class:`VulnDB`;
* ``VulnDB(path)`` / ``default_path()`` the SQLite store (``db import`` / ``db status``);
* ``scan_image(image, db_path, ...)`` / ``scan_packages(...)`` the whole ``imagewise scan``;
* ``match_with_db(packages, db_path, max_age_days)`` -> (vulns, status, note, warnings): matching
  that turns a missing or empty database into a "scan skipped" note instead of an error;
* ``load_decisions(ignore_files, vex_files)`` ignores and OpenVEX, applied by the scans.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Decisions", "ScanResult", "VulnDB", "Vulnerability", "default_path", "load_decisions",
           "match", "match_with_db", "scan_image", "scan_packages"]

_EXPORTS = {
    "match": "imagewise.vulns.matching", "Vulnerability": "imagewise.vulns.matching",
    "VulnDB": "imagewise.vulns.store", "default_path": "imagewise.vulns.store",
    "scan_image": "imagewise.vulns.scan", "scan_packages": "imagewise.vulns.scan",
    "match_with_db": "imagewise.vulns.scan",
    "ScanResult": "imagewise.vulns.scan", "Decisions": "imagewise.vulns.ignores",
    "load_decisions": "imagewise.vulns.ignores",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'imagewise.vulns' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
