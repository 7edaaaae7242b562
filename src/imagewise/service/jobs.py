"""What the service's jobs do. Each is a call into the library (the CLI calls the same).

``check``: the one-pass ``check`` of a pushed digest, stored per digest: an image is checked
once however many tags and repositories carry it (a later push of the same digest under another
tag only records the tag).

Split by content (``split_layers``, on by default with a broker): a check first looks at its
image's layers in the fleet's layer results; each layer not there gets a ``layer`` job (key
``layer:<blob digest>``: one per layer for the whole fleet, however many images need it),
which an idle worker may take at once; the check's worker claims those nobody has taken yet.
While another worker is still on one, it runs its claimed ones and puts the check back to
wait (``queue.Deferred``); otherwise the check reads its claimed layers in its own pass
(holding their jobs, which end with it) and joins the others from the results. A layer is so
read once for the fleet, by whichever worker holds its job. A layer whose job failed, or ran
and left nothing usable, is not waited for: the check reads it itself, so a check never
waits for ever.
"""

from __future__ import annotations

import os
import socket
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


#: a ``layer`` job goes before the checks waiting for it (pushes are 10)
LAYER_PRIORITY = 11
#: a split check looks at its layers again after WAIT_FIRST s, doubling up to WAIT_CAP s; after
#: WAIT_MOST looks it joins whatever is there and reads the rest itself
WAIT_FIRST, WAIT_CAP, WAIT_MOST = 0.25, 5.0, 400


def run_check_job(
    engine: Engine,
    payload: dict[str, Any],
    policy: Any,
    alerts: Any = None,
    queue: Any = None,
) -> str:
    """Check ``payload``'s digest (unless it has a result already), then judge the alert rules
    for the tag; returns what happened. With a ``queue`` the check is split by content: its
    layers become ``layer`` jobs first (see above)."""
    registry, repository, digest = payload["registry"], payload["repository"], payload["digest"]
    tag = payload.get("tag")
    outcome = "already checked"
    unchecked = latest_result(engine, digest) is None or payload.get("force")
    before = _tag_digest(engine, registry, repository, tag) if tag else None
    if unchecked and queue is not None:
        from imagewise.sources import open_source

        with open_source(_image_ref(payload), insecure=bool(payload.get("insecure"))) as src:
            opened = src.image()
            held = _wait_for_layers(engine, payload, queue, opened)  # Deferred: others on one
            if tag:
                record_ref(engine, registry, repository, tag, digest)
            outcome = _check_holding(engine, payload, policy, queue, held, opened)
    else:
        if tag:
            record_ref(engine, registry, repository, tag, digest)
        if unchecked:
            outcome = _check(engine, payload, policy)
    if alerts is not None and tag:
        from imagewise.service.alerts import evaluate

        result = latest_result(engine, digest)
        previous = latest_result(engine, before) if before and before != digest else None
        image = {"registry": registry, "repository": repository, "tag": tag, "digest": digest}
        if result is not None:
            evaluate(engine, alerts, image, result, previous)
    return outcome


def _layer_cache(engine: Engine) -> Any:
    from imagewise.cache import LayerCache
    from imagewise.service.layer_store import SqlLayerStore

    return LayerCache(store=SqlLayerStore(engine))  # the fleet's layer results


def _image_ref(payload: dict[str, Any]) -> str:
    return f"docker://{payload['registry']}/{payload['repository']}@{payload['digest']}"


def _wait_for_layers(engine: Engine, payload: dict[str, Any], queue: Any, image: Any) -> list[Any]:
    """Make sure no layer of the image is read twice in the fleet: every layer missing from
    the fleet's layer results gets its ``layer`` job (one per blob digest for the whole fleet;
    an idle worker may take it at once) and this worker claims those nobody has taken yet.
    While another worker is still on one, the claimed ones are run here and ``Deferred`` is
    raised; otherwise the claimed jobs are returned: the check reads those layers in its own
    pass (``_check_holding``), holding their jobs, and joins the rest from the results."""
    waited = int(payload.get("waited", 0))
    if waited >= WAIT_MOST:
        return []
    from imagewise.check.run import layer_ready
    from imagewise.service.queue import Deferred

    cache = _layer_cache(engine)

    def ready(layer: str) -> bool:
        if layer in _READY:
            return True
        if not layer_ready(layer, cache):
            return False
        if len(_READY) > 100_000:
            _READY.clear()
        _READY.add(layer)  # records never change once written: no need to ask again
        return True

    me = f"{socket.gethostname()}:{os.getpid()}/joining"
    layers = list(dict.fromkeys(str(layer.digest) for layer in image.layers))
    ids: dict[str, int] = {}
    for layer in [layer for layer in layers if not ready(layer)]:
        key = f"layer:{layer}"
        if _last_state(engine, key) in ("failed", "cancelled", "done"):
            continue  # its job ended without a usable result: the check reads it itself
        job: dict[str, Any] = {k: payload[k] for k in ("registry", "repository", "digest")}
        job.update(layer=layer, insecure=bool(payload.get("insecure")))
        ids[layer] = queue.submit("layer", key, job, LAYER_PRIORITY)
    held = [j for j in (queue.claim_id(i, me) for i in ids.values()) if j is not None]
    mine = {j.id for j in held}
    elsewhere = [
        layer
        for layer, job_id in ids.items()
        if job_id not in mine
        and not ready(layer)
        and _last_state(engine, f"layer:{layer}") in ("queued", "running")
    ]
    if not elsewhere:
        return held
    for job in held:  # analysed now, for the checks that will wait on them too
        _run_held(engine, queue, job, image)
    delay = min(WAIT_FIRST * 2**waited, WAIT_CAP)
    raise Deferred(delay, {**payload, "waited": waited + 1}, [])


#: layers this process has seen complete in the fleet's layer results
_READY: set[str] = set()


def _run_held(engine: Engine, queue: Any, job: Any, image: Any) -> None:
    """Run a ``layer`` job this worker claimed, and record its end like any worker would."""
    from imagewise.service.worker import heartbeats

    try:
        with heartbeats(queue, [job.id]):
            outcome = run_layer_job(engine, job.payload, image)
    except Exception as e:  # noqa: BLE001 - recorded; the check reads the layer itself
        queue.fail(job.id, f"{type(e).__name__}: {e}")
    else:
        queue.finish(job.id, outcome)


def _check_holding(
    engine: Engine,
    payload: dict[str, Any],
    policy: Any,
    queue: Any,
    held: list[Any],
    image: Any,
) -> str:
    """The check, reading in its pass the layers whose jobs it holds: those jobs end with it
    (done: the layer results are stored; failed: a layer job of its own reads it again)."""
    from imagewise.service.worker import heartbeats

    try:
        with heartbeats(queue, [j.id for j in held]):
            outcome = _check(engine, payload, policy, image)
    except Exception as e:
        for job in held:
            queue.fail(job.id, f"the check reading it failed: {type(e).__name__}: {e}")
        raise
    for job in held:
        queue.finish(job.id, f"analysed by the check of {payload['digest'][:19]}")
    return outcome


def _last_state(engine: Engine, key: str) -> str | None:
    from imagewise.service.db import jobs

    with engine.begin() as conn:
        row = conn.execute(
            select(jobs.c.state).where(jobs.c.key == key).order_by(jobs.c.id.desc()).limit(1)
        ).first()
    return None if row is None else str(row[0])


def run_layer_job(engine: Engine, payload: dict[str, Any], image: Any = None) -> str:
    """Analyse one layer into the fleet's layer results (``check.run.prepare_layer``);
    ``image``: the payload's image, open already (a check running its layer jobs)."""
    from imagewise.check.run import prepare_layer

    done = prepare_layer(
        _image_ref(payload),
        payload["layer"],
        cache=_layer_cache(engine),
        insecure=bool(payload.get("insecure")),
        image=image if image is not None and str(image.digest) == payload["digest"] else None,
    )
    return "analysed" if done else "already analysed"


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


def _check(engine: Engine, payload: dict[str, Any], policy: Any, image: Any = None) -> str:
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
        ),
        image=image,
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
