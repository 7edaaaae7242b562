"""Workers of the service: threads (of the serve process, or of each ``imagewise worker``
process) that claim jobs from the queue, send heartbeats while they run, and finish or fail
them (failures retry with backoff); a job whose worker died is taken back after ``stale``
seconds without a heartbeat and runs again."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.exc import DBAPIError

from imagewise.service.queue import STALE, Deferred, JobQueue

Handler = Callable[[dict[str, Any]], str]


class Workers:
    def __init__(
        self,
        queue: JobQueue,
        handlers: dict[str, Handler],
        count: int = 2,
        poll: float = 0.2,
        on_end: Callable[[Any, str | None], Any] | None = None,
        stale: float = STALE,
    ) -> None:
        """``on_end(job, error)``: called when a job ends for good, ``error`` None when it
        succeeded (a failure that will be retried is not an end). ``stale``: a running job
        whose heartbeat is older is taken back (its worker died); heartbeats come six times
        as often, and the first worker looks for such jobs every ``stale / 2`` seconds."""
        self.queue, self.handlers, self.count, self.poll = queue, handlers, count, poll
        self.on_end = on_end
        self.stale = stale
        self._reaped = 0.0
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def start(self) -> None:
        self.queue.recover(self.stale)  # jobs a killed service left running run again
        self._reaped = time.monotonic()
        for i in range(self.count):
            t = threading.Thread(target=self._loop, args=(f"{self.name}/{i}",), daemon=True)
            t.start()
            self.threads.append(t)

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)

    def _loop(self, me: str) -> None:
        first = me.endswith("/0")
        while not self.stop.is_set():
            try:
                if first and time.monotonic() - self._reaped > self.stale / 2:
                    self._reaped = time.monotonic()
                    self.queue.recover(self.stale)  # another worker (process) died mid-job
                job = self.queue.claim(me)
            except DBAPIError:  # the database is away (restarting): wait and try again
                logging.getLogger("imagewise.service").warning("cannot claim: database away")
                self.stop.wait(max(self.poll, 1.0))
                continue
            if job is None:
                self.stop.wait(self.poll)
                continue
            with heartbeats(self.queue, [job.id], self.stale):
                try:
                    handler = self.handlers.get(job.kind)
                    if handler is None:
                        raise RuntimeError(f"no handler for job kind {job.kind!r}")
                    outcome = handler(job.payload)
                except Deferred as d:
                    self._defer(job, d)
                except Exception as e:  # noqa: BLE001 - a failed job is recorded and retried
                    error = f"{type(e).__name__}: {e}"
                    self._settle(job, error)
                else:
                    self._settle(job, None, outcome)

    def _defer(self, job: Any, d: Deferred) -> None:
        """The job waits for others: submit them, put it back (see ``Deferred``)."""
        try:
            defer(self.queue, job.id, d)
        except DBAPIError:
            logging.getLogger("imagewise.service").warning(
                "job %s not put back: database away; it runs again", job.id
            )

    def _settle(self, job: Any, error: str | None, outcome: Any = None) -> None:
        """Record the job's outcome; with the database away it stays running, and is taken
        back (and runs again) once its heartbeats are stale: nothing is lost."""
        try:
            if error is None:
                self.queue.finish(job.id, None if outcome is None else str(outcome))
            elif self.queue.fail(job.id, error) != "failed":
                return
        except DBAPIError:
            logging.getLogger("imagewise.service").warning(
                "job %s's outcome not recorded: database away; it runs again", job.id
            )
            return
        self._ended(job, error)

    def _ended(self, job: Any, error: str | None) -> None:
        if self.on_end is None:
            return
        try:
            self.on_end(job, error)
        except Exception:  # noqa: BLE001 - an alert that cannot be sent must not stop the worker
            logging.getLogger("imagewise.service").exception("judging job %s's end", job.id)


def defer(queue: JobQueue, job_id: int, d: Deferred) -> None:
    """Submit what job ``job_id`` waits for, then put it back (every kind of worker)."""
    for kind, key, payload, priority in d.needs:
        queue.submit(kind, key, payload, priority)
    queue.defer(job_id, d.delay, d.payload)


@contextmanager
def heartbeats(queue: JobQueue, job_ids: list[int], stale: float = STALE) -> Iterator[None]:
    """Heartbeats for the running jobs ``job_ids`` while the body runs, every
    ``min(10, stale / 6)`` seconds (else they look abandoned and are taken back); a beat the
    database misses (away, restarting) is sent again next time."""
    if not job_ids:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(min(10.0, stale / 6)):
            for job_id in job_ids:
                try:
                    queue.heartbeat(job_id)
                except Exception:  # noqa: BLE001 - the next beat tries again
                    pass

    pulse = threading.Thread(target=beat, daemon=True)
    pulse.start()
    try:
        yield
    finally:
        stop.set()
        pulse.join()
