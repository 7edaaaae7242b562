"""Scheduled backups: jobs with cron expressions in a file, run when due.

``imagewise backup run --schedule-due --jobs-file backups.yaml`` (from cron or a systemd timer
firing often, e.g. every 5 minutes) runs each job whose last scheduled time has passed since
its last snapshot, and nothing else: firing it again changes nothing until the next scheduled
time. ``imagewise serve`` (the service) reads the same file. The file::

    backups:
      - name: registry-nightly
        sources: [localhost:5000]          # as `backup run` takes them
        to: /backup/registry               # a directory or s3://BUCKET/PREFIX
        schedule: "0 2 * * *"              # cron (5 fields, UTC): incremental snapshots
        full_schedule: "0 3 * * 0"         # optional: full snapshots (Sundays)
        kind: incremental                  # what `schedule` makes: incremental | differential
        config: [/etc/imagewise/policy.yaml]
        data: [/srv/registry/storage]
        key_file: /etc/imagewise/backup.key   # optional: an encrypted store

A job is due when the newest time its schedule named at or before now is later than its
newest snapshot (of that kind, for ``full_schedule``) in the store. Cron expressions are read
with ``croniter`` (the backup extra).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from imagewise.configfile import load_yaml, reject_unknown_keys
from imagewise.errors import ConfigError, UsageError


class Job:
    def __init__(self, doc: dict[str, Any], where: str) -> None:
        known = {
            "name",
            "sources",
            "to",
            "schedule",
            "full_schedule",
            "kind",
            "config",
            "data",
            "key_file",
        }
        reject_unknown_keys(doc, known, where)
        for required in ("name", "to", "schedule"):
            if not isinstance(doc.get(required), str) or not doc[required]:
                raise ConfigError(f"{where}: {required} is required (a string)")
        self.name: str = doc["name"]
        self.to: str = doc["to"]
        self.schedule: str = doc["schedule"]
        self.full_schedule: str | None = doc.get("full_schedule")
        self.kind: str = doc.get("kind", "incremental")
        if self.kind not in ("incremental", "differential"):
            raise ConfigError(f"{where}: kind must be incremental or differential")
        self.sources = _strings(doc.get("sources", []), f"{where}.sources")
        self.config = _strings(doc.get("config", []), f"{where}.config")
        self.data = _strings(doc.get("data", []), f"{where}.data")
        self.key_file: str | None = doc.get("key_file")
        for expr in filter(None, (self.schedule, self.full_schedule)):
            try:
                _croniter(expr, datetime.now(timezone.utc))
            except (ValueError, KeyError) as e:
                raise ConfigError(f"{where}: bad cron expression {expr!r}: {e}") from None


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of strings")
    return tuple(value)


def _croniter(expr: str, start: datetime) -> Any:
    try:
        from croniter import croniter
    except ImportError:
        raise UsageError(
            "scheduled backups need croniter: pip install 'imagewise[backup]'"
        ) from None
    if len(expr.split()) != 5:
        raise ValueError("expected 5 fields (minute hour day month weekday)")
    return croniter(expr, start)


def load_jobs(path: str | Path) -> list[Job]:
    p = Path(path)
    doc = load_yaml(p, "jobs file")
    jobs = (doc or {}).get("backups") if isinstance(doc, dict) else None
    if not isinstance(jobs, list) or not jobs:
        raise ConfigError(f"jobs file {p}: expected `backups:` with a list of jobs")
    out = [
        Job(j if isinstance(j, dict) else {}, f"jobs file {p}: backups[{i}]")
        for i, j in enumerate(jobs)
    ]
    names = [j.name for j in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"jobs file {p}: job names must be unique")
    return out


def last_due(expr: str, now: datetime) -> datetime:
    """The newest time ``expr`` names at or before ``now``."""
    it = _croniter(expr, now)
    prev: datetime = it.get_prev(datetime)
    nxt = _croniter(expr, prev).get_next(datetime)
    return nxt if nxt <= now else prev


def due_kind(job: Job, snapshots: list[dict[str, Any]], now: datetime) -> str | None:
    """``full``, the job's kind, or None (not due)."""
    from imagewise.backup.maintain import _when

    def newest(kinds: tuple[str, ...]) -> datetime | None:
        times = [_when(s) for s in snapshots if s.get("kind") in kinds]
        return max(times) if times else None

    if job.full_schedule:
        last_full = newest(("full",))
        if last_full is None or last_full < last_due(job.full_schedule, now):
            return "full"
    last_any = newest(("full", "incremental", "differential"))
    if last_any is None or last_any < last_due(job.schedule, now):
        return job.kind
    return None


class ScheduleResult:
    """What ``--schedule-due`` did: per job, the snapshot it made, or why not."""

    def __init__(self, jobs: list[dict[str, Any]]) -> None:
        self.jobs = jobs

    @property
    def failed(self) -> bool:
        return any("error" in j for j in self.jobs)

    def to_json(self) -> dict[str, Any]:
        return {"jobs": self.jobs}

    def table(self) -> str:
        lines = []
        for j in self.jobs:
            if "error" in j:
                what = f"failed: {j['error']}"
            elif j["due"]:
                what = f"snapshot {j['snapshot']} ({j['kind']})"
            else:
                what = j["why"]
            lines.append(f"{j['job']}: {what}")
        return "\n".join(lines) + "\n"


def run_due(path: str, *, now: datetime | None = None, insecure: bool = False) -> ScheduleResult:
    """Run every job of the file that is due; one result per job (ran or not, and why)."""
    from imagewise.backup.codec import read_key
    from imagewise.backup.run import backup_run
    from imagewise.backup.store import open_store
    from imagewise.errors import ImagewiseError

    moment = now or datetime.now(timezone.utc)
    results = []
    for job in load_jobs(path):
        key = read_key(job.key_file) if job.key_file else None
        try:
            snaps = open_store(job.to, key=key).snapshots()
        except UsageError:
            snaps = []  # no store yet: the first run makes it
        kind = due_kind(job, snaps, moment)
        entry: dict[str, Any] = {"job": job.name, "due": kind is not None}
        if kind is None:
            entry["why"] = f"not due: next after {last_due(job.schedule, moment).isoformat()}"
            results.append(entry)
            continue
        try:
            done = backup_run(
                list(job.sources),
                job.to,
                kind=kind,
                config_paths=job.config,
                data_paths=job.data,
                insecure=insecure,
                key=key,
                now=moment,
            )
            entry.update(snapshot=done.record["id"], kind=done.record["kind"])
        except ImagewiseError as e:
            entry["error"] = str(e)
        results.append(entry)
    return ScheduleResult(results)
