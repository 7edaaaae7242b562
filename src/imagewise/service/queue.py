"""Job execution behind one interface: ``JobQueue`` (submit, claim, heartbeat, finish, fail with
retry and backoff, cancel). ``SqlJobQueue`` keeps the queue in the service's database, so it
works in one process (threads), across worker processes and across restarts:

* ``submit`` is idempotent per ``key``: while a job with that key is queued or running, the
  same job is not queued again (a push of a digest already being checked adds nothing);
* ``claim`` takes the oldest, highest-priority queued job in one atomic UPDATE, so a job never
  runs twice at once;
* a running job sends heartbeats; ``recover`` puts back jobs whose worker stopped beating (a
  service killed with ``kill -9``), so they run again after a restart;
* ``fail`` retries with exponential backoff until ``max_attempts``.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from sqlalchemy import Engine, and_, func, insert, select, update

from imagewise.service.db import jobs

STALE = 60.0  # seconds without a heartbeat before a running job is taken back


class Job:
    __slots__ = ("id", "kind", "key", "payload", "attempts")  # noqa: RUF023

    def __init__(
        self, id: int, kind: str, key: str, payload: dict[str, Any], attempts: int
    ) -> None:
        self.id, self.kind, self.key, self.payload, self.attempts = id, kind, key, payload, attempts


class JobQueue(Protocol):
    def submit(self, kind: str, key: str, payload: dict[str, Any], priority: int = 0) -> int: ...
    def claim(self, worker: str) -> Job | None: ...
    def heartbeat(self, job_id: int) -> None: ...
    def finish(self, job_id: int) -> None: ...
    def fail(self, job_id: int, error: str) -> str: ...
    def cancel(self, job_id: int) -> bool: ...
    def retry(self, job_id: int) -> bool: ...
    def recover(self, stale: float = STALE) -> int: ...
    def depth(self) -> dict[str, int]: ...


class SqlJobQueue:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def submit(self, kind: str, key: str, payload: dict[str, Any], priority: int = 0) -> int:
        with self.engine.begin() as conn:
            active = conn.execute(
                select(jobs.c.id).where(
                    and_(jobs.c.key == key, jobs.c.state.in_(("queued", "running")))
                )
            ).first()
            if active is not None:
                return int(active[0])
            row = conn.execute(
                insert(jobs)
                .values(
                    kind=kind,
                    key=key,
                    payload=payload,
                    state="queued",
                    priority=priority,
                    attempts=0,
                    max_attempts=3,
                    not_before=0.0,
                    created=time.time(),
                )
                .returning(jobs.c.id)
            ).first()
            assert row is not None
            return int(row[0])

    def claim(self, worker: str) -> Job | None:
        now = time.time()
        with self.engine.begin() as conn:
            pick = (
                select(jobs.c.id)
                .where(and_(jobs.c.state == "queued", jobs.c.not_before <= now))
                .order_by(jobs.c.priority.desc(), jobs.c.id)
                .limit(1)
                .scalar_subquery()
            )
            row = conn.execute(
                update(jobs)
                .where(and_(jobs.c.id == pick, jobs.c.state == "queued"))
                .values(
                    state="running",
                    claimed_by=worker,
                    heartbeat=now,
                    started=now,
                    attempts=jobs.c.attempts + 1,
                )
                .returning(jobs.c.id, jobs.c.kind, jobs.c.key, jobs.c.payload, jobs.c.attempts)
            ).first()
        if row is None:
            return None
        return Job(int(row[0]), str(row[1]), str(row[2]), dict(row[3]), int(row[4]))

    def heartbeat(self, job_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(heartbeat=time.time()))

    def finish(self, job_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(state="done", finished=time.time(), error=None)
            )

    def fail(self, job_id: int, error: str) -> str:
        """Record a failed attempt; the job's state after it: ``queued`` again (a retry after a
        backoff) or ``failed`` (that was its last attempt)."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(jobs.c.attempts, jobs.c.max_attempts).where(jobs.c.id == job_id)
            ).first()
            if row is None:
                return "failed"
            attempts, most = int(row[0]), int(row[1])
            if attempts >= most:
                values: dict[str, Any] = {
                    "state": "failed",
                    "finished": time.time(),
                    "error": error,
                }
            else:
                values = {
                    "state": "queued",
                    "not_before": time.time() + 2.0**attempts,
                    "error": error,
                }
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(**values))
        return str(values["state"])

    def retry(self, job_id: int) -> bool:
        """Queue a failed or cancelled job again, now, with its attempts counted afresh."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(jobs)
                .where(and_(jobs.c.id == job_id, jobs.c.state.in_(("failed", "cancelled"))))
                .values(state="queued", attempts=0, not_before=0.0, claimed_by=None, finished=None)
            )
            return bool(done.rowcount)

    def cancel(self, job_id: int) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(
                update(jobs)
                .where(and_(jobs.c.id == job_id, jobs.c.state == "queued"))
                .values(state="cancelled", finished=time.time())
            )
            return bool(done.rowcount)

    def recover(self, stale: float = STALE) -> int:
        """Put back running jobs whose worker stopped sending heartbeats."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(jobs)
                .where(and_(jobs.c.state == "running", jobs.c.heartbeat < time.time() - stale))
                .values(state="queued", claimed_by=None)
            )
            return int(done.rowcount)

    def depth(self) -> dict[str, int]:
        with self.engine.begin() as conn:
            rows = conn.execute(select(jobs.c.state, func.count()).group_by(jobs.c.state)).all()
        return {str(s): int(n) for s, n in rows}
