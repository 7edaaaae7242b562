"""The service's jobs on Celery with a Redis broker (the config's ``broker:``).

The database stays the record of every job (dedup per key, state, attempts, heartbeats,
history); the broker only carries "run job N" to whichever worker is free, by priority.

* ``CeleryJobQueue`` is the ``JobQueue`` the service uses then: ``submit`` records the job and
  sends its id (a job already queued or running under the key sends nothing); a failed attempt
  that will be retried is sent again after its backoff; ``recover`` takes back running jobs
  whose heartbeats stopped (their worker died) and sends again queued jobs nobody took for
  ``stale`` seconds (a broker restarted without its messages), so no job is lost.
* ``imagewise worker --config`` (a config naming ``broker:``) runs a Celery worker whose one
  task, ``imagewise.job``, claims job N in the database (only a queued job is claimed: a job
  never runs twice at once, and a message delivered twice is harmless), runs the same handlers
  as every other worker (``run.job_handlers``), sends heartbeats, and finishes or fails it.
  Messages are acknowledged late and given back when a worker process dies.

Celery's priorities on Redis run 0 (first) to 9; a job's priority (push 10, API 5, schedule 0)
maps to ``9 - priority`` clipped to that range, so pushes are taken first.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from imagewise.service.queue import STALE, Deferred, Job, SqlJobQueue

TASK = "imagewise.job"


def make_celery(broker_url: str, stale: float = STALE) -> Any:
    from celery import Celery

    app = Celery("imagewise", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        broker_transport_options={
            "visibility_timeout": max(stale * 2, 30),
            "priority_steps": list(range(10)),
            "queue_order_strategy": "priority",
        },
        worker_hijack_root_logger=False,
    )
    app.task(name=TASK, bind=True, acks_late=True, reject_on_worker_lost=True)(_run_job)
    return app


def _priority(priority: int) -> int:
    return min(9, max(0, 9 - priority))


class CeleryJobQueue(SqlJobQueue):
    """The database queue, with each job to run sent through the broker."""

    def __init__(self, engine: Any, broker_url: str, stale: float = STALE) -> None:
        super().__init__(engine)
        self.app = make_celery(broker_url, stale)

    def _send(self, job_id: int, priority: int, countdown: float = 0.0) -> None:
        """Send job N to the workers; a broker that cannot be reached now loses nothing: the
        job is in the database, and ``recover`` sends it again once it waited ``stale``."""
        try:
            self.app.send_task(
                TASK,
                args=[job_id],
                priority=_priority(priority),
                countdown=countdown or None,
                retry=True,
                retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
            )
        except Exception as e:  # noqa: BLE001 - kombu's connection errors vary by transport
            import logging

            logging.getLogger("imagewise.service").warning(
                "job %s not sent to the broker now (%s); it is sent again later", job_id, e
            )

    def submit(self, kind: str, key: str, payload: dict[str, Any], priority: int = 0) -> int:
        job_id, new = self.record(kind, key, payload, priority)
        if new:  # not one already queued or running under the key
            self._send(job_id, priority)
        return job_id

    def fail(self, job_id: int, error: str) -> str:
        state = super().fail(job_id, error)
        if state == "queued":
            job = self.get(job_id)
            attempts = job.attempts if job else 1
            self._send(job_id, 0, countdown=2.0**attempts)
        return state

    def defer(self, job_id: int, delay: float, payload: dict[str, Any]) -> None:
        super().defer(job_id, delay, payload)
        self._send(job_id, 5, countdown=delay)

    def retry(self, job_id: int) -> bool:
        done = super().retry(job_id)
        if done:
            self._send(job_id, 5)
        return done

    def recover(self, stale: float = STALE) -> int:
        again = self.recover_ids(stale)
        waiting = [job_id for job_id, _ in self.waiting(stale) if job_id not in again]
        # a job waiting that long is either behind a backlog (its message is in the broker) or
        # lost (the broker restarted, or was away when it was sent): only the shortfall between
        # the jobs waiting and the messages the broker holds is sent again, oldest first
        lost = waiting[: max(0, len(waiting) - self.broker_depth())]
        for job_id in [*again, *lost]:
            self._send(job_id, 5)
        return len(again) + len(lost)

    def broker_depth(self) -> int:
        """Messages waiting in the broker's queue (every priority), 0 when it cannot be asked."""
        try:
            import redis

            client = redis.Redis.from_url(str(self.app.conf.broker_url))
            keys = ["celery", *(f"celery\x06\x16{p}" for p in range(1, 10))]
            return int(sum(client.llen(k) for k in keys))
        except Exception:  # noqa: BLE001 - a broker away holds nothing we can count on
            return 0


# -- the worker's side ---------------------------------------------------------------------------

#: what a worker process needs to run jobs, set by ``run_celery_worker`` before the pool forks
_SETTINGS: dict[str, Any] = {}
_CONTEXT: dict[int, Any] = {}  # pid -> (queue, handlers, on_end): made in each process


def _context() -> Any:
    pid = os.getpid()
    if pid not in _CONTEXT:
        from imagewise.service.db import connect
        from imagewise.service.ratelimit import install
        from imagewise.service.run import job_handlers

        install(_SETTINGS["config"])  # the fleet's shared rate limits per registry
        engine = connect(_SETTINGS["db_url"])
        queue = CeleryJobQueue(engine, _SETTINGS["broker"], _SETTINGS["stale"])
        handlers, on_end = job_handlers(
            engine, policy_file=_SETTINGS["policy_file"], config=_SETTINGS["config"], queue=queue
        )
        _CONTEXT[pid] = (queue, handlers, on_end)
    return _CONTEXT[pid]


def _run_job(task: Any, job_id: int) -> str:
    queue, handlers, on_end = _context()
    stale = float(_SETTINGS["stale"])
    me = f"{socket.gethostname()}:{os.getpid()}"
    job: Job | None = queue.claim_id(job_id, me)
    if job is None:
        now = queue.state(job_id)
        if now is not None and now[0] == "running":
            # running elsewhere: if its worker died, the service's recovery sends it again
            return "running elsewhere"
        return "nothing to do"
    from imagewise.service.worker import heartbeats

    with heartbeats(queue, [job.id], stale):
        try:
            handler = handlers.get(job.kind)
            if handler is None:
                raise RuntimeError(f"no handler for job kind {job.kind!r}")
            outcome = str(handler(job.payload))
        except Deferred as d:
            from imagewise.service.worker import defer

            defer(queue, job.id, d)
            return str(d)
        except Exception as e:  # noqa: BLE001 - a failed job is recorded and retried
            error = f"{type(e).__name__}: {e}"
            if queue.fail(job.id, error) == "failed":
                on_end(job, error)
            return error
        else:
            queue.finish(job.id, outcome)
            on_end(job, None)
            return outcome


def run_celery_worker(
    *,
    broker: str,
    db_url: str | None,
    threads: int,
    policy_file: str | None,
    config: dict[str, Any] | None,
    stale: float,
) -> None:
    """A Celery worker of ``threads`` processes (prefork) running the service's jobs."""
    from imagewise.service.db import connect, default_url

    url = db_url or default_url()
    connect(url).dispose()  # the schema migrated once, before the pool forks
    _SETTINGS.update(broker=broker, db_url=url, policy_file=policy_file, config=config, stale=stale)
    app = make_celery(broker, stale)
    app.worker_main(
        [
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(threads),
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"imagewise-{os.getpid()}@{socket.gethostname()}",
        ]
    )
