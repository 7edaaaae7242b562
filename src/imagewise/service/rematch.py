"""Re-matching stored SBOMs after a vulnerability database update (no layer read again).

Every check keeps the packages of its digest (``sboms``: what matching needs of each). After
a ``db-update`` job (or a ``rematch`` job) every stored SBOM is matched against the database
again; a digest whose advisories changed gets a new result row (its newest check's figures with
the new vulnerabilities, so trends and metrics move) and the ``vulnerability`` alert rules are
judged for each of its tags against its previous result: new advisories reach the whole fleet
in one pass over packages.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, insert, select

from imagewise.service.db import image_refs, results, sboms

#: the fields of a package that matching reads
FIELDS = ("name", "version", "type", "purl", "source_name", "source_version", "distro")


def keep_sbom(engine: Engine, digest: str, packages: Any) -> None:
    rows = [{f: getattr(p, f) for f in FIELDS} for p in packages]
    with engine.begin() as conn:
        conn.execute(delete(sboms).where(sboms.c.digest == digest))
        conn.execute(insert(sboms).values(digest=digest, packages=rows, created=time.time()))


def rematch(engine: Engine, db_path: Path, alerts: Any = None) -> dict[str, Any]:
    """Match every stored SBOM against the database at ``db_path``; what changed."""
    from imagewise.sbom.model import Package
    from imagewise.service.jobs import by_severity
    from imagewise.vulns.matching import match
    from imagewise.vulns.store import VulnDB

    started = time.perf_counter()
    with engine.begin() as conn:
        stored = conn.execute(select(sboms.c.digest, sboms.c.packages)).all()
    changed = []
    with VulnDB(db_path) as db:
        for digest, rows in stored:
            packages = [Package(**{f: r.get(f, "") for f in FIELDS}) for r in rows]
            severities, ids = by_severity(match(packages, db))
            if _record(engine, str(digest), severities, ids, alerts):
                changed.append(str(digest))
    return {
        "at": time.time(),
        "images": len(stored),
        "changed": changed,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _record(
    engine: Engine, digest: str, severities: dict[str, int], ids: dict[str, str], alerts: Any
) -> bool:
    from imagewise.service.jobs import latest_result

    newest = latest_result(engine, digest)
    if newest is None or dict(newest["vulnerability_ids"] or {}) == ids:
        return False
    row = {k: v for k, v in newest.items() if k != "id"}
    row.update(checked=time.time(), vulnerabilities=severities, vulnerability_ids=ids)
    with engine.begin() as conn:
        conn.execute(insert(results).values(**row))
        tags = (
            conn.execute(select(image_refs).where(image_refs.c.digest == digest)).mappings().all()
        )
    if alerts is not None:
        from imagewise.service.alerts import evaluate

        for t in tags:
            image = {
                "registry": t["registry"],
                "repository": t["repository"],
                "tag": t["tag"],
                "digest": digest,
            }
            evaluate(engine, alerts, image, row, newest)
    return True
