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


def latest_result(engine: Engine, digest: str) -> dict[str, Any] | None:
    """The newest result recorded for ``digest``."""
    with engine.begin() as conn:
        row = (
            conn.execute(
                select(results)
                .where(results.c.digest == digest)
                .order_by(results.c.id.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
    return dict(row) if row else None


def _tag_digest(engine: Engine, registry: str, repository: str, tag: str) -> str | None:
    with engine.begin() as conn:
        row = conn.execute(
            select(image_refs.c.digest).where(
                (image_refs.c.registry == registry)
                & (image_refs.c.repository == repository)
                & (image_refs.c.tag == tag)
            )
        ).first()
    return str(row[0]) if row else None


def run_check_job(engine: Engine, payload: dict[str, Any], policy: Any, alerts: Any = None) -> str:
    """Check ``payload``'s digest (unless it has a result already), then judge the alert rules
    for the tag; returns what happened."""
    registry, repository, digest = payload["registry"], payload["repository"], payload["digest"]
    tag = payload.get("tag")
    before = _tag_digest(engine, registry, repository, tag) if tag else None
    if tag:
        record_ref(engine, registry, repository, tag, digest)
    outcome = "already checked"
    if latest_result(engine, digest) is None or payload.get("force"):
        outcome = _check(engine, payload, policy)
    if alerts is not None and tag:
        from imagewise.service.alerts import evaluate

        result = latest_result(engine, digest)
        previous = latest_result(engine, before) if before and before != digest else None
        image = {"registry": registry, "repository": repository, "tag": tag, "digest": digest}
        if result is not None:
            evaluate(engine, alerts, image, result, previous)
    return outcome


def by_severity(vulnerabilities: Any) -> tuple[dict[str, int], dict[str, str]]:
    """How many vulnerabilities per severity, and each advisory's severity (what a result
    keeps, and what the alerts compare)."""
    severities: dict[str, int] = {}
    ids: dict[str, str] = {}
    for v in vulnerabilities:
        sev = str(getattr(v, "severity", "") or "unknown").lower()
        severities[sev] = severities.get(sev, 0) + 1
        ids[str(v.id)] = sev
    return severities, ids


#: findings kept per check (the worst first): enough for the dashboard, bounded in size
KEEP_FINDINGS = 200


def _findings(checked: Any) -> list[dict[str, Any]]:
    """The check's audit, waste and secret findings as the dashboard lists them: rule,
    severity, title, where, fix. A secret's text never leaves the image: title and path only."""
    found = sorted(
        [*checked.secrets, *checked.audit, *checked.waste], key=lambda f: -int(f.severity)
    )
    out = []
    for f in found[:KEEP_FINDINGS]:
        where = f.location.path if f.location is not None else None
        out.append(
            {
                "rule": f.rule,
                "severity": f.severity.name.lower(),
                "title": f.title,
                "path": where,
                "fix": f.fix,
            }
        )
    return out


def _check(engine: Engine, payload: dict[str, Any], policy: Any) -> str:
    from imagewise.check import CheckOptions, run_check
    from imagewise.service.layer_store import SqlLayerStore

    registry, repository, digest = payload["registry"], payload["repository"], payload["digest"]
    checked = run_check(
        CheckOptions(
            f"docker://{registry}/{repository}@{digest}",
            policy=policy,
            insecure=bool(payload.get("insecure")),
            allow_incomplete=True,
            db_update=None,
            cache_store=SqlLayerStore(engine),  # the fleet's layer results, not this machine's
        )
    )
    severities, ids = by_severity(checked.vulnerabilities)
    analysis = checked.analysis
    with engine.begin() as conn:
        conn.execute(
            results.insert().values(
                digest=digest,
                checked=time.time(),
                passed=int(checked.verdict.passed),
                status=checked.verdict.status,
                size_bytes=int(analysis.dive.size_bytes),
                compressed_bytes=sum(int(layer.descriptor.size) for layer in checked.image.layers),
                findings=_findings(checked),
                layer_list=[
                    {
                        "index": layer.index,
                        "size_bytes": layer.size_bytes,
                        "compressed_size": layer.compressed_size,
                        "created_by": layer.created_by[:300],
                    }
                    for layer in analysis.layers
                ],
                layers=len(checked.image.layers),
                efficiency=float(analysis.dive.efficiency),
                wasted_bytes=int(analysis.dive.wasted_bytes),
                reclaimable_bytes=int(analysis.reclaimable_bytes),
                vulnerabilities=severities,
                vulnerability_ids=ids,
                secrets=len(checked.secrets),
                violations=[v.rule for v in checked.verdict.violations],
            )
        )
    from imagewise.service.rematch import keep_sbom

    keep_sbom(engine, digest, checked.packages)
    return (
        f"{checked.verdict.status}: {checked.cache_hits} layer(s) from the fleet's layer "
        f"results, {checked.cache_misses} analysed"
    )
