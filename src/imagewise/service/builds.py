"""Builds as jobs of the service: the seam for distributed builds.

A ``build`` job builds the images of a build file (``imagewise-build.yaml``) exactly as
``imagewise build --build-file`` does (``buildset.build_set``, the engine driven on the machine
of the worker that claims the job), and records each image's build as a report of kind
``build`` named ``BUILD/IMAGE`` (``BUILD`` is the job's ``name``): status, seconds, steps, cache
hits, context size. ``/metrics`` shows the newest of each (``imagewise_build_*``) and the
``build_failed`` alert rules are judged for each image. Jobs come from
``POST /api/v1/builds`` or from a schedule (``job: build``, e.g. a nightly rebuild that picks up
base-image updates). The build file and its contexts are paths on the worker's machine: a
worker elsewhere needs them on a shared volume or checked out at the same path.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine

from imagewise.errors import ConfigError, ImagewiseError

#: keys of a build job's payload besides ``name`` and ``build_file``
OPTIONS = ("jobs", "lint_fail_on", "check", "insecure")


def build_payload(doc: Any, where: str) -> dict[str, Any]:
    """A build job's payload checked (the build file read, so a bad one is refused now)."""
    from imagewise.buildset import load_build_file

    if not isinstance(doc, dict) or not isinstance(doc.get("build_file"), str):
        raise ConfigError(f"{where}: build_file (a path to imagewise-build.yaml) is required")
    unknown = sorted(set(doc) - {"name", "build_file", "cron", "job", *OPTIONS})
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]}")
    jobs = doc.get("jobs", 1)
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ConfigError(f"{where}: jobs must be a whole number of 1 or more")
    if doc.get("lint_fail_on", "error") not in ("error", "warning", "info", "none"):
        raise ConfigError(f"{where}: lint_fail_on must be error, warning, info or none")
    try:
        load_build_file(doc["build_file"])
    except ImagewiseError as e:
        raise ConfigError(f"{where}: {e}") from None
    return dict(doc)


def run_build(engine: Engine, payload: dict[str, Any], alerts: Any = None) -> str:
    """Build ``payload``'s build file, record each image's build and judge the ``build_failed``
    alert rules for it."""
    from imagewise.build import BuildResult
    from imagewise.buildset import build_set
    from imagewise.service.scheduler import record

    fail_on = payload.get("lint_fail_on", "error")
    result = build_set(
        payload["build_file"],
        jobs=int(payload.get("jobs", 1)),
        lint_fail_on=None if fail_on == "none" else fail_on,
        check_gate=bool(payload.get("check")),
        insecure=bool(payload.get("insecure")),
    )
    name = str(payload.get("name") or payload["build_file"])
    for image, (status, _after, outcome) in result.images.items():
        body: dict[str, Any] = {"status": status, "at": time.time()}
        if isinstance(outcome, BuildResult):
            body.update(outcome.to_json())
        else:
            body["reason"] = outcome
        record(engine, "build", f"{name}/{image}", body)
        if alerts is not None:
            from imagewise.service.alerts import evaluate

            detail = body.get("reason") or (body.get("diagnosis") or {}).get("evidence", "")
            evaluate(
                engine,
                alerts,
                {"registry": "", "repository": name, "tag": image, "digest": body.get("image_id")},
                {"build_status": status, "build_detail": detail},
                None,
            )
    built = sum(s == "built" for s, _, _ in result.images.values())
    # a failed image is the build's outcome, recorded and alerted, not the job's failure: a
    # retry would build the same Dockerfile again (the engine missing, say, raises and retries)
    return f"{built} of {len(result.images)} images built in {result.seconds:.1f}s"
