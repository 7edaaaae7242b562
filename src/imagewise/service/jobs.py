"""What the service's jobs do. Each is a call into the library (the CLI calls the same).

``check``: the one-pass ``check`` of a pushed digest, stored per digest: an image is checked
once however many tags and repositories carry it (a later push of the same digest under another
tag only records the tag).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, select

from imagewise.service.db import image_refs, results


def record_ref(engine: Engine, registry: str, repository: str, tag: str, digest: str) -> None:
    with engine.begin() as conn:
        row = conn.execute(
            select(image_refs.c.id).where(
                (image_refs.c.registry == registry)
                & (image_refs.c.repository == repository)
                & (image_refs.c.tag == tag)
            )
        ).first()
        if row is None:
            conn.execute(
                image_refs.insert().values(
                    registry=registry,
                    repository=repository,
                    tag=tag,
                    digest=digest,
                    seen=time.time(),
                )
            )
        else:
            conn.execute(
                image_refs.update()
                .where(image_refs.c.id == row[0])
                .values(digest=digest, seen=time.time())
            )


def run_check_job(engine: Engine, payload: dict[str, Any], policy: Any) -> str:
    """Check ``payload``'s digest (unless it has a result already); returns what happened."""
    from imagewise.check import CheckOptions, run_check

    registry, repository, digest = payload["registry"], payload["repository"], payload["digest"]
    if payload.get("tag"):
        record_ref(engine, registry, repository, payload["tag"], digest)
    with engine.begin() as conn:
        seen = conn.execute(select(results.c.id).where(results.c.digest == digest)).first()
    if seen is not None and not payload.get("force"):
        return "already checked"
    checked = run_check(
        CheckOptions(
            f"docker://{registry}/{repository}@{digest}",
            policy=policy,
            insecure=bool(payload.get("insecure")),
            allow_incomplete=True,
        )
    )
    severities: dict[str, int] = {}
    for v in checked.vulnerabilities:
        sev = str(getattr(v, "severity", "") or "unknown").lower()
        severities[sev] = severities.get(sev, 0) + 1
    analysis = checked.analysis
    with engine.begin() as conn:
        conn.execute(
            results.insert().values(
                digest=digest,
                checked=time.time(),
                passed=int(checked.verdict.passed),
                status=checked.verdict.status,
                size_bytes=int(analysis.dive.size_bytes),
                layers=len(checked.image.layers),
                efficiency=float(analysis.dive.efficiency),
                wasted_bytes=int(analysis.dive.wasted_bytes),
                reclaimable_bytes=int(analysis.reclaimable_bytes),
                vulnerabilities=severities,
                secrets=len(checked.secrets),
                violations=[v.rule for v in checked.verdict.violations],
            )
        )
    return checked.verdict.status
