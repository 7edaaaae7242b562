"""Job execution behind one interface: ``JobQueue`` (submit, claim, heartbeat, finish, fail with
retry and backoff, cancel). ``SqlJobQueue`` keeps the queue in the service's database, so it
works in one process (threads), across worker processes and across restarts:

* ``submit`` is idempotent per ``key``: while a job with that key is queued or running, the
  same job is not queued again (a push of a digest already being checked adds nothing);
* ``claim`` takes the oldest, highest-priority queued job in one atomic UPDATE, so a job never
  runs twice at once;
* a running job sends heartbeats; ``recover`` puts back jobs whose worker stopped beating (a
  service killed with ``kill -9``), so they run again after a restart;
* ``fail`` retries with exponential backoff until ``max_attempts``;
* ``defer`` puts a job back to wait for others it needs (a handler raises ``Deferred``: a check
  split by content waits for its ``layer`` jobs); waiting is not a failed attempt.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from sqlalchemy import Engine, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from imagewise.service.db import jobs

STALE = 60.0  # seconds without a heartbeat before a running job is taken back


class Job:
    __slots__ = ("id", "kind", "key", "payload", "attempts")  # noqa: RUF023

    def __init__(
        self, id: int, kind: str, key: str, payload: dict[str, Any], attempts: int
    ) -> None:
        self.id, self.kind, self.key, self.payload, self.attempts = id, kind, key, payload, attempts


class Deferred(Exception):  # noqa: N818 - not an error: "run me again later"
    """Raised by a job handler that cannot finish yet: the worker submits each of ``needs``
    (``(kind, key, payload, priority)``; a job already queued or running under a key is not
    added twice), then puts this job back, with ``payload`` as its new payload, to run again
    in ``delay`` seconds. Its attempts are not counted."""

    def __init__(
        self,
        delay: float,
        payload: dict[str, Any],
        needs: list[tuple[str, str, dict[str, Any], int]],
    ) -> None:
        super().__init__(f"waiting {delay:.1f} s for {len(needs)} job(s)")
        self.delay, self.payload, self.needs = delay, payload, needs


class JobQueue(Protocol):
    def submit(self, kind: str, key: str, payload: dict[str, Any], priority: int = 0) -> int: ...
    def claim(self, worker: str) -> Job | None: ...
    def heartbeat(self, job_id: int) -> None: ...
    def finish(self, job_id: int, outcome: str | None = None) -> None: ...
    def fail(self, job_id: int, error: str) -> str: ...
    def defer(self, job_id: int, delay: float, payload: dict[str, Any]) -> None: ...
    def cancel(self, job_id: int) -> bool: ...
    def retry(self, job_id: int) -> bool: ...
    def recover(self, stale: float = STALE) -> int: ...
    def depth(self) -> dict[str, int]: ...


class SqlJobQueue:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def submit(self, kind: str, key: str, payload: dict[str, Any], priority: int = 0) -> int:
        return self.record(kind, key, payload, priority)[0]

    def record(
        self, kind: str, key: str, payload: dict[str, Any], priority: int = 0
    ) -> tuple[int, bool]:
        """``submit``: the job's id, and whether it is new (False: a job under ``key`` is
        queued or running already, and that is its id)."""
        for _ in range(5):
            active = self._active(key)
            if active is not None:
                return active, False
            try:
                return self._insert(kind, key, payload, priority), True
            except IntegrityError:
                continue  # another submit of the key won the race: that one is the job
        raise RuntimeError(f"job {key}: could neither find nor add it")

    def _active(self, key: str) -> int | None:
        with self.engine.begin() as conn:
            row = conn.execute(
                select(jobs.c.id).where(
                    and_(jobs.c.key == key, jobs.c.state.in_(("queued", "running")))
                )
            ).first()
        return None if row is None else int(row[0])

    def _insert(self, kind: str, key: str, payload: dict[str, Any], priority: int) -> int:
        """A new queued job; IntegrityError when one under ``key`` is queued or running (the
        database's ``ux_jobs_active_key``)."""
        with self.engine.begin() as conn:
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
        pick = (
            select(jobs.c.id)
            .where(and_(jobs.c.state == "queued", jobs.c.not_before <= now))
            .order_by(jobs.c.priority.desc(), jobs.c.id)
            .limit(1)
            .scalar_subquery()
        )
        return self._take(pick, worker)

    def claim_id(self, job_id: int, worker: str) -> Job | None:
        """Claim the job ``job_id`` if it is queued (a broker delivered it: the delivery, not
        the database, chose it); None when it is running elsewhere, ended or cancelled."""
        return self._take(job_id, worker)

    def _take(self, which: Any, worker: str) -> Job | None:
        now = time.time()
        with self.engine.begin() as conn:
            row = conn.execute(
                update(jobs)
                .where(and_(jobs.c.id == which, jobs.c.state == "queued"))
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

    def finish(self, job_id: int, outcome: str | None = None) -> None:
        """The job succeeded; ``outcome``: what it reported (kept, shown with the job)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(
                    state="done",
                    finished=time.time(),
                    error=None,
                    outcome=None if outcome is None else str(outcome)[:2000],
                )
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

    def defer(self, job_id: int, delay: float, payload: dict[str, Any]) -> None:
        """Put a running job back to run again in ``delay`` seconds with ``payload`` (see
        ``Deferred``); the attempt it just made is not counted."""
        with self.engine.begin() as conn:
            conn.execute(
                update(jobs)
                .where(and_(jobs.c.id == job_id, jobs.c.state == "running"))
                .values(
                    state="queued",
                    claimed_by=None,
                    not_before=time.time() + delay,
                    attempts=jobs.c.attempts - 1,
                    payload=payload,
                )
            )

    def retry(self, job_id: int) -> bool:
        """Queue a failed or cancelled job again, now, with its attempts counted afresh
        (False when it is not failed or cancelled, or a job of its key is queued or running:
        that one runs instead)."""
        try:
            with self.engine.begin() as conn:
                done = conn.execute(
                    update(jobs)
                    .where(and_(jobs.c.id == job_id, jobs.c.state.in_(("failed", "cancelled"))))
                    .values(
                        state="queued", attempts=0, not_before=0.0, claimed_by=None, finished=None
                    )
                )
                return bool(done.rowcount)
        except IntegrityError:
            return False

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
        return len(self.recover_ids(stale))

    def recover_ids(self, stale: float = STALE) -> list[int]:
        """``recover``, naming the jobs put back."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(jobs)
                .where(and_(jobs.c.state == "running", jobs.c.heartbeat < time.time() - stale))
                .values(state="queued", claimed_by=None)
                .returning(jobs.c.id)
            )
            return [int(r[0]) for r in done]

    def waiting(self, older_than: float) -> list[tuple[int, int]]:
        """Queued jobs due for ``older_than`` seconds and not taken: (id, priority) each."""
        cutoff = time.time() - older_than
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(jobs.c.id, jobs.c.priority, jobs.c.not_before, jobs.c.created).where(
                    jobs.c.state == "queued"
                )
            ).all()
        return [(int(r[0]), int(r[1])) for r in rows if max(float(r[2]), float(r[3])) < cutoff]

    def get(self, job_id: int) -> Job | None:
        with self.engine.begin() as conn:
            row = conn.execute(
                select(jobs.c.id, jobs.c.kind, jobs.c.key, jobs.c.payload, jobs.c.attempts).where(
                    jobs.c.id == job_id
                )
            ).first()
        return (
            None
            if row is None
            else Job(int(row[0]), str(row[1]), str(row[2]), dict(row[3]), int(row[4]))
        )

    def state(self, job_id: int) -> tuple[str, float | None] | None:
        """The job's state and last heartbeat (None: no such job)."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(jobs.c.state, jobs.c.heartbeat).where(jobs.c.id == job_id)
            ).first()
        return None if row is None else (str(row[0]), row[1])

    def depth(self) -> dict[str, int]:
        with self.engine.begin() as conn:
            rows = conn.execute(select(jobs.c.state, func.count()).group_by(jobs.c.state)).all()
        return {str(s): int(n) for s, n in rows}
