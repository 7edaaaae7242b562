"""Wiring the embedded service: database, queue, workers, HTTP server."""

from __future__ import annotations

import threading
from typing import Any


def job_handlers(
    engine: Any, *, policy_file: str | None, config: dict[str, Any] | None, queue: Any = None
) -> tuple[dict[str, Any], Any]:
    """The handler of each job kind, each calling the library, and the ``on_end(job, error)``
    that judges the ``job_failed`` alert rules: the same for every kind of worker. ``queue``:
    the workers' queue, which a check split by content adds its ``layer`` jobs to (default:
    the database's)."""
    from imagewise.policy.model import load_policy
    from imagewise.service.alerts import AlertConfig, evaluate_job
    from imagewise.service.builds import run_build
    from imagewise.service.jobs import run_check_job, run_layer_job
    from imagewise.service.scheduler import (
        run_backup_due,
        run_db_update,
        run_drill,
        run_pull,
        run_rematch,
        run_retention,
        run_space_report,
        run_startup,
        run_sync,
    )

    policy = load_policy(policy_file)
    alerts = AlertConfig((config or {}).get("alerts"), "config alerts")
    if split_layers(config) and queue is None:
        from imagewise.service.queue import SqlJobQueue

        queue = SqlJobQueue(engine)
    splitting = queue if split_layers(config) else None
    handlers = {
        "check": lambda p: run_check_job(engine, p, policy, alerts, splitting),
        "layer": lambda p: run_layer_job(engine, p),
        "backup-due": lambda p: run_backup_due(engine, p, alerts),
        "space-report": lambda p: run_space_report(engine, p, alerts),
        "drill": lambda p: run_drill(engine, p, alerts),
        "build": lambda p: run_build(engine, p, alerts),
        "pull": lambda p: run_pull(engine, p),
        "startup": lambda p: run_startup(engine, p),
        "retention": lambda p: run_retention(engine, p),
        "sync": lambda p: run_sync(engine, p),
        "db-update": lambda p: run_db_update(engine, p, alerts),
        "rematch": lambda p: run_rematch(engine, p, alerts),
    }

    def on_end(job: Any, error: str | None) -> None:
        evaluate_job(engine, alerts, job.kind, _job_name(job), error)

    return handlers, on_end


def split_layers(config: dict[str, Any] | None) -> bool:
    """The config's ``split_layers`` (checks split into per-layer jobs, see ``service.jobs``);
    by default on with a broker (a fleet of workers), off for the embedded service."""
    value = (config or {}).get("split_layers")
    if value is None:
        return bool((config or {}).get("broker"))
    if not isinstance(value, bool):
        from imagewise.errors import ConfigError

        raise ConfigError(f"config split_layers: expected true or false, not {value!r}")
    return value


def worker_pool(
    engine: Any,
    queue: Any,
    *,
    count: int,
    policy_file: str | None,
    config: dict[str, Any] | None,
    stale: float,
) -> Any:
    """The workers of the service (threads of this process) with the job handlers: ``serve``
    runs them, and so does each ``imagewise worker`` process."""
    from imagewise.service.worker import Workers

    handlers, on_end = job_handlers(engine, policy_file=policy_file, config=config, queue=queue)
    return Workers(queue, handlers, count=count, on_end=on_end, stale=stale)


class _Reaper:
    """With a broker, nobody claims from the database: this thread takes back the jobs of
    dead workers and sends again the ones a broker lost (``CeleryJobQueue.recover``)."""

    def __init__(self, queue: Any, stale: float) -> None:
        self.queue, self.stale = queue, stale
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.queue.recover(self.stale)
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.wait(max(self.stale / 3, 0.5)):
            try:
                self.queue.recover(self.stale)
            except Exception:  # noqa: BLE001 - the broker or database may be back next round
                import logging

                logging.getLogger("imagewise.service").warning(
                    "recovery round failed", exc_info=True
                )

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=10)


class Service:
    """The service in this process: ``start()`` serves on ``host:port`` in a thread (``port``
    0: a free one, see ``url``), ``close()`` stops it."""

    def __init__(
        self,
        *,
        db_url: str | None = None,
        secret: str,
        host: str = "127.0.0.1",
        port: int = 8080,
        workers: int = 2,
        policy_file: str | None = None,
        insecure: bool = False,
        config: dict[str, Any] | None = None,
        worker_processes: int = 0,
        config_file: str | None = None,
        stale: float = 60.0,
    ) -> None:
        """``config``: the service config's contents (``alerts:``; see docs/guide.md), read
        from ``config_file`` by the caller. ``worker_processes``: run the jobs in that many
        ``imagewise worker`` processes (``workers`` threads each) instead of threads of this
        process. ``stale``: seconds without a heartbeat before a running job is taken back."""
        from imagewise.service.alerts import AlertConfig
        from imagewise.service.app import create_app
        from imagewise.service.db import connect, default_url
        from imagewise.service.queue import SqlJobQueue

        self.db_url = db_url or default_url()
        self.engine = connect(self.db_url)
        broker = (config or {}).get("broker")
        split_layers(config)  # a bad value is named now, not by the first check
        from imagewise.service.ratelimit import install

        install(config)  # the watcher's polls too keep the fleet's rate limits
        self.queue: Any
        if broker:  # API and scheduler here; jobs on `imagewise worker` Celery workers
            from imagewise.service.celery_backend import CeleryJobQueue

            self.queue = CeleryJobQueue(self.engine, str(broker), stale)
        else:
            self.queue = SqlJobQueue(self.engine)
        alerts = AlertConfig((config or {}).get("alerts"), "config alerts")
        from imagewise.service.scheduler import Scheduler, parse_schedules

        self.workers: Any
        if broker:
            self.workers = _Reaper(self.queue, stale)
        elif worker_processes > 0:
            from imagewise.service.processes import WorkerProcesses

            self.workers = WorkerProcesses(
                worker_processes,
                db_url=self.db_url,
                threads=workers,
                policy_file=policy_file,
                config_file=config_file,
                insecure=insecure,
                stale=stale,
            )
        else:
            self.workers = worker_pool(
                self.engine,
                self.queue,
                count=workers,
                policy_file=policy_file,
                config=config,
                stale=stale,
            )
        self.scheduler = Scheduler(
            self.engine,
            self.queue,
            parse_schedules((config or {}).get("schedules")),
            alerts=alerts,
        )
        self.app = create_app(self.engine, self.queue, secret=secret, insecure=insecure)
        from imagewise.service.watch import Watcher, parse_watch

        self.watcher = Watcher(
            self.engine, self.queue, parse_watch((config or {}).get("watch")), insecure
        )
        self.host, self.port = host, port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        import socket

        import uvicorn

        if self.port == 0:
            with socket.socket() as s:
                s.bind((self.host, 0))
                self.port = s.getsockname()[1]
        config = uvicorn.Config(
            self.app, host=self.host, port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self.workers.start()
        self.watcher.start()
        self.scheduler.start()
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        import time

        deadline = time.monotonic() + 20
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)

    def serve_forever(self) -> None:
        """Serve until SIGTERM or SIGINT, then stop cleanly: the HTTP server, the scheduler,
        the watcher and the workers (their running jobs finish first)."""
        import contextlib
        import signal

        import uvicorn

        class _Server(uvicorn.Server):
            # uvicorn re-raises the signal it caught once it has shut down, which would kill
            # this process before the workers are stopped: the signals are ours instead
            @contextlib.contextmanager
            def capture_signals(self) -> Any:
                yield

        config = uvicorn.Config(
            self.app, host=self.host, port=self.port, log_level="info", lifespan="off"
        )
        server = _Server(config)

        def stop(*_: Any) -> None:
            server.should_exit = True

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, stop)
        self.workers.start()
        self.watcher.start()
        self.scheduler.start()
        try:
            server.run()
        finally:
            self.scheduler.close()
            self.watcher.close()
            self.workers.close()

    def close(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.scheduler.close()
        self.watcher.close()
        self.workers.close()
        self.engine.dispose()


def _job_name(job: Any) -> str:
    """What a job is about, the same for every run of it: a schedule's or build's name, a
    checked digest, else its key."""
    payload = job.payload or {}
    return str(payload.get("name") or payload.get("digest") or job.key)


def run_worker(
    *,
    db_url: str | None,
    threads: int,
    policy_file: str | None,
    config: dict[str, Any] | None,
    stale: float,
    parent_pid: int | None = None,
) -> None:
    """``imagewise worker``: this process's workers on the service database until SIGTERM or
    SIGINT (running jobs are finished first) or, with ``parent_pid``, until that process is
    gone (then the process group is killed at once: the service was killed, so are its jobs)."""
    import os
    import signal

    from imagewise.service.db import connect
    from imagewise.service.queue import SqlJobQueue

    if (config or {}).get("broker"):
        from imagewise.service.celery_backend import run_celery_worker

        run_celery_worker(
            broker=str((config or {})["broker"]),
            db_url=db_url,
            threads=threads,
            policy_file=policy_file,
            config=config,
            stale=stale,
        )
        return
    engine = connect(db_url)
    pool = worker_pool(
        engine,
        SqlJobQueue(engine),
        count=threads,
        policy_file=policy_file,
        config=config,
        stale=stale,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    pool.start()
    try:
        while not stop.wait(0.25):
            if parent_pid is not None and os.getppid() != parent_pid:
                if os.getpgrp() == os.getpid():  # a group of its own (as serve starts it)
                    os.killpg(os.getpgrp(), signal.SIGKILL)
                os._exit(1)
    finally:
        pool.close()
        engine.dispose()
