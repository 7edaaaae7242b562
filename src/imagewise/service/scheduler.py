"""Schedules of the service: cron expressions that queue jobs (the service config's
``schedules:``). Each schedule is queued once per scheduled time, whatever the number of
service restarts in between (the last time it was queued for is kept in the database).

    schedules:
      - {name: backups, cron: "*/5 * * * *", job: backup-due, jobs_file: /etc/imagewise/backups.yaml}
      - {name: space, cron: "0 * * * *", job: space-report, refs: [localhost:5000]}

Jobs: ``backup-due`` runs the due jobs of a backup jobs file (as ``backup run --schedule-due``)
and records each store's newest snapshot time (``imagewise_backup_last_snapshot_timestamp``);
``space-report`` runs ``du`` on ``refs`` and records it (``imagewise_repository_*_bytes``);
``drill`` rehearses a restore of ``store``'s newest snapshot into ``scratch`` and records the
outcome and RTO (``imagewise_drill_*``); ``build`` builds ``build_file``'s images and records
each build (``imagewise_build_*``, see ``service.builds``); ``pull`` times a cold pull of each of
``images`` (``imagewise_pull_*``) and ``startup`` the start-up of ``image`` until ``log`` matches,
``port`` answers or its HEALTHCHECK passes (``imagewise_startup_seconds``); ``retention`` plans
(and with ``apply: true`` applies) the retention rules of ``policy`` on ``refs``; ``sync``
mirrors a sync file's images to ``destination``; ``db-update`` updates the vulnerability
database (``ecosystems``, ``mirror``, ``db``: as ``imagewise db update``). Each records its
outcome (``imagewise_retention_*``, ``imagewise_sync_*``, ``imagewise_db_update_*``).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, select

from imagewise.errors import ConfigError
from imagewise.service.db import reports, schedule_runs

_LOG = logging.getLogger("imagewise.service")

JOBS = (
    "backup-due",
    "space-report",
    "drill",
    "build",
    "pull",
    "startup",
    "retention",
    "sync",
    "db-update",
    "rematch",
)


def parse_schedules(doc: Any) -> list[dict[str, Any]]:
    from imagewise.backup.schedule import _croniter

    out = []
    for i, item in enumerate(doc or []):
        where = f"config schedules[{i}]"
        if not isinstance(item, dict) or not item.get("name") or not item.get("cron"):
            raise ConfigError(f"{where}: expected {{name, cron, job, ...}}")
        if item.get("job") not in JOBS:
            raise ConfigError(f"{where}: job must be one of {', '.join(JOBS)}")
        try:
            _croniter(str(item["cron"]), datetime.now(timezone.utc))
        except (ValueError, KeyError) as e:
            raise ConfigError(f"{where}: bad cron expression {item['cron']!r}: {e}") from None
        if item["job"] == "backup-due" and not item.get("jobs_file"):
            raise ConfigError(f"{where}: backup-due needs jobs_file")
        if item["job"] == "space-report" and not item.get("refs"):
            raise ConfigError(f"{where}: space-report needs refs")
        if item["job"] == "drill" and not (item.get("store") and item.get("scratch")):
            raise ConfigError(f"{where}: drill needs store and scratch")
        if item["job"] == "pull" and not (isinstance(item.get("images"), list) and item["images"]):
            raise ConfigError(f"{where}: pull needs images (registry references to time)")
        if item["job"] == "startup" and not isinstance(item.get("image"), str):
            raise ConfigError(
                f"{where}: startup needs image (and log or port, else its HEALTHCHECK)"
            )
        if item["job"] == "retention" and not (item.get("refs") and item.get("policy")):
            raise ConfigError(f"{where}: retention needs refs and policy (its retention rules)")
        if item["job"] == "sync" and not (item.get("config") and item.get("destination")):
            raise ConfigError(f"{where}: sync needs config (a sync file) and destination")
        runs = item.get("runs", 3)
        if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
            raise ConfigError(f"{where}: runs must be a whole number of 1 or more")
        if item["job"] == "build":
            from imagewise.service.builds import build_payload

            item = build_payload(item, where)
        out.append(dict(item))
    return out


def tick(
    engine: Engine, queue: Any, schedules: list[dict[str, Any]], now: datetime | None = None
) -> list[str]:
    """Queue every schedule whose newest scheduled time has not been queued yet."""
    from imagewise.backup.schedule import last_due

    moment = now or datetime.now(timezone.utc)
    queued = []
    for s in schedules:
        due = last_due(str(s["cron"]), moment).timestamp()
        with engine.begin() as conn:
            row = conn.execute(
                select(schedule_runs.c.last_due).where(schedule_runs.c.name == s["name"])
            ).first()
            if row is not None and float(row[0]) >= due:
                continue
            if row is None:
                conn.execute(schedule_runs.insert().values(name=s["name"], last_due=due))
            else:
                conn.execute(
                    schedule_runs.update()
                    .where(schedule_runs.c.name == s["name"])
                    .values(last_due=due)
                )
        queue.submit(s["job"], f"schedule:{s['name']}:{int(due)}", s)
        queued.append(s["name"])
    return queued


def run_backup_due(engine: Engine, payload: dict[str, Any], alerts: Any = None) -> str:
    from imagewise.backup.schedule import load_jobs, run_due
    from imagewise.backup.store import open_store

    result = run_due(payload["jobs_file"])
    for job in load_jobs(payload["jobs_file"]):
        from imagewise.backup.codec import read_key

        try:
            snaps = open_store(
                job.to, key=read_key(job.key_file) if job.key_file else None
            ).snapshots()
        except Exception:  # noqa: BLE001 - a store that is not there yet has no age
            continue
        if snaps:
            from imagewise.backup.maintain import _when

            record(
                engine,
                "backup",
                job.name,
                {"last_snapshot": _when(snaps[-1]).timestamp(), "store": job.to},
            )
    if alerts is not None:
        judge_backup_ages(engine, alerts)
    if result.failed:
        raise RuntimeError("; ".join(j["error"] for j in result.jobs if "error" in j))
    return "ok"


def judge_backup_ages(engine: Engine, alerts: Any) -> None:
    """The ``backup_too_old`` rules against every backup job's newest snapshot."""
    from imagewise.service.alerts import evaluate_backups

    newest = {n: float(b["last_snapshot"]) for n, b in latest_reports(engine, "backup").items()}
    evaluate_backups(engine, alerts, newest)


def run_space_report(engine: Engine, payload: dict[str, Any], alerts: Any = None) -> str:
    """``du`` of the payload's refs, recorded; the storage alert rules judged on it."""
    from imagewise.storage.du import read_targets, space_report

    report = space_report(
        read_targets(
            list(payload["refs"]),
            insecure=bool(payload.get("insecure")),
            storage_dir=payload.get("storage_dir"),
        )
    )
    previous = latest_reports(engine, "space").get(payload["name"])
    body = {**report.to_json(), "at": time.time()}
    record(engine, "space", payload["name"], body)
    if alerts is not None:
        from imagewise.service.alerts import evaluate_space

        evaluate_space(engine, alerts, payload["name"], body, previous)
    return "ok"


def run_drill(engine: Engine, payload: dict[str, Any], alerts: Any = None) -> str:
    """A recovery drill of the store's newest snapshot; the outcome is recorded either way."""
    from imagewise.backup.codec import read_key
    from imagewise.backup.drill import drill

    key = read_key(payload["key_file"]) if payload.get("key_file") else None
    result = drill(
        payload["store"],
        "latest",
        payload["scratch"],
        key=key,
        insecure=bool(payload.get("insecure")),
    )
    body = {
        "ok": result.ok,
        "rto_seconds": result.total_seconds,
        "error": result.error,
        "at": time.time(),
    }
    record(engine, "drill", payload["name"], body)
    if alerts is not None:
        from imagewise.service.alerts import evaluate_drill

        evaluate_drill(engine, alerts, payload["name"], result.ok, result.error or "a check failed")
    if not result.ok:
        raise RuntimeError(
            f"drill of {payload['store']} failed: {result.error or 'a check failed'}"
        )
    return "ok"


def record(engine: Engine, kind: str, name: str, body: dict[str, Any]) -> None:
    """Keep a job's report (the metrics and the dashboard read the newest of each name)."""
    with engine.begin() as conn:
        conn.execute(reports.insert().values(kind=kind, name=name, created=time.time(), body=body))


def all_reports(engine: Engine, kind: str) -> dict[str, list[dict[str, Any]]]:
    """Every recorded report of ``kind`` per name, oldest first."""
    with engine.begin() as conn:
        rows = conn.execute(
            select(reports.c.name, reports.c.body)
            .where(reports.c.kind == kind)
            .order_by(reports.c.id)
        ).all()
    out: dict[str, list[dict[str, Any]]] = {}
    for name, body in rows:
        out.setdefault(str(name), []).append(dict(body))
    return out


def latest_reports(engine: Engine, kind: str) -> dict[str, dict[str, Any]]:
    """The newest report of ``kind`` per name."""
    return {name: runs[-1] for name, runs in all_reports(engine, kind).items()}


class Scheduler:
    def __init__(
        self,
        engine: Engine,
        queue: Any,
        schedules: list[dict[str, Any]],
        every: float = 20.0,
        alerts: Any = None,
    ) -> None:
        """``alerts``: the ``AlertConfig`` whose ``backup_too_old`` rules each round judges."""
        self.engine, self.queue, self.schedules, self.every = engine, queue, schedules, every
        self.alerts = alerts
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.schedules:
            return
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        from sqlalchemy.exc import DBAPIError

        while not self.stop.is_set():
            try:
                tick(self.engine, self.queue, self.schedules)
                if self.alerts is not None:
                    judge_backup_ages(self.engine, self.alerts)
            except DBAPIError:  # the database is away (restarting): the next round retries
                _LOG.warning("scheduler round skipped: database unavailable", exc_info=True)
            self.stop.wait(self.every)

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=10)


def run_pull(engine: Engine, payload: dict[str, Any]) -> str:
    """A timed cold pull of each image (``imagewise measure pull``), recorded for the
    ``imagewise_pull_*`` metrics."""
    from imagewise.measure import measure_pull

    for image in payload["images"]:
        measured = measure_pull(
            str(image), runs=int(payload.get("runs", 3)), insecure=bool(payload.get("insecure"))
        )
        record(engine, "pull", str(image), {**measured.to_json(), "at": time.time()})
    return "ok"


def run_startup(engine: Engine, payload: dict[str, Any]) -> str:
    """The image's start-up time (``imagewise measure startup``), recorded for
    ``imagewise_startup_seconds``."""
    import shlex

    from imagewise.measure import measure_startup

    command = payload.get("command")
    measured = measure_startup(
        str(payload["image"]),
        command=shlex.split(command) if isinstance(command, str) else None,
        log=payload.get("log"),
        port=payload.get("port"),
        runs=int(payload.get("runs", 3)),
        timeout=float(payload.get("timeout", 60)),
        insecure=bool(payload.get("insecure")),
    )
    record(engine, "startup", str(payload["image"]), {**measured.to_json(), "at": time.time()})
    return "ok"


def run_retention(engine: Engine, payload: dict[str, Any]) -> str:
    """Plan the retention rules on the refs; with ``apply``, delete exactly the plan (each
    digest re-checked first). Recorded either way."""
    from imagewise.policy.model import load_policy
    from imagewise.storage.retention import apply_for, plan_for

    insecure = bool(payload.get("insecure"))
    plan = plan_for(
        list(payload["refs"]),
        load_policy(payload["policy"]),
        insecure=insecure,
        storage_dir=payload.get("storage_dir"),  # the registry's storage: untagged manifests
    )
    body: dict[str, Any] = {
        "at": time.time(),
        "planned": len(plan.deletions),
        "freed_bytes": plan.freed_bytes,
        "kept_bytes": plan.kept_bytes,
        "applied": bool(payload.get("apply")),
        "deleted": 0,
        "skipped": 0,
    }
    if payload.get("apply"):
        done = apply_for(plan, max_delete=payload.get("max_delete"), insecure=insecure)
        body["deleted"], body["skipped"] = len(done.deleted), len(done.skipped)
    record(engine, "retention", payload["name"], body)
    return "ok"


def run_sync(engine: Engine, payload: dict[str, Any]) -> str:
    """``imagewise sync CONFIG DESTINATION`` as a job; fails (and retries) when an image failed."""
    from imagewise.storage.sync import sync

    result = sync(
        payload["config"],
        payload["destination"],
        prune=bool(payload.get("prune")),
        insecure=bool(payload.get("insecure")),
    )
    doc = result.to_json()
    body = {
        "at": time.time(),
        "counts": doc["counts"],
        "bytes_copied": doc["bytes_copied"],
        "errors": doc["errors"][:20],
    }
    record(engine, "sync", payload["name"], body)
    if result.failed:
        raise RuntimeError(f"{len(result.errors)} image(s) not synced: {result.errors[0]}")
    return "ok"


def run_db_update(engine: Engine, payload: dict[str, Any], alerts: Any = None) -> str:
    """``imagewise db update`` as a job, then every stored SBOM re-matched against the new
    data (``service.rematch``: no layer read); fails (and retries) when an ecosystem failed."""
    from pathlib import Path

    from imagewise.vulns.store import default_path
    from imagewise.vulns.update import known_ecosystems, update

    db_path = Path(payload["db"]) if payload.get("db") else default_path()
    wanted = list(payload.get("ecosystems") or known_ecosystems(db_path))
    results = update(db_path, wanted, payload.get("mirror"), force=bool(payload.get("force")))
    outcomes = {r.ecosystem: r.outcome for r in results}
    record(engine, "db-update", payload["name"], {"at": time.time(), "ecosystems": outcomes})
    if any(o == "updated" for o in outcomes.values()):
        run_rematch(engine, {"name": payload["name"], "db": str(db_path)}, alerts)
    failed = [e for e, o in outcomes.items() if o == "failed"]
    if failed:
        raise RuntimeError(f"not updated: {', '.join(failed)}")
    return "ok"


def run_rematch(engine: Engine, payload: dict[str, Any], alerts: Any = None) -> str:
    """Every stored SBOM matched against the vulnerability database again (``rematch``)."""
    from pathlib import Path

    from imagewise.service.rematch import rematch
    from imagewise.vulns.store import default_path

    db_path = Path(payload["db"]) if payload.get("db") else default_path()
    record(engine, "rematch", payload["name"], rematch(engine, db_path, alerts))
    return "ok"
